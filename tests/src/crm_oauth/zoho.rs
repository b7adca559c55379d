//! The stand-in Zoho CRM data centre: its accounts server (`POST /oauth/v2/token`, see
//! the parent module) and its API (`/crm/v2`, `Authorization: Zoho-oauthtoken`).
//!
//! Record search in Contacts and Leads by `email` or `phone` (204 when none), a record
//! by id (204 when none), `POST /Calls` (the person as `Who_Id` for a Contact, or
//! `$se_module` `Leads` with `What_Id`), Notes on a Contact or Lead, and Leads or
//! Contacts creation. Errors are Zoho's `{"code", "details", "message", "status":
//! "error"}`, per record inside `data` for writes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::{Client, Refusal, TokenRequest, Tokens, api_request, query_pairs, random_hex};
use crate::crm::{CrmRequest, calculated};

/// The Zoho API console client the Zoho stand-in accepts.
pub const ZOHO_CLIENT_ID: &str = "1000.E2ESWITCHBOARDZOHOCLIENT";
/// Its secret.
pub const ZOHO_CLIENT_SECRET: &str = "e2e-zoho-client-secret-2b9e";
/// The refresh token.
pub const ZOHO_REFRESH_TOKEN: &str = "1000.e2ezohorefreshtoken.3f0a";
/// Where the Zoho CRM API is, under the stand-in's base.
pub const ZOHO_API: &str = "/crm/v2";

/// A Contacts or Leads record the Zoho stand-in holds.
#[derive(Debug, Clone)]
pub struct ZohoRecord {
    /// `Contacts` or `Leads`.
    pub module: String,
    /// Field values by API name, `id` among them; lookups (`Owner`,
    /// `Account_Name`) as `{"name", "id"}`.
    pub fields: Map<String, Value>,
}

impl ZohoRecord {
    /// The record id.
    pub fn id(&self) -> &str {
        self.text("id")
    }

    /// A field as text (empty when absent or not text).
    pub fn text(&self, field: &str) -> &str {
        self.fields
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
}

/// A note the Zoho stand-in holds.
#[derive(Debug, Clone)]
pub struct ZohoNote {
    /// `Contacts` or `Leads`: the module of the record it is on.
    pub module: String,
    /// That record's id.
    pub parent_id: String,
    /// The note as sent (`Note_Title`, `Note_Content`).
    pub note: Value,
}

/// A Contacts or Leads record from field pairs; `Owner` and `Account_Name` become
/// lookups and `Full_Name` is made of `First_Name` and `Last_Name`, as Zoho does.
pub fn zoho_record(module: &str, id: &str, fields: &[(&str, &str)]) -> ZohoRecord {
    let mut map: Map<String, Value> = fields
        .iter()
        .map(|(k, v)| match *k {
            "Owner" | "Account_Name" => (
                k.to_string(),
                json!({"name": v, "id": "5725767000000100001"}),
            ),
            _ => (k.to_string(), json!(v)),
        })
        .collect();
    map.insert("id".into(), json!(id));
    full_name(&mut map);
    ZohoRecord {
        module: module.to_string(),
        fields: map,
    }
}

fn full_name(fields: &mut Map<String, Value>) {
    if !fields.contains_key("Full_Name") {
        let name: Vec<&str> = ["First_Name", "Last_Name"]
            .iter()
            .filter_map(|f| fields.get(*f).and_then(Value::as_str))
            .collect();
        fields.insert("Full_Name".into(), json!(name.join(" ")));
    }
}

/// Zoho's `error` for a refused grant.
fn refusal_error(refusal: &Refusal) -> &'static str {
    match refusal {
        Refusal::Grant => "unsupported_grant_type",
        Refusal::ClientId => "invalid_client",
        Refusal::ClientSecret => "invalid_client_secret",
        Refusal::RefreshToken => "invalid_code",
    }
}

fn zoho_error(status: StatusCode, code: &str, message: &str, details: Value) -> Response {
    (
        status,
        axum::Json(
            json!({"code": code, "details": details, "message": message, "status": "error"}),
        ),
    )
        .into_response()
}

/// A write's per-record refusal.
fn zoho_record_error(code: &str, message: &str, details: Value) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"data": [
            {"code": code, "details": details, "message": message, "status": "error"},
        ]})),
    )
        .into_response()
}

fn zoho_added(id: &str) -> Response {
    let now = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .strftime("%Y-%m-%dT%H:%M:%S+00:00")
        .to_string();
    (
        StatusCode::CREATED,
        axum::Json(json!({"data": [{
            "code": "SUCCESS",
            "details": {
                "Modified_Time": now, "Created_Time": now, "id": id,
                "Modified_By": {"name": "Switchboard Integration", "id": "5725767000000100002"},
                "Created_By": {"name": "Switchboard Integration", "id": "5725767000000100002"},
            },
            "message": "record added",
            "status": "success",
        }]})),
    )
        .into_response()
}

#[derive(Default)]
struct ZohoState {
    tokens: Tokens,
    requests: Vec<CrmRequest>,
    records: Vec<ZohoRecord>,
    calls: Vec<Value>,
    notes: Vec<ZohoNote>,
    next_id: u64,
}

impl ZohoState {
    fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("5725767000001{:06}", self.next_id)
    }

    fn record(&self, module: &str, id: &str) -> Option<&ZohoRecord> {
        self.records
            .iter()
            .find(|r| r.module == module && r.id() == id)
    }
}

/// The stand-in Zoho CRM data centre: its accounts server and its API domain.
#[derive(Clone)]
pub struct FakeZoho {
    /// `http://127.0.0.1:PORT`: the accounts base and the API domain.
    pub base: String,
    state: Arc<Mutex<ZohoState>>,
}

async fn zoho(
    State(this): State<FakeZoho>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if uri.path() == "/oauth/v2/token" && method == Method::POST {
        return this.token(&headers, &body);
    }
    let request = api_request(&method, &uri, &headers, &body);
    let mut s = this.state.lock().unwrap();
    s.requests.push(request.clone());
    let Some(path) = request.path.strip_prefix(ZOHO_API) else {
        return zoho_error(
            StatusCode::NOT_FOUND,
            "INVALID_URL_PATTERN",
            "Please check if the URL trying to access is a correct one",
            json!({}),
        );
    };
    let authorization = request.authorization.as_deref();
    if !authorization.is_some_and(|a| a.starts_with("Zoho-oauthtoken ")) {
        return zoho_error(
            StatusCode::UNAUTHORIZED,
            "AUTHENTICATION_FAILURE",
            "Authentication failed",
            json!({}),
        );
    }
    if !s.tokens.accepts(authorization, "Zoho-oauthtoken") {
        return zoho_error(
            StatusCode::UNAUTHORIZED,
            "INVALID_TOKEN",
            "invalid oauth token",
            json!({}),
        );
    }
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let person_module = |m: &str| m == "Contacts" || m == "Leads";
    match (method.as_str(), segments.as_slice()) {
        ("GET", [module, "search"]) if person_module(module) => {
            zoho_search(&s, module, &query_pairs(&uri))
        }
        ("GET", [module, id]) if person_module(module) => match s.record(module, id) {
            Some(record) => axum::Json(json!({"data": [record.fields]})).into_response(),
            None => StatusCode::NO_CONTENT.into_response(),
        },
        ("POST", ["Calls"]) => zoho_call(&mut s, &request.json),
        ("POST", [module, id, "Notes"]) if person_module(module) => {
            zoho_note(&mut s, module, id, &request.json)
        }
        ("POST", [module]) if person_module(module) => zoho_create(&mut s, module, &request.json),
        (_, [module, ..]) if !person_module(module) && *module != "Calls" => zoho_error(
            StatusCode::BAD_REQUEST,
            "INVALID_MODULE",
            "the module name given seems to be invalid",
            json!({}),
        ),
        _ => zoho_error(
            StatusCode::NOT_FOUND,
            "INVALID_URL_PATTERN",
            "Please check if the URL trying to access is a correct one",
            json!({}),
        ),
    }
}

/// `GET /{module}/search?email=` or `?phone=`: e-mail addresses compared without
/// case, numbers by their digits whatever their format; 204 when none.
fn zoho_search(s: &ZohoState, module: &str, query: &HashMap<String, String>) -> Response {
    // (the fields searched, the value wanted, whether numbers are compared by digits)
    let (fields, wanted, by_digits): (&[&str], String, bool) =
        match (query.get("email"), query.get("phone")) {
            (Some(email), None) => (&["Email", "Secondary_Email"], email.clone(), false),
            (None, Some(phone)) => (
                &["Phone", "Mobile", "Home_Phone", "Other_Phone"],
                calculated(phone),
                true,
            ),
            _ => {
                return zoho_error(
                    StatusCode::BAD_REQUEST,
                    "REQUIRED_PARAM_MISSING",
                    "One of the expected parameter is missing",
                    json!({"param": "email or phone"}),
                );
            }
        };
    let matches = |r: &ZohoRecord| {
        fields.iter().map(|f| r.text(f)).any(|stored| {
            !stored.is_empty()
                && !wanted.is_empty()
                && if by_digits {
                    calculated(stored) == wanted
                } else {
                    stored.eq_ignore_ascii_case(&wanted)
                }
        })
    };
    let found: Vec<&Map<String, Value>> = s
        .records
        .iter()
        .filter(|r| r.module == module && matches(r))
        .map(|r| &r.fields)
        .collect();
    if found.is_empty() {
        return StatusCode::NO_CONTENT.into_response();
    }
    axum::Json(json!({
        "data": found,
        "info": {"per_page": 200, "count": found.len(), "page": 1, "more_records": false},
    }))
    .into_response()
}

/// The one record of a write's `data`.
fn zoho_data(body: &Value) -> Option<&Map<String, Value>> {
    match body["data"].as_array().map(Vec::as_slice) {
        Some([Value::Object(record)]) => Some(record),
        _ => None,
    }
}

fn not_one_record() -> Response {
    zoho_error(
        StatusCode::BAD_REQUEST,
        "INVALID_DATA",
        "expecting one record in data",
        json!({}),
    )
}

fn mandatory(record: &Map<String, Value>, fields: &[&str]) -> Option<Response> {
    let missing = fields.iter().find(|f| {
        record
            .get(**f)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .is_empty()
    })?;
    Some(zoho_record_error(
        "MANDATORY_NOT_FOUND",
        "required field not found",
        json!({"api_name": missing}),
    ))
}

fn zoho_call(s: &mut ZohoState, body: &Value) -> Response {
    let Some(call) = zoho_data(body).cloned() else {
        return not_one_record();
    };
    if let Some(refused) = mandatory(&call, &["Subject", "Call_Type", "Call_Start_Time"]) {
        return refused;
    }
    let text = |field: &str| call.get(field).and_then(Value::as_str).unwrap_or_default();
    let invalid =
        |field: &str| zoho_record_error("INVALID_DATA", "invalid data", json!({"api_name": field}));
    if !["Inbound", "Outbound", "Missed"].contains(&text("Call_Type")) {
        return invalid("Call_Type");
    }
    // Zoho's date-times carry an offset (`+00:00`); `Z` is refused.
    let start = text("Call_Start_Time").as_bytes();
    if start.len() != 25 || start[10] != b'T' || !matches!(start[19], b'+' | b'-') {
        return invalid("Call_Start_Time");
    }
    let duration = text("Call_Duration");
    if !duration.is_empty()
        && !duration.split_once(':').is_some_and(|(m, s)| {
            !m.is_empty()
                && m.bytes().all(|b| b.is_ascii_digit())
                && s.len() == 2
                && s.bytes().all(|b| b.is_ascii_digit())
        })
    {
        return invalid("Call_Duration");
    }
    let person = match (call.get("Who_Id"), text("$se_module")) {
        (Some(who), "") => ("Contacts", who["id"].as_str().unwrap_or_default(), "Who_Id"),
        (None, "Leads") => (
            "Leads",
            call.get("What_Id")
                .and_then(|w| w["id"].as_str())
                .unwrap_or_default(),
            "What_Id",
        ),
        _ => return invalid("Who_Id"),
    };
    let (module, id, field) = person;
    if s.record(module, id).is_none() {
        return zoho_record_error(
            "INVALID_DATA",
            "the related id given seems to be invalid",
            json!({"api_name": field, "id": id}),
        );
    }
    let id = s.new_id();
    s.calls.push(Value::Object(call));
    zoho_added(&id)
}

fn zoho_note(s: &mut ZohoState, module: &str, parent: &str, body: &Value) -> Response {
    let Some(note) = zoho_data(body).cloned() else {
        return not_one_record();
    };
    if let Some(refused) = mandatory(&note, &["Note_Content"]) {
        return refused;
    }
    if s.record(module, parent).is_none() {
        return zoho_record_error(
            "INVALID_DATA",
            "the related id given seems to be invalid",
            json!({"api_name": "Parent_Id", "id": parent}),
        );
    }
    let id = s.new_id();
    s.notes.push(ZohoNote {
        module: module.to_string(),
        parent_id: parent.to_string(),
        note: Value::Object(note),
    });
    zoho_added(&id)
}

fn zoho_create(s: &mut ZohoState, module: &str, body: &Value) -> Response {
    let Some(mut fields) = zoho_data(body).cloned() else {
        return not_one_record();
    };
    if let Some(refused) = mandatory(&fields, &["Last_Name"]) {
        return refused;
    }
    if let Some(email) = fields.get("Email").and_then(Value::as_str)
        && let Some(existing) = s
            .records
            .iter()
            .find(|r| r.module == module && r.text("Email").eq_ignore_ascii_case(email))
    {
        return zoho_record_error(
            "DUPLICATE_DATA",
            "duplicate data",
            json!({"api_name": "Email", "id": existing.id()}),
        );
    }
    let id = s.new_id();
    fields.insert("id".into(), json!(id));
    full_name(&mut fields);
    s.records.push(ZohoRecord {
        module: module.to_string(),
        fields,
    });
    zoho_added(&id)
}

impl FakeZoho {
    /// Starts on a free loopback port holding `records` (Contacts and Leads).
    pub async fn start(records: Vec<ZohoRecord>) -> FakeZoho {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let this = FakeZoho {
            base: format!("http://{}", listener.local_addr().unwrap()),
            state: Arc::new(Mutex::new(ZohoState {
                records,
                ..ZohoState::default()
            })),
        };
        let app = axum::Router::new().fallback(zoho).with_state(this.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        this
    }

    fn token(&self, headers: &HeaderMap, body: &[u8]) -> Response {
        let client = Client {
            id: ZOHO_CLIENT_ID,
            secret: ZOHO_CLIENT_SECRET,
            refresh_token: ZOHO_REFRESH_TOKEN,
        };
        let mut s = self.state.lock().unwrap();
        let issue = || format!("1000.{}.{}", random_hex(16), random_hex(16));
        // Zoho answers a refused grant with HTTP 200 and an `error`.
        match s.tokens.grant(&client, headers, body, issue, refusal_error) {
            Ok(token) => axum::Json(json!({
                "access_token": token,
                "scope": "ZohoCRM.modules.ALL",
                "api_domain": self.base,
                "token_type": "Bearer",
                "expires_in": 3600,
            }))
            .into_response(),
            Err(refusal) => axum::Json(json!({"error": refusal_error(&refusal)})).into_response(),
        }
    }

    /// Every API request so far (token requests are in [`Self::token_requests`]).
    pub fn requests(&self) -> Vec<CrmRequest> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Every token request so far.
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.state.lock().unwrap().tokens.requests.clone()
    }

    /// The Calls written so far, as sent.
    pub fn calls(&self) -> Vec<Value> {
        self.state.lock().unwrap().calls.clone()
    }

    /// The notes written so far.
    pub fn notes(&self) -> Vec<ZohoNote> {
        self.state.lock().unwrap().notes.clone()
    }

    /// The records of one module it holds now.
    pub fn records(&self, module: &str) -> Vec<ZohoRecord> {
        let s = self.state.lock().unwrap();
        s.records
            .iter()
            .filter(|r| r.module == module)
            .cloned()
            .collect()
    }

    /// Ends every access token issued so far: the API answers 401 `INVALID_TOKEN`
    /// until the plugin refreshes.
    pub fn expire_token(&self) {
        self.state.lock().unwrap().tokens.valid.clear();
    }

    /// Revokes the refresh token, and with it every access token: the token endpoint
    /// answers `invalid_code` from now on.
    pub fn revoke(&self) {
        let mut s = self.state.lock().unwrap();
        s.tokens.revoked = true;
        s.tokens.valid.clear();
    }
}
