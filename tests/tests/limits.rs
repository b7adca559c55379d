//! Limits: WebSockets per client and their message size (SWITCHBOARD_WS_*), request
//! bodies per kind of route (SWITCHBOARD_*_BODY_BYTES).

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::json;
use switchboard_e2e::*;
use tokio_tungstenite::tungstenite::Message;

fn url(server: &Server, query: &str) -> String {
    format!(
        "{}/api/v1/realtime{query}",
        server.base.replacen("http", "ws", 1)
    )
}

async fn open(server: &Server) -> Socket {
    let (mut socket, _) =
        tokio_tungstenite::connect_async(url(server, &format!("?token={}", server.token)))
            .await
            .expect("websocket");
    assert_eq!(next_json(&mut socket).await["type"], "hello");
    socket
}

#[tokio::test]
async fn sockets_per_client_are_capped_and_oversized_messages_close_the_socket() {
    let twilio = FakeTwilio::start().await;
    let options = Options {
        env: vec![
            ("SWITCHBOARD_WS_PER_CLIENT".into(), "2".into()),
            ("SWITCHBOARD_WS_MAX_MESSAGE_BYTES".into(), "4096".into()),
        ],
        ..Options::default()
    };
    let server = Server::start(options, &twilio).await;
    let first = open(&server).await;
    let _second = open(&server).await;

    // A third, with the token in the URL: refused before the upgrade.
    let refused =
        tokio_tungstenite::connect_async(url(&server, &format!("?token={}", server.token))).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429)
        }
        other => panic!("a third socket should be refused, got {other:?}"),
    }
    // With the token as the first message: told why, then closed.
    let (mut late, _) = tokio_tungstenite::connect_async(url(&server, ""))
        .await
        .expect("upgrade");
    late.send(Message::Text(
        json!({"token": server.token}).to_string().into(),
    ))
    .await
    .unwrap();
    let answer = next_json(&mut late).await;
    assert_eq!(answer["code"], "too_many_sockets");

    // Closing one frees its place.
    drop(first);
    let mut reopened = None;
    for _ in 0..50 {
        if let Ok((mut s, _)) =
            tokio_tungstenite::connect_async(url(&server, &format!("?token={}", server.token)))
                .await
        {
            assert_eq!(next_json(&mut s).await["type"], "hello");
            reopened = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut socket = reopened.expect("a place after closing a socket");

    // A message over the limit closes the socket; the server carries on.
    socket
        .send(Message::Text("x".repeat(10_000).into()))
        .await
        .unwrap();
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(_))) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("the socket ends");
    assert!(
        matches!(end, None | Some(Ok(Message::Close(_))) | Some(Err(_))),
        "closed, got {end:?}"
    );
    let health = server
        .http
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn bodies_over_their_routes_limit_are_refused_with_413() {
    let twilio = FakeTwilio::start().await;
    let server = Server::start(Options::default(), &twilio).await;
    let post = |path: &str, body: String, token: Option<&str>| {
        let mut request = server
            .http
            .post(format!("{}{path}", server.base))
            .header("content-type", "application/json")
            .body(body);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        request.send()
    };
    // /api/v1: 256 KiB by default.
    let note = json!({"body": "x".repeat(300 * 1024)}).to_string();
    let r = post("/api/v1/conversations/x/notes", note, Some(&server.token))
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // /webchat/v1: 64 KiB.
    let chat = json!({"name": "x".repeat(100 * 1024)}).to_string();
    let r = post("/webchat/v1/sessions", chat, None).await.unwrap();
    assert_eq!(r.status(), 413);
    // /hooks: 2 MiB; a webhook of 1 MiB is still read (and refused by the connector's
    // signature check, not by size).
    let r = post("/hooks/sms-twilio/inbound", "x".repeat(3 << 20), None)
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let r = post("/hooks/sms-twilio/inbound", "x".repeat(1 << 20), None)
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // The server carries on.
    let (status, _) = server.sms("SMafterbig", "+15553000001", "hello").await;
    assert_eq!(status, 200);
}
