//! A stand-in for Meta's Graph API (WhatsApp Cloud API, Messenger and Instagram
//! Send API) and signed Meta webhooks.
//!
//! It checks what the real API checks — the bearer token on every call, the JSON
//! shape of a send — and records every request. Scripted failures stand in for
//! the provider's bad days: throttling (`130429` in an HTTP 400, as Meta sends
//! it) and media downloads that fail.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};

/// The access token the stand-in accepts.
pub const META_TOKEN: &str = "e2e-meta-access-token";
/// The app secret webhooks are signed with.
pub const META_APP_SECRET: &str = "e2e-meta-app-secret";
/// The webhook verify token.
pub const META_VERIFY_TOKEN: &str = "e2e-meta-verify-token";
/// The Graph API version the plugins call.
pub const GRAPH_VERSION: &str = "v21.0";
/// A tiny valid PNG (1×1), what media downloads return.
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// One recorded request.
#[derive(Debug, Clone)]
pub struct GraphRequest {
    /// `GET`, `POST`…
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// The query string, if any.
    pub query: Option<String>,
    /// The Authorization header.
    pub authorization: Option<String>,
    /// The Host header.
    pub host: Option<String>,
    /// The JSON body (`null` when there is none).
    pub json: Value,
}

#[derive(Default)]
struct GraphState {
    requests: Vec<GraphRequest>,
    throttle_sends: u32,
    fail_media: u32,
    sent: u32,
}

/// The stand-in Graph API.
#[derive(Clone)]
pub struct FakeGraph {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    state: Arc<Mutex<GraphState>>,
}

fn error(status: StatusCode, code: u32, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "e2e"}})),
    )
        .into_response()
}

async fn graph(
    State(this): State<FakeGraph>,
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
    this.state.lock().unwrap().requests.push(GraphRequest {
        method: method.to_string(),
        path: path.clone(),
        query: uri.query().map(str::to_string),
        authorization: authorization.clone(),
        host: headers
            .get("host")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        json: json.clone(),
    });
    if authorization.as_deref() != Some(&format!("Bearer {META_TOKEN}")) {
        return error(StatusCode::UNAUTHORIZED, 190, "Invalid OAuth access token.");
    }
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method.as_str(), parts.as_slice()) {
        ("GET", ["media-bytes", id]) => {
            let mut s = this.state.lock().unwrap();
            if s.fail_media > 0 {
                s.fail_media -= 1;
                return (StatusCode::INTERNAL_SERVER_ERROR, "try again").into_response();
            }
            drop(s);
            let _ = id;
            ([("content-type", "image/png")], PNG.to_vec()).into_response()
        }
        ("GET", [_, "me", "message_templates"]) | ("GET", [_, _, "message_templates"]) => {
            axum::Json(json!({"data": [
                {"name": "order_update", "language": "en_US", "status": "APPROVED", "category": "UTILITY",
                 "components": [{"type": "BODY", "text": "Hi {{1}}, your order {{2}} has shipped"}]},
                {"name": "draft_promo", "language": "en_US", "status": "REJECTED", "category": "MARKETING",
                 "components": [{"type": "BODY", "text": "Sale!"}]}
            ]}))
            .into_response()
        }
        ("POST", [_, _, "messages"]) => {
            let mut s = this.state.lock().unwrap();
            if s.throttle_sends > 0 {
                s.throttle_sends -= 1;
                return error(
                    StatusCode::BAD_REQUEST,
                    130429,
                    "Rate limit hit: Cloud API message throughput has been reached.",
                );
            }
            s.sent += 1;
            let n = s.sent;
            if json.get("messaging_product").and_then(Value::as_str) == Some("whatsapp") {
                if json.get("to").and_then(Value::as_str).is_none() {
                    return error(StatusCode::BAD_REQUEST, 100, "(#100) The parameter to is required.");
                }
                axum::Json(json!({
                    "messaging_product": "whatsapp",
                    "contacts": [{"input": json["to"], "wa_id": json["to"]}],
                    "messages": [{"id": format!("wamid.out.{n}")}]
                }))
                .into_response()
            } else {
                if json.pointer("/recipient/id").is_none() {
                    return error(StatusCode::BAD_REQUEST, 100, "(#100) The parameter recipient is required");
                }
                axum::Json(json!({"recipient_id": json["recipient"]["id"], "message_id": format!("m_out.{n}")}))
                    .into_response()
            }
        }
        ("GET", [_, id]) if id.starts_with("nomedia") => error(
            StatusCode::BAD_REQUEST,
            100,
            "(#100) Unsupported get request. Object does not exist",
        ),
        ("GET", [_, id]) => {
            if id.starts_with("media") {
                axum::Json(json!({
                    "messaging_product": "whatsapp",
                    "url": format!("{}/media-bytes/{id}", this.base),
                    "mime_type": "image/png",
                    "sha256": "e2e",
                    "file_size": PNG.len(),
                    "id": id,
                }))
                .into_response()
            } else {
                // A profile (Messenger / Instagram user).
                axum::Json(json!({"first_name": "Jane", "last_name": "Doe", "name": "Jane Doe", "username": "jane.doe", "id": id}))
                    .into_response()
            }
        }
        _ => error(StatusCode::NOT_FOUND, 100, "Unsupported request"),
    }
}

impl FakeGraph {
    /// Starts on a free loopback port.
    pub async fn start() -> FakeGraph {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let this = FakeGraph {
            base: format!("http://{}", listener.local_addr().unwrap()),
            state: Arc::default(),
        };
        let app = axum::Router::new().fallback(graph).with_state(this.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        this
    }

    /// Answer the next `n` sends with Meta's throttling error.
    pub fn throttle_sends(&self, n: u32) {
        self.state.lock().unwrap().throttle_sends = n;
    }

    /// Fail the next `n` media downloads with 500.
    pub fn fail_media(&self, n: u32) {
        self.state.lock().unwrap().fail_media = n;
    }

    /// Everything received so far.
    pub fn requests(&self) -> Vec<GraphRequest> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The sends (`POST …/messages`) received so far.
    pub fn sends(&self) -> Vec<GraphRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/messages"))
            .collect()
    }

    /// Waits until at least `n` sends arrived.
    pub async fn wait_for_sends(&self, n: usize, within: Duration) -> Vec<GraphRequest> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let r = self.sends();
            if r.len() >= n || tokio::time::Instant::now() > deadline {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// `sha256=<hex>` of the body under the app secret, as Meta signs webhooks.
pub fn meta_signature(body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(META_APP_SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A WhatsApp Cloud API webhook body carrying `messages` (and `statuses`) for
/// the number `phone_number_id`, from `wa_id` named `name`.
pub fn whatsapp_payload(
    phone_number_id: &str,
    wa_id: &str,
    name: &str,
    messages: Vec<Value>,
    statuses: Vec<Value>,
) -> Value {
    let mut value = json!({
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": phone_number_id},
    });
    if !messages.is_empty() {
        value["contacts"] = json!([{"profile": {"name": name}, "wa_id": wa_id}]);
        value["messages"] = Value::Array(messages);
    }
    if !statuses.is_empty() {
        value["statuses"] = Value::Array(statuses);
    }
    json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "WABA1", "changes": [{"field": "messages", "value": value}]}]
    })
}

/// A Messenger-platform webhook body (`object` is `page` or `instagram`).
pub fn messaging_payload(object: &str, page_id: &str, events: Vec<Value>) -> Value {
    json!({
        "object": object,
        "entry": [{"id": page_id, "time": 1_700_000_000_000u64, "messaging": events}]
    })
}
