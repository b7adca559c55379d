//! The wall clock of the application layer.
//!
//! Use cases stamp what they record with the wall clock; the routing engine, the SIP
//! transactions and the media pipeline run on time passed in by their drivers, so
//! their tests use virtual time instead.

/// Milliseconds since the Unix epoch.
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
