//! Per-call store state: the capabilities one plugin instance sees.
//!
//! A `PluginState` lives exactly as long as one call. It must never hold
//! anything the plugin did not declare: no preopened directories, no WASI sockets,
//! only allow-listed HTTP origins, its own key-value namespace and, for an
//! e-mail connector, streams to its approved mail servers.

use std::collections::HashMap;
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::Limits;
use crate::bindings::signing::switchboard::signing::hmac::SigningError;
use crate::bindings::v0_1::channel::switchboard::plugin as v1;
use crate::bindings::v0_2::channel::switchboard::plugin::{host, types};
use crate::bindings::{KvError, LogLevel};
use crate::compat;
use crate::manifest::Origin;
use crate::outbound::Outbound;
use crate::services::{HostServices, KvFailure};

/// Everything one call's store holds.
pub(crate) struct PluginState {
    pub(crate) plugin: Arc<str>,
    table: ResourceTable,
    /// Built on the first WASI call: most calls make none.
    wasi: Option<WasiCtx>,
    http: WasiHttpCtx,
    /// The allow-list and limits of outbound HTTP, by `switchboard:http` or
    /// `wasi:http` (see `crate::outbound`).
    pub(crate) hooks: Outbound,
    pub(crate) memory: MemoryCap,
    config: Arc<HashMap<String, String>>,
    /// The config keys `plugin.toml` declares: the only ones whose value
    /// `switchboard:signing/hmac` keys a MAC with.
    declared: Arc<[String]>,
    services: Arc<dyn HostServices>,
    kv_enabled: bool,
    limits: Limits,
    /// `switchboard:mail/streams`: set by the host for a plugin with approved
    /// servers (see `crate::streams`), `None` otherwise.
    pub(crate) streams: Option<crate::streams::StreamsCtx>,
}

impl PluginState {
    pub(crate) fn table(&self) -> &ResourceTable {
        &self.table
    }

    pub(crate) fn table_mut(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    pub(crate) fn new(
        plugin: Arc<str>,
        config: Arc<HashMap<String, String>>,
        declared: Arc<[String]>,
        allowed: Arc<[Origin]>,
        kv_enabled: bool,
        services: Arc<dyn HostServices>,
        limits: Limits,
    ) -> PluginState {
        PluginState {
            hooks: Outbound {
                plugin: plugin.clone(),
                allowed,
                services: services.clone(),
                max_body: limits.max_http_body_bytes,
                deadline: None,
            },
            plugin,
            table: ResourceTable::new(),
            wasi: None,
            http: WasiHttpCtx::new(),
            memory: MemoryCap {
                max: limits.memory_bytes,
                hit: false,
            },
            config,
            declared,
            services,
            kv_enabled,
            limits,
            streams: None,
        }
    }

    /// The value of config key `key` for keying a MAC: only a key the
    /// manifest declares, and only when the operator (or a default) set it
    /// to something (empty is unset, as the SDK's `config::require` has it).
    pub(crate) fn secret(&self, key: &str) -> Result<&str, SigningError> {
        if !self.declared.iter().any(|k| k == key) {
            return Err(SigningError::UndeclaredKey(key.to_owned()));
        }
        self.config
            .get(key)
            .map(String::as_str)
            .filter(|value| !value.is_empty())
            .ok_or_else(|| SigningError::MissingSecret(key.to_owned()))
    }
}

/// Caps linear memory and remembers whether the cap was what stopped a call.
pub(crate) struct MemoryCap {
    max: usize,
    pub(crate) hit: bool,
}

impl wasmtime::ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max {
            self.hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }
}

/// What a plugin sees of WASI: clocks, random and empty stdio; no environment,
/// no arguments, no preopened directories, no sockets or name lookups.
fn sandbox_wasi() -> WasiCtx {
    WasiCtx::builder()
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .build()
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: self.wasi.get_or_insert_with(sandbox_wasi),
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for PluginState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

impl types::Host for PluginState {}
impl v1::types::Host for PluginState {}

/// 0.1.0 plugins see the same host, through the frozen types.
impl v1::host::Host for PluginState {
    async fn log(&mut self, level: v1::host::LogLevel, message: String) {
        host::Host::log(self, compat::log_level_in(level), message).await
    }

    async fn get_config(&mut self, key: String) -> Option<String> {
        host::Host::get_config(self, key).await
    }

    async fn kv_get(&mut self, key: String) -> Option<Vec<u8>> {
        host::Host::kv_get(self, key).await
    }

    async fn kv_set(&mut self, key: String, value: Vec<u8>) -> Result<(), v1::host::KvError> {
        host::Host::kv_set(self, key, value)
            .await
            .map_err(compat::kv_error_out)
    }

    async fn kv_delete(&mut self, key: String) {
        host::Host::kv_delete(self, key).await
    }

    async fn now_ms(&mut self) -> u64 {
        host::Host::now_ms(self).await
    }
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl host::Host for PluginState {
    async fn log(&mut self, level: LogLevel, message: String) {
        let message = truncate(&message, self.limits.max_log_bytes);
        let plugin = &*self.plugin;
        match level {
            LogLevel::Trace => tracing::trace!(target: "plugin", plugin, "{message}"),
            LogLevel::Debug => tracing::debug!(target: "plugin", plugin, "{message}"),
            LogLevel::Info => tracing::info!(target: "plugin", plugin, "{message}"),
            LogLevel::Warn => tracing::warn!(target: "plugin", plugin, "{message}"),
            LogLevel::Error => tracing::error!(target: "plugin", plugin, "{message}"),
        }
    }

    async fn get_config(&mut self, key: String) -> Option<String> {
        self.config.get(&key).cloned()
    }

    async fn kv_get(&mut self, key: String) -> Option<Vec<u8>> {
        if !self.kv_enabled || key.len() > self.limits.max_kv_key_bytes {
            return None;
        }
        let services = self.services.clone();
        match services.kv_get(self.plugin.to_string(), key).await {
            Ok(value) => value,
            Err(e) => {
                tracing::warn!(plugin = &*self.plugin, "kv read failed: {e}");
                None
            }
        }
    }

    async fn kv_set(&mut self, key: String, value: Vec<u8>) -> Result<(), KvError> {
        if !self.kv_enabled {
            return Err(KvError::Unavailable(
                "this plugin did not declare the kv capability".into(),
            ));
        }
        if key.is_empty() || key.len() > self.limits.max_kv_key_bytes {
            return Err(KvError::QuotaExceeded(format!(
                "key must be 1 to {} bytes",
                self.limits.max_kv_key_bytes
            )));
        }
        if value.len() > self.limits.max_kv_value_bytes {
            return Err(KvError::QuotaExceeded(format!(
                "value of {} bytes is over the {} byte limit",
                value.len(),
                self.limits.max_kv_value_bytes
            )));
        }
        let services = self.services.clone();
        services
            .kv_set(
                self.plugin.to_string(),
                key,
                value,
                self.limits.max_kv_total_bytes,
            )
            .await
            .map_err(|e| match e {
                KvFailure::QuotaExceeded(m) => KvError::QuotaExceeded(m),
                KvFailure::Unavailable(m) => KvError::Unavailable(m),
            })
    }

    async fn kv_delete(&mut self, key: String) {
        if !self.kv_enabled {
            return;
        }
        let services = self.services.clone();
        if let Err(e) = services.kv_delete(self.plugin.to_string(), key).await {
            tracing::warn!(plugin = &*self.plugin, "kv delete failed: {e}");
        }
    }

    async fn now_ms(&mut self) -> u64 {
        self.services.now_ms()
    }
}

/// A policy's store lends candidate sets from this state's resource table.
impl crate::candidates::CandidateTable for PluginState {
    fn candidate_table(&self) -> &ResourceTable {
        self.table()
    }

    fn candidate_table_mut(&mut self) -> &mut ResourceTable {
        self.table_mut()
    }
}
