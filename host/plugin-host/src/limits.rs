//! What one plugin call may consume: time, memory, output, log and key-value space, and
//! how many failures in a row quarantine a plugin.
//!
//! This module only states the limits and their production defaults; the host and the
//! per-call state enforce them.

use std::time::Duration;

/// Per-call limits. The defaults suit production; tests shrink them.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Deadline of `handle-webhook`, routing and CRM calls.
    pub call_timeout: Duration,
    /// Deadline of `send` (it waits on the provider's API).
    pub send_timeout: Duration,
    /// Linear memory cap per instance.
    pub memory_bytes: usize,
    /// Cap on everything a call hands back (response body, events, strings).
    pub max_output_bytes: usize,
    /// Cap on the number of events one webhook may produce.
    pub max_events: usize,
    /// Cap on an outbound HTTP request or response body.
    pub max_http_body_bytes: usize,
    /// Log lines are cut to this length.
    pub max_log_bytes: usize,
    /// Key length cap in the plugin kv store.
    pub max_kv_key_bytes: usize,
    /// Value length cap in the plugin kv store.
    pub max_kv_value_bytes: usize,
    /// Total kv bytes per plugin.
    pub max_kv_total_bytes: u64,
    /// Consecutive failed calls before quarantine.
    pub quarantine_after: u32,
    /// Instances that may run at once, across all plugins.
    pub max_instances: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            call_timeout: Duration::from_secs(5),
            send_timeout: Duration::from_secs(30),
            memory_bytes: 64 << 20,
            max_output_bytes: 1 << 20,
            max_events: 100,
            max_http_body_bytes: 4 << 20,
            max_log_bytes: 4096,
            max_kv_key_bytes: 256,
            max_kv_value_bytes: 64 << 10,
            max_kv_total_bytes: 4 << 20,
            quarantine_after: 5,
            max_instances: 256,
        }
    }
}
