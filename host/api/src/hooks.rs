//! Provider webhook ingress: `POST /hooks/{plugin_id}/{rest…}`.
//!
//! The connector verifies and parses inside the sandbox; this module turns its
//! events into one ingest batch and answers the provider only after the batch
//! is committed. A webhook that fails verification or parsing stores nothing.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use switchboard_core::{Attachment, ConsentAction, DeliveryStatus, Identity, normalize_identity};
use switchboard_plugin_host::{CallError, ChannelEvent, HttpRequest, PluginError, bindings};
use switchboard_store::{
    ConsentEvent, InboundMessage, IngestBatch, IngestEvent, IngestOutcome, Receipt,
};

use crate::AppState;
use crate::error::ApiError;
use crate::realtime::Audience;

/// `POST /hooks/{plugin_id}` (no trailing path).
pub async fn webhook_root(
    state: State<AppState>,
    Path(plugin_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(state, plugin_id, method, uri, headers, body).await
}

/// `POST /hooks/{plugin_id}/{rest…}`.
pub async fn webhook(
    state: State<AppState>,
    Path((plugin_id, _rest)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(state, plugin_id, method, uri, headers, body).await
}

async fn handle(
    State(state): State<AppState>,
    plugin_id: String,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = std::time::Instant::now();
    let result = process(&state, &plugin_id, method, uri, headers, body).await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) if e.status() == StatusCode::FORBIDDEN => "forbidden",
        Err(e) if e.status().is_client_error() => "rejected",
        Err(_) => "error",
    };
    state
        .metrics
        .webhook(&plugin_id, outcome, started.elapsed());
    match result {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn process(
    state: &AppState,
    plugin_id: &str,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let path_and_query = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let request = HttpRequest {
        method: method.to_string(),
        url: format!("{}{}", state.config.public_url, path_and_query),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
            .collect(),
        body: body.to_vec(),
    };
    let outcome = match state.plugins.handle_webhook(plugin_id, &request).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) => return Err(plugin_error(plugin_id, e)),
        Err(e) => return Err(call_error(e)),
    };
    let channel = state
        .channel_info(plugin_id)
        .await
        .map_err(call_error)?
        .channel;
    let mut events = Vec::with_capacity(outcome.events.len());
    for event in outcome.events {
        events.push(convert(event, state.config.default_region.as_deref())?);
    }
    if !events.is_empty() {
        let batch_channel = channel.clone();
        let batch = IngestBatch {
            plugin_id: plugin_id.to_string(),
            channel,
            now_ms: crate::now_ms(),
            reopen_window_ms: state.config.reopen_window_ms,
            events,
        };
        let started = std::time::Instant::now();
        let outcomes = state.store.ingest(batch).await.map_err(|e| {
            tracing::error!(
                plugin = plugin_id,
                "ingest failed, provider will retry: {e}"
            );
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ingest_failed",
                "the message could not be stored; retry later",
            )
        })?;
        state.metrics.ingest(started.elapsed());
        publish(state, plugin_id, &batch_channel, &outcomes);
    }
    let mut response = Response::builder()
        .status(StatusCode::from_u16(outcome.response.status).unwrap_or(StatusCode::OK));
    for (k, v) in &outcome.response.headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::try_from(k.as_str()),
            HeaderValue::try_from(v.as_str()),
        ) {
            response = response.header(k, v);
        }
    }
    response
        .body(axum::body::Body::from(outcome.response.body))
        .map_err(ApiError::internal)
}

/// Tells connected clients what the webhook changed.
pub(crate) fn publish(
    state: &AppState,
    plugin_id: &str,
    channel: &str,
    outcomes: &[IngestOutcome],
) {
    for outcome in outcomes {
        match outcome {
            IngestOutcome::Created {
                contact_id,
                conversation_id,
                event_id,
                new_contact,
                new_conversation,
            } => {
                if let Some(routing) = state.routing.clone() {
                    let (conversation, contact) = (conversation_id.clone(), contact_id.clone());
                    let channel = channel.to_string();
                    // Routing runs after the provider is answered; a task lost to a
                    // crash in between is recreated by the start-up reconciliation.
                    tokio::spawn(async move {
                        routing.on_inbound(&conversation, &contact, &channel).await;
                    });
                }
                state.realtime.publish(
                    "timeline.created",
                    state.conversation_audience(conversation_id),
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
                state.realtime.publish(
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
                state.realtime.publish(
                    "contact.consent",
                    Audience::Everyone,
                    serde_json::json!({"contact_id": contact_id, "state": consent}),
                );
            }
            _ => {}
        }
    }
}

fn identity(i: &bindings::Identity, region: Option<&str>) -> Result<Identity, ApiError> {
    normalize_identity(&i.kind, &i.value, region).map_err(|e| {
        ApiError::bad_request(format!("the connector produced an unusable identity: {e}"))
    })
}

fn convert(event: ChannelEvent, region: Option<&str>) -> Result<IngestEvent, ApiError> {
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

fn plugin_error(plugin_id: &str, e: PluginError) -> ApiError {
    match e {
        PluginError::Unauthorized(m) => {
            tracing::warn!(plugin = plugin_id, "webhook refused: {m}");
            ApiError::forbidden(format!("webhook signature rejected: {m}"))
        }
        PluginError::InvalidRequest(m) => ApiError::bad_request(format!("webhook rejected: {m}")),
        other => {
            tracing::error!(
                plugin = plugin_id,
                "webhook failed in the connector: {other:?}"
            );
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "connector_error",
                "the connector failed to process the webhook",
            )
        }
    }
}

/// A failed plugin call as an HTTP answer.
pub fn call_error(e: CallError) -> ApiError {
    match &e {
        CallError::NotFound(_) | CallError::WrongKind { .. } => ApiError::not_found(e.to_string()),
        CallError::Disabled(_) | CallError::Quarantined { .. } => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "plugin_unavailable",
            e.to_string(),
        ),
        _ => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "plugin_failed",
            e.to_string(),
        ),
    }
}
