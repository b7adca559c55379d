//! The server's [`HostServices`]: plugin kv in the store, real outbound HTTP,
//! quarantines persisted so they survive a restart.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use switchboard_plugin_host::{
    BoxFuture, HostServices, HttpFailure, KvFailure, Limits, OutboundRequest, OutboundResponse,
    PluginHost, StreamsConfig, send_direct,
};
use switchboard_store::{Store, StoreError};

/// Host capabilities backed by the database and the network.
pub struct ServerServices {
    store: Store,
    http_timeout: Duration,
    max_body: usize,
}

impl ServerServices {
    /// Services over this store.
    pub fn new(store: Store, http_timeout: Duration, max_body: usize) -> ServerServices {
        ServerServices {
            store,
            http_timeout,
            max_body,
        }
    }
}

/// A plugin host with `limits` and the server's capabilities: kv in `store`, outbound
/// HTTP within the limits' send timeout and body size, and e-mail connectors' TLS
/// trusting the public roots plus the PEM file named by [`EXTRA_CA_FILE_ENV`]. What
/// `switchboard serve`, the CLI and the benchmarks run plugins in.
pub fn server_plugin_host(store: &Store, limits: Limits) -> Result<PluginHost, String> {
    let services = ServerServices::new(
        store.clone(),
        limits.send_timeout,
        limits.max_http_body_bytes,
    );
    let mut streams = StreamsConfig::default();
    if let Some(path) = std::env::var_os(EXTRA_CA_FILE_ENV).filter(|p| !p.is_empty()) {
        streams
            .add_pem_file(Path::new(&path))
            .map_err(|e| format!("{EXTRA_CA_FILE_ENV}: {e}"))?;
    }
    PluginHost::with_streams(limits, Arc::new(services), streams).map_err(|e| format!("{e:#}"))
}

/// Names a PEM file of CA certificates that e-mail connectors' TLS trusts besides
/// the public roots (a company CA, a test CA).
pub const EXTRA_CA_FILE_ENV: &str = "SWITCHBOARD_EXTRA_CA_FILE";

impl HostServices for ServerServices {
    fn kv_get(
        &self,
        plugin: String,
        key: String,
    ) -> BoxFuture<'_, Result<Option<Vec<u8>>, String>> {
        Box::pin(async move {
            self.store
                .kv_get(&plugin, &key)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn kv_set(
        &self,
        plugin: String,
        key: String,
        value: Vec<u8>,
        max_total_bytes: u64,
    ) -> BoxFuture<'_, Result<(), KvFailure>> {
        Box::pin(async move {
            self.store
                .kv_set(&plugin, &key, &value, max_total_bytes)
                .await
                .map_err(|e| match e {
                    StoreError::QuotaExceeded { .. } => KvFailure::QuotaExceeded(e.to_string()),
                    other => KvFailure::Unavailable(other.to_string()),
                })
        })
    }

    fn kv_delete(&self, plugin: String, key: String) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            self.store
                .kv_delete(&plugin, &key)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }

    fn now_ms(&self) -> u64 {
        crate::clock::now_ms() as u64
    }

    fn send_http(
        &self,
        request: OutboundRequest,
    ) -> BoxFuture<'_, Result<OutboundResponse, HttpFailure>> {
        Box::pin(send_direct(request, self.max_body, self.http_timeout))
    }

    fn plugin_quarantined(&self, plugin: String, reason: String) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Err(e) = self.store.quarantine_plugin(&plugin, &reason).await {
                tracing::error!(plugin, "could not persist quarantine: {e}");
            }
            let _ = self
                .store
                .audit(
                    "system",
                    "plugin.quarantine",
                    Some(&plugin),
                    serde_json::json!({ "reason": reason }),
                )
                .await;
        })
    }
}
