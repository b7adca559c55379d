//! Small text helpers the connectors share: timestamps as Meta sends them,
//! readable bodies for non-text messages, and recognizing a phone number or
//! e-mail address a customer shared.

use serde::{Deserialize, Deserializer};

/// Below this a Unix time is in seconds, above it in milliseconds (1e11
/// seconds is the year 5138; 1e11 milliseconds is 1973).
const SECONDS_LIMIT: u64 = 100_000_000_000;

/// A Unix time in seconds or milliseconds, as a number or a numeric string,
/// in milliseconds.
pub fn to_millis(value: u64) -> u64 {
    if value < SECONDS_LIMIT {
        value.saturating_mul(1000)
    } else {
        value
    }
}

/// Serde `deserialize_with` for an optional timestamp that Meta sends as a
/// number (Messenger, milliseconds) or a string (WhatsApp, seconds); the
/// result is in milliseconds. Anything unreadable is `None`, never an error:
/// a bad timestamp must not lose the message.
pub fn millis<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    Ok(value
        .and_then(|value| match value {
            serde_json::Value::Number(n) => n
                .as_u64()
                .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
            serde_json::Value::String(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        })
        .map(to_millis))
}

/// Serde `deserialize_with` for a number Meta may send as a string
/// (coordinates, error codes); `None` when unreadable.
pub fn lenient_f64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    Ok(value.and_then(|value| match value {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }))
}

/// A readable line for a shared place: `📍 name, address (lat, long)`.
pub fn location_text(
    latitude: f64,
    longitude: f64,
    name: Option<&str>,
    address: Option<&str>,
) -> String {
    let label: Vec<&str> = [name, address]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect();
    if label.is_empty() {
        format!("📍 {latitude}, {longitude}")
    } else {
        format!("📍 {} ({latitude}, {longitude})", label.join(", "))
    }
}

/// Whether `text` looks like one e-mail address.
pub fn is_email(text: &str) -> bool {
    let text = text.trim();
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !text.chars().any(char::is_whitespace)
}

/// Whether `text` looks like one phone number: digits with the usual
/// separators, 7 to 15 digits, an optional leading `+`.
pub fn is_phone(text: &str) -> bool {
    let text = text.trim();
    let body = text.strip_prefix('+').unwrap_or(text);
    let digits = body.chars().filter(char::is_ascii_digit).count();
    (7..=15).contains(&digits)
        && body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '(' | ')' | '.'))
}

/// The digits of `text` (a phone number without `+` and separators).
pub fn digits(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

/// At most `max` characters of `text`, ending in `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Stamp {
        #[serde(default, deserialize_with = "millis")]
        at: Option<u64>,
    }

    fn stamp(json: &str) -> Option<u64> {
        serde_json::from_str::<Stamp>(json).unwrap().at
    }

    #[test]
    fn timestamps_in_seconds_or_millis_as_numbers_or_strings() {
        assert_eq!(stamp(r#"{"at":"1749416383"}"#), Some(1_749_416_383_000));
        assert_eq!(stamp(r#"{"at":1749416383}"#), Some(1_749_416_383_000));
        assert_eq!(stamp(r#"{"at":1458692752478}"#), Some(1_458_692_752_478));
        assert_eq!(stamp(r#"{"at":"1458692752478"}"#), Some(1_458_692_752_478));
        assert_eq!(stamp(r#"{"at":"soon"}"#), None);
        assert_eq!(stamp(r#"{"at":null}"#), None);
        assert_eq!(stamp(r#"{}"#), None);
    }

    #[test]
    fn locations_read_well() {
        assert_eq!(
            location_text(
                52.52,
                13.405,
                Some("Brandenburg Gate"),
                Some("Pariser Platz, Berlin")
            ),
            "📍 Brandenburg Gate, Pariser Platz, Berlin (52.52, 13.405)"
        );
        assert_eq!(
            location_text(-33.9, 18.4, None, Some(" ")),
            "📍 -33.9, 18.4"
        );
    }

    #[test]
    fn emails_and_phones_are_recognized() {
        assert!(is_email("ada@example.com"));
        assert!(!is_email("ada@example"));
        assert!(!is_email("not an@example.com"));
        assert!(!is_email("Red"));
        assert!(is_phone("+1 (650) 555-1234"));
        assert!(is_phone("+4915112345678"));
        assert!(!is_phone("12345"));
        assert!(!is_phone("size-42"));
        assert!(!is_phone("+1 555 CALL NOW"));
        assert_eq!(digits("+1 (650) 555-1234"), "16505551234");
    }

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate("short", 20), "short");
        assert_eq!(truncate("Überweisung bestätigen bitte", 10), "Überweisu…");
        assert_eq!(
            truncate("Überweisung bestätigen bitte", 10).chars().count(),
            10
        );
    }
}
