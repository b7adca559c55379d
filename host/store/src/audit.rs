//! The audit log (who did what to which record) and the counts behind `/metrics`.
//!
//! Audit entries are append-only: nothing in the store updates or deletes them.

use std::collections::BTreeMap;

use serde::Serialize;
use switchboard_core::{ConversationStatus, OutboxStatus};

use crate::Store;
use crate::db::{RowExt, new_id, sql_limit, wall_clock_ms};
use crate::error::Result;

/// One audit log entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// Entry id.
    pub id: String,
    /// When, ms since the epoch.
    pub at: i64,
    /// Who: an agent id, `cli`, `system`, a plugin id.
    pub actor: String,
    /// What, e.g. `plugin.install`, `contact.merge`.
    pub action: String,
    /// Which record, if any.
    pub target: Option<String>,
    /// Details, a JSON value (never secrets).
    pub detail: serde_json::Value,
}

/// Row counts for monitoring.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MetricsCounts {
    /// Contacts (merged-away contacts excluded).
    pub contacts: u64,
    /// Conversations per status (every status present).
    pub conversations: BTreeMap<ConversationStatus, u64>,
    /// Timeline events.
    pub timeline_events: u64,
    /// Outbox rows per status (every status present).
    pub outbox: BTreeMap<OutboxStatus, u64>,
}

impl MetricsCounts {
    /// Conversations not resolved.
    pub fn conversations_open(&self) -> u64 {
        self.conversations
            .iter()
            .filter(|(s, _)| s.is_active())
            .map(|(_, n)| n)
            .sum()
    }
}

fn count(n: i64) -> u64 {
    n.max(0) as u64
}

impl Store {
    /// Appends an audit entry and returns its id.
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        target: Option<&str>,
        detail: serde_json::Value,
    ) -> Result<String> {
        let id = new_id();
        sqlx::query("INSERT INTO audit_log (id, at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(id.clone())
            .bind(wall_clock_ms())
            .bind(actor.to_owned())
            .bind(action.to_owned())
            .bind(target.map(str::to_owned))
            .bind(detail.to_string())
            .execute(self.pool())
            .await?;
        Ok(id)
    }

    /// The newest `limit` audit entries, newest first.
    pub async fn list_audit(&self, limit: u32) -> Result<Vec<AuditEntry>> {
        sqlx::query("SELECT id, at, actor, action, target, detail FROM audit_log ORDER BY at DESC, id DESC LIMIT $1")
            .bind(sql_limit(limit))
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|row| {
                Ok(AuditEntry {
                    id: row.text("id")?,
                    at: row.int("at")?,
                    actor: row.text("actor")?,
                    action: row.text("action")?,
                    target: row.opt_text("target")?,
                    detail: row.json("detail")?,
                })
            })
            .collect()
    }

    /// Counts of contacts, conversations by status, timeline events and outbox rows by
    /// status.
    pub async fn metrics_counts(&self) -> Result<MetricsCounts> {
        let mut conn = self.pool().acquire().await?;
        let contacts = sqlx::query("SELECT COUNT(*) AS n FROM contact WHERE merged_into IS NULL")
            .fetch_one(&mut *conn)
            .await?
            .int("n")?;
        let timeline_events = sqlx::query("SELECT COUNT(*) AS n FROM timeline_event")
            .fetch_one(&mut *conn)
            .await?
            .int("n")?;
        let mut conversations: BTreeMap<ConversationStatus, u64> =
            ConversationStatus::ALL.iter().map(|s| (*s, 0)).collect();
        for row in sqlx::query("SELECT status, COUNT(*) AS n FROM conversation GROUP BY status")
            .fetch_all(&mut *conn)
            .await?
        {
            let status: ConversationStatus = row.parsed("status")?;
            conversations.insert(status, count(row.int("n")?));
        }
        let mut outbox: BTreeMap<OutboxStatus, u64> =
            OutboxStatus::ALL.iter().map(|s| (*s, 0)).collect();
        for row in sqlx::query("SELECT status, COUNT(*) AS n FROM outbox GROUP BY status")
            .fetch_all(&mut *conn)
            .await?
        {
            let status: OutboxStatus = row.parsed("status")?;
            outbox.insert(status, count(row.int("n")?));
        }
        Ok(MetricsCounts {
            contacts: count(contacts),
            conversations,
            timeline_events: count(timeline_events),
            outbox,
        })
    }
}
