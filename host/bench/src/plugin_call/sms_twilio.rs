//! sms-twilio's `handle-webhook` for an inbound SMS, natively: the baseline of
//! its connector call cost.
//!
//! The same steps as plugins/sms-twilio (`lib.rs` `handle_webhook`,
//! `inbound.rs`): the `auth_token` config lookup, form parsing, the
//! `X-Twilio-Signature` check (HMAC-SHA1, constant-time compare), the message
//! and consent events, the empty TwiML answer — built as the host's own types,
//! so the benchmark can check that both sides return the same outcome.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::Mac;
use switchboard_plugin_host::bindings::{ConsentAction, ConsentEvent, Identity, InboundMessage};
use switchboard_plugin_host::{
    Attachment, ChannelEvent, HttpRequest, HttpResponse, WebhookOutcome,
};

use super::shapes::{header, no_metadata};
use crate::twilio::{EMPTY_TWIML, twilio_mac};

const PHONE: &str = "phone";

fn form_value<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Verifies and parses one inbound-SMS webhook. Status callbacks and GET
/// webhooks are not part of the benchmark and are refused.
pub fn handle_webhook(
    config: &HashMap<String, String>,
    request: &HttpRequest,
) -> Result<WebhookOutcome, String> {
    let auth_token = config
        .get("auth_token")
        .filter(|v| !v.is_empty())
        .cloned()
        .ok_or("config `auth_token` is required but not set")?;
    if !request.method.eq_ignore_ascii_case("POST") {
        return Err("only POST is handled natively".into());
    }
    let params: Vec<(String, String)> =
        form_urlencoded::parse(&request.body).into_owned().collect();
    let provided = header(&request.headers, "X-Twilio-Signature")
        .ok_or("missing X-Twilio-Signature header")?;
    let provided = STANDARD
        .decode(provided.trim())
        .map_err(|_| "X-Twilio-Signature does not match the request")?;
    twilio_mac(&auth_token, &request.url, &params)
        .verify_slice(&provided)
        .map_err(|_| "X-Twilio-Signature does not match the request")?;
    if let Some(status) = form_value(&params, "MessageStatus")
        && !matches!(status, "received" | "receiving")
    {
        return Err("status callbacks are not part of the benchmark".into());
    }
    Ok(WebhookOutcome {
        response: HttpResponse {
            status: 200,
            headers: vec![("content-type".into(), "text/xml".into())],
            body: EMPTY_TWIML.as_bytes().to_vec(),
        },
        events: message(&params)?,
    })
}

fn message(params: &[(String, String)]) -> Result<Vec<ChannelEvent>, String> {
    let required = |name: &str| {
        form_value(params, name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("missing `{name}`"))
    };
    let optional = |name: &str| {
        form_value(params, name)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let provider_id = required("MessageSid")?;
    let sender = Identity {
        kind: PHONE.into(),
        value: required("From")?.to_owned(),
    };
    let body = form_value(params, "Body").unwrap_or_default();
    let media: usize = match form_value(params, "NumMedia") {
        None | Some("") => 0,
        Some(n) => n
            .parse()
            .map_err(|_| format!("`NumMedia` is not a count: {n}"))?,
    };
    let attachments = (0..media)
        .map(|i| {
            Ok(Attachment {
                url: required(&format!("MediaUrl{i}"))?.to_owned(),
                content_type: optional(&format!("MediaContentType{i}")),
                filename: None,
                size: None,
                content: None,
                content_id: None,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let consent = match body.trim().to_uppercase().as_str() {
        "STOP" | "STOPALL" | "UNSUBSCRIBE" | "CANCEL" | "END" | "QUIT" => {
            Some(ConsentAction::OptOut)
        }
        "START" | "YES" | "UNSTOP" => Some(ConsentAction::OptIn),
        "HELP" | "INFO" => Some(ConsentAction::Help),
        _ => None,
    }
    .map(|action| ConsentEvent {
        provider_id: format!("{provider_id}:consent"),
        identity: sender.clone(),
        action,
        keyword: body.trim().to_owned(),
    });
    let message = InboundMessage {
        provider_id: provider_id.to_owned(),
        sender,
        recipient: optional("To").map(|to| Identity {
            kind: PHONE.into(),
            value: to,
        }),
        sender_name: optional("ProfileName"),
        body: body.to_owned(),
        html_body: None,
        attachments,
        sent_at_ms: None,
        metadata: no_metadata(),
    };
    let mut events = vec![ChannelEvent::Message(message)];
    events.extend(consent.map(ChannelEvent::Consent));
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::MESSAGE_TEXT;
    use crate::twilio::{Webhook, twilio_config};

    #[test]
    fn verifies_and_parses() {
        let url = "https://sb.example.com/hooks/sms-twilio/inbound";
        let w = Webhook::new(url, "SM1", "+14155550123");
        let request = w.to_request(url, "sb.example.com");
        let out = handle_webhook(&twilio_config(), &request).unwrap();
        assert!(matches!(
            out.events.as_slice(),
            [ChannelEvent::Message(m)] if m.provider_id == "SM1" && m.body == MESSAGE_TEXT
        ));
        let mut forged = request.clone();
        forged.url = "https://evil.example.com/hooks/sms-twilio/inbound".into();
        assert!(handle_webhook(&twilio_config(), &forged).is_err());
    }
}
