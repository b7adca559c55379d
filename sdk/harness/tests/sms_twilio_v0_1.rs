//! A connector built against plugin API 0.1.0 keeps working next to its 0.2.0
//! build, in one host: `plugins/dist/sms-twilio-v0-1` (the frozen fixture in
//! `plugins/fixtures/sms-twilio-0.1.0`, world `channel@0.1.0`) and
//! `plugins/dist/sms-twilio` (world `channel@0.2.0`) get the same webhooks and
//! the same messages, and the host converts between the versions at the
//! boundary.
//!
//! The generated types implement `Debug` but not `PartialEq`, so whole events
//! and responses are compared by their `Debug` form.
//!
//! Run with `bash plugins/build.sh && cargo test -p switchboard-harness`.

mod twilio;

use switchboard_harness::bindings::{Attachment, DeliveryStatus, DownloadRequest};
use switchboard_harness::{
    AttachmentDownload, ChannelEvent, Harness, OutboundMessage, OutboundRequest, OutboundResponse,
    WebhookOutcome, attachment, plugin_dir, text_message,
};
use twilio::*;

const V0_1: &str = "sms-twilio-v0-1";
const V0_2: &str = "sms-twilio";

/// The 0.1.0 and the 0.2.0 build in one host, with the same account and
/// these config values besides.
fn both_with(
    old_extra: &[(&'static str, &'static str)],
    current_extra: &[(&'static str, &'static str)],
) -> (Harness, Harness) {
    let config = |extra: &[(&'static str, &'static str)]| {
        let mut config = account();
        config.extend_from_slice(extra);
        config
    };
    let current = Harness::load(&plugin_dir(V0_2), &config(current_extra))
        .expect("load sms-twilio (run `bash plugins/build.sh` first)");
    let old = current
        .load_beside(&plugin_dir(V0_1), &config(old_extra))
        .expect("load the 0.1.0 fixture into the same host");
    (old, current)
}

fn both() -> (Harness, Harness) {
    both_with(&[], &[])
}

async fn accepted(h: &Harness, url: &str, params: &[(&str, &str)]) -> WebhookOutcome {
    h.handle_webhook(&signed(url, params))
        .await
        .expect("the call completes")
        .expect("the webhook is accepted")
}

fn debug<T: std::fmt::Debug>(value: &T) -> String {
    format!("{value:?}")
}

#[tokio::test]
async fn both_versions_load_side_by_side() {
    let (old, current) = both();
    assert_eq!((old.id(), current.id()), (V0_1, V0_2));
    let worlds: Vec<(String, String)> = current
        .host()
        .list()
        .into_iter()
        .map(|status| (status.id, status.world))
        .collect();
    assert_eq!(
        worlds,
        [
            (
                V0_2.to_owned(),
                "switchboard:plugin/channel@0.2.0".to_owned()
            ),
            (
                V0_1.to_owned(),
                "switchboard:plugin/channel@0.1.0".to_owned()
            ),
        ]
    );
}

#[tokio::test]
async fn the_same_webhook_gives_the_same_events() {
    let (old, current) = both();
    let mut with_media = inbound_sms("Here is the damage");
    with_media.retain(|(name, _)| *name != "NumMedia");
    with_media.extend([
        ("NumMedia", "1"),
        ("MediaUrl0", MEDIA_URL),
        ("MediaContentType0", "image/jpeg"),
        ("ProfileName", "Ada"),
    ]);
    let status_url = format!("{WEBHOOK_BASE}/status");
    let undelivered = [
        ("MessageStatus", "undelivered"),
        ("MessageSid", "SM124"),
        ("ErrorCode", "30003"),
        ("ErrorMessage", "Unreachable destination handset"),
        ("AccountSid", ACCOUNT_SID),
    ];
    let stop = inbound_sms("STOP");
    for (what, url, params) in [
        ("an MMS", WEBHOOK_BASE, &with_media[..]),
        ("a status callback", &status_url, &undelivered[..]),
        ("an opt-out", WEBHOOK_BASE, &stop[..]),
    ] {
        let from_old = accepted(&old, url, params).await;
        let from_current = accepted(&current, url, params).await;
        assert!(!from_current.events.is_empty(), "{what}");
        assert_eq!(
            debug(&from_old.events),
            debug(&from_current.events),
            "{what}"
        );
        assert_eq!(
            debug(&from_old.response),
            debug(&from_current.response),
            "{what}"
        );
    }

    // What 0.1.0 cannot say takes its neutral value.
    let outcome = accepted(&old, WEBHOOK_BASE, &with_media).await;
    let [ChannelEvent::Message(message)] = outcome.events.as_slice() else {
        panic!("expected one message: {:?}", outcome.events);
    };
    assert_eq!(message.attachments[0].url, MEDIA_URL);
    assert_eq!(message.attachments[0].content, None);
    assert_eq!(message.html_body, None);
    assert_eq!(message.metadata.subject, None);
    let outcome = accepted(&old, &status_url, &undelivered).await;
    let [ChannelEvent::Receipt(receipt)] = outcome.events.as_slice() else {
        panic!("expected one receipt: {:?}", outcome.events);
    };
    assert!(matches!(receipt.status, DeliveryStatus::Undelivered));
    assert_eq!(receipt.at_ms, None);
}

/// The only request made so far, which `plugin` made.
fn take_request(h: &Harness, plugin: &str) -> OutboundRequest {
    let requests = h.http().requests();
    let [request] = requests.as_slice() else {
        panic!("expected one API call: {requests:?}");
    };
    assert_eq!(request.plugin, plugin);
    request.clone()
}

/// Sends `message` through the current build, then through the old one, and
/// answers the API request each made, in that order.
async fn send_through_both(
    old: &Harness,
    current: &Harness,
    message: &OutboundMessage,
) -> (OutboundRequest, OutboundRequest) {
    current
        .http()
        .respond(201, r#"{"sid":"SM1","status":"queued"}"#);
    let receipt = current.send(message).await.unwrap().expect("sent");
    assert_eq!(receipt.provider_id, "SM1");
    old.http()
        .respond(201, r#"{"sid":"SM2","status":"accepted"}"#);
    let receipt = old.send(message).await.unwrap().expect("sent");
    assert_eq!(receipt.provider_id, "SM2");
    assert!(matches!(receipt.status, DeliveryStatus::Queued));

    // One host, one fake HTTP: both requests, in order.
    let requests = current.http().requests();
    let [from_current, from_old] = requests.as_slice() else {
        panic!("expected one API call each: {requests:?}");
    };
    assert_eq!(
        (from_current.plugin.as_str(), from_old.plugin.as_str()),
        (V0_2, V0_1)
    );
    (from_old.clone(), from_current.clone())
}

fn message_with_a_file() -> OutboundMessage {
    let mut message = text_message("msg-1", "conv-1", phone(CUSTOMER), "Your label & receipt");
    message.attachments.push(Attachment {
        content_type: Some("application/pdf".into()),
        ..attachment("https://sb.example.com/files/label.pdf?sig=abc")
    });
    message
}

#[tokio::test]
async fn send_makes_the_same_twilio_api_request() {
    let (old, current) = both();
    let (from_old, from_current) = send_through_both(&old, &current, &message_with_a_file()).await;

    assert_eq!(from_old.method, "POST");
    assert_eq!(from_old.uri, messages_url(API_BASE));
    assert_eq!(
        header(&from_old, "authorization"),
        Some(basic_credentials().as_str())
    );
    let fields = form_fields(&from_old);
    assert_eq!(field(&fields, "Body"), Some("Your label & receipt"));
    assert_eq!(
        field(&fields, "MediaUrl"),
        Some("https://sb.example.com/files/label.pdf?sig=abc")
    );
    // Byte for byte, but for the plugin that made it.
    assert_eq!(
        OutboundRequest {
            plugin: V0_2.into(),
            ..from_old
        },
        from_current
    );
}

#[tokio::test]
async fn each_build_names_its_own_status_callback() {
    // The host gives each plugin its own webhook base.
    let (old, current) = both_with(
        &[(
            "switchboard.webhook-base",
            "https://sb.example.com/hooks/sms-twilio-v0-1",
        )],
        &[(
            "switchboard.webhook-base",
            "https://sb.example.com/hooks/sms-twilio",
        )],
    );
    let (from_old, from_current) = send_through_both(&old, &current, &message_with_a_file()).await;
    let without_callback = |request: &OutboundRequest| {
        let mut fields = form_fields(request);
        let callback = fields
            .iter()
            .position(|(name, _)| name == "StatusCallback")
            .map(|i| fields.remove(i).1);
        (fields, callback)
    };
    let (old_form, old_callback) = without_callback(&from_old);
    let (current_form, current_callback) = without_callback(&from_current);
    assert_eq!(old_form, current_form);
    assert_eq!(
        old_callback.as_deref(),
        Some("https://sb.example.com/hooks/sms-twilio-v0-1/status")
    );
    assert_eq!(
        current_callback.as_deref(),
        Some("https://sb.example.com/hooks/sms-twilio/status")
    );
}

#[tokio::test]
async fn describe_of_the_old_build_is_converted_to_capabilities() {
    let (old, current) = both();
    let old_info = old.describe().await.expect("the call completes");
    let current_info = current.describe().await.expect("the call completes");
    assert_eq!(
        (old_info.channel.as_str(), old_info.identity_kind.as_str()),
        (
            current_info.channel.as_str(),
            current_info.identity_kind.as_str()
        )
    );

    // 0.1.0 said `supports-media` and `supports-receipts`; the host states
    // them as 0.2.0 capabilities.
    let old_caps = &old_info.capabilities;
    assert!(old_caps.delivery_receipts);
    assert!(!old_caps.read_receipts);
    assert_eq!(old_caps.attachments.max_count, 10);
    assert_eq!(old_caps.attachments.max_bytes, 5 * 1024 * 1024);
    assert_eq!(old_caps.window_secs, None);
    assert!(!old_caps.templates && !old_caps.interactive);
    assert_eq!(old_caps.poll_interval_ms, None);

    // The 0.2.0 build states the same limits, and what 0.1.0 could not say.
    let current_caps = &current_info.capabilities;
    assert_eq!(
        (
            current_caps.delivery_receipts,
            current_caps.attachments.max_count,
            current_caps.attachments.max_bytes
        ),
        (
            old_caps.delivery_receipts,
            old_caps.attachments.max_count,
            old_caps.attachments.max_bytes
        )
    );
    assert_eq!(old_caps.max_body_chars, None);
    assert_eq!(current_caps.max_body_chars, Some(1600));
}

async fn download_request(h: &Harness, reported: &Attachment) -> DownloadRequest {
    match h
        .fetch_attachment(reported)
        .await
        .expect("the call completes")
        .expect("the connector answers")
    {
        AttachmentDownload::Request(request) => request,
        other => panic!("expected a download request, got {other:?}"),
    }
}

#[tokio::test]
async fn an_old_connectors_attachment_is_fetched_with_a_plain_get() {
    let (old, current) = both();
    let mut params = inbound_sms("photo");
    params.retain(|(name, _)| *name != "NumMedia");
    params.extend([
        ("NumMedia", "1"),
        ("MediaUrl0", MEDIA_URL),
        ("MediaContentType0", "image/jpeg"),
    ]);
    let outcome = accepted(&old, WEBHOOK_BASE, &params).await;
    let [ChannelEvent::Message(message)] = outcome.events.as_slice() else {
        panic!("expected one message: {:?}", outcome.events);
    };
    let reported = &message.attachments[0];

    // 0.1.0 has no fetch-attachment: the host answers for it with the URL the
    // connector reported, as it is, and no credentials.
    let request = download_request(&old, reported).await;
    assert_eq!(request.url, MEDIA_URL);
    assert!(request.headers.is_empty(), "{:?}", request.headers);
    // The 0.2.0 build authenticates the same URL.
    let request = download_request(&current, reported).await;
    assert_eq!(request.url, MEDIA_URL);
    assert_eq!(
        request.headers,
        [("authorization".to_owned(), basic_credentials())]
    );
    assert!(current.http().requests().is_empty());

    // The host downloads it with a GET, still only from the allow-list.
    old.http().respond_with(OutboundResponse {
        status: 200,
        headers: vec![("content-type".into(), "image/jpeg".into())],
        body: "jpeg bytes".into(),
    });
    let file = old
        .download_attachment(reported, 1 << 20)
        .await
        .expect("downloaded");
    assert_eq!(&file.content[..], b"jpeg bytes");
    let download = take_request(&old, V0_1);
    assert_eq!(
        (download.method.as_str(), download.uri.as_str()),
        ("GET", MEDIA_URL)
    );
    assert_eq!(header(&download, "authorization"), None);
}
