//! Timeline vocabulary: what an event on a contact's timeline is (its kind and
//! direction), what a message carries (attachments), and how its delivery status moves.
//!
//! The timeline is the one chronological record across every channel. This module owns
//! the rule that delivery receipts only move a message forward: providers deliver status
//! callbacks late and out of order, and a late `sent` must not undo `delivered`.

use serde::{Deserialize, Serialize};

string_enum! {
    /// Which way an event travelled.
    "direction",
    pub enum Direction {
        /// From the customer to us.
        In => "in",
        /// From us to the customer.
        Out => "out",
        /// Between us only (notes, transfers, status changes, channel switches).
        Internal => "internal",
    }
}

string_enum! {
    /// What kind of event a timeline entry is.
    "event kind",
    pub enum EventKind {
        /// A message on a messaging channel (SMS, WhatsApp, e-mail, chat…).
        Message => "message",
        /// A voice call.
        Call => "call",
        /// An internal note written by an agent.
        Note => "note",
        /// A transfer between agents or queues.
        Transfer => "transfer",
        /// The outcome an agent recorded when wrapping up.
        Disposition => "disposition",
        /// A survey answer (CSAT, CES, NPS).
        Survey => "survey",
        /// Something a CRM integration wrote.
        Crm => "crm",
        /// A conversation status change (resolved, reopened, snoozed…).
        Status => "status",
        /// The conversation moved from one channel to another.
        ChannelSwitch => "channel_switch",
        /// The customer opted in or out of a channel, or asked for help.
        Consent => "consent",
    }
}

string_enum! {
    /// Delivery state of an outbound message, as reported by the provider.
    ///
    /// Progress order: `queued` < `sent` < `delivered` < `read`. `failed` and
    /// `undelivered` are failures; see [`DeliveryStatus::advance`] for how receipts
    /// combine.
    "delivery status",
    pub enum DeliveryStatus {
        /// Accepted by us, not yet handed to the provider.
        Queued => "queued",
        /// Accepted by the provider.
        Sent => "sent",
        /// Reached the customer's device.
        Delivered => "delivered",
        /// Seen by the customer.
        Read => "read",
        /// The provider or our outbox gave up before the carrier took it.
        Failed => "failed",
        /// The carrier could not deliver it.
        Undelivered => "undelivered",
    }
}

impl DeliveryStatus {
    /// True for `failed` and `undelivered`.
    pub const fn is_failure(self) -> bool {
        matches!(self, DeliveryStatus::Failed | DeliveryStatus::Undelivered)
    }

    /// Position on the progress scale; failures have none.
    const fn progress(self) -> Option<u8> {
        match self {
            DeliveryStatus::Queued => Some(0),
            DeliveryStatus::Sent => Some(1),
            DeliveryStatus::Delivered => Some(2),
            DeliveryStatus::Read => Some(3),
            DeliveryStatus::Failed | DeliveryStatus::Undelivered => None,
        }
    }

    /// Whether a receipt saying `next` may replace the current status `self`.
    ///
    /// - progress only moves forward: `delivered` is never replaced by a late `sent`;
    /// - a failure may replace `queued` or `sent`, never `delivered` or `read` (the
    ///   customer demonstrably got it);
    /// - a failure is final, except that `delivered`/`read` replace it: positive
    ///   evidence from the handset beats an earlier carrier guess;
    /// - repeating the current status changes nothing.
    pub const fn can_advance_to(self, next: DeliveryStatus) -> bool {
        match (self.progress(), next.progress()) {
            (Some(cur), Some(new)) => new > cur,
            (Some(cur), None) => cur <= 1,
            (None, Some(new)) => new >= 2,
            (None, None) => false,
        }
    }

    /// The status after a receipt saying `next` arrives when the current status is
    /// `current` (`None`: nothing recorded yet, anything is accepted).
    pub fn advance(current: Option<DeliveryStatus>, next: DeliveryStatus) -> DeliveryStatus {
        match current {
            Some(cur) if !cur.can_advance_to(next) => cur,
            _ => next,
        }
    }
}

/// A file attached to a message.
///
/// On the timeline, `url` is the host's own authenticated URL
/// (`/api/v1/attachments/{id}`); the provider's reference stays with the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The host's attachment id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Where an agent fetches the file, with `Authorization: Bearer`.
    pub url: String,
    /// `pending` while the host copies it from the provider, `stored` once it is in
    /// the blob store, `failed` when it could not be copied (see `error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Why the copy failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// MIME type, e.g. `image/jpeg`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Original file name, if the channel has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// Size in bytes, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// Body of the `channel_switch` event recorded when a conversation moves from one
/// channel to another: `"sms → telegram"`.
pub fn channel_switch_body(from: &str, to: &str) -> String {
    format!("{from} → {to}")
}

#[cfg(test)]
mod tests {
    use super::DeliveryStatus::*;
    use super::*;

    #[test]
    fn spellings() {
        assert_eq!(EventKind::ChannelSwitch.as_str(), "channel_switch");
        assert_eq!(
            "channel_switch".parse::<EventKind>().unwrap(),
            EventKind::ChannelSwitch
        );
        assert_eq!(serde_json::to_string(&Direction::In).unwrap(), "\"in\"");
        assert_eq!(
            serde_json::from_str::<DeliveryStatus>("\"undelivered\"").unwrap(),
            Undelivered
        );
        let err = "sending".parse::<DeliveryStatus>().unwrap_err();
        assert!(err.to_string().contains("queued, sent, delivered"), "{err}");
    }

    #[test]
    fn progress_never_goes_backwards() {
        assert_eq!(DeliveryStatus::advance(Some(Delivered), Sent), Delivered);
        assert_eq!(DeliveryStatus::advance(Some(Read), Delivered), Read);
        assert_eq!(DeliveryStatus::advance(Some(Sent), Queued), Sent);
        assert_eq!(DeliveryStatus::advance(Some(Sent), Delivered), Delivered);
        assert_eq!(DeliveryStatus::advance(Some(Queued), Read), Read);
        assert_eq!(DeliveryStatus::advance(None, Sent), Sent);
        assert!(!Sent.can_advance_to(Sent));
    }

    #[test]
    fn failures_are_final_unless_the_handset_says_otherwise() {
        assert_eq!(
            DeliveryStatus::advance(Some(Sent), Undelivered),
            Undelivered
        );
        assert_eq!(DeliveryStatus::advance(Some(Queued), Failed), Failed);
        assert_eq!(DeliveryStatus::advance(Some(Delivered), Failed), Delivered);
        assert_eq!(DeliveryStatus::advance(Some(Failed), Sent), Failed);
        assert_eq!(DeliveryStatus::advance(Some(Failed), Undelivered), Failed);
        assert_eq!(
            DeliveryStatus::advance(Some(Undelivered), Delivered),
            Delivered
        );
        assert_eq!(DeliveryStatus::advance(Some(Failed), Read), Read);
    }

    #[test]
    fn attachments_serialize_compactly() {
        let a = Attachment {
            id: None,
            url: "https://m.example/1.jpg".into(),
            status: None,
            error: None,
            content_type: Some("image/jpeg".into()),
            filename: None,
            size: Some(1234),
        };
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(
            json,
            r#"{"url":"https://m.example/1.jpg","content_type":"image/jpeg","size":1234}"#
        );
        assert_eq!(serde_json::from_str::<Attachment>(&json).unwrap(), a);
    }

    #[test]
    fn channel_switch_body_reads_like_a_sentence() {
        assert_eq!(channel_switch_body("sms", "telegram"), "sms → telegram");
    }
}
