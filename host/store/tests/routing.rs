//! Durable routing state on SQLite and PostgreSQL: snapshots round-trip, and
//! the database itself refuses a double offer or a second live task.

#[macro_use]
mod common;

use common::Ctx;
use serde_json::json;
use switchboard_store::{
    AgentRoutingRow, QueueRow, ReservationRow, RoutingChanges, StoreError, TaskRow,
};

fn task(id: &str, conversation: &str, state: &str) -> TaskRow {
    TaskRow {
        id: id.into(),
        conversation_id: Some(conversation.into()),
        contact_id: Some("contact-1".into()),
        channel: "sms".into(),
        queue_id: "q1".into(),
        state: state.into(),
        agent_id: None,
        definition: json!({"priority": 10}),
        arrived_at: 1_000,
    }
}

fn offer(id: &str, task: &str, state: &str) -> ReservationRow {
    ReservationRow {
        id: id.into(),
        task_id: task.into(),
        agent_id: "agent-1".into(),
        state: state.into(),
        offered_at: 2_000,
        expires_at: 17_000,
        decided_at: None,
    }
}

async fn snapshots_round_trip_and_skip_finished_work(ctx: Ctx) {
    let store = ctx.store;
    store
        .upsert_queue(&QueueRow {
            id: "q1".into(),
            name: "messaging".into(),
            definition: json!({"sla_target_ms": 60000}),
        })
        .await
        .unwrap();
    let agent = store
        .create_agent(switchboard_store::NewAgent {
            email: "a@x.test".into(),
            name: "A".into(),
            role: switchboard_core::Role::Agent,
            password_hash: "h".into(),
            skills: vec![],
        })
        .await
        .unwrap();
    let mut done = task("t-done", "c2", "completed");
    done.agent_id = Some(agent.id.clone());
    store
        .save_routing(&RoutingChanges {
            tasks: vec![task("t1", "c1", "reserved"), done],
            reservations: vec![offer("r1", "t1", "pending")],
            finished: vec![],
            agents: vec![AgentRoutingRow {
                agent_id: agent.id.clone(),
                presence: "available".into(),
                presence_reason: None,
                capacity: json!({"total": 100}),
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    let snap = store.load_routing().await.unwrap();
    assert_eq!(snap.queues.len(), 1);
    assert_eq!(snap.queues[0].definition["sla_target_ms"], 60000);
    assert_eq!(snap.agents.len(), 1);
    assert_eq!(
        snap.tasks.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
        ["t1"]
    );
    assert_eq!(snap.reservations, vec![offer("r1", "t1", "pending")]);

    // Deciding the reservation and finishing the task removes both from the snapshot.
    let mut decided = offer("r1", "t1", "accepted");
    decided.decided_at = Some(3_000);
    store
        .save_routing(&RoutingChanges {
            tasks: vec![],
            reservations: vec![decided],
            agents: vec![],
            finished: vec![("t1".into(), "completed".into())],
            ..Default::default()
        })
        .await
        .unwrap();
    let snap = store.load_routing().await.unwrap();
    assert!(
        snap.tasks.is_empty() && snap.reservations.is_empty(),
        "{snap:?}"
    );
    assert_eq!(store.task("t1").await.unwrap().state, "completed");
    assert_eq!(
        store.last_agent_for_contact("contact-1").await.unwrap(),
        Some(agent.id.clone()),
        "the agent of the finished task served the contact last"
    );
    assert_eq!(store.last_agent_for_contact("nobody").await.unwrap(), None);
}

async fn a_second_pending_offer_of_a_task_is_refused(ctx: Ctx) {
    let store = ctx.store;
    store
        .save_routing(&RoutingChanges {
            tasks: vec![task("t1", "c1", "reserved")],
            reservations: vec![offer("r1", "t1", "pending")],
            ..Default::default()
        })
        .await
        .unwrap();
    let err = store
        .save_routing(&RoutingChanges {
            tasks: vec![task("t1", "c1", "reserved")],
            reservations: vec![offer("r2", "t1", "pending")],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let snap = store.load_routing().await.unwrap();
    assert_eq!(
        snap.reservations.len(),
        1,
        "nothing of the refused step was written"
    );
}

async fn a_conversation_has_one_live_task(ctx: Ctx) {
    let store = ctx.store;
    let first = RoutingChanges {
        tasks: vec![task("t1", "c1", "pending")],
        ..Default::default()
    };
    store.save_routing(&first).await.unwrap();
    let second = RoutingChanges {
        tasks: vec![task("t2", "c1", "pending")],
        ..Default::default()
    };
    assert!(matches!(
        store.save_routing(&second).await,
        Err(StoreError::Conflict(_))
    ));
    // Once the first is completed, a new task for the conversation is fine.
    store
        .save_routing(&RoutingChanges {
            tasks: vec![task("t1", "c1", "completed"), task("t2", "c1", "pending")],
            ..Default::default()
        })
        .await
        .unwrap();
}

async fn conversations_without_a_task_are_found_for_reconciliation(ctx: Ctx) {
    let store = ctx.store;
    let batch = |sid: &str, from: &str| switchboard_store::IngestBatch {
        plugin_id: "sms-twilio".into(),
        channel: "sms".into(),
        now_ms: 1_000,
        reopen_window_ms: 60_000,
        events: vec![switchboard_store::IngestEvent::InboundMessage(
            switchboard_store::InboundMessage {
                provider_id: sid.into(),
                sender: switchboard_core::parse_identity_query(from, None).unwrap(),
                sender_name: None,
                body: "hi".into(),
                attachments: vec![],
                sent_at_ms: None,
                metadata: serde_json::Value::Null,
            },
        )],
    };
    let routed = store
        .ingest(batch("SM1", "phone:+15550000001"))
        .await
        .unwrap();
    let lost = store
        .ingest(batch("SM2", "phone:+15550000002"))
        .await
        .unwrap();
    let conv = |o: &[switchboard_store::IngestOutcome]| match &o[0] {
        switchboard_store::IngestOutcome::Created {
            conversation_id, ..
        } => conversation_id.clone(),
        other => panic!("{other:?}"),
    };
    store
        .save_routing(&RoutingChanges {
            tasks: vec![task("t1", &conv(&routed), "pending")],
            ..Default::default()
        })
        .await
        .unwrap();
    let missing = store.conversations_without_task().await.unwrap();
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert_eq!(missing[0].0, conv(&lost));
    assert_eq!(missing[0].2, "sms");
}

store_tests!(
    conversations_without_a_task_are_found_for_reconciliation,
    snapshots_round_trip_and_skip_finished_work,
    a_second_pending_offer_of_a_task_is_refused,
    a_conversation_has_one_live_task,
);
