//! Polling: `getUpdates` instead of a webhook (`updates = "poll"`).
//!
//! The cursor the host keeps is the next `offset`: one more than the last
//! `update_id` seen. Telegram forgets updates older than the offset asked for,
//! and the host stores the cursor only after it stored the events, so a crash
//! between the two re-reads those updates (ingest is idempotent) instead of
//! losing them.

use switchboard_sdk::http::Response;
use switchboard_sdk::{PluginError, PollOutcome};

use crate::api::result;
use crate::update::{Update, update_events};

/// How often the host polls, in milliseconds.
pub const INTERVAL_MS: u32 = 2000;
/// Updates asked for at once (the Bot API's maximum).
pub const LIMIT: usize = 100;

/// `GET {api_base}/bot{token}/getUpdates?offset=…&limit=100&timeout=0`.
pub fn get_updates_url(api_base: &str, bot_token: &str, offset: Option<i64>) -> String {
    let mut url = format!(
        "{}/bot{bot_token}/getUpdates?limit={LIMIT}&timeout=0",
        api_base.trim_end_matches('/')
    );
    if let Some(offset) = offset {
        url.push_str(&format!("&offset={offset}"));
    }
    url
}

/// The offset a cursor names (none before the first poll).
///
/// # Errors
///
/// [`PluginError::Internal`] for a cursor this connector did not write.
pub fn offset(cursor: Option<&str>) -> Result<Option<i64>, PluginError> {
    cursor
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| PluginError::Internal(format!("unreadable poll cursor `{c}`")))
        })
        .transpose()
}

/// The events of a `getUpdates` answer and the next cursor.
///
/// # Errors
///
/// As [`crate::api::result`].
pub fn outcome(response: &Response) -> Result<PollOutcome, PluginError> {
    let updates: Vec<Update> = result(response)?;
    let next = updates.iter().map(|u| u.update_id + 1).max();
    let more = updates.len() >= LIMIT;
    Ok(PollOutcome {
        cursor: next.map(|n| n.to_string()),
        more,
        events: updates.into_iter().flat_map(update_events).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_sdk::ChannelEvent;

    fn response(body: &str) -> Response {
        Response {
            status: 200,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn the_cursor_moves_past_the_last_update() {
        let out = outcome(&response(
            r#"{"ok":true,"result":[
              {"update_id":7,"message":{"message_id":1,"date":1700000000,"chat":{"id":42},"text":"a"}},
              {"update_id":9,"edited_message":{}}]}"#,
        ))
        .unwrap();
        assert_eq!(out.cursor.as_deref(), Some("10"));
        assert!(!out.more);
        assert_eq!(out.events.len(), 1, "edits carry no message");
        let ChannelEvent::Message(m) = &out.events[0] else {
            panic!("a message")
        };
        assert_eq!(m.provider_id, "42:1");
    }

    #[test]
    fn nothing_new_keeps_the_cursor() {
        let out = outcome(&response(r#"{"ok":true,"result":[]}"#)).unwrap();
        assert_eq!(out.cursor, None);
        assert!(out.events.is_empty());
    }

    #[test]
    fn urls_and_cursors() {
        assert_eq!(
            get_updates_url("http://t/", "1:x", Some(10)),
            "http://t/bot1:x/getUpdates?limit=100&timeout=0&offset=10"
        );
        assert_eq!(offset(Some("10")).unwrap(), Some(10));
        assert!(offset(Some("ten")).is_err());
        assert_eq!(offset(None).unwrap(), None);
    }
}
