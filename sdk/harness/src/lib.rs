//! Test a Switchboard plugin natively, without a server.
//!
//! The harness loads the plugin's built `.wasm` into the real plugin host —
//! same sandbox, same limits, same allow-list — but backs the host
//! capabilities with fakes you can script and inspect:
//!
//! - an in-memory key-value store ([`Harness::kv`]);
//! - HTTP that answers from a script and records every request
//!   ([`Harness::http`]);
//! - a clock that stands still until you move it ([`Harness::set_now`]).
//!
//! More plugins can join the same host with [`Harness::load_beside`], for
//! instance a connector built against an older plugin API next to its
//! current build.
//!
//! An e-mail connector talks to real mail servers through the host's streams
//! (only to the servers its config names): run them on `127.0.0.1` in the
//! test and trust the test's CA with [`Harness::load_with_extra_ca`] (or pass
//! a whole [`StreamsConfig`] to [`Harness::load_with_streams`]). Its `mailer`
//! exports are [`Harness::poll_mail`], [`Harness::handle_mail_webhook`] and
//! [`Harness::send_mail`]; [`Harness::copy_attachment`] copies an inbound
//! file the way the server does (through the blob writer of
//! `switchboard:mail@0.2.0`, else `fetch-attachment`) into a [`MemorySink`].
//!
//! ```no_run
//! use switchboard_harness::{Harness, plugin_dir};
//! # async fn demo() {
//! let h = Harness::load(&plugin_dir("sms-twilio"), &[
//!     ("account_sid", "AC1"), ("auth_token", "secret"), ("from_number", "+15550001111"),
//! ]).unwrap();
//! h.http().respond(201, r#"{"sid":"SM1","status":"queued"}"#);
//! // … call h.send(&message).await and assert on h.http().requests()
//! # }
//! ```
//!
//! Build the plugins first (`plugins/build.sh`); [`plugin_dir`] finds them in
//! `plugins/dist/`, or under `$SWITCHBOARD_PLUGIN_DIST` when set.

#![deny(missing_docs)]

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
pub use switchboard_plugin_host::bindings;
pub use switchboard_plugin_host::{
    AgentCandidate, Attachment, AttachmentDownload, Automatic, BlobSink, CallError, CandidateSet,
    ChannelEvent, ChannelInfo, Copied, Copies, DownloadError, Downloaded, Envelope, HttpFailure,
    HttpRequest, HttpResponse, Limits, LoadError, MailBatch, OutboundMessage, OutboundRequest,
    OutboundResponse, PluginError, PluginHost, PollOutcome, SendReceipt, StreamsConfig,
    StreamsConfigError, TemplateInfo, WARM_POLICY_CALLS, WebhookOutcome,
};
use switchboard_plugin_host::{BoxFuture, HostServices, KvFailure, LoadSpec};

/// Where `plugins/build.sh` puts the plugin with this id.
pub fn plugin_dir(id: &str) -> PathBuf {
    let base = std::env::var_os("SWITCHBOARD_PLUGIN_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/dist"));
    base.join(id)
}

/// Scripted outbound HTTP: answers in order, records every request.
#[derive(Default)]
pub struct FakeHttp {
    script: Mutex<VecDeque<Result<OutboundResponse, HttpFailure>>>,
    requests: Mutex<Vec<OutboundRequest>>,
}

impl FakeHttp {
    /// Queues a response with this status and body.
    pub fn respond(&self, status: u16, body: &str) {
        self.respond_with(OutboundResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: Bytes::copy_from_slice(body.as_bytes()),
        });
    }

    /// Queues a full response.
    pub fn respond_with(&self, response: OutboundResponse) {
        self.script.lock().unwrap().push_back(Ok(response));
    }

    /// Queues a transport failure.
    pub fn fail(&self, failure: HttpFailure) {
        self.script.lock().unwrap().push_back(Err(failure));
    }

    /// Every request the plugin made, in order.
    pub fn requests(&self) -> Vec<OutboundRequest> {
        self.requests.lock().unwrap().clone()
    }

    fn next(&self, request: OutboundRequest) -> Result<OutboundResponse, HttpFailure> {
        self.requests.lock().unwrap().push(request);
        self.script.lock().unwrap().pop_front().unwrap_or_else(|| {
            Err(HttpFailure::Other(
                "the harness has no scripted response left".into(),
            ))
        })
    }
}

/// A [`BlobSink`] in memory, in place of the server's blob store: the
/// bytes written so far are shared with every clone, so a test can look at
/// what a failed copy left in a sink the host dropped.
#[derive(Clone, Default)]
pub struct MemorySink {
    bytes: Arc<Mutex<Vec<u8>>>,
    writes: Arc<AtomicU64>,
}

impl MemorySink {
    /// The bytes written so far.
    pub fn bytes(&self) -> Vec<u8> {
        self.bytes.lock().unwrap().clone()
    }

    /// How many writes the sink took.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    /// Whether the host still holds this sink (or a clone other than the
    /// test's), e.g. after a failed copy: it must have dropped it.
    pub fn held_elsewhere(&self) -> bool {
        Arc::strong_count(&self.bytes) > 1
    }
}

impl BlobSink for MemorySink {
    fn write<'a>(&'a mut self, data: &'a [u8]) -> BoxFuture<'a, Result<(), String>> {
        self.bytes.lock().unwrap().extend_from_slice(data);
        self.writes.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Ok(()) })
    }
}

/// The fake capabilities behind a [`Harness`].
pub struct FakeServices {
    kv: Mutex<HashMap<(String, String), Vec<u8>>>,
    http: FakeHttp,
    now_ms: AtomicU64,
    quarantined: Mutex<Vec<(String, String)>>,
}

impl Default for FakeServices {
    fn default() -> Self {
        FakeServices {
            kv: Mutex::default(),
            http: FakeHttp::default(),
            now_ms: AtomicU64::new(1_700_000_000_000),
            quarantined: Mutex::default(),
        }
    }
}

impl HostServices for FakeServices {
    fn kv_get(
        &self,
        plugin: String,
        key: String,
    ) -> BoxFuture<'_, Result<Option<Vec<u8>>, String>> {
        let v = self.kv.lock().unwrap().get(&(plugin, key)).cloned();
        Box::pin(async move { Ok(v) })
    }

    fn kv_set(
        &self,
        plugin: String,
        key: String,
        value: Vec<u8>,
        max_total_bytes: u64,
    ) -> BoxFuture<'_, Result<(), KvFailure>> {
        let mut kv = self.kv.lock().unwrap();
        let used: usize = kv
            .iter()
            .filter(|((p, k), _)| *p == plugin && *k != key)
            .map(|((_, k), v)| k.len() + v.len())
            .sum();
        let result = if (used + key.len() + value.len()) as u64 > max_total_bytes {
            Err(KvFailure::QuotaExceeded(format!(
                "plugin kv quota of {max_total_bytes} bytes exceeded"
            )))
        } else {
            kv.insert((plugin, key), value);
            Ok(())
        };
        Box::pin(async move { result })
    }

    fn kv_delete(&self, plugin: String, key: String) -> BoxFuture<'_, Result<(), String>> {
        self.kv.lock().unwrap().remove(&(plugin, key));
        Box::pin(async { Ok(()) })
    }

    fn now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::SeqCst)
    }

    fn send_http(
        &self,
        request: OutboundRequest,
    ) -> BoxFuture<'_, Result<OutboundResponse, HttpFailure>> {
        let r = self.http.next(request);
        Box::pin(async move { r })
    }

    fn plugin_quarantined(&self, plugin: String, reason: String) -> BoxFuture<'_, ()> {
        self.quarantined.lock().unwrap().push((plugin, reason));
        Box::pin(async {})
    }
}

/// One plugin loaded into a real plugin host with fake capabilities.
pub struct Harness {
    host: PluginHost,
    services: Arc<FakeServices>,
    id: String,
}

impl Harness {
    /// Loads the plugin folder with these config values and default limits.
    pub fn load(dir: &Path, config: &[(&str, &str)]) -> Result<Harness, LoadError> {
        Harness::load_with(dir, config, Limits::default(), &[])
    }

    /// Loads with explicit limits and extra allowed origins.
    pub fn load_with(
        dir: &Path,
        config: &[(&str, &str)],
        limits: Limits,
        extra_allowed_hosts: &[&str],
    ) -> Result<Harness, LoadError> {
        Harness::load_with_streams(
            dir,
            config,
            limits,
            extra_allowed_hosts,
            StreamsConfig::default(),
        )
    }

    /// Loads an e-mail connector whose servers present certificates of the
    /// test's own CA: `ca_pem` is trusted besides the public roots, as the
    /// server trusts `SWITCHBOARD_EXTRA_CA_FILE`. Default limits.
    pub fn load_with_extra_ca(
        dir: &Path,
        config: &[(&str, &str)],
        ca_pem: &str,
    ) -> Result<Harness, LoadError> {
        let mut streams = StreamsConfig::default();
        streams
            .add_pem_roots(ca_pem.as_bytes())
            .map_err(|e| LoadError::Component {
                plugin: dir.display().to_string(),
                message: e.to_string(),
            })?;
        Harness::load_with_streams(dir, config, Limits::default(), &[], streams)
    }

    /// Loads with explicit limits, extra allowed origins and streams settings
    /// (trusted roots, deadlines and budgets of an e-mail connector's
    /// connections).
    pub fn load_with_streams(
        dir: &Path,
        config: &[(&str, &str)],
        limits: Limits,
        extra_allowed_hosts: &[&str],
        streams: StreamsConfig,
    ) -> Result<Harness, LoadError> {
        let services = Arc::new(FakeServices::default());
        let host = PluginHost::with_streams(limits, services.clone(), streams).map_err(|e| {
            LoadError::Component {
                plugin: dir.display().to_string(),
                message: e.to_string(),
            }
        })?;
        let id = load_into(&host, dir, config, extra_allowed_hosts)?;
        Ok(Harness { host, services, id })
    }

    /// Loads another plugin into this harness's host, beside the one it
    /// tests: the answer is a harness for the new plugin that shares the
    /// host, its limits and the fake capabilities (one HTTP script and
    /// recording, one kv store kept per plugin, one clock). Use it to run
    /// plugins side by side, such as builds of the same connector against
    /// two plugin API versions.
    pub fn load_beside(&self, dir: &Path, config: &[(&str, &str)]) -> Result<Harness, LoadError> {
        let id = load_into(&self.host, dir, config, &[])?;
        Ok(Harness {
            host: self.host.clone(),
            services: self.services.clone(),
            id,
        })
    }

    /// The plugin id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The underlying host, for status and less common calls.
    pub fn host(&self) -> &PluginHost {
        &self.host
    }

    /// Scripted HTTP.
    pub fn http(&self) -> &FakeHttp {
        &self.services.http
    }

    /// A copy of the plugin's key-value store.
    pub fn kv(&self) -> HashMap<String, Vec<u8>> {
        self.services
            .kv
            .lock()
            .unwrap()
            .iter()
            .filter(|((p, _), _)| *p == self.id)
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Sets the fake clock.
    pub fn set_now(&self, ms: u64) {
        self.services.now_ms.store(ms, Ordering::SeqCst);
    }

    /// Quarantines reported by the host, as (plugin, reason).
    pub fn quarantined(&self) -> Vec<(String, String)> {
        self.services.quarantined.lock().unwrap().clone()
    }

    /// Calls `handle-webhook`.
    pub async fn handle_webhook(
        &self,
        request: &HttpRequest,
    ) -> Result<Result<WebhookOutcome, PluginError>, CallError> {
        self.host.handle_webhook(&self.id, request).await
    }

    /// Calls `send`.
    pub async fn send(
        &self,
        message: &OutboundMessage,
    ) -> Result<Result<SendReceipt, PluginError>, CallError> {
        self.host.send(&self.id, message).await
    }

    /// Calls `describe`.
    pub async fn describe(&self) -> Result<ChannelInfo, CallError> {
        self.host.describe_channel(&self.id).await
    }

    /// Calls `fetch-attachment`: how the host would download this file.
    pub async fn fetch_attachment(
        &self,
        attachment: &Attachment,
    ) -> Result<Result<AttachmentDownload, PluginError>, CallError> {
        self.host.fetch_attachment(&self.id, attachment).await
    }

    /// Downloads an attachment the way the server does: `fetch-attachment`,
    /// then the request through the fake HTTP (allow-list checked).
    pub async fn download_attachment(
        &self,
        attachment: &Attachment,
        max_bytes: usize,
    ) -> Result<Downloaded, DownloadError> {
        self.host
            .download_attachment(&self.id, attachment, max_bytes)
            .await
    }

    /// Copies an attachment the way the server does
    /// ([`PluginHost::copy_attachment`]) into a fresh [`MemorySink`], at most
    /// `max_bytes`.
    pub async fn copy_attachment(
        &self,
        attachment: &Attachment,
        max_bytes: u64,
    ) -> Result<Copied<MemorySink>, DownloadError> {
        self.copy_attachment_into(attachment, MemorySink::default(), max_bytes)
            .await
    }

    /// [`Harness::copy_attachment`] into `sink` (keep a clone to see what a
    /// failed copy wrote).
    pub async fn copy_attachment_into(
        &self,
        attachment: &Attachment,
        sink: MemorySink,
        max_bytes: u64,
    ) -> Result<Copied<MemorySink>, DownloadError> {
        self.host
            .copy_attachment(&self.id, attachment, sink, max_bytes)
            .await
    }

    /// Calls `list-templates`.
    pub async fn list_templates(
        &self,
    ) -> Result<Result<Vec<TemplateInfo>, PluginError>, CallError> {
        self.host.list_templates(&self.id).await
    }

    /// Calls `poll` with this cursor.
    pub async fn poll(
        &self,
        cursor: Option<&str>,
    ) -> Result<Result<PollOutcome, PluginError>, CallError> {
        self.host.poll(&self.id, cursor).await
    }

    /// Whether the plugin is an e-mail connector (exports `mailer`).
    pub fn is_mail(&self) -> bool {
        self.host.is_mail(&self.id)
    }

    /// Calls `mailer.poll-mail` with this cursor.
    pub async fn poll_mail(
        &self,
        cursor: Option<&str>,
    ) -> Result<Result<MailBatch, PluginError>, CallError> {
        self.host.poll_mail(&self.id, cursor).await
    }

    /// Calls `mailer.handle-mail-webhook`.
    pub async fn handle_mail_webhook(
        &self,
        request: &HttpRequest,
    ) -> Result<Result<MailBatch, PluginError>, CallError> {
        self.host.handle_mail_webhook(&self.id, request).await
    }

    /// Calls `mailer.send-mail` with these copies.
    pub async fn send_mail(
        &self,
        message: &OutboundMessage,
        copies: &Copies,
    ) -> Result<Result<SendReceipt, PluginError>, CallError> {
        self.host.send_mail(&self.id, message, copies).await
    }
}

/// Loads the plugin folder into `host`, enabled, and answers its id.
fn load_into(
    host: &PluginHost,
    dir: &Path,
    config: &[(&str, &str)],
    extra_allowed_hosts: &[&str],
) -> Result<String, LoadError> {
    let mut spec = LoadSpec::from_dir(dir)?;
    spec.config = config
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    spec.extra_allowed_hosts = extra_allowed_hosts.iter().map(|s| s.to_string()).collect();
    let id = spec.manifest.id.clone();
    host.load(spec)?;
    Ok(id)
}

/// Builds a webhook request: `POST url` with these headers and body.
pub fn webhook(url: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpRequest {
    HttpRequest {
        method: "POST".into(),
        url: url.into(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: body.to_vec(),
    }
}

/// An outbound text message to `to`, as the host builds a reply inside the
/// messaging window: no sender address, attachments, template, interactive
/// choices, thread metadata or author. Set other fields on the result.
pub fn text_message(
    message_id: &str,
    conversation_id: &str,
    to: bindings::Identity,
    body: &str,
) -> OutboundMessage {
    OutboundMessage {
        message_id: message_id.into(),
        conversation_id: conversation_id.into(),
        to,
        from: None,
        body: body.into(),
        attachments: Vec::new(),
        template: None,
        interactive: None,
        metadata: bindings::OutboundMetadata {
            subject: None,
            thread_id: None,
            in_reply_to: None,
            references: Vec::new(),
        },
        author: None,
        window: bindings::WindowUse::Open,
    }
}

/// No `Cc` and no `Bcc`.
pub fn no_copies() -> Copies {
    Copies {
        cc: Vec::new(),
        bcc: Vec::new(),
    }
}

/// A file at `url` with nothing else known: no content type, name, size,
/// inline bytes or content id.
pub fn attachment(url: &str) -> Attachment {
    Attachment {
        url: url.into(),
        content_type: None,
        filename: None,
        size: None,
        content: None,
        content_id: None,
    }
}
