//! The realtime feed: `GET /api/v1/realtime` (WebSocket).
//!
//! Every change worth pushing (a new timeline event, a task or offer change)
//! is published to the [`Hub`] with a sequence number and an audience. A
//! client authenticates with `?token=` (or a first `{"token": …}` message),
//! may pass `?since=N` to resume after the last sequence it saw, and then gets
//! every later event it is entitled to: its own offers and tasks, and — for
//! supervisors and admins — everything. The hub keeps the most recent events
//! in memory; a client that comes back after more than that was missed gets a
//! `resync` message and reloads through the REST API.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchboard_core::Role;
use switchboard_store::Agent;
use tokio::sync::broadcast;

use crate::AppState;
use crate::auth::token_hash;
use crate::error::ApiError;

/// How many recent events a reconnecting client can catch up on.
pub const REPLAY_CAPACITY: usize = 4096;

/// Who may see an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "to", content = "agents")]
pub enum Audience {
    /// Supervisors and admins only.
    Supervisors,
    /// These agents, plus supervisors and admins.
    Agents(Vec<String>),
    /// Everyone signed in.
    Everyone,
}

/// One pushed event.
#[derive(Debug, Clone, Serialize)]
pub struct RealtimeEvent {
    /// Monotonic sequence number; resume with `?since=` it.
    pub seq: u64,
    /// `timeline.created`, `task.updated`, `offer.created`…
    #[serde(rename = "type")]
    pub kind: String,
    /// Milliseconds since the epoch.
    pub at: i64,
    /// What changed.
    pub data: Value,
    #[serde(skip)]
    audience: Audience,
}

impl RealtimeEvent {
    fn visible_to(&self, agent: &Agent) -> bool {
        if matches!(agent.role, Role::Supervisor | Role::Admin) {
            return true;
        }
        match &self.audience {
            Audience::Everyone => true,
            Audience::Supervisors => false,
            Audience::Agents(ids) => ids.contains(&agent.id),
        }
    }
}

/// Fan-out of realtime events with a replay buffer.
pub struct Hub {
    seq: AtomicU64,
    recent: Mutex<VecDeque<RealtimeEvent>>,
    live: broadcast::Sender<RealtimeEvent>,
}

impl Default for Hub {
    fn default() -> Self {
        let (live, _) = broadcast::channel(1024);
        Hub {
            seq: AtomicU64::new(0),
            recent: Mutex::new(VecDeque::with_capacity(REPLAY_CAPACITY)),
            live,
        }
    }
}

impl Hub {
    /// Publishes an event; returns its sequence number.
    pub fn publish(&self, kind: &str, audience: Audience, data: Value) -> u64 {
        // Sequence assignment and buffering happen under one lock so the
        // buffer is always in sequence order.
        let mut recent = self.recent.lock().expect("realtime buffer");
        let seq = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        let event = RealtimeEvent {
            seq,
            kind: kind.to_string(),
            at: crate::now_ms(),
            data,
            audience,
        };
        if recent.len() == REPLAY_CAPACITY {
            recent.pop_front();
        }
        recent.push_back(event.clone());
        let _ = self.live.send(event);
        seq
    }

    /// Events after `since`, or `None` when some were already dropped.
    fn since(&self, since: u64) -> Option<Vec<RealtimeEvent>> {
        let recent = self.recent.lock().expect("realtime buffer");
        // A sequence number we never gave out comes from before a restart (numbers
        // start again at 0): the client must reload, and must not skip new events.
        if since > self.seq.load(Ordering::SeqCst) {
            return None;
        }
        if let Some(first) = recent.front()
            && first.seq > since + 1
        {
            return None;
        }
        if recent.is_empty() && self.seq.load(Ordering::SeqCst) > since {
            return None;
        }
        Some(recent.iter().filter(|e| e.seq > since).cloned().collect())
    }

    /// Every event from now on, for services inside the host (voice follows routing).
    pub fn subscribe(&self) -> broadcast::Receiver<RealtimeEvent> {
        self.live.subscribe()
    }

    /// The newest sequence number published.
    pub fn head(&self) -> u64 {
        self.seq.load(Ordering::SeqCst)
    }
}

/// `?token=…&since=…`.
#[derive(Deserialize)]
pub struct RealtimeQuery {
    token: Option<String>,
    since: Option<u64>,
}

/// `GET /api/v1/realtime`.
pub async fn realtime(
    State(state): State<AppState>,
    Query(q): Query<RealtimeQuery>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    // With a token in the URL, refuse before upgrading.
    let agent = match &q.token {
        Some(token) => Some(authenticate(&state, token).await?),
        None => None,
    };
    Ok(ws.on_upgrade(move |socket| session(state, socket, agent, q.since)))
}

async fn authenticate(state: &AppState, token: &str) -> Result<Agent, ApiError> {
    state
        .store
        .agent_for_session(&token_hash(token), crate::now_ms())
        .await?
        .ok_or_else(|| ApiError::unauthorized("invalid or expired token"))
}

async fn send(socket: &mut WebSocket, value: &impl Serialize) -> bool {
    match serde_json::to_string(value) {
        Ok(text) => socket.send(Message::Text(text.into())).await.is_ok(),
        Err(_) => false,
    }
}

async fn session(state: AppState, mut socket: WebSocket, agent: Option<Agent>, since: Option<u64>) {
    let agent = match agent {
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
            let Some(agent) = (match token {
                Some(t) => authenticate(&state, &t).await.ok(),
                None => None,
            }) else {
                let _ = send(
                    &mut socket,
                    &json!({"type": "error", "code": "unauthorized"}),
                )
                .await;
                return;
            };
            agent
        }
    };
    // Subscribe before reading the buffer so nothing falls in between.
    let mut live = state.realtime.live.subscribe();
    let mut last = since.unwrap_or_else(|| state.realtime.head());
    if !send(
        &mut socket,
        &json!({"type": "hello", "agent_id": agent.id, "seq": last}),
    )
    .await
    {
        return;
    }
    if since.is_some() {
        match state.realtime.since(last) {
            Some(missed) => {
                for e in missed.iter().filter(|e| e.visible_to(&agent)) {
                    if !send(&mut socket, e).await {
                        return;
                    }
                }
                if let Some(e) = missed.last() {
                    last = e.seq;
                }
            }
            None => {
                let head = state.realtime.head();
                if !send(&mut socket, &json!({"type": "resync", "seq": head})).await {
                    return;
                }
                last = head;
            }
        }
    }
    loop {
        tokio::select! {
            event = live.recv() => match event {
                Ok(e) => {
                    if e.seq <= last {
                        continue;
                    }
                    last = e.seq;
                    if e.visible_to(&agent) && !send(&mut socket, &e).await {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Too slow to keep up: catch up from the buffer, or resync.
                    match state.realtime.since(last) {
                        Some(missed) => {
                            for e in missed.iter().filter(|e| e.visible_to(&agent)) {
                                if !send(&mut socket, e).await {
                                    return;
                                }
                            }
                            if let Some(e) = missed.last() {
                                last = e.seq;
                            }
                        }
                        None => {
                            last = state.realtime.head();
                            if !send(&mut socket, &json!({"type": "resync", "seq": last})).await {
                                return;
                            }
                        }
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(Message::Ping(p))) => {
                    if socket.send(Message::Pong(p)).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Text(text))) => {
                    if let Some(reply) = client_message(&state, &agent, &text).await
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

/// A message from the client: `webrtc.offer` (the softphone's persistent
/// connection) is answered on the socket; anything else is ignored.
async fn client_message(state: &AppState, agent: &Agent, text: &str) -> Option<Value> {
    let message: Value = serde_json::from_str(text).ok()?;
    match message["type"].as_str()? {
        "webrtc.offer" => {
            let Some(voice) = &state.voice else {
                return Some(
                    json!({"type": "webrtc.error", "message": "voice is not running on this host"}),
                );
            };
            let Some(sdp) = message["sdp"].as_str().filter(|s| s.len() <= 64 * 1024) else {
                return Some(
                    json!({"type": "webrtc.error", "message": "sdp: a string of at most 64 KiB"}),
                );
            };
            Some(match voice.accept_offer(&agent.id, sdp).await {
                Ok(answer) => json!({"type": "webrtc.answer", "sdp": answer}),
                Err(e) => json!({"type": "webrtc.error", "message": e}),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_returns_only_later_events_and_detects_gaps() {
        let hub = Hub::default();
        for i in 0..5 {
            hub.publish("t", Audience::Everyone, json!(i));
        }
        let after = hub.since(3).unwrap();
        assert_eq!(after.iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 5]);
        for i in 0..REPLAY_CAPACITY {
            hub.publish("t", Audience::Everyone, json!(i));
        }
        assert!(
            hub.since(3).is_none(),
            "events 4.. were dropped from the buffer"
        );
        assert!(hub.since(hub.head() - 1).is_some());
        assert!(
            hub.since(hub.head() + 50).is_none(),
            "a client from before a restart resyncs"
        );
    }
}
