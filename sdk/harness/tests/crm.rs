//! The built CRM components (`crm-hubspot`, `crm-salesforce`, `crm-zoho`) in
//! the real sandbox, against fake capabilities: their manifests load, they
//! export the `crm` world, and a lookup, a token refresh and a write-back go
//! out as the CRMs expect. The request-by-request details are the plugins'
//! own unit tests (`plugins/crm-*/src/api/tests.rs`).
//!
//! Run with `bash plugins/build.sh && cargo test -p switchboard-harness`.

use switchboard_harness::bindings::{
    ContactSummary, CrmDirection, CrmProfile, Identity, TimelineEntry,
};
use switchboard_harness::{Harness, Limits, OutboundRequest, PluginError, plugin_dir};

/// Where the stand-in CRMs "are": only allowed because the test says so.
const STAND_IN: &str = "http://127.0.0.1:9";

fn load(id: &str, config: &[(&str, &str)]) -> Harness {
    Harness::load_with(&plugin_dir(id), config, Limits::default(), &[STAND_IN])
        .unwrap_or_else(|e| panic!("load {id} (run `bash plugins/build.sh` first): {e}"))
}

fn identity(kind: &str, value: &str) -> Identity {
    Identity {
        kind: kind.into(),
        value: value.into(),
    }
}

async fn lookup(h: &Harness, who: &Identity) -> Result<Option<CrmProfile>, PluginError> {
    h.host()
        .crm_lookup(h.id(), who, std::time::Duration::from_secs(5))
        .await
        .expect("the call completes")
}

async fn record(h: &Harness, entry: &TimelineEntry) -> Result<(), PluginError> {
    h.host()
        .crm_record_activity(h.id(), entry)
        .await
        .expect("the call completes")
}

fn json(request: &OutboundRequest) -> serde_json::Value {
    serde_json::from_slice(&request.body).expect("a JSON body")
}

fn header<'a>(request: &'a OutboundRequest, name: &str) -> Option<&'a str> {
    request
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn call(external_id_attribute: (&str, &str)) -> TimelineEntry {
    TimelineEntry {
        id: "ev-1".into(),
        conversation_id: "conv-1".into(),
        contact: ContactSummary {
            id: "contact-1".into(),
            display_name: Some("Ada Lovelace".into()),
            identities: vec![identity("phone", "+14155550100")],
            attributes: vec![(
                external_id_attribute.0.into(),
                external_id_attribute.1.into(),
            )],
        },
        channel: "voice".into(),
        direction: CrmDirection::Inbound,
        kind: "call".into(),
        body: "Asked about the refund".into(),
        author: Some("Grace".into()),
        occurred_at_ms: 1_700_000_000_000,
        disposition: Some("resolved".into()),
        duration_ms: Some(95_000),
    }
}

#[tokio::test]
async fn hubspot_matches_a_formatted_number_and_logs_a_call_once() {
    let h = load(
        "crm-hubspot",
        &[
            ("access_token", "pat-na1-test"),
            ("api_base", STAND_IN),
            ("portal_id", "62515"),
        ],
    );
    h.http().respond(
        200,
        r#"{"total":1,"results":[{"id":"101","properties":{"firstname":"Ada","lastname":"Lovelace","email":"ada@example.com","phone":"(415) 555-0100","vip":"true","hubspot_owner_id":"7001","total_revenue":"12500","company":"Analytical Engines"}}]}"#,
    );
    let profile = lookup(&h, &identity("phone", "+14155550100"))
        .await
        .expect("no error")
        .expect("Ada");
    assert_eq!(profile.external_id, "101");
    assert_eq!(profile.display_name.as_deref(), Some("Ada Lovelace"));
    assert!(profile.attributes.contains(&("vip".into(), "true".into())));
    assert_eq!(
        profile.url.as_deref(),
        Some("https://app.hubspot.com/contacts/62515/record/0-1/101")
    );
    let search = &h.http().requests()[0];
    assert_eq!(search.method, "POST");
    assert_eq!(
        search.uri,
        "http://127.0.0.1:9/crm/v3/objects/contacts/search"
    );
    assert_eq!(header(search, "authorization"), Some("Bearer pat-na1-test"));

    h.http().respond(201, r#"{"id":"9001"}"#);
    let entry = call(("crm-hubspot.external-id", "101"));
    record(&h, &entry).await.expect("logged");
    record(&h, &entry).await.expect("a retry is a no-op");
    let requests = h.http().requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].uri, "http://127.0.0.1:9/crm/v3/objects/calls");
    let sent = json(&requests[1]);
    assert_eq!(sent["properties"]["hs_call_duration"], "95000");
    assert_eq!(sent["associations"][0]["to"]["id"], "101");

    h.http()
        .respond(429, r#"{"status":"error","message":"slow down"}"#);
    assert!(matches!(
        lookup(&h, &identity("email", "ada@example.com")).await,
        Err(PluginError::RateLimited(None))
    ));
}

#[tokio::test]
async fn salesforce_refreshes_an_expired_token_and_retries() {
    let h = load(
        "crm-salesforce",
        &[
            ("client_id", "3MVG9"),
            ("client_secret", "s3cret"),
            ("refresh_token", "5Aep8"),
            ("login_base", STAND_IN),
        ],
    );
    let token = |t: &str| {
        format!(r#"{{"access_token":"{t}","instance_url":"{STAND_IN}","token_type":"Bearer"}}"#)
    };
    let ada = r#"{"totalSize":1,"done":true,"records":[{"attributes":{"type":"Contact"},"Id":"003A","Name":"Ada Lovelace","Email":"ada@example.com","Owner":{"Name":"Grace Hopper"}}]}"#;
    h.http().respond(200, &token("first"));
    h.http().respond(200, ada);
    let profile = lookup(&h, &identity("email", "ada@example.com"))
        .await
        .expect("no error")
        .expect("Ada");
    assert_eq!(
        profile.url.as_deref(),
        Some("http://127.0.0.1:9/lightning/r/Contact/003A/view")
    );

    // The token expired: 401, one refresh, the same query again.
    h.http().respond(
        401,
        r#"[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]"#,
    );
    h.http().respond(200, &token("second"));
    h.http().respond(200, ada);
    assert!(
        lookup(&h, &identity("email", "ada@example.com"))
            .await
            .expect("no error")
            .is_some()
    );
    let requests = h.http().requests();
    let uris: Vec<_> = requests.iter().map(|r| r.uri.as_str()).collect();
    assert_eq!(uris[0], "http://127.0.0.1:9/services/oauth2/token");
    assert_eq!(uris[3], "http://127.0.0.1:9/services/oauth2/token");
    assert_eq!(uris[2], uris[4]);
    assert_eq!(header(&requests[4], "authorization"), Some("Bearer second"));

    h.http()
        .respond(201, r#"{"id":"00T1","success":true,"errors":[]}"#);
    record(&h, &call(("crm-salesforce.external-id", "003A")))
        .await
        .expect("logged");
    let task = &h.http().requests()[5];
    assert_eq!(
        task.uri,
        "http://127.0.0.1:9/services/data/v62.0/sobjects/Task/"
    );
    let sent = json(task);
    assert_eq!(sent["WhoId"], "003A");
    assert_eq!(sent["TaskSubtype"], "Call");
    assert_eq!(sent["CallDurationInSeconds"], 95);
}

#[tokio::test]
async fn zoho_uses_the_data_centre_of_the_token_answer() {
    let h = load(
        "crm-zoho",
        &[
            ("client_id", "1000.CID"),
            ("client_secret", "s3cret"),
            ("refresh_token", "1000.rt"),
            ("accounts_base", STAND_IN),
        ],
    );
    h.http().respond(
        200,
        &format!(
            r#"{{"access_token":"1000.tok","api_domain":"{STAND_IN}","token_type":"Bearer","expires_in":3600}}"#
        ),
    );
    h.http().respond(204, "");
    h.http().respond(
        200,
        r#"{"data":[{"id":"57001","Full_Name":"Ada L.","Phone":"415-555-0100","Company":"AE Ltd"}]}"#,
    );
    let profile = lookup(&h, &identity("phone", "+14155550100"))
        .await
        .expect("no error")
        .expect("the Lead");
    assert_eq!(profile.external_id, "57001");
    assert!(
        profile
            .attributes
            .contains(&("record-type".into(), "Lead".into()))
    );
    let requests = h.http().requests();
    assert_eq!(requests[0].uri, "http://127.0.0.1:9/oauth/v2/token");
    assert_eq!(
        requests[1].uri,
        "http://127.0.0.1:9/crm/v2/Contacts/search?phone=4155550100"
    );
    assert_eq!(
        header(&requests[2], "authorization"),
        Some("Zoho-oauthtoken 1000.tok")
    );

    h.http().respond(
        201,
        r#"{"data":[{"code":"SUCCESS","details":{"id":"58001"},"message":"record added","status":"success"}]}"#,
    );
    record(&h, &call(("crm-zoho.external-id", "57001")))
        .await
        .expect("logged");
    let sent = json(&h.http().requests()[3]);
    assert_eq!(sent["data"][0]["$se_module"], "Leads");
    assert_eq!(sent["data"][0]["What_Id"]["id"], "57001");
    assert_eq!(sent["data"][0]["Call_Duration"], "01:35");
}

#[tokio::test]
async fn a_crm_the_operator_did_not_allow_is_a_config_error() {
    let h = load(
        "crm-hubspot",
        &[("access_token", "t"), ("api_base", "http://127.0.0.1:8")],
    );
    assert!(matches!(
        lookup(&h, &identity("email", "ada@example.com")).await,
        Err(PluginError::Config(_))
    ));
    assert!(h.http().requests().is_empty());
}
