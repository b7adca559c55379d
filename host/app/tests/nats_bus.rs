//! The event bus across nodes, against the real NATS JetStream server
//! (`SWITCHBOARD_TEST_NATS_URL`, default `nats://127.0.0.1:4222`). Each `NatsBus` is
//! one node; each test has a stream of its own, deleted at its end, so runs never
//! meet.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use switchboard_app::{
    Audience, BusEvent, Delivery, EventBus, NatsBus, NatsBusConfig, Subscription,
};

/// A bound so a broken bus fails instead of hanging; not a timing claim.
const PATIENCE: Duration = Duration::from_secs(20);

fn nats_url() -> String {
    std::env::var("SWITCHBOARD_TEST_NATS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "nats://127.0.0.1:4222".into())
}

/// A stream name no other run uses.
fn stream_name(test: &str) -> String {
    format!("sbtest-{test}-{}", uuid::Uuid::new_v4().simple())
}

fn config(stream: &str) -> NatsBusConfig {
    NatsBusConfig {
        max_age: Duration::from_secs(600),
        ..NatsBusConfig::new(nats_url(), stream)
    }
}

/// A node's bus, once it follows the stream.
async fn node(config: &NatsBusConfig) -> NatsBus {
    let bus = NatsBus::start(config.clone());
    assert!(
        bus.ready(PATIENCE).await,
        "NATS with JetStream at {} is required",
        config.url
    );
    bus
}

/// Deletes a test's stream; its nodes are dropped first, or their tails would make it
/// again.
async fn delete_stream(stream: &str) {
    if let Ok(client) = async_nats::connect(nats_url()).await {
        let _ = async_nats::jetstream::new(client)
            .delete_stream(stream)
            .await;
    }
}

async fn next(sub: &mut Subscription) -> Delivery {
    tokio::time::timeout(PATIENCE, sub.next())
        .await
        .expect("a delivery")
}

async fn event(sub: &mut Subscription) -> Arc<BusEvent> {
    match next(sub).await {
        Delivery::Event(e) => e,
        other => panic!("expected an event, got {other:?}"),
    }
}

async fn events(sub: &mut Subscription, n: usize) -> Vec<Arc<BusEvent>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(event(sub).await);
    }
    out
}

#[tokio::test]
async fn an_event_published_on_one_node_reaches_a_subscriber_on_another() {
    let stream = stream_name("cross");
    let config = config(&stream);
    let (a, b) = (node(&config).await, node(&config).await);
    let mut on_b = b.subscribe(None);

    a.publish(
        "timeline.created",
        Audience::Agents(vec!["agent-7".into()]),
        json!({"conversation_id": "c1", "event_id": "e1"}),
    );
    a.publish(
        "sessions.revoked",
        Audience::Host,
        json!({"agent_id": "agent-7", "keep": null}),
    );
    a.publish(
        "webchat.visitor",
        Audience::Visitor("v-1".into()),
        json!({"type": "message"}),
    );

    let created = event(&mut on_b).await;
    assert_eq!(created.kind, "timeline.created");
    assert_eq!(
        created.data,
        json!({"conversation_id": "c1", "event_id": "e1"})
    );
    assert_eq!(created.audience, Audience::Agents(vec!["agent-7".into()]));
    assert!(created.at > 0);
    let revoked = event(&mut on_b).await;
    assert_eq!(
        revoked.audience,
        Audience::Host,
        "host events cross nodes too"
    );
    assert_eq!(revoked.data["agent_id"], "agent-7");
    let visitor = event(&mut on_b).await;
    assert!(visitor.for_visitor("v-1"));
    assert_eq!(
        [created.seq, revoked.seq, visitor.seq],
        [1, 2, 3],
        "the stream's numbers"
    );
    assert_eq!(b.head(), 3);
    drop((a, b));
    delete_stream(&stream).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_sees_concurrent_publishes_in_one_order_once() {
    let stream = stream_name("order");
    let config = config(&stream);
    let (a, b, c) = (
        node(&config).await,
        node(&config).await,
        node(&config).await,
    );
    let mut subs = [a.subscribe(None), b.subscribe(None), c.subscribe(None)];
    const EACH: usize = 300;
    let publishers = [("a", a.clone()), ("b", b.clone())].map(|(name, bus)| {
        tokio::spawn(async move {
            for i in 0..EACH {
                bus.publish(
                    "task.updated",
                    Audience::Everyone,
                    json!({"node": name, "i": i}),
                );
                if i % 16 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        })
    });
    for p in publishers {
        p.await.unwrap();
    }

    let mut seen = Vec::new();
    for sub in &mut subs {
        seen.push(events(sub, 2 * EACH).await);
    }
    let order = |list: &[Arc<BusEvent>]| {
        list.iter()
            .map(|e| (e.seq, e.data.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(order(&seen[0]), order(&seen[1]), "A and B agree");
    assert_eq!(order(&seen[0]), order(&seen[2]), "A and C agree");
    let list = &seen[0];
    assert!(
        list.windows(2).all(|w| w[0].seq < w[1].seq),
        "strictly increasing"
    );
    let distinct: HashSet<String> = list.iter().map(|e| e.data.to_string()).collect();
    assert_eq!(distinct.len(), 2 * EACH, "none twice");
    for name in ["a", "b"] {
        let mine: Vec<u64> = list
            .iter()
            .filter(|e| e.data["node"] == name)
            .map(|e| e.data["i"].as_u64().unwrap())
            .collect();
        assert_eq!(
            mine,
            (0..EACH as u64).collect::<Vec<_>>(),
            "node {name}'s events keep the order it published them in"
        );
    }
    drop((a, b, c));
    delete_stream(&stream).await;
}

#[tokio::test]
async fn a_subscriber_moved_to_another_node_resumes_without_a_gap() {
    let stream = stream_name("resume");
    let config = config(&stream);
    let (a, b, c) = (
        node(&config).await,
        node(&config).await,
        node(&config).await,
    );
    let mut on_b = b.subscribe(None);
    for i in 0..10 {
        a.publish("timeline.created", Audience::Supervisors, json!({"i": i}));
    }
    let read = events(&mut on_b, 4).await;
    let stopped_at = read[3].seq;
    drop(on_b);
    for i in 10..20 {
        a.publish("timeline.created", Audience::Supervisors, json!({"i": i}));
    }
    // C was running all along (its ring has them); D starts now, so what B's client
    // missed is read back from the stream.
    let mut subscriber_on_c = c.subscribe(Some(stopped_at));
    let resumed = events(&mut subscriber_on_c, 16).await;
    let d = node(&config).await;
    let mut subscriber_on_d = d.subscribe(Some(stopped_at));
    let read_back = events(&mut subscriber_on_d, 16).await;

    for got in [&resumed, &read_back] {
        let seqs: Vec<u64> = got.iter().map(|e| e.seq).collect();
        assert_eq!(
            seqs,
            (stopped_at + 1..=stopped_at + 16).collect::<Vec<_>>(),
            "exactly the missed events"
        );
        let data: Vec<u64> = got.iter().map(|e| e.data["i"].as_u64().unwrap()).collect();
        assert_eq!(data, (4..20).collect::<Vec<_>>());
    }
    a.publish("timeline.created", Audience::Supervisors, json!({"i": 20}));
    assert_eq!(event(&mut subscriber_on_d).await.data["i"], 20, "then live");
    drop((a, b, c, d));
    delete_stream(&stream).await;
}

#[tokio::test]
async fn a_gap_the_stream_no_longer_holds_is_a_resync_with_the_head() {
    let stream = stream_name("gap");
    let config = NatsBusConfig {
        max_events: 5,
        ..config(&stream)
    };
    let a = node(&config).await;
    for i in 0..20 {
        a.publish("task.updated", Audience::Everyone, json!({"i": i}));
    }
    // (A subscriber on A could itself miss some: the stream drops them so fast.)
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while a.head() < 20 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stream took the events"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A node that did not see them: the stream keeps 16 to 20 only.
    let b = node(&config).await;
    assert_eq!(b.head(), 20);
    let mut old = b.subscribe(Some(2));
    match next(&mut old).await {
        Delivery::Resync { seq } => assert_eq!(seq, 20, "resync with the head"),
        other => panic!("expected a resync, got {other:?}"),
    }
    // Within what the stream keeps, it reads back.
    let mut recent = b.subscribe(Some(17));
    let seqs: Vec<u64> = events(&mut recent, 3).await.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [18, 19, 20]);
    // A number this stream never gave (a client from an older stream) resyncs too.
    let mut future = b.subscribe(Some(500));
    assert!(matches!(
        next(&mut future).await,
        Delivery::Resync { seq: 20 }
    ));

    a.publish("task.updated", Audience::Everyone, json!({"i": 20}));
    for sub in [&mut old, &mut future] {
        let after = event(sub).await;
        assert_eq!((after.seq, after.data["i"].as_u64()), (21, Some(20)));
    }
    drop((a, b));
    delete_stream(&stream).await;
}

#[tokio::test]
async fn events_a_node_could_not_publish_make_every_subscriber_resync() {
    let stream = stream_name("lost");
    let config = config(&stream);
    let (a, b) = (node(&config).await, node(&config).await);
    let mut on_b = b.subscribe(None);
    // On this single-threaded runtime the publisher task cannot run during the loop:
    // its queue fills and the rest is dropped, as when NATS is too slow or away.
    const PUBLISHED: usize = 10_000;
    for i in 0..PUBLISHED {
        a.publish("task.updated", Audience::Everyone, json!({"i": i}));
    }
    // What reached the stream before the marker comes first, then the resync.
    let mut last = None;
    loop {
        match next(&mut on_b).await {
            Delivery::Resync { .. } => break,
            Delivery::Event(e) => {
                assert!(last.is_none_or(|l| e.seq > l), "in order");
                last = Some(e.seq);
            }
            Delivery::Closed => panic!("the loss must be told"),
        }
    }
    // Afterwards the subscriber carries on in order, and what reached the stream is
    // fewer than what was published.
    a.publish("task.updated", Audience::Everyone, json!({"done": true}));
    let mut last = None;
    let mut count = 0;
    loop {
        let e = event(&mut on_b).await;
        assert!(last.is_none_or(|l| e.seq > l), "in order");
        last = Some(e.seq);
        if e.data["done"] == true {
            break;
        }
        count += 1;
    }
    assert!(count < PUBLISHED, "{count}");
    drop((a, b));
    delete_stream(&stream).await;
}

#[tokio::test]
async fn an_unreachable_nats_never_blocks_or_panics_a_publisher() {
    let bus = NatsBus::start(NatsBusConfig::new(
        "nats://127.0.0.1:1",
        stream_name("unreachable"),
    ));
    let published = tokio::time::timeout(PATIENCE, async {
        for i in 0..20_000 {
            bus.publish("timeline.created", Audience::Supervisors, json!({"i": i}));
        }
    })
    .await;
    assert!(published.is_ok(), "publishing returned");
    assert_eq!(bus.head(), 0, "nothing was read");
    assert!(!bus.ready(Duration::from_millis(200)).await);
    let _waiting = bus.subscribe(None);
}

#[tokio::test]
async fn a_stream_made_again_resyncs_every_subscriber() {
    let stream = stream_name("reset");
    let config = config(&stream);
    let (a, b) = (node(&config).await, node(&config).await);
    let mut on_b = b.subscribe(None);
    for i in 0..3 {
        a.publish("task.updated", Audience::Everyone, json!({"i": i}));
    }
    assert_eq!(events(&mut on_b, 3).await[2].seq, 3);

    // An operator deletes the stream; the nodes make it again and its numbers start
    // over, so numbers clients hold mean nothing any more.
    delete_stream(&stream).await;
    match next(&mut on_b).await {
        Delivery::Resync { seq } => assert!(seq < 3, "the new stream's head: {seq}"),
        other => panic!("expected a resync, got {other:?}"),
    }
    a.publish("task.updated", Audience::Everyone, json!({"i": "after"}));
    loop {
        match next(&mut on_b).await {
            Delivery::Event(e) if e.data["i"] == "after" => break,
            Delivery::Event(_) | Delivery::Resync { .. } => {}
            Delivery::Closed => panic!("the bus closed"),
        }
    }
    drop((a, b));
    delete_stream(&stream).await;
}
