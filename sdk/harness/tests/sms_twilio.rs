//! The built `sms-twilio` component in the real sandbox, against fake
//! capabilities: signed webhooks in, media downloads, Messages API calls out.
//! Twilio's side (signatures, payloads) is in `twilio/mod.rs`.
//!
//! Run with `bash plugins/build.sh && cargo test -p switchboard-harness`.

mod twilio;

use switchboard_harness::bindings::{
    Attachment, ConsentAction, DeliveryStatus, DownloadRequest, Identity, InboundMessage,
};
use switchboard_harness::{
    AttachmentDownload, ChannelEvent, Harness, HttpFailure, HttpRequest, Limits, OutboundMessage,
    OutboundRequest, OutboundResponse, PluginError, WebhookOutcome, attachment, plugin_dir,
    text_message,
};
use twilio::*;

fn load(extra: &[(&str, &str)]) -> Harness {
    let mut config = account();
    config.extend_from_slice(extra);
    Harness::load(&plugin_dir("sms-twilio"), &config)
        .expect("load sms-twilio (run `bash plugins/build.sh` first)")
}

fn sms() -> Harness {
    load(&[])
}

async fn accepted(h: &Harness, request: &HttpRequest) -> WebhookOutcome {
    h.handle_webhook(request)
        .await
        .expect("the call completes")
        .expect("the webhook is accepted")
}

async fn refused(h: &Harness, request: &HttpRequest) -> PluginError {
    match h.handle_webhook(request).await.expect("the call completes") {
        Ok(outcome) => panic!("expected a refusal, got {} events", outcome.events.len()),
        Err(error) => error,
    }
}

fn assert_empty_twiml(outcome: &WebhookOutcome) {
    let response = &outcome.response;
    assert_eq!(response.status, 200);
    let content_type = response
        .headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        .map(|(_, value)| value.as_str());
    assert_eq!(content_type, Some("text/xml"));
    let body = String::from_utf8(response.body.clone()).unwrap();
    assert!(
        body.trim_end().ends_with("<Response/>"),
        "expected empty TwiML, got {body:?}"
    );
}

fn only_message(events: &[ChannelEvent]) -> &InboundMessage {
    match events {
        [ChannelEvent::Message(message)] => message,
        other => panic!("expected exactly one message event, got {other:?}"),
    }
}

fn assert_identity(identity: &Identity, kind: &str, value: &str) {
    assert_eq!(
        (identity.kind.as_str(), identity.value.as_str()),
        (kind, value)
    );
}

// ---------------------------------------------------------------- inbound

#[tokio::test]
async fn signed_inbound_sms_with_media_is_one_message() {
    let h = sms();
    let mut params = inbound_sms("Here is the damage");
    params.retain(|(name, _)| *name != "NumMedia");
    params.extend([
        ("NumMedia", "1"),
        ("MediaUrl0", MEDIA_URL),
        ("MediaContentType0", "image/jpeg"),
        ("ProfileName", "Ada"),
    ]);

    let outcome = accepted(&h, &signed(WEBHOOK_BASE, &params)).await;

    assert_empty_twiml(&outcome);
    let message = only_message(&outcome.events);
    assert_eq!(message.provider_id, "SM0123456789abcdef0123456789abcdef");
    assert_identity(&message.sender, "phone", CUSTOMER);
    let recipient = message.recipient.as_ref().expect("the number written to");
    assert_identity(recipient, "phone", FROM_NUMBER);
    assert_eq!(message.body, "Here is the damage");
    assert_eq!(message.sender_name.as_deref(), Some("Ada"));
    let [attachment] = message.attachments.as_slice() else {
        panic!("expected one attachment: {:?}", message.attachments);
    };
    assert_eq!(attachment.url, MEDIA_URL);
    assert_eq!(attachment.content_type.as_deref(), Some("image/jpeg"));
    assert_eq!(
        attachment.content, None,
        "the host downloads the media later"
    );
    assert_eq!(message.sent_at_ms, None, "Twilio's webhook carries no time");
    assert!(
        h.http().requests().is_empty(),
        "a webhook makes no API calls"
    );
}

#[tokio::test]
async fn signed_inbound_sms_without_media_has_no_attachments() {
    let h = sms();
    // Characters that form encoding escapes: the signature covers the decoded values.
    let body = "Hi! 50% off & free = great? +1 ✓";
    let outcome = accepted(&h, &signed(WEBHOOK_BASE, &inbound_sms(body))).await;
    assert_empty_twiml(&outcome);
    let message = only_message(&outcome.events);
    assert_eq!(message.body, body);
    assert!(message.attachments.is_empty());
}

#[tokio::test]
async fn signature_covers_the_query_string_of_the_url() {
    let h = sms();
    let url = format!("{WEBHOOK_BASE}?tenant=acme&x=1");
    let params = inbound_sms("hello");
    let outcome = accepted(&h, &signed(&url, &params)).await;
    assert_eq!(only_message(&outcome.events).body, "hello");

    // The same signature is wrong for the URL without its query.
    let signature = twilio_signature(AUTH_TOKEN, &url, &params);
    let moved = twilio_post(WEBHOOK_BASE, &params, Some(&signature));
    assert!(matches!(
        refused(&h, &moved).await,
        PluginError::Unauthorized(_)
    ));
}

#[tokio::test]
async fn signature_from_another_auth_token_is_unauthorized() {
    let h = sms();
    let params = inbound_sms("hello");
    let forged = twilio_signature("not-the-auth-token", WEBHOOK_BASE, &params);
    let error = refused(&h, &twilio_post(WEBHOOK_BASE, &params, Some(&forged))).await;
    let PluginError::Unauthorized(message) = error else {
        panic!("expected Unauthorized, got {error:?}");
    };
    assert!(message.contains("X-Twilio-Signature"), "{message}");
    assert!(
        !message.contains(AUTH_TOKEN),
        "the auth token leaked: {message}"
    );
}

#[tokio::test]
async fn tampered_body_is_unauthorized() {
    let h = sms();
    let params = inbound_sms("pay $10");
    let signature = twilio_signature(AUTH_TOKEN, WEBHOOK_BASE, &params);
    let tampered = inbound_sms("pay $1000");
    let error = refused(&h, &twilio_post(WEBHOOK_BASE, &tampered, Some(&signature))).await;
    assert!(matches!(error, PluginError::Unauthorized(_)), "{error:?}");
}

#[tokio::test]
async fn garbage_signature_is_unauthorized() {
    let h = sms();
    let params = inbound_sms("hello");
    for signature in ["not base64!", "", "AAAA"] {
        let error = refused(&h, &twilio_post(WEBHOOK_BASE, &params, Some(signature))).await;
        assert!(
            matches!(error, PluginError::Unauthorized(_)),
            "{signature:?}: {error:?}"
        );
    }
}

#[tokio::test]
async fn missing_signature_is_unauthorized() {
    let h = sms();
    let error = refused(&h, &twilio_post(WEBHOOK_BASE, &inbound_sms("hello"), None)).await;
    let PluginError::Unauthorized(message) = error else {
        panic!("expected Unauthorized, got {error:?}");
    };
    assert!(message.contains("missing"), "{message}");
}

#[tokio::test]
async fn stop_is_a_message_and_an_opt_out() {
    let h = sms();
    let outcome = accepted(&h, &signed(WEBHOOK_BASE, &inbound_sms("Stop"))).await;
    assert_empty_twiml(&outcome);
    let [
        ChannelEvent::Message(message),
        ChannelEvent::Consent(consent),
    ] = outcome.events.as_slice()
    else {
        panic!(
            "expected a message and a consent event: {:?}",
            outcome.events
        );
    };
    assert_eq!(message.body, "Stop");
    assert!(matches!(consent.action, ConsentAction::OptOut));
    assert_identity(&consent.identity, "phone", CUSTOMER);
    assert_eq!(consent.keyword, "Stop");
    assert_ne!(
        consent.provider_id, message.provider_id,
        "the consent event needs its own idempotency key"
    );
    assert!(consent.provider_id.starts_with(&message.provider_id));
}

#[tokio::test]
async fn start_is_an_opt_in() {
    let h = sms();
    let outcome = accepted(&h, &signed(WEBHOOK_BASE, &inbound_sms("START"))).await;
    let [ChannelEvent::Message(_), ChannelEvent::Consent(consent)] = outcome.events.as_slice()
    else {
        panic!(
            "expected a message and a consent event: {:?}",
            outcome.events
        );
    };
    assert!(matches!(consent.action, ConsentAction::OptIn));
    assert_identity(&consent.identity, "phone", CUSTOMER);
}

#[tokio::test]
async fn a_sentence_containing_stop_is_no_consent_change() {
    let h = sms();
    let outcome = accepted(&h, &signed(WEBHOOK_BASE, &inbound_sms("please don't stop"))).await;
    only_message(&outcome.events);
}

#[tokio::test]
async fn delivered_status_callback_is_a_receipt() {
    let h = sms();
    let url = format!("{WEBHOOK_BASE}/status");
    let params = [
        ("SmsSid", "SM123"),
        ("SmsStatus", "delivered"),
        ("MessageStatus", "delivered"),
        ("To", CUSTOMER),
        ("MessageSid", "SM123"),
        ("AccountSid", ACCOUNT_SID),
        ("From", FROM_NUMBER),
        ("ApiVersion", "2010-04-01"),
    ];
    let outcome = accepted(&h, &signed(&url, &params)).await;
    assert_empty_twiml(&outcome);
    let [ChannelEvent::Receipt(receipt)] = outcome.events.as_slice() else {
        panic!("expected one receipt: {:?}", outcome.events);
    };
    assert_eq!(receipt.provider_id, "SM123");
    assert!(
        matches!(receipt.status, DeliveryStatus::Delivered),
        "{:?}",
        receipt.status
    );
    assert_eq!(receipt.error_code, None);
}

#[tokio::test]
async fn undelivered_status_callback_carries_the_error() {
    let h = sms();
    let url = format!("{WEBHOOK_BASE}/status");
    let params = [
        ("MessageStatus", "undelivered"),
        ("MessageSid", "SM124"),
        ("ErrorCode", "30003"),
        ("AccountSid", ACCOUNT_SID),
    ];
    let outcome = accepted(&h, &signed(&url, &params)).await;
    let [ChannelEvent::Receipt(receipt)] = outcome.events.as_slice() else {
        panic!("expected one receipt: {:?}", outcome.events);
    };
    assert!(matches!(receipt.status, DeliveryStatus::Undelivered));
    assert_eq!(receipt.error_code.as_deref(), Some("30003"));
}

#[tokio::test]
async fn signed_but_malformed_payload_is_an_invalid_request() {
    let h = sms();
    let params = [("Body", "no sid, no sender")];
    let error = refused(&h, &signed(WEBHOOK_BASE, &params)).await;
    assert!(matches!(error, PluginError::InvalidRequest(_)), "{error:?}");
}

// ------------------------------------------------------ describe and media

#[tokio::test]
async fn describe_states_twilio_mms_capabilities() {
    let info = sms().describe().await.expect("the call completes");
    assert_eq!(
        (
            info.channel.as_str(),
            info.identity_kind.as_str(),
            info.display_name.as_str()
        ),
        ("sms", "phone", "Twilio SMS")
    );
    let c = &info.capabilities;
    assert_eq!((c.window_secs, c.human_window_secs), (None, None));
    assert_eq!(c.max_body_chars, Some(1600));
    assert_eq!(c.attachments.max_count, 10);
    assert_eq!(c.attachments.max_bytes, 5 * 1024 * 1024);
    assert_eq!(
        c.attachments.content_types,
        ["image/*", "video/*", "audio/*", "application/pdf"]
    );
    assert!(c.delivery_receipts && !c.read_receipts);
    assert!(!c.templates && !c.interactive);
    assert_eq!(c.poll_interval_ms, None);
}

async fn download_request(h: &Harness, url: &str) -> DownloadRequest {
    match h
        .fetch_attachment(&attachment(url))
        .await
        .expect("the call completes")
        .expect("the connector knows how")
    {
        AttachmentDownload::Request(request) => request,
        other => panic!("expected a download request, got {other:?}"),
    }
}

#[tokio::test]
async fn twilio_media_is_fetched_with_the_accounts_credentials() {
    let h = sms();
    let request = download_request(&h, MEDIA_URL).await;
    assert_eq!(request.url, MEDIA_URL);
    assert_eq!(
        request.headers,
        vec![("authorization".to_owned(), basic_credentials())]
    );
    assert!(
        h.http().requests().is_empty(),
        "fetch-attachment only says how; the host downloads"
    );

    // The host makes the request, credentials included, and keeps the bytes.
    h.http().respond_with(OutboundResponse {
        status: 200,
        headers: vec![("content-type".into(), "image/jpeg".into())],
        body: "jpeg bytes".into(),
    });
    let file = h
        .download_attachment(&attachment(MEDIA_URL), 1 << 20)
        .await
        .expect("downloaded");
    assert_eq!(&file.content[..], b"jpeg bytes");
    assert_eq!(file.content_type.as_deref(), Some("image/jpeg"));
    let download = only_request(&h);
    assert_eq!(
        (download.method.as_str(), download.uri.as_str()),
        ("GET", MEDIA_URL)
    );
    assert_eq!(
        header(&download, "authorization"),
        Some(basic_credentials().as_str())
    );
}

#[tokio::test]
async fn media_redirects_are_followed_on_the_allow_list_without_leaking_credentials() {
    let h = sms();
    let redirect = |to: &str| OutboundResponse {
        status: 302,
        headers: vec![("location".into(), to.into())],
        body: Default::default(),
    };
    // Same origin, then Twilio's CDN, then the file.
    h.http()
        .respond_with(redirect("/2010-04-01/Media/ME1-moved"));
    h.http()
        .respond_with(redirect("https://media.twiliocdn.com/AC0/ME1.jpg"));
    h.http().respond_with(OutboundResponse {
        status: 200,
        headers: vec![("content-type".into(), "image/jpeg".into())],
        body: "cdn bytes".into(),
    });
    let file = h
        .download_attachment(&attachment(MEDIA_URL), 1 << 20)
        .await
        .expect("downloaded through the redirects");
    assert_eq!(&file.content[..], b"cdn bytes");
    let hops = h.http().requests();
    assert_eq!(hops.len(), 3);
    assert_eq!(
        hops[1].uri,
        "https://api.twilio.com/2010-04-01/Media/ME1-moved"
    );
    assert_eq!(
        header(&hops[1], "authorization"),
        Some(basic_credentials().as_str()),
        "credentials stay on the same origin"
    );
    assert_eq!(hops[2].uri, "https://media.twiliocdn.com/AC0/ME1.jpg");
    assert_eq!(
        header(&hops[2], "authorization"),
        None,
        "credentials never follow a redirect to another origin"
    );

    // A redirect off the allow-list is refused before anything is fetched there.
    let h = sms();
    h.http()
        .respond_with(redirect("https://attacker.example/steal"));
    let refused = h
        .download_attachment(&attachment(MEDIA_URL), 1 << 20)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, switchboard_harness::DownloadError::Denied(_)),
        "{refused}"
    );
    assert_eq!(h.http().requests().len(), 1);
}

#[tokio::test]
async fn media_under_an_operator_api_base_is_fetched_with_credentials() {
    let h = Harness::load_with(
        &plugin_dir("sms-twilio"),
        &[
            ("account_sid", ACCOUNT_SID),
            ("auth_token", AUTH_TOKEN),
            ("from_number", FROM_NUMBER),
            ("api_base", "http://127.0.0.1:9"),
        ],
        Limits::default(),
        &["http://127.0.0.1:9"],
    )
    .expect("load sms-twilio");
    let url = "http://127.0.0.1:9/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1";
    let request = download_request(&h, url).await;
    assert_eq!(
        request.headers,
        vec![("authorization".to_owned(), basic_credentials())]
    );
    // Twilio's own API keeps getting them too.
    let request = download_request(&h, MEDIA_URL).await;
    assert_eq!(request.headers.len(), 1);
}

#[tokio::test]
async fn credentials_never_go_to_other_hosts() {
    let h = sms();
    for url in [
        "https://cdn.example.com/ME1.jpg",
        "https://api.twilio.com.example.net/2010-04-01/Media/ME1",
    ] {
        let request = download_request(&h, url).await;
        assert_eq!(request.url, url);
        assert!(request.headers.is_empty(), "{url}: {:?}", request.headers);
    }
    // And the host downloads only from the allow-list anyway.
    let refused = h
        .download_attachment(&attachment("https://cdn.example.com/ME1.jpg"), 1 << 20)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, switchboard_harness::DownloadError::Denied(_)),
        "{refused}"
    );
    assert!(h.http().requests().is_empty());
}

// --------------------------------------------------------------- outbound

fn outbound(body: &str) -> OutboundMessage {
    text_message("msg-1", "conv-1", phone(CUSTOMER), body)
}

async fn send(
    h: &Harness,
    message: &OutboundMessage,
) -> Result<switchboard_harness::SendReceipt, PluginError> {
    h.send(message).await.expect("the call completes")
}

fn only_request(h: &Harness) -> OutboundRequest {
    let mut requests = h.http().requests();
    assert_eq!(requests.len(), 1, "expected one API call: {requests:?}");
    requests.remove(0)
}

#[tokio::test]
async fn send_posts_the_message_and_returns_twilio_sid() {
    let h = load(&[("switchboard.webhook-base", WEBHOOK_BASE)]);
    h.http()
        .respond(201, r#"{"sid":"SM123","status":"queued"}"#);

    let receipt = send(&h, &outbound("Your order shipped & is on its way"))
        .await
        .expect("sent");

    assert_eq!(receipt.provider_id, "SM123");
    assert!(
        matches!(receipt.status, DeliveryStatus::Queued),
        "{:?}",
        receipt.status
    );
    let request = only_request(&h);
    assert_eq!(request.plugin, "sms-twilio");
    assert_eq!(request.method, "POST");
    assert_eq!(request.uri, messages_url(API_BASE));
    assert_eq!(
        header(&request, "authorization"),
        Some(basic_credentials().as_str())
    );
    assert_eq!(
        header(&request, "content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let fields = form_fields(&request);
    assert_eq!(field(&fields, "To"), Some(CUSTOMER));
    assert_eq!(field(&fields, "From"), Some(FROM_NUMBER));
    assert_eq!(
        field(&fields, "Body"),
        Some("Your order shipped & is on its way")
    );
    assert_eq!(
        field(&fields, "StatusCallback"),
        Some(format!("{WEBHOOK_BASE}/status").as_str())
    );
}

#[tokio::test]
async fn send_without_a_public_url_has_no_status_callback() {
    let h = sms();
    h.http()
        .respond(201, r#"{"sid":"SM123","status":"queued"}"#);
    send(&h, &outbound("hi")).await.expect("sent");
    let fields = form_fields(&only_request(&h));
    assert_eq!(field(&fields, "StatusCallback"), None, "{fields:?}");
    assert_eq!(field(&fields, "Body"), Some("hi"));
}

#[tokio::test]
async fn send_passes_attachments_as_media_urls() {
    let h = sms();
    h.http()
        .respond(201, r#"{"sid":"MM9","status":"accepted"}"#);
    let mut message = outbound("label attached");
    message.attachments.push(Attachment {
        content_type: Some("application/pdf".into()),
        ..attachment("https://cdn.example.com/label.pdf")
    });
    let receipt = send(&h, &message).await.expect("sent");
    assert_eq!(receipt.provider_id, "MM9");
    let fields = form_fields(&only_request(&h));
    assert_eq!(
        field(&fields, "MediaUrl"),
        Some("https://cdn.example.com/label.pdf")
    );
}

#[tokio::test]
async fn send_uses_the_configured_api_base() {
    let h = load(&[("api_base", "https://api.twilio.com/")]);
    h.http().respond(201, r#"{"sid":"SM1","status":"queued"}"#);
    send(&h, &outbound("hi")).await.expect("sent");
    assert_eq!(only_request(&h).uri, messages_url(API_BASE));
}

#[tokio::test]
async fn send_to_a_non_phone_identity_is_permanent_and_makes_no_call() {
    let h = sms();
    let mut message = outbound("hi");
    message.to = Identity {
        kind: "email".into(),
        value: "ada@example.com".into(),
    };
    let error = send(&h, &message).await.unwrap_err();
    assert!(matches!(error, PluginError::Permanent(_)), "{error:?}");
    assert!(h.http().requests().is_empty());
}

#[tokio::test]
async fn twilio_503_is_transient() {
    let h = sms();
    h.http().respond(503, "Service Unavailable");
    let error = send(&h, &outbound("hi")).await.unwrap_err();
    let PluginError::Transient(message) = error else {
        panic!("expected Transient, got {error:?}");
    };
    assert!(message.contains("503"), "{message}");
    assert_eq!(h.http().requests().len(), 1);
}

#[tokio::test]
async fn twilio_429_is_rate_limited_with_retry_after() {
    let h = sms();
    h.http().respond_with(OutboundResponse {
        status: 429,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("retry-after".into(), "7".into()),
        ],
        body: r#"{"code":20429,"message":"Too Many Requests","status":429}"#.into(),
    });
    let error = send(&h, &outbound("hi")).await.unwrap_err();
    assert!(
        matches!(error, PluginError::RateLimited(Some(7))),
        "{error:?}"
    );
}

#[tokio::test]
async fn twilio_400_error_is_permanent_with_twilio_code() {
    let h = sms();
    h.http().respond(
        400,
        r#"{"code":21211,"message":"The 'To' number +1555 is not a valid phone number.","more_info":"https://www.twilio.com/docs/errors/21211","status":400}"#,
    );
    let error = send(&h, &outbound("hi")).await.unwrap_err();
    let PluginError::Permanent(message) = error else {
        panic!("expected Permanent, got {error:?}");
    };
    assert!(message.contains("21211"), "{message}");
    assert!(message.contains("not a valid phone number"), "{message}");
}

#[tokio::test]
async fn connection_refused_is_transient() {
    let h = sms();
    h.http().fail(HttpFailure::ConnectionRefused);
    let error = send(&h, &outbound("hi")).await.unwrap_err();
    let PluginError::Transient(message) = error else {
        panic!("expected Transient, got {error:?}");
    };
    assert!(message.contains("api.twilio.com"), "{message}");
    assert!(!message.contains(AUTH_TOKEN), "{message}");
    assert_eq!(h.http().requests().len(), 1, "the request was attempted");
}

#[tokio::test]
async fn api_base_off_the_allow_list_never_leaves_the_host() {
    let h = load(&[("api_base", "http://127.0.0.1:9")]);
    h.http().respond(201, r#"{"sid":"SM1","status":"queued"}"#);
    let error = send(&h, &outbound("hi")).await.unwrap_err();
    assert!(
        h.http().requests().is_empty(),
        "a denied request must never leave the host"
    );
    let PluginError::Config(message) = error else {
        panic!("expected a Config error the operator can act on, got {error:?}");
    };
    assert!(message.contains("denied"), "{message}");
    assert!(message.contains("http://127.0.0.1:9"), "{message}");
    assert!(message.contains("allow-list"), "{message}");
    assert!(!message.contains(AUTH_TOKEN), "{message}");
}

#[tokio::test]
async fn operator_allowed_api_base_is_called() {
    let h = Harness::load_with(
        &plugin_dir("sms-twilio"),
        &[
            ("account_sid", ACCOUNT_SID),
            ("auth_token", AUTH_TOKEN),
            ("from_number", FROM_NUMBER),
            ("api_base", "http://127.0.0.1:9"),
        ],
        Limits::default(),
        &["http://127.0.0.1:9"],
    )
    .expect("load sms-twilio");
    h.http().respond(201, r#"{"sid":"SM77","status":"queued"}"#);
    let receipt = send(&h, &outbound("hi")).await.expect("sent");
    assert_eq!(receipt.provider_id, "SM77");
    let request = only_request(&h);
    assert_eq!(request.uri, messages_url("http://127.0.0.1:9"));
    assert_eq!(field(&form_fields(&request), "To"), Some(CUSTOMER));
}
