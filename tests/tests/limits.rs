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
    let options = Options::env(&[
        ("SWITCHBOARD_WS_PER_CLIENT", "2"),
        ("SWITCHBOARD_WS_MAX_MESSAGE_BYTES", "4096"),
    ]);
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
    assert_eq!(server.healthz().await, 200);
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

/// Reads from `stream` until the server closes it (or `within` passes); returns
/// everything read and whether it was closed.
async fn read_until_closed(stream: &mut tokio::net::TcpStream, within: Duration) -> (String, bool) {
    use tokio::io::AsyncReadExt;
    let mut seen = Vec::new();
    let closed = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    (String::from_utf8_lossy(&seen).into_owned(), closed)
}

#[tokio::test]
async fn slow_idle_and_oversized_requests_are_cut_off() {
    use tokio::io::AsyncWriteExt;
    let twilio = FakeTwilio::start().await;
    let options = Options::env(&[
        ("SWITCHBOARD_HTTP_HEADER_TIMEOUT_MS", "1000"),
        // Long enough for the test server's own sign-in (argon2 in a debug build on
        // a busy machine).
        ("SWITCHBOARD_HTTP_REQUEST_TIMEOUT_MS", "8000"),
        ("SWITCHBOARD_HTTP_MAX_HEADER_BYTES", "16384"),
    ]);
    let server = Server::start(options, &twilio).await;
    let addr = server.base.trim_start_matches("http://").to_string();
    let connect = || tokio::net::TcpStream::connect(addr.clone());

    // Slowloris: a head trickled one header every 200 ms is cut off by the header
    // timeout, long before the client would have finished (60 headers, 12 s).
    let mut slow = connect().await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut cut_off = false;
    for i in 0..60 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if slow
            .write_all(format!("X-Slow-{i}: y\r\n").as_bytes())
            .await
            .is_err()
        {
            cut_off = true;
            break;
        }
        let (_, closed) = read_until_closed(&mut slow, Duration::from_millis(1)).await;
        if closed {
            cut_off = true;
            break;
        }
    }
    assert!(
        cut_off,
        "a trickled request head was still accepted after 12 s"
    );

    // A connection that sends nothing, and a keep-alive connection left idle after
    // its request, are closed too.
    let mut silent = connect().await.unwrap();
    let (_, closed) = read_until_closed(&mut silent, Duration::from_secs(20)).await;
    assert!(closed, "a silent connection stayed open");
    let mut idle = connect().await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (answer, closed) = read_until_closed(&mut idle, Duration::from_secs(20)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(closed, "an idle keep-alive connection stayed open");

    // A head over the size limit is refused with 431.
    let mut big = connect().await.unwrap();
    let head = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(32 * 1024)
    );
    let _ = big.write_all(head.as_bytes()).await;
    let (answer, closed) = read_until_closed(&mut big, Duration::from_secs(20)).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");
    assert!(closed);

    // So is a head with more fields than allowed (100 by default).
    let mut many = connect().await.unwrap();
    let fields: String = (0..150).map(|i| format!("X-F{i}: v\r\n")).collect();
    let head = format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{fields}\r\n");
    let _ = many.write_all(head.as_bytes()).await;
    let (answer, _) = read_until_closed(&mut many, Duration::from_secs(20)).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");

    // A body that stops coming: 408 in the API's error shape.
    let mut stalled = connect().await.unwrap();
    stalled
        .write_all(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"email\":",
        )
        .await
        .unwrap();
    let (answer, _) = read_until_closed(&mut stalled, Duration::from_secs(20)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");

    // Ordinary requests were served all along.
    assert_eq!(server.healthz().await, 200);
}

#[tokio::test]
async fn a_source_of_forged_webhooks_is_throttled_and_real_ones_from_elsewhere_pass() {
    let twilio = FakeTwilio::start().await;
    let options = Options::env(&[
        ("SWITCHBOARD_WEBHOOK_FAILURES_PER_MINUTE", "6"),
        ("SWITCHBOARD_WEBHOOK_FAILURE_BURST", "10"),
    ]);
    let server = Server::start(options, &twilio).await;
    let url = format!("{}/hooks/sms-twilio/inbound", server.base);
    let params = [
        ("MessageSid", "SMforged"),
        ("From", "+15553000009"),
        ("Body", "x"),
    ];
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let (status, _) = server.raw_webhook(&url, &params, Some("forged")).await;
        statuses.push(status);
    }
    assert_eq!(&statuses[..10], &[403; 10], "{statuses:?}");
    assert_eq!(&statuses[10..], &[429; 10], "{statuses:?}");
    let refused = server
        .http
        .post(&url)
        .header("X-Twilio-Signature", "forged")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");

    // The provider, from another address, is not affected.
    let provider = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let params = [
        ("MessageSid", "SMreal"),
        ("SmsSid", "SMreal"),
        ("AccountSid", ACCOUNT_SID),
        ("From", "+15553000010"),
        ("To", FROM_NUMBER),
        ("Body", "a real one"),
        ("NumMedia", "0"),
        ("SmsStatus", "received"),
    ];
    let signature = twilio_signature(AUTH_TOKEN, &url, &params);
    let (status, _) = post_form(&provider, &url, &params, Some(&signature)).await;
    assert_eq!(status, 200);
    assert!(server.contact_by("phone:+15553000010").await.is_some());
}

#[tokio::test]
async fn webchat_visitors_and_sockets_are_held_to_a_message_rate() {
    let twilio = FakeTwilio::start().await;
    let options = Options::env(&[
        ("SWITCHBOARD_WEBCHAT_MESSAGES_PER_MINUTE", "6"),
        ("SWITCHBOARD_WEBCHAT_MESSAGE_BURST", "5"),
        ("SWITCHBOARD_WS_MESSAGES_PER_SECOND", "1"),
        ("SWITCHBOARD_WS_MESSAGE_BURST", "5"),
    ]);
    let server = Server::start(options, &twilio).await;
    let start = |name: &str| {
        server
            .http
            .post(format!("{}/webchat/v1/sessions", server.base))
            .json(&json!({"name": name}))
            .send()
    };
    let first: serde_json::Value = start("Ada").await.unwrap().json().await.unwrap();
    let second: serde_json::Value = start("Grace").await.unwrap().json().await.unwrap();
    let send = |token: String, id: usize| {
        server
            .http
            .post(format!("{}/webchat/v1/messages", server.base))
            .bearer_auth(token)
            .json(&json!({"client_id": format!("m{id}"), "body": format!("line {id}")}))
            .send()
    };
    let token = first["token"].as_str().unwrap().to_string();
    let mut statuses = Vec::new();
    for i in 0..8 {
        let r = send(token.clone(), i).await.unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            assert!(r.headers().contains_key("retry-after"));
        }
    }
    assert_eq!(
        statuses,
        [202, 202, 202, 202, 202, 429, 429, 429],
        "{statuses:?}"
    );
    let other = send(second["token"].as_str().unwrap().to_string(), 0)
        .await
        .unwrap();
    assert_eq!(other.status(), 202, "another visitor is not affected");

    // An agent's socket that floods is told why and closed; a new one works.
    let (mut socket, _) =
        tokio_tungstenite::connect_async(url(&server, &format!("?token={}", server.token)))
            .await
            .expect("websocket");
    assert_eq!(next_json(&mut socket).await["type"], "hello");
    for _ in 0..20 {
        if socket
            .send(Message::Text(json!({"type": "noop"}).to_string().into()))
            .await
            .is_err()
        {
            break;
        }
    }
    let mut told = false;
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(t))) => {
                    let v: serde_json::Value = serde_json::from_str(&t).unwrap_or_default();
                    told |= v["code"] == "rate_limited";
                }
                Some(Ok(Message::Close(frame))) => {
                    return frame.map(|f| u16::from(f.code));
                }
                None | Some(Err(_)) => return None,
                Some(Ok(_)) => {}
            }
        }
    })
    .await
    .expect("the flooding socket is closed");
    assert!(told, "the client is told why");
    assert_eq!(ended, Some(1008));
    let _fresh = open(&server).await;
}
