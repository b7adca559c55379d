use super::*;
use crm_common::store::{MemoryStore, ScriptedTransport};

fn client() -> HubSpot<MemoryStore, ScriptedTransport> {
    let mut settings = Settings::new("http://127.0.0.1:9/", "pat-na1-token");
    settings.portal_id = Some("62515".into());
    HubSpot {
        settings,
        store: MemoryStore::default(),
        http: ScriptedTransport::default(),
    }
}

fn body(request: &Request) -> Value {
    serde_json::from_slice(&request.body).expect("a JSON body")
}

const ADA: &str = r#"{"id":"101","properties":{"firstname":"Ada","lastname":"Lovelace","email":"ada@example.com","hs_additional_emails":"ada.l@work.example","phone":"(415) 555-0100","mobilephone":null,"company":"Analytical Engines","hubspot_owner_id":"7001","vip":"true","total_revenue":"12500.5","lastmodifieddate":"2026-11-02T10:00:00Z"},"createdAt":"2026-01-01T00:00:00Z","updatedAt":"2026-11-02T10:00:00Z","archived":false}"#;
const OTHER: &str = r#"{"id":"102","properties":{"firstname":"Bob","phone":"+44 415 555 0100"}}"#;

fn search_answer(results: &[&str]) -> String {
    format!(
        r#"{{"total":{},"results":[{}]}}"#,
        results.len(),
        results.join(",")
    )
}

#[test]
fn phone_lookups_search_the_digits_and_confirm_the_number() {
    let mut hubspot = client();
    hubspot.http.respond(200, &search_answer(&[OTHER, ADA]));
    let profile = hubspot
        .lookup(&Identity::new("phone", "+14155550100"))
        .unwrap()
        .expect("Ada");

    let request = &hubspot.http.requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.url,
        "http://127.0.0.1:9/crm/v3/objects/contacts/search"
    );
    assert!(
        request
            .headers
            .contains(&("authorization".into(), "Bearer pat-na1-token".into()))
    );
    let sent = body(request);
    assert_eq!(
        sent["filterGroups"],
        json!([
            {"filters": [{"propertyName": "phone", "operator": "EQ", "value": "+14155550100"}]},
            {"filters": [{"propertyName": "mobilephone", "operator": "EQ", "value": "+14155550100"}]},
            {"filters": [{"propertyName": "hs_searchable_calculated_phone_number", "operator": "EQ", "value": "4155550100"}]},
            {"filters": [{"propertyName": "hs_searchable_calculated_mobile_number", "operator": "EQ", "value": "4155550100"}]},
        ])
    );
    assert_eq!(sent["limit"], 10);
    let properties: Vec<&str> = sent["properties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    for wanted in [
        "firstname",
        "email",
        "phone",
        "mobilephone",
        "hubspot_owner_id",
        "vip",
        "total_revenue",
    ] {
        assert!(properties.contains(&wanted), "{wanted}");
    }

    assert_eq!(profile.external_id, "101");
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
            ("owner".to_owned(), "7001".to_owned()),
            ("lifetime-value".to_owned(), "12500.5".to_owned()),
            ("company".to_owned(), "Analytical Engines".to_owned()),
        ]
    );
    assert_eq!(
        profile.url.as_deref(),
        Some("https://app.hubspot.com/contacts/62515/record/0-1/101")
    );
}

#[test]
fn whatsapp_and_national_numbers_are_phones() {
    let mut hubspot = client();
    hubspot.http.respond(200, &search_answer(&[ADA]));
    let found = hubspot
        .lookup(&Identity::new("whatsapp", "415-555-0100"))
        .unwrap();
    assert_eq!(found.unwrap().external_id, "101");
    assert_eq!(
        body(&hubspot.http.requests[0])["filterGroups"][0]["filters"][0]["value"],
        "+14155550100"
    );
}

#[test]
fn a_contact_whose_number_differs_is_not_a_match() {
    let mut hubspot = client();
    hubspot.http.respond(200, &search_answer(&[OTHER]));
    assert_eq!(
        hubspot.lookup(&Identity::new("phone", "+14155550100")),
        Ok(None)
    );
    hubspot.http.respond(200, r#"{"total":0,"results":[]}"#);
    assert_eq!(
        hubspot.lookup(&Identity::new("phone", "+14155550199")),
        Ok(None)
    );
}

#[test]
fn email_lookups_match_the_additional_addresses_too() {
    let mut hubspot = client();
    hubspot.http.respond(200, &search_answer(&[ADA]));
    let found = hubspot
        .lookup(&Identity::new("email", "Ada.L@Work.Example"))
        .unwrap();
    assert_eq!(found.unwrap().external_id, "101");
    assert_eq!(
        body(&hubspot.http.requests[0])["filterGroups"],
        json!([
            {"filters": [{"propertyName": "email", "operator": "EQ", "value": "ada.l@work.example"}]},
            {"filters": [{"propertyName": "hs_additional_emails", "operator": "CONTAINS_TOKEN", "value": "ada.l@work.example"}]},
        ])
    );
}

#[test]
fn identities_hubspot_does_not_hold_are_not_searched() {
    let mut hubspot = client();
    assert_eq!(hubspot.lookup(&Identity::new("telegram", "ada")), Ok(None));
    assert_eq!(hubspot.lookup(&Identity::new("phone", "n/a")), Ok(None));
    assert!(hubspot.http.requests.is_empty());
}

#[test]
fn hubspot_errors_are_classified() {
    let mut hubspot = client();
    hubspot
        .http
        .respond(401, r#"{"status":"error","message":"Authentication credentials not found.","category":"INVALID_AUTHENTICATION"}"#)
        .respond(429, r#"{"status":"error","message":"You have reached your secondly limit.","category":"RATE_LIMITS"}"#)
        .respond(502, "<html>Bad gateway</html>")
        .respond(400, r#"{"status":"error","message":"Invalid input JSON","category":"VALIDATION_ERROR"}"#);
    let phone = Identity::new("phone", "+14155550100");
    assert!(matches!(
        hubspot.lookup(&phone),
        Err(PluginError::Unauthorized(m)) if m.contains("INVALID_AUTHENTICATION: Authentication credentials")
    ));
    assert_eq!(hubspot.lookup(&phone), Err(PluginError::RateLimited(None)));
    assert!(matches!(
        hubspot.lookup(&phone),
        Err(PluginError::Transient(_))
    ));
    assert!(matches!(
        hubspot.lookup(&phone),
        Err(PluginError::Permanent(m)) if m == "HTTP 400: VALIDATION_ERROR: Invalid input JSON"
    ));
    // No answer at all.
    assert!(matches!(
        hubspot.lookup(&phone),
        Err(PluginError::Transient(_))
    ));
}

fn entry(kind: &str, channel: &str, direction: Direction) -> TimelineEntry {
    TimelineEntry {
        id: "ev-7".into(),
        conversation_id: "conv-3".into(),
        contact: ContactSummary {
            id: "c-1".into(),
            display_name: Some("Ada Lovelace".into()),
            identities: vec![
                Identity::new("phone", "+14155550100"),
                Identity::new("email", "ada@example.com"),
            ],
            attributes: vec![("crm-hubspot.external-id".into(), "101".into())],
        },
        channel: channel.into(),
        direction,
        kind: kind.into(),
        body: "Customer asked about <billing> & refunds".into(),
        author: Some("Grace".into()),
        occurred_at_ms: 1_796_646_649_000,
        disposition: None,
        duration_ms: None,
    }
}

#[test]
fn calls_are_call_engagements_associated_to_the_contact_once() {
    let mut hubspot = client();
    let mut call = entry("call", "voice", Direction::Inbound);
    call.duration_ms = Some(95_000);
    call.disposition = Some("resolved".into());
    hubspot
        .http
        .respond(201, r#"{"id":"9001","properties":{}}"#);
    hubspot.record(&call).unwrap();
    // The host retries: nothing is sent again.
    hubspot.record(&call).unwrap();
    assert_eq!(hubspot.http.requests.len(), 1);

    let request = &hubspot.http.requests[0];
    assert_eq!(request.url, "http://127.0.0.1:9/crm/v3/objects/calls");
    let sent = body(request);
    assert_eq!(sent["properties"]["hs_timestamp"], "2026-12-07T12:30:49Z");
    assert_eq!(sent["properties"]["hs_call_title"], "Inbound call");
    assert_eq!(sent["properties"]["hs_call_direction"], "INBOUND");
    assert_eq!(sent["properties"]["hs_call_duration"], "95000");
    assert_eq!(sent["properties"]["hs_call_status"], "COMPLETED");
    let call_body = sent["properties"]["hs_call_body"].as_str().unwrap();
    assert!(
        call_body.starts_with("Customer asked about &lt;billing&gt; &amp; refunds<br>"),
        "{call_body}"
    );
    assert!(
        call_body.contains("Disposition: resolved<br>Agent: Grace"),
        "{call_body}"
    );
    assert_eq!(
        sent["associations"],
        json!([{"to": {"id": "101"}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 194}]}])
    );
    assert_eq!(
        Ledger::recorded(&hubspot.store, "ev-7").as_deref(),
        Some("9001")
    );
}

#[test]
fn missed_calls_are_logged_as_not_answered() {
    let mut hubspot = client();
    let mut call = entry("call", "voice", Direction::Inbound);
    call.disposition = Some("missed".into());
    hubspot.http.respond(201, r#"{"id":"9002"}"#);
    hubspot.record(&call).unwrap();
    let sent = body(&hubspot.http.requests[0]);
    assert_eq!(sent["properties"]["hs_call_status"], "NO_ANSWER");
    assert!(sent["properties"].get("hs_call_duration").is_none());
}

#[test]
fn sms_messages_are_communications_and_web_chats_notes() {
    let mut hubspot = client();
    hubspot
        .http
        .respond(201, r#"{"id":"1"}"#)
        .respond(201, r#"{"id":"2"}"#);
    hubspot
        .record(&entry("message", "sms", Direction::Outbound))
        .unwrap();
    let mut chat = entry("message", "webchat", Direction::Inbound);
    chat.id = "ev-8".into();
    hubspot.record(&chat).unwrap();

    let sms = &hubspot.http.requests[0];
    assert_eq!(sms.url, "http://127.0.0.1:9/crm/v3/objects/communications");
    let sent = body(sms);
    assert_eq!(sent["properties"]["hs_communication_channel_type"], "SMS");
    assert_eq!(sent["properties"]["hs_communication_logged_from"], "CRM");
    assert!(
        sent["properties"]["hs_communication_body"]
            .as_str()
            .unwrap()
            .starts_with("Outbound SMS message\n\nCustomer asked")
    );
    assert_eq!(sent["associations"][0]["types"][0]["associationTypeId"], 81);

    let note = &hubspot.http.requests[1];
    assert_eq!(note.url, "http://127.0.0.1:9/crm/v3/objects/notes");
    let sent = body(note);
    assert!(
        sent["properties"]["hs_note_body"]
            .as_str()
            .unwrap()
            .starts_with("<strong>Inbound Web chat message</strong><br>")
    );
    assert_eq!(
        sent["associations"][0]["types"][0]["associationTypeId"],
        202
    );
}

#[test]
fn an_unknown_contact_is_looked_up_by_its_identities_then_cached() {
    let mut hubspot = client();
    let mut note = entry("note", "sms", Direction::Internal);
    note.contact.attributes.clear();
    hubspot
        .http
        .respond(200, &search_answer(&[ADA]))
        .respond(201, r#"{"id":"3"}"#);
    hubspot.record(&note).unwrap();
    // E-mail first.
    assert_eq!(
        body(&hubspot.http.requests[0])["filterGroups"][0]["filters"][0]["value"],
        "ada@example.com"
    );
    assert_eq!(
        body(&hubspot.http.requests[1])["associations"][0]["to"]["id"],
        "101"
    );
    assert_eq!(
        activity::cached_link(&hubspot.store, "c-1").as_deref(),
        Some("101")
    );

    // The next entry of that contact needs no search.
    note.id = "ev-9".into();
    hubspot.http.respond(201, r#"{"id":"4"}"#);
    hubspot.record(&note).unwrap();
    assert_eq!(hubspot.http.requests.len(), 3);
}

#[test]
fn a_person_hubspot_does_not_know_is_a_dead_letter_unless_created() {
    let mut hubspot = client();
    let mut note = entry("note", "sms", Direction::Internal);
    note.contact.attributes.clear();
    let empty = r#"{"total":0,"results":[]}"#;
    hubspot.http.respond(200, empty).respond(200, empty);
    assert!(matches!(hubspot.record(&note), Err(PluginError::Permanent(m)) if m.contains("c-1")));
    assert_eq!(hubspot.http.requests.len(), 2);

    hubspot.settings.create_unknown_contacts = true;
    hubspot
        .http
        .respond(200, empty)
        .respond(200, empty)
        .respond(201, r#"{"id":"555","properties":{"firstname":"Ada","lastname":"Lovelace","email":"ada@example.com"}}"#)
        .respond(201, r#"{"id":"5"}"#);
    hubspot.record(&note).unwrap();
    let create = &hubspot.http.requests[4];
    assert_eq!(create.url, "http://127.0.0.1:9/crm/v3/objects/contacts");
    assert_eq!(
        body(&hubspot.http.requests[5])["associations"][0]["to"]["id"],
        "555"
    );
}

#[test]
fn contacts_are_created_from_the_host_summary() {
    let mut hubspot = client();
    let contact = ContactSummary {
        id: "c-2".into(),
        display_name: Some("Grace Brewster Hopper".into()),
        identities: vec![
            Identity::new("whatsapp", "+14155550123"),
            Identity::new("email", "Grace@Navy.example"),
            Identity::new("telegram", "grace"),
        ],
        attributes: Vec::new(),
    };
    hubspot.http.respond(
        201,
        r#"{"id":"777","properties":{"firstname":"Grace Brewster","lastname":"Hopper","email":"grace@navy.example","phone":"+14155550123"}}"#,
    );
    let profile = hubspot.create(&contact).unwrap();
    assert_eq!(
        body(&hubspot.http.requests[0]),
        json!({"properties": {
            "firstname": "Grace Brewster",
            "lastname": "Hopper",
            "phone": "+14155550123",
            "email": "grace@navy.example",
        }})
    );
    assert_eq!(profile.external_id, "777");
    assert_eq!(
        profile.display_name.as_deref(),
        Some("Grace Brewster Hopper")
    );
    assert_eq!(
        profile.url.as_deref(),
        Some("https://app.hubspot.com/contacts/62515/record/0-1/777")
    );
}

#[test]
fn creating_an_existing_contact_answers_that_contact() {
    let mut hubspot = client();
    let contact = ContactSummary {
        id: "c-1".into(),
        display_name: None,
        identities: vec![Identity::new("email", "ada@example.com")],
        attributes: Vec::new(),
    };
    hubspot
        .http
        .respond(409, r#"{"status":"error","message":"Contact already exists. Existing ID: 101","category":"CONFLICT"}"#)
        .respond(200, &search_answer(&[ADA]));
    assert_eq!(hubspot.create(&contact).unwrap().external_id, "101");

    let nobody = ContactSummary {
        identities: vec![Identity::new("telegram", "x")],
        ..contact
    };
    assert!(matches!(
        hubspot.create(&nobody),
        Err(PluginError::InvalidRequest(_))
    ));
}

#[test]
fn a_contact_gone_from_hubspot_is_found_again_once() {
    let mut hubspot = client();
    let mut note = entry("note", "sms", Direction::Internal);
    note.contact.attributes = vec![("crm-hubspot.external-id".into(), "99".into())];
    hubspot
        .http
        .respond(400, r#"{"status":"error","message":"associated contact does not exist","category":"VALIDATION_ERROR"}"#)
        .respond(200, &search_answer(&[ADA]))
        .respond(201, r#"{"id":"6"}"#);
    hubspot.record(&note).unwrap();
    let requests = &hubspot.http.requests;
    assert_eq!(requests.len(), 3);
    assert_eq!(body(&requests[0])["associations"][0]["to"]["id"], "99");
    assert_eq!(body(&requests[2])["associations"][0]["to"]["id"], "101");
    assert_eq!(
        activity::cached_link(&hubspot.store, "c-1").as_deref(),
        Some("101")
    );

    // The same record found again: HubSpot's refusal stands.
    note.id = "ev-10".into();
    note.contact.attributes.clear();
    hubspot
        .http
        .respond(400, r#"{"status":"error","message":"Property values were not valid","category":"VALIDATION_ERROR"}"#)
        .respond(200, &search_answer(&[ADA]));
    assert!(matches!(
        hubspot.record(&note),
        Err(PluginError::Permanent(m)) if m.contains("Property values were not valid")
    ));
}
