//! Realtime across nodes, end to end: two `switchboard serve` processes on one
//! PostgreSQL database and one NATS JetStream stream (`SWITCHBOARD_NATS_URL`, a
//! stream of the test's own). A supervisor's socket on node B sees the message a
//! webhook brought to node A, and the same client, moved to node A with the last
//! number it saw, gets what it missed with no gap.

use std::sync::Arc;

use serde_json::Value;
use switchboard_e2e::cluster::Cluster;
use switchboard_e2e::*;

const SUPERVISOR_EMAIL: &str = "sue@e2e.test";
const SUPERVISOR_PASSWORD: &str = "sue-password-123";

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

/// Reads until a `timeline.created`; every message before it too.
async fn until_created(socket: &mut Socket) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let e = next_json(socket).await;
        let done = e["type"] == "timeline.created";
        seen.push(e);
        if done {
            return seen;
        }
    }
}

#[tokio::test]
async fn a_message_taken_in_on_one_node_reaches_a_socket_on_another() {
    let cluster = Cluster::new("e2e").await;
    let twilio = FakeTwilio::start().await;
    // One set of options: the nodes differ by their bound ports (and so their
    // default names).
    let options = cluster.options(&[("SWITCHBOARD_VOICE", "off")]);
    let a = Server::start(options.clone(), &twilio).await;
    cli(
        a.data.path(),
        &options,
        &[
            "admin",
            "create-user",
            "--email",
            SUPERVISOR_EMAIL,
            "--password",
            SUPERVISOR_PASSWORD,
            "--role",
            "supervisor",
        ],
    )
    .await;
    let b = Server::start_in(Arc::new(tempfile::tempdir().unwrap()), options.clone()).await;

    let (token, _) = b.login(SUPERVISOR_EMAIL, SUPERVISOR_PASSWORD).await;
    let mut on_b = connect(&b, &format!("?token={token}")).await;
    let hello = next_json(&mut on_b).await;
    assert_eq!(hello["type"], "hello", "{hello}");

    // The webhook reaches node A; the supervisor is connected to node B.
    let (status, body) = a.sms("SMcl00001", "+15554440001", "hello from A").await;
    assert_eq!(status, 200, "{body}");
    let first = until_created(&mut on_b).await.pop().unwrap();
    assert_eq!(first["data"]["plugin_id"], "sms-twilio", "{first}");
    assert_eq!(first["data"]["new_conversation"], true, "{first}");
    let conversation = first["data"]["conversation_id"]
        .as_str()
        .unwrap()
        .to_string();
    let seq = first["seq"].as_u64().expect("a sequence number");
    // What the event announces, B reads from the shared database.
    let (status, view) = b
        .get(&format!("/api/v1/conversations/{conversation}"))
        .await;
    assert_eq!(status, 200, "{view}");
    assert!(view.to_string().contains("hello from A"), "{view}");
    drop(on_b);

    // Two more messages while the client is away, then it comes back on node A.
    a.sms("SMcl00002", "+15554440001", "second").await;
    a.sms("SMcl00003", "+15554440002", "third").await;
    let mut on_a = connect(&a, &format!("?token={token}&since={seq}")).await;
    assert_eq!(next_json(&mut on_a).await["type"], "hello");
    let mut expected = seq + 1;
    let mut created = Vec::new();
    while created.len() < 2 {
        for e in until_created(&mut on_a).await {
            assert_eq!(e["seq"].as_u64(), Some(expected), "no gap, none twice: {e}");
            expected += 1;
            if e["type"] == "timeline.created" {
                created.push(e);
            }
        }
    }
    assert_eq!(created[0]["data"]["conversation_id"], conversation.as_str());
    assert_eq!(created[0]["data"]["new_contact"], false);
    assert_eq!(created[1]["data"]["new_contact"], true);
    // The nodes stop first, or they would make the stream again.
    a.kill().await;
    b.kill().await;
    cluster.delete_stream().await;
}
