//! The clock of the application layer.
//!
//! Use cases stamp what they record with the [`Clock`] the [`App`](crate::App) was
//! built with: the wall clock in production, a manual one in scenario tests (reports
//! need days to pass). The routing engine, the SIP transactions and the media pipeline
//! run on time passed in by their drivers; the routing service passes this clock's.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Where use cases read the time.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The wall clock.
    pub fn system() -> Clock {
        Clock { manual: None }
    }

    /// A clock that stands at `start_ms` until moved with [`Clock::set`] or
    /// [`Clock::advance`] (clones share it).
    pub fn manual(start_ms: i64) -> Clock {
        Clock {
            manual: Some(Arc::new(AtomicI64::new(start_ms))),
        }
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        match &self.manual {
            Some(t) => t.load(Ordering::SeqCst),
            None => now_ms(),
        }
    }

    /// Moves a manual clock to `ms` (the wall clock ignores it).
    pub fn set(&self, ms: i64) {
        if let Some(t) = &self.manual {
            t.store(ms, Ordering::SeqCst);
        }
    }

    /// Moves a manual clock forward by `ms` (the wall clock ignores it).
    pub fn advance(&self, ms: i64) {
        if let Some(t) = &self.manual {
            t.fetch_add(ms, Ordering::SeqCst);
        }
    }
}

/// Milliseconds since the Unix epoch, from the wall clock.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `2026-12-06T10:00:00.000Z` for a time in ms since the epoch.
pub fn iso8601(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

const DAY_MS: i64 = 24 * 3600 * 1000;

/// Midnight UTC before `now_ms`.
pub fn start_of_day(now_ms: i64) -> i64 {
    now_ms - now_ms.rem_euclid(DAY_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let clock = Clock::manual(1_000);
        let shared = clock.clone();
        assert_eq!(clock.now_ms(), 1_000);
        shared.advance(500);
        assert_eq!(clock.now_ms(), 1_500);
        clock.set(10);
        assert_eq!(shared.now_ms(), 10);
        assert!(Clock::system().now_ms() > 1_700_000_000_000);
    }

    #[test]
    fn times_print_as_rfc3339() {
        assert_eq!(iso8601(1_764_633_600_123), "2025-12-02T00:00:00.123Z");
    }

    #[test]
    fn the_day_starts_at_midnight_utc() {
        let t = 1_764_633_600_000; // 2025-12-02T00:00:00Z
        assert_eq!(start_of_day(t + 5 * 3600 * 1000), t);
        assert_eq!(start_of_day(t), t);
    }
}
