//! Outbound HTTP for plugins: one blocking call, [`send`], over
//! `wasi:http/outgoing-handler`.
//!
//! The host lets a request through only when its origin (`scheme://host[:port]`)
//! is on the plugin's allow-list in `plugin.toml` (operators may extend it at
//! install time); anything else fails with [`HttpError::Denied`]. The host also
//! bounds the call's time, so a plugin need not set a timeout, though it may.
//!
//! ```no_run
//! use switchboard_sdk::http::{self, Request};
//!
//! # fn demo() -> Result<(), switchboard_sdk::PluginError> {
//! let response = http::send(
//!     Request::post("https://api.example.com/v1/messages")
//!         .bearer_auth("token")
//!         .json(r#"{"to":"+15551234567","text":"hi"}"#),
//! )?;
//! if !response.is_success() {
//!     return Err(response.failure("provider refused the message"));
//! }
//! # Ok(())
//! # }
//! ```

mod transport;

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
    /// Gives up on connecting, and on waiting for the first byte of the
    /// response, after this many milliseconds; `None` leaves it to the host.
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

/// Sends `request` and waits for the whole response.
///
/// Any status is a response, including 4xx and 5xx: look at
/// [`Response::status`] or use [`Response::failure`].
///
/// # Errors
///
/// [`HttpError`] when there is no response: see its variants.
pub fn send(request: Request) -> Result<Response, HttpError> {
    transport::send(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_form_requests_with_basic_auth() {
        let request = Request::post("https://api.test/x")
            .form([("To", "+1 555"), ("Body", "a&b=c")])
            .basic_auth("AC123", "secret");
        assert_eq!(request.body, b"To=%2B1+555&Body=a%26b%3Dc");
        assert_eq!(
            request.headers,
            vec![
                (
                    "content-type".to_owned(),
                    "application/x-www-form-urlencoded".to_owned()
                ),
                // base64("AC123:secret")
                (
                    "authorization".to_owned(),
                    "Basic QUMxMjM6c2VjcmV0".to_owned()
                ),
            ]
        );
    }

    fn response(status: u16, headers: &[(&str, &str)]) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: Vec::new(),
        }
    }

    #[test]
    fn failures_are_classified_by_status() {
        assert_eq!(
            response(429, &[("Retry-After", "30")]).failure("slow down"),
            PluginError::RateLimited(Some(30))
        );
        assert_eq!(
            response(429, &[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")]).failure("x"),
            PluginError::RateLimited(None)
        );
        assert!(matches!(
            response(503, &[]).failure("down"),
            PluginError::Transient(m) if m == "HTTP 503: down"
        ));
        assert!(matches!(
            response(408, &[]).failure("x"),
            PluginError::Transient(_)
        ));
        assert!(matches!(
            response(400, &[]).failure("21211 invalid number"),
            PluginError::Permanent(m) if m == "HTTP 400: 21211 invalid number"
        ));
    }

    #[test]
    fn http_errors_map_to_plugin_errors() {
        assert!(matches!(
            PluginError::from(HttpError::Denied("http://127.0.0.1:9".into())),
            PluginError::Config(m) if m.contains("denied")
        ));
        assert!(matches!(
            PluginError::from(HttpError::Transport("connection refused".into())),
            PluginError::Transient(_)
        ));
        assert!(matches!(
            PluginError::from(HttpError::InvalidRequest("bad url".into())),
            PluginError::Internal(_)
        ));
    }
}
