//! Telegram's webhook `Update`, turned into channel events.
//!
//! Only `message` updates carry a customer's message; every other kind (edits,
//! channel posts, button presses) is acknowledged and ignored, so Telegram does
//! not redeliver it. A photo (its largest size) and a document become
//! attachments whose URL is the file id (`telegram-file:…`, see
//! [`crate::file`]); `date` becomes `sent-at-ms`.

use serde::Deserialize;
use switchboard_sdk::{Attachment, ChannelEvent, Identity, InboundMessage, PluginError};

use crate::file::file_url;

/// Identity kind of Telegram chats.
pub const TELEGRAM: &str = "telegram";

/// One update, from the webhook or from `getUpdates`.
#[derive(Deserialize)]
pub struct Update {
    /// Required, so a body without it is not taken for an update; the poll
    /// cursor (ingest itself is idempotent on the message id).
    pub update_id: i64,
    message: Option<Message>,
}

#[derive(Deserialize)]
struct Message {
    message_id: i64,
    date: Option<u64>,
    chat: Chat,
    from: Option<User>,
    text: Option<String>,
    caption: Option<String>,
    #[serde(default)]
    photo: Vec<PhotoSize>,
    document: Option<Document>,
}

#[derive(Deserialize)]
struct Chat {
    id: i64,
}

#[derive(Deserialize)]
struct User {
    first_name: String,
    last_name: Option<String>,
    username: Option<String>,
}

#[derive(Deserialize)]
struct PhotoSize {
    file_id: String,
    file_size: Option<u64>,
}

#[derive(Deserialize)]
struct Document {
    file_id: String,
    file_name: Option<String>,
    mime_type: Option<String>,
    file_size: Option<u64>,
}

/// Switchboard's id for a Telegram message: message ids are per chat.
pub fn provider_id(chat_id: &str, message_id: i64) -> String {
    format!("{chat_id}:{message_id}")
}

/// The events in one webhook body.
///
/// # Errors
///
/// [`PluginError::InvalidRequest`] when the body is not an `Update`.
pub fn events(body: &[u8]) -> Result<Vec<ChannelEvent>, PluginError> {
    let update: Update = serde_json::from_slice(body)
        .map_err(|error| PluginError::InvalidRequest(format!("not a Telegram update: {error}")))?;
    Ok(update_events(update))
}

/// The events of one update: a message, or nothing.
pub fn update_events(update: Update) -> Vec<ChannelEvent> {
    let Some(message) = update.message else {
        return Vec::new();
    };

    let chat_id = message.chat.id.to_string();
    let mut attachments = Vec::new();
    // Telegram sends every size of a photo, smallest first.
    if let Some(photo) = message.photo.last() {
        attachments.push(Attachment {
            content_type: Some("image/jpeg".into()),
            size: photo.file_size,
            ..Attachment::new(file_url(&photo.file_id))
        });
    }
    if let Some(document) = message.document {
        attachments.push(Attachment {
            content_type: document.mime_type,
            filename: document.file_name,
            size: document.file_size,
            ..Attachment::new(file_url(&document.file_id))
        });
    }

    let body = message.text.or(message.caption).unwrap_or_default();
    vec![ChannelEvent::Message(InboundMessage {
        sender_name: message.from.as_ref().map(display_name),
        attachments,
        sent_at_ms: message.date.map(|secs| secs.saturating_mul(1000)),
        ..InboundMessage::new(
            provider_id(&chat_id, message.message_id),
            Identity::new(TELEGRAM, chat_id),
            body,
        )
    })]
}

/// "First Last", else the first name, else "@username".
fn display_name(user: &User) -> String {
    match (&user.last_name, &user.username) {
        (Some(last), _) => format!("{} {last}", user.first_name),
        (None, Some(username)) if user.first_name.is_empty() => format!("@{username}"),
        _ => user.first_name.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_message() {
        let body = br#"{"update_id":10,"message":{"message_id":5,"date":1700000000,
            "chat":{"id":4242,"type":"private"},
            "from":{"id":4242,"is_bot":false,"first_name":"Ada","last_name":"Lovelace","username":"ada"},
            "text":"hello"}}"#;
        let events = events(body).unwrap();
        let [ChannelEvent::Message(message)] = events.as_slice() else {
            panic!("expected one message: {events:?}");
        };
        assert_eq!(message.provider_id, "4242:5");
        assert_eq!(message.sender, Identity::new("telegram", "4242"));
        assert_eq!(message.sender_name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(message.body, "hello");
        assert_eq!(message.sent_at_ms, Some(1_700_000_000_000));
        assert!(message.attachments.is_empty());
    }

    #[test]
    fn photo_and_document_become_attachments() {
        let body = br#"{"update_id":11,"message":{"message_id":6,
            "chat":{"id":-100123},"from":{"first_name":"Bo"},"caption":"receipt",
            "photo":[{"file_id":"small","file_unique_id":"a","width":90,"height":90},
                     {"file_id":"big","file_unique_id":"b","width":800,"height":800,"file_size":51234}],
            "document":{"file_id":"doc1","file_unique_id":"c","file_name":"r.pdf","mime_type":"application/pdf","file_size":999}}}"#;
        let events = events(body).unwrap();
        let [ChannelEvent::Message(message)] = events.as_slice() else {
            panic!("expected one message: {events:?}");
        };
        assert_eq!(message.provider_id, "-100123:6");
        assert_eq!(message.body, "receipt");
        assert_eq!(message.sender_name.as_deref(), Some("Bo"));
        assert_eq!(message.attachments.len(), 2);
        assert_eq!(message.attachments[0].url, "telegram-file:big");
        assert_eq!(message.attachments[0].size, Some(51234));
        assert_eq!(message.attachments[1].filename.as_deref(), Some("r.pdf"));
        assert_eq!(
            message.attachments[1].content_type.as_deref(),
            Some("application/pdf")
        );
    }

    #[test]
    fn other_updates_are_ignored_and_garbage_is_invalid() {
        let edited =
            br#"{"update_id":12,"edited_message":{"message_id":1,"chat":{"id":1},"text":"x"}}"#;
        assert_eq!(events(edited).unwrap(), vec![]);
        assert!(matches!(
            events(b"not json"),
            Err(PluginError::InvalidRequest(_))
        ));
        assert!(matches!(
            events(br#"{"message":{}}"#),
            Err(PluginError::InvalidRequest(_))
        ));
    }

    #[test]
    fn username_when_no_first_name() {
        let user = User {
            first_name: String::new(),
            last_name: None,
            username: Some("bo".into()),
        };
        assert_eq!(display_name(&user), "@bo");
    }
}
