//! CRM integration end to end: the real binary, the real `crm-hubspot` plugin and a
//! stand-in HubSpot API that checks the token and the shape of every call.
//!
//! Screen pop: a text from a number HubSpot stores as "(415) 555-0100" finds the
//! record; its name, link and VIP flag reach the contact, and the VIP is offered
//! before a customer who wrote earlier. A CRM that hangs delays neither the
//! provider's answer nor routing. Write-back: notes and resolves become HubSpot
//! engagements on the record, a 503 is retried (and never quarantines the plugin), a
//! 400 is a dead letter that an admin re-queues. "Create in CRM" creates the record.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use switchboard_e2e::crm::{FakeHubSpot, HUBSPOT_TOKEN, hubspot_contact};
use switchboard_e2e::{FakeTwilio, Options, Server, cli, plugin_dist, provision};

const AGENT_EMAIL: &str = "sam@e2e.test";
const AGENT_PASSWORD: &str = "sam-password-123";

const JANE: &str = "+14155550100";
const EARLY_BIRD: &str = "+14155550199";
const STRANGER: &str = "+14155550142";

async fn wait<T, F, Fut>(server: &Server, what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    server
        .eventually(Duration::from_secs(20), check)
        .await
        .unwrap_or_else(|| {
            panic!(
                "timed out waiting for {what}; server log:\n{}",
                server.log()
            )
        })
}

/// A server with an agent, the routing-default policy and crm-hubspot pointed at
/// `hubspot`; write-back retries every 200 ms.
async fn start(hubspot: &FakeHubSpot) -> Server {
    let twilio = FakeTwilio::start().await;
    let options = Options::env(&[
        ("SWITCHBOARD_CRM_RETRY_BASE_MS", "200"),
        ("SWITCHBOARD_CRM_RETRY_MAX_MS", "400"),
        ("SWITCHBOARD_CRM_MAX_ATTEMPTS", "4"),
    ]);
    let data = provision(&options, &twilio).await;
    let dir = data.path();
    cli(
        dir,
        &options,
        &[
            "admin",
            "create-user",
            "--email",
            AGENT_EMAIL,
            "--password",
            AGENT_PASSWORD,
            "--role",
            "agent",
            "--name",
            "Sam",
        ],
    )
    .await;
    let policy = plugin_dist().join("routing-default");
    cli(
        dir,
        &options,
        &["plugin", "install", policy.to_str().unwrap()],
    )
    .await;
    let crm = plugin_dist().join("crm-hubspot");
    cli(
        dir,
        &options,
        &[
            "plugin",
            "install",
            crm.to_str().unwrap(),
            "--config",
            &format!("access_token={HUBSPOT_TOKEN}"),
            "--config",
            &format!("api_base={}", hubspot.base),
            "--config",
            "portal_id=4242",
            "--allow-host",
            &hubspot.base,
        ],
    )
    .await;
    Server::start_in(Arc::new(data), options).await
}

async fn contact_of(server: &Server, phone: &str) -> Value {
    let identity = format!("phone:{phone}");
    wait(server, "the contact", || server.contact_by(&identity)).await
}

async fn contact(server: &Server, id: &str) -> Value {
    let (status, v) = server.get(&format!("/api/v1/contacts/{id}")).await;
    assert_eq!(status, 200, "{v}");
    v
}

async fn activities(server: &Server, status: &str) -> Vec<Value> {
    let (code, v) = server
        .get(&format!("/api/v1/crm/activities?status={status}"))
        .await;
    assert_eq!(code, 200, "{v}");
    v["activities"].as_array().unwrap().clone()
}

#[tokio::test]
async fn hubspot_screen_pop_routes_a_vip_first_and_writes_back_durably() {
    let hubspot = FakeHubSpot::start(vec![hubspot_contact(
        "501",
        &[
            ("firstname", "Jane"),
            ("lastname", "Roe"),
            ("phone", "(415) 555-0100"),
            ("email", "jane.roe@example.com"),
            ("vip", "true"),
            ("hubspot_owner_id", "77"),
            ("company", "Acme Corp"),
        ],
    )])
    .await;
    let server = start(&hubspot).await;

    // A customer HubSpot does not know writes first, then Jane; no agent is on yet.
    server.sms("SMcrm001", EARLY_BIRD, "hello?").await;
    let early = contact_of(&server, EARLY_BIRD).await;
    server.sms("SMcrm002", JANE, "my order is late").await;
    let jane = contact_of(&server, JANE).await;
    let jane_id = jane["id"].as_str().unwrap().to_string();
    let jane = wait(&server, "Jane's CRM record", || async {
        let c = contact(&server, &jane_id).await;
        c["crm"]["crm-hubspot"]["external_id"]
            .is_string()
            .then_some(c)
    })
    .await;
    let record = &jane["crm"]["crm-hubspot"];
    assert_eq!(record["external_id"], "501");
    assert_eq!(
        record["url"],
        "https://app.hubspot.com/contacts/4242/record/0-1/501"
    );
    assert_eq!(
        jane["display_name"], "Jane Roe",
        "the CRM's name fills ours"
    );
    assert_eq!(jane["attributes"]["vip"], "true", "{jane}");
    assert_eq!(record["attributes"]["company"], "Acme Corp");
    // The e-mail HubSpot holds is offered, not linked.
    let (_, card) = server.get(&format!("/api/v1/contacts/{jane_id}/crm")).await;
    assert_eq!(
        card["crm"]["crm-hubspot"]["identities"],
        json!([{"kind": "email", "value": "jane.roe@example.com"}]),
        "{card}"
    );
    assert!(
        !jane["identities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["kind"] == "email")
    );
    let searches: Vec<_> = hubspot
        .requests()
        .into_iter()
        .filter(|r| r.path == "/crm/v3/objects/contacts/search")
        .collect();
    assert!(!searches.is_empty());
    assert!(
        searches
            .iter()
            .all(|r| r.authorization.as_deref() == Some(&format!("Bearer {HUBSPOT_TOKEN}")))
    );
    let early = contact(&server, early["id"].as_str().unwrap()).await;
    assert!(
        early["crm"].as_object().is_some_and(|o| o.is_empty()),
        "unknown to the CRM: {early}"
    );

    // The agent comes on once both wait: Jane, the VIP, is offered first although she
    // wrote second.
    wait(&server, "both customers waiting", || async {
        let (_, v) = server.get("/api/v1/queues/messaging/stats").await;
        (v["stats"]["waiting"] == 2).then_some(())
    })
    .await;
    let (sam, _) = server.login(AGENT_EMAIL, AGENT_PASSWORD).await;
    let (status, v) = server
        .call(
            &sam,
            "PUT",
            "/api/v1/agents/me/presence",
            json!({"status": "available"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    // Sam takes two texts at a time: both are offered, Jane's with the VIP boost, so
    // she goes first whenever agents are short.
    let offers = wait(&server, "two offers", || async {
        let (_, v) = server
            .call(&sam, "GET", "/api/v1/agents/me/offers", json!(null))
            .await;
        let offers = v["offers"].as_array()?.clone();
        (offers.len() == 2).then_some(offers)
    })
    .await;
    let of = |contact: &str| {
        offers
            .iter()
            .find(|o| o["task"]["contact_id"] == contact)
            .cloned()
            .unwrap_or_else(|| panic!("no offer for {contact}: {offers:?}"))
    };
    let offer = of(&jane_id);
    let early_offer = of(early["id"].as_str().unwrap());
    assert_eq!(
        offer["task"]["priority"].as_i64().unwrap(),
        early_offer["task"]["priority"].as_i64().unwrap() + 10,
        "the VIP flag from the CRM adds routing-default's vip_boost: {offers:?}"
    );
    let conversation = offer["conversation_id"].as_str().unwrap().to_string();
    let reservation = offer["reservation"]["id"].as_str().unwrap();
    let (status, v) = server
        .call(
            &sam,
            "POST",
            &format!("/api/v1/reservations/{reservation}/accept"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{v}");

    // A note: HubSpot answers 503 twice, then takes it; the plugin is not quarantined.
    hubspot.fail_writes(&[503, 503]);
    let (status, v) = server
        .call(
            &sam,
            "POST",
            &format!("/api/v1/conversations/{conversation}/notes"),
            json!({"body": "Courier lost the parcel; reshipping today"}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let note_engagement = wait(&server, "the note in HubSpot", || async {
        hubspot.engagements().into_iter().find(|(kind, body)| {
            kind == "notes"
                && body["properties"]["hs_note_body"]
                    .as_str()
                    .is_some_and(|b| b.contains("Courier lost the parcel"))
        })
    })
    .await;
    assert_eq!(
        note_engagement.1.pointer("/associations/0/to/id"),
        Some(&json!("501"))
    );
    let done = activities(&server, "done").await;
    let note_row = done.iter().find(|a| a["kind"] == "note").expect("note row");
    assert_eq!(
        note_row["attempts"], 2,
        "two failed attempts before: {note_row}"
    );
    let (_, plugin) = server.get("/api/v1/plugins/crm-hubspot").await;
    assert!(plugin["quarantined"].is_null(), "{plugin}");

    // A resolve HubSpot refuses (400) is a dead letter; re-queued, it goes through.
    hubspot.fail_writes(&[400]);
    let (status, v) = server
        .call(
            &sam,
            "POST",
            &format!("/api/v1/conversations/{conversation}/resolve"),
            json!({"disposition": "resolved", "note": "reshipped"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let dead = wait(&server, "the dead letter", || async {
        activities(&server, "dead")
            .await
            .into_iter()
            .find(|a| a["kind"] == "summary")
    })
    .await;
    assert!(
        dead["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("scripted failure")),
        "{dead}"
    );
    let id = dead["id"].as_str().unwrap();
    let (status, v) = server
        .call(
            &sam,
            "POST",
            &format!("/api/v1/crm/activities/{id}/retry"),
            json!({}),
        )
        .await;
    assert_eq!(status, 403, "only an admin re-queues: {v}");
    let (status, v) = server
        .post(&format!("/api/v1/crm/activities/{id}/retry"), json!({}))
        .await;
    assert_eq!(status, 200, "{v}");
    let summary = wait(&server, "the resolve in HubSpot", || async {
        hubspot.engagements().into_iter().find(|(_, body)| {
            body.to_string().contains("Resolved") && body.to_string().contains("reshipped")
        })
    })
    .await;
    assert!(
        summary.1.to_string().contains("my order is late"),
        "the summary says why the customer got in touch: {}",
        summary.1
    );
    assert!(activities(&server, "dead").await.is_empty());

    // Messages are not written back unless an admin asks for them.
    assert!(
        !hubspot
            .engagements()
            .iter()
            .any(|(kind, _)| kind == "communications")
    );
    let (status, v) = server
        .call(
            &server.token,
            "PUT",
            "/api/v1/crm/settings/crm-hubspot",
            json!({"calls": true, "summaries": true, "notes": true, "messages": true}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    server.sms("SMcrm003", JANE, "thanks, got it").await;
    wait(&server, "the message as a communication", || async {
        hubspot.engagements().into_iter().find(|(kind, body)| {
            kind == "communications" && body.to_string().contains("thanks, got it")
        })
    })
    .await;
    let (status, v) = server.get("/api/v1/crm/settings").await;
    assert_eq!(status, 200);
    assert_eq!(
        v["crms"],
        json!([{"plugin_id": "crm-hubspot", "calls": true, "summaries": true, "notes": true, "messages": true}])
    );
}

#[tokio::test]
async fn a_hanging_crm_delays_neither_the_provider_nor_routing_and_create_in_crm_works() {
    let hubspot = FakeHubSpot::start(vec![hubspot_contact(
        "501",
        &[("firstname", "Jane"), ("phone", "+14155550100")],
    )])
    .await;
    let server = start(&hubspot).await;
    hubspot.open_searches(false);

    // The webhook is answered and the conversation routed while HubSpot hangs.
    let (status, _) = server.sms("SMcrm010", STRANGER, "anyone there?").await;
    assert_eq!(status, 200);
    let stranger = contact_of(&server, STRANGER).await;
    let stranger_id = stranger["id"].as_str().unwrap().to_string();
    let (status, v) = server
        .call(
            &server.token,
            "PUT",
            "/api/v1/agents/me/presence",
            json!({"status": "available"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    wait(&server, "an offer while the CRM hangs", || async {
        let (_, v) = server
            .call(
                &server.token,
                "GET",
                "/api/v1/agents/me/offers",
                json!(null),
            )
            .await;
        v["offers"].as_array()?.first().cloned()
    })
    .await;
    assert!(
        contact(&server, &stranger_id).await["crm"]
            .as_object()
            .is_some_and(|o| o.is_empty())
    );
    hubspot.open_searches(true);

    // Unknown to HubSpot: the card offers "create in CRM".
    let (_, card) = server
        .get(&format!("/api/v1/contacts/{stranger_id}/crm"))
        .await;
    assert_eq!(
        card["available"],
        json!([{"plugin_id": "crm-hubspot", "linked": false}]),
        "{card}"
    );
    let (status, created) = server
        .post(
            &format!("/api/v1/contacts/{stranger_id}/crm/crm-hubspot"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let external = created["external_id"].as_str().unwrap().to_string();
    let held = hubspot
        .contacts()
        .into_iter()
        .find(|c| c.id == external)
        .expect("created in HubSpot");
    assert_eq!(held.properties["phone"], STRANGER);
    let c = contact(&server, &stranger_id).await;
    assert_eq!(c["crm"]["crm-hubspot"]["external_id"], external.as_str());
    // Twice is a conflict, and an unknown CRM is a 404.
    let (status, _) = server
        .post(
            &format!("/api/v1/contacts/{stranger_id}/crm/crm-hubspot"),
            json!({}),
        )
        .await;
    assert_eq!(status, 409);
    let (status, _) = server
        .post(
            &format!("/api/v1/contacts/{stranger_id}/crm/crm-nope"),
            json!({}),
        )
        .await;
    assert_eq!(status, 404);
    // Without a token nothing CRM is reachable.
    let r = server
        .http
        .get(format!("{}/api/v1/crm/activities", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}
