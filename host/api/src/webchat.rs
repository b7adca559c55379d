//! Webchat: the host's native customer channel, behind the widget at `/widget.js`.
//!
//! A visitor starts a chat with a name (and optionally an e-mail, which joins them to
//! the contact that owns it) and gets a bearer token; they are the identity
//! `webchat:<visitor id>`. Their messages go through the same ingest as any connector
//! (plugin id and channel `webchat`, idempotent on the client's message id), so they
//! land on the contact's one timeline, open or continue the contact's conversation on
//! any channel, and create routing tasks. Agents' replies on `webchat` go through the
//! outbox like every reply; the outbox worker hands them to [`deliver`] instead of a
//! plugin, which pushes them to the visitor's open sockets.
//!
//! A visitor only ever reads their own webchat messages: typing a customer's e-mail
//! links the chat to that customer for the agent's benefit but shows the visitor
//! nothing from other channels.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use axum::Json;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_core::{ConversationStatus, DeliveryStatus, Direction, EventKind};
use switchboard_plugin_host::ChannelInfo;
use switchboard_store::{
    InboundMessage, IngestBatch, IngestEvent, IngestOutcome, NewEvent, OutboxRow, TimelineEvent,
    WEBCHAT, WebchatVisitor,
};
use tokio::sync::mpsc;

use crate::AppState;
use crate::auth::{new_token, token_hash};
use crate::desk::text_field;
use crate::error::{ApiError, ApiResult};

/// The plugin id and channel name webchat events carry.
pub const PLUGIN_ID: &str = "webchat";

/// How many messages a transcript returns at most.
const TRANSCRIPT_LIMIT: u32 = 500;

/// Pending pushes per socket before a slow one is dropped (it reloads the transcript).
const SOCKET_QUEUE: usize = 64;

/// The description webchat has in place of a connector's `describe`.
pub fn channel_info() -> ChannelInfo {
    ChannelInfo {
        channel: PLUGIN_ID.into(),
        identity_kind: WEBCHAT.into(),
        display_name: "Webchat".into(),
        supports_media: false,
        supports_receipts: true,
    }
}

/// New chats one client address may start per minute: enough for a family behind one
/// router, too few to fill the contact table from a script.
pub const SESSIONS_PER_MINUTE: u32 = 20;

/// Visitors' open sockets, by visitor id, and the new-chat limit per address.
#[derive(Default)]
pub struct Hub {
    sockets: Mutex<HashMap<String, Vec<mpsc::Sender<Value>>>>,
    starts: Mutex<HashMap<Option<IpAddr>, (i64, u32)>>,
}

impl Hub {
    /// Counts a new chat from `addr` in the minute of `now_ms`; false when over the limit.
    pub fn allow_start(&self, addr: Option<IpAddr>, now_ms: i64) -> bool {
        let minute = now_ms.div_euclid(60_000);
        let mut starts = self.starts.lock().expect("webchat starts");
        if starts.len() > 10_000 {
            starts.retain(|_, (m, _)| *m == minute);
        }
        let entry = starts.entry(addr).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        entry.1 += 1;
        entry.1 <= SESSIONS_PER_MINUTE
    }

    fn subscribe(&self, visitor: &str) -> mpsc::Receiver<Value> {
        let (tx, rx) = mpsc::channel(SOCKET_QUEUE);
        self.sockets
            .lock()
            .expect("webchat sockets")
            .entry(visitor.to_string())
            .or_default()
            .push(tx);
        rx
    }

    /// Sends to every open socket of the visitor; returns how many got it.
    pub fn push(&self, visitor: &str, message: &Value) -> usize {
        let mut sockets = self.sockets.lock().expect("webchat sockets");
        let Some(list) = sockets.get_mut(visitor) else {
            return 0;
        };
        list.retain(|tx| tx.try_send(message.clone()).is_ok());
        let n = list.len();
        if n == 0 {
            sockets.remove(visitor);
        }
        n
    }
}

fn visitor_token(headers: &HeaderMap) -> ApiResult<String> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <visitor token>"))
}

async fn visitor(state: &AppState, token: &str) -> ApiResult<WebchatVisitor> {
    state
        .store
        .webchat_visitor(&token_hash(token))
        .await?
        .ok_or_else(|| ApiError::unauthorized("unknown webchat session; start a new chat"))
}

/// `POST /webchat/v1/sessions` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionBody {
    name: String,
    #[serde(default)]
    email: Option<String>,
}

/// `POST /webchat/v1/sessions`: start a chat.
pub async fn start(
    State(state): State<AppState>,
    extensions: Extensions,
    Json(body): Json<SessionBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let addr = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if !state.webchat.allow_start(addr, crate::now_ms()) {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many new chats from this address; try again in a minute",
        ));
    }
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 80 {
        return Err(ApiError::bad_request("name: 1 to 80 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "name must not contain control characters",
        ));
    }
    let email = match body.email.as_deref().map(str::trim) {
        Some(e) if !e.is_empty() => Some(switchboard_core::normalize_identity("email", e, None)?),
        _ => None,
    };
    let token = new_token();
    let visitor = state
        .store
        .create_webchat_visitor(name, email.as_ref(), &token_hash(&token), crate::now_ms())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"visitor_id": visitor.id, "token": token, "name": visitor.name})),
    ))
}

fn message_view(e: &TimelineEvent, names: &HashMap<String, String>) -> Value {
    json!({
        "id": e.id,
        "direction": if e.direction == Direction::In { "in" } else { "out" },
        "body": e.body,
        "at": e.occurred_at,
        "author": e.author_agent_id.as_ref().and_then(|a| names.get(a)),
        "auto": e.data.get("auto").is_some_and(|v| v == true),
        "delivery_status": e.delivery_status,
    })
}

async fn agent_names(state: &AppState, events: &[TimelineEvent]) -> HashMap<String, String> {
    let mut names = HashMap::new();
    for id in events.iter().filter_map(|e| e.author_agent_id.as_ref()) {
        if !names.contains_key(id)
            && let Ok(a) = state.store.agent(id).await
        {
            names.insert(id.clone(), a.name);
        }
    }
    names
}

/// `GET /webchat/v1/transcript`.
pub async fn transcript(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let visitor = visitor(&state, &visitor_token(&headers)?).await?;
    let events = state
        .store
        .identity_messages(&visitor.identity(), TRANSCRIPT_LIMIT)
        .await?;
    let names = agent_names(&state, &events).await;
    let messages: Vec<Value> = events.iter().map(|e| message_view(e, &names)).collect();
    Ok(Json(
        json!({"visitor_id": visitor.id, "name": visitor.name, "messages": messages}),
    ))
}

/// `POST /webchat/v1/messages` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageBody {
    client_id: String,
    body: String,
}

/// `POST /webchat/v1/messages`: the customer wrote.
pub async fn post_message(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<MessageBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let visitor = visitor(&state, &visitor_token(&headers)?).await?;
    let client_id = body.client_id.trim();
    if client_id.is_empty()
        || client_id.len() > 64
        || !client_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ApiError::bad_request(
            "client_id: 1-64 letters, digits, '-' or '_'",
        ));
    }
    let text = text_field("body", &body.body)?;
    let batch = IngestBatch {
        plugin_id: PLUGIN_ID.into(),
        channel: PLUGIN_ID.into(),
        now_ms: crate::now_ms(),
        reopen_window_ms: state.config.reopen_window_ms,
        events: vec![IngestEvent::InboundMessage(InboundMessage {
            // Namespaced by visitor: one visitor cannot collide with another's ids.
            provider_id: format!("{}:{client_id}", visitor.id),
            sender: visitor.identity(),
            sender_name: Some(visitor.name.clone()),
            body: text,
            attachments: Vec::new(),
            sent_at_ms: None,
        })],
    };
    let outcomes = state.store.ingest(batch).await.map_err(|e| {
        tracing::error!("webchat message not stored: {e}");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ingest_failed",
            "the message could not be stored; send it again",
        )
    })?;
    let event_id = match outcomes.first() {
        Some(IngestOutcome::Created { event_id, .. } | IngestOutcome::Duplicate { event_id }) => {
            event_id.clone()
        }
        _ => return Err(ApiError::internal("webchat ingest returned no message")),
    };
    crate::hooks::publish(&state, PLUGIN_ID, PLUGIN_ID, &outcomes);
    if let Some(IngestOutcome::Created {
        conversation_id,
        new_conversation: true,
        ..
    }) = outcomes.first()
    {
        let (state, conversation, visitor) =
            (state.clone(), conversation_id.clone(), visitor.clone());
        tokio::spawn(async move { greet(&state, &conversation, &visitor).await });
    }
    let event = state.store.event(&event_id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"message": message_view(&event, &HashMap::new())})),
    ))
}

/// "About 3 minutes" for the greeting.
pub fn describe_wait(ms: u64) -> String {
    match ms {
        0 => "An agent is joining you now.".into(),
        ms if ms < 60_000 => "The estimated wait is under a minute.".into(),
        ms => {
            let minutes = ms.div_ceil(60_000);
            format!(
                "The estimated wait is about {minutes} minute{}.",
                if minutes == 1 { "" } else { "s" }
            )
        }
    }
}

/// The automatic greeting of a new webchat conversation, with the estimated wait.
/// It waits briefly for routing to create the task, so the estimate knows the queue.
async fn greet(state: &AppState, conversation_id: &str, visitor: &WebchatVisitor) {
    let mut estimate = None;
    if let Some(routing) = &state.routing {
        let day = state
            .store
            .tasks_since(crate::supervisor::start_of_day(crate::now_ms()))
            .await
            .unwrap_or_default();
        for _ in 0..20 {
            estimate = routing
                .estimate_wait(conversation_id, |queue| {
                    day.iter()
                        .filter(|t| t.queue_id == queue)
                        .filter_map(|t| t.answered_at.map(|a| (a - t.arrived_at).max(0) as u64))
                        .collect()
                })
                .await;
            if estimate.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let wait = estimate
        .map(describe_wait)
        .unwrap_or_else(|| "An agent will be with you as soon as possible.".to_string());
    let body = format!("Hi {}, thanks for getting in touch! {wait}", visitor.name);
    let event = state
        .store
        .append_event(NewEvent {
            channel: Some((PLUGIN_ID.into(), PLUGIN_ID.into())),
            identity: Some(visitor.identity()),
            delivery_status: Some(DeliveryStatus::Sent),
            direction: Direction::Out,
            ..NewEvent::internal(
                conversation_id,
                EventKind::Message,
                body,
                None,
                json!({"auto": true, "estimated_wait_ms": estimate}),
                crate::now_ms(),
            )
        })
        .await;
    match event {
        Ok(event) => {
            state.webchat.push(
                &visitor.id,
                &json!({"type": "message", "message": message_view(&event, &HashMap::new())}),
            );
            crate::desk::publish_event(state, &event);
        }
        Err(e) => tracing::warn!(
            conversation = conversation_id,
            "webchat greeting not stored: {e}"
        ),
    }
}

/// Delivers an agent's reply from the outbox: pushes it to the visitor's sockets. A
/// visitor who is not connected reads it from the transcript when they come back, so
/// either way the message is sent; `delivered` means a socket took it.
pub async fn deliver(state: &AppState, row: &OutboxRow) -> Result<(), String> {
    let event = state
        .store
        .event(&row.event_id)
        .await
        .map_err(|e| e.to_string())?;
    let names = agent_names(state, std::slice::from_ref(&event)).await;
    let pushed = state.webchat.push(
        row.to.value(),
        &json!({"type": "message", "message": message_view(&event, &names)}),
    );
    let status = if pushed > 0 {
        DeliveryStatus::Delivered
    } else {
        DeliveryStatus::Sent
    };
    state
        .store
        .outbox_sent(&row.id, &row.event_id, status, crate::now_ms())
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Tells the visitors of a conversation's contact that an agent is typing.
pub async fn agent_typing(state: &AppState, contact_id: &str) -> ApiResult<()> {
    let contact = state.store.contact(contact_id).await?;
    for i in contact.identities.iter().filter(|i| i.kind == WEBCHAT) {
        state.webchat.push(&i.value, &json!({"type": "typing"}));
    }
    Ok(())
}

/// `?token=`.
#[derive(Deserialize)]
pub struct SocketQuery {
    token: String,
}

/// `GET /webchat/v1/ws?token=…`.
pub async fn socket(
    State(state): State<AppState>,
    Query(q): Query<SocketQuery>,
    ws: WebSocketUpgrade,
) -> ApiResult<Response> {
    let visitor = visitor(&state, &q.token).await?;
    Ok(ws.on_upgrade(move |socket| session(state, socket, visitor)))
}

async fn session(state: AppState, mut socket: WebSocket, visitor: WebchatVisitor) {
    let mut pushes = state.webchat.subscribe(&visitor.id);
    let mut last_typing = tokio::time::Instant::now() - Duration::from_secs(10);
    if socket
        .send(Message::Text(json!({"type": "hello"}).to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            push = pushes.recv() => match push {
                Some(v) => {
                    if socket.send(Message::Text(v.to_string().into())).await.is_err() {
                        return;
                    }
                }
                // Dropped for being slow: the page reloads the transcript on reconnect.
                None => return,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    let typing = serde_json::from_str::<Value>(&text)
                        .is_ok_and(|v| v["type"] == "typing");
                    // At most one typing signal a second reaches the agents.
                    if typing && last_typing.elapsed() >= Duration::from_secs(1) {
                        last_typing = tokio::time::Instant::now();
                        visitor_typing(&state, &visitor).await;
                    }
                }
                Some(Ok(Message::Ping(p))) => {
                    if socket.send(Message::Pong(p)).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

async fn visitor_typing(state: &AppState, visitor: &WebchatVisitor) {
    let Ok(conversations) = state.store.contact_conversations(&visitor.contact_id).await else {
        return;
    };
    if let Some(c) = conversations
        .iter()
        .filter(|c| c.status != ConversationStatus::Resolved)
        .max_by_key(|c| c.updated_at)
    {
        state.realtime.publish(
            "webchat.typing",
            state.conversation_audience(&c.id),
            json!({"conversation_id": c.id, "visitor_id": visitor.id}),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_read_like_a_person_would_say_them() {
        assert_eq!(describe_wait(0), "An agent is joining you now.");
        assert_eq!(
            describe_wait(45_000),
            "The estimated wait is under a minute."
        );
        assert_eq!(
            describe_wait(60_000),
            "The estimated wait is about 1 minute."
        );
        assert_eq!(
            describe_wait(61_000),
            "The estimated wait is about 2 minutes."
        );
    }

    #[test]
    fn new_chats_are_limited_per_address_and_minute() {
        let hub = Hub::default();
        let a = Some(IpAddr::from([192, 0, 2, 1]));
        let b = Some(IpAddr::from([192, 0, 2, 2]));
        for _ in 0..SESSIONS_PER_MINUTE {
            assert!(hub.allow_start(a, 0));
        }
        assert!(
            !hub.allow_start(a, 59_999),
            "over the limit in the same minute"
        );
        assert!(
            hub.allow_start(b, 59_999),
            "another address is not affected"
        );
        assert!(hub.allow_start(a, 60_000), "the next minute starts afresh");
    }

    #[tokio::test]
    async fn pushes_reach_every_socket_of_the_visitor_and_only_theirs() {
        let hub = Hub::default();
        let mut a1 = hub.subscribe("a");
        let mut a2 = hub.subscribe("a");
        let mut b = hub.subscribe("b");
        assert_eq!(hub.push("a", &json!(1)), 2);
        assert_eq!(a1.recv().await, Some(json!(1)));
        assert_eq!(a2.recv().await, Some(json!(1)));
        assert!(b.try_recv().is_err());
        drop(a1);
        drop(a2);
        assert_eq!(hub.push("a", &json!(2)), 0, "closed sockets are forgotten");
        assert_eq!(hub.push("nobody", &json!(3)), 0);
    }
}
