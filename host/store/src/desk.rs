//! What the agent desk and the supervisor wallboard read and write beyond messages:
//! internal events on a conversation (notes, transfers with their context, dispositions,
//! automatic messages), per-agent read markers, contact profile edits, the day's task
//! figures, and the native webchat channel's visitors and transcripts.
//!
//! It never decides who gets a task or what a hand-off says; the routing service and
//! the API do, and hand the result here to be stored.

use serde::Serialize;
use sqlx::AnyConnection;
use switchboard_core::{ConversationStatus, DeliveryStatus, Direction, EventKind, Identity};

use crate::Store;
use crate::contacts::{contact_id_for, insert_identity, resolve_or_create, view};
use crate::conversations::{self, set_status_in};
use crate::db::{RowExt, new_id, sql_limit};
use crate::error::{Result, StoreError};
use crate::reports::facts::record_event;
use crate::timeline::TimelineEvent;

/// The identity kind of webchat visitors.
pub const WEBCHAT: &str = "webchat";

/// An event the host or an agent adds to a conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// The conversation.
    pub conversation_id: String,
    /// Internal (notes, transfers, dispositions) or out (automatic messages).
    pub direction: Direction,
    /// What it is.
    pub kind: EventKind,
    /// Text shown on the timeline.
    pub body: String,
    /// Who wrote it; `None` for the host itself.
    pub author_agent_id: Option<String>,
    /// `(channel, plugin_id)` for events that travelled on a channel.
    pub channel: Option<(String, String)>,
    /// The customer address of an outbound message.
    pub identity: Option<Identity>,
    /// Delivery state of an outbound message.
    pub delivery_status: Option<DeliveryStatus>,
    /// Structured detail, a JSON object.
    pub data: serde_json::Value,
    /// When, ms since the epoch.
    pub now_ms: i64,
}

impl NewEvent {
    /// An internal event by `author` (a note, a transfer, a disposition).
    pub fn internal(
        conversation_id: &str,
        kind: EventKind,
        body: impl Into<String>,
        author: Option<&str>,
        data: serde_json::Value,
        now_ms: i64,
    ) -> NewEvent {
        NewEvent {
            conversation_id: conversation_id.to_owned(),
            direction: Direction::Internal,
            kind,
            body: body.into(),
            author_agent_id: author.map(str::to_owned),
            channel: None,
            identity: None,
            delivery_status: None,
            data,
            now_ms,
        }
    }
}

/// What the desk lists about one conversation for one agent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeskSummary {
    /// Inbound messages after the agent's read marker.
    pub unread: i64,
    /// Channels its messages travelled on, first use first.
    pub channels: Vec<String>,
    /// The oldest inbound message not answered since our last outbound one.
    pub waiting_since: Option<i64>,
    /// The newest message, note or call.
    pub last_event: Option<TimelineEvent>,
}

/// One task of today, for the wallboard's figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskDayRow {
    /// The queue it is (or ended) in.
    pub queue_id: String,
    /// Its channel.
    pub channel: String,
    /// `pending`, `reserved`, `assigned`, `wrapping`, `completed`, `canceled`.
    pub state: String,
    /// When it arrived, ms since the epoch.
    pub arrived_at: i64,
    /// When an agent first accepted it, if one did.
    pub answered_at: Option<i64>,
}

/// A webchat visitor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebchatVisitor {
    /// Visitor id: the identity `webchat:<id>`.
    pub id: String,
    /// The contact it belongs to.
    pub contact_id: String,
    /// The name given in the pre-chat form.
    pub name: String,
    /// The e-mail given, normalized.
    pub email: Option<String>,
    /// When the chat started, ms since the epoch.
    pub created_at: i64,
}

impl WebchatVisitor {
    /// The visitor's identity.
    pub fn identity(&self) -> Identity {
        Identity::from_normalized(WEBCHAT.to_owned(), self.id.clone())
    }
}

async fn append_in(conn: &mut AnyConnection, new: NewEvent) -> Result<TimelineEvent> {
    let conv = conversations::get(conn, &new.conversation_id).await?;
    let mut event = TimelineEvent::new(
        &conv.contact_id,
        Some(&conv.id),
        new.direction,
        new.kind,
        crate::db::storable(&new.body),
        new.now_ms,
    );
    if let Some((channel, plugin)) = &new.channel {
        event = event.on_channel(channel, plugin);
    }
    event.author_agent_id = new.author_agent_id;
    event.identity = new.identity;
    event.delivery_status = new.delivery_status;
    event.data = new.data;
    record_event(conn, &event).await?;
    Ok(event)
}

impl Store {
    /// Appends an event to a conversation's timeline.
    pub async fn append_event(&self, new: NewEvent) -> Result<TimelineEvent> {
        let mut tx = self.begin_write().await?;
        let event = append_in(&mut tx, new).await?;
        tx.commit().await?;
        Ok(event)
    }

    /// Rewrites an event's text and structured detail: a call's record grows as the
    /// call goes on (queue wait, agent, duration, recording, disposition).
    pub async fn update_event_detail(
        &self,
        id: &str,
        body: &str,
        data: &serde_json::Value,
    ) -> Result<TimelineEvent> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("UPDATE timeline_event SET body = $1, data = $2 WHERE id = $3")
            .bind(crate::db::storable(body))
            .bind(data.to_string())
            .bind(id.to_owned())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("timeline event", id));
        }
        tx.commit().await?;
        self.event(id).await
    }

    /// One timeline event by id.
    pub async fn event(&self, id: &str) -> Result<TimelineEvent> {
        let mut conn = self.pool().acquire().await?;
        let row = sqlx::query(concat!(
            "SELECT ",
            event_columns!(),
            " FROM timeline_event WHERE id = $1"
        ))
        .bind(id.to_owned())
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::not_found("timeline event", id))?;
        TimelineEvent::from_row(&row)
    }

    /// Records the outcome (`disposition`) and resolves the conversation, in one
    /// transaction. Returns the conversation as resolved and the disposition event.
    pub async fn resolve_with_disposition(
        &self,
        disposition: NewEvent,
    ) -> Result<(conversations::ConversationRow, TimelineEvent)> {
        let mut tx = self.begin_write().await?;
        let now = disposition.now_ms;
        let mut conv = conversations::get(&mut tx, &disposition.conversation_id).await?;
        let event = append_in(&mut tx, disposition).await?;
        if conv.status != ConversationStatus::Resolved {
            let body = format!("{} → {}", conv.status, ConversationStatus::Resolved);
            set_status_in(&mut tx, &mut conv, ConversationStatus::Resolved, now, &body).await?;
        }
        tx.commit().await?;
        Ok((conv, event))
    }

    /// Moves `agent_id`'s read marker of a conversation to `now_ms`.
    pub async fn mark_read(
        &self,
        agent_id: &str,
        conversation_id: &str,
        now_ms: i64,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        conversations::get(&mut tx, conversation_id).await?;
        sqlx::query(
            "INSERT INTO conversation_read (agent_id, conversation_id, read_at) VALUES ($1, $2, $3)
             ON CONFLICT (agent_id, conversation_id)
             DO UPDATE SET read_at = CASE WHEN conversation_read.read_at > excluded.read_at
                 THEN conversation_read.read_at ELSE excluded.read_at END",
        )
        .bind(agent_id.to_owned())
        .bind(conversation_id.to_owned())
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Unread count, channels, waiting time and last event of a conversation, as
    /// `agent_id` sees it.
    pub async fn desk_summary(&self, agent_id: &str, conversation_id: &str) -> Result<DeskSummary> {
        let mut conn = self.pool().acquire().await?;
        let read_at = sqlx::query(
            "SELECT read_at FROM conversation_read WHERE agent_id = $1 AND conversation_id = $2",
        )
        .bind(agent_id.to_owned())
        .bind(conversation_id.to_owned())
        .fetch_optional(&mut *conn)
        .await?
        .map(|r| r.int("read_at"))
        .transpose()?
        .unwrap_or(0);
        let messages = sqlx::query(concat!(
            "SELECT ",
            event_columns!(),
            " FROM timeline_event WHERE conversation_id = $1 AND kind IN ('message', 'call', 'note')
              ORDER BY occurred_at, id"
        ))
        .bind(conversation_id.to_owned())
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(TimelineEvent::from_row)
        .collect::<Result<Vec<_>>>()?;
        let mut summary = DeskSummary {
            unread: 0,
            channels: Vec::new(),
            waiting_since: None,
            last_event: None,
        };
        for e in &messages {
            if let Some(c) = &e.channel
                && e.kind != EventKind::Note
                && !summary.channels.contains(c)
            {
                summary.channels.push(c.clone());
            }
            match e.direction {
                // A call is a conversation in itself: answered (or being answered), it
                // is an answer; one the customer gave up on waits for a call back.
                Direction::In | Direction::Out if e.kind == EventKind::Call => {
                    match e.data.get("outcome").and_then(|o| o.as_str()) {
                        Some("abandoned" | "missed" | "failed") if e.direction == Direction::In => {
                            summary.waiting_since.get_or_insert(e.occurred_at);
                        }
                        _ => summary.waiting_since = None,
                    }
                }
                Direction::In => {
                    if e.occurred_at > read_at {
                        summary.unread += 1;
                    }
                    summary.waiting_since.get_or_insert(e.occurred_at);
                }
                // An automatic greeting is not an answer.
                Direction::Out if e.data.get("auto").is_none() => summary.waiting_since = None,
                _ => {}
            }
        }
        summary.last_event = messages.into_iter().last();
        Ok(summary)
    }

    /// A contact's events of one kind, oldest first (e.g. every disposition).
    pub async fn contact_events_of_kind(
        &self,
        contact_id: &str,
        kind: EventKind,
    ) -> Result<Vec<TimelineEvent>> {
        let mut conn = self.pool().acquire().await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            event_columns!(),
            " FROM timeline_event WHERE contact_id = $1 AND kind = $2 ORDER BY occurred_at, id"
        ))
        .bind(contact_id.to_owned())
        .bind(kind.as_str())
        .fetch_all(&mut *conn)
        .await?;
        rows.iter().map(TimelineEvent::from_row).collect()
    }

    /// Every event of one kind recorded at or after `since_ms`, oldest first, at most
    /// `limit` (the context-transfer report reads transfers).
    pub async fn events_of_kind_since(
        &self,
        kind: EventKind,
        since_ms: i64,
        limit: u32,
    ) -> Result<Vec<TimelineEvent>> {
        let mut conn = self.pool().acquire().await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            event_columns!(),
            " FROM timeline_event WHERE kind = $1 AND occurred_at >= $2
              ORDER BY occurred_at, id LIMIT $3"
        ))
        .bind(kind.as_str())
        .bind(since_ms)
        .bind(sql_limit(limit))
        .fetch_all(&mut *conn)
        .await?;
        rows.iter().map(TimelineEvent::from_row).collect()
    }

    /// Sets a contact's name (when `display_name` is `Some`) and merges `attributes`
    /// into its attributes (a `null` value removes the key).
    pub async fn update_contact(
        &self,
        id: &str,
        display_name: Option<Option<String>>,
        attributes: Option<serde_json::Map<String, serde_json::Value>>,
        now_ms: i64,
    ) -> Result<crate::ContactView> {
        let mut tx = self.begin_write().await?;
        let current = view(&mut tx, id).await?;
        if let Some(into) = &current.merged_into {
            return Err(StoreError::Conflict(format!(
                "contact {id} was merged into {into}"
            )));
        }
        let name = match display_name {
            Some(n) => n.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()),
            None => current.display_name.clone(),
        };
        let mut attrs = current.attributes.as_object().cloned().unwrap_or_default();
        for (k, v) in attributes.unwrap_or_default() {
            if v.is_null() {
                attrs.remove(&k);
            } else {
                attrs.insert(k, v);
            }
        }
        sqlx::query(
            "UPDATE contact SET display_name = $1, attributes = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(name)
        .bind(serde_json::Value::Object(attrs).to_string())
        .bind(now_ms)
        .bind(id.to_owned())
        .execute(&mut *tx)
        .await?;
        let v = view(&mut tx, id).await?;
        tx.commit().await?;
        Ok(v)
    }

    /// Tasks that arrived at or after `since_ms`, with when they were first answered.
    pub async fn tasks_since(&self, since_ms: i64) -> Result<Vec<TaskDayRow>> {
        let mut conn = self.pool().acquire().await?;
        let rows = sqlx::query(
            "SELECT t.queue_id, t.channel, t.state, t.arrived_at,
                    (SELECT MIN(r.decided_at) FROM reservation r
                      WHERE r.task_id = t.id AND r.state = 'accepted') AS answered_at
             FROM task t WHERE t.arrived_at >= $1",
        )
        .bind(since_ms)
        .fetch_all(&mut *conn)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TaskDayRow {
                    queue_id: r.text("queue_id")?,
                    channel: r.text("channel")?,
                    state: r.text("state")?,
                    arrived_at: r.int("arrived_at")?,
                    answered_at: r.opt_int("answered_at")?,
                })
            })
            .collect()
    }

    /// Starts a webchat: the visitor joins the contact owning `email` if there is one,
    /// else a new contact named `name` (with `email` as an identity). Returns the
    /// visitor; `token_hash` is the SHA-256 of the token the visitor will present.
    pub async fn create_webchat_visitor(
        &self,
        name: &str,
        email: Option<&Identity>,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<WebchatVisitor> {
        let name = name.trim();
        if name.is_empty() {
            return Err(StoreError::Invalid("a webchat visitor needs a name".into()));
        }
        let mut tx = self.begin_write().await?;
        let id = new_id();
        let identity = Identity::from_normalized(WEBCHAT.to_owned(), id.clone());
        let contact_id = match email {
            Some(email) => {
                resolve_or_create(&mut tx, email, Some(name), now_ms)
                    .await?
                    .0
            }
            None => {
                resolve_or_create(&mut tx, &identity, Some(name), now_ms)
                    .await?
                    .0
            }
        };
        if contact_id_for(&mut tx, &identity).await?.is_none() {
            insert_identity(&mut tx, &contact_id, &identity, now_ms).await?;
        }
        let visitor = WebchatVisitor {
            id,
            contact_id,
            name: name.to_owned(),
            email: email.map(|e| e.value().to_owned()),
            created_at: now_ms,
        };
        sqlx::query(
            "INSERT INTO webchat_visitor (id, token_hash, contact_id, name, email, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(visitor.id.clone())
        .bind(token_hash.to_owned())
        .bind(visitor.contact_id.clone())
        .bind(visitor.name.clone())
        .bind(visitor.email.clone())
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(visitor)
    }

    /// The visitor presenting a token with this hash, if any. Its contact is followed
    /// through merges, so a merged visitor keeps chatting on the kept contact.
    pub async fn webchat_visitor(&self, token_hash: &str) -> Result<Option<WebchatVisitor>> {
        let mut conn = self.pool().acquire().await?;
        let row = sqlx::query(
            "SELECT v.id, i.contact_id, v.name, v.email, v.created_at
             FROM webchat_visitor v JOIN identity i ON i.kind = 'webchat' AND i.value = v.id
             WHERE v.token_hash = $1",
        )
        .bind(token_hash.to_owned())
        .fetch_optional(&mut *conn)
        .await?;
        row.map(|r| {
            Ok(WebchatVisitor {
                id: r.text("id")?,
                contact_id: r.text("contact_id")?,
                name: r.text("name")?,
                email: r.opt_text("email")?,
                created_at: r.int("created_at")?,
            })
        })
        .transpose()
    }

    /// The messages exchanged with one identity (a webchat visitor's transcript),
    /// oldest first, the newest `limit`.
    pub async fn identity_messages(
        &self,
        identity: &Identity,
        limit: u32,
    ) -> Result<Vec<TimelineEvent>> {
        let mut conn = self.pool().acquire().await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            event_columns!(),
            " FROM timeline_event
              WHERE identity_kind = $1 AND identity_value = $2 AND kind = 'message'
              ORDER BY occurred_at DESC, id DESC LIMIT $3"
        ))
        .bind(identity.kind().to_owned())
        .bind(identity.value().to_owned())
        .bind(sql_limit(limit))
        .fetch_all(&mut *conn)
        .await?;
        let mut events = rows
            .iter()
            .map(TimelineEvent::from_row)
            .collect::<Result<Vec<_>>>()?;
        events.reverse();
        Ok(events)
    }
}
