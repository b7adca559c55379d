//! What a Graph API error means for the host: retry, wait, fix the config,
//! use a template, or give up.
//!
//! Graph answers errors as
//! `{"error":{"message","type","code","error_subcode","error_data":{"details"}}}`.
//! The code decides, not the HTTP status: WhatsApp answers throttling
//! (130429, 131056) with HTTP 400, so a status-only mapping would give up on
//! a message that only had to wait.
//!
//! | code                                          | error                                 |
//! |-----------------------------------------------|---------------------------------------|
//! | 4, 17, 32, 613, 80007, 130429, 131056         | `RateLimited` (`Retry-After` if sent), any HTTP status |
//! | 131047; 10 with subcode 2018278, 2018108, 2534022 | `WindowClosed`                    |
//! | 10 (other subcodes), 102, 190, 200–299        | `Config` (token or permission)        |
//! | 1, 2, 131000, 131016, or HTTP 5xx             | `Transient`                           |
//! | 551                                           | `Permanent` (person not available)    |
//! | no Graph error: HTTP 429 / 408                | `RateLimited` / `Transient`           |
//! | anything else                                 | `Permanent`, `"code: readable message"` |

use serde::Deserialize;
use switchboard_sdk::PluginError;
use switchboard_sdk::http::Response;

/// Graph codes that mean "slow down", whatever HTTP status carries them.
pub const THROTTLING_CODES: [i64; 7] = [4, 17, 32, 613, 80007, 130429, 131056];

/// Graph codes that mean "the service had a problem, try again".
pub const TRANSIENT_CODES: [i64; 4] = [1, 2, 131000, 131016];

/// WhatsApp: more than 24 hours since the customer last wrote.
pub const WHATSAPP_WINDOW_CLOSED: i64 = 131047;

/// Messenger and Instagram: code 10 with one of these subcodes is a message
/// outside the allowed window.
pub const WINDOW_CLOSED_SUBCODES: [i64; 3] = [2018278, 2018108, 2534022];

/// Messenger: "This person isn't available right now".
pub const PERSON_UNAVAILABLE: i64 = 551;

/// The `error` object of a Graph API error answer.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct GraphError {
    /// Graph's own message.
    #[serde(default)]
    pub message: Option<String>,
    /// `OAuthException`, `GraphMethodException`…
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// The error code (`130429`, `190`…).
    #[serde(default)]
    pub code: Option<i64>,
    /// The finer reason, where Graph gives one (`2018278`).
    #[serde(default)]
    pub error_subcode: Option<i64>,
    /// A message written for end users, where Graph gives one.
    #[serde(default)]
    pub error_user_msg: Option<String>,
    /// `{"details": "…"}` (WhatsApp); sometimes a JSON string of it.
    #[serde(default)]
    pub error_data: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Envelope {
    error: Option<GraphError>,
}

impl GraphError {
    /// The Graph error in an answer body, if there is one.
    pub fn parse(body: &[u8]) -> Option<GraphError> {
        serde_json::from_slice::<Envelope>(body).ok()?.error
    }

    /// `error_data.details`, the most specific text WhatsApp gives.
    pub fn details(&self) -> Option<String> {
        let data = self.error_data.as_ref()?;
        let details = match data {
            serde_json::Value::String(text) => serde_json::from_str::<serde_json::Value>(text)
                .ok()?
                .get("details")?
                .as_str()?
                .to_owned(),
            other => other.get("details")?.as_str()?.to_owned(),
        };
        Some(details).filter(|d| !d.trim().is_empty())
    }

    /// The best text for an operator or agent: details, then the user
    /// message, then Graph's message.
    pub fn readable(&self) -> String {
        self.details()
            .or_else(|| self.error_user_msg.clone().filter(|m| !m.trim().is_empty()))
            .or_else(|| self.message.clone().filter(|m| !m.trim().is_empty()))
            .unwrap_or_else(|| "no message".to_owned())
    }

    /// `code: readable message`, with the subcode when there is one.
    pub fn describe(&self) -> String {
        let text = self.readable();
        match (self.code, self.error_subcode) {
            (Some(code), Some(subcode)) => format!("{code}: {text} (subcode {subcode})"),
            (Some(code), None) => format!("{code}: {text}"),
            (None, _) => text,
        }
    }

    fn is_window_closed(&self) -> bool {
        match self.code {
            Some(WHATSAPP_WINDOW_CLOSED) => true,
            Some(10) => self
                .error_subcode
                .is_some_and(|s| WINDOW_CLOSED_SUBCODES.contains(&s)),
            _ => false,
        }
    }
}

/// What a non-2xx Graph answer means; `retry_after` is `Retry-After` in
/// seconds when the answer had one.
pub fn classify(status: u16, retry_after: Option<u32>, body: &[u8]) -> PluginError {
    let Some(error) = GraphError::parse(body) else {
        let snippet = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        return match status {
            429 => PluginError::RateLimited(retry_after),
            408 | 500..=599 => PluginError::Transient(format!("HTTP {status}: {snippet}")),
            _ => PluginError::Permanent(format!("HTTP {status}: {snippet}")),
        };
    };
    let code = error.code.unwrap_or_default();
    if THROTTLING_CODES.contains(&code) {
        return PluginError::RateLimited(retry_after);
    }
    if error.is_window_closed() {
        let reason = if code == WHATSAPP_WINDOW_CLOSED {
            format!(
                "{code}: more than 24 hours have passed since the customer last wrote; \
                 only an approved template reaches them now ({})",
                error.readable()
            )
        } else {
            format!(
                "{}: the message is outside the allowed messaging window ({})",
                code,
                error.readable()
            )
        };
        return PluginError::WindowClosed(reason);
    }
    if matches!(code, 10 | 102 | 190 | 200..=299) {
        return PluginError::Config(format!(
            "the access token or its permissions were refused: {}",
            error.describe()
        ));
    }
    if status >= 500 || TRANSIENT_CODES.contains(&code) {
        return PluginError::Transient(error.describe());
    }
    if code == PERSON_UNAVAILABLE {
        return PluginError::Permanent(format!(
            "{code}: person not available ({})",
            error.readable()
        ));
    }
    match status {
        429 => PluginError::RateLimited(retry_after),
        408 => PluginError::Transient(error.describe()),
        _ => PluginError::Permanent(error.describe()),
    }
}

/// [`classify`] for a response from `switchboard_sdk::http`.
pub fn failure(response: &Response) -> PluginError {
    classify(response.status, response.retry_after_secs(), &response.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(code: i64, subcode: Option<i64>, message: &str) -> String {
        let subcode = subcode.map_or(String::new(), |s| format!(r#","error_subcode":{s}"#));
        format!(
            r#"{{"error":{{"message":"{message}","type":"OAuthException","code":{code}{subcode},"fbtrace_id":"Az8"}}}}"#
        )
    }

    #[test]
    fn throttling_codes_are_rate_limited_whatever_the_status() {
        for code in THROTTLING_CODES {
            for status in [400, 403, 429, 500] {
                assert_eq!(
                    classify(status, None, graph(code, None, "slow down").as_bytes()),
                    PluginError::RateLimited(None),
                    "code {code} on HTTP {status}"
                );
            }
        }
        // WhatsApp's throughput limit arrives as HTTP 400.
        let body = r#"{"error":{"message":"(#130429) Rate limit hit","type":"OAuthException","code":130429,"error_data":{"messaging_product":"whatsapp","details":"Cloud API message throughput has been reached."},"fbtrace_id":"A"}}"#;
        assert_eq!(
            classify(400, Some(30), body.as_bytes()),
            PluginError::RateLimited(Some(30))
        );
    }

    #[test]
    fn window_errors_are_window_closed() {
        let whatsapp = r#"{"error":{"message":"(#131047) Re-engagement message","type":"OAuthException","code":131047,"error_data":{"messaging_product":"whatsapp","details":"Message failed to send because more than 24 hours have passed since the customer last replied to this number."}}}"#;
        let PluginError::WindowClosed(reason) = classify(400, None, whatsapp.as_bytes()) else {
            panic!("131047 must be WindowClosed");
        };
        assert!(reason.starts_with("131047: "), "{reason}");
        assert!(reason.contains("template"), "{reason}");

        for subcode in WINDOW_CLOSED_SUBCODES {
            let body = graph(
                10,
                Some(subcode),
                "(#10) This message is sent outside of allowed window.",
            );
            assert!(
                matches!(classify(400, None, body.as_bytes()), PluginError::WindowClosed(r) if r.contains("outside")),
                "subcode {subcode}"
            );
        }
    }

    #[test]
    fn token_and_permission_errors_are_config() {
        for (code, subcode) in [
            (190, Some(463)),
            (200, None),
            (230, None),
            (299, None),
            (10, None),
            (102, None),
        ] {
            let body = graph(code, subcode, "Error validating access token");
            let error = classify(400, None, body.as_bytes());
            assert!(
                matches!(&error, PluginError::Config(m) if m.contains(&format!("{code}: "))),
                "{code}: {error:?}"
            );
        }
        // Code 10 with another subcode is a permission problem, not a window.
        let body = graph(10, Some(1234), "(#10) Application does not have permission");
        assert!(matches!(
            classify(403, None, body.as_bytes()),
            PluginError::Config(_)
        ));
    }

    #[test]
    fn server_errors_and_transient_codes_are_transient() {
        for code in TRANSIENT_CODES {
            assert!(
                matches!(
                    classify(400, None, graph(code, None, "Something went wrong").as_bytes()),
                    PluginError::Transient(m) if m.starts_with(&format!("{code}: "))
                ),
                "code {code}"
            );
        }
        assert!(matches!(
            classify(503, None, b"<html>Service Unavailable</html>"),
            PluginError::Transient(m) if m.contains("503")
        ));
        assert!(matches!(
            classify(500, None, graph(100, None, "Internal").as_bytes()),
            PluginError::Transient(_)
        ));
    }

    #[test]
    fn other_client_errors_are_permanent_with_code_and_readable_text() {
        let body = r#"{"error":{"message":"(#100) Invalid parameter","type":"OAuthException","code":100,"error_data":{"messaging_product":"whatsapp","details":"Parameter 'to' is not a valid phone number"}}}"#;
        assert_eq!(
            classify(400, None, body.as_bytes()),
            PluginError::Permanent("100: Parameter 'to' is not a valid phone number".into())
        );
        let unavailable = graph(551, None, "This person isn't available right now.");
        assert!(matches!(
            classify(400, None, unavailable.as_bytes()),
            PluginError::Permanent(m) if m.starts_with("551: person not available")
        ));
        assert!(matches!(
            classify(404, None, b"not json"),
            PluginError::Permanent(m) if m == "HTTP 404: not json"
        ));
        assert_eq!(
            classify(429, Some(5), b""),
            PluginError::RateLimited(Some(5))
        );
    }

    #[test]
    fn details_may_come_as_a_json_string() {
        let body = r#"{"error":{"message":"outer","code":100,"error_data":"{\"details\":\"inner detail\"}"}}"#;
        let error = GraphError::parse(body.as_bytes()).unwrap();
        assert_eq!(error.readable(), "inner detail");
        let plain = GraphError::parse(graph(100, Some(33), "msg").as_bytes()).unwrap();
        assert_eq!(plain.describe(), "100: msg (subcode 33)");
    }
}
