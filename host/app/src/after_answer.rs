//! Work a request starts that must wait until its answer is on the wire.
//!
//! A provider's webhook is answered as soon as its batch is committed; routing the
//! new message (and, with a CRM, the lookup that starts a Wasm instance and an
//! outbound request) must not compete with writing that answer on a busy machine.
//! The HTTP edge runs the webhook inside [`collect`]; what the use case hands to
//! [`defer`] meanwhile is kept and spawned when the returned [`Deferred`] is dropped,
//! which the edge does once the response body has been written. Outside [`collect`]
//! (a poller, the webchat, a test) [`defer`] spawns at once.
//!
//! Nothing deferred is lost: if the request is cancelled (the client went away
//! after the commit), or the body is never written, dropping the [`Deferred`] still
//! spawns every job.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;

type Job = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

tokio::task_local! {
    static DEFERRED: RefCell<Deferred>;
}

/// Jobs deferred by a request; they are spawned on the current tokio runtime when
/// this is dropped.
#[derive(Default)]
pub struct Deferred(Vec<Job>);

impl Deferred {
    /// How many jobs wait.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no job waits.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Drop for Deferred {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                for job in self.0.drain(..) {
                    runtime.spawn(job);
                }
            }
            // Only at shutdown: the start-up reconciliation recreates routing work.
            Err(_) => tracing::warn!(
                jobs = self.0.len(),
                "deferred work dropped: no runtime to run it on"
            ),
        }
    }
}

/// Runs `work`, keeping what it [`defer`]s; the jobs run when the returned
/// [`Deferred`] is dropped (or at once, should this future be dropped first).
pub async fn collect<F: Future>(work: F) -> (F::Output, Deferred) {
    DEFERRED
        .scope(RefCell::new(Deferred::default()), async {
            let out = work.await;
            (out, DEFERRED.with(|d| std::mem::take(&mut *d.borrow_mut())))
        })
        .await
}

/// Runs `job` after the current request's answer is written when called inside
/// [`collect`], else spawns it now.
pub fn defer(job: impl Future<Output = ()> + Send + 'static) {
    let mut job: Option<Job> = Some(Box::pin(job));
    let _ = DEFERRED.try_with(|d| {
        if let Some(job) = job.take() {
            d.borrow_mut().0.push(job);
        }
    });
    if let Some(job) = job {
        tokio::spawn(job);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::sync::Notify;

    fn counting(
        count: &Arc<AtomicUsize>,
        done: &Arc<Notify>,
    ) -> impl Future<Output = ()> + Send + 'static + use<> {
        let (count, done) = (count.clone(), done.clone());
        async move {
            count.fetch_add(1, Ordering::SeqCst);
            done.notify_one();
        }
    }

    #[tokio::test]
    async fn deferred_jobs_wait_for_the_drop() {
        let (count, done) = (Arc::new(AtomicUsize::new(0)), Arc::new(Notify::new()));
        let ((), deferred) = collect(async {
            defer(counting(&count, &done));
            tokio::task::yield_now().await;
        })
        .await;
        assert_eq!(deferred.len(), 1);
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(count.load(Ordering::SeqCst), 0, "ran before the drop");
        drop(deferred);
        done.notified().await;
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn outside_a_request_jobs_run_at_once() {
        let (count, done) = (Arc::new(AtomicUsize::new(0)), Arc::new(Notify::new()));
        defer(counting(&count, &done));
        done.notified().await;
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_cancelled_request_still_runs_its_jobs() {
        let (count, done) = (Arc::new(AtomicUsize::new(0)), Arc::new(Notify::new()));
        let job = counting(&count, &done);
        let request = collect(async move {
            defer(job);
            std::future::pending::<()>().await;
        });
        // Polled once (the job is deferred), then dropped like a cancelled request.
        let mut request = Box::pin(request);
        let waker = futures::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        assert!(request.as_mut().poll(&mut cx).is_pending());
        drop(request);
        done.notified().await;
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }
}
