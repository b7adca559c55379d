//! Rebuilding every report fact from history: the routing log and the timeline,
//! replayed in time order through the functions the live path uses.
//!
//! The replay runs in one transaction, so readers see the old facts until it commits.
//! History is read on two other connections while the transaction writes (SQLite's WAL
//! lets them read; an in-memory SQLite database, which has one connection, cannot be
//! rebuilt). On a tie the timeline event goes first: live, the timeline write of an
//! action (a message, a resolve, a transfer) commits before the routing step it causes.

use futures::StreamExt;
use serde::Serialize;

use crate::Store;
use crate::db::{RowExt, pg_xact_lock};
use crate::error::{Result, StoreError};
use crate::reports::facts::{RoutingLogEntry, apply_event, apply_routing};
use crate::timeline::TimelineEvent;

/// The fact tables, emptied and refilled by a rebuild.
const FACT_TABLES: &[&str] = &[
    "task_fact",
    "task_leg",
    "agent_state",
    "agent_segment",
    "conversation_fact",
    "journey_arrival",
    "task_rollup",
    "journey_rollup",
    "agent_rollup",
];

/// What a rebuild went through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RebuildStats {
    /// Routing history entries replayed.
    pub routing_entries: u64,
    /// Timeline events replayed.
    pub events: u64,
    /// Task facts after the rebuild.
    pub tasks: i64,
    /// Conversation facts after the rebuild.
    pub conversations: i64,
}

impl Store {
    /// Recomputes every report fact from the routing log and the timeline. Gives the
    /// numbers the live facts give, except where history changed under them (a merge
    /// of contacts, see REPORTS.md).
    pub async fn rebuild_reports(&self) -> Result<RebuildStats> {
        let mut tx = self.begin_write().await?;
        pg_xact_lock(&mut tx, self.backend(), "switchboard-reports-rebuild").await?;
        for table in FACT_TABLES {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
                .execute(&mut *tx)
                .await?;
        }
        let mut log_conn = self.pool().acquire().await?;
        let mut event_conn = self.pool().acquire().await?;
        let mut log = sqlx::query("SELECT id, at, detail FROM routing_log ORDER BY at, id")
            .fetch(&mut *log_conn);
        let mut events = sqlx::query(concat!(
            "SELECT ",
            event_columns!(),
            " FROM timeline_event WHERE conversation_id IS NOT NULL AND kind IN \
             ('message', 'call', 'status', 'channel_switch', 'transfer', 'disposition', 'survey') \
             ORDER BY occurred_at, id"
        ))
        .fetch(&mut *event_conn);
        let mut stats = RebuildStats::default();
        let mut next_entry = match log.next().await {
            Some(row) => Some(row?),
            None => None,
        };
        let mut next_event = match events.next().await {
            Some(row) => Some(TimelineEvent::from_row(&row?)?),
            None => None,
        };
        loop {
            let entry_at = match &next_entry {
                Some(row) => Some(row.int("at")?),
                None => None,
            };
            let event_first = match (&next_event, entry_at) {
                (Some(e), Some(at)) => e.occurred_at <= at,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            if event_first {
                let event = next_event.take().expect("checked");
                apply_event(&mut tx, &event).await?;
                stats.events += 1;
                next_event = match events.next().await {
                    Some(row) => Some(TimelineEvent::from_row(&row?)?),
                    None => None,
                };
            } else {
                let row = next_entry.take().expect("checked");
                let entry: RoutingLogEntry = serde_json::from_str(&row.text("detail")?)
                    .map_err(|e| StoreError::corrupt("routing_log.detail", e))?;
                apply_routing(&mut tx, &row.text("id")?, row.int("at")?, &entry).await?;
                stats.routing_entries += 1;
                next_entry = match log.next().await {
                    Some(row) => Some(row?),
                    None => None,
                };
            }
        }
        drop(log);
        drop(events);
        stats.tasks = sqlx::query("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM task_fact")
            .fetch_one(&mut *tx)
            .await?
            .int("n")?;
        stats.conversations =
            sqlx::query("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM conversation_fact")
                .fetch_one(&mut *tx)
                .await?
                .int("n")?;
        tx.commit().await?;
        Ok(stats)
    }
}
