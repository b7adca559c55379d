//! CRM data on SQLite and on PostgreSQL: write-back rows are queued in the
//! transaction of what they describe (messages, notes and resolves as their event is
//! written, a call when it is saved as ended) for every enabled CRM plugin that
//! receives that kind; the queue is claimed, retried, killed and re-queued; a CRM's
//! answer fills an empty name and merges its attributes into the contact.

#[macro_use]
mod common;

use common::Ctx;
use serde_json::json;
use switchboard_core::{Direction, EventKind, Identity, parse_identity_query};
use switchboard_store::{
    CallRecord, CallStarted, CrmActivityKind, CrmActivityStatus, CrmLink, CrmSubscription,
    InboundMessage, IngestBatch, IngestEvent, IngestOutcome, NewEvent, PluginInstall, Store,
    StoreError,
};

const T0: i64 = 1_700_000_000_000;

fn id(query: &str) -> Identity {
    parse_identity_query(query, None).unwrap()
}

fn crm_plugin(id: &str) -> PluginInstall {
    PluginInstall {
        id: id.into(),
        version: "0.1.0".into(),
        kind: "crm".into(),
        world: "switchboard:plugin/crm@0.2.0".into(),
        manifest: format!("id = \"{id}\"\n"),
        path: format!("/var/lib/switchboard/plugins/{id}"),
        allowed_hosts: vec!["api.hubapi.com".into()],
        enabled: true,
        component: None,
    }
}

async fn inbound_sms(store: &Store, provider_id: &str, now: i64) -> (String, String, String) {
    let event = IngestEvent::InboundMessage(InboundMessage {
        provider_id: provider_id.into(),
        sender: id("phone:+15551230001"),
        sender_name: None,
        body: "where is my order".into(),
        attachments: vec![],
        sent_at_ms: None,
        metadata: serde_json::Value::Null,
    });
    let out = store
        .ingest(IngestBatch {
            plugin_id: "sms-twilio".into(),
            channel: "sms".into(),
            now_ms: now,
            reopen_window_ms: 3_600_000,
            events: vec![event],
        })
        .await
        .unwrap()
        .remove(0);
    match out {
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
    write_back_is_queued_with_the_event_for_each_crm_that_receives_it,
    a_call_is_queued_when_it_ends_once,
    the_queue_retries_kills_and_requeues,
    a_crm_answer_fills_the_name_and_merges_attributes,
);

async fn write_back_is_queued_with_the_event_for_each_crm_that_receives_it(ctx: Ctx) {
    let store = &ctx.store;
    // No CRM yet: nothing is queued.
    let (_, conv, first) = inbound_sms(store, "SM0", T0).await;
    store
        .upsert_plugin(crm_plugin("crm-hubspot"))
        .await
        .unwrap();
    store.upsert_plugin(crm_plugin("crm-zoho")).await.unwrap();
    assert!(store.crm_installed().await.unwrap());
    // Defaults: calls, summaries and notes; not messages.
    let subs = store.crm_subscriptions().await.unwrap();
    assert_eq!(
        subs,
        vec![
            CrmSubscription::defaults("crm-hubspot"),
            CrmSubscription::defaults("crm-zoho")
        ]
    );
    assert!(!subs[0].messages && subs[0].notes && subs[0].calls && subs[0].summaries);
    let (_, _, message) = inbound_sms(store, "SM1", T0 + 1_000).await;
    let note = store
        .append_event(NewEvent::internal(
            &conv,
            EventKind::Note,
            "called the courier",
            None,
            json!({}),
            T0 + 2_000,
        ))
        .await
        .unwrap();
    let rows = store.list_crm_activities(None, 100).await.unwrap();
    let mut ids: Vec<_> = rows.iter().map(|r| r.id.clone()).collect();
    ids.sort();
    assert_eq!(
        ids,
        vec![
            format!("crm-hubspot:{}", note.id),
            format!("crm-zoho:{}", note.id)
        ],
        "notes go to both CRMs, messages to none by default, and nothing from before"
    );
    assert!(rows.iter().all(|r| r.kind == CrmActivityKind::Note
        && r.status == CrmActivityStatus::Pending
        && r.attempts == 0));

    // HubSpot takes messages, Zoho takes nothing; a disabled CRM gets nothing.
    store
        .set_crm_subscription(&CrmSubscription {
            messages: true,
            ..CrmSubscription::defaults("crm-hubspot")
        })
        .await
        .unwrap();
    store
        .set_crm_subscription(&CrmSubscription {
            plugin_id: "crm-zoho".into(),
            calls: false,
            summaries: false,
            notes: false,
            messages: false,
        })
        .await
        .unwrap();
    let (_, _, message2) = inbound_sms(store, "SM2", T0 + 3_000).await;
    let rows = store.list_crm_activities(None, 100).await.unwrap();
    let of_message2: Vec<_> = rows.iter().filter(|r| r.event_id == message2).collect();
    assert_eq!(of_message2.len(), 1);
    assert_eq!(of_message2[0].plugin_id, "crm-hubspot");
    assert_eq!(of_message2[0].kind, CrmActivityKind::Message);
    assert!(
        !rows
            .iter()
            .any(|r| r.event_id == message || r.event_id == first)
    );

    // A subscription for a plugin that is no CRM is refused.
    match store
        .set_crm_subscription(&CrmSubscription::defaults("sms-twilio"))
        .await
    {
        Err(StoreError::NotFound { .. }) => {}
        other => panic!("{other:?}"),
    }
}

async fn a_call_is_queued_when_it_ends_once(ctx: Ctx) {
    let store = &ctx.store;
    store
        .upsert_plugin(crm_plugin("crm-hubspot"))
        .await
        .unwrap();
    let call = IngestEvent::Call(CallStarted {
        provider_id: "call-1".into(),
        party: id("phone:+15551230001"),
        direction: Direction::In,
        body: "Call from +15551230001".into(),
        data: json!({"call_id": "call-1", "outcome": "in_progress"}),
    });
    let out = store
        .ingest(IngestBatch {
            plugin_id: "voice".into(),
            channel: "voice".into(),
            now_ms: T0,
            reopen_window_ms: 3_600_000,
            events: vec![call],
        })
        .await
        .unwrap()
        .remove(0);
    let IngestOutcome::Created {
        contact_id,
        conversation_id,
        event_id,
        ..
    } = out
    else {
        panic!("{out:?}")
    };
    let mut record = CallRecord {
        id: "call-1".into(),
        direction: "inbound".into(),
        state: "connected".into(),
        remote_number: "+15551230001".into(),
        dialed_number: "+15550000000".into(),
        contact_id: Some(contact_id),
        conversation_id: Some(conversation_id),
        event_id: Some(event_id.clone()),
        agent_id: None,
        recording_path: None,
        detail: json!({"outcome": "in_progress"}),
        started_at: T0,
        answered_at: Some(T0 + 5_000),
        ended_at: None,
    };
    store
        .save_call_with_event(&record, Some("Call from +15551230001"))
        .await
        .unwrap();
    assert!(
        store
            .list_crm_activities(None, 10)
            .await
            .unwrap()
            .is_empty(),
        "nothing while the call goes on"
    );
    record.state = "ended".into();
    record.ended_at = Some(T0 + 65_000);
    record.detail = json!({"outcome": "answered", "duration_ms": 60_000});
    store
        .save_call_with_event(&record, Some("Call from +15551230001 · 1:00"))
        .await
        .unwrap();
    // Saved again later (the disposition): still one row.
    record.detail["disposition"] = json!("resolved");
    store
        .save_call_with_event(&record, Some("Call from +15551230001 · 1:00"))
        .await
        .unwrap();
    let rows = store.list_crm_activities(None, 10).await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].kind, CrmActivityKind::Call);
    assert_eq!(rows[0].event_id, event_id);
    assert_eq!(rows[0].id, format!("crm-hubspot:{event_id}"));
}

async fn the_queue_retries_kills_and_requeues(ctx: Ctx) {
    let store = &ctx.store;
    store
        .upsert_plugin(crm_plugin("crm-hubspot"))
        .await
        .unwrap();
    let (_, conv, _) = inbound_sms(store, "SM1", T0).await;
    let note = store
        .append_event(NewEvent::internal(
            &conv,
            EventKind::Note,
            "vip, call back",
            None,
            json!({}),
            T0 + 1_000,
        ))
        .await
        .unwrap();
    let id = format!("crm-hubspot:{}", note.id);
    let claimed = store
        .claim_crm_activities(T0 + 2_000, 10, 60_000)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].status, CrmActivityStatus::Sending);
    // Claimed rows are not handed out again while their lease runs.
    assert!(
        store
            .claim_crm_activities(T0 + 3_000, 10, 60_000)
            .await
            .unwrap()
            .is_empty()
    );
    // …but are after it ran out (a worker that died).
    let again = store
        .claim_crm_activities(T0 + 70_000, 10, 60_000)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    // The worker that died wakes up: what it records is refused, the row unchanged.
    match store
        .crm_activity_outcome(
            &id,
            CrmActivityStatus::Done,
            (0, T0),
            None,
            claimed[0].lease_until,
        )
        .await
    {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("a stale lease must be refused: {other:?}"),
    }
    let row = store
        .crm_activity_outcome(
            &id,
            CrmActivityStatus::Pending,
            (1, T0 + 100_000),
            Some("transient: 503"),
            again[0].lease_until,
        )
        .await
        .unwrap();
    assert_eq!(
        (row.status, row.attempts, row.last_error.as_deref()),
        (CrmActivityStatus::Pending, 1, Some("transient: 503"))
    );
    assert!(
        store
            .claim_crm_activities(T0 + 99_000, 10, 60_000)
            .await
            .unwrap()
            .is_empty(),
        "not before its retry time"
    );
    // Only a dead row can be re-queued.
    match store.crm_activity_requeue(&id, T0 + 100_000).await {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("{other:?}"),
    }
    store
        .crm_activity_outcome(
            &id,
            CrmActivityStatus::Dead,
            (2, T0),
            Some("permanent: 400"),
            None,
        )
        .await
        .unwrap();
    let dead = store
        .list_crm_activities(Some(CrmActivityStatus::Dead), 10)
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    let row = store.crm_activity_requeue(&id, T0 + 200_000).await.unwrap();
    assert_eq!((row.status, row.attempts), (CrmActivityStatus::Pending, 0));
    let claimed = store
        .claim_crm_activities(T0 + 200_000, 10, 60_000)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    match store.crm_activity_requeue("crm-hubspot:nope", T0).await {
        Err(StoreError::NotFound { .. }) => {}
        other => panic!("{other:?}"),
    }
}

async fn a_crm_answer_fills_the_name_and_merges_attributes(ctx: Ctx) {
    let store = &ctx.store;
    let (contact, _, _) = inbound_sms(store, "SM1", T0).await;
    store
        .update_contact(
            &contact,
            None,
            json!({"language": "en", "vip": "false"})
                .as_object()
                .cloned(),
            T0,
        )
        .await
        .unwrap();
    let link = CrmLink {
        plugin_id: "crm-hubspot".into(),
        external_id: "501".into(),
        url: Some("https://app.hubspot.com/contacts/42/record/0-1/501".into()),
        display_name: Some("Jane Roe".into()),
        attributes: json!({"vip": "true", "owner": "Kim"}),
        identities: json!([{"kind": "email", "value": "jane@example.com"}]),
        fetched_at: T0 + 1_000,
    };
    assert!(store.save_crm_link(&contact, &link).await.unwrap());
    let c = store.contact(&contact).await.unwrap();
    assert_eq!(c.display_name.as_deref(), Some("Jane Roe"));
    assert_eq!(
        c.attributes,
        json!({"language": "en", "vip": "true", "owner": "Kim"})
    );
    // The same answer again changes nothing on the contact; a name we have is kept.
    assert!(!store.save_crm_link(&contact, &link).await.unwrap());
    let renamed = CrmLink {
        display_name: Some("J. Roe".into()),
        ..link.clone()
    };
    assert!(!store.save_crm_link(&contact, &renamed).await.unwrap());
    assert_eq!(
        store
            .contact(&contact)
            .await
            .unwrap()
            .display_name
            .as_deref(),
        Some("Jane Roe")
    );
    let links = store.crm_links(&contact).await.unwrap();
    assert_eq!(links, vec![renamed]);
    match store.save_crm_link("no-such-contact", &link).await {
        Err(StoreError::NotFound { .. }) => {}
        other => panic!("{other:?}"),
    }
}
