//! The desk's repository functions, on SQLite and on PostgreSQL: internal events with
//! structured data, read markers and waiting times, resolving with a disposition,
//! contact edits, today's task figures, and webchat visitors and transcripts.

#[macro_use]
mod common;

use common::Ctx;
use serde_json::json;
use switchboard_core::{
    ConversationStatus, DeliveryStatus, Direction, EventKind, Identity, Role, parse_identity_query,
};
use switchboard_store::{
    InboundMessage, IngestBatch, IngestEvent, IngestOutcome, NewAgent, NewEvent, NewReply,
    StoreError,
};

const T0: i64 = 1_700_000_000_000;

fn id(query: &str) -> Identity {
    parse_identity_query(query, None).unwrap()
}

fn inbound(
    plugin: &str,
    channel: &str,
    now: i64,
    pid: &str,
    from: &Identity,
    body: &str,
) -> IngestBatch {
    IngestBatch {
        plugin_id: plugin.into(),
        channel: channel.into(),
        now_ms: now,
        reopen_window_ms: 3_600_000,
        events: vec![IngestEvent::InboundMessage(InboundMessage {
            provider_id: pid.into(),
            sender: from.clone(),
            sender_name: Some("Jane".into()),
            body: body.into(),
            attachments: vec![],
            sent_at_ms: None,
            metadata: serde_json::Value::Null,
        })],
    }
}

async fn conversation_of(ctx: &Ctx, b: IngestBatch) -> (String, String) {
    match ctx.store.ingest(b).await.unwrap().remove(0) {
        IngestOutcome::Created {
            contact_id,
            conversation_id,
            ..
        } => (contact_id, conversation_id),
        other => panic!("{other:?}"),
    }
}

async fn agent(ctx: &Ctx, email: &str) -> String {
    ctx.store
        .create_agent(NewAgent {
            email: email.into(),
            name: "Sam".into(),
            role: Role::Agent,
            password_hash: "$argon2id$not-checked-here".into(),
            skills: vec![],
        })
        .await
        .unwrap()
        .id
}

store_tests!(
    notes_and_transfers_keep_their_data_and_order,
    unread_counts_and_waiting_follow_the_read_marker_and_our_answers,
    resolving_records_the_disposition_and_the_status_together,
    contact_edits_merge_attributes,
    webchat_visitors_join_the_contact_of_their_email_and_read_only_their_chat,
    agents_keep_one_email_signature,
);

async fn agents_keep_one_email_signature(ctx: Ctx) {
    let sam = agent(&ctx, "sam@desk.test").await;
    assert_eq!(ctx.store.agent_signature(&sam).await.unwrap(), None);
    let text = "Sam Agent\nSupport — Example Inc.\n+1 555 0100";
    ctx.store
        .set_agent_signature(&sam, Some(text))
        .await
        .unwrap();
    assert_eq!(
        ctx.store.agent_signature(&sam).await.unwrap().as_deref(),
        Some(text)
    );
    ctx.store.set_agent_signature(&sam, None).await.unwrap();
    assert_eq!(ctx.store.agent_signature(&sam).await.unwrap(), None);
    assert!(matches!(
        ctx.store.agent_signature("nobody").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        ctx.store.set_agent_signature("nobody", Some("x")).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn notes_and_transfers_keep_their_data_and_order(ctx: Ctx) {
    let jane = id("phone:+15551230001");
    let (_, conv) =
        conversation_of(&ctx, inbound("sms-twilio", "sms", T0, "SM1", &jane, "hi")).await;
    let sam = agent(&ctx, "sam@desk.test").await;
    let note = ctx
        .store
        .append_event(NewEvent::internal(
            &conv,
            EventKind::Note,
            "VIP <b>",
            Some(&sam),
            json!({}),
            T0 + 1,
        ))
        .await
        .unwrap();
    let context = json!({"context": {"reason": "billing", "steps": ["checked"], "commitments": [], "sentiment": "negative"}});
    let transfer = ctx
        .store
        .append_event(NewEvent::internal(
            &conv,
            EventKind::Transfer,
            "to billing",
            Some(&sam),
            context.clone(),
            T0 + 2,
        ))
        .await
        .unwrap();
    let timeline = ctx.store.conversation_timeline(&conv).await.unwrap();
    let got: Vec<_> = timeline.iter().map(|e| (e.kind, e.direction)).collect();
    assert_eq!(
        got,
        [
            (EventKind::Message, Direction::In),
            (EventKind::Note, Direction::Internal),
            (EventKind::Transfer, Direction::Internal)
        ]
    );
    assert_eq!(
        timeline[0].data,
        json!({}),
        "plain messages have empty data"
    );
    assert_eq!(ctx.store.event(&transfer.id).await.unwrap().data, context);
    assert_eq!(ctx.store.event(&note.id).await.unwrap().body, "VIP <b>");
    assert!(matches!(
        ctx.store.event("nope").await,
        Err(StoreError::NotFound { .. })
    ));
    let missing = ctx
        .store
        .append_event(NewEvent::internal(
            "nope",
            EventKind::Note,
            "x",
            None,
            json!({}),
            T0,
        ))
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound { .. })));
    let transfers = ctx
        .store
        .events_of_kind_since(EventKind::Transfer, T0, 10)
        .await
        .unwrap();
    assert_eq!(transfers.len(), 1);
    assert!(
        ctx.store
            .events_of_kind_since(EventKind::Transfer, T0 + 3, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn unread_counts_and_waiting_follow_the_read_marker_and_our_answers(ctx: Ctx) {
    let jane = id("phone:+15551230002");
    let (contact, conv) =
        conversation_of(&ctx, inbound("sms-twilio", "sms", T0, "SM1", &jane, "one")).await;
    ctx.store
        .ingest(inbound("sms-twilio", "sms", T0 + 10, "SM2", &jane, "two"))
        .await
        .unwrap();
    let sam = agent(&ctx, "sam@desk.test").await;
    let s = ctx.store.desk_summary(&sam, &conv).await.unwrap();
    assert_eq!((s.unread, s.waiting_since), (2, Some(T0)));
    assert_eq!(s.channels, ["sms"]);
    ctx.store.mark_read(&sam, &conv, T0 + 10).await.unwrap();
    // An older marker never moves it back.
    ctx.store.mark_read(&sam, &conv, T0 + 5).await.unwrap();
    assert_eq!(ctx.store.desk_summary(&sam, &conv).await.unwrap().unread, 0);
    // An automatic message does not answer the customer; an agent's reply does.
    ctx.store
        .append_event(NewEvent {
            direction: Direction::Out,
            delivery_status: Some(DeliveryStatus::Sent),
            ..NewEvent::internal(
                &conv,
                EventKind::Message,
                "auto",
                None,
                json!({"auto": true}),
                T0 + 11,
            )
        })
        .await
        .unwrap();
    assert_eq!(
        ctx.store
            .desk_summary(&sam, &conv)
            .await
            .unwrap()
            .waiting_since,
        Some(T0)
    );
    ctx.store
        .create_reply(NewReply {
            conversation_id: conv.clone(),
            author_agent_id: Some(sam.clone()),
            body: "on it".into(),
            plugin_id: "sms-twilio".into(),
            channel: "sms".into(),
            to: jane.clone(),
            now_ms: T0 + 20,
            payload: serde_json::json!({}),
            attachments: Vec::new(),
        })
        .await
        .unwrap();
    let s = ctx.store.desk_summary(&sam, &conv).await.unwrap();
    assert_eq!(s.waiting_since, None);
    assert_eq!(s.last_event.unwrap().body, "on it");
    ctx.store
        .ingest(inbound("sms-twilio", "sms", T0 + 30, "SM3", &jane, "three"))
        .await
        .unwrap();
    let s = ctx.store.desk_summary(&sam, &conv).await.unwrap();
    assert_eq!((s.unread, s.waiting_since), (1, Some(T0 + 30)));
    let other = agent(&ctx, "alex@desk.test").await;
    assert_eq!(
        ctx.store.desk_summary(&other, &conv).await.unwrap().unread,
        3,
        "markers are per agent"
    );
    assert!(matches!(
        ctx.store.mark_read(&sam, "nope", T0).await,
        Err(StoreError::NotFound { .. })
    ));
    let _ = contact;
}

async fn resolving_records_the_disposition_and_the_status_together(ctx: Ctx) {
    let jane = id("phone:+15551230003");
    let (contact, conv) =
        conversation_of(&ctx, inbound("sms-twilio", "sms", T0, "SM1", &jane, "hi")).await;
    let (row, event) = ctx
        .store
        .resolve_with_disposition(NewEvent::internal(
            &conv,
            EventKind::Disposition,
            "Resolved",
            None,
            json!({"code": "resolved"}),
            T0 + 5,
        ))
        .await
        .unwrap();
    assert_eq!(row.status, ConversationStatus::Resolved);
    assert_eq!(row.resolved_at, Some(T0 + 5));
    assert_eq!(event.data["code"], "resolved");
    let kinds: Vec<_> = ctx
        .store
        .conversation_timeline(&conv)
        .await
        .unwrap()
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            EventKind::Message,
            EventKind::Disposition,
            EventKind::Status
        ]
    );
    let d = ctx
        .store
        .contact_events_of_kind(&contact, EventKind::Disposition)
        .await
        .unwrap();
    assert_eq!(d.len(), 1);
    let tasks = ctx.store.tasks_since(T0).await.unwrap();
    assert!(tasks.is_empty(), "no routing ran in this test");
}

async fn contact_edits_merge_attributes(ctx: Ctx) {
    let jane = id("phone:+15551230004");
    let (contact, _) =
        conversation_of(&ctx, inbound("sms-twilio", "sms", T0, "SM1", &jane, "hi")).await;
    let mut attrs = serde_json::Map::new();
    attrs.insert("language".into(), json!("fr"));
    attrs.insert("vip".into(), json!(true));
    let v = ctx
        .store
        .update_contact(&contact, Some(Some("Jane Doe".into())), Some(attrs), T0 + 1)
        .await
        .unwrap();
    assert_eq!(v.display_name.as_deref(), Some("Jane Doe"));
    assert_eq!(v.attributes, json!({"language": "fr", "vip": true}));
    let mut attrs = serde_json::Map::new();
    attrs.insert("vip".into(), json!(null));
    let v = ctx
        .store
        .update_contact(&contact, None, Some(attrs), T0 + 2)
        .await
        .unwrap();
    assert_eq!(
        v.display_name.as_deref(),
        Some("Jane Doe"),
        "no name given: kept"
    );
    assert_eq!(v.attributes, json!({"language": "fr"}));
    assert!(matches!(
        ctx.store.update_contact("nope", None, None, T0).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn webchat_visitors_join_the_contact_of_their_email_and_read_only_their_chat(ctx: Ctx) {
    // Jane wrote an e-mail once; she now chats with that address.
    let email = id("email:jane@example.com");
    let (jane, conv) = conversation_of(
        &ctx,
        inbound("email", "email", T0, "E1", &email, "my e-mail"),
    )
    .await;
    let v = ctx
        .store
        .create_webchat_visitor("Jane", Some(&email), "hash-1", T0 + 1)
        .await
        .unwrap();
    assert_eq!(v.contact_id, jane);
    let found = ctx.store.webchat_visitor("hash-1").await.unwrap().unwrap();
    assert_eq!(found, v);
    assert!(ctx.store.webchat_visitor("hash-2").await.unwrap().is_none());
    let (contact, conv2) = conversation_of(
        &ctx,
        inbound(
            "webchat",
            "webchat",
            T0 + 2,
            "w1",
            &v.identity(),
            "hello from chat",
        ),
    )
    .await;
    assert_eq!(
        (contact.as_str(), conv2.as_str()),
        (jane.as_str(), conv.as_str()),
        "one customer, one conversation"
    );
    let transcript = ctx
        .store
        .identity_messages(&v.identity(), 100)
        .await
        .unwrap();
    assert_eq!(
        transcript.len(),
        1,
        "the e-mail is not in the chat transcript"
    );
    assert_eq!(transcript[0].body, "hello from chat");
    // A stranger without e-mail gets a contact of their own.
    let s = ctx
        .store
        .create_webchat_visitor("Stranger", None, "hash-3", T0)
        .await
        .unwrap();
    assert_ne!(s.contact_id, jane);
    let c = ctx.store.contact(&s.contact_id).await.unwrap();
    assert_eq!(c.display_name.as_deref(), Some("Stranger"));
    assert_eq!(c.identities.len(), 1);
    assert!(matches!(
        ctx.store
            .create_webchat_visitor("  ", None, "hash-4", T0)
            .await,
        Err(StoreError::Invalid(_))
    ));
    assert!(
        ctx.store
            .create_webchat_visitor("Dup", None, "hash-1", T0)
            .await
            .is_err(),
        "token hashes are unique"
    );
}
