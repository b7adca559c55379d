//! What an agent's message is made of, and the rules the host applies to it
//! before it may leave: templates and their parameters, interactive choices,
//! the messaging window, and which file types a channel takes.

use switchboard_plugin_host::bindings;

use crate::error::{AppError, AppResult};
use crate::mail::EmailReply;
use crate::text::text_field;

/// What an agent sends: text, files (upload ids), or a template; optionally
/// choices to tap.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ReplyContent {
    /// Text (ignored with a template).
    #[serde(default)]
    pub body: String,
    /// Upload ids (`POST /api/v1/attachments`), in order.
    #[serde(default)]
    pub attachments: Vec<String>,
    /// An approved template, which the messaging window does not limit.
    #[serde(default)]
    pub template: Option<Template>,
    /// Choices offered with the text.
    #[serde(default)]
    pub interactive: Option<Interactive>,
    /// E-mail only: subject, copies and the quote (see [`crate::mail`]).
    #[serde(default)]
    pub email: Option<EmailReply>,
}

impl ReplyContent {
    /// Plain text.
    pub fn text(body: impl Into<String>) -> ReplyContent {
        ReplyContent {
            body: body.into(),
            ..ReplyContent::default()
        }
    }
}

/// A template by name and language, with its parameters in order.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct Template {
    /// The template's name as the provider approved it.
    pub name: String,
    /// Its language code (`en_US`).
    pub language: String,
    /// Values for its placeholders, in order (`name` for named placeholders).
    #[serde(default)]
    pub parameters: Vec<TemplateParameter>,
}

/// One value of a template: `"Jane"` or `{"name": "first_name", "value": "Jane"}`.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(from = "ParameterInput")]
pub struct TemplateParameter {
    /// The placeholder's name, for templates with named placeholders.
    #[serde(default)]
    pub name: Option<String>,
    /// The value.
    pub value: String,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum ParameterInput {
    Plain(String),
    Named {
        #[serde(default)]
        name: Option<String>,
        value: String,
    },
}

impl From<ParameterInput> for TemplateParameter {
    fn from(p: ParameterInput) -> TemplateParameter {
        match p {
            ParameterInput::Plain(value) => TemplateParameter { name: None, value },
            ParameterInput::Named { name, value } => TemplateParameter { name, value },
        }
    }
}

impl Template {
    /// Puts parameters named `1`, `2`… in their numbers' order (providers fill
    /// numbered placeholders by position).
    pub fn normalize(&mut self) {
        let numbered =
            |p: &TemplateParameter| p.name.as_deref().and_then(|n| n.parse::<u32>().ok());
        if !self.parameters.is_empty() && self.parameters.iter().all(|p| numbered(p).is_some()) {
            self.parameters.sort_by_key(|p| numbered(p).unwrap_or(0));
        }
    }

    /// Refuses an empty name or language, too many or too long parameters.
    pub fn validate(&self) -> AppResult<()> {
        let ok =
            |s: &str| !s.trim().is_empty() && s.len() <= 512 && !s.chars().any(char::is_control);
        if !ok(&self.name) || !ok(&self.language) {
            return Err(AppError::bad_request(
                "a template needs a `name` and a `language`",
            ));
        }
        if self.parameters.len() > 64 {
            return Err(AppError::bad_request("at most 64 template parameters"));
        }
        for p in &self.parameters {
            text_field("template parameter", &p.value)?;
        }
        Ok(())
    }
}

/// Choices offered with a message.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Interactive {
    /// Reply buttons.
    Buttons(Vec<Choice>),
    /// A list behind a button labelled `button`.
    List {
        /// The button's label.
        button: String,
        /// The rows.
        choices: Vec<Choice>,
    },
}

/// One choice.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct Choice {
    /// What the connector reports when it is tapped.
    pub id: String,
    /// What the customer sees.
    pub title: String,
    /// More text, for list rows.
    #[serde(default)]
    pub description: Option<String>,
}

impl Interactive {
    fn choices(&self) -> &[Choice] {
        match self {
            Interactive::Buttons(c) | Interactive::List { choices: c, .. } => c,
        }
    }

    /// Refuses no choices, more than 13, or a choice without id or title.
    pub fn validate(&self) -> AppResult<()> {
        let choices = self.choices();
        if choices.is_empty() || choices.len() > 13 {
            return Err(AppError::bad_request("offer 1 to 13 choices"));
        }
        for c in choices {
            if c.id.trim().is_empty() || c.title.trim().is_empty() {
                return Err(AppError::bad_request(
                    "every choice needs an `id` and a `title`",
                ));
            }
            text_field("choice", &c.title)?;
        }
        Ok(())
    }

    /// As the plugin API carries it.
    pub fn into_wit(self) -> bindings::InteractiveMessage {
        let choice = |c: Choice| bindings::Choice {
            id: c.id,
            title: c.title,
            description: c.description,
        };
        match self {
            Interactive::Buttons(c) => {
                bindings::InteractiveMessage::Buttons(c.into_iter().map(choice).collect())
            }
            Interactive::List { button, choices } => {
                bindings::InteractiveMessage::List(bindings::ChoiceList {
                    button,
                    choices: choices.into_iter().map(choice).collect(),
                })
            }
        }
    }
}

/// Where a free-form reply stands against the messaging window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowDecision {
    /// Inside the standard window (or the channel has none).
    Open,
    /// Outside it, inside the longer window for replies written by a person.
    HumanAgent,
}

/// The window of one conversation on one channel at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowState {
    /// What a person's reply may do now; none when the window is closed.
    pub decision: Option<WindowDecision>,
    /// When the standard window closes (while open).
    pub closes_at: Option<i64>,
    /// When the longer window for people closes (while open).
    pub human_closes_at: Option<i64>,
    /// When the last window closed (once closed; none if never opened).
    pub closed_at: Option<i64>,
}

/// The window after the customer's last message at `last` (none: they never
/// wrote on this channel), `window` seconds long, with an optional longer
/// window for people.
pub fn window_state(last: Option<i64>, window: u32, human: Option<u32>, now: i64) -> WindowState {
    let Some(last) = last else {
        return WindowState {
            decision: None,
            closes_at: None,
            human_closes_at: None,
            closed_at: None,
        };
    };
    let closes = last + i64::from(window) * 1000;
    let human_closes = human.map(|h| last + i64::from(h) * 1000);
    let decision = if now < closes {
        Some(WindowDecision::Open)
    } else if human_closes.is_some_and(|h| now < h) {
        Some(WindowDecision::HumanAgent)
    } else {
        None
    };
    WindowState {
        decision,
        closes_at: (now < closes).then_some(closes),
        human_closes_at: human_closes.filter(|h| now < *h),
        closed_at: decision
            .is_none()
            .then(|| human_closes.unwrap_or(closes).max(closes)),
    }
}

/// Whether `content_type` is among `accepted` (`image/*` patterns; empty
/// accepts all).
pub fn type_allowed(accepted: &[String], content_type: &str) -> bool {
    accepted.is_empty()
        || accepted.iter().any(|a| {
            a.eq_ignore_ascii_case(content_type)
                || a.strip_suffix("/*").is_some_and(|major| {
                    content_type
                        .split('/')
                        .next()
                        .is_some_and(|m| m.eq_ignore_ascii_case(major))
                })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const H: i64 = 3600 * 1000;

    #[test]
    fn the_window_opens_on_the_last_message_and_the_human_window_outlasts_it() {
        let day = 24 * 3600;
        let open = window_state(Some(0), day, Some(7 * day), 23 * H);
        assert_eq!(open.decision, Some(WindowDecision::Open));
        assert_eq!(open.closes_at, Some(24 * H));
        let human = window_state(Some(0), day, Some(7 * day), 25 * H);
        assert_eq!(human.decision, Some(WindowDecision::HumanAgent));
        assert_eq!(human.closes_at, None);
        assert_eq!(human.human_closes_at, Some(7 * 24 * H));
        let closed = window_state(Some(0), day, Some(7 * day), 8 * 24 * H);
        assert_eq!(closed.decision, None);
        assert_eq!(closed.closed_at, Some(7 * 24 * H));
        let whatsapp = window_state(Some(0), day, None, 25 * H);
        assert_eq!(whatsapp.decision, None);
        assert_eq!(whatsapp.closed_at, Some(24 * H));
        let never = window_state(None, day, None, 0);
        assert_eq!((never.decision, never.closed_at), (None, None));
    }

    #[test]
    fn types_match_exactly_or_by_major_type() {
        let accepted = vec!["image/*".to_string(), "application/pdf".to_string()];
        assert!(type_allowed(&accepted, "image/png"));
        assert!(type_allowed(&accepted, "application/pdf"));
        assert!(!type_allowed(&accepted, "text/html"));
        assert!(!type_allowed(&accepted, "imagex/png"));
        assert!(type_allowed(&[], "anything/else"));
    }

    #[test]
    fn template_parameters_are_plain_or_named() {
        let t: Template = serde_json::from_value(json!({
            "name": "order_update", "language": "en_US",
            "parameters": ["Jane", {"name": "order", "value": "42"}]
        }))
        .unwrap();
        assert_eq!(t.parameters[0].name, None);
        assert_eq!(t.parameters[0].value, "Jane");
        assert_eq!(t.parameters[1].name.as_deref(), Some("order"));
    }

    #[test]
    fn numbered_parameters_are_sent_in_their_numbers_order() {
        let mut t: Template = serde_json::from_value(json!({
            "name": "x", "language": "en",
            "parameters": [{"name": "2", "value": "b"}, {"name": "10", "value": "j"}, {"name": "1", "value": "a"}]
        }))
        .unwrap();
        t.normalize();
        let values: Vec<&str> = t.parameters.iter().map(|p| p.value.as_str()).collect();
        assert_eq!(values, ["a", "b", "j"]);
    }
}
