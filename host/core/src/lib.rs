//! Switchboard's domain vocabulary and the pure rules that go with it.
//!
//! This crate owns the words every other crate speaks — identities, conversation and
//! delivery states, timeline event kinds, consent, roles, skills, outbox retry policy —
//! and the small decisions that must be the same everywhere:
//!
//! - how a phone number, e-mail address or messaging handle is normalized so that one
//!   customer maps to one contact ([`identity`]);
//! - which conversation an inbound message belongs to and when a resolved conversation is
//!   reopened ([`conversation`]);
//! - how delivery receipts move a message's status, never backwards ([`timeline`]);
//! - how long the outbox waits before retrying a failed send ([`outbox`]);
//! - the operator's report calendar and the arithmetic of the metric definitions in
//!   `REPORTS.md` ([`reports`]).
//!
//! It performs **no I/O**: no clock, no database, no network, no randomness. Time is
//! always passed in as milliseconds since the Unix epoch, so every rule is testable on
//! virtual time.
//!
//! ```
//! use switchboard_core::identity::{normalize_identity, parse_identity_query};
//!
//! let a = normalize_identity("sms", "(555) 123-4567", Some("US")).unwrap();
//! let b = parse_identity_query("phone:+1 555 123 4567", None).unwrap();
//! assert_eq!(a, b);
//! assert_eq!(a.to_string(), "phone:+15551234567");
//! ```
#![deny(missing_docs)]

#[macro_use]
mod macros;

pub mod agent;
pub mod consent;
pub mod conversation;
pub mod handoff;
pub mod identity;
pub mod outbox;
pub mod reports;
pub mod survey;
pub mod timeline;

pub use agent::{Role, Skill, SkillError, parse_skills};
pub use consent::{ConsentAction, ConsentState};
pub use conversation::{
    ConversationCandidate, ConversationChoice, ConversationStatus, DEFAULT_REOPEN_WINDOW_MS,
    choose_conversation, format_display_id, parse_display_id, should_reopen,
};
pub use handoff::{HandoffContext, Sentiment};
pub use identity::{Identity, IdentityError, normalize_identity, parse_identity_query};
pub use outbox::{DEFAULT_MAX_ATTEMPTS, OutboxStatus, RetryDecision, RetryPolicy, retry_delay};
pub use survey::{SurveyKind, TypedAnswer, parse_answer};
pub use timeline::{Attachment, DeliveryStatus, Direction, EventKind, channel_switch_body};

/// Error returned when a string is not one of an enum's known spellings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}; expected one of: {expected}")]
pub struct ParseEnumError {
    /// What was being parsed, e.g. `"conversation status"`.
    pub what: &'static str,
    /// The rejected input.
    pub value: String,
    /// The accepted spellings, comma separated.
    pub expected: &'static str,
}
