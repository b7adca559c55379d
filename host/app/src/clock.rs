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
