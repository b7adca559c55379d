//! Attachments: the files of timeline events, and their copy into the blob store.
//!
//! An inbound message's files are recorded `pending` in the same transaction as the
//! message (so a webhook is answered only once they are durable facts), and a worker
//! copies each into the blob store through its connector: claimed under a lease,
//! retried with backoff, `failed` after the last attempt with the reason kept. An
//! agent's upload is `stored` at once and has no event until a reply takes it. The
//! event's `attachments` JSON mirrors each file's status, so timelines need no join.
//! The bytes live in the blob store (`blob` is their SHA-256); this module stores
//! only facts about them.

use serde::Serialize;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use switchboard_core::{Attachment, Direction};

use crate::Store;
use crate::db::{Backend, RowExt, new_id, sql_limit};
use crate::error::{Result, StoreError};

macro_rules! attachment_columns {
    () => {
        "id, event_id, plugin_id, direction, source, content_type, filename, size, content_id, \
         blob, status, attempts, next_attempt_at, lease_until, last_error, uploaded_by, \
         created_at, updated_at"
    };
}

/// `pending`: waiting to be copied; `stored`: in the blob store; `failed`: given up.
pub const PENDING: &str = "pending";
/// See [`PENDING`].
pub const STORED: &str = "stored";
/// See [`PENDING`].
pub const FAILED: &str = "failed";

/// One file as the host keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttachmentRow {
    /// Attachment id.
    pub id: String,
    /// The timeline event it belongs to (none for an upload not yet sent).
    pub event_id: Option<String>,
    /// The connector it came from or goes out through.
    pub plugin_id: Option<String>,
    /// In (from a customer) or out (from an agent).
    pub direction: Direction,
    /// Inbound: the provider's reference the connector understands. Out: `upload`.
    #[serde(skip)]
    pub source: String,
    /// Content type (sniffed from the bytes once stored).
    pub content_type: Option<String>,
    /// File name.
    pub filename: Option<String>,
    /// Size in bytes.
    pub size: Option<i64>,
    /// `Content-ID` of an inline part.
    pub content_id: Option<String>,
    /// SHA-256 (hex) of the bytes in the blob store, once stored.
    pub blob: Option<String>,
    /// `pending`, `stored` or `failed`.
    pub status: String,
    /// Failed copy attempts so far.
    pub attempts: u32,
    /// When the next copy attempt is due.
    pub next_attempt_at: i64,
    /// While copying: when the claiming worker's lease runs out.
    pub lease_until: Option<i64>,
    /// Why the last copy failed.
    pub last_error: Option<String>,
    /// The agent who uploaded it.
    pub uploaded_by: Option<String>,
    /// Created, ms since the epoch.
    pub created_at: i64,
    /// Last change, ms since the epoch.
    pub updated_at: i64,
}

impl AttachmentRow {
    fn from_row(row: &AnyRow) -> Result<AttachmentRow> {
        Ok(AttachmentRow {
            id: row.text("id")?,
            event_id: row.opt_text("event_id")?,
            plugin_id: row.opt_text("plugin_id")?,
            direction: row.parsed("direction")?,
            source: row.text("source")?,
            content_type: row.opt_text("content_type")?,
            filename: row.opt_text("filename")?,
            size: row.opt_int("size")?,
            content_id: row.opt_text("content_id")?,
            blob: row.opt_text("blob")?,
            status: row.text("status")?,
            attempts: u32::try_from(row.int("attempts")?).unwrap_or(u32::MAX),
            next_attempt_at: row.int("next_attempt_at")?,
            lease_until: row.opt_int("lease_until")?,
            last_error: row.opt_text("last_error")?,
            uploaded_by: row.opt_text("uploaded_by")?,
            created_at: row.int("created_at")?,
            updated_at: row.int("updated_at")?,
        })
    }

    /// The attachment as the timeline shows it.
    pub fn as_timeline(&self) -> Attachment {
        Attachment {
            id: Some(self.id.clone()),
            url: attachment_url(&self.id),
            status: Some(self.status.clone()),
            error: if self.status == FAILED {
                self.last_error.clone()
            } else {
                None
            },
            content_type: self.content_type.clone(),
            filename: self.filename.clone(),
            size: self.size.and_then(|s| u64::try_from(s).ok()),
        }
    }
}

/// The host URL an agent fetches an attachment from.
pub fn attachment_url(id: &str) -> String {
    format!("/api/v1/attachments/{id}")
}

/// A file an inbound message carries.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InboundAttachment {
    /// The provider's reference (URL or media id) the connector understands.
    pub source: String,
    /// Content type as the provider gave it.
    pub content_type: Option<String>,
    /// File name.
    pub filename: Option<String>,
    /// Size in bytes as the provider gave it.
    pub size: Option<u64>,
    /// `Content-ID` of an inline part.
    pub content_id: Option<String>,
    /// Already in the blob store (the connector handed over the bytes): its key
    /// and size.
    pub stored: Option<(String, u64)>,
}

/// Records an inbound message's files for `event_id` and returns them as the
/// timeline shows them.
pub(crate) async fn record_inbound(
    conn: &mut AnyConnection,
    event_id: &str,
    plugin_id: &str,
    files: &[InboundAttachment],
    now_ms: i64,
) -> Result<Vec<Attachment>> {
    let mut shown = Vec::with_capacity(files.len());
    for f in files {
        let row = AttachmentRow {
            id: new_id(),
            event_id: Some(event_id.to_owned()),
            plugin_id: Some(plugin_id.to_owned()),
            direction: Direction::In,
            source: crate::db::storable(&f.source),
            content_type: f.content_type.as_deref().map(crate::db::storable),
            filename: f.filename.as_deref().map(crate::db::storable),
            size: f
                .stored
                .as_ref()
                .map(|(_, size)| *size)
                .or(f.size)
                .and_then(|s| i64::try_from(s).ok()),
            content_id: f.content_id.as_deref().map(crate::db::storable),
            blob: f.stored.as_ref().map(|(key, _)| key.clone()),
            status: if f.stored.is_some() { STORED } else { PENDING }.into(),
            attempts: 0,
            next_attempt_at: now_ms,
            lease_until: None,
            last_error: None,
            uploaded_by: None,
            created_at: now_ms,
            updated_at: now_ms,
        };
        insert(conn, &row).await?;
        shown.push(row.as_timeline());
    }
    Ok(shown)
}

async fn insert(conn: &mut AnyConnection, row: &AttachmentRow) -> Result<()> {
    sqlx::query(concat!(
        "INSERT INTO attachment (",
        attachment_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
    ))
    .bind(row.id.clone())
    .bind(row.event_id.clone())
    .bind(row.plugin_id.clone())
    .bind(row.direction.as_str())
    .bind(row.source.clone())
    .bind(row.content_type.clone())
    .bind(row.filename.clone())
    .bind(row.size)
    .bind(row.content_id.clone())
    .bind(row.blob.clone())
    .bind(row.status.clone())
    .bind(i64::from(row.attempts))
    .bind(row.next_attempt_at)
    .bind(row.lease_until)
    .bind(row.last_error.clone())
    .bind(row.uploaded_by.clone())
    .bind(row.created_at)
    .bind(row.updated_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn get(conn: &mut AnyConnection, id: &str) -> Result<AttachmentRow> {
    let row = sqlx::query(concat!(
        "SELECT ",
        attachment_columns!(),
        " FROM attachment WHERE id = $1"
    ))
    .bind(id.to_owned())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::not_found("attachment", id))?;
    AttachmentRow::from_row(&row)
}

/// Rewrites the event's `attachments` JSON entry for `row`.
async fn mirror_on_event(conn: &mut AnyConnection, row: &AttachmentRow) -> Result<()> {
    let Some(event_id) = &row.event_id else {
        return Ok(());
    };
    let current = sqlx::query("SELECT attachments FROM timeline_event WHERE id = $1")
        .bind(event_id.clone())
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::not_found("timeline event", event_id))?
        .text("attachments")?;
    let mut list: Vec<Attachment> = serde_json::from_str(&current)
        .map_err(|e| StoreError::Invalid(format!("event {event_id} attachments: {e}")))?;
    for entry in list.iter_mut().filter(|a| a.id.as_deref() == Some(&row.id)) {
        *entry = row.as_timeline();
    }
    let text = serde_json::to_string(&list).map_err(|e| StoreError::Invalid(e.to_string()))?;
    sqlx::query("UPDATE timeline_event SET attachments = $1 WHERE id = $2")
        .bind(text)
        .bind(event_id.clone())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Binds uploads to an outbound event: each must be an upload by `agent_id`
/// (or any upload when `agent_id` is none) not yet sent. Returns them as the
/// timeline shows them.
pub(crate) async fn bind_uploads(
    conn: &mut AnyConnection,
    event_id: &str,
    plugin_id: &str,
    ids: &[String],
    agent_id: Option<&str>,
) -> Result<Vec<Attachment>> {
    let mut shown = Vec::with_capacity(ids.len());
    for id in ids {
        let row = get(conn, id).await?;
        if row.direction != Direction::Out || row.event_id.is_some() {
            return Err(StoreError::Invalid(format!(
                "attachment {id} is not an unsent upload"
            )));
        }
        if agent_id.is_some() && row.uploaded_by.as_deref() != agent_id {
            return Err(StoreError::Invalid(format!(
                "attachment {id} was uploaded by someone else"
            )));
        }
        sqlx::query(
            "UPDATE attachment SET event_id = $1, plugin_id = $2 WHERE id = $3 AND event_id IS NULL",
        )
        .bind(event_id.to_owned())
        .bind(plugin_id.to_owned())
        .bind(id.clone())
        .execute(&mut *conn)
        .await?;
        shown.push(row.as_timeline());
    }
    Ok(shown)
}

const CLAIM_SQLITE: &str = concat!(
    "UPDATE attachment SET lease_until = $2, updated_at = $1
     WHERE id IN (
        SELECT id FROM attachment
        WHERE status = 'pending' AND next_attempt_at <= $1 AND (lease_until IS NULL OR lease_until <= $1)
        ORDER BY next_attempt_at, id LIMIT $3)
     RETURNING ",
    attachment_columns!()
);

const CLAIM_POSTGRES: &str = concat!(
    "WITH due AS (
        SELECT id AS due_id FROM attachment
        WHERE status = 'pending' AND next_attempt_at <= $1 AND (lease_until IS NULL OR lease_until <= $1)
        ORDER BY next_attempt_at, id LIMIT $3
        FOR UPDATE SKIP LOCKED)
     UPDATE attachment SET lease_until = $2, updated_at = $1
     FROM due
     WHERE attachment.id = due.due_id AND attachment.status = 'pending'
     RETURNING ",
    attachment_columns!()
);

impl Store {
    /// One attachment.
    pub async fn attachment(&self, id: &str) -> Result<AttachmentRow> {
        let mut conn = self.pool().acquire().await?;
        get(&mut conn, id).await
    }

    /// Records an agent's upload, already in the blob store.
    pub async fn create_upload(
        &self,
        agent_id: &str,
        blob: &str,
        size: u64,
        content_type: &str,
        filename: Option<&str>,
        now_ms: i64,
    ) -> Result<AttachmentRow> {
        let row = AttachmentRow {
            id: new_id(),
            event_id: None,
            plugin_id: None,
            direction: Direction::Out,
            source: "upload".into(),
            content_type: Some(content_type.to_owned()),
            filename: filename.map(crate::db::storable),
            size: i64::try_from(size).ok(),
            content_id: None,
            blob: Some(blob.to_owned()),
            status: STORED.into(),
            attempts: 0,
            next_attempt_at: now_ms,
            lease_until: None,
            last_error: None,
            uploaded_by: Some(agent_id.to_owned()),
            created_at: now_ms,
            updated_at: now_ms,
        };
        let mut tx = self.begin_write().await?;
        insert(&mut tx, &row).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Claims up to `limit` pending inbound files that are due, for `lease_ms`.
    /// Safe with several workers and nodes.
    pub async fn claim_attachments(
        &self,
        now_ms: i64,
        limit: u32,
        lease_ms: i64,
    ) -> Result<Vec<AttachmentRow>> {
        let sql = match self.backend() {
            Backend::Sqlite => CLAIM_SQLITE,
            Backend::Postgres => CLAIM_POSTGRES,
        };
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(sql)
            .bind(now_ms)
            .bind(now_ms + lease_ms)
            .bind(sql_limit(limit))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        rows.iter().map(AttachmentRow::from_row).collect()
    }

    /// A file was copied into the blob store.
    pub async fn attachment_stored(
        &self,
        id: &str,
        blob: &str,
        size: u64,
        content_type: &str,
        now_ms: i64,
    ) -> Result<AttachmentRow> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE attachment SET status = 'stored', blob = $1, size = $2, content_type = $3,
             lease_until = NULL, last_error = NULL, updated_at = $4 WHERE id = $5",
        )
        .bind(blob.to_owned())
        .bind(i64::try_from(size).unwrap_or(i64::MAX))
        .bind(content_type.to_owned())
        .bind(now_ms)
        .bind(id.to_owned())
        .execute(&mut *tx)
        .await?;
        let row = get(&mut tx, id).await?;
        mirror_on_event(&mut tx, &row).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// A copy failed: try again at `next_attempt_at`, or give up (`next_attempt_at`
    /// none) and keep `error` for the agent.
    pub async fn attachment_failed(
        &self,
        id: &str,
        error: &str,
        next_attempt_at: Option<i64>,
        now_ms: i64,
    ) -> Result<AttachmentRow> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE attachment SET status = $1, attempts = attempts + 1, next_attempt_at = $2,
             lease_until = NULL, last_error = $3, updated_at = $4 WHERE id = $5",
        )
        .bind(if next_attempt_at.is_some() {
            PENDING
        } else {
            FAILED
        })
        .bind(next_attempt_at.unwrap_or(now_ms))
        .bind(crate::db::storable(error))
        .bind(now_ms)
        .bind(id.to_owned())
        .execute(&mut *tx)
        .await?;
        let row = get(&mut tx, id).await?;
        if row.status == FAILED {
            mirror_on_event(&mut tx, &row).await?;
        }
        tx.commit().await?;
        Ok(row)
    }

    /// The files of an outbound event, in the order the agent attached them.
    pub async fn event_attachments(&self, event_id: &str) -> Result<Vec<AttachmentRow>> {
        let mut conn = self.pool().acquire().await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            attachment_columns!(),
            " FROM attachment WHERE event_id = $1 ORDER BY created_at, id"
        ))
        .bind(event_id.to_owned())
        .fetch_all(&mut *conn)
        .await?;
        rows.iter().map(AttachmentRow::from_row).collect()
    }

    /// When the customer last wrote on `plugin_id` in this conversation: the
    /// provider's timestamp, or the receipt time when it gave none. The messaging
    /// window runs from it.
    pub async fn last_inbound_at(
        &self,
        conversation_id: &str,
        plugin_id: &str,
    ) -> Result<Option<i64>> {
        let mut conn = self.pool().acquire().await?;
        let row = sqlx::query(
            "SELECT MAX(COALESCE(sent_at, occurred_at)) AS at FROM timeline_event
             WHERE conversation_id = $1 AND plugin_id = $2 AND direction = 'in' AND kind = 'message'",
        )
        .bind(conversation_id.to_owned())
        .bind(plugin_id.to_owned())
        .fetch_one(&mut *conn)
        .await?;
        row.opt_int("at")
    }

    /// Where a polling connector's next poll starts.
    pub async fn poll_cursor(&self, plugin_id: &str) -> Result<Option<String>> {
        let mut conn = self.pool().acquire().await?;
        let row = sqlx::query("SELECT cursor FROM plugin_poll WHERE plugin_id = $1")
            .bind(plugin_id.to_owned())
            .fetch_optional(&mut *conn)
            .await?;
        Ok(match row {
            Some(r) => r.opt_text("cursor")?,
            None => None,
        })
    }

    /// Records a poll: the new cursor (kept only when given) and the error, if any.
    pub async fn record_poll(
        &self,
        plugin_id: &str,
        cursor: Option<&str>,
        error: Option<&str>,
        now_ms: i64,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO plugin_poll (plugin_id, cursor, polled_at, last_error) VALUES ($1, $2, $3, $4)
             ON CONFLICT (plugin_id) DO UPDATE SET cursor = COALESCE(excluded.cursor, plugin_poll.cursor),
             polled_at = excluded.polled_at, last_error = excluded.last_error",
        )
        .bind(plugin_id.to_owned())
        .bind(cursor.map(str::to_owned))
        .bind(now_ms)
        .bind(error.map(str::to_owned))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
