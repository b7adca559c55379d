//! Conversations (cases): listing, reading, status changes, and the helpers ingest and
//! replies use to find, open, reopen and move a conversation between channels.
//!
//! A conversation belongs to a contact, never to a channel; `last_channel` only says
//! where the customer was heard from last, which is where replies go by default.

use serde::Serialize;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use switchboard_core::conversation::{
    ConversationCandidate, ConversationChoice, choose_conversation,
};
use switchboard_core::{
    ConversationStatus, Direction, EventKind, channel_switch_body, format_display_id,
};

use crate::Store;
use crate::db::{RowExt, new_id, sql_limit};
use crate::error::{Result, StoreError};
use crate::reports::facts::record_event;
use crate::timeline::TimelineEvent;

macro_rules! conversation_columns {
    () => {
        "id, display_id, contact_id, status, priority, last_channel, last_plugin_id, \
         opened_at, updated_at, resolved_at"
    };
}

/// A conversation as listed and shown to agents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConversationRow {
    /// Conversation id (UUID v7).
    pub id: String,
    /// Human number, unique, shown as `#1042` (see [`ConversationRow::display`]).
    pub display_id: i64,
    /// The contact.
    pub contact_id: String,
    /// Lifecycle state.
    pub status: ConversationStatus,
    /// Routing priority; higher is more urgent.
    pub priority: i64,
    /// Channel the customer was last heard from or written to on.
    pub last_channel: Option<String>,
    /// Connector plugin of that channel.
    pub last_plugin_id: Option<String>,
    /// When it was opened, ms since the epoch.
    pub opened_at: i64,
    /// Last activity, ms since the epoch.
    pub updated_at: i64,
    /// When it was resolved, if it is.
    pub resolved_at: Option<i64>,
}

impl ConversationRow {
    pub(crate) fn from_row(row: &AnyRow) -> Result<ConversationRow> {
        Ok(ConversationRow {
            id: row.text("id")?,
            display_id: row.int("display_id")?,
            contact_id: row.text("contact_id")?,
            status: row.parsed("status")?,
            priority: row.int("priority")?,
            last_channel: row.opt_text("last_channel")?,
            last_plugin_id: row.opt_text("last_plugin_id")?,
            opened_at: row.int("opened_at")?,
            updated_at: row.int("updated_at")?,
            resolved_at: row.opt_int("resolved_at")?,
        })
    }

    /// The display id as agents say it, e.g. `#1042`.
    pub fn display(&self) -> String {
        format_display_id(self.display_id)
    }

    fn candidate(&self) -> ConversationCandidate {
        ConversationCandidate {
            status: self.status,
            updated_at_ms: self.updated_at,
            resolved_at_ms: self.resolved_at,
        }
    }
}

pub(crate) async fn get(conn: &mut AnyConnection, id: &str) -> Result<ConversationRow> {
    let row = sqlx::query(concat!(
        "SELECT ",
        conversation_columns!(),
        " FROM conversation WHERE id = $1"
    ))
    .bind(id.to_owned())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::not_found("conversation", id))?;
    ConversationRow::from_row(&row)
}

/// The contact's most recently updated active conversation, if any.
pub(crate) async fn latest_active(
    conn: &mut AnyConnection,
    contact_id: &str,
) -> Result<Option<ConversationRow>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        conversation_columns!(),
        " FROM conversation WHERE contact_id = $1 AND status <> 'resolved'
          ORDER BY updated_at DESC, id DESC LIMIT 1"
    ))
    .bind(contact_id.to_owned())
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(ConversationRow::from_row).transpose()
}

/// Where an inbound message for `contact_id` goes: continues the active conversation,
/// reopens one resolved within the window, or opens a new one on `channel`.
/// `candidate` is the contact's latest active conversation, else its latest resolved
/// one (ingest reads it together with the contact, in `ingest::SIGHTING_SQL`). Returns
/// the conversation (already updated to its post-message status, but with its previous
/// `last_channel`) and whether it is new. Status changes are written to the timeline.
pub(crate) async fn for_inbound(
    conn: &mut AnyConnection,
    candidate: Option<ConversationRow>,
    contact_id: &str,
    channel: &str,
    plugin_id: &str,
    now_ms: i64,
    reopen_window_ms: i64,
) -> Result<(ConversationRow, bool)> {
    let mut candidates: Vec<ConversationRow> = candidate.into_iter().collect();
    let views: Vec<_> = candidates.iter().map(ConversationRow::candidate).collect();
    let (mut conv, reopen) = match choose_conversation(&views, now_ms, reopen_window_ms) {
        ConversationChoice::OpenNew => {
            let conv = open_new(conn, contact_id, channel, plugin_id, now_ms).await?;
            return Ok((conv, true));
        }
        ConversationChoice::Continue(i) => (candidates.swap_remove(i), false),
        ConversationChoice::Reopen(i) => (candidates.swap_remove(i), true),
    };
    let next = conv.status.after_inbound_message();
    if next != conv.status {
        let body = if reopen {
            "reopened".to_owned()
        } else {
            format!("{} → {}", conv.status, next)
        };
        set_status_in(conn, &mut conv, next, now_ms, &body).await?;
    }
    Ok((conv, false))
}

pub(crate) async fn open_new(
    conn: &mut AnyConnection,
    contact_id: &str,
    channel: &str,
    plugin_id: &str,
    now_ms: i64,
) -> Result<ConversationRow> {
    let display_id = sqlx::query(
        "UPDATE counter SET value = value + 1 WHERE name = 'conversation_display_id' RETURNING value",
    )
    .fetch_one(&mut *conn)
    .await?
    .int("value")?;
    let conv = ConversationRow {
        id: new_id(),
        display_id,
        contact_id: contact_id.to_owned(),
        status: ConversationStatus::Open,
        priority: 0,
        last_channel: Some(channel.to_owned()),
        last_plugin_id: Some(plugin_id.to_owned()),
        opened_at: now_ms,
        updated_at: now_ms,
        resolved_at: None,
    };
    sqlx::query(concat!(
        "INSERT INTO conversation (",
        conversation_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    ))
    .bind(conv.id.clone())
    .bind(conv.display_id)
    .bind(conv.contact_id.clone())
    .bind(conv.status.as_str())
    .bind(conv.priority)
    .bind(conv.last_channel.clone())
    .bind(conv.last_plugin_id.clone())
    .bind(conv.opened_at)
    .bind(conv.updated_at)
    .bind(conv.resolved_at)
    .execute(&mut *conn)
    .await?;
    Ok(conv)
}

pub(crate) async fn set_status_in(
    conn: &mut AnyConnection,
    conv: &mut ConversationRow,
    status: ConversationStatus,
    now_ms: i64,
    body: &str,
) -> Result<()> {
    let resolved_at = (status == ConversationStatus::Resolved).then_some(now_ms);
    sqlx::query(
        "UPDATE conversation SET status = $1, resolved_at = $2, updated_at = $3 WHERE id = $4",
    )
    .bind(status.as_str())
    .bind(resolved_at)
    .bind(now_ms)
    .bind(conv.id.clone())
    .execute(&mut *conn)
    .await?;
    let mut event = TimelineEvent::new(
        &conv.contact_id,
        Some(&conv.id),
        Direction::Internal,
        EventKind::Status,
        body,
        now_ms,
    );
    event.data = serde_json::json!({"from": conv.status.as_str(), "to": status.as_str()});
    record_event(conn, &event).await?;
    conv.status = status;
    conv.resolved_at = resolved_at;
    conv.updated_at = now_ms;
    Ok(())
}

/// Records that the conversation is now on `channel` (via `plugin_id`) and touches its
/// `updated_at`. If the channel changed, first appends a `channel_switch` event
/// (`"sms → telegram"`) to the timeline. Returns whether it switched.
pub(crate) async fn touch_channel(
    conn: &mut AnyConnection,
    conv: &mut ConversationRow,
    channel: &str,
    plugin_id: &str,
    now_ms: i64,
) -> Result<bool> {
    // Already on this channel and this recent (a conversation just opened): the
    // update would change nothing.
    if conv.last_channel.as_deref() == Some(channel)
        && conv.last_plugin_id.as_deref() == Some(plugin_id)
        && conv.updated_at >= now_ms
    {
        return Ok(false);
    }
    let switched = match conv.last_channel.as_deref() {
        Some(previous) if previous != channel => {
            let event = TimelineEvent::new(
                &conv.contact_id,
                Some(&conv.id),
                Direction::Internal,
                EventKind::ChannelSwitch,
                channel_switch_body(previous, channel),
                now_ms,
            )
            .on_channel(channel, plugin_id);
            record_event(conn, &event).await?;
            true
        }
        _ => false,
    };
    sqlx::query(
        "UPDATE conversation SET last_channel = $1, last_plugin_id = $2,
         updated_at = CASE WHEN updated_at > $3 THEN updated_at ELSE $3 END WHERE id = $4",
    )
    .bind(channel.to_owned())
    .bind(plugin_id.to_owned())
    .bind(now_ms)
    .bind(conv.id.clone())
    .execute(&mut *conn)
    .await?;
    conv.last_channel = Some(channel.to_owned());
    conv.last_plugin_id = Some(plugin_id.to_owned());
    conv.updated_at = conv.updated_at.max(now_ms);
    Ok(switched)
}

impl Store {
    /// Conversations, most recently active first, optionally only those in `status`.
    pub async fn list_conversations(
        &self,
        status: Option<ConversationStatus>,
        limit: u32,
    ) -> Result<Vec<ConversationRow>> {
        let mut conn = self.pool().acquire().await?;
        let rows = match status {
            Some(status) => sqlx::query(concat!(
                "SELECT ",
                conversation_columns!(),
                " FROM conversation WHERE status = $1 ORDER BY updated_at DESC, id DESC LIMIT $2"
            ))
            .bind(status.as_str())
            .bind(sql_limit(limit))
            .fetch_all(&mut *conn)
            .await?,
            None => {
                sqlx::query(concat!(
                    "SELECT ",
                    conversation_columns!(),
                    " FROM conversation ORDER BY updated_at DESC, id DESC LIMIT $1"
                ))
                .bind(sql_limit(limit))
                .fetch_all(&mut *conn)
                .await?
            }
        };
        rows.iter().map(ConversationRow::from_row).collect()
    }

    /// A contact's conversations, most recently active first.
    pub async fn contact_conversations(&self, contact_id: &str) -> Result<Vec<ConversationRow>> {
        let mut conn = self.pool().acquire().await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            conversation_columns!(),
            " FROM conversation WHERE contact_id = $1 ORDER BY updated_at DESC, id DESC"
        ))
        .bind(contact_id.to_owned())
        .fetch_all(&mut *conn)
        .await?;
        rows.iter().map(ConversationRow::from_row).collect()
    }

    /// One conversation; [`StoreError::NotFound`] if it does not exist.
    pub async fn conversation(&self, id: &str) -> Result<ConversationRow> {
        let mut conn = self.pool().acquire().await?;
        get(&mut conn, id).await
    }

    /// The conversation with display number `display_id` (`1042` for `#1042`).
    pub async fn conversation_by_display_id(
        &self,
        display_id: i64,
    ) -> Result<Option<ConversationRow>> {
        let mut conn = self.pool().acquire().await?;
        let row = sqlx::query(concat!(
            "SELECT ",
            conversation_columns!(),
            " FROM conversation WHERE display_id = $1"
        ))
        .bind(display_id)
        .fetch_optional(&mut *conn)
        .await?;
        row.as_ref().map(ConversationRow::from_row).transpose()
    }

    /// Changes a conversation's status at `now_ms` and records the change on the
    /// timeline (`"open → resolved"`). Resolving stamps `resolved_at`, which starts the
    /// reopen window. Setting the current status changes nothing.
    pub async fn set_conversation_status(
        &self,
        id: &str,
        status: ConversationStatus,
        now_ms: i64,
    ) -> Result<ConversationRow> {
        let mut tx = self.begin_write().await?;
        let mut conv = get(&mut tx, id).await?;
        if conv.status != status {
            let body = format!("{} → {}", conv.status, status);
            set_status_in(&mut tx, &mut conv, status, now_ms, &body).await?;
        }
        tx.commit().await?;
        Ok(conv)
    }

    /// Sets a conversation's routing priority.
    pub async fn set_conversation_priority(
        &self,
        id: &str,
        priority: i64,
    ) -> Result<ConversationRow> {
        let mut tx = self.begin_write().await?;
        let mut conv = get(&mut tx, id).await?;
        sqlx::query("UPDATE conversation SET priority = $1 WHERE id = $2")
            .bind(priority)
            .bind(id.to_owned())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        conv.priority = priority;
        Ok(conv)
    }
}
