//! The realtime feed: `GET /api/v1/realtime` (WebSocket).
//!
//! A client authenticates with `?token=` (or a first `{"token": …}` message), may
//! pass `?since=N` to resume after the last sequence it saw, and then gets every
//! later event of the application's event bus that it is entitled to: its own offers
//! and tasks, and — for supervisors and admins — everything. When the bus cannot
//! fill a gap the client gets a `resync` message and reloads through the REST API.
//! The socket also carries the softphone's WebRTC signaling (`webrtc.offer`). When
//! the session behind a socket is revoked (the agent disabled, signed out everywhere,
//! or their password changed from another session) the socket gets
//! `{"type": "session.revoked"}` and is closed.

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchboard_app::accounts::token_hash;
use switchboard_app::login::SESSIONS_REVOKED;
use switchboard_app::{BusEvent, Delivery};
use switchboard_store::Agent;
use utoipa::IntoParams;

use crate::error::ApiError;
use crate::openapi::ErrorBody;
use crate::sockets::{SocketSlot, close_rate_limited};
use crate::state::AppState;

/// `?token=…&since=…`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RealtimeQuery {
    /// A bearer token from `POST /auth/login`; without it the first message must be
    /// `{"token": "…"}`.
    token: Option<String>,
    /// The last event sequence number the client saw: events after it are replayed
    /// (a `resync` message if they are no longer kept).
    since: Option<u64>,
}

/// `GET /api/v1/realtime`.
#[utoipa::path(get, path = "/realtime", tag = "routing",
    description = "The realtime feed, a WebSocket. The `Authorization` header is not read: \
        pass the token as `?token=` (refused with 401 or 429 before the upgrade), or send \
        `{\"token\": \"…\"}` as the first text message within 10 seconds (else the socket gets \
        `{\"type\": \"error\", \"code\": \"unauthorized\"}` or `too_many_sockets` and closes). \
        Every server message is a JSON text: first `{\"type\": \"hello\", \"agent_id\", \"seq\"}`, \
        then each event of the application's event bus the agent may see (their own offers \
        and tasks; everything for supervisors and admins), `{\"type\": \"resync\", \"seq\"}` \
        when events were missed (reload through the REST API), and \
        `{\"type\": \"session.revoked\"}` before the socket closes when the session ends. \
        The client may send `{\"type\": \"webrtc.offer\", \"sdp\", \"node\"?}` (at most 64 KiB) \
        for the softphone and gets `{\"type\": \"webrtc.answer\", \"sdp\"}` or \
        `{\"type\": \"webrtc.error\", \"message\"}`; with `node` (another node of a cluster, as \
        a `softphone.move` event names it) the offer is answered by that node. Other \
        messages are ignored. A client \
        sending messages faster than the server allows gets \
        `{\"type\": \"error\", \"code\": \"rate_limited\"}` and the socket closes (1008).",
    params(RealtimeQuery),
    responses(
        (status = 101, description = "Switching Protocols: the WebSocket is open"),
        (status = 400, description = "Not a WebSocket handshake, or a bad query string",
            body = ErrorBody),
        (status = 401, description = "`?token=` is invalid or expired", body = ErrorBody),
        (status = 429, description = "Too many open sockets; close one first", body = ErrorBody),
    ))]
pub async fn realtime(
    State(state): State<AppState>,
    Query(q): Query<RealtimeQuery>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    // With a token in the URL, refuse before upgrading.
    let agent = match &q.token {
        Some(token) => {
            let agent = authenticate(&state, token).await?;
            let slot = state.sockets.acquire(format!("agent:{}", agent.id))?;
            Some(Signed {
                agent,
                session: token_hash(token),
                token: token.clone(),
                _slot: slot,
            })
        }
        None => None,
    };
    let max = state.sockets.limits().max_message_bytes;
    Ok(ws
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| session(state, socket, agent, q.since)))
}

async fn authenticate(state: &AppState, token: &str) -> Result<Agent, ApiError> {
    state
        .store
        .agent_for_session(&token_hash(token), switchboard_app::now_ms())
        .await?
        .ok_or_else(|| ApiError::unauthorized("invalid or expired token"))
}

async fn send(socket: &mut WebSocket, value: &impl Serialize) -> bool {
    match serde_json::to_string(value) {
        Ok(text) => socket.send(Message::Text(text.into())).await.is_ok(),
        Err(_) => false,
    }
}

/// A signed-in socket: the agent, their session (the token's hash), the token
/// itself (to hand a softphone offer to another node as this agent) and the
/// socket's slot under the per-agent limit.
struct Signed {
    agent: Agent,
    session: String,
    token: String,
    _slot: SocketSlot,
}

async fn session(
    state: AppState,
    mut socket: WebSocket,
    signed: Option<Signed>,
    since: Option<u64>,
) {
    let signed = match signed {
        Some(a) => a,
        None => {
            // The first message must carry the token.
            let first =
                tokio::time::timeout(std::time::Duration::from_secs(10), socket.recv()).await;
            let token = match first {
                Ok(Some(Ok(Message::Text(text)))) => serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|v| v["token"].as_str().map(str::to_string)),
                _ => None,
            };
            let Some((agent, token)) = (match token {
                Some(t) => authenticate(&state, &t).await.ok().map(|a| (a, t)),
                None => None,
            }) else {
                let _ = send(
                    &mut socket,
                    &json!({"type": "error", "code": "unauthorized"}),
                )
                .await;
                return;
            };
            match state.sockets.acquire(format!("agent:{}", agent.id)) {
                Ok(slot) => Signed {
                    agent,
                    session: token_hash(&token),
                    token,
                    _slot: slot,
                },
                Err(_) => {
                    let _ = send(
                        &mut socket,
                        &json!({"type": "error", "code": "too_many_sockets"}),
                    )
                    .await;
                    return;
                }
            }
        }
    };
    let agent = &signed.agent;
    let mut events = state.events.subscribe(since);
    let mut budget = state.sockets.message_budget();
    let hello_seq = since.unwrap_or_else(|| state.events.head());
    if !send(
        &mut socket,
        &json!({"type": "hello", "agent_id": agent.id, "seq": hello_seq}),
    )
    .await
    {
        return;
    }
    loop {
        tokio::select! {
            delivery = events.next() => match delivery {
                Delivery::Event(e) => {
                    if revokes(&e, &agent.id, &signed.session) {
                        let _ = send(&mut socket, &json!({"type": "session.revoked"})).await;
                        let _ = socket.send(Message::Close(None)).await;
                        return;
                    }
                    if e.visible_to(agent) && !send(&mut socket, &*e).await {
                        return;
                    }
                }
                Delivery::Resync { seq } => {
                    if !send(&mut socket, &json!({"type": "resync", "seq": seq})).await {
                        return;
                    }
                }
                Delivery::Closed => return,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(Message::Ping(p))) => {
                    if socket.send(Message::Pong(p)).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Text(_))) if !budget.take() => {
                    close_rate_limited(&mut socket).await;
                    return;
                }
                Some(Ok(Message::Text(text))) => {
                    if let Some(reply) = client_message(&state, &signed, &text).await
                        && !send(&mut socket, &reply).await
                    {
                        return;
                    }
                }
                Some(Ok(_)) => {}
            },
        }
    }
}

/// Whether `event` ends this socket's session: the agent's sessions were revoked
/// (disabled, signed out everywhere, password changed elsewhere) and this one was not
/// kept.
fn revokes(event: &BusEvent, agent_id: &str, session: &str) -> bool {
    event.kind == SESSIONS_REVOKED
        && event.data["agent_id"] == agent_id
        && event.data["keep"].as_str() != Some(session)
}

/// A message from the client: `webrtc.offer` (the softphone's persistent
/// connection) is answered on the socket; anything else is ignored. An offer naming
/// another node (`node`, after a `softphone.move`) is handed to that node as this
/// agent, and its answer comes back on this socket.
async fn client_message(state: &AppState, signed: &Signed, text: &str) -> Option<Value> {
    let message: Value = serde_json::from_str(text).ok()?;
    match message["type"].as_str()? {
        "webrtc.offer" => {
            let error = |message: &str| json!({"type": "webrtc.error", "message": message});
            let Some(sdp) = message["sdp"].as_str().filter(|s| s.len() <= 64 * 1024) else {
                return Some(error("sdp: a string of at most 64 KiB"));
            };
            if let Some(node) = message["node"].as_str()
                && let Some(relay) = &state.app.relay
                && node != relay.node()
            {
                return Some(
                    match crate::forward::softphone_offer(relay, node, &signed.token, sdp).await {
                        Ok(answer) => json!({"type": "webrtc.answer", "sdp": answer, "node": node}),
                        Err(e) => error(&e),
                    },
                );
            }
            let Some(voice) = &state.voice else {
                return Some(error("voice is not running on this host"));
            };
            Some(match voice.accept_offer(&signed.agent.id, sdp).await {
                Ok(answer) => json!({"type": "webrtc.answer", "sdp": answer}),
                Err(e) => error(&e),
            })
        }
        _ => None,
    }
}
