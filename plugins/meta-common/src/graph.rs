//! Calls to the Graph API: where (`{api_base}/{graph_version}/…`), with which
//! token (`Authorization: Bearer`), and what the answer means.
//!
//! Building requests and reading answers are plain functions; [`Graph::call`]
//! is the one place that sends, through `switchboard_sdk::http` (only to the
//! plugin's allowed hosts).

use serde::de::DeserializeOwned;
use switchboard_sdk::http::{self, Request, Response};
use switchboard_sdk::{PluginError, config};

use crate::error;

/// `api_base` when the operator sets none.
pub const DEFAULT_API_BASE: &str = "https://graph.facebook.com";
/// `graph_version` when the operator sets none.
pub const DEFAULT_GRAPH_VERSION: &str = "v21.0";

/// Where and as whom to call the Graph API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Graph {
    /// `https://graph.facebook.com`, or a stand-in in tests; no trailing slash.
    pub api_base: String,
    /// `v21.0`.
    pub version: String,
    /// The system-user or page access token.
    pub access_token: String,
}

impl Graph {
    /// A client for this base, version and token.
    pub fn new(api_base: &str, version: &str, access_token: &str) -> Graph {
        Graph {
            api_base: api_base.trim_end_matches('/').to_owned(),
            version: version.trim_matches('/').to_owned(),
            access_token: access_token.to_owned(),
        }
    }

    /// Reads `api_base`, `graph_version` and `access_token` from the config.
    ///
    /// # Errors
    ///
    /// [`PluginError::Config`] when `access_token` is not set.
    pub fn from_config() -> Result<Graph, PluginError> {
        Ok(Graph::new(
            &config::get_or("api_base", DEFAULT_API_BASE),
            &config::get_or("graph_version", DEFAULT_GRAPH_VERSION),
            &config::require("access_token")?,
        ))
    }

    /// `{api_base}/{version}/{path}`; `path` may carry a query string.
    pub fn url(&self, path: &str) -> String {
        format!(
            "{}/{}/{}",
            self.api_base,
            self.version,
            path.trim_start_matches('/')
        )
    }

    /// `GET {url(path)}` with the bearer token.
    pub fn get(&self, path: &str) -> Request {
        Request::get(self.url(path))
            .bearer_auth(&self.access_token)
            .header("accept", "application/json")
    }

    /// `POST {url(path)}` with the bearer token and a JSON body.
    pub fn post_json(&self, path: &str, body: &serde_json::Value) -> Request {
        Request::post(self.url(path))
            .bearer_auth(&self.access_token)
            .header("accept", "application/json")
            .json(body.to_string())
    }

    /// The `Authorization` header this client sends, for download requests
    /// the host makes on the plugin's behalf.
    pub fn authorization(&self) -> (String, String) {
        (
            "Authorization".to_owned(),
            format!("Bearer {}", self.access_token),
        )
    }

    /// Sends `request` and reads a successful answer as `T`.
    ///
    /// # Errors
    ///
    /// The transport failure ([`PluginError::Transient`]…), the Graph error
    /// ([`error::classify`]), or [`PluginError::Internal`] for an unreadable
    /// success.
    pub fn call<T: DeserializeOwned>(&self, request: Request) -> Result<T, PluginError> {
        parse(&http::send(request)?)
    }
}

/// A Graph answer as `T`, or the error it means.
///
/// # Errors
///
/// Non-2xx answers through [`error::failure`]; a 2xx that is not a `T` is
/// [`PluginError::Internal`] (not retried: a send may have gone out).
pub fn parse<T: DeserializeOwned>(response: &Response) -> Result<T, PluginError> {
    if !response.is_success() {
        return Err(error::failure(response));
    }
    serde_json::from_slice(&response.body).map_err(|e| {
        PluginError::Internal(format!("the Graph API answered something unreadable: {e}"))
    })
}

/// Percent-encodes one path segment or query value (ids are digits, but a
/// stray `/` or `?` must not change the request's target).
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn urls_and_bearer_auth() {
        let graph = Graph::new("http://127.0.0.1:9/", "/v21.0/", "EAAG");
        assert_eq!(
            graph.url("/1234/messages"),
            "http://127.0.0.1:9/v21.0/1234/messages"
        );
        let post = graph.post_json("1234/messages", &serde_json::json!({"a": 1}));
        assert_eq!(post.method, "POST");
        assert_eq!(post.body, br#"{"a":1}"#);
        assert!(
            post.headers
                .contains(&("authorization".into(), "Bearer EAAG".into()))
        );
        assert!(
            post.headers
                .contains(&("content-type".into(), "application/json".into()))
        );
        let get = graph.get("m1?fields=url");
        assert_eq!(get.method, "GET");
        assert_eq!(get.url, "http://127.0.0.1:9/v21.0/m1?fields=url");
        assert_eq!(
            graph.authorization(),
            ("Authorization".into(), "Bearer EAAG".into())
        );
    }

    #[test]
    fn answers_are_parsed_or_mapped() {
        #[derive(Deserialize, Debug, PartialEq)]
        struct Sent {
            message_id: String,
        }
        assert_eq!(
            parse::<Sent>(&response(200, r#"{"recipient_id":"1","message_id":"m_1"}"#)),
            Ok(Sent {
                message_id: "m_1".into()
            })
        );
        assert!(matches!(
            parse::<Sent>(&response(200, "<html>")),
            Err(PluginError::Internal(_))
        ));
        assert_eq!(
            parse::<Sent>(&response(
                400,
                r#"{"error":{"message":"(#130429) Rate limit hit","code":130429}}"#
            )),
            Err(PluginError::RateLimited(None))
        );
    }

    #[test]
    fn encoding_keeps_ids_and_escapes_the_rest() {
        assert_eq!(encode("1234567890"), "1234567890");
        assert_eq!(encode("a/b?c=d&e f"), "a%2Fb%3Fc%3Dd%26e%20f");
        assert_eq!(encode("name,language"), "name%2Clanguage");
    }
}
