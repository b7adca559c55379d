use super::*;
use crm_common::store::{MemoryStore, ScriptedTransport};

const LOGIN: &str = "http://127.0.0.1:9";
const TOKEN: &str = r#"{"access_token":"00Dxx!AQ4","instance_url":"http://127.0.0.1:9","id":"http://127.0.0.1:9/id/00D/005","token_type":"Bearer","issued_at":"1796646649000","signature":"c2ln"}"#;

fn client() -> Salesforce<MemoryStore, ScriptedTransport> {
    let mut settings = Settings::new(LOGIN, "3MVG9", "s3cret", "5Aep8");
    settings.vip_field = Some("VIP__c".into());
    settings.lifetime_value_field = Some("Lifetime_Value__c".into());
    Salesforce {
        settings,
        store: MemoryStore::default(),
        http: ScriptedTransport::default(),
        now_ms: 1_796_646_649_000,
    }
}

fn body(request: &Request) -> Value {
    serde_json::from_slice(&request.body).expect("a JSON body")
}

fn query_of(request: &Request) -> String {
    let (_, query) = request.url.split_once("?q=").expect("a query");
    let bytes = query.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&query[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

const ADA_CONTACT: &str = r#"{"attributes":{"type":"Contact","url":"/services/data/v62.0/sobjects/Contact/003A"},"Id":"003A","Name":"Ada Lovelace","FirstName":"Ada","LastName":"Lovelace","Email":"ada@example.com","Phone":"(415) 555-0100","MobilePhone":null,"HomePhone":"+44 20 7946 0018","OtherPhone":null,"OwnerId":"005X","Owner":{"attributes":{"type":"User"},"Name":"Grace Hopper"},"Account":{"attributes":{"type":"Account"},"Name":"Analytical Engines"},"VIP__c":true,"Lifetime_Value__c":125000.0}"#;
const ADA_LEAD: &str = r#"{"attributes":{"type":"Lead"},"Id":"00QB","Name":"Ada L.","Email":"ada@example.com","Phone":"415.555.0100","OwnerId":"005X","Owner":null,"Company":"AE Ltd"}"#;

fn records(list: &[&str]) -> String {
    format!(
        r#"{{"totalSize":{},"done":true,"records":[{}]}}"#,
        list.len(),
        list.join(",")
    )
}

#[test]
fn the_first_call_refreshes_the_token_then_queries_by_email() {
    let mut salesforce = client();
    salesforce
        .http
        .respond(200, TOKEN)
        .respond(200, &records(&[ADA_CONTACT]));
    let profile = salesforce
        .lookup(&Identity::new("email", "Ada@Example.com"))
        .unwrap()
        .expect("Ada");

    let token = &salesforce.http.requests[0];
    assert_eq!(token.method, "POST");
    assert_eq!(token.url, "http://127.0.0.1:9/services/oauth2/token");
    assert_eq!(
        String::from_utf8(token.body.clone()).unwrap(),
        "grant_type=refresh_token&refresh_token=5Aep8&client_id=3MVG9&client_secret=s3cret"
    );

    let query = &salesforce.http.requests[1];
    assert_eq!(query.method, "GET");
    assert!(
        query
            .url
            .starts_with("http://127.0.0.1:9/services/data/v62.0/query?q=SELECT%20Id%2C%20Name"),
        "{}",
        query.url
    );
    assert!(
        query
            .headers
            .contains(&("authorization".into(), "Bearer 00Dxx!AQ4".into()))
    );
    assert_eq!(
        query_of(query),
        "SELECT Id, Name, FirstName, LastName, Email, Phone, MobilePhone, OwnerId, Owner.Name, \
         HomePhone, OtherPhone, Account.Name, VIP__c, Lifetime_Value__c FROM Contact \
         WHERE Email = 'ada@example.com' ORDER BY LastModifiedDate DESC LIMIT 10"
    );

    assert_eq!(profile.external_id, "003A");
    assert_eq!(profile.display_name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(
        profile.identities,
        vec![
            Identity::new("email", "ada@example.com"),
            Identity::new("phone", "+14155550100"),
            Identity::new("phone", "+442079460018"),
        ]
    );
    assert_eq!(
        profile.attributes,
        vec![
            ("vip".to_owned(), "true".to_owned()),
            ("lifetime-value".to_owned(), "125000.0".to_owned()),
            ("owner".to_owned(), "Grace Hopper".to_owned()),
            ("company".to_owned(), "Analytical Engines".to_owned()),
            ("record-type".to_owned(), "Contact".to_owned()),
        ]
    );
    assert_eq!(
        profile.url.as_deref(),
        Some("http://127.0.0.1:9/lightning/r/Contact/003A/view")
    );

    // The token is cached: the next lookup sends only the query.
    salesforce
        .http
        .respond(200, &records(&[]))
        .respond(200, &records(&[]));
    assert_eq!(
        salesforce.lookup(&Identity::new("email", "nobody@example.com")),
        Ok(None)
    );
    assert_eq!(salesforce.http.requests.len(), 4);
    assert!(
        query_of(&salesforce.http.requests[3])
            .contains("FROM Lead WHERE Email = 'nobody@example.com' AND IsConverted = false")
    );
}

#[test]
fn leads_are_found_when_no_contact_is() {
    let mut salesforce = client();
    salesforce
        .http
        .respond(200, TOKEN)
        .respond(200, &records(&[]))
        .respond(200, &records(&[ADA_LEAD]));
    let profile = salesforce
        .lookup(&Identity::new("email", "ada@example.com"))
        .unwrap()
        .expect("the Lead");
    assert_eq!(profile.external_id, "00QB");
    assert_eq!(
        profile.url.as_deref(),
        Some("http://127.0.0.1:9/lightning/r/Lead/00QB/view")
    );
    assert!(
        profile
            .attributes
            .contains(&("company".into(), "AE Ltd".into()))
    );
    assert!(
        profile
            .attributes
            .contains(&("owner".into(), "005X".into()))
    );
    assert!(!profile.attributes.iter().any(|(k, _)| k == "vip"));
}

#[test]
fn values_are_escaped_in_soql() {
    assert_eq!(
        soql_escape(r"o'brien\x@example.com"),
        r"o\'brien\\x@example.com"
    );
    assert_eq!(soql_escape("a\nb\"c"), r#"a\nb\"c"#);
    let settings = client().settings;
    let query = email_query(Object::Contact, "x' OR Name != '", &settings);
    assert!(
        query.contains(r"WHERE Email = 'x\' OR Name != \''"),
        "{query}"
    );
}

#[test]
fn phones_are_searched_by_digits_and_confirmed() {
    let mut salesforce = client();
    let stranger = r#"{"attributes":{"type":"Contact"},"Id":"003Z","Name":"Someone Else","Phone":"+1 (415) 555-0199"}"#;
    salesforce.http.respond(200, TOKEN).respond(
        200,
        &format!(r#"{{"searchRecords":[{ADA_LEAD},{stranger},{ADA_CONTACT}]}}"#),
    );
    let profile = salesforce
        .lookup(&Identity::new("phone", "+14155550100"))
        .unwrap()
        .expect("Ada");
    // The Contact wins over the Lead; the stranger's number differs.
    assert_eq!(profile.external_id, "003A");

    let search = &salesforce.http.requests[1];
    assert_eq!(search.method, "POST");
    assert_eq!(
        search.url,
        "http://127.0.0.1:9/services/data/v62.0/parameterizedSearch/"
    );
    let sent = body(search);
    assert_eq!(sent["q"], "4155550100");
    assert_eq!(sent["in"], "PHONE");
    assert_eq!(sent["sobjects"][0]["name"], "Contact");
    assert_eq!(sent["sobjects"][1]["name"], "Lead");
    assert_eq!(sent["sobjects"][1]["where"], "IsConverted = false");
    assert_eq!(sent["sobjects"][1]["fields"][9], "Company");

    salesforce
        .http
        .respond(200, &format!(r#"{{"searchRecords":[{stranger}]}}"#));
    assert_eq!(
        salesforce.lookup(&Identity::new("whatsapp", "+14155550100")),
        Ok(None)
    );
    assert_eq!(
        salesforce.lookup(&Identity::new("telegram", "ada")),
        Ok(None)
    );
    assert_eq!(salesforce.http.requests.len(), 3);
}

#[test]
fn api_base_overrides_the_instance_but_not_the_links() {
    let mut salesforce = client();
    salesforce.settings.api_base = Some("http://127.0.0.1:7".into());
    salesforce
        .http
        .respond(
            200,
            r#"{"access_token":"t","instance_url":"https://acme.my.salesforce.com"}"#,
        )
        .respond(200, &records(&[ADA_CONTACT]));
    let profile = salesforce
        .lookup(&Identity::new("email", "ada@example.com"))
        .unwrap()
        .unwrap();
    assert!(
        salesforce.http.requests[1]
            .url
            .starts_with("http://127.0.0.1:7/services/data/v62.0/query?")
    );
    assert_eq!(
        profile.url.as_deref(),
        Some("https://acme.my.salesforce.com/lightning/r/Contact/003A/view")
    );
}

#[test]
fn an_expired_token_is_refreshed_once_and_the_call_retried() {
    let mut salesforce = client();
    salesforce
        .http
        .respond(200, TOKEN)
        .respond(200, &records(&[ADA_CONTACT]));
    salesforce
        .lookup(&Identity::new("email", "ada@example.com"))
        .unwrap();

    let expired = r#"[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]"#;
    salesforce
        .http
        .respond(401, expired)
        .respond(200, &TOKEN.replace("00Dxx!AQ4", "00Dxx!NEW"))
        .respond(200, &records(&[ADA_CONTACT]));
    let found = salesforce
        .lookup(&Identity::new("email", "ada@example.com"))
        .unwrap();
    assert_eq!(found.unwrap().external_id, "003A");
    let requests = &salesforce.http.requests;
    assert_eq!(requests.len(), 5);
    assert_eq!(requests[3].url, "http://127.0.0.1:9/services/oauth2/token");
    assert!(
        requests[4]
            .headers
            .contains(&("authorization".into(), "Bearer 00Dxx!NEW".into()))
    );

    // Refused again after the refresh: unauthorized.
    salesforce
        .http
        .respond(401, expired)
        .respond(200, TOKEN)
        .respond(401, expired);
    assert!(matches!(
        salesforce.lookup(&Identity::new("email", "ada@example.com")),
        Err(PluginError::Unauthorized(m)) if m.contains("INVALID_SESSION_ID")
    ));
}

#[test]
fn a_revoked_refresh_token_is_unauthorized() {
    let mut salesforce = client();
    salesforce.http.respond(
        400,
        r#"{"error":"invalid_grant","error_description":"expired access/refresh token"}"#,
    );
    assert!(matches!(
        salesforce.lookup(&Identity::new("email", "ada@example.com")),
        Err(PluginError::Unauthorized(m)) if m.contains("invalid_grant")
    ));
}

#[test]
fn limits_and_outages_are_retried() {
    let mut salesforce = client();
    salesforce
        .http
        .respond(200, TOKEN)
        .respond(
            403,
            r#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#,
        )
        .respond(503, "Service Unavailable")
        .respond(400, r#"[{"message":"No such column 'VIP__c' on entity 'Contact'.","errorCode":"INVALID_FIELD"}]"#);
    let email = Identity::new("email", "ada@example.com");
    assert_eq!(
        salesforce.lookup(&email),
        Err(PluginError::RateLimited(None))
    );
    assert!(matches!(
        salesforce.lookup(&email),
        Err(PluginError::Transient(_))
    ));
    assert!(matches!(
        salesforce.lookup(&email),
        Err(PluginError::Permanent(m)) if m.contains("INVALID_FIELD: No such column")
    ));
}

fn entry(kind: &str) -> TimelineEntry {
    TimelineEntry {
        id: "ev-42".into(),
        conversation_id: "conv-5".into(),
        contact: ContactSummary {
            id: "c-1".into(),
            display_name: Some("Ada Lovelace".into()),
            identities: vec![Identity::new("phone", "+14155550100")],
            attributes: vec![("crm-salesforce.external-id".into(), "003A".into())],
        },
        channel: "voice".into(),
        direction: Direction::Outbound,
        kind: kind.into(),
        body: "Follow-up on the refund".into(),
        author: Some("Grace".into()),
        occurred_at_ms: 1_796_646_649_000,
        disposition: Some("refund-confirmed".into()),
        duration_ms: Some(312_400),
    }
}

#[test]
fn calls_are_completed_call_tasks_written_once() {
    let mut salesforce = client();
    salesforce
        .http
        .respond(200, TOKEN)
        .respond(201, r#"{"id":"00T1","success":true,"errors":[]}"#);
    let call = entry("call");
    salesforce.record(&call).unwrap();
    salesforce.record(&call).unwrap();
    assert_eq!(salesforce.http.requests.len(), 2);

    let task = &salesforce.http.requests[1];
    assert_eq!(task.method, "POST");
    assert_eq!(
        task.url,
        "http://127.0.0.1:9/services/data/v62.0/sobjects/Task/"
    );
    assert_eq!(
        body(task),
        json!({
            "Subject": "Outbound call",
            "Status": "Completed",
            "Priority": "Normal",
            "WhoId": "003A",
            "ActivityDate": "2026-12-07",
            "Description": "Follow-up on the refund\n\nDisposition: refund-confirmed\nAgent: Grace\nChannel: Phone\nDuration: 5:12\nSwitchboard conversation conv-5 (entry ev-42)",
            "CallObject": "ev-42",
            "TaskSubtype": "Call",
            "CallType": "Outbound",
            "CallDurationInSeconds": 312,
            "CallDisposition": "refund-confirmed",
        })
    );
    assert_eq!(
        Ledger::recorded(&salesforce.store, "ev-42").as_deref(),
        Some("00T1")
    );
    assert!(!Ledger::attempted(&salesforce.store, "ev-42"));
}

#[test]
fn messages_are_plain_completed_tasks() {
    let mut salesforce = client();
    salesforce
        .http
        .respond(200, TOKEN)
        .respond(201, r#"{"id":"00T2","success":true,"errors":[]}"#);
    let mut message = entry("message");
    message.channel = "whatsapp".into();
    message.direction = Direction::Inbound;
    message.duration_ms = None;
    message.disposition = None;
    salesforce.record(&message).unwrap();
    let sent = body(&salesforce.http.requests[1]);
    assert_eq!(sent["TaskSubtype"], "Task");
    assert_eq!(sent["Subject"], "Inbound WhatsApp message");
    assert!(sent.get("CallType").is_none());
    assert!(sent.get("CallDurationInSeconds").is_none());
}

#[test]
fn a_retry_after_an_unconfirmed_attempt_asks_before_writing() {
    let mut salesforce = client();
    salesforce
        .http
        .respond(200, TOKEN)
        .fail(PluginError::Transient("connection reset".into()));
    let call = entry("call");
    assert!(matches!(
        salesforce.record(&call),
        Err(PluginError::Transient(_))
    ));
    assert!(Ledger::attempted(&salesforce.store, "ev-42"));

    // The Task had landed: the retry finds it by CallObject.
    salesforce.http.respond(
        200,
        &records(&[r#"{"attributes":{"type":"Task"},"Id":"00T9"}"#]),
    );
    salesforce.record(&call).unwrap();
    assert_eq!(
        query_of(&salesforce.http.requests[2]),
        "SELECT Id FROM Task WHERE CallObject = 'ev-42' LIMIT 1"
    );
    assert_eq!(salesforce.http.requests.len(), 3);
    assert_eq!(
        Ledger::recorded(&salesforce.store, "ev-42").as_deref(),
        Some("00T9")
    );
}

#[test]
fn unknown_people_are_looked_up_then_refused_or_created() {
    let mut salesforce = client();
    let mut note = entry("note");
    note.contact.attributes.clear();
    salesforce
        .http
        .respond(200, TOKEN)
        .respond(200, r#"{"searchRecords":[]}"#);
    assert!(
        matches!(salesforce.record(&note), Err(PluginError::Permanent(m)) if m.contains("c-1"))
    );

    salesforce.settings.create_unknown_contacts = true;
    salesforce
        .http
        .respond(200, r#"{"searchRecords":[]}"#)
        .respond(201, r#"{"id":"00QN","success":true,"errors":[]}"#)
        .respond(201, r#"{"id":"00T3","success":true,"errors":[]}"#);
    salesforce.record(&note).unwrap();
    let lead = &salesforce.http.requests[3];
    assert_eq!(
        lead.url,
        "http://127.0.0.1:9/services/data/v62.0/sobjects/Lead/"
    );
    assert_eq!(
        body(lead),
        json!({"FirstName": "Ada", "LastName": "Lovelace", "Phone": "+14155550100", "Company": "Unknown"})
    );
    assert_eq!(body(&salesforce.http.requests[4])["WhoId"], "00QN");
    assert_eq!(
        activity::cached_link(&salesforce.store, "c-1").as_deref(),
        Some("00QN")
    );
}

#[test]
fn contacts_are_created_or_the_duplicate_answered() {
    let mut salesforce = client();
    salesforce.settings.create_as = Object::Contact;
    let contact = ContactSummary {
        id: "c-9".into(),
        display_name: Some("Hopper".into()),
        identities: vec![Identity::new("email", "Grace@Navy.example")],
        attributes: Vec::new(),
    };
    salesforce
        .http
        .respond(200, TOKEN)
        .respond(201, r#"{"id":"003N","success":true,"errors":[]}"#);
    let profile = salesforce.create(&contact).unwrap();
    assert_eq!(
        body(&salesforce.http.requests[1]),
        json!({"LastName": "Hopper", "Email": "grace@navy.example"})
    );
    assert_eq!(profile.external_id, "003N");
    assert_eq!(profile.display_name.as_deref(), Some("Hopper"));
    assert_eq!(
        profile.url.as_deref(),
        Some("http://127.0.0.1:9/lightning/r/Contact/003N/view")
    );

    salesforce
        .http
        .respond(400, r#"[{"message":"Use one of these records?","errorCode":"DUPLICATES_DETECTED","fields":[]}]"#)
        .respond(
            200,
            &records(&[r#"{"attributes":{"type":"Contact"},"Id":"003G","LastName":"Hopper","Email":"grace@navy.example"}"#]),
        );
    assert_eq!(salesforce.create(&contact).unwrap().external_id, "003G");
}

#[test]
fn a_converted_lead_is_found_again_as_its_contact() {
    let mut salesforce = client();
    let mut note = entry("note");
    note.contact.attributes = vec![("crm-salesforce.external-id".into(), "00QB".into())];
    salesforce
        .http
        .respond(200, TOKEN)
        .respond(
            400,
            r#"[{"message":"entity is deleted","errorCode":"ENTITY_IS_DELETED","fields":[]}]"#,
        )
        .respond(200, &format!(r#"{{"searchRecords":[{ADA_CONTACT}]}}"#))
        .respond(201, r#"{"id":"00T5","success":true,"errors":[]}"#);
    salesforce.record(&note).unwrap();
    assert_eq!(body(&salesforce.http.requests[1])["WhoId"], "00QB");
    assert_eq!(body(&salesforce.http.requests[3])["WhoId"], "003A");
    assert_eq!(
        Ledger::recorded(&salesforce.store, "ev-42").as_deref(),
        Some("00T5")
    );
}
