//! `sms-twilio`: Switchboard's channel connector for Twilio-compatible SMS and
//! MMS, on plugin API `switchboard:plugin@0.2.0`.
//!
//! - Inbound: Twilio's form-encoded webhook at `/hooks/sms-twilio[/…]`, checked
//!   against `X-Twilio-Signature` ([`signature`] builds the signed bytes; the
//!   host computes the HMAC with `auth_token`, [`switchboard_sdk::signing`]), answered with an empty TwiML
//!   `<Response/>`. Messages become `message` events (plus a `consent` event for
//!   STOP/START/HELP keywords); status callbacks become `receipt` events
//!   ([`inbound`]). Twilio's webhooks carry no send or status time, so
//!   `sent-at-ms` and the receipts' `at-ms` stay empty and the host uses the
//!   time it received them.
//! - Media: `MediaUrl{n}` become attachments; `fetch-attachment` tells the host
//!   to download them with the account's HTTP Basic credentials, which Twilio
//!   requires when media authentication is on ([`media`]).
//! - Outbound: `POST {api_base}/2010-04-01/Accounts/{account_sid}/Messages.json`
//!   with HTTP Basic auth, and `{webhook-base}/status` as the status callback
//!   ([`outbound`]).
//! - Capabilities ([`capabilities`]): no messaging window, bodies up to 1600
//!   characters, MMS attachments (10 files of up to 5 MiB: images, video,
//!   audio, PDF), delivery receipts but no read receipts; no templates and no
//!   interactive messages.
//!
//! The provider logic lives in plain modules that compile natively for unit
//! tests; this file only reads config and talks to the host.

pub mod inbound;
pub mod media;
pub mod outbound;
pub mod signature;

use switchboard_sdk::http::{self, Request};
use switchboard_sdk::signing::{self, Algorithm};
use switchboard_sdk::{
    Attachment, AttachmentDownload, AttachmentLimits, Capabilities, Channel, ChannelInfo,
    HttpRequest, HttpResponse, OutboundMessage, PluginError, SendReceipt, WebhookOutcome, config,
};

const DEFAULT_API_BASE: &str = media::TWILIO_API;
const EMPTY_TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#;

/// What Twilio carries: a body of up to 1600 characters (Twilio refuses
/// longer ones), and for MMS up to 10 files of at most 5 MiB each.
pub fn capabilities() -> Capabilities {
    Capabilities {
        max_body_chars: Some(1600),
        attachments: AttachmentLimits {
            max_count: 10,
            max_bytes: 5 * 1024 * 1024,
            content_types: ["image/*", "video/*", "audio/*", "application/pdf"]
                .map(String::from)
                .to_vec(),
        },
        delivery_receipts: true,
        read_receipts: false,
        ..Capabilities::default()
    }
}

struct TwilioSms;

impl Channel for TwilioSms {
    fn describe() -> ChannelInfo {
        ChannelInfo::new("sms", inbound::PHONE, "Twilio SMS").with(capabilities())
    }

    fn handle_webhook(request: HttpRequest) -> Result<WebhookOutcome, PluginError> {
        // Twilio signs the POST parameters; a GET webhook carries them in the
        // URL, which is signed as it is.
        let is_post = request.method.eq_ignore_ascii_case("POST");
        let signed_params = if is_post { request.form() } else { Vec::new() };
        let provided = request
            .header("X-Twilio-Signature")
            .ok_or_else(|| PluginError::Unauthorized("missing X-Twilio-Signature header".into()))?;
        // The host checks the MAC with the auth token, which this call never
        // reads; a value that is not base64 never matches.
        let matches = match signature::decode(provided) {
            Some(mac) => signing::verify_hmac(
                Algorithm::Sha1,
                "auth_token",
                &signature::signed_data(&request.url, &signed_params),
                &mac,
            )?,
            None => false,
        };
        if !matches {
            return Err(PluginError::Unauthorized(
                "X-Twilio-Signature does not match the request".into(),
            ));
        }

        let params = if is_post {
            signed_params
        } else {
            request.query()
        };
        Ok(WebhookOutcome {
            response: HttpResponse::xml(200, EMPTY_TWIML),
            events: inbound::events(&params)?,
        })
    }

    fn send(message: OutboundMessage) -> Result<SendReceipt, PluginError> {
        let account_sid = config::require("account_sid")?;
        let auth_token = config::require("auth_token")?;
        let from_number = config::require("from_number")?;
        let api_base = config::get_or("api_base", DEFAULT_API_BASE);
        let status_callback = config::webhook_base().map(|base| format!("{base}/status"));

        let form = outbound::form(&message, &from_number, status_callback.as_deref())?;
        let response = http::send(
            Request::post(outbound::messages_url(&api_base, &account_sid))
                .basic_auth(&account_sid, &auth_token)
                .header("accept", "application/json")
                .form(form),
        )?;
        outbound::receipt(&response)
    }

    fn fetch_attachment(attachment: Attachment) -> Result<AttachmentDownload, PluginError> {
        let account_sid = config::require("account_sid")?;
        let auth_token = config::require("auth_token")?;
        let api_base = config::get_or("api_base", DEFAULT_API_BASE);
        Ok(AttachmentDownload::Request(media::download_request(
            &attachment.url,
            &api_base,
            &account_sid,
            &auth_token,
        )))
    }
}

switchboard_sdk::export_channel!(TwilioSms);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_are_twilio_mms() {
        let c = capabilities();
        assert_eq!(c.window_secs, None);
        assert_eq!(c.human_window_secs, None);
        assert_eq!(c.max_body_chars, Some(1600));
        assert_eq!(c.attachments.max_count, 10);
        assert_eq!(c.attachments.max_bytes, 5 << 20);
        assert_eq!(
            c.attachments.content_types,
            ["image/*", "video/*", "audio/*", "application/pdf"]
        );
        assert!(c.delivery_receipts && !c.read_receipts);
        assert!(!c.templates && !c.interactive);
        assert_eq!(c.poll_interval_ms, None);
    }
}
