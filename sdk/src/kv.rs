//! The plugin's own key-value store, kept by the host across calls and
//! restarts. Keys and values are small (the host enforces a quota); use it for
//! cursors, tokens and dedup markers, not for message history, which the host
//! keeps on the timeline.

use crate::PluginError;
use crate::bindings::channel::switchboard::plugin::host;

pub use crate::bindings::channel::switchboard::plugin::host::KvError;

/// The value stored under `key`, if any.
pub fn get(key: &str) -> Option<Vec<u8>> {
    host::kv_get(key)
}

/// The value stored under `key` as UTF-8 text (invalid bytes replaced), if any.
pub fn get_string(key: &str) -> Option<String> {
    get(key).map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

/// Stores `value` under `key`, replacing any previous value.
///
/// # Errors
///
/// [`KvError::QuotaExceeded`] when the key, the value or the plugin's total is
/// over its limit; [`KvError::Unavailable`] when the store failed (retry later).
pub fn set(key: &str, value: impl AsRef<[u8]>) -> Result<(), KvError> {
    host::kv_set(key, value.as_ref())
}

/// Removes `key`; removing a missing key is not an error.
pub fn delete(key: &str) {
    host::kv_delete(key)
}

impl From<KvError> for PluginError {
    /// A full quota will not fix itself ([`PluginError::Internal`]); an
    /// unavailable store may ([`PluginError::Transient`]).
    fn from(error: KvError) -> Self {
        match error {
            KvError::QuotaExceeded(detail) => {
                PluginError::Internal(format!("kv quota exceeded: {detail}"))
            }
            KvError::Unavailable(detail) => {
                PluginError::Transient(format!("kv unavailable: {detail}"))
            }
        }
    }
}
