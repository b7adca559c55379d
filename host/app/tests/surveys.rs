//! Surveys on known journeys, with exact figures, on SQLite and PostgreSQL.
//!
//! The real channel plugins (`plugins/dist`, built by `bash plugins/build.sh`) describe
//! their channels, so the messaging window and templates are WhatsApp's own. Customers
//! write through `Ingest::commit` (as a connector's webhook does), agents accept and
//! resolve through the task and desk use cases, questions go into the outbox (the
//! delivery worker is not running: what would be sent is read from the timeline), and
//! the figures come back through the experience report.

mod support;

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Value, json};
use switchboard_app::Delivery;
use switchboard_app::plugins::InstallRequest;
use switchboard_app::reports::ReportKind;
use switchboard_app::surveys::{SurveySettingsInput, TemplateName};
use switchboard_core::{ConsentAction, ConversationStatus, Direction, EventKind, Identity};
use switchboard_store::{
    ConsentEvent, InboundMessage, IngestEvent, IngestOutcome, Store, TimelineEvent,
};

use support::{DAY, MIN, S, World, both_backends, phone, row};

// ---------------------------------------------------------------- set-up

/// Installs a built plugin from `plugins/dist`.
async fn install(w: &World, dir: &str, config: &[(&str, &str)]) {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../plugins/dist")
        .join(dir);
    assert!(
        source.join("plugin.toml").exists(),
        "{} is missing: run `bash plugins/build.sh` first",
        source.display()
    );
    w.app
        .plugin_admin
        .install(
            "admin",
            InstallRequest {
                source,
                config: config
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<HashMap<_, _>>(),
                ..Default::default()
            },
        )
        .await
        .expect("install plugin");
}

async fn with_channels(store: Store) -> World {
    let w = World::start(store, 7 * DAY).await;
    install(
        &w,
        "sms-twilio",
        &[
            ("account_sid", "AC0000"),
            ("auth_token", "secret"),
            ("from_number", "+15550009999"),
        ],
    )
    .await;
    install(
        &w,
        "whatsapp-cloud",
        &[
            ("app_secret", "secret"),
            ("verify_token", "verify"),
            ("access_token", "token"),
            ("phone_number_id", "1000"),
        ],
    )
    .await;
    install(&w, "telegram-bot", &[("bot_token", "1:abc")]).await;
    w
}

/// The `messaging` queue (SMS, WhatsApp, Telegram) asks these.
async fn ask(w: &World, surveys: &[&str], template: Option<&str>) {
    ask_in(w, "messaging", surveys, template).await
}

async fn ask_in(w: &World, queue: &str, surveys: &[&str], template: Option<&str>) {
    w.app
        .surveys
        .set_settings(
            "admin",
            queue,
            SurveySettingsInput {
                surveys: surveys.iter().map(|s| s.to_string()).collect(),
                template: template.map(|name| TemplateName {
                    name: name.into(),
                    language: "en_US".into(),
                }),
                ..Default::default()
            },
        )
        .await
        .expect("survey settings");
}

fn whatsapp(n: &str) -> Identity {
    Identity::from_normalized("whatsapp", n)
}

fn telegram(id: &str) -> Identity {
    Identity::from_normalized("telegram", id)
}

/// The customer writes `body`; returns what ingest made of it (empty: it was an
/// answer and no message was stored).
async fn write(
    w: &World,
    plugin: &str,
    channel: &str,
    from: &Identity,
    body: &str,
) -> Vec<IngestOutcome> {
    write_as(
        w,
        plugin,
        channel,
        from,
        body,
        &uuid::Uuid::new_v4().to_string(),
    )
    .await
}

async fn write_as(
    w: &World,
    plugin: &str,
    channel: &str,
    from: &Identity,
    body: &str,
    provider_id: &str,
) -> Vec<IngestOutcome> {
    w.app
        .ingest
        .commit(
            plugin,
            channel,
            vec![IngestEvent::InboundMessage(InboundMessage {
                provider_id: provider_id.into(),
                sender: from.clone(),
                sender_name: Some("Jane".into()),
                body: body.into(),
                attachments: vec![],
                sent_at_ms: None,
                metadata: Value::Null,
            })],
        )
        .await
        .expect("ingest")
}

/// Ada takes an SMS from `number` at 0 and resolves it 5 minutes later (the
/// questions go out then); gives (Ada, the conversation).
async fn sms_handled(w: &World, number: &Identity) -> (switchboard_store::Agent, String) {
    let ada = w.available_agent("Ada", -MIN).await;
    w.at(0);
    let (conversation, _) = w.message("sms-twilio", "sms", number.clone()).await;
    w.at(10 * S);
    w.accept(&ada, &conversation).await;
    w.at(5 * MIN);
    w.resolve(&ada, &conversation).await;
    (ada, conversation)
}

async fn timeline(w: &World, conversation: &str) -> Vec<TimelineEvent> {
    w.app
        .store
        .conversation_timeline(conversation)
        .await
        .expect("timeline")
}

/// The conversation's `survey` events, as `(phase, data)`.
async fn survey_events(w: &World, conversation: &str) -> Vec<(String, Value)> {
    timeline(w, conversation)
        .await
        .into_iter()
        .filter(|e| e.kind == EventKind::Survey)
        .map(|e| (e.data["phase"].as_str().unwrap_or("").to_string(), e.data))
        .collect()
}

/// The host's own outbound messages (no author) in the conversation.
async fn host_messages(w: &World, conversation: &str) -> Vec<TimelineEvent> {
    timeline(w, conversation)
        .await
        .into_iter()
        .filter(|e| {
            e.direction == Direction::Out
                && e.kind == EventKind::Message
                && e.author_agent_id.is_none()
        })
        .collect()
}

async fn status(w: &World, conversation: &str) -> ConversationStatus {
    w.app
        .store
        .conversation(conversation)
        .await
        .expect("conversation")
        .status
}

async fn experience(w: &World, by: &str) -> Value {
    w.report(
        ReportKind::Experience,
        "2025-12-01",
        "2025-12-01",
        &[("group_by", "total"), ("by", by)],
    )
    .await
}

// ---------------------------------------------------------------- scenarios

/// CSAT then CES over SMS: both answered, with a comment; the answers are not
/// messages (the conversation stays resolved, no task); a later "thanks" is one.
async fn sms_csat_and_ces_answered(store: Store) {
    let w = with_channels(store).await;
    ask(&w, &["csat", "ces"], None).await;
    let number = phone("+15550001111");
    let (ada, conversation) = sms_handled(&w, &number).await;

    let asked = host_messages(&w, &conversation).await;
    assert_eq!(asked.len(), 1, "one question at a time: {asked:#?}");
    assert!(
        asked[0].body.starts_with("How satisfied are you"),
        "{}",
        asked[0].body
    );
    assert_eq!(asked[0].identity.as_ref(), Some(&number));
    assert_eq!(asked[0].plugin_id.as_deref(), Some("sms-twilio"));
    let events = survey_events(&w, &conversation).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, "sent");
    assert_eq!(events[0].1["survey"], "csat");
    assert_eq!(events[0].1["agent_id"], json!(ada.id));

    w.at(6 * MIN);
    let outcomes = write(&w, "sms-twilio", "sms", &number, "4 - quick and kind").await;
    assert!(
        outcomes.is_empty(),
        "an answer is not a message: {outcomes:?}"
    );
    assert_eq!(
        status(&w, &conversation).await,
        ConversationStatus::Resolved
    );
    let routing = w.app.routing.as_ref().expect("routing");
    assert!(routing.task_of_conversation(&conversation).await.is_none());
    let asked = host_messages(&w, &conversation).await;
    assert_eq!(asked.len(), 2, "the CES question follows the answer");
    assert!(asked[1].body.contains("made it easy to handle my issue"));

    w.at(7 * MIN);
    assert!(
        write(&w, "sms-twilio", "sms", &number, "seven")
            .await
            .is_empty()
    );
    let events = survey_events(&w, &conversation).await;
    let phases: Vec<(&str, &str)> = events
        .iter()
        .map(|(p, d)| (p.as_str(), d["survey"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        phases,
        [
            ("sent", "csat"),
            ("answered", "csat"),
            ("sent", "ces"),
            ("answered", "ces")
        ]
    );
    assert_eq!(events[1].1["score"], 4);
    assert_eq!(
        events[1].1["comment"], "quick and kind",
        "free text is kept"
    );
    assert_eq!(events[3].1["score"], 7);
    assert_eq!(events[3].1["comment"], Value::Null);

    // A provider retrying the answer's webhook stores nothing twice.
    let answered = timeline(&w, &conversation)
        .await
        .into_iter()
        .find(|e| e.kind == EventKind::Survey && e.direction == Direction::In)
        .expect("answer event");
    let again = write_as(
        &w,
        "sms-twilio",
        "sms",
        &number,
        "4 - quick and kind",
        answered.provider_id.as_deref().expect("provider id"),
    )
    .await;
    assert!(
        matches!(again.as_slice(), [IngestOutcome::Duplicate { .. }]),
        "{again:?}"
    );

    // With every question answered, "thanks" is a message and reopens.
    w.at(8 * MIN);
    let outcomes = write(&w, "sms-twilio", "sms", &number, "5 thanks!").await;
    assert!(matches!(
        outcomes.as_slice(),
        [IngestOutcome::Created { .. }]
    ));
    assert_ne!(
        status(&w, &conversation).await,
        ConversationStatus::Resolved
    );

    let by_channel = experience(&w, "channel").await;
    let sms = row(&by_channel, "channel", "sms");
    assert_eq!(sms["csat_sent"], 1);
    assert_eq!(sms["csat_responses"], 1);
    assert_eq!(sms["csat_response_rate"], 1.0);
    assert_eq!(sms["csat_avg"], 4.0);
    assert_eq!(sms["csat_satisfied_share"], 1.0);
    assert_eq!(sms["ces_sent"], 1);
    assert_eq!(sms["ces_responses"], 1);
    assert_eq!(sms["ces_avg"], 7.0);
    assert_eq!(sms["ces_easy_share"], 1.0);
    assert_eq!(sms["nps_sent"], 0);
    let by_agent = experience(&w, "agent").await;
    let mine = row(&by_agent, "agent", &ada.id);
    assert_eq!(mine["csat_avg"], 4.0, "the answer is the agent's");
    assert_eq!(mine["ces_avg"], 7.0);
    let by_queue = experience(&w, "queue").await;
    assert_eq!(row(&by_queue, "queue", "messaging")["csat_responses"], 1);
}

/// One webhook carrying a message from someone else, an answer, then a message: the
/// store applies the first, holds the rest at the answer, the answer is taken and the
/// message after it stored, and the outcomes stay in the order of what was stored.
async fn an_answer_between_messages_in_one_webhook(store: Store) {
    let w = with_channels(store).await;
    ask(&w, &["csat"], None).await;
    let number = phone("+15550002222");
    let other = phone("+15550003333");
    let (_, conversation) = sms_handled(&w, &number).await;
    assert_eq!(host_messages(&w, &conversation).await.len(), 1, "asked");

    w.at(6 * MIN);
    let message = |from: &Identity, body: &str| {
        IngestEvent::InboundMessage(InboundMessage {
            provider_id: uuid::Uuid::new_v4().to_string(),
            sender: from.clone(),
            sender_name: None,
            body: body.into(),
            attachments: vec![],
            sent_at_ms: None,
            metadata: Value::Null,
        })
    };
    let outcomes = w
        .app
        .ingest
        .commit(
            "sms-twilio",
            "sms",
            vec![
                message(&other, "hello, is anyone there?"),
                message(&number, "5"),
                message(&number, "and one more thing"),
            ],
        )
        .await
        .expect("ingest");
    let conversations: Vec<&str> = outcomes
        .iter()
        .map(|o| match o {
            IngestOutcome::Created {
                conversation_id, ..
            } => conversation_id.as_str(),
            other => panic!("not stored as a message: {other:?}"),
        })
        .collect();
    assert_eq!(conversations.len(), 2, "{outcomes:?}");
    assert_ne!(conversations[0], conversation, "the other customer's");
    assert_eq!(
        conversations[1], conversation,
        "the message after the answer"
    );
    let events = survey_events(&w, &conversation).await;
    assert_eq!(
        events.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
        ["sent", "answered"]
    );
    assert_eq!(events[1].1["score"], 5);
    let bodies: Vec<String> = timeline(&w, &conversation)
        .await
        .into_iter()
        .filter(|e| e.kind == EventKind::Message && e.direction == Direction::In)
        .map(|e| e.body)
        .collect();
    assert!(
        bodies.contains(&"and one more thing".to_string()) && !bodies.contains(&"5".to_string()),
        "{bodies:?}"
    );
    assert_ne!(
        status(&w, &conversation).await,
        ConversationStatus::Resolved,
        "the message after the answer reopens"
    );
}

/// Telegram: a reply that is not an answer stays a message (it reopens the
/// conversation and closes the survey); an SMS customer who opted out is not asked.
async fn non_answers_and_no_consent(store: Store) {
    let w = with_channels(store).await;
    ask(&w, &["csat"], None).await;
    let bo = w.available_agent("Bo", -MIN).await;
    let chat = telegram("777001");
    w.at(0);
    let (first, _) = w.message("telegram-bot", "telegram", chat.clone()).await;
    w.at(5 * S);
    w.accept(&bo, &first).await;
    w.at(2 * MIN);
    w.resolve(&bo, &first).await;
    assert_eq!(host_messages(&w, &first).await.len(), 1);

    w.at(3 * MIN);
    let outcomes = write(
        &w,
        "telegram-bot",
        "telegram",
        &chat,
        "My parcel never came",
    )
    .await;
    assert!(matches!(
        outcomes.as_slice(),
        [IngestOutcome::Created { .. }]
    ));
    assert_ne!(status(&w, &first).await, ConversationStatus::Resolved);
    w.task_on(&first, "telegram").await;
    w.at(3 * MIN + 5 * S);
    w.accept(&bo, &first).await;
    // The survey is closed: a number now is a message too.
    w.at(4 * MIN);
    let outcomes = write(&w, "telegram-bot", "telegram", &chat, "5").await;
    assert!(matches!(
        outcomes.as_slice(),
        [IngestOutcome::Created { .. }]
    ));
    let surveys = w
        .app
        .surveys
        .of_conversation(&first)
        .await
        .expect("surveys");
    assert_eq!(surveys.len(), 1);
    assert_eq!(surveys[0].status, "dropped");
    assert_eq!(survey_events(&w, &first).await.len(), 1, "sent only");

    // An SMS customer texts STOP before the resolve.
    let number = phone("+15550002222");
    w.at(10 * MIN);
    let (second, _) = w.message("sms-twilio", "sms", number.clone()).await;
    w.at(10 * MIN + 5 * S);
    w.accept(&bo, &second).await;
    w.app
        .ingest
        .commit(
            "sms-twilio",
            "sms",
            vec![IngestEvent::Consent(ConsentEvent {
                provider_id: "stop-1".into(),
                identity: number.clone(),
                action: ConsentAction::OptOut,
                keyword: Some("STOP".into()),
            })],
        )
        .await
        .expect("consent");
    w.at(12 * MIN);
    w.resolve(&bo, &second).await;
    assert!(
        host_messages(&w, &second).await.is_empty(),
        "nothing to an opted-out number"
    );
    let events = survey_events(&w, &second).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, "not_sent");
    assert_eq!(events[0].1["reason"], "no_consent");
    assert!(
        events[0].1["why"]
            .as_str()
            .unwrap()
            .contains("opted out of sms")
    );

    let by_channel = experience(&w, "channel").await;
    let tg = row(&by_channel, "channel", "telegram");
    assert_eq!(tg["csat_sent"], 1);
    assert_eq!(tg["csat_responses"], 0);
    assert_eq!(tg["csat_response_rate"], 0.0);
    assert_eq!(tg["csat_avg"], Value::Null);
    let rows = by_channel["rows"].as_array().expect("rows");
    assert!(
        rows.iter()
            .filter(|r| r["channel"] == "sms")
            .all(|r| r["csat_sent"] == 0),
        "a survey not sent is not counted as sent: {by_channel:#}"
    );
    w.app.store.rebuild_reports().await.expect("rebuild");
    assert_eq!(experience(&w, "channel").await, by_channel);
}

/// WhatsApp, resolved 25 hours after the customer wrote: without a template the
/// survey is recorded as not sent, with why; with one, the template goes and its
/// answer counts.
async fn whatsapp_outside_the_window(store: Store) {
    let w = with_channels(store).await;
    ask(&w, &["csat"], None).await;
    let cy = w.available_agent("Cy", -MIN).await;
    let (c, d) = (whatsapp("+15550003333"), whatsapp("+15550004444"));
    w.at(0);
    let (first, _) = w.message("whatsapp-cloud", "whatsapp", c.clone()).await;
    let (second, _) = w.message("whatsapp-cloud", "whatsapp", d.clone()).await;
    w.at(10 * S);
    w.accept(&cy, &first).await;
    w.accept(&cy, &second).await;

    w.at(25 * 60 * MIN);
    w.resolve(&cy, &first).await;
    assert!(host_messages(&w, &first).await.is_empty());
    let events = survey_events(&w, &first).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, "not_sent");
    assert_eq!(events[0].1["reason"], "window_closed");
    let why = events[0].1["why"].as_str().unwrap();
    assert!(
        why.contains("closed at 2025-12-02T09:00:00")
            && why.contains("queue messaging has no survey template"),
        "{why}"
    );

    ask(&w, &["csat"], Some("csat_survey")).await;
    w.at(25 * 60 * MIN + MIN);
    w.resolve(&cy, &second).await;
    let asked = host_messages(&w, &second).await;
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].data["template"]["name"], "csat_survey");
    assert_eq!(asked[0].data["template"]["language"], "en_US");
    let events = survey_events(&w, &second).await;
    assert_eq!(events[0].0, "sent");
    assert_eq!(events[0].1["template"], "csat_survey");

    w.at(26 * 60 * MIN);
    assert!(
        write(&w, "whatsapp-cloud", "whatsapp", &d, "⭐⭐⭐⭐⭐")
            .await
            .is_empty()
    );
    let events = survey_events(&w, &second).await;
    assert_eq!(events[1].0, "answered");
    assert_eq!(events[1].1["score"], 5);

    let by_channel = experience(&w, "channel").await;
    let wa = row(&by_channel, "channel", "whatsapp");
    assert_eq!(wa["csat_sent"], 1, "the one not sent does not count");
    assert_eq!(wa["csat_responses"], 1);
    assert_eq!(wa["csat_response_rate"], 1.0);
    assert_eq!(wa["csat_avg"], 5.0);

    // Rebuilding the facts from the timeline gives the same figures.
    w.app.store.rebuild_reports().await.expect("rebuild");
    assert_eq!(experience(&w, "channel").await, by_channel);
}

/// E-mail: one message with a link to the public page, which takes both answers and
/// a comment; a wrong score is refused with why, a forged or expired link opens nothing.
async fn email_link_answered(store: Store) {
    let w = with_channels(store).await;
    install(&w, "email", &[("address", "support@example.test")]).await;
    ask_in(&w, "email", &["csat", "ces"], None).await;
    let di = w.available_agent("Di", -MIN).await;
    let jane = Identity::from_normalized("email", "jane@example.test");
    w.at(0);
    let (conversation, _) = w.message("email", "email", jane.clone()).await;
    w.at(10 * S);
    w.accept(&di, &conversation).await;
    w.at(30 * MIN);
    w.resolve(&di, &conversation).await;

    let asked = host_messages(&w, &conversation).await;
    assert_eq!(asked.len(), 1, "one e-mail for both questions");
    let body = &asked[0].body;
    let start = body.find("http://127.0.0.1:9/survey/").expect("link") + 26;
    let token: String = body[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    assert!(body.contains("open until 2025-12-04T09:30:00"), "{body}");
    let events = survey_events(&w, &conversation).await;
    assert_eq!(events.len(), 2);
    assert!(
        events
            .iter()
            .all(|(phase, d)| phase == "sent" && d["mode"] == "link")
    );

    let surveys = &w.app.surveys;
    let page = surveys.page(&token).await.expect("page");
    assert_eq!(page.questions.len(), 2);
    assert!(!page.done);
    // The signature's last digit changed (whatever it was).
    let last = if token.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{last}", &token[..token.len() - 1]);
    assert_ne!(forged, token);
    let err = surveys.page(&forged).await.unwrap_err();
    assert!(err.message().contains("not valid"), "{}", err.message());
    let other = token.replacen(&conversation, "someone-else", 1);
    assert!(
        surveys.page(&other).await.is_err(),
        "the signature covers the conversation"
    );

    w.at(40 * MIN);
    let form = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let err = surveys
        .answer_page(&token, &form(&[("csat", "9"), ("ces", "x")]))
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        "CSAT: choose a score from 1 to 5; CES: choose a score from 1 to 7"
    );
    let err = surveys.answer_page(&token, &form(&[])).await.unwrap_err();
    assert_eq!(err.message(), "choose a score before sending");
    let page = surveys
        .answer_page(
            &token,
            &form(&[("csat", "5"), ("ces", "6"), ("comment", " Quick, thanks ")]),
        )
        .await
        .expect("answer");
    assert!(page.done);
    let events = survey_events(&w, &conversation).await;
    let answers: Vec<&Value> = events
        .iter()
        .filter(|(p, _)| p == "answered")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(answers.len(), 2);
    assert_eq!(answers[0]["survey"], "csat");
    assert_eq!(answers[0]["score"], 5);
    assert_eq!(answers[0]["comment"], "Quick, thanks");
    assert_eq!(answers[1]["score"], 6);
    assert_eq!(
        status(&w, &conversation).await,
        ConversationStatus::Resolved
    );

    let by_channel = experience(&w, "channel").await;
    let email = row(&by_channel, "channel", "email");
    assert_eq!(email["csat_sent"], 1);
    assert_eq!(email["csat_avg"], 5.0);
    assert_eq!(email["ces_avg"], 6.0);
    assert_eq!(email["ces_response_rate"], 1.0);

    // After the survey closes, the link says so.
    w.at(4 * DAY);
    let err = surveys.page(&token).await.unwrap_err();
    assert_eq!(err.code(), "survey_expired");
}

/// Webchat: the rating card goes to the visitor's sockets and stays open until
/// answered; a wrong score is refused, the answer and comment are kept.
async fn webchat_card_answered(store: Store) {
    let w = World::start(store, 7 * DAY).await;
    ask_in(&w, "chat", &["csat"], None).await;
    let ed = w.available_agent("Ed", -MIN).await;
    let me = support::visitor("v-card");
    let mut feed = w.app.events.subscribe(None);
    w.at(0);
    let (conversation, _) = w.message("webchat", "webchat", me.clone()).await;
    w.at(10 * S);
    w.accept(&ed, &conversation).await;
    w.at(3 * MIN);
    w.resolve(&ed, &conversation).await;

    // The card was pushed to the visitor.
    let pushed = loop {
        let delivery = tokio::time::timeout(std::time::Duration::from_secs(5), feed.next())
            .await
            .expect("a card for the visitor");
        if let Delivery::Event(event) = delivery
            && event.kind == "webchat.visitor"
            && event.data["type"] == "survey"
        {
            break event;
        }
    };
    assert_eq!(
        pushed.audience,
        switchboard_app::Audience::Visitor("v-card".into())
    );
    let card = &pushed.data["survey"];
    assert_eq!(card["questions"][0]["kind"], "csat");
    assert_eq!(card["questions"][0]["high"], 5);
    assert_eq!(card["questions"][0]["high_label"], "Very satisfied");
    assert!(
        host_messages(&w, &conversation).await.is_empty(),
        "a card, not a message"
    );

    let surveys = &w.app.surveys;
    assert_eq!(
        surveys.card(&me).await.unwrap()["questions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let form = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let err = surveys
        .answer_card(&me, &form(&[("csat", "0")]))
        .await
        .unwrap_err();
    assert_eq!(err.message(), "CSAT: choose a score from 1 to 5");
    w.at(4 * MIN);
    let left = surveys
        .answer_card(&me, &form(&[("csat", "2"), ("comment", "Took long")]))
        .await
        .expect("answer");
    assert_eq!(left["questions"], json!([]));
    let events = survey_events(&w, &conversation).await;
    assert_eq!(events[1].0, "answered");
    assert_eq!(events[1].1["score"], 2);
    assert_eq!(events[1].1["comment"], "Took long");
    let err = surveys
        .answer_card(&me, &form(&[("csat", "5")]))
        .await
        .unwrap_err();
    assert!(err.message().contains("no survey"), "answered once");

    let by_channel = experience(&w, "channel").await;
    let chat = row(&by_channel, "channel", "webchat");
    assert_eq!(chat["csat_sent"], 1);
    assert_eq!(chat["csat_avg"], 2.0);
    assert_eq!(chat["csat_satisfied_share"], 0.0);
}

/// One reminder at most, after the queue's delay: SMS gets the question again; an
/// answer after it still counts; nothing is reminded twice or after an answer.
async fn one_reminder(store: Store) {
    let w = with_channels(store).await;
    w.app
        .surveys
        .set_settings(
            "admin",
            "messaging",
            SurveySettingsInput {
                surveys: vec!["csat".into()],
                reminder_secs: Some(3600),
                ..Default::default()
            },
        )
        .await
        .expect("settings");
    let fay = w.available_agent("Fay", -MIN).await;
    let (one, two) = (phone("+15550005555"), phone("+15550006666"));
    w.at(0);
    let (first, _) = w.message("sms-twilio", "sms", one.clone()).await;
    let (second, _) = w.message("sms-twilio", "sms", two.clone()).await;
    w.at(10 * S);
    w.accept(&fay, &first).await;
    w.accept(&fay, &second).await;
    w.at(MIN);
    w.resolve(&fay, &first).await;
    w.resolve(&fay, &second).await;
    // The second customer answers at once: no reminder for them.
    w.at(2 * MIN);
    assert!(write(&w, "sms-twilio", "sms", &two, "5").await.is_empty());

    w.at(30 * MIN);
    assert_eq!(
        w.app.surveys.remind_due().await.expect("remind"),
        0,
        "not yet"
    );
    w.at(MIN + 60 * MIN);
    assert_eq!(w.app.surveys.remind_due().await.expect("remind"), 1);
    let asked = host_messages(&w, &first).await;
    assert_eq!(asked.len(), 2);
    assert!(
        asked[1].body.starts_with("A quick reminder: How satisfied"),
        "{}",
        asked[1].body
    );
    assert_eq!(host_messages(&w, &second).await.len(), 1);
    w.at(5 * 60 * MIN);
    assert_eq!(
        w.app.surveys.remind_due().await.expect("remind"),
        0,
        "one at most"
    );

    w.at(6 * 60 * MIN);
    assert!(
        write(&w, "sms-twilio", "sms", &one, "3 ok")
            .await
            .is_empty()
    );
    let by_channel = experience(&w, "channel").await;
    let sms = row(&by_channel, "channel", "sms");
    assert_eq!(sms["csat_sent"], 2, "a reminder is not a second survey");
    assert_eq!(sms["csat_responses"], 2);
    assert_eq!(sms["csat_avg"], 4.0);
    assert_eq!(sms["csat_satisfied_share"], 0.5);
}

/// A question left unanswered past `expire_secs` is closed as `expired` (with why)
/// by the worker's sweep; an open one is left alone, and a late score is an
/// ordinary message.
async fn unanswered_questions_expire(store: Store) {
    let w = with_channels(store).await;
    w.app
        .surveys
        .set_settings(
            "admin",
            "messaging",
            SurveySettingsInput {
                surveys: vec!["csat".into(), "ces".into()],
                expire_secs: Some(3600),
                ..Default::default()
            },
        )
        .await
        .expect("settings");
    let fay = w.available_agent("Fay", -MIN).await;
    let customer = phone("+15550007777");
    w.at(0);
    let (conversation, _) = w.message("sms-twilio", "sms", customer.clone()).await;
    w.at(10 * S);
    w.accept(&fay, &conversation).await;
    w.at(MIN);
    w.resolve(&fay, &conversation).await;
    let states = |w: &World| {
        let store = w.app.store.clone();
        let conversation = conversation.clone();
        async move {
            store
                .conversation_surveys(&conversation)
                .await
                .expect("surveys")
                .into_iter()
                .map(|s| (s.kind, s.status, s.reason))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        states(&w).await,
        vec![
            ("csat".to_string(), "sent".to_string(), None),
            ("ces".to_string(), "waiting".to_string(), None)
        ]
    );
    w.at(MIN + 59 * MIN);
    assert_eq!(
        w.app.surveys.expire_due().await.expect("expire"),
        0,
        "not yet"
    );
    w.at(MIN + 60 * MIN);
    assert_eq!(w.app.surveys.expire_due().await.expect("expire"), 2);
    let why = Some("no answer before the survey expired".to_string());
    assert_eq!(
        states(&w).await,
        vec![
            ("csat".to_string(), "expired".to_string(), why.clone()),
            ("ces".to_string(), "expired".to_string(), why)
        ]
    );
    assert_eq!(w.app.surveys.expire_due().await.expect("expire"), 0, "once");
    assert_eq!(w.app.surveys.remind_due().await.expect("remind"), 0);
    // A score now is a message, not an answer.
    assert!(
        !write(&w, "sms-twilio", "sms", &customer, "5")
            .await
            .is_empty()
    );
    assert!(
        survey_events(&w, &conversation)
            .await
            .iter()
            .all(|(phase, _)| phase != "answered")
    );
}

/// Settings: what an admin gives is checked, and shown back.
async fn settings_round_trip(store: Store) {
    let w = World::start(store, 7 * DAY).await;
    let shown = w.app.surveys.settings("messaging").await.expect("settings");
    assert_eq!(
        shown["surveys"],
        json!([]),
        "a queue asks nothing by default"
    );
    let err = w
        .app
        .surveys
        .set_settings(
            "admin",
            "messaging",
            SurveySettingsInput {
                surveys: vec!["csat".into(), "xyz".into()],
                reminder_secs: Some(5),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        err.message().contains("unknown survey \"xyz\""),
        "{}",
        err.message()
    );
    assert!(
        err.message().contains("`reminder_secs` is 5"),
        "{}",
        err.message()
    );
    let err = w.app.surveys.settings("no such queue!").await.unwrap_err();
    assert!(err.message().contains("is not a queue name"));
    ask(&w, &["nps", "csat"], Some("csat_survey")).await;
    let shown = w.app.surveys.settings("messaging").await.expect("settings");
    assert_eq!(shown["surveys"], json!(["nps", "csat"]));
    assert_eq!(shown["template"]["name"], "csat_survey");
    let all = w.app.surveys.all_settings().await.expect("all");
    assert_eq!(all["queues"][0]["queue_id"], "messaging");
    assert_eq!(
        shown["voice"], false,
        "calls are not surveyed unless offered"
    );

    // Offering the questions to callers (migration 0012's column) is kept and shown.
    let err = w
        .app
        .surveys
        .set_settings(
            "admin",
            "voice",
            SurveySettingsInput {
                voice: true,
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        err.message().contains("`voice` offers the questions"),
        "{}",
        err.message()
    );
    w.app
        .surveys
        .set_settings(
            "admin",
            "voice",
            SurveySettingsInput {
                surveys: vec!["csat".into(), "nps".into()],
                voice: true,
                ..Default::default()
            },
        )
        .await
        .expect("voice settings");
    let shown = w.app.surveys.settings("voice").await.expect("settings");
    assert_eq!(
        (shown["voice"].as_bool(), shown["surveys"].clone()),
        (Some(true), json!(["csat", "nps"]))
    );
    let all = w.app.surveys.all_settings().await.expect("all");
    let voice = all["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["queue_id"] == "voice")
        .cloned();
    assert_eq!(voice.map(|q| q["voice"].clone()), Some(json!(true)));
    ask_in(&w, "voice", &["csat"], None).await;
    let shown = w.app.surveys.settings("voice").await.expect("settings");
    assert_eq!(shown["voice"], false, "turned off again");
}

both_backends!(
    sms_csat_and_ces_answered,
    an_answer_between_messages_in_one_webhook,
    non_answers_and_no_consent,
    whatsapp_outside_the_window,
    email_link_answered,
    webchat_card_answered,
    one_reminder,
    unanswered_questions_expire,
    settings_round_trip,
);
