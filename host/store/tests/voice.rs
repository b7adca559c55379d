//! Voice records on SQLite and on PostgreSQL: a call joins the caller's open
//! conversation (with a channel switch from chat), its record and timeline detail are
//! rewritten as the call goes on, trunks keep their password sealed, and desk phones
//! keep only an HA1.

#[macro_use]
mod common;

use common::Ctx;
use serde_json::json;
use switchboard_core::{Direction, EventKind, Identity, parse_identity_query};
use switchboard_store::{
    CallRecord, CallSave, CallStarted, InboundMessage, IngestBatch, IngestEvent, IngestOutcome,
    SipAccount, StoreError,
};

const T0: i64 = 1_700_000_000_000;

fn id(query: &str) -> Identity {
    parse_identity_query(query, None).unwrap()
}

fn batch(channel: &str, now: i64, event: IngestEvent) -> IngestBatch {
    IngestBatch {
        plugin_id: channel.into(),
        channel: channel.into(),
        now_ms: now,
        reopen_window_ms: 3_600_000,
        events: vec![event],
    }
}

fn created(outcome: IngestOutcome) -> (String, String, String) {
    match outcome {
        IngestOutcome::Created {
            contact_id,
            conversation_id,
            event_id,
            ..
        } => (contact_id, conversation_id, event_id),
        other => panic!("{other:?}"),
    }
}

store_tests!(
    a_call_joins_the_open_chat_with_a_channel_switch_and_its_detail_grows,
    trunks_seal_their_password_and_accounts_keep_only_ha1,
);

async fn a_call_joins_the_open_chat_with_a_channel_switch_and_its_detail_grows(ctx: Ctx) {
    let jane = id("phone:+15551230001");
    let sms = IngestEvent::InboundMessage(InboundMessage {
        provider_id: "SM1".into(),
        sender: jane.clone(),
        sender_name: None,
        body: "my invoice".into(),
        attachments: vec![],
        sent_at_ms: None,
        metadata: serde_json::Value::Null,
    });
    let (contact, conv, _) = created(
        ctx.store
            .ingest(batch("sms", T0, sms))
            .await
            .unwrap()
            .remove(0),
    );
    let call = IngestEvent::Call(CallStarted {
        provider_id: "call-1".into(),
        party: jane.clone(),
        direction: Direction::In,
        body: "Call from +15551230001".into(),
        data: json!({"call_id": "call-1", "outcome": "in_progress"}),
    });
    let (c2, conv2, event) = created(
        ctx.store
            .ingest(batch("voice", T0 + 10, call.clone()))
            .await
            .unwrap()
            .remove(0),
    );
    assert_eq!(
        (c2.as_str(), conv2.as_str()),
        (contact.as_str(), conv.as_str())
    );
    // The same call id again is a duplicate, not a second call.
    match ctx
        .store
        .ingest(batch("voice", T0 + 11, call))
        .await
        .unwrap()
        .remove(0)
    {
        IngestOutcome::Duplicate { event_id } => assert_eq!(event_id, event),
        other => panic!("{other:?}"),
    }
    let timeline = ctx.store.conversation_timeline(&conv).await.unwrap();
    let kinds: Vec<_> = timeline.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![
            EventKind::Message,
            EventKind::ChannelSwitch,
            EventKind::Call
        ]
    );
    assert_eq!(timeline[1].body, "sms → voice");

    let sam = ctx
        .store
        .create_agent(switchboard_store::NewAgent {
            email: "sam@voice.test".into(),
            name: "Sam".into(),
            role: switchboard_core::Role::Agent,
            password_hash: "$argon2id$not-checked-here".into(),
            skills: vec![],
        })
        .await
        .unwrap()
        .id;
    let summary = ctx.store.desk_summary(&sam, &conv).await.unwrap();
    assert_eq!(
        summary.waiting_since, None,
        "a call in progress answers the SMS"
    );
    ctx.store
        .update_event_detail(
            &event,
            "Call from +15551230001",
            &json!({"outcome": "abandoned"}),
        )
        .await
        .unwrap();
    let summary = ctx.store.desk_summary(&sam, &conv).await.unwrap();
    assert_eq!(
        summary.waiting_since,
        Some(T0),
        "after an abandoned call the customer still waits, since their SMS"
    );

    let detail = json!({"call_id": "call-1", "outcome": "answered", "duration_ms": 61_000,
        "ivr_path": ["menu:2"], "queue": "billing", "queue_wait_ms": 4_000});
    let updated = ctx
        .store
        .update_event_detail(&event, "Call from +15551230001 (1:01)", &detail)
        .await
        .unwrap();
    assert_eq!(updated.data, detail);
    assert_eq!(updated.body, "Call from +15551230001 (1:01)");
    assert!(matches!(
        ctx.store.update_event_detail("nope", "x", &detail).await,
        Err(StoreError::NotFound { .. })
    ));

    let mut record = CallRecord {
        id: "call-1".into(),
        direction: "inbound".into(),
        state: "queued".into(),
        remote_number: "+15551230001".into(),
        dialed_number: "+15550001000".into(),
        contact_id: Some(contact.clone()),
        conversation_id: Some(conv.clone()),
        event_id: Some(event.clone()),
        agent_id: None,
        recording_path: None,
        detail: json!({"ivr_path": []}),
        started_at: T0 + 10,
        answered_at: None,
        ended_at: None,
    };
    ctx.store.save_call(&record).await.unwrap();
    assert_eq!(ctx.store.unfinished_calls().await.unwrap().len(), 1);
    record.state = "ended".into();
    record.recording_path = Some("/data/recordings/call-1.wav".into());
    record.answered_at = Some(T0 + 20);
    record.ended_at = Some(T0 + 80);
    record.detail = detail.clone();
    ctx.store.save_call(&record).await.unwrap();
    assert_eq!(ctx.store.call("call-1").await.unwrap(), record);
    assert!(ctx.store.unfinished_calls().await.unwrap().is_empty());

    // A save of the call as it was before the hang-up, landing after it, changes
    // neither the record nor the timeline event.
    let mut late = record.clone();
    late.state = "queued".into();
    late.ended_at = None;
    late.detail = json!({"ivr_path": [], "outcome": "in_progress"});
    assert_eq!(
        ctx.store
            .save_call_with_event(&late, Some("Call from +15551230001"))
            .await
            .unwrap(),
        CallSave::Stale
    );
    assert!(!ctx.store.save_call(&late).await.unwrap());
    assert_eq!(ctx.store.call("call-1").await.unwrap(), record);
    assert_eq!(ctx.store.event(&event).await.unwrap().data, detail);
    // The ended call's later changes (a disposition) still land, event included.
    let mut disposed = record.clone();
    disposed.detail["disposition"] = json!("resolved");
    match ctx
        .store
        .save_call_with_event(&disposed, Some("Call from +15551230001 · resolved"))
        .await
        .unwrap()
    {
        CallSave::Saved(Some(e)) => assert_eq!(e.data["disposition"], "resolved"),
        other => panic!("the disposition was not saved: {other:?}"),
    }
    assert_eq!(ctx.store.call("call-1").await.unwrap(), disposed);
}

async fn trunks_seal_their_password_and_accounts_keep_only_ha1(ctx: Ctx) {
    let t = ctx
        .store
        .upsert_trunk("carrier", "127.0.0.1:5070", Some("acme"), Some("s3cret-pw"))
        .await
        .unwrap();
    assert_eq!(t.password.as_deref(), Some("s3cret-pw"));
    assert!(!t.public().to_string().contains("s3cret-pw"));
    assert_eq!(t.public()["has_password"], true);
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&ctx.url).await.unwrap();
    let stored: String = sqlx::query_scalar("SELECT password FROM sip_trunk")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert!(!stored.contains("s3cret-pw"), "sealed at rest");
    // Renaming nothing, replacing the address:
    ctx.store
        .upsert_trunk("carrier", "127.0.0.1:5080", None, None)
        .await
        .unwrap();
    let all = ctx.store.trunks().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].address, "127.0.0.1:5080");
    assert_eq!(all[0].password, None);
    assert!(
        ctx.store
            .upsert_trunk("half", "127.0.0.1:5090", Some("u"), None)
            .await
            .is_err()
    );
    assert!(ctx.store.remove_trunk("carrier").await.unwrap());
    assert!(!ctx.store.remove_trunk("carrier").await.unwrap());

    let account = SipAccount {
        username: "1001".into(),
        realm: "switchboard".into(),
        ha1: "0123456789abcdef0123456789abcdef".into(),
        agent_id: None,
    };
    ctx.store.upsert_sip_account(&account).await.unwrap();
    assert_eq!(ctx.store.sip_account("1001").await.unwrap(), Some(account));
    assert_eq!(ctx.store.sip_account("1002").await.unwrap(), None);
    let bad = SipAccount {
        username: "no spaces".into(),
        realm: "switchboard".into(),
        ha1: "x".into(),
        agent_id: None,
    };
    assert!(ctx.store.upsert_sip_account(&bad).await.is_err());
}
