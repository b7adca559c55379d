//! The host under abuse: a plugin that loops, blows its memory or panics fails
//! only its own calls while the server keeps answering, and is quarantined
//! (visibly, through the API) until an admin re-enables it. A server killed
//! with SIGKILL mid-stream loses no acknowledged webhook and duplicates none.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use sqlx::Connection;
use switchboard_e2e::*;

#[tokio::test]
async fn misbehaving_plugin_fails_alone_and_is_quarantined() {
    let twilio = FakeTwilio::start().await;
    let options = Options {
        env: vec![
            ("SWITCHBOARD_PLUGIN_CALL_TIMEOUT_MS".into(), "300".into()),
            ("SWITCHBOARD_PLUGIN_MEMORY_MB".into(), "32".into()),
            ("SWITCHBOARD_QUARANTINE_AFTER".into(), "3".into()),
        ],
        ..Options::default()
    };
    let data = provision(&options, &twilio).await;
    let misbehave = plugin_dist().join("test-misbehave");
    cli(
        data.path(),
        &options,
        &["plugin", "install", misbehave.to_str().unwrap()],
    )
    .await;
    let server = Server::start_in(Arc::new(data), options).await;

    let hook = |path: &str| format!("{}/hooks/test-misbehave/{path}", server.base);
    for (path, code) in [
        ("loop", "timed out"),
        ("bomb", "memory limit"),
        ("panic", "trapped"),
    ] {
        let r = server.http.post(hook(path)).body("x").send().await.unwrap();
        assert_eq!(r.status(), 500, "{path}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "plugin_failed", "{path}: {body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(code),
            "{path}: {body}"
        );
        // Everything else keeps working while the plugin misbehaves.
        let (status, _) = server
            .sms(&format!("SMok{path}"), "+15550001234", "still there?")
            .await;
        assert_eq!(status, 200, "sms-twilio unaffected after {path}");
        let health = server
            .http
            .get(format!("{}/healthz", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 200);
    }

    // Three failures in a row: quarantined, visible, refused without running.
    let r = server.http.post(hook("ok")).body("x").send().await.unwrap();
    assert_eq!(r.status(), 503);
    let (_, plugin) = server.get("/api/v1/plugins/test-misbehave").await;
    assert!(
        plugin["quarantined"]
            .as_str()
            .unwrap_or_default()
            .contains("3 failed calls in a row"),
        "{plugin}"
    );
    let (status, _) = server
        .post("/api/v1/plugins/test-misbehave/enable", json!({}))
        .await;
    assert_eq!(status, 200);
    let r = server
        .http
        .post(hook("ok?id=after-enable"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "re-enabled plugin serves again");
}

#[tokio::test]
async fn kill_9_mid_stream_loses_no_acknowledged_webhook() {
    let twilio = FakeTwilio::start().await;
    let server = Server::start(Options::default(), &twilio).await;
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let attempted = Arc::new(Mutex::new(BTreeSet::new()));

    let mut tasks = Vec::new();
    for worker in 0..8 {
        let (base, http) = (server.base.clone(), server.http.clone());
        let (acked, attempted) = (acked.clone(), attempted.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..400 {
                let sid = format!("SMcrash{worker:02}{i:04}");
                let from = format!("+1555700{:04}", (worker * 400 + i) % 50);
                attempted.lock().unwrap().insert(sid.clone());
                if send_sms(&http, &base, &sid, &from).await.is_err() {
                    return; // the server is gone
                }
                acked.lock().unwrap().insert(sid);
            }
        }));
    }
    // Let a good number through, then pull the plug mid-stream.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < 150 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (data, options) = server.kill().await;
    for t in tasks {
        let _ = t.await;
    }
    let acked = acked.lock().unwrap().clone();
    let attempted = attempted.lock().unwrap().clone();
    assert!(
        acked.len() >= 150,
        "only {} webhooks got through before the kill",
        acked.len()
    );
    assert!(
        attempted.len() > acked.len(),
        "the kill must interrupt the stream"
    );

    // After the restart, every acknowledged webhook is there.
    let server = Server::start_in(data, options).await;
    let db_path = server.data.path().join("switchboard.db");
    let stored = stored_sids(&db_path).await;
    let lost: Vec<_> = acked.difference(&stored).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");

    // The provider retries everything it did not see acknowledged (and some it
    // did): each is stored exactly once.
    for sid in &attempted {
        let n: u32 = sid[9..].parse().unwrap();
        let worker: u32 = sid[7..9].parse().unwrap();
        let from = format!("+1555700{:04}", (worker * 400 + n) % 50);
        send_sms(&server.http, &server.base, sid, &from)
            .await
            .expect("retry after restart");
    }
    let total = count_inbound(&db_path).await;
    assert_eq!(
        total as usize,
        attempted.len(),
        "no duplicates, nothing missing"
    );
}

/// A connector that always says `more` and never brings anything gets one turn
/// (the host's 10 polls in a row) and then waits its interval, here 60 s: were its
/// `more` believed, the poller would call it again at once, over and over.
#[tokio::test]
async fn a_connector_that_says_more_with_nothing_waits_its_interval() {
    let twilio = FakeTwilio::start().await;
    let options = Options::default();
    let data = provision(&options, &twilio).await;
    let misbehave = plugin_dist().join("test-misbehave");
    cli(
        data.path(),
        &options,
        &[
            "plugin",
            "install",
            misbehave.to_str().unwrap(),
            "--config",
            "poll=empty-more",
        ],
    )
    .await;
    let server = Server::start_in(Arc::new(data), options).await;
    let db_path = server.data.path().join("switchboard.db");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while polls(&db_path).await.is_none_or(|n| n < 10) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first turn never ended: {:?} polls",
            polls(&db_path).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // One turn is 10 polls, and the poller's next turns (every 250 ms) pass it by.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(polls(&db_path).await, Some(10));
    // Everything else goes on meanwhile.
    let (status, _) = server.sms("SMafterpolls", "+15550001234", "hello").await;
    assert_eq!(status, 200);
}

/// How many polls `test-misbehave` has answered (its cursor counts them).
async fn polls(db: &std::path::Path) -> Option<u64> {
    let mut conn = open(db).await;
    let row: Option<(Option<String>,)> =
        sqlx::query_as("SELECT cursor FROM plugin_poll WHERE plugin_id = 'test-misbehave'")
            .fetch_optional(&mut conn)
            .await
            .unwrap();
    row.and_then(|(cursor,)| cursor?.parse().ok())
}

async fn send_sms(http: &reqwest::Client, base: &str, sid: &str, from: &str) -> Result<(), String> {
    let url = format!("{base}/hooks/sms-twilio/inbound");
    let params = [
        ("MessageSid", sid),
        ("From", from),
        ("To", FROM_NUMBER),
        ("Body", "crash test"),
    ];
    let signature = twilio_signature(AUTH_TOKEN, &url, &params);
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let r = http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("X-Twilio-Signature", signature)
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if r.status().is_success() {
        Ok(())
    } else {
        Err(format!("status {}", r.status()))
    }
}

async fn open(db: &std::path::Path) -> sqlx::SqliteConnection {
    sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("open the server's SQLite file")
}

async fn stored_sids(db: &std::path::Path) -> BTreeSet<String> {
    let mut conn = open(db).await;
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT provider_id FROM timeline_event WHERE plugin_id = 'sms-twilio' AND direction = 'in' AND kind = 'message'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    rows.into_iter().map(|(s,)| s).collect()
}

async fn count_inbound(db: &std::path::Path) -> i64 {
    let mut conn = open(db).await;
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM timeline_event WHERE plugin_id = 'sms-twilio' AND direction = 'in' AND kind = 'message'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    n
}

#[tokio::test]
async fn pending_sends_survive_a_restart() {
    let twilio = FakeTwilio::start().await;
    twilio.fail_next(1_000);
    let options = Options {
        env: vec![("SWITCHBOARD_OUTBOX_RETRY_BASE_MS".into(), "300".into())],
        ..Options::default()
    };
    let server = Server::start(options, &twilio).await;
    server.sms("SMrestart1", "+15550606060", "hello").await;
    let (_, open) = server.get("/api/v1/conversations?status=open").await;
    let id = open["conversations"][0]["id"].as_str().unwrap().to_string();
    let (status, _) = server
        .post(
            &format!("/api/v1/conversations/{id}/messages"),
            json!({"body": "we will call you"}),
        )
        .await;
    assert_eq!(status, 202);
    // Wait until a failed attempt is recorded and the row waits for its retry.
    server
        .eventually(Duration::from_secs(15), || async {
            let (_, o) = server.get("/api/v1/outbox?status=pending").await;
            o["outbox"]
                .as_array()?
                .iter()
                .find(|r| r["attempts"].as_u64() >= Some(1))
                .cloned()
        })
        .await
        .expect("a failed attempt was recorded");
    let (data, options) = server.kill().await;

    twilio.fail_next(0);
    let before = twilio.requests().len();
    let server = Server::start_in(data, options).await;
    let sent = twilio.wait_for(before + 1, Duration::from_secs(15)).await;
    assert!(
        sent.len() > before,
        "the queued reply was sent after the restart"
    );
    assert_eq!(sent.last().unwrap().field("Body"), Some("we will call you"));
    let row = server
        .eventually(Duration::from_secs(10), || async {
            let (_, o) = server.get("/api/v1/outbox?status=sent").await;
            o["outbox"].as_array()?.first().cloned()
        })
        .await;
    assert!(row.is_some(), "the outbox row is marked sent");
}
