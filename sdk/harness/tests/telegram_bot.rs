//! The built `telegram-bot` example in the real sandbox, against fake
//! capabilities: Bot API webhooks in, `sendMessage` out.
//!
//! Run with `bash plugins/build.sh && cargo test -p switchboard-harness`.

use switchboard_harness::bindings::{Attachment, DeliveryStatus, Identity, InboundMessage};
use switchboard_harness::{
    AttachmentDownload, ChannelEvent, DownloadError, Harness, HttpFailure, HttpRequest, Limits,
    OutboundMessage, OutboundRequest, OutboundResponse, PluginError, SendReceipt, WebhookOutcome,
    attachment, plugin_dir, text_message, webhook,
};

const BOT_TOKEN: &str = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11";
const WEBHOOK_SECRET: &str = "s3cret-Token_42";
const API_BASE: &str = "https://api.telegram.org";
const HOOK_URL: &str = "https://sb.example.com/hooks/telegram-bot";
const SECRET_HEADER: &str = "X-Telegram-Bot-Api-Secret-Token";

fn load(extra: &[(&str, &str)]) -> Harness {
    let mut config = vec![("bot_token", BOT_TOKEN), ("webhook_secret", WEBHOOK_SECRET)];
    config.extend_from_slice(extra);
    Harness::load(&plugin_dir("telegram-bot"), &config)
        .expect("load telegram-bot (run `bash plugins/build.sh` first)")
}

fn bot() -> Harness {
    load(&[])
}

const TEXT_UPDATE: &str = r#"{"update_id":900001,"message":{"message_id":5,"date":1700000000,
    "chat":{"id":4242,"first_name":"Ada","type":"private"},
    "from":{"id":4242,"is_bot":false,"first_name":"Ada","last_name":"Lovelace","username":"ada","language_code":"en"},
    "text":"Where is my order?"}}"#;

fn update(secret: Option<&str>, body: &str) -> HttpRequest {
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(secret) = secret {
        headers.push((SECRET_HEADER, secret));
    }
    webhook(HOOK_URL, &headers, body.as_bytes())
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

fn only_message(events: &[ChannelEvent]) -> &InboundMessage {
    match events {
        [ChannelEvent::Message(message)] => message,
        other => panic!("expected exactly one message event, got {other:?}"),
    }
}

// ---------------------------------------------------------------- inbound

#[tokio::test]
async fn a_polling_bot_without_a_webhook_secret_refuses_every_webhook() {
    let h = Harness::load(
        &plugin_dir("telegram-bot"),
        &[("bot_token", BOT_TOKEN), ("updates", "poll")],
    )
    .expect("webhook_secret is optional when polling");
    let info = h.describe().await.unwrap();
    assert_eq!(info.capabilities.poll_interval_ms, Some(2000));
    let request = update(None, TEXT_UPDATE);
    assert!(matches!(
        refused(&h, &request).await,
        PluginError::Unauthorized(_)
    ));
    let request = update(Some(""), TEXT_UPDATE);
    assert!(matches!(
        refused(&h, &request).await,
        PluginError::Unauthorized(_)
    ));
    // A webhook bot is not polled.
    assert_eq!(
        bot()
            .describe()
            .await
            .unwrap()
            .capabilities
            .poll_interval_ms,
        None
    );
}

#[tokio::test]
async fn update_with_the_secret_is_a_message() {
    let h = bot();
    let outcome = accepted(&h, &update(Some(WEBHOOK_SECRET), TEXT_UPDATE)).await;

    assert_eq!(outcome.response.status, 200);
    let content_type = outcome
        .response
        .headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        .map(|(_, value)| value.as_str());
    assert_eq!(content_type, Some("application/json"));

    let message = only_message(&outcome.events);
    assert_eq!(message.provider_id, "4242:5");
    assert_eq!(message.sender.kind, "telegram");
    assert_eq!(message.sender.value, "4242");
    assert_eq!(message.body, "Where is my order?");
    assert_eq!(message.sender_name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(message.sent_at_ms, Some(1_700_000_000_000));
    assert!(message.attachments.is_empty());
    assert!(
        h.http().requests().is_empty(),
        "a webhook makes no API calls"
    );
}

#[tokio::test]
async fn group_photo_with_caption_has_an_attachment() {
    let h = bot();
    let body = r#"{"update_id":900002,"message":{"message_id":77,"date":1700000100,
        "chat":{"id":-1001234567890,"title":"Support","type":"supergroup"},
        "from":{"id":7,"is_bot":false,"first_name":"Bo"},
        "caption":"broken on arrival",
        "photo":[{"file_id":"small-id","file_unique_id":"a","width":90,"height":67,"file_size":1200},
                 {"file_id":"large-id","file_unique_id":"b","width":1280,"height":960,"file_size":98765}]}}"#;
    let outcome = accepted(&h, &update(Some(WEBHOOK_SECRET), body)).await;
    let message = only_message(&outcome.events);
    assert_eq!(message.provider_id, "-1001234567890:77");
    assert_eq!(message.sender.value, "-1001234567890");
    assert_eq!(message.body, "broken on arrival");
    let [photo] = message.attachments.as_slice() else {
        panic!("expected one attachment: {:?}", message.attachments);
    };
    assert_eq!(photo.url, "telegram-file:large-id");
    assert_eq!(photo.size, Some(98765));
    assert!(
        !photo.url.contains(BOT_TOKEN),
        "attachment URLs must not carry the bot token"
    );
}

#[tokio::test]
async fn wrong_secret_is_unauthorized() {
    let h = bot();
    for secret in ["s3cret-Token_43", "s3cret-Token_4", "", "S3CRET-TOKEN_42"] {
        let error = refused(&h, &update(Some(secret), TEXT_UPDATE)).await;
        let PluginError::Unauthorized(message) = error else {
            panic!("{secret:?}: expected Unauthorized, got {error:?}");
        };
        assert!(
            !message.contains(WEBHOOK_SECRET),
            "the secret leaked: {message}"
        );
    }
}

#[tokio::test]
async fn missing_secret_is_unauthorized() {
    let h = bot();
    let error = refused(&h, &update(None, TEXT_UPDATE)).await;
    assert!(matches!(error, PluginError::Unauthorized(_)), "{error:?}");
}

#[tokio::test]
async fn other_update_kinds_are_acknowledged_without_events() {
    let h = bot();
    let edited = r#"{"update_id":900003,"edited_message":{"message_id":5,"date":1,"edit_date":2,
        "chat":{"id":4242,"type":"private"},"text":"edited"}}"#;
    let outcome = accepted(&h, &update(Some(WEBHOOK_SECRET), edited)).await;
    assert_eq!(outcome.response.status, 200);
    assert!(outcome.events.is_empty(), "{:?}", outcome.events);
}

#[tokio::test]
async fn authenticated_garbage_is_an_invalid_request() {
    let h = bot();
    let error = refused(&h, &update(Some(WEBHOOK_SECRET), "not json")).await;
    assert!(matches!(error, PluginError::InvalidRequest(_)), "{error:?}");
}

// ------------------------------------------------------- describe and files

#[tokio::test]
async fn describe_states_a_text_channel_without_a_window() {
    let info = bot().describe().await.expect("the call completes");
    assert_eq!(
        (info.channel.as_str(), info.identity_kind.as_str()),
        ("telegram", "telegram")
    );
    let c = &info.capabilities;
    assert_eq!((c.window_secs, c.human_window_secs), (None, None));
    assert_eq!(c.max_body_chars, Some(4096));
    assert_eq!(c.attachments.max_count, 0, "send posts text only");
    assert!(!c.templates && !c.interactive);
    assert!(!c.delivery_receipts && !c.read_receipts);
    assert_eq!(c.poll_interval_ms, None);
}

const GET_FILE: &str = r#"{"ok":true,"result":{"file_id":"large-id","file_unique_id":"b",
    "file_size":98765,"file_path":"photos/file_12.jpg"}}"#;

#[tokio::test]
async fn a_photo_is_downloaded_through_get_file() {
    let h = bot();
    h.http().respond(200, GET_FILE);
    let how = h
        .fetch_attachment(&attachment("telegram-file:large-id"))
        .await
        .expect("the call completes")
        .expect("the file exists");
    let AttachmentDownload::Request(request) = how else {
        panic!("expected a download request, got {how:?}");
    };
    assert_eq!(
        request.url,
        format!("{API_BASE}/file/bot{BOT_TOKEN}/photos/file_12.jpg")
    );
    assert!(request.headers.is_empty(), "the token is in the link");
    let get_file = only_request(&h);
    assert_eq!(get_file.method, "GET");
    assert_eq!(
        get_file.uri,
        format!("{API_BASE}/bot{BOT_TOKEN}/getFile?file_id=large-id")
    );
}

#[tokio::test]
async fn the_host_downloads_the_file_getfile_points_at() {
    let h = bot();
    h.http().respond(200, GET_FILE);
    h.http().respond_with(OutboundResponse {
        status: 200,
        headers: vec![("content-type".into(), "image/jpeg".into())],
        body: "jpeg bytes".into(),
    });
    let mut photo = attachment("telegram-file:large-id");
    photo.content_type = Some("image/jpeg".into());
    let file = h
        .download_attachment(&photo, 1 << 20)
        .await
        .expect("downloaded");
    assert_eq!(&file.content[..], b"jpeg bytes");
    assert_eq!(file.content_type.as_deref(), Some("image/jpeg"));
    let uris: Vec<String> = h.http().requests().into_iter().map(|r| r.uri).collect();
    assert_eq!(
        uris,
        [
            format!("{API_BASE}/bot{BOT_TOKEN}/getFile?file_id=large-id"),
            format!("{API_BASE}/file/bot{BOT_TOKEN}/photos/file_12.jpg"),
        ]
    );
}

#[tokio::test]
async fn files_telegram_will_not_serve_are_permanent() {
    let h = bot();
    h.http().respond(
        400,
        r#"{"ok":false,"error_code":400,"description":"Bad Request: file is too big"}"#,
    );
    let error = h
        .download_attachment(&attachment("telegram-file:huge-id"), 1 << 20)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, DownloadError::Refused(PluginError::Permanent(m)) if m.contains("file is too big")),
        "{error}"
    );
    assert!(!error.is_retryable());

    // A URL this connector never reported is refused without a call.
    let h = bot();
    let result = h
        .fetch_attachment(&attachment("https://cdn.example.com/a.png"))
        .await
        .expect("the call completes");
    assert!(
        matches!(&result, Err(PluginError::Permanent(_))),
        "{result:?}"
    );
    assert!(h.http().requests().is_empty());
}

// --------------------------------------------------------------- outbound

fn outbound(chat: &str, body: &str) -> OutboundMessage {
    let to = Identity {
        kind: "telegram".into(),
        value: chat.into(),
    };
    text_message("msg-1", "conv-1", to, body)
}

async fn send(h: &Harness, message: &OutboundMessage) -> Result<SendReceipt, PluginError> {
    h.send(message).await.expect("the call completes")
}

fn only_request(h: &Harness) -> OutboundRequest {
    let mut requests = h.http().requests();
    assert_eq!(requests.len(), 1, "expected one API call: {requests:?}");
    requests.remove(0)
}

fn json_body(request: &OutboundRequest) -> serde_json::Value {
    serde_json::from_slice(&request.body).expect("the request body is JSON")
}

fn send_message_url(api_base: &str) -> String {
    format!("{api_base}/bot{BOT_TOKEN}/sendMessage")
}

const SENT: &str = r#"{"ok":true,"result":{"message_id":77,"from":{"id":123456,"is_bot":true,"first_name":"Shop"},
    "chat":{"id":4242,"type":"private"},"date":1700000200,"text":"Your ticket is solved"}}"#;

#[tokio::test]
async fn send_posts_send_message_and_returns_chat_and_message_id() {
    let h = bot();
    h.http().respond(200, SENT);

    let receipt = send(&h, &outbound("4242", "Your ticket is solved"))
        .await
        .expect("sent");

    assert_eq!(receipt.provider_id, "4242:77");
    assert!(
        matches!(receipt.status, DeliveryStatus::Sent),
        "{:?}",
        receipt.status
    );
    let request = only_request(&h);
    assert_eq!(request.plugin, "telegram-bot");
    assert_eq!(request.method, "POST");
    assert_eq!(request.uri, send_message_url(API_BASE));
    let content_type = request
        .headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        .map(|(_, value)| value.as_str());
    assert_eq!(content_type, Some("application/json"));
    assert_eq!(
        json_body(&request),
        serde_json::json!({"chat_id": 4242, "text": "Your ticket is solved"})
    );
}

#[tokio::test]
async fn send_to_a_channel_name_and_with_attachments() {
    let h = bot();
    h.http().respond(
        200,
        r#"{"ok":true,"result":{"message_id":3,"chat":{"id":-100},"date":1}}"#,
    );
    let mut message = outbound("@shop_news", "New arrivals");
    message.attachments.push(Attachment {
        content_type: Some("image/png".into()),
        ..attachment("https://cdn.example.com/a.png")
    });
    let receipt = send(&h, &message).await.expect("sent");
    // Telegram numbers messages per chat; the chat part is not pinned here
    // (a fuller connector could use the numeric id from the answer).
    assert!(
        receipt.provider_id.ends_with(":3"),
        "{}",
        receipt.provider_id
    );
    assert_eq!(
        json_body(&only_request(&h)),
        serde_json::json!({
            "chat_id": "@shop_news",
            "text": "New arrivals\nhttps://cdn.example.com/a.png",
        })
    );
}

#[tokio::test]
async fn send_to_a_non_telegram_identity_is_permanent_and_makes_no_call() {
    let h = bot();
    let mut message = outbound("4242", "hi");
    message.to.kind = "phone".into();
    let error = send(&h, &message).await.unwrap_err();
    assert!(matches!(error, PluginError::Permanent(_)), "{error:?}");
    assert!(h.http().requests().is_empty());
}

#[tokio::test]
async fn bot_api_429_is_rate_limited_with_retry_after() {
    let h = bot();
    h.http().respond(
        429,
        r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 12","parameters":{"retry_after":12}}"#,
    );
    let error = send(&h, &outbound("4242", "hi")).await.unwrap_err();
    assert!(
        matches!(error, PluginError::RateLimited(Some(12))),
        "{error:?}"
    );
}

#[tokio::test]
async fn bare_429_uses_the_retry_after_header() {
    let h = bot();
    h.http().respond_with(OutboundResponse {
        status: 429,
        headers: vec![("retry-after".into(), "3".into())],
        body: "slow down".into(),
    });
    let error = send(&h, &outbound("4242", "hi")).await.unwrap_err();
    assert!(
        matches!(error, PluginError::RateLimited(Some(3))),
        "{error:?}"
    );
}

#[tokio::test]
async fn bot_api_5xx_is_transient() {
    for (status, body) in [
        (502, "<html>Bad Gateway</html>"),
        (
            500,
            r#"{"ok":false,"error_code":500,"description":"Internal Server Error"}"#,
        ),
    ] {
        let h = bot();
        h.http().respond(status, body);
        let error = send(&h, &outbound("4242", "hi")).await.unwrap_err();
        let PluginError::Transient(message) = error else {
            panic!("{status}: expected Transient, got {error:?}");
        };
        assert!(message.contains(&status.to_string()), "{message}");
        assert!(
            !message.contains(BOT_TOKEN),
            "the bot token leaked: {message}"
        );
    }
}

#[tokio::test]
async fn blocked_by_the_user_is_permanent() {
    let h = bot();
    h.http().respond(
        403,
        r#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#,
    );
    let error = send(&h, &outbound("4242", "hi")).await.unwrap_err();
    let PluginError::Permanent(message) = error else {
        panic!("expected Permanent, got {error:?}");
    };
    assert!(message.contains("bot was blocked by the user"), "{message}");
}

#[tokio::test]
async fn connection_refused_is_transient_and_does_not_leak_the_token() {
    let h = bot();
    h.http().fail(HttpFailure::ConnectionRefused);
    let error = send(&h, &outbound("4242", "hi")).await.unwrap_err();
    let PluginError::Transient(message) = error else {
        panic!("expected Transient, got {error:?}");
    };
    assert!(message.contains("api.telegram.org"), "{message}");
    assert!(
        !message.contains(BOT_TOKEN),
        "the bot token leaked: {message}"
    );
}

#[tokio::test]
async fn api_base_off_the_allow_list_never_leaves_the_host() {
    let h = load(&[("api_base", "http://127.0.0.1:9")]);
    h.http().respond(200, SENT);
    let error = send(&h, &outbound("4242", "hi")).await.unwrap_err();
    assert!(
        h.http().requests().is_empty(),
        "a denied request must never leave the host"
    );
    let PluginError::Config(message) = error else {
        panic!("expected a Config error, got {error:?}");
    };
    assert!(message.contains("http://127.0.0.1:9"), "{message}");
    assert!(
        !message.contains(BOT_TOKEN),
        "the bot token leaked: {message}"
    );
}

#[tokio::test]
async fn operator_allowed_api_base_is_called() {
    let h = Harness::load_with(
        &plugin_dir("telegram-bot"),
        &[
            ("bot_token", BOT_TOKEN),
            ("webhook_secret", WEBHOOK_SECRET),
            ("api_base", "http://127.0.0.1:9"),
        ],
        Limits::default(),
        &["http://127.0.0.1:9"],
    )
    .expect("load telegram-bot");
    h.http().respond(200, SENT);
    let receipt = send(&h, &outbound("4242", "hi")).await.expect("sent");
    assert_eq!(receipt.provider_id, "4242:77");
    assert_eq!(only_request(&h).uri, send_message_url("http://127.0.0.1:9"));
}
