//! The built `instagram` component in the real sandbox, against fake
//! capabilities: Meta's signed Instagram messaging webhooks in, Send API
//! calls out, `read` events naming the message read.
//!
//! Run with `bash plugins/build.sh && cargo test -p switchboard-harness --test instagram`.

mod meta;

use meta::*;
use serde_json::json;
use switchboard_harness::bindings::{Choice, DeliveryStatus, InteractiveMessage, WindowUse};
use switchboard_harness::{Harness, PluginError, plugin_dir};

const PAGE_ID: &str = "5566778899";
/// The Instagram professional account: what notifications name as `entry.id`.
const IG_ACCOUNT: &str = "17841400000000000";
const IGSID: &str = "1234567890123456";
const HOOK: &str = "https://sb.example.com/hooks/instagram";
const PROFILE: &str = r#"{"name":"Ada Lovelace","username":"ada.codes","id":"1234567890123456"}"#;

fn instagram() -> Harness {
    Harness::load(
        &plugin_dir("instagram"),
        &[
            ("app_secret", APP_SECRET),
            ("verify_token", VERIFY_TOKEN),
            ("access_token", ACCESS_TOKEN),
            ("page_id", PAGE_ID),
        ],
    )
    .expect("load instagram (run `bash plugins/build.sh` first)")
}

fn customer() -> switchboard_harness::bindings::Identity {
    identity("instagram", IGSID)
}

fn notification(items: &[String]) -> String {
    format!(
        r#"{{"object":"instagram","entry":[{{"id":"{IG_ACCOUNT}","time":1700000000000,"messaging":[{}]}}]}}"#,
        items.join(",")
    )
}

fn from_customer(timestamp: u64, fields: &str) -> String {
    format!(
        r#"{{"sender":{{"id":"{IGSID}"}},"recipient":{{"id":"{IG_ACCOUNT}"}},"timestamp":{timestamp},{fields}}}"#
    )
}

fn sent(mid: &str) -> String {
    format!(r#"{{"recipient_id":"{IGSID}","message_id":"{mid}"}}"#)
}

fn messages_url() -> String {
    format!("{GRAPH}/{PAGE_ID}/messages")
}

#[tokio::test]
async fn handshake_answers_the_challenge_only_with_the_verify_token() {
    let h = instagram();
    let outcome = accepted(&h, &handshake(HOOK, VERIFY_TOKEN, "8642")).await;
    assert_eq!(
        (outcome.response.status, &outcome.response.body[..]),
        (200, &b"8642"[..])
    );
    assert!(matches!(
        refused(&h, &handshake(HOOK, "nope", "8642")).await,
        PluginError::Unauthorized(_)
    ));
}

#[tokio::test]
async fn a_signed_post_with_every_kind_of_event() {
    let h = instagram();
    h.http().respond(200, PROFILE);
    let body = notification(&[
        from_customer(
            1_700_000_000_001,
            r#""message":{"mid":"aWdf_text","text":"Is this in stock?","reply_to":{"mid":"aWdf_out_0"}}"#,
        ),
        from_customer(
            1_700_000_000_002,
            r#""message":{"mid":"aWdf_image","attachments":[{"type":"image","payload":{"url":"https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=1&signature=x"}}]}"#,
        ),
        from_customer(
            1_700_000_000_003,
            r#""message":{"mid":"aWdf_quick","text":"Blue","quick_reply":{"payload":"color-blue"}}"#,
        ),
        from_customer(
            1_700_000_000_004,
            r#""postback":{"mid":"aWdf_postback","title":"Track order","payload":"TRACK"}"#,
        ),
        from_customer(
            1_700_000_000_005,
            r#""reaction":{"mid":"aWdf_out_0","action":"react","reaction":"love","emoji":"❤"}"#,
        ),
        // Our own message, echoed back.
        format!(
            r#"{{"sender":{{"id":"{IG_ACCOUNT}"}},"recipient":{{"id":"{IGSID}"}},"timestamp":1700000000006,"message":{{"mid":"aWdf_echo","text":"Thanks!","is_echo":true}}}}"#
        ),
        from_customer(1_700_000_000_007, r#""read":{"mid":"aWdf_out_0"}"#),
    ]);
    let outcome = accepted(&h, &signed(HOOK, &body)).await;
    assert_eq!(outcome.response.status, 200);

    let received = messages(&outcome.events);
    assert_eq!(received.len(), 5, "{received:?}");
    for message in &received {
        assert_identity(&message.sender, "instagram", IGSID);
        assert_identity(message.recipient.as_ref().unwrap(), "instagram", IG_ACCOUNT);
        assert_eq!(message.sender_name.as_deref(), Some("Ada Lovelace"));
    }
    let [text, image, quick, postback, reaction] = received.as_slice() else {
        unreachable!()
    };
    assert_eq!(text.provider_id, "aWdf_text");
    assert_eq!(text.body, "Is this in stock?");
    assert_eq!(text.metadata.in_reply_to.as_deref(), Some("aWdf_out_0"));
    assert_eq!(text.sent_at_ms, Some(1_700_000_000_001));

    let [file] = image.attachments.as_slice() else {
        panic!("{:?}", image.attachments)
    };
    assert_eq!(
        file.url,
        "https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=1&signature=x"
    );
    assert_eq!(file.content_type.as_deref(), Some("image/*"));

    let reply = quick.metadata.interactive_reply.as_ref().unwrap();
    assert_eq!(
        (reply.id.as_str(), reply.title.as_str()),
        ("color-blue", "Blue")
    );
    assert_eq!(postback.provider_id, "aWdf_postback");
    assert_eq!(
        postback.metadata.interactive_reply.as_ref().unwrap().id,
        "TRACK"
    );
    let reacted = reaction.metadata.reaction.as_ref().unwrap();
    assert_eq!(
        (reacted.provider_id.as_str(), reacted.emoji.as_str()),
        ("aWdf_out_0", "❤")
    );

    let read: Vec<(&str, DeliveryStatus, Option<u64>)> = receipts(&outcome.events)
        .iter()
        .map(|r| (r.provider_id.as_str(), r.status, r.at_ms))
        .collect();
    assert_eq!(
        read,
        [("aWdf_out_0", DeliveryStatus::Read, Some(1_700_000_000_007))]
    );

    let [lookup] = requests::<1>(&h);
    assert_graph_call(
        &lookup,
        "GET",
        &format!("{GRAPH}/{IGSID}?fields=name,username"),
    );
}

#[tokio::test]
async fn forged_and_missing_signatures_are_unauthorized() {
    let h = instagram();
    let body = notification(&[from_customer(1, r#""message":{"mid":"m","text":"hi"}"#)]);
    let forged = signature("another-app", body.as_bytes());
    assert!(matches!(
        refused(&h, &post(HOOK, &body, Some(&forged))).await,
        PluginError::Unauthorized(_)
    ));
    assert!(matches!(
        refused(&h, &post(HOOK, &body, None)).await,
        PluginError::Unauthorized(_)
    ));
    assert!(h.http().requests().is_empty());
}

#[tokio::test]
async fn a_read_covers_everything_sent_before_the_message_read() {
    let h = instagram();
    for (i, mid) in ["aWdf_out_1", "aWdf_out_2", "aWdf_out_3"]
        .iter()
        .enumerate()
    {
        h.set_now(1_700_000_000_000 + i as u64 * 1_000);
        h.http().respond(200, &sent(mid));
        let mut message = outbound(customer(), "update");
        message.message_id = format!("msg-{i}");
        send(&h, &message).await.unwrap();
    }
    let body = notification(&[from_customer(
        1_700_000_009_000,
        r#""read":{"mid":"aWdf_out_2"}"#,
    )]);
    let outcome = accepted(&h, &signed(HOOK, &body)).await;
    let ids: Vec<&str> = receipts(&outcome.events)
        .iter()
        .map(|r| r.provider_id.as_str())
        .collect();
    assert_eq!(ids, ["aWdf_out_1", "aWdf_out_2"]);
}

#[tokio::test]
async fn replies_go_through_the_page_with_the_right_messaging_type() {
    let h = instagram();
    h.http().respond(200, &sent("aWdf_out_1"));
    h.http().respond(200, &sent("aWdf_out_2"));
    assert_eq!(
        send(&h, &outbound(customer(), "In stock, yes."))
            .await
            .unwrap(),
        "aWdf_out_1"
    );
    let mut late = outbound(customer(), "Following up on your order.");
    late.window = WindowUse::HumanAgent;
    late.message_id = "msg-2".into();
    send(&h, &late).await.unwrap();

    let [open, tagged] = requests::<2>(&h);
    assert_graph_call(&open, "POST", &messages_url());
    assert_eq!(
        json(&open),
        json!({
            "recipient": {"id": IGSID},
            "messaging_type": "RESPONSE",
            "message": {"text": "In stock, yes."},
        })
    );
    assert_graph_call(&tagged, "POST", &messages_url());
    assert_eq!(json(&tagged)["messaging_type"], "MESSAGE_TAG");
    assert_eq!(json(&tagged)["tag"], "HUMAN_AGENT");
}

#[tokio::test]
async fn media_and_quick_replies() {
    let h = instagram();
    h.http().respond(200, &sent("aWdf_img"));
    h.http().respond(200, &sent("aWdf_txt"));
    let mut message = outbound(customer(), "Which color?");
    message.attachments = vec![attachment(
        "https://sb.example.com/files/f1?sig=a",
        Some("image/jpeg"),
    )];
    message.interactive = Some(InteractiveMessage::Buttons(vec![
        Choice {
            id: "blue".into(),
            title: "Blue".into(),
            description: None,
        },
        Choice {
            id: "red".into(),
            title: "Red".into(),
            description: None,
        },
    ]));
    assert_eq!(send(&h, &message).await.unwrap(), "aWdf_img");
    let [image, text] = requests::<2>(&h);
    assert_eq!(
        json(&image)["message"],
        json!({"attachment": {"type": "image", "payload": {"url": "https://sb.example.com/files/f1?sig=a"}}})
    );
    assert_eq!(
        json(&text)["message"],
        json!({
            "text": "Which color?",
            "quick_replies": [
                {"content_type": "text", "title": "Blue", "payload": "blue"},
                {"content_type": "text", "title": "Red", "payload": "red"},
            ],
        })
    );
}

#[tokio::test]
async fn errors_are_mapped_by_code() {
    let h = instagram();
    let message = outbound(customer(), "hello");
    h.http().respond(
        400,
        r#"{"error":{"message":"(#10) This message is sent outside of allowed window.","type":"OAuthException","code":10,"error_subcode":2534022}}"#,
    );
    assert!(matches!(
        send(&h, &message).await,
        Err(PluginError::WindowClosed(_))
    ));
    h.http().respond(
        400,
        r#"{"error":{"message":"(#4) Application request limit reached","code":4}}"#,
    );
    assert!(matches!(
        send(&h, &message).await,
        Err(PluginError::RateLimited(_))
    ));
    h.http().respond(
        500,
        r#"{"error":{"message":"An unexpected error has occurred.","code":2}}"#,
    );
    assert!(matches!(
        send(&h, &message).await,
        Err(PluginError::Transient(_))
    ));

    let mut wrong_kind = outbound(identity("messenger", IGSID), "hello");
    wrong_kind.message_id = "msg-x".into();
    assert!(matches!(
        send(&h, &wrong_kind).await,
        Err(PluginError::Permanent(_))
    ));
    assert_eq!(h.http().requests().len(), 3);
}

#[tokio::test]
async fn describes_the_instagram_channel() {
    let info = instagram().describe().await.unwrap();
    assert_eq!(info.channel, "instagram");
    assert_eq!(info.identity_kind, "instagram");
    let caps = info.capabilities;
    assert_eq!(caps.window_secs, Some(86_400));
    assert_eq!(caps.human_window_secs, Some(604_800));
    assert_eq!(caps.max_body_chars, Some(1000));
    assert_eq!(caps.attachments.max_bytes, 8 * 1024 * 1024);
    assert!(!caps.templates);
    assert!(caps.interactive && caps.delivery_receipts && caps.read_receipts);
}
