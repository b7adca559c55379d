use hmac::{Hmac, Mac};
use sha2::Sha256;
use switchboard_sdk::mail::{Automatic, Copies};
use switchboard_sdk::{ChannelEvent, Identity, OutboundMessage};

use super::*;
use crate::outbound::Mailbox;
use crate::testing::Memory;

const KEY: &str = "key-signing-secret";
const NOW: u64 = 1_700_000_000;

fn sign(timestamp: &str, token: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(token.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn settings() -> Mailgun {
    Mailgun {
        signing_key: KEY.into(),
        api_key: "key-api".into(),
        domain: "mg.example.com".into(),
        api_base: "https://api.mailgun.net".into(),
    }
}

fn request(content_type: &str, body: Vec<u8>) -> HttpRequest {
    HttpRequest {
        method: "POST".into(),
        url: "https://sb.example.com/hooks/email/mailgun".into(),
        headers: vec![("Content-Type".into(), content_type.into())],
        body,
    }
}

fn form(pairs: &[(&str, &str)]) -> HttpRequest {
    let mut serializer = form_urlencoded_body(pairs);
    request(
        "application/x-www-form-urlencoded",
        std::mem::take(&mut serializer),
    )
}

fn form_urlencoded_body(pairs: &[(&str, &str)]) -> Vec<u8> {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn signatures_good_forged_and_stale() {
    let timestamp = NOW.to_string();
    let signature = sign(&timestamp, "tok");
    verify(KEY, &timestamp, "tok", &signature, NOW).unwrap();
    verify(KEY, &timestamp, "tok", &signature, NOW + MAX_AGE_SECS).unwrap();
    for (timestamp, token, signature, now) in [
        (timestamp.as_str(), "other", signature.as_str(), NOW),
        (
            timestamp.as_str(),
            "tok",
            &sign(&timestamp, "tok")[..62],
            NOW,
        ),
        (timestamp.as_str(), "tok", "zz", NOW),
        (
            timestamp.as_str(),
            "tok",
            signature.as_str(),
            NOW + MAX_AGE_SECS + 1,
        ),
        (
            timestamp.as_str(),
            "tok",
            signature.as_str(),
            NOW - MAX_AGE_SECS - 1,
        ),
        ("", "tok", signature.as_str(), NOW),
        ("soon", "tok", signature.as_str(), NOW),
    ] {
        assert!(
            matches!(
                verify(KEY, timestamp, token, signature, now),
                Err(PluginError::Unauthorized(_))
            ),
            "{timestamp} {token} {signature} {now}"
        );
    }
    let forged = sign(&timestamp, "tok").replace('a', "b");
    if forged != signature {
        assert!(verify(KEY, &timestamp, "tok", &forged, NOW).is_err());
    }
}

#[test]
fn a_parsed_posting_becomes_a_message() {
    let timestamp = NOW.to_string();
    let signature = sign(&timestamp, "t1");
    let headers = serde_json::json!([
        ["Received", "by mx"],
        ["From", "Ann Example <ann@example.org>"],
        ["To", "support+tag42@example.com"],
        ["Subject", "Help with order"],
        ["Message-Id", "<mg-1@example.org>"],
        ["In-Reply-To", "<ours-1@example.com>"],
        ["Content-Type", "multipart/alternative; boundary=\"zzz\""],
        ["Date", "Tue, 14 Nov 2023 22:13:20 +0000"]
    ])
    .to_string();
    let request = form(&[
        ("timestamp", &timestamp),
        ("token", "t1"),
        ("signature", &signature),
        ("recipient", "support+tag42@example.com"),
        ("sender", "ann@example.org"),
        ("from", "Ann Example <ann@example.org>"),
        ("subject", "Help with order"),
        ("body-plain", "My order is late."),
        ("body-html", "<p>My order is late.</p>"),
        ("message-headers", &headers),
    ]);
    let batch = handle(
        &request,
        &settings(),
        "support@example.com",
        NOW,
        &mut Memory::default(),
    )
    .unwrap();
    assert_eq!(batch.response.as_ref().unwrap().status, 200);
    let ChannelEvent::Message(message) = &batch.events[0] else {
        panic!("message expected")
    };
    assert_eq!(message.provider_id, "mg-1@example.org");
    assert_eq!(message.sender, Identity::new("email", "ann@example.org"));
    assert_eq!(message.sender_name.as_deref(), Some("Ann Example"));
    assert_eq!(message.body.trim(), "My order is late.");
    assert_eq!(
        message.html_body.as_deref().map(str::trim),
        Some("<p>My order is late.</p>")
    );
    assert_eq!(message.metadata.subject.as_deref(), Some("Help with order"));
    assert_eq!(
        message.metadata.in_reply_to.as_deref(),
        Some("ours-1@example.com")
    );
    assert_eq!(message.metadata.thread_id.as_deref(), Some("tag42"));
    assert_eq!(message.sent_at_ms, Some(1_700_000_000_000));
    assert_eq!(batch.envelopes[0].provider_id, "mg-1@example.org");
}

#[test]
fn a_mime_posting_with_files_is_read_like_polled_mail() {
    let timestamp = NOW.to_string();
    let mime = "From: robot@example.org\r\nTo: support@example.com\r\nSubject: Out of office\r\nAuto-Submitted: auto-replied\r\nMessage-ID: <ooo@example.org>\r\n\r\nI am away.\r\n";
    let fields = vec![
        text_field("timestamp", &timestamp),
        text_field("token", "t2"),
        text_field("signature", &sign(&timestamp, "t2")),
        text_field("body-mime", mime),
    ];
    let (content_type, body) = formdata::build(&fields);
    let batch = handle(
        &request(&content_type, body),
        &settings(),
        "support@example.com",
        NOW,
        &mut Memory::default(),
    )
    .unwrap();
    assert_eq!(batch.envelopes[0].provider_id, "ooo@example.org");
    assert_eq!(batch.envelopes[0].automatic, Some(Automatic::AutoReply));

    let fields = vec![
        text_field("timestamp", &timestamp),
        text_field("token", "t3"),
        text_field("signature", &sign(&timestamp, "t3")),
        text_field("from", "ann@example.org"),
        text_field("body-plain", "see attached"),
        text_field("content-id-map", r#"{"<img1@x>": "attachment-2"}"#),
        Field {
            name: "attachment-1".into(),
            filename: Some("a.pdf".into()),
            content_type: Some("application/pdf".into()),
            data: b"%PDF".to_vec(),
        },
        Field {
            name: "attachment-2".into(),
            filename: Some("img.png".into()),
            content_type: Some("image/png".into()),
            data: b"\x89PNG".to_vec(),
        },
    ];
    let (content_type, body) = formdata::build(&fields);
    let batch = handle(
        &request(&content_type, body),
        &settings(),
        "support@example.com",
        NOW,
        &mut Memory::default(),
    )
    .unwrap();
    let ChannelEvent::Message(message) = &batch.events[0] else {
        panic!()
    };
    assert!(message.provider_id.starts_with("sha256:"));
    assert_eq!(message.attachments.len(), 2, "{:?}", message.attachments);
    let pdf = message
        .attachments
        .iter()
        .find(|a| a.filename.as_deref() == Some("a.pdf"))
        .unwrap();
    assert_eq!(pdf.content.as_deref(), Some(&b"%PDF"[..]));
    let png = message
        .attachments
        .iter()
        .find(|a| a.filename.as_deref() == Some("img.png"))
        .unwrap();
    assert_eq!(png.content_id.as_deref(), Some("img1@x"));
}

fn text_field(name: &str, value: &str) -> Field {
    Field {
        name: name.into(),
        filename: None,
        content_type: None,
        data: value.as_bytes().to_vec(),
    }
}

#[test]
fn unsigned_or_forged_postings_are_refused() {
    let request = form(&[
        ("timestamp", "1700000000"),
        ("token", "x"),
        ("signature", "00"),
    ]);
    assert!(matches!(
        handle(
            &request,
            &settings(),
            "support@example.com",
            NOW,
            &mut Memory::default()
        ),
        Err(PluginError::Unauthorized(_))
    ));
    let request = form(&[("body-plain", "hi")]);
    assert!(matches!(
        handle(
            &request,
            &settings(),
            "support@example.com",
            NOW,
            &mut Memory::default()
        ),
        Err(PluginError::Unauthorized(_))
    ));
    let broken = request_with_bad_multipart();
    assert!(matches!(
        handle(
            &broken,
            &settings(),
            "support@example.com",
            NOW,
            &mut Memory::default()
        ),
        Err(PluginError::InvalidRequest(_))
    ));
}

fn request_with_bad_multipart() -> HttpRequest {
    request(
        "multipart/form-data; boundary=zz",
        b"--zz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nno end".to_vec(),
    )
}

fn mail() -> Mail {
    let message = OutboundMessage::text(
        "m-1",
        "c-1",
        Identity::new("email", "ann@example.org"),
        "Thanks!",
    );
    let copies = Copies {
        cc: vec![],
        bcc: vec![Identity::new("email", "audit@example.com")],
    };
    Mail::compose(
        &message,
        &copies,
        Mailbox {
            address: "support@example.com",
            display_name: None,
        },
        NOW as i64,
    )
    .unwrap()
}

#[test]
fn sending_uploads_our_mime() {
    let request = send_request(&settings(), &mail());
    assert_eq!(
        request.url,
        "https://api.mailgun.net/v3/mg.example.com/messages.mime"
    );
    assert!(
        request
            .headers
            .contains(&("authorization".into(), "Basic YXBpOmtleS1hcGk=".into()))
    );
    let content_type = request.header_value("content-type");
    let fields =
        formdata::parse(&request.body, &formdata::boundary(&content_type).unwrap()).unwrap();
    assert_eq!(fields[0].text(), "ann@example.org,audit@example.com");
    let mime = fields[1].text();
    assert!(mime.contains("Message-ID: <m-1@example.com>"), "{mime}");
    assert!(!mime.contains("audit@example.com"));
}

trait HeaderValue {
    fn header_value(&self, name: &str) -> String;
}

impl HeaderValue for Request {
    fn header_value(&self, name: &str) -> String {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }
}

#[test]
fn answers_become_receipts_or_errors() {
    let answer = |status: u16, body: &str| Response {
        status,
        headers: Vec::new(),
        body: body.as_bytes().to_vec(),
    };
    let receipt = receipt(
        &answer(
            200,
            r#"{"id":"<m-1@example.com>","message":"Queued. Thank you."}"#,
        ),
        &mail(),
    )
    .unwrap();
    assert_eq!(receipt.provider_id, "m-1@example.com");
    assert!(matches!(
        receipt_of(&answer(401, "Forbidden")),
        Err(PluginError::Config(_))
    ));
    assert!(matches!(
        receipt_of(&answer(400, r#"{"message":"to parameter is not a valid address"}"#)),
        Err(PluginError::Permanent(m)) if m.contains("not a valid address")
    ));
    assert!(matches!(
        receipt_of(&answer(503, "")),
        Err(PluginError::Transient(_))
    ));
    assert!(matches!(
        receipt_of(&answer(429, "")),
        Err(PluginError::RateLimited(_))
    ));
}

fn receipt_of(response: &Response) -> Result<SendReceipt, PluginError> {
    receipt(response, &mail())
}

fn event(severity: &str, signature: &str) -> HttpRequest {
    let body = serde_json::json!({
        "signature": {"timestamp": NOW.to_string(), "token": "tok-ev", "signature": signature},
        "event-data": {
            "event": "failed",
            "severity": severity,
            "timestamp": 1_700_000_000.5,
            "recipient": "nobody@example.org",
            "message": {"headers": {"message-id": "<evt-1@example.com>"}},
            "delivery-status": {"code": 550, "description": "No such user here"}
        }
    });
    HttpRequest {
        method: "POST".into(),
        url: "https://sb.example.com/hooks/email/mailgun/events".into(),
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: serde_json::to_vec(&body).unwrap(),
    }
}

#[test]
fn a_permanent_failure_event_fails_the_reply_it_names() {
    let good = sign(&NOW.to_string(), "tok-ev");
    let batch = handle(
        &event("permanent", &good),
        &settings(),
        "support@example.com",
        NOW,
        &mut Memory::default(),
    )
    .unwrap();
    assert!(batch.envelopes.is_empty());
    match batch.events.as_slice() {
        [ChannelEvent::Receipt(r)] => {
            assert_eq!(r.provider_id, "evt-1@example.com");
            assert_eq!(r.status, DeliveryStatus::Failed);
            assert_eq!(r.error_code.as_deref(), Some("550"));
            assert_eq!(
                r.error_message.as_deref(),
                Some("nobody@example.org: No such user here")
            );
            assert_eq!(r.at_ms, Some(1_700_000_000_500));
        }
        other => panic!("{other:?}"),
    }
    // Temporary failures are Mailgun's to retry: answered, nothing recorded.
    let batch = handle(
        &event("temporary", &good),
        &settings(),
        "support@example.com",
        NOW,
        &mut Memory::default(),
    )
    .unwrap();
    assert!(batch.events.is_empty());
    // Forged or stale events are refused like postings.
    assert!(matches!(
        handle(
            &event("permanent", &"0".repeat(64)),
            &settings(),
            "support@example.com",
            NOW,
            &mut Memory::default(),
        ),
        Err(PluginError::Unauthorized(_))
    ));
    assert!(matches!(
        handle(
            &event("permanent", &good),
            &settings(),
            "support@example.com",
            NOW + 3600,
            &mut Memory::default(),
        ),
        Err(PluginError::Unauthorized(_))
    ));
}

#[test]
fn a_retried_posting_passes_and_a_replayed_signature_does_not() {
    let mut store = Memory::default();
    let timestamp = NOW.to_string();
    let signature = sign(&timestamp, "t-replay");
    let posting = |body: &str| {
        form(&[
            ("timestamp", &timestamp),
            ("token", "t-replay"),
            ("signature", &signature),
            ("sender", "ann@example.org"),
            ("subject", "Order"),
            ("body-plain", body),
        ])
    };
    let first = handle(
        &posting("Where is it?"),
        &settings(),
        "support@example.com",
        NOW,
        &mut store,
    )
    .unwrap();
    // Mailgun retrying after the host failed: the same token and content,
    // minutes later; read again to the same message.
    let retry = handle(
        &posting("Where is it?"),
        &settings(),
        "support@example.com",
        NOW + 300,
        &mut store,
    )
    .unwrap();
    assert_eq!(
        retry.envelopes[0].provider_id,
        first.envelopes[0].provider_id
    );
    // Someone who saw the posting puts other content under its signature.
    let forged = handle(
        &posting("Refund to IBAN XX00 0000"),
        &settings(),
        "support@example.com",
        NOW + 301,
        &mut store,
    );
    assert!(
        matches!(&forged, Err(PluginError::Unauthorized(m)) if m.contains("replayed")),
        "{forged:?}"
    );
    // Events are checked the same way.
    let good = sign(&NOW.to_string(), "tok-ev");
    handle(
        &event("permanent", &good),
        &settings(),
        "support@example.com",
        NOW,
        &mut store,
    )
    .unwrap();
    handle(
        &event("permanent", &good),
        &settings(),
        "support@example.com",
        NOW + 5,
        &mut store,
    )
    .unwrap();
    assert!(matches!(
        handle(
            &event("temporary", &good),
            &settings(),
            "support@example.com",
            NOW + 6,
            &mut store
        ),
        Err(PluginError::Unauthorized(_))
    ));
}
