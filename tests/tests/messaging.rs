//! WhatsApp, Messenger and Instagram end to end: the real binary, the real
//! connectors (plugin API 0.2.0) and a stand-in Graph API that checks the bearer
//! token and records every call.
//!
//! - handshake, signatures (forged and missing refused, nothing stored), every
//!   inbound kind, duplicates stored once;
//! - media through the two-step download into the blob store, served to a
//!   signed-in agent only, a download that fails once and succeeds on retry;
//! - replies: text, files as signed links, templates with parameters, the
//!   window enforced by the host (422 `window_closed`), Messenger's
//!   `HUMAN_AGENT` tag for people's replies after 24 h;
//! - statuses never going backwards, `131047` arriving as an asynchronous
//!   failure shown on the message, throttling retried;
//! - one connector installed twice under two ids, and a 0.1.0 component beside
//!   0.2.0 ones in one server.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_e2e::meta::*;
use switchboard_e2e::*;

const WA_PHONE_ID: &str = "PNID1";
const WA_SALES_PHONE_ID: &str = "PNID2";
const PAGE_ID: &str = "PAGE1";
const IG_ID: &str = "IGPAGE1";

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Installs a Meta connector through the admin API, pointed at the stand-in.
async fn install(server: &Server, graph: &FakeGraph, dir: &str, id: &str, extra: Value) -> Value {
    let mut config = json!({
        "app_secret": META_APP_SECRET,
        "verify_token": META_VERIFY_TOKEN,
        "access_token": META_TOKEN,
        "api_base": graph.base,
    });
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    let path = plugin_dist().join(dir);
    let (status, body) = server
        .post(
            "/api/v1/plugins",
            json!({"path": path, "config": config, "allow_hosts": [graph.base], "id": id}),
        )
        .await;
    assert_eq!(status, 201, "installing {id}: {body}");
    assert!(
        !body.to_string().contains(META_TOKEN) && !body.to_string().contains(META_APP_SECRET),
        "secrets never come back: {body}"
    );
    body
}

async fn start() -> (Server, FakeGraph, FakeTwilio) {
    let twilio = FakeTwilio::start().await;
    let graph = FakeGraph::start().await;
    let server = Server::start(
        Options::env(&[
            ("SWITCHBOARD_OUTBOX_RETRY_BASE_MS", "100"),
            ("SWITCHBOARD_ATTACHMENT_RETRY_BASE_MS", "100"),
        ]),
        &twilio,
    )
    .await;
    install(
        &server,
        &graph,
        "whatsapp-cloud",
        "whatsapp-cloud",
        json!({"phone_number_id": WA_PHONE_ID, "business_account_id": "WABA1"}),
    )
    .await;
    install(
        &server,
        &graph,
        "messenger",
        "messenger",
        json!({"page_id": PAGE_ID}),
    )
    .await;
    install(
        &server,
        &graph,
        "instagram",
        "instagram",
        json!({"page_id": IG_ID}),
    )
    .await;
    (server, graph, twilio)
}

fn wa_text(id: &str, body: &str, at: u64) -> Value {
    json!({"from": "15551230001", "id": id, "timestamp": at.to_string(), "type": "text", "text": {"body": body}})
}

async fn timeline(server: &Server, contact_id: &str) -> Vec<Value> {
    let (status, v) = server
        .get(&format!("/api/v1/contacts/{contact_id}/timeline"))
        .await;
    assert_eq!(status, 200, "{v}");
    v["events"].as_array().unwrap().clone()
}

async fn event(server: &Server, contact_id: &str, pred: impl Fn(&Value) -> bool) -> Option<Value> {
    timeline(server, contact_id).await.into_iter().find(pred)
}

async fn conversation_of(server: &Server, identity: &str) -> (String, String) {
    let contact = server.contact_by(identity).await.expect("contact");
    let contact_id = contact["id"].as_str().unwrap().to_string();
    let events = timeline(server, &contact_id).await;
    let conversation = events
        .iter()
        .rev()
        .find_map(|e| e["conversation_id"].as_str())
        .expect("a conversation")
        .to_string();
    (contact_id, conversation)
}

async fn reply(server: &Server, conversation: &str, body: Value) -> (u16, Value) {
    server
        .post(
            &format!("/api/v1/conversations/{conversation}/messages"),
            body,
        )
        .await
}

#[tokio::test]
async fn whatsapp_end_to_end_with_the_stand_in_graph_api() {
    let (server, graph, _twilio) = start().await;
    let http = reqwest::Client::new();

    // The subscription handshake.
    let hook = format!("{}/hooks/whatsapp-cloud", server.base);
    let r = http
        .get(format!(
            "{hook}?hub.mode=subscribe&hub.verify_token={META_VERIFY_TOKEN}&hub.challenge=1158201444"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "1158201444");
    let r = http
        .get(format!(
            "{hook}?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(
        !server.log().contains(META_VERIFY_TOKEN),
        "the verify token in the query string is never logged"
    );

    // Forged and missing signatures: 403 and nothing stored.
    let now = now_secs();
    let first = whatsapp_payload(
        WA_PHONE_ID,
        "15551230001",
        "Jane Doe",
        vec![wa_text("wamid.in.1", "Hi, where is my order?", now)],
        vec![],
    );
    let (status, _) = server
        .meta_webhook("whatsapp-cloud", &first, Some("sha256=00ff"))
        .await;
    assert_eq!(status, 403);
    let (status, _) = server
        .meta_webhook("whatsapp-cloud", &first, Some(""))
        .await;
    assert_eq!(status, 403);
    assert!(server.contact_by("whatsapp:+15551230001").await.is_none());

    // A real one, delivered twice: stored once, the profile name on the contact.
    for _ in 0..2 {
        let (status, body) = server.meta_webhook("whatsapp-cloud", &first, None).await;
        assert_eq!(status, 200, "{body}");
    }
    let contact = server.contact_by("whatsapp:+15551230001").await.unwrap();
    assert_eq!(contact["display_name"], "Jane Doe");
    let contact_id = contact["id"].as_str().unwrap().to_string();
    let inbound: Vec<Value> = timeline(&server, &contact_id)
        .await
        .into_iter()
        .filter(|e| e["kind"] == "message")
        .collect();
    assert_eq!(
        inbound.len(),
        1,
        "the duplicate was stored once: {inbound:?}"
    );
    assert_eq!(inbound[0]["channel"], "whatsapp");

    // Every other kind in one delivery; the first media download fails.
    graph.fail_media(1);
    let kinds = whatsapp_payload(
        WA_PHONE_ID,
        "15551230001",
        "Jane Doe",
        vec![
            json!({"from": "15551230001", "id": "wamid.in.2", "timestamp": now.to_string(), "type": "image",
                   "image": {"id": "media-001", "mime_type": "image/png", "sha256": "x", "caption": "my receipt"}}),
            json!({"from": "15551230001", "id": "wamid.in.3", "timestamp": now.to_string(), "type": "location",
                   "location": {"latitude": 52.52, "longitude": 13.405, "name": "Home", "address": "Berlin"}}),
            json!({"from": "15551230001", "id": "wamid.in.4", "timestamp": now.to_string(), "type": "interactive",
                   "interactive": {"type": "button_reply", "button_reply": {"id": "track", "title": "Track order"}}}),
            json!({"from": "15551230001", "id": "wamid.in.5", "timestamp": now.to_string(), "type": "contacts",
                   "contacts": [{"name": {"formatted_name": "Bob Doe"}, "phones": [{"phone": "+1 555 123 0009", "wa_id": "15551230009"}]}]}),
        ],
        vec![],
    );
    let (status, body) = server.meta_webhook("whatsapp-cloud", &kinds, None).await;
    assert_eq!(status, 200, "{body}");
    let image = event(&server, &contact_id, |e| e["provider_id"] == "wamid.in.2")
        .await
        .expect("image message");
    assert!(
        image["body"].as_str().unwrap().contains("my receipt"),
        "{image}"
    );
    let attachment_url = image["attachments"][0]["url"].as_str().unwrap().to_string();
    assert!(
        attachment_url.starts_with("/api/v1/attachments/"),
        "{image}"
    );
    let stored = server
        .eventually(Duration::from_secs(20), || async {
            let e = event(&server, &contact_id, |e| e["provider_id"] == "wamid.in.2").await?;
            (e["attachments"][0]["status"] == "stored").then_some(e)
        })
        .await
        .unwrap_or_else(|| panic!("the image was copied after a retry: {}", server.log()));
    assert_eq!(stored["attachments"][0]["content_type"], "image/png");
    let downloads = graph
        .requests()
        .iter()
        .filter(|r| r.path == "/media-bytes/media-001")
        .count();
    assert_eq!(downloads, 2, "failed once, then fetched again");
    let authority = graph.base.trim_start_matches("http://").to_string();
    for r in graph.requests() {
        assert_eq!(
            r.host.as_deref(),
            Some(authority.as_str()),
            "every request carries Host, as HTTP/1.1 requires: {} {}",
            r.method,
            r.path
        );
    }
    let resolves = graph
        .requests()
        .iter()
        .filter(|r| r.path == format!("/{GRAPH_VERSION}/media-001"))
        .count();
    assert!(resolves >= 2, "each attempt resolves the media id first");
    let r = http
        .get(format!("{}{attachment_url}", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "no file without a token");
    let r = http
        .get(format!("{}{attachment_url}", server.base))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.bytes().await.unwrap().as_ref(), PNG);

    let location = event(&server, &contact_id, |e| e["provider_id"] == "wamid.in.3")
        .await
        .unwrap();
    assert_eq!(location["data"]["metadata"]["location"]["latitude"], 52.52);
    let tapped = event(&server, &contact_id, |e| e["provider_id"] == "wamid.in.4")
        .await
        .unwrap();
    assert_eq!(
        tapped["data"]["metadata"]["interactive_reply"]["id"],
        "track"
    );
    let card = event(&server, &contact_id, |e| e["provider_id"] == "wamid.in.5")
        .await
        .unwrap();
    assert_eq!(card["data"]["metadata"]["contacts"][0]["name"], "Bob Doe");

    // A text reply, then statuses out of order: never backwards.
    let (_, conversation) = conversation_of(&server, "whatsapp:+15551230001").await;
    let (status, body) = reply(&server, &conversation, json!({"body": "Let me check."})).await;
    assert_eq!(status, 202, "{body}");
    let event_id = body["event"]["id"].as_str().unwrap().to_string();
    let sends = graph.wait_for_sends(1, Duration::from_secs(15)).await;
    assert_eq!(sends.len(), 1);
    assert_eq!(
        sends[0].path,
        format!("/{GRAPH_VERSION}/{WA_PHONE_ID}/messages")
    );
    assert_eq!(
        sends[0].authorization.as_deref(),
        Some(&*format!("Bearer {META_TOKEN}"))
    );
    assert_eq!(sends[0].json["to"], "15551230001");
    assert_eq!(sends[0].json["type"], "text");
    assert_eq!(sends[0].json["text"]["body"], "Let me check.");
    let sent_id = server
        .eventually(Duration::from_secs(10), || async {
            let (_, rows) = server.get("/api/v1/outbox").await;
            rows["outbox"]
                .as_array()?
                .iter()
                .find(|r| r["event_id"] == event_id.as_str())
                .and_then(|r| r["provider_id"].as_str().map(str::to_string))
        })
        .await
        .expect("the provider's message id recorded");
    for status in ["delivered", "read", "delivered", "sent"] {
        let s = whatsapp_payload(
            WA_PHONE_ID,
            "15551230001",
            "Jane Doe",
            vec![],
            vec![
                json!({"id": sent_id, "status": status, "timestamp": now.to_string(), "recipient_id": "15551230001"}),
            ],
        );
        assert_eq!(server.meta_webhook("whatsapp-cloud", &s, None).await.0, 200);
    }
    let read = event(&server, &contact_id, |e| e["id"] == event_id.as_str())
        .await
        .unwrap();
    assert_eq!(
        read["delivery_status"], "read",
        "a late delivered never undoes read"
    );

    // Throttled once (130429 in an HTTP 400), then sent.
    graph.throttle_sends(1);
    let before = graph.sends().len();
    let (status, _) = reply(&server, &conversation, json!({"body": "Found it."})).await;
    assert_eq!(status, 202);
    let sends = graph
        .wait_for_sends(before + 2, Duration::from_secs(15))
        .await;
    assert_eq!(
        sends.len(),
        before + 2,
        "retried after the throttle: {}",
        server.log()
    );
    assert_eq!(sends[before + 1].json["text"]["body"], "Found it.");

    // A file: uploaded, sent as a signed link the provider can fetch.
    let r = http
        .post(format!(
            "{}/api/v1/attachments?filename=label.png",
            server.base
        ))
        .bearer_auth(&server.token)
        .header("content-type", "image/png")
        .body(PNG.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let upload: Value = r.json().await.unwrap();
    let upload_id = upload["attachment"]["id"].as_str().unwrap().to_string();
    let before = graph.sends().len();
    let (status, body) = reply(
        &server,
        &conversation,
        json!({"body": "Your label", "attachments": [upload_id]}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let sends = graph
        .wait_for_sends(before + 1, Duration::from_secs(15))
        .await;
    let media = &sends[before].json;
    assert_eq!(media["type"], "image", "{media}");
    let link = media["image"]["link"].as_str().unwrap().to_string();
    assert!(
        link.starts_with(&format!("{}/media/", server.base)),
        "{link}"
    );
    let r = http.get(&link).send().await.unwrap();
    assert_eq!(
        r.status(),
        200,
        "the provider fetches the file without an account"
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), PNG);
    let r = http
        .get(link.replace("sig=", "sig=0"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a tampered link is refused");

    // Templates: listed from the provider, sent with parameters, rendered.
    let (status, list) = server
        .get("/api/v1/channels/whatsapp-cloud/templates")
        .await;
    assert_eq!(status, 200, "{list}");
    let names: Vec<&str> = list["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["order_update"], "only approved templates");
    let before = graph.sends().len();
    let (status, body) = reply(
        &server,
        &conversation,
        json!({"template": {"name": "order_update", "language": "en_US", "parameters": ["Jane", "A-42"]}}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        body["event"]["body"],
        "Hi Jane, your order A-42 has shipped"
    );
    let template_event = body["event"]["id"].as_str().unwrap().to_string();
    let sends = graph
        .wait_for_sends(before + 1, Duration::from_secs(15))
        .await;
    let t = &sends[before].json;
    assert_eq!(t["type"], "template", "{t}");
    assert_eq!(t["template"]["name"], "order_update");
    assert_eq!(t["template"]["language"]["code"], "en_US");
    assert_eq!(
        t["template"]["components"][0]["parameters"][1]["text"],
        "A-42"
    );

    // 131047 arrives later as a failed status: shown on the message.
    let template_wamid = server
        .eventually(Duration::from_secs(10), || async {
            let (_, rows) = server.get("/api/v1/outbox").await;
            rows["outbox"]
                .as_array()?
                .iter()
                .find(|r| r["event_id"] == template_event.as_str())
                .and_then(|r| r["provider_id"].as_str().map(str::to_string))
        })
        .await
        .unwrap();
    let failed = whatsapp_payload(
        WA_PHONE_ID,
        "15551230001",
        "Jane Doe",
        vec![],
        vec![json!({
            "id": template_wamid, "status": "failed", "timestamp": now.to_string(), "recipient_id": "15551230001",
            "errors": [{"code": 131047, "title": "Re-engagement message", "message": "Re-engagement message",
                        "error_data": {"details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number."}}]
        })],
    );
    assert_eq!(
        server.meta_webhook("whatsapp-cloud", &failed, None).await.0,
        200
    );
    let shown = event(&server, &contact_id, |e| e["id"] == template_event.as_str())
        .await
        .unwrap();
    assert_eq!(shown["delivery_status"], "failed");
    let error = shown["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("131047") && error.contains("24 hours"),
        "{shown}"
    );

    // The window: a customer who last wrote 25 hours ago.
    let old = whatsapp_payload(
        WA_PHONE_ID,
        "15551230002",
        "Ray",
        vec![json!({
            "from": "15551230002", "id": "wamid.old.1", "timestamp": (now - 25 * 3600).to_string(), "type": "text", "text": {"body": "hello?"}
        })],
        vec![],
    );
    assert_eq!(
        server.meta_webhook("whatsapp-cloud", &old, None).await.0,
        200
    );
    let (_, late) = conversation_of(&server, "whatsapp:+15551230002").await;
    let before = graph.sends().len();
    let (status, body) = reply(&server, &late, json!({"body": "Sorry for the wait"})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "window_closed");
    assert!(body["error"]["closed_at"].as_str().is_some(), "{body}");
    let (_, window) = server
        .get(&format!("/api/v1/conversations/{late}/window"))
        .await;
    assert_eq!(window["open"], false, "{window}");
    assert_eq!(
        window["human_agent"], false,
        "WhatsApp has no human-agent window"
    );
    let (status, body) = reply(
        &server,
        &late,
        json!({"template": {"name": "order_update", "language": "en_US", "parameters": ["Ray", "B-7"]}}),
    )
    .await;
    assert_eq!(status, 202, "a template goes out after the window: {body}");
    let sends = graph
        .wait_for_sends(before + 1, Duration::from_secs(15))
        .await;
    assert_eq!(
        sends.len(),
        before + 1,
        "the refused reply never reached the provider"
    );
    assert_eq!(sends[before].json["type"], "template");
}

#[tokio::test]
async fn messenger_and_instagram_use_the_human_agent_tag_only_after_24_hours() {
    let (server, graph, _twilio) = start().await;
    let now_ms = now_secs() * 1000;
    let dm = |mid: &str, text: &str, at: u64| {
        json!({"sender": {"id": "PSID-77"}, "recipient": {"id": PAGE_ID}, "timestamp": at,
               "message": {"mid": mid, "text": text}})
    };
    // Signed: stored, with the profile name; forged: refused.
    let body = messaging_payload(
        "page",
        PAGE_ID,
        vec![dm(
            "m_in.1",
            "Is my order late?",
            now_ms - 2 * 24 * 3600 * 1000,
        )],
    );
    assert_eq!(
        server
            .meta_webhook("messenger", &body, Some("sha256=beef"))
            .await
            .0,
        403
    );
    let (status, text) = server.meta_webhook("messenger", &body, None).await;
    assert_eq!(status, 200, "{text}");
    let (contact_id, conversation) = conversation_of(&server, "messenger:PSID-77").await;

    // Two days after the last message: allowed for a person, with the tag.
    let (status, body) = reply(
        &server,
        &conversation,
        json!({"body": "Sorry, checking now."}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let sends = graph.wait_for_sends(1, Duration::from_secs(15)).await;
    assert_eq!(
        sends[0].path,
        format!("/{GRAPH_VERSION}/{PAGE_ID}/messages")
    );
    assert_eq!(sends[0].json["recipient"]["id"], "PSID-77");
    assert_eq!(
        sends[0].json["messaging_type"], "MESSAGE_TAG",
        "{}",
        sends[0].json
    );
    assert_eq!(sends[0].json["tag"], "HUMAN_AGENT");

    // The customer writes again: an ordinary response.
    let body = messaging_payload("page", PAGE_ID, vec![dm("m_in.2", "thanks", now_ms)]);
    assert_eq!(server.meta_webhook("messenger", &body, None).await.0, 200);
    let (status, _) = reply(&server, &conversation, json!({"body": "You're welcome"})).await;
    assert_eq!(status, 202);
    let sends = graph.wait_for_sends(2, Duration::from_secs(15)).await;
    assert_eq!(
        sends[1].json["messaging_type"], "RESPONSE",
        "{}",
        sends[1].json
    );
    assert!(sends[1].json.get("tag").is_none());

    // Eight days of silence on Instagram: closed even for people.
    let ig = messaging_payload(
        "instagram",
        IG_ID,
        vec![json!({
            "sender": {"id": "IGSID-5"}, "recipient": {"id": IG_ID}, "timestamp": now_ms - 8 * 24 * 3600 * 1000,
            "message": {"mid": "ig_in.1", "text": "hi from insta"}
        })],
    );
    assert_eq!(server.meta_webhook("instagram", &ig, None).await.0, 200);
    let (_, ig_conversation) = conversation_of(&server, "instagram:IGSID-5").await;
    let (status, body) = reply(&server, &ig_conversation, json!({"body": "hello"})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "window_closed");
    let (status, body) = reply(
        &server,
        &ig_conversation,
        json!({"template": {"name": "x", "language": "en_US"}}),
    )
    .await;
    assert_eq!(status, 422, "Instagram has no templates: {body}");
    assert_eq!(body["error"]["code"], "templates_unsupported");
    let _ = contact_id;
}

#[tokio::test]
async fn one_connector_runs_twice_and_a_plugin_api_0_1_component_runs_beside_0_2() {
    let (server, graph, twilio) = start().await;
    // The same WhatsApp component again, for a second number.
    let second = install(
        &server,
        &graph,
        "whatsapp-cloud",
        "whatsapp-sales",
        json!({"phone_number_id": WA_SALES_PHONE_ID}),
    )
    .await;
    assert_eq!(second["id"], "whatsapp-sales");
    let payload = whatsapp_payload(
        WA_SALES_PHONE_ID,
        "15551230003",
        "Kim",
        vec![json!({
            "from": "15551230003", "id": "wamid.sales.1", "timestamp": now_secs().to_string(), "type": "text", "text": {"body": "Do you ship to Canada?"}
        })],
        vec![],
    );
    assert_eq!(
        server
            .meta_webhook("whatsapp-sales", &payload, None)
            .await
            .0,
        200
    );
    let (contact_id, conversation) = conversation_of(&server, "whatsapp:+15551230003").await;
    let message = event(&server, &contact_id, |e| {
        e["provider_id"] == "wamid.sales.1"
    })
    .await
    .unwrap();
    assert_eq!(message["plugin_id"], "whatsapp-sales");
    let (status, _) = reply(&server, &conversation, json!({"body": "We do."})).await;
    assert_eq!(status, 202);
    let sends = graph.wait_for_sends(1, Duration::from_secs(15)).await;
    assert_eq!(
        sends[0].path,
        format!("/{GRAPH_VERSION}/{WA_SALES_PHONE_ID}/messages"),
        "the reply leaves from the number the customer wrote to"
    );

    // A component built against plugin API 0.1.0 beside the 0.2.0 ones.
    let v01 = plugin_dist().join("sms-twilio-v0-1");
    let (status, body) = server
        .post(
            "/api/v1/plugins",
            json!({"path": v01, "allow_hosts": [twilio.base], "config": {
                "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from_number": FROM_NUMBER, "api_base": twilio.base}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (_, list) = server.get("/api/v1/plugins").await;
    let worlds: Vec<(String, String)> = list["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap().to_string(),
                p["world"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        worlds.contains(&(
            "sms-twilio-v0-1".into(),
            "switchboard:plugin/channel@0.1.0".into()
        )),
        "{worlds:?}"
    );
    assert!(
        worlds.contains(&(
            "whatsapp-cloud".into(),
            "switchboard:plugin/channel@0.2.0".into()
        )),
        "{worlds:?}"
    );
    let url = format!("{}/hooks/sms-twilio-v0-1/inbound", server.base);
    let params = [
        ("MessageSid", "SMv01in1"),
        ("AccountSid", ACCOUNT_SID),
        ("From", "+15551230004"),
        ("To", FROM_NUMBER),
        ("Body", "old plugin, new host"),
        ("NumMedia", "0"),
    ];
    let signature = twilio_signature(AUTH_TOKEN, &url, &params);
    let (status, body) = server.raw_webhook(&url, &params, Some(&signature)).await;
    assert_eq!(status, 200, "{body}");
    let (_, conversation) = conversation_of(&server, "phone:+15551230004").await;
    let before = twilio.requests().len();
    let (status, body) = reply(
        &server,
        &conversation,
        json!({"body": "Served by the 0.1.0 component", "channel": "sms-twilio-v0-1"}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let sent = twilio.wait_for(before + 1, Duration::from_secs(15)).await;
    assert_eq!(
        sent[before].field("Body"),
        Some("Served by the 0.1.0 component")
    );
    assert_eq!(sent[before].field("To"), Some("+15551230004"));

    // An MMS through the 0.2.0 Twilio connector: the file goes as a signed link.
    let r = reqwest::Client::new()
        .post(format!(
            "{}/api/v1/attachments?filename=map.png",
            server.base
        ))
        .bearer_auth(&server.token)
        .header("content-type", "image/png")
        .body(PNG.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let upload: Value = r.json().await.unwrap();
    let (status, body) = reply(
        &server,
        &conversation,
        json!({"body": "The map", "channel": "sms-twilio",
               "attachments": [upload["attachment"]["id"]]}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let sent = twilio.wait_for(before + 2, Duration::from_secs(15)).await;
    let media = sent[before + 1]
        .field("MediaUrl")
        .expect("Twilio gets a MediaUrl")
        .to_string();
    assert!(
        media.starts_with(&format!("{}/media/", server.base)),
        "{media}"
    );
    let r = reqwest::get(&media).await.unwrap();
    assert_eq!(r.status(), 200, "Twilio fetches it without an account");
    assert_eq!(r.bytes().await.unwrap().as_ref(), PNG);
}

/// A stand-in Bot API whose `getUpdates` serves `updates` from the offset asked.
async fn fake_telegram(
    updates: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
    offsets: std::sync::Arc<std::sync::Mutex<Vec<Option<i64>>>>,
) -> String {
    use axum::extract::{Query, State};
    type Shared = (
        std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
        std::sync::Arc<std::sync::Mutex<Vec<Option<i64>>>>,
    );
    async fn get_updates(
        State((updates, offsets)): State<Shared>,
        Query(q): Query<std::collections::HashMap<String, String>>,
    ) -> axum::Json<Value> {
        let offset = q.get("offset").and_then(|o| o.parse::<i64>().ok());
        offsets.lock().unwrap().push(offset);
        let result: Vec<Value> = updates
            .lock()
            .unwrap()
            .iter()
            .filter(|u| offset.is_none_or(|o| u["update_id"].as_i64().unwrap() >= o))
            .cloned()
            .collect();
        axum::Json(json!({"ok": true, "result": result}))
    }
    let app = axum::Router::new()
        .route("/bot{token}/getUpdates", axum::routing::get(get_updates))
        .with_state((updates, offsets));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

fn telegram_update(update_id: i64, chat: i64, message_id: i64, text: &str) -> Value {
    json!({"update_id": update_id, "message": {
        "message_id": message_id, "date": 1_700_000_000, "chat": {"id": chat, "type": "private"},
        "from": {"id": chat, "is_bot": false, "first_name": "Poll"}, "text": text}})
}

#[tokio::test]
async fn a_polling_connector_is_called_on_its_interval_and_its_cursor_survives_a_restart() {
    let twilio = FakeTwilio::start().await;
    let updates = std::sync::Arc::new(std::sync::Mutex::new(vec![
        telegram_update(500, 9001, 1, "first by poll"),
        telegram_update(501, 9001, 2, "second by poll"),
    ]));
    let offsets = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let api = fake_telegram(updates.clone(), offsets.clone()).await;
    let server = Server::start(Options::default(), &twilio).await;
    let dir = plugin_dist().join("telegram-bot");
    let (status, body) = server
        .post(
            "/api/v1/plugins",
            json!({"path": dir, "id": "telegram-poll", "allow_hosts": [api],
                   "config": {"bot_token": "42:poll", "updates": "poll", "api_base": api}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    let contact = server
        .eventually(Duration::from_secs(20), || async {
            server.contact_by("telegram:9001").await
        })
        .await
        .unwrap_or_else(|| panic!("polled messages arrive: {}", server.log()));
    let contact_id = contact["id"].as_str().unwrap().to_string();
    let texts = server
        .eventually(Duration::from_secs(10), || async {
            let t = timeline(&server, &contact_id).await;
            let texts: Vec<String> = t
                .iter()
                .filter(|e| e["kind"] == "message")
                .map(|e| e["body"].as_str().unwrap().to_string())
                .collect();
            (texts.len() == 2).then_some(texts)
        })
        .await
        .expect("both updates stored");
    assert_eq!(texts, ["first by poll", "second by poll"]);
    // The next poll starts after the last update.
    server
        .eventually(Duration::from_secs(10), || async {
            offsets.lock().unwrap().contains(&Some(502)).then_some(())
        })
        .await
        .expect("the cursor moved to 502");

    // A restart keeps the cursor: nothing is read twice, new updates arrive.
    let (data, options) = server.kill().await;
    updates
        .lock()
        .unwrap()
        .push(telegram_update(502, 9001, 3, "after the restart"));
    offsets.lock().unwrap().clear();
    let server = Server::start_in(data, options).await;
    let texts = server
        .eventually(Duration::from_secs(20), || async {
            let t = timeline(&server, &contact_id).await;
            let texts: Vec<String> = t
                .iter()
                .filter(|e| e["kind"] == "message")
                .map(|e| e["body"].as_str().unwrap().to_string())
                .collect();
            (texts.len() >= 3).then_some(texts)
        })
        .await
        .unwrap_or_else(|| panic!("the update after the restart arrives: {}", server.log()));
    assert_eq!(
        texts,
        ["first by poll", "second by poll", "after the restart"]
    );
    assert_eq!(
        offsets.lock().unwrap().first(),
        Some(&Some(502)),
        "the first poll after the restart starts at the stored cursor"
    );
}

#[tokio::test]
async fn hostile_files_payloads_and_replies_get_clear_errors_and_change_nothing() {
    let twilio = FakeTwilio::start().await;
    let graph = FakeGraph::start().await;
    let server = Server::start(
        Options::env(&[("SWITCHBOARD_ATTACHMENT_MAX_BYTES", "4096")]),
        &twilio,
    )
    .await;
    install(
        &server,
        &graph,
        "whatsapp-cloud",
        "whatsapp-cloud",
        json!({"phone_number_id": WA_PHONE_ID}),
    )
    .await;
    let http = reqwest::Client::new();

    // A signed but malformed payload: 400, nothing stored.
    let bytes =
        b"{\"object\": \"whatsapp_business_account\", \"entry\": [{\"changes\": 7}]}".to_vec();
    let r = http
        .post(format!("{}/hooks/whatsapp-cloud", server.base))
        .header("content-type", "application/json")
        .header("X-Hub-Signature-256", meta_signature(&bytes))
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let (_, open) = server.get("/api/v1/conversations?status=open").await;
    assert_eq!(open["conversations"].as_array().unwrap().len(), 0, "{open}");

    let now = now_secs();
    let payload = whatsapp_payload(
        WA_PHONE_ID,
        "15551230007",
        "Eve",
        vec![
            json!({"from": "15551230007", "id": "wamid.h.1", "timestamp": now.to_string(),
                    "type": "text", "text": {"body": "hi"}}),
        ],
        vec![],
    );
    assert_eq!(
        server
            .meta_webhook("whatsapp-cloud", &payload, None)
            .await
            .0,
        200
    );
    let (_, conversation) = conversation_of(&server, "whatsapp:+15551230007").await;

    let upload = |body: Vec<u8>, content_type: &'static str, name: &'static str| {
        let http = http.clone();
        let url = format!("{}/api/v1/attachments?filename={name}", server.base);
        let token = server.token.clone();
        async move {
            let r = http
                .post(url)
                .bearer_auth(token)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    // Too large: 413. Empty: 400. Without a token: 401.
    assert_eq!(upload(vec![0u8; 5000], "image/png", "big.png").await.0, 413);
    assert_eq!(upload(Vec::new(), "image/png", "empty.png").await.0, 400);
    let r = http
        .post(format!("{}/api/v1/attachments", server.base))
        .body(PNG.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // An SVG with a script, labelled as an image: kept, but never served inline.
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#;
    let (status, svg_upload) = upload(svg.to_vec(), "image/svg+xml", "cat.svg").await;
    assert_eq!(status, 201, "{svg_upload}");
    let svg_id = svg_upload["attachment"]["id"].as_str().unwrap().to_string();
    let r = http
        .get(format!("{}/api/v1/attachments/{svg_id}", server.base))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("sandbox")
    );
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    // WhatsApp does not take SVG: refused at reply time, nothing queued.
    let before = graph.sends().len();
    let (status, body) = reply(
        &server,
        &conversation,
        json!({"body": "", "attachments": [svg_id]}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("image/svg+xml"),
        "{body}"
    );

    // Too many files, unknown ids, someone else's upload, malformed templates.
    let mut many = Vec::new();
    for i in 0..11 {
        let (s, u) = upload(PNG.to_vec(), "image/png", "p.png").await;
        assert_eq!(s, 201, "upload {i}: {u}");
        many.push(u["attachment"]["id"].as_str().unwrap().to_string());
    }
    let (status, body) = reply(
        &server,
        &conversation,
        json!({"body": "x", "attachments": many}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = reply(
        &server,
        &conversation,
        json!({"body": "x", "attachments": ["nope"]}),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = reply(
        &server,
        &conversation,
        json!({"template": {"name": "", "language": "en_US"}}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = reply(&server, &conversation, json!({"template": "order_update"})).await;
    assert!(
        status == 400 || status == 422,
        "a template must be an object: {status}"
    );
    let (status, body) = reply(&server, &conversation, json!({"body": "   "})).await;
    assert_eq!(status, 400, "{body}");

    // Media the provider will not hand over: marked failed with a reason, never lost silently.
    let media = whatsapp_payload(
        WA_PHONE_ID,
        "15551230007",
        "Eve",
        vec![json!({
        "from": "15551230007", "id": "wamid.h.2", "timestamp": now.to_string(), "type": "image",
        "image": {"id": "nomedia-1", "mime_type": "image/png"}})],
        vec![],
    );
    assert_eq!(
        server.meta_webhook("whatsapp-cloud", &media, None).await.0,
        200
    );
    let (contact_id, _) = conversation_of(&server, "whatsapp:+15551230007").await;
    let failed = server
        .eventually(Duration::from_secs(20), || async {
            let e = event(&server, &contact_id, |e| e["provider_id"] == "wamid.h.2").await?;
            (e["attachments"][0]["status"] == "failed").then_some(e)
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "a media id the provider refuses ends failed: {}",
                server.log()
            )
        });
    assert!(
        failed["attachments"][0]["error"].as_str().is_some(),
        "{failed}"
    );
    assert_eq!(
        graph.sends().len(),
        before,
        "nothing refused reached the provider"
    );
}
