//! Text people type (replies, notes, chat messages): trimmed, never empty, bounded.

use switchboard_core::handoff::Utterance;
use switchboard_store::TimelineEvent;

use crate::error::{AppError, AppResult};

/// The longest note, reply or chat message accepted, in characters.
pub const MAX_TEXT_CHARS: usize = 4000;

/// A required text field: trimmed, not empty, at most [`MAX_TEXT_CHARS`].
pub fn text_field(name: &str, value: &str) -> AppResult<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(AppError::bad_request(format!("{name} must not be empty")));
    }
    if value.chars().count() > MAX_TEXT_CHARS {
        return Err(AppError::bad_request(format!(
            "{name} is longer than {MAX_TEXT_CHARS} characters"
        )));
    }
    Ok(value.to_string())
}

/// A conversation's timeline as the hand-off drafter reads it (`switchboard_core::handoff`).
pub(crate) fn utterances(timeline: &[TimelineEvent]) -> Vec<Utterance<'_>> {
    timeline
        .iter()
        .map(|e| Utterance {
            direction: e.direction,
            kind: e.kind,
            body: &e.body,
            channel: e.channel.as_deref(),
            automatic: e.data.get("auto").is_some_and(|v| v == true),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_fields_are_trimmed_and_bounded() {
        assert_eq!(text_field("body", "  hi ").unwrap(), "hi");
        assert!(text_field("body", "   ").is_err());
        assert!(text_field("body", &"x".repeat(MAX_TEXT_CHARS + 1)).is_err());
        assert!(text_field("body", &"é".repeat(MAX_TEXT_CHARS)).is_ok());
    }
}
