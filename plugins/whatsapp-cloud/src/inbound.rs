//! WhatsApp Cloud API notifications (`object: whatsapp_business_account`) as
//! events: `messages[]` become messages, `statuses[]` become receipts.
//!
//! Pure: no kv, no HTTP. One POST may carry several entries, changes,
//! messages and statuses; each becomes one event, in order. A message type
//! this module does not know still becomes a message with a readable body:
//! the customer wrote, and an agent should see that.

use meta_common::text;
use serde::Deserialize;
use switchboard_sdk::{
    Attachment, ChannelEvent, DeliveryReceipt, DeliveryStatus, Identity, InboundMessage,
    InteractiveReply, Location, PluginError, Reaction, SharedContact,
};

/// The identity kind of WhatsApp users: their number in E.164.
pub const WHATSAPP: &str = "whatsapp";

/// The `object` of WhatsApp notifications.
pub const OBJECT: &str = "whatsapp_business_account";

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
    changes: Vec<Change>,
}

#[derive(Deserialize)]
struct Change {
    #[serde(default)]
    field: Option<String>,
    #[serde(default)]
    value: Option<Value>,
}

#[derive(Deserialize)]
struct Value {
    #[serde(default)]
    metadata: Option<Metadata>,
    #[serde(default)]
    contacts: Vec<Contact>,
    #[serde(default)]
    messages: Vec<Message>,
    #[serde(default)]
    statuses: Vec<Status>,
}

#[derive(Deserialize)]
struct Metadata {
    #[serde(default)]
    display_phone_number: Option<String>,
    #[serde(default)]
    phone_number_id: Option<String>,
}

#[derive(Deserialize)]
struct Contact {
    #[serde(default)]
    profile: Option<Profile>,
    #[serde(default)]
    wa_id: Option<String>,
}

#[derive(Deserialize)]
struct Profile {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default, deserialize_with = "text::millis")]
    timestamp: Option<u64>,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    context: Option<Context>,
    #[serde(default)]
    text: Option<Text>,
    #[serde(default)]
    image: Option<Media>,
    #[serde(default)]
    video: Option<Media>,
    #[serde(default)]
    audio: Option<Media>,
    #[serde(default)]
    document: Option<Media>,
    #[serde(default)]
    sticker: Option<Media>,
    #[serde(default)]
    location: Option<LocationIn>,
    #[serde(default)]
    contacts: Vec<ContactCard>,
    #[serde(default)]
    interactive: Option<Interactive>,
    #[serde(default)]
    button: Option<Button>,
    #[serde(default)]
    reaction: Option<ReactionIn>,
    #[serde(default)]
    system: Option<Text>,
}

#[derive(Deserialize)]
struct Context {
    #[serde(default)]
    id: Option<String>,
}

#[derive(Deserialize)]
struct Text {
    #[serde(default)]
    body: Option<String>,
}

#[derive(Deserialize)]
struct Media {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    mime_type: Option<String>,
    #[serde(default)]
    caption: Option<String>,
    #[serde(default)]
    filename: Option<String>,
}

#[derive(Deserialize)]
struct LocationIn {
    #[serde(default, deserialize_with = "text::lenient_f64")]
    latitude: Option<f64>,
    #[serde(default, deserialize_with = "text::lenient_f64")]
    longitude: Option<f64>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    address: Option<String>,
}

#[derive(Deserialize)]
struct ContactCard {
    #[serde(default)]
    name: Option<CardName>,
    #[serde(default)]
    phones: Vec<CardPhone>,
    #[serde(default)]
    emails: Vec<CardEmail>,
}

#[derive(Deserialize)]
struct CardName {
    #[serde(default)]
    formatted_name: Option<String>,
    #[serde(default)]
    first_name: Option<String>,
}

#[derive(Deserialize)]
struct CardPhone {
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    wa_id: Option<String>,
}

#[derive(Deserialize)]
struct CardEmail {
    #[serde(default)]
    email: Option<String>,
}

#[derive(Deserialize)]
struct Interactive {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    button_reply: Option<Reply>,
    #[serde(default)]
    list_reply: Option<Reply>,
    #[serde(default)]
    nfm_reply: Option<Text>,
}

#[derive(Deserialize)]
struct Reply {
    #[serde(default)]
    id: String,
    #[serde(default)]
    title: String,
}

#[derive(Deserialize)]
struct Button {
    #[serde(default)]
    payload: Option<String>,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
struct ReactionIn {
    #[serde(default)]
    message_id: Option<String>,
    #[serde(default)]
    emoji: Option<String>,
}

#[derive(Deserialize)]
struct Status {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    status: String,
    #[serde(default, deserialize_with = "text::millis")]
    timestamp: Option<u64>,
    #[serde(default)]
    errors: Vec<StatusError>,
}

#[derive(Deserialize)]
struct StatusError {
    #[serde(default)]
    code: Option<serde_json::Value>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    error_data: Option<ErrorData>,
}

#[derive(Deserialize)]
struct ErrorData {
    #[serde(default)]
    details: Option<String>,
}

/// Parses one notification body into events.
///
/// Changes for another phone number than `phone_number_id` are skipped: a
/// WhatsApp Business Account sends every number's traffic to the app's one
/// callback URL, and a reply could not go out from this one.
///
/// # Errors
///
/// [`PluginError::InvalidRequest`] when the body is not JSON.
pub fn events(
    body: &[u8],
    phone_number_id: Option<&str>,
) -> Result<Vec<ChannelEvent>, PluginError> {
    let notification: Notification = serde_json::from_slice(body).map_err(|e| {
        PluginError::InvalidRequest(format!("WhatsApp webhook body is not JSON: {e}"))
    })?;
    if notification.object != OBJECT {
        return Ok(Vec::new());
    }
    let mut events = Vec::new();
    for change in notification.entry.into_iter().flat_map(|e| e.changes) {
        if change
            .field
            .as_deref()
            .is_some_and(|field| field != "messages")
        {
            continue;
        }
        let Some(value) = change.value else { continue };
        let number = value.metadata.as_ref();
        let other_number = matches!(
            (phone_number_id, number.and_then(|m| m.phone_number_id.as_deref())),
            (Some(ours), Some(theirs)) if ours != theirs
        );
        if other_number {
            continue;
        }
        let recipient = number
            .and_then(|m| m.display_phone_number.as_deref())
            .map(text::digits)
            .filter(|digits| !digits.is_empty())
            .map(|digits| Identity::new(WHATSAPP, format!("+{digits}")));
        for message in value.messages {
            if let Some(inbound) = message_event(message, &value.contacts, recipient.as_ref()) {
                events.push(ChannelEvent::Message(inbound));
            }
        }
        events.extend(
            value
                .statuses
                .into_iter()
                .filter_map(receipt)
                .map(ChannelEvent::Receipt),
        );
    }
    Ok(events)
}

fn message_event(
    message: Message,
    contacts: &[Contact],
    recipient: Option<&Identity>,
) -> Option<InboundMessage> {
    let from = message
        .from
        .as_deref()
        .map(text::digits)
        .filter(|d| !d.is_empty())?;
    let id = message.id.clone().filter(|id| !id.is_empty())?;
    let name = contacts
        .iter()
        .find(|c| c.wa_id.as_deref() == Some(from.as_str()))
        .or(contacts.first())
        .and_then(|c| c.profile.as_ref()?.name.clone())
        .filter(|name| !name.trim().is_empty());

    let mut inbound = InboundMessage::new(id, Identity::new(WHATSAPP, format!("+{from}")), "");
    inbound.recipient = recipient.cloned();
    inbound.sender_name = name;
    inbound.sent_at_ms = message.timestamp;
    inbound.metadata.in_reply_to = message
        .context
        .as_ref()
        .and_then(|c| c.id.clone())
        .filter(|id| !id.is_empty());
    inbound.body = content(message, &mut inbound);
    Some(inbound)
}

/// Fills attachments and metadata for the message's type and returns its body.
fn content(message: Message, inbound: &mut InboundMessage) -> String {
    let kind = message.kind.as_str();
    match kind {
        "text" => message.text.and_then(|t| t.body).unwrap_or_default(),
        "image" | "video" | "audio" | "document" | "sticker" => {
            let media = match kind {
                "image" => message.image,
                "video" => message.video,
                "audio" => message.audio,
                "document" => message.document,
                _ => message.sticker,
            };
            let Some(media) = media else {
                return format!("({kind} without its file)");
            };
            let Some(media_id) = media.id.filter(|id| !id.is_empty()) else {
                return format!("({kind} without its file)");
            };
            let mut attachment = Attachment::new(media_id);
            attachment.content_type = media.mime_type;
            attachment.filename = media.filename;
            inbound.attachments.push(attachment);
            media.caption.unwrap_or_default()
        }
        "location" => {
            let Some(location) = message.location else {
                return "(a location)".to_owned();
            };
            let (Some(latitude), Some(longitude)) = (location.latitude, location.longitude) else {
                return "(a location without coordinates)".to_owned();
            };
            let body = text::location_text(
                latitude,
                longitude,
                location.name.as_deref(),
                location.address.as_deref(),
            );
            inbound.metadata.location = Some(Location {
                latitude,
                longitude,
                name: location.name,
                address: location.address,
            });
            body
        }
        "contacts" => {
            let cards: Vec<SharedContact> =
                message.contacts.into_iter().map(shared_contact).collect();
            let lines: Vec<String> = cards.iter().map(contact_line).collect();
            inbound.metadata.contacts = cards;
            lines.join("\n")
        }
        "interactive" => {
            let Some(interactive) = message.interactive else {
                return "(an interactive reply)".to_owned();
            };
            let reply = match interactive.kind.as_str() {
                "button_reply" => interactive.button_reply,
                "list_reply" => interactive.list_reply,
                _ => None,
            };
            if let Some(reply) = reply {
                let title = reply.title.clone();
                inbound.metadata.interactive_reply = Some(InteractiveReply {
                    id: reply.id,
                    title: reply.title,
                });
                title
            } else if let Some(body) = interactive.nfm_reply.and_then(|r| r.body) {
                body
            } else {
                format!("(an interactive reply of type {})", interactive.kind)
            }
        }
        "button" => {
            let button = message.button.unwrap_or(Button {
                payload: None,
                text: None,
            });
            let title = button.text.unwrap_or_default();
            inbound.metadata.interactive_reply = Some(InteractiveReply {
                id: button.payload.unwrap_or_else(|| title.clone()),
                title: title.clone(),
            });
            title
        }
        "reaction" => {
            let Some(reaction) = message.reaction else {
                return String::new();
            };
            let emoji = reaction.emoji.unwrap_or_default();
            if let Some(target) = reaction.message_id.filter(|id| !id.is_empty()) {
                inbound.metadata.reaction = Some(Reaction {
                    provider_id: target,
                    emoji: emoji.clone(),
                });
            }
            emoji
        }
        "system" => message
            .system
            .and_then(|s| s.body)
            .unwrap_or_else(|| "(a WhatsApp system notice)".to_owned()),
        "unsupported" | "unknown" => {
            "(the customer sent a message type WhatsApp does not deliver to businesses)".to_owned()
        }
        other => format!("(the customer sent a {other} message, which this channel cannot show)"),
    }
}

fn shared_contact(card: ContactCard) -> SharedContact {
    let name = card
        .name
        .and_then(|n| n.formatted_name.or(n.first_name))
        .filter(|n| !n.trim().is_empty());
    let mut identities = Vec::new();
    for phone in card.phones {
        if let Some(wa_id) = phone
            .wa_id
            .as_deref()
            .map(text::digits)
            .filter(|d| !d.is_empty())
        {
            identities.push(Identity::new(WHATSAPP, format!("+{wa_id}")));
        }
        if let Some(number) = phone.phone.filter(|p| !p.trim().is_empty()) {
            identities.push(Identity::new("phone", number.trim()));
        }
    }
    for email in card.emails {
        if let Some(address) = email.email.filter(|e| !e.trim().is_empty()) {
            identities.push(Identity::new("email", address.trim()));
        }
    }
    SharedContact { name, identities }
}

fn contact_line(card: &SharedContact) -> String {
    let reach: Vec<&str> = card
        .identities
        .iter()
        .filter(|i| i.kind != WHATSAPP)
        .map(|i| i.value.as_str())
        .collect();
    let name = card.name.as_deref().unwrap_or("a contact");
    if reach.is_empty() {
        format!("👤 {name}")
    } else {
        format!("👤 {name}: {}", reach.join(", "))
    }
}

fn receipt(status: Status) -> Option<DeliveryReceipt> {
    let id = status.id.filter(|id| !id.is_empty())?;
    let delivery = match status.status.as_str() {
        "sent" => DeliveryStatus::Sent,
        "delivered" => DeliveryStatus::Delivered,
        "read" => DeliveryStatus::Read,
        "failed" => DeliveryStatus::Failed,
        // `deleted`, `warning` and statuses yet to come change nothing here.
        _ => return None,
    };
    let mut receipt = DeliveryReceipt::new(id, delivery);
    receipt.at_ms = status.timestamp;
    if delivery == DeliveryStatus::Failed {
        let error = status.errors.into_iter().next();
        let code = error.as_ref().and_then(|e| match e.code.as_ref()? {
            serde_json::Value::Number(n) => Some(n.to_string()),
            serde_json::Value::String(s) => Some(s.clone()),
            _ => None,
        });
        receipt.error_message = Some(failure_reason(code.as_deref(), error));
        receipt.error_code = code;
    }
    Some(receipt)
}

/// A reason an agent can act on for a failed message.
fn failure_reason(code: Option<&str>, error: Option<StatusError>) -> String {
    if code == Some("131047") {
        return "The 24-hour customer service window has closed: the customer has not written \
                in the last 24 hours, so WhatsApp only delivers an approved template now."
            .to_owned();
    }
    let text = error.and_then(|e| {
        [e.error_data.and_then(|d| d.details), e.message, e.title]
            .into_iter()
            .flatten()
            .map(|t| t.trim().to_owned())
            .find(|t| !t.is_empty())
    });
    text.unwrap_or_else(|| "WhatsApp could not deliver the message".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHONE_ID: &str = "106540352242922";

    fn notification(value: &str) -> String {
        format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"102290129340398","changes":[{{"field":"messages","value":{{
                "messaging_product":"whatsapp",
                "metadata":{{"display_phone_number":"15550783881","phone_number_id":"{PHONE_ID}"}},
                {value}}}}}]}}]}}"#
        )
    }

    fn message_json(fields: &str) -> String {
        notification(&format!(
            r#""contacts":[{{"profile":{{"name":"Sheena Nelson"}},"wa_id":"16505551234"}}],
               "messages":[{{"from":"16505551234","id":"wamid.IN1","timestamp":"1749416383",{fields}}}]"#
        ))
    }

    fn only_message(body: &str) -> InboundMessage {
        match events(body.as_bytes(), Some(PHONE_ID)).unwrap().as_slice() {
            [ChannelEvent::Message(message)] => message.clone(),
            other => panic!("expected one message, got {other:?}"),
        }
    }

    fn only_receipt(body: &str) -> DeliveryReceipt {
        match events(body.as_bytes(), Some(PHONE_ID)).unwrap().as_slice() {
            [ChannelEvent::Receipt(receipt)] => receipt.clone(),
            other => panic!("expected one receipt, got {other:?}"),
        }
    }

    #[test]
    fn text_message_has_sender_recipient_name_time_and_context() {
        let message = only_message(&message_json(
            r#""type":"text","text":{"body":"Does it come in another color?"},"context":{"from":"15550783881","id":"wamid.OUT1"}"#,
        ));
        assert_eq!(message.provider_id, "wamid.IN1");
        assert_eq!(message.sender, Identity::new("whatsapp", "+16505551234"));
        assert_eq!(
            message.recipient,
            Some(Identity::new("whatsapp", "+15550783881"))
        );
        assert_eq!(message.sender_name.as_deref(), Some("Sheena Nelson"));
        assert_eq!(message.body, "Does it come in another color?");
        assert_eq!(message.sent_at_ms, Some(1_749_416_383_000));
        assert_eq!(message.metadata.in_reply_to.as_deref(), Some("wamid.OUT1"));
    }

    #[test]
    fn media_becomes_an_attachment_by_media_id_with_the_caption_as_body() {
        let image = only_message(&message_json(
            r#""type":"image","image":{"caption":"The dent","mime_type":"image/jpeg","sha256":"abc=","id":"1003383421387256"}"#,
        ));
        assert_eq!(image.body, "The dent");
        let [attachment] = image.attachments.as_slice() else {
            panic!("{:?}", image.attachments)
        };
        assert_eq!(attachment.url, "1003383421387256");
        assert_eq!(attachment.content_type.as_deref(), Some("image/jpeg"));

        let document = only_message(&message_json(
            r#""type":"document","document":{"filename":"invoice.pdf","mime_type":"application/pdf","sha256":"x","id":"55"}"#,
        ));
        assert_eq!(document.body, "");
        assert_eq!(
            document.attachments[0].filename.as_deref(),
            Some("invoice.pdf")
        );

        for kind in ["video", "audio", "sticker"] {
            let message = only_message(&message_json(&format!(
                r#""type":"{kind}","{kind}":{{"mime_type":"x/y","sha256":"x","id":"id-{kind}"}}"#
            )));
            assert_eq!(message.attachments[0].url, format!("id-{kind}"));
        }
    }

    #[test]
    fn location_is_metadata_and_a_readable_body() {
        let message = only_message(&message_json(
            r#""type":"location","location":{"address":"1 Hacker Way, Menlo Park, CA 94025","latitude":37.483307,"longitude":-122.148981,"name":"Meta Headquarters","url":"https://meta.com"}"#,
        ));
        assert_eq!(
            message.metadata.location,
            Some(Location {
                latitude: 37.483307,
                longitude: -122.148981,
                name: Some("Meta Headquarters".into()),
                address: Some("1 Hacker Way, Menlo Park, CA 94025".into()),
            })
        );
        assert_eq!(
            message.body,
            "📍 Meta Headquarters, 1 Hacker Way, Menlo Park, CA 94025 (37.483307, -122.148981)"
        );
    }

    #[test]
    fn shared_contacts_carry_their_identities() {
        let message = only_message(&message_json(
            r#""type":"contacts","contacts":[{"name":{"formatted_name":"Ada Lovelace","first_name":"Ada"},
                "phones":[{"phone":"+1 (940) 555-1234","wa_id":"19405551234","type":"CELL"},{"phone":"+44 20 7946 0000","type":"WORK"}],
                "emails":[{"email":"ada@example.com","type":"WORK"}]}]"#,
        ));
        let [card] = message.metadata.contacts.as_slice() else {
            panic!("{:?}", message.metadata.contacts)
        };
        assert_eq!(card.name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(
            card.identities,
            [
                Identity::new("whatsapp", "+19405551234"),
                Identity::new("phone", "+1 (940) 555-1234"),
                Identity::new("phone", "+44 20 7946 0000"),
                Identity::new("email", "ada@example.com"),
            ]
        );
        assert_eq!(
            message.body,
            "👤 Ada Lovelace: +1 (940) 555-1234, +44 20 7946 0000, ada@example.com"
        );
    }

    #[test]
    fn interactive_and_template_button_replies() {
        let button = only_message(&message_json(
            r#""type":"interactive","interactive":{"type":"button_reply","button_reply":{"id":"yes-ship","title":"Yes, ship it"}}"#,
        ));
        assert_eq!(button.body, "Yes, ship it");
        assert_eq!(
            button.metadata.interactive_reply,
            Some(InteractiveReply {
                id: "yes-ship".into(),
                title: "Yes, ship it".into()
            })
        );
        let list = only_message(&message_json(
            r#""type":"interactive","interactive":{"type":"list_reply","list_reply":{"id":"store-berlin","title":"Berlin","description":"Mitte"}}"#,
        ));
        assert_eq!(list.metadata.interactive_reply.unwrap().id, "store-berlin");
        assert_eq!(list.body, "Berlin");
        let template_button = only_message(&message_json(
            r#""type":"button","button":{"payload":"STOP_PROMOS","text":"Stop promotions"}"#,
        ));
        assert_eq!(template_button.body, "Stop promotions");
        assert_eq!(
            template_button.metadata.interactive_reply.unwrap().id,
            "STOP_PROMOS"
        );
    }

    #[test]
    fn reactions_name_the_message_and_the_emoji() {
        let message = only_message(&message_json(
            r#""type":"reaction","reaction":{"message_id":"wamid.OUT7","emoji":"👍"}"#,
        ));
        assert_eq!(message.body, "👍");
        assert_eq!(
            message.metadata.reaction,
            Some(Reaction {
                provider_id: "wamid.OUT7".into(),
                emoji: "👍".into()
            })
        );
        let removed = only_message(&message_json(
            r#""type":"reaction","reaction":{"message_id":"wamid.OUT7"}"#,
        ));
        assert_eq!(removed.metadata.reaction.unwrap().emoji, "");
    }

    #[test]
    fn unknown_types_are_readable_messages_not_errors() {
        let unsupported = only_message(&message_json(
            r#""type":"unsupported","errors":[{"code":131051,"title":"Message type unknown"}]"#,
        ));
        assert!(
            unsupported.body.contains("does not deliver"),
            "{}",
            unsupported.body
        );
        let novel = only_message(&message_json(r#""type":"hologram","hologram":{}"#));
        assert!(novel.body.contains("hologram"), "{}", novel.body);
    }

    #[test]
    fn statuses_become_receipts_with_their_time() {
        for (status, expected) in [
            ("sent", DeliveryStatus::Sent),
            ("delivered", DeliveryStatus::Delivered),
            ("read", DeliveryStatus::Read),
        ] {
            let receipt = only_receipt(&notification(&format!(
                r#""statuses":[{{"id":"wamid.OUT1","status":"{status}","timestamp":"1749416400","recipient_id":"16505551234"}}]"#
            )));
            assert_eq!(receipt.provider_id, "wamid.OUT1");
            assert_eq!(receipt.status, expected);
            assert_eq!(receipt.at_ms, Some(1_749_416_400_000));
            assert_eq!(receipt.error_code, None);
        }
        let deleted =
            notification(r#""statuses":[{"id":"wamid.OUT1","status":"deleted","timestamp":"1"}]"#);
        assert!(
            events(deleted.as_bytes(), Some(PHONE_ID))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_failed_status_has_the_code_and_a_readable_reason() {
        let window = only_receipt(&notification(
            r#""statuses":[{"id":"wamid.OUT2","status":"failed","timestamp":"1749416400","recipient_id":"16505551234",
                "errors":[{"code":131047,"title":"Re-engagement message","message":"Re-engagement message",
                "error_data":{"details":"Message failed to send because more than 24 hours have passed since the customer last replied to this number."}}]}]"#,
        ));
        assert_eq!(window.status, DeliveryStatus::Failed);
        assert_eq!(window.error_code.as_deref(), Some("131047"));
        let reason = window.error_message.unwrap();
        assert!(
            reason.contains("24-hour") && reason.contains("template"),
            "{reason}"
        );

        let other = only_receipt(&notification(
            r#""statuses":[{"id":"wamid.OUT3","status":"failed","timestamp":"1749416400",
                "errors":[{"code":131026,"title":"Message undeliverable","error_data":{"details":"The recipient's phone number is not a WhatsApp phone number."}}]}]"#,
        ));
        assert_eq!(other.error_code.as_deref(), Some("131026"));
        assert_eq!(
            other.error_message.as_deref(),
            Some("The recipient's phone number is not a WhatsApp phone number.")
        );
        let bare = only_receipt(&notification(
            r#""statuses":[{"id":"wamid.OUT4","status":"failed","timestamp":"1"}]"#,
        ));
        assert_eq!(bare.error_code, None);
        assert!(bare.error_message.is_some());
    }

    #[test]
    fn several_entries_changes_and_messages_become_several_events() {
        let change = |id: &str| {
            format!(
                r#"{{"field":"messages","value":{{"metadata":{{"display_phone_number":"15550783881","phone_number_id":"{PHONE_ID}"}},
                    "messages":[{{"from":"16505551234","id":"{id}a","timestamp":"1","type":"text","text":{{"body":"a"}}}},
                                {{"from":"16505551234","id":"{id}b","timestamp":"2","type":"text","text":{{"body":"b"}}}}],
                    "statuses":[{{"id":"{id}s","status":"read","timestamp":"3"}}]}}}}"#
            )
        };
        let body = format!(
            r#"{{"object":"whatsapp_business_account","entry":[
                {{"id":"1","changes":[{},{}]}},
                {{"id":"2","changes":[{},{{"field":"message_template_status_update","value":{{"event":"APPROVED"}}}}]}}]}}"#,
            change("x"),
            change("y"),
            change("z")
        );
        let ids: Vec<String> = events(body.as_bytes(), Some(PHONE_ID))
            .unwrap()
            .into_iter()
            .map(|e| match e {
                ChannelEvent::Message(m) => m.provider_id,
                ChannelEvent::Receipt(r) => r.provider_id,
                ChannelEvent::Consent(c) => c.provider_id,
            })
            .collect();
        assert_eq!(ids, ["xa", "xb", "xs", "ya", "yb", "ys", "za", "zb", "zs"]);
    }

    #[test]
    fn other_numbers_objects_and_garbage() {
        let body = message_json(r#""type":"text","text":{"body":"hi"}"#);
        assert!(events(body.as_bytes(), Some("999")).unwrap().is_empty());
        assert_eq!(events(body.as_bytes(), None).unwrap().len(), 1);
        assert!(
            events(br#"{"object":"page","entry":[]}"#, None)
                .unwrap()
                .is_empty()
        );
        assert!(matches!(
            events(b"{", None),
            Err(PluginError::InvalidRequest(_))
        ));
    }
}
