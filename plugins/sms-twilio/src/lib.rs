//! `sms-twilio`: Switchboard's channel connector for Twilio-compatible SMS.
//!
//! - Inbound: Twilio's form-encoded webhook at `/hooks/sms-twilio[/…]`, checked
//!   against `X-Twilio-Signature` ([`signature`]), answered with an empty TwiML
//!   `<Response/>`. Messages become `message` events (plus a `consent` event for
//!   STOP/START/HELP keywords); status callbacks become `receipt` events
//!   ([`inbound`]).
//! - Outbound: `POST {api_base}/2010-04-01/Accounts/{account_sid}/Messages.json`
//!   with HTTP Basic auth, and `{webhook-base}/status` as the status callback
//!   ([`outbound`]).
//!
//! The provider logic lives in plain modules that compile natively for unit
//! tests; this file only reads config and talks to the host.

pub mod inbound;
pub mod outbound;
pub mod signature;

use switchboard_sdk::http::{self, Request};
use switchboard_sdk::{
    Channel, ChannelInfo, HttpRequest, HttpResponse, OutboundMessage, PluginError, SendReceipt,
    WebhookOutcome, config,
};

const DEFAULT_API_BASE: &str = "https://api.twilio.com";
const EMPTY_TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#;

struct TwilioSms;

impl Channel for TwilioSms {
    fn describe() -> ChannelInfo {
        ChannelInfo {
            supports_media: true,
            supports_receipts: true,
            ..ChannelInfo::new("sms", inbound::PHONE, "Twilio SMS")
        }
    }

    fn handle_webhook(request: HttpRequest) -> Result<WebhookOutcome, PluginError> {
        let auth_token = config::require("auth_token")?;
        // Twilio signs the POST parameters; a GET webhook carries them in the
        // URL, which is signed as it is.
        let is_post = request.method.eq_ignore_ascii_case("POST");
        let signed_params = if is_post { request.form() } else { Vec::new() };
        let provided = request
            .header("X-Twilio-Signature")
            .ok_or_else(|| PluginError::Unauthorized("missing X-Twilio-Signature header".into()))?;
        if !signature::verify(&auth_token, &request.url, &signed_params, provided) {
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
}

switchboard_sdk::export_channel!(TwilioSms);
