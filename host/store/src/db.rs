//! Connection plumbing shared by every repository: backend detection, pool setup with
//! the SQLite pragmas, write transactions, row decoding helpers, ids and clocks.
//!
//! Nothing here knows about contacts or conversations.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::AnyConnection;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Connection, Executor, Row, Transaction};

use crate::error::{Result, StoreError};

/// Which database engine a [`Store`](crate::Store) talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// SQLite: one file, WAL journal; the embedded default.
    Sqlite,
    /// PostgreSQL: the production backend, shareable by several host nodes.
    Postgres,
}

impl Backend {
    /// `"sqlite"` or `"postgres"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    pub(crate) fn from_url(url: &str) -> Result<Backend> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            _ => Err(StoreError::Invalid(format!(
                "unsupported database URL scheme {scheme:?}: expected sqlite://… or postgres://…"
            ))),
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How long a SQLite connection waits for another writer before giving up.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 30_000;

/// Opens the pool. For SQLite the file (and its directory) is created if missing and
/// switched to WAL once, before the pool opens, because changing the journal mode
/// needs an exclusive lock that the busy timeout does not wait for.
pub(crate) async fn open_pool(url: &str, backend: Backend) -> Result<AnyPool> {
    sqlx::any::install_default_drivers();
    match backend {
        Backend::Postgres => Ok(AnyPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(30))
            .connect(url)
            .await?),
        Backend::Sqlite => {
            let (url, in_memory) = sqlite_url(url)?;
            let mut first = AnyConnection::connect(&url).await?;
            if !in_memory {
                first.execute("PRAGMA journal_mode = WAL").await?;
            }
            first.close().await?;
            Ok(AnyPoolOptions::new()
                // An in-memory database exists per connection: keep exactly one.
                .max_connections(if in_memory { 1 } else { 8 })
                .min_connections(if in_memory { 1 } else { 0 })
                .idle_timeout(if in_memory {
                    None
                } else {
                    Some(Duration::from_secs(600))
                })
                .max_lifetime(if in_memory {
                    None
                } else {
                    Some(Duration::from_secs(1800))
                })
                .acquire_timeout(Duration::from_secs(60))
                .after_connect(|conn, _meta| {
                    Box::pin(async move {
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute(sqlx::AssertSqlSafe(format!(
                            "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}"
                        )))
                        .await?;
                        Ok(())
                    })
                })
                .connect(&url)
                .await?)
        }
    }
}

/// Normalizes a SQLite URL: adds `mode=rwc` so a missing file is created, and creates
/// the parent directory. Returns the URL and whether it is an in-memory database.
fn sqlite_url(url: &str) -> Result<(String, bool)> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| StoreError::Invalid(format!("not a sqlite URL: {url}")))?;
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    let in_memory =
        path.is_empty() || path == ":memory:" || query.is_some_and(|q| q.contains("mode=memory"));
    if in_memory {
        return Ok((url.to_owned(), true));
    }
    let file = PathBuf::from(path);
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Invalid(format!(
                "cannot create database directory {}: {e}",
                dir.display()
            ))
        })?;
    }
    let has_mode = query.is_some_and(|q| q.split('&').any(|kv| kv.starts_with("mode=")));
    let url = match (query, has_mode) {
        (_, true) => url.to_owned(),
        (Some(_), false) => format!("{url}&mode=rwc"),
        (None, false) => format!("{url}?mode=rwc"),
    };
    Ok((url, false))
}

/// Starts a transaction that will write. On SQLite it takes the write lock up front
/// (`BEGIN IMMEDIATE`): a deferred transaction that reads and then writes can fail with
/// `SQLITE_BUSY` without waiting when another connection committed in between.
pub(crate) async fn begin_write(
    pool: &AnyPool,
    backend: Backend,
) -> Result<Transaction<'static, Any>> {
    Ok(match backend {
        Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await?,
        Backend::Postgres => pool.begin().await?,
    })
}

/// Serializes writers that must not interleave on PostgreSQL (SQLite's `BEGIN
/// IMMEDIATE` already serializes every writer). `key` names the resource.
pub(crate) async fn pg_xact_lock(
    conn: &mut AnyConnection,
    backend: Backend,
    key: &str,
) -> Result<()> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(key.to_owned())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Milliseconds since the Unix epoch, from the wall clock. Used only for bookkeeping
/// timestamps; every rule that depends on time takes `now_ms` from the caller.
pub(crate) fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// A new time-ordered id (UUID v7): ids created later in this process sort later,
/// which the timeline uses to order events that share a millisecond.
pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Typed column access with errors that name the column.
pub(crate) trait RowExt {
    fn text(&self, col: &str) -> Result<String>;
    fn opt_text(&self, col: &str) -> Result<Option<String>>;
    fn int(&self, col: &str) -> Result<i64>;
    fn opt_int(&self, col: &str) -> Result<Option<i64>>;
    fn blob(&self, col: &str) -> Result<Vec<u8>>;
    fn flag(&self, col: &str) -> Result<bool> {
        Ok(self.int(col)? != 0)
    }
    fn parsed<T: FromStr>(&self, col: &'static str) -> Result<T>
    where
        T::Err: std::fmt::Display,
    {
        self.text(col)?
            .parse()
            .map_err(|e| StoreError::corrupt(col, e))
    }
    fn opt_parsed<T: FromStr>(&self, col: &'static str) -> Result<Option<T>>
    where
        T::Err: std::fmt::Display,
    {
        self.opt_text(col)?
            .map(|s| s.parse().map_err(|e| StoreError::corrupt(col, e)))
            .transpose()
    }
    fn json<T: serde::de::DeserializeOwned>(&self, col: &'static str) -> Result<T> {
        serde_json::from_str(&self.text(col)?).map_err(|e| StoreError::corrupt(col, e))
    }
}

impl RowExt for AnyRow {
    fn text(&self, col: &str) -> Result<String> {
        Ok(self.try_get::<String, _>(col)?)
    }
    fn opt_text(&self, col: &str) -> Result<Option<String>> {
        Ok(self.try_get::<Option<String>, _>(col)?)
    }
    fn int(&self, col: &str) -> Result<i64> {
        Ok(self.try_get::<i64, _>(col)?)
    }
    fn opt_int(&self, col: &str) -> Result<Option<i64>> {
        Ok(self.try_get::<Option<i64>, _>(col)?)
    }
    fn blob(&self, col: &str) -> Result<Vec<u8>> {
        Ok(self.try_get::<Vec<u8>, _>(col)?)
    }
}

/// `limit` as a SQL bind value, clamped to something a page can hold.
pub(crate) fn sql_limit(limit: u32) -> i64 {
    i64::from(limit.clamp(1, 10_000))
}

/// Text as the databases can store it: PostgreSQL rejects NUL in TEXT, so NUL becomes
/// U+FFFD on both backends (a webhook must never fail forever over one byte).
pub(crate) fn storable(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}

/// The `(SQLite, PostgreSQL)` statements that claim due rows of a work-queue table
/// (the outbox, CRM write-back): pending rows whose `next_attempt_at` has come and
/// `sending` rows whose lease ran out become `sending` until `$2`, oldest due first,
/// at most `$3`, returning `$columns`; `$1` is now.
///
/// On PostgreSQL rows locked by another worker's claim are skipped rather than waited
/// for; the locking CTE runs exactly once (a plain `IN (SELECT … LIMIT n FOR UPDATE
/// SKIP LOCKED)` may be rescanned by the planner and claim more than `n` rows), and
/// the outer condition is re-checked against each row's latest version.
macro_rules! claim_sql {
    ($table:literal, $columns:expr) => {
        (
            concat!(
                "UPDATE ",
                $table,
                " SET status = 'sending', lease_until = $2, updated_at = $1
                 WHERE id IN (
                    SELECT id FROM ",
                $table,
                "
                    WHERE (status = 'pending' AND next_attempt_at <= $1)
                       OR (status = 'sending' AND lease_until <= $1)
                    ORDER BY next_attempt_at, id LIMIT $3)
                 RETURNING ",
                $columns
            ),
            concat!(
                "WITH due AS (
                    SELECT id AS due_id FROM ",
                $table,
                "
                    WHERE (status = 'pending' AND next_attempt_at <= $1)
                       OR (status = 'sending' AND lease_until <= $1)
                    ORDER BY next_attempt_at, id LIMIT $3
                    FOR UPDATE SKIP LOCKED)
                 UPDATE ",
                $table,
                " SET status = 'sending', lease_until = $2, updated_at = $1
                 FROM due
                 WHERE ",
                $table,
                ".id = due.due_id
                   AND ((",
                $table,
                ".status = 'pending' AND ",
                $table,
                ".next_attempt_at <= $1)
                        OR (",
                $table,
                ".status = 'sending' AND ",
                $table,
                ".lease_until <= $1))
                 RETURNING ",
                $columns
            ),
        )
    };
}
pub(crate) use claim_sql;

/// The statement [`hold_lease`] runs on `$table`: locks row `$1` for the
/// transaction if its lease is still `$2`.
macro_rules! hold_sql {
    ($table:literal) => {
        concat!(
            "UPDATE ",
            $table,
            " SET updated_at = updated_at WHERE id = $1 AND lease_until = $2"
        )
    };
}
pub(crate) use hold_sql;

/// Holds a claimed row for the worker whose claim set its lease to `lease` (none:
/// a row finished without a claim): locks it for the transaction, and refuses with
/// [`StoreError::Conflict`] when the lease passed to another worker meanwhile (the
/// claim expired and was taken again), so a stale worker never overwrites what the
/// new one records. `sql` is [`hold_sql!`] of the row's table.
pub(crate) async fn hold_lease(
    conn: &mut AnyConnection,
    sql: &'static str,
    id: &str,
    lease: Option<i64>,
) -> Result<()> {
    let Some(lease) = lease else {
        return Ok(());
    };
    let held = sqlx::query(sql)
        .bind(id.to_owned())
        .bind(lease)
        .execute(&mut *conn)
        .await?;
    if held.rows_affected() == 0 {
        return Err(StoreError::Conflict(format!(
            "row {id}: its lease passed to another worker"
        )));
    }
    Ok(())
}

/// Runs a [`claim_sql!`] pair in one write transaction and reads the claimed rows
/// with `from_row`, oldest due first (`due` gives each row's `(next_attempt_at, id)`):
/// the rows claimed at `now_ms` for `lease_ms`, at most `limit`.
pub(crate) async fn claim_due<T>(
    (pool, backend): (&AnyPool, Backend),
    sql: (&'static str, &'static str),
    (now_ms, limit, lease_ms): (i64, u32, i64),
    from_row: fn(&AnyRow) -> Result<T>,
    due: fn(&T) -> (i64, &str),
) -> Result<Vec<T>> {
    let sql = match backend {
        Backend::Sqlite => sql.0,
        Backend::Postgres => sql.1,
    };
    let mut tx = begin_write(pool, backend).await?;
    let rows = sqlx::query(sql)
        .bind(now_ms)
        .bind(now_ms.saturating_add(lease_ms.max(1)))
        .bind(sql_limit(limit))
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    let mut claimed = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
    claimed.sort_by(|a, b| due(a).cmp(&due(b)));
    Ok(claimed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_from_url() {
        assert_eq!(Backend::from_url("sqlite://x.db").unwrap(), Backend::Sqlite);
        assert_eq!(
            Backend::from_url("sqlite::memory:").unwrap(),
            Backend::Sqlite
        );
        assert_eq!(
            Backend::from_url("postgres://u@h/db").unwrap(),
            Backend::Postgres
        );
        assert_eq!(
            Backend::from_url("postgresql://u@h/db").unwrap(),
            Backend::Postgres
        );
        assert!(Backend::from_url("mysql://u@h/db").is_err());
    }

    #[test]
    fn sqlite_urls_create_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/sb.db");
        let (url, mem) = sqlite_url(&format!("sqlite://{}", path.display())).unwrap();
        assert!(!mem);
        assert!(url.ends_with("?mode=rwc"), "{url}");
        assert!(path.parent().unwrap().is_dir());
        let (url, _) = sqlite_url("sqlite://x.db?mode=ro").unwrap();
        assert_eq!(url, "sqlite://x.db?mode=ro");
        let (url, _) = sqlite_url("sqlite://x.db?cache=shared").unwrap();
        assert_eq!(url, "sqlite://x.db?cache=shared&mode=rwc");
        assert!(sqlite_url("sqlite::memory:").unwrap().1);
    }
}
