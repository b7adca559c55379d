//! Meta's side of the three Meta connectors (`whatsapp-cloud`, `messenger`,
//! `instagram`): signed webhooks, the verification handshake, Graph API
//! answers, and what a Graph API call carried.
//!
//! Signatures are computed here from Meta's documented scheme
//! (`sha256=` + hex HMAC-SHA256 of the raw body keyed with the app secret),
//! independently of the plugins' own code.

#![allow(dead_code)]

use hmac::{Hmac, Mac};
use sha2::Sha256;
use switchboard_harness::bindings::{
    Attachment, ChannelEvent, DeliveryReceipt, Identity, InboundMessage, OutboundMetadata,
    WindowUse,
};
use switchboard_harness::{
    Harness, HttpRequest, OutboundMessage, OutboundRequest, OutboundResponse, PluginError,
    WebhookOutcome, webhook,
};

pub const APP_SECRET: &str = "meta-app-secret";
pub const VERIFY_TOKEN: &str = "verify-me-42";
pub const ACCESS_TOKEN: &str = "EAAGtestaccesstoken";
pub const GRAPH: &str = "https://graph.facebook.com/v21.0";
/// Where downloads go in these tests (allowed at load time).
pub const LOCAL_ORIGIN: &str = "http://127.0.0.1:9";

/// `X-Hub-Signature-256` for `body`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A notification POST to `url`, with this signature header (or none).
pub fn post(url: &str, body: &str, signature: Option<&str>) -> HttpRequest {
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(signature) = signature {
        headers.push(("X-Hub-Signature-256", signature));
    }
    webhook(url, &headers, body.as_bytes())
}

/// A notification POST signed with the app secret.
pub fn signed(url: &str, body: &str) -> HttpRequest {
    post(url, body, Some(&signature(APP_SECRET, body.as_bytes())))
}

/// Meta's verification GET.
pub fn handshake(url: &str, token: &str, challenge: &str) -> HttpRequest {
    HttpRequest {
        method: "GET".into(),
        url: format!("{url}?hub.mode=subscribe&hub.verify_token={token}&hub.challenge={challenge}"),
        headers: Vec::new(),
        body: Vec::new(),
    }
}

pub async fn accepted(h: &Harness, request: &HttpRequest) -> WebhookOutcome {
    h.handle_webhook(request)
        .await
        .expect("the call completes")
        .expect("the webhook is accepted")
}

pub async fn refused(h: &Harness, request: &HttpRequest) -> PluginError {
    match h.handle_webhook(request).await.expect("the call completes") {
        Ok(outcome) => panic!("expected a refusal, got {} events", outcome.events.len()),
        Err(error) => error,
    }
}

pub async fn send(h: &Harness, message: &OutboundMessage) -> Result<String, PluginError> {
    h.send(message)
        .await
        .expect("the call completes")
        .map(|receipt| receipt.provider_id)
}

pub fn messages(events: &[ChannelEvent]) -> Vec<&InboundMessage> {
    events
        .iter()
        .filter_map(|event| match event {
            ChannelEvent::Message(message) => Some(message),
            _ => None,
        })
        .collect()
}

pub fn receipts(events: &[ChannelEvent]) -> Vec<&DeliveryReceipt> {
    events
        .iter()
        .filter_map(|event| match event {
            ChannelEvent::Receipt(receipt) => Some(receipt),
            _ => None,
        })
        .collect()
}

pub fn identity(kind: &str, value: &str) -> Identity {
    Identity {
        kind: kind.into(),
        value: value.into(),
    }
}

pub fn assert_identity(identity: &Identity, kind: &str, value: &str) {
    assert_eq!(
        (identity.kind.as_str(), identity.value.as_str()),
        (kind, value)
    );
}

pub fn attachment(url: &str, content_type: Option<&str>) -> Attachment {
    Attachment {
        url: url.into(),
        content_type: content_type.map(str::to_owned),
        filename: None,
        size: None,
        content: None,
        content_id: None,
    }
}

/// A reply as the host builds it inside the window.
pub fn outbound(to: Identity, body: &str) -> OutboundMessage {
    OutboundMessage {
        message_id: "msg-1".into(),
        conversation_id: "conv-1".into(),
        to,
        from: None,
        body: body.into(),
        attachments: Vec::new(),
        template: None,
        interactive: None,
        metadata: OutboundMetadata {
            subject: None,
            thread_id: None,
            in_reply_to: None,
            references: Vec::new(),
        },
        author: Some("Grace".into()),
        window: WindowUse::Open,
    }
}

/// Exactly `N` recorded requests.
pub fn requests<const N: usize>(h: &Harness) -> [OutboundRequest; N] {
    let all = h.http().requests();
    let count = all.len();
    all.try_into()
        .unwrap_or_else(|all| panic!("expected {N} requests, got {count}: {all:?}"))
}

pub fn header<'a>(request: &'a OutboundRequest, name: &str) -> Option<&'a str> {
    request
        .headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

/// The JSON body of a recorded request.
pub fn json(request: &OutboundRequest) -> serde_json::Value {
    serde_json::from_slice(&request.body).expect("a JSON body")
}

/// Asserts a Graph API call: method, URL, bearer token.
pub fn assert_graph_call(request: &OutboundRequest, method: &str, url: &str) {
    assert_eq!(request.method, method, "{request:?}");
    assert_eq!(request.uri, url);
    assert_eq!(
        header(request, "authorization"),
        Some(format!("Bearer {ACCESS_TOKEN}").as_str()),
        "every Graph call carries the access token"
    );
}

pub fn response_content_type(outcome: &WebhookOutcome) -> Option<&str> {
    outcome
        .response
        .headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        .map(|(_, value)| value.as_str())
}

/// A raw response, for downloads.
pub fn file_response(content_type: &str, body: &[u8]) -> OutboundResponse {
    OutboundResponse {
        status: 200,
        headers: vec![("content-type".into(), content_type.into())],
        body: body.to_vec().into(),
    }
}
