//! Sessions end when they must: an admin disabling an agent ends their sessions and
//! sockets at once, a password change ends the other sessions, "sign out everywhere"
//! ends them all; weak passwords are refused.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;
use switchboard_e2e::*;
use tokio_tungstenite::tungstenite::Message;

const SAM: (&str, &str) = ("sam@sessions.test", "sam-password-123");

async fn socket(server: &Server, token: &str) -> Socket {
    let url = format!(
        "{}/api/v1/realtime?token={token}",
        server.base.replacen("http", "ws", 1)
    );
    let mut socket = tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket")
        .0;
    assert_eq!(next_json(&mut socket).await["type"], "hello");
    socket
}

/// Waits for `session.revoked` and the close; returns how long it took.
async fn revoked(socket: &mut Socket) -> Duration {
    let started = Instant::now();
    loop {
        let v = next_json(socket).await;
        if v["type"] == "session.revoked" {
            break;
        }
    }
    let end = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .expect("the socket closes");
    assert!(
        matches!(end, None | Some(Ok(Message::Close(_))) | Some(Err(_))),
        "closed after session.revoked, got {end:?}"
    );
    started.elapsed()
}

async fn me(server: &Server, token: &str) -> u16 {
    server
        .call(token, "GET", "/api/v1/auth/me", json!(null))
        .await
        .0
}

async fn login_status(server: &Server, email: &str, password: &str) -> u16 {
    server
        .http
        .post(format!("{}/api/v1/auth/login", server.base))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn with_sam(twilio: &FakeTwilio) -> (Server, String) {
    let server = Server::start(Options::default(), twilio).await;
    let (status, body) = server
        .call(
            &server.token,
            "POST",
            "/api/v1/agents",
            json!({"email": SAM.0, "password": SAM.1, "name": "Sam", "role": "agent"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["agent"]["id"].as_str().unwrap().to_string();
    (server, id)
}

#[tokio::test]
async fn a_disabled_agent_is_signed_out_at_once_and_cannot_sign_in() {
    let twilio = FakeTwilio::start().await;
    let (server, sam_id) = with_sam(&twilio).await;
    let (sam, _) = server.login(SAM.0, SAM.1).await;
    let mut sam_socket = socket(&server, &sam).await;

    // Only admins disable, and not themselves.
    let (status, _) = server
        .call(
            &sam,
            "POST",
            &format!("/api/v1/agents/{sam_id}/disable"),
            json!(null),
        )
        .await;
    assert_eq!(status, 403);
    let (_, me_admin) = server
        .call(&server.token, "GET", "/api/v1/auth/me", json!(null))
        .await;
    let admin_id = me_admin["id"].as_str().unwrap();
    let (status, _) = server
        .call(
            &server.token,
            "POST",
            &format!("/api/v1/agents/{admin_id}/disable"),
            json!(null),
        )
        .await;
    assert_eq!(status, 400);

    let (status, body) = server
        .call(
            &server.token,
            "POST",
            &format!("/api/v1/agents/{sam_id}/disable"),
            json!(null),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["disabled"], true);
    let took = revoked(&mut sam_socket).await;
    assert!(took < Duration::from_secs(1), "socket closed in {took:?}");
    assert_eq!(me(&server, &sam).await, 401, "the session is gone");
    assert_eq!(login_status(&server, SAM.0, SAM.1).await, 401);
    let (_, roster) = server
        .call(&server.token, "GET", "/api/v1/agents", json!(null))
        .await;
    let listed = roster["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == sam_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(listed["disabled"], true);
    assert_eq!(listed["presence"], "offline");

    let (status, _) = server
        .call(
            &server.token,
            "POST",
            &format!("/api/v1/agents/{sam_id}/enable"),
            json!(null),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(login_status(&server, SAM.0, SAM.1).await, 200);
    // The admin's own socket was never touched.
    assert_eq!(me(&server, &server.token).await, 200);
}

#[tokio::test]
async fn a_password_change_ends_the_other_sessions_and_weak_passwords_are_refused() {
    let twilio = FakeTwilio::start().await;
    let (server, _) = with_sam(&twilio).await;
    let (here, _) = server.login(SAM.0, SAM.1).await;
    let (elsewhere, _) = server.login(SAM.0, SAM.1).await;
    let mut elsewhere_socket = socket(&server, &elsewhere).await;
    let mut here_socket = socket(&server, &here).await;

    let change =
        |current: &str, new: &str| json!({"current_password": current, "new_password": new});
    let (status, body) = server
        .call(
            &here,
            "POST",
            "/api/v1/auth/password",
            change("not-it", "a-new-long-password"),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (403, json!("wrong_password"))
    );
    for weak in ["short", "password123", "aaaaaaaaaaaa", SAM.0] {
        let (status, _) = server
            .call(&here, "POST", "/api/v1/auth/password", change(SAM.1, weak))
            .await;
        assert_eq!(status, 400, "{weak} refused");
    }
    let (status, _) = server
        .call(
            &here,
            "POST",
            "/api/v1/auth/password",
            change(SAM.1, "a-new-long-password"),
        )
        .await;
    assert_eq!(status, 204);
    revoked(&mut elsewhere_socket).await;
    assert_eq!(
        me(&server, &elsewhere).await,
        401,
        "the other session ended"
    );
    assert_eq!(me(&server, &here).await, 200, "this one stays");
    assert_eq!(login_status(&server, SAM.0, SAM.1).await, 401);
    assert_eq!(
        login_status(&server, SAM.0, "a-new-long-password").await,
        200
    );

    // Sign out everywhere: this session too, and its socket.
    let (status, body) = server
        .call(&here, "POST", "/api/v1/auth/logout-all", json!(null))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["sessions_ended"], 2,
        "this one and the login just above"
    );
    revoked(&mut here_socket).await;
    assert_eq!(me(&server, &here).await, 401);

    // New accounts need a strong enough password too.
    let (status, _) = server
        .call(
            &server.token,
            "POST",
            "/api/v1/agents",
            json!({"email": "kim@sessions.test", "password": "12345678", "role": "agent"}),
        )
        .await;
    assert_eq!(status, 400);
}
