//! WebSocket limits: sockets per client and message size (SWITCHBOARD_WS_*).

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchboard_e2e::*;
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn url(server: &Server, query: &str) -> String {
    format!(
        "{}/api/v1/realtime{query}",
        server.base.replacen("http", "ws", 1)
    )
}

async fn next_json(socket: &mut Socket) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a message within 10 s")
            .expect("socket open")
            .expect("frame");
        if let Message::Text(text) = msg {
            return serde_json::from_str(&text).unwrap();
        }
    }
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
