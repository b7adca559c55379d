//! The process's resident memory around a piece of work: the resident set before it
//! and its peak during it. The peak is the kernel's mark (`VmHWM`, reset first through
//! `/proc/self/clear_refs`) or, where the kernel does not let the mark be reset, the
//! highest `VmRSS` a sampler saw every 2 ms.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// What [`around`] measured, in bytes.
pub struct Peak {
    /// The resident set before the work.
    pub before: u64,
    /// The peak resident set during the work.
    pub peak: u64,
    /// The highest resident set the sampler saw.
    pub sampled: u64,
    /// Whether the kernel's peak mark could be reset (else `peak` is `sampled`).
    pub exact: bool,
}

impl Peak {
    /// How far the resident set rose above where it was before.
    pub fn growth(&self) -> u64 {
        self.peak.saturating_sub(self.before)
    }
}

/// Runs `work`, measuring the resident set before it and its peak during it.
pub async fn around<F: Future>(work: F) -> (F::Output, Peak) {
    let exact = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let before = status_bytes("VmRSS:").unwrap_or(0);
    let sampler = Sampler::start();
    let output = work.await;
    let sampled = sampler.stop();
    let peak = match status_bytes("VmHWM:") {
        Some(hwm) if exact => hwm.max(sampled),
        _ => sampled,
    };
    let measured = Peak {
        before,
        peak,
        sampled,
        exact,
    };
    (output, measured)
}

/// A `kB` field of /proc/self/status, in bytes.
pub fn status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Samples VmRSS every 2 ms on its own thread, keeping the highest.
struct Sampler {
    stop: Arc<AtomicBool>,
    max: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl Sampler {
    fn start() -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let max = Arc::new(AtomicU64::new(status_bytes("VmRSS:").unwrap_or(0)));
        let (s, m) = (stop.clone(), max.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some(rss) = status_bytes("VmRSS:") {
                    m.fetch_max(rss, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        Sampler { stop, max, thread }
    }

    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        if let Some(rss) = status_bytes("VmRSS:") {
            self.max.fetch_max(rss, Ordering::Relaxed);
        }
        self.max.load(Ordering::Relaxed)
    }
}
