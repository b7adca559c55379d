//! The [`Store`] handle: the pool, the engine behind it, the key that seals plugin
//! secrets, and the ingest writer, shared by every clone.
//!
//! This module owns opening and closing the store and nothing that reads or writes a
//! row: each repository module adds its own methods to [`Store`]. It must never depend
//! on those modules — they all depend on it — so it holds the [`Writer`] without knowing
//! what a batch is.

use std::sync::Arc;

use sqlx::AnyPool;

use crate::crypto::SecretBox;
use crate::db::{self, Backend};
use crate::error::Result;
use crate::migrate;
use crate::writer::{IngestStats, Writer};

/// Handle to the database. Cheap to clone; all clones share one pool and one ingest
/// writer.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    pool: AnyPool,
    backend: Backend,
    secrets: SecretBox,
    writer: Writer,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.inner.backend)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connects to `url` (`sqlite://path/file.db`, `sqlite::memory:`,
    /// `postgres://user@host/db`), applies pending migrations and starts the ingest
    /// writer. `secret_key` encrypts plugin secrets at rest; losing it makes stored
    /// secrets unreadable.
    ///
    /// Must be called inside a tokio runtime; the writer task lives in it.
    pub async fn connect(url: &str, secret_key: [u8; 32]) -> Result<Store> {
        let backend = Backend::from_url(url)?;
        let pool = db::open_pool(url, backend).await?;
        migrate::run(&pool, backend).await?;
        crate::reports::rollup::fill_if_empty(&pool, backend).await?;
        crate::reports::agent_rollup::fill_if_empty(&pool, backend).await?;
        let writer = Writer::spawn(pool.clone(), backend);
        Ok(Store {
            inner: Arc::new(Inner {
                pool,
                backend,
                secrets: SecretBox::new(secret_key),
                writer,
            }),
        })
    }

    /// The engine behind this store.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// Closes the pool: waits for checked-out connections to come back, then closes
    /// them. Later calls on any clone fail. Ingest batches already queued are answered
    /// with [`StoreError::Unavailable`](crate::StoreError::Unavailable) or
    /// [`StoreError::Database`](crate::StoreError::Database).
    pub async fn close(&self) {
        self.inner.pool.close().await;
    }

    /// How many ingest batches and group transactions the writer handled so far.
    pub fn ingest_stats(&self) -> IngestStats {
        self.inner.writer.stats()
    }

    /// How many group transactions the writer can have open at once: 1 on SQLite,
    /// [`PG_LANES`](crate::PG_LANES) on PostgreSQL.
    pub fn ingest_lanes(&self) -> usize {
        self.inner.writer.lanes()
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.inner.pool
    }

    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        db::begin_write(&self.inner.pool, self.inner.backend).await
    }

    /// A key for `purpose` (such as signing media URLs), derived from the store's
    /// secret key: the same on every node and across restarts.
    pub fn derived_key(&self, purpose: &str) -> [u8; 32] {
        self.inner.secrets.derive(purpose)
    }

    pub(crate) fn secrets(&self) -> &SecretBox {
        &self.inner.secrets
    }

    pub(crate) fn writer(&self) -> &Writer {
        &self.inner.writer
    }
}
