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

use serde_json::{Value, json};
use switchboard_core::{ConsentState, retry_delay};
use switchboard_plugin_host::bindings::ChannelCapabilities;
use switchboard_plugin_host::{
    CallError, Copies, OutboundMessage, PluginError, PluginHost, bindings,
};
use switchboard_store::{NewReply, OutboxRow, Store, TimelineEvent};
use tokio::sync::{Notify, watch};

use crate::attachments::Attachments;
use crate::channels::{Channels, WEBCHAT_PLUGIN_ID};
use crate::clock::{Clock, now_ms};
use crate::compose::{
    Interactive, ReplyContent, Template, WindowDecision, type_allowed, window_state,
};
use crate::error::call_error;
use crate::error::{AppError, AppResult, ErrorKind};
use crate::ingest::{delivery_status, notify_delivery};
use crate::mail::{self, EmailPayload, ThreadTokens};
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
    attachments: Arc<Attachments>,
    threads: ThreadTokens,
    clock: Clock,
    config: OutboxConfig,
    wake: Notify,
}

/// What the outbox is built from.
pub struct OutboxParts {
    /// The store.
    pub store: Store,
    /// The plugin host.
    pub plugins: PluginHost,
    /// Channel descriptions (capabilities, templates).
    pub channels: Arc<Channels>,
    /// Realtime notifications.
    pub notifier: Notifier,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Webchat, which delivers its own replies.
    pub webchat: Arc<Webchat>,
    /// Attachments (signed links for outbound files).
    pub attachments: Arc<Attachments>,
    /// The time replies are stamped with (the delivery worker's leases and retries
    /// keep the wall clock).
    pub clock: Clock,
}

impl Outbox {
    /// The outbox over these parts.
    pub fn new(parts: OutboxParts, config: OutboxConfig) -> Outbox {
        let OutboxParts {
            store,
            plugins,
            channels,
            notifier,
            metrics,
            webchat,
            attachments,
            clock,
        } = parts;
        Outbox {
            threads: ThreadTokens::new(&store),
            store,
            plugins,
            channels,
            notifier,
            metrics,
            webchat,
            attachments,
            clock,
            config,
            wake: Notify::new(),
        }
    }

    /// An agent's reply on the conversation's current channel, or on `channel` (a
    /// plugin id or a channel name): the event and its outbox row are committed
    /// together, then the worker is woken.
    ///
    /// The host decides here whether the message may leave (consent in the
    /// store; the channel's messaging window, body length, attachment count,
    /// size and types, templates and interactive support from its `describe`),
    /// so the agent learns at once instead of from a provider error later.
    pub async fn reply(
        &self,
        agent_id: &str,
        conversation_id: &str,
        content: ReplyContent,
        channel: Option<&str>,
    ) -> AppResult<(TimelineEvent, OutboxRow)> {
        self.send_as(Some(agent_id), conversation_id, content, channel)
            .await
    }

    /// A message the host itself sends (a survey question), checked and queued
    /// like an agent's reply but with no author, no agent name and no signature.
    pub async fn host_message(
        &self,
        conversation_id: &str,
        content: ReplyContent,
        channel: Option<&str>,
    ) -> AppResult<(TimelineEvent, OutboxRow)> {
        self.send_as(None, conversation_id, content, channel).await
    }

    async fn send_as(
        &self,
        author: Option<&str>,
        conversation_id: &str,
        content: ReplyContent,
        channel: Option<&str>,
    ) -> AppResult<(TimelineEvent, OutboxRow)> {
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
        let caps = &info.capabilities;
        let now = self.clock.now_ms();
        let mut payload = serde_json::Map::new();
        let mut content = content;
        if let Some(template) = content.template.as_mut() {
            template.normalize();
        }
        let body = match &content.template {
            Some(template) => {
                if !caps.templates {
                    return Err(AppError::new(
                        ErrorKind::Unprocessable,
                        "templates_unsupported",
                        format!("{} has no message templates", info.display_name),
                    ));
                }
                if !content.attachments.is_empty() || content.interactive.is_some() {
                    return Err(AppError::bad_request(
                        "a template is sent on its own, without files or choices",
                    ));
                }
                template.validate()?;
                payload.insert("template".into(), json!(template));
                self.channels.render_template(&plugin_id, template).await
            }
            None => {
                let body = content.body.trim().to_string();
                if body.is_empty() && content.attachments.is_empty() {
                    return Err(AppError::bad_request("`body` must not be empty"));
                }
                if !body.is_empty() {
                    text_field("body", &body)?;
                }
                if let Some(max) = caps.max_body_chars
                    && body.chars().count() > max as usize
                {
                    return Err(AppError::bad_request(format!(
                        "{} takes at most {max} characters",
                        info.display_name
                    )));
                }
                let window = self.window(conversation_id, &plugin_id, caps, now).await?;
                payload.insert("window".into(), json!(window));
                if let Some(interactive) = &content.interactive {
                    if !caps.interactive {
                        return Err(AppError::new(
                            ErrorKind::Unprocessable,
                            "interactive_unsupported",
                            format!("{} has no interactive messages", info.display_name),
                        ));
                    }
                    interactive.validate()?;
                    payload.insert("interactive".into(), json!(interactive));
                }
                self.check_files(&content.attachments, caps, &info.display_name)
                    .await?;
                body
            }
        };
        if let Some(agent_id) = author
            && let Ok(agent) = self.store.agent(agent_id).await
        {
            payload.insert("author".into(), json!(agent.name));
        }
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
        let mut body = body;
        if info.channel == mail::EMAIL_CHANNEL && content.template.is_none() {
            let timeline = self.store.conversation_timeline(conversation_id).await?;
            let email = mail::prepare(
                &self.threads,
                &mail::ReplyContext {
                    timeline: &timeline,
                    conversation_id,
                    to: to.value(),
                    customer_name: contact.display_name.as_deref(),
                },
                &content.email.unwrap_or_default(),
            )?;
            if let Some(agent_id) = author
                && let Some(signature) = self.store.agent_signature(agent_id).await?
                && !signature.trim().is_empty()
            {
                body = format!("{body}\n\n-- \n{}", signature.trim_end());
            }
            payload.insert("email".into(), json!(email));
        }
        let (event, outbox) = self
            .store
            .create_reply(NewReply {
                conversation_id: conversation_id.to_string(),
                author_agent_id: author.map(str::to_string),
                body,
                plugin_id,
                channel: info.channel,
                to,
                now_ms: now,
                payload: Value::Object(payload),
                attachments: content.attachments,
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

    /// Where a free-form reply stands against the channel's window: open,
    /// inside the longer window for people (Messenger's `HUMAN_AGENT`), or
    /// refused with `window_closed` and when it closed.
    async fn window(
        &self,
        conversation_id: &str,
        plugin_id: &str,
        caps: &ChannelCapabilities,
        now: i64,
    ) -> AppResult<WindowDecision> {
        let Some(window) = caps.window_secs else {
            return Ok(WindowDecision::Open);
        };
        let last = self
            .store
            .last_inbound_at(conversation_id, plugin_id)
            .await?;
        let state = window_state(last, window, caps.human_window_secs, now);
        match state.decision {
            Some(decision) => Ok(decision),
            None => {
                let message = match state.closed_at {
                    Some(at) => format!(
                        "the messaging window closed at {}; send an approved template instead",
                        crate::clock::iso8601(at)
                    ),
                    None => "the customer has not written on this channel yet; send an approved template instead".to_string(),
                };
                Err(
                    AppError::new(ErrorKind::Unprocessable, "window_closed", message).with_detail(
                        "closed_at",
                        state
                            .closed_at
                            .map_or(Value::Null, |at| json!(crate::clock::iso8601(at))),
                    ),
                )
            }
        }
    }

    /// Refuses files the channel will not carry.
    async fn check_files(
        &self,
        ids: &[String],
        caps: &ChannelCapabilities,
        channel: &str,
    ) -> AppResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let limits = &caps.attachments;
        if ids.len() > limits.max_count as usize {
            return Err(AppError::bad_request(if limits.max_count == 0 {
                format!("{channel} does not carry files")
            } else {
                format!(
                    "{channel} takes at most {} files per message",
                    limits.max_count
                )
            }));
        }
        for id in ids {
            let row = self.store.attachment(id).await?;
            let size = row.size.unwrap_or(0).max(0) as u64;
            if size > limits.max_bytes {
                return Err(AppError::bad_request(format!(
                    "{} is {size} bytes; {channel} takes files up to {} bytes",
                    row.filename.as_deref().unwrap_or("the file"),
                    limits.max_bytes
                )));
            }
            let content_type = row
                .content_type
                .as_deref()
                .unwrap_or("application/octet-stream");
            if !type_allowed(&limits.content_types, content_type) {
                return Err(AppError::bad_request(format!(
                    "{channel} does not take {content_type} files"
                )));
            }
        }
        Ok(())
    }

    /// The messaging window of a conversation on one channel, for the desk.
    pub async fn window_status(&self, conversation_id: &str, plugin_id: &str) -> AppResult<Value> {
        let info = self.channels.info(plugin_id).await.map_err(call_error)?;
        let caps = &info.capabilities;
        let Some(window) = caps.window_secs else {
            return Ok(
                json!({"plugin_id": plugin_id, "channel": info.channel, "has_window": false, "open": true}),
            );
        };
        let last = self
            .store
            .last_inbound_at(conversation_id, plugin_id)
            .await?;
        let now = now_ms();
        let state = window_state(last, window, caps.human_window_secs, now);
        let at = |t: Option<i64>| t.map_or(Value::Null, |t| json!(crate::clock::iso8601(t)));
        Ok(json!({
            "plugin_id": plugin_id,
            "channel": info.channel,
            "has_window": true,
            "open": state.decision == Some(WindowDecision::Open),
            "human_agent": state.decision == Some(WindowDecision::HumanAgent),
            "last_inbound_at": at(last),
            "closes_at": at(state.closes_at),
            "human_closes_at": at(state.human_closes_at),
            "closed_at": at(state.closed_at),
            "seconds_left": state.closes_at.or(state.human_closes_at).map(|c| ((c - now) / 1000).max(0)),
            "templates": caps.templates,
        }))
    }

    /// Whether `plugin_id` is an e-mail connector.
    pub fn is_mail(&self, plugin_id: &str) -> bool {
        self.plugins.is_mail(plugin_id)
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
        let message = match self.outbound(&row).await {
            Ok(m) => m,
            Err(e) => {
                self.retry_later(&row, format!("preparing the message failed: {e}"), None)
                    .await;
                return;
            }
        };
        let sent = match &message.1 {
            Some(copies) => {
                self.plugins
                    .send_mail(&row.plugin_id, &message.0, copies)
                    .await
            }
            None => self.plugins.send(&row.plugin_id, &message.0).await,
        };
        let verdict = match sent {
            Ok(Ok(receipt)) => {
                let status = delivery_status(receipt.status);
                match self
                    .store
                    .outbox_sent(&row.id, &receipt.provider_id, status, now, row.lease_until)
                    .await
                {
                    Ok(sent) => {
                        let status = sent.delivery_status.unwrap_or(status);
                        notify_delivery(&self.store, &self.notifier, &row.event_id, status).await;
                    }
                    Err(e) => {
                        tracing::error!(outbox = %row.id, "recording a sent message failed: {e}")
                    }
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
                PluginError::WindowClosed(m) => {
                    Verdict::Dead(format!("outside the messaging window: {m}"))
                }
                PluginError::Unsupported(m) => {
                    Verdict::Dead(format!("the channel cannot send this: {m}"))
                }
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

    /// The message a connector gets for an outbox row: the reply's text and
    /// payload, its files as signed URLs the provider can fetch.
    ///
    /// For an e-mail connector the copies come with it (`None` otherwise).
    async fn outbound(&self, row: &OutboxRow) -> AppResult<(OutboundMessage, Option<Copies>)> {
        let payload: Payload = serde_json::from_value(row.payload.clone())
            .map_err(|e| AppError::internal(format!("outbox payload: {e}")))?;
        // An e-mail connector puts the files into the mail itself: it gets the
        // bytes rather than a link back to this host.
        let mail = self.plugins.is_mail(&row.plugin_id);
        let mut attachments = Vec::new();
        for file in self.store.event_attachments(&row.event_id).await? {
            let content = if mail {
                Some(self.attachments.open(&file.id).await?.bytes)
            } else {
                None
            };
            attachments.push(bindings::Attachment {
                url: self.attachments.signed_url(&file.id),
                content_type: file.content_type.clone(),
                filename: file.filename.clone(),
                size: file.size.and_then(|s| u64::try_from(s).ok()),
                content,
                content_id: None,
            });
        }
        let copies = mail.then(|| {
            payload
                .email
                .as_ref()
                .map(EmailPayload::copies)
                .unwrap_or(Copies {
                    cc: Vec::new(),
                    bcc: Vec::new(),
                })
        });
        let message = OutboundMessage {
            message_id: row.event_id.clone(),
            conversation_id: row.conversation_id.clone(),
            to: bindings::Identity {
                kind: row.to.kind().to_string(),
                value: row.to.value().to_string(),
            },
            from: None,
            body: match (&payload.template, &payload.email) {
                (Some(_), _) => String::new(),
                (None, Some(email)) => email.body(&row.body),
                (None, None) => row.body.clone(),
            },
            attachments,
            template: payload.template.map(|t| bindings::TemplateMessage {
                name: t.name,
                language: t.language,
                parameters: t
                    .parameters
                    .into_iter()
                    .map(|p| bindings::TemplateParameter {
                        name: p.name,
                        value: p.value,
                    })
                    .collect(),
            }),
            interactive: payload.interactive.clone().map(Interactive::into_wit),
            metadata: payload
                .email
                .as_ref()
                .map(EmailPayload::metadata)
                .unwrap_or(bindings::OutboundMetadata {
                    subject: None,
                    thread_id: None,
                    in_reply_to: None,
                    references: Vec::new(),
                }),
            author: payload.author.clone(),
            window: match payload.window {
                Some(WindowDecision::HumanAgent) => bindings::WindowUse::HumanAgent,
                _ if row.payload.get("template").is_some() => bindings::WindowUse::Template,
                _ => bindings::WindowUse::Open,
            },
        };
        Ok((message, copies))
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
            .outbox_retry(&row.id, attempts, next, &reason, row.lease_until)
            .await
        {
            tracing::error!(outbox = %row.id, "recording a retry failed: {e}");
        }
    }

    async fn finish_dead(&self, row: &OutboxRow, reason: &str) {
        tracing::error!(outbox = %row.id, "dead letter: {reason}");
        self.metrics.outbox("dead");
        match self
            .store
            .outbox_dead(&row.id, reason, row.lease_until)
            .await
        {
            Ok(_) => {
                notify_delivery(
                    &self.store,
                    &self.notifier,
                    &row.event_id,
                    switchboard_core::DeliveryStatus::Failed,
                )
                .await
            }
            Err(e) => tracing::error!(outbox = %row.id, "recording a dead letter failed: {e}"),
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

/// What the send worker reads from an outbox row's payload.
#[derive(Debug, Default, serde::Deserialize)]
struct Payload {
    #[serde(default)]
    template: Option<Template>,
    #[serde(default)]
    interactive: Option<Interactive>,
    #[serde(default)]
    author: Option<String>,
    #[serde(default)]
    window: Option<WindowDecision>,
    #[serde(default)]
    email: Option<EmailPayload>,
}
