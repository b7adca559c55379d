//! Postmark: inbound and bounce webhooks, and sending through the API.
//!
//! - Webhooks post JSON to `/hooks/{id}/postmark` with Basic credentials in
//!   the URL (`https://user:password@…`), checked in constant time.
//!   `RecordType: Inbound` (or none) is a message, rebuilt as MIME and read
//!   like polled mail; `Bounce` is a `failed` receipt of the message named
//!   by the `switchboard_message_id` metadata the connector sends with each
//!   mail (Postmark's own `MessageID` when it is missing); other record
//!   types are acknowledged and ignored.
//! - Outbound: `POST {api_base}/email` with the server token. The receipt's
//!   provider id is the Message-ID the connector wrote (as with every
//!   provider), not Postmark's `MessageID`, so replies and bounces name it.

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_sdk::http::{Request, Response};
use switchboard_sdk::mail::MailBatch;
use switchboard_sdk::{
    ChannelEvent, DeliveryReceipt, DeliveryStatus, HttpRequest, HttpResponse, PluginError,
    SendReceipt, webhook,
};

use crate::inbound::fields::{FieldAttachment, FieldMail};
use crate::inbound::{self, Context, LargeParts};
use crate::outbound::Mail;
use crate::settings::Postmark;

/// Metadata key that carries our Message-ID through Postmark to bounces.
pub const MESSAGE_ID_METADATA: &str = "switchboard_message_id";

/// Checks the webhook's Basic credentials.
///
/// # Errors
///
/// [`PluginError::Unauthorized`] when they are missing or wrong.
pub fn authorize(request: &HttpRequest, user: &str, password: &str) -> Result<(), PluginError> {
    let provided = request
        .header("authorization")
        .and_then(|value| {
            let (scheme, credentials) = value.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("basic")
                .then(|| credentials.trim().to_owned())
        })
        .and_then(|credentials| {
            base64::engine::general_purpose::STANDARD
                .decode(credentials)
                .ok()
        })
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| {
            PluginError::Unauthorized("Postmark webhook without Basic credentials".into())
        })?;
    let expected = format!("{user}:{password}");
    if webhook::secrets_match(&provided, &expected) {
        Ok(())
    } else {
        Err(PluginError::Unauthorized(
            "Postmark webhook credentials do not match".into(),
        ))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Contact {
    email: String,
    name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct NameValue {
    name: String,
    value: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct InboundAttachment {
    name: Option<String>,
    content: String,
    content_type: Option<String>,
    #[serde(rename = "ContentID")]
    content_id: Option<String>,
}

/// What a Postmark webhook posts; every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Posting {
    record_type: Option<String>,
    #[serde(rename = "MessageID")]
    message_id: Option<String>,
    date: Option<String>,
    subject: Option<String>,
    from: Option<String>,
    from_full: Option<Contact>,
    to: Option<String>,
    to_full: Vec<Contact>,
    cc: Option<String>,
    cc_full: Vec<Contact>,
    reply_to: Option<String>,
    original_recipient: Option<String>,
    text_body: Option<String>,
    html_body: Option<String>,
    headers: Vec<NameValue>,
    attachments: Vec<InboundAttachment>,
    // Bounces.
    #[serde(rename = "Type")]
    bounce_type: Option<String>,
    type_code: Option<Value>,
    email: Option<String>,
    description: Option<String>,
    details: Option<String>,
    bounced_at: Option<String>,
    metadata: Option<serde_json::Map<String, Value>>,
}

/// One webhook: authorized, then read.
///
/// # Errors
///
/// [`PluginError::Unauthorized`] for wrong credentials,
/// [`PluginError::InvalidRequest`] for a body that is not Postmark's JSON.
pub fn handle(
    request: &HttpRequest,
    settings: &Postmark,
    address: &str,
) -> Result<MailBatch, PluginError> {
    authorize(request, &settings.webhook_user, &settings.webhook_password)?;
    let posting: Posting = serde_json::from_slice(&request.body)
        .map_err(|e| PluginError::InvalidRequest(format!("Postmark webhook is not JSON: {e}")))?;
    let mut batch = MailBatch {
        response: Some(HttpResponse::json(200, "{}")),
        ..MailBatch::default()
    };
    match posting.record_type.as_deref() {
        None | Some("Inbound") => {
            let raw = field_mail(&posting).to_mime();
            let context = Context {
                address,
                large_parts: LargeParts::Drop,
            };
            let parsed = inbound::parse(&raw, &context, Vec::new());
            batch.events.push(ChannelEvent::Message(parsed.message));
            batch.envelopes.push(parsed.envelope);
            if let Some(receipt) = parsed.receipt {
                batch.events.push(ChannelEvent::Receipt(receipt));
            }
        }
        Some("Bounce") => {
            if let Some(receipt) = bounce_receipt(&posting) {
                batch.events.push(ChannelEvent::Receipt(receipt));
            }
        }
        Some(_) => {}
    }
    Ok(batch)
}

fn contact(c: &Contact) -> String {
    if c.name.trim().is_empty() {
        c.email.clone()
    } else {
        format!("\"{}\" <{}>", c.name.replace(['"', '\\'], ""), c.email)
    }
}

fn contacts(full: &[Contact], plain: Option<&String>) -> Option<String> {
    if full.is_empty() {
        plain.filter(|p| !p.trim().is_empty()).cloned()
    } else {
        Some(full.iter().map(contact).collect::<Vec<_>>().join(", "))
    }
}

/// An inbound posting as a message.
fn field_mail(posting: &Posting) -> FieldMail {
    let mut mail = FieldMail {
        headers: posting
            .headers
            .iter()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect(),
        text: posting.text_body.clone(),
        html: posting.html_body.clone(),
        attachments: Vec::new(),
    };
    let from = posting
        .from_full
        .as_ref()
        .filter(|c| !c.email.is_empty())
        .map(contact)
        .or_else(|| posting.from.clone());
    if let Some(from) = from {
        mail.default_header("From", from);
    }
    if let Some(to) = contacts(&posting.to_full, posting.to.as_ref()) {
        mail.default_header("To", to);
    }
    if let Some(cc) = contacts(&posting.cc_full, posting.cc.as_ref()) {
        mail.default_header("Cc", cc);
    }
    for (name, value) in [
        ("Subject", &posting.subject),
        ("Date", &posting.date),
        ("Reply-To", &posting.reply_to),
        ("X-Original-To", &posting.original_recipient),
    ] {
        if let Some(value) = value.as_ref().filter(|v| !v.trim().is_empty()) {
            mail.default_header(name, value.clone());
        }
    }
    if !mail.has("Message-ID")
        && let Some(id) = posting
            .message_id
            .as_ref()
            .filter(|id| !id.trim().is_empty())
    {
        // Postmark's id is stable across its retries of the same message.
        mail.headers.push((
            "Message-ID".into(),
            format!("<{}@inbound.postmarkapp.com>", id.trim()),
        ));
    }
    for attachment in &posting.attachments {
        let Ok(data) = base64::engine::general_purpose::STANDARD.decode(attachment.content.trim())
        else {
            continue;
        };
        mail.attachments.push(FieldAttachment {
            filename: attachment.name.clone(),
            content_type: attachment.content_type.clone(),
            content_id: attachment
                .content_id
                .as_deref()
                .map(|cid| crate::address::strip_id(cid.trim_start_matches("cid:")).to_owned())
                .filter(|cid| !cid.is_empty()),
            data,
        });
    }
    mail
}

/// Bounce types that are final failures (not soft, not informational).
/// `Subscribe` and `Unsubscribe` are list requests answering a delivered mail.
fn is_final_bounce(kind: &str) -> bool {
    !matches!(
        kind,
        "Transient"
            | "SoftBounce"
            | "AutoResponder"
            | "Subscribe"
            | "Unsubscribe"
            | "AddressChange"
            | "DnsError"
            | "OpenRelayTest"
            | "ChallengeVerification"
    )
}

fn bounce_receipt(posting: &Posting) -> Option<DeliveryReceipt> {
    let kind = posting
        .bounce_type
        .clone()
        .unwrap_or_else(|| "Unknown".into());
    if !is_final_bounce(&kind) {
        return None;
    }
    let ours = posting
        .metadata
        .as_ref()
        .and_then(|m| m.get(MESSAGE_ID_METADATA))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let provider_id = ours.or_else(|| posting.message_id.clone())?;
    let what = [posting.description.as_deref(), posting.details.as_deref()]
        .into_iter()
        .flatten()
        .filter(|s| !s.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let message = match posting.email.as_deref() {
        Some(email) if !email.is_empty() => format!("{email}: {what}"),
        _ => what,
    };
    let at_ms = posting
        .bounced_at
        .as_deref()
        .and_then(mail_parser::DateTime::parse_rfc3339)
        .map(|d| d.to_timestamp())
        .filter(|s| *s > 0)
        .and_then(|s| u64::try_from(s).ok())
        .map(|s| s * 1000);
    let code = match &posting.type_code {
        Some(Value::Number(n)) => format!("{kind} ({n})"),
        _ => kind,
    };
    Some(DeliveryReceipt {
        provider_id,
        status: DeliveryStatus::Failed,
        error_code: Some(code),
        error_message: Some(message.chars().take(500).collect()),
        at_ms,
    })
}

/// The API request that sends `mail`.
pub fn send_request(settings: &Postmark, mail: &Mail) -> Request {
    let mut headers =
        vec![json!({"Name": "Message-ID", "Value": format!("<{}>", mail.message_id)})];
    if let Some(id) = &mail.in_reply_to {
        headers.push(json!({"Name": "In-Reply-To", "Value": format!("<{id}>")}));
    }
    if !mail.references.is_empty() {
        let references = mail
            .references
            .iter()
            .map(|id| format!("<{id}>"))
            .collect::<Vec<_>>()
            .join(" ");
        headers.push(json!({"Name": "References", "Value": references}));
    }
    if mail.automatic {
        headers.push(json!({"Name": "Auto-Submitted", "Value": "auto-generated"}));
    }
    let attachments: Vec<Value> = mail
        .files
        .iter()
        .map(|file| {
            json!({
                "Name": file.filename,
                "Content": base64::engine::general_purpose::STANDARD.encode(&file.bytes),
                "ContentType": file.content_type,
            })
        })
        .collect();
    let mut body = json!({
        "From": mail.from_header(),
        "To": mail.to,
        "Subject": mail.subject,
        "TextBody": mail.text,
        "HtmlBody": mail.html,
        "ReplyTo": mail.reply_to,
        "Headers": headers,
        "Metadata": {MESSAGE_ID_METADATA: mail.message_id},
        "MessageStream": "outbound",
    });
    if !mail.cc.is_empty() {
        body["Cc"] = Value::from(mail.cc.join(","));
    }
    if !mail.bcc.is_empty() {
        body["Bcc"] = Value::from(mail.bcc.join(","));
    }
    if !attachments.is_empty() {
        body["Attachments"] = Value::from(attachments);
    }
    Request::post(format!("{}/email", settings.api_base))
        .header("accept", "application/json")
        .header("x-postmark-server-token", settings.server_token.as_str())
        .json(body.to_string())
}

/// What Postmark's answer means.
///
/// # Errors
///
/// [`PluginError::Config`] for a refused token or sender,
/// [`PluginError::Permanent`] for a refused message or recipient,
/// otherwise by status.
pub fn receipt(response: &Response, mail: &Mail) -> Result<SendReceipt, PluginError> {
    let answer: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    let code = answer.get("ErrorCode").and_then(Value::as_i64).unwrap_or(0);
    let message = answer
        .get("Message")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if response.is_success() && code == 0 {
        return Ok(SendReceipt::sent(mail.message_id.clone()));
    }
    let detail = format!("Postmark error {code}: {message}");
    Err(match (response.status, code) {
        (401, _) | (_, 10) => PluginError::Config(detail),
        // Sender signature not confirmed or not found.
        (_, 400 | 401) => PluginError::Config(detail),
        (429, _) => PluginError::RateLimited(response.retry_after_secs()),
        (status, _) if status >= 500 => PluginError::Transient(detail),
        _ => PluginError::Permanent(detail),
    })
}

/// Whether `request` is for this module (`…/postmark`).
pub fn is_for(request: &HttpRequest) -> bool {
    crate::hook_kind(webhook::url_path(&request.url)) == Some("postmark")
}

#[cfg(test)]
mod tests;
