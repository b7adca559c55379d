//! Inbound mail: one raw RFC 5322 message (from IMAP or a Mailgun route) into
//! a `message` event, its envelope and, for a bounce, the `failed` receipt of
//! the message it concerns.
//!
//! Parsing never fails: what cannot be read is left out and said in the
//! envelope's `problem`, so a broken message never stops a mailbox. Large
//! parts are not copied here: they are referenced (IMAP, fetched later by
//! `fetch-attachment`) or left out with a note (webhooks), so a batch stays
//! within what one call may hand back to the host.

pub mod classify;
pub mod dsn;
pub mod fields;

use mail_parser::decoders::html::html_to_text;
use mail_parser::{
    HeaderName, HeaderValue, Message, MessageParser, MessagePart, MimeHeaders, PartType,
};
use sha2::{Digest, Sha256};
use switchboard_sdk::mail::{Automatic, Envelope};
use switchboard_sdk::{Attachment, DeliveryReceipt, Identity, InboundMessage, MessageMetadata};

use crate::address;

/// The identity kind of e-mail addresses.
pub const EMAIL: &str = "email";
/// A part up to this size travels inside the event (brief's 256 KiB).
pub const INLINE_PART_MAX: usize = 256 * 1024;
/// Inline parts of one message together stay under this.
pub const MESSAGE_INLINE_MAX: usize = 384 * 1024;
/// Longest text body kept; longer ones are cut with a note.
pub const BODY_TEXT_MAX: usize = 128 * 1024;
/// Longest HTML body kept; a longer one is dropped (the text stays) with a note.
pub const HTML_MAX: usize = 256 * 1024;
/// A message without any header is shown as this much text.
const UNREADABLE_TEXT_MAX: usize = 16 * 1024;
/// Who an unreadable message is from.
const UNKNOWN_SENDER: &str = "unknown-sender@invalid";

/// What happens to a part too large to travel inline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LargeParts {
    /// Referenced as `{prefix}{imap part path}`, fetched later.
    ByReference { prefix: String },
    /// Left out, with a note in the envelope.
    Drop,
}

/// What parsing needs to know about the mailbox.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// Our own address: the recipient, and the base of plus-addressed tags.
    pub address: &'a str,
    pub large_parts: LargeParts,
}

/// One inbound e-mail, ready for the host.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub message: InboundMessage,
    pub envelope: Envelope,
    /// For a bounce: the failure of the message it concerns.
    pub receipt: Option<DeliveryReceipt>,
}

impl Parsed {
    /// Roughly what the event and its envelope cost in the call's output: every
    /// part that grows with the mail (text, files, subject, references, the `To`
    /// and `Cc` lists, the problem), plus a fixed allowance for the rest. A
    /// message with thousands of `Cc` addresses or a long thread counts for
    /// what it carries, so the poll's budget keeps a batch under the host's cap.
    pub fn output_size(&self) -> usize {
        let message = &self.message;
        let attachments: usize = message
            .attachments
            .iter()
            .map(|a| a.content.as_ref().map_or(0, Vec::len) + a.url.len() + 128)
            .sum();
        let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        let identities = |list: &[Identity]| -> usize {
            list.iter().map(|i| i.kind.len() + i.value.len() + 8).sum()
        };
        let metadata = &message.metadata;
        let headers = text(&metadata.subject)
            + text(&metadata.thread_id)
            + text(&metadata.in_reply_to)
            + metadata
                .references
                .iter()
                .map(|r| r.len() + 8)
                .sum::<usize>()
            + text(&message.sender_name)
            + 2 * message.provider_id.len()
            + identities(&self.envelope.to)
            + identities(&self.envelope.cc)
            + text(&self.envelope.problem);
        message.body.len() + text(&message.html_body) + attachments + headers + 2048
    }
}

/// The parser the connector uses: MIME, dates, addresses and ids parsed,
/// every other header kept raw for classification.
pub fn parser() -> MessageParser {
    MessageParser::new()
        .with_mime_headers()
        .with_date_headers()
        .with_address_headers()
        .with_message_ids()
        .header_text(HeaderName::Subject)
        .default_header_raw()
}

/// Parses `raw` into the event, envelope and receipt; `problems` are notes
/// the caller already has (an oversized message read in part).
pub fn parse(raw: &[u8], context: &Context<'_>, mut problems: Vec<String>) -> Parsed {
    let Some(message) = parser().parse(raw) else {
        return unreadable(raw, context, problems);
    };

    let provider_id = message
        .message_id()
        .map(str::trim)
        .filter(|id| valid_id(id))
        .map_or_else(|| hashed_id(raw), str::to_owned);

    let from = message.from().and_then(|a| a.first());
    let reply_to = message.reply_to().and_then(|a| {
        a.iter()
            .find(|addr| addr.address().is_some_and(address::is_valid))
    });
    let from_address = from
        .and_then(|a| a.address())
        .filter(|a| address::is_valid(a));
    let (sender_address, sender_name) = match (reply_to, from_address) {
        (Some(reply_to), _) => {
            let reply_address = reply_to.address().unwrap_or_default();
            let name = reply_to.name().or_else(|| {
                from.filter(|f| {
                    f.address()
                        .is_some_and(|a| a.eq_ignore_ascii_case(reply_address))
                })
                .and_then(|f| f.name())
            });
            (reply_address.to_owned(), name)
        }
        (None, Some(from_address)) => (from_address.to_owned(), from.and_then(|f| f.name())),
        (None, None) => {
            problems.push("the message names no sender address".into());
            (UNKNOWN_SENDER.to_owned(), None)
        }
    };

    let headers = raw_headers(&message);
    let automatic = classify::classify(&headers, from_address);
    let receipt = if automatic == Some(Automatic::Bounce) {
        dsn::receipt(&message)
    } else {
        None
    };

    let (mut body, html_body) = bodies(&message, &mut problems);
    let mut attachments = attachments(&message, context, &mut problems);
    // Broken MIME can leave the only text as an unnamed "attachment" (a part
    // whose boundary never closes): it is the message, not a file.
    if body.trim().is_empty()
        && html_body.is_none()
        && let Some(i) = attachments.iter().position(|a| {
            a.filename.is_none()
                && a.content.is_some()
                && a.content_type
                    .as_deref()
                    .is_none_or(|t| t.starts_with("text/plain"))
        })
    {
        let part = attachments.remove(i);
        body = String::from_utf8_lossy(part.content.as_deref().unwrap_or_default()).into_owned();
    }
    if message.parts.iter().any(|part| part.is_encoding_problem) {
        problems.push("some text is in an unknown character set and may show wrongly".into());
    }

    let to = recipients(message.to(), "To", &mut problems);
    let cc = recipients(message.cc(), "Cc", &mut problems);
    let thread_id = thread_tag(&message, &headers, context.address);

    let metadata = MessageMetadata {
        subject: message
            .subject()
            .map(|s| capped(s.trim(), MAX_SUBJECT))
            .filter(|s| !s.is_empty()),
        thread_id,
        in_reply_to: ids(message.in_reply_to()).into_iter().next(),
        references: references(ids(message.references())),
        ..MessageMetadata::default()
    };
    let sent_at_ms = message
        .date()
        .map(|date| date.to_timestamp())
        .filter(|secs| *secs > 0)
        .and_then(|secs| u64::try_from(secs).ok())
        .map(|secs| secs.saturating_mul(1000));

    let inbound = InboundMessage {
        provider_id: provider_id.clone(),
        sender: Identity::new(EMAIL, sender_address),
        recipient: Some(Identity::new(EMAIL, context.address)),
        sender_name: sender_name
            .map(|n| capped(n.trim(), MAX_NAME))
            .filter(|n| !n.is_empty()),
        body,
        html_body,
        attachments,
        sent_at_ms,
        metadata,
    };
    Parsed {
        message: inbound,
        envelope: Envelope {
            provider_id,
            to,
            cc,
            automatic,
            problem: join_problems(problems),
        },
        receipt,
    }
}

/// A message without a single header: its text, under a hashed id.
fn unreadable(raw: &[u8], context: &Context<'_>, mut problems: Vec<String>) -> Parsed {
    problems.push("the message has no readable headers".into());
    let provider_id = hashed_id(raw);
    let mut body = String::from_utf8_lossy(&raw[..raw.len().min(UNREADABLE_TEXT_MAX)]).into_owned();
    if raw.len() > UNREADABLE_TEXT_MAX {
        body.push('…');
    }
    let mut message = InboundMessage::new(
        provider_id.clone(),
        Identity::new(EMAIL, UNKNOWN_SENDER),
        body,
    );
    message.recipient = Some(Identity::new(EMAIL, context.address));
    let mut envelope = Envelope::new(provider_id);
    envelope.problem = join_problems(problems);
    Parsed {
        message,
        envelope,
        receipt: None,
    }
}

/// Problems as one note for agents.
pub fn join_problems(problems: Vec<String>) -> Option<String> {
    (!problems.is_empty()).then(|| problems.join("; "))
}

/// Whether a Message-ID can serve as the provider id.
fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 998 && !id.chars().any(char::is_whitespace)
}

/// A stable id for a message without a usable Message-ID: the same bytes
/// always give the same id, so polling it again never duplicates it.
pub fn hashed_id(raw: &[u8]) -> String {
    let digest = Sha256::digest(raw);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}@switchboard")
}

/// The message's own headers, unfolded, in order.
pub fn raw_headers(message: &Message<'_>) -> Vec<(String, String)> {
    message
        .headers_raw()
        .map(|(name, value)| (name.to_owned(), unfold(value)))
        .collect()
}

/// A raw header value on one line, trimmed.
pub fn unfold(value: &str) -> String {
    value
        .split(['\r', '\n'])
        .map(|piece| piece.trim_matches(|c| c == ' ' || c == '\t'))
        .filter(|piece| !piece.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Message ids in a parsed `In-Reply-To` or `References`.
fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    let list: Vec<String> = match value {
        HeaderValue::Text(id) => vec![id.to_string()],
        HeaderValue::TextList(ids) => ids.iter().map(ToString::to_string).collect(),
        _ => Vec::new(),
    };
    list.iter()
        .map(|id| address::strip_id(id).to_owned())
        .filter(|id| valid_id(id))
        .collect()
}

/// Most addresses kept of a `To` or `Cc` list: enough for any reply-all a person
/// would send, and a mail to tens of thousands of addresses still fits a poll's
/// output (the host refuses a call's output over 1 MiB, and a refused poll would
/// be read again, and refused, forever).
pub const MAX_RECIPIENTS: usize = 500;
/// Most `References` ids kept: the first (the thread's root) and the latest.
pub const MAX_REFERENCES: usize = 100;

/// The valid addresses of a `To` or `Cc` list, at most [`MAX_RECIPIENTS`]; a
/// longer list is cut, with a problem saying so.
fn recipients(
    value: Option<&mail_parser::Address<'_>>,
    header: &str,
    problems: &mut Vec<String>,
) -> Vec<Identity> {
    let mut list = identities(value);
    if list.len() > MAX_RECIPIENTS {
        problems.push(format!(
            "the {header} list has {} addresses: the first {MAX_RECIPIENTS} are kept",
            list.len()
        ));
        list.truncate(MAX_RECIPIENTS);
    }
    list
}

/// Longest subject kept, in bytes (a header line may be 998 characters; a
/// folded one can be far longer).
pub const MAX_SUBJECT: usize = 2000;
/// Longest display name kept, in bytes.
pub const MAX_NAME: usize = 256;

/// `text`, cut to at most `max` bytes on a character boundary.
fn capped(text: &str, max: usize) -> String {
    text[..floor_char_boundary(text, max)].to_owned()
}

/// `ids` with at most [`MAX_REFERENCES`]: the first and the latest.
fn references(mut ids: Vec<String>) -> Vec<String> {
    if ids.len() > MAX_REFERENCES {
        ids.drain(1..ids.len() - (MAX_REFERENCES - 1));
    }
    ids
}

fn identities(value: Option<&mail_parser::Address<'_>>) -> Vec<Identity> {
    value
        .map(|addresses| {
            addresses
                .iter()
                .filter_map(|addr| addr.address())
                .filter(|a| address::is_valid(a))
                .map(|a| Identity::new(EMAIL, a))
                .collect()
        })
        .unwrap_or_default()
}

/// The conversation tag of a plus-addressed copy of our address among the
/// recipients: To, Cc, then what the delivering server recorded.
fn thread_tag(message: &Message<'_>, headers: &[(String, String)], ours: &str) -> Option<String> {
    let listed = [message.to(), message.cc()]
        .into_iter()
        .flatten()
        .flat_map(|addresses| addresses.iter())
        .filter_map(|addr| addr.address())
        .find_map(|a| address::plus_tag(a, ours));
    listed.or_else(|| {
        headers
            .iter()
            .filter(|(name, _)| {
                [
                    "Delivered-To",
                    "X-Original-To",
                    "Envelope-To",
                    "X-Envelope-To",
                ]
                .iter()
                .any(|h| name.eq_ignore_ascii_case(h))
            })
            .flat_map(|(_, value)| value.split(','))
            .find_map(|a| address::plus_tag(a, ours))
    })
}

/// The text body (from the HTML when there is no text part) and the HTML
/// body, each within its limit.
fn bodies(message: &Message<'_>, problems: &mut Vec<String>) -> (String, Option<String>) {
    let html: Option<String> = message
        .html_body
        .iter()
        .filter_map(|id| message.parts.get(*id as usize))
        .find_map(|part| match &part.body {
            PartType::Html(html) => Some(html.to_string()),
            _ => None,
        });
    let mut texts: Vec<String> = Vec::new();
    for part in message
        .text_body
        .iter()
        .filter_map(|id| message.parts.get(*id as usize))
    {
        match &part.body {
            PartType::Text(text) => texts.push(text.to_string()),
            PartType::Html(html) => texts.push(html_to_text(html)),
            _ => {}
        }
    }
    let mut text = texts.join("\n");
    if text.trim().is_empty()
        && let Some(html) = &html
    {
        text = html_to_text(html);
    }
    let text_len = text.len();
    if text_len > BODY_TEXT_MAX {
        let cut = floor_char_boundary(&text, BODY_TEXT_MAX);
        text.truncate(cut);
        text.push('…');
        problems.push(format!(
            "the text is {}, cut to the first {}",
            human_size(text_len as u64),
            human_size(BODY_TEXT_MAX as u64)
        ));
    }
    let html = match html {
        Some(html) if html.len() > HTML_MAX => {
            problems.push(format!(
                "the HTML version ({}) is too large to keep; the text version is shown",
                human_size(html.len() as u64)
            ));
            None
        }
        other => other,
    };
    (text, html)
}

fn floor_char_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// `52 MB`, `340 KB`, `12 bytes`, in the binary units mail limits use.
pub fn human_size(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes >= MIB {
        format!("{} MB", (bytes + MIB / 2) / MIB)
    } else if bytes >= 1024 {
        format!("{} KB", (bytes + 512) / 1024)
    } else {
        format!("{bytes} bytes")
    }
}

/// Deeper parts get no IMAP path: no real mail nests this far, and building
/// paths for a hostile message nested thousands deep would cost memory that
/// grows with the square of the depth.
pub const MAX_PART_DEPTH: usize = 64;

/// Where each part sits in the MIME tree: its parent and its number among the
/// parent's children, so an IMAP part path (`1`, `2.1`…) is built only for
/// the parts that need one, in memory linear in the number of parts.
pub struct PartPaths {
    /// By part index: the parent's index (`None` for top-level parts) and the
    /// 1-based position among its siblings; `None` for unreached parts.
    place: Vec<Option<(Option<usize>, usize)>>,
}

impl PartPaths {
    /// The tree of `message`.
    pub fn of(message: &Message<'_>) -> PartPaths {
        let mut place = vec![None; message.parts.len()];
        match message.parts.first().map(|root| &root.body) {
            Some(PartType::Multipart(children)) => {
                // Explicit stack: nesting depth is the sender's choice.
                let mut stack: Vec<(u32, Option<usize>, usize)> = children
                    .iter()
                    .enumerate()
                    .rev()
                    .map(|(i, id)| (*id, None, i + 1))
                    .collect();
                let mut visited = 0usize;
                while let Some((id, parent, number)) = stack.pop() {
                    visited += 1;
                    if visited > message.parts.len() {
                        break;
                    }
                    let index = id as usize;
                    let Some(part) = message.parts.get(index) else {
                        continue;
                    };
                    if let PartType::Multipart(children) = &part.body {
                        for (i, child) in children.iter().enumerate().rev() {
                            stack.push((*child, Some(index), i + 1));
                        }
                    }
                    if let Some(slot) = place.get_mut(index) {
                        *slot = Some((parent, number));
                    }
                }
            }
            Some(_) => place[0] = Some((None, 1)),
            None => {}
        }
        PartPaths { place }
    }

    /// The IMAP path of part `index`, if it has one within [`MAX_PART_DEPTH`].
    pub fn path(&self, index: usize) -> Option<String> {
        let mut numbers = Vec::new();
        let mut at = Some(index);
        while let Some(i) = at {
            let (parent, number) = (*self.place.get(i)?)?;
            numbers.push(number.to_string());
            if numbers.len() > MAX_PART_DEPTH {
                return None;
            }
            at = parent;
        }
        numbers.reverse();
        Some(numbers.join("."))
    }
}

/// IMAP part paths (`1`, `2.1`…) of the message's parts, by part index.
pub fn part_paths(message: &Message<'_>) -> Vec<Option<String>> {
    let paths = PartPaths::of(message);
    (0..message.parts.len()).map(|i| paths.path(i)).collect()
}

/// The message's attachments: small ones with their bytes, large ones by
/// reference (or left out, with a note).
fn attachments(
    message: &Message<'_>,
    context: &Context<'_>,
    problems: &mut Vec<String>,
) -> Vec<Attachment> {
    let paths = PartPaths::of(message);
    let mut inline_total = 0usize;
    let mut list = Vec::new();
    let mut dropped: Vec<String> = Vec::new();
    for id in &message.attachments {
        let Some(part) = message.parts.get(*id as usize) else {
            continue;
        };
        if matches!(part.body, PartType::Multipart(_)) {
            continue;
        }
        let size = part.len();
        let mut attachment = Attachment::new(String::new());
        attachment.filename = filename(part);
        attachment.content_type = content_type(part);
        attachment.size = Some(size as u64);
        attachment.content_id = part
            .content_id()
            .map(|cid| address::strip_id(cid).to_owned())
            .filter(|cid| !cid.is_empty());
        let path = paths.path(*id as usize);
        // Where the part can be found again: the IMAP reference, else its
        // place in the message.
        let reference = match (&context.large_parts, &path) {
            (LargeParts::ByReference { prefix }, Some(path)) => Some(format!("{prefix}{path}")),
            _ => None,
        };
        if size <= INLINE_PART_MAX && inline_total + size <= MESSAGE_INLINE_MAX {
            inline_total += size;
            attachment.url =
                reference.unwrap_or_else(|| format!("part:{}", path.as_deref().unwrap_or("0")));
            attachment.content = Some(part.contents().to_vec());
            list.push(attachment);
            continue;
        }
        match reference {
            Some(reference) => {
                attachment.url = reference;
                list.push(attachment);
            }
            None => dropped.push(format!(
                "{} ({})",
                attachment.filename.as_deref().unwrap_or("unnamed"),
                human_size(size as u64)
            )),
        }
    }
    if !dropped.is_empty() {
        problems.push(format!(
            "attachments too large to copy here: {}",
            dropped.join(", ")
        ));
    }
    list
}

/// A file referenced by `url` and described by its part's own MIME
/// `header` (its name, with RFC 2231 and encoded words decoded, and its
/// `Content-ID`), for a message read from its structure rather than whole.
/// `subject` is an attached message's, raw: its file is named after it.
pub fn file_reference(
    url: String,
    header: &[u8],
    content_type: &str,
    size: u64,
    subject: Option<&[u8]>,
) -> Attachment {
    let mut attachment = Attachment::new(url);
    attachment.content_type = Some(content_type.to_owned());
    attachment.size = Some(size);
    let mut raw = header.to_vec();
    if !raw.ends_with(b"\n\n") && !raw.ends_with(b"\r\n\r\n") {
        raw.extend_from_slice(b"\r\n");
    }
    if let Some(message) = parser().parse(&raw)
        && let Some(part) = message.parts.first()
    {
        attachment.filename = part
            .attachment_name()
            .map(|name| name.trim().to_owned())
            .filter(|name| !name.is_empty());
        attachment.content_id = part
            .content_id()
            .map(|cid| address::strip_id(cid).to_owned())
            .filter(|cid| !cid.is_empty());
    }
    if attachment.filename.is_none() && content_type == "message/rfc822" {
        let subject = subject.and_then(|raw| {
            let mut header = b"Subject: ".to_vec();
            header.extend_from_slice(raw);
            header.extend_from_slice(b"\r\n\r\n");
            parser()
                .parse(&header)?
                .subject()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        });
        attachment.filename = Some(match subject {
            Some(subject) => format!("{subject}.eml"),
            None => "message.eml".to_owned(),
        });
    }
    attachment
}

fn filename(part: &MessagePart<'_>) -> Option<String> {
    part.attachment_name()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| {
            part.message().map(|nested| {
                nested
                    .subject()
                    .map(|s| format!("{}.eml", s.trim()))
                    .unwrap_or_else(|| "message.eml".to_owned())
            })
        })
}

/// The part's type as the host stores it; text parts were decoded to UTF-8.
fn content_type(part: &MessagePart<'_>) -> Option<String> {
    let mime = part.content_type().map(|ct| match ct.subtype() {
        Some(subtype) => format!("{}/{}", ct.ctype(), subtype),
        None => ct.ctype().to_owned(),
    });
    match &part.body {
        PartType::Text(_) | PartType::Html(_) => Some(format!(
            "{}; charset=utf-8",
            mime.unwrap_or_else(|| "text/plain".to_owned())
        )),
        PartType::Message(_) => Some(mime.unwrap_or_else(|| "message/rfc822".to_owned())),
        _ => mime.map(|m| m.to_ascii_lowercase()),
    }
}

#[cfg(test)]
mod tests;
