//! The event bus: how use cases tell the outside world what changed.
//!
//! Services publish domain events — a timeline event created, an offer made, a task
//! changed, a presence changed, a call's state, a message for a webchat visitor — with
//! an [`Audience`]. The agents' realtime WebSocket, the webchat visitors' sockets and
//! services inside the host (voice follows routing) subscribe. The contract every
//! implementation keeps:
//!
//! - **one order**: every event gets a sequence number from one counter, and each
//!   subscriber receives events in that order, never one twice;
//! - **resume**: a subscriber that comes back with the last number it saw gets every
//!   later event it missed, as long as the bus still holds them;
//! - **resync**: when it cannot fill the gap (too old, a restart, a subscriber too slow
//!   to keep up), the subscriber gets [`Delivery::Resync`] once with the current head,
//!   reloads its view through the API and goes on from there.
//!
//! [`LocalBus`] is the in-process implementation (one host). Several nodes on one
//! database share [`crate::events_nats::NatsBus`], over a NATS JetStream stream whose
//! sequence is the one order; nothing that publishes or subscribes changes.
//!
//! This module knows no transport: it never touches a socket or an HTTP type.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_core::Role;
use switchboard_plugin_host::BoxFuture;
use switchboard_store::Agent;
use tokio::sync::broadcast;

/// How many recent events a reconnecting subscriber can catch up on.
pub const REPLAY_CAPACITY: usize = 4096;

/// Who may see an event (it travels with the event between nodes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "to", content = "agents")]
pub enum Audience {
    /// Supervisors and admins only.
    Supervisors,
    /// These agents, plus supervisors and admins.
    Agents(Vec<String>),
    /// Everyone signed in.
    Everyone,
    /// One webchat visitor (by visitor id), and no agent.
    Visitor(String),
    /// Services and sockets inside the host only (a session revoked); never sent to
    /// any client.
    Host,
}

/// One published event.
#[derive(Debug, Clone, Serialize)]
pub struct BusEvent {
    /// Monotonic sequence number; resume after it.
    pub seq: u64,
    /// `timeline.created`, `task.updated`, `offer.created`…
    #[serde(rename = "type")]
    pub kind: String,
    /// Milliseconds since the epoch.
    pub at: i64,
    /// What changed.
    pub data: Value,
    /// Who may see it (not sent to clients).
    #[serde(skip)]
    pub audience: Audience,
}

impl BusEvent {
    /// Whether a signed-in agent may see this event: supervisors and admins see every
    /// agent-facing event, agents what is addressed to them or to everyone.
    pub fn visible_to(&self, agent: &Agent) -> bool {
        if matches!(self.audience, Audience::Visitor(_) | Audience::Host) {
            return false;
        }
        if matches!(agent.role, Role::Supervisor | Role::Admin) {
            return true;
        }
        match &self.audience {
            Audience::Everyone => true,
            Audience::Supervisors | Audience::Visitor(_) | Audience::Host => false,
            Audience::Agents(ids) => ids.contains(&agent.id),
        }
    }

    /// Whether this event is for the webchat visitor `visitor_id`.
    pub fn for_visitor(&self, visitor_id: &str) -> bool {
        matches!(&self.audience, Audience::Visitor(v) if v == visitor_id)
    }
}

/// What a subscription yields next.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// The next event, in sequence order.
    Event(Arc<BusEvent>),
    /// Events were lost to this subscriber: reload, then carry on after `seq`.
    Resync {
        /// The head of the bus when the gap was found.
        seq: u64,
    },
    /// The bus is gone.
    Closed,
}

/// Where events go, and where subscribers come from.
pub trait EventBus: Send + Sync + 'static {
    /// Publishes an event. It never waits: the sequence number is given where the
    /// event is ordered (on a cluster, by the stream), and subscribers see it.
    fn publish(&self, kind: &str, audience: Audience, data: Value);

    /// The newest sequence number this node knows (on a cluster, the last one it read
    /// from the stream).
    fn head(&self) -> u64;

    /// Every event after `since`, in order (`None`: from now on). A gap that cannot be
    /// filled is reported as [`Delivery::Resync`].
    fn subscribe(&self, since: Option<u64>) -> Subscription;
}

/// The source behind a [`Subscription`]; each bus implementation has its own.
pub trait Feed: Send {
    /// The next delivery.
    fn next(&mut self) -> BoxFuture<'_, Delivery>;
}

/// One subscriber's ordered stream of events.
pub struct Subscription {
    feed: Box<dyn Feed>,
}

impl Subscription {
    /// A subscription over an implementation's feed.
    pub fn new(feed: Box<dyn Feed>) -> Subscription {
        Subscription { feed }
    }

    /// Waits for the next delivery.
    pub async fn next(&mut self) -> Delivery {
        self.feed.next().await
    }
}

struct Shared {
    seq: AtomicU64,
    recent: Mutex<VecDeque<Arc<BusEvent>>>,
    live: broadcast::Sender<Arc<BusEvent>>,
}

impl Shared {
    /// Events after `since`, or `None` when some were already dropped.
    fn since(&self, since: u64) -> Option<Vec<Arc<BusEvent>>> {
        let recent = self.recent.lock().expect("event buffer");
        let head = self.seq.load(Ordering::SeqCst);
        // A sequence number never given out comes from before a restart (numbers
        // start again at 0): the subscriber must reload, and must not skip new events.
        if since > head {
            return None;
        }
        if let Some(first) = recent.front()
            && first.seq > since + 1
        {
            return None;
        }
        if recent.is_empty() && head > since {
            return None;
        }
        Some(recent.iter().filter(|e| e.seq > since).cloned().collect())
    }
}

/// The in-process bus: a broadcast channel for live events and a buffer of the last
/// [`REPLAY_CAPACITY`] for resuming.
#[derive(Clone)]
pub struct LocalBus {
    shared: Arc<Shared>,
}

impl Default for LocalBus {
    fn default() -> Self {
        let (live, _) = broadcast::channel(1024);
        LocalBus {
            shared: Arc::new(Shared {
                seq: AtomicU64::new(0),
                recent: Mutex::new(VecDeque::with_capacity(REPLAY_CAPACITY)),
                live,
            }),
        }
    }
}

impl EventBus for LocalBus {
    fn publish(&self, kind: &str, audience: Audience, data: Value) {
        // Sequence assignment and buffering happen under one lock so the buffer is
        // always in sequence order.
        let mut recent = self.shared.recent.lock().expect("event buffer");
        let seq = self.shared.seq.fetch_add(1, Ordering::SeqCst) + 1;
        let event = Arc::new(BusEvent {
            seq,
            kind: kind.to_string(),
            at: crate::clock::now_ms(),
            data,
            audience,
        });
        if recent.len() == REPLAY_CAPACITY {
            recent.pop_front();
        }
        recent.push_back(event.clone());
        let _ = self.shared.live.send(event);
    }

    fn head(&self) -> u64 {
        self.shared.seq.load(Ordering::SeqCst)
    }

    fn subscribe(&self, since: Option<u64>) -> Subscription {
        // Subscribe before reading the buffer so nothing falls in between.
        let live = self.shared.live.subscribe();
        let mut feed = LocalFeed {
            shared: self.shared.clone(),
            live,
            pending: VecDeque::new(),
            last: since.unwrap_or_else(|| self.head()),
            resync: false,
        };
        if since.is_some() {
            feed.catch_up();
        }
        Subscription::new(Box::new(feed))
    }
}

struct LocalFeed {
    shared: Arc<Shared>,
    live: broadcast::Receiver<Arc<BusEvent>>,
    pending: VecDeque<Arc<BusEvent>>,
    last: u64,
    resync: bool,
}

impl LocalFeed {
    /// Queues what the buffer holds after `last`, or a resync when it cannot.
    fn catch_up(&mut self) {
        match self.shared.since(self.last) {
            Some(missed) => self.pending.extend(missed),
            None => self.resync = true,
        }
    }

    async fn next_delivery(&mut self) -> Delivery {
        loop {
            if self.resync {
                self.resync = false;
                self.pending.clear();
                self.last = self.shared.seq.load(Ordering::SeqCst);
                return Delivery::Resync { seq: self.last };
            }
            if let Some(e) = self.pending.pop_front() {
                if e.seq <= self.last {
                    continue;
                }
                self.last = e.seq;
                return Delivery::Event(e);
            }
            match self.live.recv().await {
                Ok(e) => {
                    if e.seq <= self.last {
                        continue;
                    }
                    self.last = e.seq;
                    return Delivery::Event(e);
                }
                // Too slow to keep up: catch up from the buffer, or resync.
                Err(broadcast::error::RecvError::Lagged(_)) => self.catch_up(),
                Err(broadcast::error::RecvError::Closed) => return Delivery::Closed,
            }
        }
    }
}

impl Feed for LocalFeed {
    fn next(&mut self) -> BoxFuture<'_, Delivery> {
        Box::pin(self.next_delivery())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    async fn seqs(sub: &mut Subscription, n: usize) -> Vec<u64> {
        let mut out = Vec::new();
        for _ in 0..n {
            match sub.next().await {
                Delivery::Event(e) => out.push(e.seq),
                other => panic!("expected an event, got {other:?}"),
            }
        }
        out
    }

    #[tokio::test]
    async fn resume_returns_only_later_events_in_order() {
        let bus = LocalBus::default();
        for i in 0..5 {
            bus.publish("t", Audience::Everyone, json!(i));
        }
        let mut sub = bus.subscribe(Some(3));
        bus.publish("t", Audience::Everyone, json!(5));
        assert_eq!(seqs(&mut sub, 3).await, [4, 5, 6]);
        let mut from_now = bus.subscribe(None);
        bus.publish("t", Audience::Everyone, json!(6));
        assert_eq!(seqs(&mut from_now, 1).await, [7]);
    }

    #[tokio::test]
    async fn a_gap_the_buffer_cannot_fill_is_a_resync() {
        let bus = LocalBus::default();
        for i in 0..REPLAY_CAPACITY + 5 {
            bus.publish("t", Audience::Everyone, json!(i));
        }
        let mut old = bus.subscribe(Some(3));
        assert!(matches!(old.next().await, Delivery::Resync { seq } if seq == bus.head()));
        let mut future = bus.subscribe(Some(bus.head() + 50));
        assert!(
            matches!(future.next().await, Delivery::Resync { .. }),
            "a subscriber from before a restart resyncs"
        );
        bus.publish("t", Audience::Everyone, json!("after"));
        assert_eq!(seqs(&mut future, 1).await, [bus.head()]);
    }

    #[tokio::test]
    async fn a_subscriber_too_slow_for_the_live_channel_catches_up_from_the_buffer() {
        let bus = LocalBus::default();
        let mut slow = bus.subscribe(None);
        for i in 0..2000 {
            bus.publish("t", Audience::Everyone, json!(i));
        }
        let got = seqs(&mut slow, 2000).await;
        assert_eq!(got, (1..=2000).collect::<Vec<_>>());
    }

    #[test]
    fn visitors_events_reach_no_agent() {
        let event = BusEvent {
            seq: 1,
            kind: "webchat.message".into(),
            at: 0,
            data: json!({}),
            audience: Audience::Visitor("v1".into()),
        };
        assert!(event.for_visitor("v1"));
        assert!(!event.for_visitor("v2"));
    }
}
