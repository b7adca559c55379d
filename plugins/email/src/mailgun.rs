//! Mailgun: inbound routes and sending through the API.
//!
//! - Inbound: a route `forward("https://…/hooks/{id}/mailgun")` posts each
//!   message (form fields, files as multipart), signed with the account's
//!   HTTP webhook signing key: `signature` = hex HMAC-SHA256 of `timestamp`
//!   followed by `token`. A posting older than 15 minutes or signed with
//!   another key is refused, and so is a token already seen with other
//!   content ([`replay`]; the same token with the same content is Mailgun
//!   retrying, and accepted). With `body-mime` (a route whose URL ends in
//!   `mime`, or store-and-notify) the message is read from its MIME, exactly
//!   like polled mail; otherwise from the parsed fields.
//! - Outbound: `POST {api_base}/v3/{domain}/messages.mime` with the MIME the
//!   connector built (so every header, the Message-ID above all, is ours)
//!   and every envelope recipient in `to`.
//! - Delivery failures: a webhook for the `permanent_fail` event at
//!   `…/hooks/{id}/mailgun/events` posts JSON (`signature` {timestamp, token,
//!   signature}, `event-data`); a `failed` event with severity `permanent`
//!   becomes a `failed` receipt of the reply whose Message-ID it names, with
//!   the SMTP code and description. Temporary failures change nothing
//!   (Mailgun retries them itself).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use switchboard_sdk::http::{Request, Response};
use switchboard_sdk::mail::MailBatch;
use switchboard_sdk::{
    DeliveryReceipt, DeliveryStatus, HttpRequest, HttpResponse, PluginError, SendReceipt, webhook,
};

use crate::formdata::{self, Field};
use crate::inbound::fields::{FieldAttachment, FieldMail};
use crate::inbound::{self, Context, LargeParts};
use crate::outbound::Mail;
use crate::settings::Mailgun;
use crate::store::Store;

pub mod replay;

/// How old a signed posting may be.
pub const MAX_AGE_SECS: u64 = 15 * 60;

/// Checks Mailgun's signature of a posting; the time it was signed.
///
/// # Errors
///
/// [`PluginError::Unauthorized`] when it is missing, forged or stale.
pub fn verify(
    signing_key: &str,
    timestamp: &str,
    token: &str,
    signature: &str,
    now_secs: u64,
) -> Result<u64, PluginError> {
    let signed_at: u64 = timestamp
        .trim()
        .parse()
        .map_err(|_| PluginError::Unauthorized("Mailgun timestamp missing or malformed".into()))?;
    if now_secs.abs_diff(signed_at) > MAX_AGE_SECS {
        return Err(PluginError::Unauthorized(format!(
            "Mailgun posting signed {} s from now, more than {MAX_AGE_SECS} s",
            now_secs.abs_diff(signed_at)
        )));
    }
    let signature = decode_hex(signature.trim())
        .ok_or_else(|| PluginError::Unauthorized("Mailgun signature is not hex".into()))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(signing_key.as_bytes())
        .map_err(|_| PluginError::Config("`mailgun_signing_key` is unusable".into()))?;
    mac.update(timestamp.trim().as_bytes());
    mac.update(token.as_bytes());
    mac.verify_slice(&signature)
        .map_err(|_| PluginError::Unauthorized("Mailgun signature does not match".into()))?;
    Ok(signed_at)
}

/// Refuses a verified token already seen with other content ([`replay`]);
/// its record lasts as long as the signature stays fresh.
fn check_replay(
    store: &mut dyn Store,
    token: &str,
    content: [u8; 32],
    signed_at: u64,
    now_secs: u64,
) -> Result<(), PluginError> {
    let valid_until = signed_at.saturating_add(MAX_AGE_SECS);
    if let replay::Seen::New { evicted } =
        replay::check(store, token, content, valid_until, now_secs)?
        && evicted > 0
    {
        crate::warn(format_args!(
            "{evicted} fresh Mailgun token record(s) dropped to make room: those postings \
             are no longer checked for replay"
        ));
    }
    Ok(())
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || text.len() > 256 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The fields of a posting, form-encoded or multipart.
///
/// # Errors
///
/// [`PluginError::InvalidRequest`] for a malformed multipart body.
pub fn fields(request: &HttpRequest) -> Result<Vec<Field>, PluginError> {
    let content_type = request.header("content-type").unwrap_or_default();
    if let Some(boundary) = formdata::boundary(content_type) {
        return formdata::parse(&request.body, &boundary)
            .map_err(|e| PluginError::InvalidRequest(format!("Mailgun posting: {e}")));
    }
    Ok(request
        .form()
        .into_iter()
        .map(|(name, value)| Field {
            name,
            filename: None,
            content_type: None,
            data: value.into_bytes(),
        })
        .collect())
}

fn field<'a>(fields: &'a [Field], name: &str) -> Option<&'a Field> {
    fields.iter().find(|f| f.name == name)
}

fn text(fields: &[Field], name: &str) -> Option<String> {
    field(fields, name)
        .map(Field::text)
        .filter(|t| !t.trim().is_empty())
}

/// One inbound posting: verified (signature, freshness, replay), then read.
///
/// # Errors
///
/// [`PluginError::Unauthorized`] for a bad signature or a replayed token,
/// [`PluginError::InvalidRequest`] for a malformed posting.
pub fn handle(
    request: &HttpRequest,
    settings: &Mailgun,
    address: &str,
    now_secs: u64,
    store: &mut dyn Store,
) -> Result<MailBatch, PluginError> {
    if !request.method.eq_ignore_ascii_case("POST") {
        return Err(PluginError::InvalidRequest(
            "Mailgun routes post; this was not a POST".into(),
        ));
    }
    if webhook::url_path(&request.url).ends_with("/mailgun/events") {
        return handle_event(request, settings, now_secs, store);
    }
    let fields = fields(request)?;
    let token = text(&fields, "token").unwrap_or_default();
    let signed_at = verify(
        &settings.signing_key,
        &text(&fields, "timestamp").unwrap_or_default(),
        &token,
        &text(&fields, "signature").unwrap_or_default(),
        now_secs,
    )?;
    check_replay(
        store,
        &token,
        replay::form_digest(&fields),
        signed_at,
        now_secs,
    )?;

    let raw = match field(&fields, "body-mime").filter(|f| !f.data.is_empty()) {
        Some(mime) => mime.data.clone(),
        None => field_mail(&fields).to_mime(),
    };
    let context = Context {
        address,
        large_parts: LargeParts::Drop,
    };
    let parsed = inbound::parse(&raw, &context, Vec::new());
    let mut batch = MailBatch {
        response: Some(HttpResponse::text(200, "ok")),
        ..MailBatch::default()
    };
    batch
        .events
        .push(switchboard_sdk::ChannelEvent::Message(parsed.message));
    batch.envelopes.push(parsed.envelope);
    if let Some(receipt) = parsed.receipt {
        batch
            .events
            .push(switchboard_sdk::ChannelEvent::Receipt(receipt));
    }
    Ok(batch)
}

/// A delivery event (`…/mailgun/events`): verified like a posting, then a
/// permanent failure becomes a `failed` receipt; other events are answered
/// and change nothing.
fn handle_event(
    request: &HttpRequest,
    settings: &Mailgun,
    now_secs: u64,
    store: &mut dyn Store,
) -> Result<MailBatch, PluginError> {
    let body: serde_json::Value = serde_json::from_slice(&request.body).map_err(|e| {
        PluginError::InvalidRequest(format!("Mailgun event: the body is not JSON: {e}"))
    })?;
    let text = |v: &serde_json::Value, key: &str| -> String {
        match v.get(key) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => String::new(),
        }
    };
    let signature = body.get("signature").cloned().unwrap_or_default();
    let token = text(&signature, "token");
    let signed_at = verify(
        &settings.signing_key,
        &text(&signature, "timestamp"),
        &token,
        &text(&signature, "signature"),
        now_secs,
    )?;
    check_replay(
        store,
        &token,
        replay::json_digest(&body),
        signed_at,
        now_secs,
    )?;
    let mut batch = MailBatch {
        response: Some(HttpResponse::text(200, "ok")),
        ..MailBatch::default()
    };
    let data = body.get("event-data").cloned().unwrap_or_default();
    let permanent = text(&data, "event") == "failed" && text(&data, "severity") == "permanent";
    let message_id = data
        .pointer("/message/headers/message-id")
        .and_then(serde_json::Value::as_str)
        .map(|id| {
            id.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
        .filter(|id| !id.is_empty());
    if let (true, Some(provider_id)) = (permanent, message_id) {
        let status = data.get("delivery-status").cloned().unwrap_or_default();
        let code = text(&status, "code");
        let reason = [text(&status, "description"), text(&status, "message")]
            .into_iter()
            .find(|t| !t.trim().is_empty())
            .unwrap_or_else(|| "permanent failure".to_owned());
        let recipient = text(&data, "recipient");
        let mut receipt = DeliveryReceipt::new(provider_id, DeliveryStatus::Failed);
        receipt.error_code = (!code.is_empty()).then_some(code);
        receipt.error_message = Some(
            if recipient.is_empty() {
                reason
            } else {
                format!("{recipient}: {reason}")
            }
            .chars()
            .take(500)
            .collect(),
        );
        receipt.at_ms = data
            .get("timestamp")
            .and_then(serde_json::Value::as_f64)
            .map(|t| (t * 1000.0) as u64);
        batch
            .events
            .push(switchboard_sdk::ChannelEvent::Receipt(receipt));
    }
    Ok(batch)
}

/// A posting without `body-mime`, as a message.
pub fn field_mail(fields: &[Field]) -> FieldMail {
    let mut mail = FieldMail::default();
    if let Some(headers) = text(fields, "message-headers")
        .and_then(|json| serde_json::from_str::<Vec<(String, String)>>(&json).ok())
    {
        mail.headers = headers;
    }
    for (header, name) in [
        ("From", "from"),
        ("To", "To"),
        ("Cc", "Cc"),
        ("Subject", "subject"),
        ("Date", "Date"),
        ("Message-ID", "Message-Id"),
        ("In-Reply-To", "In-Reply-To"),
        ("References", "References"),
        ("Reply-To", "Reply-To"),
    ] {
        if let Some(value) = text(fields, name) {
            mail.default_header(header, value);
        }
    }
    if let Some(sender) = text(fields, "sender") {
        mail.default_header("From", sender);
    }
    if let Some(recipient) = text(fields, "recipient") {
        mail.default_header("To", recipient.clone());
        mail.default_header("X-Original-To", recipient);
    }
    if !mail.has("Message-ID") {
        // Stable across Mailgun's retries of the same message.
        let mut stable = Vec::new();
        for name in [
            "from",
            "recipient",
            "subject",
            "Date",
            "body-plain",
            "body-html",
        ] {
            stable.extend_from_slice(text(fields, name).unwrap_or_default().as_bytes());
            stable.push(0);
        }
        let id = inbound::hashed_id(&stable);
        mail.headers.push(("Message-ID".into(), format!("<{id}>")));
    }
    mail.text = text(fields, "body-plain");
    mail.html = text(fields, "body-html");
    let content_ids: Vec<(String, String)> = text(fields, "content-id-map")
        .and_then(|json| {
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&json).ok()
        })
        .map(|map| {
            map.into_iter()
                .filter_map(|(cid, field)| {
                    Some((
                        field.as_str()?.to_owned(),
                        crate::address::strip_id(&cid).to_owned(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    for file in fields.iter().filter(|f| f.filename.is_some()) {
        mail.attachments.push(FieldAttachment {
            filename: file.filename.clone(),
            content_type: file.content_type.clone(),
            content_id: content_ids
                .iter()
                .find(|(field, _)| *field == file.name)
                .map(|(_, cid)| cid.clone()),
            data: file.data.clone(),
        });
    }
    mail
}

/// The API request that sends `mail`.
pub fn send_request(settings: &Mailgun, mail: &Mail) -> Request {
    let fields = vec![
        Field {
            name: "to".into(),
            filename: None,
            content_type: None,
            data: mail.recipients().join(",").into_bytes(),
        },
        Field {
            name: "message".into(),
            filename: Some("message.mime".into()),
            content_type: Some("message/rfc822".into()),
            data: mail.to_mime(),
        },
    ];
    let (content_type, body) = formdata::build(&fields);
    Request::post(format!(
        "{}/v3/{}/messages.mime",
        settings.api_base, settings.domain
    ))
    .basic_auth("api", &settings.api_key)
    .header("accept", "application/json")
    .header("content-type", content_type)
    .body(body)
}

/// What Mailgun's answer means. The receipt's provider id is the
/// Message-ID the connector wrote, which replies and bounces name.
///
/// # Errors
///
/// [`PluginError::Config`] for a refused key or domain, else by status.
pub fn receipt(response: &Response, mail: &Mail) -> Result<SendReceipt, PluginError> {
    if response.is_success() {
        return Ok(SendReceipt::sent(mail.message_id.clone()));
    }
    let detail = serde_json::from_slice::<serde_json::Value>(&response.body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_else(|| response.text().chars().take(300).collect());
    Err(match response.status {
        401 | 403 => {
            PluginError::Config(format!("Mailgun refused the API key or domain: {detail}"))
        }
        404 => PluginError::Config(format!("Mailgun does not know the domain: {detail}")),
        _ => response.failure(format!("Mailgun: {detail}")),
    })
}

/// Whether `request` is for this module (`…/mailgun`, `…/mailgun/mime`).
pub fn is_for(request: &HttpRequest) -> bool {
    crate::hook_kind(webhook::url_path(&request.url)) == Some("mailgun")
}

#[cfg(test)]
mod tests;
