use switchboard_sdk::DeliveryStatus;
use switchboard_sdk::mail::Automatic;

use super::*;

const OURS: &str = "support@example.com";

fn context() -> Context<'static> {
    Context {
        address: OURS,
        large_parts: LargeParts::ByReference {
            prefix: "imap:7/42/".into(),
        },
    }
}

fn read(raw: &str) -> Parsed {
    parse(raw.as_bytes(), &context(), Vec::new())
}

const PLAIN: &str = "Return-Path: <ann@example.org>\r
Delivered-To: support@example.com\r
From: Ann Example <ann@example.org>\r
Reply-To: \"Ann (home)\" <ann.home@example.net>\r
To: Example Support <support+3f2a9c@example.com>, bob@example.com\r
Cc: carol@example.org\r
Subject: =?utf-8?q?Order_42_=E2=80=93_late?=\r
Date: Tue, 14 Nov 2023 22:13:20 +0000\r
Message-ID: <CAF123@mail.example.org>\r
In-Reply-To: <0b9c6a1e@example.com>\r
References: <root@example.com>\r
 <0b9c6a1e@example.com>\r
MIME-Version: 1.0\r
Content-Type: text/plain; charset=utf-8\r
Content-Transfer-Encoding: quoted-printable\r
\r
Hello, my order is late =E2=80=93 please help.\r
";

#[test]
fn a_customer_mail_becomes_a_message_with_its_envelope() {
    let parsed = read(PLAIN);
    let m = &parsed.message;
    assert_eq!(m.provider_id, "CAF123@mail.example.org");
    assert_eq!(m.sender, Identity::new(EMAIL, "ann.home@example.net"));
    assert_eq!(m.sender_name.as_deref(), Some("Ann (home)"));
    assert_eq!(m.recipient, Some(Identity::new(EMAIL, OURS)));
    assert_eq!(m.body.trim_end(), "Hello, my order is late – please help.");
    assert_eq!(m.html_body, None);
    assert_eq!(m.sent_at_ms, Some(1_700_000_000_000));
    assert_eq!(m.metadata.subject.as_deref(), Some("Order 42 – late"));
    assert_eq!(
        m.metadata.in_reply_to.as_deref(),
        Some("0b9c6a1e@example.com")
    );
    assert_eq!(
        m.metadata.references,
        vec!["root@example.com", "0b9c6a1e@example.com"]
    );
    assert_eq!(m.metadata.thread_id.as_deref(), Some("3f2a9c"));
    assert!(m.attachments.is_empty());

    let e = &parsed.envelope;
    assert_eq!(e.provider_id, m.provider_id);
    assert_eq!(
        e.to,
        vec![
            Identity::new(EMAIL, "support+3f2a9c@example.com"),
            Identity::new(EMAIL, "bob@example.com")
        ]
    );
    assert_eq!(e.cc, vec![Identity::new(EMAIL, "carol@example.org")]);
    assert_eq!(e.automatic, None);
    assert_eq!(e.problem, None);
    assert_eq!(parsed.receipt, None);
}

#[test]
fn from_is_the_sender_without_reply_to_and_its_name_is_kept() {
    let parsed = read(
        "From: \"Ann\" <ann@example.org>\r\nReply-To: <ann@example.org>\r\nTo: support@example.com\r\nMessage-ID: <x@y>\r\n\r\nhi\r\n",
    );
    assert_eq!(parsed.message.sender.value, "ann@example.org");
    assert_eq!(parsed.message.sender_name.as_deref(), Some("Ann"));
    let parsed = read("From: bob@example.org\r\nMessage-ID: <x@y>\r\n\r\nhi\r\n");
    assert_eq!(parsed.message.sender.value, "bob@example.org");
    assert_eq!(parsed.message.sender_name, None);
}

#[test]
fn the_tag_is_also_found_where_the_server_recorded_delivery() {
    let parsed = read(
        "From: ann@example.org\r\nTo: undisclosed-recipients:;\r\nDelivered-To: support+t0k3n@example.com\r\nMessage-ID: <a@b>\r\n\r\nhi\r\n",
    );
    assert_eq!(parsed.message.metadata.thread_id.as_deref(), Some("t0k3n"));
    let parsed = read(
        "From: ann@example.org\r\nTo: sales+t0k3n@example.com\r\nMessage-ID: <a@b>\r\n\r\nhi\r\n",
    );
    assert_eq!(parsed.message.metadata.thread_id, None);
}

#[test]
fn mail_without_message_id_gets_a_stable_hash() {
    let raw = "From: ann@example.org\r\nSubject: hi\r\n\r\nno id\r\n";
    let first = read(raw);
    let second = read(raw);
    assert!(first.message.provider_id.starts_with("sha256:"));
    assert!(first.message.provider_id.ends_with("@switchboard"));
    assert_eq!(first.message.provider_id, second.message.provider_id);
    assert_ne!(
        first.message.provider_id,
        read("From: ann@example.org\r\nSubject: hi\r\n\r\nanother\r\n")
            .message
            .provider_id
    );
}

#[test]
fn html_only_mail_gets_a_text_body() {
    let parsed = read(
        "From: ann@example.org\r\nMessage-ID: <h@x>\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>Hello <b>there</b></p><p>Second&nbsp;line &amp; more</p></body></html>\r\n",
    );
    assert!(
        parsed.message.body.contains("Hello there"),
        "{}",
        parsed.message.body
    );
    assert!(
        parsed.message.body.contains("& more"),
        "{}",
        parsed.message.body
    );
    assert!(
        parsed
            .message
            .html_body
            .as_deref()
            .unwrap()
            .contains("<b>there</b>")
    );
}

fn with_attachments(big: usize) -> String {
    use base64::Engine as _;
    let b64 = |bytes: &[u8]| {
        let text = base64::engine::general_purpose::STANDARD.encode(bytes);
        text.as_bytes()
            .chunks(76)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join("\r\n")
    };
    format!(
        "From: ann@example.org\r
Message-ID: <att@example.org>\r
MIME-Version: 1.0\r
Content-Type: multipart/mixed; boundary=\"outer\"\r
\r
--outer\r
Content-Type: multipart/related; boundary=\"rel\"\r
\r
--rel\r
Content-Type: multipart/alternative; boundary=\"alt\"\r
\r
--alt\r
Content-Type: text/plain; charset=us-ascii\r
\r
See the picture.\r
--alt\r
Content-Type: text/html; charset=us-ascii\r
\r
<p>See <img src=\"cid:logo@x\"></p>\r
--alt--\r
--rel\r
Content-Type: image/png; name=\"logo.png\"\r
Content-ID: <logo@x>\r
Content-Disposition: inline; filename=\"logo.png\"\r
Content-Transfer-Encoding: base64\r
\r
{}\r
--rel--\r
--outer\r
Content-Type: application/pdf; name=\"big.pdf\"\r
Content-Disposition: attachment; filename=\"big.pdf\"\r
Content-Transfer-Encoding: base64\r
\r
{}\r
--outer--\r
",
        b64(b"\x89PNG fake"),
        b64(&vec![7u8; big])
    )
}

#[test]
fn small_parts_travel_inline_and_large_ones_by_reference() {
    let parsed = read(&with_attachments(300 * 1024));
    let m = &parsed.message;
    assert_eq!(m.body.trim(), "See the picture.");
    assert!(m.html_body.as_deref().unwrap().contains("cid:logo@x"));
    assert_eq!(m.attachments.len(), 2, "{:?}", m.attachments);
    let logo = &m.attachments[0];
    assert_eq!(logo.filename.as_deref(), Some("logo.png"));
    assert_eq!(logo.content_type.as_deref(), Some("image/png"));
    assert_eq!(logo.content_id.as_deref(), Some("logo@x"));
    assert_eq!(logo.content.as_deref(), Some(&b"\x89PNG fake"[..]));
    assert_eq!(logo.url, "imap:7/42/1.2");
    let big = &m.attachments[1];
    assert_eq!(big.filename.as_deref(), Some("big.pdf"));
    assert_eq!(big.size, Some(300 * 1024));
    assert_eq!(big.content, None);
    assert_eq!(big.url, "imap:7/42/2");
    assert_eq!(parsed.envelope.problem, None);
}

#[test]
fn webhooks_leave_out_large_parts_with_a_note() {
    let raw = with_attachments(300 * 1024);
    let parsed = parse(
        raw.as_bytes(),
        &Context {
            address: OURS,
            large_parts: LargeParts::Drop,
        },
        Vec::new(),
    );
    assert_eq!(parsed.message.attachments.len(), 1);
    assert_eq!(parsed.message.attachments[0].url, "part:1.2");
    let problem = parsed.envelope.problem.unwrap();
    assert!(problem.contains("big.pdf (300 KB)"), "{problem}");
}

#[test]
fn imap_part_paths_follow_the_mime_tree() {
    let raw = with_attachments(10);
    let message = parser().parse(raw.as_bytes()).unwrap();
    let paths: Vec<String> = part_paths(&message).into_iter().flatten().collect();
    assert_eq!(paths, vec!["1", "1.1", "1.1.1", "1.1.2", "1.2", "2"]);
    let single = parser()
        .parse(b"From: a@b.c\r\nContent-Type: application/pdf\r\n\r\nxx")
        .unwrap();
    assert_eq!(part_paths(&single), vec![Some("1".to_owned())]);
}

const POSTFIX_BOUNCE: &str = "Return-Path: <>\r
From: MAILER-DAEMON@mx.example.com (Mail Delivery System)\r
To: support@example.com\r
Subject: Undelivered Mail Returned to Sender\r
Date: Tue, 14 Nov 2023 22:15:00 +0000\r
Message-Id: <20231114221500.ABC@mx.example.com>\r
Auto-Submitted: auto-replied\r
MIME-Version: 1.0\r
Content-Type: multipart/report; report-type=delivery-status;\r
\tboundary=\"B1\"\r
\r
--B1\r
Content-Description: Notification\r
Content-Type: text/plain; charset=us-ascii\r
\r
I'm sorry to have to inform you that your message could not\r
be delivered to one or more recipients.\r
\r
<nobody@example.org>: host mx.example.org said: 550 5.1.1 <nobody@example.org>:\r
    Recipient address rejected: User unknown\r
--B1\r
Content-Description: Delivery report\r
Content-Type: message/delivery-status\r
\r
Reporting-MTA: dns; mx.example.com\r
X-Postfix-Queue-ID: ABC\r
Arrival-Date: Tue, 14 Nov 2023 22:14:58 +0000\r
\r
Final-Recipient: rfc822; nobody@example.org\r
Original-Recipient: rfc822;nobody@example.org\r
Action: failed\r
Status: 5.1.1\r
Remote-MTA: dns; mx.example.org\r
Diagnostic-Code: smtp; 550 5.1.1 <nobody@example.org>: Recipient address\r
    rejected: User unknown\r
\r
--B1\r
Content-Description: Undelivered Message\r
Content-Type: message/rfc822\r
\r
From: \"Bob\" <support@example.com>\r
To: nobody@example.org\r
Subject: Re: hello\r
Message-ID: <0b9c6a1e-8f3e@example.com>\r
\r
The reply.\r
--B1--\r
";

#[test]
fn a_bounce_fails_the_message_it_returns() {
    let parsed = read(POSTFIX_BOUNCE);
    assert_eq!(parsed.envelope.automatic, Some(Automatic::Bounce));
    let receipt = parsed.receipt.expect("receipt");
    assert_eq!(receipt.provider_id, "0b9c6a1e-8f3e@example.com");
    assert_eq!(receipt.status, DeliveryStatus::Failed);
    assert_eq!(receipt.error_code.as_deref(), Some("5.1.1"));
    let message = receipt.error_message.unwrap();
    assert!(
        message.starts_with("nobody@example.org: 550 5.1.1"),
        "{message}"
    );
    assert!(message.contains("User unknown"), "{message}");
    assert_eq!(receipt.at_ms, Some(1_700_000_100_000));
    // The bounce is on the timeline too, from the mailer daemon.
    assert_eq!(parsed.message.sender.value, "MAILER-DAEMON@mx.example.com");
}

#[test]
fn a_bounce_with_returned_headers_only() {
    let raw = POSTFIX_BOUNCE
        .replace(
            "Content-Type: message/rfc822",
            "Content-Type: text/rfc822-headers",
        )
        .replace("\r\nThe reply.\r\n", "\r\n");
    let receipt = read(&raw).receipt.expect("receipt");
    assert_eq!(receipt.provider_id, "0b9c6a1e-8f3e@example.com");
}

#[test]
fn a_delay_warning_fails_nothing() {
    let raw = POSTFIX_BOUNCE
        .replace("Action: failed", "Action: delayed")
        .replace("Status: 5.1.1", "Status: 4.4.1");
    let parsed = read(&raw);
    assert_eq!(parsed.envelope.automatic, Some(Automatic::Bounce));
    assert_eq!(parsed.receipt, None);
}

#[test]
fn an_old_style_bounce_that_quotes_the_original() {
    let parsed = read(
        "From: MAILER-DAEMON@mail.example.net\r\nTo: support@example.com\r\nSubject: failure notice\r\nMessage-ID: <q@mail.example.net>\r\n\r\nHi. This is the qmail-send program. I'm afraid I wasn't able to deliver your message.\r\n<nobody@example.net>:\r\nSorry, no mailbox here by that name.\r\n\r\n--- Below this line is a copy of the message.\r\n\r\nFrom: support@example.com\r\nMessage-ID: <orig-7@example.com>\r\nSubject: Re: hi\r\n",
    );
    let receipt = parsed.receipt.expect("receipt");
    assert_eq!(receipt.provider_id, "orig-7@example.com");
    assert_eq!(receipt.error_code, None);
    assert!(receipt.error_message.unwrap().contains("qmail-send"));
}

#[test]
fn problems_of_the_caller_are_kept() {
    let parsed = parse(
        b"From: a@example.org\r\nMessage-ID: <p@q>\r\n\r\nhi",
        &context(),
        vec!["message is 52 MB, over the 25 MB limit: attachments not copied".into()],
    );
    assert_eq!(
        parsed.envelope.problem.as_deref(),
        Some("message is 52 MB, over the 25 MB limit: attachments not copied")
    );
}

#[test]
fn sizes_read_like_mail_limits() {
    assert_eq!(human_size(52 * 1024 * 1024), "52 MB");
    assert_eq!(human_size(26_214_400), "25 MB");
    assert_eq!(human_size(300 * 1024), "300 KB");
    assert_eq!(human_size(12), "12 bytes");
}

// Hostile input: nothing panics, what can be read is kept.

#[test]
fn broken_boundaries() {
    let parsed = read(
        "From: a@example.org\r\nMessage-ID: <b@x>\r\nContent-Type: multipart/mixed; boundary=\"never\"\r\n\r\n--wrong\r\nContent-Type: text/plain\r\n\r\ntext without its boundary\r\n--never\r\nContent-Type: text/plain\r\n\r\nunterminated",
    );
    assert_eq!(parsed.message.provider_id, "b@x");
    let parsed = read(
        "From: a@example.org\r\nContent-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n\r\n--\r\n",
    );
    assert!(parsed.message.provider_id.starts_with("sha256:"));
    // A boundary that never closes: the text is still the message's body.
    let parsed = read(
        "From: a@example.org\r\nMessage-ID: <c@x>\r\nContent-Type: multipart/mixed; boundary=\"never-closed\"\r\n\r\n--never-closed\r\nContent-Type: text/plain\r\n\r\nstill readable\r\n--not-the-boundary\r\n",
    );
    assert!(
        parsed.message.body.contains("still readable"),
        "{:?}",
        parsed.message.body
    );
    assert!(parsed.message.attachments.is_empty());
    let parsed = read(
        "From: a@example.org\r\nContent-Type: multipart/alternative\r\n\r\nno boundary at all",
    );
    assert_eq!(parsed.message.sender.value, "a@example.org");
}

#[test]
fn deep_nesting() {
    let depth = 10_000;
    let mut raw = String::from("From: a@example.org\r\nMessage-ID: <deep@x>\r\n");
    for i in 0..depth {
        raw.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n"
        ));
    }
    raw.push_str("Content-Type: text/plain\r\n\r\ndeep text\r\n");
    for i in (0..depth).rev() {
        raw.push_str(&format!("--b{i}--\r\n"));
    }
    let parsed = read(&raw);
    assert_eq!(parsed.message.provider_id, "deep@x");

    let mut nested = String::from("deep mail\r\n");
    for i in 0..200 {
        nested = format!(
            "From: n{i}@example.org\r\nMessage-ID: <n{i}@x>\r\nContent-Type: message/rfc822\r\n\r\n{nested}"
        );
    }
    let _ = read(&nested);
}

#[test]
fn bad_charsets() {
    let parsed = parse(
        b"From: a@example.org\r\nMessage-ID: <c@x>\r\nSubject: =?x-unknown?B?////?=\r\nContent-Type: text/plain; charset=x-made-up\r\n\r\nbytes \xff\xfe here\r\n",
        &context(),
        Vec::new(),
    );
    assert!(parsed.message.body.contains("bytes"));
    let parsed = parse(
        b"From: a@example.org\r\nMessage-ID: <c2@x>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\ninvalid \xff\xfe\xc3 utf-8\r\n",
        &context(),
        Vec::new(),
    );
    assert!(parsed.message.body.contains("invalid"));
    let parsed = read(
        "From: a@example.org\r\nMessage-ID: <c3@x>\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!\r\n",
    );
    assert_eq!(parsed.message.provider_id, "c3@x");
}

#[test]
fn ten_thousand_headers() {
    let mut raw = String::from("From: a@example.org\r\nMessage-ID: <many@x>\r\n");
    for i in 0..10_000 {
        raw.push_str(&format!("X-Filler-{i}: value {i}\r\n"));
    }
    raw.push_str("Precedence: bulk\r\n\r\nbody\r\n");
    let parsed = read(&raw);
    assert_eq!(parsed.message.provider_id, "many@x");
    assert_eq!(parsed.envelope.automatic, Some(Automatic::Bulk));
}

#[test]
fn garbage_and_empty_input() {
    for raw in [
        &b""[..],
        b"\r\n\r\n",
        b"\x00\x01\x02\xff\xfe",
        b"no colon anywhere",
        b"From:\r\n\r\n",
        b"From: <>\r\nReply-To: <>\r\n\r\n",
    ] {
        let parsed = parse(raw, &context(), Vec::new());
        assert!(!parsed.message.provider_id.is_empty());
        assert!(!parsed.message.sender.value.is_empty());
    }
    let parsed = parse(b"", &context(), Vec::new());
    assert!(parsed.envelope.problem.is_some());
}

#[test]
fn long_bodies_are_cut_with_a_note() {
    let raw = format!(
        "From: a@example.org\r\nMessage-ID: <long@x>\r\n\r\n{}",
        "é".repeat(BODY_TEXT_MAX)
    );
    let parsed = read(&raw);
    assert!(parsed.message.body.len() <= BODY_TEXT_MAX + 4);
    assert!(parsed.envelope.problem.unwrap().contains("cut"));
}

/// A mail to tens of thousands of addresses, in a thread of hundreds, with a
/// huge subject and name: the lists are cut (with a problem that says so) and the
/// texts capped, so that the mail still fits a poll's output; the thread's root
/// and latest references are kept.
#[test]
fn huge_headers_are_cut_to_fit_a_poll() {
    let cc: Vec<String> = (0..40_000)
        .map(|i| format!("c{i:05}@example.net"))
        .collect();
    let refs: Vec<String> = (0..300).map(|i| format!("<r{i}@example.org>")).collect();
    let subject = "é".repeat(30_000);
    let name = "Ann".repeat(1000);
    let raw = format!(
        "From: {name} <ann@example.org>\r\nTo: support@example.com\r\nCc: {}\r\n\
         References: {}\r\nSubject: {subject}\r\nMessage-ID: <big@example.org>\r\n\r\nhello\r\n",
        cc.join(",\r\n "),
        refs.join("\r\n ")
    );
    let parsed = read(&raw);
    assert_eq!(parsed.envelope.cc.len(), MAX_RECIPIENTS);
    assert_eq!(parsed.envelope.cc[0].value, "c00000@example.net");
    assert_eq!(parsed.envelope.to.len(), 1);
    let problem = parsed.envelope.problem.as_deref().unwrap_or_default();
    assert!(
        problem.contains("the Cc list has 40000 addresses: the first 500 are kept"),
        "{problem}"
    );
    let kept = &parsed.message.metadata.references;
    assert_eq!(kept.len(), MAX_REFERENCES);
    assert_eq!(kept[0], "r0@example.org");
    assert_eq!(kept[1], "r201@example.org");
    assert_eq!(kept[MAX_REFERENCES - 1], "r299@example.org");
    assert_eq!(parsed.message.body.trim(), "hello");
    // A 60 KB subject and a 3 KB name are cut on a character boundary.
    let kept = parsed
        .message
        .metadata
        .subject
        .as_deref()
        .unwrap_or_default();
    assert_eq!(kept, "é".repeat(MAX_SUBJECT / 2));
    assert_eq!(
        parsed.message.sender_name.as_deref().map(str::len),
        Some(MAX_NAME)
    );
    assert!(parsed.output_size() < 64 * 1024, "{}", parsed.output_size());
}
