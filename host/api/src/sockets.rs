//! Limits on WebSockets: how many one agent (or one webchat visitor) may hold open,
//! how many the host holds in all, and how large one message may be. A socket over a
//! limit is refused before the upgrade (429 `too_many_sockets`), so a client that
//! leaks connections, or a script that opens thousands, cannot exhaust the host.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use axum::http::StatusCode;
use serde_json::json;
use switchboard_app::rate::Bucket;

use crate::error::ApiError;

/// The limits, with the defaults a real deployment can keep.
#[derive(Debug, Clone)]
pub struct SocketLimits {
    /// Open sockets per agent or visitor (several tabs, a reconnect in flight).
    pub per_owner: usize,
    /// Open sockets on this host, agents and visitors together.
    pub total: usize,
    /// The largest message a client may send, in bytes.
    pub max_message_bytes: usize,
    /// Messages a client may send per second on one socket, on average…
    pub messages_per_second: u32,
    /// …with bursts of this many. Past it the socket gets a `rate_limited` error
    /// and is closed (close code 1008, policy violation).
    pub message_burst: u32,
}

impl Default for SocketLimits {
    fn default() -> Self {
        SocketLimits {
            per_owner: 10,
            total: 20_000,
            max_message_bytes: 64 * 1024,
            messages_per_second: 10,
            message_burst: 30,
        }
    }
}

/// How many more messages a client may send on one socket now.
pub struct MessageBudget(Bucket);

impl MessageBudget {
    /// Counts one message from the client; false when it is over the rate, and
    /// then the socket is to be closed with [`close_rate_limited`].
    pub fn take(&mut self) -> bool {
        self.0.take(Instant::now())
    }
}

/// Tells a client that sent messages faster than allowed why, and closes its
/// socket (1008, policy violation).
pub async fn close_rate_limited(socket: &mut WebSocket) {
    let error = json!({
        "type": "error",
        "code": "rate_limited",
        "message": "messages were sent faster than this server allows",
    });
    let _ = socket.send(Message::Text(error.to_string().into())).await;
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: 1008,
            reason: "rate limited".into(),
        })))
        .await;
}

/// Open sockets, counted against [`SocketLimits`].
#[derive(Default)]
pub struct Sockets {
    limits: SocketLimits,
    open: Mutex<(usize, HashMap<String, usize>)>,
}

/// One open socket's place; released when dropped.
pub struct SocketSlot {
    owner: String,
    sockets: Arc<Sockets>,
}

impl Sockets {
    /// Counters under `limits`.
    pub fn new(limits: SocketLimits) -> Sockets {
        Sockets {
            limits,
            open: Mutex::default(),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &SocketLimits {
        &self.limits
    }

    /// A fresh budget of client messages for one socket.
    pub fn message_budget(&self) -> MessageBudget {
        MessageBudget(Bucket::new(
            f64::from(self.limits.messages_per_second),
            self.limits.message_burst,
            Instant::now(),
        ))
    }

    /// A place for one more socket of `owner` (`agent:ID`, `visitor:ID`), or 429.
    pub fn acquire(self: &Arc<Self>, owner: String) -> Result<SocketSlot, ApiError> {
        let mut open = self.open.lock().expect("socket counts");
        let mine = open.1.get(&owner).copied().unwrap_or(0);
        if open.0 >= self.limits.total || mine >= self.limits.per_owner {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_sockets",
                "too many open sockets; close one first",
            ));
        }
        open.0 += 1;
        *open.1.entry(owner.clone()).or_default() += 1;
        Ok(SocketSlot {
            owner,
            sockets: self.clone(),
        })
    }
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        let mut open = self.sockets.open.lock().expect("socket counts");
        open.0 -= 1;
        if let Some(n) = open.1.get_mut(&self.owner) {
            *n -= 1;
            if *n == 0 {
                open.1.remove(&self.owner);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_and_the_host_have_caps_and_closing_frees_a_place() {
        let sockets = Arc::new(Sockets::new(SocketLimits {
            per_owner: 2,
            total: 3,
            max_message_bytes: 1024,
            ..SocketLimits::default()
        }));
        let a1 = sockets.acquire("agent:a".into()).unwrap();
        let _a2 = sockets.acquire("agent:a".into()).unwrap();
        assert!(sockets.acquire("agent:a".into()).is_err(), "per owner");
        let _b1 = sockets.acquire("agent:b".into()).unwrap();
        assert!(sockets.acquire("agent:c".into()).is_err(), "in total");
        drop(a1);
        assert!(sockets.acquire("agent:a".into()).is_ok());
    }
}
