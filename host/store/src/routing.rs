//! Durable routing state: queues, each agent's presence and capacity, tasks and
//! reservations.
//!
//! The routing engine (crate `switchboard-routing`) owns what these rows mean;
//! this module stores its snapshots faithfully and lets the database enforce
//! the two invariants that must hold even across host nodes: one live task per
//! conversation, and never two pending reservations of one task.

use serde::Serialize;
use sqlx::any::AnyRow;

use crate::Store;
use crate::db::{RowExt, begin_write, wall_clock_ms};
use crate::error::{Result, StoreError};
use crate::reports::facts::{RoutingLogEntry, log_routing};

/// A queue; `definition` is the engine's JSON (channels, skills, SLA, steps).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueRow {
    /// Queue id.
    pub id: String,
    /// Unique human name.
    pub name: String,
    /// Engine-owned definition.
    pub definition: serde_json::Value,
}

/// An agent's routing state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentRoutingRow {
    /// The agent.
    pub agent_id: String,
    /// `available`, `away` or `offline`.
    pub presence: String,
    /// Why the agent is away, when given.
    pub presence_reason: Option<String>,
    /// Capacity profile (JSON).
    pub capacity: serde_json::Value,
}

/// A routing task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskRow {
    /// Task id.
    pub id: String,
    /// The conversation it routes, if any.
    pub conversation_id: Option<String>,
    /// The customer, if known.
    pub contact_id: Option<String>,
    /// Channel (`sms`, `voice`…).
    pub channel: String,
    /// Current queue.
    pub queue_id: String,
    /// `pending`, `reserved`, `assigned`, `wrapping`, `completed`, `canceled`.
    pub state: String,
    /// The agent holding it, if any.
    pub agent_id: Option<String>,
    /// Engine-owned remainder (priority, skills, attributes…).
    pub definition: serde_json::Value,
    /// Arrival time, ms.
    pub arrived_at: i64,
}

/// An offer of a task to an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReservationRow {
    /// Reservation id.
    pub id: String,
    /// The task.
    pub task_id: String,
    /// The agent offered.
    pub agent_id: String,
    /// `pending`, `accepted`, `rejected`, `expired`, `canceled`.
    pub state: String,
    /// When offered, ms.
    pub offered_at: i64,
    /// When the offer lapses, ms.
    pub expires_at: i64,
    /// When it was decided, ms.
    pub decided_at: Option<i64>,
}

/// What one routing step changed, written in one transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoutingChanges {
    /// Tasks created or changed.
    pub tasks: Vec<TaskRow>,
    /// Reservations created or changed.
    pub reservations: Vec<ReservationRow>,
    /// Agents whose routing state changed.
    pub agents: Vec<AgentRoutingRow>,
    /// Tasks that ended: (task id, `completed` or `canceled`).
    pub finished: Vec<(String, String)>,
    /// When the step happened (the engine's `now`), ms since the epoch: the instant of
    /// `log`.
    pub at: i64,
    /// What the step did, for the routing history the reports are built from.
    pub log: Vec<RoutingLogEntry>,
    /// The writer's leader epoch ([`crate::Leadership::epoch`]): when set, the
    /// write is refused with [`StoreError::Fenced`] unless it is still the current
    /// one.
    pub epoch: Option<i64>,
}

impl RoutingChanges {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
            && self.reservations.is_empty()
            && self.agents.is_empty()
            && self.finished.is_empty()
            && self.log.is_empty()
    }
}

/// Everything the engine needs to restart.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoutingSnapshot {
    /// Every queue.
    pub queues: Vec<QueueRow>,
    /// Every agent's routing state.
    pub agents: Vec<AgentRoutingRow>,
    /// Tasks not yet completed or canceled.
    pub tasks: Vec<TaskRow>,
    /// Pending reservations.
    pub reservations: Vec<ReservationRow>,
}

fn json(row: &AnyRow, col: &'static str) -> Result<serde_json::Value> {
    row.json(col)
}

fn queue_row(row: &AnyRow) -> Result<QueueRow> {
    Ok(QueueRow {
        id: row.text("id")?,
        name: row.text("name")?,
        definition: json(row, "definition")?,
    })
}

fn task_row(row: &AnyRow) -> Result<TaskRow> {
    Ok(TaskRow {
        id: row.text("id")?,
        conversation_id: row.opt_text("conversation_id")?,
        contact_id: row.opt_text("contact_id")?,
        channel: row.text("channel")?,
        queue_id: row.text("queue_id")?,
        state: row.text("state")?,
        agent_id: row.opt_text("agent_id")?,
        definition: json(row, "definition")?,
        arrived_at: row.int("arrived_at")?,
    })
}

fn reservation_row(row: &AnyRow) -> Result<ReservationRow> {
    Ok(ReservationRow {
        id: row.text("id")?,
        task_id: row.text("task_id")?,
        agent_id: row.text("agent_id")?,
        state: row.text("state")?,
        offered_at: row.int("offered_at")?,
        expires_at: row.int("expires_at")?,
        decided_at: row.opt_int("decided_at")?,
    })
}

fn conflict_on_unique(e: sqlx::Error, what: &str) -> StoreError {
    let e = StoreError::from(e);
    if e.is_unique_violation() {
        StoreError::Conflict(what.to_string())
    } else {
        e
    }
}

impl Store {
    /// Creates or replaces a queue (by id).
    pub async fn upsert_queue(&self, queue: &QueueRow) -> Result<QueueRow> {
        let now = wall_clock_ms();
        sqlx::query(
            "INSERT INTO queue (id, name, definition, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
             definition = excluded.definition, updated_at = excluded.updated_at",
        )
        .bind(queue.id.clone())
        .bind(queue.name.clone())
        .bind(queue.definition.to_string())
        .bind(now)
        .execute(self.pool())
        .await
        .map_err(|e| conflict_on_unique(e, &format!("a queue named {:?} exists", queue.name)))?;
        Ok(queue.clone())
    }

    /// Every queue, by name.
    pub async fn list_queues(&self) -> Result<Vec<QueueRow>> {
        let rows = sqlx::query("SELECT id, name, definition FROM queue ORDER BY name")
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(queue_row).collect()
    }

    /// Writes one routing step's changes atomically, with its routing history and the
    /// report facts it changes. A second pending reservation of a task, or a second
    /// live task of a conversation, is refused with [`StoreError::Conflict`] and
    /// nothing is written.
    pub async fn save_routing(&self, changes: &RoutingChanges) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let now = wall_clock_ms();
        let mut tx = begin_write(self.pool(), self.backend()).await?;
        if let Some(held) = changes.epoch {
            crate::leader::check_epoch(&mut tx, self.backend(), held).await?;
        }
        for a in &changes.agents {
            sqlx::query(
                "INSERT INTO agent_routing (agent_id, presence, presence_reason, capacity, updated_at) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (agent_id) DO UPDATE SET presence = excluded.presence, \
                 presence_reason = excluded.presence_reason, capacity = excluded.capacity, \
                 updated_at = excluded.updated_at",
            )
            .bind(a.agent_id.clone())
            .bind(a.presence.clone())
            .bind(a.presence_reason.clone())
            .bind(a.capacity.to_string())
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        }
        for t in &changes.tasks {
            sqlx::query(
                "INSERT INTO task (id, conversation_id, contact_id, channel, queue_id, state, agent_id, definition, arrived_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (id) DO UPDATE SET queue_id = excluded.queue_id, state = excluded.state, \
                 agent_id = excluded.agent_id, definition = excluded.definition, updated_at = excluded.updated_at",
            )
            .bind(t.id.clone())
            .bind(t.conversation_id.clone())
            .bind(t.contact_id.clone())
            .bind(t.channel.clone())
            .bind(t.queue_id.clone())
            .bind(t.state.clone())
            .bind(t.agent_id.clone())
            .bind(t.definition.to_string())
            .bind(t.arrived_at)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict_on_unique(e, "the conversation already has a live task"))?;
        }
        for r in &changes.reservations {
            sqlx::query(
                "INSERT INTO reservation (id, task_id, agent_id, state, offered_at, expires_at, decided_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (id) DO UPDATE SET state = excluded.state, decided_at = excluded.decided_at",
            )
            .bind(r.id.clone())
            .bind(r.task_id.clone())
            .bind(r.agent_id.clone())
            .bind(r.state.clone())
            .bind(r.offered_at)
            .bind(r.expires_at)
            .bind(r.decided_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict_on_unique(e, "the task already has a pending reservation"))?;
        }
        for (id, state) in &changes.finished {
            sqlx::query("UPDATE task SET state = $1, updated_at = $2 WHERE id = $3")
                .bind(state.clone())
                .bind(now)
                .bind(id.clone())
                .execute(&mut *tx)
                .await?;
        }
        log_routing(&mut tx, changes.at, &changes.log).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Open conversations that never got a routing task (a crash between an
    /// ingest commit and routing): (conversation id, contact id, last channel).
    pub async fn conversations_without_task(&self) -> Result<Vec<(String, String, String)>> {
        let rows = sqlx::query(
            "SELECT c.id, c.contact_id, c.last_channel FROM conversation c \
             WHERE c.status IN ('open', 'pending') AND c.last_channel IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM task t WHERE t.conversation_id = c.id) \
             ORDER BY c.opened_at",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.text("id")?,
                    r.text("contact_id")?,
                    r.text("last_channel")?,
                ))
            })
            .collect()
    }

    /// The agent who last held a task of this contact, for sticky routing.
    pub async fn last_agent_for_contact(&self, contact_id: &str) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT agent_id FROM task WHERE contact_id = $1 AND agent_id IS NOT NULL \
             ORDER BY updated_at DESC, id DESC LIMIT 1",
        )
        .bind(contact_id.to_owned())
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| r.text("agent_id")).transpose()
    }

    /// Queues, agents, live tasks and pending reservations, to restart routing.
    pub async fn load_routing(&self) -> Result<RoutingSnapshot> {
        let queues = self.list_queues().await?;
        let agents = sqlx::query(
            "SELECT agent_id, presence, presence_reason, capacity FROM agent_routing ORDER BY agent_id",
        )
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|row| {
            Ok(AgentRoutingRow {
                agent_id: row.text("agent_id")?,
                presence: row.text("presence")?,
                presence_reason: row.opt_text("presence_reason")?,
                capacity: json(row, "capacity")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
        let tasks = sqlx::query(
            "SELECT id, conversation_id, contact_id, channel, queue_id, state, agent_id, definition, arrived_at \
             FROM task WHERE state NOT IN ('completed', 'canceled') ORDER BY arrived_at, id",
        )
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(task_row)
        .collect::<Result<Vec<_>>>()?;
        let reservations = sqlx::query(
            "SELECT id, task_id, agent_id, state, offered_at, expires_at, decided_at \
             FROM reservation WHERE state = 'pending' ORDER BY offered_at, id",
        )
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(reservation_row)
        .collect::<Result<Vec<_>>>()?;
        Ok(RoutingSnapshot {
            queues,
            agents,
            tasks,
            reservations,
        })
    }

    /// One task by id, whatever its state.
    pub async fn task(&self, id: &str) -> Result<TaskRow> {
        let row = sqlx::query(
            "SELECT id, conversation_id, contact_id, channel, queue_id, state, agent_id, definition, arrived_at \
             FROM task WHERE id = $1",
        )
        .bind(id.to_owned())
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| StoreError::not_found("task", id))?;
        task_row(&row)
    }
}
