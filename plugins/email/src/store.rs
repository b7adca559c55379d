//! The plugin's key-value store as the protocol modules use it: the cached
//! OAuth tokens ([`crate::oauth`]) and the record of Mailgun's signed tokens
//! ([`crate::mailgun::replay`]).
//!
//! A trait, so those modules are tested natively with a map; the component
//! backs it with the host's kv. Writing never fails for the caller: a value
//! that cannot be stored is a warning, and what it would have saved (a token
//! refresh, a replay check) is simply done again or skipped.

/// Get, set and delete, as the host's kv does them.
pub trait Store {
    fn get(&self, key: &str) -> Option<Vec<u8>>;
    fn set(&mut self, key: &str, value: &[u8]);
    fn delete(&mut self, key: &str);
}
