//! Host capabilities for plugins run outside the server (`bench`, `routing
//! replay`): an in-memory key-value store, no network, and either the wall
//! clock or a virtual one the caller moves.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use switchboard_plugin_host::{
    BoxFuture, HostServices, HttpFailure, KvFailure, OutboundRequest, OutboundResponse,
};

/// In-memory kv, no network; time from the wall clock or from [`Self::set_now`].
#[derive(Default)]
pub struct OfflineServices {
    /// `None`: the wall clock. `Some`: virtual time in ms.
    virtual_now: Option<AtomicU64>,
    kv: Mutex<HashMap<(String, String), Vec<u8>>>,
}

impl OfflineServices {
    /// Capabilities whose clock is the wall clock.
    pub fn wall_clock() -> OfflineServices {
        OfflineServices::default()
    }

    /// Capabilities whose clock only moves with [`Self::set_now`].
    pub fn virtual_clock() -> OfflineServices {
        OfflineServices {
            virtual_now: Some(AtomicU64::new(0)),
            ..OfflineServices::default()
        }
    }

    /// Moves the virtual clock (no effect on a wall-clock instance).
    pub fn set_now(&self, ms: u64) {
        if let Some(now) = &self.virtual_now {
            now.store(ms, Ordering::SeqCst);
        }
    }
}

impl HostServices for OfflineServices {
    fn kv_get(
        &self,
        plugin: String,
        key: String,
    ) -> BoxFuture<'_, Result<Option<Vec<u8>>, String>> {
        let value = self
            .kv
            .lock()
            .expect("kv lock")
            .get(&(plugin, key))
            .cloned();
        Box::pin(async move { Ok(value) })
    }

    fn kv_set(
        &self,
        plugin: String,
        key: String,
        value: Vec<u8>,
        _max_total_bytes: u64,
    ) -> BoxFuture<'_, Result<(), KvFailure>> {
        self.kv
            .lock()
            .expect("kv lock")
            .insert((plugin, key), value);
        Box::pin(async { Ok(()) })
    }

    fn kv_delete(&self, plugin: String, key: String) -> BoxFuture<'_, Result<(), String>> {
        self.kv.lock().expect("kv lock").remove(&(plugin, key));
        Box::pin(async { Ok(()) })
    }

    fn now_ms(&self) -> u64 {
        match &self.virtual_now {
            Some(now) => now.load(Ordering::SeqCst),
            None => switchboard_app::now_ms() as u64,
        }
    }

    fn send_http(
        &self,
        _request: OutboundRequest,
    ) -> BoxFuture<'_, Result<OutboundResponse, HttpFailure>> {
        Box::pin(async { Err(HttpFailure::Other("no network outside the server".into())) })
    }

    fn plugin_quarantined(&self, _plugin: String, _reason: String) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}
