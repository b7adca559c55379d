//! Routing leadership on one shared database: one leader at a time, a new leader's
//! epoch fences the old one's writes, and a leader whose session is cut learns it.
//! On SQLite the one node always leads and nothing is fenced.

#[macro_use]
mod common;

use std::time::Duration;

use common::{Ctx, TEST_KEY};
use switchboard_store::{RoutingChanges, Store, StoreError, TaskRow};

const CHECK: Duration = Duration::from_millis(100);
/// The longest a test waits for something that should happen within a second or
/// two; a bound so a broken build fails instead of hanging, not a timing claim.
const PATIENCE: Duration = Duration::from_secs(30);

fn step(task_id: &str, epoch: Option<i64>) -> RoutingChanges {
    RoutingChanges {
        tasks: vec![TaskRow {
            id: task_id.into(),
            conversation_id: Some(format!("conv-{task_id}")),
            contact_id: Some("contact-1".into()),
            channel: "sms".into(),
            queue_id: "q1".into(),
            state: "queued".into(),
            agent_id: None,
            definition: serde_json::json!({}),
            arrived_at: 1_000,
        }],
        at: 1_000,
        epoch,
        ..RoutingChanges::default()
    }
}

async fn task_ids(store: &Store) -> Vec<String> {
    let mut ids: Vec<String> = store
        .load_routing()
        .await
        .expect("snapshot")
        .tasks
        .into_iter()
        .map(|t| t.id)
        .collect();
    ids.sort();
    ids
}

async fn one_leader_and_a_new_epoch_fences_the_old_one(ctx: Ctx) {
    let a = ctx.store;
    let b = Store::connect(&ctx.url, TEST_KEY).await.expect("node b");

    let lead_a = a.try_lead("a", CHECK).await.expect("try").expect("a leads");
    let epoch_a = lead_a.epoch().expect("an epoch on PostgreSQL");
    assert!(
        b.try_lead("b", CHECK).await.expect("try").is_none(),
        "b must not lead beside a"
    );
    let record = a.routing_leader().await.expect("record");
    assert_eq!((record.node.as_str(), record.epoch), ("a", epoch_a));
    a.save_routing(&step("t1", Some(epoch_a)))
        .await
        .expect("a writes");

    drop(lead_a); // a's session ends: the lock is free
    let lead_b = wait_to_lead(&b, "b").await;
    let epoch_b = lead_b.epoch().expect("epoch");
    assert!(epoch_b > epoch_a);

    // a has not noticed: its write under the old epoch is refused, and nothing of it lands.
    match a.save_routing(&step("t2", Some(epoch_a))).await {
        Err(StoreError::Fenced { held, current }) => {
            assert_eq!((held, current), (epoch_a, epoch_b));
        }
        other => panic!("expected a fenced write, got {other:?}"),
    }
    b.save_routing(&step("t3", Some(epoch_b)))
        .await
        .expect("b writes");
    assert_eq!(task_ids(&b).await, ["t1", "t3"]);
    b.close().await;
}

async fn a_leader_whose_session_is_cut_learns_it_and_another_takes_over(ctx: Ctx) {
    let a = ctx.store;
    let b = Store::connect(&ctx.url, TEST_KEY).await.expect("node b");
    let lead_a = a.try_lead("a", CHECK).await.expect("try").expect("a leads");
    assert!(!lead_a.is_lost());

    // An administrator (or a network cut) ends the session that holds the lock.
    common::raw_execute(
        &ctx.url,
        format!(
            "SELECT pg_terminate_backend(pid) FROM pg_locks \
             WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid() \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
             AND ((classid::bigint << 32) | objid::bigint) = {}",
            switchboard_store::LEADER_LOCK
        ),
    )
    .await;
    tokio::time::timeout(PATIENCE, lead_a.lost())
        .await
        .expect("the leader learns its session is gone");
    assert!(lead_a.is_lost());
    let lead_b = wait_to_lead(&b, "b").await;
    assert!(lead_b.epoch() > lead_a.epoch());
    b.close().await;
}

async fn wait_to_lead(store: &Store, node: &str) -> switchboard_store::Leadership {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(lead) = store.try_lead(node, CHECK).await.expect("try") {
            return lead;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{node} never got to lead"
        );
        tokio::time::sleep(CHECK).await;
    }
}

mod postgres_only {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_leader_and_a_new_epoch_fences_the_old_one() {
        common::on_postgres(super::one_leader_and_a_new_epoch_fences_the_old_one).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_leader_whose_session_is_cut_learns_it_and_another_takes_over() {
        common::on_postgres(super::a_leader_whose_session_is_cut_learns_it_and_another_takes_over)
            .await;
    }
}

#[tokio::test]
async fn on_sqlite_the_one_node_always_leads_and_nothing_is_fenced() {
    common::on_sqlite(|ctx: Ctx| async move {
        let lead = ctx
            .store
            .try_lead("only", CHECK)
            .await
            .expect("try")
            .expect("leads");
        assert_eq!(lead.epoch(), None);
        let again = ctx.store.try_lead("only", CHECK).await.expect("try");
        assert!(again.is_some(), "SQLite has one node: it always leads");
        ctx.store
            .save_routing(&step("t1", None))
            .await
            .expect("write");
        assert_eq!(task_ids(&ctx.store).await, ["t1"]);
        assert!(!lead.is_lost());
    })
    .await;
}
