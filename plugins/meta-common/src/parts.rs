//! Messages that take several Graph requests (one per attachment, then the
//! text) without sending a part twice when the host retries.
//!
//! The host retries a failed `send` with the same message id. The ids of the
//! parts already accepted are kept in kv under `parts:{message_id}`, so a
//! retry resumes after the last accepted part; the key is removed once the
//! message is complete or failed for good.

use serde::{Deserialize, Serialize};
use switchboard_sdk::{PluginError, log};

use crate::store::Store;

/// The kv key of a message's progress.
pub fn key(message_id: &str) -> String {
    format!("parts:{message_id}")
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Progress {
    sent: Vec<String>,
}

/// Whether the host will call `send` again after this error.
fn retried(error: &PluginError) -> bool {
    matches!(
        error,
        PluginError::Transient(_) | PluginError::RateLimited(_)
    )
}

/// Sends parts `0..count` with `send_part` (which returns the provider's id
/// of that part), skipping those a previous attempt already sent, and
/// returns every part's id in order.
///
/// A single part is sent without touching the store.
///
/// # Errors
///
/// The first part's error. Progress is kept for errors the host retries and
/// dropped for the others.
pub fn send_all(
    store: &mut impl Store,
    message_id: &str,
    count: usize,
    mut send_part: impl FnMut(usize) -> Result<String, PluginError>,
) -> Result<Vec<String>, PluginError> {
    if count <= 1 {
        return (0..count).map(send_part).collect();
    }
    let key = key(message_id);
    let mut progress: Progress = store
        .get(&key)
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    progress.sent.truncate(count);
    while progress.sent.len() < count {
        match send_part(progress.sent.len()) {
            Ok(id) => {
                progress.sent.push(id);
                if progress.sent.len() < count {
                    let bytes = serde_json::to_vec(&progress).unwrap_or_default();
                    if let Err(error) = store.set(&key, &bytes) {
                        // A retry may then repeat a part; the message still goes out.
                        log::warn(format_args!(
                            "could not record the progress of message {message_id}: {error:?}"
                        ));
                    }
                }
            }
            Err(error) => {
                if !retried(&error) {
                    store.delete(&key);
                }
                return Err(error);
            }
        }
    }
    store.delete(&key);
    Ok(progress.sent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[test]
    fn one_part_never_touches_the_store() {
        let mut store = MemoryStore::default();
        let ids = send_all(&mut store, "m1", 1, |i| Ok(format!("p{i}"))).unwrap();
        assert_eq!(ids, ["p0"]);
        assert!(store.0.is_empty());
    }

    #[test]
    fn a_retry_resumes_after_the_parts_already_sent() {
        let mut store = MemoryStore::default();
        let mut calls = Vec::new();
        let first = send_all(&mut store, "m1", 3, |i| {
            calls.push(i);
            if i == 2 {
                Err(PluginError::Transient("503".into()))
            } else {
                Ok(format!("p{i}"))
            }
        });
        assert_eq!(first, Err(PluginError::Transient("503".into())));
        assert_eq!(calls, [0, 1, 2]);
        assert!(store.0.contains_key("parts:m1"));

        calls.clear();
        let ids = send_all(&mut store, "m1", 3, |i| {
            calls.push(i);
            Ok(format!("p{i}"))
        })
        .unwrap();
        assert_eq!(calls, [2], "only the missing part is sent again");
        assert_eq!(ids, ["p0", "p1", "p2"]);
        assert!(store.0.is_empty(), "finished messages leave nothing behind");
    }

    #[test]
    fn a_final_error_drops_the_progress() {
        let mut store = MemoryStore::default();
        let result = send_all(&mut store, "m2", 2, |i| {
            if i == 1 {
                Err(PluginError::Permanent("100: bad".into()))
            } else {
                Ok("p0".into())
            }
        });
        assert!(matches!(result, Err(PluginError::Permanent(_))));
        assert!(store.0.is_empty());
    }
}
