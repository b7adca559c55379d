//! A runtime for work that must never compete with answering requests.
//!
//! [`Background`] is one thread with its own single-threaded tokio runtime, at a
//! lower OS scheduling priority than the server's workers (nice +10 on Linux). CRM
//! lookups run there: a lookup starts a fresh Wasm instance and may spend a
//! millisecond of CPU, and on a busy machine that millisecond must go to writing the
//! provider's answer first. The thread waits on I/O like any runtime, so lookups
//! still overlap one another; only their CPU time yields.
//!
//! Database work does not belong here: a connection opened on this runtime would be
//! driven by this low-priority thread for as long as the pool keeps it. Plugin kv
//! calls made from this thread are therefore run on the server's runtime (see
//! [`on_background_thread`] and `host_services`).

use std::cell::Cell;
use std::future::Future;

use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How much lower than the server's workers the background thread runs (nice).
pub const NICENESS: i32 = 10;

thread_local! {
    static ON_BACKGROUND: Cell<bool> = const { Cell::new(false) };
}

/// Whether the calling thread is a [`Background`] thread.
pub fn on_background_thread() -> bool {
    ON_BACKGROUND.with(Cell::get)
}

/// A low-priority thread running its own runtime; it stops when dropped (tasks
/// still running on it are dropped too).
pub struct Background {
    handle: Handle,
    _stop: oneshot::Sender<()>,
}

impl Background {
    /// Starts the thread, named `name`.
    pub fn start(name: &str) -> std::io::Result<Background> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            // Look for I/O and timers after every task poll, not every 61: a plugin
            // that spins yields every few milliseconds, and with a few of them
            // always ready the default would leave other work's HTTP answers and
            // deadlines unseen for hundreds of milliseconds.
            .event_interval(1)
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                ON_BACKGROUND.with(|b| b.set(true));
                lower_priority();
                // Returns when the `Background` is dropped (the sender goes).
                let _ = runtime.block_on(stopped);
            })?;
        Ok(Background {
            handle,
            _stop: stop,
        })
    }

    /// Runs `work` on the background thread.
    pub fn spawn<F>(&self, work: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(work)
    }
}

/// Lowers the calling thread's scheduling priority (Linux: the nice value is per
/// thread). Elsewhere, and when the system refuses, the thread keeps the priority
/// it has.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let me = rustix::thread::gettid();
        let now = rustix::process::getpriority_process(Some(me)).unwrap_or(0);
        if let Err(e) = rustix::process::setpriority_process(Some(me), now + NICENESS) {
            tracing::debug!("background thread keeps its priority: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_runs_on_the_background_thread_at_a_lower_priority() {
        let background = Background::start("test-background").expect("thread");
        let main_nice = nice_of_this_thread();
        let (on_background, nice) = background
            .spawn(async { (on_background_thread(), nice_of_this_thread()) })
            .await
            .expect("joined");
        assert!(on_background);
        assert!(!on_background_thread());
        if cfg!(target_os = "linux") {
            assert_eq!(nice, (main_nice + NICENESS).min(19));
        }
    }

    #[tokio::test]
    async fn dropping_it_stops_the_thread_and_its_work() {
        let background = Background::start("test-background").expect("thread");
        let work = background.spawn(std::future::pending::<()>());
        drop(background);
        let joined = work.await;
        assert!(joined.is_err_and(|e| e.is_cancelled()));
    }

    fn nice_of_this_thread() -> i32 {
        #[cfg(target_os = "linux")]
        {
            rustix::process::getpriority_process(Some(rustix::thread::gettid())).expect("nice")
        }
        #[cfg(not(target_os = "linux"))]
        {
            0
        }
    }
}
