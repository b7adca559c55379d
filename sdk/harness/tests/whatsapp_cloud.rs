//! The built `whatsapp-cloud` component in the real sandbox, against fake
//! capabilities: Meta's signed webhooks in, Cloud API calls out, media
//! downloads through the host.
//!
//! Run with `bash plugins/build.sh && cargo test -p switchboard-harness --test whatsapp_cloud`.

mod meta;

use meta::*;
use serde_json::json;
use switchboard_harness::bindings::{
    Choice, ChoiceList, DeliveryStatus, InteractiveMessage, TemplateMessage, TemplateParameter,
    WindowUse,
};
use switchboard_harness::{
    AttachmentDownload, DownloadError, Harness, HttpFailure, Limits, PluginError, plugin_dir,
};

const PHONE_NUMBER_ID: &str = "106540352242922";
const DISPLAY_NUMBER: &str = "15550783881";
const BUSINESS_ACCOUNT_ID: &str = "102290129340398";
const HOOK: &str = "https://sb.example.com/hooks/whatsapp-cloud";
const CUSTOMER_WA_ID: &str = "16505551234";

fn config() -> Vec<(&'static str, &'static str)> {
    vec![
        ("app_secret", APP_SECRET),
        ("verify_token", VERIFY_TOKEN),
        ("access_token", ACCESS_TOKEN),
        ("phone_number_id", PHONE_NUMBER_ID),
        ("business_account_id", BUSINESS_ACCOUNT_ID),
    ]
}

fn whatsapp() -> Harness {
    Harness::load(&plugin_dir("whatsapp-cloud"), &config())
        .expect("load whatsapp-cloud (run `bash plugins/build.sh` first)")
}

/// With the test's local download origin allowed, as an operator would with
/// `--allow-host`.
fn whatsapp_with_local_downloads() -> Harness {
    Harness::load_with(
        &plugin_dir("whatsapp-cloud"),
        &config(),
        Limits::default(),
        &[LOCAL_ORIGIN],
    )
    .expect("load whatsapp-cloud (run `bash plugins/build.sh` first)")
}

fn customer() -> switchboard_harness::bindings::Identity {
    identity("whatsapp", &format!("+{CUSTOMER_WA_ID}"))
}

/// One notification with these `value` fields for our number.
fn notification(value_fields: &str) -> String {
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"{BUSINESS_ACCOUNT_ID}","changes":[{{"field":"messages","value":{{
            "messaging_product":"whatsapp",
            "metadata":{{"display_phone_number":"{DISPLAY_NUMBER}","phone_number_id":"{PHONE_NUMBER_ID}"}},
            {value_fields}}}}}]}}]}}"#
    )
}

/// One message of every inbound kind, from one customer, in one POST.
fn every_kind() -> String {
    let message = |id: &str, fields: &str| {
        format!(r#"{{"from":"{CUSTOMER_WA_ID}","id":"{id}","timestamp":"1749416383",{fields}}}"#)
    };
    let messages = [
        message(
            "wamid.text",
            r#""type":"text","text":{"body":"Does it come in blue?"},"context":{"from":"15550783881","id":"wamid.OUT0"}"#,
        ),
        message(
            "wamid.image",
            r#""type":"image","image":{"caption":"The dent","mime_type":"image/jpeg","sha256":"x","id":"1003383421387256"}"#,
        ),
        message(
            "wamid.video",
            r#""type":"video","video":{"mime_type":"video/mp4","sha256":"x","id":"2001"}"#,
        ),
        message(
            "wamid.audio",
            r#""type":"audio","audio":{"mime_type":"audio/ogg; codecs=opus","sha256":"x","id":"2002","voice":true}"#,
        ),
        message(
            "wamid.document",
            r#""type":"document","document":{"caption":"Invoice","filename":"invoice-42.pdf","mime_type":"application/pdf","sha256":"x","id":"2003"}"#,
        ),
        message(
            "wamid.sticker",
            r#""type":"sticker","sticker":{"mime_type":"image/webp","sha256":"x","id":"2004","animated":false}"#,
        ),
        message(
            "wamid.location",
            r#""type":"location","location":{"latitude":37.483307,"longitude":-122.148981,"name":"Meta HQ","address":"1 Hacker Way, Menlo Park"}"#,
        ),
        message(
            "wamid.contacts",
            r#""type":"contacts","contacts":[{"name":{"formatted_name":"Ada Lovelace","first_name":"Ada"},"phones":[{"phone":"+1 (940) 555-1234","wa_id":"19405551234","type":"CELL"}],"emails":[{"email":"ada@example.com","type":"WORK"}]}]"#,
        ),
        message(
            "wamid.button_reply",
            r#""type":"interactive","interactive":{"type":"button_reply","button_reply":{"id":"ship-now","title":"Ship now"}}"#,
        ),
        message(
            "wamid.list_reply",
            r#""type":"interactive","interactive":{"type":"list_reply","list_reply":{"id":"store-berlin","title":"Berlin","description":"Mitte"}}"#,
        ),
        message(
            "wamid.button",
            r#""type":"button","button":{"payload":"STOP_PROMOS","text":"Stop promotions"}"#,
        ),
        message(
            "wamid.reaction",
            r#""type":"reaction","reaction":{"message_id":"wamid.OUT1","emoji":"👍"}"#,
        ),
        message(
            "wamid.unsupported",
            r#""type":"unsupported","errors":[{"code":131051,"title":"Message type unknown","message":"Message type unknown","error_data":{"details":"Message type is currently not supported."}}]"#,
        ),
    ];
    notification(&format!(
        r#""contacts":[{{"profile":{{"name":"Sheena Nelson"}},"wa_id":"{CUSTOMER_WA_ID}"}}],"messages":[{}]"#,
        messages.join(",")
    ))
}

// ---------------------------------------------------------------- handshake

#[tokio::test]
async fn handshake_with_the_verify_token_echoes_the_challenge() {
    let h = whatsapp();
    let outcome = accepted(&h, &handshake(HOOK, VERIFY_TOKEN, "1158201444")).await;
    assert_eq!(outcome.response.status, 200);
    assert_eq!(outcome.response.body, b"1158201444");
    assert!(response_content_type(&outcome).is_some_and(|t| t.starts_with("text/plain")));
    assert!(outcome.events.is_empty());
    assert!(h.http().requests().is_empty());
}

#[tokio::test]
async fn handshake_with_another_token_is_unauthorized() {
    let h = whatsapp();
    let error = refused(&h, &handshake(HOOK, "guessed-token", "1158201444")).await;
    let PluginError::Unauthorized(message) = error else {
        panic!("expected Unauthorized, got {error:?}");
    };
    assert!(
        !message.contains(VERIFY_TOKEN),
        "the token leaked: {message}"
    );
}

// ---------------------------------------------------------------- inbound

#[tokio::test]
async fn a_signed_post_with_every_kind_of_message_is_one_event_each() {
    let h = whatsapp();
    let outcome = accepted(&h, &signed(HOOK, &every_kind())).await;
    assert_eq!(outcome.response.status, 200);
    let received = messages(&outcome.events);
    let ids: Vec<&str> = received.iter().map(|m| m.provider_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "wamid.text",
            "wamid.image",
            "wamid.video",
            "wamid.audio",
            "wamid.document",
            "wamid.sticker",
            "wamid.location",
            "wamid.contacts",
            "wamid.button_reply",
            "wamid.list_reply",
            "wamid.button",
            "wamid.reaction",
            "wamid.unsupported",
        ]
    );
    for message in &received {
        assert_identity(&message.sender, "whatsapp", "+16505551234");
        assert_identity(
            message.recipient.as_ref().expect("our number"),
            "whatsapp",
            "+15550783881",
        );
        assert_eq!(message.sender_name.as_deref(), Some("Sheena Nelson"));
        assert_eq!(message.sent_at_ms, Some(1_749_416_383_000));
    }
    let [
        text,
        image,
        video,
        audio,
        document,
        sticker,
        location,
        contacts,
        button_reply,
        list_reply,
        button,
        reaction,
        unsupported,
    ] = received.as_slice()
    else {
        unreachable!()
    };

    assert_eq!(text.body, "Does it come in blue?");
    assert_eq!(text.metadata.in_reply_to.as_deref(), Some("wamid.OUT0"));

    assert_eq!(image.body, "The dent");
    assert_eq!(image.attachments.len(), 1);
    assert_eq!(image.attachments[0].url, "1003383421387256");
    assert_eq!(
        image.attachments[0].content_type.as_deref(),
        Some("image/jpeg")
    );
    assert_eq!(video.attachments[0].url, "2001");
    assert_eq!(
        audio.attachments[0].content_type.as_deref(),
        Some("audio/ogg; codecs=opus")
    );
    assert_eq!(document.body, "Invoice");
    assert_eq!(
        document.attachments[0].filename.as_deref(),
        Some("invoice-42.pdf")
    );
    assert_eq!(
        sticker.attachments[0].content_type.as_deref(),
        Some("image/webp")
    );

    let place = location.metadata.location.as_ref().expect("a location");
    assert_eq!((place.latitude, place.longitude), (37.483307, -122.148981));
    assert_eq!(place.name.as_deref(), Some("Meta HQ"));
    assert_eq!(place.address.as_deref(), Some("1 Hacker Way, Menlo Park"));
    assert!(location.body.contains("Meta HQ") && location.body.contains("37.483307"));

    let [card] = contacts.metadata.contacts.as_slice() else {
        panic!("one contact card: {:?}", contacts.metadata.contacts)
    };
    assert_eq!(card.name.as_deref(), Some("Ada Lovelace"));
    let reach: Vec<(&str, &str)> = card
        .identities
        .iter()
        .map(|i| (i.kind.as_str(), i.value.as_str()))
        .collect();
    assert_eq!(
        reach,
        [
            ("whatsapp", "+19405551234"),
            ("phone", "+1 (940) 555-1234"),
            ("email", "ada@example.com")
        ]
    );
    assert!(contacts.body.contains("Ada Lovelace"));

    let reply = button_reply.metadata.interactive_reply.as_ref().unwrap();
    assert_eq!(
        (reply.id.as_str(), reply.title.as_str()),
        ("ship-now", "Ship now")
    );
    assert_eq!(button_reply.body, "Ship now");
    assert_eq!(
        list_reply.metadata.interactive_reply.as_ref().unwrap().id,
        "store-berlin"
    );
    assert_eq!(list_reply.body, "Berlin");
    assert_eq!(
        button.metadata.interactive_reply.as_ref().unwrap().id,
        "STOP_PROMOS"
    );
    assert_eq!(button.body, "Stop promotions");

    let reacted = reaction.metadata.reaction.as_ref().unwrap();
    assert_eq!(
        (reacted.provider_id.as_str(), reacted.emoji.as_str()),
        ("wamid.OUT1", "👍")
    );
    assert_eq!(reaction.body, "👍");

    assert!(!unsupported.body.is_empty());
    assert!(unsupported.attachments.is_empty());

    assert!(
        h.http().requests().is_empty(),
        "a webhook makes no API calls"
    );
}

#[tokio::test]
async fn forged_missing_and_tampered_signatures_are_unauthorized() {
    let h = whatsapp();
    let body = every_kind();
    let forged = signature("not-the-app-secret", body.as_bytes());
    let error = refused(&h, &post(HOOK, &body, Some(&forged))).await;
    let PluginError::Unauthorized(message) = error else {
        panic!("expected Unauthorized, got {error:?}");
    };
    assert!(message.contains("X-Hub-Signature-256"), "{message}");
    assert!(!message.contains(APP_SECRET));

    assert!(matches!(
        refused(&h, &post(HOOK, &body, None)).await,
        PluginError::Unauthorized(_)
    ));

    let signed_for_other = signature(APP_SECRET, b"{}");
    assert!(matches!(
        refused(&h, &post(HOOK, &body, Some(&signed_for_other))).await,
        PluginError::Unauthorized(_)
    ));
    assert!(h.http().requests().is_empty());
}

/// The host checks the signature with the app secret (`switchboard:signing`):
/// an app secret set to nothing is a config error naming the key, never a
/// signature that happens to match the empty key.
#[tokio::test]
async fn an_empty_app_secret_is_a_config_error_not_a_match() {
    let mut config = config();
    config.retain(|(key, _)| *key != "app_secret");
    config.push(("app_secret", ""));
    let h = Harness::load(&plugin_dir("whatsapp-cloud"), &config)
        .expect("load whatsapp-cloud (run `bash plugins/build.sh` first)");
    let body = every_kind();
    let signed_with_nothing = signature("", body.as_bytes());
    let error = refused(&h, &post(HOOK, &body, Some(&signed_with_nothing))).await;
    let PluginError::Config(message) = error else {
        panic!("expected Config, got {error:?}");
    };
    assert!(message.contains("app_secret"), "{message}");
}

#[tokio::test]
async fn statuses_become_receipts_and_a_failure_says_why() {
    let h = whatsapp();
    let body = notification(&format!(
        r#""statuses":[
            {{"id":"wamid.OUT1","status":"sent","timestamp":"1749416400","recipient_id":"{CUSTOMER_WA_ID}"}},
            {{"id":"wamid.OUT1","status":"delivered","timestamp":"1749416401","recipient_id":"{CUSTOMER_WA_ID}"}},
            {{"id":"wamid.OUT1","status":"read","timestamp":"1749416402","recipient_id":"{CUSTOMER_WA_ID}"}},
            {{"id":"wamid.OUT2","status":"failed","timestamp":"1749416403","recipient_id":"{CUSTOMER_WA_ID}",
              "errors":[{{"code":131047,"title":"Re-engagement message","message":"Re-engagement message",
                         "error_data":{{"details":"Message failed to send because more than 24 hours have passed since the customer last replied to this number."}},
                         "href":"https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}}]}}]"#
    ));
    let outcome = accepted(&h, &signed(HOOK, &body)).await;
    let receipts = receipts(&outcome.events);
    let summary: Vec<(&str, DeliveryStatus, Option<u64>)> = receipts
        .iter()
        .map(|r| (r.provider_id.as_str(), r.status, r.at_ms))
        .collect();
    assert_eq!(
        summary,
        [
            ("wamid.OUT1", DeliveryStatus::Sent, Some(1_749_416_400_000)),
            (
                "wamid.OUT1",
                DeliveryStatus::Delivered,
                Some(1_749_416_401_000)
            ),
            ("wamid.OUT1", DeliveryStatus::Read, Some(1_749_416_402_000)),
            (
                "wamid.OUT2",
                DeliveryStatus::Failed,
                Some(1_749_416_403_000)
            ),
        ]
    );
    let failed = receipts[3];
    assert_eq!(failed.error_code.as_deref(), Some("131047"));
    let reason = failed.error_message.as_deref().expect("a reason");
    assert!(
        reason.contains("24-hour") && reason.contains("template"),
        "{reason}"
    );
    assert!(receipts[0].error_code.is_none());
}

#[tokio::test]
async fn events_for_another_number_are_acknowledged_and_ignored() {
    let h = whatsapp();
    let body = every_kind().replace(PHONE_NUMBER_ID, "999999999999999");
    let outcome = accepted(&h, &signed(HOOK, &body)).await;
    assert_eq!(outcome.response.status, 200);
    assert!(outcome.events.is_empty());

    let template_review = r#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"message_template_status_update","value":{"event":"APPROVED","message_template_name":"order_update"}}]}]}"#;
    let outcome = accepted(&h, &signed(HOOK, template_review)).await;
    assert_eq!(outcome.response.status, 200);
    assert!(outcome.events.is_empty());
}

// ---------------------------------------------------------------- outbound

const SENT_OK: &str = r#"{"messaging_product":"whatsapp","contacts":[{"input":"16505551234","wa_id":"16505551234"}],"messages":[{"id":"wamid.OUT9"}]}"#;

fn messages_url() -> String {
    format!("{GRAPH}/{PHONE_NUMBER_ID}/messages")
}

#[tokio::test]
async fn text_is_posted_to_the_messages_endpoint() {
    let h = whatsapp();
    h.http().respond(200, SENT_OK);
    let mut message = outbound(customer(), "Yes, it comes in blue.");
    message.metadata.in_reply_to = Some("wamid.text".into());
    assert_eq!(send(&h, &message).await.unwrap(), "wamid.OUT9");

    let [request] = requests::<1>(&h);
    assert_graph_call(&request, "POST", &messages_url());
    assert_eq!(header(&request, "content-type"), Some("application/json"));
    assert_eq!(
        json(&request),
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "16505551234",
            "type": "text",
            "text": {"body": "Yes, it comes in blue.", "preview_url": false},
            "context": {"message_id": "wamid.text"},
        })
    );
}

#[tokio::test]
async fn media_go_one_per_request_with_the_text_as_caption() {
    let h = whatsapp();
    h.http().respond(200, r#"{"messages":[{"id":"wamid.M1"}]}"#);
    h.http().respond(200, r#"{"messages":[{"id":"wamid.M2"}]}"#);
    let mut message = outbound(customer(), "Your label and the photo");
    let mut label = attachment(
        "https://sb.example.com/files/f1?sig=abc",
        Some("application/pdf"),
    );
    label.filename = Some("label.pdf".into());
    message.attachments = vec![
        label,
        attachment(
            "https://sb.example.com/files/f2?sig=def",
            Some("image/jpeg"),
        ),
    ];
    assert_eq!(send(&h, &message).await.unwrap(), "wamid.M1");

    let requests = h.http().requests();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_graph_call(request, "POST", &messages_url());
    }
    assert_eq!(json(&requests[0])["type"], "document");
    assert_eq!(
        json(&requests[0])["document"],
        json!({"link": "https://sb.example.com/files/f1?sig=abc", "caption": "Your label and the photo", "filename": "label.pdf"})
    );
    assert_eq!(json(&requests[1])["type"], "image");
    assert_eq!(
        json(&requests[1])["image"],
        json!({"link": "https://sb.example.com/files/f2?sig=def"})
    );
    assert!(
        h.kv().is_empty(),
        "a finished message leaves no progress behind"
    );
}

#[tokio::test]
async fn a_retry_after_a_partial_send_does_not_repeat_the_sent_part() {
    let h = whatsapp();
    let mut message = outbound(customer(), "Listen to this");
    message.attachments = vec![attachment(
        "https://sb.example.com/files/v1?sig=x",
        Some("audio/mpeg"),
    )];
    h.http()
        .respond(200, r#"{"messages":[{"id":"wamid.AUDIO"}]}"#);
    h.http().respond(
        503,
        r#"{"error":{"message":"Service temporarily unavailable","code":2}}"#,
    );
    assert!(matches!(
        send(&h, &message).await,
        Err(PluginError::Transient(_))
    ));

    h.http()
        .respond(200, r#"{"messages":[{"id":"wamid.TEXT"}]}"#);
    assert_eq!(send(&h, &message).await.unwrap(), "wamid.AUDIO");
    let kinds: Vec<String> = h
        .http()
        .requests()
        .iter()
        .map(|r| json(r)["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["audio", "text", "text"], "the audio went out once");
}

#[tokio::test]
async fn a_template_carries_its_parameters() {
    let h = whatsapp();
    h.http().respond(200, SENT_OK);
    let mut message = outbound(customer(), "");
    message.window = WindowUse::Template;
    message.template = Some(TemplateMessage {
        name: "order_update".into(),
        language: "en_US".into(),
        parameters: vec![
            TemplateParameter {
                name: None,
                value: "Ada".into(),
            },
            TemplateParameter {
                name: None,
                value: "#1234".into(),
            },
        ],
    });
    assert_eq!(send(&h, &message).await.unwrap(), "wamid.OUT9");
    let [request] = requests::<1>(&h);
    assert_graph_call(&request, "POST", &messages_url());
    assert_eq!(
        json(&request),
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "16505551234",
            "type": "template",
            "template": {
                "name": "order_update",
                "language": {"code": "en_US"},
                "components": [{"type": "body", "parameters": [
                    {"type": "text", "text": "Ada"},
                    {"type": "text", "text": "#1234"},
                ]}],
            },
        })
    );
}

#[tokio::test]
async fn a_named_template_names_its_parameters() {
    let h = whatsapp();
    h.http().respond(200, SENT_OK);
    let mut message = outbound(customer(), "");
    message.window = WindowUse::Template;
    message.template = Some(TemplateMessage {
        name: "welcome".into(),
        language: "de".into(),
        parameters: vec![TemplateParameter {
            name: Some("first_name".into()),
            value: "Ada".into(),
        }],
    });
    send(&h, &message).await.unwrap();
    let request = &h.http().requests()[0];
    assert_eq!(
        json(request)["template"]["components"][0]["parameters"],
        json!([{"type": "text", "text": "Ada", "parameter_name": "first_name"}])
    );
}

#[tokio::test]
async fn interactive_buttons_and_lists() {
    let h = whatsapp();
    h.http().respond(200, SENT_OK);
    h.http().respond(200, SENT_OK);
    let choice = |id: &str, title: &str| Choice {
        id: id.into(),
        title: title.into(),
        description: None,
    };
    let mut buttons = outbound(customer(), "Ship today?");
    buttons.interactive = Some(InteractiveMessage::Buttons(vec![
        choice("yes", "Yes"),
        choice("no", "No"),
        choice("later", "Ask me again tomorrow please"),
    ]));
    send(&h, &buttons).await.unwrap();

    let mut list = outbound(customer(), "Which store?");
    list.interactive = Some(InteractiveMessage::List(ChoiceList {
        button: "Stores".into(),
        choices: vec![
            Choice {
                description: Some("Mitte".into()),
                ..choice("berlin", "Berlin")
            },
            choice("paris", "Paris"),
        ],
    }));
    send(&h, &list).await.unwrap();

    let requests = h.http().requests();
    assert_graph_call(&requests[0], "POST", &messages_url());
    assert_eq!(
        json(&requests[0])["interactive"],
        json!({
            "type": "button",
            "body": {"text": "Ship today?"},
            "action": {"buttons": [
                {"type": "reply", "reply": {"id": "yes", "title": "Yes"}},
                {"type": "reply", "reply": {"id": "no", "title": "No"}},
                {"type": "reply", "reply": {"id": "later", "title": "Ask me again tomorr…"}},
            ]},
        })
    );
    assert_eq!(json(&requests[0])["type"], "interactive");
    assert_eq!(
        json(&requests[1])["interactive"],
        json!({
            "type": "list",
            "body": {"text": "Which store?"},
            "action": {"button": "Stores", "sections": [{"title": "Options", "rows": [
                {"id": "berlin", "title": "Berlin", "description": "Mitte"},
                {"id": "paris", "title": "Paris"},
            ]}]},
        })
    );
}

#[tokio::test]
async fn graph_errors_are_mapped_by_code() {
    let h = whatsapp();
    let message = outbound(customer(), "hello");

    // Throttling arrives as HTTP 400 and must still be retried.
    h.http().respond(
        400,
        r#"{"error":{"message":"(#130429) Rate limit hit","type":"OAuthException","code":130429,"error_data":{"messaging_product":"whatsapp","details":"Cloud API message throughput has been reached."},"fbtrace_id":"A1"}}"#,
    );
    assert!(matches!(
        send(&h, &message).await,
        Err(PluginError::RateLimited(None))
    ));

    h.http().respond(
        400,
        r#"{"error":{"message":"(#131056) (Business Account, Consumer Account) pair rate limit hit","code":131056}}"#,
    );
    assert!(matches!(
        send(&h, &message).await,
        Err(PluginError::RateLimited(_))
    ));

    h.http().respond(
        400,
        r#"{"error":{"message":"(#131047) Re-engagement message","type":"OAuthException","code":131047,"error_data":{"messaging_product":"whatsapp","details":"Message failed to send because more than 24 hours have passed since the customer last replied to this number."}}}"#,
    );
    assert!(matches!(
        send(&h, &message).await,
        Err(PluginError::WindowClosed(reason)) if reason.contains("131047")
    ));

    h.http().respond(
        500,
        r#"{"error":{"message":"An unknown error occurred","code":1}}"#,
    );
    assert!(matches!(
        send(&h, &message).await,
        Err(PluginError::Transient(_))
    ));

    h.http().respond(
        401,
        r#"{"error":{"message":"Error validating access token: Session has expired","type":"OAuthException","code":190,"error_subcode":463}}"#,
    );
    assert!(matches!(
        send(&h, &message).await,
        Err(PluginError::Config(_))
    ));

    h.http().respond(
        400,
        r#"{"error":{"message":"(#100) Invalid parameter","type":"OAuthException","code":100,"error_data":{"messaging_product":"whatsapp","details":"Parameter 'to' is not a valid phone number"}}}"#,
    );
    assert!(matches!(
        send(&h, &message).await,
        Err(PluginError::Permanent(text)) if text == "100: Parameter 'to' is not a valid phone number"
    ));

    h.http().fail(HttpFailure::Timeout);
    assert!(matches!(
        send(&h, &message).await,
        Err(PluginError::Transient(_))
    ));
}

// ---------------------------------------------------------------- media

#[tokio::test]
async fn media_ids_are_resolved_then_downloaded_with_the_token() {
    let h = whatsapp_with_local_downloads();
    h.http().respond(
        200,
        r#"{"messaging_product":"whatsapp","url":"http://127.0.0.1:9/media/abc","mime_type":"image/jpeg","sha256":"x","file_size":4,"id":"1003383421387256"}"#,
    );
    h.http()
        .respond_with(file_response("image/jpeg", b"\xff\xd8\xff\xe0"));

    let photo = attachment("1003383421387256", Some("image/jpeg"));
    let downloaded = h
        .download_attachment(&photo, 1 << 20)
        .await
        .expect("the download succeeds");
    assert_eq!(&downloaded.content[..], b"\xff\xd8\xff\xe0");
    assert_eq!(downloaded.content_type.as_deref(), Some("image/jpeg"));

    let [lookup, download] = requests::<2>(&h);
    assert_graph_call(&lookup, "GET", &format!("{GRAPH}/1003383421387256"));
    assert_eq!(download.method, "GET");
    assert_eq!(download.uri, "http://127.0.0.1:9/media/abc");
    assert_eq!(
        header(&download, "authorization"),
        Some(format!("Bearer {ACCESS_TOKEN}").as_str())
    );
}

#[tokio::test]
async fn a_media_url_outside_the_allow_list_is_not_downloaded() {
    let h = whatsapp();
    h.http().respond(
        200,
        r#"{"url":"http://127.0.0.1:9/media/abc","mime_type":"image/jpeg","id":"1"}"#,
    );
    let error = h
        .download_attachment(&attachment("1", None), 1 << 20)
        .await
        .expect_err("the host refuses");
    assert!(matches!(error, DownloadError::Denied(_)), "{error:?}");
    assert_eq!(h.http().requests().len(), 1, "only the lookup went out");
}

#[tokio::test]
async fn a_failed_media_lookup_is_mapped() {
    let h = whatsapp();
    h.http().respond(502, "Bad Gateway");
    let answer = h
        .fetch_attachment(&attachment("1003383421387256", None))
        .await
        .expect("the call completes");
    assert!(
        matches!(answer, Err(PluginError::Transient(_))),
        "{answer:?}"
    );

    h.http().respond(
        400,
        r#"{"error":{"message":"Unsupported get request. Object with ID '1' does not exist","type":"GraphMethodException","code":100,"error_subcode":33}}"#,
    );
    let answer = h
        .fetch_attachment(&attachment("1", None))
        .await
        .expect("the call completes");
    assert!(
        matches!(answer, Err(PluginError::Permanent(_))),
        "{answer:?}"
    );

    h.http().respond(
        200,
        r#"{"url":"https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1","id":"1"}"#,
    );
    let answer = h
        .fetch_attachment(&attachment("1", None))
        .await
        .expect("the call completes")
        .expect("resolved");
    let AttachmentDownload::Request(request) = answer else {
        panic!("a download request, got {answer:?}");
    };
    assert_eq!(
        request.url,
        "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1"
    );
    assert_eq!(
        request.headers,
        [("Authorization".to_owned(), format!("Bearer {ACCESS_TOKEN}"))]
    );
}

// ---------------------------------------------------------------- templates, describe

/// Name, language, category, body and parameter names of a listed template.
type TemplateSummary<'a> = (&'a str, &'a str, Option<&'a str>, &'a str, Vec<&'a str>);

#[tokio::test]
async fn approved_templates_are_listed_with_their_placeholders() {
    let h = whatsapp();
    h.http().respond(
        200,
        r#"{"data":[
            {"name":"order_update","language":"en_US","status":"APPROVED","category":"UTILITY","id":"1",
             "components":[{"type":"BODY","text":"Hi {{1}}, order {{2}} has shipped."}]},
            {"name":"welcome","language":"de","status":"APPROVED","category":"MARKETING","id":"2",
             "components":[{"type":"HEADER","format":"TEXT","text":"Willkommen"},{"type":"BODY","text":"Hallo {{first_name}}!"}]},
            {"name":"pending_one","language":"en_US","status":"PENDING","id":"3","components":[]}
        ],"paging":{"cursors":{"before":"A","after":"B"}}}"#,
    );
    let templates = h
        .list_templates()
        .await
        .expect("the call completes")
        .expect("listed");
    let [request] = requests::<1>(&h);
    assert_graph_call(
        &request,
        "GET",
        &format!(
            "{GRAPH}/{BUSINESS_ACCOUNT_ID}/message_templates?fields=name,language,status,category,components&limit=100"
        ),
    );
    let summary: Vec<TemplateSummary> = templates
        .iter()
        .map(|t| {
            (
                t.name.as_str(),
                t.language.as_str(),
                t.category.as_deref(),
                t.body.as_str(),
                t.parameters.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "order_update",
                "en_US",
                Some("UTILITY"),
                "Hi {{1}}, order {{2}} has shipped.",
                vec!["1", "2"]
            ),
            (
                "welcome",
                "de",
                Some("MARKETING"),
                "Hallo {{first_name}}!",
                vec!["first_name"]
            ),
        ]
    );
}

#[tokio::test]
async fn without_a_business_account_there_are_no_templates() {
    let config: Vec<_> = config()
        .into_iter()
        .filter(|(key, _)| *key != "business_account_id")
        .collect();
    let h = Harness::load(&plugin_dir("whatsapp-cloud"), &config).unwrap();
    let templates = h.list_templates().await.unwrap().unwrap();
    assert!(templates.is_empty());
    assert!(h.http().requests().is_empty());
}

#[tokio::test]
async fn describes_the_whatsapp_channel() {
    let info = whatsapp().describe().await.unwrap();
    assert_eq!(info.channel, "whatsapp");
    assert_eq!(info.identity_kind, "whatsapp");
    assert_eq!(info.display_name, "WhatsApp");
    let caps = info.capabilities;
    assert_eq!(caps.window_secs, Some(86_400));
    assert_eq!(caps.human_window_secs, None);
    assert_eq!(caps.max_body_chars, Some(4096));
    assert_eq!(caps.attachments.max_count, 10);
    assert_eq!(caps.attachments.max_bytes, 16 * 1024 * 1024);
    assert!(
        caps.attachments
            .content_types
            .iter()
            .any(|t| t == "audio/*")
    );
    assert!(caps.templates && caps.interactive && caps.delivery_receipts && caps.read_receipts);
}
