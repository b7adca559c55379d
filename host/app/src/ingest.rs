//! Ingest: a provider's webhook through its connector into the store, then routing.
//!
//! The connector verifies and parses inside the sandbox; this module turns its
//! events into one ingest batch, commits it through the store's group-commit writer
//! and only then returns the answer for the provider. A webhook that fails
//! verification or parsing stores nothing. After the commit, new inbound messages
//! are handed to routing and published on the event bus.
//!
//! This module knows no HTTP types: the edge hands it the request's parts and sends
//! back the [`WebhookResponse`] it returns.

use std::sync::Arc;

use switchboard_core::{Attachment, ConsentAction, DeliveryStatus, Identity, normalize_identity};
use switchboard_plugin_host::{
    CallError, ChannelEvent, HttpRequest, PluginError, PluginHost, bindings,
};
use switchboard_store::{
    ConsentEvent, InboundMessage, IngestBatch, IngestEvent, IngestOutcome, Receipt, Store,
};

use crate::channels::Channels;
use crate::clock::now_ms;
use crate::error::{AppError, AppResult, ErrorKind};
use crate::events::Audience;
use crate::metrics::Metrics;
use crate::notify::Notifier;
use crate::routing::RoutingService;

/// A provider's request as the edge received it.
#[derive(Debug, Clone)]
pub struct WebhookRequest {
    /// `POST`, `GET`…
    pub method: String,
    /// The path and query string as received (`/hooks/sms-twilio/inbound?x=1`).
    pub path_and_query: String,
    /// Header names and values.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Vec<u8>,
}

/// The answer the connector wants the provider to get.
#[derive(Debug, Clone)]
pub struct WebhookResponse {
    /// HTTP status.
    pub status: u16,
    /// Header names and values.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// What ingest needs to know about the deployment.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// The URL providers call, without a trailing slash; connectors verify
    /// signatures against it.
    pub public_url: String,
    /// Region for phone numbers written without a country code (e.g. `US`).
    pub default_region: Option<String>,
    /// A resolved conversation reopens if the customer writes again within this.
    pub reopen_window_ms: i64,
}

/// The ingest use case.
pub struct Ingest {
    store: Store,
    plugins: PluginHost,
    channels: Arc<Channels>,
    notifier: Notifier,
    routing: Option<Arc<RoutingService>>,
    metrics: Arc<Metrics>,
    config: IngestConfig,
}

impl Ingest {
    /// Ingest over these parts.
    pub fn new(
        store: Store,
        plugins: PluginHost,
        channels: Arc<Channels>,
        notifier: Notifier,
        routing: Option<Arc<RoutingService>>,
        metrics: Arc<Metrics>,
        config: IngestConfig,
    ) -> Ingest {
        Ingest {
            store,
            plugins,
            channels,
            notifier,
            routing,
            metrics,
            config,
        }
    }

    /// Handles one provider webhook for `plugin_id`, counting it in the metrics.
    pub async fn webhook(
        &self,
        plugin_id: &str,
        request: WebhookRequest,
    ) -> AppResult<WebhookResponse> {
        let started = std::time::Instant::now();
        let result = self.process(plugin_id, request).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) if e.kind() == ErrorKind::Forbidden => "forbidden",
            Err(e) if matches!(e.kind(), ErrorKind::BadRequest | ErrorKind::NotFound) => "rejected",
            Err(_) => "error",
        };
        self.metrics.webhook(plugin_id, outcome, started.elapsed());
        result
    }

    async fn process(
        &self,
        plugin_id: &str,
        request: WebhookRequest,
    ) -> AppResult<WebhookResponse> {
        let request = HttpRequest {
            method: request.method,
            url: format!("{}{}", self.config.public_url, request.path_and_query),
            headers: request.headers,
            body: request.body,
        };
        let outcome = match self.plugins.handle_webhook(plugin_id, &request).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(e)) => return Err(plugin_error(plugin_id, e)),
            Err(e) => return Err(call_error(e)),
        };
        let channel = self
            .channels
            .info(plugin_id)
            .await
            .map_err(call_error)?
            .channel;
        let mut events = Vec::with_capacity(outcome.events.len());
        for event in outcome.events {
            events.push(convert(event, self.config.default_region.as_deref())?);
        }
        if !events.is_empty() {
            self.commit(plugin_id, &channel, events)
                .await
                .map_err(|e| {
                    tracing::error!(
                        plugin = plugin_id,
                        "ingest failed, provider will retry: {e}"
                    );
                    AppError::new(
                        ErrorKind::Unavailable,
                        "ingest_failed",
                        "the message could not be stored; retry later",
                    )
                })?;
        }
        Ok(WebhookResponse {
            status: outcome.response.status,
            headers: outcome.response.headers,
            body: outcome.response.body,
        })
    }

    /// Commits events of one channel as one batch, then hands new messages to
    /// routing and tells connected clients. Used by connectors' webhooks and by
    /// the host's own channels (webchat).
    pub async fn commit(
        &self,
        plugin_id: &str,
        channel: &str,
        events: Vec<IngestEvent>,
    ) -> Result<Vec<IngestOutcome>, switchboard_store::StoreError> {
        let batch = IngestBatch {
            plugin_id: plugin_id.to_string(),
            channel: channel.to_string(),
            now_ms: now_ms(),
            reopen_window_ms: self.config.reopen_window_ms,
            events,
        };
        let started = std::time::Instant::now();
        let outcomes = self.store.ingest(batch).await?;
        self.metrics.ingest(started.elapsed());
        self.publish(plugin_id, channel, &outcomes);
        Ok(outcomes)
    }

    /// Tells connected clients what the webhook changed.
    fn publish(&self, plugin_id: &str, channel: &str, outcomes: &[IngestOutcome]) {
        for outcome in outcomes {
            match outcome {
                IngestOutcome::Created {
                    contact_id,
                    conversation_id,
                    event_id,
                    new_contact,
                    new_conversation,
                } => {
                    if let Some(routing) = self.routing.clone() {
                        let (conversation, contact) = (conversation_id.clone(), contact_id.clone());
                        let channel = channel.to_string();
                        // Routing runs after the provider is answered; a task lost to a
                        // crash in between is recreated by the start-up reconciliation.
                        tokio::spawn(async move {
                            routing.on_inbound(&conversation, &contact, &channel).await;
                        });
                    }
                    self.notifier.conversation(
                        "timeline.created",
                        conversation_id,
                        serde_json::json!({
                            "plugin_id": plugin_id,
                            "contact_id": contact_id,
                            "conversation_id": conversation_id,
                            "event_id": event_id,
                            "new_contact": new_contact,
                            "new_conversation": new_conversation,
                        }),
                    );
                }
                IngestOutcome::ReceiptApplied {
                    event_id,
                    status,
                    changed: true,
                } => {
                    self.notifier.publish(
                        "timeline.delivery",
                        Audience::Supervisors,
                        serde_json::json!({"event_id": event_id, "delivery_status": status}),
                    );
                }
                IngestOutcome::ConsentRecorded {
                    contact_id,
                    state: consent,
                    ..
                } => {
                    self.notifier.publish(
                        "contact.consent",
                        Audience::Everyone,
                        serde_json::json!({"contact_id": contact_id, "state": consent}),
                    );
                }
                _ => {}
            }
        }
    }
}

fn identity(i: &bindings::Identity, region: Option<&str>) -> Result<Identity, AppError> {
    normalize_identity(&i.kind, &i.value, region).map_err(|e| {
        AppError::bad_request(format!("the connector produced an unusable identity: {e}"))
    })
}

fn convert(event: ChannelEvent, region: Option<&str>) -> Result<IngestEvent, AppError> {
    Ok(match event {
        ChannelEvent::Message(m) => IngestEvent::InboundMessage(InboundMessage {
            provider_id: m.provider_id,
            sender: identity(&m.sender, region)?,
            sender_name: m.sender_name,
            body: m.body,
            attachments: m
                .attachments
                .into_iter()
                .map(|a| Attachment {
                    url: a.url,
                    content_type: a.content_type,
                    filename: a.filename,
                    size: a.size,
                })
                .collect(),
            sent_at_ms: m.sent_at_ms.map(|t| t as i64),
        }),
        ChannelEvent::Receipt(r) => IngestEvent::Receipt(Receipt {
            provider_id: r.provider_id,
            status: delivery_status(r.status),
            error_code: r.error_code,
            error_message: r.error_message,
        }),
        ChannelEvent::Consent(c) => IngestEvent::Consent(ConsentEvent {
            provider_id: c.provider_id,
            identity: identity(&c.identity, region)?,
            action: match c.action {
                bindings::ConsentAction::OptOut => ConsentAction::OptOut,
                bindings::ConsentAction::OptIn => ConsentAction::OptIn,
                bindings::ConsentAction::Help => ConsentAction::Help,
            },
            keyword: Some(c.keyword),
        }),
    })
}

/// WIT delivery status → domain delivery status.
pub fn delivery_status(s: bindings::DeliveryStatus) -> DeliveryStatus {
    match s {
        bindings::DeliveryStatus::Queued => DeliveryStatus::Queued,
        bindings::DeliveryStatus::Sent => DeliveryStatus::Sent,
        bindings::DeliveryStatus::Delivered => DeliveryStatus::Delivered,
        bindings::DeliveryStatus::Read => DeliveryStatus::Read,
        bindings::DeliveryStatus::Failed => DeliveryStatus::Failed,
        bindings::DeliveryStatus::Undelivered => DeliveryStatus::Undelivered,
    }
}

fn plugin_error(plugin_id: &str, e: PluginError) -> AppError {
    match e {
        PluginError::Unauthorized(m) => {
            tracing::warn!(plugin = plugin_id, "webhook refused: {m}");
            AppError::forbidden(format!("webhook signature rejected: {m}"))
        }
        PluginError::InvalidRequest(m) => AppError::bad_request(format!("webhook rejected: {m}")),
        other => {
            tracing::error!(
                plugin = plugin_id,
                "webhook failed in the connector: {other:?}"
            );
            AppError::new(
                ErrorKind::Internal,
                "connector_error",
                "the connector failed to process the webhook",
            )
        }
    }
}

/// A failed plugin call as an HTTP answer.
pub fn call_error(e: CallError) -> AppError {
    match &e {
        CallError::NotFound(_) | CallError::WrongKind { .. } => AppError::not_found(e.to_string()),
        CallError::Disabled(_) | CallError::Quarantined { .. } => {
            AppError::new(ErrorKind::Unavailable, "plugin_unavailable", e.to_string())
        }
        _ => AppError::new(ErrorKind::Internal, "plugin_failed", e.to_string()),
    }
}
