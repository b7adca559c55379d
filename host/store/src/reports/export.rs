//! The one-row-per-conversation export, streamed: rows leave the database one by one
//! through a bounded channel, so memory stays flat whatever the range.

use futures::StreamExt;
use serde::Serialize;
use sqlx::any::AnyRow;
use tokio::sync::mpsc;

use crate::Store;
use crate::db::RowExt;
use crate::error::{Result, StoreError};
use crate::reports::sql::{FactQuery, Family, Sql, check_buckets, filters};

/// One conversation as the export lists it (conversations opened in the range, in
/// opening order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConversationExportRow {
    /// The conversation.
    pub conversation_id: String,
    /// Its display number.
    pub display_id: Option<i64>,
    /// Its status now.
    pub status: Option<String>,
    /// The customer.
    pub contact_id: String,
    /// The customer's name.
    pub contact_name: Option<String>,
    /// When it opened.
    pub opened_at: i64,
    /// The first resolution.
    pub first_resolved_at: Option<i64>,
    /// The final resolution (`None` while not resolved).
    pub resolved_at: Option<i64>,
    /// The customer's next contact after the first resolution.
    pub next_contact_at: Option<i64>,
    /// Channels used, in order of first use.
    pub channels: Vec<String>,
    /// Channel switches.
    pub channel_switches: i64,
    /// Times reopened.
    pub reopens: i64,
    /// The first queue it was routed to.
    pub queue: Option<String>,
    /// Agents who held it, in order of first assignment.
    pub agents: Vec<String>,
    /// The disposition code of the last resolve.
    pub disposition: Option<String>,
    /// Who recorded it.
    pub resolved_by: Option<String>,
    /// Routing tasks (arrivals of work) it had.
    pub tasks: i64,
    /// The first agent response of any of its tasks.
    pub first_response_at: Option<i64>,
    /// Handle time of its tasks (connected plus wrap-up).
    pub handle_ms: i64,
    /// Hand-offs received.
    pub handoffs: i64,
    /// Of those, with context.
    pub handoffs_context: i64,
    /// CSAT answer (1–5).
    pub csat: Option<i64>,
    /// CES answer (1–7).
    pub ces: Option<i64>,
    /// NPS answer (0–10).
    pub nps: Option<i64>,
}

fn list(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn export_row(r: &AnyRow) -> Result<ConversationExportRow> {
    Ok(ConversationExportRow {
        conversation_id: r.text("conversation_id")?,
        display_id: r.opt_int("display_id")?,
        status: r.opt_text("status")?,
        contact_id: r.text("contact_id")?,
        contact_name: r.opt_text("contact_name")?,
        opened_at: r.int("opened_at")?,
        first_resolved_at: r.opt_int("first_resolved_at")?,
        resolved_at: r.opt_int("resolved_at")?,
        next_contact_at: r.opt_int("next_contact_at")?,
        channels: list(&r.text("channels")?),
        channel_switches: r.int("channel_switches")?,
        reopens: r.int("reopens")?,
        queue: r.opt_text("first_queue")?,
        agents: list(&r.text("agents")?),
        disposition: r.opt_text("disposition")?,
        resolved_by: r.opt_text("resolved_by")?,
        tasks: r.int("tasks")?,
        first_response_at: r.opt_int("first_response_at")?,
        handle_ms: r.int("handle_ms")?,
        handoffs: r.int("handoffs")?,
        handoffs_context: r.int("handoffs_context")?,
        csat: r.opt_int("csat")?,
        ces: r.opt_int("ces")?,
        nps: r.opt_int("nps")?,
    })
}

impl Store {
    /// Streams the conversations opened in the query's range that match its filters,
    /// in opening order, one row at a time (the channel holds a few rows; the query
    /// stops when the receiver is dropped).
    pub fn export_conversations(
        &self,
        q: &FactQuery,
    ) -> Result<mpsc::Receiver<Result<ConversationExportRow>>> {
        let (start, end) = check_buckets(&q.buckets)?;
        let mut sql = Sql::default();
        let f = filters(&mut sql, Family::Journeys, q);
        sql.push(&format!(
            "SELECT c.conversation_id, v.display_id, v.status, c.contact_id, \
             ct.display_name AS contact_name, c.opened_at, c.first_resolved_at, c.resolved_at, \
             c.next_contact_at, c.channels, c.channel_switches, c.reopens, c.first_queue, \
             c.agents, c.disposition, c.resolved_by, c.handoffs, c.handoffs_context, \
             c.csat, c.ces, c.nps, \
             (SELECT CAST(COUNT(*) AS BIGINT) FROM task_fact t \
                 WHERE t.conversation_id = c.conversation_id) AS tasks, \
             (SELECT MIN(t.first_response_at) FROM task_fact t \
                 WHERE t.conversation_id = c.conversation_id) AS first_response_at, \
             (SELECT CAST(COALESCE(SUM(t.connected_ms + t.wrap_ms), 0) AS BIGINT) FROM task_fact t \
                 WHERE t.conversation_id = c.conversation_id) AS handle_ms \
             FROM conversation_fact c \
             LEFT JOIN conversation v ON v.id = c.conversation_id \
             LEFT JOIN contact ct ON ct.id = c.contact_id \
             WHERE c.opened_at >= {start} AND c.opened_at < {end}{f} \
             ORDER BY c.opened_at, c.conversation_id"
        ));
        let pool = self.pool().clone();
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            let mut rows = sql.query().fetch(&pool);
            while let Some(row) = rows.next().await {
                let item = row.map_err(StoreError::from).and_then(|r| export_row(&r));
                let failed = item.is_err();
                if tx.send(item).await.is_err() || failed {
                    break;
                }
            }
        });
        Ok(rx)
    }
}
