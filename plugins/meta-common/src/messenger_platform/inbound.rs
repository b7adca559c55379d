//! Messenger Platform notifications (`{"object":"page"|"instagram","entry":[{"messaging":[…]}]}`)
//! as messages and raw receipts.
//!
//! Pure: no kv, no HTTP. Names and read watermarks are resolved by the
//! caller ([`super::connector`]). Anything not understood is skipped, never
//! an error: Meta resends a notification that is not answered 200, and an
//! event we cannot use will not become usable on the next try.

use serde::Deserialize;
use switchboard_sdk::{
    Attachment, Identity, InboundMessage, InteractiveReply, Location, PluginError, Reaction,
};

use super::Platform;
use crate::text;

/// What one `messaging[]` item means before names and watermarks are
/// resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// A message from a customer (text, attachments, quick reply, postback,
    /// reaction); `sender.value` is their scoped id.
    Message(Box<InboundMessage>),
    /// Messages delivered to `customer`: by id (`mids`), or everything sent
    /// up to `watermark` when Meta gives no ids.
    Delivered {
        /// The customer's scoped id.
        customer: String,
        /// Ids of the delivered messages.
        mids: Vec<String>,
        /// Everything sent before this time (ms) was delivered.
        watermark: Option<u64>,
        /// When Meta reported it (ms).
        at_ms: Option<u64>,
    },
    /// `customer` read messages: one by id (Instagram `read.mid`) or every
    /// message sent up to `watermark` (Messenger).
    Read {
        /// The customer's scoped id.
        customer: String,
        /// The read message (Instagram).
        mid: Option<String>,
        /// Everything sent before this time (ms) was read (Messenger).
        watermark: Option<u64>,
        /// When Meta reported it (ms).
        at_ms: Option<u64>,
    },
}

#[derive(Deserialize)]
struct Notification {
    #[serde(default)]
    object: String,
    #[serde(default)]
    entry: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    messaging: Vec<Messaging>,
}

#[derive(Deserialize, Default)]
struct Party {
    #[serde(default)]
    id: Option<String>,
}

#[derive(Deserialize)]
struct Messaging {
    #[serde(default)]
    sender: Party,
    #[serde(default)]
    recipient: Party,
    #[serde(default, deserialize_with = "text::millis")]
    timestamp: Option<u64>,
    #[serde(default)]
    message: Option<Message>,
    #[serde(default)]
    postback: Option<Postback>,
    #[serde(default)]
    delivery: Option<Delivery>,
    #[serde(default)]
    read: Option<Read>,
    #[serde(default)]
    reaction: Option<ReactionEvent>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    mid: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    attachments: Vec<AttachmentIn>,
    #[serde(default)]
    quick_reply: Option<QuickReply>,
    #[serde(default)]
    reply_to: Option<ReplyTo>,
    #[serde(default)]
    is_echo: bool,
    #[serde(default)]
    is_deleted: bool,
    #[serde(default)]
    is_unsupported: bool,
}

#[derive(Deserialize)]
struct AttachmentIn {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    payload: Option<AttachmentPayload>,
    #[serde(default)]
    title: Option<String>,
}

#[derive(Deserialize, Default)]
struct AttachmentPayload {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    coordinates: Option<Coordinates>,
}

#[derive(Deserialize)]
struct Coordinates {
    #[serde(default, deserialize_with = "text::lenient_f64")]
    lat: Option<f64>,
    #[serde(default, deserialize_with = "text::lenient_f64")]
    long: Option<f64>,
}

#[derive(Deserialize)]
struct QuickReply {
    #[serde(default)]
    payload: Option<String>,
}

#[derive(Deserialize)]
struct ReplyTo {
    #[serde(default)]
    mid: Option<String>,
}

#[derive(Deserialize)]
struct Postback {
    #[serde(default)]
    mid: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    payload: Option<String>,
}

#[derive(Deserialize)]
struct Delivery {
    #[serde(default)]
    mids: Vec<String>,
    #[serde(default, deserialize_with = "text::millis")]
    watermark: Option<u64>,
}

#[derive(Deserialize)]
struct Read {
    #[serde(default)]
    mid: Option<String>,
    #[serde(default, deserialize_with = "text::millis")]
    watermark: Option<u64>,
}

#[derive(Deserialize)]
struct ReactionEvent {
    #[serde(default)]
    mid: Option<String>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    emoji: Option<String>,
}

/// Parses one notification body.
///
/// Notifications for another object (`page` sent to the Instagram
/// connector…) are ignored, and so are entries for another account when
/// `account_id` is given (Meta sends every account of an app to the one
/// callback URL; replies could not go out from the wrong one).
///
/// # Errors
///
/// [`PluginError::InvalidRequest`] when the body is not JSON.
pub fn parse(
    platform: Platform,
    body: &[u8],
    account_id: Option<&str>,
) -> Result<Vec<Inbound>, PluginError> {
    let notification: Notification = serde_json::from_slice(body).map_err(|e| {
        PluginError::InvalidRequest(format!("{} webhook body is not JSON: {e}", platform.name()))
    })?;
    if notification.object != platform.object() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for entry in notification.entry {
        let other_account = matches!(
            (account_id, entry.id.as_deref()),
            (Some(ours), Some(theirs)) if ours != theirs
        );
        if other_account {
            continue;
        }
        for item in entry.messaging {
            out.extend(item_events(platform, item));
        }
    }
    Ok(out)
}

fn item_events(platform: Platform, item: Messaging) -> Option<Inbound> {
    let sender = item.sender.id.filter(|id| !id.is_empty())?;
    let at_ms = item.timestamp;
    if let Some(delivery) = item.delivery {
        return Some(Inbound::Delivered {
            customer: sender,
            mids: delivery.mids,
            watermark: delivery.watermark,
            at_ms,
        });
    }
    if let Some(read) = item.read {
        return Some(Inbound::Read {
            customer: sender,
            mid: read.mid.filter(|mid| !mid.is_empty()),
            watermark: read.watermark,
            at_ms,
        });
    }
    let base = |provider_id: String, body: String| {
        let mut message =
            InboundMessage::new(provider_id, Identity::new(platform.kind(), &sender), body);
        message.recipient = item
            .recipient
            .id
            .as_ref()
            .map(|id| Identity::new(platform.kind(), id));
        message.sent_at_ms = at_ms;
        message
    };
    if let Some(message) = item.message {
        if message.is_echo || message.is_deleted {
            return None;
        }
        let mid = message.mid.clone().filter(|mid| !mid.is_empty())?;
        let mut inbound = base(mid, String::new());
        fill_message(&mut inbound, message);
        return Some(Inbound::Message(Box::new(inbound)));
    }
    if let Some(postback) = item.postback {
        let title = postback.title.unwrap_or_default();
        let id = postback
            .mid
            .filter(|mid| !mid.is_empty())
            .unwrap_or_else(|| format!("postback:{sender}:{}", at_ms.unwrap_or_default()));
        let mut inbound = base(id, title.clone());
        inbound.metadata.interactive_reply = Some(InteractiveReply {
            id: postback.payload.unwrap_or_else(|| title.clone()),
            title,
        });
        return Some(Inbound::Message(Box::new(inbound)));
    }
    if let Some(reaction) = item.reaction {
        let target = reaction.mid.filter(|mid| !mid.is_empty())?;
        let removed = reaction.action.as_deref() == Some("unreact");
        let emoji = if removed {
            String::new()
        } else {
            reaction.emoji.unwrap_or_default()
        };
        let action = if removed { "unreact" } else { "react" };
        let id = format!(
            "reaction:{target}:{sender}:{}:{action}",
            at_ms.unwrap_or_default()
        );
        let mut inbound = base(id, emoji.clone());
        inbound.metadata.reaction = Some(Reaction {
            provider_id: target,
            emoji,
        });
        return Some(Inbound::Message(Box::new(inbound)));
    }
    None
}

fn fill_message(inbound: &mut InboundMessage, message: Message) {
    let text = message.text.unwrap_or_default();
    let mut lines = Vec::new();
    if !text.is_empty() {
        lines.push(text.clone());
    }
    for attachment in message.attachments {
        let payload = attachment.payload.unwrap_or_default();
        let title = payload.title.or(attachment.title);
        if let Some(Coordinates {
            lat: Some(latitude),
            long: Some(longitude),
        }) = payload.coordinates
        {
            let name = title.filter(|t| !t.is_empty());
            if text.is_empty() {
                lines.push(text::location_text(
                    latitude,
                    longitude,
                    name.as_deref(),
                    None,
                ));
            }
            inbound.metadata.location = Some(Location {
                latitude,
                longitude,
                name,
                address: None,
            });
            continue;
        }
        let Some(url) = payload.url.filter(|url| !url.is_empty()) else {
            if let Some(title) = title.filter(|t| !t.is_empty()) {
                lines.push(title);
            }
            continue;
        };
        if is_file_kind(&attachment.kind) {
            inbound
                .attachments
                .push(file_attachment(&attachment.kind, url));
        } else {
            // Shared links, posts and templates are pages, not files: keep
            // them readable in the body.
            lines.push(match title.filter(|t| !t.is_empty()) {
                Some(title) => format!("{title} {url}"),
                None => url,
            });
        }
    }
    if message.is_unsupported && lines.is_empty() && inbound.attachments.is_empty() {
        lines.push("(a message this channel cannot show)".to_owned());
    }
    inbound.body = lines.join("\n");
    inbound.metadata.in_reply_to = message
        .reply_to
        .and_then(|r| r.mid)
        .filter(|m| !m.is_empty());
    if let Some(payload) = message.quick_reply.and_then(|q| q.payload) {
        // A phone or e-mail quick reply posts the value as both the text
        // and the payload.
        if payload.trim() == text.trim() {
            if text::is_email(&payload) {
                inbound
                    .metadata
                    .shared_identities
                    .push(Identity::new("email", payload.trim()));
            } else if text::is_phone(&payload) {
                inbound
                    .metadata
                    .shared_identities
                    .push(Identity::new("phone", payload.trim()));
            }
        }
        inbound.metadata.interactive_reply = Some(InteractiveReply {
            id: payload,
            title: text,
        });
    }
}

fn is_file_kind(kind: &str) -> bool {
    matches!(
        kind,
        "image"
            | "video"
            | "audio"
            | "file"
            | "sticker"
            | "animated_image"
            | "story_mention"
            | "share"
            | "reel"
            | "ig_reel"
            | "ig_story"
    )
}

fn file_attachment(kind: &str, url: String) -> Attachment {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let last = path.rsplit('/').next().unwrap_or_default();
    let extension = last
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase());
    let by_extension = extension.as_deref().and_then(content_type_for_extension);
    let by_kind = match kind {
        "image" | "sticker" | "animated_image" => Some("image/*"),
        "video" | "reel" | "ig_reel" => Some("video/*"),
        "audio" => Some("audio/*"),
        _ => None,
    };
    let major = |content_type: &str| {
        content_type
            .split('/')
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    let content_type = match (by_kind, by_extension) {
        (Some(kind), Some(ext)) if major(kind) == major(ext) => Some(ext),
        // Voice messages come as `.mp4` files.
        (Some("audio/*"), Some("video/mp4")) => Some("audio/mp4"),
        (Some(kind), _) => Some(kind),
        (None, ext) => ext,
    };
    let filename = (kind == "file" && extension.is_some()).then(|| last.to_owned());
    let mut attachment = Attachment::new(url);
    attachment.content_type = content_type.map(str::to_owned);
    attachment.filename = filename;
    attachment
}

fn content_type_for_extension(extension: &str) -> Option<&'static str> {
    Some(match extension {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "mp4" => "video/mp4",
        "mov" => "video/quicktime",
        "webm" => "video/webm",
        "mp3" => "audio/mpeg",
        "m4a" => "audio/mp4",
        "aac" => "audio/aac",
        "wav" => "audio/wav",
        "ogg" | "oga" => "audio/ogg",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xls" => "application/vnd.ms-excel",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "ppt" => "application/vnd.ms-powerpoint",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "1122334455";

    fn notification(object: &str, items: &str) -> String {
        format!(
            r#"{{"object":"{object}","entry":[{{"id":"{PAGE}","time":1458692752478,"messaging":[{items}]}}]}}"#
        )
    }

    fn messenger(items: &str) -> Vec<Inbound> {
        parse(
            Platform::Messenger,
            notification("page", items).as_bytes(),
            Some(PAGE),
        )
        .unwrap()
    }

    fn only_message(events: Vec<Inbound>) -> InboundMessage {
        match <[Inbound; 1]>::try_from(events) {
            Ok([Inbound::Message(message)]) => *message,
            other => panic!("expected one message, got {other:?}"),
        }
    }

    const FROM: &str =
        r#""sender":{"id":"PSID-1"},"recipient":{"id":"1122334455"},"timestamp":1458692752478"#;

    #[test]
    fn text_message_with_reply_reference() {
        let message = only_message(messenger(&format!(
            r#"{{{FROM},"message":{{"mid":"m_1","text":"hello, world!","reply_to":{{"mid":"m_0"}}}}}}"#
        )));
        assert_eq!(message.provider_id, "m_1");
        assert_eq!(message.sender, Identity::new("messenger", "PSID-1"));
        assert_eq!(message.recipient, Some(Identity::new("messenger", PAGE)));
        assert_eq!(message.body, "hello, world!");
        assert_eq!(message.sent_at_ms, Some(1_458_692_752_478));
        assert_eq!(message.metadata.in_reply_to.as_deref(), Some("m_0"));
        assert!(message.attachments.is_empty());
    }

    #[test]
    fn attachments_keep_their_url_and_a_guessed_type() {
        let message = only_message(messenger(&format!(
            r#"{{{FROM},"message":{{"mid":"m_2","attachments":[
                {{"type":"image","payload":{{"url":"https://scontent.xx.fbcdn.net/v/t1/photo.jpg?oh=1"}}}},
                {{"type":"video","payload":{{"url":"https://video.xx.fbcdn.net/v/clip?x=1"}}}},
                {{"type":"audio","payload":{{"url":"https://cdn.fbsbx.com/v/voice.mp4?x"}}}},
                {{"type":"file","payload":{{"url":"https://cdn.fbsbx.com/v/t59/invoice_42.pdf?dl=1"}}}},
                {{"type":"fallback","payload":{{"url":"https://example.com/article","title":"Read this"}}}}
            ]}}}}"#
        )));
        let types: Vec<_> = message
            .attachments
            .iter()
            .map(|a| a.content_type.as_deref())
            .collect();
        assert_eq!(
            types,
            [
                Some("image/jpeg"),
                Some("video/*"),
                Some("audio/mp4"),
                Some("application/pdf")
            ]
        );
        assert_eq!(
            message.attachments[0].url,
            "https://scontent.xx.fbcdn.net/v/t1/photo.jpg?oh=1"
        );
        assert_eq!(
            message.attachments[3].filename.as_deref(),
            Some("invoice_42.pdf")
        );
        assert_eq!(message.attachments[0].filename, None);
        assert_eq!(message.body, "Read this https://example.com/article");
    }

    #[test]
    fn unknown_attachment_types_leave_the_content_type_open() {
        let message = only_message(messenger(&format!(
            r#"{{{FROM},"message":{{"mid":"m_3","attachments":[{{"type":"file","payload":{{"url":"https://cdn.fbsbx.com/v/blob"}}}}]}}}}"#
        )));
        assert_eq!(message.attachments[0].content_type, None);
    }

    #[test]
    fn location_attachments_become_metadata_and_a_readable_body() {
        let message = only_message(messenger(&format!(
            r#"{{{FROM},"message":{{"mid":"m_4","attachments":[{{"type":"location","title":"Pinned Location","payload":{{"coordinates":{{"lat":52.52,"long":13.405}}}}}}]}}}}"#
        )));
        let location = message.metadata.location.expect("a location");
        assert_eq!((location.latitude, location.longitude), (52.52, 13.405));
        assert_eq!(location.name.as_deref(), Some("Pinned Location"));
        assert_eq!(message.body, "📍 Pinned Location (52.52, 13.405)");
    }

    #[test]
    fn quick_replies_are_interactive_replies() {
        let message = only_message(messenger(&format!(
            r#"{{{FROM},"message":{{"mid":"m_5","text":"Red","quick_reply":{{"payload":"color-red"}}}}}}"#
        )));
        assert_eq!(
            message.metadata.interactive_reply,
            Some(InteractiveReply {
                id: "color-red".into(),
                title: "Red".into()
            })
        );
        assert!(message.metadata.shared_identities.is_empty());
    }

    #[test]
    fn phone_and_email_quick_replies_share_identities() {
        let phone = only_message(messenger(&format!(
            r#"{{{FROM},"message":{{"mid":"m_6","text":"+1 650-555-1234","quick_reply":{{"payload":"+1 650-555-1234"}}}}}}"#
        )));
        assert_eq!(
            phone.metadata.shared_identities,
            [Identity::new("phone", "+1 650-555-1234")]
        );
        assert!(phone.metadata.interactive_reply.is_some());
        let email = only_message(messenger(&format!(
            r#"{{{FROM},"message":{{"mid":"m_7","text":"ada@example.com","quick_reply":{{"payload":"ada@example.com"}}}}}}"#
        )));
        assert_eq!(
            email.metadata.shared_identities,
            [Identity::new("email", "ada@example.com")]
        );
        // A number that is only a button's payload is not shared.
        let button = only_message(messenger(&format!(
            r#"{{{FROM},"message":{{"mid":"m_8","text":"Order 5551234","quick_reply":{{"payload":"5551234"}}}}}}"#
        )));
        assert!(button.metadata.shared_identities.is_empty());
    }

    #[test]
    fn postbacks_are_interactive_replies_with_the_title_as_body() {
        let message = only_message(messenger(
            r#"{"sender":{"id":"PSID-1"},"recipient":{"id":"1122334455"},"timestamp":1527459824000,
               "postback":{"title":"Talk to a human","payload":"HUMAN"}}"#,
        ));
        assert_eq!(message.body, "Talk to a human");
        assert_eq!(message.provider_id, "postback:PSID-1:1527459824000");
        assert_eq!(
            message
                .metadata
                .interactive_reply
                .as_ref()
                .map(|r| r.id.as_str()),
            Some("HUMAN")
        );
        let with_mid = only_message(messenger(
            r#"{"sender":{"id":"PSID-1"},"recipient":{"id":"1122334455"},"timestamp":"1527459824",
               "postback":{"mid":"m_pb","title":"Yes","payload":"YES"}}"#,
        ));
        assert_eq!(with_mid.provider_id, "m_pb");
        assert_eq!(with_mid.sent_at_ms, Some(1_527_459_824_000));
    }

    #[test]
    fn reactions_carry_the_target_and_emoji() {
        let react = only_message(messenger(&format!(
            r#"{{{FROM},"reaction":{{"mid":"m_out","action":"react","emoji":"❤️","reaction":"love"}}}}"#
        )));
        assert_eq!(react.body, "❤️");
        assert_eq!(
            react.metadata.reaction,
            Some(Reaction {
                provider_id: "m_out".into(),
                emoji: "❤️".into()
            })
        );
        let unreact = only_message(messenger(&format!(
            r#"{{{FROM},"reaction":{{"mid":"m_out","action":"unreact"}}}}"#
        )));
        assert_eq!(unreact.metadata.reaction.unwrap().emoji, "");
        assert_ne!(react.provider_id, unreact.provider_id);
    }

    #[test]
    fn echoes_and_deleted_messages_are_skipped() {
        let events = messenger(&format!(
            r#"{{"sender":{{"id":"{PAGE}"}},"recipient":{{"id":"PSID-1"}},"timestamp":1,"message":{{"mid":"m_echo","text":"our reply","is_echo":true,"app_id":1}}}},
               {{{FROM},"message":{{"mid":"m_del","is_deleted":true}}}}"#
        ));
        assert!(events.is_empty(), "{events:?}");
    }

    #[test]
    fn deliveries_and_reads() {
        let events = messenger(
            r#"{"sender":{"id":"PSID-1"},"recipient":{"id":"1122334455"},"timestamp":1458668856463,
                "delivery":{"mids":["m_a","m_b"],"watermark":1458668856253}},
               {"sender":{"id":"PSID-1"},"recipient":{"id":"1122334455"},"timestamp":1458668856463,
                "read":{"watermark":1458668856253}}"#,
        );
        assert_eq!(
            events,
            [
                Inbound::Delivered {
                    customer: "PSID-1".into(),
                    mids: vec!["m_a".into(), "m_b".into()],
                    watermark: Some(1_458_668_856_253),
                    at_ms: Some(1_458_668_856_463),
                },
                Inbound::Read {
                    customer: "PSID-1".into(),
                    mid: None,
                    watermark: Some(1_458_668_856_253),
                    at_ms: Some(1_458_668_856_463),
                },
            ]
        );
    }

    #[test]
    fn instagram_reads_name_the_message() {
        let body = notification(
            "instagram",
            r#"{"sender":{"id":"IGSID-9"},"recipient":{"id":"17841400000"},"timestamp":1700000000000,"read":{"mid":"aWdf_mid"}}"#,
        );
        let events = parse(Platform::Instagram, body.as_bytes(), None).unwrap();
        assert!(matches!(
            events.as_slice(),
            [Inbound::Read { customer, mid: Some(mid), .. }] if customer == "IGSID-9" && mid == "aWdf_mid"
        ));
    }

    #[test]
    fn other_objects_and_other_accounts_are_ignored() {
        let item = format!(r#"{{{FROM},"message":{{"mid":"m_1","text":"hi"}}}}"#);
        let instagram = notification("instagram", &item);
        assert!(
            parse(Platform::Messenger, instagram.as_bytes(), Some(PAGE))
                .unwrap()
                .is_empty()
        );
        let page = notification("page", &item);
        assert!(
            parse(Platform::Messenger, page.as_bytes(), Some("999"))
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            parse(Platform::Messenger, page.as_bytes(), None)
                .unwrap()
                .len(),
            1
        );
        assert!(matches!(
            parse(Platform::Messenger, b"not json", None),
            Err(PluginError::InvalidRequest(_))
        ));
    }

    #[test]
    fn several_entries_and_items_are_several_events_in_order() {
        let body = format!(
            r#"{{"object":"page","entry":[
                {{"id":"{PAGE}","messaging":[{{{FROM},"message":{{"mid":"m_1","text":"one"}}}},{{{FROM},"message":{{"mid":"m_2","text":"two"}}}}]}},
                {{"id":"{PAGE}","messaging":[{{{FROM},"message":{{"mid":"m_3","text":"three"}}}}]}}
            ]}}"#
        );
        let ids: Vec<_> = parse(Platform::Messenger, body.as_bytes(), Some(PAGE))
            .unwrap()
            .into_iter()
            .map(|e| match e {
                Inbound::Message(message) => message.provider_id,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(ids, ["m_1", "m_2", "m_3"]);
    }
}
