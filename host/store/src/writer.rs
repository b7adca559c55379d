//! The group-commit writer: tasks that apply queued batches in shared transactions.
//!
//! Each task (a *lane*) waits for a batch, then takes every batch already queued for
//! it (up to [`GROUP_COMMIT_MAX_BATCHES`]), applies each inside a single transaction,
//! commits once, and only then answers each caller. A failing batch is answered with its
//! own error; the others still commit. If beginning or committing the transaction
//! fails, every caller of that group gets [`StoreError::Unavailable`] and nothing of the
//! group was stored.
//!
//! SQLite has one lane: it has one writer anyway. PostgreSQL has [`PG_LANES`], so that
//! groups commit in parallel on several connections (the server merges their WAL
//! flushes). A batch goes to the lane of its [`Batch::lane_key`] — for ingest, the
//! sender's address — so one contact's batches stay in order in one lane. Lanes can
//! still meet on shared rows (a rollup hour, the display-id counter, a contact reached
//! by two addresses); PostgreSQL then makes one wait, or breaks a deadlock by failing
//! one statement, and a batch that failed that way, or on a unique key another
//! transaction committed meanwhile (two new contacts for one address), is applied again
//! in a fresh savepoint, where it reads what the other committed.
//!
//! The writer knows nothing of what a batch means: a batch is anything that can
//! [`Batch::apply`] itself on the connection it is handed, and the caller gets back what
//! that returned. [`Store::ingest`](crate::Store::ingest) is its one user (the `ingest`
//! module gives it webhook batches); the [`Store`](crate::Store) owns the [`Writer`]
//! without knowing what travels through it.
//!
//! This module must never answer a caller before the commit that contains its batch.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use sqlx::{Acquire, AnyConnection, AnyPool};
use tokio::sync::{mpsc, oneshot};

use crate::db::{Backend, begin_write};
use crate::error::{Result, StoreError};

/// Most batches committed in one transaction.
pub const GROUP_COMMIT_MAX_BATCHES: usize = 128;

/// Queue length before callers wait for room (back-pressure on webhook ingress).
const QUEUE_CAPACITY: usize = 4 * GROUP_COMMIT_MAX_BATCHES;

/// Writer lanes on PostgreSQL: each holds one of the pool's connections while its group
/// is applied, so they leave most of the pool to everything else.
pub const PG_LANES: usize = 4;

/// How many times the isolated pass applies again a batch that failed on a conflict
/// with another transaction.
const CONFLICT_RETRIES: usize = 3;

/// Counters of the ingest writer since the store was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct IngestStats {
    /// Batches handled (committed, or answered with an error).
    pub batches: u64,
    /// Transactions used for them; `batches / groups` is the mean group size.
    pub groups: u64,
    /// Groups whose transaction failed as a whole.
    pub failed_groups: u64,
}

#[derive(Debug, Default)]
struct Counters {
    batches: AtomicU64,
    groups: AtomicU64,
    failed_groups: AtomicU64,
}

/// One caller's unit of work, applied inside the transaction of its group.
pub(crate) trait Batch: Send + Sync + 'static {
    /// What the caller gets back once the group committed.
    type Outcome: Send + 'static;

    /// Applies the batch on `conn` without committing: the writer commits, or rolls the
    /// batch back to its savepoint if this fails. It may be called again, on a fresh
    /// transaction or savepoint, when another batch of the group failed or this one
    /// met a concurrent transaction.
    fn apply<'c>(
        &'c self,
        conn: &'c mut AnyConnection,
    ) -> impl Future<Output = Result<Self::Outcome>> + Send + 'c;

    /// Batches with the same key are applied in the order they were submitted, by one
    /// lane; batches that touch the same rows should share a key.
    fn lane_key(&self) -> u64;
}

/// Handle to the writer tasks. Dropping every handle lets the tasks finish.
#[derive(Debug)]
pub(crate) struct Writer {
    lanes: Vec<mpsc::Sender<Box<dyn Job>>>,
    counters: Arc<Counters>,
}

impl Writer {
    /// Starts the writer tasks on the current tokio runtime: one on SQLite,
    /// [`PG_LANES`] on PostgreSQL.
    pub(crate) fn spawn(pool: AnyPool, backend: Backend) -> Writer {
        let count = match backend {
            Backend::Sqlite => 1,
            Backend::Postgres => PG_LANES,
        };
        let counters = Arc::new(Counters::default());
        let lanes = (0..count)
            .map(|_| {
                let (queue, rx) = mpsc::channel(QUEUE_CAPACITY);
                tokio::spawn(run(pool.clone(), backend, rx, counters.clone()));
                queue
            })
            .collect();
        Writer { lanes, counters }
    }

    /// Queues `batch` on its lane (waiting for room if the queue is full) and returns
    /// its outcome once the transaction containing it committed.
    pub(crate) async fn submit<B: Batch>(&self, batch: B) -> Result<B::Outcome> {
        let lane = (batch.lane_key() % self.lanes.len() as u64) as usize;
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Pending {
            batch,
            outcome: None,
            reply,
        });
        self.lanes[lane]
            .send(job)
            .await
            .map_err(|_| StoreError::Unavailable("ingest writer stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("ingest writer stopped before answering".into()))?
    }

    /// How many lanes apply groups side by side.
    pub(crate) fn lanes(&self) -> usize {
        self.lanes.len()
    }

    /// How many batches and groups the writer handled so far.
    pub(crate) fn stats(&self) -> IngestStats {
        let counters = &self.counters;
        IngestStats {
            batches: counters.batches.load(Ordering::Relaxed),
            groups: counters.groups.load(Ordering::Relaxed),
            failed_groups: counters.failed_groups.load(Ordering::Relaxed),
        }
    }
}

/// A queued batch with its caller, as the writer task sees it: one queue carries every
/// kind of [`Batch`], so the task works on this object-safe view.
trait Job: Send {
    /// Applies the batch, keeps its outcome for [`Job::answer`], and says whether it
    /// applied.
    fn apply<'c>(
        &'c mut self,
        conn: &'c mut AnyConnection,
    ) -> Pin<Box<dyn Future<Output = bool> + Send + 'c>>;

    /// Answers the caller: with the kept outcome if the group committed, else with
    /// `group_error`.
    fn answer(self: Box<Self>, group_error: Option<&str>);

    /// Whether the latest `apply` failed on a conflict with another transaction, so
    /// that applying it again may succeed.
    fn met_a_conflict(&self) -> bool;
}

struct Pending<B: Batch> {
    batch: B,
    /// The outcome of the latest `apply`; only the pass that committed is reported.
    outcome: Option<Result<B::Outcome>>,
    reply: oneshot::Sender<Result<B::Outcome>>,
}

impl<B: Batch> Job for Pending<B> {
    fn apply<'c>(
        &'c mut self,
        conn: &'c mut AnyConnection,
    ) -> Pin<Box<dyn Future<Output = bool> + Send + 'c>> {
        Box::pin(async move {
            let outcome = self.batch.apply(conn).await;
            let applied = outcome.is_ok();
            self.outcome = Some(outcome);
            applied
        })
    }

    fn answer(self: Box<Self>, group_error: Option<&str>) {
        let answer = match (group_error, self.outcome) {
            (None, Some(outcome)) => outcome,
            (Some(message), _) => Err(StoreError::Unavailable(format!(
                "group commit failed: {message}"
            ))),
            // Cannot happen: a group commits only after every batch in it was applied.
            (None, None) => Err(StoreError::Unavailable(
                "the group committed without applying this batch".into(),
            )),
        };
        // The caller may have given up waiting; its batch is stored all the same and a
        // retry will be reported as a duplicate.
        let _ = self.reply.send(answer);
    }

    fn met_a_conflict(&self) -> bool {
        matches!(&self.outcome, Some(Err(e)) if e.is_conflict_with_another_transaction())
    }
}

async fn run(
    pool: AnyPool,
    backend: Backend,
    mut rx: mpsc::Receiver<Box<dyn Job>>,
    counters: Arc<Counters>,
) {
    let mut group = Vec::with_capacity(GROUP_COMMIT_MAX_BATCHES);
    while rx.recv_many(&mut group, GROUP_COMMIT_MAX_BATCHES).await > 0 {
        let mut jobs = std::mem::take(&mut group);
        let size = jobs.len();
        let committed = commit_group(&pool, backend, &mut jobs).await;
        counters.batches.fetch_add(size as u64, Ordering::Relaxed);
        counters.groups.fetch_add(1, Ordering::Relaxed);
        let group_error = match committed {
            Ok(()) => None,
            Err(e) => {
                counters.failed_groups.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, batches = size, "ingest group commit failed");
                Some(e.to_string())
            }
        };
        for job in jobs {
            job.answer(group_error.as_deref());
        }
        if pool.is_closed() {
            break;
        }
    }
}

/// Applies the jobs in one transaction; an error means nothing committed.
///
/// The common case — every batch applies — runs without savepoints, which
/// saves two round trips per batch. Only when a batch fails is the group
/// rolled back and applied again with one savepoint per batch, so that the
/// failing batch fails alone. Both paths apply the batches in the same order
/// inside one transaction, so they produce the same outcomes.
async fn commit_group(pool: &AnyPool, backend: Backend, jobs: &mut [Box<dyn Job>]) -> Result<()> {
    let mut tx = begin_write(pool, backend).await?;
    let mut failed = false;
    for job in jobs.iter_mut() {
        if !job.apply(&mut tx).await {
            failed = true;
            break;
        }
    }
    if !failed {
        tx.commit().await?;
        return Ok(());
    }
    tx.rollback().await?;
    commit_group_isolated(pool, backend, jobs).await
}

/// The slow path: one savepoint per batch, so a bad batch fails alone. On PostgreSQL
/// a batch that met another transaction (a deadlock, or a unique key it committed) is
/// applied again, a few times at most.
async fn commit_group_isolated(
    pool: &AnyPool,
    backend: Backend,
    jobs: &mut [Box<dyn Job>],
) -> Result<()> {
    let retries = match backend {
        Backend::Sqlite => 0,
        Backend::Postgres => CONFLICT_RETRIES,
    };
    let mut tx = begin_write(pool, backend).await?;
    for job in jobs.iter_mut() {
        for attempt in 0..=retries {
            let mut savepoint = tx.begin().await?;
            if job.apply(&mut savepoint).await {
                savepoint.commit().await?;
                break;
            }
            savepoint.rollback().await?;
            if attempt == retries || !job.met_a_conflict() {
                break;
            }
        }
    }
    tx.commit().await?;
    Ok(())
}
