//! The group-commit writer behind [`Store::ingest`](crate::Store::ingest).
//!
//! One task owns all ingest writes. It waits for a batch, then takes every batch
//! already queued (up to [`GROUP_COMMIT_MAX_BATCHES`]), applies each inside its own
//! savepoint of a single transaction, commits once, and only then answers each caller.
//! A failing batch rolls back to its savepoint and is answered with its own error; the
//! others still commit. If beginning or committing the transaction fails, every caller
//! of that group gets [`StoreError::Unavailable`] and nothing of the group was stored.
//!
//! This module must never answer a caller before the commit that contains its batch.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use sqlx::{Acquire, AnyPool};
use tokio::sync::{mpsc, oneshot};

use crate::db::{Backend, begin_write};
use crate::error::{Result, StoreError};
use crate::ingest::{IngestBatch, IngestOutcome, apply_batch};

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
pub(crate) struct Counters {
    batches: AtomicU64,
    groups: AtomicU64,
    failed_groups: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> IngestStats {
        IngestStats {
            batches: self.batches.load(Ordering::Relaxed),
            groups: self.groups.load(Ordering::Relaxed),
            failed_groups: self.failed_groups.load(Ordering::Relaxed),
        }
    }
}

pub(crate) struct Job {
    batch: IngestBatch,
    reply: oneshot::Sender<Result<Vec<IngestOutcome>>>,
}

pub(crate) fn spawn(pool: AnyPool, backend: Backend, counters: Arc<Counters>) -> mpsc::Sender<Job> {
    let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
    tokio::spawn(run(pool, backend, rx, counters));
    tx
}

pub(crate) async fn submit(
    queue: &mpsc::Sender<Job>,
    batch: IngestBatch,
) -> Result<Vec<IngestOutcome>> {
    let (reply, answer) = oneshot::channel();
    queue
        .send(Job { batch, reply })
        .await
        .map_err(|_| StoreError::Unavailable("ingest writer stopped".into()))?;
    answer
        .await
        .map_err(|_| StoreError::Unavailable("ingest writer stopped before answering".into()))?
}

async fn run(
    pool: AnyPool,
    backend: Backend,
    mut rx: mpsc::Receiver<Job>,
    counters: Arc<Counters>,
) {
    let mut group = Vec::with_capacity(GROUP_COMMIT_MAX_BATCHES);
    while rx.recv_many(&mut group, GROUP_COMMIT_MAX_BATCHES).await > 0 {
        let jobs = std::mem::take(&mut group);
        let size = jobs.len();
        let batches: Vec<&IngestBatch> = jobs.iter().map(|j| &j.batch).collect();
        let outcome = commit_group(&pool, backend, &batches).await;
        counters.batches.fetch_add(size as u64, Ordering::Relaxed);
        counters.groups.fetch_add(1, Ordering::Relaxed);
        let answers = match outcome {
            Ok(results) => results,
            Err(e) => {
                counters.failed_groups.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, batches = size, "ingest group commit failed");
                let message = e.to_string();
                (0..size)
                    .map(|_| {
                        Err(StoreError::Unavailable(format!(
                            "group commit failed: {message}"
                        )))
                    })
                    .collect()
            }
        };
        drop(batches);
        for (job, answer) in jobs.into_iter().zip(answers) {
            // The caller may have given up waiting; its batch is stored all the same
            // and a retry will be reported as a duplicate.
            let _ = job.reply.send(answer);
        }
        if pool.is_closed() {
            break;
        }
    }
}

/// Applies the batches in one transaction; the outer error means nothing committed.
///
/// The common case — every batch applies — runs without savepoints, which
/// saves two round trips per batch. Only when a batch fails is the group
/// rolled back and applied again with one savepoint per batch, so that the
/// failing batch fails alone. Both paths apply the batches in the same order
/// inside one transaction, so they produce the same outcomes.
async fn commit_group(
    pool: &AnyPool,
    backend: Backend,
    batches: &[&IngestBatch],
) -> Result<Vec<Result<Vec<IngestOutcome>>>> {
    let mut tx = begin_write(pool, backend).await?;
    let mut results = Vec::with_capacity(batches.len());
    let mut failed = false;
    for batch in batches {
        match apply_batch(&mut tx, batch).await {
            Ok(outcomes) => results.push(Ok(outcomes)),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    if !failed {
        tx.commit().await?;
        return Ok(results);
    }
    tx.rollback().await?;
    commit_group_isolated(pool, backend, batches).await
}

/// The slow path: one savepoint per batch, so a bad batch fails alone.
async fn commit_group_isolated(
    pool: &AnyPool,
    backend: Backend,
    batches: &[&IngestBatch],
) -> Result<Vec<Result<Vec<IngestOutcome>>>> {
    let mut tx = begin_write(pool, backend).await?;
    let mut results = Vec::with_capacity(batches.len());
    for batch in batches {
        let mut savepoint = tx.begin().await?;
        match apply_batch(&mut savepoint, batch).await {
            Ok(outcomes) => {
                savepoint.commit().await?;
                results.push(Ok(outcomes));
            }
            Err(e) => {
                savepoint.rollback().await?;
                results.push(Err(e));
            }
        }
    }
    tx.commit().await?;
    Ok(results)
}
