//! Stand-ins for the CRMs that authenticate with an OAuth 2.0 refresh token:
//! Salesforce's REST API (`v62.0`) and Zoho CRM's API (`v2`), each with its token
//! endpoint on the same origin, so the origin is the only host a test allows.
//!
//! **Tokens.** Both token endpoints take the refresh-token grant as a form
//! (`grant_type=refresh_token`, `refresh_token`, `client_id`, `client_secret`) and
//! refuse what the real ones refuse, in their words: Salesforce with HTTP 400
//! (`invalid_grant` "expired access/refresh token", `invalid_client_id`,
//! `invalid_client`, `unsupported_grant_type`), Zoho with HTTP 200 and an `error`
//! (`invalid_code`, `invalid_client`, …). A good grant issues a new random access
//! token: Salesforce's answer names the stand-in as the `instance_url`, Zoho's as the
//! `api_domain` (with `expires_in` 3600). The test ends access tokens when it says so
//! ([`FakeSalesforce::expire_token`], [`FakeZoho::expire_token`]): from then on the API
//! answers 401 (`INVALID_SESSION_ID`, `INVALID_TOKEN`) until the plugin refreshes, so no
//! test waits for a clock. `revoke()` also refuses the refresh token from then on.
//!
//! The APIs themselves are in the `salesforce` and `zoho` submodules. Every API request
//! is recorded ([`CrmRequest`]), token requests apart ([`TokenRequest`]).

mod salesforce;
mod zoho;

use std::collections::HashMap;

use axum::http::{HeaderMap, Method, Uri};
use serde_json::Value;

use crate::crm::CrmRequest;

pub use salesforce::{
    FakeSalesforce, SALESFORCE_API, SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET,
    SALESFORCE_REFRESH_TOKEN, SalesforceRecord, salesforce_record,
};
pub use zoho::{
    FakeZoho, ZOHO_API, ZOHO_CLIENT_ID, ZOHO_CLIENT_SECRET, ZOHO_REFRESH_TOKEN, ZohoNote,
    ZohoRecord, zoho_record,
};

/// One request to a token endpoint, and its answer.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// The request's content type.
    pub content_type: Option<String>,
    /// The form fields sent.
    pub form: HashMap<String, String>,
    /// The access token issued, or the `error` answered.
    pub answer: Result<String, String>,
}

impl TokenRequest {
    /// A form field.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form.get(name).map(String::as_str)
    }
}

/// Why a token endpoint refused a grant.
enum Refusal {
    Grant,
    ClientId,
    ClientSecret,
    RefreshToken,
}

/// A client's credentials at one token endpoint.
struct Client {
    id: &'static str,
    secret: &'static str,
    refresh_token: &'static str,
}

/// The token side both stand-ins share: whether the refresh token is still good,
/// which access tokens the API takes now, and every grant asked for.
#[derive(Default)]
struct Tokens {
    revoked: bool,
    valid: Vec<String>,
    requests: Vec<TokenRequest>,
}

impl Tokens {
    /// Checks a refresh-token grant and records it (a refusal as `error_of` names it in
    /// the vendor's words); answers the new access token.
    fn grant(
        &mut self,
        client: &Client,
        headers: &HeaderMap,
        body: &[u8],
        issue: impl FnOnce() -> String,
        error_of: fn(&Refusal) -> &'static str,
    ) -> Result<String, Refusal> {
        let content_type = header(headers, "content-type");
        // A body that is not a form has no fields to read.
        let form: HashMap<String, String> = match &content_type {
            Some(t) if t.starts_with("application/x-www-form-urlencoded") => {
                form_urlencoded::parse(body).into_owned().collect()
            }
            _ => HashMap::new(),
        };
        let field = |name: &str| form.get(name).map(String::as_str);
        let answer = if field("grant_type") != Some("refresh_token") {
            Err(Refusal::Grant)
        } else if field("client_id") != Some(client.id) {
            Err(Refusal::ClientId)
        } else if field("client_secret") != Some(client.secret) {
            Err(Refusal::ClientSecret)
        } else if self.revoked || field("refresh_token") != Some(client.refresh_token) {
            Err(Refusal::RefreshToken)
        } else {
            Ok(issue())
        };
        if let Ok(token) = &answer {
            self.valid.push(token.clone());
        }
        self.requests.push(TokenRequest {
            content_type,
            form,
            answer: match &answer {
                Ok(token) => Ok(token.clone()),
                Err(refusal) => Err(error_of(refusal).to_string()),
            },
        });
        answer
    }

    /// Whether `authorization` is `{scheme} {a token the API takes now}`.
    fn accepts(&self, authorization: Option<&str>, scheme: &str) -> bool {
        authorization
            .and_then(|a| a.strip_prefix(scheme))
            .and_then(|a| a.strip_prefix(' '))
            .is_some_and(|token| self.valid.iter().any(|v| v == token))
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

/// Records an API request.
fn api_request(method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> CrmRequest {
    CrmRequest {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().map(str::to_string),
        authorization: header(headers, "authorization"),
        json: serde_json::from_slice(body).unwrap_or(Value::Null),
    }
}

/// The query's fields, decoded.
fn query_pairs(uri: &Uri) -> HashMap<String, String> {
    form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}
