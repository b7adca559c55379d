//! Replies and the outbox.
//!
//! An agent's reply is written as an outbound timeline event and an outbox row in one
//! transaction, after checking consent — so a reply is either fully queued or not at
//! all, and nothing is ever queued to an identity that opted out of the channel. Send
//! workers claim due rows under a lease (a crashed worker's rows come back when the
//! lease runs out), then report sent / retry / dead. This module stores those
//! transitions; the retry policy lives in `switchboard_core::outbox` and the sending in
//! the plugin host.

use serde::Serialize;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use switchboard_core::{
    ConsentState, DeliveryStatus, Direction, EventKind, Identity, OutboxStatus,
};

use crate::Store;
use crate::attachments::bind_uploads;
use crate::contacts::{consent_of, contact_id_for};
use crate::conversations::{self, touch_channel};
use crate::db::{
    RowExt, claim_due, claim_sql, hold_lease, hold_sql, new_id, sql_limit, wall_clock_ms,
};
use crate::error::{Result, StoreError};
use crate::ingest::apply_parked_receipt;
use crate::reports::facts::record_event;
use crate::timeline::{TimelineEvent, advance_delivery};

macro_rules! outbox_columns {
    () => {
        "id, event_id, conversation_id, plugin_id, channel, to_kind, to_value, body, status, \
         attempts, next_attempt_at, lease_until, last_error, provider_id, delivery_status, \
         created_at, updated_at, payload"
    };
}

/// An agent's reply to be written and queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReply {
    /// The conversation replied in.
    pub conversation_id: String,
    /// The agent writing (None for system messages).
    pub author_agent_id: Option<String>,
    /// Text.
    pub body: String,
    /// Connector plugin that will send it.
    pub plugin_id: String,
    /// Its channel, e.g. `sms`.
    pub channel: String,
    /// Recipient; must be one of the conversation contact's identities.
    pub to: Identity,
    /// Now, ms since the epoch (also the first attempt's due time).
    pub now_ms: i64,
    /// What the message carries besides its text (template, interactive
    /// choices, the author's name, the window decision), a JSON object the
    /// send worker reads; `{}` for plain text.
    pub payload: serde_json::Value,
    /// Uploads (attachment ids) sent with it, in order; each must be an unsent
    /// upload by the author.
    pub attachments: Vec<String>,
}

/// One queued outbound message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxRow {
    /// Outbox id.
    pub id: String,
    /// The outbound timeline event it sends.
    pub event_id: String,
    /// Its conversation.
    pub conversation_id: String,
    /// Connector plugin that sends it.
    pub plugin_id: String,
    /// Channel.
    pub channel: String,
    /// Recipient.
    pub to: Identity,
    /// Text.
    pub body: String,
    /// Pending, sending, sent or dead.
    pub status: OutboxStatus,
    /// Failed attempts so far.
    pub attempts: u32,
    /// When it is due (pending rows), ms since the epoch.
    pub next_attempt_at: i64,
    /// While sending: when the claiming worker's lease runs out.
    pub lease_until: Option<i64>,
    /// Last send error.
    pub last_error: Option<String>,
    /// The provider's message id once accepted.
    pub provider_id: Option<String>,
    /// Delivery status as last reported.
    pub delivery_status: Option<DeliveryStatus>,
    /// Created, ms since the epoch.
    pub created_at: i64,
    /// Last change, ms since the epoch.
    pub updated_at: i64,
    /// What the message carries besides its text (see [`NewReply::payload`]).
    pub payload: serde_json::Value,
}

impl OutboxRow {
    fn from_row(row: &AnyRow) -> Result<OutboxRow> {
        Ok(OutboxRow {
            id: row.text("id")?,
            event_id: row.text("event_id")?,
            conversation_id: row.text("conversation_id")?,
            plugin_id: row.text("plugin_id")?,
            channel: row.text("channel")?,
            to: Identity::from_normalized(row.text("to_kind")?, row.text("to_value")?),
            body: row.text("body")?,
            status: row.parsed("status")?,
            attempts: u32::try_from(row.int("attempts")?).unwrap_or(u32::MAX),
            next_attempt_at: row.int("next_attempt_at")?,
            lease_until: row.opt_int("lease_until")?,
            last_error: row.opt_text("last_error")?,
            provider_id: row.opt_text("provider_id")?,
            delivery_status: row.opt_parsed("delivery_status")?,
            created_at: row.int("created_at")?,
            updated_at: row.int("updated_at")?,
            payload: serde_json::from_str(&row.text("payload")?)
                .map_err(|e| StoreError::Invalid(format!("outbox payload: {e}")))?,
        })
    }
}

/// Row `id`, held for the worker whose claim set its lease to `lease` (see
/// [`hold_lease`]); a row that does not exist is [`StoreError::NotFound`].
async fn hold(conn: &mut AnyConnection, id: &str, lease: Option<i64>) -> Result<OutboxRow> {
    let row = get(&mut *conn, id).await?;
    hold_lease(&mut *conn, hold_sql!("outbox"), id, lease).await?;
    Ok(row)
}

async fn get(conn: &mut AnyConnection, id: &str) -> Result<OutboxRow> {
    let row = sqlx::query(concat!(
        "SELECT ",
        outbox_columns!(),
        " FROM outbox WHERE id = $1"
    ))
    .bind(id.to_owned())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::not_found("outbox row", id))?;
    OutboxRow::from_row(&row)
}

const CLAIM: (&str, &str) = claim_sql!("outbox", outbox_columns!());

impl Store {
    /// Writes an agent's reply: the outbound timeline event (delivery `queued`) and its
    /// outbox row, in one transaction. If the conversation was last on another
    /// channel, a `channel_switch` event is recorded first.
    ///
    /// Refuses with [`StoreError::OptedOut`] if `to` opted out of `channel`, with
    /// [`StoreError::NotFound`] if the conversation does not exist, and with
    /// [`StoreError::Invalid`] if `to` is not one of the contact's identities.
    pub async fn create_reply(&self, reply: NewReply) -> Result<(TimelineEvent, OutboxRow)> {
        if reply.plugin_id.trim().is_empty() || reply.channel.trim().is_empty() {
            return Err(StoreError::Invalid(
                "a reply needs a plugin id and a channel".into(),
            ));
        }
        let mut tx = self.begin_write().await?;
        let mut conv = conversations::get(&mut tx, &reply.conversation_id).await?;
        if contact_id_for(&mut tx, &reply.to).await?.as_deref() != Some(conv.contact_id.as_str()) {
            return Err(StoreError::Invalid(format!(
                "{} is not an identity of conversation {}'s contact",
                reply.to,
                conv.display()
            )));
        }
        if consent_of(&mut tx, &reply.to, &reply.channel).await? == Some(ConsentState::OptedOut) {
            return Err(StoreError::OptedOut {
                identity: reply.to.to_string(),
                channel: reply.channel,
            });
        }
        let now = reply.now_ms;
        touch_channel(&mut tx, &mut conv, &reply.channel, &reply.plugin_id, now).await?;
        let mut event = TimelineEvent::new(
            &conv.contact_id,
            Some(&conv.id),
            Direction::Out,
            EventKind::Message,
            crate::db::storable(&reply.body),
            now,
        )
        .on_channel(&reply.channel, &reply.plugin_id);
        event.identity = Some(reply.to.clone());
        event.author_agent_id = reply.author_agent_id.clone();
        event.delivery_status = Some(DeliveryStatus::Queued);
        if let Some(template) = reply.payload.get("template") {
            event.data = serde_json::json!({ "template": template });
        }
        record_event(&mut tx, &event).await?;
        if !reply.attachments.is_empty() {
            event.attachments = bind_uploads(
                &mut tx,
                &event.id,
                &reply.plugin_id,
                &reply.attachments,
                reply.author_agent_id.as_deref(),
            )
            .await?;
            let text = serde_json::to_string(&event.attachments)
                .map_err(|e| StoreError::Invalid(e.to_string()))?;
            sqlx::query("UPDATE timeline_event SET attachments = $1 WHERE id = $2")
                .bind(text)
                .bind(event.id.clone())
                .execute(&mut *tx)
                .await?;
        }
        let row = OutboxRow {
            id: new_id(),
            event_id: event.id.clone(),
            conversation_id: conv.id.clone(),
            plugin_id: reply.plugin_id,
            channel: reply.channel,
            to: reply.to,
            body: event.body.clone(),
            status: OutboxStatus::Pending,
            attempts: 0,
            next_attempt_at: now,
            lease_until: None,
            last_error: None,
            provider_id: None,
            delivery_status: Some(DeliveryStatus::Queued),
            created_at: now,
            updated_at: now,
            payload: reply.payload,
        };
        sqlx::query(concat!(
            "INSERT INTO outbox (",
            outbox_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
        ))
        .bind(row.id.clone())
        .bind(row.event_id.clone())
        .bind(row.conversation_id.clone())
        .bind(row.plugin_id.clone())
        .bind(row.channel.clone())
        .bind(row.to.kind().to_owned())
        .bind(row.to.value().to_owned())
        .bind(row.body.clone())
        .bind(row.status.as_str())
        .bind(i64::from(row.attempts))
        .bind(row.next_attempt_at)
        .bind(row.lease_until)
        .bind(row.last_error.clone())
        .bind(row.provider_id.clone())
        .bind(row.delivery_status.map(|s| s.as_str()))
        .bind(row.created_at)
        .bind(row.updated_at)
        .bind(row.payload.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((event, row))
    }

    /// Claims up to `limit` rows that are due at `now_ms` — pending rows whose time has
    /// come, and rows whose sending lease expired — marking them `sending` until
    /// `now_ms + lease_ms`. Safe with several workers (and host nodes on PostgreSQL):
    /// a row is handed to one claimer at a time. Oldest due first.
    pub async fn claim_outbox(
        &self,
        now_ms: i64,
        limit: u32,
        lease_ms: i64,
    ) -> Result<Vec<OutboxRow>> {
        claim_due(
            (self.pool(), self.backend()),
            CLAIM,
            (now_ms, limit, lease_ms),
            OutboxRow::from_row,
            |r| (r.next_attempt_at, r.id.as_str()),
        )
        .await
    }

    /// Records that the provider accepted the message under `provider_id` with
    /// `status` (usually `sent` or `queued`): the row becomes `sent`, and the timeline
    /// event gets the provider id (so status callbacks find it) and the status, never
    /// moving backwards. A receipt that arrived before this call is applied now.
    ///
    /// `lease` is the claim's `lease_until` (see [`Store::claim_outbox`]); when the
    /// row's lease passed to another worker, nothing is written and the answer is
    /// [`StoreError::Conflict`]. `None` for a row finished without a claim.
    pub async fn outbox_sent(
        &self,
        id: &str,
        provider_id: &str,
        status: DeliveryStatus,
        now_ms: i64,
        lease: Option<i64>,
    ) -> Result<OutboxRow> {
        let mut tx = self.begin_write().await?;
        let row = hold(&mut tx, id, lease).await?;
        sqlx::query("UPDATE timeline_event SET provider_id = $1 WHERE id = $2")
            .bind(provider_id.to_owned())
            .bind(row.event_id.clone())
            .execute(&mut *tx)
            .await?;
        let (delivery, _) = advance_delivery(&mut tx, &row.event_id, status, None).await?;
        sqlx::query(
            "UPDATE outbox SET status = 'sent', provider_id = $1, delivery_status = $2, lease_until = NULL,
             last_error = NULL, updated_at = $3 WHERE id = $4",
        )
        .bind(provider_id.to_owned())
        .bind(delivery.as_str())
        .bind(now_ms)
        .bind(id.to_owned())
        .execute(&mut *tx)
        .await?;
        apply_parked_receipt(&mut tx, &row.plugin_id, provider_id, now_ms).await?;
        let row = get(&mut tx, id).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Puts a row back to `pending` after a failed attempt: `attempts` failed attempts
    /// so far, next try at `next_at_ms`.
    /// Like [`Store::outbox_sent`], refused when `lease` passed to another worker.
    pub async fn outbox_retry(
        &self,
        id: &str,
        attempts: u32,
        next_at_ms: i64,
        error: &str,
        lease: Option<i64>,
    ) -> Result<OutboxRow> {
        let mut tx = self.begin_write().await?;
        hold(&mut tx, id, lease).await?;
        sqlx::query(
            "UPDATE outbox SET status = 'pending', attempts = $1, next_attempt_at = $2, lease_until = NULL,
             last_error = $3, updated_at = $4 WHERE id = $5",
        )
        .bind(i64::from(attempts))
        .bind(next_at_ms)
        .bind(error.to_owned())
        .bind(wall_clock_ms())
        .bind(id.to_owned())
        .execute(&mut *tx)
        .await?;
        let row = get(&mut tx, id).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Gives up on a row: it becomes a dead letter and its timeline event is marked
    /// `failed` with `error`.
    /// Like [`Store::outbox_sent`], refused when `lease` passed to another worker.
    pub async fn outbox_dead(
        &self,
        id: &str,
        error: &str,
        lease: Option<i64>,
    ) -> Result<OutboxRow> {
        let mut tx = self.begin_write().await?;
        let row = hold(&mut tx, id, lease).await?;
        let (delivery, _) =
            advance_delivery(&mut tx, &row.event_id, DeliveryStatus::Failed, Some(error)).await?;
        sqlx::query(
            "UPDATE outbox SET status = 'dead', lease_until = NULL, last_error = $1, delivery_status = $2,
             updated_at = $3 WHERE id = $4",
        )
        .bind(error.to_owned())
        .bind(delivery.as_str())
        .bind(wall_clock_ms())
        .bind(id.to_owned())
        .execute(&mut *tx)
        .await?;
        let row = get(&mut tx, id).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Requeues a dead letter for immediate retry with a fresh attempt count; its
    /// timeline event goes back to `queued` (an operator's explicit decision, the one
    /// case where delivery status moves backwards). [`StoreError::Conflict`] if the row
    /// is not dead.
    pub async fn outbox_requeue(&self, id: &str, now_ms: i64) -> Result<OutboxRow> {
        let mut tx = self.begin_write().await?;
        let row = get(&mut tx, id).await?;
        if row.status != OutboxStatus::Dead {
            return Err(StoreError::Conflict(format!(
                "outbox row {id} is {}, not dead",
                row.status
            )));
        }
        sqlx::query(
            "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $1, lease_until = NULL,
             delivery_status = 'queued', updated_at = $1 WHERE id = $2",
        )
        .bind(now_ms)
        .bind(id.to_owned())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE timeline_event SET delivery_status = 'queued', error = NULL WHERE id = $1",
        )
        .bind(row.event_id.clone())
        .execute(&mut *tx)
        .await?;
        let row = get(&mut tx, id).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// One outbox row.
    pub async fn outbox_row(&self, id: &str) -> Result<OutboxRow> {
        let mut conn = self.pool().acquire().await?;
        get(&mut conn, id).await
    }

    /// Outbox rows, newest first, optionally only those in `status` (`Dead` lists the
    /// dead letters).
    pub async fn list_outbox(
        &self,
        status: Option<OutboxStatus>,
        limit: u32,
    ) -> Result<Vec<OutboxRow>> {
        let mut conn = self.pool().acquire().await?;
        let rows = match status {
            Some(status) => {
                sqlx::query(concat!(
                    "SELECT ",
                    outbox_columns!(),
                    " FROM outbox WHERE status = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
                ))
                .bind(status.as_str())
                .bind(sql_limit(limit))
                .fetch_all(&mut *conn)
                .await?
            }
            None => {
                sqlx::query(concat!(
                    "SELECT ",
                    outbox_columns!(),
                    " FROM outbox ORDER BY created_at DESC, id DESC LIMIT $1"
                ))
                .bind(sql_limit(limit))
                .fetch_all(&mut *conn)
                .await?
            }
        };
        rows.iter().map(OutboxRow::from_row).collect()
    }
}
