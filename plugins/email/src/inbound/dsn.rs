//! Bounces: which of our messages failed, and why.
//!
//! A standard delivery status notification (RFC 3464) is a
//! `multipart/report` with a `message/delivery-status` part (per-recipient
//! `Action`, `Status`, `Diagnostic-Code`) and the original message or its
//! headers. The original's Message-ID is the provider id our send receipt
//! reported, so the receipt built here marks that message failed. Bounces
//! in older formats count when they quote the original's Message-ID and say
//! the delivery failed rather than was delayed.

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};
use switchboard_sdk::{DeliveryReceipt, DeliveryStatus};

use crate::address;

/// Longest error message kept from a bounce.
const MAX_ERROR: usize = 500;

/// The `failed` receipt `message` (a bounce) reports, if it names the
/// original message and the failure is final.
pub fn receipt(message: &Message<'_>) -> Option<DeliveryReceipt> {
    let original = original_message_id(message)?;
    let at_ms = message
        .date()
        .map(|d| d.to_timestamp())
        .filter(|s| *s > 0)
        .and_then(|s| u64::try_from(s).ok())
        .map(|s| s.saturating_mul(1000));
    let failure = match status_part(message) {
        Some(report) => {
            let report = DeliveryReport::parse(&report);
            let failed = report.failed_recipient()?;
            Failure {
                code: failed.field("Status").map(|s| status_code(s).to_owned()),
                message: failure_message(failed),
            }
        }
        None => legacy_failure(message)?,
    };
    Some(DeliveryReceipt {
        provider_id: original,
        status: DeliveryStatus::Failed,
        error_code: failure.code.filter(|c| !c.is_empty()),
        error_message: Some(cut(&failure.message)),
        at_ms,
    })
}

struct Failure {
    code: Option<String>,
    message: String,
}

/// The text of the `message/delivery-status` part.
fn status_part(message: &Message<'_>) -> Option<String> {
    message.parts.iter().find_map(|part| {
        let ct = part.content_type()?;
        let subtype = ct.subtype()?.to_ascii_lowercase();
        (ct.ctype().eq_ignore_ascii_case("message")
            && (subtype == "delivery-status" || subtype == "global-delivery-status"))
            .then(|| String::from_utf8_lossy(part.contents()).into_owned())
    })
}

/// The Message-ID of the message that bounced: from the returned message or
/// its headers, the report's envelope id, or what the bounce answers.
fn original_message_id(message: &Message<'_>) -> Option<String> {
    for part in &message.parts {
        if let PartType::Message(nested) = &part.body
            && let Some(id) = nested.message_id()
        {
            return Some(address::strip_id(id).to_owned());
        }
        let is_headers = part.content_type().is_some_and(|ct| {
            ct.subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("rfc822-headers"))
        });
        if is_headers {
            let mut headers = part.contents().to_vec();
            headers.extend_from_slice(b"\r\n\r\n");
            if let Some(id) = MessageParser::new()
                .with_message_ids()
                .parse_headers(&headers)
                .and_then(|h| h.message_id().map(str::to_owned))
            {
                return Some(address::strip_id(&id).to_owned());
            }
        }
    }
    if let Some(report) = status_part(message) {
        let report = DeliveryReport::parse(&report);
        if let Some(id) = report
            .per_message
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("Original-Envelope-Id"))
            .map(|(_, value)| address::strip_id(value))
            .filter(|id| id.contains('@'))
        {
            return Some(id.to_owned());
        }
    }
    let answered = match message.in_reply_to() {
        mail_parser::HeaderValue::Text(id) => Some(id.to_string()),
        mail_parser::HeaderValue::TextList(ids) => ids.first().map(ToString::to_string),
        _ => None,
    };
    let referenced = || match message.references() {
        mail_parser::HeaderValue::Text(id) => Some(id.to_string()),
        mail_parser::HeaderValue::TextList(ids) => ids.last().map(ToString::to_string),
        _ => None,
    };
    if let Some(id) = answered.or_else(referenced) {
        return Some(address::strip_id(&id).to_owned());
    }
    // Older bounces quote the original's headers in their text.
    message.text_bodies().find_map(|part| {
        part.text_contents()?.lines().find_map(|line| {
            let (name, value) = line.trim_start_matches(['>', ' ']).split_once(':')?;
            (name.trim().eq_ignore_ascii_case("Message-ID"))
                .then(|| address::strip_id(value).to_owned())
                .filter(|id| id.contains('@'))
        })
    })
}

/// A bounce without a status report: a failure when its words say so.
fn legacy_failure(message: &Message<'_>) -> Option<Failure> {
    let subject = message.subject().unwrap_or_default().to_ascii_lowercase();
    let text: String = message
        .text_bodies()
        .filter_map(|part| part.text_contents())
        .collect::<Vec<_>>()
        .join("\n");
    let lower = text.to_ascii_lowercase();
    let delayed = ["delay", "will retry", "warning", "not yet been delivered"]
        .iter()
        .any(|w| subject.contains(w) || lower.contains(w));
    let failed = [
        "fail",
        "undeliver",
        "returned",
        "rejected",
        "not delivered",
        "could not be delivered",
    ]
    .iter()
    .any(|w| subject.contains(w) || lower.contains(w));
    if delayed || !failed {
        return None;
    }
    let summary: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('>'))
        .take(4)
        .collect();
    Some(Failure {
        code: None,
        message: if summary.is_empty() {
            message.subject().unwrap_or("delivery failed").to_owned()
        } else {
            summary.join(" ")
        },
    })
}

/// `5.1.1` of `5.1.1 (bad destination mailbox address)`.
fn status_code(status: &str) -> &str {
    status.split_whitespace().next().unwrap_or_default()
}

/// What an agent reads: `bob@example.com: 550 5.1.1 User unknown`.
fn failure_message(recipient: &Fields) -> String {
    let who = recipient
        .field("Final-Recipient")
        .or_else(|| recipient.field("Original-Recipient"))
        .map(|r| r.split_once(';').map_or(r, |(_, a)| a).trim().to_owned());
    let why = recipient
        .field("Diagnostic-Code")
        .map(|d| {
            d.split_once(';')
                .map_or(d, |(_, text)| text)
                .trim()
                .to_owned()
        })
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| match recipient.field("Status") {
            Some(status) => format!("delivery failed (status {})", status_code(status)),
            None => "delivery failed".to_owned(),
        });
    match who {
        Some(who) if !who.is_empty() => format!("{who}: {why}"),
        _ => why,
    }
}

fn cut(text: &str) -> String {
    if text.len() <= MAX_ERROR {
        return text.to_owned();
    }
    let mut at = MAX_ERROR;
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    format!("{}…", &text[..at])
}

/// Header-like fields of one block of a report.
type Fields = Vec<(String, String)>;

trait FieldLookup {
    fn field(&self, name: &str) -> Option<&str>;
}

impl FieldLookup for Fields {
    fn field(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

/// A `message/delivery-status` body: per-message fields, then one block
/// per recipient.
#[derive(Debug, Default)]
struct DeliveryReport {
    per_message: Fields,
    recipients: Vec<Fields>,
}

impl DeliveryReport {
    fn parse(text: &str) -> DeliveryReport {
        let mut blocks: Vec<Fields> = Vec::new();
        let mut current: Fields = Vec::new();
        for line in text.lines() {
            if line.trim().is_empty() {
                if !current.is_empty() {
                    blocks.push(std::mem::take(&mut current));
                }
                continue;
            }
            if line.starts_with([' ', '\t']) {
                if let Some((_, value)) = current.last_mut() {
                    value.push(' ');
                    value.push_str(line.trim());
                }
                continue;
            }
            if let Some((name, value)) = line.split_once(':') {
                current.push((name.trim().to_owned(), value.trim().to_owned()));
            }
        }
        if !current.is_empty() {
            blocks.push(current);
        }
        let mut blocks = blocks.into_iter();
        DeliveryReport {
            per_message: blocks.next().unwrap_or_default(),
            recipients: blocks.collect(),
        }
    }

    /// The first recipient whose delivery failed for good: `Action: failed`,
    /// or a 5.x.x status without an action.
    fn failed_recipient(&self) -> Option<&Fields> {
        self.recipients.iter().find(|fields| {
            match fields.field("Action").map(str::to_ascii_lowercase) {
                Some(action) => action == "failed",
                None => fields.field("Status").is_some_and(|s| s.starts_with('5')),
            }
        })
    }
}
