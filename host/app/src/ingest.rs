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

use serde_json::{Map, Value, json};
use switchboard_core::{ConsentAction, DeliveryStatus, Identity, normalize_identity};
use switchboard_plugin_host::{
    BoxFuture, ChannelEvent, Envelope, HttpRequest, PluginError, PluginHost, bindings,
};
use switchboard_store::{
    ConsentEvent, InboundAttachment, InboundMessage, IngestBatch, IngestEvent, IngestOutcome,
    Receipt, Store,
};

use crate::attachments::Attachments;

use crate::channels::Channels;
use crate::clock::Clock;
use crate::error::{AppError, AppResult, ErrorKind, call_error};
use crate::events::Audience;
use crate::mail::{self, ThreadTokens};
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

/// Takes the inbound messages that answer something the host asked (a survey
/// question) out of a batch before it is stored as messages; surveys implement it.
pub trait AnswerCatcher: Send + Sync {
    /// The events of `plugin_id`'s batch that remain messages.
    fn take<'a>(
        &'a self,
        plugin_id: &'a str,
        events: Vec<IngestEvent>,
    ) -> BoxFuture<'a, Result<Vec<IngestEvent>, switchboard_store::StoreError>>;
}

/// The ingest use case.
pub struct Ingest {
    store: Store,
    plugins: PluginHost,
    channels: Arc<Channels>,
    notifier: Notifier,
    routing: Option<Arc<RoutingService>>,
    metrics: Arc<Metrics>,
    attachments: Arc<Attachments>,
    threads: ThreadTokens,
    config: IngestConfig,
    clock: Clock,
    answers: std::sync::OnceLock<Arc<dyn AnswerCatcher>>,
}

/// What one poll brought, from either kind of connector.
struct Polled {
    events: Vec<ChannelEvent>,
    envelopes: Option<Vec<Envelope>>,
    cursor: Option<String>,
    more: bool,
}

/// What ingest is built from.
pub struct IngestParts {
    /// The store.
    pub store: Store,
    /// The plugin host.
    pub plugins: PluginHost,
    /// Channel descriptions.
    pub channels: Arc<Channels>,
    /// Realtime notifications.
    pub notifier: Notifier,
    /// Routing, when it runs.
    pub routing: Option<Arc<RoutingService>>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Attachments (inline files are kept before the commit; pending ones are
    /// copied after it).
    pub attachments: Arc<Attachments>,
    /// The time batches are stamped with.
    pub clock: Clock,
}

impl Ingest {
    /// Ingest over these parts.
    pub fn new(parts: IngestParts, config: IngestConfig) -> Ingest {
        Ingest {
            threads: ThreadTokens::new(&parts.store),
            store: parts.store,
            plugins: parts.plugins,
            channels: parts.channels,
            notifier: parts.notifier,
            routing: parts.routing,
            metrics: parts.metrics,
            attachments: parts.attachments,
            clock: parts.clock,
            config,
            answers: std::sync::OnceLock::new(),
        }
    }

    /// Registers who takes answers out of inbound batches (surveys).
    pub fn catch_answers(&self, catcher: Arc<dyn AnswerCatcher>) {
        let _ = self.answers.set(catcher);
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
        let mail = self.plugins.is_mail(plugin_id);
        let (response, events, envelopes) = if mail {
            match self.plugins.handle_mail_webhook(plugin_id, &request).await {
                Ok(Ok(batch)) => (
                    batch.response.unwrap_or(bindings::HttpResponse {
                        status: 200,
                        headers: Vec::new(),
                        body: Vec::new(),
                    }),
                    batch.events,
                    batch.envelopes,
                ),
                Ok(Err(e)) => return Err(plugin_error(plugin_id, e)),
                Err(e) => return Err(call_error(e)),
            }
        } else {
            match self.plugins.handle_webhook(plugin_id, &request).await {
                Ok(Ok(outcome)) => (outcome.response, outcome.events, Vec::new()),
                Ok(Err(e)) => return Err(plugin_error(plugin_id, e)),
                Err(e) => return Err(call_error(e)),
            }
        };
        let channel = self
            .channels
            .info(plugin_id)
            .await
            .map_err(call_error)?
            .channel;
        let events = self.convert_all(events, mail.then_some(envelopes)).await?;
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
            status: response.status,
            headers: response.headers,
            body: response.body,
        })
    }

    /// Calls `poll` on every enabled connector that declares a poll interval,
    /// each on its own schedule, until `shutdown` turns true. Events are stored
    /// like a webhook's; the connector's cursor is kept only after they are, so
    /// a crash re-reads (ingest is idempotent) instead of losing.
    pub async fn run_pollers(&self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut due: std::collections::HashMap<String, std::time::Instant> = Default::default();
        loop {
            if *shutdown.borrow() {
                return;
            }
            // Whether a mailbox still had more waiting after its turn: then the next
            // turn starts at once instead of after the pause.
            let mut busy = false;
            for plugin_id in self.channels.plugin_ids() {
                let Ok(info) = self.channels.info(&plugin_id).await else {
                    continue;
                };
                let Some(interval) = info.capabilities.poll_interval_ms else {
                    continue;
                };
                let interval = std::time::Duration::from_millis(u64::from(interval.max(1000)));
                let now = std::time::Instant::now();
                if due.get(&plugin_id).is_some_and(|at| *at > now) {
                    continue;
                }
                // A mailbox with more waiting is polled again on the next turn
                // instead of after its interval; the others get their turn between.
                let more = self.poll_once(&plugin_id, &info.channel).await;
                busy |= more;
                due.insert(plugin_id.clone(), if more { now } else { now + interval });
            }
            if busy {
                tokio::task::yield_now().await;
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_millis(250)) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Polls one connector until it says nothing more is waiting (at most a few
    /// rounds, so one busy mailbox cannot starve the others). Returns whether
    /// it still had more after those rounds (and brought events in them).
    pub async fn poll_once(&self, plugin_id: &str, channel: &str) -> bool {
        // Only a connector that brought something is believed when it says there is
        // more: one that always says so with nothing to show waits its interval.
        let mut brought = false;
        for _ in 0..10 {
            let cursor = match self.store.poll_cursor(plugin_id).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(plugin = plugin_id, "poll cursor unavailable: {e}");
                    return false;
                }
            };
            let polled = if self.plugins.is_mail(plugin_id) {
                self.plugins
                    .poll_mail(plugin_id, cursor.as_deref())
                    .await
                    .map(|r| {
                        r.map(|b| Polled {
                            events: b.events,
                            envelopes: Some(b.envelopes),
                            cursor: b.cursor,
                            more: b.more,
                        })
                    })
            } else {
                self.plugins
                    .poll(plugin_id, cursor.as_deref())
                    .await
                    .map(|r| {
                        r.map(|o| Polled {
                            events: o.events,
                            envelopes: None,
                            cursor: o.cursor,
                            more: o.more,
                        })
                    })
            };
            let outcome = match polled {
                Ok(Ok(outcome)) => outcome,
                failure => {
                    let reason = match failure {
                        Ok(Err(e)) => format!("{e:?}"),
                        Err(e) => e.to_string(),
                        Ok(Ok(_)) => unreachable!("handled above"),
                    };
                    tracing::warn!(plugin = plugin_id, "poll failed: {reason}");
                    let _ = self
                        .store
                        .record_poll(plugin_id, None, Some(&reason), self.clock.now_ms())
                        .await;
                    return false;
                }
            };
            let more = outcome.more;
            brought |= !outcome.events.is_empty();
            let stored = match self.convert_all(outcome.events, outcome.envelopes).await {
                Ok(events) if events.is_empty() => Ok(()),
                Ok(events) => self
                    .commit(plugin_id, channel, events)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            let error = stored.as_ref().err().map(String::as_str);
            let cursor = if stored.is_ok() {
                outcome.cursor.as_deref()
            } else {
                None
            };
            if let Err(e) = self
                .store
                .record_poll(plugin_id, cursor, error, self.clock.now_ms())
                .await
            {
                tracing::error!(plugin = plugin_id, "recording a poll failed: {e}");
                return false;
            }
            if let Some(e) = error {
                tracing::error!(plugin = plugin_id, "polled events could not be stored: {e}");
                return false;
            }
            if !more {
                return false;
            }
        }
        brought
    }

    /// Normalizes a connector's events; files the connector handed over as bytes
    /// are kept in the blob store first, so the batch only names them.
    ///
    /// For e-mail connectors (`envelopes` given), each message's envelope joins
    /// its metadata and a reply-address tag is kept only when it is ours.
    async fn convert_all(
        &self,
        events: Vec<ChannelEvent>,
        envelopes: Option<Vec<Envelope>>,
    ) -> AppResult<Vec<IngestEvent>> {
        let region = self.config.default_region.as_deref();
        let mut out = Vec::with_capacity(events.len());
        for event in events {
            out.push(match event {
                ChannelEvent::Message(mut m) => {
                    let mut metadata = metadata_json(&m.metadata, m.html_body.as_deref(), region);
                    if let Some(envelopes) = &envelopes {
                        if let Some(envelope) =
                            envelopes.iter().find(|e| e.provider_id == m.provider_id)
                        {
                            mail::merge_envelope(&mut metadata, envelope);
                        }
                        mail::verify_thread(&mut metadata, &self.threads);
                    }
                    let mut files = Vec::with_capacity(m.attachments.len());
                    for a in std::mem::take(&mut m.attachments) {
                        let stored = match &a.content {
                            Some(bytes) => Some(self.attachments.keep_inline(bytes).await?),
                            None => None,
                        };
                        files.push(InboundAttachment {
                            source: a.url,
                            content_type: a.content_type,
                            filename: a.filename,
                            size: a.size,
                            content_id: a.content_id,
                            stored,
                        });
                    }
                    IngestEvent::InboundMessage(InboundMessage {
                        provider_id: m.provider_id,
                        sender: identity(&m.sender, region)?,
                        sender_name: m.sender_name,
                        body: m.body,
                        attachments: files,
                        sent_at_ms: m.sent_at_ms.and_then(|t| i64::try_from(t).ok()),
                        metadata,
                    })
                }
                other => convert(other, region)?,
            });
        }
        Ok(out)
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
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let started = std::time::Instant::now();
        let batch = |events| IngestBatch {
            plugin_id: plugin_id.to_string(),
            channel: channel.to_string(),
            now_ms: self.clock.now_ms(),
            reopen_window_ms: self.config.reopen_window_ms,
            events,
        };
        // What publishing needs to know about each event, in the outcomes' order.
        let summary = |events: &[IngestEvent]| {
            let files = events.iter().any(|e| {
                matches!(e, IngestEvent::InboundMessage(m) if m.attachments.iter().any(|a| a.stored.is_none()))
            });
            let automatic: Vec<bool> = events
                .iter()
                .map(|e| matches!(e, IngestEvent::InboundMessage(m) if switchboard_store::is_automatic(&m.metadata)))
                .collect();
            (files, shared_identities(events), automatic)
        };
        let (mut files, mut shared, mut automatic) = summary(&events);
        // With surveys, the store's own read of each message also tells whether a
        // survey question waits on its sender, and stops there: only then do the
        // surveys look at what is left, answers or else messages to store.
        let outcomes = match self.answers.get() {
            None => self.store.ingest(batch(events)).await?,
            Some(catcher) => {
                let ingested = self.store.ingest_until_survey_answer(batch(events)).await?;
                let mut outcomes = ingested.outcomes;
                if !ingested.held.is_empty() {
                    shared.truncate(outcomes.len());
                    automatic.truncate(outcomes.len());
                    let rest = catcher.take(plugin_id, ingested.held).await?;
                    if !rest.is_empty() {
                        let (more_files, more_shared, more_automatic) = summary(&rest);
                        files |= more_files;
                        shared.extend(more_shared);
                        automatic.extend(more_automatic);
                        outcomes.extend(self.store.ingest(batch(rest)).await?);
                    }
                }
                outcomes
            }
        };
        self.metrics.ingest(started.elapsed());
        if files {
            self.attachments.wake();
        }
        self.join_shared(&outcomes, shared).await;
        self.publish(plugin_id, channel, &outcomes, &automatic);
        Ok(outcomes)
    }

    /// Joins a sender to the contact that already holds an identity they shared
    /// as their own (a phone number or e-mail from a Messenger quick reply, which
    /// the provider takes from the person's verified profile): their contact is
    /// merged into that one, reversibly through the merge ledger. An identity no
    /// contact holds yet is added to the sender's contact.
    async fn join_shared(&self, outcomes: &[IngestOutcome], shared: Vec<Vec<Identity>>) {
        for (outcome, identities) in outcomes.iter().zip(shared) {
            let IngestOutcome::Created { contact_id, .. } = outcome else {
                continue;
            };
            for identity in identities {
                let result = match self.store.contact_by_identity(&identity).await {
                    Ok(Some(other)) if other.id != *contact_id => self
                        .store
                        .merge_contacts(&other.id, contact_id, "system:shared-identity")
                        .await
                        .map(|_| true),
                    Ok(Some(_)) => Ok(false),
                    Ok(None) => self
                        .store
                        .add_identity(contact_id, &identity)
                        .await
                        .map(|_| false),
                    Err(e) => Err(e),
                };
                match result {
                    Ok(true) => {
                        tracing::info!(contact = %contact_id, "sender joined the contact holding an identity they shared");
                        break;
                    }
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(contact = %contact_id, "could not join a shared identity: {e}")
                    }
                }
            }
        }
    }

    /// Tells connected clients what the webhook changed.
    ///
    /// Mail a machine wrote (`automatic`, by event) is shown but never routed.
    fn publish(
        &self,
        plugin_id: &str,
        channel: &str,
        outcomes: &[IngestOutcome],
        automatic: &[bool],
    ) {
        for (i, outcome) in outcomes.iter().enumerate() {
            match outcome {
                IngestOutcome::Created {
                    contact_id,
                    conversation_id,
                    event_id,
                    new_contact,
                    new_conversation,
                } => {
                    let routed = !automatic.get(i).copied().unwrap_or(false);
                    if let Some(routing) = self.routing.clone().filter(|_| routed) {
                        let (conversation, contact) = (conversation_id.clone(), contact_id.clone());
                        let channel = channel.to_string();
                        // The connector goes with the task, so a policy can give one
                        // account (a mailbox, a number) a queue of its own.
                        let attributes = std::collections::BTreeMap::from([(
                            "plugin_id".to_string(),
                            plugin_id.to_string(),
                        )]);
                        // Routing runs after the provider is answered (once the answer
                        // is written, under the HTTP edge); a task lost to a crash in
                        // between is recreated by the start-up reconciliation.
                        crate::after_answer::defer(async move {
                            routing
                                .on_inbound_with(&conversation, &contact, &channel, attributes)
                                .await;
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
                    // The agents on the conversation see their message's status move.
                    let (store, notifier) = (self.store.clone(), self.notifier.clone());
                    let (event_id, status) = (event_id.clone(), *status);
                    crate::after_answer::defer(async move {
                        notify_delivery(&store, &notifier, &event_id, status).await;
                    });
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

/// The identities each message's sender gave as their own, one entry per
/// event (empty for events without any).
fn shared_identities(events: &[IngestEvent]) -> Vec<Vec<Identity>> {
    events
        .iter()
        .map(|e| match e {
            IngestEvent::InboundMessage(m) => {
                let shared: Vec<Identity> = m
                    .metadata
                    .get("shared_identities")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|i| serde_json::from_value::<Identity>(i.clone()).ok())
                    .collect();
                shared
            }
            _ => Vec::new(),
        })
        .collect()
}

/// Message metadata as the event keeps it: only what is there.
fn metadata_json(
    m: &bindings::MessageMetadata,
    html_body: Option<&str>,
    region: Option<&str>,
) -> Value {
    let mut o = Map::new();
    let mut put = |k: &str, v: Value| {
        if !(v.is_null() || v.as_array().is_some_and(Vec::is_empty)) {
            o.insert(k.to_string(), v);
        }
    };
    put("subject", json!(m.subject));
    put("thread_id", json!(m.thread_id));
    put("in_reply_to", json!(m.in_reply_to));
    put("references", json!(m.references));
    put(
        "interactive_reply",
        m.interactive_reply
            .as_ref()
            .map_or(Value::Null, |r| json!({"id": r.id, "title": r.title})),
    );
    put(
        "reaction",
        m.reaction.as_ref().map_or(
            Value::Null,
            |r| json!({"provider_id": r.provider_id, "emoji": r.emoji}),
        ),
    );
    put(
        "location",
        m.location.as_ref().map_or(Value::Null, |l| {
            json!({"latitude": l.latitude, "longitude": l.longitude, "name": l.name, "address": l.address})
        }),
    );
    put(
        "contacts",
        Value::Array(
            m.contacts
                .iter()
                .map(|c| {
                    json!({
                        "name": c.name,
                        "identities": c.identities.iter()
                            .map(|i| json!({"kind": i.kind, "value": i.value}))
                            .collect::<Vec<_>>(),
                    })
                })
                .collect(),
        ),
    );
    put(
        "shared_identities",
        Value::Array(
            m.shared_identities
                .iter()
                .filter_map(|i| identity(i, region).ok())
                .filter_map(|i| serde_json::to_value(i).ok())
                .collect(),
        ),
    );
    put("html_body", json!(html_body));
    Value::Object(o)
}

fn convert(event: ChannelEvent, region: Option<&str>) -> Result<IngestEvent, AppError> {
    Ok(match event {
        ChannelEvent::Message(_) => {
            return Err(AppError::new(
                ErrorKind::Internal,
                "internal",
                "messages are converted with their attachments",
            ));
        }
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

/// Tells the conversation's audience (its agents and supervisors) that an
/// outbound message's delivery status changed.
pub async fn notify_delivery(
    store: &Store,
    notifier: &Notifier,
    event_id: &str,
    status: DeliveryStatus,
) {
    match store.event(event_id).await {
        Ok(event) => {
            let payload = serde_json::json!({
                "event_id": event_id,
                "conversation_id": event.conversation_id,
                "delivery_status": status,
                "error": event.error,
            });
            match &event.conversation_id {
                Some(conversation) => {
                    notifier.conversation("timeline.delivery", conversation, payload);
                }
                None => {
                    notifier.publish("timeline.delivery", Audience::Supervisors, payload);
                }
            }
        }
        Err(e) => tracing::warn!(event = event_id, "delivery status not published: {e}"),
    }
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
