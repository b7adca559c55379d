//! A stand-in OAuth 2.0 authorization server for the e-mail connector's XOAUTH2
//! tests, playing both parts a real identity provider plays:
//!
//! - the **token endpoint** the connector calls (`POST /token`, RFC 6749 §6):
//!   `grant_type=refresh_token` with the client's id and secret in the form
//!   (`client_secret_post`, what the connector sends) or in HTTP Basic
//!   (`client_secret_basic`). A wrong client is `401 invalid_client`, an unknown
//!   or revoked refresh token `400 invalid_grant` ("Token has been expired or
//!   revoked.", Google's wording), another grant `400 unsupported_grant_type`.
//!   A good request gets a new random access token for the refresh token's
//!   user: `{"access_token", "token_type": "Bearer", "expires_in", "scope"}`.
//! - the **token introspection endpoint** Dovecot's `oauth2` passdb asks
//!   (`POST /introspect`, RFC 7662, `introspection_mode = post`): HTTP Basic
//!   with the resource server's own credentials ([`INTROSPECTION_USER`],
//!   [`INTROSPECTION_PASSWORD`], given to Dovecot in the URL, 401 otherwise), the
//!   token as `token=…`. A token this server issued and has not expired or
//!   revoked is `{"active": true, "email": user, …}`; any other is
//!   `{"active": false}`.
//!
//! Tokens expire when the test says so ([`FakeOAuth::expire_access_tokens`]:
//! every access token issued so far answers inactive from then on, as after its
//! lifetime on a real server), so no test waits for a clock. A refresh token can
//! be revoked ([`FakeOAuth::revoke`]: it and every access token issued from it).
//! Every request is recorded with what it was answered; introspections also with
//! the Dovecot service that asked (`imap`, or `smtp` for Postfix's submission
//! through Dovecot SASL), from the `X-Dovecot-Auth-Service` header Dovecot sends
//! with `send_auth_headers = yes`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};

/// The OAuth client the connector is installed as.
pub const CLIENT_ID: &str = "switchboard-e2e.apps.example.test";
/// Its secret.
pub const CLIENT_SECRET: &str = "e2e-oauth-client-secret-4d8b";
/// Dovecot's credentials at the introspection endpoint.
pub const INTROSPECTION_USER: &str = "dovecot";
/// Their password.
pub const INTROSPECTION_PASSWORD: &str = "e2e-introspection-pass-93c1";
/// The lifetime announced with every access token, in seconds.
pub const ACCESS_TOKEN_LIFETIME_SECS: u64 = 3600;

/// One request to the token endpoint, and what it was answered.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// `grant_type`.
    pub grant_type: Option<String>,
    /// The client id, from the form or from Basic.
    pub client_id: Option<String>,
    /// Whether the client's id and secret were right.
    pub client_authenticated: bool,
    /// `refresh_token`.
    pub refresh_token: Option<String>,
    /// `scope`.
    pub scope: Option<String>,
    /// The status answered.
    pub status: u16,
    /// The access token issued, when one was.
    pub issued: Option<String>,
    /// The `error` answered, when refused.
    pub error: Option<String>,
}

/// One introspection by the mail server, and its answer.
#[derive(Debug, Clone)]
pub struct Introspection {
    /// The token asked about.
    pub token: String,
    /// The Dovecot service that asked (`imap`, `smtp`), when it said.
    pub service: Option<String>,
    /// Whether the resource server's credentials were right.
    pub authorized: bool,
    /// The answer's `active`.
    pub active: bool,
}

#[derive(Debug)]
struct AccessToken {
    user: String,
    refresh_token: String,
    active: bool,
}

#[derive(Default)]
struct OAuthState {
    /// Refresh token → user, for the ones not revoked.
    refresh_tokens: HashMap<String, String>,
    access_tokens: HashMap<String, AccessToken>,
    token_requests: Vec<TokenRequest>,
    introspections: Vec<Introspection>,
}

/// The stand-in identity provider; see the module documentation.
#[derive(Clone)]
pub struct FakeOAuth {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    state: Arc<Mutex<OAuthState>>,
}

fn random_token(prefix: &str) -> String {
    format!("{prefix}{}", hex::encode(rand::random::<[u8; 24]>()))
}

fn form(body: &[u8]) -> HashMap<String, String> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// The user and password of an HTTP Basic `Authorization` header.
fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

fn oauth_error(status: u16, error: &str, description: &str) -> (u16, Value) {
    (
        status,
        json!({"error": error, "error_description": description}),
    )
}

fn token_answer(
    state: &mut OAuthState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> (u16, Value, TokenRequest) {
    let (client_id, client_secret) = match basic(headers) {
        Some((id, secret)) => (Some(id), Some(secret)),
        None => (
            form.get("client_id").cloned(),
            form.get("client_secret").cloned(),
        ),
    };
    let mut record = TokenRequest {
        grant_type: form.get("grant_type").cloned(),
        client_id: client_id.clone(),
        client_authenticated: client_id.as_deref() == Some(CLIENT_ID)
            && client_secret.as_deref() == Some(CLIENT_SECRET),
        refresh_token: form.get("refresh_token").cloned(),
        scope: form.get("scope").cloned(),
        status: 0,
        issued: None,
        error: None,
    };
    let (status, answer) = if !record.client_authenticated {
        oauth_error(401, "invalid_client", "The OAuth client was not found.")
    } else if record.grant_type.as_deref() != Some("refresh_token") {
        oauth_error(
            400,
            "unsupported_grant_type",
            "Only refresh_token grants are served here.",
        )
    } else {
        let user = record
            .refresh_token
            .as_ref()
            .and_then(|r| state.refresh_tokens.get(r))
            .cloned();
        match (user, record.refresh_token.clone()) {
            (Some(user), Some(refresh_token)) => {
                let token = random_token("at-");
                state.access_tokens.insert(
                    token.clone(),
                    AccessToken {
                        user,
                        refresh_token,
                        active: true,
                    },
                );
                record.issued = Some(token.clone());
                (
                    200,
                    json!({
                        "access_token": token,
                        "token_type": "Bearer",
                        "expires_in": ACCESS_TOKEN_LIFETIME_SECS,
                        "scope": "mail",
                    }),
                )
            }
            _ => oauth_error(400, "invalid_grant", "Token has been expired or revoked."),
        }
    };
    record.status = status;
    record.error = answer["error"].as_str().map(str::to_string);
    (status, answer, record)
}

fn introspection_answer(
    state: &mut OAuthState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> (u16, Value, Introspection) {
    let authorized = basic(headers)
        == Some((
            INTROSPECTION_USER.to_string(),
            INTROSPECTION_PASSWORD.to_string(),
        ));
    let token = form.get("token").cloned().unwrap_or_default();
    let mut record = Introspection {
        token: token.clone(),
        service: headers
            .get("x-dovecot-auth-service")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        authorized,
        active: false,
    };
    if !authorized {
        return (401, json!({"error": "invalid_client"}), record);
    }
    let answer = match state.access_tokens.get(&token) {
        Some(access) if access.active => {
            record.active = true;
            json!({
                "active": true,
                "email": access.user,
                "username": access.user,
                "scope": "mail",
                "client_id": CLIENT_ID,
                "token_type": "Bearer",
            })
        }
        _ => json!({"active": false}),
    };
    (200, answer, record)
}

async fn serve(
    State(this): State<FakeOAuth>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method != Method::POST {
        return (StatusCode::METHOD_NOT_ALLOWED, "POST only").into_response();
    }
    // Both endpoints take forms (Dovecot posts `token=…&client_id=&client_secret=`).
    let form = form(&body);
    let mut s = this.state.lock().unwrap();
    let (status, answer) = match uri.path() {
        "/token" => {
            let (status, answer, record) = token_answer(&mut s, &headers, &form);
            s.token_requests.push(record);
            (status, answer)
        }
        "/introspect" => {
            let (status, answer, record) = introspection_answer(&mut s, &headers, &form);
            s.introspections.push(record);
            (status, answer)
        }
        _ => return (StatusCode::NOT_FOUND, "not found").into_response(),
    };
    (
        StatusCode::from_u16(status).unwrap(),
        [("cache-control", "no-store")],
        axum::Json(answer),
    )
        .into_response()
}

impl FakeOAuth {
    /// Starts on a free loopback port.
    pub async fn start() -> FakeOAuth {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let this = FakeOAuth {
            base: format!("http://{}", listener.local_addr().unwrap()),
            state: Arc::new(Mutex::new(OAuthState::default())),
        };
        let app = axum::Router::new().fallback(serve).with_state(this.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        this
    }

    /// The token endpoint, for the connector's `oauth_token_url`.
    pub fn token_url(&self) -> String {
        format!("{}/token", self.base)
    }

    /// The introspection endpoint with Dovecot's credentials in it, for the
    /// `oauth2` passdb's `introspection_url`.
    pub fn introspection_url(&self) -> String {
        format!(
            "http://{INTROSPECTION_USER}:{INTROSPECTION_PASSWORD}@{}/introspect",
            self.base.trim_start_matches("http://")
        )
    }

    /// A new refresh token granted by `user` (a mailbox address) to the client,
    /// as the consent screen would give it.
    pub fn grant(&self, user: &str) -> String {
        let token = random_token("rt-");
        self.state
            .lock()
            .unwrap()
            .refresh_tokens
            .insert(token.clone(), user.to_string());
        token
    }

    /// Every access token issued so far expires: introspection answers it
    /// inactive from now on.
    pub fn expire_access_tokens(&self) {
        for access in self.state.lock().unwrap().access_tokens.values_mut() {
            access.active = false;
        }
    }

    /// The user revokes `refresh_token`: it is refused from now on, and the access
    /// tokens issued from it are inactive.
    pub fn revoke(&self, refresh_token: &str) {
        let mut s = self.state.lock().unwrap();
        s.refresh_tokens.remove(refresh_token);
        for access in s.access_tokens.values_mut() {
            if access.refresh_token == refresh_token {
                access.active = false;
            }
        }
    }

    /// Every request to the token endpoint so far.
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.state.lock().unwrap().token_requests.clone()
    }

    /// Every introspection so far.
    pub fn introspections(&self) -> Vec<Introspection> {
        self.state.lock().unwrap().introspections.clone()
    }

    /// The access tokens issued so far, oldest first.
    pub fn issued(&self) -> Vec<String> {
        self.token_requests()
            .into_iter()
            .filter_map(|r| r.issued)
            .collect()
    }

    /// Waits until `check` holds for the token requests, or `within` runs out;
    /// returns the requests either way.
    pub async fn wait_for_tokens(
        &self,
        within: Duration,
        check: impl Fn(&[TokenRequest]) -> bool,
    ) -> Vec<TokenRequest> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let requests = self.token_requests();
            if check(&requests) || tokio::time::Instant::now() > deadline {
                return requests;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(basic_user: Option<(&str, &str)>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some((user, password)) = basic_user {
            let value =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            headers.insert("authorization", format!("Basic {value}").parse().unwrap());
        }
        headers
    }

    #[test]
    fn refresh_introspect_expire_and_revoke() {
        let mut state = OAuthState::default();
        state
            .refresh_tokens
            .insert("rt-1".into(), "support@example.test".into());
        let refresh = |state: &mut OAuthState, secret: &str, refresh_token: &str| {
            let form: HashMap<String, String> = [
                ("grant_type", "refresh_token"),
                ("client_id", CLIENT_ID),
                ("client_secret", secret),
                ("refresh_token", refresh_token),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            token_answer(state, &HeaderMap::new(), &form)
        };
        let introspect = |state: &mut OAuthState, token: &str| {
            let form = HashMap::from([("token".to_string(), token.to_string())]);
            introspection_answer(
                state,
                &headers(Some((INTROSPECTION_USER, INTROSPECTION_PASSWORD))),
                &form,
            )
        };
        assert_eq!(refresh(&mut state, "wrong", "rt-1").0, 401);
        assert_eq!(refresh(&mut state, CLIENT_SECRET, "rt-2").0, 400);
        let (status, answer, _) = refresh(&mut state, CLIENT_SECRET, "rt-1");
        assert_eq!(status, 200, "{answer}");
        let token = answer["access_token"].as_str().unwrap().to_string();
        let (_, answer, record) = introspect(&mut state, &token);
        assert_eq!(answer["active"], true);
        assert_eq!(answer["email"], "support@example.test");
        assert!(record.active);
        // Without the resource server's credentials: 401.
        let form = HashMap::from([("token".to_string(), token.clone())]);
        assert_eq!(
            introspection_answer(&mut state, &headers(None), &form).0,
            401
        );
        for access in state.access_tokens.values_mut() {
            access.active = false;
        }
        assert_eq!(introspect(&mut state, &token).1, json!({"active": false}));
        assert_eq!(
            introspect(&mut state, "made-up").1,
            json!({"active": false})
        );
    }
}
