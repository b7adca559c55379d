//! E-mail threading: which conversation a message answers.
//!
//! A mail client says what a message answers in its headers (`In-Reply-To`,
//! `References`), which the connector hands over in the message's metadata, and
//! a reply may also come to the plus-addressed reply address the host gave the
//! conversation, which the host verifies before ingest (metadata
//! `thread_conversation`). Either names a conversation directly, whatever the
//! subject says, whoever's client wrote it, and however long ago the
//! conversation was resolved; this module finds it. It never decides status.

use serde_json::Value;
use sqlx::AnyConnection;

use crate::conversations::{ConversationRow, get};
use crate::db::RowExt;
use crate::error::{Result, StoreError};

/// Metadata key under which the host puts a conversation id it verified (a
/// signed reply-address tag).
pub const THREAD_CONVERSATION_KEY: &str = "thread_conversation";

/// At most this many message ids of a `References` header are looked up: a
/// long thread names its root and its latest messages, which is enough.
const MAX_REFERENCES: usize = 20;

/// The message ids `metadata` says the message answers, most specific first:
/// `In-Reply-To`, then `References` from the newest back.
fn answered_ids(metadata: &Value) -> Vec<&str> {
    let mut ids: Vec<&str> = Vec::new();
    if let Some(id) = metadata.get("in_reply_to").and_then(Value::as_str) {
        ids.push(id);
    }
    if let Some(refs) = metadata.get("references").and_then(Value::as_array) {
        let refs: Vec<&str> = refs.iter().filter_map(Value::as_str).collect();
        // The root is kept beside the newest ones: it names the thread even
        // when the middle was trimmed by a mail client.
        let newest = refs.iter().rev().take(MAX_REFERENCES - 1);
        for id in newest.chain(refs.first()) {
            if !ids.contains(id) {
                ids.push(id);
            }
        }
    }
    ids.retain(|id| !id.is_empty() && id.len() <= 998);
    ids
}

/// The conversation an inbound message on `channel` continues by its threading
/// metadata, if any: the verified reply-address conversation first, then the
/// conversation of the newest message it answers.
pub(crate) async fn threaded_conversation(
    conn: &mut AnyConnection,
    channel: &str,
    metadata: &Value,
) -> Result<Option<ConversationRow>> {
    if let Some(id) = metadata
        .get(THREAD_CONVERSATION_KEY)
        .and_then(Value::as_str)
    {
        match get(conn, id).await {
            Ok(conv) => return Ok(Some(conv)),
            Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    for id in answered_ids(metadata) {
        let row = sqlx::query(
            "SELECT conversation_id FROM timeline_event
             WHERE provider_id = $1 AND channel = $2 AND conversation_id IS NOT NULL
             ORDER BY occurred_at DESC LIMIT 1",
        )
        .bind(id.to_owned())
        .bind(channel.to_owned())
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(row) = row {
            let conversation = row.text("conversation_id")?;
            return Ok(Some(get(conn, &conversation).await?));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::is_automatic;
    use serde_json::json;

    #[test]
    fn in_reply_to_comes_first_then_references_newest_first_with_the_root() {
        let refs: Vec<String> = (0..30).map(|i| format!("m{i}")).collect();
        let metadata = json!({"in_reply_to": "m29", "references": refs});
        let ids = answered_ids(&metadata);
        assert_eq!(ids[0], "m29");
        assert_eq!(ids[1], "m28");
        assert_eq!(*ids.last().unwrap(), "m0");
        assert_eq!(ids.len(), MAX_REFERENCES);
    }

    #[test]
    fn nothing_to_answer_without_headers() {
        assert!(answered_ids(&json!({"subject": "Re: hello"})).is_empty());
        assert!(answered_ids(&json!({"in_reply_to": ""})).is_empty());
    }

    #[test]
    fn automatic_is_any_reason() {
        assert!(is_automatic(&json!({"automatic": "auto_reply"})));
        assert!(!is_automatic(&json!({"automatic": null})));
        assert!(!is_automatic(&json!({})));
    }
}
