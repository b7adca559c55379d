//! whatsapp-cloud's `handle-webhook` for an inbound text message: the signed
//! webhook the benchmark sends, and the connector's work done natively, the
//! baseline of its connector call cost.
//!
//! The same steps as plugins/whatsapp-cloud (`connector.rs` `Settings::from_config`
//! and `handle_webhook`) over plugins/meta-common (`webhook.rs`, `signature.rs`):
//! the seven config lookups, the `X-Hub-Signature-256` check
//! (`sha256=hex(HMAC-SHA256(raw body, app_secret))`, constant-time compare), the
//! body parsed with serde_json into the connector's own shapes (`inbound.rs`,
//! every field it declares), the events and the `EVENT_RECEIVED` answer — built as
//! the host's own types, so the benchmark can check that both sides return the
//! same outcome. Only text messages are handled natively; other message types and
//! delivery statuses are not part of the benchmark and are refused.

use std::collections::HashMap;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Deserializer};
use sha2::Sha256;
use switchboard_plugin_host::bindings::{Identity, InboundMessage};
use switchboard_plugin_host::{ChannelEvent, HttpRequest, HttpResponse, WebhookOutcome};

use super::shapes::{header, no_metadata};
use crate::sample::MESSAGE_TEXT;

pub const PLUGIN_ID: &str = "whatsapp-cloud";
pub const HOOK_URL: &str = "https://switchboard.example.com/hooks/whatsapp-cloud";
const APP_SECRET: &str = "bench-app-secret-0c3e57a1";
const PHONE_NUMBER_ID: &str = "106540352242922";
const DISPLAY_NUMBER: &str = "15550783881";
const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";
const WHATSAPP: &str = "whatsapp";
const OBJECT: &str = "whatsapp_business_account";

/// The connector's config in the benchmark.
pub fn config() -> HashMap<String, String> {
    [
        ("app_secret", APP_SECRET),
        ("verify_token", "bench-verify-token"),
        ("access_token", "EAAGbench"),
        ("phone_number_id", PHONE_NUMBER_ID),
        ("business_account_id", "102290129340398"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// `sha256=` and the lower-case hex HMAC-SHA256 of `body` keyed with `secret`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// What the Cloud API posts for one inbound text message (with the sender's
/// profile), signed, with the headers Meta sends.
pub fn request(message_id: &str, from_digits: &str) -> HttpRequest {
    let body = serde_json::json!({
        "object": OBJECT,
        "entry": [{
            "id": "102290129340398",
            "changes": [{
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {
                        "display_phone_number": DISPLAY_NUMBER,
                        "phone_number_id": PHONE_NUMBER_ID,
                    },
                    "contacts": [{"profile": {"name": "Kerry Fisher"}, "wa_id": from_digits}],
                    "messages": [{
                        "from": from_digits,
                        "id": message_id,
                        "timestamp": "1765065600",
                        "text": {"body": MESSAGE_TEXT},
                        "type": "text",
                    }],
                },
                "field": "messages",
            }],
        }],
    })
    .to_string()
    .into_bytes();
    HttpRequest {
        method: "POST".into(),
        url: HOOK_URL.into(),
        headers: vec![
            ("host".into(), "switchboard.example.com".into()),
            ("user-agent".into(), "facebookexternalua".into()),
            ("content-length".into(), body.len().to_string()),
            ("accept".into(), "*/*".into()),
            ("accept-encoding".into(), "deflate, gzip".into()),
            ("content-type".into(), "application/json".into()),
            (
                "x-hub-signature".into(),
                "sha1=0000000000000000000000000000000000000000".into(),
            ),
            ("x-hub-signature-256".into(), sign(APP_SECRET, &body)),
        ],
        body,
    }
}

/// The connector's `Settings::from_config`: what a call reads before it looks at
/// the request.
struct Settings {
    app_secret: String,
    #[allow(dead_code)] // Read for the GET handshake, which the benchmark does not send.
    verify_token: String,
    phone_number_id: String,
    #[allow(dead_code)] // Read by every call, used for templates.
    business_account_id: Option<String>,
    #[allow(dead_code)] // Read by every call, used to send.
    graph: (String, String, String),
}

impl Settings {
    fn from_config(config: &HashMap<String, String>) -> Result<Settings, String> {
        let get = |key: &str| config.get(key).cloned();
        let require = |key: &str| {
            get(key)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("config `{key}` is required but not set"))
        };
        let get_or = |key: &str, default: &str| {
            get(key)
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_owned())
        };
        Ok(Settings {
            app_secret: require("app_secret")?,
            verify_token: require("verify_token")?,
            phone_number_id: require("phone_number_id")?,
            business_account_id: get("business_account_id")
                .map(|id| id.trim().to_owned())
                .filter(|id| !id.is_empty()),
            graph: {
                let api_base = get_or("api_base", "https://graph.facebook.com");
                let version = get_or("graph_version", "v21.0");
                let token = require("access_token")?;
                (
                    api_base.trim_end_matches('/').to_owned(),
                    version.trim_matches('/').to_owned(),
                    token,
                )
            },
        })
    }
}

/// Verifies and parses one WhatsApp notification.
pub fn handle_webhook(
    config: &HashMap<String, String>,
    request: &HttpRequest,
) -> Result<WebhookOutcome, String> {
    let settings = Settings::from_config(config)?;
    if !request.method.eq_ignore_ascii_case("POST") {
        return Err("only POST is handled natively".into());
    }
    verify_signature(
        &settings.app_secret,
        &request.body,
        header(&request.headers, SIGNATURE_HEADER),
    )?;
    Ok(WebhookOutcome {
        response: HttpResponse {
            status: 200,
            headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
            body: b"EVENT_RECEIVED".to_vec(),
        },
        events: events(&request.body, Some(&settings.phone_number_id))?,
    })
}

fn verify_signature(secret: &str, body: &[u8], header: Option<&str>) -> Result<(), String> {
    const PREFIX: &str = "sha256=";
    let header = header
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .ok_or_else(|| format!("missing {SIGNATURE_HEADER} header"))?;
    let hex = header
        .get(..PREFIX.len())
        .filter(|prefix| prefix.eq_ignore_ascii_case(PREFIX))
        .map(|_| &header[PREFIX.len()..])
        .ok_or_else(|| format!("{SIGNATURE_HEADER} is not of the form sha256=<hex>"))?;
    let provided =
        hex::decode(hex).map_err(|_| format!("{SIGNATURE_HEADER} is not hexadecimal"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    mac.verify_slice(&provided)
        .map_err(|_| format!("{SIGNATURE_HEADER} does not match the body"))
}

fn events(body: &[u8], phone_number_id: Option<&str>) -> Result<Vec<ChannelEvent>, String> {
    let notification: Notification = serde_json::from_slice(body)
        .map_err(|e| format!("WhatsApp webhook body is not JSON: {e}"))?;
    if notification.object != OBJECT {
        return Ok(Vec::new());
    }
    let mut events = Vec::new();
    for change in notification.entry.into_iter().flat_map(|e| e.changes) {
        if change.field.as_deref().is_some_and(|f| f != "messages") {
            continue;
        }
        let Some(value) = change.value else { continue };
        let number = value.metadata.as_ref();
        let other_number = matches!(
            (phone_number_id, number.and_then(|m| m.phone_number_id.as_deref())),
            (Some(ours), Some(theirs)) if ours != theirs
        );
        if other_number {
            continue;
        }
        if !value.statuses.is_empty() {
            return Err("delivery statuses are not part of the benchmark".into());
        }
        let recipient = number
            .and_then(|m| m.display_phone_number.as_deref())
            .map(digits)
            .filter(|d| !d.is_empty())
            .map(|d| Identity {
                kind: WHATSAPP.into(),
                value: format!("+{d}"),
            });
        for message in value.messages {
            if let Some(inbound) = message_event(message, &value.contacts, recipient.as_ref())? {
                events.push(ChannelEvent::Message(inbound));
            }
        }
    }
    Ok(events)
}

fn digits(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

fn message_event(
    message: Message,
    contacts: &[Contact],
    recipient: Option<&Identity>,
) -> Result<Option<InboundMessage>, String> {
    let Some(from) = message
        .from
        .as_deref()
        .map(digits)
        .filter(|d| !d.is_empty())
    else {
        return Ok(None);
    };
    let Some(id) = message.id.clone().filter(|id| !id.is_empty()) else {
        return Ok(None);
    };
    let name = contacts
        .iter()
        .find(|c| c.wa_id.as_deref() == Some(from.as_str()))
        .or(contacts.first())
        .and_then(|c| c.profile.as_ref()?.name.clone())
        .filter(|name| !name.trim().is_empty());
    if message.kind != "text" {
        return Err(format!(
            "`{}` messages are not part of the benchmark",
            message.kind
        ));
    }
    let mut metadata = no_metadata();
    metadata.in_reply_to = message
        .context
        .as_ref()
        .and_then(|c| c.id.clone())
        .filter(|id| !id.is_empty());
    Ok(Some(InboundMessage {
        provider_id: id,
        sender: Identity {
            kind: WHATSAPP.into(),
            value: format!("+{from}"),
        },
        recipient: recipient.cloned(),
        sender_name: name,
        body: message.text.and_then(|t| t.body).unwrap_or_default(),
        html_body: None,
        attachments: Vec::new(),
        sent_at_ms: message.timestamp,
        metadata,
    }))
}

// The connector's shapes (plugins/whatsapp-cloud/src/inbound.rs), every field it
// declares, so serde does the same work on both sides.

#[derive(Deserialize)]
struct Notification {
    #[serde(default)]
    object: String,
    #[serde(default)]
    entry: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    changes: Vec<Change>,
}

#[derive(Deserialize)]
struct Change {
    #[serde(default)]
    field: Option<String>,
    #[serde(default)]
    value: Option<Value>,
}

#[derive(Deserialize)]
struct Value {
    #[serde(default)]
    metadata: Option<Metadata>,
    #[serde(default)]
    contacts: Vec<Contact>,
    #[serde(default)]
    messages: Vec<Message>,
    #[serde(default)]
    statuses: Vec<Status>,
}

#[derive(Deserialize)]
struct Metadata {
    #[serde(default)]
    display_phone_number: Option<String>,
    #[serde(default)]
    phone_number_id: Option<String>,
}

#[derive(Deserialize)]
struct Contact {
    #[serde(default)]
    profile: Option<Profile>,
    #[serde(default)]
    wa_id: Option<String>,
}

#[derive(Deserialize)]
struct Profile {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
#[allow(dead_code)] // Parsed like the connector does; only text is built natively.
struct Message {
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default, deserialize_with = "millis")]
    timestamp: Option<u64>,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    context: Option<Context>,
    #[serde(default)]
    text: Option<Text>,
    #[serde(default)]
    image: Option<Media>,
    #[serde(default)]
    video: Option<Media>,
    #[serde(default)]
    audio: Option<Media>,
    #[serde(default)]
    document: Option<Media>,
    #[serde(default)]
    sticker: Option<Media>,
    #[serde(default)]
    location: Option<LocationIn>,
    #[serde(default)]
    contacts: Vec<ContactCard>,
    #[serde(default)]
    interactive: Option<Interactive>,
    #[serde(default)]
    button: Option<Button>,
    #[serde(default)]
    reaction: Option<ReactionIn>,
    #[serde(default)]
    system: Option<Text>,
}

#[derive(Deserialize)]
struct Context {
    #[serde(default)]
    id: Option<String>,
}

#[derive(Deserialize)]
struct Text {
    #[serde(default)]
    body: Option<String>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Media {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    mime_type: Option<String>,
    #[serde(default)]
    caption: Option<String>,
    #[serde(default)]
    filename: Option<String>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct LocationIn {
    #[serde(default, deserialize_with = "lenient_f64")]
    latitude: Option<f64>,
    #[serde(default, deserialize_with = "lenient_f64")]
    longitude: Option<f64>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    address: Option<String>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct ContactCard {
    #[serde(default)]
    name: Option<CardName>,
    #[serde(default)]
    phones: Vec<CardPhone>,
    #[serde(default)]
    emails: Vec<CardEmail>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct CardName {
    #[serde(default)]
    formatted_name: Option<String>,
    #[serde(default)]
    first_name: Option<String>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct CardPhone {
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    wa_id: Option<String>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct CardEmail {
    #[serde(default)]
    email: Option<String>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Interactive {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    button_reply: Option<Reply>,
    #[serde(default)]
    list_reply: Option<Reply>,
    #[serde(default)]
    nfm_reply: Option<Text>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Reply {
    #[serde(default)]
    id: String,
    #[serde(default)]
    title: String,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Button {
    #[serde(default)]
    payload: Option<String>,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct ReactionIn {
    #[serde(default)]
    message_id: Option<String>,
    #[serde(default)]
    emoji: Option<String>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Status {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    status: String,
    #[serde(default, deserialize_with = "millis")]
    timestamp: Option<u64>,
    #[serde(default)]
    errors: Vec<StatusError>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct StatusError {
    #[serde(default)]
    code: Option<serde_json::Value>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    error_data: Option<ErrorData>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct ErrorData {
    #[serde(default)]
    details: Option<String>,
}

/// meta-common's `text::millis`: seconds or milliseconds, number or string.
fn millis<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    Ok(value
        .and_then(|value| match value {
            serde_json::Value::Number(n) => n
                .as_u64()
                .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
            serde_json::Value::String(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        })
        .map(|v| {
            if v < 100_000_000_000 {
                v.saturating_mul(1000)
            } else {
                v
            }
        }))
}

/// meta-common's `text::lenient_f64`.
fn lenient_f64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    Ok(value.and_then(|value| match value {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_like_meta() {
        // RFC 4231 test case 2, as plugins/meta-common/src/signature.rs checks it.
        assert_eq!(
            sign("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn verifies_and_parses() {
        let request = request("wamid.1", "16315551181");
        let out = handle_webhook(&config(), &request).unwrap();
        match out.events.as_slice() {
            [ChannelEvent::Message(m)] => {
                assert_eq!(m.provider_id, "wamid.1");
                assert_eq!(m.sender.value, "+16315551181");
                assert_eq!(m.recipient.as_ref().unwrap().value, "+15550783881");
                assert_eq!(m.sender_name.as_deref(), Some("Kerry Fisher"));
                assert_eq!(m.body, MESSAGE_TEXT);
                assert_eq!(m.sent_at_ms, Some(1_765_065_600_000));
            }
            other => panic!("{other:?}"),
        }
        let mut forged = request.clone();
        forged.body.push(b' ');
        assert!(handle_webhook(&config(), &forged).is_err());
    }
}
