//! The realtime WebSocket: a signed-in supervisor sees new timeline events as
//! they are stored, a reconnecting client resumes from its last sequence number
//! without losing events, and an unauthenticated socket gets nothing.

use futures::SinkExt;
use serde_json::json;
use switchboard_e2e::*;
use tokio_tungstenite::tungstenite::Message;

async fn connect(server: &Server, query: &str) -> Socket {
    let url = format!(
        "{}/api/v1/realtime{query}",
        server.base.replacen("http", "ws", 1)
    );
    tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket")
        .0
}

#[tokio::test]
async fn supervisors_see_new_messages_and_resume_after_reconnect() {
    let twilio = FakeTwilio::start().await;
    let server = Server::start(Options::default(), &twilio).await;

    let mut socket = connect(&server, &format!("?token={}", server.token)).await;
    let hello = next_json(&mut socket).await;
    assert_eq!(hello["type"], "hello");

    server.sms("SMrt00001", "+15553330001", "first").await;
    let first = loop {
        let e = next_json(&mut socket).await;
        if e["type"] == "timeline.created" {
            break e;
        }
    };
    assert_eq!(first["type"], "timeline.created", "{first}");
    assert_eq!(first["data"]["new_conversation"], true);
    let seq = first["seq"].as_u64().unwrap();
    drop(socket);

    // Two messages arrive while the client is away.
    server.sms("SMrt00002", "+15553330001", "second").await;
    server.sms("SMrt00003", "+15553330002", "third").await;

    let mut socket = connect(&server, &format!("?token={}&since={seq}", server.token)).await;
    assert_eq!(next_json(&mut socket).await["type"], "hello");
    // Everything published after `seq` arrives, in order and without gaps
    // (routing's task events are interleaved with the timeline events).
    let mut expected = seq + 1;
    let mut created = Vec::new();
    while created.len() < 2 {
        let e = next_json(&mut socket).await;
        assert_eq!(
            e["seq"].as_u64(),
            Some(expected),
            "no gap after resume: {e}"
        );
        expected += 1;
        if e["type"] == "timeline.created" {
            created.push(e);
        }
    }
    assert_eq!(created[0]["data"]["new_contact"], false);
    assert_eq!(created[1]["data"]["new_contact"], true);

    // The token may also come as the first message.
    let mut socket = connect(&server, "").await;
    socket
        .send(Message::Text(
            json!({"token": server.token}).to_string().into(),
        ))
        .await
        .unwrap();
    assert_eq!(next_json(&mut socket).await["type"], "hello");
}

#[tokio::test]
async fn a_socket_without_a_valid_token_gets_nothing() {
    let twilio = FakeTwilio::start().await;
    let server = Server::start(Options::default(), &twilio).await;
    let url = format!(
        "{}/api/v1/realtime?token=forged",
        server.base.replacen("http", "ws", 1)
    );
    let err = tokio_tungstenite::connect_async(url).await.unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");

    let mut socket = connect(&server, "").await;
    socket
        .send(Message::Text(json!({"token": "forged"}).to_string().into()))
        .await
        .unwrap();
    let reply = next_json(&mut socket).await;
    assert_eq!(reply["type"], "error");
    assert_eq!(reply["code"], "unauthorized");
}
