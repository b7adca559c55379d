//! Warm hand-offs: the context summary the host drafts when an agent transfers a
//! conversation, so the receiver never has to ask the customer to start over.
//!
//! The draft is a starting point the transferring agent edits, so the rules are simple
//! and explainable rather than clever: the reason for contact is the customer's first
//! message that states a need; steps taken are our notes and the sentences of our
//! replies that report an action; commitments are the sentences where we promised
//! something; sentiment is a small word list over the customer's messages, recent ones
//! weighing more. No model, no network: it runs in microseconds on any conversation.

use serde::{Deserialize, Serialize};

use crate::timeline::{Direction, EventKind};

/// How the customer feels, as far as their words tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sentiment {
    /// Annoyed, angry, disappointed.
    Negative,
    /// Nothing either way.
    Neutral,
    /// Pleased, thankful.
    Positive,
}

/// The context that travels with a transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffContext {
    /// Why the customer got in touch.
    pub reason: String,
    /// What was already done.
    #[serde(default)]
    pub steps: Vec<String>,
    /// What we promised.
    #[serde(default)]
    pub commitments: Vec<String>,
    /// How the customer feels.
    pub sentiment: Sentiment,
    /// One paragraph for the receiver.
    #[serde(default)]
    pub summary: String,
}

impl HandoffContext {
    /// Whether there is anything for the receiver to read.
    pub fn is_empty(&self) -> bool {
        self.reason.trim().is_empty()
            && self.summary.trim().is_empty()
            && self.steps.iter().all(|s| s.trim().is_empty())
            && self.commitments.iter().all(|s| s.trim().is_empty())
    }

    /// Trims every field, drops empty lines and caps lengths so a pasted essay cannot
    /// bloat every offer it rides on.
    pub fn cleaned(mut self) -> HandoffContext {
        fn line(s: &str) -> String {
            clip(s.trim(), MAX_LINE)
        }
        fn lines(v: Vec<String>) -> Vec<String> {
            v.iter()
                .map(|s| line(s))
                .filter(|s| !s.is_empty())
                .take(MAX_ITEMS)
                .collect()
        }
        self.reason = line(&self.reason);
        self.summary = clip(self.summary.trim(), MAX_SUMMARY);
        self.steps = lines(self.steps);
        self.commitments = lines(self.commitments);
        self
    }

    /// The context as the one line of text shown on the timeline.
    pub fn timeline_text(&self) -> String {
        let mut parts = vec![format!("Reason: {}", self.reason)];
        if !self.steps.is_empty() {
            parts.push(format!("Steps taken: {}", self.steps.join("; ")));
        }
        if !self.commitments.is_empty() {
            parts.push(format!("Commitments: {}", self.commitments.join("; ")));
        }
        parts.push(format!("Sentiment: {}", sentiment_word(self.sentiment)));
        parts.join(" · ")
    }
}

/// One timeline entry as the drafter reads it.
#[derive(Debug, Clone, Copy)]
pub struct Utterance<'a> {
    /// In (customer), out (us) or internal (notes and the like).
    pub direction: Direction,
    /// Messages and notes count; other kinds are ignored.
    pub kind: EventKind,
    /// The text.
    pub body: &'a str,
    /// The channel it travelled on.
    pub channel: Option<&'a str>,
    /// Sent by the host itself (an automatic greeting): not something an agent did.
    pub automatic: bool,
}

const MAX_ITEMS: usize = 6;
const MAX_LINE: usize = 280;
const MAX_SUMMARY: usize = 1200;

const NEED_WORDS: &[&str] = &[
    "can't",
    "cannot",
    "can not",
    "won't",
    "doesn't",
    "didn't",
    "not working",
    "broken",
    "problem",
    "issue",
    "error",
    "help",
    "need",
    "want",
    "how do",
    "how can",
    "why",
    "wrong",
    "charged",
    "bill",
    "invoice",
    "refund",
    "cancel",
    "order",
    "payment",
    "account",
    "login",
    "password",
    "missing",
    "late",
    "question",
];
const ACTION_WORDS: &[&str] = &[
    "checked",
    "reset",
    "restarted",
    "sent",
    "resent",
    "verified",
    "updated",
    "refunded",
    "issued",
    "escalated",
    "looked",
    "tried",
    "confirmed",
    "applied",
    "changed",
    "cancelled",
    "canceled",
    "scheduled",
    "credited",
    "replaced",
    "removed",
    "added",
    "fixed",
    "opened",
    "created",
    "asked",
    "processed",
    "reviewed",
];
const PROMISE_WORDS: &[&str] = &[
    "i will",
    "i'll",
    "we will",
    "we'll",
    "will call",
    "call you back",
    "follow up",
    "get back to you",
    "promise",
    "by tomorrow",
    "within 24",
    "within 48",
    "by monday",
    "by friday",
    "next week",
];
const NEGATIVE_WORDS: &[&str] = &[
    "angry",
    "terrible",
    "awful",
    "worst",
    "unacceptable",
    "frustrat",
    "ridiculous",
    "disappoint",
    "annoy",
    "useless",
    "hate",
    "furious",
    "still not",
    "again",
    "never",
    "waste",
    "rude",
    "horrible",
    "complain",
    "upset",
    "fed up",
    "lawyer",
];
const POSITIVE_WORDS: &[&str] = &[
    "thank",
    "great",
    "perfect",
    "awesome",
    "appreciate",
    "love",
    "happy",
    "excellent",
    "wonderful",
    "brilliant",
    "helpful",
    "glad",
    "fantastic",
];

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

fn sentiment_word(s: Sentiment) -> &'static str {
    match s {
        Sentiment::Negative => "negative",
        Sentiment::Neutral => "neutral",
        Sentiment::Positive => "positive",
    }
}

fn sentences(text: &str) -> impl Iterator<Item = &str> {
    text.split(['.', '!', '?', '\n'])
        .map(str::trim)
        .filter(|s| s.len() > 2)
}

fn mentions(text: &str, words: &[&str]) -> usize {
    let lower = text.to_lowercase();
    words.iter().filter(|w| lower.contains(*w)).count()
}

fn counts(u: &Utterance<'_>) -> bool {
    matches!(u.kind, EventKind::Message | EventKind::Note) && !u.body.trim().is_empty()
}

/// Scores the customer's words: each negative word −1, positive +1, exclamation runs
/// and shouting −1; the later half of the conversation counts double, because how the
/// customer feels now matters more than how they started.
pub fn sentiment(utterances: &[Utterance<'_>]) -> Sentiment {
    let inbound: Vec<&Utterance<'_>> = utterances
        .iter()
        .filter(|u| u.direction == Direction::In && counts(u))
        .collect();
    let half = inbound.len() / 2;
    let mut score = 0i64;
    for (i, u) in inbound.iter().enumerate() {
        let mut s =
            mentions(u.body, POSITIVE_WORDS) as i64 - mentions(u.body, NEGATIVE_WORDS) as i64;
        if u.body.contains("!!") {
            s -= 1;
        }
        let letters: Vec<char> = u.body.chars().filter(|c| c.is_alphabetic()).collect();
        if letters.len() >= 8 && letters.iter().all(|c| c.is_uppercase()) {
            s -= 1;
        }
        score += if i >= half { 2 * s } else { s };
    }
    match score {
        s if s <= -2 => Sentiment::Negative,
        s if s >= 2 => Sentiment::Positive,
        _ => Sentiment::Neutral,
    }
}

/// Drafts the context of a transfer from a conversation's timeline (oldest first).
/// `customer` is the contact's name, if known.
pub fn draft(utterances: &[Utterance<'_>], customer: Option<&str>) -> HandoffContext {
    let inbound = || {
        utterances
            .iter()
            .filter(|u| u.direction == Direction::In && counts(u))
    };
    let reason = inbound()
        .find(|u| mentions(u.body, NEED_WORDS) > 0)
        .or_else(|| inbound().next())
        .map(|u| clip(u.body.trim(), MAX_LINE))
        .unwrap_or_default();
    let mut steps = Vec::new();
    let mut commitments = Vec::new();
    for u in utterances.iter().filter(|u| counts(u) && !u.automatic) {
        match (u.direction, u.kind) {
            (Direction::Internal, EventKind::Note) => steps.push(clip(u.body.trim(), MAX_LINE)),
            (Direction::Out, EventKind::Message) => {
                for s in sentences(u.body) {
                    if mentions(s, PROMISE_WORDS) > 0 {
                        commitments.push(clip(s, MAX_LINE));
                    } else if mentions(s, ACTION_WORDS) > 0 {
                        steps.push(clip(s, MAX_LINE));
                    }
                }
            }
            _ => {}
        }
    }
    // The most recent steps and commitments are the ones the receiver needs.
    let keep_last = |v: &mut Vec<String>| {
        if v.len() > MAX_ITEMS {
            v.drain(..v.len() - MAX_ITEMS);
        }
    };
    keep_last(&mut steps);
    keep_last(&mut commitments);
    let feeling = sentiment(utterances);
    let mut channels: Vec<&str> = Vec::new();
    for c in utterances
        .iter()
        .filter(|u| u.kind == EventKind::Message)
        .filter_map(|u| u.channel)
    {
        if !channels.contains(&c) {
            channels.push(c);
        }
    }
    let who = customer
        .filter(|n| !n.trim().is_empty())
        .unwrap_or("The customer");
    let mut summary = format!(
        "{who} contacted us on {}",
        if channels.is_empty() {
            "an unknown channel".to_owned()
        } else {
            channels.join(", then ")
        }
    );
    if !reason.is_empty() {
        summary.push_str(&format!(" about: \"{reason}\""));
    }
    summary.push('.');
    summary.push_str(&match steps.len() {
        0 => " Nothing has been done yet.".to_owned(),
        n => format!(" {n} step(s) already taken."),
    });
    if !commitments.is_empty() {
        summary.push_str(&format!(" We promised: {}.", commitments.join("; ")));
    }
    summary.push_str(&format!(
        " Customer sentiment: {}.",
        sentiment_word(feeling)
    ));
    HandoffContext {
        reason,
        steps,
        commitments,
        sentiment: feeling,
        summary: clip(&summary, MAX_SUMMARY),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn say(direction: Direction, kind: EventKind, body: &str) -> Utterance<'_> {
        Utterance {
            direction,
            kind,
            body,
            channel: Some("webchat"),
            automatic: false,
        }
    }

    #[test]
    fn an_angry_billing_customer_is_drafted_as_such() {
        let t = [
            say(Direction::In, EventKind::Message, "Hi there"),
            say(
                Direction::In,
                EventKind::Message,
                "I was charged twice for my invoice in May",
            ),
            say(
                Direction::Out,
                EventKind::Message,
                "I checked your account and I see both charges. I will refund the second one by tomorrow.",
            ),
            say(
                Direction::Internal,
                EventKind::Note,
                "Customer is on the legacy plan",
            ),
            say(
                Direction::In,
                EventKind::Message,
                "This is unacceptable, it happened again!!",
            ),
        ];
        let d = draft(&t, Some("Jane"));
        assert_eq!(d.reason, "I was charged twice for my invoice in May");
        assert_eq!(
            d.steps,
            [
                "I checked your account and I see both charges",
                "Customer is on the legacy plan"
            ]
        );
        assert_eq!(d.commitments, ["I will refund the second one by tomorrow"]);
        assert_eq!(d.sentiment, Sentiment::Negative);
        assert!(
            d.summary.starts_with("Jane contacted us on webchat about:"),
            "{}",
            d.summary
        );
        assert!(!d.is_empty());
    }

    #[test]
    fn thanks_at_the_end_outweigh_an_early_complaint() {
        let t = [
            say(
                Direction::In,
                EventKind::Message,
                "The app is broken and I'm annoyed",
            ),
            say(Direction::Out, EventKind::Message, "I reset your session."),
            say(
                Direction::In,
                EventKind::Message,
                "Thank you, that's perfect",
            ),
        ];
        assert_eq!(sentiment(&t), Sentiment::Positive);
    }

    #[test]
    fn automatic_messages_are_not_steps_and_empty_conversations_draft_empty() {
        let mut greeting = say(
            Direction::Out,
            EventKind::Message,
            "Thanks! I will connect you with an agent; we checked the queue.",
        );
        greeting.automatic = true;
        let d = draft(&[greeting], None);
        assert!(d.steps.is_empty() && d.commitments.is_empty());
        assert_eq!(d.sentiment, Sentiment::Neutral);
        assert!(
            d.summary
                .starts_with("The customer contacted us on webchat.")
        );
        let empty = HandoffContext {
            reason: " ".into(),
            steps: vec!["".into()],
            commitments: vec![],
            sentiment: Sentiment::Neutral,
            summary: String::new(),
        };
        assert!(empty.is_empty());
    }

    #[test]
    fn cleaning_caps_what_an_agent_pastes() {
        let ctx = HandoffContext {
            reason: format!("  {}  ", "x".repeat(1000)),
            steps: (0..20)
                .map(|i| format!("step {i}"))
                .chain([" ".into()])
                .collect(),
            commitments: vec![],
            sentiment: Sentiment::Neutral,
            summary: "y".repeat(5000),
        }
        .cleaned();
        assert_eq!(ctx.reason.chars().count(), MAX_LINE);
        assert_eq!(ctx.steps.len(), MAX_ITEMS);
        assert_eq!(ctx.summary.chars().count(), MAX_SUMMARY);
        assert!(ctx.timeline_text().starts_with("Reason: xxx"));
    }
}
