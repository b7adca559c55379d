//! Write-back bookkeeping shared by the CRM plugins: what kind of activity a
//! timeline entry becomes, the text it carries, times in the formats CRMs
//! want, which CRM record the entry's contact is, and the ledger that keeps
//! a retried entry from being written twice.
//!
//! # At least once, written once
//!
//! The host delivers each entry at least once, with the same `entry.id` on
//! every retry. After the CRM accepted an activity the plugin notes the
//! entry id and the CRM's id of it in kv ([`Ledger`]); a retry that finds
//! it answers `ok` without a request. The ledger is bounded ([`Slots`]: the
//! 4096 most recent entries, give or take hash collisions), which covers
//! the retries of an outage but not an entry re-sent months later. What is left is the
//! gap between the CRM's answer and the kv write (the instance dies in
//! between): a plugin that can close it marks the attempt first
//! ([`Ledger::begin`]), stores the entry id in a field it can query, and on
//! a retry after an unconfirmed attempt asks the CRM before writing again
//! (Salesforce: the Task's `CallObject`).
//!
//! # Which record
//!
//! The entry carries the host's contact summary. Its record in this CRM is,
//! in order: the attribute `{plugin-id}.external-id` (the host sets it from
//! what an earlier lookup answered), the kv cache of records found by
//! earlier write-backs ([`cached_link`], bounded like the ledger), then a
//! lookup by each of the contact's identities, e-mail addresses first
//! ([`identities_to_try`]).

use switchboard_sdk::crm::{Direction, TimelineEntry};
use switchboard_sdk::{ContactSummary, Identity, PluginError};

use crate::store::{Slots, Store};

/// How many identities a write-back tries before it gives up on finding the
/// person.
const MAX_IDENTITIES: usize = 5;

/// What a timeline entry becomes in a CRM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityKind {
    /// A call: HubSpot call, Salesforce Task with `TaskSubtype=Call`, Zoho Call.
    Call,
    /// A message in or out: HubSpot communication, Salesforce Task, Zoho Note.
    Message,
    /// A note, a resolve's summary and disposition, a transfer, a survey…:
    /// a note (Salesforce: a Task).
    Note,
}

/// The activity `entry.kind` makes: `call`; `message`; everything else
/// (`note`, `summary`, `disposition`, `transfer`, `survey`, `status`…) a note.
pub fn kind_of(entry: &TimelineEntry) -> ActivityKind {
    match entry.kind.as_str() {
        "call" => ActivityKind::Call,
        "message" => ActivityKind::Message,
        _ => ActivityKind::Note,
    }
}

/// `inbound`, `outbound` or `internal`.
pub fn direction_word(direction: Direction) -> &'static str {
    match direction {
        Direction::Inbound => "inbound",
        Direction::Outbound => "outbound",
        Direction::Internal => "internal",
    }
}

/// The call's length in whole seconds, rounded.
pub fn duration_secs(entry: &TimelineEntry) -> Option<u64> {
    entry.duration_ms.map(|ms| (ms + 500) / 1000)
}

/// Whether a call never connected: missed, abandoned, unanswered, busy or
/// failed by its disposition, or lasting no time at all.
pub fn call_missed(entry: &TimelineEntry) -> bool {
    let said_so = entry.disposition.as_deref().is_some_and(|d| {
        let d = d.to_ascii_lowercase();
        [
            "missed",
            "abandon",
            "no-answer",
            "no_answer",
            "noanswer",
            "unanswered",
            "busy",
            "failed",
        ]
        .iter()
        .any(|word| d.contains(word))
    });
    said_so || entry.duration_ms == Some(0)
}

/// `SMS`, `WhatsApp`, `E-mail`… for a channel name, for subjects.
pub fn channel_label(channel: &str) -> String {
    match channel.to_ascii_lowercase().as_str() {
        "sms" => "SMS".into(),
        "whatsapp" => "WhatsApp".into(),
        "email" | "e-mail" => "E-mail".into(),
        "voice" | "phone" | "call" => "Phone".into(),
        "messenger" => "Messenger".into(),
        "instagram" => "Instagram".into(),
        "telegram" => "Telegram".into(),
        "webchat" | "chat" => "Web chat".into(),
        "" => "Switchboard".into(),
        other => {
            let mut label = other.to_owned();
            if let Some(first) = label.get_mut(..1) {
                first.make_ascii_uppercase();
            }
            label
        }
    }
}

/// A one-line title: `Inbound call`, `Outbound SMS message`, `Note`,
/// `Conversation resolved: refund-issued`.
pub fn subject(entry: &TimelineEntry) -> String {
    let direction = match entry.direction {
        Direction::Inbound => "Inbound",
        Direction::Outbound => "Outbound",
        Direction::Internal => "Internal",
    };
    match kind_of(entry) {
        ActivityKind::Call if call_missed(entry) => format!("{direction} call (not answered)"),
        ActivityKind::Call => format!("{direction} call"),
        ActivityKind::Message => format!("{direction} {} message", channel_label(&entry.channel)),
        ActivityKind::Note => match (entry.kind.as_str(), entry.disposition.as_deref()) {
            ("summary" | "disposition", Some(code)) => format!("Conversation resolved: {code}"),
            ("summary" | "disposition", None) => "Conversation resolved".into(),
            ("note", _) | ("", _) => "Note".into(),
            (kind, _) => {
                let mut title = kind.replace(['-', '_'], " ");
                if let Some(first) = title.get_mut(..1) {
                    first.make_ascii_uppercase();
                }
                title
            }
        },
    }
}

/// The text an activity carries: the entry's body, then its disposition,
/// author, channel and duration, one per line, and the conversation it
/// belongs to.
pub fn description(entry: &TimelineEntry) -> String {
    let mut lines = Vec::new();
    if !entry.body.trim().is_empty() {
        lines.push(entry.body.trim().to_owned());
        lines.push(String::new());
    }
    if let Some(code) = entry.disposition.as_deref().filter(|d| !d.is_empty()) {
        lines.push(format!("Disposition: {code}"));
    }
    if let Some(author) = entry.author.as_deref().filter(|a| !a.is_empty()) {
        lines.push(format!("Agent: {author}"));
    }
    if !entry.channel.is_empty() {
        lines.push(format!("Channel: {}", channel_label(&entry.channel)));
    }
    if let Some(secs) = duration_secs(entry) {
        lines.push(format!("Duration: {}:{:02}", secs / 60, secs % 60));
    }
    lines.push(format!(
        "Switchboard conversation {} (entry {})",
        entry.conversation_id, entry.id
    ));
    lines.join("\n")
}

/// Days since 1970-01-01 as (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `2026-12-07T12:37:29Z` (UTC, whole seconds).
pub fn iso_utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (year, month, day) = civil((secs / 86_400) as i64);
    let rest = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// `2026-12-07T12:37:29+00:00`: [`iso_utc`] with the offset Zoho requires.
pub fn iso_utc_offset(ms: u64) -> String {
    let mut text = iso_utc(ms);
    text.pop();
    text.push_str("+00:00");
    text
}

/// `2026-12-07` (UTC).
pub fn date_utc(ms: u64) -> String {
    let (year, month, day) = civil((ms / 1000 / 86_400) as i64);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The kv ledger of entries already written (bounded: [`Slots`]).
pub struct Ledger;

/// Written entries: entry id → the CRM's id of the activity.
const WRITTEN: Slots = Slots("activity");
/// Entries sent but not confirmed yet.
const PENDING: Slots = Slots("activity-pending");
/// Host contact id → its record in this CRM.
const LINKS: Slots = Slots("contact");

impl Ledger {
    /// The CRM's id of the activity `entry_id` became, if it was written.
    pub fn recorded(store: &impl Store, entry_id: &str) -> Option<String> {
        WRITTEN.get(store, entry_id)
    }

    /// Notes that `entry_id` was written as the CRM's `crm_id`. Never
    /// fails: the activity is in the CRM already, and failing now would
    /// make the host send it again.
    pub fn remember(store: &mut impl Store, entry_id: &str, crm_id: &str) {
        WRITTEN.set(store, entry_id, crm_id);
        PENDING.remove(store, entry_id);
    }

    /// Notes that `entry_id` is about to be sent, so a retry knows an
    /// earlier attempt may have reached the CRM (best effort).
    pub fn begin(store: &mut impl Store, entry_id: &str) {
        PENDING.set(store, entry_id, "sent");
    }

    /// Whether an earlier attempt at `entry_id` was sent and not confirmed.
    pub fn attempted(store: &impl Store, entry_id: &str) -> bool {
        PENDING.get(store, entry_id).is_some()
    }
}

/// The attribute the host sets to this plugin's record id for a contact.
pub fn external_id_attribute(plugin_id: &str) -> String {
    format!("{plugin_id}.external-id")
}

/// The record id the host knows for `contact` in the CRM of `plugin_id`.
pub fn known_external_id(contact: &ContactSummary, plugin_id: &str) -> Option<String> {
    let key = external_id_attribute(plugin_id);
    contact
        .attributes
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// The record an earlier write-back found for `contact_id`.
pub fn cached_link(store: &impl Store, contact_id: &str) -> Option<String> {
    LINKS.get(store, contact_id).filter(|v| !v.is_empty())
}

/// Remembers the record found for `contact_id` (best effort).
pub fn cache_link(store: &mut impl Store, contact_id: &str, record: &str) {
    LINKS.set(store, contact_id, record);
}

/// The contact's identities a write-back looks the person up by: e-mail
/// addresses first (exact in every CRM), then phone-like ones, at most five.
pub fn identities_to_try(contact: &ContactSummary) -> Vec<Identity> {
    let mut out: Vec<Identity> = Vec::new();
    let rank = |kind: &str| match kind {
        "email" => 0,
        "phone" | "whatsapp" | "sms" | "voice" => 1,
        _ => 2,
    };
    let mut all: Vec<&Identity> = contact
        .identities
        .iter()
        .filter(|i| rank(&i.kind) < 2 && !i.value.trim().is_empty())
        .collect();
    all.sort_by_key(|i| rank(&i.kind));
    for identity in all {
        if !out.contains(identity) {
            out.push(identity.clone());
        }
    }
    out.truncate(MAX_IDENTITIES);
    out
}

/// Whether an identity kind is a phone number (`phone`, `whatsapp`, `sms`,
/// `voice`).
pub fn is_phone_kind(kind: &str) -> bool {
    matches!(kind, "phone" | "whatsapp" | "sms" | "voice")
}

/// The error for a write-back whose person the CRM does not know and the
/// plugin may not create.
pub fn unknown_person(contact: &ContactSummary) -> PluginError {
    PluginError::Permanent(format!(
        "contact {} is not in the CRM (looked up by {} identities); create it in the CRM \
         first, or set `create_unknown_contacts` to `true`",
        contact.id,
        identities_to_try(contact).len()
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::MemoryStore;

    pub fn entry(kind: &str, direction: Direction) -> TimelineEntry {
        TimelineEntry {
            id: "ev-1".into(),
            conversation_id: "conv-9".into(),
            contact: ContactSummary {
                id: "c-1".into(),
                display_name: Some("Ada Lovelace".into()),
                identities: vec![
                    Identity::new("whatsapp", "+14155550100"),
                    Identity::new("email", "ada@example.com"),
                ],
                attributes: vec![("crm-hubspot.external-id".into(), "101".into())],
            },
            channel: "sms".into(),
            direction,
            kind: kind.into(),
            body: "Hello".into(),
            author: Some("Grace".into()),
            occurred_at_ms: 1_765_110_649_000,
            disposition: None,
            duration_ms: None,
        }
    }

    #[test]
    fn kinds_and_subjects() {
        let mut call = entry("call", Direction::Inbound);
        call.duration_ms = Some(125_400);
        assert_eq!(kind_of(&call), ActivityKind::Call);
        assert_eq!(subject(&call), "Inbound call");
        assert_eq!(duration_secs(&call), Some(125));
        call.duration_ms = Some(0);
        assert_eq!(subject(&call), "Inbound call (not answered)");
        call.duration_ms = None;
        call.disposition = Some("abandoned".into());
        assert!(call_missed(&call));

        let message = entry("message", Direction::Outbound);
        assert_eq!(kind_of(&message), ActivityKind::Message);
        assert_eq!(subject(&message), "Outbound SMS message");

        let mut summary = entry("summary", Direction::Internal);
        summary.disposition = Some("refund-issued".into());
        assert_eq!(kind_of(&summary), ActivityKind::Note);
        assert_eq!(subject(&summary), "Conversation resolved: refund-issued");
        assert_eq!(subject(&entry("note", Direction::Internal)), "Note");
        assert_eq!(subject(&entry("transfer", Direction::Internal)), "Transfer");
        assert_eq!(channel_label("line"), "Line");
    }

    #[test]
    fn descriptions_carry_the_context() {
        let mut call = entry("call", Direction::Inbound);
        call.duration_ms = Some(125_000);
        call.disposition = Some("resolved".into());
        assert_eq!(
            description(&call),
            "Hello\n\nDisposition: resolved\nAgent: Grace\nChannel: SMS\nDuration: 2:05\n\
             Switchboard conversation conv-9 (entry ev-1)"
        );
    }

    #[test]
    fn times_are_utc() {
        assert_eq!(iso_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_utc(1_765_110_649_999), "2025-12-07T12:30:49Z");
        assert_eq!(iso_utc(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(iso_utc_offset(0), "1970-01-01T00:00:00+00:00");
        assert_eq!(date_utc(1_765_110_649_000), "2025-12-07");
        assert_eq!(date_utc(4_107_542_399_000), "2100-02-28");
    }

    #[test]
    fn the_ledger_and_links_live_in_kv() {
        let mut store = MemoryStore::default();
        assert_eq!(Ledger::recorded(&store, "ev-1"), None);
        Ledger::begin(&mut store, "ev-1");
        assert!(Ledger::attempted(&store, "ev-1"));
        Ledger::remember(&mut store, "ev-1", "9001");
        assert_eq!(Ledger::recorded(&store, "ev-1").as_deref(), Some("9001"));
        assert!(!Ledger::attempted(&store, "ev-1"));
        assert_eq!(cached_link(&store, "c-1"), None);
        cache_link(&mut store, "c-1", "Contact:003");
        assert_eq!(cached_link(&store, "c-1").as_deref(), Some("Contact:003"));
    }

    #[test]
    fn which_record_and_which_identities() {
        let e = entry("note", Direction::Internal);
        assert_eq!(
            known_external_id(&e.contact, "crm-hubspot").as_deref(),
            Some("101")
        );
        assert_eq!(known_external_id(&e.contact, "crm-zoho"), None);
        assert_eq!(
            identities_to_try(&e.contact),
            vec![
                Identity::new("email", "ada@example.com"),
                Identity::new("whatsapp", "+14155550100"),
            ]
        );
        assert!(
            matches!(unknown_person(&e.contact), PluginError::Permanent(m) if m.contains("c-1"))
        );
    }
}
