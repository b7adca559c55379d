//! The journey from the product notes as one test: a customer DMs on Instagram
//! about a late order, moves to WhatsApp for faster replies, then calls, then
//! gets an SMS confirmation — one contact, one conversation, every channel switch
//! recorded, and the agent's view shows all of it.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_e2e::meta::*;
use switchboard_e2e::voice::{SipCaller, voice_server};
use switchboard_e2e::*;

const CUSTOMER: &str = "+15551230001";
const DIALED: &str = "+15550001000";

async fn install(server: &Server, graph: &FakeGraph, id: &str, extra: Value) {
    let mut config = json!({
        "app_secret": META_APP_SECRET, "verify_token": META_VERIFY_TOKEN,
        "access_token": META_TOKEN, "api_base": graph.base,
    });
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    let (status, body) = server
        .post(
            "/api/v1/plugins",
            json!({"path": plugin_dist().join(id), "config": config, "allow_hosts": [graph.base]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn instagram_then_whatsapp_then_a_call_then_an_sms_is_one_journey() {
    let (server, sam, twilio) = voice_server(
        ("sam@journey.test", "sam-password-123", "Sam"),
        "127.0.0.1:5999",
        None,
        &[],
        &[],
    )
    .await;
    let graph = FakeGraph::start().await;
    install(&server, &graph, "instagram", json!({"page_id": "IGPAGE1"})).await;
    install(
        &server,
        &graph,
        "whatsapp-cloud",
        json!({"phone_number_id": "PNID1"}),
    )
    .await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let as_sam = |method: &'static str, path: String, body: Value| {
        let server = &server;
        let sam = sam.clone();
        async move { server.call(&sam, method, &path, body).await }
    };

    // 1. An Instagram DM.
    let dm = messaging_payload(
        "instagram",
        "IGPAGE1",
        vec![json!({
            "sender": {"id": "IGSID-JANE"}, "recipient": {"id": "IGPAGE1"}, "timestamp": now * 1000,
            "message": {"mid": "ig.1", "text": "My order #A-42 is late"}
        })],
    );
    assert_eq!(server.meta_webhook("instagram", &dm, None).await.0, 200);
    let contact = server.contact_by("instagram:IGSID-JANE").await.unwrap();
    let contact_id = contact["id"].as_str().unwrap().to_string();

    // Sam takes it and links the number Jane gives in the chat.
    let (s, v) = as_sam(
        "PUT",
        "/api/v1/agents/me/presence".into(),
        json!({"status": "available"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let offer = server
        .eventually(Duration::from_secs(15), || async {
            let (_, v) = as_sam("GET", "/api/v1/agents/me/offers".into(), json!(null)).await;
            v["offers"].as_array()?.first().cloned()
        })
        .await
        .unwrap_or_else(|| panic!("no offer: {}", server.log()));
    assert_eq!(offer["task"]["channel"], "instagram");
    let reservation = offer["reservation"]["id"].as_str().unwrap();
    let (s, v) = as_sam(
        "POST",
        format!("/api/v1/reservations/{reservation}/accept"),
        json!({}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = server
        .post(
            &format!("/api/v1/contacts/{contact_id}/identities"),
            json!({"kind": "phone", "value": CUSTOMER}),
        )
        .await;
    assert_eq!(s, 201, "{v}");

    // Sam's desk listens.
    let url = format!(
        "{}/api/v1/realtime?token={sam}",
        server.base.replacen("http", "ws", 1)
    );
    let mut desk = tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket")
        .0;
    assert_eq!(next_json(&mut desk).await["type"], "hello");

    // 2. WhatsApp from that number: the same person (same E.164), same case.
    let wa = whatsapp_payload(
        "PNID1",
        &CUSTOMER[1..],
        "Jane Doe",
        vec![json!({
            "from": &CUSTOMER[1..], "id": "wamid.j.1", "timestamp": now.to_string(), "type": "text",
            "text": {"body": "Writing here, it's faster"}
        })],
        vec![],
    );
    assert_eq!(
        server.meta_webhook("whatsapp-cloud", &wa, None).await.0,
        200
    );
    let via_whatsapp = server
        .contact_by(&format!("whatsapp:{CUSTOMER}"))
        .await
        .unwrap();
    assert_eq!(via_whatsapp["id"], contact_id.as_str(), "one contact");
    let (_, t) = server
        .get(&format!("/api/v1/contacts/{contact_id}/timeline"))
        .await;
    let case = t["events"][0]["conversation_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, v) = as_sam(
        "POST",
        format!("/api/v1/conversations/{case}/messages"),
        json!({"body": "Looking into it now"}),
    )
    .await;
    assert_eq!(s, 202, "{v}");
    let sends = graph.wait_for_sends(1, Duration::from_secs(15)).await;
    assert_eq!(
        sends[0].path, "/v21.0/PNID1/messages",
        "the reply goes by the channel the customer used last"
    );
    assert_eq!(sends[0].json["to"], &CUSTOMER[1..]);
    // The agent who wrote it sees its status move without reloading.
    let reply_event = v["event"]["id"].as_str().unwrap().to_string();
    let mut statuses = Vec::new();
    let pushed = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let m = next_json(&mut desk).await;
            if m["type"] == "timeline.delivery" && m["data"]["event_id"] == reply_event.as_str() {
                statuses.push(m["data"]["delivery_status"].clone());
                if m["data"]["delivery_status"] == "sent" {
                    return m;
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no delivery push to the agent: {statuses:?}"));
    assert_eq!(pushed["data"]["conversation_id"], case.as_str(), "{pushed}");

    // 3. A call from the same number.
    let mut caller = SipCaller::new(server.sip.unwrap(), CUSTOMER).await;
    assert_eq!(caller.call(DIALED).await, 200);
    let call = server
        .eventually(Duration::from_secs(15), || async {
            let (_, t) = server
                .get(&format!("/api/v1/contacts/{contact_id}/timeline"))
                .await;
            t["events"]
                .as_array()?
                .iter()
                .find(|e| e["kind"] == "call")
                .cloned()
        })
        .await
        .unwrap_or_else(|| panic!("no call on the timeline: {}", server.log()));
    caller.bye().await;

    // 4. The SMS confirmation.
    let conversation = call["conversation_id"].as_str().unwrap().to_string();
    let (s, v) = as_sam(
        "POST",
        format!("/api/v1/conversations/{conversation}/messages"),
        json!({"body": "Confirmed: order A-42 arrives tomorrow.", "channel": "sms"}),
    )
    .await;
    assert_eq!(s, 202, "{v}");
    let sms = twilio.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(sms[0].field("To"), Some(CUSTOMER));

    // The agent's view: one conversation with all of it, in order.
    let (s, view) = as_sam(
        "GET",
        format!("/api/v1/conversations/{conversation}"),
        json!(null),
    )
    .await;
    assert_eq!(s, 200, "{view}");
    let events = view["events"]
        .as_array()
        .or(view["timeline"].as_array())
        .unwrap_or_else(|| panic!("{view}"));
    let channels: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "message" || e["kind"] == "call")
        .filter_map(|e| e["channel"].as_str())
        .collect();
    let mut seen: Vec<&str> = Vec::new();
    for c in &channels {
        if seen.last() != Some(c) {
            seen.push(c);
        }
    }
    assert_eq!(
        seen,
        ["instagram", "whatsapp", "voice", "sms"],
        "{channels:?}"
    );
    let switches: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "channel_switch")
        .filter_map(|e| e["body"].as_str())
        .collect();
    assert_eq!(switches.len(), 3, "{switches:?}");
    let (_, t) = server
        .get(&format!("/api/v1/contacts/{contact_id}/timeline"))
        .await;
    let conversations: std::collections::HashSet<&str> = t["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["conversation_id"].as_str())
        .collect();
    assert_eq!(
        conversations.len(),
        1,
        "one conversation across four channels"
    );
}
