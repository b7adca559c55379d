//! OAuth 2.0 for XOAUTH2 (Gmail, Microsoft 365): an access token from the
//! configured refresh token, cached in the plugin's key-value store until a
//! minute before it expires. A refresh token the provider rotates is kept
//! too, beside the configured one it replaces.
//!
//! Calls go through [`Store`] and a send function, so the flow is tested
//! natively.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use switchboard_sdk::PluginError;
use switchboard_sdk::http::{HttpError, Request, Response};

use crate::settings::OAuth;
use crate::store::Store;

/// A token is renewed this long before it expires.
const RENEW_EARLY_MS: u64 = 60_000;
/// Lifetime assumed when the provider does not say.
const DEFAULT_LIFETIME_SECS: u64 = 3600;

#[derive(Debug, Serialize, Deserialize)]
struct Cached {
    token: String,
    expires_at_ms: u64,
}

/// A short name for this client and refresh token, so a changed config never
/// uses another's cache.
fn fingerprint(oauth: &OAuth) -> String {
    let digest = Sha256::digest(
        format!(
            "{}\n{}\n{}",
            oauth.token_url, oauth.client_id, oauth.refresh_token
        )
        .as_bytes(),
    );
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

fn access_key(oauth: &OAuth) -> String {
    format!("oauth:access:{}", fingerprint(oauth))
}

fn refresh_key(oauth: &OAuth) -> String {
    format!("oauth:refresh:{}", fingerprint(oauth))
}

/// A valid access token: the cached one, else a fresh one.
///
/// # Errors
///
/// [`PluginError::Config`] when the provider refuses the client or the
/// refresh token; [`PluginError::Transient`] or
/// [`PluginError::RateLimited`] when it is unavailable.
pub fn access_token(
    oauth: &OAuth,
    store: &mut dyn Store,
    send: &mut dyn FnMut(Request) -> Result<Response, HttpError>,
    now_ms: u64,
) -> Result<String, PluginError> {
    if let Some(cached) = store
        .get(&access_key(oauth))
        .and_then(|bytes| serde_json::from_slice::<Cached>(&bytes).ok())
        && cached.expires_at_ms > now_ms + RENEW_EARLY_MS
    {
        return Ok(cached.token);
    }
    let refresh_token = store
        .get(&refresh_key(oauth))
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .unwrap_or_else(|| oauth.refresh_token.clone());
    let response = send(token_request(oauth, &refresh_token))?;
    let granted = parse_token_response(&response, now_ms)?;
    let cached = Cached {
        token: granted.access_token.clone(),
        expires_at_ms: granted.expires_at_ms,
    };
    if let Ok(bytes) = serde_json::to_vec(&cached) {
        store.set(&access_key(oauth), &bytes);
    }
    if let Some(rotated) = granted.refresh_token.filter(|r| *r != refresh_token) {
        store.set(&refresh_key(oauth), rotated.as_bytes());
    }
    Ok(granted.access_token)
}

/// Drops the cached access token (the server refused it).
pub fn forget(oauth: &OAuth, store: &mut dyn Store) {
    store.delete(&access_key(oauth));
}

/// The refresh request (RFC 6749 §6).
pub fn token_request(oauth: &OAuth, refresh_token: &str) -> Request {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", oauth.client_id.as_str()),
    ];
    if let Some(secret) = &oauth.client_secret {
        form.push(("client_secret", secret.as_str()));
    }
    if let Some(scope) = &oauth.scope {
        form.push(("scope", scope.as_str()));
    }
    Request::post(oauth.token_url.as_str())
        .header("accept", "application/json")
        .form(form)
}

/// What the token endpoint granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    pub access_token: String,
    pub expires_at_ms: u64,
    pub refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: Option<String>,
    expires_in: Option<serde_json::Value>,
    refresh_token: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Reads the token endpoint's answer.
///
/// # Errors
///
/// As [`access_token`].
pub fn parse_token_response(response: &Response, now_ms: u64) -> Result<Granted, PluginError> {
    let body: Option<TokenBody> = serde_json::from_slice(&response.body).ok();
    if !response.is_success() {
        let detail = body
            .as_ref()
            .map(|b| {
                format!(
                    "{} {}",
                    b.error.as_deref().unwrap_or_default(),
                    b.error_description.as_deref().unwrap_or_default()
                )
                .trim()
                .to_owned()
            })
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "no details".to_owned());
        return Err(match response.status {
            400 | 401 | 403 => {
                PluginError::Config(format!("OAuth token refresh refused: {detail}"))
            }
            _ => response.failure(format!("OAuth token endpoint: {detail}")),
        });
    }
    let body = body.ok_or_else(|| {
        PluginError::Transient("OAuth token endpoint answered something other than JSON".into())
    })?;
    let access_token = body.access_token.filter(|t| !t.is_empty()).ok_or_else(|| {
        PluginError::Transient("OAuth token endpoint gave no access_token".into())
    })?;
    // `expires_in` is a number, or a string of one at some providers.
    let lifetime = match body.expires_in {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .unwrap_or(DEFAULT_LIFETIME_SECS);
    Ok(Granted {
        access_token,
        expires_at_ms: now_ms.saturating_add(lifetime.saturating_mul(1000)),
        refresh_token: body.refresh_token.filter(|t| !t.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::testing::Memory;

    fn oauth() -> OAuth {
        OAuth {
            token_url: "https://oauth2.googleapis.com/token".into(),
            client_id: "client".into(),
            client_secret: Some("shh".into()),
            refresh_token: "refresh-1".into(),
            scope: None,
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
    fn tokens_are_refreshed_then_cached_until_shortly_before_expiry() {
        let mut store = Memory::default();
        let requests = RefCell::new(Vec::new());
        let mut send = |request: Request| {
            requests
                .borrow_mut()
                .push(String::from_utf8(request.body.clone()).unwrap());
            Ok(answer(
                200,
                r#"{"access_token":"ya29.a","expires_in":3599,"token_type":"Bearer"}"#,
            ))
        };
        let token = access_token(&oauth(), &mut store, &mut send, 1_000).unwrap();
        assert_eq!(token, "ya29.a");
        let again = access_token(&oauth(), &mut store, &mut send, 1_000 + 3_000_000).unwrap();
        assert_eq!(again, "ya29.a");
        assert_eq!(requests.borrow().len(), 1);
        {
            let first = &requests.borrow()[0];
            assert!(first.contains("grant_type=refresh_token"));
            assert!(first.contains("refresh_token=refresh-1"));
            assert!(first.contains("client_secret=shh"));
        }
        // Within the last minute it is renewed.
        access_token(&oauth(), &mut store, &mut send, 1_000 + 3_560_000).unwrap();
        assert_eq!(requests.borrow().len(), 2);
        forget(&oauth(), &mut store);
        access_token(&oauth(), &mut store, &mut send, 1_000).unwrap();
        assert_eq!(requests.borrow().len(), 3);
    }

    #[test]
    fn rotated_refresh_tokens_are_used_next_time() {
        let mut store = Memory::default();
        let bodies = RefCell::new(Vec::new());
        let mut send = |request: Request| {
            bodies
                .borrow_mut()
                .push(String::from_utf8(request.body.clone()).unwrap());
            Ok(answer(
                200,
                r#"{"access_token":"t","expires_in":"10","refresh_token":"refresh-2"}"#,
            ))
        };
        access_token(&oauth(), &mut store, &mut send, 0).unwrap();
        access_token(&oauth(), &mut store, &mut send, 0).unwrap();
        let bodies = bodies.borrow();
        assert!(bodies[1].contains("refresh_token=refresh-2"), "{bodies:?}");
    }

    #[test]
    fn refusals_are_config_errors_and_outages_transient() {
        let mut store = Memory::default();
        let refused = access_token(
            &oauth(),
            &mut store,
            &mut |_| {
                Ok(answer(
                    400,
                    r#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#,
                ))
            },
            0,
        );
        assert!(
            matches!(&refused, Err(PluginError::Config(m)) if m.contains("invalid_grant")),
            "{refused:?}"
        );
        assert!(matches!(
            access_token(&oauth(), &mut store, &mut |_| Ok(answer(503, "")), 0),
            Err(PluginError::Transient(_))
        ));
        assert!(matches!(
            access_token(
                &oauth(),
                &mut store,
                &mut |_| Err(HttpError::Timeout("x".into())),
                0
            ),
            Err(PluginError::Transient(_))
        ));
        assert!(matches!(
            access_token(&oauth(), &mut store, &mut |_| Ok(answer(200, "<html>")), 0),
            Err(PluginError::Transient(_))
        ));
    }
}
