//! The group-commit writer: one task that applies queued batches in shared transactions.
//!
//! It waits for a batch, then takes every batch already queued (up to
//! [`GROUP_COMMIT_MAX_BATCHES`]), applies each inside a single transaction, commits once,
//! and only then answers each caller. A failing batch is answered with its own error; the
//! others still commit. If beginning or committing the transaction fails, every caller
//! of that group gets [`StoreError::Unavailable`] and nothing of the group was stored.
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
    /// transaction, when another batch of the group failed.
    fn apply<'c>(
        &'c self,
        conn: &'c mut AnyConnection,
    ) -> impl Future<Output = Result<Self::Outcome>> + Send + 'c;
}

/// Handle to the writer task. Dropping every handle lets the task finish.
#[derive(Debug)]
pub(crate) struct Writer {
    queue: mpsc::Sender<Box<dyn Job>>,
    counters: Arc<Counters>,
}

impl Writer {
    /// Starts the writer task on the current tokio runtime.
    pub(crate) fn spawn(pool: AnyPool, backend: Backend) -> Writer {
        let (queue, rx) = mpsc::channel(QUEUE_CAPACITY);
        let counters = Arc::new(Counters::default());
        tokio::spawn(run(pool, backend, rx, counters.clone()));
        Writer { queue, counters }
    }

    /// Queues `batch` (waiting for room if the queue is full) and returns its outcome
    /// once the transaction containing it committed.
    pub(crate) async fn submit<B: Batch>(&self, batch: B) -> Result<B::Outcome> {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Pending {
            batch,
            outcome: None,
            reply,
        });
        self.queue
            .send(job)
            .await
            .map_err(|_| StoreError::Unavailable("ingest writer stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("ingest writer stopped before answering".into()))?
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

/// The slow path: one savepoint per batch, so a bad batch fails alone.
async fn commit_group_isolated(
    pool: &AnyPool,
    backend: Backend,
    jobs: &mut [Box<dyn Job>],
) -> Result<()> {
    let mut tx = begin_write(pool, backend).await?;
    for job in jobs.iter_mut() {
        let mut savepoint = tx.begin().await?;
        if job.apply(&mut savepoint).await {
            savepoint.commit().await?;
        } else {
            savepoint.rollback().await?;
        }
    }
    tx.commit().await?;
    Ok(())
}
