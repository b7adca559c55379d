//! What `send` posts to `/{phone_number_id}/messages`: one Cloud API message
//! body per provider message, in sending order.
//!
//! - text → `type: text` (no link previews: agents paste links to help, not
//!   to advertise);
//! - each attachment → `image`, `video`, `audio` or `document` by its content
//!   type, with a `link` to the host's signed URL; the text rides as the
//!   caption of the first one when that one takes a caption and the text
//!   fits, otherwise it follows as its own message;
//! - a template → `type: template` with one `body` component of text
//!   parameters (`parameter_name` for named templates);
//! - reply buttons (at most 3) → `interactive` `button`; 4 to 10 choices, or a
//!   list, → `interactive` `list` with one section;
//! - `metadata.in_reply_to` → `context.message_id` on the first message.

use meta_common::text::{digits, truncate};
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_sdk::{
    Attachment, Choice, InteractiveMessage, OutboundMessage, PluginError, TemplateMessage,
};

use crate::inbound::WHATSAPP;

/// Reply buttons one message may carry.
pub const MAX_BUTTONS: usize = 3;
/// Longest reply-button title.
pub const MAX_BUTTON_TITLE: usize = 20;
/// Rows one list may carry.
pub const MAX_LIST_ROWS: usize = 10;
/// Longest list-row title.
pub const MAX_ROW_TITLE: usize = 24;
/// Longest list-row description.
pub const MAX_ROW_DESCRIPTION: usize = 72;
/// Longest media caption and interactive body.
pub const MAX_CAPTION: usize = 1024;

/// The Cloud API's answer to a sent message.
#[derive(Debug, Deserialize)]
pub struct Sent {
    #[serde(default)]
    messages: Vec<SentMessage>,
}

#[derive(Debug, Deserialize)]
struct SentMessage {
    id: String,
}

impl Sent {
    /// The new message's id (`wamid.…`).
    ///
    /// # Errors
    ///
    /// [`PluginError::Internal`] when the answer names no message.
    pub fn message_id(self) -> Result<String, PluginError> {
        self.messages
            .into_iter()
            .next()
            .map(|m| m.id)
            .ok_or_else(|| {
                PluginError::Internal("WhatsApp accepted the message but gave no id".into())
            })
    }
}

/// The Cloud API bodies for `message`, in sending order.
///
/// # Errors
///
/// [`PluginError::Permanent`] for a recipient that is not a number, an
/// interactive message WhatsApp cannot carry, or nothing to send.
pub fn bodies(message: &OutboundMessage) -> Result<Vec<Value>, PluginError> {
    if message.to.kind != WHATSAPP && message.to.kind != "phone" {
        return Err(PluginError::Permanent(format!(
            "WhatsApp sends to phone numbers, not `{}` identities",
            message.to.kind
        )));
    }
    let to = digits(&message.to.value);
    if to.is_empty() {
        return Err(PluginError::Permanent(format!(
            "`{}` is not a phone number",
            message.to.value
        )));
    }
    let envelope = |kind: &str, content: Value| {
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": kind,
            kind: content,
        })
    };

    let mut bodies = Vec::new();
    if let Some(template) = &message.template {
        bodies.push(envelope("template", template_content(template)));
    } else {
        let body = message.body.trim();
        let caption_fits = message.interactive.is_none()
            && !body.is_empty()
            && body.chars().count() <= MAX_CAPTION
            && message
                .attachments
                .first()
                .is_some_and(|a| takes_caption(media_kind(a)));
        for (i, attachment) in message.attachments.iter().enumerate() {
            let kind = media_kind(attachment);
            let mut media = json!({ "link": attachment.url });
            if i == 0 && caption_fits {
                media["caption"] = json!(message.body);
            }
            if kind == "document"
                && let Some(filename) = &attachment.filename
            {
                media["filename"] = json!(filename);
            }
            bodies.push(envelope(kind, media));
        }
        if let Some(interactive) = &message.interactive {
            bodies.push(envelope(
                "interactive",
                interactive_content(interactive, body)?,
            ));
        } else if !body.is_empty() && !caption_fits {
            bodies.push(envelope(
                "text",
                json!({ "body": message.body, "preview_url": false }),
            ));
        }
    }
    let first = bodies.first_mut().ok_or_else(|| {
        PluginError::Permanent("the message has neither text, attachments nor a template".into())
    })?;
    if let Some(reply_to) = message
        .metadata
        .in_reply_to
        .as_deref()
        .filter(|id| !id.is_empty())
    {
        first["context"] = json!({ "message_id": reply_to });
    }
    Ok(bodies)
}

/// `image`, `video`, `audio` or `document`, by what WhatsApp accepts as each.
fn media_kind(attachment: &Attachment) -> &'static str {
    let content_type = attachment
        .content_type
        .as_deref()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let content_type = content_type.split(';').next().unwrap_or_default().trim();
    match content_type {
        "image/jpeg" | "image/png" => "image",
        "video/mp4" | "video/3gpp" => "video",
        t if t.starts_with("audio/") => "audio",
        _ => "document",
    }
}

fn takes_caption(kind: &str) -> bool {
    kind != "audio"
}

fn template_content(template: &TemplateMessage) -> Value {
    let mut content = json!({
        "name": template.name,
        "language": { "code": template.language },
    });
    if !template.parameters.is_empty() {
        let parameters: Vec<Value> = template
            .parameters
            .iter()
            .map(|parameter| {
                let mut value = json!({ "type": "text", "text": parameter.value });
                // Positional templates take no names; a name of digits is a position.
                if let Some(name) = parameter
                    .name
                    .as_deref()
                    .filter(|n| !n.is_empty() && !n.chars().all(|c| c.is_ascii_digit()))
                {
                    value["parameter_name"] = json!(name);
                }
                value
            })
            .collect();
        content["components"] = json!([{ "type": "body", "parameters": parameters }]);
    }
    content
}

fn interactive_content(interactive: &InteractiveMessage, body: &str) -> Result<Value, PluginError> {
    if body.is_empty() {
        return Err(PluginError::Permanent(
            "a WhatsApp interactive message needs a text".into(),
        ));
    }
    if body.chars().count() > MAX_CAPTION {
        return Err(PluginError::Permanent(format!(
            "a WhatsApp interactive message's text is at most {MAX_CAPTION} characters"
        )));
    }
    match interactive {
        InteractiveMessage::Buttons(choices) if choices.len() <= MAX_BUTTONS => {
            if choices.is_empty() {
                return Err(PluginError::Permanent(
                    "reply buttons need at least one choice".into(),
                ));
            }
            let buttons: Vec<Value> = choices
                .iter()
                .map(|choice| {
                    json!({
                        "type": "reply",
                        "reply": { "id": choice.id, "title": truncate(&choice.title, MAX_BUTTON_TITLE) },
                    })
                })
                .collect();
            Ok(json!({
                "type": "button",
                "body": { "text": body },
                "action": { "buttons": buttons },
            }))
        }
        // More choices than buttons allow fit a list.
        InteractiveMessage::Buttons(choices) => list_content(body, "Options", choices),
        InteractiveMessage::List(list) => list_content(body, &list.button, &list.choices),
    }
}

fn list_content(body: &str, button: &str, choices: &[Choice]) -> Result<Value, PluginError> {
    if choices.is_empty() || choices.len() > MAX_LIST_ROWS {
        return Err(PluginError::Permanent(format!(
            "a WhatsApp list holds 1 to {MAX_LIST_ROWS} choices, not {}",
            choices.len()
        )));
    }
    let rows: Vec<Value> = choices
        .iter()
        .map(|choice| {
            let mut row =
                json!({ "id": choice.id, "title": truncate(&choice.title, MAX_ROW_TITLE) });
            if let Some(description) = choice.description.as_deref().filter(|d| !d.is_empty()) {
                row["description"] = json!(truncate(description, MAX_ROW_DESCRIPTION));
            }
            row
        })
        .collect();
    let button = if button.trim().is_empty() {
        "Options"
    } else {
        button
    };
    Ok(json!({
        "type": "list",
        "body": { "text": body },
        "action": {
            "button": truncate(button, MAX_BUTTON_TITLE),
            "sections": [{ "title": "Options", "rows": rows }],
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_sdk::{ChoiceList, Identity, TemplateParameter, WindowUse};

    fn message(body: &str) -> OutboundMessage {
        OutboundMessage::text(
            "msg-1",
            "conv-1",
            Identity::new("whatsapp", "+1 650-555-1234"),
            body,
        )
    }

    fn attachment(url: &str, content_type: &str) -> Attachment {
        Attachment {
            content_type: Some(content_type.into()),
            ..Attachment::new(url)
        }
    }

    fn choice(id: &str, title: &str) -> Choice {
        Choice {
            id: id.into(),
            title: title.into(),
            description: None,
        }
    }

    #[test]
    fn text_goes_to_the_digits_of_the_number() {
        assert_eq!(
            bodies(&message("Your order shipped")).unwrap(),
            [json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "16505551234",
                "type": "text",
                "text": {"body": "Your order shipped", "preview_url": false},
            })]
        );
    }

    #[test]
    fn a_reply_carries_the_context() {
        let mut reply = message("Yes, in blue");
        reply.metadata.in_reply_to = Some("wamid.IN1".into());
        assert_eq!(
            bodies(&reply).unwrap()[0]["context"],
            json!({"message_id": "wamid.IN1"})
        );
    }

    #[test]
    fn media_by_content_type_with_the_text_as_first_caption() {
        let mut media = message("Here are the documents");
        media.attachments = vec![
            Attachment {
                filename: Some("label.pdf".into()),
                ..attachment("https://sb.test/f/1?sig=a", "application/pdf")
            },
            attachment("https://sb.test/f/2?sig=b", "image/png"),
            attachment("https://sb.test/f/3?sig=c", "video/mp4"),
            attachment("https://sb.test/f/4?sig=d", "audio/ogg; codecs=opus"),
            attachment("https://sb.test/f/5?sig=e", "image/webp"),
        ];
        let bodies = bodies(&media).unwrap();
        let kinds: Vec<_> = bodies.iter().map(|b| b["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["document", "image", "video", "audio", "document"]);
        assert_eq!(
            bodies[0]["document"],
            json!({"link": "https://sb.test/f/1?sig=a", "caption": "Here are the documents", "filename": "label.pdf"})
        );
        assert_eq!(
            bodies[1]["image"],
            json!({"link": "https://sb.test/f/2?sig=b"})
        );
    }

    #[test]
    fn text_that_cannot_be_a_caption_follows_the_media() {
        let mut voice = message("Listen to this");
        voice.attachments = vec![attachment("https://sb.test/f/1", "audio/mpeg")];
        let bodies = bodies(&voice).unwrap();
        assert_eq!(bodies.len(), 2);
        assert_eq!(bodies[0]["audio"], json!({"link": "https://sb.test/f/1"}));
        assert_eq!(bodies[1]["text"]["body"], "Listen to this");

        let mut long = message(&"x".repeat(MAX_CAPTION + 1));
        long.attachments = vec![attachment("https://sb.test/f/1", "image/jpeg")];
        let bodies = super::bodies(&long).unwrap();
        assert_eq!(bodies.len(), 2);
        assert!(bodies[0]["image"].get("caption").is_none());
    }

    #[test]
    fn templates_with_positional_and_named_parameters() {
        let mut positional = message("");
        positional.window = WindowUse::Template;
        positional.template = Some(TemplateMessage {
            name: "order_update".into(),
            language: "en_US".into(),
            parameters: vec![
                TemplateParameter {
                    name: Some("1".into()),
                    value: "Ada".into(),
                },
                TemplateParameter {
                    name: None,
                    value: "#1234".into(),
                },
            ],
        });
        assert_eq!(
            bodies(&positional).unwrap(),
            [json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "16505551234",
                "type": "template",
                "template": {
                    "name": "order_update",
                    "language": {"code": "en_US"},
                    "components": [{"type": "body", "parameters": [
                        {"type": "text", "text": "Ada"},
                        {"type": "text", "text": "#1234"},
                    ]}],
                },
            })]
        );

        let mut named = positional.clone();
        named.template = Some(TemplateMessage {
            name: "welcome".into(),
            language: "de".into(),
            parameters: vec![TemplateParameter {
                name: Some("first_name".into()),
                value: "Ada".into(),
            }],
        });
        assert_eq!(
            bodies(&named).unwrap()[0]["template"]["components"][0]["parameters"][0],
            json!({"type": "text", "text": "Ada", "parameter_name": "first_name"})
        );

        let mut bare = positional;
        bare.template.as_mut().unwrap().parameters.clear();
        assert!(
            bodies(&bare).unwrap()[0]["template"]
                .get("components")
                .is_none()
        );
    }

    #[test]
    fn reply_buttons() {
        let mut ask = message("Ship today?");
        ask.interactive = Some(InteractiveMessage::Buttons(vec![
            choice("yes", "Yes"),
            choice("later", "Later, when it is convenient"),
        ]));
        assert_eq!(
            bodies(&ask).unwrap()[0]["interactive"],
            json!({
                "type": "button",
                "body": {"text": "Ship today?"},
                "action": {"buttons": [
                    {"type": "reply", "reply": {"id": "yes", "title": "Yes"}},
                    {"type": "reply", "reply": {"id": "later", "title": "Later, when it is c…"}},
                ]},
            })
        );
        ask.body.clear();
        assert!(matches!(bodies(&ask), Err(PluginError::Permanent(_))));
    }

    #[test]
    fn lists_and_too_many_buttons() {
        let mut ask = message("Which store?");
        ask.interactive = Some(InteractiveMessage::List(ChoiceList {
            button: "Choose store".into(),
            choices: vec![
                Choice {
                    description: Some("Rosenthaler Str. 1".into()),
                    ..choice("berlin", "Berlin Mitte")
                },
                choice("paris", "Paris"),
            ],
        }));
        assert_eq!(
            bodies(&ask).unwrap()[0]["interactive"],
            json!({
                "type": "list",
                "body": {"text": "Which store?"},
                "action": {
                    "button": "Choose store",
                    "sections": [{"title": "Options", "rows": [
                        {"id": "berlin", "title": "Berlin Mitte", "description": "Rosenthaler Str. 1"},
                        {"id": "paris", "title": "Paris"},
                    ]}],
                },
            })
        );

        ask.interactive = Some(InteractiveMessage::Buttons(
            (0..5).map(|i| choice(&format!("c{i}"), "x")).collect(),
        ));
        let interactive = &bodies(&ask).unwrap()[0]["interactive"];
        assert_eq!(interactive["type"], "list");
        assert_eq!(
            interactive["action"]["sections"][0]["rows"]
                .as_array()
                .unwrap()
                .len(),
            5
        );

        ask.interactive = Some(InteractiveMessage::Buttons(
            (0..11).map(|i| choice(&format!("c{i}"), "x")).collect(),
        ));
        assert!(matches!(bodies(&ask), Err(PluginError::Permanent(_))));
    }

    #[test]
    fn other_recipients_and_empty_messages_are_refused() {
        let mut email = message("hi");
        email.to = Identity::new("email", "ada@example.com");
        assert!(matches!(bodies(&email), Err(PluginError::Permanent(_))));
        let mut phone = message("hi");
        phone.to = Identity::new("phone", "+15551234567");
        assert_eq!(bodies(&phone).unwrap()[0]["to"], "15551234567");
        assert!(matches!(
            bodies(&message(" ")),
            Err(PluginError::Permanent(_))
        ));
    }

    #[test]
    fn the_answer_names_the_message() {
        let sent: Sent = serde_json::from_str(
            r#"{"messaging_product":"whatsapp","contacts":[{"input":"16505551234","wa_id":"16505551234"}],"messages":[{"id":"wamid.OUT1","message_status":"accepted"}]}"#,
        )
        .unwrap();
        assert_eq!(sent.message_id().unwrap(), "wamid.OUT1");
        let empty: Sent = serde_json::from_str(r#"{"messages":[]}"#).unwrap();
        assert!(matches!(empty.message_id(), Err(PluginError::Internal(_))));
    }
}
