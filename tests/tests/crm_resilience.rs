//! A CRM plugin that loops forever, installed beside a working one: every lookup it
//! gets runs into its deadline and counts as a failure, so after
//! `SWITCHBOARD_QUARANTINE_AFTER` of them it is quarantined. Meanwhile every webhook
//! is answered and every conversation routed, the working CRM still enriches
//! contacts, and write-backs queued for the quarantined CRM are kept (not spent)
//! until it comes back.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use switchboard_e2e::crm::{FakeHubSpot, hubspot_contact};
use switchboard_e2e::{FakeTwilio, Options, Server, cli, plugin_dist, provision};

async fn wait<T, F, Fut>(server: &Server, what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    server
        .eventually(Duration::from_secs(30), check)
        .await
        .unwrap_or_else(|| {
            panic!(
                "timed out waiting for {what}; server log:\n{}",
                server.log()
            )
        })
}

async fn plugin(server: &Server, id: &str) -> Value {
    let (status, v) = server.get(&format!("/api/v1/plugins/{id}")).await;
    assert_eq!(status, 200, "{v}");
    v
}

#[tokio::test]
async fn a_looping_crm_is_quarantined_and_nothing_else_is_held_up() {
    let hubspot = FakeHubSpot::start(vec![hubspot_contact(
        "501",
        &[
            ("firstname", "Jane"),
            ("lastname", "Roe"),
            ("phone", "(415) 555-0100"),
        ],
    )])
    .await;
    let twilio = FakeTwilio::start().await;
    let options = Options::env(&[
        ("SWITCHBOARD_CRM_LOOKUP_TIMEOUT_MS", "300"),
        ("SWITCHBOARD_CRM_ROUTING_BUDGET_MS", "200"),
        ("SWITCHBOARD_QUARANTINE_AFTER", "3"),
        ("SWITCHBOARD_CRM_RETRY_BASE_MS", "200"),
    ]);
    let data = provision(&options, &twilio).await;
    let dir = data.path();
    let args = hubspot.install_args();
    let install: Vec<&str> = args.iter().map(String::as_str).collect();
    cli(dir, &options, &install).await;
    let bad = plugin_dist().join("test-misbehave-crm");
    cli(dir, &options, &["plugin", "install", bad.to_str().unwrap()]).await;
    let server = Server::start_in(Arc::new(data), options).await;

    // Three customers write: each is answered and routed while the looping CRM's
    // lookups run into their deadline.
    for (i, from) in ["+14155550111", "+14155550112", "+14155550113"]
        .into_iter()
        .enumerate()
    {
        let (status, body) = server
            .sms(&format!("SMloop{i}"), from, "hello, anyone?")
            .await;
        assert_eq!(status, 200, "{body}");
    }
    wait(&server, "three waiting conversations", || async {
        let (_, v) = server.get("/api/v1/queues/messaging/stats").await;
        (v["stats"]["waiting"] == 3).then_some(())
    })
    .await;
    let quarantined = wait(&server, "the looping CRM quarantined", || async {
        let p = plugin(&server, "test-misbehave-crm").await;
        p["quarantined"].is_string().then_some(p)
    })
    .await;
    assert!(
        quarantined["quarantined"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "{quarantined}"
    );
    assert!(
        plugin(&server, "crm-hubspot").await["quarantined"].is_null(),
        "{}",
        server.log()
    );

    // The working CRM goes on: Jane is enriched.
    let (status, _) = server.sms("SMloop9", "+14155550100", "my order").await;
    assert_eq!(status, 200);
    let jane = wait(&server, "Jane's contact", || {
        server.contact_by("phone:+14155550100")
    })
    .await;
    let jane_id = jane["id"].as_str().unwrap().to_string();
    wait(&server, "Jane's HubSpot record", || async {
        let (_, c) = server.get(&format!("/api/v1/contacts/{jane_id}")).await;
        (c["crm"]["crm-hubspot"]["external_id"] == "501").then_some(())
    })
    .await;

    // A note: HubSpot gets it; the quarantined CRM's copy is kept pending, attempts
    // not spent.
    let (_, conversations) = server.get("/api/v1/conversations?limit=10").await;
    let conversation = conversations["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["contact_id"] == jane_id.as_str())
        .expect("Jane's conversation")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, v) = server
        .post(
            &format!("/api/v1/conversations/{conversation}/notes"),
            json!({"body": "call back tomorrow"}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    wait(&server, "the note in HubSpot", || async {
        hubspot
            .engagements()
            .into_iter()
            .find(|(kind, _)| kind == "notes")
    })
    .await;
    let held = wait(&server, "the held write-back", || async {
        let (_, v) = server.get("/api/v1/crm/activities?status=pending").await;
        v["activities"]
            .as_array()?
            .iter()
            .find(|a| {
                a["plugin_id"] == "test-misbehave-crm"
                    && a["last_error"]
                        .as_str()
                        .is_some_and(|e| e.contains("quarantine"))
            })
            .cloned()
    })
    .await;
    assert_eq!(held["attempts"], 0, "{held}");
    assert!(
        server.get("/api/v1/crm/activities?status=dead").await.1["activities"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

/// A CRM component built against plugin API 0.1.0 works beside a 0.2.0 one: both
/// enrich the same contact; "create in CRM", which 0.1.0 has no export for, is
/// refused with a clear answer.
#[tokio::test]
async fn a_plugin_api_0_1_crm_works_beside_a_0_2_one() {
    let hubspot = FakeHubSpot::start(vec![hubspot_contact(
        "501",
        &[("firstname", "Jane"), ("phone", "+14155550100")],
    )])
    .await;
    let twilio = FakeTwilio::start().await;
    let options = Options::default();
    let data = provision(&options, &twilio).await;
    let dir = data.path();
    let args = hubspot.install_args();
    let install: Vec<&str> = args.iter().map(String::as_str).collect();
    cli(dir, &options, &install).await;
    let book = plugin_dist().join("crm-book-v0-1");
    cli(
        dir,
        &options,
        &[
            "plugin",
            "install",
            book.to_str().unwrap(),
            "--config",
            "known=phone:+14155550100",
            "--config",
            "name=Jane From The Book",
        ],
    )
    .await;
    let server = Server::start_in(Arc::new(data), options).await;
    assert_eq!(
        plugin(&server, "crm-book-v0-1").await["world"],
        "switchboard:plugin/crm@0.1.0"
    );
    let (status, _) = server.sms("SMbook1", "+14155550100", "hi").await;
    assert_eq!(status, 200);
    let jane = wait(&server, "Jane's contact", || {
        server.contact_by("phone:+14155550100")
    })
    .await;
    let jane_id = jane["id"].as_str().unwrap().to_string();
    let crm = wait(&server, "both CRM records", || async {
        let (_, c) = server.get(&format!("/api/v1/contacts/{jane_id}")).await;
        let crm = c["crm"].clone();
        (crm["crm-book-v0-1"]["external_id"] == "book-1"
            && crm["crm-hubspot"]["external_id"] == "501")
            .then_some(crm)
    })
    .await;
    assert_eq!(crm["crm-book-v0-1"]["attributes"]["vip"], "true", "{crm}");

    let (status, _) = server.sms("SMbook2", "+14155550177", "hello").await;
    assert_eq!(status, 200);
    let other = wait(&server, "the stranger", || {
        server.contact_by("phone:+14155550177")
    })
    .await;
    let (status, refused) = server
        .post(
            &format!(
                "/api/v1/contacts/{}/crm/crm-book-v0-1",
                other["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["code"], "crm_unsupported", "{refused}");
}

/// A CRM whose API hangs is the provider's outage, not the plugin's failure: the
/// plugin's request ends as a timeout just before its call's deadline, it answers
/// `transient`, and it is never quarantined, however many lookups hang.
#[tokio::test]
async fn a_crm_that_hangs_is_never_quarantined() {
    let hubspot = FakeHubSpot::start(vec![]).await;
    hubspot.open_searches(false);
    let twilio = FakeTwilio::start().await;
    let options = Options::env(&[
        ("SWITCHBOARD_CRM_LOOKUP_TIMEOUT_MS", "400"),
        ("SWITCHBOARD_CRM_ROUTING_BUDGET_MS", "100"),
        ("SWITCHBOARD_QUARANTINE_AFTER", "2"),
    ]);
    let data = provision(&options, &twilio).await;
    let args = hubspot.install_args();
    let install: Vec<&str> = args.iter().map(String::as_str).collect();
    cli(data.path(), &options, &install).await;
    let server = Server::start_in(Arc::new(data), options).await;
    for i in 0..4 {
        let (status, _) = server
            .sms(&format!("SMhang{i}"), &format!("+1415555013{i}"), "hello?")
            .await;
        assert_eq!(status, 200);
    }
    // Every lookup ended with the plugin's own answer, `transient`.
    wait(&server, "four lookups answered transient", || async {
        (server
            .log()
            .matches("CRM lookup refused: transient")
            .count()
            >= 4)
            .then_some(())
    })
    .await;
    let p = plugin(&server, "crm-hubspot").await;
    assert!(p["quarantined"].is_null(), "{p}");
    assert_eq!(p["health"]["consecutive_failures"], 0, "{p}");
    assert_eq!(p["health"]["failures"], 0, "{p}");
    let (_, v) = server.get("/api/v1/queues/messaging/stats").await;
    assert_eq!(v["stats"]["waiting"], 4, "all routed: {v}");
}
