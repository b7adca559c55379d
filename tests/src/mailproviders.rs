//! Stand-ins for the sending APIs of Mailgun and Postmark, and the signed (or
//! credentialed) postings their inbound routes and webhooks make.
//!
//! Each stand-in checks what the real API checks and records every request,
//! whatever it answered:
//!
//! - [`FakeMailgun`]: `POST /v3/{domain}/messages.mime` (and `/messages`) with
//!   HTTP Basic `api:{key}` (401 `Forbidden` otherwise), an unknown domain 404,
//!   a `multipart/form-data` body with `to` and, for `messages.mime`, the MIME
//!   as the file `message` (400 with Mailgun's wording when one is missing);
//!   it answers `{"id": "<…@domain>", "message": "Queued. Thank you."}`.
//! - [`FakePostmark`]: `POST /email` with `X-Postmark-Server-Token` (401 with
//!   `ErrorCode` 10 otherwise), `Accept` and `Content-Type: application/json`,
//!   a JSON body with `From`, `To`, a `TextBody` or `HtmlBody`, `Headers` as
//!   `{Name, Value}` and `Attachments` as `{Name, Content (base64),
//!   ContentType}` (422 with Postmark's error codes otherwise); it answers
//!   `{"To", "SubmittedAt", "MessageID": <uuid>, "ErrorCode": 0, "Message": "OK"}`.
//!
//! Scripted bad days: the next `n` sends answered with a status of the test's
//! choice ([`FakeMailgun::fail_next`], [`FakePostmark::fail_next`]), and a key
//! revoked at the provider ([`FakeMailgun::revoke_key`],
//! [`FakePostmark::revoke_token`]) so the installed one is refused from then on.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};

/// The Mailgun sending key the connector is installed with.
pub const MAILGUN_API_KEY: &str = "e2e-mailgun-api-key-3f9c0a7d";
/// The Mailgun HTTP webhook signing key inbound postings are signed with.
pub const MAILGUN_SIGNING_KEY: &str = "e2e-mailgun-signing-key-8b21";
/// The Mailgun sending domain.
pub const MAILGUN_DOMAIN: &str = "mg.example.com";
/// The Postmark server token the connector is installed with.
pub const POSTMARK_SERVER_TOKEN: &str = "e2e-postmark-server-token-51d2";
/// The user of the Basic credentials in the Postmark webhook URLs.
pub const POSTMARK_WEBHOOK_USER: &str = "postmark-hook";
/// Their password.
pub const POSTMARK_WEBHOOK_PASSWORD: &str = "e2e-postmark-hook-pass-77";

/// One field of a `multipart/form-data` body: text or a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormField {
    /// The field's name.
    pub name: String,
    /// The file name, for a file.
    pub filename: Option<String>,
    /// The part's `Content-Type`, if it had one.
    pub content_type: Option<String>,
    /// The bytes.
    pub data: Vec<u8>,
}

impl FormField {
    /// A text field.
    pub fn text(name: &str, value: &str) -> FormField {
        FormField {
            name: name.to_string(),
            filename: None,
            content_type: None,
            data: value.as_bytes().to_vec(),
        }
    }

    /// A file field.
    pub fn file(name: &str, filename: &str, content_type: &str, data: &[u8]) -> FormField {
        FormField {
            name: name.to_string(),
            filename: Some(filename.to_string()),
            content_type: Some(content_type.to_string()),
            data: data.to_vec(),
        }
    }

    /// The value as text (invalid UTF-8 replaced).
    pub fn value(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// A `multipart/form-data` body of `fields`: its content type and bytes, with a
/// random boundary (checked not to occur in the data).
pub fn multipart(fields: &[FormField]) -> (String, Vec<u8>) {
    let boundary = loop {
        let b = format!("------e2e{}", hex::encode(rand::random::<[u8; 12]>()));
        if !fields
            .iter()
            .any(|f| f.data.windows(b.len()).any(|w| w == b.as_bytes()))
        {
            break b;
        }
    };
    let mut body = Vec::new();
    for field in fields {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let mut disposition = format!("Content-Disposition: form-data; name=\"{}\"", field.name);
        if let Some(filename) = &field.filename {
            disposition.push_str(&format!("; filename=\"{filename}\""));
        }
        body.extend_from_slice(disposition.as_bytes());
        body.extend_from_slice(b"\r\n");
        if let Some(ct) = &field.content_type {
            body.extend_from_slice(format!("Content-Type: {ct}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(&field.data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from > haystack.len() {
        return None;
    }
    haystack[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// A parameter (`boundary`, `name`, `filename`) of a header value; quotes removed.
fn param(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// Parses a `multipart/form-data` body strictly (CRLF line ends, every part
/// named, a closing delimiter), as a provider's front end would.
pub fn parse_multipart(content_type: &str, body: &[u8]) -> Result<Vec<FormField>, String> {
    let (mime, _) = content_type.split_once(';').unwrap_or((content_type, ""));
    if !mime.trim().eq_ignore_ascii_case("multipart/form-data") {
        return Err(format!("not multipart/form-data but `{content_type}`"));
    }
    let boundary = param(content_type, "boundary").ok_or("no boundary")?;
    let open = format!("--{boundary}\r\n");
    let next = format!("\r\n--{boundary}");
    if !body.starts_with(open.as_bytes()) {
        return Err("the body does not start with the boundary".into());
    }
    let mut at = open.len();
    let mut fields = Vec::new();
    loop {
        let header_end = find(body, b"\r\n\r\n", at).ok_or("part headers never end")?;
        let headers = String::from_utf8_lossy(&body[at..header_end]).into_owned();
        let data_start = header_end + 4;
        let data_end = find(body, next.as_bytes(), data_start).ok_or("a part never ends")?;
        let mut field = FormField {
            name: String::new(),
            filename: None,
            content_type: None,
            data: body[data_start..data_end].to_vec(),
        };
        for line in headers.split("\r\n") {
            let Some((k, v)) = line.split_once(':') else {
                return Err(format!("bad part header line `{line}`"));
            };
            if k.trim().eq_ignore_ascii_case("content-disposition") {
                if !v.trim().starts_with("form-data") {
                    return Err(format!("not form-data: `{v}`"));
                }
                field.name = param(v, "name").ok_or("a part without a name")?;
                field.filename = param(v, "filename");
            } else if k.trim().eq_ignore_ascii_case("content-type") {
                field.content_type = Some(v.trim().to_string());
            }
        }
        if field.name.is_empty() {
            return Err("a part without Content-Disposition".into());
        }
        fields.push(field);
        at = data_end + next.len();
        if body[at..].starts_with(b"--") {
            return Ok(fields);
        }
        if !body[at..].starts_with(b"\r\n") {
            return Err("garbage after a boundary".into());
        }
        at += 2;
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// A random UUID (v4), as Postmark's message ids are.
fn uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Polls `get` until it holds at least `n` items or `within` runs out.
async fn wait_until<T>(n: usize, within: Duration, get: impl Fn() -> Vec<T>) -> Vec<T> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let r = get();
        if r.len() >= n || tokio::time::Instant::now() > deadline {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

// ---------------------------------------------------------------- Mailgun ---

/// One request the Mailgun stand-in received, and what it answered.
#[derive(Debug, Clone)]
pub struct MailgunRequest {
    /// `POST`, …
    pub method: String,
    /// The path.
    pub path: String,
    /// The Authorization header.
    pub authorization: Option<String>,
    /// The Content-Type header.
    pub content_type: Option<String>,
    /// The form fields (empty when the body was not multipart).
    pub fields: Vec<FormField>,
    /// The status answered.
    pub status: u16,
    /// The JSON answered (`null` for a text answer).
    pub answer: Value,
}

impl MailgunRequest {
    /// Every value of the text field `name`.
    pub fn values(&self, name: &str) -> Vec<String> {
        self.fields
            .iter()
            .filter(|f| f.name == name)
            .map(FormField::value)
            .collect()
    }

    /// The MIME message uploaded as `message`.
    pub fn mime(&self) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|f| f.name == "message")
            .map(|f| f.data.as_slice())
    }

    /// Whether Mailgun accepted it.
    pub fn accepted(&self) -> bool {
        self.status == 200
    }
}

#[derive(Default)]
struct MailgunState {
    requests: Vec<MailgunRequest>,
    api_key: String,
    fail: VecDeque<u16>,
    queued: u32,
}

/// The stand-in Mailgun API.
#[derive(Clone)]
pub struct FakeMailgun {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    state: Arc<Mutex<MailgunState>>,
}

fn mailgun_answer(
    state: &mut MailgunState,
    method: &Method,
    path: &str,
    authorization: Option<&str>,
    fields: &Result<Vec<FormField>, String>,
) -> (u16, Value) {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (domain, endpoint) = match parts.as_slice() {
        ["v3", domain, endpoint] if *endpoint == "messages.mime" || *endpoint == "messages" => {
            (*domain, *endpoint)
        }
        _ => return (404, json!({"message": "Not Found"})),
    };
    if method != Method::POST {
        return (405, json!({"message": "Method Not Allowed"}));
    }
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("api:{}", state.api_key))
    );
    if authorization != Some(expected.as_str()) {
        // Mailgun answers a bad key with a bare `Forbidden`.
        return (401, Value::Null);
    }
    if domain != MAILGUN_DOMAIN {
        return (
            404,
            json!({"message": format!("Domain not found: {domain}")}),
        );
    }
    if let Some(status) = state.fail.pop_front() {
        return (status, json!({"message": "Internal Server Error"}));
    }
    let fields = match fields {
        Ok(f) => f,
        Err(e) => return (400, json!({"message": format!("malformed request: {e}")})),
    };
    let to: Vec<&FormField> = fields.iter().filter(|f| f.name == "to").collect();
    if to.is_empty()
        || to
            .iter()
            .all(|f| f.data.iter().all(u8::is_ascii_whitespace))
    {
        return (400, json!({"message": "'to' parameter is missing"}));
    }
    if endpoint == "messages.mime" {
        match fields.iter().find(|f| f.name == "message") {
            Some(m) if m.filename.is_some() && !m.data.is_empty() => {}
            Some(_) => {
                return (400, json!({"message": "'message' parameter is not a file"}));
            }
            None => return (400, json!({"message": "'message' parameter is missing"})),
        }
    } else if !fields.iter().any(|f| f.name == "from") {
        return (400, json!({"message": "'from' parameter is missing"}));
    }
    state.queued += 1;
    (
        200,
        json!({
            "id": format!("<{}.{}.{}@{MAILGUN_DOMAIN}>", unix_now(), std::process::id(), state.queued),
            "message": "Queued. Thank you.",
        }),
    )
}

async fn mailgun(
    State(this): State<FakeMailgun>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let authorization = header(&headers, "authorization");
    let content_type = header(&headers, "content-type");
    let fields = parse_multipart(content_type.as_deref().unwrap_or(""), &body);
    let mut s = this.state.lock().unwrap();
    let (status, answer) = mailgun_answer(
        &mut s,
        &method,
        uri.path(),
        authorization.as_deref(),
        &fields,
    );
    s.requests.push(MailgunRequest {
        method: method.to_string(),
        path: uri.path().to_string(),
        authorization,
        content_type,
        fields: fields.unwrap_or_default(),
        status,
        answer: answer.clone(),
    });
    let code = StatusCode::from_u16(status).unwrap();
    if answer.is_null() {
        (code, "Forbidden").into_response()
    } else {
        (code, axum::Json(answer)).into_response()
    }
}

impl FakeMailgun {
    /// Starts on a free loopback port, accepting [`MAILGUN_API_KEY`].
    pub async fn start() -> FakeMailgun {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let this = FakeMailgun {
            base: format!("http://{}", listener.local_addr().unwrap()),
            state: Arc::new(Mutex::new(MailgunState {
                api_key: MAILGUN_API_KEY.to_string(),
                ..MailgunState::default()
            })),
        };
        let app = axum::Router::new()
            .fallback(mailgun)
            .with_state(this.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        this
    }

    /// Answer the next `n` authorized sends with `status`.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.state.lock().unwrap().fail.extend(vec![status; n]);
    }

    /// The key is revoked: only `new_key` is accepted from now on.
    pub fn revoke_key(&self, new_key: &str) {
        self.state.lock().unwrap().api_key = new_key.to_string();
    }

    /// Everything received so far.
    pub fn requests(&self) -> Vec<MailgunRequest> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Waits until at least `n` requests arrived.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<MailgunRequest> {
        wait_until(n, within, || self.requests()).await
    }
}

/// Mailgun's webhook signature: hex HMAC-SHA256 of `timestamp` then `token`.
pub fn mailgun_signature(signing_key: &str, timestamp: &str, token: &str) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(signing_key.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(token.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// `fields` with Mailgun's `timestamp`, `token` and `signature` added, signed
/// at `timestamp` with `signing_key`.
pub fn mailgun_signed(
    mut fields: Vec<FormField>,
    signing_key: &str,
    timestamp: u64,
) -> Vec<FormField> {
    let timestamp = timestamp.to_string();
    let token = hex::encode(rand::random::<[u8; 25]>());
    let signature = mailgun_signature(signing_key, &timestamp, &token);
    fields.push(FormField::text("timestamp", &timestamp));
    fields.push(FormField::text("token", &token));
    fields.push(FormField::text("signature", &signature));
    fields
}

// --------------------------------------------------------------- Postmark ---

/// One request the Postmark stand-in received, and what it answered.
#[derive(Debug, Clone)]
pub struct PostmarkRequest {
    /// `POST`, …
    pub method: String,
    /// The path.
    pub path: String,
    /// `X-Postmark-Server-Token`.
    pub server_token: Option<String>,
    /// `Accept`.
    pub accept: Option<String>,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// The JSON body (`null` when it was not JSON).
    pub json: Value,
    /// The status answered.
    pub status: u16,
    /// The JSON answered.
    pub answer: Value,
}

impl PostmarkRequest {
    /// The value of the custom header `name` in `Headers`.
    pub fn header(&self, name: &str) -> Option<String> {
        self.json["Headers"].as_array()?.iter().find_map(|h| {
            h["Name"]
                .as_str()
                .filter(|n| n.eq_ignore_ascii_case(name))
                .and_then(|_| h["Value"].as_str().map(str::to_string))
        })
    }

    /// Whether Postmark accepted it.
    pub fn accepted(&self) -> bool {
        self.status == 200
    }
}

#[derive(Default)]
struct PostmarkState {
    requests: Vec<PostmarkRequest>,
    token: String,
    fail: VecDeque<u16>,
}

/// The stand-in Postmark API.
#[derive(Clone)]
pub struct FakePostmark {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    state: Arc<Mutex<PostmarkState>>,
}

fn postmark_error(status: u16, code: u32, message: &str) -> (u16, Value) {
    (status, json!({"ErrorCode": code, "Message": message}))
}

fn is_json(value: Option<&str>) -> bool {
    value.is_some_and(|v| v.to_ascii_lowercase().contains("application/json"))
}

fn postmark_answer(
    state: &mut PostmarkState,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> (u16, Value) {
    if path != "/email" {
        return postmark_error(404, 0, "Not found");
    }
    if method != Method::POST {
        return postmark_error(405, 0, "Method not allowed");
    }
    match header(headers, "x-postmark-server-token") {
        None => {
            return postmark_error(
                401,
                10,
                "No Account or Server API tokens were supplied in the HTTP headers. Please add a \
                 header for either X-Postmark-Server-Token or X-Postmark-Account-Token.",
            );
        }
        Some(t) if t != state.token => {
            return postmark_error(
                401,
                10,
                "The Server Token you provided in the X-Postmark-Server-Token request header was \
                 invalid. Please verify that you are using a valid token.",
            );
        }
        Some(_) => {}
    }
    if !is_json(header(headers, "accept").as_deref()) {
        return postmark_error(406, 0, "The Accept header must be application/json.");
    }
    if !is_json(header(headers, "content-type").as_deref()) {
        return postmark_error(415, 0, "The Content-Type header must be application/json.");
    }
    if let Some(status) = state.fail.pop_front() {
        return (status, Value::Null);
    }
    let Ok(mail) = serde_json::from_slice::<Value>(body) else {
        return postmark_error(422, 402, "Received invalid JSON input.");
    };
    let text = |k: &str| mail[k].as_str().filter(|s| !s.trim().is_empty());
    if text("From").is_none() {
        return postmark_error(422, 300, "Invalid 'From' address: ''.");
    }
    let Some(to) = text("To") else {
        return postmark_error(422, 300, "Zero recipients specified");
    };
    if text("TextBody").is_none() && text("HtmlBody").is_none() {
        return postmark_error(
            422,
            300,
            "Provide either email TextBody or HtmlBody or both.",
        );
    }
    if let Some(headers) = mail.get("Headers").filter(|h| !h.is_null()) {
        let ok = headers.as_array().is_some_and(|list| {
            list.iter()
                .all(|h| h["Name"].as_str().is_some() && h["Value"].as_str().is_some())
        });
        if !ok {
            return postmark_error(422, 300, "Invalid 'Headers': expected [{Name, Value}].");
        }
    }
    if let Some(files) = mail.get("Attachments").filter(|a| !a.is_null()) {
        let ok = files.as_array().is_some_and(|list| {
            list.iter().all(|f| {
                f["Name"].as_str().is_some()
                    && f["ContentType"].as_str().is_some()
                    && f["Content"].as_str().is_some_and(|c| {
                        base64::engine::general_purpose::STANDARD.decode(c).is_ok()
                    })
            })
        });
        if !ok {
            return postmark_error(422, 300, "Invalid 'Attachments'.");
        }
    }
    (
        200,
        json!({
            "To": to,
            "SubmittedAt": "2026-12-07T04:00:00.0000000Z",
            "MessageID": uuid(),
            "ErrorCode": 0,
            "Message": "OK",
        }),
    )
}

async fn postmark(
    State(this): State<FakePostmark>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut s = this.state.lock().unwrap();
    let (status, answer) = postmark_answer(&mut s, &method, uri.path(), &headers, &body);
    s.requests.push(PostmarkRequest {
        method: method.to_string(),
        path: uri.path().to_string(),
        server_token: header(&headers, "x-postmark-server-token"),
        accept: header(&headers, "accept"),
        content_type: header(&headers, "content-type"),
        json: serde_json::from_slice(&body).unwrap_or(Value::Null),
        status,
        answer: answer.clone(),
    });
    let code = StatusCode::from_u16(status).unwrap();
    if answer.is_null() {
        (code, "Internal Server Error").into_response()
    } else {
        (code, axum::Json(answer)).into_response()
    }
}

impl FakePostmark {
    /// Starts on a free loopback port, accepting [`POSTMARK_SERVER_TOKEN`].
    pub async fn start() -> FakePostmark {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let this = FakePostmark {
            base: format!("http://{}", listener.local_addr().unwrap()),
            state: Arc::new(Mutex::new(PostmarkState {
                token: POSTMARK_SERVER_TOKEN.to_string(),
                ..PostmarkState::default()
            })),
        };
        let app = axum::Router::new()
            .fallback(postmark)
            .with_state(this.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        this
    }

    /// Answer the next `n` authorized sends with `status` (a text body).
    pub fn fail_next(&self, n: usize, status: u16) {
        self.state.lock().unwrap().fail.extend(vec![status; n]);
    }

    /// The token is revoked: only `new_token` is accepted from now on.
    pub fn revoke_token(&self, new_token: &str) {
        self.state.lock().unwrap().token = new_token.to_string();
    }

    /// Everything received so far.
    pub fn requests(&self) -> Vec<PostmarkRequest> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Waits until at least `n` requests arrived.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<PostmarkRequest> {
        wait_until(n, within, || self.requests()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_round_trips_and_broken_bodies_are_refused() {
        let fields = vec![
            FormField::text("to", "a@example.org"),
            FormField::file(
                "message",
                "message.mime",
                "message/rfc822",
                b"Subject: x\r\n\r\nhi",
            ),
        ];
        let (ct, body) = multipart(&fields);
        assert_eq!(parse_multipart(&ct, &body).unwrap(), fields);
        assert!(parse_multipart("application/json", &body).is_err());
        assert!(parse_multipart(&ct, &body[..body.len() - 10]).is_err());
    }

    #[test]
    fn signatures_and_ids() {
        let token = "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0";
        let sig = mailgun_signature("key", "1529006854", token);
        assert_eq!(sig.len(), 64);
        assert_eq!(sig, mailgun_signature("key", "1529006854", token));
        assert_ne!(sig, mailgun_signature("other", "1529006854", token));
        let u = uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }
}
