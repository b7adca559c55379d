//! `X-Hub-Signature-256`: Meta signs every webhook POST with
//! `sha256=<hex HMAC-SHA256(raw body, app secret)>`.
//!
//! This module owns the check and nothing else; it never sees the parsed body
//! and never puts the secret or the expected signature into an error.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use switchboard_sdk::PluginError;
use switchboard_sdk::signing::{self, Algorithm};

/// The header Meta signs webhook bodies in.
pub const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";

const PREFIX: &str = "sha256=";

/// The app secret a signature is checked with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppSecret {
    /// The value of this config key: the host computes the MAC with it
    /// ([`switchboard_sdk::signing`]) and the connector never reads it. What
    /// the connectors use.
    Config(&'static str),
    /// A secret in hand, the MAC computed in the guest: for native tests,
    /// which have no host.
    Value(String),
}

impl AppSecret {
    /// The connectors' own: config key `app_secret`, checked by the host.
    pub const CONFIG: AppSecret = AppSecret::Config("app_secret");
}

fn mac(app_secret: &str, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret.as_bytes())
        .expect("HMAC-SHA256 accepts any key length");
    mac.update(body);
    mac
}

/// The header value Meta sends for `body`: `sha256=` and the lower-case hex
/// HMAC-SHA256 of the raw body keyed with the app secret.
pub fn sign(app_secret: &str, body: &[u8]) -> String {
    let digest = mac(app_secret, body).finalize().into_bytes();
    format!("{PREFIX}{}", to_hex(&digest))
}

/// Checks the `X-Hub-Signature-256` value (`header`) against the raw body.
///
/// The comparison runs in constant time (`hmac`'s `verify_slice`).
///
/// # Errors
///
/// [`PluginError::Unauthorized`] when the header is missing, malformed or
/// does not match.
pub fn verify(
    app_secret: &AppSecret,
    body: &[u8],
    header: Option<&str>,
) -> Result<(), PluginError> {
    let header = header
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .ok_or_else(|| PluginError::Unauthorized(format!("missing {SIGNATURE_HEADER} header")))?;
    let hex = header
        .get(..PREFIX.len())
        .filter(|prefix| prefix.eq_ignore_ascii_case(PREFIX))
        .map(|_| &header[PREFIX.len()..])
        .ok_or_else(|| {
            PluginError::Unauthorized(format!(
                "{SIGNATURE_HEADER} is not of the form sha256=<hex>"
            ))
        })?;
    let provided = from_hex(hex).ok_or_else(|| {
        PluginError::Unauthorized(format!("{SIGNATURE_HEADER} is not hexadecimal"))
    })?;
    let matches = match app_secret {
        AppSecret::Config(key) => signing::verify_hmac(Algorithm::Sha256, key, body, &provided)?,
        AppSecret::Value(secret) => mac(secret, body).verify_slice(&provided).is_ok(),
    };
    if matches {
        Ok(())
    } else {
        Err(PluginError::Unauthorized(format!(
            "{SIGNATURE_HEADER} does not match the body"
        )))
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    fn nibble(digit: u8) -> Option<u8> {
        match digit {
            b'0'..=b'9' => Some(digit - b'0'),
            b'a'..=b'f' => Some(digit - b'a' + 10),
            b'A'..=b'F' => Some(digit - b'A' + 10),
            _ => None,
        }
    }
    let bytes = text.as_bytes();
    if bytes.is_empty() || !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "app-secret";

    fn secret() -> AppSecret {
        AppSecret::Value(SECRET.into())
    }
    const BODY: &[u8] = br#"{"object":"page","entry":[]}"#;

    #[test]
    fn matches_the_published_hmac_sha256_vector() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            sign("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_correct_signature_passes_in_either_case() {
        let signature = sign(SECRET, BODY);
        assert!(verify(&secret(), BODY, Some(&signature)).is_ok());
        assert!(verify(&secret(), BODY, Some(&signature.to_uppercase())).is_ok());
        assert!(verify(&secret(), BODY, Some(&format!(" {signature} "))).is_ok());
    }

    #[test]
    fn missing_signature_is_unauthorized() {
        for header in [None, Some(""), Some("   ")] {
            let error = verify(&secret(), BODY, header).unwrap_err();
            assert!(
                matches!(&error, PluginError::Unauthorized(m) if m.contains("missing")),
                "{header:?}: {error:?}"
            );
        }
    }

    #[test]
    fn wrong_or_malformed_signatures_are_unauthorized() {
        let other_secret = sign("another-secret", BODY);
        let other_body = sign(SECRET, b"{}");
        let sha1_style = format!("sha1={}", &sign(SECRET, BODY)[7..]);
        let truncated = sign(SECRET, BODY)[..40].to_owned();
        let odd = format!("{}0", sign(SECRET, BODY));
        for header in [
            other_secret.as_str(),
            other_body.as_str(),
            sha1_style.as_str(),
            truncated.as_str(),
            odd.as_str(),
            "sha256=",
            "sha256=zz",
            "garbage",
        ] {
            let error = verify(&secret(), BODY, Some(header)).unwrap_err();
            let PluginError::Unauthorized(message) = &error else {
                panic!("{header:?}: expected Unauthorized, got {error:?}");
            };
            assert!(!message.contains(SECRET), "the secret leaked: {message}");
        }
    }

    #[test]
    fn hex_round_trips() {
        let bytes = [0x00, 0x0f, 0xa5, 0xff];
        assert_eq!(to_hex(&bytes), "000fa5ff");
        assert_eq!(from_hex("000FA5ff"), Some(bytes.to_vec()));
        assert_eq!(from_hex(""), None);
        assert_eq!(from_hex("abc"), None);
        assert_eq!(from_hex("0g"), None);
    }
}
