//! Outbound HTTP for plugins: one blocking call, [`send`], which is one call
//! to the host (`switchboard:http/client@0.1.0`, a package of its own beside
//! the frozen `switchboard:plugin@0.2.0`).
//!
//! The host lets a request through only when its origin (`scheme://host[:port]`)
//! is on the plugin's allow-list in `plugin.toml` (operators may extend it at
//! install time); anything else fails with [`HttpError::Denied`]. The host also
//! bounds the call's time, so a plugin need not set a timeout, though it may.
//! Bodies are whole in both directions and the host caps their size.
//!
//! Calling [`send`] makes the component import `switchboard:http`: hosts older
//! than the SDK that introduced it do not load such a component. Plugins
//! built on earlier SDKs import `wasi:http/outgoing-handler@0.2` instead,
//! which the host still serves with the same checks.
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

mod message;
mod transport;

pub use message::{HttpError, Request, Response};

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
    use crate::PluginError;

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
