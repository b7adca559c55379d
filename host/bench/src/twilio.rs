//! Twilio inbound-SMS webhooks as Twilio sends them: the form fields, the
//! `X-Twilio-Signature`, the headers. Shared by the connector call cost
//! (`plugin-call`) and the end-to-end ingest runs.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use switchboard_plugin_host::HttpRequest;

use crate::sample::MESSAGE_TEXT;

pub type HmacSha1 = Hmac<Sha1>;

pub const PLUGIN_ID: &str = "sms-twilio";
pub const ACCOUNT_SID: &str = "AC5ef8732a3c49700934481addd5ce1659";
pub const AUTH_TOKEN: &str = "bench-auth-token-5f2c9a1e";
pub const OUR_NUMBER: &str = "+14155550100";
pub const HOOK_PATH: &str = "/hooks/sms-twilio/inbound";
pub const EMPTY_TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#;

/// The connector's config in the benchmarks.
pub fn twilio_config() -> HashMap<String, String> {
    [
        ("account_sid", ACCOUNT_SID),
        ("auth_token", AUTH_TOKEN),
        ("from_number", OUR_NUMBER),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The `index`th sender: +1 415 555-xxxx numbers, reserved for fiction, valid to
/// the parser.
pub fn sender_number(index: usize) -> String {
    format!("+1415555{:04}", index % 10_000)
}

/// The form fields Twilio posts for an inbound SMS, in Twilio's order.
pub fn inbound_params(message_sid: &str, from: &str) -> Vec<(String, String)> {
    [
        ("ToCountry", "US"),
        ("ToState", "CA"),
        ("SmsMessageSid", message_sid),
        ("NumMedia", "0"),
        ("ToCity", "SAN FRANCISCO"),
        ("FromZip", "94103"),
        ("SmsSid", message_sid),
        ("FromState", "CA"),
        ("SmsStatus", "received"),
        ("FromCity", "SAN FRANCISCO"),
        ("Body", MESSAGE_TEXT),
        ("FromCountry", "US"),
        ("To", OUR_NUMBER),
        ("ToZip", "94105"),
        ("NumSegments", "1"),
        ("MessageSid", message_sid),
        ("AccountSid", ACCOUNT_SID),
        ("From", from),
        ("ApiVersion", "2010-04-01"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// HMAC-SHA1 over the URL and the parameters sorted by name, as Twilio signs.
pub fn twilio_mac(auth_token: &str, url: &str, params: &[(String, String)]) -> HmacSha1 {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut mac = HmacSha1::new_from_slice(auth_token.as_bytes()).expect("HMAC takes any key");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac
}

/// `X-Twilio-Signature` for a POST to `url` with `params`.
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    STANDARD.encode(twilio_mac(auth_token, url, params).finalize().into_bytes())
}

/// One signed inbound webhook, ready to send.
#[derive(Clone)]
pub struct Webhook {
    pub message_sid: String,
    pub body: Bytes,
    pub signature: String,
    pub idempotency_token: String,
}

impl Webhook {
    pub fn new(url: &str, message_sid: &str, from: &str) -> Webhook {
        let params = inbound_params(message_sid, from);
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&params)
            .finish();
        Webhook {
            message_sid: message_sid.to_string(),
            signature: twilio_signature(AUTH_TOKEN, url, &params),
            body: Bytes::from(body),
            idempotency_token: uuid::Uuid::new_v4().to_string(),
        }
    }

    /// The request as the host hands it to the connector (headers as Twilio sends them).
    pub fn to_request(&self, url: &str, host: &str) -> HttpRequest {
        HttpRequest {
            method: "POST".into(),
            url: url.into(),
            headers: vec![
                ("host".into(), host.into()),
                (
                    "content-type".into(),
                    "application/x-www-form-urlencoded".into(),
                ),
                ("content-length".into(), self.body.len().to_string()),
                ("accept".into(), "*/*".into()),
                ("user-agent".into(), "TwilioProxy/1.1".into()),
                (
                    "i-twilio-idempotency-token".into(),
                    self.idempotency_token.clone(),
                ),
                ("x-twilio-signature".into(), self.signature.clone()),
                ("x-home-region".into(), "us1".into()),
            ],
            body: self.body.to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The independent vector from plugins/sms-twilio/src/signature.rs (Twilio's
    // documented example), so the benchmark signs exactly like Twilio.
    #[test]
    fn signs_like_twilio() {
        let params: Vec<(String, String)> = [
            ("To", "+18005551212"),
            ("Digits", "1234"),
            ("CallSid", "CA1234567890ABCDE"),
            ("From", "+12349013030"),
            ("Caller", "+12349013030"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            twilio_signature(
                "12345",
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                &params
            ),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
    }
}
