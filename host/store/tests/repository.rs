//! The store's repository tests. Every test runs on SQLite and on PostgreSQL (see
//! `common/mod.rs`); names read as the behaviour they prove.

#[macro_use]
mod common;

use std::collections::{BTreeMap, HashSet};

use common::Ctx;
use switchboard_core::{
    ConsentAction, ConsentState, ConversationStatus, DeliveryStatus, Direction, EventKind,
    Identity, OutboxStatus, Role, parse_identity_query, parse_skills,
};
use switchboard_store::{
    ConfigEntry, ConsentEvent, InboundMessage, IngestBatch, IngestEvent, IngestOutcome, NewAgent,
    NewReply, PluginInstall, Receipt, Store, StoreError,
};

const MINUTE: i64 = 60_000;
const T0: i64 = 1_700_000_000_000;
const WINDOW: i64 = 60 * MINUTE;

fn id(query: &str) -> Identity {
    parse_identity_query(query, None).unwrap()
}

fn message(provider_id: &str, from: &str, body: &str) -> IngestEvent {
    IngestEvent::InboundMessage(InboundMessage {
        provider_id: provider_id.into(),
        sender: id(from),
        sender_name: None,
        body: body.into(),
        attachments: vec![],
        sent_at_ms: None,
        metadata: serde_json::Value::Null,
    })
}

fn batch(plugin_id: &str, channel: &str, now_ms: i64, events: Vec<IngestEvent>) -> IngestBatch {
    IngestBatch {
        plugin_id: plugin_id.into(),
        channel: channel.into(),
        now_ms,
        reopen_window_ms: WINDOW,
        events,
    }
}

fn sms(now_ms: i64, provider_id: &str, from: &str, body: &str) -> IngestBatch {
    batch(
        "sms-twilio",
        "sms",
        now_ms,
        vec![message(provider_id, from, body)],
    )
}

async fn ingest_one(store: &Store, b: IngestBatch) -> IngestOutcome {
    let mut out = store.ingest(b).await.unwrap();
    assert_eq!(out.len(), 1);
    out.remove(0)
}

struct Created {
    contact_id: String,
    conversation_id: String,
    event_id: String,
    new_contact: bool,
    new_conversation: bool,
}

fn created(outcome: IngestOutcome) -> Created {
    match outcome {
        IngestOutcome::Created {
            contact_id,
            conversation_id,
            event_id,
            new_contact,
            new_conversation,
        } => Created {
            contact_id,
            conversation_id,
            event_id,
            new_contact,
            new_conversation,
        },
        other => panic!("expected Created, got {other:?}"),
    }
}

fn reply(conversation_id: &str, to: &str, channel: &str, now_ms: i64) -> NewReply {
    NewReply {
        conversation_id: conversation_id.into(),
        author_agent_id: None,
        body: "Hi Jane, let me pick up from there.".into(),
        plugin_id: format!("{channel}-plugin"),
        channel: channel.into(),
        to: id(to),
        now_ms,
        payload: serde_json::json!({}),
        attachments: Vec::new(),
    }
}

fn kinds(events: &[switchboard_store::TimelineEvent]) -> Vec<EventKind> {
    events.iter().map(|e| e.kind).collect()
}

store_tests!(current_thread: queued_batches_commit_in_one_transaction);

store_tests!(
    first_message_creates_contact_and_conversation,
    second_message_joins_the_same_conversation,
    a_duplicate_provider_id_is_reported_and_changes_nothing,
    a_second_identity_lands_in_the_same_conversation_with_a_channel_switch,
    a_resolved_conversation_reopens_inside_the_window_only,
    a_snoozed_conversation_wakes_up_on_a_new_message,
    receipts_never_move_delivery_status_backwards,
    a_receipt_that_beats_the_send_report_is_applied_later,
    an_opt_out_blocks_replies_on_that_channel_until_opt_in,
    replies_are_checked_against_the_contact_and_switch_channels,
    the_outbox_leases_retries_buries_and_requeues,
    concurrent_claimers_never_share_a_row,
    a_worker_whose_lease_passed_on_cannot_record_over_the_new_one,
    group_commit_gives_every_concurrent_caller_its_own_result,
    a_bad_batch_fails_alone,
    a_database_error_rolls_back_only_its_own_batch,
    nul_bytes_are_stored_on_every_backend,
    merge_then_unmerge_restores_exactly,
    the_contact_timeline_spans_conversations_and_pages_backwards,
    conversations_list_by_status_and_missing_ones_are_not_found,
    plugin_secrets_are_encrypted_at_rest,
    plugins_install_quarantine_and_reenable,
    plugin_kv_enforces_its_quota,
    agents_log_in_with_sessions,
    audit_entries_are_listed_newest_first,
    reconnecting_keeps_data_and_skips_applied_migrations,
);

async fn first_message_creates_contact_and_conversation(ctx: Ctx) {
    let store = &ctx.store;
    let mut b = sms(
        T0,
        "SM1",
        "phone:+15551234567",
        "Hello, my invoice is wrong",
    );
    if let IngestEvent::InboundMessage(m) = &mut b.events[0] {
        m.sender_name = Some("Jane Doe".into());
        m.sent_at_ms = Some(T0 - 500);
        m.attachments = vec![switchboard_store::InboundAttachment {
            source: "https://media.example/1.jpg".into(),
            content_type: Some("image/jpeg".into()),
            filename: None,
            size: Some(42),
            content_id: None,
            stored: None,
        }];
    }
    let c = created(ingest_one(store, b).await);
    assert!(c.new_contact && c.new_conversation);

    let contact = store
        .contact_by_identity(&id("phone:+15551234567"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(contact.id, c.contact_id);
    assert_eq!(contact.display_name.as_deref(), Some("Jane Doe"));
    assert_eq!(contact.identities.len(), 1);
    assert_eq!(
        (
            contact.identities[0].kind.as_str(),
            contact.identities[0].value.as_str()
        ),
        ("phone", "+15551234567")
    );
    assert_eq!(contact.attributes, serde_json::json!({}));

    let conv = store.conversation(&c.conversation_id).await.unwrap();
    assert_eq!(conv.contact_id, c.contact_id);
    assert_eq!(conv.status, ConversationStatus::Open);
    assert_eq!(conv.last_channel.as_deref(), Some("sms"));
    assert_eq!(conv.last_plugin_id.as_deref(), Some("sms-twilio"));
    assert!(conv.display().starts_with('#'));
    assert_eq!(
        store
            .conversation_by_display_id(conv.display_id)
            .await
            .unwrap()
            .unwrap()
            .id,
        conv.id
    );

    let timeline = store
        .conversation_timeline(&c.conversation_id)
        .await
        .unwrap();
    assert_eq!(timeline.len(), 1);
    let e = &timeline[0];
    assert_eq!(e.id, c.event_id);
    assert_eq!((e.direction, e.kind), (Direction::In, EventKind::Message));
    assert_eq!(e.body, "Hello, my invoice is wrong");
    assert_eq!(e.provider_id.as_deref(), Some("SM1"));
    assert_eq!(e.identity, Some(id("phone:+15551234567")));
    assert_eq!(e.sent_at, Some(T0 - 500));
    assert_eq!(e.occurred_at, T0);
    assert_eq!(e.attachments.len(), 1);
    assert_eq!(e.attachments[0].size, Some(42));

    let found = store
        .event_by_provider_id("sms-twilio", "SM1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, *e);
    assert!(
        store
            .event_by_provider_id("other-plugin", "SM1")
            .await
            .unwrap()
            .is_none()
    );
}

async fn second_message_joins_the_same_conversation(ctx: Ctx) {
    let store = &ctx.store;
    let first = created(ingest_one(store, sms(T0, "SM1", "phone:+15551234567", "one")).await);
    let second =
        created(ingest_one(store, sms(T0 + MINUTE, "SM2", "sms:+1 555 123 4567", "two")).await);
    assert!(!second.new_contact && !second.new_conversation);
    assert_eq!(second.contact_id, first.contact_id);
    assert_eq!(second.conversation_id, first.conversation_id);
    let conv = store.conversation(&first.conversation_id).await.unwrap();
    assert_eq!(conv.updated_at, T0 + MINUTE);
    let bodies: Vec<_> = store
        .conversation_timeline(&first.conversation_id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.body)
        .collect();
    assert_eq!(bodies, ["one", "two"]);
}

async fn a_duplicate_provider_id_is_reported_and_changes_nothing(ctx: Ctx) {
    let store = &ctx.store;
    let first = created(ingest_one(store, sms(T0, "SM1", "phone:+15551234567", "hello")).await);
    let before = store.metrics_counts().await.unwrap();

    let again = ingest_one(
        store,
        sms(T0 + MINUTE, "SM1", "phone:+15551234567", "hello (retried)"),
    )
    .await;
    assert_eq!(
        again,
        IngestOutcome::Duplicate {
            event_id: first.event_id.clone()
        }
    );
    // Same id twice inside one batch: the second is a duplicate of the first.
    let out = store
        .ingest(batch(
            "sms-twilio",
            "sms",
            T0 + 2 * MINUTE,
            vec![
                message("SM2", "phone:+15551234567", "x"),
                message("SM2", "phone:+15551234567", "x"),
            ],
        ))
        .await
        .unwrap();
    let event_id = created(out[0].clone()).event_id;
    assert_eq!(out[1], IngestOutcome::Duplicate { event_id });

    let after = store.metrics_counts().await.unwrap();
    assert_eq!(after.timeline_events, before.timeline_events + 1);
    assert_eq!(after.contacts, before.contacts);
    let conv = store.conversation(&first.conversation_id).await.unwrap();
    assert_eq!(conv.updated_at, T0 + 2 * MINUTE);
    // The same provider id from another plugin is a different message.
    let other = ingest_one(
        store,
        batch(
            "sms-other",
            "sms",
            T0,
            vec![message("SM1", "phone:+15551234567", "y")],
        ),
    )
    .await;
    assert!(matches!(other, IngestOutcome::Created { .. }));
}

async fn a_second_identity_lands_in_the_same_conversation_with_a_channel_switch(ctx: Ctx) {
    let store = &ctx.store;
    let sms1 = created(ingest_one(store, sms(T0, "SM1", "phone:+15551234567", "on sms")).await);
    store
        .add_identity(&sms1.contact_id, &id("telegram:4242"))
        .await
        .unwrap();
    // Adding it again is a no-op; adding it to someone else is a conflict.
    store
        .add_identity(&sms1.contact_id, &id("telegram:4242"))
        .await
        .unwrap();
    let other =
        created(ingest_one(store, sms(T0, "SM9", "phone:+15559999999", "someone else")).await);
    assert!(matches!(
        store
            .add_identity(&other.contact_id, &id("telegram:4242"))
            .await,
        Err(StoreError::Conflict(_))
    ));

    let tg = created(
        ingest_one(
            store,
            batch(
                "telegram-bot",
                "telegram",
                T0 + MINUTE,
                vec![message("tg-1", "telegram:4242", "now on telegram")],
            ),
        )
        .await,
    );
    assert_eq!(tg.contact_id, sms1.contact_id);
    assert_eq!(tg.conversation_id, sms1.conversation_id);
    assert!(!tg.new_contact && !tg.new_conversation);

    let conv = store.conversation(&tg.conversation_id).await.unwrap();
    assert_eq!(conv.last_channel.as_deref(), Some("telegram"));
    assert_eq!(conv.last_plugin_id.as_deref(), Some("telegram-bot"));
    let timeline = store
        .conversation_timeline(&tg.conversation_id)
        .await
        .unwrap();
    assert_eq!(
        kinds(&timeline),
        [
            EventKind::Message,
            EventKind::ChannelSwitch,
            EventKind::Message
        ]
    );
    assert_eq!(timeline[1].body, "sms → telegram");
    assert_eq!(timeline[1].direction, Direction::Internal);
    assert_eq!(timeline[2].channel.as_deref(), Some("telegram"));

    // Back to SMS: another switch; same channel again: none.
    ingest_one(
        store,
        sms(T0 + 2 * MINUTE, "SM2", "phone:+15551234567", "back"),
    )
    .await;
    ingest_one(
        store,
        sms(T0 + 3 * MINUTE, "SM3", "phone:+15551234567", "still sms"),
    )
    .await;
    let timeline = store
        .conversation_timeline(&tg.conversation_id)
        .await
        .unwrap();
    let switches: Vec<_> = timeline
        .iter()
        .filter(|e| e.kind == EventKind::ChannelSwitch)
        .map(|e| e.body.as_str())
        .collect();
    assert_eq!(switches, ["sms → telegram", "telegram → sms"]);
}

async fn a_resolved_conversation_reopens_inside_the_window_only(ctx: Ctx) {
    let store = &ctx.store;
    let first = created(ingest_one(store, sms(T0, "SM1", "phone:+15551234567", "help")).await);
    store
        .set_conversation_status(
            &first.conversation_id,
            ConversationStatus::Resolved,
            T0 + MINUTE,
        )
        .await
        .unwrap();
    let conv = store.conversation(&first.conversation_id).await.unwrap();
    assert_eq!(
        (conv.status, conv.resolved_at),
        (ConversationStatus::Resolved, Some(T0 + MINUTE))
    );

    // Inside the window (edge inclusive): reopened.
    let inside = created(
        ingest_one(
            store,
            sms(T0 + MINUTE + WINDOW, "SM2", "phone:+15551234567", "again"),
        )
        .await,
    );
    assert_eq!(inside.conversation_id, first.conversation_id);
    assert!(!inside.new_conversation);
    let conv = store.conversation(&first.conversation_id).await.unwrap();
    assert_eq!(
        (conv.status, conv.resolved_at),
        (ConversationStatus::Open, None)
    );
    let timeline = store
        .conversation_timeline(&first.conversation_id)
        .await
        .unwrap();
    let statuses: Vec<_> = timeline
        .iter()
        .filter(|e| e.kind == EventKind::Status)
        .map(|e| e.body.as_str())
        .collect();
    assert_eq!(statuses, ["open → resolved", "reopened"]);

    // Outside the window: a new conversation, with a new display id.
    let t1 = T0 + 10 * WINDOW;
    store
        .set_conversation_status(&first.conversation_id, ConversationStatus::Resolved, t1)
        .await
        .unwrap();
    let outside = created(
        ingest_one(
            store,
            sms(t1 + WINDOW + 1, "SM3", "phone:+15551234567", "new issue"),
        )
        .await,
    );
    assert!(outside.new_conversation);
    assert_ne!(outside.conversation_id, first.conversation_id);
    assert_eq!(outside.contact_id, first.contact_id);
    let (a, b) = (
        store.conversation(&first.conversation_id).await.unwrap(),
        store.conversation(&outside.conversation_id).await.unwrap(),
    );
    assert_eq!(a.status, ConversationStatus::Resolved);
    assert_ne!(a.display_id, b.display_id);
}

async fn a_snoozed_conversation_wakes_up_on_a_new_message(ctx: Ctx) {
    let store = &ctx.store;
    let first = created(ingest_one(store, sms(T0, "SM1", "phone:+15551234567", "hi")).await);
    store
        .set_conversation_status(&first.conversation_id, ConversationStatus::Snoozed, T0 + 1)
        .await
        .unwrap();
    let next = created(
        ingest_one(
            store,
            sms(T0 + 10 * WINDOW, "SM2", "phone:+15551234567", "hello?"),
        )
        .await,
    );
    assert_eq!(next.conversation_id, first.conversation_id);
    assert_eq!(
        store
            .conversation(&first.conversation_id)
            .await
            .unwrap()
            .status,
        ConversationStatus::Open
    );
    assert_eq!(
        store
            .list_conversations(Some(ConversationStatus::Snoozed), 10)
            .await
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        store
            .list_conversations(Some(ConversationStatus::Open), 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn receipts_never_move_delivery_status_backwards(ctx: Ctx) {
    let store = &ctx.store;
    let c = created(ingest_one(store, sms(T0, "SM1", "phone:+15551234567", "hi")).await);
    let (event, row) = store
        .create_reply(reply(
            &c.conversation_id,
            "phone:+15551234567",
            "sms",
            T0 + 1,
        ))
        .await
        .unwrap();
    assert_eq!(event.delivery_status, Some(DeliveryStatus::Queued));
    let plugin = row.plugin_id.clone();
    store
        .outbox_sent(&row.id, "SM-out-1", DeliveryStatus::Sent, T0 + 2, None)
        .await
        .unwrap();

    let receipt = |status, code: Option<&str>| {
        batch(
            &plugin,
            "sms",
            T0 + 3,
            vec![IngestEvent::Receipt(Receipt {
                provider_id: "SM-out-1".into(),
                status,
                error_code: code.map(Into::into),
                error_message: code.map(|_| "carrier said no".into()),
            })],
        )
    };
    let status_of = |out: Vec<IngestOutcome>| match &out[0] {
        IngestOutcome::ReceiptApplied {
            status,
            changed,
            event_id,
        } => {
            assert_eq!(event_id, &event.id);
            (*status, *changed)
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(
        status_of(
            store
                .ingest(receipt(DeliveryStatus::Delivered, None))
                .await
                .unwrap()
        ),
        (DeliveryStatus::Delivered, true)
    );
    assert_eq!(
        status_of(
            store
                .ingest(receipt(DeliveryStatus::Sent, None))
                .await
                .unwrap()
        ),
        (DeliveryStatus::Delivered, false)
    );
    assert_eq!(
        status_of(
            store
                .ingest(receipt(DeliveryStatus::Failed, Some("30003")))
                .await
                .unwrap()
        ),
        (DeliveryStatus::Delivered, false)
    );
    assert_eq!(
        status_of(
            store
                .ingest(receipt(DeliveryStatus::Read, None))
                .await
                .unwrap()
        ),
        (DeliveryStatus::Read, true)
    );

    let stored = store
        .event_by_provider_id(&plugin, "SM-out-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stored.delivery_status, stored.error),
        (Some(DeliveryStatus::Read), None)
    );
    let row = store.outbox_row(&row.id).await.unwrap();
    assert_eq!(
        (row.status, row.delivery_status),
        (OutboxStatus::Sent, Some(DeliveryStatus::Read))
    );

    // A failure on a message that was only sent sticks, with its error text.
    let (_, r2) = store
        .create_reply(reply(
            &c.conversation_id,
            "phone:+15551234567",
            "sms",
            T0 + 4,
        ))
        .await
        .unwrap();
    store
        .outbox_sent(&r2.id, "SM-out-2", DeliveryStatus::Sent, T0 + 5, None)
        .await
        .unwrap();
    let undelivered = batch(
        &plugin,
        "sms",
        T0 + 6,
        vec![IngestEvent::Receipt(Receipt {
            provider_id: "SM-out-2".into(),
            status: DeliveryStatus::Undelivered,
            error_code: Some("30005".into()),
            error_message: Some("unknown destination".into()),
        })],
    );
    store.ingest(undelivered).await.unwrap();
    let late_sent = batch(
        &plugin,
        "sms",
        T0 + 7,
        vec![IngestEvent::Receipt(Receipt {
            provider_id: "SM-out-2".into(),
            status: DeliveryStatus::Sent,
            error_code: None,
            error_message: None,
        })],
    );
    store.ingest(late_sent).await.unwrap();
    let e2 = store
        .event_by_provider_id(&plugin, "SM-out-2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e2.delivery_status, Some(DeliveryStatus::Undelivered));
    assert_eq!(e2.error.as_deref(), Some("30005: unknown destination"));
}

async fn a_receipt_that_beats_the_send_report_is_applied_later(ctx: Ctx) {
    let store = &ctx.store;
    let c = created(ingest_one(store, sms(T0, "SM1", "phone:+15551234567", "hi")).await);
    let (_, row) = store
        .create_reply(reply(
            &c.conversation_id,
            "phone:+15551234567",
            "sms",
            T0 + 1,
        ))
        .await
        .unwrap();
    let early = batch(
        &row.plugin_id,
        "sms",
        T0 + 2,
        vec![IngestEvent::Receipt(Receipt {
            provider_id: "SM-fast".into(),
            status: DeliveryStatus::Delivered,
            error_code: None,
            error_message: None,
        })],
    );
    assert_eq!(
        store.ingest(early).await.unwrap(),
        vec![IngestOutcome::ReceiptUnknown]
    );
    let row = store
        .outbox_sent(&row.id, "SM-fast", DeliveryStatus::Sent, T0 + 3, None)
        .await
        .unwrap();
    assert_eq!(row.delivery_status, Some(DeliveryStatus::Delivered));
    let e = store
        .event_by_provider_id(&row.plugin_id, "SM-fast")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.delivery_status, Some(DeliveryStatus::Delivered));
}

async fn an_opt_out_blocks_replies_on_that_channel_until_opt_in(ctx: Ctx) {
    let store = &ctx.store;
    let c = created(ingest_one(store, sms(T0, "SM1", "phone:+15551234567", "hi")).await);
    let stop = |provider_id: &str, action, keyword: &str, now| {
        batch(
            "sms-twilio",
            "sms",
            now,
            vec![
                message(provider_id, "phone:+15551234567", keyword),
                IngestEvent::Consent(ConsentEvent {
                    provider_id: provider_id.into(),
                    identity: id("phone:+15551234567"),
                    action,
                    keyword: Some(keyword.into()),
                }),
            ],
        )
    };
    let out = store
        .ingest(stop("SM2", ConsentAction::OptOut, "STOP", T0 + 1))
        .await
        .unwrap();
    assert!(matches!(out[0], IngestOutcome::Created { .. }));
    let IngestOutcome::ConsentRecorded {
        contact_id,
        state,
        event_id,
    } = &out[1]
    else {
        panic!("{out:?}")
    };
    assert_eq!(
        (contact_id, *state),
        (&c.contact_id, Some(ConsentState::OptedOut))
    );
    // A retried webhook does not record the consent event twice.
    let again = store
        .ingest(stop("SM2", ConsentAction::OptOut, "STOP", T0 + 2))
        .await
        .unwrap();
    assert_eq!(
        again[1],
        IngestOutcome::Duplicate {
            event_id: event_id.clone()
        }
    );

    let phone = id("phone:+15551234567");
    assert_eq!(
        store.consent_state(&phone, "sms").await.unwrap(),
        Some(ConsentState::OptedOut)
    );
    assert_eq!(store.consent_state(&phone, "voice").await.unwrap(), None);
    let before = store.metrics_counts().await.unwrap();
    let refused = store
        .create_reply(reply(
            &c.conversation_id,
            "phone:+15551234567",
            "sms",
            T0 + 3,
        ))
        .await;
    assert!(
        matches!(refused, Err(StoreError::OptedOut { .. })),
        "{refused:?}"
    );
    let after = store.metrics_counts().await.unwrap();
    assert_eq!(after, before, "a refused reply writes nothing");

    let contact = store.contact(&c.contact_id).await.unwrap();
    assert_eq!(contact.consents.len(), 1);
    assert_eq!(
        (
            contact.consents[0].channel.as_str(),
            contact.consents[0].state
        ),
        ("sms", ConsentState::OptedOut)
    );
    assert_eq!(contact.consents[0].keyword.as_deref(), Some("STOP"));
    let timeline = store
        .conversation_timeline(&c.conversation_id)
        .await
        .unwrap();
    let consent = timeline
        .iter()
        .find(|e| e.kind == EventKind::Consent)
        .unwrap();
    assert_eq!(consent.body, "opt_out on sms (STOP)");

    // HELP changes nothing; START allows replies again.
    let help = store
        .ingest(stop("SM3", ConsentAction::Help, "HELP", T0 + 4))
        .await
        .unwrap();
    assert!(matches!(
        help[1],
        IngestOutcome::ConsentRecorded { state: None, .. }
    ));
    assert_eq!(
        store.consent_state(&phone, "sms").await.unwrap(),
        Some(ConsentState::OptedOut)
    );
    store
        .ingest(stop("SM4", ConsentAction::OptIn, "START", T0 + 5))
        .await
        .unwrap();
    assert_eq!(
        store.consent_state(&phone, "sms").await.unwrap(),
        Some(ConsentState::OptedIn)
    );
    store
        .create_reply(reply(
            &c.conversation_id,
            "phone:+15551234567",
            "sms",
            T0 + 6,
        ))
        .await
        .unwrap();
}

async fn replies_are_checked_against_the_contact_and_switch_channels(ctx: Ctx) {
    let store = &ctx.store;
    let c = created(ingest_one(store, sms(T0, "SM1", "phone:+15551234567", "hi")).await);
    created(ingest_one(store, sms(T0, "SM2", "phone:+15559999999", "someone else")).await);
    let wrong = store
        .create_reply(reply(
            &c.conversation_id,
            "phone:+15559999999",
            "sms",
            T0 + 1,
        ))
        .await;
    assert!(matches!(wrong, Err(StoreError::Invalid(_))), "{wrong:?}");
    let missing = store
        .create_reply(reply(
            "no-such-conversation",
            "phone:+15551234567",
            "sms",
            T0 + 1,
        ))
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );

    store
        .add_identity(&c.contact_id, &id("whatsapp:+15551234567"))
        .await
        .unwrap();
    let (event, row) = store
        .create_reply(reply(
            &c.conversation_id,
            "whatsapp:+15551234567",
            "whatsapp",
            T0 + 2,
        ))
        .await
        .unwrap();
    assert_eq!(
        (event.direction, event.kind),
        (Direction::Out, EventKind::Message)
    );
    assert_eq!(row.event_id, event.id);
    assert_eq!(
        (row.status, row.attempts, row.next_attempt_at),
        (OutboxStatus::Pending, 0, T0 + 2)
    );
    let timeline = store
        .conversation_timeline(&c.conversation_id)
        .await
        .unwrap();
    assert_eq!(
        kinds(&timeline),
        [
            EventKind::Message,
            EventKind::ChannelSwitch,
            EventKind::Message
        ]
    );
    assert_eq!(timeline[1].body, "sms → whatsapp");
    assert_eq!(
        store
            .conversation(&c.conversation_id)
            .await
            .unwrap()
            .last_channel
            .as_deref(),
        Some("whatsapp")
    );
}

async fn the_outbox_leases_retries_buries_and_requeues(ctx: Ctx) {
    let store = &ctx.store;
    let c = created(ingest_one(store, sms(T0, "SM1", "phone:+15551234567", "hi")).await);
    let mut ids = Vec::new();
    for i in 0..3 {
        let (_, row) = store
            .create_reply(reply(
                &c.conversation_id,
                "phone:+15551234567",
                "sms",
                T0 + i,
            ))
            .await
            .unwrap();
        ids.push(row.id);
    }
    // Not due yet before T0.
    assert!(
        store
            .claim_outbox(T0 - 1, 10, MINUTE)
            .await
            .unwrap()
            .is_empty()
    );
    let claimed = store.claim_outbox(T0 + 10, 2, MINUTE).await.unwrap();
    assert_eq!(
        claimed.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        ids[..2]
    );
    assert!(
        claimed
            .iter()
            .all(|r| r.status == OutboxStatus::Sending && r.lease_until == Some(T0 + 10 + MINUTE))
    );
    // Leased rows are not handed out again while the lease holds…
    let rest = store.claim_outbox(T0 + 20, 10, MINUTE).await.unwrap();
    assert_eq!(
        rest.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        ids[2..]
    );
    assert!(
        store
            .claim_outbox(T0 + 30, 10, MINUTE)
            .await
            .unwrap()
            .is_empty()
    );
    // …but come back once it runs out (the worker crashed).
    let reclaimed = store
        .claim_outbox(T0 + 10 + MINUTE, 10, MINUTE)
        .await
        .unwrap();
    assert_eq!(
        reclaimed.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        ids[..2]
    );

    // Retry: pending again, due later.
    let r = store
        .outbox_retry(&ids[0], 1, T0 + 5 * MINUTE, "HTTP 503", None)
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.attempts, r.next_attempt_at, r.lease_until),
        (OutboxStatus::Pending, 1, T0 + 5 * MINUTE, None)
    );
    assert_eq!(r.last_error.as_deref(), Some("HTTP 503"));
    assert!(
        store
            .claim_outbox(T0 + 4 * MINUTE, 10, MINUTE)
            .await
            .unwrap()
            .iter()
            .all(|x| x.id != ids[0])
    );
    let due = store
        .claim_outbox(T0 + 5 * MINUTE, 10, MINUTE)
        .await
        .unwrap();
    assert!(due.iter().any(|x| x.id == ids[0]));

    // Dead letter: visible, its message marked failed.
    let dead = store
        .outbox_dead(&ids[0], "gave up after 8 attempts", None)
        .await
        .unwrap();
    assert_eq!(dead.status, OutboxStatus::Dead);
    let letters = store
        .list_outbox(Some(OutboxStatus::Dead), 10)
        .await
        .unwrap();
    assert_eq!(
        letters.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        [ids[0].clone()]
    );
    let timeline = store
        .conversation_timeline(&c.conversation_id)
        .await
        .unwrap();
    let failed = timeline.iter().find(|e| e.id == dead.event_id).unwrap();
    assert_eq!(failed.delivery_status, Some(DeliveryStatus::Failed));
    assert_eq!(failed.error.as_deref(), Some("gave up after 8 attempts"));
    assert!(
        store
            .claim_outbox(T0 + 100 * MINUTE, 10, MINUTE)
            .await
            .unwrap()
            .iter()
            .all(|x| x.id != ids[0])
    );

    // Requeue: only dead letters; back to pending now, attempts reset.
    assert!(matches!(
        store.outbox_requeue(&ids[1], T0).await,
        Err(StoreError::Conflict(_))
    ));
    let again = store
        .outbox_requeue(&ids[0], T0 + 200 * MINUTE)
        .await
        .unwrap();
    assert_eq!(
        (again.status, again.attempts, again.next_attempt_at),
        (OutboxStatus::Pending, 0, T0 + 200 * MINUTE)
    );
    let e = store
        .conversation_timeline(&c.conversation_id)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.id == again.event_id)
        .unwrap();
    assert_eq!(
        (e.delivery_status, e.error),
        (Some(DeliveryStatus::Queued), None)
    );
    let claimed = store
        .claim_outbox(T0 + 200 * MINUTE, 10, MINUTE)
        .await
        .unwrap();
    assert!(claimed.iter().any(|x| x.id == ids[0]));

    let sent = store
        .outbox_sent(
            &ids[0],
            "SM-x",
            DeliveryStatus::Sent,
            T0 + 201 * MINUTE,
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        (sent.status, sent.provider_id.as_deref(), sent.lease_until),
        (OutboxStatus::Sent, Some("SM-x"), None)
    );
    let counts = store.metrics_counts().await.unwrap();
    assert_eq!(counts.outbox[&OutboxStatus::Sent], 1);
    assert_eq!(counts.outbox[&OutboxStatus::Dead], 0);
    assert!(matches!(
        store.outbox_retry("nope", 1, 0, "x", None).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn a_worker_whose_lease_passed_on_cannot_record_over_the_new_one(ctx: Ctx) {
    let store = &ctx.store;
    let c = created(ingest_one(store, sms(T0, "SM1", "phone:+15551234567", "hi")).await);
    let (_, row) = store
        .create_reply(reply(
            &c.conversation_id,
            "phone:+15551234567",
            "sms",
            T0 + 1,
        ))
        .await
        .unwrap();
    // Worker 1 claims the row, then stalls past its lease; worker 2 claims it again.
    let first = store.claim_outbox(T0 + 10, 10, MINUTE).await.unwrap();
    assert_eq!(first.len(), 1);
    let second = store
        .claim_outbox(T0 + 10 + 2 * MINUTE, 10, MINUTE)
        .await
        .unwrap();
    assert_eq!(second.len(), 1);
    assert_ne!(first[0].lease_until, second[0].lease_until);

    // Worker 1 wakes up: whatever it records is refused, and nothing changes.
    for refused in [
        store
            .outbox_retry(&row.id, 1, T0 + 3 * MINUTE, "timeout", first[0].lease_until)
            .await,
        store
            .outbox_dead(&row.id, "gave up", first[0].lease_until)
            .await,
        store
            .outbox_sent(
                &row.id,
                "SM-stale",
                DeliveryStatus::Sent,
                T0,
                first[0].lease_until,
            )
            .await,
    ] {
        assert!(
            matches!(refused, Err(StoreError::Conflict(_))),
            "{refused:?}"
        );
    }
    let still = store.outbox_row(&row.id).await.unwrap();
    assert_eq!(
        (
            still.status,
            still.provider_id.as_deref(),
            still.lease_until
        ),
        (OutboxStatus::Sending, None, second[0].lease_until)
    );
    // Worker 2, which holds the lease, records the send.
    let sent = store
        .outbox_sent(
            &row.id,
            "SM-new",
            DeliveryStatus::Sent,
            T0 + 3 * MINUTE,
            second[0].lease_until,
        )
        .await
        .unwrap();
    assert_eq!(
        (sent.status, sent.provider_id.as_deref()),
        (OutboxStatus::Sent, Some("SM-new"))
    );
}

async fn concurrent_claimers_never_share_a_row(ctx: Ctx) {
    let store = &ctx.store;
    let c = created(ingest_one(store, sms(T0, "SM1", "phone:+15551234567", "hi")).await);
    let mut ids = HashSet::new();
    for i in 0..60 {
        let (_, row) = store
            .create_reply(reply(
                &c.conversation_id,
                "phone:+15551234567",
                "sms",
                T0 + i,
            ))
            .await
            .unwrap();
        ids.insert(row.id);
    }
    let mut workers = Vec::new();
    for _ in 0..6 {
        let store = store.clone();
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = store.claim_outbox(T0 + 1_000, 7, MINUTE).await.unwrap();
                if got.is_empty() {
                    break mine;
                }
                mine.extend(got.into_iter().map(|r| r.id));
            }
        }));
    }
    let mut seen = Vec::new();
    for w in workers {
        seen.extend(w.await.unwrap());
    }
    assert_eq!(seen.len(), ids.len(), "every row claimed exactly once");
    assert_eq!(seen.into_iter().collect::<HashSet<_>>(), ids);
}

async fn group_commit_gives_every_concurrent_caller_its_own_result(ctx: Ctx) {
    let store = &ctx.store;
    const TASKS: usize = 16;
    const PER_TASK: usize = 25;
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut results = Vec::new();
            for i in 0..PER_TASK {
                // 40 distinct senders shared across tasks; every provider id unique.
                let sender = format!("phone:+1555000{:04}", (t * PER_TASK + i) % 40);
                let pid = format!("SM-{t}-{i}");
                let out = store
                    .ingest(sms(T0 + i as i64, &pid, &sender, &pid))
                    .await
                    .unwrap();
                results.push((pid, sender, out));
            }
            results
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    assert_eq!(all.len(), TASKS * PER_TASK);

    let mut contact_of_sender: BTreeMap<String, String> = BTreeMap::new();
    let mut new_contacts = 0;
    for (pid, sender, out) in &all {
        assert_eq!(out.len(), 1);
        let c = created(out[0].clone());
        new_contacts += usize::from(c.new_contact);
        // Each caller got the outcome of its own event.
        let e = store
            .event_by_provider_id("sms-twilio", pid)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(e.id, c.event_id);
        assert_eq!(e.body, *pid);
        assert_eq!(
            e.conversation_id.as_deref(),
            Some(c.conversation_id.as_str())
        );
        let previous = contact_of_sender.insert(sender.clone(), c.contact_id.clone());
        assert!(
            previous.is_none_or(|p| p == c.contact_id),
            "one contact per sender"
        );
    }
    assert_eq!(contact_of_sender.len(), 40);
    assert_eq!(
        new_contacts, 40,
        "each sender's contact created exactly once"
    );

    let counts = store.metrics_counts().await.unwrap();
    assert_eq!(counts.contacts, 40);
    assert_eq!(counts.timeline_events, (TASKS * PER_TASK) as u64);
    assert_eq!(counts.conversations[&ConversationStatus::Open], 40);

    // Replaying everything concurrently yields only duplicates and changes nothing.
    let mut replays = Vec::new();
    for (pid, sender, _) in all.iter().take(100) {
        let (store, pid, sender) = (store.clone(), pid.clone(), sender.clone());
        replays.push(tokio::spawn(async move {
            store.ingest(sms(T0, &pid, &sender, "again")).await.unwrap()
        }));
    }
    for r in replays {
        assert!(matches!(
            r.await.unwrap()[0],
            IngestOutcome::Duplicate { .. }
        ));
    }
    assert_eq!(store.metrics_counts().await.unwrap(), counts);
}

async fn a_bad_batch_fails_alone(ctx: Ctx) {
    let store = &ctx.store;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            // Every fifth batch has a good message followed by an invalid event:
            // the whole batch must roll back, the others must commit.
            let mut events = vec![message(&format!("ok-{i}"), "phone:+15551234567", "fine")];
            if i % 5 == 0 {
                events.push(message("", "phone:+15551234567", "no provider id"));
            }
            (
                i,
                store
                    .ingest(batch("sms-twilio", "sms", T0 + i, events))
                    .await,
            )
        }));
    }
    for t in tasks {
        let (i, result) = t.await.unwrap();
        let stored = store
            .event_by_provider_id("sms-twilio", &format!("ok-{i}"))
            .await
            .unwrap();
        if i % 5 == 0 {
            assert!(matches!(result, Err(StoreError::Invalid(_))), "{result:?}");
            assert!(stored.is_none(), "batch {i} must have rolled back");
        } else {
            assert!(result.is_ok());
            assert!(stored.is_some());
        }
    }
    assert_eq!(store.metrics_counts().await.unwrap().timeline_events, 16);
}

async fn a_database_error_rolls_back_only_its_own_batch(ctx: Ctx) {
    let store = &ctx.store;
    let existing = created(ingest_one(store, sms(T0, "SM1", "phone:+15551111111", "first")).await);
    // Sabotage: take the next display id behind the store's back, so opening a new
    // conversation fails inside the database after the contact was inserted.
    let conv = store.conversation(&existing.conversation_id).await.unwrap();
    common::raw_execute(
        &ctx.url,
        format!(
            "INSERT INTO conversation (id, display_id, contact_id, status, opened_at, updated_at)
         VALUES ('sabotage', {}, '{}', 'resolved', 0, 0)",
            conv.display_id + 1,
            existing.contact_id,
        ),
    )
    .await;
    let (bad, good) = tokio::join!(
        store.ingest(sms(
            T0 + 1,
            "SM2",
            "phone:+15552222222",
            "a new contact needs a new conversation"
        )),
        store.ingest(sms(
            T0 + 1,
            "SM3",
            "phone:+15551111111",
            "the existing conversation continues"
        )),
    );
    let err = bad.unwrap_err();
    assert!(err.is_unique_violation(), "{err:?}");
    assert!(
        store
            .contact_by_identity(&id("phone:+15552222222"))
            .await
            .unwrap()
            .is_none(),
        "the contact created earlier in the failed batch was rolled back with it"
    );
    assert!(
        store
            .event_by_provider_id("sms-twilio", "SM2")
            .await
            .unwrap()
            .is_none()
    );
    let good = created(good.unwrap().remove(0));
    assert_eq!(good.conversation_id, existing.conversation_id);
    assert!(
        store
            .event_by_provider_id("sms-twilio", "SM3")
            .await
            .unwrap()
            .is_some()
    );
}

async fn nul_bytes_are_stored_on_every_backend(ctx: Ctx) {
    let store = &ctx.store;
    let mut b = sms(T0, "SM\u{0}1", "phone:+15551234567", "bad\0byte");
    if let IngestEvent::InboundMessage(m) = &mut b.events[0] {
        m.sender_name = Some("Ja\0ne".into());
    }
    let c = created(ingest_one(store, b).await);
    let e = store
        .conversation_timeline(&c.conversation_id)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(e.body, "bad\u{FFFD}byte");
    assert_eq!(
        store
            .contact(&c.contact_id)
            .await
            .unwrap()
            .display_name
            .as_deref(),
        Some("Ja\u{FFFD}ne")
    );
    let again = ingest_one(store, sms(T0, "SM\u{0}1", "phone:+15551234567", "retry")).await;
    assert!(
        matches!(again, IngestOutcome::Duplicate { .. }),
        "{again:?}"
    );
}

async fn merge_then_unmerge_restores_exactly(ctx: Ctx) {
    let store = &ctx.store;
    let jane_sms =
        created(ingest_one(store, sms(T0, "SM1", "phone:+15551234567", "from sms")).await);
    let mut mail = batch(
        "email-imap",
        "email",
        T0 + MINUTE,
        vec![message("mail-1", "email:jane@example.com", "from email")],
    );
    if let IngestEvent::InboundMessage(m) = &mut mail.events[0] {
        m.sender_name = Some("Jane D.".into());
    }
    let jane_mail = created(ingest_one(store, mail).await);
    assert_ne!(
        jane_sms.contact_id, jane_mail.contact_id,
        "different addresses, no guessing"
    );
    store
        .ingest(batch(
            "email-imap",
            "email",
            T0 + 2 * MINUTE,
            vec![IngestEvent::Consent(ConsentEvent {
                provider_id: "mail-2".into(),
                identity: id("email:jane@example.com"),
                action: ConsentAction::OptOut,
                keyword: None,
            })],
        ))
        .await
        .unwrap();

    let keep_before = store.contact(&jane_sms.contact_id).await.unwrap();
    let merged_before = store.contact(&jane_mail.contact_id).await.unwrap();
    let keep_tl_before = store
        .contact_timeline(&jane_sms.contact_id, 100, None)
        .await
        .unwrap();
    let merged_tl_before = store
        .contact_timeline(&jane_mail.contact_id, 100, None)
        .await
        .unwrap();
    let conv_before = store
        .conversation(&jane_mail.conversation_id)
        .await
        .unwrap();

    let record = store
        .merge_contacts(&jane_sms.contact_id, &jane_mail.contact_id, "agent-7")
        .await
        .unwrap();
    assert_eq!(record.moved.identities.len(), 1);
    assert_eq!(
        record.moved.conversations,
        vec![jane_mail.conversation_id.clone()]
    );
    assert_eq!(record.moved.events.len(), merged_tl_before.len());
    let kept = store.contact(&jane_sms.contact_id).await.unwrap();
    assert_eq!(kept.identities.len(), 2);
    assert_eq!(
        kept.display_name.as_deref(),
        Some("Jane D."),
        "name taken from the merged contact"
    );
    assert_eq!(kept.consents.len(), 1, "consent follows its identity");
    let gone = store.contact(&jane_mail.contact_id).await.unwrap();
    assert_eq!(
        gone.merged_into.as_deref(),
        Some(jane_sms.contact_id.as_str())
    );
    assert!(gone.identities.is_empty());
    assert_eq!(
        store
            .contact_by_identity(&id("email:jane@example.com"))
            .await
            .unwrap()
            .unwrap()
            .id,
        jane_sms.contact_id
    );
    let unified = store
        .contact_timeline(&jane_sms.contact_id, 100, None)
        .await
        .unwrap();
    assert_eq!(unified.len(), keep_tl_before.len() + merged_tl_before.len());
    assert!(
        unified
            .windows(2)
            .all(|w| (w[0].occurred_at, &w[0].id) < (w[1].occurred_at, &w[1].id))
    );
    assert_eq!(store.metrics_counts().await.unwrap().contacts, 1);
    assert!(matches!(
        store
            .merge_contacts(&jane_sms.contact_id, &jane_mail.contact_id, "agent-7")
            .await,
        Err(StoreError::Conflict(_))
    ));

    let undone = store.unmerge(&record.id, "supervisor-1").await.unwrap();
    assert_eq!(undone.undone_by.as_deref(), Some("supervisor-1"));
    assert_eq!(
        store.contact(&jane_sms.contact_id).await.unwrap(),
        keep_before
    );
    assert_eq!(
        store.contact(&jane_mail.contact_id).await.unwrap(),
        merged_before
    );
    assert_eq!(
        store
            .contact_timeline(&jane_sms.contact_id, 100, None)
            .await
            .unwrap(),
        keep_tl_before
    );
    assert_eq!(
        store
            .contact_timeline(&jane_mail.contact_id, 100, None)
            .await
            .unwrap(),
        merged_tl_before
    );
    assert_eq!(
        store
            .conversation(&jane_mail.conversation_id)
            .await
            .unwrap(),
        conv_before
    );
    assert!(matches!(
        store.unmerge(&record.id, "x").await,
        Err(StoreError::Conflict(_))
    ));
    let merges = store.list_merges(&jane_mail.contact_id).await.unwrap();
    assert_eq!(merges.len(), 1);
    assert!(merges[0].undone_at.is_some());
    assert!(matches!(
        store
            .merge_contacts(&jane_sms.contact_id, &jane_sms.contact_id, "x")
            .await,
        Err(StoreError::Invalid(_))
    ));
}

async fn the_contact_timeline_spans_conversations_and_pages_backwards(ctx: Ctx) {
    let store = &ctx.store;
    let first = created(ingest_one(store, sms(T0, "SM1", "phone:+15551234567", "m1")).await);
    store
        .set_conversation_status(&first.conversation_id, ConversationStatus::Resolved, T0 + 1)
        .await
        .unwrap();
    store
        .add_identity(&first.contact_id, &id("telegram:77"))
        .await
        .unwrap();
    let later = T0 + 10 * WINDOW;
    let second = created(
        ingest_one(
            store,
            batch(
                "tg",
                "telegram",
                later,
                vec![message("t1", "telegram:77", "m2")],
            ),
        )
        .await,
    );
    assert_ne!(second.conversation_id, first.conversation_id);
    ingest_one(store, sms(later + 1, "SM2", "phone:+15551234567", "m3")).await;

    let all = store
        .contact_timeline(&first.contact_id, 100, None)
        .await
        .unwrap();
    let bodies: Vec<_> = all.iter().map(|e| e.body.as_str()).collect();
    assert_eq!(
        bodies,
        ["m1", "open → resolved", "m2", "telegram → sms", "m3"]
    );
    let conversations: HashSet<_> = all
        .iter()
        .filter_map(|e| e.conversation_id.clone())
        .collect();
    assert_eq!(conversations.len(), 2);

    let newest = store
        .contact_timeline(&first.contact_id, 2, None)
        .await
        .unwrap();
    assert_eq!(
        newest.iter().map(|e| e.body.as_str()).collect::<Vec<_>>(),
        ["telegram → sms", "m3"]
    );
    let older = store
        .contact_timeline(&first.contact_id, 2, Some(&newest[0].id))
        .await
        .unwrap();
    assert_eq!(
        older.iter().map(|e| e.body.as_str()).collect::<Vec<_>>(),
        ["open → resolved", "m2"]
    );
    let oldest = store
        .contact_timeline(&first.contact_id, 2, Some(&older[0].id))
        .await
        .unwrap();
    assert_eq!(
        oldest.iter().map(|e| e.body.as_str()).collect::<Vec<_>>(),
        ["m1"]
    );
    assert_eq!(
        store
            .contact_conversations(&first.contact_id)
            .await
            .unwrap()[0]
            .id,
        second.conversation_id
    );
}

async fn conversations_list_by_status_and_missing_ones_are_not_found(ctx: Ctx) {
    let store = &ctx.store;
    let a = created(ingest_one(store, sms(T0, "SM1", "phone:+15551111111", "a")).await);
    let b = created(ingest_one(store, sms(T0 + 1, "SM2", "phone:+15552222222", "b")).await);
    store
        .set_conversation_status(&a.conversation_id, ConversationStatus::Pending, T0 + 2)
        .await
        .unwrap();
    let all = store.list_conversations(None, 10).await.unwrap();
    assert_eq!(
        all.iter().map(|c| c.id.clone()).collect::<Vec<_>>(),
        [a.conversation_id.clone(), b.conversation_id.clone()]
    );
    let pending = store
        .list_conversations(Some(ConversationStatus::Pending), 10)
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(store.list_conversations(None, 1).await.unwrap().len(), 1);
    let p = store
        .set_conversation_priority(&b.conversation_id, 15)
        .await
        .unwrap();
    assert_eq!(p.priority, 15);
    assert!(matches!(
        store.conversation("nope").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.conversation_timeline("nope").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.contact("nope").await,
        Err(StoreError::NotFound { .. })
    ));
    let counts = store.metrics_counts().await.unwrap();
    assert_eq!(counts.conversations[&ConversationStatus::Pending], 1);
    assert_eq!(counts.conversations_open(), 2);
}

async fn plugin_secrets_are_encrypted_at_rest(ctx: Ctx) {
    let store = &ctx.store;
    store
        .upsert_plugin(plugin_install("sms-twilio"))
        .await
        .unwrap();
    store
        .set_plugin_config(
            "sms-twilio",
            vec![
                ConfigEntry::plain("account_sid", "AC123"),
                ConfigEntry::secret("auth_token", "super-secret-token-value"),
            ],
        )
        .await
        .unwrap();
    let config = store.plugin_config("sms-twilio").await.unwrap();
    assert_eq!(
        config,
        vec![
            ConfigEntry::plain("account_sid", "AC123"),
            ConfigEntry::secret("auth_token", "super-secret-token-value"),
        ]
    );
    let debug = format!("{config:?}");
    assert!(!debug.contains("super-secret"), "{debug}");
    assert!(debug.contains("AC123"));

    // Read the raw column behind the store's back.
    sqlx::any::install_default_drivers();
    let raw_pool = sqlx::AnyPool::connect(&ctx.url).await.unwrap();
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT key, value FROM plugin_config ORDER BY key")
            .fetch_all(&raw_pool)
            .await
            .unwrap();
    raw_pool.close().await;
    assert_eq!(rows[0], ("account_sid".into(), "AC123".into()));
    assert_eq!(rows[1].0, "auth_token");
    assert!(
        !rows[1].1.contains("super-secret"),
        "plaintext at rest: {}",
        rows[1].1
    );
    assert!(rows[1].1.starts_with("v1:"));

    // A store opened with another key cannot read it.
    let wrong = Store::connect(&ctx.url, [9; 32]).await.unwrap();
    assert!(matches!(
        wrong.plugin_config("sms-twilio").await,
        Err(StoreError::Crypto { .. })
    ));
    wrong.close().await;
    assert!(matches!(
        store
            .set_plugin_config("missing", vec![ConfigEntry::plain("a", "b")])
            .await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn plugins_install_quarantine_and_reenable(ctx: Ctx) {
    let store = &ctx.store;
    let p = store
        .upsert_plugin(plugin_install("sms-twilio"))
        .await
        .unwrap();
    assert!(p.enabled && !p.quarantined);
    assert_eq!(p.allowed_hosts, ["api.twilio.com", "127.0.0.1:8089"]);
    assert_eq!(store.record_plugin_failure("sms-twilio").await.unwrap(), 1);
    assert_eq!(store.record_plugin_failure("sms-twilio").await.unwrap(), 2);
    let q = store
        .quarantine_plugin("sms-twilio", "3 traps in a minute")
        .await
        .unwrap();
    assert!(q.quarantined);
    assert_eq!(q.quarantine_reason.as_deref(), Some("3 traps in a minute"));
    assert!(
        !store
            .set_plugin_enabled("sms-twilio", false)
            .await
            .unwrap()
            .enabled
    );
    let back = store.set_plugin_enabled("sms-twilio", true).await.unwrap();
    assert!(
        back.enabled
            && !back.quarantined
            && back.failure_count == 0
            && back.quarantine_reason.is_none()
    );

    let mut upgrade = plugin_install("sms-twilio");
    upgrade.version = "0.2.0".into();
    let up = store.upsert_plugin(upgrade).await.unwrap();
    assert_eq!(
        (up.version.as_str(), up.installed_at),
        ("0.2.0", p.installed_at)
    );
    store
        .upsert_plugin(plugin_install("crm-demo"))
        .await
        .unwrap();
    let ids: Vec<_> = store
        .list_plugins()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(ids, ["crm-demo", "sms-twilio"]);

    store
        .set_plugin_config("sms-twilio", vec![ConfigEntry::plain("a", "1")])
        .await
        .unwrap();
    store.kv_set("sms-twilio", "k", b"v", 1024).await.unwrap();
    store.remove_plugin("sms-twilio").await.unwrap();
    assert!(matches!(
        store.plugin("sms-twilio").await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(store.kv_get("sms-twilio", "k").await.unwrap(), None);
    assert!(matches!(
        store.remove_plugin("sms-twilio").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.set_plugin_enabled("sms-twilio", true).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn plugin_kv_enforces_its_quota(ctx: Ctx) {
    let store = &ctx.store;
    store.kv_set("p", "a", &[1; 40], 100).await.unwrap(); // 41 bytes
    store.kv_set("p", "b", &[2; 50], 100).await.unwrap(); // 92 bytes
    assert_eq!(store.kv_usage("p").await.unwrap(), 92);
    let err = store.kv_set("p", "c", &[3; 10], 100).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::QuotaExceeded {
                would_use: 103,
                limit: 100,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(store.kv_get("p", "c").await.unwrap(), None);
    // Overwriting counts the new size, not both.
    store.kv_set("p", "b", &[4; 58], 100).await.unwrap(); // 41 + 59 = 100
    assert_eq!(store.kv_get("p", "b").await.unwrap(), Some(vec![4; 58]));
    assert!(store.kv_delete("p", "a").await.unwrap());
    assert!(!store.kv_delete("p", "a").await.unwrap());
    store.kv_set("p", "c", &[3; 10], 100).await.unwrap();
    // Quotas are per plugin.
    store.kv_set("other", "a", &[0; 99], 100).await.unwrap();
    // Binary values survive unchanged.
    let bytes: Vec<u8> = (0..=255).collect();
    store.kv_set("bin", "all", &bytes, 1024).await.unwrap();
    assert_eq!(store.kv_get("bin", "all").await.unwrap(), Some(bytes));
}

async fn agents_log_in_with_sessions(ctx: Ctx) {
    let store = &ctx.store;
    let agent = store
        .create_agent(NewAgent {
            email: " Sam@Example.COM ".into(),
            name: "Sam".into(),
            role: Role::Supervisor,
            password_hash: "$argon2id$v=19$fake".into(),
            skills: parse_skills("sales:4,billing:2").unwrap(),
        })
        .await
        .unwrap();
    assert_eq!(agent.email, "sam@example.com");
    let dup = store
        .create_agent(NewAgent {
            email: "sam@example.com".into(),
            name: "Other Sam".into(),
            role: Role::Agent,
            password_hash: "x".into(),
            skills: vec![],
        })
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");

    let (found, hash) = store
        .agent_by_email("SAM@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, agent);
    assert_eq!(hash, "$argon2id$v=19$fake");
    assert!(
        store
            .agent_by_email("nobody@example.com")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.agent(&agent.id).await.unwrap().skills.len(), 2);
    assert_eq!(store.list_agents().await.unwrap(), vec![agent.clone()]);

    store
        .create_session(&agent.id, "tokenhash1", T0 + MINUTE)
        .await
        .unwrap();
    assert_eq!(
        store.agent_for_session("tokenhash1", T0).await.unwrap(),
        Some(agent.clone())
    );
    assert_eq!(
        store
            .agent_for_session("tokenhash1", T0 + MINUTE)
            .await
            .unwrap(),
        None,
        "expired"
    );
    assert_eq!(store.agent_for_session("other", T0).await.unwrap(), None);
    assert!(store.delete_session("tokenhash1").await.unwrap());
    assert_eq!(
        store.agent_for_session("tokenhash1", T0).await.unwrap(),
        None
    );
    assert!(matches!(
        store.create_session("no-agent", "t2", T0).await,
        Err(StoreError::NotFound { .. })
    ));
    let updated = store
        .set_agent_skills(&agent.id, parse_skills("voice:5").unwrap())
        .await
        .unwrap();
    assert_eq!(updated.skills, parse_skills("voice:5").unwrap());
}

async fn audit_entries_are_listed_newest_first(ctx: Ctx) {
    let store = &ctx.store;
    store
        .audit(
            "cli",
            "plugin.install",
            Some("sms-twilio"),
            serde_json::json!({"version": "0.1.0"}),
        )
        .await
        .unwrap();
    store
        .audit("agent-1", "contact.merge", None, serde_json::json!({}))
        .await
        .unwrap();
    let entries = store.list_audit(10).await.unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].action, "contact.merge");
    assert_eq!(entries[1].target.as_deref(), Some("sms-twilio"));
    assert_eq!(entries[1].detail, serde_json::json!({"version": "0.1.0"}));
    assert_eq!(store.list_audit(1).await.unwrap().len(), 1);
}

async fn reconnecting_keeps_data_and_skips_applied_migrations(ctx: Ctx) {
    let store = &ctx.store;
    let c = created(ingest_one(store, sms(T0, "SM1", "phone:+15551234567", "hi")).await);
    let again = Store::connect(&ctx.url, common::TEST_KEY).await.unwrap();
    assert_eq!(again.backend(), store.backend());
    assert_eq!(again.contact(&c.contact_id).await.unwrap().id, c.contact_id);
    again.close().await;
}

/// Batches queued while the writer is busy share one transaction. On a current-thread
/// runtime every `ingest` below is queued before the writer task first runs, so the
/// grouping is deterministic: one transaction for all of them, per writer lane.
async fn queued_batches_commit_in_one_transaction(ctx: Ctx) {
    let store = &ctx.store;
    let before = store.ingest_stats();
    let calls = (0..50).map(|i| {
        store.ingest(sms(
            T0 + i,
            &format!("SM{i}"),
            &format!("phone:+1555000{i:04}"),
            "hi",
        ))
    });
    let results = join_all(calls).await;
    for (i, r) in results.into_iter().enumerate() {
        let c = created(r.unwrap().remove(0));
        assert_eq!(
            store
                .event_by_provider_id("sms-twilio", &format!("SM{i}"))
                .await
                .unwrap()
                .unwrap()
                .id,
            c.event_id
        );
    }
    let after = store.ingest_stats();
    assert_eq!(after.batches - before.batches, 50);
    // One transaction per writer lane (one lane on SQLite).
    let groups = after.groups - before.groups;
    assert!(
        groups >= 1 && groups <= store.ingest_lanes() as u64,
        "{after:?}"
    );
    assert_eq!(store.metrics_counts().await.unwrap().contacts, 50);
}

/// Polls every future once in order before waiting on any of them (a tiny stand-in for
/// `futures::future::join_all`, which this crate does not depend on).
async fn join_all<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (fut, out) in pinned.iter_mut().zip(outputs.iter_mut()) {
            if out.is_none() {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *out = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(|o| o.unwrap()).collect()
}

fn plugin_install(id: &str) -> PluginInstall {
    PluginInstall {
        id: id.into(),
        version: "0.1.0".into(),
        kind: "channel".into(),
        world: "switchboard:plugin/channel@0.1.0".into(),
        manifest: format!("id = \"{id}\"\n"),
        path: format!("/var/lib/switchboard/plugins/{id}"),
        allowed_hosts: vec!["api.twilio.com".into(), "127.0.0.1:8089".into()],
        enabled: true,
        component: None,
    }
}

#[tokio::test]
async fn sqlite_files_are_created_with_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new/dir/switchboard.db");
    let store = Store::connect(&format!("sqlite://{}", path.display()), common::TEST_KEY)
        .await
        .unwrap();
    assert_eq!(store.backend(), switchboard_store::Backend::Sqlite);
    store.close().await;
    assert!(path.exists());
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    pool.close().await;
}

#[tokio::test]
async fn in_memory_sqlite_works() {
    let store = Store::connect("sqlite::memory:", common::TEST_KEY)
        .await
        .unwrap();
    let out = store
        .ingest(sms(T0, "SM1", "phone:+15551234567", "hi"))
        .await
        .unwrap();
    assert!(matches!(out[0], IngestOutcome::Created { .. }));
    assert_eq!(store.metrics_counts().await.unwrap().contacts, 1);
}

#[tokio::test]
async fn unsupported_urls_are_rejected() {
    let err = Store::connect("mysql://localhost/db", common::TEST_KEY)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
}
