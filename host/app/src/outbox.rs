//! Replies and the outbox: an agent's reply is written with its outbox row in one
//! transaction, and the worker delivers it through its connector.
//!
//! A reply is durable the moment [`Outbox::reply`] returns (event and outbox row
//! commit together). This worker claims due rows with a lease — a crashed worker's
//! rows come back when the lease runs out — calls the connector's `send`, and
//! records the result: sent, retry with exponential backoff, or dead letter
//! after the last attempt. Consent is checked again here, on the host's send
//! path, so no connector can message an identity that opted out.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use switchboard_core::{ConsentState, retry_delay};
use switchboard_plugin_host::{CallError, OutboundMessage, PluginError, PluginHost, bindings};
use switchboard_store::{NewReply, OutboxRow, Store, TimelineEvent};
use tokio::sync::{Notify, watch};

use crate::channels::{Channels, WEBCHAT_PLUGIN_ID};
use crate::clock::now_ms;
use crate::error::{AppError, AppResult};
use crate::ingest::{call_error, delivery_status};
use crate::metrics::Metrics;
use crate::notify::Notifier;
use crate::text::text_field;
use crate::webchat::Webchat;

/// Outbox tuning.
#[derive(Debug, Clone)]
pub struct OutboxConfig {
    /// Delay before the first retry; doubles each attempt.
    pub retry_base: Duration,
    /// Longest delay between attempts.
    pub retry_max: Duration,
    /// Attempts before a message becomes a dead letter.
    pub max_attempts: u32,
    /// How long a claimed row is reserved for one worker.
    pub lease: Duration,
    /// Idle polling interval (a new reply wakes the worker at once).
    pub poll: Duration,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            retry_base: Duration::from_secs(2),
            retry_max: Duration::from_secs(300),
            max_attempts: 8,
            lease: Duration::from_secs(120),
            poll: Duration::from_millis(500),
        }
    }
}

/// Replies and their delivery.
pub struct Outbox {
    store: Store,
    plugins: PluginHost,
    channels: Arc<Channels>,
    notifier: Notifier,
    metrics: Arc<Metrics>,
    webchat: Arc<Webchat>,
    config: OutboxConfig,
    wake: Notify,
}

impl Outbox {
    /// The outbox over these parts.
    pub fn new(
        store: Store,
        plugins: PluginHost,
        channels: Arc<Channels>,
        notifier: Notifier,
        metrics: Arc<Metrics>,
        webchat: Arc<Webchat>,
        config: OutboxConfig,
    ) -> Outbox {
        Outbox {
            store,
            plugins,
            channels,
            notifier,
            metrics,
            webchat,
            config,
            wake: Notify::new(),
        }
    }

    /// An agent's reply on the conversation's current channel, or on `channel` (a
    /// plugin id or a channel name): the event and its outbox row are committed
    /// together, then the worker is woken.
    pub async fn reply(
        &self,
        agent_id: &str,
        conversation_id: &str,
        body: String,
        channel: Option<&str>,
    ) -> AppResult<(TimelineEvent, OutboxRow)> {
        text_field("body", &body)?;
        let conversation = self.store.conversation(conversation_id).await?;
        let plugin_id =
            match channel {
                Some(c) => self.channels.plugin_named(c).await.ok_or_else(|| {
                    AppError::bad_request(format!("no enabled channel plugin `{c}`"))
                })?,
                None => conversation.last_plugin_id.clone().ok_or_else(|| {
                    AppError::bad_request("the conversation has no channel yet; give `channel`")
                })?,
            };
        let info = self.channels.info(&plugin_id).await.map_err(call_error)?;
        let contact = self.store.contact(&conversation.contact_id).await?;
        let to = contact
            .latest_identity(&info.identity_kind)
            .map(|i| i.identity())
            .ok_or_else(|| {
                AppError::bad_request(format!(
                    "the contact has no {} identity to reach on {}",
                    info.identity_kind, info.channel
                ))
            })?;
        let (event, outbox) = self
            .store
            .create_reply(NewReply {
                conversation_id: conversation_id.to_string(),
                author_agent_id: Some(agent_id.to_string()),
                body,
                plugin_id,
                channel: info.channel,
                to,
                now_ms: now_ms(),
            })
            .await?;
        self.wake.notify_one();
        self.notifier.conversation(
            "timeline.created",
            conversation_id,
            json!({"conversation_id": conversation_id, "contact_id": event.contact_id, "event_id": event.id}),
        );
        Ok((event, outbox))
    }

    /// Puts a dead letter back in line, on behalf of `agent_id`.
    pub async fn retry(&self, agent_id: &str, id: &str) -> AppResult<()> {
        self.store.outbox_requeue(id, now_ms()).await?;
        self.store
            .audit(agent_id, "outbox.retry", Some(id), serde_json::json!(null))
            .await?;
        self.wake.notify_one();
        Ok(())
    }

    /// Runs until `shutdown` turns true.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        const BATCH: u32 = 32;
        loop {
            if *shutdown.borrow() {
                return;
            }
            let lease = self.config.lease.as_millis() as i64;
            let claimed = match self.store.claim_outbox(now_ms(), BATCH, lease).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::error!("outbox claim failed: {e}");
                    Vec::new()
                }
            };
            let full = claimed.len() == BATCH as usize;
            let sends = claimed.into_iter().map(|row| self.deliver(row));
            futures_join_all(sends).await;
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

    async fn deliver(&self, row: OutboxRow) {
        let now = now_ms();
        let to = row.to.clone();
        match self.store.consent_state(&to, &row.channel).await {
            Ok(Some(ConsentState::OptedOut)) => {
                let reason = format!(
                    "{}:{} opted out of {}; not sent",
                    row.to.kind(),
                    row.to.value(),
                    row.channel
                );
                self.finish_dead(&row, &reason).await;
                return;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(outbox = %row.id, "consent check failed: {e}");
                self.retry_later(&row, format!("consent check failed: {e}"), None)
                    .await;
                return;
            }
        }
        if row.plugin_id == WEBCHAT_PLUGIN_ID {
            match self.webchat.deliver(&row).await {
                Ok(()) => self.metrics.outbox("sent"),
                Err(e) => {
                    self.retry_later(&row, format!("webchat delivery failed: {e}"), None)
                        .await
                }
            }
            return;
        }
        let message = OutboundMessage {
            message_id: row.event_id.clone(),
            conversation_id: row.conversation_id.clone(),
            to: bindings::Identity {
                kind: row.to.kind().to_string(),
                value: row.to.value().to_string(),
            },
            body: row.body.clone(),
            attachments: Vec::new(),
        };
        let verdict = match self.plugins.send(&row.plugin_id, &message).await {
            Ok(Ok(receipt)) => {
                let status = delivery_status(receipt.status);
                if let Err(e) = self
                    .store
                    .outbox_sent(&row.id, &receipt.provider_id, status, now)
                    .await
                {
                    tracing::error!(outbox = %row.id, "recording a sent message failed: {e}");
                }
                self.metrics.outbox("sent");
                return;
            }
            Ok(Err(e)) => match e {
                PluginError::Transient(m) => {
                    Verdict::Retry(format!("provider unavailable: {m}"), None)
                }
                PluginError::RateLimited(after) => Verdict::Retry(
                    "provider rate limit".into(),
                    after.map(|s| Duration::from_secs(s.into())),
                ),
                PluginError::Internal(m) => Verdict::Retry(format!("connector error: {m}"), None),
                PluginError::Permanent(m) => Verdict::Dead(format!("provider refused: {m}")),
                PluginError::Config(m) => Verdict::Dead(format!("connector misconfigured: {m}")),
                PluginError::InvalidRequest(m) => Verdict::Dead(format!("invalid message: {m}")),
                PluginError::Unauthorized(m) => Verdict::Dead(format!("provider auth failed: {m}")),
            },
            Err(e @ CallError::NotFound(_)) | Err(e @ CallError::WrongKind { .. }) => {
                Verdict::Dead(e.to_string())
            }
            Err(e) => Verdict::Retry(e.to_string(), None),
        };
        match verdict {
            Verdict::Retry(reason, after) => self.retry_later(&row, reason, after).await,
            Verdict::Dead(reason) => self.finish_dead(&row, &reason).await,
        }
    }

    async fn retry_later(&self, row: &OutboxRow, reason: String, after: Option<Duration>) {
        let attempts = row.attempts + 1;
        if attempts >= self.config.max_attempts {
            let reason = format!("gave up after {attempts} attempts: {reason}");
            self.finish_dead(row, &reason).await;
            return;
        }
        let delay = after.unwrap_or_else(|| {
            retry_delay(attempts, self.config.retry_base, self.config.retry_max)
        });
        tracing::warn!(outbox = %row.id, attempts, "send failed, retrying in {delay:?}: {reason}");
        self.metrics.outbox("retry");
        let next = now_ms() + delay.as_millis() as i64;
        if let Err(e) = self
            .store
            .outbox_retry(&row.id, attempts, next, &reason)
            .await
        {
            tracing::error!(outbox = %row.id, "recording a retry failed: {e}");
        }
    }

    async fn finish_dead(&self, row: &OutboxRow, reason: &str) {
        tracing::error!(outbox = %row.id, "dead letter: {reason}");
        self.metrics.outbox("dead");
        if let Err(e) = self.store.outbox_dead(&row.id, reason).await {
            tracing::error!(outbox = %row.id, "recording a dead letter failed: {e}");
        }
    }
}

async fn futures_join_all<F: std::future::Future<Output = ()>>(futs: impl Iterator<Item = F>) {
    let mut set = Vec::new();
    for f in futs {
        set.push(f);
    }
    for f in set {
        f.await;
    }
}

enum Verdict {
    Retry(String, Option<Duration>),
    Dead(String),
}
