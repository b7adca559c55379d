//! Voice on a cluster: a call lives on the node whose SIP and RTP sockets answered
//! it. Two `switchboard serve` processes share one PostgreSQL database and one NATS
//! stream; a trunk call reaches node A and waits in the queue; A is killed (SIGKILL).
//! The call cannot go on — its sockets died with A — so B, leading routing once A
//! is gone, ends it as failed with the reason on the call and its timeline event, and
//! closes its routing task; a node that starts again never ends calls other nodes
//! carry.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sqlx::Connection;
use switchboard_e2e::cluster::Cluster;
use switchboard_e2e::voice::SipCaller;
use switchboard_e2e::*;

const DIALED: &str = "+15550001000";
const CALLER: &str = "+15551237001";

async fn unfinished_calls(db: &str) -> Vec<Value> {
    let mut conn = sqlx::postgres::PgConnection::connect(db).await.unwrap();
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT detail FROM call_record WHERE ended_at IS NULL")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    rows.iter()
        .map(|(d,)| serde_json::from_str(d).unwrap())
        .collect()
}

async fn call_and_task(db: &str) -> (Option<i64>, Value, Option<String>) {
    let mut conn = sqlx::postgres::PgConnection::connect(db).await.unwrap();
    let (ended, detail, conversation): (Option<i64>, String, Option<String>) =
        sqlx::query_as("SELECT ended_at, detail, conversation_id FROM call_record")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    let task: Option<(String,)> =
        sqlx::query_as("SELECT state FROM task WHERE conversation_id = $1 AND channel = 'voice'")
            .bind(conversation.clone())
            .fetch_optional(&mut conn)
            .await
            .unwrap();
    (
        ended,
        serde_json::from_str(&detail).unwrap(),
        task.map(|(s,)| s),
    )
}

/// Nodes `a` and `b` on one database and stream (with `extra` environment), the
/// trunk on loopback, and a caller whose call reached `a` and waits in the queue:
/// (a, b, the caller, the call's record detail).
async fn a_call_waiting_on_a(
    cluster: &Cluster,
    twilio: &FakeTwilio,
    extra: &[(&str, &str)],
) -> (Server, Server, SipCaller, Value) {
    let on = |node: &str| cluster.node(node, extra);
    let data = provision(&on("a"), twilio).await;
    let trunk = [
        "trunk",
        "add",
        "--name",
        "carrier",
        "--address",
        "127.0.0.1:5999",
    ];
    cli(data.path(), &on("a"), &trunk).await;
    let a = Server::start_in(Arc::new(data), on("a")).await;
    let b = Server::start_in(Arc::new(tempfile::tempdir().unwrap()), on("b")).await;
    // The call reaches A and waits: nobody is available.
    let mut caller = SipCaller::new(a.sip.expect("voice on a"), CALLER).await;
    assert_eq!(caller.call(DIALED).await, 200);
    let queued = a
        .eventually(Duration::from_secs(15), || async {
            unfinished_calls(&cluster.db.url)
                .await
                .into_iter()
                .find(|c| c["state"] == "queued")
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "no queued call on a; log:
{}",
                a.log()
            )
        });
    (a, b, caller, queued)
}

#[tokio::test]
async fn a_call_whose_node_dies_is_ended_as_failed_and_its_task_closed() {
    let cluster = Cluster::new("voice").await;
    let twilio = FakeTwilio::start().await;
    let (a, b, caller, queued) =
        a_call_waiting_on_a(&cluster, &twilio, &[("SWITCHBOARD_LEADER_POLL_MS", "200")]).await;
    let (_, health) = a.get("/healthz").await;
    assert_eq!(
        (health["node"].as_str(), health["routing"].as_str()),
        (Some("a"), Some("leader"))
    );
    let (_, health) = b.get("/healthz").await;
    assert_eq!(health["routing"], "follower", "{health}");
    assert_eq!(queued["node"], "a");

    // A restarting node B (it was not carrying it) leaves A's live call alone.
    let b = {
        let (dir, options) = b.kill().await;
        Server::start_in(dir, options).await
    };
    assert_eq!(
        unfinished_calls(&cluster.db.url).await.len(),
        1,
        "B must not end A's call"
    );

    // A dies. B leads, finds A silent, and ends the call A carried.
    let a_log = a.log();
    a.kill().await;
    drop(caller);
    let ended = b
        .eventually(Duration::from_secs(30), || async {
            // Ended, and its task closed right after.
            let (ended, detail, task) = call_and_task(&cluster.db.url).await;
            ended
                .filter(|_| task.as_deref() != Some("pending"))
                .map(|_| (detail, task))
        })
        .await
        .unwrap_or_else(|| panic!("the call was never ended; b:\n{}\na:\n{a_log}", b.log()));
    let (detail, task) = ended;
    assert_eq!(detail["outcome"], "failed", "{detail}");
    assert!(
        detail["failure"]
            .as_str()
            .is_some_and(|f| f.contains("(a) stopped")),
        "{detail}"
    );
    assert_eq!(
        task.as_deref(),
        Some("canceled"),
        "the waiting call's task is closed"
    );
    let (_, health) = b.get("/healthz").await;
    assert_eq!(health["routing"], "leader", "{health}");
    // The caller's timeline says so.
    let contact = b
        .contact_by(&format!("phone:{CALLER}"))
        .await
        .expect("the caller's contact");
    let (_, timeline) = b
        .get(&format!(
            "/api/v1/contacts/{}/timeline",
            contact["id"].as_str().unwrap()
        ))
        .await;
    let call = timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "call")
        .cloned()
        .expect("a call event");
    assert_eq!(call["data"]["outcome"], "failed", "{call}");
    b.kill().await;
    cluster.delete_stream().await;
}

#[tokio::test]
async fn a_call_control_sent_to_another_node_reaches_the_node_carrying_the_call() {
    let cluster = Cluster::new("voice").await;
    let twilio = FakeTwilio::start().await;
    let (a, b, caller, call) = a_call_waiting_on_a(&cluster, &twilio, &[]).await;
    let id = call["call_id"].as_str().unwrap().to_string();

    // The admin hangs up through node B, which does not carry the call: B hands the
    // request to A, and A's answer comes back.
    let (status, body) = b
        .post(&format!("/api/v1/calls/{id}/hangup"), serde_json::json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ended"], id.as_str());
    let ended = a
        .eventually(Duration::from_secs(15), || async {
            let (ended, detail, _) = call_and_task(&cluster.db.url).await;
            ended.map(|_| detail)
        })
        .await
        .unwrap_or_else(|| panic!("the call did not end; a:\n{}", a.log()));
    assert_ne!(ended["outcome"], "in_progress", "{ended}");
    // A's refusal comes back as A gives it: the call is gone now.
    let (status, body) = b
        .post(&format!("/api/v1/calls/{id}/hangup"), serde_json::json!({}))
        .await;
    let (direct, _) = a
        .post(&format!("/api/v1/calls/{id}/hangup"), serde_json::json!({}))
        .await;
    assert_eq!(status, direct, "{body}");
    drop(caller);
    a.kill().await;
    b.kill().await;
    cluster.delete_stream().await;
}
