//! The first vertical slice, end to end: a customer texts in through the real
//! sms-twilio connector, the contact, conversation and timeline appear, an
//! agent replies, the stand-in Twilio receives a correct API call, and a
//! status callback marks the reply delivered. Runs on SQLite and PostgreSQL.

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use switchboard_e2e::*;

async fn full_journey(options: Options) {
    let twilio = FakeTwilio::start().await;
    let server = Server::start(options, &twilio).await;

    let (status, body) = server
        .sms("SMin0001", "+1 (555) 123-4567", "Hi, my invoice is wrong")
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<Response"), "Twilio expects TwiML: {body}");

    let contact = server
        .contact_by("phone:+15551234567")
        .await
        .expect("contact created");
    let contact_id = contact["id"].as_str().unwrap().to_string();
    let (_, timeline) = server
        .get(&format!("/api/v1/contacts/{contact_id}/timeline"))
        .await;
    let events = timeline["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{timeline}");
    assert_eq!(events[0]["body"], "Hi, my invoice is wrong");
    assert_eq!(events[0]["direction"], "in");
    assert_eq!(events[0]["channel"], "sms");

    let (_, open) = server.get("/api/v1/conversations?status=open").await;
    let conversations = open["conversations"].as_array().unwrap();
    assert_eq!(conversations.len(), 1, "{open}");
    let conversation_id = conversations[0]["id"].as_str().unwrap().to_string();

    let (status, reply) = server
        .post(
            &format!("/api/v1/conversations/{conversation_id}/messages"),
            json!({"body": "Sorry about that, Jane: fixing it now."}),
        )
        .await;
    assert_eq!(status, 202, "{reply}");

    let sent = twilio.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(sent.len(), 1, "the reply reached the provider");
    let req = &sent[0];
    assert_eq!(
        req.path,
        format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json")
    );
    let expected_auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT_SID}:{AUTH_TOKEN}"))
    );
    assert_eq!(req.authorization.as_deref(), Some(expected_auth.as_str()));
    assert_eq!(req.field("To"), Some("+15551234567"));
    assert_eq!(req.field("From"), Some(FROM_NUMBER));
    assert_eq!(
        req.field("Body"),
        Some("Sorry about that, Jane: fixing it now.")
    );
    let callback = req
        .field("StatusCallback")
        .expect("status callback URL")
        .to_string();
    assert!(callback.starts_with(&server.base), "{callback}");

    // Wait for the worker to record the provider id, then deliver a status callback.
    let provider_sid = "SMout0001";
    let outbound = server
        .eventually(Duration::from_secs(10), || async {
            let (_, c) = server
                .get(&format!("/api/v1/conversations/{conversation_id}"))
                .await;
            c["timeline"]
                .as_array()?
                .iter()
                .find(|e| e["direction"] == "out" && e["provider_id"] == provider_sid)
                .cloned()
        })
        .await
        .expect("the outbound event carries the provider id");
    assert_eq!(
        outbound["delivery_status"], "queued",
        "Twilio answered queued: {outbound}"
    );

    let callback_path = callback.trim_start_matches(&format!("{}/hooks/sms-twilio/", server.base));
    let (status, _) = server
        .twilio_webhook(
            callback_path,
            &[
                ("MessageSid", provider_sid),
                ("MessageStatus", "delivered"),
                ("AccountSid", ACCOUNT_SID),
                ("To", "+15551234567"),
                ("From", FROM_NUMBER),
            ],
        )
        .await;
    assert_eq!(status, 200);
    let (_, c) = server
        .get(&format!("/api/v1/conversations/{conversation_id}"))
        .await;
    let outbound = c["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["direction"] == "out")
        .unwrap()
        .clone();
    assert_eq!(outbound["delivery_status"], "delivered", "{outbound}");

    // The auth token is a secret: never in API output, never in the log.
    let (_, plugins) = server.get("/api/v1/plugins").await;
    assert!(plugins.to_string().contains("sms-twilio"));
    assert!(
        !plugins.to_string().contains(AUTH_TOKEN),
        "secret leaked by the API"
    );
    assert!(
        !server.log().contains(AUTH_TOKEN),
        "secret leaked into the log"
    );

    let metrics = server
        .http
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap();
    let metrics = metrics.text().await.unwrap();
    assert!(
        metrics.contains("switchboard_webhooks_total{plugin=\"sms-twilio\",outcome=\"ok\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn sms_journey_on_sqlite() {
    full_journey(Options::default()).await;
}

#[tokio::test]
async fn sms_journey_on_postgres() {
    let db = PgDatabase::create().await;
    full_journey(Options {
        database_url: Some(db.url.clone()),
        ..Options::default()
    })
    .await;
}

#[tokio::test]
async fn forged_or_missing_signature_is_refused_and_nothing_is_stored() {
    let twilio = FakeTwilio::start().await;
    let server = Server::start(Options::default(), &twilio).await;
    let url = format!("{}/hooks/sms-twilio/inbound", server.base);
    let params = [
        ("MessageSid", "SMforged"),
        ("From", "+15557654321"),
        ("To", FROM_NUMBER),
        ("Body", "transfer all my money"),
    ];
    let forged = twilio_signature("not-the-token", &url, &params);
    let (status, body) = server.raw_webhook(&url, &params, Some(&forged)).await;
    assert_eq!(status, 403, "{body}");
    let err: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(err["error"]["code"], "forbidden");
    let (status, _) = server.raw_webhook(&url, &params, None).await;
    assert_eq!(status, 403);
    // A body tampered with after signing is refused too.
    let good = twilio_signature(AUTH_TOKEN, &url, &params);
    let tampered = [params[0], params[1], params[2], ("Body", "something else")];
    let (status, _) = server.raw_webhook(&url, &tampered, Some(&good)).await;
    assert_eq!(status, 403);

    assert!(server.contact_by("phone:+15557654321").await.is_none());
    let (_, all) = server.get("/api/v1/conversations").await;
    assert_eq!(all["conversations"].as_array().unwrap().len(), 0, "{all}");
}

#[tokio::test]
async fn the_same_webhook_twice_is_stored_once() {
    let twilio = FakeTwilio::start().await;
    let server = Server::start(Options::default(), &twilio).await;
    for _ in 0..3 {
        let (status, _) = server.sms("SMdup0001", "+15550102030", "hello?").await;
        assert_eq!(status, 200, "a retried webhook is acknowledged again");
    }
    let contact = server.contact_by("phone:+15550102030").await.unwrap();
    let (_, timeline) = server
        .get(&format!(
            "/api/v1/contacts/{}/timeline",
            contact["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        timeline["events"].as_array().unwrap().len(),
        1,
        "{timeline}"
    );
}

#[tokio::test]
async fn provider_down_then_back_is_retried_and_delivered() {
    let twilio = FakeTwilio::start().await;
    twilio.fail_next(2);
    let options = Options {
        env: vec![("SWITCHBOARD_OUTBOX_RETRY_BASE_MS".into(), "100".into())],
        ..Options::default()
    };
    let server = Server::start(options, &twilio).await;
    server
        .sms("SMretry01", "+15550112233", "are you there")
        .await;
    let (_, open) = server.get("/api/v1/conversations?status=open").await;
    let id = open["conversations"][0]["id"].as_str().unwrap().to_string();
    let (status, _) = server
        .post(
            &format!("/api/v1/conversations/{id}/messages"),
            json!({"body": "yes!"}),
        )
        .await;
    assert_eq!(status, 202);

    let sent = twilio.wait_for(3, Duration::from_secs(20)).await;
    assert_eq!(sent.len(), 3, "two failures, then success");
    assert!(sent.iter().all(|r| r.field("Body") == Some("yes!")));
    let row = server
        .eventually(Duration::from_secs(10), || async {
            let (_, o) = server.get("/api/v1/outbox").await;
            o["outbox"]
                .as_array()?
                .iter()
                .find(|r| r["status"] == "sent")
                .cloned()
        })
        .await
        .expect("outbox row marked sent");
    assert_eq!(row["attempts"], 2, "{row}");
}

#[tokio::test]
async fn provider_refusing_for_good_ends_in_a_visible_dead_letter() {
    let twilio = FakeTwilio::start().await;
    twilio.fail_next(100);
    let options = Options {
        env: vec![
            ("SWITCHBOARD_OUTBOX_RETRY_BASE_MS".into(), "50".into()),
            ("SWITCHBOARD_OUTBOX_MAX_ATTEMPTS".into(), "3".into()),
        ],
        ..Options::default()
    };
    let server = Server::start(options, &twilio).await;
    server.sms("SMdead001", "+15550445566", "hi").await;
    let (_, open) = server.get("/api/v1/conversations?status=open").await;
    let id = open["conversations"][0]["id"].as_str().unwrap().to_string();
    server
        .post(
            &format!("/api/v1/conversations/{id}/messages"),
            json!({"body": "hello"}),
        )
        .await;
    let dead = server
        .eventually(Duration::from_secs(20), || async {
            let (_, o) = server.get("/api/v1/outbox?status=dead").await;
            o["outbox"].as_array()?.first().cloned()
        })
        .await
        .expect("a dead letter");
    assert!(
        dead["last_error"].as_str().unwrap().contains("3 attempts"),
        "{dead}"
    );
    assert_eq!(twilio.requests().len(), 3);

    // Requeue once the provider is back.
    twilio.fail_next(0);
    let (status, _) = server
        .post(
            &format!("/api/v1/outbox/{}/retry", dead["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(twilio.wait_for(4, Duration::from_secs(10)).await.len(), 4);
}

#[tokio::test]
async fn one_customer_on_two_numbers_and_telegram_stays_in_one_conversation() {
    let twilio = FakeTwilio::start().await;
    let server = Server::start(Options::default(), &twilio).await;
    server
        .sms("SMmulti01", "+15551230001", "my order never came")
        .await;
    let contact = server.contact_by("phone:+15551230001").await.unwrap();
    let contact_id = contact["id"].as_str().unwrap().to_string();

    // The agent links the customer's second number and Telegram chat.
    for (kind, value) in [("phone", "+1 555 123 0002"), ("telegram", "4242")] {
        let (status, v) = server
            .post(
                &format!("/api/v1/contacts/{contact_id}/identities"),
                json!({"kind": kind, "value": value}),
            )
            .await;
        assert_eq!(status, 201, "{v}");
    }
    server
        .sms("SMmulti02", "+15551230002", "writing from my work phone")
        .await;
    assert_eq!(
        server.telegram(1, 4242, 7, "and now from Telegram").await,
        200
    );

    let (_, all) = server.get("/api/v1/conversations").await;
    let conversations = all["conversations"].as_array().unwrap();
    assert_eq!(
        conversations.len(),
        1,
        "one conversation across numbers and channels: {all}"
    );
    assert_eq!(conversations[0]["last_channel"], "telegram");

    let (_, timeline) = server
        .get(&format!("/api/v1/contacts/{contact_id}/timeline"))
        .await;
    let kinds: Vec<_> = timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["channel"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("message".to_string(), "sms".to_string()),
            ("message".to_string(), "sms".to_string()),
            ("channel_switch".to_string(), "telegram".to_string()),
            ("message".to_string(), "telegram".to_string()),
        ],
        "{timeline}"
    );

    // The reply goes out on the conversation's current channel unless asked otherwise.
    let id = conversations[0]["id"].as_str().unwrap();
    let (status, reply) = server
        .post(
            &format!("/api/v1/conversations/{id}/messages"),
            json!({"body": "on it", "channel": "sms"}),
        )
        .await;
    assert_eq!(status, 202, "{reply}");
    let sent = twilio.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(
        sent[0].field("To"),
        Some("+15551230002"),
        "the most recently linked number"
    );
}

#[tokio::test]
async fn stop_opts_out_and_the_host_refuses_to_send() {
    let twilio = FakeTwilio::start().await;
    let server = Server::start(Options::default(), &twilio).await;
    server.sms("SMstop001", "+15550009999", "STOP").await;
    let contact = server.contact_by("phone:+15550009999").await.unwrap();
    assert!(
        contact["consents"].to_string().contains("opted_out"),
        "consent is visible on the contact: {contact}"
    );
    let (_, open) = server.get("/api/v1/conversations").await;
    let id = open["conversations"][0]["id"].as_str().unwrap().to_string();
    let (status, err) = server
        .post(
            &format!("/api/v1/conversations/{id}/messages"),
            json!({"body": "promo!"}),
        )
        .await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["error"]["code"], "opted_out");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(twilio.requests().is_empty(), "nothing reached the provider");

    server.sms("SMstart01", "+15550009999", "START").await;
    let (status, _) = server
        .post(
            &format!("/api/v1/conversations/{id}/messages"),
            json!({"body": "welcome back"}),
        )
        .await;
    assert_eq!(status, 202);
}

#[tokio::test]
async fn api_routes_need_a_token() {
    let twilio = FakeTwilio::start().await;
    let server = Server::start(Options::default(), &twilio).await;
    for path in [
        "/api/v1/contacts?identity=phone:+15551234567",
        "/api/v1/conversations",
        "/api/v1/plugins",
        "/api/v1/outbox",
        "/api/v1/agents",
        "/api/v1/agents/me/conversations",
        "/api/v1/wallboard",
        "/api/v1/dispositions",
        "/api/v1/reports/context-transfer",
        "/api/v1/conversations/x/reply-channels",
        "/api/v1/conversations/x/handoff-draft",
        "/api/v1/contacts/x/profile",
    ] {
        let r = server
            .http
            .get(format!("{}{path}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path}");
        let r = server
            .http
            .get(format!("{}{path}", server.base))
            .bearer_auth("made-up-token")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path}");
    }
    for path in [
        "/api/v1/agents",
        "/api/v1/conversations/x/notes",
        "/api/v1/conversations/x/read",
        "/api/v1/conversations/x/resolve",
        "/api/v1/conversations/x/typing",
        "/api/v1/tasks/x/transfer",
    ] {
        let r = server
            .http
            .post(format!("{}{path}", server.base))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "POST {path}");
    }
    let r = server
        .http
        .post(format!("{}/api/v1/auth/login", server.base))
        .json(&json!({"email": ADMIN_EMAIL, "password": "wrong"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let health = server
        .http
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}
