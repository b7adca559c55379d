//! Stand-ins for the CRMs' APIs: HubSpot's CRM v3 API (private-app token).
//!
//! It checks what HubSpot checks — the bearer token on every call, the JSON shape
//! of a contact search (filter groups of `EQ` filters, ORed) and of an engagement
//! (properties plus an association to an existing contact) — answers searches the
//! way HubSpot does (exact `EQ` on the stored value, or on the calculated
//! digits-only copy of a phone number without its country code), and records every
//! request. Scripted bad days: engagement writes that fail with 503 or 400, and a
//! gate that holds contact searches until the test opens it (a CRM that hangs).

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tokio::sync::watch;

/// The private-app token the stand-in accepts.
pub const HUBSPOT_TOKEN: &str = "pat-na1-e2e-hubspot-token";

/// One recorded request.
#[derive(Debug, Clone)]
pub struct CrmRequest {
    /// `GET`, `POST`…
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// The query string as sent, when there is one.
    pub query: Option<String>,
    /// The Authorization header.
    pub authorization: Option<String>,
    /// The JSON body (`null` when there is none).
    pub json: Value,
}

/// A contact the stand-in holds: its id and properties as HubSpot stores them.
#[derive(Debug, Clone)]
pub struct HubSpotContact {
    /// The record id.
    pub id: String,
    /// Property values as strings.
    pub properties: Map<String, Value>,
}

#[derive(Default)]
struct HubSpotState {
    requests: Vec<CrmRequest>,
    contacts: Vec<HubSpotContact>,
    engagements: Vec<(String, Value)>,
    fail_writes: Vec<StatusCode>,
    next_id: u64,
}

/// The stand-in HubSpot API.
#[derive(Clone)]
pub struct FakeHubSpot {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    state: Arc<Mutex<HubSpotState>>,
    /// Searches wait while this is false.
    gate: watch::Sender<bool>,
}

fn hubspot_error(status: StatusCode, category: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({
            "status": "error", "message": message, "category": category,
            "correlationId": "e2e-correlation",
        })),
    )
        .into_response()
}

/// The digits of a stored phone number without a leading US country code, as
/// HubSpot's `hs_searchable_calculated_phone_number` holds them (and as the other
/// stand-ins compare numbers written in any format).
pub(crate) fn calculated(stored: &str) -> String {
    let digits: String = stored.chars().filter(char::is_ascii_digit).collect();
    match digits.strip_prefix('1') {
        Some(rest) if digits.len() == 11 => rest.to_string(),
        _ => digits,
    }
}

fn matches(contact: &HubSpotContact, filter: &Value) -> bool {
    let property = filter["propertyName"].as_str().unwrap_or_default();
    let value = filter["value"].as_str().unwrap_or_default();
    let prop = |name: &str| {
        contact
            .properties
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    match (property, filter["operator"].as_str()) {
        ("hs_searchable_calculated_phone_number", Some("EQ")) => {
            !prop("phone").is_empty() && calculated(&prop("phone")) == value
        }
        ("hs_searchable_calculated_mobile_number", Some("EQ")) => {
            !prop("mobilephone").is_empty() && calculated(&prop("mobilephone")) == value
        }
        ("email", Some("EQ")) => prop("email").eq_ignore_ascii_case(value),
        (name, Some("EQ")) => prop(name) == value,
        (name, Some("CONTAINS_TOKEN")) => prop(name)
            .split([';', ',', ' '])
            .any(|t| t.eq_ignore_ascii_case(value)),
        _ => false,
    }
}

fn contact_json(c: &HubSpotContact) -> Value {
    json!({
        "id": c.id, "properties": c.properties, "archived": false,
        "createdAt": "2026-01-02T03:04:05.000Z", "updatedAt": "2026-11-02T03:04:05.000Z",
    })
}

async fn hubspot(
    State(this): State<FakeHubSpot>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let path = uri.path().to_string();
    this.state.lock().unwrap().requests.push(CrmRequest {
        method: method.to_string(),
        path: path.clone(),
        query: uri.query().map(str::to_string),
        authorization: authorization.clone(),
        json: json.clone(),
    });
    if authorization.as_deref() != Some(&format!("Bearer {HUBSPOT_TOKEN}")) {
        return hubspot_error(
            StatusCode::UNAUTHORIZED,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found.",
        );
    }
    match (method.as_str(), path.as_str()) {
        ("POST", "/crm/v3/objects/contacts/search") => {
            let mut gate = this.gate.subscribe();
            let _ = gate.wait_for(|open| *open).await;
            let Some(groups) = json["filterGroups"].as_array() else {
                return hubspot_error(
                    StatusCode::BAD_REQUEST,
                    "VALIDATION_ERROR",
                    "filterGroups is required",
                );
            };
            let s = this.state.lock().unwrap();
            let results: Vec<Value> = s
                .contacts
                .iter()
                .filter(|c| {
                    groups.iter().any(|g| {
                        g["filters"]
                            .as_array()
                            .is_some_and(|fs| !fs.is_empty() && fs.iter().all(|f| matches(c, f)))
                    })
                })
                .map(contact_json)
                .collect();
            axum::Json(json!({"total": results.len(), "results": results})).into_response()
        }
        ("POST", "/crm/v3/objects/contacts") => {
            let Some(props) = json["properties"].as_object().cloned() else {
                return hubspot_error(
                    StatusCode::BAD_REQUEST,
                    "VALIDATION_ERROR",
                    "properties is required",
                );
            };
            let mut s = this.state.lock().unwrap();
            if let Some(email) = props.get("email").and_then(Value::as_str)
                && s.contacts
                    .iter()
                    .any(|c| c.properties.get("email").and_then(Value::as_str) == Some(email))
            {
                return hubspot_error(StatusCode::CONFLICT, "CONFLICT", "Contact already exists.");
            }
            s.next_id += 1;
            let contact = HubSpotContact {
                id: format!("9{:03}", s.next_id),
                properties: props,
            };
            s.contacts.push(contact.clone());
            (StatusCode::CREATED, axum::Json(contact_json(&contact))).into_response()
        }
        ("POST", p) if p.starts_with("/crm/v3/objects/") => {
            let kind = p.trim_start_matches("/crm/v3/objects/").to_string();
            if !["calls", "notes", "communications"].contains(&kind.as_str()) {
                return hubspot_error(
                    StatusCode::NOT_FOUND,
                    "OBJECT_NOT_FOUND",
                    "Unknown object type",
                );
            }
            let mut s = this.state.lock().unwrap();
            if !s.fail_writes.is_empty() {
                let status = s.fail_writes.remove(0);
                return hubspot_error(status, "SCRIPTED", "scripted failure");
            }
            let Some(to) = json
                .pointer("/associations/0/to/id")
                .and_then(Value::as_str)
            else {
                return hubspot_error(
                    StatusCode::BAD_REQUEST,
                    "VALIDATION_ERROR",
                    "an engagement needs an association",
                );
            };
            if !s.contacts.iter().any(|c| c.id == to) {
                return hubspot_error(
                    StatusCode::BAD_REQUEST,
                    "VALIDATION_ERROR",
                    "associated contact does not exist",
                );
            }
            if json["properties"]["hs_timestamp"].as_str().is_none() {
                return hubspot_error(
                    StatusCode::BAD_REQUEST,
                    "VALIDATION_ERROR",
                    "hs_timestamp is required",
                );
            }
            s.next_id += 1;
            let id = format!("7{:03}", s.next_id);
            s.engagements.push((kind, json.clone()));
            (
                StatusCode::CREATED,
                axum::Json(json!({"id": id, "properties": json["properties"]})),
            )
                .into_response()
        }
        _ => hubspot_error(
            StatusCode::NOT_FOUND,
            "OBJECT_NOT_FOUND",
            "Unsupported request",
        ),
    }
}

impl FakeHubSpot {
    /// Starts on a free loopback port holding `contacts`.
    pub async fn start(contacts: Vec<HubSpotContact>) -> FakeHubSpot {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let this = FakeHubSpot {
            base: format!("http://{}", listener.local_addr().unwrap()),
            state: Arc::new(Mutex::new(HubSpotState {
                contacts,
                ..HubSpotState::default()
            })),
            gate: watch::channel(true).0,
        };
        let app = axum::Router::new()
            .fallback(hubspot)
            .with_state(this.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        this
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<CrmRequest> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The engagements written so far: (object type, request body).
    pub fn engagements(&self) -> Vec<(String, Value)> {
        self.state.lock().unwrap().engagements.clone()
    }

    /// The contacts it holds now.
    pub fn contacts(&self) -> Vec<HubSpotContact> {
        self.state.lock().unwrap().contacts.clone()
    }

    /// Answers the next engagement writes with these statuses, in order.
    pub fn fail_writes(&self, statuses: &[u16]) {
        self.state.lock().unwrap().fail_writes = statuses
            .iter()
            .map(|s| StatusCode::from_u16(*s).unwrap())
            .collect();
    }

    /// `switchboard plugin install …` arguments for the real `crm-hubspot` pointed at
    /// this stand-in (its token, `api_base`, the origin allowed).
    pub fn install_args(&self) -> Vec<String> {
        let dir = crate::plugin_dist().join("crm-hubspot");
        [
            "plugin".to_string(),
            "install".to_string(),
            dir.to_string_lossy().into_owned(),
            "--config".to_string(),
            format!("access_token={HUBSPOT_TOKEN}"),
            "--config".to_string(),
            format!("api_base={}", self.base),
            "--allow-host".to_string(),
            self.base.clone(),
        ]
        .into()
    }

    /// Holds (false) or lets through (true) contact searches.
    pub fn open_searches(&self, open: bool) {
        self.gate.send_replace(open);
    }
}

/// A HubSpot contact from property pairs.
pub fn hubspot_contact(id: &str, properties: &[(&str, &str)]) -> HubSpotContact {
    HubSpotContact {
        id: id.to_string(),
        properties: properties
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect(),
    }
}
