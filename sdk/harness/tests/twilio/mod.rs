//! Twilio as both builds of the `sms-twilio` connector see it (the current one
//! and the plugin API 0.1.0 fixture): the account, signed webhooks, and what
//! a Messages API call carries.
//!
//! Signatures are computed here from Twilio's documented algorithm
//! (base64(HMAC-SHA1(auth token, URL + every POST parameter sorted by name,
//! name then value))), independently of the plugin's own code.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use switchboard_harness::bindings::Identity;
use switchboard_harness::{HttpRequest, OutboundRequest, webhook};

pub const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
pub const AUTH_TOKEN: &str = "test-auth-token";
pub const FROM_NUMBER: &str = "+15550001111";
pub const API_BASE: &str = "https://api.twilio.com";
pub const WEBHOOK_BASE: &str = "https://sb.example.com/hooks/sms-twilio";
pub const CUSTOMER: &str = "+15551234567";
pub const MEDIA_URL: &str = "https://api.twilio.com/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages/MM1/Media/ME1";

/// The account config every test loads the connector with.
pub fn account() -> Vec<(&'static str, &'static str)> {
    vec![
        ("account_sid", ACCOUNT_SID),
        ("auth_token", AUTH_TOKEN),
        ("from_number", FROM_NUMBER),
    ]
}

/// `X-Twilio-Signature` for a POST to `url` with these parameters.
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut data = url.to_owned();
    for (name, value) in sorted {
        data.push_str(name);
        data.push_str(value);
    }
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// `params` as a form body.
pub fn form(params: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

/// A webhook POST to `url` carrying `params`, with this signature header (or none).
pub fn twilio_post(url: &str, params: &[(&str, &str)], signature: Option<&str>) -> HttpRequest {
    let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
    if let Some(signature) = signature {
        headers.push(("X-Twilio-Signature", signature));
    }
    webhook(url, &headers, form(params).as_bytes())
}

/// A webhook POST to `url` carrying `params`, signed with the right token.
pub fn signed(url: &str, params: &[(&str, &str)]) -> HttpRequest {
    let signature = twilio_signature(AUTH_TOKEN, url, params);
    twilio_post(url, params, Some(&signature))
}

/// An inbound SMS as Twilio posts it.
pub fn inbound_sms(body: &str) -> Vec<(&str, &str)> {
    vec![
        ("ToCountry", "US"),
        ("SmsMessageSid", "SM0123456789abcdef0123456789abcdef"),
        ("NumMedia", "0"),
        ("SmsSid", "SM0123456789abcdef0123456789abcdef"),
        ("SmsStatus", "received"),
        ("Body", body),
        ("To", FROM_NUMBER),
        ("NumSegments", "1"),
        ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
        ("AccountSid", ACCOUNT_SID),
        ("From", CUSTOMER),
        ("ApiVersion", "2010-04-01"),
    ]
}

/// A phone identity.
pub fn phone(value: &str) -> Identity {
    Identity {
        kind: "phone".into(),
        value: value.into(),
    }
}

/// `Authorization` for the account: `Basic base64(account_sid:auth_token)`.
pub fn basic_credentials() -> String {
    format!(
        "Basic {}",
        STANDARD.encode(format!("{ACCOUNT_SID}:{AUTH_TOKEN}"))
    )
}

/// A header of a request the connector made.
pub fn header<'a>(request: &'a OutboundRequest, name: &str) -> Option<&'a str> {
    request
        .headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

/// The form a request the connector made carries.
pub fn form_fields(request: &OutboundRequest) -> Vec<(String, String)> {
    form_urlencoded::parse(&request.body).into_owned().collect()
}

/// One field of a form.
pub fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// Where a new message is posted under `api_base`.
pub fn messages_url(api_base: &str) -> String {
    format!("{api_base}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json")
}
