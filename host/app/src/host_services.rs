//! The server's [`HostServices`]: plugin kv in the store, real outbound HTTP,
//! quarantines persisted so they survive a restart.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use switchboard_plugin_host::{
    BoxFuture, HostServices, HttpFailure, KvFailure, Limits, OutboundRequest, OutboundResponse,
    PluginHost, StreamsConfig, send_direct,
};
use switchboard_store::{Store, StoreError};
use tokio::runtime::Handle;

/// Host capabilities backed by the database and the network.
pub struct ServerServices {
    store: Store,
    http_timeout: Duration,
    max_body: usize,
    /// The runtime the services were made on (the server's), where database work
    /// runs when a plugin calls from a background thread.
    server: Option<Handle>,
}

impl ServerServices {
    /// Services over this store.
    pub fn new(store: Store, http_timeout: Duration, max_body: usize) -> ServerServices {
        ServerServices {
            store,
            http_timeout,
            max_body,
            server: Handle::try_current().ok(),
        }
    }

    /// Runs database `work` on the server's runtime when called from a
    /// [`crate::background`] thread (so no connection is ever opened on, and left
    /// driven by, a low-priority thread), else right here.
    async fn on_server<T: Send + 'static>(
        &self,
        work: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, String> {
        match &self.server {
            Some(server) if crate::background::on_background_thread() => server
                .spawn(work)
                .await
                .map_err(|e| format!("the server's runtime dropped the call: {e}")),
            _ => Ok(work.await),
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
        let store = self.store.clone();
        Box::pin(async move {
            self.on_server(async move { store.kv_get(&plugin, &key).await })
                .await?
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
        let store = self.store.clone();
        Box::pin(async move {
            self.on_server(
                async move { store.kv_set(&plugin, &key, &value, max_total_bytes).await },
            )
            .await
            .map_err(KvFailure::Unavailable)?
            .map_err(|e| match e {
                StoreError::QuotaExceeded { .. } => KvFailure::QuotaExceeded(e.to_string()),
                other => KvFailure::Unavailable(other.to_string()),
            })
        })
    }

    fn kv_delete(&self, plugin: String, key: String) -> BoxFuture<'_, Result<(), String>> {
        let store = self.store.clone();
        Box::pin(async move {
            self.on_server(async move { store.kv_delete(&plugin, &key).await })
                .await?
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
        let store = self.store.clone();
        let name = plugin.clone();
        Box::pin(async move {
            let persisted = self.on_server(async move {
                store.quarantine_plugin(&plugin, &reason).await?;
                store
                    .audit(
                        "system",
                        "plugin.quarantine",
                        Some(&plugin),
                        serde_json::json!({ "reason": reason }),
                    )
                    .await
            });
            match persisted.await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::error!(plugin = name, "could not persist quarantine: {e}"),
                Err(e) => tracing::error!(plugin = name, "could not persist quarantine: {e}"),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::background::{Background, on_background_thread};

    #[tokio::test]
    async fn database_work_asked_from_a_background_thread_runs_on_the_server_runtime() {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
        let store = Store::connect(&url, [7; 32]).await.expect("store");
        let services = Arc::new(ServerServices::new(store, Duration::from_secs(1), 1024));
        let background = Background::start("test-background").expect("thread");

        let asked = services.clone();
        let (ran_on_background, stored) = background
            .spawn(async move {
                let ran = asked.on_server(async { on_background_thread() }).await;
                asked
                    .kv_set("p".into(), "k".into(), b"v".to_vec(), 1024)
                    .await
                    .expect("kv set");
                (ran, asked.kv_get("p".into(), "k".into()).await)
            })
            .await
            .expect("joined");
        assert_eq!(ran_on_background, Ok(false));
        assert_eq!(stored, Ok(Some(b"v".to_vec())));
        // Called from the server's own runtime, the work runs right there.
        assert_eq!(
            services.on_server(async { on_background_thread() }).await,
            Ok(false)
        );
    }
}
