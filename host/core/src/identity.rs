//! Identities: the phone numbers, e-mail addresses and messaging handles a customer
//! reaches us from, and how they are normalized.
//!
//! This module owns the rule "one address, one spelling": two webhooks naming the same
//! person in different ways (`+1 (555) 123-4567`, `tel:+15551234567`, `5551234567` with
//! region US) must produce the same [`Identity`], because the store matches contacts on
//! exact normalized identities. It never decides which contact an identity belongs to;
//! that is the store's job.
//!
//! Rules:
//! - kinds are lower-case words (`phone`, `whatsapp`, `email`, `telegram`, `webchat`,
//!   …); `sms`, `voice`, `tel` and `mobile` are the same address space as `phone` and
//!   are stored as `phone`; `whatsapp` keeps its own kind (a WhatsApp account is not
//!   proof that the number takes SMS) but its value is normalized like a phone number;
//! - phone-like values lose a `tel:`, `sms:` or `whatsapp:` prefix and become E.164
//!   (`+15551234567`); a number without `+` needs a default region such as `US`;
//!   numbers are parsed, not validated against carrier ranges, so fictional test
//!   numbers (555) are accepted;
//! - e-mail values lose a `mailto:` prefix, are trimmed and lower-cased and must have
//!   exactly one `@` with non-empty parts and no whitespace;
//! - every other kind keeps its value as given, trimmed, and requires it non-empty
//!   (handles such as Telegram chat ids are case-sensitive in general);
//! - no value may contain control characters or exceed [`MAX_VALUE_LEN`] bytes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Kind of a phone number identity (also used for SMS and voice).
pub const PHONE: &str = "phone";
/// Kind of a WhatsApp account identity; its value is an E.164 number.
pub const WHATSAPP: &str = "whatsapp";
/// Kind of an e-mail address identity.
pub const EMAIL: &str = "email";

/// Longest accepted identity value, in bytes. Longer input is rejected rather than
/// stored: no real address comes close, and it bounds what a webhook can make us index.
pub const MAX_VALUE_LEN: usize = 512;

/// A normalized identity: a kind and a value that is already in canonical form.
///
/// Build one with [`normalize_identity`] or [`parse_identity_query`]; two identities
/// are the same person-address exactly when they are equal. Serialized as
/// `{"kind": "...", "value": "..."}`; deserializing normalizes again (without a default
/// region), so a stored or transmitted identity cannot smuggle in a non-canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Identity {
    kind: String,
    value: String,
}

impl Identity {
    /// The kind, e.g. `phone`, `whatsapp`, `email`, `telegram`.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The normalized value, e.g. `+15551234567` or `jane@example.com`.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Rebuilds an identity that was normalized earlier (for example read back from the
    /// database) without normalizing it again.
    ///
    /// Only for values that came out of [`normalize_identity`]; anything else must go
    /// through normalization or contact matching silently breaks.
    pub fn from_normalized(kind: impl Into<String>, value: impl Into<String>) -> Self {
        Identity {
            kind: kind.into(),
            value: value.into(),
        }
    }

    /// True for kinds whose value is an E.164 phone number.
    pub fn is_phone_like(&self) -> bool {
        self.kind == PHONE || self.kind == WHATSAPP
    }
}

/// `kind:value`, the same form [`parse_identity_query`] reads.
impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.value)
    }
}

/// Parses `kind:value` without a default region.
impl FromStr for Identity {
    type Err = IdentityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_identity_query(s, None)
    }
}

impl<'de> Deserialize<'de> for Identity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            kind: String,
            value: String,
        }
        let raw = Raw::deserialize(d)?;
        normalize_identity(&raw.kind, &raw.value, None).map_err(serde::de::Error::custom)
    }
}

/// Why an identity was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The kind was empty.
    #[error("identity kind is empty")]
    EmptyKind,
    /// The kind contains characters other than `a-z`, `0-9`, `_` and `-`.
    #[error("identity kind {0:?} is not a lower-case word (a-z, 0-9, '_', '-')")]
    InvalidKind(String),
    /// The value was empty after trimming and prefix removal.
    #[error("{kind} identity value is empty")]
    EmptyValue {
        /// The identity kind.
        kind: String,
    },
    /// The value contains control characters (NUL, newlines, …).
    #[error("{kind} identity value contains control characters")]
    ControlCharacters {
        /// The identity kind.
        kind: String,
    },
    /// The value is longer than [`MAX_VALUE_LEN`].
    #[error("{kind} identity value is longer than {MAX_VALUE_LEN} bytes")]
    TooLong {
        /// The identity kind.
        kind: String,
    },
    /// The default region is not an ISO 3166-1 alpha-2 code known to the phone library.
    #[error("unknown phone region {0:?} (expected an ISO 3166-1 alpha-2 code such as \"US\")")]
    UnknownRegion(String),
    /// A national number (no leading `+`) was given without a default region.
    #[error("phone number {0:?} has no country code and no default region is configured")]
    MissingRegion(String),
    /// The phone number could not be parsed.
    #[error("invalid phone number {value:?}: {reason}")]
    InvalidPhone {
        /// The rejected input.
        value: String,
        /// What the parser objected to.
        reason: String,
    },
    /// The e-mail address is malformed.
    #[error("invalid e-mail address {value:?}: {reason}")]
    InvalidEmail {
        /// The rejected input.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An identity query was not of the form `kind:value`.
    #[error("identity query {0:?} is not of the form kind:value (e.g. phone:+15551234567)")]
    InvalidQuery(String),
}

/// Normalizes `value` as an identity of `kind`.
///
/// `default_region` (ISO 3166-1 alpha-2, e.g. `"US"`) is used only for phone-like kinds
/// whose value has no country code. See the [module docs](self) for the rules.
///
/// ```
/// use switchboard_core::normalize_identity;
///
/// let wa = normalize_identity("WhatsApp", "whatsapp:+44 20 7946 0958", None).unwrap();
/// assert_eq!((wa.kind(), wa.value()), ("whatsapp", "+442079460958"));
///
/// let mail = normalize_identity("email", "  Jane.Doe@Example.COM ", None).unwrap();
/// assert_eq!(mail.value(), "jane.doe@example.com");
/// ```
pub fn normalize_identity(
    kind: &str,
    value: &str,
    default_region: Option<&str>,
) -> Result<Identity, IdentityError> {
    let kind = canonical_kind(kind)?;
    let value = value.trim();
    if value.len() > MAX_VALUE_LEN {
        return Err(IdentityError::TooLong { kind });
    }
    if value.chars().any(char::is_control) {
        return Err(IdentityError::ControlCharacters { kind });
    }
    let value = match kind.as_str() {
        PHONE | WHATSAPP => normalize_phone(&kind, value, default_region)?,
        EMAIL => normalize_email(value)?,
        _ => {
            if value.is_empty() {
                return Err(IdentityError::EmptyValue { kind });
            }
            value.to_owned()
        }
    };
    Ok(Identity { kind, value })
}

/// Parses an identity query such as `phone:+15551234567`, `email:a@b.c` or
/// `whatsapp:+447700900123` and normalizes it.
///
/// The kind is everything before the first `:`, so values may themselves contain
/// colons (`whatsapp:whatsapp:+1…` is accepted).
pub fn parse_identity_query(
    query: &str,
    default_region: Option<&str>,
) -> Result<Identity, IdentityError> {
    let (kind, value) = query
        .trim()
        .split_once(':')
        .ok_or_else(|| IdentityError::InvalidQuery(query.to_owned()))?;
    if kind.trim().is_empty() {
        return Err(IdentityError::InvalidQuery(query.to_owned()));
    }
    normalize_identity(kind, value, default_region)
}

fn canonical_kind(kind: &str) -> Result<String, IdentityError> {
    let kind = kind.trim().to_ascii_lowercase();
    if kind.is_empty() {
        return Err(IdentityError::EmptyKind);
    }
    if !kind
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(IdentityError::InvalidKind(kind));
    }
    Ok(match kind.as_str() {
        "sms" | "voice" | "tel" | "mobile" | "mms" => PHONE.to_owned(),
        _ => kind,
    })
}

fn strip_prefix_ci<'a>(value: &'a str, prefix: &str) -> Option<&'a str> {
    let head = value.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &value[prefix.len()..])
}

fn normalize_phone(
    kind: &str,
    value: &str,
    default_region: Option<&str>,
) -> Result<String, IdentityError> {
    let mut rest = value;
    for prefix in ["whatsapp:", "tel:", "sms:"] {
        if let Some(stripped) = strip_prefix_ci(rest, prefix) {
            rest = stripped.trim();
            break;
        }
    }
    if rest.is_empty() {
        return Err(IdentityError::EmptyValue {
            kind: kind.to_owned(),
        });
    }
    let international = rest.starts_with('+') || rest.starts_with("00");
    let region = match default_region.map(str::trim).filter(|r| !r.is_empty()) {
        Some(r) => Some(
            r.to_ascii_uppercase()
                .parse::<phonenumber::country::Id>()
                .map_err(|_| IdentityError::UnknownRegion(r.to_owned()))?,
        ),
        None => None,
    };
    if !international && region.is_none() {
        return Err(IdentityError::MissingRegion(rest.to_owned()));
    }
    // Without a region the library cannot know the international dialling prefix;
    // `00` is the ITU-recommended one used by most of the world.
    let owned;
    if region.is_none() && rest.starts_with("00") {
        owned = format!("+{}", &rest[2..]);
        rest = &owned;
    }
    let number = phonenumber::parse(region, rest).map_err(|e| IdentityError::InvalidPhone {
        value: value.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(number.format().mode(phonenumber::Mode::E164).to_string())
}

fn normalize_email(value: &str) -> Result<String, IdentityError> {
    let bare = strip_prefix_ci(value, "mailto:").unwrap_or(value).trim();
    if bare.is_empty() {
        return Err(IdentityError::EmptyValue {
            kind: EMAIL.to_owned(),
        });
    }
    let invalid = |reason| IdentityError::InvalidEmail {
        value: value.to_owned(),
        reason,
    };
    if bare.chars().any(char::is_whitespace) {
        return Err(invalid("contains whitespace"));
    }
    let mut parts = bare.split('@');
    let (local, domain) = match (parts.next(), parts.next(), parts.next()) {
        (Some(local), Some(domain), None) => (local, domain),
        (_, None, _) => return Err(invalid("missing '@'")),
        _ => return Err(invalid("more than one '@'")),
    };
    if local.is_empty() {
        return Err(invalid("empty local part"));
    }
    if domain.is_empty() {
        return Err(invalid("empty domain"));
    }
    Ok(bare.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(
        kind: &str,
        value: &str,
        region: Option<&str>,
    ) -> Result<(String, String), IdentityError> {
        normalize_identity(kind, value, region).map(|i| (i.kind, i.value))
    }

    fn ok(kind: &str, value: &str) -> (String, String) {
        (kind.to_owned(), value.to_owned())
    }

    #[test]
    fn phone_spellings_converge_on_e164() {
        let want = ok("phone", "+15551234567");
        assert_eq!(norm("phone", "+15551234567", None).unwrap(), want);
        assert_eq!(norm("phone", " +1 (555) 123-4567 ", None).unwrap(), want);
        assert_eq!(norm("phone", "tel:+1-555-123-4567", None).unwrap(), want);
        assert_eq!(norm("phone", "(555) 123-4567", Some("US")).unwrap(), want);
        assert_eq!(norm("phone", "555.123.4567", Some("us")).unwrap(), want);
        assert_eq!(norm("phone", "0015551234567", None).unwrap(), want);
    }

    #[test]
    fn sms_voice_and_tel_kinds_are_phone() {
        for kind in ["sms", "SMS", "voice", "tel", " Phone "] {
            assert_eq!(
                norm(kind, "+15551234567", None).unwrap(),
                ok("phone", "+15551234567"),
                "kind {kind}"
            );
        }
    }

    #[test]
    fn whatsapp_keeps_its_kind_and_loses_its_prefix() {
        assert_eq!(
            norm("whatsapp", "whatsapp:+14155238886", None).unwrap(),
            ok("whatsapp", "+14155238886")
        );
        assert_eq!(
            norm("whatsapp", "WhatsApp:+1 415 523 8886", None).unwrap(),
            ok("whatsapp", "+14155238886")
        );
    }

    #[test]
    fn national_numbers_use_the_default_region() {
        assert_eq!(
            norm("phone", "020 7946 0958", Some("GB")).unwrap(),
            ok("phone", "+442079460958")
        );
        assert_eq!(
            norm("phone", "06 12 34 56 78", Some("FR")).unwrap(),
            ok("phone", "+33612345678")
        );
    }

    #[test]
    fn phone_errors_are_specific() {
        assert_eq!(
            normalize_identity("phone", "5551234567", None),
            Err(IdentityError::MissingRegion("5551234567".into()))
        );
        assert_eq!(
            normalize_identity("phone", "+15551234567", Some("XX")),
            Err(IdentityError::UnknownRegion("XX".into()))
        );
        assert!(matches!(
            normalize_identity("phone", "hello", Some("US")),
            Err(IdentityError::InvalidPhone { .. })
        ));
        assert!(matches!(
            normalize_identity("phone", "+1", None),
            Err(IdentityError::InvalidPhone { .. })
        ));
        assert_eq!(
            normalize_identity("whatsapp", "whatsapp:", None),
            Err(IdentityError::EmptyValue {
                kind: "whatsapp".into()
            })
        );
        assert_eq!(
            normalize_identity("sms", "   ", None),
            Err(IdentityError::EmptyValue {
                kind: "phone".into()
            })
        );
    }

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(
            norm("email", "  Jane.Doe@Example.COM ", None).unwrap(),
            ok("email", "jane.doe@example.com")
        );
        assert_eq!(
            norm("EMAIL", "mailto:Bob@B.c", None).unwrap(),
            ok("email", "bob@b.c")
        );
    }

    #[test]
    fn malformed_emails_are_rejected_with_a_reason() {
        let reason = |v: &str| match normalize_identity("email", v, None) {
            Err(IdentityError::InvalidEmail { reason, .. }) => reason,
            other => panic!("{v:?}: {other:?}"),
        };
        assert_eq!(reason("jane.example.com"), "missing '@'");
        assert_eq!(reason("a@b@c"), "more than one '@'");
        assert_eq!(reason("@example.com"), "empty local part");
        assert_eq!(reason("jane@"), "empty domain");
        assert_eq!(reason("ja ne@example.com"), "contains whitespace");
        assert_eq!(
            normalize_identity("email", "  ", None),
            Err(IdentityError::EmptyValue {
                kind: "email".into()
            })
        );
    }

    #[test]
    fn other_kinds_are_trimmed_but_keep_case() {
        assert_eq!(
            norm("Telegram", "  @JaneDoe ", None).unwrap(),
            ok("telegram", "@JaneDoe")
        );
        assert_eq!(
            norm("webchat", "visitor-42", None).unwrap(),
            ok("webchat", "visitor-42")
        );
        assert_eq!(
            normalize_identity("telegram", " ", None),
            Err(IdentityError::EmptyValue {
                kind: "telegram".into()
            })
        );
    }

    #[test]
    fn kinds_must_be_words() {
        assert_eq!(
            normalize_identity("", "x", None),
            Err(IdentityError::EmptyKind)
        );
        assert_eq!(
            normalize_identity("we chat", "x", None),
            Err(IdentityError::InvalidKind("we chat".into()))
        );
        assert!(matches!(
            normalize_identity("tg:", "x", None),
            Err(IdentityError::InvalidKind(_))
        ));
    }

    #[test]
    fn control_characters_are_rejected() {
        for value in ["ab\0cd", "a\nb", "+1555\u{7}1234567"] {
            assert!(
                matches!(
                    normalize_identity("webchat", value, None),
                    Err(IdentityError::ControlCharacters { .. })
                ),
                "{value:?}"
            );
        }
    }

    #[test]
    fn overlong_values_are_rejected() {
        let long = "x".repeat(MAX_VALUE_LEN + 1);
        assert_eq!(
            normalize_identity("webchat", &long, None),
            Err(IdentityError::TooLong {
                kind: "webchat".into()
            })
        );
    }

    #[test]
    fn queries_parse_kind_then_value() {
        let phone = parse_identity_query("phone:+15551234567", None).unwrap();
        assert_eq!(phone.to_string(), "phone:+15551234567");
        let email = parse_identity_query("email:A@B.c", None).unwrap();
        assert_eq!(email.to_string(), "email:a@b.c");
        let wa = parse_identity_query("whatsapp:whatsapp:+14155238886", None).unwrap();
        assert_eq!(wa.to_string(), "whatsapp:+14155238886");
        let national = parse_identity_query("sms:5551234567", Some("US")).unwrap();
        assert_eq!(national.to_string(), "phone:+15551234567");
        assert_eq!(
            parse_identity_query("+15551234567", None),
            Err(IdentityError::InvalidQuery("+15551234567".into()))
        );
        assert_eq!(
            parse_identity_query(":x", None),
            Err(IdentityError::InvalidQuery(":x".into()))
        );
        assert_eq!("phone:+15551234567".parse::<Identity>().unwrap(), phone);
    }

    #[test]
    fn display_round_trips_through_the_query_parser() {
        for (kind, value) in [
            ("phone", "+15551234567"),
            ("whatsapp", "+14155238886"),
            ("email", "a@b.c"),
            ("telegram", "12345:abc"),
        ] {
            let id = normalize_identity(kind, value, None).unwrap();
            assert_eq!(parse_identity_query(&id.to_string(), None).unwrap(), id);
        }
    }

    #[test]
    fn serde_normalizes_on_the_way_in() {
        let id: Identity =
            serde_json::from_str(r#"{"kind":"sms","value":"+1 555 123 4567"}"#).unwrap();
        assert_eq!(id.to_string(), "phone:+15551234567");
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            r#"{"kind":"phone","value":"+15551234567"}"#
        );
        assert!(serde_json::from_str::<Identity>(r#"{"kind":"email","value":"nope"}"#).is_err());
    }
}
