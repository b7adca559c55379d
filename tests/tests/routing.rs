//! Routing end to end: an inbound SMS becomes a task, the available agent gets
//! the offer (over the API and the realtime feed), accepts, completes; the
//! policy plugin decides the queue; offers survive a kill -9.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use switchboard_e2e::*;

const AGENT_EMAIL: &str = "sam@e2e.test";
const AGENT_PASSWORD: &str = "sam-password-123";

async fn login(server: &Server, email: &str, password: &str) -> String {
    server.login(email, password).await.0
}

async fn call(server: &Server, token: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    server.call(token, method, path, body).await
}

async fn wait_offers(server: &Server, token: &str, n: usize) -> Vec<Value> {
    server
        .eventually(Duration::from_secs(10), || async {
            let (_, v) = call(
                server,
                token,
                "GET",
                "/api/v1/agents/me/offers",
                json!(null),
            )
            .await;
            let offers = v["offers"].as_array()?.clone();
            (offers.len() >= n).then_some(offers)
        })
        .await
        .unwrap_or_else(|| panic!("expected {n} offer(s)"))
}

async fn provision_with_agent(options: &Options, twilio: &FakeTwilio) -> tempfile::TempDir {
    let data = provision(options, twilio).await;
    cli(
        data.path(),
        options,
        &[
            "admin",
            "create-user",
            "--email",
            AGENT_EMAIL,
            "--password",
            AGENT_PASSWORD,
            "--role",
            "agent",
            "--name",
            "Sam",
            "--skills",
            "billing:4",
        ],
    )
    .await;
    data
}

#[tokio::test]
async fn an_inbound_sms_is_offered_accepted_and_completed() {
    let twilio = FakeTwilio::start().await;
    let options = Options::default();
    let data = provision_with_agent(&options, &twilio).await;
    let server = Server::start_in(Arc::new(data), options).await;
    let sam = login(&server, AGENT_EMAIL, AGENT_PASSWORD).await;

    let (status, v) = call(
        &server,
        &sam,
        "PUT",
        "/api/v1/agents/me/presence",
        json!({"status": "available"}),
    )
    .await;
    assert_eq!(status, 200, "{v}");

    let ws_url = format!(
        "{}/api/v1/realtime?token={sam}",
        server.base.replacen("http", "ws", 1)
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();

    server
        .sms("SMroute01", "+15554440001", "I was double charged")
        .await;
    let offers = wait_offers(&server, &sam, 1).await;
    let reservation = offers[0]["reservation"]["id"].as_str().unwrap().to_string();
    let task_id = offers[0]["task"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        offers[0]["task"]["queue"], "messaging",
        "no policy installed: built-in queue by channel"
    );
    assert!(offers[0]["conversation_id"].is_string());

    // The offer also arrived on the agent's realtime feed.
    let offer_event = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(msg)) = socket.next().await {
            if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == "offer.created" {
                    return v;
                }
            }
        }
        panic!("socket closed")
    })
    .await
    .expect("offer pushed over the websocket");
    assert_eq!(
        offer_event["data"]["reservation"]["id"],
        reservation.as_str()
    );

    // Another agent cannot take it.
    let (status, _) = call(
        &server,
        &server.token.clone(),
        "POST",
        "/api/v1/reservations/nope/accept",
        json!({}),
    )
    .await;
    assert_eq!(status, 404);

    let (status, v) = call(
        &server,
        &sam,
        "POST",
        &format!("/api/v1/reservations/{reservation}/accept"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let (_, stats) = call(
        &server,
        &sam,
        "GET",
        "/api/v1/queues/messaging/stats",
        json!(null),
    )
    .await;
    assert_eq!(stats["stats"]["assigned"], 1, "{stats}");
    assert_eq!(stats["stats"]["waiting"], 0, "{stats}");

    let (status, v) = call(
        &server,
        &sam,
        "POST",
        &format!("/api/v1/tasks/{task_id}/wrapup"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = call(
        &server,
        &sam,
        "POST",
        &format!("/api/v1/tasks/{task_id}/complete"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let (_, stats) = call(
        &server,
        &sam,
        "GET",
        "/api/v1/queues/messaging/stats",
        json!(null),
    )
    .await;
    assert_eq!(stats["stats"]["completed"], 1, "{stats}");
}

#[tokio::test]
async fn the_policy_plugin_picks_the_queue_and_offers_survive_a_crash() {
    let twilio = FakeTwilio::start().await;
    let options = Options::default();
    let data = provision_with_agent(&options, &twilio).await;
    let policy = plugin_dist().join("routing-default");
    cli(
        data.path(),
        &options,
        &[
            "plugin",
            "install",
            policy.to_str().unwrap(),
            "--config",
            "channel_queues=sms=texts",
        ],
    )
    .await;
    let server = Server::start_in(Arc::new(data), options).await;
    let sam = login(&server, AGENT_EMAIL, AGENT_PASSWORD).await;
    call(
        &server,
        &sam,
        "PUT",
        "/api/v1/agents/me/presence",
        json!({"status": "available"}),
    )
    .await;

    server.sms("SMroute02", "+15554440002", "hello").await;
    let offers = wait_offers(&server, &sam, 1).await;
    assert_eq!(
        offers[0]["task"]["queue"], "texts",
        "the routing-default plugin chose the queue"
    );
    let reservation = offers[0]["reservation"]["id"].as_str().unwrap().to_string();

    let (data, options) = server.kill().await;
    let server = Server::start_in(data, options).await;
    let sam = login(&server, AGENT_EMAIL, AGENT_PASSWORD).await;
    let offers = wait_offers(&server, &sam, 1).await;
    assert_eq!(offers.len(), 1, "restored, not duplicated: {offers:?}");
    assert_eq!(
        offers[0]["reservation"]["id"],
        reservation.as_str(),
        "the pending offer survived"
    );
    let (status, v) = call(
        &server,
        &sam,
        "POST",
        &format!("/api/v1/reservations/{reservation}/accept"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
}

#[tokio::test]
async fn agents_cannot_act_for_each_other() {
    let twilio = FakeTwilio::start().await;
    let options = Options::default();
    let data = provision_with_agent(&options, &twilio).await;
    let server = Server::start_in(Arc::new(data), options).await;
    let sam = login(&server, AGENT_EMAIL, AGENT_PASSWORD).await;
    let (_, me) = call(
        &server,
        &server.token.clone(),
        "GET",
        "/api/v1/auth/me",
        json!(null),
    )
    .await;
    let admin_id = me["id"].as_str().unwrap();
    let (status, _) = call(
        &server,
        &sam,
        "PUT",
        &format!("/api/v1/agents/{admin_id}/presence"),
        json!({"status": "available"}),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = call(
        &server,
        &sam,
        "POST",
        "/api/v1/queues",
        json!({"name": "vip"}),
    )
    .await;
    assert_eq!(status, 403, "queues are admin business");
    let (status, _) = call(
        &server,
        &sam,
        "PUT",
        "/api/v1/agents/me/presence",
        json!({"status": "dancing"}),
    )
    .await;
    assert_eq!(status, 400);
}
