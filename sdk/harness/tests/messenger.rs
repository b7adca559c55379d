//! The built `messenger` component in the real sandbox, against fake
//! capabilities: Meta's signed Messenger Platform webhooks in, Send API calls
//! out, read watermarks turned into per-message receipts.
//!
//! Run with `bash plugins/build.sh && cargo test -p switchboard-harness --test messenger`.

mod meta;

use meta::*;
use serde_json::json;
use switchboard_harness::bindings::{
    Choice, DeliveryStatus, InteractiveMessage, TemplateMessage, WindowUse,
};
use switchboard_harness::{AttachmentDownload, Harness, PluginError, plugin_dir};

const PAGE_ID: &str = "1122334455";
const PSID: &str = "6783450011223344";
const HOOK: &str = "https://sb.example.com/hooks/messenger";
const PROFILE: &str = r#"{"first_name":"Ada","last_name":"Lovelace","id":"6783450011223344"}"#;

fn messenger() -> Harness {
    Harness::load(
        &plugin_dir("messenger"),
        &[
            ("app_secret", APP_SECRET),
            ("verify_token", VERIFY_TOKEN),
            ("access_token", ACCESS_TOKEN),
            ("page_id", PAGE_ID),
        ],
    )
    .expect("load messenger (run `bash plugins/build.sh` first)")
}

fn customer() -> switchboard_harness::bindings::Identity {
    identity("messenger", PSID)
}

fn page(items: &[String]) -> String {
    format!(
        r#"{{"object":"page","entry":[{{"id":"{PAGE_ID}","time":1458692752478,"messaging":[{}]}}]}}"#,
        items.join(",")
    )
}

/// One `messaging[]` item from the customer with these fields.
fn from_customer(timestamp: u64, fields: &str) -> String {
    format!(
        r#"{{"sender":{{"id":"{PSID}"}},"recipient":{{"id":"{PAGE_ID}"}},"timestamp":{timestamp},{fields}}}"#
    )
}

fn profile_url() -> String {
    format!("{GRAPH}/{PSID}?fields=first_name,last_name")
}

fn messages_url() -> String {
    format!("{GRAPH}/{PAGE_ID}/messages")
}

fn sent(mid: &str) -> String {
    format!(r#"{{"recipient_id":"{PSID}","message_id":"{mid}"}}"#)
}

// ---------------------------------------------------------------- handshake

#[tokio::test]
async fn handshake_answers_the_challenge_only_with_the_verify_token() {
    let h = messenger();
    let outcome = accepted(&h, &handshake(HOOK, VERIFY_TOKEN, "CHALLENGE_ACCEPTED")).await;
    assert_eq!(outcome.response.status, 200);
    assert_eq!(outcome.response.body, b"CHALLENGE_ACCEPTED");
    assert!(response_content_type(&outcome).is_some_and(|t| t.starts_with("text/plain")));
    assert!(outcome.events.is_empty());

    let error = refused(&h, &handshake(HOOK, "wrong-token", "CHALLENGE_ACCEPTED")).await;
    assert!(matches!(error, PluginError::Unauthorized(_)), "{error:?}");
}

// ---------------------------------------------------------------- inbound

#[tokio::test]
async fn a_signed_post_with_every_kind_of_event() {
    let h = messenger();
    h.http().respond(200, PROFILE);
    let body = page(&[
        from_customer(
            1_700_000_000_001,
            r#""message":{"mid":"m_text","text":"Where is my order?","reply_to":{"mid":"m_out_0"}}"#,
        ),
        from_customer(
            1_700_000_000_002,
            r#""message":{"mid":"m_media","attachments":[
                {"type":"image","payload":{"url":"https://scontent.xx.fbcdn.net/v/t1.15752-9/photo.jpg?_nc_cat=1"}},
                {"type":"file","payload":{"url":"https://cdn.fbsbx.com/v/t59.2708-21/receipt.pdf?dl=1"}}]}"#,
        ),
        from_customer(
            1_700_000_000_003,
            r#""message":{"mid":"m_location","attachments":[{"type":"location","title":"Home","payload":{"coordinates":{"lat":48.8584,"long":2.2945}}}]}"#,
        ),
        from_customer(
            1_700_000_000_004,
            r#""message":{"mid":"m_quick","text":"Large","quick_reply":{"payload":"size-l"}}"#,
        ),
        from_customer(
            1_700_000_000_005,
            r#""message":{"mid":"m_phone","text":"+16505551234","quick_reply":{"payload":"+16505551234"}}"#,
        ),
        from_customer(
            1_700_000_000_006,
            r#""message":{"mid":"m_email","text":"ada@example.com","quick_reply":{"payload":"ada@example.com"}}"#,
        ),
        from_customer(
            1_700_000_000_007,
            r#""postback":{"mid":"m_postback","title":"Talk to a person","payload":"HUMAN"}"#,
        ),
        from_customer(
            1_700_000_000_008,
            r#""reaction":{"mid":"m_out_0","action":"react","emoji":"😍","reaction":"love"}"#,
        ),
        // Our own reply, echoed back: not a customer message.
        format!(
            r#"{{"sender":{{"id":"{PAGE_ID}"}},"recipient":{{"id":"{PSID}"}},"timestamp":1700000000009,"message":{{"mid":"m_echo","text":"Hi!","is_echo":true,"app_id":1517776481860111}}}}"#
        ),
        from_customer(
            1_700_000_000_010,
            r#""delivery":{"mids":["m_out_0","m_out_1"],"watermark":1700000000000}"#,
        ),
    ]);
    let outcome = accepted(&h, &signed(HOOK, &body)).await;
    assert_eq!(outcome.response.status, 200);

    let received = messages(&outcome.events);
    let ids: Vec<&str> = received.iter().map(|m| m.provider_id.as_str()).collect();
    assert_eq!(ids.len(), 8, "the echo is no message: {ids:?}");
    assert_eq!(
        ids[..7],
        [
            "m_text",
            "m_media",
            "m_location",
            "m_quick",
            "m_phone",
            "m_email",
            "m_postback",
        ]
    );
    assert!(
        ids[7].contains("m_out_0"),
        "the reaction's id names its target: {}",
        ids[7]
    );
    for message in &received {
        assert_identity(&message.sender, "messenger", PSID);
        assert_identity(message.recipient.as_ref().unwrap(), "messenger", PAGE_ID);
        assert_eq!(message.sender_name.as_deref(), Some("Ada Lovelace"));
    }
    let [
        text,
        media,
        location,
        quick,
        phone,
        email,
        postback,
        reaction,
    ] = received.as_slice()
    else {
        unreachable!()
    };
    assert_eq!(text.body, "Where is my order?");
    assert_eq!(text.sent_at_ms, Some(1_700_000_000_001));
    assert_eq!(text.metadata.in_reply_to.as_deref(), Some("m_out_0"));

    let files: Vec<(&str, Option<&str>, Option<&str>)> = media
        .attachments
        .iter()
        .map(|a| {
            (
                a.url.as_str(),
                a.content_type.as_deref(),
                a.filename.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        files,
        [
            (
                "https://scontent.xx.fbcdn.net/v/t1.15752-9/photo.jpg?_nc_cat=1",
                Some("image/jpeg"),
                None
            ),
            (
                "https://cdn.fbsbx.com/v/t59.2708-21/receipt.pdf?dl=1",
                Some("application/pdf"),
                Some("receipt.pdf")
            ),
        ]
    );

    let place = location.metadata.location.as_ref().unwrap();
    assert_eq!((place.latitude, place.longitude), (48.8584, 2.2945));
    assert!(location.body.contains("48.8584"), "{}", location.body);

    let reply = quick.metadata.interactive_reply.as_ref().unwrap();
    assert_eq!(
        (reply.id.as_str(), reply.title.as_str()),
        ("size-l", "Large")
    );
    assert!(quick.metadata.shared_identities.is_empty());

    let [shared] = phone.metadata.shared_identities.as_slice() else {
        panic!("{:?}", phone.metadata.shared_identities)
    };
    assert_identity(shared, "phone", "+16505551234");
    let [shared] = email.metadata.shared_identities.as_slice() else {
        panic!("{:?}", email.metadata.shared_identities)
    };
    assert_identity(shared, "email", "ada@example.com");

    assert_eq!(postback.body, "Talk to a person");
    assert_eq!(
        postback.metadata.interactive_reply.as_ref().unwrap().id,
        "HUMAN"
    );

    let reacted = reaction.metadata.reaction.as_ref().unwrap();
    assert_eq!(
        (reacted.provider_id.as_str(), reacted.emoji.as_str()),
        ("m_out_0", "😍")
    );
    assert_eq!(reaction.body, "😍");

    let delivered: Vec<(&str, DeliveryStatus, Option<u64>)> = receipts(&outcome.events)
        .iter()
        .map(|r| (r.provider_id.as_str(), r.status, r.at_ms))
        .collect();
    assert_eq!(
        delivered,
        [
            (
                "m_out_0",
                DeliveryStatus::Delivered,
                Some(1_700_000_000_010)
            ),
            (
                "m_out_1",
                DeliveryStatus::Delivered,
                Some(1_700_000_000_010)
            ),
        ]
    );

    // One profile lookup for the one customer, with the page token.
    let [lookup] = requests::<1>(&h);
    assert_graph_call(&lookup, "GET", &profile_url());

    // The name is cached: the next message makes no call.
    let again = page(&[from_customer(
        1_700_000_000_020,
        r#""message":{"mid":"m_again","text":"Hello?"}"#,
    )]);
    let outcome = accepted(&h, &signed(HOOK, &again)).await;
    assert_eq!(
        messages(&outcome.events)[0].sender_name.as_deref(),
        Some("Ada Lovelace")
    );
    assert_eq!(h.http().requests().len(), 1);
}

#[tokio::test]
async fn a_failed_profile_lookup_still_delivers_the_message() {
    let h = messenger();
    h.http().respond(
        400,
        r#"{"error":{"message":"(#100) No profile available for this user.","type":"OAuthException","code":100}}"#,
    );
    let body = page(&[from_customer(1, r#""message":{"mid":"m_1","text":"hi"}"#)]);
    let outcome = accepted(&h, &signed(HOOK, &body)).await;
    let [message]: [_; 1] = messages(&outcome.events).try_into().expect("one message");
    assert_eq!(message.body, "hi");
    assert_eq!(message.sender_name, None);

    // A refusal is remembered: no second lookup for the next message.
    let outcome = accepted(&h, &signed(HOOK, &body.replace("m_1", "m_2"))).await;
    assert_eq!(messages(&outcome.events).len(), 1);
    assert_eq!(h.http().requests().len(), 1);
}

#[tokio::test]
async fn forged_and_missing_signatures_are_unauthorized_before_anything_else() {
    let h = messenger();
    let body = page(&[from_customer(
        1,
        r#""message":{"mid":"m_1","text":"refund me"}"#,
    )]);
    let forged = signature("someone-elses-secret", body.as_bytes());
    assert!(matches!(
        refused(&h, &post(HOOK, &body, Some(&forged))).await,
        PluginError::Unauthorized(_)
    ));
    assert!(matches!(
        refused(&h, &post(HOOK, &body, None)).await,
        PluginError::Unauthorized(_)
    ));
    assert!(matches!(
        refused(&h, &post(HOOK, &body, Some("sha256=00"))).await,
        PluginError::Unauthorized(_)
    ));
    assert!(
        h.http().requests().is_empty(),
        "no profile lookup for a forged call"
    );
    assert!(h.kv().is_empty());
}

#[tokio::test]
async fn other_pages_and_objects_are_acknowledged_and_ignored() {
    let h = messenger();
    let other_page = page(&[from_customer(1, r#""message":{"mid":"m_1","text":"hi"}"#)]).replace(
        &format!(r#""id":"{PAGE_ID}","time""#),
        r#""id":"999","time""#,
    );
    let outcome = accepted(&h, &signed(HOOK, &other_page)).await;
    assert_eq!(outcome.response.status, 200);
    assert!(outcome.events.is_empty());

    let instagram = r#"{"object":"instagram","entry":[{"id":"1","time":1,"messaging":[]}]}"#;
    let outcome = accepted(&h, &signed(HOOK, instagram)).await;
    assert!(outcome.events.is_empty());
    assert!(h.http().requests().is_empty());
}

// ---------------------------------------------------------------- outbound

#[tokio::test]
async fn a_reply_inside_the_window_is_a_response() {
    let h = messenger();
    h.http().respond(200, &sent("m_out_1"));
    assert_eq!(
        send(&h, &outbound(customer(), "It ships today."))
            .await
            .unwrap(),
        "m_out_1"
    );
    let [request] = requests::<1>(&h);
    assert_graph_call(&request, "POST", &messages_url());
    assert_eq!(header(&request, "content-type"), Some("application/json"));
    assert_eq!(
        json(&request),
        json!({
            "recipient": {"id": PSID},
            "messaging_type": "RESPONSE",
            "message": {"text": "It ships today."},
        })
    );
}

#[tokio::test]
async fn a_persons_late_reply_carries_the_human_agent_tag() {
    let h = messenger();
    h.http().respond(200, &sent("m_out_2"));
    let mut late = outbound(customer(), "Sorry for the wait, here is your refund.");
    late.window = WindowUse::HumanAgent;
    send(&h, &late).await.unwrap();
    let [request] = requests::<1>(&h);
    assert_graph_call(&request, "POST", &messages_url());
    assert_eq!(
        json(&request),
        json!({
            "recipient": {"id": PSID},
            "messaging_type": "MESSAGE_TAG",
            "tag": "HUMAN_AGENT",
            "message": {"text": "Sorry for the wait, here is your refund."},
        })
    );
}

#[tokio::test]
async fn attachments_go_one_per_request_before_the_text() {
    let h = messenger();
    h.http().respond(200, &sent("m_img"));
    h.http().respond(200, &sent("m_pdf"));
    h.http().respond(200, &sent("m_txt"));
    let mut message = outbound(customer(), "Your label and the photo");
    message.attachments = vec![
        attachment("https://sb.example.com/files/f1?sig=a", Some("image/png")),
        attachment(
            "https://sb.example.com/files/f2?sig=b",
            Some("application/pdf"),
        ),
    ];
    assert_eq!(send(&h, &message).await.unwrap(), "m_img");
    let [image, pdf, text] = requests::<3>(&h);
    for request in [&image, &pdf, &text] {
        assert_graph_call(request, "POST", &messages_url());
    }
    assert_eq!(
        json(&image)["message"],
        json!({"attachment": {"type": "image", "payload": {"url": "https://sb.example.com/files/f1?sig=a", "is_reusable": false}}})
    );
    assert_eq!(json(&pdf)["message"]["attachment"]["type"], "file");
    assert_eq!(
        json(&text)["message"],
        json!({"text": "Your label and the photo"})
    );
    assert_eq!(json(&text)["messaging_type"], "RESPONSE");
}

#[tokio::test]
async fn buttons_become_quick_replies() {
    let h = messenger();
    h.http().respond(200, &sent("m_q"));
    let mut message = outbound(customer(), "Which size?");
    message.interactive = Some(InteractiveMessage::Buttons(
        [
            ("size-s", "Small"),
            ("size-m", "Medium"),
            ("size-l", "Large"),
        ]
        .map(|(id, title)| Choice {
            id: id.into(),
            title: title.into(),
            description: None,
        })
        .to_vec(),
    ));
    send(&h, &message).await.unwrap();
    let [request] = requests::<1>(&h);
    assert_eq!(
        json(&request)["message"],
        json!({
            "text": "Which size?",
            "quick_replies": [
                {"content_type": "text", "title": "Small", "payload": "size-s"},
                {"content_type": "text", "title": "Medium", "payload": "size-m"},
                {"content_type": "text", "title": "Large", "payload": "size-l"},
            ],
        })
    );
}

#[tokio::test]
async fn templates_are_not_offered() {
    let h = messenger();
    let mut message = outbound(customer(), "");
    message.window = WindowUse::Template;
    message.template = Some(TemplateMessage {
        name: "order_update".into(),
        language: "en_US".into(),
        parameters: Vec::new(),
    });
    assert!(matches!(
        send(&h, &message).await,
        Err(PluginError::Unsupported(_))
    ));
    assert!(h.http().requests().is_empty());
    let info = h.describe().await.unwrap();
    assert!(!info.capabilities.templates);
}

#[tokio::test]
async fn send_api_errors_are_mapped_by_code() {
    let h = messenger();
    let message = outbound(customer(), "hello");

    h.http().respond(
        400,
        r#"{"error":{"message":"(#10) This message is sent outside of allowed window.","type":"OAuthException","code":10,"error_subcode":2018278,"fbtrace_id":"B2"}}"#,
    );
    assert!(matches!(
        send(&h, &message).await,
        Err(PluginError::WindowClosed(_))
    ));

    h.http().respond(
        400,
        r#"{"error":{"message":"(#613) Calls to this api have exceeded the rate limit.","type":"OAuthException","code":613}}"#,
    );
    assert!(matches!(
        send(&h, &message).await,
        Err(PluginError::RateLimited(None))
    ));

    h.http().respond(
        400,
        r#"{"error":{"message":"(#130429) Rate limit hit","code":130429}}"#,
    );
    assert!(matches!(
        send(&h, &message).await,
        Err(PluginError::RateLimited(_))
    ));

    h.http().respond(
        400,
        r#"{"error":{"message":"(#551) This person isn't available right now.","type":"OAuthException","code":551,"error_subcode":1545041}}"#,
    );
    assert!(matches!(
        send(&h, &message).await,
        Err(PluginError::Permanent(text)) if text.contains("person not available")
    ));

    h.http().respond(
        400,
        r#"{"error":{"message":"Error validating access token","type":"OAuthException","code":190}}"#,
    );
    assert!(matches!(
        send(&h, &message).await,
        Err(PluginError::Config(_))
    ));

    h.http().respond(503, "<html>Service Unavailable</html>");
    assert!(matches!(
        send(&h, &message).await,
        Err(PluginError::Transient(_))
    ));
}

// ---------------------------------------------------------------- receipts

#[tokio::test]
async fn read_watermarks_become_read_receipts_for_what_was_sent() {
    let h = messenger();
    h.set_now(1_700_000_100_000);
    h.http().respond(200, &sent("m_out_1"));
    send(&h, &outbound(customer(), "first")).await.unwrap();
    h.set_now(1_700_000_200_000);
    h.http().respond(200, &sent("m_out_2"));
    let mut second = outbound(customer(), "second");
    second.message_id = "msg-2".into();
    send(&h, &second).await.unwrap();
    assert!(
        h.kv().keys().any(|k| k.contains(PSID)),
        "the sends are logged"
    );

    // Read up to between the two sends.
    let read = |watermark: u64| {
        page(&[from_customer(
            watermark + 1,
            &format!(r#""read":{{"watermark":{watermark}}}"#),
        )])
    };
    let outcome = accepted(&h, &signed(HOOK, &read(1_700_000_150_000))).await;
    let first: Vec<(&str, DeliveryStatus, Option<u64>)> = receipts(&outcome.events)
        .iter()
        .map(|r| (r.provider_id.as_str(), r.status, r.at_ms))
        .collect();
    assert_eq!(
        first,
        [("m_out_1", DeliveryStatus::Read, Some(1_700_000_150_001))]
    );

    // A later watermark reads the second one only.
    let outcome = accepted(&h, &signed(HOOK, &read(1_700_000_300_000))).await;
    let ids: Vec<&str> = receipts(&outcome.events)
        .iter()
        .map(|r| r.provider_id.as_str())
        .collect();
    assert_eq!(ids, ["m_out_2"]);

    // Nothing left to read.
    let outcome = accepted(&h, &signed(HOOK, &read(1_700_000_400_000))).await;
    assert!(outcome.events.is_empty());
    assert_eq!(h.http().requests().len(), 2, "receipts need no API calls");
}

// ---------------------------------------------------------------- attachments, describe

#[tokio::test]
async fn attachments_are_downloaded_from_the_cdn_url_as_given() {
    let h = messenger();
    let photo = attachment(
        "https://scontent.xx.fbcdn.net/v/t1.15752-9/photo.jpg?_nc_cat=1",
        Some("image/jpeg"),
    );
    let how = h
        .fetch_attachment(&photo)
        .await
        .expect("the call completes")
        .expect("a download");
    let AttachmentDownload::Request(request) = how else {
        panic!("a request, got {how:?}");
    };
    assert_eq!(request.url, photo.url);
    assert!(request.headers.is_empty());

    h.http()
        .respond_with(file_response("image/jpeg", b"\xff\xd8jpeg"));
    let downloaded = h.download_attachment(&photo, 1 << 20).await.unwrap();
    assert_eq!(&downloaded.content[..], b"\xff\xd8jpeg");
    let [download] = requests::<1>(&h);
    assert_eq!(download.uri, photo.url);
}

#[tokio::test]
async fn describes_the_messenger_channel() {
    let info = messenger().describe().await.unwrap();
    assert_eq!(info.channel, "messenger");
    assert_eq!(info.identity_kind, "messenger");
    let caps = info.capabilities;
    assert_eq!(caps.window_secs, Some(86_400));
    assert_eq!(caps.human_window_secs, Some(604_800));
    assert_eq!(caps.max_body_chars, Some(2000));
    assert_eq!(caps.attachments.max_count, 10);
    assert_eq!(caps.attachments.max_bytes, 25 * 1024 * 1024);
    assert!(caps.interactive && caps.delivery_receipts && caps.read_receipts);
    assert!(!caps.templates);
}
