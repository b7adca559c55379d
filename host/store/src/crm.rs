//! CRM integrations in the database: what each CRM said about a contact
//! (`contact_crm`), which events each CRM receives (`crm_subscription`) and the
//! durable write-back queue (`crm_activity`).
//!
//! An activity row is written in the transaction that records what it describes —
//! a message, note or disposition as its timeline event is inserted, a call when its
//! record is saved as ended — so write-back has the outbox's guarantee: nothing
//! committed is left out, and the worker delivers each row at least once. The row
//! names the event; the worker builds what it sends from the database when it
//! delivers (a call's duration and outcome, a resolve's summary).

use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;
use serde_json::Value;
use sqlx::AnyConnection;
use switchboard_core::EventKind;

use crate::db::{RowExt, claim_due, claim_sql, hold_lease, hold_sql, sql_limit, wall_clock_ms};
use crate::error::{Result, StoreError};
use crate::store::Store;
use crate::timeline::TimelineEvent;

/// Whether any CRM plugin was ever seen by this process: until one is, recording an
/// event skips the activity insert (one statement per event saved on every
/// deployment without a CRM). Only ever goes from false to true, so a store that has
/// CRM plugins never skips; other nodes' installs are seen by [`Store::crm_installed`],
/// which the write-back worker calls as it polls.
static CRM_SEEN: AtomicBool = AtomicBool::new(false);

/// What a CRM receives, by kind of activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CrmActivityKind {
    /// A call, when it ended (answered, abandoned or missed).
    Call,
    /// A resolve: the disposition and the conversation's summary.
    Summary,
    /// An internal note.
    Note,
    /// A message in or out.
    Message,
}

impl CrmActivityKind {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            CrmActivityKind::Call => "call",
            CrmActivityKind::Summary => "summary",
            CrmActivityKind::Note => "note",
            CrmActivityKind::Message => "message",
        }
    }

    /// Its default for a CRM nobody configured: everything but messages.
    fn default_on(self) -> bool {
        !matches!(self, CrmActivityKind::Message)
    }

    /// The activity an inserted timeline event makes, if any. Calls are queued when
    /// they end, not when their event is first written.
    fn of_event(event: &TimelineEvent) -> Option<CrmActivityKind> {
        match event.kind {
            EventKind::Message => Some(CrmActivityKind::Message),
            EventKind::Note => Some(CrmActivityKind::Note),
            EventKind::Disposition => Some(CrmActivityKind::Summary),
            _ => None,
        }
    }
}

impl std::str::FromStr for CrmActivityKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s {
            "call" => CrmActivityKind::Call,
            "summary" => CrmActivityKind::Summary,
            "note" => CrmActivityKind::Note,
            "message" => CrmActivityKind::Message,
            other => return Err(format!("unknown CRM activity kind {other:?}")),
        })
    }
}

/// Which activities one CRM plugin receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CrmSubscription {
    /// The CRM plugin.
    pub plugin_id: String,
    /// Calls when they end, including abandoned and missed ones.
    pub calls: bool,
    /// Resolves: the disposition and the conversation's summary.
    pub summaries: bool,
    /// Agents' internal notes.
    pub notes: bool,
    /// Every message in and out.
    pub messages: bool,
}

impl CrmSubscription {
    /// The defaults for `plugin_id`: calls, summaries and notes.
    pub fn defaults(plugin_id: &str) -> CrmSubscription {
        CrmSubscription {
            plugin_id: plugin_id.to_owned(),
            calls: CrmActivityKind::Call.default_on(),
            summaries: CrmActivityKind::Summary.default_on(),
            notes: CrmActivityKind::Note.default_on(),
            messages: CrmActivityKind::Message.default_on(),
        }
    }
}

/// What a CRM said about a contact.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CrmLink {
    /// The CRM plugin.
    pub plugin_id: String,
    /// The record's id in the CRM.
    pub external_id: String,
    /// The record in the CRM's own UI.
    pub url: Option<String>,
    /// The name the CRM holds.
    pub display_name: Option<String>,
    /// Key fields (`vip`, `owner`, `lifetime_value`, `account`…), a JSON object.
    pub attributes: Value,
    /// Identities the CRM holds for the person, `[{kind, value}]`: offered to agents,
    /// never linked on the CRM's word alone.
    pub identities: Value,
    /// When the CRM answered, ms since the epoch.
    pub fetched_at: i64,
}

/// State of a write-back row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CrmActivityStatus {
    /// Waiting for its next attempt.
    Pending,
    /// Claimed by a worker until its lease runs out.
    Sending,
    /// Written to the CRM.
    Done,
    /// Given up on; re-queueable.
    Dead,
}

impl CrmActivityStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CrmActivityStatus::Pending => "pending",
            CrmActivityStatus::Sending => "sending",
            CrmActivityStatus::Done => "done",
            CrmActivityStatus::Dead => "dead",
        }
    }
}

impl std::str::FromStr for CrmActivityStatus {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s {
            "pending" => CrmActivityStatus::Pending,
            "sending" => CrmActivityStatus::Sending,
            "done" => CrmActivityStatus::Done,
            "dead" => CrmActivityStatus::Dead,
            other => return Err(format!("unknown CRM activity status {other:?}")),
        })
    }
}

/// One activity to write to one CRM.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CrmActivityRow {
    /// `<plugin_id>:<event_id>`; also the idempotency key handed to the plugin.
    pub id: String,
    /// The CRM plugin.
    pub plugin_id: String,
    /// The timeline event it describes.
    pub event_id: String,
    /// What it is.
    pub kind: CrmActivityKind,
    /// Where it stands.
    pub status: CrmActivityStatus,
    /// Failed attempts so far.
    pub attempts: i64,
    /// When it is next due.
    pub next_attempt_at: i64,
    /// The last failure, readable.
    pub last_error: Option<String>,
    /// While sending: when the claiming worker's lease runs out.
    pub lease_until: Option<i64>,
    /// When it was queued.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}

macro_rules! activity_columns {
    () => {
        "id, plugin_id, event_id, kind, status, attempts, next_attempt_at, last_error, lease_until, \
         created_at, updated_at"
    };
}

impl CrmActivityRow {
    fn from_row(row: &sqlx::any::AnyRow) -> Result<CrmActivityRow> {
        Ok(CrmActivityRow {
            id: row.text("id")?,
            plugin_id: row.text("plugin_id")?,
            event_id: row.text("event_id")?,
            kind: row.parsed("kind")?,
            status: row.parsed("status")?,
            attempts: row.int("attempts")?,
            next_attempt_at: row.int("next_attempt_at")?,
            last_error: row.opt_text("last_error")?,
            lease_until: row.opt_int("lease_until")?,
            created_at: row.int("created_at")?,
            updated_at: row.int("updated_at")?,
        })
    }
}

/// The insert that queues one kind of activity: `$column` is its `crm_subscription`
/// switch, `$default` its value for a CRM nobody configured (keep in step with
/// [`CrmActivityKind::default_on`]).
macro_rules! queue_sql {
    ($column:literal, $default:literal) => {
        queue_sql!($column, $default, "DO NOTHING")
    };
    ($column:literal, $default:literal, $conflict:literal) => {
        concat!(
            "INSERT INTO crm_activity (id, plugin_id, event_id, kind, status, attempts,
                                       next_attempt_at, created_at, updated_at)
             SELECT p.id || ':' || $1, p.id, $1, $2, 'pending', 0, $3, $3, $3
             FROM plugin p LEFT JOIN crm_subscription s ON s.plugin_id = p.id
             WHERE p.kind = 'crm' AND p.enabled = 1 AND COALESCE(s.",
            $column,
            ", ",
            $default,
            ") = 1
             ON CONFLICT (id) ",
            $conflict
        )
    };
}

/// Queues `event`'s activity for every enabled CRM plugin that receives its kind,
/// inside the caller's transaction.
pub(crate) async fn queue_for_event(conn: &mut AnyConnection, event: &TimelineEvent) -> Result<()> {
    match CrmActivityKind::of_event(event) {
        Some(kind) => queue(conn, &event.id, kind, event.occurred_at).await,
        None => Ok(()),
    }
}

/// Queues activity `kind` about `event_id` for every enabled CRM plugin that receives
/// it; a row already queued for the same event and plugin is left as it is, except
/// that a pending call becomes due at `now_ms`.
pub(crate) async fn queue(
    conn: &mut AnyConnection,
    event_id: &str,
    kind: CrmActivityKind,
    now_ms: i64,
) -> Result<()> {
    if !CRM_SEEN.load(Ordering::Relaxed) {
        return Ok(());
    }
    let sql = match kind {
        // A call saved again (its disposition, after wrap-up) makes its pending
        // write-back due now: the worker holds answered calls for their disposition.
        CrmActivityKind::Call => queue_sql!(
            "calls",
            "1",
            "DO UPDATE SET next_attempt_at = excluded.next_attempt_at
             WHERE crm_activity.status = 'pending'"
        ),
        CrmActivityKind::Summary => queue_sql!("summaries", "1"),
        CrmActivityKind::Note => queue_sql!("notes", "1"),
        CrmActivityKind::Message => queue_sql!("messages", "0"),
    };
    sqlx::query(sql)
        .bind(event_id.to_owned())
        .bind(kind.as_str())
        .bind(now_ms)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

const CLAIM: (&str, &str) = claim_sql!("crm_activity", activity_columns!());

impl Store {
    /// Whether any CRM plugin is installed; also tells event recording to queue
    /// activities from now on (see [`CRM_SEEN`]).
    pub async fn crm_installed(&self) -> Result<bool> {
        let row =
            sqlx::query("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM plugin WHERE kind = 'crm'")
                .fetch_one(self.pool())
                .await?;
        let any = row.int("n")? > 0;
        if any {
            CRM_SEEN.store(true, Ordering::Relaxed);
        }
        Ok(any)
    }

    /// What each installed CRM plugin receives (the defaults where nobody chose).
    pub async fn crm_subscriptions(&self) -> Result<Vec<CrmSubscription>> {
        let rows = sqlx::query(
            "SELECT p.id AS plugin_id, s.calls, s.summaries, s.notes, s.messages
             FROM plugin p LEFT JOIN crm_subscription s ON s.plugin_id = p.id
             WHERE p.kind = 'crm' ORDER BY p.id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let id = row.text("plugin_id")?;
                let d = CrmSubscription::defaults(&id);
                let flag = |col: &str, default: bool| -> Result<bool> {
                    Ok(row.opt_int(col)?.map_or(default, |v| v != 0))
                };
                Ok(CrmSubscription {
                    calls: flag("calls", d.calls)?,
                    summaries: flag("summaries", d.summaries)?,
                    notes: flag("notes", d.notes)?,
                    messages: flag("messages", d.messages)?,
                    plugin_id: id,
                })
            })
            .collect()
    }

    /// Sets what a CRM plugin receives. [`StoreError::NotFound`] if no CRM plugin has
    /// that id.
    pub async fn set_crm_subscription(&self, s: &CrmSubscription) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let found = sqlx::query("SELECT id FROM plugin WHERE id = $1 AND kind = 'crm'")
            .bind(s.plugin_id.clone())
            .fetch_optional(&mut *tx)
            .await?;
        if found.is_none() {
            return Err(StoreError::not_found("CRM plugin", &s.plugin_id));
        }
        sqlx::query(
            "INSERT INTO crm_subscription (plugin_id, calls, summaries, notes, messages, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (plugin_id) DO UPDATE SET calls = excluded.calls,
                 summaries = excluded.summaries, notes = excluded.notes,
                 messages = excluded.messages, updated_at = excluded.updated_at",
        )
        .bind(s.plugin_id.clone())
        .bind(i64::from(s.calls))
        .bind(i64::from(s.summaries))
        .bind(i64::from(s.notes))
        .bind(i64::from(s.messages))
        .bind(wall_clock_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records what a CRM answered about `contact_id`, in one transaction: the link
    /// row; the CRM's name when the contact has none; the CRM's attributes merged
    /// into the contact's (the CRM's value wins for the keys it returns, so a `vip`
    /// set in the CRM reaches routing). Returns whether the contact itself changed.
    pub async fn save_crm_link(&self, contact_id: &str, link: &CrmLink) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query("SELECT display_name, attributes FROM contact WHERE id = $1")
            .bind(contact_id.to_owned())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::not_found("contact", contact_id))?;
        let name = row.opt_text("display_name")?;
        let mut attributes: Value = row.json("attributes")?;
        let before = attributes.clone();
        if let (Some(into), Some(from)) = (attributes.as_object_mut(), link.attributes.as_object())
        {
            for (k, v) in from {
                into.insert(k.clone(), v.clone());
            }
        }
        let new_name = match (&name, &link.display_name) {
            (None, Some(n)) if !n.trim().is_empty() => Some(n.trim().to_owned()),
            _ => None,
        };
        let changed = new_name.is_some() || attributes != before;
        if changed {
            sqlx::query(
                "UPDATE contact SET display_name = COALESCE(display_name, $1), attributes = $2,
                 updated_at = $3 WHERE id = $4",
            )
            .bind(new_name)
            .bind(attributes.to_string())
            .bind(link.fetched_at)
            .bind(contact_id.to_owned())
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO contact_crm (contact_id, plugin_id, external_id, url, display_name,
                                      attributes, identities, fetched_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (contact_id, plugin_id) DO UPDATE SET external_id = excluded.external_id,
                 url = excluded.url, display_name = excluded.display_name,
                 attributes = excluded.attributes, identities = excluded.identities,
                 fetched_at = excluded.fetched_at",
        )
        .bind(contact_id.to_owned())
        .bind(link.plugin_id.clone())
        .bind(link.external_id.clone())
        .bind(link.url.clone())
        .bind(link.display_name.clone())
        .bind(link.attributes.to_string())
        .bind(link.identities.to_string())
        .bind(link.fetched_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(changed)
    }

    /// What each CRM said about `contact_id`, by plugin id.
    pub async fn crm_links(&self, contact_id: &str) -> Result<Vec<CrmLink>> {
        let rows = sqlx::query(
            "SELECT plugin_id, external_id, url, display_name, attributes, identities, fetched_at
             FROM contact_crm WHERE contact_id = $1 ORDER BY plugin_id",
        )
        .bind(contact_id.to_owned())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(CrmLink {
                    plugin_id: row.text("plugin_id")?,
                    external_id: row.text("external_id")?,
                    url: row.opt_text("url")?,
                    display_name: row.opt_text("display_name")?,
                    attributes: row.json("attributes")?,
                    identities: row.json("identities")?,
                    fetched_at: row.int("fetched_at")?,
                })
            })
            .collect()
    }

    /// Claims up to `limit` due write-back rows for `lease_ms` (pending rows whose time
    /// has come and rows whose lease ran out); safe with several workers and nodes.
    pub async fn claim_crm_activities(
        &self,
        now_ms: i64,
        limit: u32,
        lease_ms: i64,
    ) -> Result<Vec<CrmActivityRow>> {
        claim_due(
            (self.pool(), self.backend()),
            CLAIM,
            (now_ms, limit, lease_ms),
            CrmActivityRow::from_row,
            |r| (r.next_attempt_at, r.id.as_str()),
        )
        .await
    }

    /// Moves a write-back row to `status` (`done`, `pending` for a retry at
    /// `next_at_ms` after `attempts` failures, or `dead`), with the last error.
    /// `lease` is the claim's `lease_until`: when the row's lease passed to another
    /// worker, nothing is written ([`StoreError::Conflict`]).
    pub async fn crm_activity_outcome(
        &self,
        id: &str,
        status: CrmActivityStatus,
        (attempts, next_at_ms): (i64, i64),
        error: Option<&str>,
        lease: Option<i64>,
    ) -> Result<CrmActivityRow> {
        let mut tx = self.begin_write().await?;
        activity(&mut tx, id).await?;
        hold_lease(&mut tx, hold_sql!("crm_activity"), id, lease).await?;
        sqlx::query(
            "UPDATE crm_activity SET status = $1, attempts = $2, next_attempt_at = $3,
             lease_until = NULL, last_error = $4, updated_at = $5 WHERE id = $6",
        )
        .bind(status.as_str())
        .bind(attempts)
        .bind(next_at_ms)
        .bind(error.map(str::to_owned))
        .bind(wall_clock_ms())
        .bind(id.to_owned())
        .execute(&mut *tx)
        .await?;
        let row = activity(&mut tx, id).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Requeues a dead write-back row for an immediate attempt with a fresh count.
    /// [`StoreError::Conflict`] if it is not dead.
    pub async fn crm_activity_requeue(&self, id: &str, now_ms: i64) -> Result<CrmActivityRow> {
        let mut tx = self.begin_write().await?;
        let row = activity(&mut tx, id).await?;
        if row.status != CrmActivityStatus::Dead {
            return Err(StoreError::Conflict(format!(
                "CRM activity {id} is {}, not dead",
                row.status.as_str()
            )));
        }
        sqlx::query(
            "UPDATE crm_activity SET status = 'pending', attempts = 0, next_attempt_at = $1,
             lease_until = NULL, updated_at = $1 WHERE id = $2",
        )
        .bind(now_ms)
        .bind(id.to_owned())
        .execute(&mut *tx)
        .await?;
        let row = activity(&mut tx, id).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Write-back rows, newest first; only `status` ones when given.
    pub async fn list_crm_activities(
        &self,
        status: Option<CrmActivityStatus>,
        limit: u32,
    ) -> Result<Vec<CrmActivityRow>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            activity_columns!(),
            " FROM crm_activity WHERE (CAST($1 AS TEXT) IS NULL OR status = $1)
              ORDER BY created_at DESC, id DESC LIMIT $2"
        ))
        .bind(status.map(|s| s.as_str()))
        .bind(sql_limit(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(CrmActivityRow::from_row).collect()
    }
}

async fn activity(conn: &mut AnyConnection, id: &str) -> Result<CrmActivityRow> {
    let row = sqlx::query(concat!(
        "SELECT ",
        activity_columns!(),
        " FROM crm_activity WHERE id = $1"
    ))
    .bind(id.to_owned())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::not_found("CRM activity", id))?;
    CrmActivityRow::from_row(&row)
}
