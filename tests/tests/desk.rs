//! The agent desk's API end to end, on the real binary: a customer chats on the
//! webchat, an agent accepts and replies, the same customer texts from a number on
//! their contact and lands in the same conversation, a warm transfer carries its
//! context to a second agent, the conversation is resolved with a disposition, and the
//! wallboard and reports count it all. Plus the webchat's bad-input paths and the
//! role checks of the supervisor and admin routes.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use switchboard_e2e::*;

const SAM: (&str, &str) = ("sam@e2e.test", "sam-password-123");
const ALEX: (&str, &str) = ("alex@e2e.test", "alex-password-123");

struct Desk {
    server: Server,
    sam: String,
    alex: String,
    alex_id: String,
}

async fn desk() -> (Desk, FakeTwilio) {
    let twilio = FakeTwilio::start().await;
    let server = Server::start(Options::default(), &twilio).await;
    for (email, password, name) in [(SAM.0, SAM.1, "Sam"), (ALEX.0, ALEX.1, "Alex")] {
        let (status, v) = server
            .post(
                "/api/v1/agents",
                json!({"email": email, "password": password, "name": name, "role": "agent",
                    "skills": [["billing", 3]]}),
            )
            .await;
        assert_eq!(status, 201, "{v}");
        assert!(v["agent"].get("password_hash").is_none());
    }
    let (sam, _) = server.login(SAM.0, SAM.1).await;
    let (alex, alex_id) = server.login(ALEX.0, ALEX.1).await;
    (
        Desk {
            server,
            sam,
            alex,
            alex_id,
        },
        twilio,
    )
}

impl Desk {
    async fn call(&self, token: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
        self.server.call(token, method, path, body).await
    }

    async fn ok(&self, token: &str, method: &str, path: &str, body: Value) -> Value {
        let (status, v) = self.call(token, method, path, body).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {v}"
        );
        v
    }

    async fn offers(&self, token: &str, n: usize) -> Vec<Value> {
        self.server
            .eventually(Duration::from_secs(10), || async {
                let (_, v) = self
                    .call(token, "GET", "/api/v1/agents/me/offers", json!(null))
                    .await;
                let offers = v["offers"].as_array()?.clone();
                (offers.len() >= n).then_some(offers)
            })
            .await
            .unwrap_or_else(|| panic!("expected {n} offer(s)"))
    }

    async fn visitor(&self, body: Value) -> (u16, Value) {
        let r = self
            .server
            .http
            .post(format!("{}/webchat/v1/sessions", self.server.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn chat(&self, token: &str, client_id: &str, body: &str) -> (u16, Value) {
        let r = self
            .server
            .http
            .post(format!("{}/webchat/v1/messages", self.server.base))
            .bearer_auth(token)
            .json(&json!({"client_id": client_id, "body": body}))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn transcript(&self, token: &str) -> Vec<Value> {
        let r = self
            .server
            .http
            .get(format!("{}/webchat/v1/transcript", self.server.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        v["messages"].as_array().unwrap().clone()
    }
}

fn kinds(timeline: &Value) -> Vec<String> {
    timeline
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn one_customer_from_webchat_to_sms_with_a_warm_transfer() {
    let (d, twilio) = desk().await;
    d.ok(
        &d.sam,
        "PUT",
        "/api/v1/agents/me/presence",
        json!({"status": "available"}),
    )
    .await;

    // The customer starts a chat on the widget.
    let (status, v) = d
        .visitor(json!({"name": "Jane Doe", "email": "Jane@Example.com"}))
        .await;
    assert_eq!(status, 201, "{v}");
    let visitor = v["token"].as_str().unwrap().to_string();
    let ws_url = format!(
        "{}/webchat/v1/ws?token={visitor}",
        d.server.base.replace("http://", "ws://")
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
    let (status, v) = d
        .chat(&visitor, "c1", "I was charged twice for my May invoice")
        .await;
    assert_eq!(status, 202, "{v}");
    // Sent twice (a retry after a lost answer): stored once.
    assert_eq!(
        d.chat(&visitor, "c1", "I was charged twice for my May invoice")
            .await
            .0,
        202
    );

    // The automatic greeting tells the wait.
    let greeting = d
        .server
        .eventually(Duration::from_secs(5), || async {
            d.transcript(&visitor)
                .await
                .into_iter()
                .find(|m| m["auto"] == true)
        })
        .await
        .expect("an automatic greeting");
    assert!(
        greeting["body"]
            .as_str()
            .unwrap()
            .starts_with("Hi Jane Doe"),
        "{greeting}"
    );

    // Sam gets the offer with the customer and conversation, accepts.
    let offer = d.offers(&d.sam, 1).await.remove(0);
    assert_eq!(offer["contact"]["display_name"], "Jane Doe");
    assert_eq!(offer["conversation"]["last_channel"], "webchat");
    assert!(offer["handoff"].is_null());
    let reservation = offer["reservation"]["id"].as_str().unwrap().to_string();
    let conversation = offer["conversation_id"].as_str().unwrap().to_string();
    d.ok(
        &d.sam,
        "POST",
        &format!("/api/v1/reservations/{reservation}/accept"),
        json!(null),
    )
    .await;

    let mine = d
        .ok(
            &d.sam,
            "GET",
            "/api/v1/agents/me/conversations",
            json!(null),
        )
        .await;
    let item = &mine["conversations"][0];
    assert_eq!(item["conversation"]["id"], conversation.as_str());
    assert_eq!(item["unread"], 1);
    assert_eq!(item["channels"], json!(["webchat"]));
    assert!(
        item["waiting_since"].is_i64(),
        "the customer is waiting: {item}"
    );
    let task = item["task"]["id"].as_str().unwrap().to_string();

    // Sam replies on webchat: the visitor's socket gets it, the wait ends.
    d.ok(
        &d.sam,
        "POST",
        &format!("/api/v1/conversations/{conversation}/messages"),
        json!({"body": "I checked your account and see both charges. I will refund one by tomorrow.", "channel": "webchat"}),
    )
    .await;
    let pushed = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(msg)) = socket.next().await {
            if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == "message" && v["message"]["auto"] == false {
                    return v;
                }
            }
        }
        panic!("socket closed")
    })
    .await
    .expect("the reply reaches the visitor's socket");
    assert_eq!(pushed["message"]["direction"], "out");
    assert_eq!(pushed["message"]["author"], "Sam");
    d.ok(
        &d.sam,
        "POST",
        &format!("/api/v1/conversations/{conversation}/read"),
        json!(null),
    )
    .await;
    let mine = d
        .ok(
            &d.sam,
            "GET",
            "/api/v1/agents/me/conversations",
            json!(null),
        )
        .await;
    assert_eq!(mine["conversations"][0]["unread"], 0);
    assert!(mine["conversations"][0]["waiting_since"].is_null());

    // The customer's phone joins their contact; their SMS lands in the same
    // conversation, with a channel switch, and is offered as a reply channel.
    let contact = item["contact"]["id"].as_str().unwrap().to_string();
    d.ok(
        &d.sam,
        "POST",
        &format!("/api/v1/contacts/{contact}/identities"),
        json!({"kind": "phone", "value": "+15550001111"}),
    )
    .await;
    assert_eq!(
        d.server
            .sms("SMdesk01", "+15550001111", "Any news on the refund?")
            .await
            .0,
        200
    );
    let conv = d
        .server
        .eventually(Duration::from_secs(5), || async {
            let v = d
                .ok(
                    &d.sam,
                    "GET",
                    &format!("/api/v1/conversations/{conversation}"),
                    json!(null),
                )
                .await;
            kinds(&v["timeline"])
                .contains(&"channel_switch".to_string())
                .then_some(v)
        })
        .await
        .expect("the SMS joins the webchat conversation");
    let channels: Vec<_> = conv["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "message")
        .filter_map(|e| e["channel"].as_str())
        .collect();
    assert!(
        channels.contains(&"webchat") && channels.contains(&"sms"),
        "{channels:?}"
    );
    let (_, open) = d.server.get("/api/v1/conversations?status=open").await;
    assert_eq!(
        open["conversations"].as_array().unwrap().len(),
        1,
        "one conversation: {open}"
    );
    let rc = d
        .ok(
            &d.sam,
            "GET",
            &format!("/api/v1/conversations/{conversation}/reply-channels"),
            json!(null),
        )
        .await;
    let offered: Vec<_> = rc["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["channel"].as_str().unwrap(), c["allowed"] == true))
        .collect();
    assert!(
        offered.contains(&("webchat", true)) && offered.contains(&("sms", true)),
        "{rc}"
    );
    assert!(
        !offered.iter().any(|(c, _)| *c == "telegram"),
        "the contact has no telegram: {rc}"
    );
    assert_eq!(rc["default"], "sms-twilio");

    // The transcript never shows the visitor other channels' text.
    let transcript = d.transcript(&visitor).await;
    assert!(
        transcript
            .iter()
            .all(|m| m["body"] != "Any news on the refund?")
    );
    assert_eq!(
        transcript.iter().filter(|m| m["direction"] == "in").count(),
        1
    );

    // An internal note, then a warm transfer to Alex with the drafted context.
    d.ok(
        &d.sam,
        "POST",
        &format!("/api/v1/conversations/{conversation}/notes"),
        json!({"body": "Refund needs a supervisor approval"}),
    )
    .await;
    let draft = d
        .ok(
            &d.sam,
            "GET",
            &format!("/api/v1/conversations/{conversation}/handoff-draft"),
            json!(null),
        )
        .await;
    assert_eq!(draft["reason"], "I was charged twice for my May invoice");
    assert_eq!(
        draft["commitments"],
        json!(["I will refund one by tomorrow"])
    );
    assert!(
        draft["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "Refund needs a supervisor approval")
    );
    d.ok(
        &d.alex,
        "PUT",
        "/api/v1/agents/me/presence",
        json!({"status": "available"}),
    )
    .await;
    let mut context = draft.clone();
    context["reason"] = json!("Double charge on the May invoice; refund promised");
    let v = d
        .ok(
            &d.sam,
            "POST",
            &format!("/api/v1/tasks/{task}/transfer"),
            json!({"agent_id": d.alex_id, "context": context}),
        )
        .await;
    assert!(v["handoff_event"].is_string());
    let offer = d.offers(&d.alex, 1).await.remove(0);
    assert_eq!(
        offer["handoff"]["context"]["reason"],
        "Double charge on the May invoice; refund promised"
    );
    assert_eq!(offer["handoff"]["from_agent"]["name"], "Sam");
    let reservation = offer["reservation"]["id"].as_str().unwrap().to_string();
    d.ok(
        &d.alex,
        "POST",
        &format!("/api/v1/reservations/{reservation}/accept"),
        json!(null),
    )
    .await;
    let conv = d
        .ok(
            &d.alex,
            "GET",
            &format!("/api/v1/conversations/{conversation}"),
            json!(null),
        )
        .await;
    let received = conv["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["data"]["handoff"] == "received")
        .expect("the hand-off receipt is on the timeline");
    assert_eq!(received["data"]["context_received"], true);
    let report = d.server.get("/api/v1/reports/context-transfer").await.1;
    assert_eq!(
        (
            report["transfers"].as_u64(),
            report["with_context"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(report["rate"], 1.0);

    // Alex resolves it with a disposition: the task completes, the profile shows it.
    let (status, v) = d
        .call(
            &d.sam,
            "POST",
            &format!("/api/v1/conversations/{conversation}/resolve"),
            json!({"disposition": "billing_adjusted"}),
        )
        .await;
    assert_eq!(status, 403, "Sam no longer holds it: {v}");
    let (status, v) = d
        .call(
            &d.alex,
            "POST",
            &format!("/api/v1/conversations/{conversation}/resolve"),
            json!({"disposition": "no-such-code"}),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    let v = d
        .ok(
            &d.alex,
            "POST",
            &format!("/api/v1/conversations/{conversation}/resolve"),
            json!({"disposition": "billing_adjusted", "note": "Refunded the duplicate charge"}),
        )
        .await;
    assert_eq!(v["conversation"]["status"], "resolved");
    let mine = d
        .ok(
            &d.alex,
            "GET",
            "/api/v1/agents/me/conversations",
            json!(null),
        )
        .await;
    assert_eq!(mine["conversations"], json!([]), "the task is complete");
    let profile = d
        .ok(
            &d.alex,
            "GET",
            &format!("/api/v1/contacts/{contact}/profile"),
            json!(null),
        )
        .await;
    let history = &profile["conversations"][0];
    assert_eq!(history["disposition"]["code"], "billing_adjusted");
    assert_eq!(history["channels"], json!(["webchat", "sms"]));
    assert_eq!(
        profile["last_interaction"]["summary"],
        "Refunded the duplicate charge"
    );
    assert_eq!(profile["last_interaction"]["agent"]["name"], "Sam");
    let identities: Vec<_> = profile["contact"]["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    assert_eq!(identities, ["email", "webchat", "phone"]);

    // The wallboard counts both agents and today's answered task.
    let board = d.server.get("/api/v1/wallboard").await.1;
    let chat = board["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["id"] == "chat")
        .expect("the chat queue");
    assert_eq!(chat["today"]["answered"], 1, "{board}");
    assert_eq!(chat["waiting"], 0);
    let available: Vec<_> = board["agents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["presence"] == "available")
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(available.len(), 2, "Sam and Alex: {board}");
    assert!(available.contains(&"Sam") && available.contains(&"Alex"));
    assert!(twilio.requests().is_empty(), "no SMS was sent");
}

#[tokio::test]
async fn webchat_refuses_bad_input_and_keeps_what_it_accepted() {
    let (d, _twilio) = desk().await;
    for bad in [
        json!({"name": ""}),
        json!({"name": "x".repeat(81)}),
        json!({"name": "Jane", "email": "not an email"}),
        json!({"name": "Jane", "extra": 1}),
    ] {
        let (status, v) = d.visitor(bad.clone()).await;
        assert!(status == 400 || status == 422, "{bad} → {status} {v}");
    }
    let (_, v) = d.visitor(json!({"name": "Jane"})).await;
    let token = v["token"].as_str().unwrap().to_string();
    assert_eq!(d.chat(&token, "ok-1", "hello").await.0, 202);
    for (client_id, body) in [
        ("", "hi"),
        ("has space", "hi"),
        ("ok-2", "   "),
        ("ok-3", &"x".repeat(4001)),
    ] {
        let (status, v) = d.chat(&token, client_id, body).await;
        assert_eq!(status, 400, "{client_id:?}: {v}");
    }
    assert_eq!(d.chat("forged-token", "ok-4", "hi").await.0, 401);
    let r = d
        .server
        .http
        .post(format!("{}/webchat/v1/messages", d.server.base))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error());
    let forged = format!(
        "{}/webchat/v1/ws?token=forged",
        d.server.base.replace("http://", "ws://")
    );
    assert!(
        tokio_tungstenite::connect_async(&forged).await.is_err(),
        "a forged token gets no socket"
    );
    let transcript = d.transcript(&token).await;
    let inbound: Vec<_> = transcript
        .iter()
        .filter(|m| m["direction"] == "in")
        .collect();
    assert_eq!(
        inbound.len(),
        1,
        "the accepted message is there, once: {transcript:?}"
    );
    assert_eq!(inbound[0]["body"], "hello");
    // A script starting chats in a loop is stopped: 45 more starts cannot all fit under
    // 20 a minute, even if a minute boundary falls inside the loop.
    let mut refused = None;
    for i in 0..45 {
        let (status, v) = d.visitor(json!({"name": format!("bot {i}")})).await;
        if status == 429 {
            refused = Some(v);
            break;
        }
        assert_eq!(status, 201, "{v}");
    }
    let refused = refused.expect("new chats are rate limited");
    assert_eq!(refused["error"]["code"], "rate_limited");
    // The automatic greeting may land at any moment (it waits for routing), so compare
    // what was there before: every earlier message is still there, and no new inbound one.
    let after = d.transcript(&token).await;
    for m in &transcript {
        assert!(
            after.iter().any(|a| a["id"] == m["id"]),
            "nothing accepted was lost: {m} missing from {after:?}"
        );
    }
    assert_eq!(
        after.iter().filter(|m| m["direction"] == "in").count(),
        1,
        "{after:?}"
    );
}

#[tokio::test]
async fn an_opted_out_channel_is_not_offered_for_replies() {
    let (d, _twilio) = desk().await;
    d.server.sms("SMopt01", "+15550002222", "Hello").await;
    d.server.sms("SMopt02", "+15550002222", "STOP").await;
    let (_, open) = d.server.get("/api/v1/conversations?status=open").await;
    let id = open["conversations"][0]["id"].as_str().unwrap().to_string();
    let rc = d
        .ok(
            &d.server.token,
            "GET",
            &format!("/api/v1/conversations/{id}/reply-channels"),
            json!(null),
        )
        .await;
    let sms = rc["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel"] == "sms")
        .expect("the contact has a phone");
    assert_eq!(sms["allowed"], false);
    assert_eq!(sms["reason"], "opted_out");
    assert!(rc["default"].is_null(), "{rc}");
}

#[tokio::test]
async fn supervisor_and_admin_routes_check_roles_and_keep_secrets() {
    let (d, _twilio) = desk().await;
    for (method, path) in [
        ("GET", "/api/v1/wallboard"),
        ("GET", "/api/v1/reports/context-transfer"),
        ("POST", "/api/v1/agents"),
        ("PUT", "/api/v1/plugins/sms-twilio/config"),
    ] {
        let body = match method {
            "POST" => json!({"email": "x@e2e.test", "password": "password-123", "role": "admin"}),
            "PUT" => json!({"config": {"from_number": "+15005550001"}}),
            _ => json!(null),
        };
        let (status, v) = d.call(&d.sam, method, path, body).await;
        assert_eq!(status, 403, "{method} {path}: {v}");
    }
    let roster = d.ok(&d.sam, "GET", "/api/v1/agents", json!(null)).await;
    let names: Vec<_> = roster["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"Alex"),
        "agents see colleagues to transfer to: {roster}"
    );
    assert!(
        !roster.to_string().contains("@e2e.test"),
        "but not their e-mail: {roster}"
    );
    let admin = d.server.token.clone();
    let (status, v) = d
        .call(
            &admin,
            "PUT",
            "/api/v1/plugins/sms-twilio/config",
            json!({"config": {"nope": "1"}}),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    let v = d
        .ok(
            &admin,
            "PUT",
            "/api/v1/plugins/sms-twilio/config",
            json!({"config": {"auth_token": "rotated-secret-9f8e", "from_number": "+15005550001"}}),
        )
        .await;
    let text = v.to_string();
    assert!(
        !text.contains("rotated-secret-9f8e"),
        "secrets are write-only: {text}"
    );
    let token_entry = v["config"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["key"] == "auth_token")
        .unwrap();
    assert_eq!(token_entry["value"], "set");
    assert!(!d.server.log().contains("rotated-secret-9f8e"));
    // The new token is what the connector now checks.
    let url = format!("{}/hooks/sms-twilio/inbound", d.server.base);
    let params = [
        ("MessageSid", "SMrot01"),
        ("AccountSid", ACCOUNT_SID),
        ("From", "+15550003333"),
        ("To", "+15005550001"),
        ("Body", "hi"),
        ("NumMedia", "0"),
    ];
    let old = twilio_signature(AUTH_TOKEN, &url, &params);
    assert_eq!(d.server.raw_webhook(&url, &params, Some(&old)).await.0, 403);
    let new = twilio_signature("rotated-secret-9f8e", &url, &params);
    assert_eq!(d.server.raw_webhook(&url, &params, Some(&new)).await.0, 200);
    let roster = d.ok(&admin, "GET", "/api/v1/agents", json!(null)).await;
    assert_eq!(roster["agents"].as_array().unwrap().len(), 3);
    assert!(!roster.to_string().contains("password"));
    let (status, _) = d
        .call(
            &admin,
            "POST",
            "/api/v1/agents",
            json!({"email": SAM.0, "password": "password-123", "role": "agent"}),
        )
        .await;
    assert_eq!(status, 409, "the e-mail is taken");
    let (status, _) = d
        .call(
            &admin,
            "POST",
            "/api/v1/agents",
            json!({"email": "short@e2e.test", "password": "short", "role": "agent"}),
        )
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn the_web_client_is_served_with_a_content_security_policy() {
    let twilio = FakeTwilio::start().await;
    let server = Server::start(Options::default(), &twilio).await;
    for path in ["/", "/webchat/", "/demo", "/widget.js", "/app.js"] {
        let r = server
            .http
            .get(format!("{}{path}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{path}: {csp}"
        );
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    }
}
