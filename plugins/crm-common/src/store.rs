//! The two host capabilities the CRM plugins' logic touches — the plugin's
//! key-value store and outbound HTTP — behind small traits, so that logic
//! runs in native unit tests against [`MemoryStore`] and a scripted transport.
//!
//! [`HostKv`] and [`HostHttp`] are the real ones; they only work inside the
//! component.

use std::collections::BTreeMap;

use switchboard_sdk::http::{self, Request, Response};
use switchboard_sdk::{PluginError, kv};

/// A small key-value store (the plugin's kv).
pub trait Store {
    /// The value under `key`.
    fn get(&self, key: &str) -> Option<Vec<u8>>;
    /// Stores `value` under `key`.
    ///
    /// # Errors
    ///
    /// The store refused the write (quota, outage).
    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), PluginError>;
    /// Removes `key`.
    fn delete(&mut self, key: &str);
}

/// Sends HTTP requests and returns whatever status comes back.
pub trait Transport {
    /// Sends one request.
    ///
    /// # Errors
    ///
    /// No response at all (denied origin, timeout, connection failure).
    fn send(&mut self, request: Request) -> Result<Response, PluginError>;
}

/// A bounded map from ids to small values in kv: each id has one of
/// [`Slots::COUNT`] keys (`{prefix}:{slot}`, the slot a hash of the id),
/// holding `{id}\n{value}`. A newer id that lands on the same slot replaces
/// the older one, so a prefix never holds more than `COUNT` keys however
/// many ids pass through, and the plugin's kv quota (4 MiB by default)
/// never fills up with bookkeeping. kv has no way to list or expire keys,
/// so per-id keys would grow for ever.
///
/// Use it for what is only needed for a while (which timeline entries were
/// written, a record found for a contact), never for what must not be
/// lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slots(pub &'static str);

impl Slots {
    /// Slots per prefix.
    pub const COUNT: u64 = 4096;

    /// The key the id `id` lives under.
    pub fn key(&self, id: &str) -> String {
        // FNV-1a: stable across builds and platforms, unlike `DefaultHasher`.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in id.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // The high bits: FNV's low bits mix poorly (ids that differ in one
        // byte would never share, or always share, a slot by their low bits).
        format!("{}:{:03x}", self.0, (hash >> 52) % Self::COUNT)
    }

    /// The value kept for `id`, if its slot still holds it.
    pub fn get(&self, store: &impl Store, id: &str) -> Option<String> {
        let bytes = store.get(&self.key(id))?;
        let text = String::from_utf8_lossy(&bytes);
        let (held, value) = text.split_once('\n')?;
        (held == id).then(|| value.to_owned())
    }

    /// Keeps `value` for `id`, replacing whatever its slot held (best
    /// effort: a refused write only loses the memory).
    pub fn set(&self, store: &mut impl Store, id: &str, value: &str) {
        let _ = store.set(&self.key(id), format!("{id}\n{value}").as_bytes());
    }

    /// Forgets `id`, leaving its slot alone if another id holds it.
    pub fn remove(&self, store: &mut impl Store, id: &str) {
        if self.get(store, id).is_some() {
            store.delete(&self.key(id));
        }
    }
}

/// The host's key-value store.
#[derive(Debug, Default, Clone, Copy)]
pub struct HostKv;

impl Store for HostKv {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        kv::get(key)
    }

    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), PluginError> {
        kv::set(key, value).map_err(PluginError::from)
    }

    fn delete(&mut self, key: &str) {
        kv::delete(key);
    }
}

/// The host's outbound HTTP.
#[derive(Debug, Default, Clone, Copy)]
pub struct HostHttp;

impl Transport for HostHttp {
    fn send(&mut self, request: Request) -> Result<Response, PluginError> {
        Ok(http::send(request)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_keep_one_id_each_and_stay_bounded() {
        let slots = Slots("activity");
        let mut store = MemoryStore::default();
        slots.set(&mut store, "ev-1", "9001");
        assert_eq!(slots.get(&store, "ev-1").as_deref(), Some("9001"));
        assert_eq!(slots.get(&store, "ev-2"), None);
        assert_eq!(slots.key("ev-1"), slots.key("ev-1"));
        assert!(slots.key("ev-1").starts_with("activity:"));

        // Ten thousand ids never take more than COUNT keys.
        for n in 0..10_000 {
            slots.set(&mut store, &format!("entry-{n}"), "x");
        }
        assert!(store.0.len() as u64 <= Slots::COUNT);
        assert_eq!(slots.get(&store, "entry-9999").as_deref(), Some("x"));

        // Removing an id that lost its slot leaves the slot's new owner.
        let mut store = MemoryStore::default();
        // 4097 ids cannot all have slots of their own.
        let mut seen = std::collections::HashMap::new();
        let (a, b) = (0..=Slots::COUNT)
            .map(|n| format!("id-{n}"))
            .find_map(|id| {
                seen.insert(slots.key(&id), id.clone())
                    .map(|earlier| (earlier, id))
            })
            .expect("two ids sharing a slot");
        slots.set(&mut store, &a, "1");
        slots.set(&mut store, &b, "2");
        slots.remove(&mut store, &a);
        assert_eq!(slots.get(&store, &b).as_deref(), Some("2"));
        slots.remove(&mut store, &b);
        assert!(store.0.is_empty());
    }
}

/// An in-memory [`Store`] for tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MemoryStore(pub BTreeMap<String, Vec<u8>>);

impl Store for MemoryStore {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.0.get(key).cloned()
    }

    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), PluginError> {
        self.0.insert(key.to_owned(), value.to_vec());
        Ok(())
    }

    fn delete(&mut self, key: &str) {
        self.0.remove(key);
    }
}

/// A [`Transport`] for tests: answers from a script, records every request.
#[derive(Debug, Default, Clone)]
pub struct ScriptedTransport {
    /// Answers still to give, in order.
    pub script: std::collections::VecDeque<Result<Response, PluginError>>,
    /// Every request sent, in order.
    pub requests: Vec<Request>,
}

impl ScriptedTransport {
    /// Queues an answer with this status and JSON body.
    pub fn respond(&mut self, status: u16, body: &str) -> &mut Self {
        self.script.push_back(Ok(Response {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
        }));
        self
    }

    /// Queues a failure without a response.
    pub fn fail(&mut self, error: PluginError) -> &mut Self {
        self.script.push_back(Err(error));
        self
    }
}

impl Transport for ScriptedTransport {
    fn send(&mut self, request: Request) -> Result<Response, PluginError> {
        self.requests.push(request);
        self.script.pop_front().unwrap_or_else(|| {
            Err(PluginError::Transient(
                "the scripted transport has no answer left".into(),
            ))
        })
    }
}
