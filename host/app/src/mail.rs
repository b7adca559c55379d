//! E-mail on the host's side of a connector: threading both ways, the envelope
//! of inbound mail, and what an agent's e-mail reply carries.
//!
//! Connectors of the `switchboard:mail/email` world parse and send mail; the
//! host decides which conversation a message belongs to and what a reply
//! answers, because only the host knows the conversations.
//!
//! - **Inbound threading.** The connector reports `In-Reply-To` and
//!   `References`; the store joins the message to the conversation holding
//!   one of those messages (see `switchboard_store`'s threads). A reply that
//!   comes to the conversation's plus-addressed reply address
//!   (`support+TAG@example.com`) carries `TAG` as its thread id; the host
//!   accepts it only when the tag's signature is its own ([`ThreadTokens`]),
//!   so nobody can write into a conversation by guessing a tag.
//! - **Outbound threading.** A reply answers the customer's latest e-mail of
//!   the conversation: `In-Reply-To` its Message-ID, `References` its
//!   references plus it, subject `Re: …` (never `Re: Re: …`), and a signed
//!   reply-address tag. This is decided when the agent sends and kept in the
//!   outbox row, so a retry sends the same mail.
//! - **Who gets a reply.** The customer (Reply-To, else From, as the connector
//!   reported the sender) is `To`. Reply-all: the `Cc` of the e-mail answered
//!   is proposed in the desk's composer and the agent keeps, edits or removes
//!   it; the host sends to exactly the `cc` and `bcc` the reply names and
//!   never adds addresses of its own, so nothing goes to a copy the agent did
//!   not see. Our own mailbox addresses are never copied.
//! - **Automatic mail.** Auto-replies, bulk mail and bounces are recorded
//!   (metadata `automatic`) but never routed and never answered; a bounce's
//!   receipt marks the reply it concerns failed.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchboard_core::{Direction, EventKind, normalize_identity};
use switchboard_plugin_host::{Automatic, Envelope, bindings};
use switchboard_store::{Store, THREAD_CONVERSATION_KEY, TimelineEvent};

use crate::error::{AppError, AppResult};
use crate::signing;

/// The channel name e-mail connectors report.
pub const EMAIL_CHANNEL: &str = "email";

/// At most this many addresses in `cc` and in `bcc`.
const MAX_COPIES: usize = 20;

/// At most this many message ids in an outbound `References` header.
const MAX_REFERENCES: usize = 20;

/// Hex digits of the signature in a reply-address tag.
const TAG_MAC_HEX: usize = 12;

/// Signs and checks the conversation tags of plus-addressed reply addresses.
#[derive(Clone)]
pub struct ThreadTokens {
    key: [u8; 32],
}

impl ThreadTokens {
    /// Tokens under the store's own key for e-mail threads.
    pub fn new(store: &Store) -> ThreadTokens {
        ThreadTokens {
            key: store.derived_key("email-thread"),
        }
    }

    fn mac(&self, compact_id: &str) -> String {
        let mut hex = signing::hmac_hex(&self.key, &[compact_id.as_bytes()]);
        hex.truncate(TAG_MAC_HEX);
        hex
    }

    /// The tag for `conversation_id`: its UUID's 32 hex digits and a signature,
    /// lower-case letters and digits only, so it survives mail systems that
    /// change the case of addresses. `None` for an id that is not a UUID.
    pub fn tag(&self, conversation_id: &str) -> Option<String> {
        let compact: String = conversation_id.chars().filter(|c| *c != '-').collect();
        if compact.len() != 32 || !compact.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let compact = compact.to_ascii_lowercase();
        let mac = self.mac(&compact);
        Some(format!("{compact}{mac}"))
    }

    /// The conversation a tag names, when its signature is ours.
    pub fn conversation(&self, tag: &str) -> Option<String> {
        let tag = tag.trim().to_ascii_lowercase();
        if tag.len() != 32 + TAG_MAC_HEX || !tag.is_ascii() {
            return None;
        }
        let (compact, mac) = tag.split_at(32);
        signing::same(&self.mac(compact), mac).then(|| {
            format!(
                "{}-{}-{}-{}-{}",
                &compact[0..8],
                &compact[8..12],
                &compact[12..16],
                &compact[16..20],
                &compact[20..32]
            )
        })
    }
}

/// What an agent sets on an e-mail reply (`email` in the reply's body).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct EmailReply {
    /// The subject; `Re: ` and the answered e-mail's subject when not given.
    #[serde(default)]
    pub subject: Option<String>,
    /// Copies, as e-mail addresses.
    #[serde(default)]
    pub cc: Vec<String>,
    /// Blind copies, as e-mail addresses.
    #[serde(default)]
    pub bcc: Vec<String>,
    /// Quote the answered e-mail below the reply (default: yes).
    #[serde(default)]
    pub include_quote: Option<bool>,
}

/// What the outbox keeps of an e-mail reply, so that a retry sends the same
/// mail with the same headers.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct EmailPayload {
    /// The subject line.
    pub subject: String,
    /// The Message-ID answered.
    #[serde(default)]
    pub in_reply_to: Option<String>,
    /// The thread's Message-IDs, oldest first.
    #[serde(default)]
    pub references: Vec<String>,
    /// The signed reply-address tag of the conversation.
    #[serde(default)]
    pub thread_id: Option<String>,
    /// Copies.
    #[serde(default)]
    pub cc: Vec<String>,
    /// Blind copies.
    #[serde(default)]
    pub bcc: Vec<String>,
    /// The quoted e-mail, appended below the text when sent.
    #[serde(default)]
    pub quote: Option<String>,
}

impl EmailPayload {
    /// The headers a connector puts on the mail.
    pub fn metadata(&self) -> bindings::OutboundMetadata {
        bindings::OutboundMetadata {
            subject: Some(self.subject.clone()),
            thread_id: self.thread_id.clone(),
            in_reply_to: self.in_reply_to.clone(),
            references: self.references.clone(),
        }
    }

    /// The text as sent: the reply, then the quote.
    pub fn body(&self, reply: &str) -> String {
        match &self.quote {
            Some(quote) => format!("{reply}\n\n{quote}"),
            None => reply.to_owned(),
        }
    }

    /// The copies for the connector.
    pub fn copies(&self) -> switchboard_plugin_host::Copies {
        let identity = |value: &String| bindings::Identity {
            kind: "email".into(),
            value: value.clone(),
        };
        switchboard_plugin_host::Copies {
            cc: self.cc.iter().map(identity).collect(),
            bcc: self.bcc.iter().map(identity).collect(),
        }
    }
}

/// `Re: ` and `subject`, unless it already starts with a reply prefix
/// (`Re:`, `RE:`, `Aw:`, `Sv:`, `Antw:`…), so threads never read `Re: Re:`.
pub fn reply_subject(subject: Option<&str>) -> String {
    let subject = subject.map(str::trim).unwrap_or_default();
    if subject.is_empty() {
        return "Re: your message".to_owned();
    }
    let prefix = subject
        .split_once(':')
        .map(|(p, _)| p.trim().to_ascii_lowercase());
    let is_reply = prefix.is_some_and(|p| {
        matches!(
            p.as_str(),
            "re" | "aw" | "sv" | "antw" | "vs" | "ref" | "réf" | "rif" | "r"
        )
    });
    if is_reply {
        subject.to_owned()
    } else {
        format!("Re: {subject}")
    }
}

/// The answered e-mail as a quote: `On …, Name wrote:` and `> ` lines.
pub fn quote(text: &str, author: &str, sent_at_ms: i64) -> String {
    let when = chrono_like(sent_at_ms);
    let mut out = format!("On {when}, {author} wrote:\n");
    for line in text.lines() {
        if line.is_empty() {
            out.push_str(">\n");
        } else {
            out.push_str("> ");
            out.push_str(line);
            out.push('\n');
        }
    }
    out.truncate(out.trim_end().len());
    out
}

/// `2026-12-07 09:30 UTC` from milliseconds since the epoch.
fn chrono_like(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60
    )
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Normalized, de-duplicated copy addresses; refused when one is not an
/// e-mail address or there are too many.
fn copy_list(field: &str, addresses: &[String], skip: &[String]) -> AppResult<Vec<String>> {
    if addresses.len() > MAX_COPIES {
        return Err(AppError::bad_request(format!(
            "`{field}` takes at most {MAX_COPIES} addresses"
        )));
    }
    let mut out: Vec<String> = Vec::new();
    for raw in addresses {
        let identity = normalize_identity("email", raw, None).map_err(|e| {
            AppError::bad_request(format!("`{field}`: `{raw}` is not an e-mail address: {e}"))
        })?;
        let value = identity.value().to_owned();
        if !skip.contains(&value) && !out.contains(&value) {
            out.push(value);
        }
    }
    Ok(out)
}

/// The customer's latest e-mail in a conversation's timeline.
fn answered(timeline: &[TimelineEvent]) -> Option<&TimelineEvent> {
    timeline.iter().rev().find(|e| {
        e.direction == Direction::In
            && e.kind == EventKind::Message
            && e.channel.as_deref() == Some(EMAIL_CHANNEL)
    })
}

fn event_metadata(event: &TimelineEvent) -> Option<&Value> {
    event.data.get("metadata")
}

/// What the reply carries, decided when the agent sends it.
pub struct ReplyContext<'a> {
    /// The conversation's timeline, oldest first.
    pub timeline: &'a [TimelineEvent],
    /// The conversation.
    pub conversation_id: &'a str,
    /// The customer's address (the reply's `To`).
    pub to: &'a str,
    /// The customer's name for the quote line.
    pub customer_name: Option<&'a str>,
}

/// The headers, copies and quote of an agent's e-mail reply.
pub fn prepare(
    tokens: &ThreadTokens,
    context: &ReplyContext<'_>,
    reply: &EmailReply,
) -> AppResult<EmailPayload> {
    let last = answered(context.timeline);
    let metadata = last.and_then(event_metadata);
    let text = |key: &str| metadata.and_then(|m| m.get(key)).and_then(Value::as_str);
    let subject = match reply.subject.as_deref().map(str::trim) {
        Some(s) if !s.is_empty() => {
            crate::text::text_field("subject", s)?;
            s.to_owned()
        }
        _ => reply_subject(text("subject")),
    };
    let mut references: Vec<String> = metadata
        .and_then(|m| m.get("references"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    let in_reply_to = last.and_then(|e| e.provider_id.clone());
    if let Some(id) = &in_reply_to
        && !references.contains(id)
    {
        references.push(id.clone());
    }
    if references.len() > MAX_REFERENCES {
        // Keep the root and the newest, as mail clients do.
        let root = references[0].clone();
        let tail = references.split_off(references.len() - (MAX_REFERENCES - 1));
        references = std::iter::once(root).chain(tail).collect();
    }
    let skip = vec![context.to.to_ascii_lowercase()];
    let cc = copy_list("cc", &reply.cc, &skip)?;
    let bcc = copy_list("bcc", &reply.bcc, &skip)?;
    let quote = match (reply.include_quote.unwrap_or(true), last) {
        (true, Some(e)) if !e.body.trim().is_empty() => Some(quote(
            &e.body,
            context.customer_name.unwrap_or(context.to),
            e.sent_at.unwrap_or(e.occurred_at),
        )),
        _ => None,
    };
    Ok(EmailPayload {
        subject,
        in_reply_to,
        references,
        thread_id: tokens.tag(context.conversation_id),
        cc,
        bcc,
        quote,
    })
}

/// Puts what the connector's envelope says into a message's metadata: the
/// addresses it went to, whether a machine wrote it, and why it could be read
/// only in part.
pub fn merge_envelope(metadata: &mut Value, envelope: &Envelope) {
    if !metadata.is_object() {
        *metadata = json!({});
    }
    let Some(o) = metadata.as_object_mut() else {
        return;
    };
    let addresses = |list: &[bindings::Identity]| -> Value {
        Value::Array(
            list.iter()
                .filter_map(|i| normalize_identity("email", &i.value, None).ok())
                .map(|i| Value::String(i.value().to_owned()))
                .collect(),
        )
    };
    if !envelope.to.is_empty() {
        o.insert("to".into(), addresses(&envelope.to));
    }
    if !envelope.cc.is_empty() {
        o.insert("cc".into(), addresses(&envelope.cc));
    }
    if let Some(automatic) = envelope.automatic {
        let reason = match automatic {
            Automatic::AutoReply => "auto_reply",
            Automatic::Bulk => "bulk",
            Automatic::Bounce => "bounce",
        };
        o.insert("automatic".into(), json!(reason));
    }
    if let Some(problem) = &envelope.problem {
        o.insert("problem".into(), json!(problem));
    }
}

/// Replaces a reply-address tag in `thread_id` by the conversation it names,
/// when the signature is ours; a tag that does not verify is dropped, so the
/// message is threaded by its headers or the usual rules instead.
pub fn verify_thread(metadata: &mut Value, tokens: &ThreadTokens) {
    let Some(o) = metadata.as_object_mut() else {
        return;
    };
    o.remove(THREAD_CONVERSATION_KEY);
    let Some(tag) = o.get("thread_id").and_then(Value::as_str) else {
        return;
    };
    match tokens.conversation(tag) {
        Some(conversation) => {
            o.insert(THREAD_CONVERSATION_KEY.into(), json!(conversation));
        }
        None => {
            o.remove("thread_id");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> ThreadTokens {
        ThreadTokens { key: [7; 32] }
    }

    #[test]
    fn a_tag_names_its_conversation_and_nothing_else() {
        let t = tokens();
        let id = "0193a8c2-5f1e-7c3a-9b2d-4e5f6a7b8c9d";
        let tag = t.tag(id).expect("a uuid has a tag");
        assert!(
            tag.chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
        );
        assert_eq!(t.conversation(&tag).as_deref(), Some(id));
        assert_eq!(
            t.conversation(&tag.to_ascii_uppercase()).as_deref(),
            Some(id)
        );
        // Another conversation's id with this signature does not verify.
        let mut forged = tag.clone();
        forged.replace_range(0..1, if &tag[0..1] == "0" { "1" } else { "0" });
        assert_eq!(t.conversation(&forged), None);
        // Another key's tag does not verify.
        let other = ThreadTokens { key: [8; 32] };
        assert_eq!(other.conversation(&tag), None);
        assert_eq!(t.conversation("short"), None);
        assert_eq!(t.tag("not-a-uuid"), None);
    }

    #[test]
    fn reply_subjects_never_double_the_prefix() {
        assert_eq!(reply_subject(Some("Order 42")), "Re: Order 42");
        assert_eq!(reply_subject(Some("Re: Order 42")), "Re: Order 42");
        assert_eq!(reply_subject(Some("RE: Order 42")), "RE: Order 42");
        assert_eq!(reply_subject(Some("AW: Bestellung")), "AW: Bestellung");
        assert_eq!(reply_subject(Some("Ticket: broken")), "Re: Ticket: broken");
        assert_eq!(reply_subject(None), "Re: your message");
    }

    #[test]
    fn quotes_mark_every_line() {
        let q = quote("Hello\n\nMy order is late", "Ann", 1_796_639_400_000);
        assert_eq!(
            q,
            "On 2026-12-07 10:30 UTC, Ann wrote:\n> Hello\n>\n> My order is late"
        );
    }

    #[test]
    fn envelopes_go_into_metadata() {
        let mut m = json!({"subject": "Hi"});
        merge_envelope(
            &mut m,
            &Envelope {
                provider_id: "x@y".into(),
                to: vec![bindings::Identity {
                    kind: "email".into(),
                    value: "Support@Example.com".into(),
                }],
                cc: vec![],
                automatic: Some(Automatic::AutoReply),
                problem: Some("charset".into()),
            },
        );
        assert_eq!(m["to"], json!(["support@example.com"]));
        assert_eq!(m["automatic"], json!("auto_reply"));
        assert_eq!(m["problem"], json!("charset"));
        assert!(m.get("cc").is_none());
        assert!(switchboard_store::is_automatic(&m));
    }

    #[test]
    fn only_our_tags_thread() {
        let t = tokens();
        let id = "0193a8c2-5f1e-7c3a-9b2d-4e5f6a7b8c9d";
        let mut good = json!({"thread_id": t.tag(id).unwrap()});
        verify_thread(&mut good, &t);
        assert_eq!(good[THREAD_CONVERSATION_KEY], json!(id));
        let mut forged = json!({"thread_id": "0193a8c25f1e7c3a9b2d4e5f6a7b8c9d000000000000",
            THREAD_CONVERSATION_KEY: "smuggled"});
        verify_thread(&mut forged, &t);
        assert!(forged.get(THREAD_CONVERSATION_KEY).is_none());
        assert!(forged.get("thread_id").is_none());
    }

    #[test]
    fn copies_are_addresses_without_the_customer() {
        let skip = vec!["ann@example.com".to_owned()];
        let cc = copy_list(
            "cc",
            &[
                "Bob@Example.com".into(),
                "ann@example.com".into(),
                "bob@example.com".into(),
            ],
            &skip,
        )
        .unwrap();
        assert_eq!(cc, vec!["bob@example.com"]);
        assert!(copy_list("cc", &["not an address".into()], &skip).is_err());
        let many: Vec<String> = (0..21).map(|i| format!("p{i}@example.com")).collect();
        assert!(copy_list("cc", &many, &skip).is_err());
    }
}
