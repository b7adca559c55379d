//! Voice on a cluster: a call lives on the node whose SIP and RTP sockets answered
//! it. Two `switchboard serve` processes share one PostgreSQL database and one NATS
//! stream; a trunk call reaches node A and waits in the queue; A is killed (SIGKILL).
//! The call cannot go on — its sockets died with A — so B, leading routing once A
//! is gone, ends it as failed with the reason on the call and its timeline event, and
//! closes its routing task; a node that starts again never ends calls other nodes
//! carry. The calls API reaches the node carrying a call whichever node it hits:
//! lists gather every live node's calls, controls are forwarded. An agent whose
//! softphone is connected to B answers a call A carries: A asks the softphone over
//! (`softphone.move`), B hands its offer to A, and caller and agent hear each other.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sqlx::Connection;
use switchboard_e2e::cluster::Cluster;
use switchboard_e2e::voice::{AgentPhone, SipCaller, answer_voice_offer, frame, in_order};
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

    // Node B lists the call A carries (asked of A over the relay), naming A; A lists
    // it once too (B carries none).
    for (server, name) in [(&b, "b"), (&a, "a")] {
        let (status, body) = server.get("/api/v1/calls").await;
        assert_eq!(status, 200, "{name}: {body}");
        let calls = body["calls"].as_array().expect("a calls list");
        assert_eq!(calls.len(), 1, "{name}: {body}");
        assert_eq!(calls[0]["id"], id.as_str(), "{name}: {body}");
        assert_eq!(calls[0]["node"], "a", "{name}: {body}");
        assert_eq!(calls[0]["state"], "queued", "{name}: {body}");
    }

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

#[tokio::test]
async fn an_agent_on_another_node_answers_a_call_and_both_sides_hear_each_other() {
    let cluster = Cluster::new("softphone").await;
    let twilio = FakeTwilio::start().await;
    let (a, b, mut caller, call) = a_call_waiting_on_a(&cluster, &twilio, &[]).await;
    let call_id = call["call_id"].as_str().unwrap().to_string();
    let (status, body) = b
        .post(
            "/api/v1/agents",
            serde_json::json!({"email": "vic@cluster.test", "password": "vic-password-1",
                "name": "Vic", "role": "agent"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (vic, _) = b.login("vic@cluster.test", "vic-password-1").await;

    // Vic works on B: the desk's socket and softphone are connected there.
    let phone = AgentPhone::connect(&b.base, &vic).await;
    let (status, body) = b
        .call(
            &vic,
            "PUT",
            "/api/v1/agents/me/presence",
            serde_json::json!({"status": "available"}),
        )
        .await;
    assert_eq!(status, 200, "{body}\na:\n{}\nb:\n{}", a.log(), b.log());

    // The call waiting on A is offered to Vic; A, holding no audio connection of
    // Vic's, asks the softphone over, through Vic's socket on B.
    let moved = b
        .eventually(Duration::from_secs(20), || async {
            phone.events_of("softphone.move").into_iter().next()
        })
        .await
        .unwrap_or_else(|| panic!("no softphone.move; a:\n{}\nb:\n{}", a.log(), b.log()));
    assert_eq!(moved["data"]["node"], "a", "{moved}");
    // The desk offers again naming A, on its socket to B, which hands it to A.
    let moved_phone = AgentPhone::connect_to(&b.base, &vic, Some("a")).await;

    answer_voice_offer(&b, &vic).await;
    let connected = b
        .eventually(Duration::from_secs(15), || async {
            let (_, v) = b
                .call(&vic, "GET", "/api/v1/calls/me", serde_json::json!(null))
                .await;
            v["calls"]
                .as_array()?
                .iter()
                .find(|c| c["id"] == call_id.as_str() && c["state"] == "connected")
                .cloned()
        })
        .await
        .unwrap_or_else(|| panic!("the call never connected; a:\n{}", a.log()));
    assert_eq!(connected["node"], "a", "{connected}");

    // Caller → agent, through A's media and the softphone's connection to A.
    let sent: Vec<Vec<u8>> = (0..50u8).map(frame).collect();
    for f in &sent {
        caller.say(f).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let heard = moved_phone.heard.lock().unwrap().clone();
    let found = in_order(&heard, &sent);
    assert!(
        found >= 45,
        "the agent heard {found} of 50 caller frames in order"
    );
    assert!(
        phone.heard.lock().unwrap().is_empty(),
        "nothing went to the connection the softphone left on B"
    );
    // Agent → caller.
    let before = caller.received.lock().unwrap().len();
    let spoken: Vec<Vec<u8>> = (0..50u8).map(|n| vec![0x90 + (n % 0x30); 160]).collect();
    for (i, f) in spoken.iter().enumerate() {
        moved_phone.say(i as u64 * 160, f.clone());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = switchboard_e2e::voice::payloads(&caller.received.lock().unwrap(), before, Some(0));
    let found = in_order(&got, &spoken);
    assert!(
        found >= 45,
        "the caller heard {found} of 50 agent frames in order"
    );

    // A warm transfer to Uma, whose softphone is on B: the consult cannot start on A
    // yet, is refused with why, and Uma's softphone is asked over to A; once it is
    // there, the consult starts.
    let (status, body) = b
        .post(
            "/api/v1/agents",
            serde_json::json!({"email": "uma@cluster.test", "password": "uma-password-1",
                "name": "Uma", "role": "agent"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let uma_id = body["agent"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_string();
    let (uma, _) = b.login("uma@cluster.test", "uma-password-1").await;
    let uma_phone = AgentPhone::connect(&b.base, &uma).await;
    let consult = serde_json::json!({"agent_id": uma_id, "mode": "warm"});
    let path = format!("/api/v1/calls/{call_id}/transfer");
    let (status, body) = b.call(&vic, "POST", &path, consult.clone()).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("try again")),
        "{body}"
    );
    let asked = b
        .eventually(Duration::from_secs(10), || async {
            uma_phone.events_of("softphone.move").into_iter().next()
        })
        .await
        .expect("Uma's softphone asked over to A");
    assert_eq!(asked["data"]["node"], "a", "{asked}");
    let _uma_on_a = AgentPhone::connect_to(&b.base, &uma, Some("a")).await;
    let (status, body) = b.call(&vic, "POST", &path, consult).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["call"]["state"], "consulting", "{body}");

    drop(caller);
    a.kill().await;
    b.kill().await;
    cluster.delete_stream().await;
}
