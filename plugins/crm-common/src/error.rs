//! What a CRM's HTTP answer means for the host: retry, wait, fix the
//! credentials, or give up.
//!
//! | answer                          | error |
//! |---------------------------------|-------|
//! | 401, 403 (after the one refresh an OAuth plugin tries) | `Unauthorized` |
//! | 429                             | `RateLimited` with `Retry-After` in seconds, if sent |
//! | 408, 5xx, no answer (timeout, connection) | `Transient` |
//! | any other 4xx (validation, unknown field, duplicate) | `Permanent` |
//!
//! The host retries `Transient` and `RateLimited` write-backs with backoff and
//! never counts them against the plugin; `Permanent` makes a dead letter.

use switchboard_sdk::PluginError;
use switchboard_sdk::http::Response;

/// At most this much of an answer body goes into an error message.
const SNIPPET: usize = 300;

/// The start of an answer body, as text, for error messages.
pub fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(SNIPPET) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// The error a non-2xx answer means; `detail` is the CRM's own error text.
pub fn classify(status: u16, retry_after: Option<u32>, detail: &str) -> PluginError {
    match status {
        401 | 403 => PluginError::Unauthorized(format!("HTTP {status}: {detail}")),
        429 => PluginError::RateLimited(retry_after),
        408 | 500..=599 => PluginError::Transient(format!("HTTP {status}: {detail}")),
        _ => PluginError::Permanent(format!("HTTP {status}: {detail}")),
    }
}

/// [`classify`] for a response, with the start of its body as the detail.
pub fn failure(response: &Response) -> PluginError {
    classify(
        response.status,
        response.retry_after_secs(),
        &snippet(&response.body),
    )
}

/// A successful answer's body as `T`.
///
/// # Errors
///
/// [`PluginError::Internal`] naming `what` when the body is not a `T` (the
/// CRM answered something this plugin does not understand; not retried).
pub fn parse_json<T: serde::de::DeserializeOwned>(
    response: &Response,
    what: &str,
) -> Result<T, PluginError> {
    serde_json::from_slice(&response.body).map_err(|e| {
        PluginError::Internal(format!(
            "unreadable answer to {what}: {e}: {}",
            snippet(&response.body)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn statuses_map_to_errors() {
        assert!(matches!(
            failure(&response(401, &[], "expired")),
            PluginError::Unauthorized(m) if m == "HTTP 401: expired"
        ));
        assert!(matches!(
            failure(&response(403, &[], "missing scopes")),
            PluginError::Unauthorized(_)
        ));
        assert_eq!(
            failure(&response(429, &[("retry-after", "10")], "")),
            PluginError::RateLimited(Some(10))
        );
        assert_eq!(
            failure(&response(429, &[], "")),
            PluginError::RateLimited(None)
        );
        for status in [408, 500, 502, 503, 504] {
            assert!(matches!(
                failure(&response(status, &[], "down")),
                PluginError::Transient(_)
            ));
        }
        for status in [400, 404, 409, 422] {
            assert!(matches!(
                failure(&response(status, &[], "{\"message\":\"bad\"}")),
                PluginError::Permanent(m) if m.contains("bad")
            ));
        }
    }

    #[test]
    fn long_bodies_are_cut() {
        let long = "é".repeat(1000);
        let cut = snippet(long.as_bytes());
        assert_eq!(cut.chars().count(), SNIPPET + 1);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn unreadable_answers_are_internal() {
        let answer = parse_json::<serde_json::Map<String, serde_json::Value>>(
            &response(200, &[], "<html>"),
            "the search",
        );
        assert!(matches!(answer, Err(PluginError::Internal(m)) if m.contains("the search")));
    }
}
