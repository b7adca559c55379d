//! Timeline events: the one chronological record across channels, shared by ingest,
//! replies, status changes and merges.
//!
//! Order is `(occurred_at, id)`: `occurred_at` is when the host recorded the event (not
//! the provider's clock, which can be skewed or late), and ids are UUID v7 so events
//! recorded in the same millisecond keep their creation order — a channel switch stays
//! before the message that caused it.

use serde::Serialize;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use switchboard_core::{Attachment, DeliveryStatus, Direction, EventKind, Identity};

use crate::Store;
use crate::db::{RowExt, sql_limit};
use crate::error::{Result, StoreError};

/// Columns of `timeline_event`, in [`TimelineEvent::from_row`]'s terms.
macro_rules! event_columns {
    () => {
        "id, contact_id, conversation_id, channel, plugin_id, direction, kind, body, \
         attachments, identity_kind, identity_value, provider_id, author_agent_id, \
         delivery_status, error, sent_at, occurred_at, data"
    };
}

/// One entry of a contact's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimelineEvent {
    /// Event id (UUID v7).
    pub id: String,
    /// The contact it belongs to.
    pub contact_id: String,
    /// The conversation it belongs to, if any (consent changes outside a conversation
    /// have none).
    pub conversation_id: Option<String>,
    /// Channel it travelled on, e.g. `sms`, `telegram`.
    pub channel: Option<String>,
    /// Connector plugin that carried it.
    pub plugin_id: Option<String>,
    /// In, out or internal.
    pub direction: Direction,
    /// Message, call, note, channel switch, …
    pub kind: EventKind,
    /// Text content (for status and channel-switch events, a short description).
    pub body: String,
    /// Attached files.
    pub attachments: Vec<Attachment>,
    /// The customer address it came from or went to.
    pub identity: Option<Identity>,
    /// The provider's message id, unique per plugin. Consent events store
    /// `consent:<provider id>` so they never collide with the message that carried the
    /// keyword.
    pub provider_id: Option<String>,
    /// The agent who wrote it (outbound messages, notes).
    pub author_agent_id: Option<String>,
    /// Delivery state of an outbound message.
    pub delivery_status: Option<DeliveryStatus>,
    /// Last delivery error, `code: message`.
    pub error: Option<String>,
    /// When the provider says it was sent (inbound), ms since the epoch.
    pub sent_at: Option<i64>,
    /// When the host recorded it, ms since the epoch; the timeline's order.
    pub occurred_at: i64,
    /// Structured detail, a JSON object: a transfer's context summary, a disposition's
    /// code, `auto` on automatic messages. `{}` for plain messages.
    pub data: serde_json::Value,
}

impl TimelineEvent {
    pub(crate) fn from_row(row: &AnyRow) -> Result<TimelineEvent> {
        let identity = match (
            row.opt_text("identity_kind")?,
            row.opt_text("identity_value")?,
        ) {
            (Some(kind), Some(value)) => Some(Identity::from_normalized(kind, value)),
            _ => None,
        };
        Ok(TimelineEvent {
            id: row.text("id")?,
            contact_id: row.text("contact_id")?,
            conversation_id: row.opt_text("conversation_id")?,
            channel: row.opt_text("channel")?,
            plugin_id: row.opt_text("plugin_id")?,
            direction: row.parsed("direction")?,
            kind: row.parsed("kind")?,
            body: row.text("body")?,
            attachments: row.json("attachments")?,
            identity,
            provider_id: row.opt_text("provider_id")?,
            author_agent_id: row.opt_text("author_agent_id")?,
            delivery_status: row.opt_parsed("delivery_status")?,
            error: row.opt_text("error")?,
            sent_at: row.opt_int("sent_at")?,
            occurred_at: row.int("occurred_at")?,
            data: row.json("data")?,
        })
    }

    /// A new event with a fresh id and every optional field empty.
    pub(crate) fn new(
        contact_id: &str,
        conversation_id: Option<&str>,
        direction: Direction,
        kind: EventKind,
        body: impl Into<String>,
        occurred_at: i64,
    ) -> TimelineEvent {
        TimelineEvent {
            id: crate::db::new_id(),
            contact_id: contact_id.to_owned(),
            conversation_id: conversation_id.map(str::to_owned),
            channel: None,
            plugin_id: None,
            direction,
            kind,
            body: body.into(),
            attachments: Vec::new(),
            identity: None,
            provider_id: None,
            author_agent_id: None,
            delivery_status: None,
            error: None,
            sent_at: None,
            occurred_at,
            data: serde_json::Value::Object(Default::default()),
        }
    }

    pub(crate) fn on_channel(mut self, channel: &str, plugin_id: &str) -> Self {
        self.channel = Some(channel.to_owned());
        self.plugin_id = Some(plugin_id.to_owned());
        self
    }
}

/// Whether a machine wrote the message (an auto-reply, bulk mail, a bounce):
/// the connector says so in the metadata's `automatic`.
pub fn is_automatic(metadata: &serde_json::Value) -> bool {
    metadata
        .get("automatic")
        .is_some_and(|a| !a.is_null() && a != &serde_json::Value::Bool(false))
}

pub(crate) async fn insert_event(conn: &mut AnyConnection, e: &TimelineEvent) -> Result<()> {
    let attachments = serde_json::to_string(&e.attachments)
        .map_err(|err| StoreError::Invalid(err.to_string()))?;
    sqlx::query(concat!(
        "INSERT INTO timeline_event (",
        event_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
    ))
    .bind(e.id.clone())
    .bind(e.contact_id.clone())
    .bind(e.conversation_id.clone())
    .bind(e.channel.clone())
    .bind(e.plugin_id.clone())
    .bind(e.direction.as_str())
    .bind(e.kind.as_str())
    .bind(e.body.clone())
    .bind(attachments)
    .bind(e.identity.as_ref().map(|i| i.kind().to_owned()))
    .bind(e.identity.as_ref().map(|i| i.value().to_owned()))
    .bind(e.provider_id.clone())
    .bind(e.author_agent_id.clone())
    .bind(e.delivery_status.map(|s| s.as_str()))
    .bind(e.error.clone())
    .bind(e.sent_at)
    .bind(e.occurred_at)
    .bind(e.data.to_string())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(crate) async fn event_by_provider(
    conn: &mut AnyConnection,
    plugin_id: &str,
    provider_id: &str,
) -> Result<Option<TimelineEvent>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        event_columns!(),
        " FROM timeline_event WHERE plugin_id = $1 AND provider_id = $2"
    ))
    .bind(plugin_id.to_owned())
    .bind(provider_id.to_owned())
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(TimelineEvent::from_row).transpose()
}

/// Moves an event's delivery status forward by `next` (see
/// [`DeliveryStatus::advance`]), setting `error` when the result is a failure. The
/// update is a compare-and-set on the status read, so two receipts racing on different
/// host nodes cannot move it backwards. Returns the resulting status and whether it
/// changed.
pub(crate) async fn advance_delivery(
    conn: &mut AnyConnection,
    event_id: &str,
    next: DeliveryStatus,
    error: Option<&str>,
) -> Result<(DeliveryStatus, bool)> {
    for _ in 0..8 {
        let row = sqlx::query("SELECT delivery_status FROM timeline_event WHERE id = $1")
            .bind(event_id.to_owned())
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| StoreError::not_found("timeline event", event_id))?;
        let current: Option<DeliveryStatus> = row.opt_parsed("delivery_status")?;
        let new = DeliveryStatus::advance(current, next);
        if Some(new) == current {
            return Ok((new, false));
        }
        // A failure keeps (or replaces) the error text; success clears it.
        let done = sqlx::query(
            "UPDATE timeline_event
             SET delivery_status = $1, error = CASE WHEN $5 = 1 THEN COALESCE($2, error) ELSE NULL END
             WHERE id = $3 AND COALESCE(delivery_status, '') = $4",
        )
        .bind(new.as_str())
        .bind(error.map(str::to_owned))
        .bind(event_id.to_owned())
        .bind(current.map_or("", |s| s.as_str()))
        .bind(i64::from(new.is_failure()))
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() == 1 {
            return Ok((new, true));
        }
    }
    Err(StoreError::Conflict(format!(
        "delivery status of event {event_id} keeps changing concurrently"
    )))
}

impl Store {
    /// The event a connector's plugin recorded under `provider_id`, if any (inbound
    /// messages, and outbound ones once the provider accepted them).
    pub async fn event_by_provider_id(
        &self,
        plugin_id: &str,
        provider_id: &str,
    ) -> Result<Option<TimelineEvent>> {
        let mut conn = self.pool().acquire().await?;
        event_by_provider(&mut conn, plugin_id, provider_id).await
    }

    /// A contact's timeline across all its conversations and channels, oldest first:
    /// the newest `limit` events strictly before the event `before` (an event id from
    /// an earlier page), or the newest `limit` events if `before` is `None`.
    pub async fn contact_timeline(
        &self,
        contact_id: &str,
        limit: u32,
        before: Option<&str>,
    ) -> Result<Vec<TimelineEvent>> {
        let mut conn = self.pool().acquire().await?;
        let rows = match before {
            None => {
                sqlx::query(concat!(
                    "SELECT ",
                    event_columns!(),
                    " FROM timeline_event WHERE contact_id = $1
                      ORDER BY occurred_at DESC, id DESC LIMIT $2"
                ))
                .bind(contact_id.to_owned())
                .bind(sql_limit(limit))
                .fetch_all(&mut *conn)
                .await?
            }
            Some(cursor) => {
                let at = sqlx::query("SELECT occurred_at FROM timeline_event WHERE id = $1")
                    .bind(cursor.to_owned())
                    .fetch_optional(&mut *conn)
                    .await?
                    .ok_or_else(|| StoreError::not_found("timeline event", cursor))?
                    .int("occurred_at")?;
                sqlx::query(concat!(
                    "SELECT ",
                    event_columns!(),
                    " FROM timeline_event
                      WHERE contact_id = $1 AND (occurred_at < $2 OR (occurred_at = $2 AND id < $3))
                      ORDER BY occurred_at DESC, id DESC LIMIT $4"
                ))
                .bind(contact_id.to_owned())
                .bind(at)
                .bind(cursor.to_owned())
                .bind(sql_limit(limit))
                .fetch_all(&mut *conn)
                .await?
            }
        };
        let mut events = rows
            .iter()
            .map(TimelineEvent::from_row)
            .collect::<Result<Vec<_>>>()?;
        events.reverse();
        Ok(events)
    }

    /// Every event of one conversation, oldest first.
    pub async fn conversation_timeline(&self, conversation_id: &str) -> Result<Vec<TimelineEvent>> {
        let mut conn = self.pool().acquire().await?;
        let exists = sqlx::query("SELECT id FROM conversation WHERE id = $1")
            .bind(conversation_id.to_owned())
            .fetch_optional(&mut *conn)
            .await?;
        if exists.is_none() {
            return Err(StoreError::not_found("conversation", conversation_id));
        }
        let rows = sqlx::query(concat!(
            "SELECT ",
            event_columns!(),
            " FROM timeline_event WHERE conversation_id = $1 ORDER BY occurred_at, id"
        ))
        .bind(conversation_id.to_owned())
        .fetch_all(&mut *conn)
        .await?;
        rows.iter().map(TimelineEvent::from_row).collect()
    }
}
