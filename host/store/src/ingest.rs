//! Ingest: turning what one webhook produced into durable facts.
//!
//! This module owns the meaning of an [`IngestBatch`] — resolve the sender to a contact,
//! find or open the conversation on any channel, record channel switches, append the
//! event idempotently on `(plugin_id, provider_id)`, apply receipts and consent — as a
//! function over one open transaction. It does not open or commit transactions: it hands
//! each batch to the group-commit writer (`writer.rs`, which knows batches only as
//! something to apply), so a batch's effects become visible, and are reported, only
//! after the commit that contains them.

use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use switchboard_core::{
    ConsentAction, ConsentState, ConversationStatus, DeliveryStatus, Direction, EventKind, Identity,
};

use crate::Store;
use crate::attachments::{InboundAttachment, record_inbound};
use crate::contacts::{
    create_contact, insert_identity, resolve_or_create, set_consent, twin_identity,
};
use crate::conversations::{
    ConversationRow, for_inbound, latest_active, open_new, set_status_in, touch_channel,
};
use crate::db::{RowExt, storable};
use crate::error::{Result, StoreError};
use crate::reports::facts::{Known, record_event, record_event_known};
use crate::threads::threaded_conversation;
use crate::timeline::{TimelineEvent, advance_delivery, event_by_provider, is_automatic};
use crate::writer::Batch;

/// Everything one webhook call produced, stored atomically.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestBatch {
    /// The connector plugin that parsed the webhook, e.g. `sms-twilio`.
    pub plugin_id: String,
    /// Its channel kind, e.g. `sms`.
    pub channel: String,
    /// When the host received the webhook, ms since the epoch.
    pub now_ms: i64,
    /// How long after resolution a new message reopens a conversation, in ms.
    pub reopen_window_ms: i64,
    /// The events, applied in order.
    pub events: Vec<IngestEvent>,
}

/// One normalized event from a connector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum IngestEvent {
    /// A customer wrote to us.
    InboundMessage(InboundMessage),
    /// A delivery status callback for one of our messages.
    Receipt(Receipt),
    /// An opt-out / opt-in / help keyword.
    Consent(ConsentEvent),
    /// A phone call started, either way: it joins the caller's conversation like a
    /// message does (a channel switch if they were on another channel).
    Call(CallStarted),
}

/// A call that started, inbound or outbound.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallStarted {
    /// The call's id (idempotency key, unique per plugin).
    pub provider_id: String,
    /// The other party, normally a `phone:` identity.
    pub party: Identity,
    /// Whether the customer called us (`in`) or we called them (`out`).
    pub direction: Direction,
    /// Text shown on the timeline, e.g. `Call from +15551234567`.
    pub body: String,
    /// Structured detail (the call record), a JSON object.
    pub data: serde_json::Value,
}

/// A message from a customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    /// The provider's message id (idempotency key, unique per plugin).
    pub provider_id: String,
    /// Who wrote, already normalized.
    pub sender: Identity,
    /// The sender's name if the channel tells one (profile name, e-mail display name).
    pub sender_name: Option<String>,
    /// Text.
    pub body: String,
    /// Attached files, recorded `pending` until the host copied them.
    #[serde(default)]
    pub attachments: Vec<InboundAttachment>,
    /// When the provider says it was sent, ms since the epoch.
    pub sent_at_ms: Option<i64>,
    /// What the message carries besides its text (subject, reply references,
    /// interactive choice, location…), a JSON object kept on the event under
    /// `metadata`; `null` or `{}` for none.
    #[serde(default)]
    pub metadata: serde_json::Value,
}

/// A delivery status callback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    /// The provider's id of our outbound message.
    pub provider_id: String,
    /// The status it reports.
    pub status: DeliveryStatus,
    /// Provider error code, for failures.
    pub error_code: Option<String>,
    /// Provider error text, for failures.
    pub error_message: Option<String>,
}

/// A consent keyword received from a customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsentEvent {
    /// The provider's id of the message that carried the keyword.
    pub provider_id: String,
    /// Whose consent.
    pub identity: Identity,
    /// Opt out, opt in, or help.
    pub action: ConsentAction,
    /// The keyword as received, e.g. `STOP`.
    pub keyword: Option<String>,
}

/// What happened to one event of a batch, in the batch's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum IngestOutcome {
    /// The message was stored.
    Created {
        /// The sender's contact.
        contact_id: String,
        /// The conversation it joined.
        conversation_id: String,
        /// The new timeline event.
        event_id: String,
        /// The contact was created by this message.
        new_contact: bool,
        /// The conversation was opened by this message.
        new_conversation: bool,
    },
    /// Already stored under the same plugin and provider id; nothing changed.
    Duplicate {
        /// The event stored earlier.
        event_id: String,
    },
    /// The receipt matched one of our messages.
    ReceiptApplied {
        /// The outbound event.
        event_id: String,
        /// Its delivery status after the receipt (unchanged if the receipt was stale).
        status: DeliveryStatus,
        /// Whether the receipt moved the status.
        changed: bool,
    },
    /// No message with that provider id yet; the receipt is kept and applied when the
    /// send is recorded (providers may call back before the send returns).
    ReceiptUnknown,
    /// The consent event was recorded.
    ConsentRecorded {
        /// The contact whose identity it is.
        contact_id: String,
        /// The `consent` timeline event.
        event_id: String,
        /// The resulting consent state (`None` for help requests).
        state: Option<ConsentState>,
    },
}

fn validate(batch: &IngestBatch) -> Result<()> {
    if batch.plugin_id.trim().is_empty() || batch.channel.trim().is_empty() {
        return Err(StoreError::Invalid(
            "ingest batch needs a plugin id and a channel".into(),
        ));
    }
    for event in &batch.events {
        let provider_id = match event {
            IngestEvent::InboundMessage(m) => &m.provider_id,
            IngestEvent::Receipt(r) => &r.provider_id,
            IngestEvent::Consent(c) => &c.provider_id,
            IngestEvent::Call(c) => &c.provider_id,
        };
        if provider_id.trim().is_empty() {
            return Err(StoreError::Invalid(format!(
                "event from plugin {} has an empty provider id",
                batch.plugin_id
            )));
        }
    }
    Ok(())
}

impl IngestBatch {
    /// Applies the events in order. With `surveys`, stops before the first inbound
    /// message (not a machine's mail, not a duplicate) from an address that a survey
    /// question sent over this plugin as text still waits on, and says where: what
    /// it and the events after it are is the caller's to decide.
    async fn apply_events(&self, conn: &mut AnyConnection, surveys: bool) -> Result<Ingested> {
        validate(self)?;
        let mut outcomes = Vec::with_capacity(self.events.len());
        for (i, event) in self.events.iter().enumerate() {
            let outcome = match event {
                IngestEvent::InboundMessage(m) => {
                    let surveys = surveys && !is_automatic(&m.metadata);
                    match inbound(conn, self, &Arrival::Message(m), surveys).await? {
                        Some(outcome) => outcome,
                        None => {
                            return Ok(Ingested {
                                outcomes,
                                held: self.events[i..].to_vec(),
                            });
                        }
                    }
                }
                IngestEvent::Call(c) => inbound(conn, self, &Arrival::Call(c), false)
                    .await?
                    .ok_or_else(|| StoreError::Invalid("a call held for a survey".into()))?,
                IngestEvent::Receipt(r) => receipt(conn, &self.plugin_id, r, self.now_ms).await?,
                IngestEvent::Consent(c) => consent(conn, self, c).await?,
            };
            outcomes.push(outcome);
        }
        Ok(Ingested {
            outcomes,
            held: Vec::new(),
        })
    }
}

/// What [`Store::ingest_until_survey_answer`] stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Ingested {
    /// One outcome per event applied, in order: the batch's first events.
    pub outcomes: Vec<IngestOutcome>,
    /// The events not applied, in order, starting with an inbound message from an
    /// address a survey question waits on; empty when every event was applied.
    pub held: Vec<IngestEvent>,
}

/// An [`IngestBatch`] whose inbound messages may be survey answers: see
/// [`Store::ingest_until_survey_answer`].
struct SurveyAware(IngestBatch);

impl Batch for SurveyAware {
    type Outcome = Ingested;

    async fn apply(&self, conn: &mut AnyConnection) -> Result<Ingested> {
        self.0.apply_events(conn, true).await
    }

    fn lane_key(&self) -> u64 {
        self.0.lane_key()
    }
}

impl Batch for IngestBatch {
    type Outcome = Vec<IngestOutcome>;

    /// Applies the batch inside the writer's transaction (or a savepoint of it).
    async fn apply(&self, conn: &mut AnyConnection) -> Result<Vec<IngestOutcome>> {
        Ok(self.apply_events(conn, false).await?.outcomes)
    }

    /// The address of the batch's first event (a receipt's provider id): one sender's
    /// batches keep their order. The kind is left out, so that a `whatsapp:` and a
    /// `phone:` identity with the same number, one contact, share a lane too.
    fn lane_key(&self) -> u64 {
        let mut hasher = std::hash::DefaultHasher::new();
        match self.events.first() {
            Some(IngestEvent::InboundMessage(m)) => m.sender.value().hash(&mut hasher),
            Some(IngestEvent::Call(c)) => c.party.value().hash(&mut hasher),
            Some(IngestEvent::Consent(c)) => c.identity.value().hash(&mut hasher),
            Some(IngestEvent::Receipt(r)) => r.provider_id.hash(&mut hasher),
            None => {}
        }
        hasher.finish()
    }
}

/// What joins a conversation through [`inbound`].
enum Arrival<'a> {
    Message(&'a InboundMessage),
    Call(&'a CallStarted),
}

impl Arrival<'_> {
    fn provider_id(&self) -> &str {
        match self {
            Arrival::Message(m) => &m.provider_id,
            Arrival::Call(c) => &c.provider_id,
        }
    }

    fn sender(&self) -> &Identity {
        match self {
            Arrival::Message(m) => &m.sender,
            Arrival::Call(c) => &c.party,
        }
    }
}

/// What one query tells about an arrival before anything is written: whether it is a
/// duplicate, the sender's contact, the conversation it would continue or reopen, and
/// what the report facts need to know about them.
struct Sighting {
    /// The event already stored under the same plugin and provider id.
    duplicate: Option<String>,
    /// The contact of the sender's identity or of its twin.
    contact: Option<KnownContact>,
    /// The contact's latest active conversation, else its latest resolved one.
    candidate: Option<ConversationRow>,
    /// The contact has a resolved conversation whose next contact is unset.
    unsettled: bool,
    /// The candidate has a journey arrival without a channel.
    unchanneled: bool,
    /// A survey question sent to this address over this plugin as text waits for its
    /// answer (asked only when the caller takes survey answers).
    awaits_survey: bool,
}

struct KnownContact {
    id: String,
    /// Found through the twin identity (`whatsapp:` for `phone:`), not the sender's own.
    by_twin: bool,
    unnamed: bool,
    updated_at: i64,
}

/// The one read of [`inbound`]: the idempotency check, identity → contact (the
/// sender's own identity first, then its twin), the contact's conversation as
/// `for_inbound` would pick it, and two facts' flags; `$survey` adds columns first.
macro_rules! sighting_sql {
    ($survey:literal) => {
        concat!(
            "SELECT ",
            $survey,
            "\
     (SELECT e.id FROM timeline_event e WHERE e.plugin_id = $1 AND e.provider_id = $2) AS duplicate_id, \
     i.contact_id AS found_contact_id, i.kind AS found_kind, \
     CAST(CASE WHEN k.display_name IS NULL THEN 1 ELSE 0 END AS BIGINT) AS unnamed, \
     k.updated_at AS contact_updated_at, \
     CAST(CASE WHEN EXISTS (SELECT 1 FROM conversation_fact f WHERE f.contact_id = i.contact_id \
         AND f.first_resolved_at IS NOT NULL AND f.next_contact_at IS NULL) THEN 1 ELSE 0 END AS BIGINT) AS unsettled, \
     CAST(CASE WHEN EXISTS (SELECT 1 FROM journey_arrival a WHERE a.conversation_id = cv.id \
         AND a.channel IS NULL) THEN 1 ELSE 0 END AS BIGINT) AS unchanneled, \
     cv.id, cv.display_id, cv.contact_id, cv.status, cv.priority, cv.last_channel, \
     cv.last_plugin_id, cv.opened_at, cv.updated_at, cv.resolved_at \
     FROM (SELECT 1 AS one) o \
     LEFT JOIN identity i ON i.id = (SELECT x.id FROM identity x \
         WHERE (x.kind = $3 AND x.value = $4) OR (x.kind = $5 AND x.value = $4) \
         ORDER BY CASE WHEN x.kind = $3 THEN 0 ELSE 1 END LIMIT 1) \
     LEFT JOIN contact k ON k.id = i.contact_id \
     LEFT JOIN conversation cv ON cv.id = COALESCE( \
         (SELECT a.id FROM conversation a WHERE a.contact_id = i.contact_id AND a.status <> 'resolved' \
          ORDER BY a.updated_at DESC, a.id DESC LIMIT 1), \
         (SELECT r.id FROM conversation r WHERE r.contact_id = i.contact_id AND r.status = 'resolved' \
          ORDER BY COALESCE(r.resolved_at, r.updated_at) DESC, r.id DESC LIMIT 1))"
        )
    };
}
/// The one read of [`inbound`] (see `sighting_sql!`).
const SIGHTING_SQL: &str = sighting_sql!("");
/// [`SIGHTING_SQL`] that also asks whether a survey question waits on the sender
/// (`$6`: now).
const SIGHTING_SURVEY_SQL: &str = sighting_sql!(
    "CAST(CASE WHEN EXISTS (SELECT 1 FROM survey s WHERE s.identity_kind = $3 \
     AND s.identity_value = $4 AND s.plugin_id = $1 AND s.status = 'sent' AND s.mode = 'text' \
     AND s.expires_at > $6) THEN 1 ELSE 0 END AS BIGINT) AS awaits_survey, "
);

/// Reads what [`inbound`] needs to know before writing; with `surveys_at` (now,
/// ms), also whether a survey question waits on the sender.
async fn sighting(
    conn: &mut AnyConnection,
    plugin_id: &str,
    provider_id: &str,
    sender: &Identity,
    surveys_at: Option<i64>,
) -> Result<Sighting> {
    let twin = twin_identity(sender);
    let twin_kind = twin.as_ref().map_or(sender.kind(), Identity::kind);
    let query = sqlx::query(match surveys_at {
        Some(_) => SIGHTING_SURVEY_SQL,
        None => SIGHTING_SQL,
    })
    .bind(plugin_id.to_owned())
    .bind(provider_id.to_owned())
    .bind(sender.kind().to_owned())
    .bind(sender.value().to_owned())
    .bind(twin_kind.to_owned());
    let row = match surveys_at {
        Some(now) => query.bind(now),
        None => query,
    }
    .fetch_one(&mut *conn)
    .await?;
    let contact = match row.opt_text("found_contact_id")? {
        Some(id) => Some(KnownContact {
            id,
            by_twin: row.text("found_kind")? != sender.kind(),
            unnamed: row.flag("unnamed")?,
            updated_at: row.int("contact_updated_at")?,
        }),
        None => None,
    };
    let candidate = match row.opt_text("id")? {
        Some(_) => Some(ConversationRow::from_row(&row)?),
        None => None,
    };
    Ok(Sighting {
        duplicate: row.opt_text("duplicate_id")?,
        contact,
        candidate,
        unsettled: row.flag("unsettled")?,
        unchanneled: row.flag("unchanneled")?,
        awaits_survey: surveys_at.is_some() && row.flag("awaits_survey")?,
    })
}

/// Stores an arrival; `None`, with nothing written, when `surveys` and a survey
/// question waits on the sender (see [`IngestBatch::apply_events`]).
async fn inbound(
    conn: &mut AnyConnection,
    batch: &IngestBatch,
    arrival: &Arrival<'_>,
    surveys: bool,
) -> Result<Option<IngestOutcome>> {
    let provider_id = storable(arrival.provider_id());
    let surveys_at = surveys.then_some(batch.now_ms);
    let mut seen = sighting(
        conn,
        &batch.plugin_id,
        &provider_id,
        arrival.sender(),
        surveys_at,
    )
    .await?;
    if let Some(event_id) = seen.duplicate {
        return Ok(Some(IngestOutcome::Duplicate { event_id }));
    }
    if seen.awaits_survey {
        return Ok(None);
    }
    // On PostgreSQL another writer lane may hold a message for the same contact that
    // came from another of its addresses. Opening or reopening a conversation waits
    // for it (a lock on the contact until commit) and then looks again, so that the
    // two do not both open one; continuing an active conversation needs no lock (the
    // row updates wait for each other).
    if let Some(found) = &seen.contact
        && seen
            .candidate
            .as_ref()
            .is_none_or(|c| c.status == ConversationStatus::Resolved)
        && conn.backend_name() == "PostgreSQL"
    {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(format!("contact:{}", found.id))
            .execute(&mut *conn)
            .await?;
        seen = sighting(conn, &batch.plugin_id, &provider_id, arrival.sender(), None).await?;
        if let Some(event_id) = seen.duplicate {
            return Ok(Some(IngestOutcome::Duplicate { event_id }));
        }
    }
    let now = batch.now_ms;
    let sender_name = match arrival {
        Arrival::Message(m) => m.sender_name.as_deref().map(storable),
        Arrival::Call(_) => None,
    };
    let sender_name = sender_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    let (contact_id, new_contact) = match &seen.contact {
        Some(found) => {
            if found.by_twin {
                insert_identity(conn, &found.id, arrival.sender(), now).await?;
            }
            (found.id.clone(), false)
        }
        None => (
            create_contact(conn, arrival.sender(), sender_name.as_deref(), now).await?,
            true,
        ),
    };
    let candidate = seen.candidate.as_ref().map(|c| (c.id.clone(), c.status));
    let metadata = match arrival {
        Arrival::Message(m) => Some(&m.metadata),
        Arrival::Call(_) => None,
    };
    let automatic = metadata.is_some_and(is_automatic);
    let threaded = match metadata {
        Some(metadata) => threaded_conversation(conn, &batch.channel, metadata).await?,
        None => None,
    };
    let (mut conv, new_conversation) = match threaded {
        // A reply joins the conversation it answers, reopening it however long
        // ago it was resolved; a machine's mail never changes its status.
        Some(mut conv) => {
            let next = conv.status.after_inbound_message();
            if next != conv.status && !automatic {
                let body = if conv.status == ConversationStatus::Resolved {
                    "reopened".to_owned()
                } else {
                    format!("{} → {}", conv.status, next)
                };
                set_status_in(conn, &mut conv, next, now, &body).await?;
            }
            (conv, false)
        }
        None if automatic => {
            automatic_conversation(conn, batch, &contact_id, seen.candidate).await?
        }
        None => {
            for_inbound(
                conn,
                seen.candidate,
                &contact_id,
                &batch.channel,
                &batch.plugin_id,
                now,
                batch.reopen_window_ms,
            )
            .await?
        }
    };
    // What the sighting said about the facts still holds if nothing was recorded on
    // the conversation since: same conversation, same status.
    let untouched = !new_conversation && candidate == Some((conv.id.clone(), conv.status));
    let known = Known {
        no_unsettled: !seen.unsettled,
        arrivals_channeled: untouched && !seen.unchanneled,
        no_fact: new_conversation && !automatic,
    };
    touch_channel(conn, &mut conv, &batch.channel, &batch.plugin_id, now).await?;
    let (direction, kind, body) = match arrival {
        Arrival::Message(m) => (Direction::In, EventKind::Message, &m.body),
        Arrival::Call(c) => (c.direction, EventKind::Call, &c.body),
    };
    let mut event = TimelineEvent::new(
        &contact_id,
        Some(&conv.id),
        direction,
        kind,
        storable(body),
        now,
    )
    .on_channel(&batch.channel, &batch.plugin_id);
    let mut files: &[InboundAttachment] = &[];
    match arrival {
        Arrival::Message(m) => {
            files = &m.attachments;
            event.sent_at = m.sent_at_ms;
            if m.metadata.as_object().is_some_and(|o| !o.is_empty()) {
                event.data = serde_json::json!({ "metadata": m.metadata });
            }
        }
        Arrival::Call(c) => event.data = c.data.clone(),
    }
    event.identity = Some(arrival.sender().clone());
    event.provider_id = Some(provider_id);
    // The files' rows need the event; the event's JSON needs their ids.
    record_event_known(conn, &event, known).await?;
    if !files.is_empty() {
        let shown = record_inbound(conn, &event.id, &batch.plugin_id, files, now).await?;
        let text = serde_json::to_string(&shown).map_err(|e| StoreError::Invalid(e.to_string()))?;
        sqlx::query("UPDATE timeline_event SET attachments = $1 WHERE id = $2")
            .bind(text)
            .bind(event.id.clone())
            .execute(&mut *conn)
            .await?;
    }
    // A new contact was written with this instant and name; an existing one gets the
    // name it lacked (which stamps it) or else a later `updated_at`, and nothing when
    // neither would change it.
    if let Some(found) = &seen.contact {
        match sender_name {
            Some(name) if found.unnamed => {
                sqlx::query(
                    "UPDATE contact SET display_name = $1, updated_at = $2 WHERE id = $3 AND display_name IS NULL",
                )
                .bind(name)
                .bind(now)
                .bind(contact_id.clone())
                .execute(&mut *conn)
                .await?;
            }
            _ if found.updated_at < now => {
                sqlx::query("UPDATE contact SET updated_at = $1 WHERE id = $2 AND updated_at < $1")
                    .bind(now)
                    .bind(contact_id.clone())
                    .execute(&mut *conn)
                    .await?;
            }
            _ => {}
        }
    }
    Ok(Some(IngestOutcome::Created {
        contact_id,
        conversation_id: conv.id,
        event_id: event.id,
        new_contact,
        new_conversation,
    }))
}

/// Where a machine's mail that answers nothing goes: the contact's active
/// conversation, unchanged, or else a new conversation opened already resolved,
/// so it is kept and findable but is nobody's work.
///
/// `candidate` is the contact's latest active conversation, else its latest resolved
/// one, as the sighting read it.
async fn automatic_conversation(
    conn: &mut AnyConnection,
    batch: &IngestBatch,
    contact_id: &str,
    candidate: Option<ConversationRow>,
) -> Result<(ConversationRow, bool)> {
    if let Some(active) = candidate.filter(|c| c.status != ConversationStatus::Resolved) {
        return Ok((active, false));
    }
    let mut conv = open_new(
        conn,
        contact_id,
        &batch.channel,
        &batch.plugin_id,
        batch.now_ms,
    )
    .await?;
    set_status_in(
        conn,
        &mut conv,
        ConversationStatus::Resolved,
        batch.now_ms,
        "resolved: automatic mail",
    )
    .await?;
    Ok((conv, true))
}

fn receipt_error(code: Option<&str>, message: Option<&str>) -> Option<String> {
    match (code, message) {
        (Some(c), Some(m)) => Some(format!("{c}: {m}")),
        (Some(x), None) | (None, Some(x)) => Some(x.to_owned()),
        (None, None) => None,
    }
}

/// Applies a delivery status to the outbound event recorded under `provider_id` and
/// mirrors the result on its outbox row; parks it if no such event exists yet.
pub(crate) async fn receipt(
    conn: &mut AnyConnection,
    plugin_id: &str,
    r: &Receipt,
    now_ms: i64,
) -> Result<IngestOutcome> {
    let error =
        receipt_error(r.error_code.as_deref(), r.error_message.as_deref()).map(|e| storable(&e));
    let provider_id = storable(&r.provider_id);
    let event = event_by_provider(conn, plugin_id, &provider_id)
        .await?
        .filter(|e| e.direction == Direction::Out);
    let Some(event) = event else {
        park_receipt(
            conn,
            plugin_id,
            &provider_id,
            r.status,
            error.as_deref(),
            now_ms,
        )
        .await?;
        return Ok(IngestOutcome::ReceiptUnknown);
    };
    let (status, changed) = advance_delivery(conn, &event.id, r.status, error.as_deref()).await?;
    if changed {
        sqlx::query("UPDATE outbox SET delivery_status = $1, updated_at = $2 WHERE event_id = $3")
            .bind(status.as_str())
            .bind(now_ms)
            .bind(event.id.clone())
            .execute(&mut *conn)
            .await?;
    }
    Ok(IngestOutcome::ReceiptApplied {
        event_id: event.id,
        status,
        changed,
    })
}

async fn park_receipt(
    conn: &mut AnyConnection,
    plugin_id: &str,
    provider_id: &str,
    status: DeliveryStatus,
    error: Option<&str>,
    now_ms: i64,
) -> Result<()> {
    let current: Option<DeliveryStatus> =
        sqlx::query("SELECT status FROM early_receipt WHERE plugin_id = $1 AND provider_id = $2")
            .bind(plugin_id.to_owned())
            .bind(provider_id.to_owned())
            .fetch_optional(&mut *conn)
            .await?
            .map(|row| row.parsed("status"))
            .transpose()?;
    let status = DeliveryStatus::advance(current, status);
    sqlx::query(
        "INSERT INTO early_receipt (plugin_id, provider_id, status, error, received_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (plugin_id, provider_id) DO UPDATE SET status = excluded.status,
         error = COALESCE(excluded.error, early_receipt.error), received_at = excluded.received_at",
    )
    .bind(plugin_id.to_owned())
    .bind(provider_id.to_owned())
    .bind(status.as_str())
    .bind(error.map(str::to_owned))
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Applies (and forgets) a receipt that arrived before the send was recorded.
pub(crate) async fn apply_parked_receipt(
    conn: &mut AnyConnection,
    plugin_id: &str,
    provider_id: &str,
    now_ms: i64,
) -> Result<()> {
    let row = sqlx::query(
        "SELECT status, error FROM early_receipt WHERE plugin_id = $1 AND provider_id = $2",
    )
    .bind(plugin_id.to_owned())
    .bind(provider_id.to_owned())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(()) };
    let parked = Receipt {
        provider_id: provider_id.to_owned(),
        status: row.parsed("status")?,
        error_code: None,
        error_message: row.opt_text("error")?,
    };
    sqlx::query("DELETE FROM early_receipt WHERE plugin_id = $1 AND provider_id = $2")
        .bind(plugin_id.to_owned())
        .bind(provider_id.to_owned())
        .execute(&mut *conn)
        .await?;
    receipt(conn, plugin_id, &parked, now_ms).await?;
    Ok(())
}

async fn consent(
    conn: &mut AnyConnection,
    batch: &IngestBatch,
    c: &ConsentEvent,
) -> Result<IngestOutcome> {
    // The keyword usually arrives as a message too, under the same provider id; the
    // prefix keeps the two events from colliding on the idempotency key.
    let key = storable(&format!("consent:{}", c.provider_id));
    let keyword = c.keyword.as_deref().map(storable);
    if let Some(existing) = event_by_provider(conn, &batch.plugin_id, &key).await? {
        return Ok(IngestOutcome::Duplicate {
            event_id: existing.id,
        });
    }
    let now = batch.now_ms;
    let (contact_id, _) = resolve_or_create(conn, &c.identity, None, now).await?;
    let state = c.action.resulting_state();
    if let Some(state) = state {
        set_consent(
            conn,
            &c.identity,
            &batch.channel,
            state,
            keyword.as_deref(),
            now,
        )
        .await?;
    }
    let conversation = latest_active(conn, &contact_id).await?;
    let body = match &keyword {
        Some(k) => format!("{} on {} ({k})", c.action, batch.channel),
        None => format!("{} on {}", c.action, batch.channel),
    };
    let mut event = TimelineEvent::new(
        &contact_id,
        conversation.as_ref().map(|c| c.id.as_str()),
        Direction::In,
        EventKind::Consent,
        body,
        now,
    )
    .on_channel(&batch.channel, &batch.plugin_id);
    event.identity = Some(c.identity.clone());
    event.provider_id = Some(key);
    record_event(conn, &event).await?;
    Ok(IngestOutcome::ConsentRecorded {
        contact_id,
        event_id: event.id,
        state,
    })
}

impl Store {
    /// Stores one webhook's events atomically and returns one outcome per event, in
    /// order. Returns only after the transaction containing the batch committed (see
    /// the crate docs on group commit). If any event fails, the whole batch is rolled
    /// back and the error returned; other callers' batches are unaffected.
    pub async fn ingest(&self, batch: IngestBatch) -> Result<Vec<IngestOutcome>> {
        self.writer().submit(batch).await
    }

    /// [`Store::ingest`] for a caller that takes survey answers out of what customers
    /// write: the same transaction, except that the sighting each inbound message
    /// reads anyway also asks whether a survey question sent to the sender as text
    /// over this plugin waits for an answer, and the batch stops before the first
    /// such message (a duplicate of a stored one is not held). The events in
    /// [`Ingested::held`] were not applied: the caller answers the survey with the
    /// first, or stores them with [`Store::ingest`]. One read per message either
    /// way, instead of a survey read before the batch and the sighting in it.
    pub async fn ingest_until_survey_answer(&self, batch: IngestBatch) -> Result<Ingested> {
        self.writer().submit(SurveyAware(batch)).await
    }
}
