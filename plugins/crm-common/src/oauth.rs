//! The OAuth 2.0 refresh-token flow (Salesforce, Zoho CRM) with the access
//! token cached in the plugin's kv.
//!
//! The operator gives the plugin a long-lived refresh token (a secret) and
//! the client's id and secret. The plugin trades them for an access token at
//! the token endpoint (`POST {token_url}`, form body
//! `grant_type=refresh_token&refresh_token=…&client_id=…&client_secret=…`)
//! and keeps the answer in kv under [`OAuth::cache_key`], so the next call —
//! on another fresh instance — reuses it. Every API call goes through
//! [`OAuth::send`]: an answer of 401 means the token expired or was revoked,
//! so the plugin forgets it, refreshes once and sends again; a second 401 is
//! the caller's to map (`Unauthorized`).
//!
//! The token answer also says where the API lives for this organization:
//! Salesforce's `instance_url`, Zoho's `api_domain`. It is kept with the
//! token ([`Token::api_base`]).

use serde::{Deserialize, Serialize};
use switchboard_sdk::PluginError;
use switchboard_sdk::http::{Request, Response};

use crate::error::snippet;
use crate::store::{Store, Transport};

/// A token is refreshed this long before the expiry the provider gave.
const EXPIRY_MARGIN_MS: u64 = 60_000;

/// An access token and what came with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    /// The bearer token.
    pub access_token: String,
    /// Where the organization's API lives (`instance_url`, `api_domain`),
    /// when the token endpoint said.
    #[serde(default)]
    pub api_base: Option<String>,
    /// When it expires, milliseconds since the epoch, when the provider said
    /// (`expires_in`); otherwise it is used until an API call answers 401.
    #[serde(default)]
    pub expires_at_ms: Option<u64>,
}

impl Token {
    /// Whether the token is still good at `now_ms`, with a margin.
    pub fn is_fresh(&self, now_ms: u64) -> bool {
        self.expires_at_ms
            .is_none_or(|at| now_ms.saturating_add(EXPIRY_MARGIN_MS) < at)
    }
}

/// The token endpoint's answer, success or error.
#[derive(Debug, Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    instance_url: Option<String>,
    api_domain: Option<String>,
    expires_in: Option<serde_json::Value>,
    error: Option<String>,
    error_description: Option<String>,
}

/// One client of one token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuth {
    /// `https://login.salesforce.com/services/oauth2/token`…
    pub token_url: String,
    /// The connected app's client id (consumer key).
    pub client_id: String,
    /// The client secret.
    pub client_secret: String,
    /// The long-lived refresh token.
    pub refresh_token: String,
}

impl OAuth {
    /// Where the access token is cached: per token endpoint and client, so
    /// pointing the plugin at another organization never reuses a token
    /// (or an API address) of the previous one.
    pub fn cache_key(&self) -> String {
        format!("oauth-token:{}:{}", self.token_url, self.client_id)
    }

    /// The refresh request.
    pub fn refresh_request(&self) -> Request {
        Request::post(&self.token_url)
            .header("accept", "application/json")
            .form([
                ("grant_type", "refresh_token"),
                ("refresh_token", self.refresh_token.as_str()),
                ("client_id", self.client_id.as_str()),
                ("client_secret", self.client_secret.as_str()),
            ])
    }

    /// The cached token, if it is still fresh.
    pub fn cached(&self, store: &impl Store, now_ms: u64) -> Option<Token> {
        let bytes = store.get(&self.cache_key())?;
        serde_json::from_slice::<Token>(&bytes)
            .ok()
            .filter(|token| token.is_fresh(now_ms))
    }

    /// Forgets the cached token (the API refused it).
    pub fn forget(&self, store: &mut impl Store) {
        store.delete(&self.cache_key());
    }

    /// Trades the refresh token for a new access token and caches it.
    ///
    /// # Errors
    ///
    /// See [`parse_token_answer`]; a cache that cannot be written is only
    /// logged by the caller's next refresh, never an error here.
    pub fn refresh(
        &self,
        store: &mut impl Store,
        http: &mut impl Transport,
        now_ms: u64,
    ) -> Result<Token, PluginError> {
        let response = http.send(self.refresh_request())?;
        let token = parse_token_answer(&response, now_ms)?;
        if let Ok(bytes) = serde_json::to_vec(&token) {
            // A full kv only costs a refresh per call; the call still works.
            let _ = store.set(&self.cache_key(), &bytes);
        }
        Ok(token)
    }

    /// The cached token, or a new one.
    ///
    /// # Errors
    ///
    /// As [`OAuth::refresh`].
    pub fn token(
        &self,
        store: &mut impl Store,
        http: &mut impl Transport,
        now_ms: u64,
    ) -> Result<Token, PluginError> {
        match self.cached(store, now_ms) {
            Some(token) => Ok(token),
            None => self.refresh(store, http, now_ms),
        }
    }

    /// Sends the request `build` makes with a token; on 401 refreshes once
    /// and sends again. Answers whatever status came last: a 401 after the
    /// refresh is the caller's to report.
    ///
    /// # Errors
    ///
    /// The refresh failed, `build` failed (a token that cannot be used), or
    /// no answer came.
    pub fn send(
        &self,
        store: &mut impl Store,
        http: &mut impl Transport,
        now_ms: u64,
        mut build: impl FnMut(&Token) -> Result<Request, PluginError>,
    ) -> Result<Response, PluginError> {
        let token = self.token(store, http, now_ms)?;
        let response = http.send(build(&token)?)?;
        if response.status != 401 {
            return Ok(response);
        }
        self.forget(store);
        let token = self.refresh(store, http, now_ms)?;
        http.send(build(&token)?)
    }
}

/// Reads the token endpoint's answer.
///
/// # Errors
///
/// - [`PluginError::Unauthorized`]: the endpoint refused the refresh token or
///   the client (`invalid_grant`, `invalid_client`, `invalid_code`…, with
///   HTTP 400 or 401, or — as Zoho does — HTTP 200 with an `error`).
/// - [`PluginError::RateLimited`] on 429, [`PluginError::Transient`] on 5xx.
/// - [`PluginError::Internal`] for a success without `access_token`.
pub fn parse_token_answer(response: &Response, now_ms: u64) -> Result<Token, PluginError> {
    let answer = serde_json::from_slice::<TokenAnswer>(&response.body).ok();
    let refused = |answer: &TokenAnswer| {
        let error = answer.error.as_deref().unwrap_or("refused");
        match answer.error_description.as_deref() {
            Some(description) => format!("the token endpoint refused: {error}: {description}"),
            None => format!("the token endpoint refused: {error}"),
        }
    };
    match (response.status, answer) {
        (429, _) => Err(PluginError::RateLimited(response.retry_after_secs())),
        (408 | 500..=599, _) => Err(PluginError::Transient(format!(
            "the token endpoint answered HTTP {}: {}",
            response.status,
            snippet(&response.body)
        ))),
        (200..=299, Some(answer)) if answer.error.is_none() => {
            let access_token = answer
                .access_token
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    PluginError::Internal("the token endpoint answered no access_token".into())
                })?;
            let expires_in = answer.expires_in.as_ref().and_then(|v| match v {
                serde_json::Value::Number(n) => n.as_u64(),
                serde_json::Value::String(s) => s.parse().ok(),
                _ => None,
            });
            Ok(Token {
                access_token,
                api_base: answer
                    .instance_url
                    .or(answer.api_domain)
                    .map(|base| base.trim_end_matches('/').to_owned())
                    .filter(|base| !base.is_empty()),
                expires_at_ms: expires_in.map(|secs| now_ms.saturating_add(secs * 1000)),
            })
        }
        (200..=299 | 400 | 401 | 403, Some(answer)) if answer.error.is_some() => {
            Err(PluginError::Unauthorized(refused(&answer)))
        }
        (400 | 401 | 403, _) => Err(PluginError::Unauthorized(format!(
            "the token endpoint answered HTTP {}: {}",
            response.status,
            snippet(&response.body)
        ))),
        (status, _) => Err(PluginError::Permanent(format!(
            "the token endpoint answered HTTP {status}: {}",
            snippet(&response.body)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MemoryStore, ScriptedTransport};

    fn oauth() -> OAuth {
        OAuth {
            token_url: "http://127.0.0.1:9/services/oauth2/token".into(),
            client_id: "cid".into(),
            client_secret: "s&cret".into(),
            refresh_token: "rt".into(),
        }
    }

    fn answer(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn the_refresh_request_is_a_form_post() {
        let request = oauth().refresh_request();
        assert_eq!(request.method, "POST");
        assert_eq!(request.url, "http://127.0.0.1:9/services/oauth2/token");
        assert_eq!(
            String::from_utf8(request.body).unwrap(),
            "grant_type=refresh_token&refresh_token=rt&client_id=cid&client_secret=s%26cret"
        );
        assert!(request.headers.contains(&(
            "content-type".into(),
            "application/x-www-form-urlencoded".into()
        )));
    }

    #[test]
    fn token_answers_are_read() {
        let salesforce = r#"{"access_token":"00D!AQ","signature":"x","scope":"api refresh_token","instance_url":"https://acme.my.salesforce.com/","id":"https://login.salesforce.com/id/00D/005","token_type":"Bearer","issued_at":"1700000000000"}"#;
        assert_eq!(
            parse_token_answer(&answer(200, salesforce), 1_000),
            Ok(Token {
                access_token: "00D!AQ".into(),
                api_base: Some("https://acme.my.salesforce.com".into()),
                expires_at_ms: None,
            })
        );
        let zoho = r#"{"access_token":"1000.abc","api_domain":"https://www.zohoapis.eu","token_type":"Bearer","expires_in":3600}"#;
        assert_eq!(
            parse_token_answer(&answer(200, zoho), 1_000),
            Ok(Token {
                access_token: "1000.abc".into(),
                api_base: Some("https://www.zohoapis.eu".into()),
                expires_at_ms: Some(3_601_000),
            })
        );
    }

    #[test]
    fn token_errors_are_classified() {
        for (status, body) in [
            (
                400,
                r#"{"error":"invalid_grant","error_description":"expired access/refresh token"}"#,
            ),
            (200, r#"{"error":"invalid_code"}"#),
            (401, r#"{"error":"invalid_client"}"#),
            (400, "<html>bad</html>"),
        ] {
            assert!(
                matches!(
                    parse_token_answer(&answer(status, body), 0),
                    Err(PluginError::Unauthorized(_))
                ),
                "{status} {body}"
            );
        }
        assert!(matches!(
            parse_token_answer(&answer(400, r#"{"error":"invalid_grant","error_description":"expired"}"#), 0),
            Err(PluginError::Unauthorized(m)) if m.ends_with("invalid_grant: expired")
        ));
        assert!(matches!(
            parse_token_answer(&answer(503, "down"), 0),
            Err(PluginError::Transient(_))
        ));
        assert_eq!(
            parse_token_answer(&answer(429, ""), 0),
            Err(PluginError::RateLimited(None))
        );
        assert!(matches!(
            parse_token_answer(&answer(200, r#"{"token_type":"Bearer"}"#), 0),
            Err(PluginError::Internal(_))
        ));
    }

    #[test]
    fn tokens_are_cached_until_they_expire() {
        let oauth = oauth();
        let mut store = MemoryStore::default();
        let mut http = ScriptedTransport::default();
        http.respond(200, r#"{"access_token":"t1","expires_in":3600}"#)
            .respond(200, r#"{"access_token":"t2","expires_in":3600}"#);
        assert_eq!(
            oauth.token(&mut store, &mut http, 0).unwrap().access_token,
            "t1"
        );
        assert_eq!(
            oauth
                .token(&mut store, &mut http, 3_000_000)
                .unwrap()
                .access_token,
            "t1"
        );
        assert_eq!(http.requests.len(), 1);
        // Within the margin of the expiry: refreshed.
        assert_eq!(
            oauth
                .token(&mut store, &mut http, 3_550_000)
                .unwrap()
                .access_token,
            "t2"
        );
        assert_eq!(http.requests.len(), 2);
        assert!(store.0.contains_key(&oauth.cache_key()));
    }

    #[test]
    fn a_401_refreshes_once_and_sends_again() {
        let oauth = oauth();
        let mut store = MemoryStore::default();
        let cached = Token {
            access_token: "old".into(),
            api_base: Some("https://old.example".into()),
            expires_at_ms: None,
        };
        store
            .0
            .insert(oauth.cache_key(), serde_json::to_vec(&cached).unwrap());
        let mut http = ScriptedTransport::default();
        http.respond(401, r#"[{"errorCode":"INVALID_SESSION_ID"}]"#)
            .respond(
                200,
                r#"{"access_token":"new","instance_url":"https://new.example"}"#,
            )
            .respond(200, "{}");
        let build = |token: &Token| {
            Ok(
                Request::get(format!("{}/x", token.api_base.as_deref().unwrap()))
                    .bearer_auth(&token.access_token),
            )
        };
        let response = oauth.send(&mut store, &mut http, 0, build).unwrap();
        assert_eq!(response.status, 200);
        let urls: Vec<_> = http.requests.iter().map(|r| r.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "https://old.example/x",
                "http://127.0.0.1:9/services/oauth2/token",
                "https://new.example/x"
            ]
        );
        assert!(
            http.requests[2]
                .headers
                .contains(&("authorization".into(), "Bearer new".into()))
        );
        assert_eq!(oauth.cached(&store, 0).unwrap().access_token, "new");

        // A second 401 is answered as it is.
        http.respond(401, "[]")
            .respond(200, r#"{"access_token":"newer"}"#)
            .respond(401, "[]");
        let response = oauth.send(&mut store, &mut http, 0, build_any).unwrap();
        assert_eq!(response.status, 401);
    }

    fn build_any(token: &Token) -> Result<Request, PluginError> {
        Ok(Request::get("https://api.example/x").bearer_auth(&token.access_token))
    }

    #[test]
    fn another_client_does_not_reuse_the_token() {
        let mut other = oauth();
        other.client_id = "other".into();
        assert_ne!(oauth().cache_key(), other.cache_key());
    }
}
