//! Wall-clock time from the host (a fixed clock in the test harness).

use crate::bindings::channel::switchboard::plugin::host;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    host::now_ms()
}
