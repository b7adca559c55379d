//! E-mail threading in the store, on SQLite and on PostgreSQL: a reply joins the
//! conversation holding the message it answers (by `In-Reply-To`, by
//! `References`, or by the host-verified reply-address conversation), reopening
//! it however long ago it was resolved; a machine's mail is recorded but never
//! changes a conversation's status, and one that answers nothing is kept in a
//! conversation opened already resolved.

#[macro_use]
mod common;

use common::Ctx;
use serde_json::{Value, json};
use switchboard_core::{ConversationStatus, DeliveryStatus, Identity, parse_identity_query};
use switchboard_store::{
    InboundMessage, IngestBatch, IngestEvent, IngestOutcome, NewReply, THREAD_CONVERSATION_KEY,
};

const T0: i64 = 1_700_000_000_000;
const DAY: i64 = 86_400_000;

fn id(query: &str) -> Identity {
    parse_identity_query(query, None).unwrap()
}

fn mail(provider_id: &str, from: &str, metadata: Value) -> IngestEvent {
    IngestEvent::InboundMessage(InboundMessage {
        provider_id: provider_id.into(),
        sender: id(from),
        sender_name: None,
        body: "text".into(),
        attachments: Vec::new(),
        sent_at_ms: None,
        metadata,
    })
}

async fn ingest(ctx: &Ctx, now_ms: i64, event: IngestEvent) -> (String, String, bool) {
    let out = ctx
        .store
        .ingest(IngestBatch {
            plugin_id: "email".into(),
            channel: "email".into(),
            now_ms,
            reopen_window_ms: 3_600_000,
            events: vec![event],
        })
        .await
        .unwrap();
    match &out[0] {
        IngestOutcome::Created {
            contact_id,
            conversation_id,
            new_conversation,
            ..
        } => (
            contact_id.clone(),
            conversation_id.clone(),
            *new_conversation,
        ),
        other => panic!("expected Created, got {other:?}"),
    }
}

store_tests!(
    a_reply_joins_the_conversation_of_the_message_it_answers_even_long_after_it_was_resolved,
    references_and_a_verified_reply_address_thread_too,
    machine_mail_never_changes_a_conversation_and_is_kept_when_it_answers_nothing,
);

async fn a_reply_joins_the_conversation_of_the_message_it_answers_even_long_after_it_was_resolved(
    ctx: Ctx,
) {
    let store = &ctx.store;
    let (_, conv, new) = ingest(
        &ctx,
        T0,
        mail(
            "m1@customer.test",
            "email:ann@customer.test",
            json!({"subject": "Order 42"}),
        ),
    )
    .await;
    assert!(new);
    // The agent answers; the connector reports our Message-ID as the provider id.
    let (_, outbox) = store
        .create_reply(NewReply {
            conversation_id: conv.clone(),
            author_agent_id: None,
            body: "On its way".into(),
            plugin_id: "email".into(),
            channel: "email".into(),
            to: id("email:ann@customer.test"),
            now_ms: T0 + 1000,
            payload: json!({}),
            attachments: Vec::new(),
        })
        .await
        .unwrap();
    store
        .outbox_sent(
            &outbox.id,
            "r1@support.test",
            DeliveryStatus::Sent,
            T0 + 2000,
            None,
        )
        .await
        .unwrap();
    store
        .set_conversation_status(&conv, ConversationStatus::Resolved, T0 + 3000)
        .await
        .unwrap();
    // A new e-mail a month later with another subject and no headers is a new case…
    let (_, other, new) = ingest(
        &ctx,
        T0 + 30 * DAY,
        mail(
            "m2@customer.test",
            "email:ann@customer.test",
            json!({"subject": "New question"}),
        ),
    )
    .await;
    assert!(new);
    assert_ne!(other, conv);
    store
        .set_conversation_status(&other, ConversationStatus::Resolved, T0 + 30 * DAY + 1)
        .await
        .unwrap();
    // …but an answer to our reply, from another client with a changed subject,
    // joins and reopens the first conversation.
    let (_, joined, new) = ingest(
        &ctx,
        T0 + 31 * DAY,
        mail(
            "m3@phone.customer.test",
            "email:ann@customer.test",
            json!({"subject": "Still waiting!!", "in_reply_to": "r1@support.test"}),
        ),
    )
    .await;
    assert!(!new);
    assert_eq!(joined, conv);
    assert_eq!(
        store.conversation(&conv).await.unwrap().status,
        ConversationStatus::Open
    );
}

async fn references_and_a_verified_reply_address_thread_too(ctx: Ctx) {
    let store = &ctx.store;
    let (_, first, _) = ingest(
        &ctx,
        T0,
        mail(
            "a1@customer.test",
            "email:bo@customer.test",
            json!({"subject": "A"}),
        ),
    )
    .await;
    let (_, second, _) = ingest(
        &ctx,
        T0 + 10,
        mail(
            "b1@other.test",
            "email:cy@other.test",
            json!({"subject": "B"}),
        ),
    )
    .await;
    assert_ne!(first, second);
    // References: the newest known one wins, unknown ids are skipped.
    let (_, by_refs, _) = ingest(
        &ctx,
        T0 + 20,
        mail(
            "a2@customer.test",
            "email:bo@customer.test",
            json!({"in_reply_to": "unknown@x", "references": ["a1@customer.test", "zz@x"]}),
        ),
    )
    .await;
    assert_eq!(by_refs, first);
    // The reply-address conversation the host verified takes precedence, even from
    // an address the conversation's contact does not hold.
    let (contact, by_tag, _) = ingest(
        &ctx,
        T0 + 30,
        mail(
            "c1@elsewhere.test",
            "email:bo.private@elsewhere.test",
            json!({ THREAD_CONVERSATION_KEY: second, "in_reply_to": "a1@customer.test" }),
        ),
    )
    .await;
    assert_eq!(by_tag, second);
    // The sender stays who they are: no contact is merged by threading.
    let holder = store
        .contact_by_identity(&id("email:cy@other.test"))
        .await
        .unwrap()
        .unwrap();
    assert_ne!(contact, holder.id);
    // A conversation id that does not exist falls back to the headers.
    let (_, fallback, _) = ingest(
        &ctx,
        T0 + 40,
        mail(
            "a3@customer.test",
            "email:bo@customer.test",
            json!({ THREAD_CONVERSATION_KEY: "no-such-conversation", "in_reply_to": "a2@customer.test" }),
        ),
    )
    .await;
    assert_eq!(fallback, first);
}

async fn machine_mail_never_changes_a_conversation_and_is_kept_when_it_answers_nothing(ctx: Ctx) {
    let store = &ctx.store;
    let (_, conv, _) = ingest(
        &ctx,
        T0,
        mail(
            "d1@customer.test",
            "email:di@customer.test",
            json!({"subject": "Help"}),
        ),
    )
    .await;
    store
        .set_conversation_status(&conv, ConversationStatus::Resolved, T0 + 1)
        .await
        .unwrap();
    // An out-of-office answering the thread joins it and leaves it resolved.
    let (_, joined, new) = ingest(
        &ctx,
        T0 + 2,
        mail(
            "d2@customer.test",
            "email:di@customer.test",
            json!({"in_reply_to": "d1@customer.test", "automatic": "auto_reply"}),
        ),
    )
    .await;
    assert_eq!((joined.as_str(), new), (conv.as_str(), false));
    assert_eq!(
        store.conversation(&conv).await.unwrap().status,
        ConversationStatus::Resolved
    );
    // A newsletter from someone new is kept, in a conversation that is nobody's work.
    let (_, kept, new) = ingest(
        &ctx,
        T0 + 3,
        mail(
            "n1@list.test",
            "email:news@list.test",
            json!({"automatic": "bulk"}),
        ),
    )
    .await;
    assert!(new);
    assert_eq!(
        store.conversation(&kept).await.unwrap().status,
        ConversationStatus::Resolved
    );
    let timeline = store.conversation_timeline(&kept).await.unwrap();
    assert!(
        timeline
            .iter()
            .any(|e| e.provider_id.as_deref() == Some("n1@list.test"))
    );
}
