//! Messaging facts in the store: inbound files and their copy into the blob store,
//! uploads bound to replies, the messaging window's anchor, poll cursors, and the
//! rule that a WhatsApp number and a phone number are one person. Every test runs on
//! SQLite and on PostgreSQL.

#[macro_use]
mod common;

use common::Ctx;
use switchboard_core::{Identity, parse_identity_query};
use switchboard_store::{
    InboundAttachment, InboundMessage, IngestBatch, IngestEvent, IngestOutcome, NewReply,
    StoreError,
};

const T0: i64 = 1_700_000_000_000;

fn id(query: &str) -> Identity {
    parse_identity_query(query, None).unwrap()
}

fn message(
    provider_id: &str,
    from: &str,
    sent_at_ms: Option<i64>,
    files: Vec<InboundAttachment>,
) -> IngestEvent {
    IngestEvent::InboundMessage(InboundMessage {
        provider_id: provider_id.into(),
        sender: id(from),
        sender_name: Some("Jane".into()),
        body: "hello".into(),
        attachments: files,
        sent_at_ms,
        metadata: serde_json::json!({"interactive_reply": {"id": "yes", "title": "Yes"}}),
    })
}

fn batch(plugin: &str, channel: &str, now_ms: i64, events: Vec<IngestEvent>) -> IngestBatch {
    IngestBatch {
        plugin_id: plugin.into(),
        channel: channel.into(),
        now_ms,
        reopen_window_ms: 3_600_000,
        events,
    }
}

fn file(source: &str) -> InboundAttachment {
    InboundAttachment {
        source: source.into(),
        content_type: Some("image/jpeg".into()),
        filename: Some("receipt.jpg".into()),
        size: Some(10),
        content_id: None,
        stored: None,
    }
}

fn created(outcome: &IngestOutcome) -> (String, String, String) {
    match outcome {
        IngestOutcome::Created {
            contact_id,
            conversation_id,
            event_id,
            ..
        } => (
            contact_id.clone(),
            conversation_id.clone(),
            event_id.clone(),
        ),
        other => panic!("expected Created, got {other:?}"),
    }
}

store_tests!(
    inbound_files_are_pending_until_copied_and_the_event_mirrors_them,
    a_failed_copy_retries_then_gives_up_with_its_reason,
    uploads_bind_to_one_reply_of_their_author_only,
    the_window_runs_from_the_providers_timestamp_of_the_last_inbound_message,
    poll_cursors_survive_and_errors_do_not_erase_them,
    a_whatsapp_number_and_a_phone_number_are_one_contact,
    many_senders_at_once_keep_one_contact_each_and_their_order,
    two_nodes_hearing_a_new_sender_at_once_make_one_contact,
);

async fn inbound_files_are_pending_until_copied_and_the_event_mirrors_them(ctx: Ctx) {
    let store = &ctx.store;
    let out = store
        .ingest(batch(
            "whatsapp-cloud",
            "whatsapp",
            T0,
            vec![message(
                "wamid.1",
                "whatsapp:+15551230001",
                Some(T0 - 5),
                vec![file("media-1"), file("media-2")],
            )],
        ))
        .await
        .unwrap();
    let (_, _, event_id) = created(&out[0]);
    let event = store.event(&event_id).await.unwrap();
    assert_eq!(event.attachments.len(), 2);
    assert!(event.attachments.iter().all(
        |a| a.status.as_deref() == Some("pending") && a.url.starts_with("/api/v1/attachments/")
    ));
    assert_eq!(event.data["metadata"]["interactive_reply"]["id"], "yes");

    // Two workers: each file is claimed once, and not again while leased.
    let first = store.claim_attachments(T0, 1, 60_000).await.unwrap();
    let second = store.claim_attachments(T0, 5, 60_000).await.unwrap();
    assert_eq!((first.len(), second.len()), (1, 1));
    assert_ne!(first[0].id, second[0].id);
    assert!(
        store
            .claim_attachments(T0 + 1, 5, 60_000)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(first[0].source, "media-1");

    let stored = store
        .attachment_stored(&first[0].id, &"ab".repeat(32), 42, "image/png", T0 + 10)
        .await
        .unwrap();
    assert_eq!(stored.status, "stored");
    let event = store.event(&event_id).await.unwrap();
    let mirrored = event
        .attachments
        .iter()
        .find(|a| a.id.as_deref() == Some(&first[0].id))
        .unwrap();
    assert_eq!(mirrored.status.as_deref(), Some("stored"));
    assert_eq!(mirrored.content_type.as_deref(), Some("image/png"));
    assert_eq!(mirrored.size, Some(42));
    // A lease that ran out makes the other file claimable again.
    let again = store
        .claim_attachments(T0 + 61_000, 5, 60_000)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, second[0].id);

    // A duplicate delivery records nothing twice.
    store
        .ingest(batch(
            "whatsapp-cloud",
            "whatsapp",
            T0 + 20,
            vec![message(
                "wamid.1",
                "whatsapp:+15551230001",
                None,
                vec![file("media-1")],
            )],
        ))
        .await
        .unwrap();
    let event = store.event(&event_id).await.unwrap();
    assert_eq!(event.attachments.len(), 2);
}

async fn a_failed_copy_retries_then_gives_up_with_its_reason(ctx: Ctx) {
    let store = &ctx.store;
    let out = store
        .ingest(batch(
            "whatsapp-cloud",
            "whatsapp",
            T0,
            vec![message(
                "wamid.2",
                "whatsapp:+15551230002",
                None,
                vec![file("media-9")],
            )],
        ))
        .await
        .unwrap();
    let (_, _, event_id) = created(&out[0]);
    let row = store
        .claim_attachments(T0, 5, 60_000)
        .await
        .unwrap()
        .remove(0);
    let retry = store
        .attachment_failed(
            &row.id,
            "the provider answered HTTP 500",
            Some(T0 + 2000),
            T0,
        )
        .await
        .unwrap();
    assert_eq!((retry.status.as_str(), retry.attempts), ("pending", 1));
    assert!(
        store
            .claim_attachments(T0 + 1000, 5, 60_000)
            .await
            .unwrap()
            .is_empty(),
        "not before its time"
    );
    let row = store
        .claim_attachments(T0 + 2000, 5, 60_000)
        .await
        .unwrap()
        .remove(0);
    let failed = store
        .attachment_failed(
            &row.id,
            "the file is larger than the 10 byte limit",
            None,
            T0 + 2001,
        )
        .await
        .unwrap();
    assert_eq!(failed.status, "failed");
    assert!(
        store
            .claim_attachments(T0 + 99_999_999, 5, 60_000)
            .await
            .unwrap()
            .is_empty()
    );
    let event = store.event(&event_id).await.unwrap();
    assert_eq!(event.attachments[0].status.as_deref(), Some("failed"));
    assert_eq!(
        event.attachments[0].error.as_deref(),
        Some("the file is larger than the 10 byte limit")
    );
}

async fn uploads_bind_to_one_reply_of_their_author_only(ctx: Ctx) {
    let store = &ctx.store;
    let out = store
        .ingest(batch(
            "whatsapp-cloud",
            "whatsapp",
            T0,
            vec![message("wamid.3", "whatsapp:+15551230003", None, vec![])],
        ))
        .await
        .unwrap();
    let (_, conversation, _) = created(&out[0]);
    let mine = store
        .create_upload(
            "agent-a",
            &"cd".repeat(32),
            7,
            "image/png",
            Some("label.png"),
            T0,
        )
        .await
        .unwrap();
    let theirs = store
        .create_upload("agent-b", &"ef".repeat(32), 7, "image/png", None, T0)
        .await
        .unwrap();
    let reply = |files: Vec<String>| NewReply {
        conversation_id: conversation.clone(),
        author_agent_id: Some("agent-a".into()),
        body: "here".into(),
        plugin_id: "whatsapp-cloud".into(),
        channel: "whatsapp".into(),
        to: id("whatsapp:+15551230003"),
        now_ms: T0 + 5,
        payload: serde_json::json!({"window": "open"}),
        attachments: files,
    };
    let refused = store
        .create_reply(reply(vec![theirs.id.clone()]))
        .await
        .unwrap_err();
    assert!(matches!(refused, StoreError::Invalid(_)), "{refused}");
    let (event, outbox) = store
        .create_reply(reply(vec![mine.id.clone()]))
        .await
        .unwrap();
    assert_eq!(event.attachments.len(), 1);
    assert_eq!(event.attachments[0].filename.as_deref(), Some("label.png"));
    assert_eq!(outbox.payload["window"], "open");
    let files = store.event_attachments(&event.id).await.unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].id, mine.id);
    // An upload goes out once.
    let again = store
        .create_reply(reply(vec![mine.id.clone()]))
        .await
        .unwrap_err();
    assert!(matches!(again, StoreError::Invalid(_)), "{again}");
    // And the refused reply left nothing behind.
    let theirs = store.attachment(&theirs.id).await.unwrap();
    assert_eq!(theirs.event_id, None);
}

async fn the_window_runs_from_the_providers_timestamp_of_the_last_inbound_message(ctx: Ctx) {
    let store = &ctx.store;
    let out = store
        .ingest(batch(
            "whatsapp-cloud",
            "whatsapp",
            T0,
            vec![message(
                "wamid.4",
                "whatsapp:+15551230004",
                Some(T0 - 3_600_000),
                vec![],
            )],
        ))
        .await
        .unwrap();
    let (_, conversation, _) = created(&out[0]);
    assert_eq!(
        store
            .last_inbound_at(&conversation, "whatsapp-cloud")
            .await
            .unwrap(),
        Some(T0 - 3_600_000),
        "the provider's timestamp, not the receipt time"
    );
    store
        .ingest(batch(
            "whatsapp-cloud",
            "whatsapp",
            T0 + 1000,
            vec![message("wamid.5", "whatsapp:+15551230004", None, vec![])],
        ))
        .await
        .unwrap();
    assert_eq!(
        store
            .last_inbound_at(&conversation, "whatsapp-cloud")
            .await
            .unwrap(),
        Some(T0 + 1000),
        "receipt time when the provider gives none"
    );
    assert_eq!(
        store
            .last_inbound_at(&conversation, "messenger")
            .await
            .unwrap(),
        None,
        "each channel has its own window"
    );
}

async fn poll_cursors_survive_and_errors_do_not_erase_them(ctx: Ctx) {
    let store = &ctx.store;
    assert_eq!(store.poll_cursor("email").await.unwrap(), None);
    store
        .record_poll("email", Some("uid:41"), None, T0)
        .await
        .unwrap();
    store
        .record_poll("email", None, Some("IMAP server down"), T0 + 1)
        .await
        .unwrap();
    assert_eq!(
        store.poll_cursor("email").await.unwrap().as_deref(),
        Some("uid:41")
    );
    store
        .record_poll("email", Some("uid:42"), None, T0 + 2)
        .await
        .unwrap();
    assert_eq!(
        store.poll_cursor("email").await.unwrap().as_deref(),
        Some("uid:42")
    );
    assert_eq!(store.poll_cursor("email-billing").await.unwrap(), None);
}

async fn a_whatsapp_number_and_a_phone_number_are_one_contact(ctx: Ctx) {
    let store = &ctx.store;
    let sms = store
        .ingest(batch(
            "sms-twilio",
            "sms",
            T0,
            vec![message("SM1", "phone:+15551230005", None, vec![])],
        ))
        .await
        .unwrap();
    let (contact, conversation, _) = created(&sms[0]);
    let wa = store
        .ingest(batch(
            "whatsapp-cloud",
            "whatsapp",
            T0 + 10,
            vec![message("wamid.6", "whatsapp:+15551230005", None, vec![])],
        ))
        .await
        .unwrap();
    let (wa_contact, wa_conversation, _) = created(&wa[0]);
    assert_eq!(wa_contact, contact);
    assert_eq!(wa_conversation, conversation);
    let view = store.contact(&contact).await.unwrap();
    let kinds: Vec<String> = view.identities.iter().map(|i| i.kind.clone()).collect();
    assert!(
        kinds.contains(&"phone".to_string()) && kinds.contains(&"whatsapp".to_string()),
        "{kinds:?}"
    );
    // The other way round, and lookups by either kind.
    let wa_first = store
        .ingest(batch(
            "whatsapp-cloud",
            "whatsapp",
            T0 + 20,
            vec![message("wamid.7", "whatsapp:+15551230006", None, vec![])],
        ))
        .await
        .unwrap();
    let (wa_only, _, _) = created(&wa_first[0]);
    let by_phone = store
        .contact_by_identity(&id("phone:+15551230006"))
        .await
        .unwrap()
        .expect("found by the twin identity");
    assert_eq!(by_phone.id, wa_only);
    let call = store
        .ingest(batch(
            "sms-twilio",
            "sms",
            T0 + 30,
            vec![message("SM2", "phone:+15551230006", None, vec![])],
        ))
        .await
        .unwrap();
    assert_eq!(created(&call[0]).0, wa_only);
    // Other kinds never match across.
    assert!(
        store
            .contact_by_identity(&id("telegram:15551230006"))
            .await
            .unwrap()
            .is_none()
    );
}

/// Many senders at once (on PostgreSQL the writer applies them in several lanes): one
/// contact per number, its phone and WhatsApp identities included, one conversation
/// each, and each sender's messages on the timeline in the order they were submitted.
async fn many_senders_at_once_keep_one_contact_each_and_their_order(ctx: Ctx) {
    let store = &ctx.store;
    let senders = 16;
    let per_sender = 6;
    let mut submits = Vec::new();
    for m in 0..per_sender {
        for s in 0..senders {
            let (plugin, channel, kind) = if m % 2 == 0 {
                ("sms-twilio", "sms", "phone")
            } else {
                ("whatsapp-cloud", "whatsapp", "whatsapp")
            };
            let mut event = message(
                &format!("P{s}-{m}"),
                &format!("{kind}:+1555013{s:04}"),
                None,
                vec![],
            );
            if let IngestEvent::InboundMessage(inbound) = &mut event {
                inbound.body = format!("m{m}");
            }
            submits.push(store.ingest(batch(plugin, channel, T0, vec![event])));
        }
    }
    // Polled in order, so each sender's batches are queued in order.
    for outcome in futures::future::join_all(submits).await {
        let outcome = outcome.unwrap();
        assert!(
            matches!(outcome[0], IngestOutcome::Created { .. }),
            "{outcome:?}"
        );
    }
    for s in 0..senders {
        let contact = store
            .contact_by_identity(&id(&format!("phone:+1555013{s:04}")))
            .await
            .unwrap()
            .expect("a contact per number");
        assert_eq!(contact.identities.len(), 2, "{:?}", contact.identities);
        let conversations = store.contact_conversations(&contact.id).await.unwrap();
        assert_eq!(conversations.len(), 1);
        let bodies: Vec<String> = store
            .conversation_timeline(&conversations[0].id)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == switchboard_core::EventKind::Message)
            .map(|e| e.body)
            .collect();
        let sent: Vec<String> = (0..per_sender).map(|m| format!("m{m}")).collect();
        assert_eq!(bodies, sent, "sender {s}");
    }
}

/// Two hosts on one database (two writers, each with its own transactions) hear from
/// the same new senders at the same moment: each sender gets one contact and one
/// conversation, and both messages are stored. On PostgreSQL the later writer meets
/// the unique address the other committed and applies its batch again.
async fn two_nodes_hearing_a_new_sender_at_once_make_one_contact(ctx: Ctx) {
    let first = &ctx.store;
    let second = switchboard_store::Store::connect(&ctx.url, common::TEST_KEY)
        .await
        .unwrap();
    for s in 0..8 {
        let from = format!("phone:+1555014{s:04}");
        let (a, b) = futures::join!(
            first.ingest(batch(
                "sms-twilio",
                "sms",
                T0,
                vec![message(&format!("A{s}"), &from, None, vec![])]
            )),
            second.ingest(batch(
                "sms-twilio",
                "sms",
                T0,
                vec![message(&format!("B{s}"), &from, None, vec![])]
            )),
        );
        let (a, b) = (created(&a.unwrap()[0]), created(&b.unwrap()[0]));
        assert_eq!(a.0, b.0, "one contact for sender {s}");
        assert_eq!(a.1, b.1, "one conversation for sender {s}");
        let contact = first
            .contact_by_identity(&id(&from))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(contact.id, a.0);
        assert_eq!(first.contact_conversations(&a.0).await.unwrap().len(), 1);
    }
    second.close().await;
}
