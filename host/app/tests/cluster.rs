//! Several nodes on one PostgreSQL database: one leads routing, the others hand it
//! what they take in; a leader that is fenced or loses its session steps down and
//! another takes over from the database, with nothing lost.

// Shares the scenario support; this file does not use its two-backend macro.
#[allow(unused_macros, unused_imports)]
mod support;

use std::time::Duration;

use support::{KEY, World, on_postgres_url, phone};
use switchboard_app::routing::{NodeConfig, RoutingRole};
use switchboard_store::Store;

/// Short so a takeover happens within the test's patience.
const POLL: Duration = Duration::from_millis(100);
/// A bound so a broken build fails instead of hanging; not a timing claim.
const PATIENCE: Duration = Duration::from_secs(30);

fn node(id: &str) -> NodeConfig {
    NodeConfig {
        id: id.into(),
        leader_poll: POLL,
        leader_check: POLL,
        ..NodeConfig::default()
    }
}

fn role(w: &World) -> RoutingRole {
    w.app.routing.as_ref().expect("routing").role()
}

async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(POLL / 2).await;
    }
}

async fn raw(url: &str, sql: &'static str) {
    let mut conn = <sqlx::postgres::PgConnection as sqlx::Connection>::connect(url)
        .await
        .expect("raw connection");
    sqlx::raw_sql(sql)
        .execute(&mut conn)
        .await
        .expect("raw statement");
}

/// Waits until one of the nodes leads, and gives (leader, follower). A node that
/// lost leadership competes again like any other, so either may win.
async fn new_leader<'w>(a: &'w World, b: &'w World) -> (&'w World, &'w World) {
    until("a node leads", || {
        (role(a) == RoutingRole::Leader) != (role(b) == RoutingRole::Leader)
    })
    .await;
    if role(a) == RoutingRole::Leader {
        (a, b)
    } else {
        (b, a)
    }
}

/// "Hello" by SMS from `from`.
fn hello(from: &str) -> switchboard_store::IngestEvent {
    switchboard_store::IngestEvent::InboundMessage(switchboard_store::InboundMessage {
        provider_id: uuid::Uuid::new_v4().to_string(),
        sender: phone(from),
        sender_name: None,
        body: "Hello".into(),
        attachments: vec![],
        sent_at_ms: None,
        metadata: serde_json::Value::Null,
    })
}

/// A customer message taken in by `w`, not waiting for routing (a follower does not route).
async fn take_in(w: &World, from: &str) -> String {
    let outcomes = w
        .app
        .ingest
        .commit("sms-test", "sms", vec![hello(from)])
        .await
        .expect("ingest");
    match outcomes.into_iter().next() {
        Some(switchboard_store::IngestOutcome::Created {
            conversation_id, ..
        }) => conversation_id,
        other => panic!("not stored: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_routes_what_a_follower_takes_in_and_a_fenced_leader_steps_down() {
    on_postgres_url(|store, url| async move {
        let a = World::start_node(store, 0, node("a")).await;
        let b_store = Store::connect(&url, KEY).await.expect("node b");
        let b = World::start_node(b_store, 0, node("b")).await;
        assert_eq!(
            (role(&a), role(&b)),
            (RoutingRole::Leader, RoutingRole::Follower)
        );

        let ann = a.available_agent("Ann", 0).await;
        // A follower refuses routing commands instead of keeping an engine of its own.
        let refused = b
            .app
            .tasks
            .set_presence(&ann, "me", "away", None)
            .await
            .expect_err("a follower does not drive routing");
        assert_eq!(refused.code(), "routing_follower");

        // What the follower takes in, the leader routes.
        let first = take_in(&b, "+15550000001").await;
        a.task_on(&first, "sms").await;
        a.accept(&ann, &first).await;

        // Another node won leadership behind a's back: a's next write is fenced,
        // nothing of it lands, and a steps down.
        raw(&url, "UPDATE routing_leader SET epoch = epoch + 1").await;
        let fenced = a.app.tasks.set_presence(&ann, "me", "away", None).await;
        assert!(fenced.is_err(), "a deposed leader must not write");
        assert_eq!(role(&a), RoutingRole::Follower);
        let stored = a.app.store.load_routing().await.expect("snapshot");
        let presence = stored
            .agents
            .iter()
            .find(|r| r.agent_id == ann.id)
            .expect("row");
        assert_eq!(presence.presence, "available");

        // A node takes over from the database (b, or a again after a new try): the
        // accepted task is still Ann's.
        let (leader, follower) = new_leader(&a, &b).await;
        let routing = leader.app.routing.as_ref().expect("routing");
        let task = routing
            .task_of_conversation(&first)
            .await
            .expect("task restored");
        assert_eq!(routing.tasks_held_by(&ann.id).await.len(), 1);
        assert_eq!(task.channel, "sms");

        // And the other node hands over what it takes in.
        let second = take_in(follower, "+15550000002").await;
        leader.task_on(&second, "sms").await;
        let follower_routing = follower.app.routing.as_ref().expect("routing");
        assert!(
            follower_routing
                .task_of_conversation(&second)
                .await
                .is_none()
        );
        b.app.store.close().await;
    })
    .await;
}

/// A follower handed a conversation over and its leader died before reading it; the
/// next leader routes the conversation because it has no task. The hand-over must not
/// route it again once that task has ended (it did: an agent got a second offer for a
/// conversation already handled, and in `switchboard-bench failover` the offer after
/// each kill that followed a timed one was that stale task's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_takeover_that_routes_a_handed_conversation_consumes_the_hand_over() {
    on_postgres_url(|store, _url| async move {
        let outcomes = store
            .ingest(switchboard_store::IngestBatch {
                plugin_id: "sms-test".into(),
                channel: "sms".into(),
                now_ms: 0,
                reopen_window_ms: 0,
                events: vec![hello("+15550000009")],
            })
            .await
            .expect("taken in");
        let Some(switchboard_store::IngestOutcome::Created {
            conversation_id,
            contact_id,
            ..
        }) = outcomes.into_iter().next()
        else {
            panic!("not stored");
        };
        store
            .hand_to_leader(&switchboard_store::HandedInbound {
                conversation_id: conversation_id.clone(),
                contact_id,
                channel: "sms".into(),
                attributes: Default::default(),
            })
            .await
            .expect("handed over");
        // A long poll: the leader reads hand-overs every quarter of it, so the task
        // below ends before the first read.
        let slow = NodeConfig {
            leader_poll: Duration::from_secs(6),
            ..node("a")
        };
        let a = World::start_node(store.clone(), 0, slow).await;
        assert_eq!(role(&a), RoutingRole::Leader);
        let ann = a.available_agent("Ann", 0).await;
        let task = a.task_on(&conversation_id, "sms").await;
        a.accept(&ann, &conversation_id).await;
        let routing = a.app.routing.as_ref().expect("routing");
        let id = switchboard_routing::TaskId::from(task.as_str());
        routing
            .apply(|e, now| Ok(e.complete(now, &id)?))
            .await
            .expect("completed");
        assert!(
            routing
                .task_of_conversation(&conversation_id)
                .await
                .is_none()
        );
        // Past the leader's next reads of hand-overs: nothing routes it again.
        tokio::time::sleep(Duration::from_millis(3500)).await;
        assert!(
            routing
                .task_of_conversation(&conversation_id)
                .await
                .is_none(),
            "a stale hand-over routed a handled conversation again"
        );
        assert_eq!(store.take_handed().await.expect("inbox").len(), 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_database_session_is_cut_steps_down_and_another_takes_over() {
    on_postgres_url(|store, url| async move {
        let a = World::start_node(store, 0, node("a")).await;
        let b_store = Store::connect(&url, KEY).await.expect("node b");
        let b = World::start_node(b_store, 0, node("b")).await;
        let ann = a.available_agent("Ann", 0).await;
        let first = take_in(&a, "+15550000003").await;
        a.task_on(&first, "sms").await;

        raw(
            &url,
            "SELECT pg_terminate_backend(pid) FROM pg_locks \
             WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid() \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .await;
        // a steps down; then a node (b, or a again) takes over from the database,
        // restores the waiting offer and routes on: Ann can accept it there.
        until("a steps down", || role(&a) == RoutingRole::Follower).await;
        let (leader, _) = new_leader(&a, &b).await;
        leader.accept(&ann, &first).await;
        let routing = leader.app.routing.as_ref().expect("routing");
        assert_eq!(routing.tasks_held_by(&ann.id).await.len(), 1);
        b.app.store.close().await;
    })
    .await;
}

/// Nodes that relay people's routing commands to the leader through NATS (the test
/// server at `SWITCHBOARD_TEST_NATS_URL`, default 127.0.0.1:4222), on subjects of
/// their own so runs never meet.
fn relaying(id: &str, prefix: &str) -> NodeConfig {
    NodeConfig {
        nats_url: Some(
            std::env::var("SWITCHBOARD_TEST_NATS_URL")
                .unwrap_or_else(|_| "nats://127.0.0.1:4222".into()),
        ),
        nats_prefix: prefix.into(),
        ..node(id)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_relays_peoples_routing_commands_to_the_leader_with_its_answers() {
    on_postgres_url(|store, url| async move {
        let prefix = format!("sbtest{}", uuid::Uuid::new_v4().simple());
        let a = World::start_node(store, 0, relaying("a", &prefix)).await;
        let b_store = Store::connect(&url, KEY).await.expect("node b");
        let b = World::start_node(b_store, 0, relaying("b", &prefix)).await;
        assert_eq!(
            (role(&a), role(&b)),
            (RoutingRole::Leader, RoutingRole::Follower)
        );

        // Ann works through node b only; every command reaches a's engine.
        let ann = b.agent("Ann").await;
        let presence = b
            .app
            .tasks
            .set_presence(&ann, "me", "available", None)
            .await
            .expect("presence through the follower");
        assert_eq!(presence["presence"], "available");
        let on_leader = a.app.routing.as_ref().expect("routing").board().await;
        let shown = serde_json::to_value(&on_leader).expect("board");
        assert!(shown.to_string().contains(&ann.id), "{shown}");

        let first = take_in(&b, "+15550000004").await;
        a.task_on(&first, "sms").await;
        let offers = b.app.tasks.offers(&ann, "me").await.expect("offers");
        let reservation = offers["offers"][0]["reservation"]["id"]
            .as_str()
            .expect("an offer, read through the follower")
            .to_string();
        // The leader's refusals come back as they are.
        let bob = b.agent("Bob").await;
        let refused = b
            .app
            .tasks
            .accept(&bob, &reservation)
            .await
            .expect_err("not Bob's");
        let direct = a
            .app
            .tasks
            .accept(&bob, &reservation)
            .await
            .expect_err("not Bob's");
        assert_eq!(
            (refused.kind(), refused.code()),
            (direct.kind(), direct.code())
        );
        assert_eq!(refused.message(), direct.message());

        b.app
            .tasks
            .accept(&ann, &reservation)
            .await
            .expect("accept through the follower");
        let held = a
            .app
            .routing
            .as_ref()
            .expect("routing")
            .tasks_held_by(&ann.id)
            .await;
        assert_eq!(held.len(), 1);
        let task = held[0].id.as_str().to_string();
        b.app
            .tasks
            .finish(&ann, &task, false)
            .await
            .expect("complete through the follower");
        let routing = a.app.routing.as_ref().expect("routing");
        assert!(routing.tasks_held_by(&ann.id).await.is_empty());

        // The desk and the wallboard read the leader's engine through the follower:
        // Ann's next conversation is on her desk on b, and resolving it there frees
        // her capacity on the leader.
        let second = take_in(&b, "+15550000005").await;
        a.task_on(&second, "sms").await;
        a.accept(&ann, &second).await;
        let mine = b.app.desk.my_conversations(&ann.id).await.expect("desk");
        assert_eq!(mine.len(), 1, "{mine:?}");
        let board = b.app.supervision.wallboard().await.expect("wallboard");
        assert!(board.to_string().contains(&ann.id), "{board}");
        b.app
            .desk
            .resolve(&ann, &second, "resolved", None)
            .await
            .expect("resolve through the follower");
        assert!(routing.tasks_held_by(&ann.id).await.is_empty());
        assert!(routing.task_of_conversation(&second).await.is_none());

        // A supervisor disabling Ann through the follower sets her offline on the
        // leader at once: nothing more is offered to her.
        let presence = |board: switchboard_app::routing::Board| {
            board
                .agents
                .into_iter()
                .find(|x| x.id == ann.id)
                .map(|x| x.presence)
        };
        assert_eq!(
            presence(routing.board().await).as_deref(),
            Some("available")
        );
        let admin = b.agent("Ada").await;
        b.app
            .supervision
            .set_disabled(&admin.id, &ann.id, true)
            .await
            .expect("disable through the follower");
        assert_eq!(presence(routing.board().await).as_deref(), Some("offline"));

        // An admin creating an agent through the follower: the leader's engine gets
        // their skills.
        let zed = b
            .app
            .supervision
            .create_agent(
                &admin.id,
                "zed@example.test",
                "zed-password-123",
                Some("Zed".into()),
                "agent",
                &[("billing".to_string(), 3)],
            )
            .await
            .expect("agent created through the follower");
        let board = routing.board().await;
        let on_leader = board
            .agents
            .iter()
            .find(|x| x.id == zed.id)
            .unwrap_or_else(|| panic!("zed is not on the leader's board: {board:?}"));
        assert_eq!(on_leader.skills, vec![("billing".to_string(), 3)]);
        b.app.store.close().await;
    })
    .await;
}
