//! Conversations (cases): their states, their human display id, and the rule that
//! decides which conversation an inbound message joins.
//!
//! A conversation survives channel switches: it belongs to a contact, not to a channel.
//! This module owns the decision "continue, reopen or open new" as a pure function of
//! the contact's existing conversations and the current time; the store applies it
//! inside its ingest transaction. It must never look at channels when choosing — that
//! would turn omnichannel back into multichannel.

string_enum! {
    /// Lifecycle state of a conversation.
    ///
    /// `open`: someone on our side has to act. `pending`: waiting on an automated step
    /// (bot, IVR) before a human picks it up. `snoozed`: parked by an agent until the
    /// customer writes again. `resolved`: done; a new message within the reopen window
    /// reopens it, after that it starts a new conversation.
    "conversation status",
    pub enum ConversationStatus {
        /// Needs attention from an agent.
        Open => "open",
        /// Waiting on an automated step before an agent picks it up.
        Pending => "pending",
        /// Parked until the customer writes again.
        Snoozed => "snoozed",
        /// Done.
        Resolved => "resolved",
    }
}

impl ConversationStatus {
    /// True while the conversation is not resolved (new messages join it).
    pub const fn is_active(self) -> bool {
        !matches!(self, ConversationStatus::Resolved)
    }

    /// The state after the customer sends a new message into this conversation:
    /// a snoozed or resolved conversation wakes up as `open`, the others keep their
    /// state (a `pending` conversation stays with its bot).
    pub const fn after_inbound_message(self) -> ConversationStatus {
        match self {
            ConversationStatus::Snoozed | ConversationStatus::Resolved => ConversationStatus::Open,
            other => other,
        }
    }
}

/// Default reopen window: a resolved conversation that hears from the customer again
/// within 7 days is reopened instead of starting a new case (a contact within 7 days
/// counts as a repeat contact on the same issue).
pub const DEFAULT_REOPEN_WINDOW_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// Formats a conversation's human display number the way agents say it: `1042` → `#1042`.
pub fn format_display_id(number: i64) -> String {
    format!("#{number}")
}

/// Parses `#1042` or `1042` back to the number.
pub fn parse_display_id(text: &str) -> Option<i64> {
    let digits = text.trim();
    let digits = digits.strip_prefix('#').unwrap_or(digits);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Whether a conversation resolved at `resolved_at_ms` is reopened by a message at
/// `now_ms`, given the reopen window. The window is inclusive at its edge; a
/// non-positive window never reopens. A resolve time in the future (clock skew between
/// host nodes) counts as "just now".
pub fn should_reopen(resolved_at_ms: i64, now_ms: i64, reopen_window_ms: i64) -> bool {
    reopen_window_ms > 0 && now_ms.saturating_sub(resolved_at_ms) <= reopen_window_ms
}

/// What the store knows about one of a contact's conversations when a message arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConversationCandidate {
    /// Current state.
    pub status: ConversationStatus,
    /// Last activity, milliseconds since the epoch.
    pub updated_at_ms: i64,
    /// When it was resolved, if it is resolved.
    pub resolved_at_ms: Option<i64>,
}

/// Where an inbound message goes; indexes refer to the candidate slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversationChoice {
    /// Join this active conversation.
    Continue(usize),
    /// Reopen this recently resolved conversation and join it.
    Reopen(usize),
    /// Open a new conversation.
    OpenNew,
}

/// Chooses the conversation for a new inbound message among a contact's conversations
/// on any channel: the most recently updated active one; otherwise the most recently
/// resolved one if it is inside the reopen window; otherwise a new one.
pub fn choose_conversation(
    candidates: &[ConversationCandidate],
    now_ms: i64,
    reopen_window_ms: i64,
) -> ConversationChoice {
    let active = candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| c.status.is_active())
        .max_by_key(|(_, c)| c.updated_at_ms);
    if let Some((i, _)) = active {
        return ConversationChoice::Continue(i);
    }
    let latest_resolved = candidates
        .iter()
        .enumerate()
        .map(|(i, c)| (i, c.resolved_at_ms.unwrap_or(c.updated_at_ms)))
        .max_by_key(|&(_, at)| at);
    match latest_resolved {
        Some((i, at)) if should_reopen(at, now_ms, reopen_window_ms) => {
            ConversationChoice::Reopen(i)
        }
        _ => ConversationChoice::OpenNew,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConversationStatus::*;

    fn cand(
        status: ConversationStatus,
        updated: i64,
        resolved: Option<i64>,
    ) -> ConversationCandidate {
        ConversationCandidate {
            status,
            updated_at_ms: updated,
            resolved_at_ms: resolved,
        }
    }

    #[test]
    fn status_spellings_round_trip() {
        for s in ConversationStatus::ALL {
            assert_eq!(s.as_str().parse::<ConversationStatus>().unwrap(), *s);
            assert_eq!(serde_json::to_string(s).unwrap(), format!("\"{s}\""));
        }
        assert!("closed".parse::<ConversationStatus>().is_err());
    }

    #[test]
    fn display_ids() {
        assert_eq!(format_display_id(1042), "#1042");
        assert_eq!(parse_display_id("#1042"), Some(1042));
        assert_eq!(parse_display_id("1042"), Some(1042));
        assert_eq!(parse_display_id("#"), None);
        assert_eq!(parse_display_id("#-3"), None);
    }

    #[test]
    fn reopen_window_is_inclusive_and_bounded() {
        assert!(should_reopen(1_000, 1_500, 500));
        assert!(!should_reopen(1_000, 1_501, 500));
        assert!(
            should_reopen(2_000, 1_000, 500),
            "future resolve time counts as now"
        );
        assert!(!should_reopen(1_000, 1_000, 0), "zero window never reopens");
    }

    #[test]
    fn an_active_conversation_wins_over_reopening() {
        let c = [
            cand(Resolved, 900, Some(900)),
            cand(Snoozed, 100, None),
            cand(Open, 50, None),
        ];
        assert_eq!(
            choose_conversation(&c, 1_000, 10_000),
            ConversationChoice::Continue(1)
        );
    }

    #[test]
    fn latest_resolved_inside_window_is_reopened() {
        let c = [
            cand(Resolved, 100, Some(100)),
            cand(Resolved, 800, Some(800)),
        ];
        assert_eq!(
            choose_conversation(&c, 1_000, 500),
            ConversationChoice::Reopen(1)
        );
        assert_eq!(
            choose_conversation(&c, 2_000, 500),
            ConversationChoice::OpenNew
        );
        assert_eq!(
            choose_conversation(&[], 2_000, 500),
            ConversationChoice::OpenNew
        );
    }

    #[test]
    fn inbound_messages_wake_snoozed_conversations() {
        assert_eq!(Snoozed.after_inbound_message(), Open);
        assert_eq!(Pending.after_inbound_message(), Pending);
        assert_eq!(Open.after_inbound_message(), Open);
    }
}
