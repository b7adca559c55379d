//! Messenger says "read" (and sometimes "delivered") with a watermark: every
//! message sent to that customer before this time. The host tracks receipts
//! per message id, so the connector keeps, per customer, the last
//! [`SENT_LOG_LIMIT`] ids it sent and when, and turns a watermark into one
//! receipt per id at or before it.
//!
//! The log lives in kv under `sent:{customer id}`. Times are the plugin's
//! clock at send time; the watermark is Meta's, so a message sent in the same
//! instant as a read may wait for the next watermark.

use serde::{Deserialize, Serialize};
use switchboard_sdk::{DeliveryReceipt, DeliveryStatus};

/// How many sent messages are remembered per customer.
pub const SENT_LOG_LIMIT: usize = 50;

/// How long a sent message waits for its read receipt: the longest window
/// (7 days for a person's reply). Older entries are dropped, so customers
/// who never read do not fill the plugin's kv quota.
pub const SENT_LOG_MAX_AGE_MS: u64 = 7 * 24 * 60 * 60 * 1000;

/// The kv key of a customer's log.
pub fn key(customer: &str) -> String {
    format!("sent:{customer}")
}

/// Messages sent to one customer that are not known to be read yet, oldest
/// first, as `(message id, sent at ms)`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SentLog(pub Vec<(String, u64)>);

impl SentLog {
    /// The log stored as `bytes`; empty when there is none or it is unreadable.
    pub fn from_bytes(bytes: Option<&[u8]>) -> SentLog {
        bytes
            .and_then(|bytes| serde_json::from_slice(bytes).ok())
            .unwrap_or_default()
    }

    /// The log as stored in kv.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Remembers a sent message, forgetting the oldest beyond the limit and
    /// those older than [`SENT_LOG_MAX_AGE_MS`].
    pub fn record(&mut self, mid: &str, sent_at_ms: u64) {
        let oldest = sent_at_ms.saturating_sub(SENT_LOG_MAX_AGE_MS);
        self.0
            .retain(|(known, sent)| known != mid && *sent >= oldest);
        self.0.push((mid.to_owned(), sent_at_ms));
        if self.0.len() > SENT_LOG_LIMIT {
            let excess = self.0.len() - SENT_LOG_LIMIT;
            self.0.drain(..excess);
        }
    }

    /// `Read` receipts for every message sent at or before `watermark`,
    /// which are then forgotten (read is as far as a message goes).
    pub fn take_read(&mut self, watermark: u64, at_ms: Option<u64>) -> Vec<DeliveryReceipt> {
        let (read, unread): (Vec<_>, Vec<_>) =
            self.0.drain(..).partition(|(_, sent)| *sent <= watermark);
        self.0 = unread;
        receipts(read, DeliveryStatus::Read, at_ms)
    }

    /// `Delivered` receipts for every message sent at or before `watermark`;
    /// they stay in the log until read.
    pub fn delivered(&self, watermark: u64, at_ms: Option<u64>) -> Vec<DeliveryReceipt> {
        let delivered = self
            .0
            .iter()
            .filter(|(_, sent)| *sent <= watermark)
            .cloned()
            .collect();
        receipts(delivered, DeliveryStatus::Delivered, at_ms)
    }
}

fn receipts(
    messages: Vec<(String, u64)>,
    status: DeliveryStatus,
    at_ms: Option<u64>,
) -> Vec<DeliveryReceipt> {
    messages
        .into_iter()
        .map(|(mid, _)| DeliveryReceipt {
            at_ms,
            ..DeliveryReceipt::new(mid, status)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(receipts: &[DeliveryReceipt]) -> Vec<&str> {
        receipts.iter().map(|r| r.provider_id.as_str()).collect()
    }

    #[test]
    fn a_watermark_reads_everything_sent_at_or_before_it() {
        let mut log = SentLog::default();
        log.record("m_1", 1_000);
        log.record("m_2", 2_000);
        log.record("m_3", 3_000);

        let read = log.take_read(2_000, Some(2_500));
        assert_eq!(ids(&read), ["m_1", "m_2"]);
        assert!(
            read.iter()
                .all(|r| r.status == DeliveryStatus::Read && r.at_ms == Some(2_500))
        );
        assert_eq!(log.0, [("m_3".to_owned(), 3_000)]);

        // The same watermark again reads nothing new.
        assert!(log.take_read(2_000, None).is_empty());
        assert_eq!(ids(&log.take_read(9_000, None)), ["m_3"]);
        assert!(log.0.is_empty());
    }

    #[test]
    fn delivery_watermarks_keep_messages_for_the_read() {
        let mut log = SentLog::default();
        log.record("m_1", 1_000);
        log.record("m_2", 5_000);
        let delivered = log.delivered(4_000, None);
        assert_eq!(ids(&delivered), ["m_1"]);
        assert_eq!(delivered[0].status, DeliveryStatus::Delivered);
        assert_eq!(log.0.len(), 2);
    }

    #[test]
    fn old_entries_are_dropped_when_a_new_one_comes() {
        let mut log = SentLog::default();
        log.record("m_old", 1_000);
        log.record("m_recent", SENT_LOG_MAX_AGE_MS);
        log.record("m_new", SENT_LOG_MAX_AGE_MS + 2_000);
        let ids: Vec<&str> = log.0.iter().map(|(mid, _)| mid.as_str()).collect();
        assert_eq!(ids, ["m_recent", "m_new"]);
    }

    #[test]
    fn the_log_is_bounded_and_round_trips() {
        let mut log = SentLog::default();
        for i in 0..(SENT_LOG_LIMIT as u64 + 7) {
            log.record(&format!("m_{i}"), i);
        }
        assert_eq!(log.0.len(), SENT_LOG_LIMIT);
        assert_eq!(log.0[0].0, "m_7", "the oldest are forgotten first");
        log.record("m_7", 999);
        assert_eq!(
            log.0.len(),
            SENT_LOG_LIMIT,
            "a repeated id is not kept twice"
        );

        let bytes = log.to_bytes();
        assert_eq!(SentLog::from_bytes(Some(&bytes)), log);
        assert_eq!(SentLog::from_bytes(Some(b"garbage")), SentLog::default());
        assert_eq!(SentLog::from_bytes(None), SentLog::default());
    }
}
