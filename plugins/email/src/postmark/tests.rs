use base64::Engine as _;
use switchboard_sdk::mail::{Automatic, Copies};
use switchboard_sdk::{Identity, OutboundMessage};

use super::*;
use crate::outbound::Mailbox;

fn settings() -> Postmark {
    Postmark {
        server_token: "server-token".into(),
        webhook_user: "postmark".into(),
        webhook_password: "hook-secret".into(),
        api_base: "https://api.postmarkapp.com".into(),
    }
}

fn request(authorization: Option<&str>, body: &str) -> HttpRequest {
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    if let Some(value) = authorization {
        headers.push(("Authorization".to_owned(), value.to_owned()));
    }
    HttpRequest {
        method: "POST".into(),
        url: "https://sb.example.com/hooks/email/postmark".into(),
        headers,
        body: body.as_bytes().to_vec(),
    }
}

fn basic(credentials: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    )
}

#[test]
fn webhook_credentials_are_checked() {
    let good = basic("postmark:hook-secret");
    authorize(&request(Some(&good), "{}"), "postmark", "hook-secret").unwrap();
    for wrong in [
        None,
        Some(basic("postmark:wrong")),
        Some(basic("other:hook-secret")),
        Some(basic("postmark:hook-secret-longer")),
        Some("Bearer hook-secret".to_owned()),
        Some("Basic !!!".to_owned()),
    ] {
        assert!(
            matches!(
                authorize(&request(wrong.as_deref(), "{}"), "postmark", "hook-secret"),
                Err(PluginError::Unauthorized(_))
            ),
            "{wrong:?}"
        );
    }
}

const INBOUND: &str = r#"{
  "FromName": "Ann Example",
  "MessageStream": "inbound",
  "From": "ann@example.org",
  "FromFull": {"Email": "ann@example.org", "Name": "Ann Example", "MailboxHash": ""},
  "To": "support+tag7@example.com",
  "ToFull": [{"Email": "support+tag7@example.com", "Name": "Support", "MailboxHash": "tag7"}],
  "Cc": "carol@example.org",
  "CcFull": [{"Email": "carol@example.org", "Name": "", "MailboxHash": ""}],
  "OriginalRecipient": "support+tag7@example.com",
  "Subject": "Broken screen",
  "MessageID": "73e6d360-66eb-11e1-8e72-a8904824019b",
  "ReplyTo": "",
  "Date": "Tue, 14 Nov 2023 22:13:20 +0000",
  "TextBody": "The screen is broken.",
  "HtmlBody": "<p>The screen is broken.</p>",
  "StrippedTextReply": "",
  "Tag": "",
  "Headers": [
    {"Name": "X-Spam-Status", "Value": "No"},
    {"Name": "Message-ID", "Value": "<CAK1@mail.example.org>"},
    {"Name": "In-Reply-To", "Value": "<ours-9@example.com>"},
    {"Name": "MIME-Version", "Value": "1.0"}
  ],
  "Attachments": [
    {"Name": "photo.png", "Content": "iVBORw0K", "ContentType": "image/png", "ContentLength": 6, "ContentID": "photo@x"}
  ]
}"#;

#[test]
fn an_inbound_posting_becomes_a_message() {
    let batch = handle(
        &request(Some(&basic("postmark:hook-secret")), INBOUND),
        &settings(),
        "support@example.com",
    )
    .unwrap();
    let ChannelEvent::Message(message) = &batch.events[0] else {
        panic!("message expected")
    };
    assert_eq!(message.provider_id, "CAK1@mail.example.org");
    assert_eq!(message.sender, Identity::new("email", "ann@example.org"));
    assert_eq!(message.sender_name.as_deref(), Some("Ann Example"));
    assert_eq!(message.body.trim(), "The screen is broken.");
    assert_eq!(message.metadata.subject.as_deref(), Some("Broken screen"));
    assert_eq!(
        message.metadata.in_reply_to.as_deref(),
        Some("ours-9@example.com")
    );
    assert_eq!(message.metadata.thread_id.as_deref(), Some("tag7"));
    assert_eq!(message.sent_at_ms, Some(1_700_000_000_000));
    let photo = &message.attachments[0];
    assert_eq!(photo.filename.as_deref(), Some("photo.png"));
    assert_eq!(photo.content_id.as_deref(), Some("photo@x"));
    assert_eq!(photo.content.as_deref(), Some(&b"\x89PNG\r\n"[..]));
    let envelope = &batch.envelopes[0];
    assert_eq!(
        envelope.cc,
        vec![Identity::new("email", "carol@example.org")]
    );
    assert_eq!(envelope.automatic, None);
}

#[test]
fn postmarks_id_stands_in_for_a_missing_message_id_and_auto_replies_are_marked() {
    let posting = r#"{"From": "bot@example.org", "Subject": "Auto: away", "MessageID": "abc-1",
        "TextBody": "away", "Headers": [{"Name": "Auto-Submitted", "Value": "auto-replied"}]}"#;
    let batch = handle(
        &request(Some(&basic("postmark:hook-secret")), posting),
        &settings(),
        "support@example.com",
    )
    .unwrap();
    assert_eq!(
        batch.envelopes[0].provider_id,
        "abc-1@inbound.postmarkapp.com"
    );
    assert_eq!(batch.envelopes[0].automatic, Some(Automatic::AutoReply));
}

#[test]
fn bounces_fail_our_message() {
    let hard = r#"{"RecordType": "Bounce", "ID": 4323372036854775807, "Type": "HardBounce", "TypeCode": 1,
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483", "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.", "Email": "nobody@example.org",
        "BouncedAt": "2023-11-14T22:13:20Z", "Metadata": {"switchboard_message_id": "m-1@example.com"}}"#;
    let batch = handle(
        &request(Some(&basic("postmark:hook-secret")), hard),
        &settings(),
        "support@example.com",
    )
    .unwrap();
    let ChannelEvent::Receipt(receipt) = &batch.events[0] else {
        panic!("receipt expected")
    };
    assert_eq!(receipt.provider_id, "m-1@example.com");
    assert_eq!(receipt.status, DeliveryStatus::Failed);
    assert_eq!(receipt.error_code.as_deref(), Some("HardBounce (1)"));
    assert!(
        receipt
            .error_message
            .as_deref()
            .unwrap()
            .starts_with("nobody@example.org: The server")
    );
    assert_eq!(receipt.at_ms, Some(1_700_000_000_000));
    assert!(batch.envelopes.is_empty());

    let soft = hard.replace("HardBounce", "SoftBounce");
    let batch = handle(
        &request(Some(&basic("postmark:hook-secret")), &soft),
        &settings(),
        "support@example.com",
    )
    .unwrap();
    assert!(batch.events.is_empty());
    let other = r#"{"RecordType": "Open", "MessageID": "x"}"#;
    let batch = handle(
        &request(Some(&basic("postmark:hook-secret")), other),
        &settings(),
        "support@example.com",
    )
    .unwrap();
    assert!(batch.events.is_empty());
    assert_eq!(batch.response.unwrap().status, 200);
}

#[test]
fn malformed_postings_are_invalid() {
    assert!(matches!(
        handle(
            &request(Some(&basic("postmark:hook-secret")), "not json"),
            &settings(),
            "support@example.com"
        ),
        Err(PluginError::InvalidRequest(_))
    ));
    assert!(matches!(
        handle(&request(None, INBOUND), &settings(), "support@example.com"),
        Err(PluginError::Unauthorized(_))
    ));
}

fn mail() -> Mail {
    let mut message = OutboundMessage::text(
        "m-1",
        "c-1",
        Identity::new("email", "ann@example.org"),
        "Thanks!",
    );
    message.author = Some("Bob".into());
    message.metadata.in_reply_to = Some("CAK1@mail.example.org".into());
    message.metadata.references = vec!["CAK1@mail.example.org".into()];
    message.metadata.thread_id = Some("tag7".into());
    message.metadata.subject = Some("Re: Broken screen".into());
    let copies = Copies {
        cc: vec![Identity::new("email", "carol@example.org")],
        bcc: vec![Identity::new("email", "audit@example.com")],
    };
    let mut mail = Mail::compose(
        &message,
        &copies,
        Mailbox {
            address: "support@example.com",
            display_name: Some("Support"),
        },
        0,
    )
    .unwrap();
    mail.files.push(crate::outbound::File {
        filename: "a.txt".into(),
        content_type: "text/plain".into(),
        bytes: b"hi".to_vec(),
    });
    mail
}

#[test]
fn sending_posts_postmark_json() {
    let request = send_request(&settings(), &mail());
    assert_eq!(request.url, "https://api.postmarkapp.com/email");
    assert!(
        request
            .headers
            .contains(&("x-postmark-server-token".into(), "server-token".into()))
    );
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["From"], "\"Bob\" <support@example.com>");
    assert_eq!(body["To"], "ann@example.org");
    assert_eq!(body["Cc"], "carol@example.org");
    assert_eq!(body["Bcc"], "audit@example.com");
    assert_eq!(body["ReplyTo"], "support+tag7@example.com");
    assert_eq!(body["Subject"], "Re: Broken screen");
    assert_eq!(body["TextBody"], "Thanks!");
    assert!(
        body["HtmlBody"]
            .as_str()
            .unwrap()
            .contains("<p>Thanks!</p>")
    );
    assert_eq!(body["Metadata"][MESSAGE_ID_METADATA], "m-1@example.com");
    let headers = body["Headers"].as_array().unwrap();
    assert!(headers.contains(&json!({"Name": "Message-ID", "Value": "<m-1@example.com>"})));
    assert!(headers.contains(&json!({"Name": "In-Reply-To", "Value": "<CAK1@mail.example.org>"})));
    assert_eq!(body["Attachments"][0]["Content"], "aGk=");
}

#[test]
fn answers_become_receipts_or_errors() {
    let answer = |status: u16, body: &str| Response {
        status,
        headers: Vec::new(),
        body: body.as_bytes().to_vec(),
    };
    let ok = receipt(
        &answer(200, r#"{"To":"ann@example.org","SubmittedAt":"x","MessageID":"b7bc2f4a","ErrorCode":0,"Message":"OK"}"#),
        &mail(),
    )
    .unwrap();
    assert_eq!(ok.provider_id, "m-1@example.com");
    let error = |status, body| receipt(&answer(status, body), &mail()).unwrap_err();
    assert!(matches!(
        error(
            401,
            r#"{"ErrorCode":10,"Message":"Bad or missing API token"}"#
        ),
        PluginError::Config(_)
    ));
    assert!(matches!(
        error(
            422,
            r#"{"ErrorCode":400,"Message":"Sender signature not defined"}"#
        ),
        PluginError::Config(_)
    ));
    assert!(
        matches!(error(422, r#"{"ErrorCode":406,"Message":"Inactive recipient"}"#), PluginError::Permanent(m) if m.contains("406"))
    );
    assert!(matches!(error(500, "oops"), PluginError::Transient(_)));
    assert!(matches!(error(429, "{}"), PluginError::RateLimited(_)));
}
