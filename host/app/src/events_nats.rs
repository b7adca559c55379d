//! The event bus across nodes: [`NatsBus`], over one NATS JetStream stream.
//!
//! Several nodes on one PostgreSQL database each run a `NatsBus` on the same stream
//! (`[cluster] stream`, one per cluster). It keeps the contract of [`crate::events`]
//! across them: the stream's sequence is the bus's one order, so every subscriber on
//! every node sees every node's events in the same order with the same numbers, and a
//! socket that reconnects to another node resumes with the number it last saw.
//!
//! Why JetStream rather than an event table in PostgreSQL: the stream gives one global
//! order and a gap-free sequence number per event as it stores it. A table with a
//! serial column does not: numbers are taken before commit, so a reader can see 7
//! before 6 commits (or never see 6, rolled back) unless every publisher is serialized
//! on one lock. PostgreSQL stays the truth: the bus carries notifications, and a client
//! that cannot be caught up gets [`Delivery::Resync`] and reloads through the API.
//!
//! How it works, per node:
//!
//! - **publish** serializes the event and hands it to one publisher task through a
//!   bounded channel, so a node's events reach the stream in the order they were
//!   published and a publisher never waits on the network. The task pipelines the
//!   publishes and checks their acknowledgements as they come.
//! - **the tail**: one consumer per node (ephemeral, no acks) is pulled in batches from
//!   where the node last read into a ring of the last [`REPLAY_CAPACITY`] events, keyed
//!   by the stream sequence; [`EventBus::head`] is the last sequence it read. Any
//!   failure starts it again from there (and makes the stream again if it is gone).
//! - **subscribe** serves from the ring; `since` older than the ring is read back from
//!   the stream with a temporary consumer while the stream still keeps it (retention by
//!   `max_events` and `max_age`), else the subscriber resyncs. `since` ahead of this
//!   node's tail (the client saw it on a node whose tail is further on) waits for the
//!   tail when the stream has it, else resyncs.
//!
//! What is lost is said, never hidden: a publish that fails (NATS unreachable, no ack)
//! or that the full channel refuses is logged and counted, and once the node can
//! publish again it puts a `bus.lost` marker in the stream; every subscriber on every
//! node that reaches the marker gets a resync instead. A tail that restarts after a gap
//! the stream no longer holds resyncs the subscribers that needed it, and a stream that
//! was deleted and made again (its numbers start over) resyncs everyone.
//!
//! The stream holds the one subject `{stream}.events`, file storage, limits retention:
//! the node that finds no stream makes it with [`NatsBusConfig`]'s `max_events` and
//! `max_age`; a stream that exists keeps its own settings (an operator changes them
//! with the `nats` tool, replicas included on a NATS cluster).
//!
//! **Never:** blocks or panics in `publish`; hands a subscriber an event twice or out of
//! order. It knows NATS, not HTTP: the sockets stay in `switchboard-api`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchboard_plugin_host::BoxFuture;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::events::{Audience, BusEvent, Delivery, EventBus, Feed, REPLAY_CAPACITY, Subscription};

/// The kind of the marker a node publishes after it lost events of its own.
const LOST: &str = "bus.lost";
/// Events waiting for the publisher task; beyond it `publish` drops (and counts).
const OUTGOING_CAPACITY: usize = 8192;
/// Publishes whose acknowledgement the publisher task waits for at once.
const IN_FLIGHT: usize = 512;
/// The bound on every request to NATS (stream set-up, consumers, acks).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The first and the longest wait before the tail starts again after a failure.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Events the tail asks for at once, and how long one request waits for them.
const PULL_BATCH: usize = 512;
const PULL_WAIT: Duration = Duration::from_secs(5);

/// Where the bus is and how much of it the stream keeps.
#[derive(Debug, Clone)]
pub struct NatsBusConfig {
    /// The NATS server, `nats://host:4222` (`tls://` for TLS).
    pub url: String,
    /// The JetStream stream, one per cluster; its subject is `{stream}.events`.
    pub stream: String,
    /// Events the stream keeps at most (the oldest go first).
    pub max_events: i64,
    /// How long the stream keeps an event.
    pub max_age: Duration,
}

impl NatsBusConfig {
    /// A bus on `stream` at `url`, keeping 100,000 events for at most a day.
    pub fn new(url: impl Into<String>, stream: impl Into<String>) -> NatsBusConfig {
        NatsBusConfig {
            url: url.into(),
            stream: stream.into(),
            max_events: 100_000,
            max_age: Duration::from_secs(24 * 3600),
        }
    }

    /// The subject the bus publishes on.
    pub fn subject(&self) -> String {
        format!("{}.events", self.stream)
    }

    /// Whether `name` can be a stream name: letters, digits, `_` and `-`.
    pub fn valid_stream_name(name: &str) -> bool {
        !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    }
}

/// What goes into the stream for one event (its number is the stream's).
#[derive(Serialize, Deserialize)]
struct Wire {
    kind: String,
    at: i64,
    audience: Audience,
    data: Value,
}

/// The last events the tail read, and where it stands.
struct Ring {
    /// False until the tail first found the stream; nothing is known before.
    ready: bool,
    /// Events after `base`, up to `head`, in order (an event the bus could not read
    /// leaves a hole, not a gap).
    events: VecDeque<Arc<BusEvent>>,
    base: u64,
    head: u64,
    /// Changes when the stream's numbers started over (it was deleted and made again).
    generation: u64,
}

struct Shared {
    ring: Mutex<Ring>,
    /// The stream, for reading back events older than the ring.
    stream: Mutex<Option<stream::Stream>>,
    subject: String,
}

impl Shared {
    fn ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.ring.lock().expect("bus ring")
    }
}

/// The tasks of one bus; they stop when the last handle is dropped.
struct Inner {
    shared: Arc<Shared>,
    outgoing: mpsc::Sender<Bytes>,
    /// Events `publish` could not hand to the publisher task (its channel was full).
    dropped: Arc<AtomicU64>,
    head: watch::Receiver<u64>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The event bus shared by the nodes of a cluster through NATS JetStream. Cheap to
/// clone; the tasks stop when the last clone is dropped.
#[derive(Clone)]
pub struct NatsBus {
    inner: Arc<Inner>,
}

impl NatsBus {
    /// Starts the bus: connects to NATS in the background (and again whenever the
    /// connection is lost), makes the stream if it does not exist, and follows it.
    /// Returns at once; call inside a tokio runtime.
    pub fn start(config: NatsBusConfig) -> NatsBus {
        let shared = Arc::new(Shared {
            ring: Mutex::new(Ring {
                ready: false,
                events: VecDeque::with_capacity(REPLAY_CAPACITY),
                base: 0,
                head: 0,
                generation: 0,
            }),
            stream: Mutex::new(None),
            subject: config.subject(),
        });
        let (outgoing, pending) = mpsc::channel(OUTGOING_CAPACITY);
        let (head_tx, head) = watch::channel(0);
        let dropped = Arc::new(AtomicU64::new(0));
        let (client_tx, client_rx) = watch::channel(None);
        let tasks = vec![
            tokio::spawn(connect(config.url.clone(), client_tx)),
            tokio::spawn(tail(
                config.clone(),
                shared.clone(),
                client_rx.clone(),
                head_tx,
            )),
            tokio::spawn(publisher(
                shared.subject.clone(),
                client_rx,
                pending,
                dropped.clone(),
            )),
        ];
        NatsBus {
            inner: Arc::new(Inner {
                shared,
                outgoing,
                dropped,
                head,
                tasks,
            }),
        }
    }

    /// Waits at most `within` for the bus to find its stream; true when it did.
    pub async fn ready(&self, within: Duration) -> bool {
        let mut head = self.inner.head.clone();
        let found = async {
            loop {
                if self.inner.shared.ring().ready {
                    return;
                }
                if head.changed().await.is_err() {
                    // The tail is gone: never ready.
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::time::timeout(within, found).await.is_ok()
    }
}

impl EventBus for NatsBus {
    fn publish(&self, kind: &str, audience: Audience, data: Value) {
        let wire = Wire {
            kind: kind.to_string(),
            at: crate::clock::now_ms(),
            audience,
            data,
        };
        let bytes = match serde_json::to_vec(&wire) {
            Ok(b) => Bytes::from(b),
            Err(e) => {
                tracing::error!(
                    kind,
                    "event bus: event not published, cannot encode it: {e}"
                );
                return;
            }
        };
        if self.inner.outgoing.try_send(bytes).is_err() {
            // Counted here, reported by the publisher task with a marker so that
            // subscribers resync; logged there, once per streak.
            self.inner.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn head(&self) -> u64 {
        self.inner.shared.ring().head
    }

    fn subscribe(&self, since: Option<u64>) -> Subscription {
        let ring = self.inner.shared.ring();
        // `None` means from now: fixed here when the tail is running, else from where
        // it starts.
        let (last, generation) = match since {
            Some(s) => (Some(s), None),
            None if ring.ready => (Some(ring.head), Some(ring.generation)),
            None => (None, None),
        };
        drop(ring);
        Subscription::new(Box::new(NatsFeed {
            shared: self.inner.shared.clone(),
            head: self.inner.head.clone(),
            last,
            generation,
            pending: VecDeque::new(),
            backfill: None,
            ahead_checked: false,
            resync: false,
        }))
    }
}

/// Connects once, with the client reconnecting by itself from then on; publishes the
/// client for the tail and the publisher.
async fn connect(url: String, client: watch::Sender<Option<async_nats::Client>>) {
    let mut backoff = Duration::from_millis(200);
    loop {
        let logged_url = url.clone();
        let options = async_nats::ConnectOptions::new()
            .name("switchboard")
            .retry_on_initial_connect()
            .max_reconnects(None)
            .event_callback(move |event| {
                let url = logged_url.clone();
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            tracing::info!("event bus: connected to NATS at {url}")
                        }
                        async_nats::Event::Disconnected => tracing::error!(
                            "event bus: lost NATS at {url}; other nodes' events stop \
                             reaching this node until it reconnects"
                        ),
                        other => tracing::warn!("event bus: NATS at {url}: {other}"),
                    }
                }
            });
        match options.connect(url.as_str()).await {
            Ok(c) => {
                let _ = client.send(Some(c));
                // The client reconnects by itself; this task's work is done, but its
                // end would close the watch, so it stays.
                std::future::pending::<()>().await;
            }
            Err(e) => {
                tracing::error!("event bus: cannot use NATS at {url}: {e}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// The NATS client once [`connect`] has one.
async fn client_of(
    client: &mut watch::Receiver<Option<async_nats::Client>>,
) -> Option<async_nats::Client> {
    client
        .wait_for(Option::is_some)
        .await
        .ok()
        .and_then(|c| c.clone())
}

fn context(client: async_nats::Client) -> jetstream::Context {
    let mut js = jetstream::new(client);
    js.set_timeout(REQUEST_TIMEOUT);
    js
}

/// Finds the stream, or makes it with the configured limits.
async fn open_stream(
    js: &jetstream::Context,
    config: &NatsBusConfig,
) -> Result<stream::Stream, String> {
    js.get_or_create_stream(stream::Config {
        name: config.stream.clone(),
        subjects: vec![config.subject()],
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::Old,
        max_messages: config.max_events,
        max_age: config.max_age,
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await
    .map_err(|e| e.to_string())
}

/// How the tail is doing across its restarts.
struct TailState {
    backoff: Duration,
    failing: bool,
    /// The head at which the sequence jumped once: the tail reads again from there
    /// before it believes the events in between are gone.
    jumped_at: Option<u64>,
}

/// Follows the stream into the ring. Any failure (NATS away, the consumer or the
/// stream gone) starts it again from the last sequence read, after a pause, making the
/// stream again if it no longer exists; the first failure of a streak is logged as an
/// error, the recovery too.
async fn tail(
    config: NatsBusConfig,
    shared: Arc<Shared>,
    mut client: watch::Receiver<Option<async_nats::Client>>,
    head: watch::Sender<u64>,
) {
    let Some(client) = client_of(&mut client).await else {
        return;
    };
    let js = context(client);
    let mut state = TailState {
        backoff: FIRST_BACKOFF,
        failing: false,
        jumped_at: None,
    };
    loop {
        if let Err(e) = follow(&js, &config, &shared, &head, &mut state).await {
            if state.failing {
                tracing::debug!(stream = config.stream, "event bus: {e}");
            } else {
                tracing::error!(
                    stream = config.stream,
                    "event bus: {e}; other nodes' events do not reach this node until it \
                     follows the stream again"
                );
                state.failing = true;
            }
            tokio::time::sleep(state.backoff).await;
            state.backoff = (state.backoff * 2).min(MAX_BACKOFF);
        }
    }
}

/// One run of the tail: opens the stream, takes up where the ring ends, and pulls
/// batches until something fails (`Err`) or a jump must be read again (`Ok`).
async fn follow(
    js: &jetstream::Context,
    config: &NatsBusConfig,
    shared: &Shared,
    head: &watch::Sender<u64>,
    state: &mut TailState,
) -> Result<(), String> {
    let stream = open_stream(js, config)
        .await
        .map_err(|e| format!("cannot open the JetStream stream: {e}"))?;
    let stream_last = stream.cached_info().state.last_sequence;
    // Set before the ring is ready, so a subscriber never finds it missing.
    *shared.stream.lock().expect("bus stream") = Some(stream.clone());
    let start = {
        let mut ring = shared.ring();
        if !ring.ready {
            ring.ready = true;
            ring.base = stream_last;
            ring.head = stream_last;
        } else if stream_last < ring.head {
            tracing::warn!(
                stream = config.stream,
                "event bus: the stream starts over at {stream_last} (it was at {}); \
                 every subscriber resyncs",
                ring.head
            );
            ring.generation += 1;
            ring.events.clear();
            ring.base = stream_last;
            ring.head = stream_last;
        }
        ring.head + 1
    };
    head.send_replace(start - 1);
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            filter_subject: shared.subject.clone(),
            deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                start_sequence: start,
            },
            ack_policy: consumer::AckPolicy::None,
            inactive_threshold: Duration::from_secs(60),
            memory_storage: true,
            ..Default::default()
        })
        .await
        .map_err(|e| format!("cannot follow the stream: {e}"))?;
    if state.failing {
        tracing::info!(
            stream = config.stream,
            "event bus: following the stream again"
        );
        state.failing = false;
    }
    state.backoff = FIRST_BACKOFF;
    loop {
        // A pull waits for events at most `PULL_WAIT`; then the next one asks again,
        // which is also how a consumer or stream that vanished is noticed.
        let mut batch = consumer
            .batch()
            .max_messages(PULL_BATCH)
            .expires(PULL_WAIT)
            .messages()
            .await
            .map_err(|e| format!("reading the stream failed: {e}"))?;
        while let Some(message) = batch.next().await {
            let message = message.map_err(|e| format!("reading the stream failed: {e}"))?;
            let seq = match message.info() {
                Ok(info) => info.stream_sequence,
                Err(e) => {
                    tracing::warn!("event bus: a message without its sequence: {e}");
                    continue;
                }
            };
            let last = shared.ring().head;
            if seq > last + 1 && state.jumped_at != Some(last) {
                state.jumped_at = Some(last);
                return Ok(());
            }
            let now = push(shared, &config.stream, seq, decode(seq, &message.payload));
            head.send_replace(now);
        }
    }
}

/// Puts what the tail read at `seq` in the ring; returns the new head.
fn push(shared: &Shared, stream: &str, seq: u64, event: Option<Arc<BusEvent>>) -> u64 {
    let mut ring = shared.ring();
    if seq <= ring.head {
        return ring.head;
    }
    if seq > ring.head + 1 {
        // A fresh consumer saw the jump too: the stream no longer holds what came
        // between, and whoever needs it resyncs (reading it back finds it gone).
        tracing::warn!(
            stream,
            "event bus: events {} to {} are gone from the stream before this node read them",
            ring.head + 1,
            seq - 1
        );
        ring.events.clear();
        ring.base = seq - 1;
    }
    if let Some(event) = event {
        if ring.events.len() == REPLAY_CAPACITY
            && let Some(oldest) = ring.events.pop_front()
        {
            ring.base = oldest.seq;
        }
        ring.events.push_back(event);
    } else if ring.events.is_empty() {
        ring.base = seq;
    }
    ring.head = seq;
    seq
}

/// The event stored at `seq`, or `None` for something that is not one (logged).
fn decode(seq: u64, payload: &[u8]) -> Option<Arc<BusEvent>> {
    match serde_json::from_slice::<Wire>(payload) {
        Ok(w) => Some(Arc::new(BusEvent {
            seq,
            kind: w.kind,
            at: w.at,
            data: w.data,
            audience: w.audience,
        })),
        Err(e) => {
            tracing::warn!("event bus: message {seq} is not an event, skipped: {e}");
            None
        }
    }
}

/// A publish whose acknowledgement is awaited: `Ok` when stored; the events it stood
/// for (1, or a marker's lost count) either way.
type Ack = BoxFuture<'static, (u64, bool, Result<(), String>)>;

/// Publishes a node's events in the order they were handed over, acknowledgements
/// pipelined; counts what is lost and publishes a `bus.lost` marker for it.
async fn publisher(
    subject: String,
    mut client: watch::Receiver<Option<async_nats::Client>>,
    mut pending: mpsc::Receiver<Bytes>,
    dropped: Arc<AtomicU64>,
) {
    let Some(client) = client_of(&mut client).await else {
        return;
    };
    let js = context(client);
    let mut in_flight: FuturesUnordered<Ack> = FuturesUnordered::new();
    let mut lost: u64 = 0;
    let mut marker_in_flight = false;
    let mut failing = false;
    let mut retry = tokio::time::interval(Duration::from_secs(1));
    retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let next = tokio::select! {
            Some((count, marker, result)) = in_flight.next(), if !in_flight.is_empty() => {
                if marker {
                    marker_in_flight = false;
                }
                match result {
                    Ok(()) => {
                        if failing {
                            tracing::info!("event bus: publishing to NATS works again");
                            failing = false;
                        }
                        if marker {
                            tracing::warn!(
                                "event bus: {count} event(s) of this node never reached \
                                 the stream; every subscriber is told to resync"
                            );
                            lost -= count.min(lost);
                        }
                    }
                    Err(e) => {
                        note_failure(&mut failing, &e);
                        if !marker {
                            lost += count;
                        }
                    }
                }
                None
            }
            message = pending.recv(), if in_flight.len() < IN_FLIGHT => match message {
                Some(bytes) => Some(bytes),
                None => return,
            },
            _ = retry.tick(), if lost > 0 && !marker_in_flight => None,
        };
        lost += dropped.swap(0, Ordering::Relaxed);
        if lost > 0 && !marker_in_flight {
            let wire = Wire {
                kind: LOST.into(),
                at: crate::clock::now_ms(),
                audience: Audience::Host,
                data: json!({"lost": lost}),
            };
            if let Ok(bytes) = serde_json::to_vec(&wire) {
                match send(&js, &subject, Bytes::from(bytes), lost, true).await {
                    Ok(ack) => {
                        marker_in_flight = true;
                        in_flight.push(ack);
                    }
                    Err(e) => note_failure(&mut failing, &e),
                }
            }
        }
        if let Some(bytes) = next {
            match send(&js, &subject, bytes, 1, false).await {
                Ok(ack) => in_flight.push(ack),
                Err(e) => {
                    note_failure(&mut failing, &e);
                    lost += 1;
                }
            }
        }
    }
}

/// Logs the first failure of a streak.
fn note_failure(failing: &mut bool, e: &str) {
    if !*failing {
        tracing::error!(
            "event bus: publishing to NATS fails ({e}); events are lost until it works again"
        );
        *failing = true;
    }
}

/// Hands one message to the client (in order) and returns its acknowledgement.
async fn send(
    js: &jetstream::Context,
    subject: &str,
    payload: Bytes,
    count: u64,
    marker: bool,
) -> Result<Ack, String> {
    let ack = js
        .send_publish(
            subject.to_string(),
            jetstream::message::PublishMessage::build().payload(payload),
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(Box::pin(async move {
        (
            count,
            marker,
            ack.await.map(|_| ()).map_err(|e| e.to_string()),
        )
    }))
}

/// Events older than the ring, read back from the stream.
struct Backfill {
    messages: consumer::pull::Ordered,
}

/// What a feed does next, decided under the ring's lock.
enum Step {
    Wait,
    Events(Vec<Arc<BusEvent>>),
    Older,
    Ahead,
    Resync,
}

struct NatsFeed {
    shared: Arc<Shared>,
    head: watch::Receiver<u64>,
    /// The last sequence handed out (`None`: from wherever the tail starts).
    last: Option<u64>,
    /// The stream's generation `last` belongs to.
    generation: Option<u64>,
    pending: VecDeque<Arc<BusEvent>>,
    backfill: Option<Backfill>,
    /// Whether the stream was asked already if it holds a `since` ahead of the tail.
    ahead_checked: bool,
    resync: bool,
}

impl NatsFeed {
    fn step(&mut self) -> Step {
        let ring = self.shared.ring();
        if !ring.ready {
            return Step::Wait;
        }
        if *self.generation.get_or_insert(ring.generation) != ring.generation {
            return Step::Resync;
        }
        let last = *self.last.get_or_insert(ring.head);
        if last == ring.head {
            Step::Wait
        } else if last > ring.head {
            Step::Ahead
        } else if last >= ring.base {
            let events: Vec<_> = ring
                .events
                .iter()
                .skip_while(|e| e.seq <= last)
                .take(256)
                .cloned()
                .collect();
            if events.is_empty() {
                // Only messages that were not events (skipped) after `last`.
                self.last = Some(ring.head);
                return Step::Wait;
            }
            Step::Events(events)
        } else {
            Step::Older
        }
    }

    async fn next_delivery(&mut self) -> Delivery {
        loop {
            if self.resync {
                self.resync = false;
                self.pending.clear();
                self.backfill = None;
                self.ahead_checked = false;
                let ring = self.shared.ring();
                self.last = Some(ring.head);
                self.generation = Some(ring.generation);
                return Delivery::Resync { seq: ring.head };
            }
            if let Some(e) = self.pending.pop_front() {
                if self.last.is_some_and(|last| e.seq <= last) {
                    continue;
                }
                self.last = Some(e.seq);
                if e.kind == LOST {
                    self.resync = true;
                    continue;
                }
                return Delivery::Event(e);
            }
            // Marked seen before the ring is read, so a push after the read wakes us.
            self.head.borrow_and_update();
            match self.step() {
                Step::Wait => {
                    self.backfill = None;
                    if self.head.changed().await.is_err() {
                        return Delivery::Closed;
                    }
                }
                Step::Events(events) => {
                    self.backfill = None;
                    self.pending.extend(events);
                }
                Step::Resync => self.resync = true,
                Step::Ahead => {
                    self.backfill = None;
                    if !self.ahead_checked {
                        self.ahead_checked = true;
                        let last = self.last.unwrap_or_default();
                        if !stream_holds(&self.shared, last).await {
                            self.resync = true;
                            continue;
                        }
                    }
                    if self.head.changed().await.is_err() {
                        return Delivery::Closed;
                    }
                }
                Step::Older => self.read_back().await,
            }
        }
    }

    /// Reads the event after `last` back from the stream, or resyncs when the stream
    /// no longer has it (or cannot be asked).
    async fn read_back(&mut self) {
        let last = self.last.unwrap_or_default();
        if self.backfill.is_none() {
            match open_backfill(&self.shared, last + 1).await {
                Ok(b) => self.backfill = Some(b),
                Err(e) => {
                    tracing::warn!("event bus: cannot read back events after {last}: {e}");
                    self.resync = true;
                    return;
                }
            }
        }
        let Some(backfill) = self.backfill.as_mut() else {
            return;
        };
        let read = tokio::time::timeout(REQUEST_TIMEOUT, backfill.messages.next()).await;
        let message = match read {
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(e))) => {
                tracing::warn!("event bus: reading back events after {last} failed: {e}");
                self.resync = true;
                return;
            }
            Ok(None) | Err(_) => {
                self.resync = true;
                return;
            }
        };
        let seq = match message.info() {
            Ok(info) => info.stream_sequence,
            Err(_) => {
                self.resync = true;
                return;
            }
        };
        if seq != last + 1 {
            // The stream dropped what this subscriber missed.
            self.resync = true;
            return;
        }
        match decode(seq, &message.payload) {
            Some(event) => self.pending.push_back(event),
            None => self.last = Some(seq),
        }
    }
}

/// Whether the stream has reached `seq` (a client saw it on a node further on).
async fn stream_holds(shared: &Shared, seq: u64) -> bool {
    let stream = shared.stream.lock().expect("bus stream").clone();
    let Some(stream) = stream else {
        return false;
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, stream.get_info()).await {
        Ok(Ok(info)) => info.state.last_sequence >= seq,
        Ok(Err(e)) => {
            tracing::warn!("event bus: cannot ask the stream how far it is: {e}");
            false
        }
        Err(_) => false,
    }
}

/// A temporary consumer that reads the stream from `from` on.
async fn open_backfill(shared: &Shared, from: u64) -> Result<Backfill, String> {
    let stream = shared.stream.lock().expect("bus stream").clone();
    let stream = stream.ok_or("no stream yet")?;
    let open = async {
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: shared.subject.clone(),
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: from,
                },
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        consumer.messages().await.map_err(|e| e.to_string())
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, open).await {
        Ok(Ok(messages)) => Ok(Backfill { messages }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err("timed out".into()),
    }
}

impl Feed for NatsFeed {
    fn next(&mut self) -> BoxFuture<'_, Delivery> {
        Box::pin(self.next_delivery())
    }
}
