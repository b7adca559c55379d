//! Files on two nodes, end to end: two `switchboard serve` processes on one
//! PostgreSQL database with `SWITCHBOARD_FILE_STORE=database`, each with its own data
//! directory (standing for two machines). Plugins installed through node A — by the
//! CLI and through the API — load on node B, which starts with an empty data
//! directory; an image a customer sends through a webhook on A is downloaded through
//! B's API; a file an agent uploads on B is downloaded through A's; a call answered
//! and recorded on A is played from B. With the cluster's bus (NATS), a plugin
//! installed, reconfigured, disabled and removed through A applies on a running B at
//! once.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use switchboard_e2e::cluster::Cluster;
use switchboard_e2e::meta::*;
use switchboard_e2e::voice::{AgentPhone, SipCaller, answer_voice_offer, voice_server};
use switchboard_e2e::*;

const WA_PHONE_ID: &str = "PNID1";
/// Every node of a cluster shares the key that seals plugin secrets.
const SECRET_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn get_bytes(server: &Server, path: &str) -> (u16, Option<String>, Vec<u8>) {
    let r = server
        .http
        .get(format!("{}{path}", server.base))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, content_type, r.bytes().await.unwrap().to_vec())
}

/// Installs whatsapp-cloud through `server`'s API, pointed at the stand-in `graph`.
async fn install_whatsapp(server: &Server, graph: &FakeGraph) {
    let path = plugin_dist().join("whatsapp-cloud");
    let (status, body) = server
        .post(
            "/api/v1/plugins",
            json!({"path": path, "allow_hosts": [graph.base], "config": {
                "app_secret": META_APP_SECRET,
                "verify_token": META_VERIFY_TOKEN,
                "access_token": META_TOKEN,
                "api_base": graph.base,
                "phone_number_id": WA_PHONE_ID,
            }}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn a_file_received_on_one_node_is_downloaded_from_another() {
    let db = PgDatabase::create().await;
    let twilio = FakeTwilio::start().await;
    let graph = FakeGraph::start().await;
    let options = Options {
        database_url: Some(db.url.clone()),
        env: [
            ("SWITCHBOARD_FILE_STORE", "database"),
            ("SWITCHBOARD_SECRET_KEY", SECRET_KEY),
            ("SWITCHBOARD_VOICE", "off"),
            ("SWITCHBOARD_API_BODY_BYTES", "4194304"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    };
    // A: provisioned by the CLI (sms-twilio, telegram-bot), then WhatsApp through
    // the API.
    let a = Server::start(options.clone(), &twilio).await;
    install_whatsapp(&a, &graph).await;

    // B: an empty data directory on the same database.
    let b_data = Arc::new(tempfile::tempdir().unwrap());
    let b = Server::start_in(b_data.clone(), options.clone()).await;
    let (status, plugins) = b.get("/api/v1/plugins").await;
    assert_eq!(status, 200, "{plugins}");
    let loaded: Vec<&str> = plugins["plugins"]
        .as_array()
        .unwrap_or_else(|| panic!("{plugins}"))
        .iter()
        .filter(|p| p["loaded"] == true)
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    for id in ["sms-twilio", "telegram-bot", "whatsapp-cloud"] {
        assert!(
            loaded.contains(&id),
            "{id} loads on B: {plugins}\n{}",
            b.log()
        );
    }
    assert!(
        b_data
            .path()
            .join("plugins/whatsapp-cloud/plugin.toml")
            .exists(),
        "B wrote the component into its own data directory"
    );

    // A customer's image arrives through A, which copies it from the provider.
    let payload = whatsapp_payload(
        WA_PHONE_ID,
        "15551230001",
        "Jane Doe",
        vec![json!({
            "from": "15551230001", "id": "wamid.img.1", "timestamp": now_secs().to_string(),
            "type": "image",
            "image": {"id": "media-001", "mime_type": "image/png", "sha256": "x", "caption": "receipt"},
        })],
        vec![],
    );
    let (status, body) = a.meta_webhook("whatsapp-cloud", &payload, None).await;
    assert_eq!(status, 200, "{body}");
    let contact = a
        .contact_by("whatsapp:+15551230001")
        .await
        .expect("contact");
    let contact_id = contact["id"].as_str().unwrap().to_string();
    let image = a
        .eventually(Duration::from_secs(20), || async {
            let (_, v) = a
                .get(&format!("/api/v1/contacts/{contact_id}/timeline"))
                .await;
            let e = v["events"]
                .as_array()?
                .iter()
                .find(|e| e["provider_id"] == "wamid.img.1")?
                .clone();
            (e["attachments"][0]["status"] == "stored").then_some(e)
        })
        .await
        .unwrap_or_else(|| panic!("the image was copied on A: {}", a.log()));
    let url = image["attachments"][0]["url"].as_str().unwrap().to_string();

    // B serves it, though B never saw the provider.
    let (status, content_type, bytes) = get_bytes(&b, &url).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(content_type.as_deref(), Some("image/png"));
    assert_eq!(bytes, PNG);
    assert!(
        graph
            .requests()
            .iter()
            .filter(|r| r.path == "/media-bytes/media-001")
            .count()
            == 1,
        "the provider was asked once, by A"
    );

    // An agent's upload on B, several 1 MiB chunks long, downloaded through A.
    let upload: Vec<u8> = (0..2_600_000u32).map(|i| (i % 241) as u8).collect();
    let r = b
        .http
        .post(format!("{}/api/v1/attachments?filename=big.bin", b.base))
        .bearer_auth(&b.token)
        .header("content-type", "application/octet-stream")
        .body(upload.clone())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let created: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 201, "{created}");
    let id = created["attachment"]["id"].as_str().unwrap();
    let (status, _, bytes) = get_bytes(&a, &format!("/api/v1/attachments/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(bytes.len(), upload.len());
    assert!(bytes == upload, "A serves the bytes B kept");

    drop(a);
    drop(b);
    drop(db);
}

#[tokio::test]
async fn a_call_recorded_on_one_node_is_played_from_another() {
    const CALLER: &str = "+15551230001";
    let db = PgDatabase::create().await;
    let shared = [
        ("SWITCHBOARD_DATABASE_URL", db.url.as_str()),
        ("SWITCHBOARD_FILE_STORE", "database"),
        ("SWITCHBOARD_SECRET_KEY", SECRET_KEY),
    ];
    // A carries the call: every loopback caller is its trunk.
    let (a, sam, _twilio) = voice_server(
        ("sam@voice.test", "sam-password-123", "Sam"),
        "127.0.0.1:5999",
        None,
        &[],
        &shared,
    )
    .await;
    let (status, v) = a
        .call(
            &sam,
            "PUT",
            "/api/v1/agents/me/presence",
            json!({"status": "available"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let _phone = AgentPhone::connect(&a.base, &sam).await;
    let mut caller = SipCaller::new(a.sip.unwrap(), CALLER).await;
    assert_eq!(caller.call("+15550001000").await, 200);
    answer_voice_offer(&a, &sam).await;
    a.eventually(Duration::from_secs(10), || async {
        let (_, v) = a.call(&sam, "GET", "/api/v1/calls/me", json!(null)).await;
        v["calls"]
            .as_array()?
            .iter()
            .find(|c| c["state"] == "connected")
            .cloned()
    })
    .await
    .unwrap_or_else(|| panic!("the call was not connected; log:\n{}", a.log()));
    for n in 0..50u8 {
        caller.say(&[0x10 + n; 160]).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    caller.bye().await;
    let recording = a
        .eventually(Duration::from_secs(10), || async {
            let contact = a.contact_by(&format!("phone:{CALLER}")).await?;
            let id = contact["id"].as_str()?.to_string();
            let (_, t) = a.get(&format!("/api/v1/contacts/{id}/timeline")).await;
            t["events"]
                .as_array()?
                .iter()
                .find(|e| e["kind"] == "call" && e["data"]["outcome"] == "answered")?["data"]
                ["recording_url"]
                .as_str()
                .map(str::to_string)
        })
        .await
        .unwrap_or_else(|| panic!("no recorded call on the timeline; log:\n{}", a.log()));
    let on_a = a
        .http
        .get(format!("{}{recording}", a.base))
        .bearer_auth(&sam)
        .send()
        .await
        .unwrap();
    assert_eq!(on_a.status(), 200);
    let on_a = on_a.bytes().await.unwrap().to_vec();
    assert_eq!(&on_a[0..4], b"RIFF");

    // A keeps the finished WAV in the database after the hang-up, off the
    // hang-up path; then its own file goes (B runs on this machine too, and must
    // not read A's folder).
    let kept = a
        .eventually(Duration::from_secs(20), || async {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&db.url).await.ok()?;
            let row: Option<(String,)> = sqlx::query_as(
                "SELECT recording_blob FROM call_record WHERE recording_blob IS NOT NULL",
            )
            .fetch_optional(&mut conn)
            .await
            .ok()?;
            row.map(|r| r.0)
        })
        .await
        .unwrap_or_else(|| panic!("the recording was not kept; log:\n{}", a.log()));
    assert_eq!(kept.len(), 64, "a content key: {kept}");
    std::fs::remove_dir_all(a.data.path().join("recordings")).unwrap();

    // B: no voice, an empty data directory, the same database.
    let b = Server::start_in(
        Arc::new(tempfile::tempdir().unwrap()),
        Options {
            database_url: Some(db.url.clone()),
            env: [
                ("SWITCHBOARD_FILE_STORE", "database"),
                ("SWITCHBOARD_SECRET_KEY", SECRET_KEY),
                ("SWITCHBOARD_VOICE", "off"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        },
    )
    .await;
    for node in [&b, &a] {
        let r = node
            .http
            .get(format!("{}{recording}", node.base))
            .bearer_auth(&sam)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", node.base);
        let bytes = r.bytes().await.unwrap().to_vec();
        assert_eq!(bytes.len(), on_a.len());
        assert!(bytes == on_a, "{} serves the WAV A recorded", node.base);
    }
    drop(a);
    drop(b);
    drop(db);
}

/// The answer node `server` gives WhatsApp's subscription handshake with
/// `verify_token`: 200 with the challenge when the plugin is loaded, enabled and
/// configured with that token.
async fn handshake(server: &Server, verify_token: &str) -> (u16, String) {
    let r = server
        .http
        .get(format!(
            "{}/hooks/whatsapp-cloud?hub.mode=subscribe&hub.verify_token={verify_token}&hub.challenge=4242",
            server.base
        ))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

/// Waits until node `server` answers the handshake with `verify_token` by `status`.
async fn handshake_becomes(server: &Server, verify_token: &str, status: u16, what: &str) {
    let reached = server
        .eventually(Duration::from_secs(20), || async {
            let (got, body) = handshake(server, verify_token).await;
            (got == status && (status != 200 || body == "4242")).then_some(())
        })
        .await;
    assert!(
        reached.is_some(),
        "{what}: B never answered {status}: {:?}\n{}",
        handshake(server, verify_token).await,
        server.log()
    );
}

#[tokio::test]
async fn plugin_changes_made_on_one_node_apply_on_a_running_other() {
    let cluster = Cluster::new("plugins").await;
    let twilio = FakeTwilio::start().await;
    let graph = FakeGraph::start().await;
    let extra = [
        ("SWITCHBOARD_FILE_STORE", "database"),
        ("SWITCHBOARD_VOICE", "off"),
    ];
    let a = Server::start(cluster.node("a", &extra), &twilio).await;
    let b = Server::start_in(
        Arc::new(tempfile::tempdir().unwrap()),
        cluster.node("b", &extra),
    )
    .await;
    assert_eq!(
        handshake(&b, META_VERIFY_TOKEN).await.0,
        404,
        "not installed yet"
    );

    // Installed through A while B runs: B loads it without a restart.
    install_whatsapp(&a, &graph).await;
    handshake_becomes(&b, META_VERIFY_TOKEN, 200, "installed on A").await;

    // Reconfigured through A: B takes the new token, and refuses the old one.
    let r = a
        .http
        .put(format!("{}/api/v1/plugins/whatsapp-cloud/config", a.base))
        .bearer_auth(&a.token)
        .json(&json!({"config": {"verify_token": "rotated-token"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    handshake_becomes(&b, "rotated-token", 200, "reconfigured on A").await;
    assert_eq!(handshake(&b, META_VERIFY_TOKEN).await.0, 403);

    // Disabled, then removed, through A.
    let (status, body) = a
        .post("/api/v1/plugins/whatsapp-cloud/disable", json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let disabled = b
        .eventually(Duration::from_secs(20), || async {
            let (got, _) = handshake(&b, "rotated-token").await;
            (got != 200).then_some(got)
        })
        .await;
    assert!(
        disabled.is_some(),
        "B still serves a disabled plugin\n{}",
        b.log()
    );
    let r = a
        .http
        .delete(format!("{}/api/v1/plugins/whatsapp-cloud", a.base))
        .bearer_auth(&a.token)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    handshake_becomes(&b, "rotated-token", 404, "removed on A").await;
    let (_, plugins) = b.get("/api/v1/plugins").await;
    assert!(!plugins.to_string().contains("whatsapp-cloud"), "{plugins}");
    assert!(
        b.log().contains("plugin changed on another node"),
        "{}",
        b.log()
    );
    a.kill().await;
    b.kill().await;
    cluster.delete_stream().await;
}
