//! The values of outbound HTTP: [`Request`] (with its builders), [`Response`] and
//! [`HttpError`]; sending them is [`super::send`]'s.

use core::fmt;

use base64::Engine as _;

use crate::PluginError;
use crate::webhook;

/// An outbound HTTP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`… (case-insensitive).
    pub method: String,
    /// Absolute URL: `scheme://host[:port]/path?query`.
    pub url: String,
    /// Header names and values, in order; repeated names are sent repeatedly.
    pub headers: Vec<(String, String)>,
    /// The body; sent with a `content-length`.
    pub body: Vec<u8>,
    /// Gives up waiting for the response after this many milliseconds;
    /// `None` leaves it to the host, whose own deadline applies either way.
    pub timeout_ms: Option<u64>,
}

impl Request {
    /// A request without headers or body.
    pub fn new(method: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout_ms: None,
        }
    }

    /// A `GET` request.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new("GET", url)
    }

    /// A `POST` request.
    pub fn post(url: impl Into<String>) -> Self {
        Self::new("POST", url)
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets an `application/x-www-form-urlencoded` body from name/value pairs,
    /// in order.
    pub fn form<K, V>(self, pairs: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut serializer = form_urlencoded::Serializer::new(String::new());
        for (name, value) in pairs {
            serializer.append_pair(name.as_ref(), value.as_ref());
        }
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(serializer.finish())
    }

    /// Sets an `application/json` body; `json` is JSON text.
    pub fn json(self, json: impl Into<String>) -> Self {
        self.header("content-type", "application/json")
            .body(json.into())
    }

    /// Adds `authorization: Basic …` for `user` and `password`.
    pub fn basic_auth(self, user: &str, password: &str) -> Self {
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        self.header("authorization", format!("Basic {credentials}"))
    }

    /// Adds `authorization: Bearer {token}`.
    pub fn bearer_auth(self, token: &str) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }

    /// Sets [`Request::timeout_ms`].
    pub fn timeout_ms(mut self, timeout_ms: u64) -> Self {
        self.timeout_ms = Some(timeout_ms);
        self
    }
}

/// A response from the provider, whatever its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// Header names (lower-case) and values.
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Vec<u8>,
}

impl Response {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The value of header `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        webhook::header(&self.headers, name)
    }

    /// The body as text, invalid UTF-8 replaced.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// `Retry-After` in seconds, when the provider sent it as a number.
    pub fn retry_after_secs(&self) -> Option<u32> {
        self.header("retry-after")?.trim().parse().ok()
    }

    /// The [`PluginError`] an unsuccessful response means, with `detail` (the
    /// provider's own error code and message, say) for the operator:
    /// 429 is [`PluginError::RateLimited`] with `Retry-After`; 408 and 5xx are
    /// [`PluginError::Transient`]; any other status is
    /// [`PluginError::Permanent`].
    pub fn failure(&self, detail: impl fmt::Display) -> PluginError {
        match self.status {
            429 => PluginError::RateLimited(self.retry_after_secs()),
            408 | 500..=599 => PluginError::Transient(format!("HTTP {}: {detail}", self.status)),
            _ => PluginError::Permanent(format!("HTTP {}: {detail}", self.status)),
        }
    }
}

/// Why an outbound request got no response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpError {
    /// The request cannot be sent as built: bad URL, method or header.
    InvalidRequest(String),
    /// The host refused the request: its origin is not on the plugin's
    /// allow-list (or the host forbids outbound HTTP for this call).
    Denied(String),
    /// Connecting or waiting for the response took too long.
    Timeout(String),
    /// The connection failed: DNS, refused, reset, TLS.
    Transport(String),
    /// The peer broke HTTP, or a size limit was hit.
    Protocol(String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::InvalidRequest(detail) => write!(f, "invalid HTTP request: {detail}"),
            HttpError::Denied(detail) => write!(f, "HTTP request denied by the host: {detail}"),
            HttpError::Timeout(detail) => write!(f, "HTTP request timed out: {detail}"),
            HttpError::Transport(detail) => write!(f, "HTTP connection failed: {detail}"),
            HttpError::Protocol(detail) => write!(f, "HTTP protocol error: {detail}"),
        }
    }
}

impl core::error::Error for HttpError {}

impl From<HttpError> for PluginError {
    /// Timeouts, connection and protocol failures are
    /// [`PluginError::Transient`]; a denied origin is [`PluginError::Config`]
    /// (the operator must allow it); a request the plugin built wrong is
    /// [`PluginError::Internal`].
    fn from(error: HttpError) -> Self {
        let message = error.to_string();
        match error {
            HttpError::Timeout(_) | HttpError::Transport(_) | HttpError::Protocol(_) => {
                PluginError::Transient(message)
            }
            HttpError::Denied(_) => PluginError::Config(message),
            HttpError::InvalidRequest(_) => PluginError::Internal(message),
        }
    }
}
