use super::*;
use crm_common::store::{MemoryStore, ScriptedTransport};

const TOKEN: &str = r#"{"access_token":"1000.a1b2","api_domain":"http://127.0.0.1:9","token_type":"Bearer","expires_in":3600}"#;

fn client() -> Zoho<MemoryStore, ScriptedTransport> {
    let mut settings = Settings::new("http://127.0.0.1:8/", "1000.CID", "s3cret", "1000.rt");
    settings.vip_field = Some("VIP".into());
    settings.lifetime_value_field = Some("Lifetime_Value".into());
    Zoho {
        settings,
        store: MemoryStore::default(),
        http: ScriptedTransport::default(),
        now_ms: 1_796_646_649_000,
    }
}

fn body(request: &Request) -> Value {
    serde_json::from_slice(&request.body).expect("a JSON body")
}

const ADA: &str = r#"{"id":"5725767000000411001","Full_Name":"Ada Lovelace","First_Name":"Ada","Last_Name":"Lovelace","Email":"ada@example.com","Secondary_Email":"ada.l@work.example","Phone":"(415) 555-0100","Mobile":null,"Owner":{"name":"Grace Hopper","id":"5725767000000200001","email":"grace@example.com"},"Account_Name":{"name":"Analytical Engines","id":"5725767000000300001"},"VIP":true,"Lifetime_Value":125000}"#;
const ADA_LEAD: &str = r#"{"id":"5725767000000500001","Full_Name":"Ada L.","Last_Name":"L.","Email":"ada@example.com","Phone":"415-555-0100","Owner":{"name":"Grace Hopper","id":"1"},"Company":"AE Ltd"}"#;

fn data(records: &[&str]) -> String {
    format!(
        r#"{{"data":[{}],"info":{{"per_page":200,"count":{},"page":1,"more_records":false}}}}"#,
        records.join(","),
        records.len()
    )
}

#[test]
fn the_first_call_refreshes_the_token_then_searches_contacts() {
    let mut zoho = client();
    zoho.http.respond(200, TOKEN).respond(200, &data(&[ADA]));
    let profile = zoho
        .lookup(&Identity::new("email", "Ada@Example.com"))
        .unwrap()
        .expect("Ada");

    let token = &zoho.http.requests[0];
    assert_eq!(token.method, "POST");
    assert_eq!(token.url, "http://127.0.0.1:8/oauth/v2/token");
    assert_eq!(
        String::from_utf8(token.body.clone()).unwrap(),
        "grant_type=refresh_token&refresh_token=1000.rt&client_id=1000.CID&client_secret=s3cret"
    );

    let search = &zoho.http.requests[1];
    assert_eq!(search.method, "GET");
    assert_eq!(
        search.url,
        "http://127.0.0.1:9/crm/v2/Contacts/search?email=ada%40example.com"
    );
    assert!(
        search
            .headers
            .contains(&("authorization".into(), "Zoho-oauthtoken 1000.a1b2".into()))
    );

    assert_eq!(profile.external_id, "5725767000000411001");
    assert_eq!(profile.display_name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(
        profile.identities,
        vec![
            Identity::new("email", "ada@example.com"),
            Identity::new("email", "ada.l@work.example"),
            Identity::new("phone", "+14155550100"),
        ]
    );
    assert_eq!(
        profile.attributes,
        vec![
            ("vip".to_owned(), "true".to_owned()),
            ("lifetime-value".to_owned(), "125000".to_owned()),
            ("owner".to_owned(), "Grace Hopper".to_owned()),
            ("company".to_owned(), "Analytical Engines".to_owned()),
            ("record-type".to_owned(), "Contact".to_owned()),
        ]
    );
    assert_eq!(
        profile.url.as_deref(),
        Some("http://127.0.0.1:9/crm/tab/Contacts/5725767000000411001")
    );
}

#[test]
fn leads_are_searched_when_no_contact_matches() {
    let mut zoho = client();
    zoho.http
        .respond(200, TOKEN)
        .respond(204, "")
        .respond(200, &data(&[ADA_LEAD]));
    let profile = zoho
        .lookup(&Identity::new("phone", "+14155550100"))
        .unwrap()
        .expect("the Lead");
    assert_eq!(
        zoho.http.requests[1].url,
        "http://127.0.0.1:9/crm/v2/Contacts/search?phone=4155550100"
    );
    assert_eq!(
        zoho.http.requests[2].url,
        "http://127.0.0.1:9/crm/v2/Leads/search?phone=4155550100"
    );
    assert_eq!(profile.external_id, "5725767000000500001");
    assert!(
        profile
            .attributes
            .contains(&("company".into(), "AE Ltd".into()))
    );
    assert!(
        profile
            .attributes
            .contains(&("record-type".into(), "Lead".into()))
    );
    assert!(!profile.attributes.iter().any(|(k, _)| k == "vip"));
    assert_eq!(
        profile.url.as_deref(),
        Some("http://127.0.0.1:9/crm/tab/Leads/5725767000000500001")
    );
    // Remembered as a Lead for write-backs.
    assert_eq!(
        MODULES.get(&zoho.store, "5725767000000500001").as_deref(),
        Some("Leads")
    );
}

#[test]
fn numbers_that_differ_are_not_matches() {
    let mut zoho = client();
    let other = r#"{"id":"9","Full_Name":"Someone","Phone":"+1 415 555 0199"}"#;
    zoho.http
        .respond(200, TOKEN)
        .respond(200, &data(&[other]))
        .respond(204, "");
    assert_eq!(
        zoho.lookup(&Identity::new("whatsapp", "+14155550100")),
        Ok(None)
    );
    assert_eq!(zoho.lookup(&Identity::new("telegram", "ada")), Ok(None));
    assert_eq!(zoho.http.requests.len(), 3);
}

#[test]
fn data_centres_and_later_api_versions() {
    let mut zoho = client();
    zoho.settings.api_version = "v7".into();
    zoho.settings.oauth.token_url = "https://accounts.zoho.eu/oauth/v2/token".into();
    zoho.http
        .respond(
            200,
            r#"{"access_token":"t","api_domain":"https://www.zohoapis.eu","expires_in":3600}"#,
        )
        .respond(200, &data(&[ADA]));
    let profile = zoho
        .lookup(&Identity::new("email", "ada@example.com"))
        .unwrap()
        .unwrap();
    let search = &zoho.http.requests[1].url;
    assert!(
        search.starts_with("https://www.zohoapis.eu/crm/v7/Contacts/search?email=ada%40example.com&fields=id%2CFull_Name%2C"),
        "{search}"
    );
    assert_eq!(
        profile.url.as_deref(),
        Some("https://crm.zoho.eu/crm/tab/Contacts/5725767000000411001")
    );

    assert_eq!(
        web_base_of("https://www.zohoapis.com"),
        "https://crm.zoho.com"
    );
    assert_eq!(
        web_base_of("https://www.zohoapis.com.au"),
        "https://crm.zoho.com.au"
    );
    assert_eq!(
        web_base_of("https://www.zohoapis.ca"),
        "https://crm.zohocloud.ca"
    );
    assert_eq!(web_base_of("http://127.0.0.1:9"), "http://127.0.0.1:9");
}

#[test]
fn api_base_overrides_the_api_domain_but_links_follow_the_data_centre() {
    let mut zoho = client();
    zoho.settings.api_base = Some("http://127.0.0.1:7".into());
    zoho.http
        .respond(
            200,
            r#"{"access_token":"t","api_domain":"https://www.zohoapis.in","expires_in":3600}"#,
        )
        .respond(200, &data(&[ADA]));
    let profile = zoho
        .lookup(&Identity::new("email", "ada@example.com"))
        .unwrap()
        .unwrap();
    assert!(
        zoho.http.requests[1]
            .url
            .starts_with("http://127.0.0.1:7/crm/v2/")
    );
    assert_eq!(
        profile.url.as_deref(),
        Some("https://crm.zoho.in/crm/tab/Contacts/5725767000000411001")
    );
}

#[test]
fn an_invalid_token_is_refreshed_once() {
    let mut zoho = client();
    let invalid =
        r#"{"code":"INVALID_TOKEN","details":{},"message":"invalid oauth token","status":"error"}"#;
    zoho.http
        .respond(200, TOKEN)
        .respond(401, invalid)
        .respond(200, &TOKEN.replace("1000.a1b2", "1000.new"))
        .respond(200, &data(&[ADA]));
    assert!(
        zoho.lookup(&Identity::new("email", "ada@example.com"))
            .unwrap()
            .is_some()
    );
    assert!(
        zoho.http.requests[3]
            .headers
            .contains(&("authorization".into(), "Zoho-oauthtoken 1000.new".into()))
    );

    zoho.http
        .respond(401, invalid)
        .respond(200, TOKEN)
        .respond(401, invalid);
    assert!(matches!(
        zoho.lookup(&Identity::new("email", "ada@example.com")),
        Err(PluginError::Unauthorized(m)) if m.contains("INVALID_TOKEN")
    ));
}

#[test]
fn a_refused_refresh_token_and_throttling() {
    let mut zoho = client();
    // Zoho answers a bad refresh token with HTTP 200 and an error.
    zoho.http.respond(200, r#"{"error":"invalid_code"}"#);
    assert!(matches!(
        zoho.lookup(&Identity::new("email", "ada@example.com")),
        Err(PluginError::Unauthorized(m)) if m.contains("invalid_code")
    ));
    zoho.http
        .respond(200, TOKEN)
        .respond(
            429,
            r#"{"code":"TOO_MANY_REQUESTS","message":"too many requests","status":"error"}"#,
        )
        .respond(
            500,
            r#"{"code":"INTERNAL_ERROR","message":"oops","status":"error"}"#,
        );
    let email = Identity::new("email", "ada@example.com");
    assert_eq!(zoho.lookup(&email), Err(PluginError::RateLimited(None)));
    assert!(
        matches!(zoho.lookup(&email), Err(PluginError::Transient(m)) if m.contains("INTERNAL_ERROR"))
    );
}

fn entry(kind: &str) -> TimelineEntry {
    TimelineEntry {
        id: "ev-5".into(),
        conversation_id: "conv-2".into(),
        contact: ContactSummary {
            id: "c-1".into(),
            display_name: Some("Ada Lovelace".into()),
            identities: vec![Identity::new("email", "ada@example.com")],
            attributes: vec![("crm-zoho.external-id".into(), "5725767000000411001".into())],
        },
        channel: "voice".into(),
        direction: Direction::Inbound,
        kind: kind.into(),
        body: "Asked about the invoice".into(),
        author: Some("Grace".into()),
        occurred_at_ms: 1_796_646_649_000,
        disposition: None,
        duration_ms: Some(65_000),
    }
}

const INSERTED: &str = r#"{"data":[{"code":"SUCCESS","details":{"Modified_Time":"2026-12-07T12:30:50+00:00","id":"5725767000000600001","Created_Time":"2026-12-07T12:30:50+00:00"},"message":"record added","status":"success"}]}"#;

#[test]
fn calls_are_calls_records_on_the_contact_written_once() {
    let mut zoho = client();
    // The module of the host's record id is asked once: a Contact.
    zoho.http
        .respond(200, TOKEN)
        .respond(200, &data(&[ADA]))
        .respond(201, INSERTED);
    let call = entry("call");
    zoho.record(&call).unwrap();
    zoho.record(&call).unwrap();
    assert_eq!(zoho.http.requests.len(), 3);
    assert_eq!(
        MODULES.get(&zoho.store, "5725767000000411001").as_deref(),
        Some("Contacts")
    );
    let request = &zoho.http.requests[2];
    assert_eq!(request.method, "POST");
    assert_eq!(request.url, "http://127.0.0.1:9/crm/v2/Calls");
    assert_eq!(
        body(request),
        json!({"data": [{
            "Subject": "Inbound call",
            "Call_Type": "Inbound",
            "Call_Start_Time": "2026-12-07T12:30:49+00:00",
            "Call_Duration": "01:05",
            "Description": "Asked about the invoice\n\nAgent: Grace\nChannel: Phone\nDuration: 1:05\nSwitchboard conversation conv-2 (entry ev-5)",
            "Who_Id": {"id": "5725767000000411001"},
        }]})
    );
    assert_eq!(
        Ledger::recorded(&zoho.store, "ev-5").as_deref(),
        Some("5725767000000600001")
    );
}

#[test]
fn calls_with_leads_are_related_through_se_module() {
    let mut zoho = client();
    let mut call = entry("call");
    call.duration_ms = Some(0);
    // The record's module is unknown: Zoho is asked, and it is no Contact.
    zoho.http
        .respond(200, TOKEN)
        .respond(204, "")
        .respond(201, INSERTED);
    zoho.record(&call).unwrap();
    assert_eq!(
        zoho.http.requests[1].url,
        "http://127.0.0.1:9/crm/v2/Contacts/5725767000000411001"
    );
    let sent = body(&zoho.http.requests[2]);
    assert_eq!(sent["data"][0]["$se_module"], "Leads");
    assert_eq!(
        sent["data"][0]["What_Id"],
        json!({"id": "5725767000000411001"})
    );
    assert_eq!(sent["data"][0]["Call_Type"], "Missed");
    assert!(sent["data"][0].get("Who_Id").is_none());
}

#[test]
fn messages_and_notes_are_notes_on_the_record() {
    let mut zoho = client();
    MODULES.set(&mut zoho.store, "5725767000000411001", "Contacts");
    let mut message = entry("message");
    message.channel = "sms".into();
    message.duration_ms = None;
    zoho.http.respond(200, TOKEN).respond(201, INSERTED);
    zoho.record(&message).unwrap();
    let request = &zoho.http.requests[1];
    assert_eq!(
        request.url,
        "http://127.0.0.1:9/crm/v2/Contacts/5725767000000411001/Notes"
    );
    let sent = body(request);
    assert_eq!(sent["data"][0]["Note_Title"], "Inbound SMS message");
    assert!(
        sent["data"][0]["Note_Content"]
            .as_str()
            .unwrap()
            .starts_with("Asked about the invoice\n\nAgent: Grace")
    );
}

#[test]
fn refused_records_are_permanent() {
    let mut zoho = client();
    MODULES.set(&mut zoho.store, "5725767000000411001", "Contacts");
    zoho.http.respond(200, TOKEN).respond(
        400,
        r#"{"data":[{"code":"MANDATORY_NOT_FOUND","details":{"api_name":"Call_Start_Time"},"message":"required field not found","status":"error"}]}"#,
    );
    // Before giving up, the person is looked for again (a merged record):
    // nobody else.
    zoho.http.respond(204, "").respond(204, "");
    assert!(matches!(
        zoho.record(&entry("call")),
        Err(PluginError::Permanent(m)) if m.contains("MANDATORY_NOT_FOUND: required field not found")
    ));
    assert_eq!(zoho.http.requests.len(), 4);
    assert_eq!(Ledger::recorded(&zoho.store, "ev-5"), None);
}

#[test]
fn unknown_people_are_looked_up_then_refused_or_created() {
    let mut zoho = client();
    let mut note = entry("note");
    note.contact.attributes.clear();
    zoho.http
        .respond(200, TOKEN)
        .respond(204, "")
        .respond(204, "");
    assert!(matches!(zoho.record(&note), Err(PluginError::Permanent(m)) if m.contains("c-1")));

    zoho.settings.create_unknown_contacts = true;
    zoho.http
        .respond(204, "")
        .respond(204, "")
        .respond(201, INSERTED)
        .respond(201, &INSERTED.replace("600001", "600002"));
    zoho.record(&note).unwrap();
    let create = &zoho.http.requests[5];
    assert_eq!(create.url, "http://127.0.0.1:9/crm/v2/Leads");
    assert_eq!(
        body(create),
        json!({"data": [{"First_Name": "Ada", "Last_Name": "Lovelace", "Email": "ada@example.com"}]})
    );
    assert_eq!(
        zoho.http.requests[6].url,
        "http://127.0.0.1:9/crm/v2/Leads/5725767000000600001/Notes"
    );
}

#[test]
fn duplicates_answer_the_existing_record() {
    let mut zoho = client();
    zoho.settings.create_as = Module::Contacts;
    let contact = ContactSummary {
        id: "c-1".into(),
        display_name: None,
        identities: vec![Identity::new("email", "ada@example.com")],
        attributes: Vec::new(),
    };
    zoho.http
        .respond(200, TOKEN)
        .respond(
            202,
            r#"{"data":[{"code":"DUPLICATE_DATA","details":{"api_name":"Email","id":"5725767000000411001"},"message":"duplicate data","status":"error"}]}"#,
        )
        .respond(200, &data(&[ADA]));
    assert_eq!(
        zoho.create(&contact).unwrap().external_id,
        "5725767000000411001"
    );
    assert_eq!(
        body(&zoho.http.requests[1]),
        json!({"data": [{"Last_Name": "Unknown", "Email": "ada@example.com"}]})
    );
}
