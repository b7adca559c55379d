//! Send API bodies: what `POST /{page_id}/messages` gets for an outbound
//! message, one body per provider message.
//!
//! The Send API carries one attachment or one text per message, so a reply
//! with files becomes one request per file and then the text; the text goes
//! last because quick replies only show under the newest message.
//!
//! `messaging_type` follows the host's window decision: `RESPONSE` inside the
//! standard window, `MESSAGE_TAG` with tag `HUMAN_AGENT` when a person
//! replies inside the longer human-agent window.

use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_sdk::{
    Attachment, InteractiveMessage, OutboundMessage, PluginError, SendReceipt, WindowUse,
};

use super::Platform;

/// Most quick replies one message may carry.
pub const MAX_QUICK_REPLIES: usize = 13;

/// Longest quick-reply title Meta shows.
pub const MAX_QUICK_REPLY_TITLE: usize = 20;

/// The Send API's answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Sent {
    /// The customer's scoped id.
    #[serde(default)]
    pub recipient_id: Option<String>,
    /// The new message's id.
    pub message_id: String,
}

impl Sent {
    /// The receipt the host gets for it.
    pub fn receipt(&self) -> SendReceipt {
        SendReceipt::sent(&self.message_id)
    }
}

/// The Send API bodies for `message`, in sending order.
///
/// # Errors
///
/// [`PluginError::Unsupported`] for templates (none on these channels);
/// [`PluginError::Permanent`] for a recipient of another kind, more quick
/// replies than allowed, or nothing to send.
pub fn bodies(platform: Platform, message: &OutboundMessage) -> Result<Vec<Value>, PluginError> {
    if message.template.is_some() {
        return Err(PluginError::Unsupported(format!(
            "{} has no message templates; reply inside the messaging window instead",
            platform.name()
        )));
    }
    if message.to.kind != platform.kind() {
        return Err(PluginError::Permanent(format!(
            "{} sends to `{}` identities, not `{}`",
            platform.name(),
            platform.kind(),
            message.to.kind
        )));
    }
    let envelope = |content: Value| {
        let mut body = json!({
            "recipient": {"id": message.to.value},
            "messaging_type": "RESPONSE",
            "message": content,
        });
        if message.window == WindowUse::HumanAgent {
            body["messaging_type"] = json!("MESSAGE_TAG");
            body["tag"] = json!("HUMAN_AGENT");
        }
        body
    };

    let mut bodies: Vec<Value> = message
        .attachments
        .iter()
        .map(|attachment| envelope(attachment_content(platform, attachment)))
        .collect();

    let quick_replies = quick_replies(message.interactive.as_ref())?;
    let text = match (&message.interactive, message.body.trim().is_empty()) {
        (_, false) => Some(message.body.clone()),
        (Some(InteractiveMessage::List(list)), true) => Some(list.button.clone()),
        (Some(InteractiveMessage::Buttons(_)), true) => {
            return Err(PluginError::Permanent(
                "quick replies need a text to go with".into(),
            ));
        }
        (None, true) => None,
    };
    if let Some(text) = text {
        let mut content = json!({ "text": text });
        if !quick_replies.is_empty() {
            content["quick_replies"] = Value::Array(quick_replies);
        }
        bodies.push(envelope(content));
    }
    if bodies.is_empty() {
        return Err(PluginError::Permanent(
            "the message has neither text nor attachments".into(),
        ));
    }
    Ok(bodies)
}

fn attachment_content(platform: Platform, attachment: &Attachment) -> Value {
    let content_type = attachment
        .content_type
        .as_deref()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let kind = match content_type.split('/').next() {
        Some("image") => "image",
        Some("video") => "video",
        Some("audio") => "audio",
        _ => "file",
    };
    let mut payload = json!({ "url": attachment.url });
    // The host's URLs expire: Messenger must not cache them for reuse.
    // Instagram documents no such flag.
    if platform == Platform::Messenger {
        payload["is_reusable"] = json!(false);
    }
    json!({ "attachment": { "type": kind, "payload": payload } })
}

fn quick_replies(interactive: Option<&InteractiveMessage>) -> Result<Vec<Value>, PluginError> {
    let choices = match interactive {
        None => return Ok(Vec::new()),
        Some(InteractiveMessage::Buttons(choices)) => choices,
        Some(InteractiveMessage::List(list)) => &list.choices,
    };
    if choices.len() > MAX_QUICK_REPLIES {
        return Err(PluginError::Permanent(format!(
            "at most {MAX_QUICK_REPLIES} quick replies fit one message, not {}",
            choices.len()
        )));
    }
    Ok(choices
        .iter()
        .map(|choice| {
            json!({
                "content_type": "text",
                "title": crate::text::truncate(&choice.title, MAX_QUICK_REPLY_TITLE),
                "payload": choice.id,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_sdk::{Choice, ChoiceList, Identity, TemplateMessage};

    fn message(body: &str) -> OutboundMessage {
        OutboundMessage::text(
            "msg-1",
            "conv-1",
            Identity::new("messenger", "PSID-1"),
            body,
        )
    }

    fn choice(id: &str, title: &str) -> Choice {
        Choice {
            id: id.into(),
            title: title.into(),
            description: None,
        }
    }

    #[test]
    fn text_inside_the_window_is_a_response() {
        let bodies = bodies(Platform::Messenger, &message("Your order shipped")).unwrap();
        assert_eq!(
            bodies,
            [json!({
                "recipient": {"id": "PSID-1"},
                "messaging_type": "RESPONSE",
                "message": {"text": "Your order shipped"},
            })]
        );
    }

    #[test]
    fn a_human_agent_reply_carries_the_tag() {
        let mut late = message("Sorry for the wait");
        late.window = WindowUse::HumanAgent;
        let [body] = <[Value; 1]>::try_from(bodies(Platform::Messenger, &late).unwrap()).unwrap();
        assert_eq!(body["messaging_type"], "MESSAGE_TAG");
        assert_eq!(body["tag"], "HUMAN_AGENT");
        assert_eq!(body["message"]["text"], "Sorry for the wait");
    }

    #[test]
    fn attachments_go_one_per_message_before_the_text() {
        let mut with_files = message("Here you go");
        with_files.attachments = vec![
            Attachment {
                content_type: Some("image/png".into()),
                ..Attachment::new("https://sb.test/files/1?sig=a")
            },
            Attachment {
                content_type: Some("application/pdf".into()),
                ..Attachment::new("https://sb.test/files/2?sig=b")
            },
            Attachment::new("https://sb.test/files/3?sig=c"),
        ];
        let bodies = bodies(Platform::Messenger, &with_files).unwrap();
        assert_eq!(bodies.len(), 4);
        assert_eq!(
            bodies[0]["message"],
            json!({"attachment": {"type": "image", "payload": {"url": "https://sb.test/files/1?sig=a", "is_reusable": false}}})
        );
        assert_eq!(bodies[1]["message"]["attachment"]["type"], "file");
        assert_eq!(bodies[2]["message"]["attachment"]["type"], "file");
        assert_eq!(bodies[3]["message"], json!({"text": "Here you go"}));

        let mut instagram = with_files.clone();
        instagram.to = Identity::new("instagram", "IGSID");
        let ig = super::bodies(Platform::Instagram, &instagram).unwrap();
        assert_eq!(
            ig[0]["message"]["attachment"]["payload"],
            json!({"url": "https://sb.test/files/1?sig=a"})
        );

        let mut only_file = with_files;
        only_file.body.clear();
        assert_eq!(
            super::bodies(Platform::Messenger, &only_file)
                .unwrap()
                .len(),
            3
        );
    }

    #[test]
    fn buttons_become_quick_replies() {
        let mut ask = message("Which size?");
        ask.interactive = Some(InteractiveMessage::Buttons(vec![
            choice("size-s", "Small"),
            choice("size-xl", "Extra large, please make it roomy"),
        ]));
        let [body] = <[Value; 1]>::try_from(bodies(Platform::Messenger, &ask).unwrap()).unwrap();
        assert_eq!(
            body["message"],
            json!({
                "text": "Which size?",
                "quick_replies": [
                    {"content_type": "text", "title": "Small", "payload": "size-s"},
                    {"content_type": "text", "title": "Extra large, please…", "payload": "size-xl"},
                ]
            })
        );

        ask.interactive = Some(InteractiveMessage::Buttons(
            (0..14).map(|i| choice(&i.to_string(), "x")).collect(),
        ));
        assert!(matches!(
            bodies(Platform::Messenger, &ask),
            Err(PluginError::Permanent(_))
        ));
    }

    #[test]
    fn a_list_is_quick_replies_under_its_button_label_when_there_is_no_text() {
        let mut ask = message("");
        ask.interactive = Some(InteractiveMessage::List(ChoiceList {
            button: "Pick a store".into(),
            choices: vec![choice("berlin", "Berlin"), choice("paris", "Paris")],
        }));
        let [body] = <[Value; 1]>::try_from(bodies(Platform::Messenger, &ask).unwrap()).unwrap();
        assert_eq!(body["message"]["text"], "Pick a store");
        assert_eq!(body["message"]["quick_replies"][1]["payload"], "paris");
    }

    #[test]
    fn templates_other_kinds_and_empty_messages_are_refused() {
        let mut template = message("");
        template.template = Some(TemplateMessage {
            name: "order_update".into(),
            language: "en_US".into(),
            parameters: Vec::new(),
        });
        template.window = WindowUse::Template;
        assert!(matches!(
            bodies(Platform::Messenger, &template),
            Err(PluginError::Unsupported(_))
        ));

        let mut phone = message("hi");
        phone.to = Identity::new("phone", "+15551234567");
        assert!(matches!(
            bodies(Platform::Messenger, &phone),
            Err(PluginError::Permanent(_))
        ));
        assert!(matches!(
            bodies(Platform::Instagram, &message("hi")),
            Err(PluginError::Permanent(_))
        ));
        assert!(matches!(
            bodies(Platform::Messenger, &message("  ")),
            Err(PluginError::Permanent(_))
        ));
    }
}
