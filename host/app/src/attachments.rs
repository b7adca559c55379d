//! Attachments: inbound files copied into the blob store, agents' uploads, and
//! the URLs each side fetches them from.
//!
//! - **Inbound.** Ingest records a message's files `pending` in the message's own
//!   transaction; [`Attachments::run`] then copies each through its connector
//!   into a [`BlobWriter`] of the [`BlobStore`] (`PluginHost::copy_attachment`:
//!   an e-mail connector of `switchboard:mail@0.2.0` writes the file there piece
//!   by piece; any other answers `fetch-attachment`, and the host makes the
//!   size-capped download from the connector's allowed hosts), and sniffs the
//!   type from the file's first bytes. A failed
//!   copy is retried with backoff and, after the last attempt, marked `failed`
//!   with the reason the agent sees. Nothing is lost by answering the provider
//!   first: the provider's reference is durable before the answer.
//! - **Agents** fetch files from `/api/v1/attachments/{id}` with their token;
//!   only raster images, audio and video are served inline (see
//!   [`crate::blobs::safe_inline`]).
//! - **Providers** fetch outbound files from signed, expiring URLs
//!   (`/media/{id}?expires=…&sig=…`, HMAC-SHA256 under a key derived from the
//!   store key) that need no account.

use std::sync::Arc;
use std::time::Duration;

use switchboard_core::{Direction, retry_delay};
use switchboard_plugin_host::{BlobSink, BoxFuture, DownloadError, PluginHost, bindings};
use switchboard_store::{AttachmentRow, Store};
use tokio::sync::{Notify, watch};

use crate::blobs::{BlobError, BlobStore, BlobWriter, sniff};
use crate::clock::now_ms;
use crate::error::{AppError, AppResult, ErrorKind, plugin_reason};
use crate::notify::Notifier;
use crate::signing;

/// Attachment tuning.
#[derive(Debug, Clone)]
pub struct AttachmentConfig {
    /// Largest file kept, inbound or uploaded.
    pub max_bytes: u64,
    /// Copy attempts before a file is marked failed.
    pub max_attempts: u32,
    /// Delay before the first retry; doubles each attempt.
    pub retry_base: Duration,
    /// Longest delay between attempts.
    pub retry_max: Duration,
    /// How long a signed media URL for a provider stays valid.
    pub url_ttl: Duration,
    /// Idle polling interval (new files wake the worker at once).
    pub poll: Duration,
}

impl Default for AttachmentConfig {
    fn default() -> Self {
        AttachmentConfig {
            max_bytes: 25 * 1024 * 1024,
            max_attempts: 8,
            retry_base: Duration::from_secs(2),
            retry_max: Duration::from_secs(600),
            url_ttl: Duration::from_secs(3600),
            poll: Duration::from_secs(1),
        }
    }
}

/// A file ready to serve.
#[derive(Debug)]
pub struct ServedFile {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Its sniffed content type.
    pub content_type: String,
    /// Its name, if known.
    pub filename: Option<String>,
}

/// The attachments use case.
pub struct Attachments {
    store: Store,
    plugins: PluginHost,
    blobs: BlobStore,
    notifier: Notifier,
    config: AttachmentConfig,
    public_url: String,
    key: [u8; 32],
    wake: Notify,
}

impl Attachments {
    /// Attachments over these parts; files live in `blobs`.
    pub fn new(
        store: Store,
        plugins: PluginHost,
        blobs: BlobStore,
        notifier: Notifier,
        config: AttachmentConfig,
        public_url: String,
    ) -> Attachments {
        let key = store.derived_key("media-url");
        Attachments {
            store,
            plugins,
            blobs,
            notifier,
            config,
            public_url,
            key,
            wake: Notify::new(),
        }
    }

    /// The limits in force.
    pub fn config(&self) -> &AttachmentConfig {
        &self.config
    }

    /// New pending files exist: copy them now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Keeps an agent's upload. Its type is sniffed from the bytes.
    pub async fn upload(
        &self,
        agent_id: &str,
        bytes: &[u8],
        declared_type: Option<&str>,
        filename: Option<&str>,
    ) -> AppResult<AttachmentRow> {
        if bytes.is_empty() {
            return Err(AppError::bad_request("the file is empty"));
        }
        let filename = filename
            .map(|f| f.rsplit(['/', '\\']).next().unwrap_or(f).trim())
            .filter(|f| !f.is_empty() && f.len() <= 255 && !f.chars().any(char::is_control));
        let content_type = sniff(bytes, declared_type);
        let key = self.blobs.put(bytes).await.map_err(blob_error)?;
        Ok(self
            .store
            .create_upload(
                agent_id,
                &key,
                bytes.len() as u64,
                &content_type,
                filename,
                now_ms(),
            )
            .await?)
    }

    /// Keeps a file a connector handed over as bytes (an e-mail part) and returns
    /// its key and size; the message then names it as stored.
    pub async fn keep_inline(&self, bytes: &[u8]) -> AppResult<(String, u64)> {
        let key = self.blobs.put(bytes).await.map_err(blob_error)?;
        Ok((key, bytes.len() as u64))
    }

    /// A stored file, for an agent.
    pub async fn open(&self, id: &str) -> AppResult<ServedFile> {
        let row = self.store.attachment(id).await?;
        let Some(blob) = row.blob.as_deref() else {
            return Err(match row.status.as_str() {
                "failed" => AppError::new(
                    ErrorKind::NotFound,
                    "attachment_failed",
                    format!(
                        "the file could not be copied from the provider: {}",
                        row.last_error.as_deref().unwrap_or("unknown error")
                    ),
                ),
                _ => AppError::new(
                    ErrorKind::Conflict,
                    "attachment_pending",
                    "the file is still being copied from the provider; try again shortly",
                ),
            });
        };
        let bytes = self.blobs.get(blob).await.map_err(blob_error)?;
        Ok(ServedFile {
            bytes,
            content_type: row
                .content_type
                .clone()
                .unwrap_or_else(|| "application/octet-stream".into()),
            filename: row.filename.clone(),
        })
    }

    fn signature(&self, id: &str, expires: i64) -> String {
        signing::hmac_hex(&self.key, &[id.as_bytes(), expires.to_string().as_bytes()])
    }

    /// A URL a provider can fetch `id` from until the TTL runs out.
    pub fn signed_url(&self, id: &str) -> String {
        let expires = now_ms() / 1000 + self.config.url_ttl.as_secs() as i64;
        format!(
            "{}/media/{id}?expires={expires}&sig={}",
            self.public_url,
            self.signature(id, expires)
        )
    }

    /// A file behind a signed URL; refused when the signature is wrong or expired.
    pub async fn open_signed(&self, id: &str, expires: i64, sig: &str) -> AppResult<ServedFile> {
        if !signing::same(&self.signature(id, expires), sig) {
            return Err(AppError::forbidden("the media link is not valid"));
        }
        if expires < now_ms() / 1000 {
            return Err(AppError::forbidden("the media link has expired"));
        }
        let row = self.store.attachment(id).await?;
        if row.direction != Direction::Out {
            return Err(AppError::forbidden(
                "only outbound files are shared this way",
            ));
        }
        self.open(id).await
    }

    /// Copies pending inbound files until `shutdown` turns true.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        const BATCH: u32 = 8;
        let lease = Duration::from_secs(300).as_millis() as i64;
        loop {
            if *shutdown.borrow() {
                return;
            }
            let claimed = match self.store.claim_attachments(now_ms(), BATCH, lease).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::error!("attachment claim failed: {e}");
                    Vec::new()
                }
            };
            let full = claimed.len() == BATCH as usize;
            for row in claimed {
                self.copy(row).await;
            }
            if full {
                continue;
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.config.poll) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    async fn copy(&self, row: AttachmentRow) {
        let Some(plugin_id) = row.plugin_id.clone() else {
            return;
        };
        let reference = bindings::Attachment {
            url: row.source.clone(),
            content_type: row.content_type.clone(),
            filename: row.filename.clone(),
            size: row.size.and_then(|s| u64::try_from(s).ok()),
            content: None,
            content_id: row.content_id.clone(),
        };
        let result = self.copy_into_blobs(&plugin_id, &reference).await;
        let now = now_ms();
        let stored = match result {
            Ok((key, size, content_type)) => {
                self.store
                    .attachment_stored(&row.id, &key, size, &content_type, now)
                    .await
            }
            Err((reason, retryable)) => {
                let attempt = row.attempts + 1;
                let next = (retryable && attempt < self.config.max_attempts).then(|| {
                    now + retry_delay(attempt, self.config.retry_base, self.config.retry_max)
                        .as_millis() as i64
                });
                tracing::warn!(
                    plugin = %plugin_id,
                    attachment = %row.id,
                    attempt,
                    gave_up = next.is_none(),
                    "attachment copy failed: {reason}"
                );
                self.store
                    .attachment_failed(&row.id, &reason, next, now)
                    .await
            }
        };
        match stored {
            Ok(updated) if updated.status != "pending" => {
                if let Some(event_id) = &updated.event_id
                    && let Ok(event) = self.store.event(event_id).await
                    && let Some(conversation_id) = &event.conversation_id
                {
                    self.notifier.conversation(
                        "timeline.updated",
                        conversation_id,
                        serde_json::json!({
                            "conversation_id": conversation_id,
                            "event_id": event_id,
                            "attachment_id": updated.id,
                            "status": updated.status,
                        }),
                    );
                }
            }
            Ok(_) => {}
            Err(e) => tracing::error!(attachment = %row.id, "recording a copy failed: {e}"),
        }
    }
}

impl Attachments {
    /// One copy attempt: the file into a blob writer, stored when whole. On
    /// failure, the reason for the agent and whether to try again.
    async fn copy_into_blobs(
        &self,
        plugin_id: &str,
        reference: &bindings::Attachment,
    ) -> Result<(String, u64, String), (String, bool)> {
        let blob_failure = |e: BlobError| {
            let retryable = !matches!(e, BlobError::TooLarge { .. });
            (e.to_string(), retryable)
        };
        let writer = self.blobs.writer().await.map_err(blob_failure)?;
        let copied = self
            .plugins
            .copy_attachment(plugin_id, reference, writer, self.config.max_bytes)
            .await
            .map_err(|e| (download_reason(&e), e.is_retryable()))?;
        let stored = copied.sink.finish().await.map_err(blob_failure)?;
        let content_type = sniff(&stored.head, copied.content_type.as_deref());
        Ok((stored.key, stored.size, content_type))
    }
}

/// The blob store takes the files the plugin host copies.
impl BlobSink for BlobWriter {
    fn write<'a>(&'a mut self, data: &'a [u8]) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            BlobWriter::write(self, data)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// A reason an agent can read, without provider URLs (they may carry tokens).
fn download_reason(e: &DownloadError) -> String {
    match e {
        DownloadError::Plugin(call) => format!("the connector failed: {call}"),
        DownloadError::Refused(p) => format!("the connector refused: {}", plugin_reason(p)),
        DownloadError::Denied(_) => {
            "the provider's file is on a host the connector may not reach".into()
        }
        DownloadError::TooLarge { max_bytes } => {
            format!("the file is larger than the {max_bytes} byte limit")
        }
        DownloadError::Status(s) => format!("the provider answered HTTP {s}"),
        DownloadError::Http(_) => "the provider could not be reached".into(),
        DownloadError::Storage(detail) => {
            format!("the file store could not take the file: {detail}")
        }
    }
}

fn blob_error(e: BlobError) -> AppError {
    match e {
        BlobError::TooLarge { .. } => {
            AppError::new(ErrorKind::PayloadTooLarge, "too_large", e.to_string())
        }
        BlobError::BadKey => AppError::not_found("no such file"),
        BlobError::Io(_) | BlobError::Database(_) => {
            tracing::error!("{e}");
            AppError::new(
                ErrorKind::Unavailable,
                "storage_unavailable",
                "the file store is unavailable",
            )
        }
    }
}

/// Shared handle.
pub type SharedAttachments = Arc<Attachments>;
