//! What the host gives plugins, behind one trait, so the server backs it with
//! the database and real HTTP while the SDK harness backs it with fakes.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An outbound HTTP request a plugin made, already allowed by its allow-list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRequest {
    /// The plugin that made it.
    pub plugin: String,
    /// `GET`, `POST`…
    pub method: String,
    /// The absolute URI.
    pub uri: String,
    /// Headers in order.
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Bytes,
}

/// The response to an [`OutboundRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundResponse {
    /// HTTP status.
    pub status: u16,
    /// Headers in order.
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Bytes,
}

/// Why an outbound HTTP request got no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpFailure {
    /// Nobody listens there.
    ConnectionRefused,
    /// No answer in time.
    Timeout,
    /// The name does not resolve.
    DnsError(String),
    /// The response body is larger than the host accepts.
    ResponseTooLarge,
    /// Anything else.
    Other(String),
}

/// Why a key-value write was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvFailure {
    /// Over the plugin's quota or the value limit.
    QuotaExceeded(String),
    /// The store failed.
    Unavailable(String),
}

/// The host capabilities behind the WIT `host` interface and outbound HTTP
/// (`switchboard:http` and wasi:http).
pub trait HostServices: Send + Sync + 'static {
    /// Reads a key of `plugin`'s store.
    fn kv_get(&self, plugin: String, key: String)
    -> BoxFuture<'_, Result<Option<Vec<u8>>, String>>;
    /// Writes a key, refusing when the plugin's total would pass `max_total_bytes`.
    fn kv_set(
        &self,
        plugin: String,
        key: String,
        value: Vec<u8>,
        max_total_bytes: u64,
    ) -> BoxFuture<'_, Result<(), KvFailure>>;
    /// Deletes a key.
    fn kv_delete(&self, plugin: String, key: String) -> BoxFuture<'_, Result<(), String>>;
    /// Wall-clock milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
    /// Performs an allowed outbound request.
    fn send_http(
        &self,
        request: OutboundRequest,
    ) -> BoxFuture<'_, Result<OutboundResponse, HttpFailure>>;
    /// Downloads a file for the host (an inbound attachment), reading at most
    /// `max_bytes` of body. The allow-list was checked by the caller. By
    /// default this is [`HostServices::send_http`].
    fn fetch_file(
        &self,
        request: OutboundRequest,
        max_bytes: usize,
    ) -> BoxFuture<'_, Result<OutboundResponse, HttpFailure>> {
        let _ = max_bytes;
        self.send_http(request)
    }
    /// Told when a plugin is quarantined, so the server can persist it.
    fn plugin_quarantined(&self, plugin: String, reason: String) -> BoxFuture<'_, ()>;
}
