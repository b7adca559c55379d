//! The one error type of the use cases.
//!
//! An [`AppError`] says what kind of failure it is (the edge maps the kind to an HTTP
//! status, the SIP user agent to a log line), a stable machine code and a message
//! meant for the caller. Server-side failures are logged with their cause where they
//! happen and carry no internal detail.

use switchboard_plugin_host::CallError;
use switchboard_routing::EngineError;
use switchboard_store::StoreError;

/// What kind of failure a use case reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ErrorKind {
    /// The request is malformed or names something invalid.
    BadRequest,
    /// The caller is not authenticated.
    Unauthorized,
    /// The caller may not do this.
    Forbidden,
    /// What the request names does not exist.
    NotFound,
    /// The request conflicts with the current state.
    Conflict,
    /// Understood, but refused by a rule (consent, a closed window…).
    Unprocessable,
    /// Too many requests from this caller.
    TooManyRequests,
    /// The body or file is larger than allowed.
    PayloadTooLarge,
    /// A dependency (the store, a plugin, routing) is unavailable; retry later.
    Unavailable,
    /// A peer the request had to reach (a SIP trunk) failed or could not be reached.
    BadGateway,
    /// A bug or an unexpected failure; details are in the server log.
    Internal,
}

/// A use case's failure.
#[derive(Debug)]
pub struct AppError {
    kind: ErrorKind,
    code: &'static str,
    message: String,
    retry_after_secs: Option<u64>,
    details: serde_json::Map<String, serde_json::Value>,
}

/// Result alias of the use cases.
pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    /// A failure of this kind, machine code and human message.
    pub fn new(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> AppError {
        AppError {
            kind,
            code,
            message: message.into(),
            retry_after_secs: None,
            details: serde_json::Map::new(),
        }
    }

    /// The same failure with a machine-readable detail (`closed_at` of a
    /// closed messaging window), returned beside `code` and `message`.
    pub fn with_detail(mut self, key: &str, value: serde_json::Value) -> AppError {
        self.details.insert(key.to_string(), value);
        self
    }

    /// The details, if any.
    pub fn details(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.details
    }

    /// The same failure, telling the caller when to try again.
    pub fn with_retry_after(mut self, secs: u64) -> AppError {
        self.retry_after_secs = Some(secs);
        self
    }

    /// When the caller may try again, in seconds, if the failure says.
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after_secs
    }

    /// Malformed input.
    pub fn bad_request(message: impl Into<String>) -> AppError {
        AppError::new(ErrorKind::BadRequest, "bad_request", message)
    }

    /// Not authenticated.
    pub fn unauthorized(message: impl Into<String>) -> AppError {
        AppError::new(ErrorKind::Unauthorized, "unauthorized", message)
    }

    /// Not allowed.
    pub fn forbidden(message: impl Into<String>) -> AppError {
        AppError::new(ErrorKind::Forbidden, "forbidden", message)
    }

    /// No such thing.
    pub fn not_found(message: impl Into<String>) -> AppError {
        AppError::new(ErrorKind::NotFound, "not_found", message)
    }

    /// An unexpected failure: the cause is logged, not returned.
    pub fn internal(cause: impl std::fmt::Display) -> AppError {
        tracing::error!("internal error: {cause}");
        AppError::new(
            ErrorKind::Internal,
            "internal",
            "internal error; see the server log",
        )
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The machine code (`not_found`, `opted_out`…).
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The message for the caller.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} ({}): {}", self.kind, self.code, self.message)
    }
}

impl std::error::Error for AppError {}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> AppError {
        match e {
            StoreError::NotFound { .. } => AppError::not_found(e.to_string()),
            StoreError::Conflict(m) => AppError::new(ErrorKind::Conflict, "conflict", m),
            StoreError::OptedOut { .. } => {
                AppError::new(ErrorKind::Unprocessable, "opted_out", e.to_string())
            }
            StoreError::Invalid(m) => AppError::bad_request(m),
            StoreError::QuotaExceeded { .. } => {
                AppError::new(ErrorKind::Conflict, "quota_exceeded", e.to_string())
            }
            // A deposed routing leader's write: the new leader is the one to ask (the
            // relay does so on this code).
            StoreError::Fenced { .. } => AppError::new(
                ErrorKind::Unavailable,
                "routing_follower",
                "another node leads routing; retry, or send this to the leader",
            ),
            other => AppError::internal(other),
        }
    }
}

impl From<switchboard_core::IdentityError> for AppError {
    fn from(e: switchboard_core::IdentityError) -> AppError {
        AppError::bad_request(e.to_string())
    }
}

impl From<EngineError> for AppError {
    fn from(e: EngineError) -> AppError {
        match e {
            EngineError::UnknownTask(_)
            | EngineError::UnknownReservation(_)
            | EngineError::UnknownAgent(_)
            | EngineError::UnknownQueue(_) => AppError::not_found(e.to_string()),
            _ => AppError::new(ErrorKind::Conflict, "conflict", e.to_string()),
        }
    }
}

/// A failed plugin call as a use case failure.
pub fn call_error(e: CallError) -> AppError {
    match &e {
        CallError::NotFound(_) | CallError::WrongKind { .. } => AppError::not_found(e.to_string()),
        CallError::Disabled(_) | CallError::Quarantined { .. } => {
            AppError::new(ErrorKind::Unavailable, "plugin_unavailable", e.to_string())
        }
        _ => AppError::new(ErrorKind::Internal, "plugin_failed", e.to_string()),
    }
}

/// A plugin's refusal in words, without the kind (`the provider is throttling
/// requests`, or the plugin's own message).
pub(crate) fn plugin_reason(e: &switchboard_plugin_host::PluginError) -> String {
    use switchboard_plugin_host::PluginError as P;
    match e {
        P::InvalidRequest(m)
        | P::Unauthorized(m)
        | P::Config(m)
        | P::Transient(m)
        | P::Permanent(m)
        | P::Internal(m)
        | P::WindowClosed(m)
        | P::Unsupported(m) => m.clone(),
        P::RateLimited(Some(secs)) => {
            format!("the provider is throttling requests (retry after {secs} s)")
        }
        P::RateLimited(None) => "the provider is throttling requests".into(),
    }
}

/// A plugin's refusal as `kind: reason` (`permanent: HTTP 400 …`), for logs and
/// dead letters.
pub(crate) fn plugin_error_text(e: &switchboard_plugin_host::PluginError) -> String {
    use switchboard_plugin_host::PluginError as P;
    let kind = match e {
        P::InvalidRequest(_) => "invalid request",
        P::Unauthorized(_) => "unauthorized",
        P::Config(_) => "config",
        P::Transient(_) => "transient",
        P::Permanent(_) => "permanent",
        P::RateLimited(_) => "rate limited",
        P::Internal(_) => "internal",
        P::WindowClosed(_) => "window closed",
        P::Unsupported(_) => "unsupported",
    };
    format!("{kind}: {}", plugin_reason(e))
}
