//! CRM integration end to end: the real binary, the real `crm-hubspot` plugin and a
//! stand-in HubSpot API that checks the token and the shape of every call.
//!
//! Screen pop: a text from a number HubSpot stores as "(415) 555-0100" finds the
//! record; its name, link and VIP flag reach the contact, and the VIP is offered
//! before a customer who wrote earlier. A CRM that hangs delays neither the
//! provider's answer nor routing. Write-back: notes and resolves become HubSpot
//! engagements on the record, a 503 is retried (and never quarantines the plugin), a
//! 400 is a dead letter that an admin re-queues. "Create in CRM" creates the record.
//!
//! The OAuth CRMs, `crm-salesforce` and `crm-zoho`, against stand-ins of their token
//! endpoints and APIs (`switchboard_e2e::crm_oauth`): the first call trades the refresh token for an access token,
//! which later calls reuse; an expired session costs exactly one refresh and the same
//! request again, inside one write-back attempt; a revoked refresh token makes the
//! write-back a dead letter at once (whether the token endpoint says so with HTTP 400,
//! as Salesforce does, or HTTP 200, as Zoho does) without quarantining the plugin.
//! Salesforce finds a number by phone search and an e-mail (quote and all) by SOQL,
//! Contact before Lead, and writes completed Tasks on the `WhoId`; Zoho searches
//! Contacts, then Leads, and writes each note on the record in its own module.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use switchboard_e2e::crm::{FakeHubSpot, HUBSPOT_TOKEN, hubspot_contact};
use switchboard_e2e::crm_oauth::{
    FakeSalesforce, FakeZoho, SALESFORCE_API, SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET,
    SALESFORCE_REFRESH_TOKEN, ZOHO_API, ZOHO_CLIENT_ID, ZOHO_CLIENT_SECRET, ZOHO_REFRESH_TOKEN,
    salesforce_record, zoho_record,
};
use switchboard_e2e::{FakeTwilio, Options, Server, cli, plugin_dist, provision};

const AGENT_EMAIL: &str = "sam@e2e.test";
const AGENT_PASSWORD: &str = "sam-password-123";

const JANE: &str = "+14155550100";
const EARLY_BIRD: &str = "+14155550199";
const STRANGER: &str = "+14155550142";
const PAT: &str = "+14155550177";

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
    start_with(
        "crm-hubspot",
        &[
            format!("access_token={HUBSPOT_TOKEN}"),
            format!("api_base={}", hubspot.base),
            "portal_id=4242".into(),
        ],
        &hubspot.base,
    )
    .await
}

/// A server with an agent, the routing-default policy and the CRM plugin `crm`
/// installed with `config` (`key=value`) and allowed to reach `origin`; write-back
/// retries every 200 ms.
async fn start_with(crm: &str, config: &[String], origin: &str) -> Server {
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
    let crm = plugin_dist().join(crm);
    let mut args = vec!["plugin", "install", crm.to_str().unwrap()];
    for pair in config {
        args.extend(["--config", pair.as_str()]);
    }
    args.extend(["--allow-host", origin]);
    cli(dir, &options, &args).await;
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

/// The open conversation of a contact.
async fn conversation_of(server: &Server, contact_id: &str) -> String {
    wait(server, "the conversation", || async {
        let (_, v) = server.get("/api/v1/conversations?status=open").await;
        v["conversations"]
            .as_array()?
            .iter()
            .find(|c| c["contact_id"] == contact_id)
            .and_then(|c| c["id"].as_str())
            .map(str::to_string)
    })
    .await
}

/// The contact once `plugin` has linked it to a CRM record. Read again after the link
/// shows: one read of a contact is not a snapshot (its row, then its links), so the
/// read that first sees the link may predate the name and attributes saved with it.
async fn linked(server: &Server, contact_id: &str, plugin: &str) -> Value {
    wait(server, "the CRM record", || async {
        let c = contact(server, contact_id).await;
        c["crm"][plugin]["external_id"].is_string().then_some(())
    })
    .await;
    contact(server, contact_id).await
}

/// An internal note on a conversation, by the admin.
async fn note(server: &Server, conversation: &str, body: &str) {
    let (status, v) = server
        .post(
            &format!("/api/v1/conversations/{conversation}/notes"),
            json!({"body": body}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
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
    let jane = linked(&server, &jane_id, "crm-hubspot").await;
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
    // Sam takes one text at a time, so the order of the two waiting customers shows.
    let (sam, sam_id) = server.login(AGENT_EMAIL, AGENT_PASSWORD).await;
    let (status, v) = server
        .call(
            &server.token,
            "PUT",
            &format!("/api/v1/agents/{sam_id}/routing"),
            json!({"capacity": {"total": 100, "costs": {"sms": 100}, "default_cost": 100}}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = server
        .call(
            &sam,
            "PUT",
            "/api/v1/agents/me/presence",
            json!({"status": "available"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    // Jane, the VIP, is offered first although she wrote second: the CRM's flag adds
    // routing-default's vip_boost to her task's priority.
    let offers = wait(&server, "an offer", || async {
        let (_, v) = server
            .call(&sam, "GET", "/api/v1/agents/me/offers", json!(null))
            .await;
        let offers = v["offers"].as_array()?.clone();
        (!offers.is_empty()).then_some(offers)
    })
    .await;
    assert_eq!(offers.len(), 1, "one at a time: {offers:?}");
    let offer = offers[0].clone();
    assert_eq!(
        offer["task"]["contact_id"],
        jane_id.as_str(),
        "VIP first: {offers:?}"
    );
    let (_, stats) = server.get("/api/v1/queues/messaging/stats").await;
    assert_eq!(
        stats["stats"]["waiting"], 2,
        "the early bird still waits: {stats}"
    );
    assert_eq!(
        offer["task"]["priority"], 20,
        "sms 10 + vip_boost 10: {offer}"
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
    // HubSpot has the note as soon as it answers; the row is done once the host hears.
    let note_row = wait(&server, "the note row done", || async {
        activities(&server, "done")
            .await
            .into_iter()
            .find(|a| a["kind"] == "note")
    })
    .await;
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

#[tokio::test]
async fn salesforce_screen_pop_and_tasks_outlive_an_expired_session_not_a_revoked_grant() {
    const JANE_ID: &str = "003E20000000501AAA";
    const PAT_ID: &str = "00QE20000000777AAA";
    const PAT_EMAIL: &str = "pat.o'brien@example.com";
    let salesforce = FakeSalesforce::start(vec![
        salesforce_record(
            "Contact",
            JANE_ID,
            &[
                ("FirstName", "Jane"),
                ("LastName", "Roe"),
                ("Phone", "(415) 555-0100"),
                ("Email", "jane.roe@example.com"),
                ("Owner.Name", "Grace Hopper"),
                ("Account.Name", "Acme Corp"),
                ("VIP__c", "true"),
            ],
        ),
        salesforce_record(
            "Lead",
            PAT_ID,
            &[
                ("FirstName", "Pat"),
                ("LastName", "O'Brien"),
                ("Email", PAT_EMAIL),
                ("Company", "O'Brien Freight"),
            ],
        ),
    ])
    .await;
    let server = start_with(
        "crm-salesforce",
        &[
            format!("client_id={SALESFORCE_CLIENT_ID}"),
            format!("client_secret={SALESFORCE_CLIENT_SECRET}"),
            format!("refresh_token={SALESFORCE_REFRESH_TOKEN}"),
            format!("login_base={}", salesforce.base),
            "vip_field=VIP__c".into(),
        ],
        &salesforce.base,
    )
    .await;

    // Screen pop: Salesforce holds Jane's number as "(415) 555-0100"; the API is
    // wherever the token answer's instance_url says.
    server.sms("SMsf001", JANE, "my order is late").await;
    let jane_id = contact_of(&server, JANE).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let jane = linked(&server, &jane_id, "crm-salesforce").await;
    let record = &jane["crm"]["crm-salesforce"];
    assert_eq!(record["external_id"], JANE_ID);
    assert_eq!(
        record["url"],
        format!("{}/lightning/r/Contact/{JANE_ID}/view", salesforce.base)
    );
    assert_eq!(record["attributes"]["company"], "Acme Corp");
    assert_eq!(record["attributes"]["owner"], "Grace Hopper");
    assert_eq!(record["attributes"]["record-type"], "Contact");
    assert_eq!(jane["display_name"], "Jane Roe");
    assert_eq!(jane["attributes"]["vip"], "true", "{jane}");
    let grants = salesforce.token_requests();
    assert_eq!(grants.len(), 1, "one token for the first call: {grants:?}");
    let grant = &grants[0];
    assert!(
        grant
            .content_type
            .as_deref()
            .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded")),
        "{grant:?}"
    );
    assert_eq!(grant.field("grant_type"), Some("refresh_token"));
    assert_eq!(grant.field("client_id"), Some(SALESFORCE_CLIENT_ID));
    assert_eq!(grant.field("client_secret"), Some(SALESFORCE_CLIENT_SECRET));
    assert_eq!(grant.field("refresh_token"), Some(SALESFORCE_REFRESH_TOKEN));
    let first_token = grant.answer.clone().expect("a token was issued");
    let search = salesforce
        .requests()
        .into_iter()
        .find(|r| r.path == format!("{SALESFORCE_API}/parameterizedSearch/"))
        .expect("a phone search");
    assert_eq!(search.json["q"], "4155550100");
    assert_eq!(search.json["in"], "PHONE");
    assert_eq!(
        search.authorization.as_deref(),
        Some(format!("Bearer {first_token}").as_str())
    );

    // A note becomes a completed Task on Jane, keyed by the write-back row.
    let jane_conversation = conversation_of(&server, &jane_id).await;
    note(&server, &jane_conversation, "Courier lost the parcel").await;
    let task = wait(&server, "the note as a Task", || async {
        salesforce
            .tasks()
            .into_iter()
            .find(|t| t.text("Description").contains("Courier lost the parcel"))
    })
    .await;
    assert_eq!(task.text("WhoId"), JANE_ID);
    assert_eq!(task.text("Status"), "Completed");
    assert_eq!(task.text("Subject"), "Note");
    assert_eq!(task.text("TaskSubtype"), "Task");
    let row = wait(&server, "the note row done", || async {
        activities(&server, "done")
            .await
            .into_iter()
            .find(|a| a["id"] == task.text("CallObject"))
    })
    .await;
    assert_eq!(row["kind"], "note", "{row}");
    assert_eq!(salesforce.token_requests().len(), 1, "the token is reused");

    // Pat texts from a number Salesforce does not hold; the e-mail an agent adds,
    // quote and all, finds the Lead by SOQL, escaped so it stays one literal.
    server.sms("SMsf002", PAT, "quote for 3 pallets?").await;
    let pat_id = contact_of(&server, PAT).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait(&server, "the search for Pat's number", || async {
        salesforce
            .requests()
            .into_iter()
            .find(|r| r.json["q"] == "4155550177")
    })
    .await;
    let (status, v) = server
        .post(
            &format!("/api/v1/contacts/{pat_id}/identities"),
            json!({"kind": "email", "value": PAT_EMAIL}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let (status, v) = server
        .post(&format!("/api/v1/contacts/{pat_id}/crm/refresh"), json!({}))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["found"], json!(["crm-salesforce"]), "{v}");
    let pat = contact(&server, &pat_id).await;
    let record = &pat["crm"]["crm-salesforce"];
    assert_eq!(record["external_id"], PAT_ID, "{pat}");
    assert_eq!(
        record["url"],
        format!("{}/lightning/r/Lead/{PAT_ID}/view", salesforce.base)
    );
    assert_eq!(record["attributes"]["record-type"], "Lead");
    assert_eq!(record["attributes"]["company"], "O'Brien Freight");
    let queries: Vec<String> = salesforce
        .requests()
        .into_iter()
        .filter(|r| r.path == format!("{SALESFORCE_API}/query"))
        .filter_map(|r| r.query)
        .map(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "q")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        })
        .collect();
    assert!(
        queries
            .iter()
            .any(|q| q.contains("FROM Contact WHERE Email = 'pat.o\\'brien@example.com'")),
        "{queries:?}"
    );
    assert!(
        queries.iter().any(|q| q.contains(
            "FROM Lead WHERE Email = 'pat.o\\'brien@example.com' AND IsConverted = false"
        )),
        "{queries:?}"
    );
    let pat_conversation = conversation_of(&server, &pat_id).await;
    note(&server, &pat_conversation, "Wants a quote by Friday").await;
    let task = wait(&server, "the Task on the Lead", || async {
        salesforce
            .tasks()
            .into_iter()
            .find(|t| t.text("Description").contains("Wants a quote by Friday"))
    })
    .await;
    assert_eq!(task.text("WhoId"), PAT_ID);
    assert_eq!(salesforce.token_requests().len(), 1);

    // "Create in CRM" for a stranger makes a Lead (with the Company Salesforce needs).
    server.sms("SMsf003", STRANGER, "anyone there?").await;
    let stranger_id = contact_of(&server, STRANGER).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait(&server, "the search for the stranger's number", || async {
        salesforce
            .requests()
            .into_iter()
            .find(|r| r.json["q"] == "4155550142")
    })
    .await;
    let (status, created) = server
        .post(
            &format!("/api/v1/contacts/{stranger_id}/crm/crm-salesforce"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let lead_id = created["external_id"].as_str().unwrap().to_string();
    let lead = salesforce
        .records("Lead")
        .into_iter()
        .find(|l| l.id() == lead_id)
        .expect("created in Salesforce");
    assert_eq!(lead.text("Phone"), STRANGER);
    assert_eq!(lead.text("Company"), "Unknown");
    assert_eq!(
        created["url"],
        format!("{}/lightning/r/Lead/{lead_id}/view", salesforce.base)
    );
    assert_eq!(salesforce.token_requests().len(), 1);

    // The session expires: the next Task gets a 401, the plugin refreshes once and
    // sends it again, all in one attempt.
    salesforce.expire_token();
    note(&server, &jane_conversation, "Reshipped with tracking").await;
    let task = wait(&server, "the Task after the refresh", || async {
        salesforce
            .tasks()
            .into_iter()
            .find(|t| t.text("Description").contains("Reshipped with tracking"))
    })
    .await;
    let grants = salesforce.token_requests();
    assert_eq!(grants.len(), 2, "exactly one refresh: {grants:?}");
    let second_token = grants[1].answer.clone().expect("a new token");
    assert_ne!(second_token, first_token);
    let writes: Vec<_> = salesforce
        .requests()
        .into_iter()
        .filter(|r| r.path == format!("{SALESFORCE_API}/sobjects/Task/"))
        .filter(|r| {
            r.json["Description"]
                .as_str()
                .is_some_and(|d| d.contains("Reshipped"))
        })
        .collect();
    assert_eq!(writes.len(), 2, "refused once, then sent again: {writes:?}");
    assert_eq!(
        writes[0].authorization.as_deref(),
        Some(format!("Bearer {first_token}").as_str())
    );
    assert_eq!(
        writes[1].authorization.as_deref(),
        Some(format!("Bearer {second_token}").as_str())
    );
    let row = wait(&server, "the row done", || async {
        activities(&server, "done")
            .await
            .into_iter()
            .find(|a| a["id"] == task.text("CallObject"))
    })
    .await;
    assert_eq!(
        row["attempts"], 0,
        "the refresh is not a failed attempt: {row}"
    );

    // The refresh token is revoked: the write-back is unauthorized, a dead letter at
    // once, and the plugin is not quarantined for Salesforce's answer.
    salesforce.revoke();
    note(&server, &jane_conversation, "Customer called again").await;
    let dead = wait(&server, "the dead letter", || async {
        activities(&server, "dead").await.into_iter().next()
    })
    .await;
    assert_eq!(dead["kind"], "note", "{dead}");
    assert!(
        dead["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("invalid_grant")),
        "{dead}"
    );
    assert_eq!(dead["attempts"], 1, "not retried: {dead}");
    let grants = salesforce.token_requests();
    assert_eq!(grants.len(), 3, "{grants:?}");
    assert_eq!(grants[2].answer, Err("invalid_grant".to_string()));
    assert!(
        !salesforce
            .tasks()
            .iter()
            .any(|t| t.text("Description").contains("Customer called again"))
    );
    let (_, plugin) = server.get("/api/v1/plugins/crm-salesforce").await;
    assert!(plugin["quarantined"].is_null(), "{plugin}");
}

#[tokio::test]
async fn zoho_screen_pop_searches_contacts_then_leads_and_notes_land_on_either() {
    const JANE_ID: &str = "5725767000000412001";
    const PAT_ID: &str = "5725767000000413007";
    let zoho = FakeZoho::start(vec![
        zoho_record(
            "Contacts",
            JANE_ID,
            &[
                ("First_Name", "Jane"),
                ("Last_Name", "Roe"),
                ("Phone", "(415) 555-0100"),
                ("Email", "jane.roe@example.com"),
                ("Owner", "Grace Hopper"),
                ("Account_Name", "Acme Corp"),
            ],
        ),
        zoho_record(
            "Leads",
            PAT_ID,
            &[
                ("First_Name", "Pat"),
                ("Last_Name", "Obi"),
                ("Mobile", "415.555.0177"),
                ("Company", "Obi Freight"),
            ],
        ),
    ])
    .await;
    let server = start_with(
        "crm-zoho",
        &[
            format!("client_id={ZOHO_CLIENT_ID}"),
            format!("client_secret={ZOHO_CLIENT_SECRET}"),
            format!("refresh_token={ZOHO_REFRESH_TOKEN}"),
            format!("accounts_base={}", zoho.base),
        ],
        &zoho.base,
    )
    .await;

    // Jane is a Contact; the API is wherever the token answer's api_domain says.
    server.sms("SMzo001", JANE, "my order is late").await;
    let jane_id = contact_of(&server, JANE).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let jane = linked(&server, &jane_id, "crm-zoho").await;
    let record = &jane["crm"]["crm-zoho"];
    assert_eq!(record["external_id"], JANE_ID);
    assert_eq!(
        record["url"],
        format!("{}/crm/tab/Contacts/{JANE_ID}", zoho.base)
    );
    assert_eq!(record["attributes"]["company"], "Acme Corp");
    assert_eq!(record["attributes"]["owner"], "Grace Hopper");
    assert_eq!(record["attributes"]["record-type"], "Contact");
    assert_eq!(jane["display_name"], "Jane Roe");
    let grants = zoho.token_requests();
    assert_eq!(grants.len(), 1, "{grants:?}");
    assert_eq!(grants[0].field("grant_type"), Some("refresh_token"));
    assert_eq!(grants[0].field("client_id"), Some(ZOHO_CLIENT_ID));
    assert_eq!(grants[0].field("client_secret"), Some(ZOHO_CLIENT_SECRET));
    assert_eq!(grants[0].field("refresh_token"), Some(ZOHO_REFRESH_TOKEN));
    let token = grants[0].answer.clone().expect("a token was issued");

    // Pat is only a Lead: Contacts answer 204, Leads find him.
    server.sms("SMzo002", PAT, "quote for 3 pallets?").await;
    let pat_id = contact_of(&server, PAT).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let pat = linked(&server, &pat_id, "crm-zoho").await;
    let record = &pat["crm"]["crm-zoho"];
    assert_eq!(record["external_id"], PAT_ID);
    assert_eq!(
        record["url"],
        format!("{}/crm/tab/Leads/{PAT_ID}", zoho.base)
    );
    assert_eq!(record["attributes"]["record-type"], "Lead");
    assert_eq!(record["attributes"]["company"], "Obi Freight");
    assert_eq!(pat["display_name"], "Pat Obi");
    let searches: Vec<String> = zoho
        .requests()
        .into_iter()
        .filter(|r| r.query.as_deref() == Some("phone=4155550177"))
        .map(|r| r.path)
        .collect();
    assert_eq!(
        searches,
        [
            format!("{ZOHO_API}/Contacts/search"),
            format!("{ZOHO_API}/Leads/search")
        ]
    );
    assert!(
        zoho.requests().iter().all(
            |r| r.authorization.as_deref() == Some(format!("Zoho-oauthtoken {token}").as_str())
        )
    );

    // Notes land on the record in its own module.
    let jane_conversation = conversation_of(&server, &jane_id).await;
    let pat_conversation = conversation_of(&server, &pat_id).await;
    note(&server, &jane_conversation, "Courier lost the parcel").await;
    note(&server, &pat_conversation, "Wants a quote by Friday").await;
    let note_with = |text: &str| {
        zoho.notes().into_iter().find(|n| {
            n.note["Note_Content"]
                .as_str()
                .is_some_and(|c| c.contains(text))
        })
    };
    let jane_note = wait(&server, "Jane's note", || async {
        note_with("Courier lost the parcel")
    })
    .await;
    assert_eq!(
        (jane_note.module.as_str(), jane_note.parent_id.as_str()),
        ("Contacts", JANE_ID)
    );
    assert_eq!(jane_note.note["Note_Title"], "Note");
    let pat_note = wait(&server, "Pat's note", || async {
        note_with("Wants a quote by Friday")
    })
    .await;
    assert_eq!(
        (pat_note.module.as_str(), pat_note.parent_id.as_str()),
        ("Leads", PAT_ID)
    );
    assert_eq!(zoho.token_requests().len(), 1);

    // An expired token: 401 INVALID_TOKEN, one refresh, the note sent again.
    zoho.expire_token();
    note(&server, &pat_conversation, "Sent the quote").await;
    let again = wait(&server, "the note after the refresh", || async {
        note_with("Sent the quote")
    })
    .await;
    assert_eq!(again.module, "Leads");
    let grants = zoho.token_requests();
    assert_eq!(grants.len(), 2, "exactly one refresh: {grants:?}");
    let new_token = grants[1].answer.clone().expect("a new token");
    let writes: Vec<_> = zoho
        .requests()
        .into_iter()
        .filter(|r| r.path == format!("{ZOHO_API}/Leads/{PAT_ID}/Notes"))
        .filter(|r| r.json.to_string().contains("Sent the quote"))
        .map(|r| r.authorization.unwrap_or_default())
        .collect();
    assert_eq!(
        writes,
        [
            format!("Zoho-oauthtoken {token}"),
            format!("Zoho-oauthtoken {new_token}")
        ]
    );

    // "Create in CRM" for a stranger (once neither module knew the number) makes a
    // Lead.
    server.sms("SMzo003", STRANGER, "anyone there?").await;
    let stranger_id = contact_of(&server, STRANGER).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait(&server, "the Leads search for the stranger", || async {
        zoho.requests().into_iter().find(|r| {
            r.path == format!("{ZOHO_API}/Leads/search")
                && r.query.as_deref() == Some("phone=4155550142")
        })
    })
    .await;
    let (status, created) = server
        .post(
            &format!("/api/v1/contacts/{stranger_id}/crm/crm-zoho"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let lead_id = created["external_id"].as_str().unwrap();
    let lead = zoho
        .records("Leads")
        .into_iter()
        .find(|l| l.id() == lead_id)
        .expect("created in Zoho");
    assert_eq!(lead.text("Phone"), STRANGER);
    assert_eq!(
        created["url"],
        format!("{}/crm/tab/Leads/{lead_id}", zoho.base)
    );

    // Zoho refuses a revoked refresh token with HTTP 200 and `invalid_code`: still
    // unauthorized, a dead letter, and no quarantine.
    zoho.revoke();
    note(&server, &jane_conversation, "Customer called again").await;
    let dead = wait(&server, "the dead letter", || async {
        activities(&server, "dead").await.into_iter().next()
    })
    .await;
    assert!(
        dead["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("invalid_code")),
        "{dead}"
    );
    assert_eq!(dead["attempts"], 1, "not retried: {dead}");
    assert_eq!(
        zoho.token_requests().last().unwrap().answer,
        Err("invalid_code".to_string())
    );
    let (_, plugin) = server.get("/api/v1/plugins/crm-zoho").await;
    assert!(plugin["quarantined"].is_null(), "{plugin}");
}
