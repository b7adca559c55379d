//! Twilio's request signature (`X-Twilio-Signature`).
//!
//! The signed data is the full URL Twilio called (scheme, host, port if any,
//! path, query) followed by every POST parameter sorted by name (byte order,
//! case-sensitive), each name immediately followed by its value. The signature
//! is base64(HMAC-SHA1(auth token, data)). Repeated names are sorted by value,
//! as Twilio's own libraries do.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;

type HmacSha1 = Hmac<Sha1>;

/// The bytes Twilio signs for a request to `url` with POST `params`: the URL,
/// then each parameter's name and value, sorted.
pub fn signed_data(url: &str, params: &[(String, String)]) -> Vec<u8> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let len = url.len() + sorted.iter().map(|(n, v)| n.len() + v.len()).sum::<usize>();
    let mut data = Vec::with_capacity(len);
    data.extend_from_slice(url.as_bytes());
    for (name, value) in sorted {
        data.extend_from_slice(name.as_bytes());
        data.extend_from_slice(value.as_bytes());
    }
    data
}

/// The raw MAC in an `X-Twilio-Signature` value; `None` when it is not base64.
pub fn decode(provided: &str) -> Option<Vec<u8>> {
    STANDARD.decode(provided.trim()).ok()
}

fn mac(auth_token: &str, url: &str, params: &[(String, String)]) -> HmacSha1 {
    let mut mac = HmacSha1::new_from_slice(auth_token.as_bytes())
        .expect("HMAC-SHA1 takes a key of any length");
    mac.update(&signed_data(url, params));
    mac
}

/// The signature Twilio sends for a request to `url` with POST `params`.
pub fn sign(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    STANDARD.encode(mac(auth_token, url, params).finalize().into_bytes())
}

/// Whether `provided` is the signature of the request, compared in constant
/// time, with the auth token in hand. A value that is not base64 never
/// matches. The connector itself lets the host check it
/// ([`switchboard_sdk::signing`]); this is the same check in the guest.
pub fn verify(auth_token: &str, url: &str, params: &[(String, String)], provided: &str) -> bool {
    let Some(provided) = decode(provided) else {
        return false;
    };
    mac(auth_token, url, params).verify_slice(&provided).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    // The example from Twilio's webhook-security documentation, recomputed
    // independently of this crate: the data string is
    //   https://mycompany.com/myapp.php?foo=1&bar=2CallSidCA1234567890ABCDE
    //   Caller+12349013030Digits1234From+12349013030To+18005551212
    // (one line), and both Python (`base64.b64encode(hmac.new(b"12345", data,
    // hashlib.sha1).digest())`) and `openssl dgst -sha1 -hmac 12345 -binary |
    // base64` give 0/KCTR6DLpKmkAf8muzZqo1nDgQ=.
    const DOC_URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    const DOC_SIGNATURE: &str = "0/KCTR6DLpKmkAf8muzZqo1nDgQ=";

    fn doc_params() -> Vec<(String, String)> {
        // Deliberately out of order: signing sorts them.
        pairs(&[
            ("To", "+18005551212"),
            ("Digits", "1234"),
            ("CallSid", "CA1234567890ABCDE"),
            ("From", "+12349013030"),
            ("Caller", "+12349013030"),
        ])
    }

    #[test]
    fn matches_twilio_documented_vector() {
        assert_eq!(sign("12345", DOC_URL, &doc_params()), DOC_SIGNATURE);
        assert!(verify("12345", DOC_URL, &doc_params(), DOC_SIGNATURE));
    }

    // A Switchboard-shaped inbound SMS, computed the same way in Python:
    // data = URL + "AccountSidAC000…0BodyHello there!From+15551234567
    // MessageSidSM0123…defNumMedia0To+15557654321", key "test-auth-token".
    #[test]
    fn matches_independent_inbound_sms_vector() {
        let params = pairs(&[
            ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
            ("AccountSid", "AC00000000000000000000000000000000"),
            ("From", "+15551234567"),
            ("To", "+15557654321"),
            ("Body", "Hello there!"),
            ("NumMedia", "0"),
        ]);
        assert_eq!(
            sign(
                "test-auth-token",
                "https://sb.example.com/hooks/sms-twilio",
                &params
            ),
            "1XSuhwXxVIxs09T2KFCG5gLczuA="
        );
    }

    #[test]
    fn rejects_forgeries() {
        let params = doc_params();
        assert!(!verify("wrong-token", DOC_URL, &params, DOC_SIGNATURE));
        assert!(!verify(
            "12345",
            "https://mycompany.com/myapp.php?foo=1",
            &params,
            DOC_SIGNATURE
        ));
        let mut tampered = params.clone();
        tampered[0].1 = "+18005551213".into();
        assert!(!verify("12345", DOC_URL, &tampered, DOC_SIGNATURE));
        assert!(!verify("12345", DOC_URL, &params, "not base64!"));
        assert!(!verify("12345", DOC_URL, &params, ""));
    }
}
