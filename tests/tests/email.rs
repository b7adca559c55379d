//! E-mail end to end against a real mail system: the `switchboard` binary with
//! the `email` connector polling a real Dovecot over IMAP and sending through a
//! real Postfix (submission with authentication), both started per test with
//! their own certificate authority (`tests/src/mail.rs`), which the host trusts
//! through `SWITCHBOARD_EXTRA_CA_FILE`.
//!
//! - mail delivered to the mailbox becomes a contact (named from `From`), a
//!   conversation and a timeline message with its subject, HTML and files;
//! - an agent's reply arrives in the customer's mailbox with `Message-ID`,
//!   `In-Reply-To`, `References`, `Re:` subject, the agent's name with the
//!   mailbox address, a plus-addressed `Reply-To` and the `Cc` the agent chose;
//! - the customer's answer from another client with a changed subject, and an
//!   answer that carries only the reply address, join the same conversation;
//! - a bounce marks the reply failed and makes no work; an auto-reply is kept
//!   but makes no work and is never answered;
//! - the IMAP server restarted while mail keeps arriving: nothing lost, nothing
//!   twice; hostile mail is recorded with what could be read and the mailbox
//!   keeps flowing;
//! - mail too large to read whole (a 20 MiB message, a 50 MB one) keeps its
//!   attachment, copied into the blob store byte for byte.

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use switchboard_e2e::mail::{DOMAIN, MailServer, header};
use switchboard_e2e::*;

const SUPPORT: &str = "support@example.test";
const SUPPORT_PASSWORD: &str = "support-mailbox-pw";
const CUSTOMER: &str = "customer@example.test";
const CUSTOMER_PASSWORD: &str = "customer-mailbox-pw";
const BOSS: &str = "boss@example.test";
const BOSS_PASSWORD: &str = "boss-mailbox-pw";

const BILLING: &str = "billing@example.test";
const BILLING_PASSWORD: &str = "billing-mailbox-pw";

/// The mail system, and the host trusting its CA, with the connector
/// installed as `email` for the support mailbox (TLS to both servers, polled
/// every 2 s).
async fn start() -> (MailServer, Server) {
    start_with(None).await
}

/// [`start`], with `routing-default` installed with these `channel_queues`
/// when given.
async fn start_with(channel_queues: Option<&str>) -> (MailServer, Server) {
    let mail = MailServer::start(&[
        (SUPPORT, SUPPORT_PASSWORD),
        (BILLING, BILLING_PASSWORD),
        (CUSTOMER, CUSTOMER_PASSWORD),
        (BOSS, BOSS_PASSWORD),
    ])
    .await;
    let twilio = FakeTwilio::start().await;
    let ca = mail.ca_pem_path();
    let options = Options::env(&[
        ("SWITCHBOARD_EXTRA_CA_FILE", ca.to_str().unwrap()),
        ("SWITCHBOARD_OUTBOX_RETRY_BASE_MS", "200"),
        // Files up to 64 MiB (25 MiB by default), so the 50 MB attachment
        // of the hostile mail is kept.
        ("SWITCHBOARD_ATTACHMENT_MAX_BYTES", "67108864"),
    ]);
    let data = provision(&options, &twilio).await;
    if let Some(queues) = channel_queues {
        let policy = plugin_dist().join("routing-default");
        cli(
            data.path(),
            &options,
            &[
                "plugin",
                "install",
                policy.to_str().unwrap(),
                "--config",
                &format!("channel_queues={queues}"),
            ],
        )
        .await;
    }
    let server = Server::start_in(std::sync::Arc::new(data), options).await;
    install_mailbox(&server, &mail, "email", SUPPORT, SUPPORT_PASSWORD).await;
    (mail, server)
}

/// Installs the connector under `id` for one mailbox.
async fn install_mailbox(
    server: &Server,
    mail: &MailServer,
    id: &str,
    address: &str,
    password: &str,
) {
    let (status, body) = server
        .post(
            "/api/v1/plugins",
            json!({
                "path": plugin_dist().join("email"),
                "id": id,
                "config": {
                    "address": address,
                    "display_name": "Example Support",
                    "imap_host": mail.host(),
                    "imap_port": mail.imap_port().to_string(),
                    "smtp_host": mail.host(),
                    "smtp_port": mail.smtps_port().to_string(),
                    "security": "tls",
                    "username": address,
                    "password": password,
                    "poll_seconds": "2",
                },
            }),
        )
        .await;
    assert_eq!(status, 201, "installing the e-mail connector: {body}");
    assert!(
        !body.to_string().contains(password),
        "the mailbox password never comes back: {body}"
    );
}

fn customer_mail(message_id: &str, subject: &str, extra_headers: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Ann Customer <{CUSTOMER}>\r\nTo: Example Support <{SUPPORT}>\r\n\
         Subject: {subject}\r\nMessage-ID: <{message_id}>\r\n\
         Date: Mon, 07 Dec 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\n{extra_headers}\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// A first message with text, HTML, an inline image and a PDF.
fn first_mail() -> Vec<u8> {
    let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
    let pdf = "JVBERi0xLjQKJcOkw7zDtsOfCjEgMCBvYmoKPDwvVHlwZS9DYXRhbG9nPj4KZW5kb2JqCg==";
    format!(
        "From: Ann Customer <{CUSTOMER}>\r\nTo: {SUPPORT}\r\nCc: {BOSS}\r\n\
         Subject: Order 42 is late\r\nMessage-ID: <order42.first@{DOMAIN}>\r\n\
         Date: Mon, 07 Dec 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n\
         --outer\r\nContent-Type: multipart/related; boundary=\"rel\"\r\n\r\n\
         --rel\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n\
         --alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Hello, my order 42 has not arrived.\r\n\r\n\
         --alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
         <p>Hello, my order <b>42</b> has not arrived.</p><img src=\"cid:logo@ann\">\
         <script>alert(1)</script>\r\n\
         --alt--\r\n\
         --rel\r\nContent-Type: image/png\r\nContent-ID: <logo@ann>\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{png}\r\n--rel--\r\n\
         --outer\r\nContent-Type: application/pdf; name=\"receipt.pdf\"\r\n\
         Content-Disposition: attachment; filename=\"receipt.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{pdf}\r\n--outer--\r\n"
    )
    .into_bytes()
}

/// The first file of the message with this Message-ID once it is copied
/// into the blob store (or failed), and its bytes.
async fn stored_file(
    server: &Server,
    mail: &MailServer,
    sender: &str,
    message_id: &str,
) -> (Value, Vec<u8>) {
    let contact = server.contact_by(&format!("email:{sender}")).await.unwrap();
    let contact_id = contact["id"].as_str().unwrap().to_string();
    let file = server
        .eventually(Duration::from_secs(120), || async {
            let events = timeline(server, &contact_id).await;
            let event = events
                .into_iter()
                .find(|e| e["provider_id"].as_str() == Some(message_id))?;
            let file = event["attachments"][0].clone();
            (file["status"] != "pending").then_some(file)
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "the file of {message_id} was never copied\nserver: {}\nmail: {}",
                server.log(),
                mail.logs()
            )
        });
    assert_eq!(file["status"], "stored", "{file}\n{}", server.log());
    let url = file["url"].as_str().unwrap();
    let response = server
        .http
        .get(format!("{}{url}", server.base))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{file}");
    (file, response.bytes().await.unwrap().to_vec())
}

/// `len` bytes that do not repeat or compress: a xorshift stream.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// Base64 in 76-character lines, as mail clients write attachments.
fn base64_lines(bytes: &[u8]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = String::with_capacity(encoded.len() / 76 * 78 + 80);
    for line in encoded.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push_str("\r\n");
    }
    out
}

async fn timeline(server: &Server, contact_id: &str) -> Vec<Value> {
    let (status, v) = server
        .get(&format!("/api/v1/contacts/{contact_id}/timeline"))
        .await;
    assert_eq!(status, 200, "{v}");
    v["events"].as_array().unwrap().clone()
}

/// The inbound message with this Message-ID, once it is on the timeline.
async fn arrived(server: &Server, mail: &MailServer, sender: &str, message_id: &str) -> Value {
    server
        .eventually(Duration::from_secs(30), || async {
            let contact = server.contact_by(&format!("email:{sender}")).await?;
            let events = timeline(server, contact["id"].as_str()?).await;
            events
                .into_iter()
                .find(|e| e["provider_id"].as_str() == Some(message_id))
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "{message_id} never reached the timeline\nserver: {}\nmail: {}",
                server.log(),
                mail.logs()
            )
        })
}

/// E-mail tasks waiting for an agent (nobody is available in these tests).
async fn waiting_email_tasks(server: &Server) -> usize {
    let (status, board) = server.get("/api/v1/wallboard").await;
    assert_eq!(status, 200, "{board}");
    board["channels"]
        .as_array()
        .unwrap_or_else(|| panic!("{board}"))
        .iter()
        .find(|c| c["channel"] == "email")
        .and_then(|c| c["waiting"].as_u64())
        .unwrap_or(0) as usize
}

async fn reply(server: &Server, conversation: &str, body: Value) -> Value {
    let (status, v) = server
        .post(
            &format!("/api/v1/conversations/{conversation}/messages"),
            body,
        )
        .await;
    assert_eq!(status, 202, "{v}");
    v["event"].clone()
}

/// The delivery status of a timeline event, once it is `want`.
async fn delivery_becomes(server: &Server, contact_id: &str, event_id: &str, want: &str) -> Value {
    let found = server
        .eventually(Duration::from_secs(40), || async {
            timeline(server, contact_id)
                .await
                .into_iter()
                .find(|e| e["id"] == event_id && e["delivery_status"] == want)
        })
        .await;
    match found {
        Some(event) => event,
        None => {
            let events = timeline(server, contact_id).await;
            panic!(
                "event {event_id} never became {want}: {events:#?}\n{}",
                server.log()
            )
        }
    }
}

#[tokio::test]
async fn an_email_conversation_threads_both_ways_through_real_imap_and_smtp() {
    let (mail, server) = start().await;

    // 1. The customer writes; the mail is polled into the timeline.
    mail.deliver(&first_mail(), SUPPORT).await;
    let first = arrived(&server, &mail, CUSTOMER, &format!("order42.first@{DOMAIN}")).await;
    let contact = server
        .contact_by(&format!("email:{CUSTOMER}"))
        .await
        .unwrap();
    let contact_id = contact["id"].as_str().unwrap().to_string();
    assert_eq!(contact["display_name"], "Ann Customer", "{contact}");
    assert_eq!(first["channel"], "email");
    assert!(
        first["body"]
            .as_str()
            .unwrap()
            .contains("order 42 has not arrived")
    );
    let metadata = &first["data"]["metadata"];
    assert_eq!(metadata["subject"], "Order 42 is late", "{first}");
    assert!(
        metadata["html_body"]
            .as_str()
            .unwrap()
            .contains("<b>42</b>")
    );
    assert_eq!(metadata["cc"], json!([BOSS]), "{metadata}");
    let files = first["attachments"].as_array().unwrap();
    assert_eq!(files.len(), 2, "the inline image and the PDF: {first}");
    let conversation = first["conversation_id"].as_str().unwrap().to_string();
    // The desk's view of it: the inline image is the one the HTML shows by its
    // Content-ID, the script is gone.
    let (_, conv) = server
        .get(&format!("/api/v1/conversations/{conversation}"))
        .await;
    let shown = conv["timeline"]
        .as_array()
        .unwrap_or_else(|| panic!("{conv}"))
        .iter()
        .find(|e| e["id"] == first["id"])
        .cloned()
        .unwrap();
    let view = &shown["email"];
    assert_eq!(
        view["inline_attachments"].as_array().map(Vec::len),
        Some(1),
        "{view}"
    );
    assert!(
        !view["html"].as_str().unwrap().contains("<script"),
        "{view}"
    );
    assert_eq!(
        waiting_email_tasks(&server).await,
        1,
        "one task for the new case"
    );

    // 2. The agent answers with a copy to the boss; the customer gets it threaded.
    let sent = reply(
        &server,
        &conversation,
        json!({"body": "We are on it.", "email": {"cc": [BOSS]}}),
    )
    .await;
    let sent_id = sent["id"].as_str().unwrap().to_string();
    delivery_becomes(&server, &contact_id, &sent_id, "sent").await;
    let inbox = mail
        .wait_for_messages(CUSTOMER, 1, Duration::from_secs(30))
        .await;
    let raw = &inbox[0];
    assert_eq!(
        header(raw, "Subject").as_deref(),
        Some("Re: Order 42 is late")
    );
    assert_eq!(
        header(raw, "In-Reply-To").as_deref(),
        Some(format!("<order42.first@{DOMAIN}>").as_str())
    );
    assert!(
        header(raw, "References")
            .unwrap_or_default()
            .contains(&format!("<order42.first@{DOMAIN}>"))
    );
    let from = header(raw, "From").unwrap();
    assert!(from.contains(SUPPORT), "{from}");
    let our_id = header(raw, "Message-ID").expect("a Message-ID");
    assert!(our_id.ends_with(&format!("@{DOMAIN}>")), "{our_id}");
    let reply_to = header(raw, "Reply-To").expect("a reply address");
    let reply_to = reply_to.trim_matches(['<', '>']).to_string();
    assert!(
        reply_to.starts_with("support+") && reply_to.contains(&format!("@{DOMAIN}")),
        "{reply_to}"
    );
    assert_eq!(
        header(raw, "Cc").map(|c| c.trim_matches(['<', '>']).to_string()),
        Some(BOSS.to_string())
    );
    let text = String::from_utf8_lossy(raw);
    assert!(text.contains("We are on it."));
    assert!(
        text.contains("> Hello, my order 42 has not arrived."),
        "the answered mail is quoted: {text}"
    );
    mail.wait_for_messages(BOSS, 1, Duration::from_secs(30))
        .await;

    // 3. The customer answers from their phone: new subject, same thread.
    let our_id = our_id.trim_matches(['<', '>']).to_string();
    mail.deliver(
        &customer_mail(
            "order42.phone@example.test",
            "sent from my phone",
            &format!(
                "In-Reply-To: <{our_id}>\r\nReferences: <order42.first@{DOMAIN}> <{our_id}>\r\n"
            ),
            "Any news?",
        ),
        SUPPORT,
    )
    .await;
    let answer = arrived(&server, &mail, CUSTOMER, "order42.phone@example.test").await;
    assert_eq!(answer["conversation_id"], conversation.as_str());

    // 4. Resolved, then an answer that carries nothing but the reply address:
    //    the conversation reopens.
    let (status, v) = server
        .call(
            &server.token,
            "PUT",
            &format!("/api/v1/conversations/{conversation}/status"),
            json!({"status": "resolved"}),
        )
        .await;
    assert!(status == 200, "{v}");
    let tagged = reply_to.clone();
    let bare = format!(
        "From: Ann Customer <{CUSTOMER}>\r\nTo: {tagged}\r\nSubject: one more thing\r\n\
         Message-ID: <order42.bare@example.test>\r\nDate: Mon, 07 Dec 2026 10:00:00 +0000\r\n\
         \r\nAlso, the box was open.\r\n"
    );
    mail.deliver(bare.as_bytes(), &tagged).await;
    let bare = arrived(&server, &mail, CUSTOMER, "order42.bare@example.test").await;
    assert_eq!(bare["conversation_id"], conversation.as_str());
    let (_, conv) = server
        .get(&format!("/api/v1/conversations/{conversation}"))
        .await;
    assert_eq!(conv["status"], "open", "{conv}");

    // 5. An out-of-office answering our reply: kept, no new work, never answered.
    let before = mail
        .fetch_all(CUSTOMER, CUSTOMER_PASSWORD, "INBOX")
        .await
        .len();
    let tasks_before = waiting_email_tasks(&server).await;
    mail.deliver(
        &customer_mail(
            "ooo.1@example.test",
            "Out of office: Re: Order 42 is late",
            &format!("Auto-Submitted: auto-replied\r\nIn-Reply-To: <{our_id}>\r\n"),
            "I am away until Monday.",
        ),
        SUPPORT,
    )
    .await;
    let ooo = arrived(&server, &mail, CUSTOMER, "ooo.1@example.test").await;
    assert_eq!(ooo["data"]["metadata"]["automatic"], "auto_reply", "{ooo}");
    assert_eq!(ooo["conversation_id"], conversation.as_str());
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(waiting_email_tasks(&server).await, tasks_before);
    assert_eq!(
        mail.fetch_all(CUSTOMER, CUSTOMER_PASSWORD, "INBOX")
            .await
            .len(),
        before,
        "nothing answers an auto-reply"
    );
}

#[tokio::test]
async fn a_bounce_marks_the_reply_failed_and_makes_no_work() {
    let (mail, server) = start().await;
    // Someone writes from an address that does not exist (a typo in their client).
    let ghost = format!("nobody@{DOMAIN}");
    let raw = format!(
        "From: Ghost <{ghost}>\r\nTo: {SUPPORT}\r\nSubject: hello\r\n\
         Message-ID: <ghost.1@{DOMAIN}>\r\nDate: Mon, 07 Dec 2026 09:00:00 +0000\r\n\r\nhi\r\n"
    );
    mail.deliver(raw.as_bytes(), SUPPORT).await;
    let first = arrived(&server, &mail, &ghost, &format!("ghost.1@{DOMAIN}")).await;
    let contact = server.contact_by(&format!("email:{ghost}")).await.unwrap();
    let contact_id = contact["id"].as_str().unwrap().to_string();
    let conversation = first["conversation_id"].as_str().unwrap().to_string();
    let tasks = waiting_email_tasks(&server).await;

    let sent = reply(&server, &conversation, json!({"body": "How can we help?"})).await;
    let sent_id = sent["id"].as_str().unwrap().to_string();
    // Postfix accepts it, Dovecot refuses the unknown user, the DSN comes back to
    // the support mailbox, the connector reads it.
    let failed = delivery_becomes(&server, &contact_id, &sent_id, "failed").await;
    let error = failed["error"].as_str().unwrap_or_default();
    assert!(error.contains("5.1.1"), "the reason is shown: {failed}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        waiting_email_tasks(&server).await,
        tasks,
        "a bounce is no work"
    );
}

#[tokio::test]
async fn the_mailbox_survives_a_restarted_imap_server_and_hostile_mail() {
    let (mut mail, server) = start().await;
    for i in 0..3 {
        mail.deliver(
            &customer_mail(&format!("steady.{i}@example.test"), "steady", "", "hello"),
            SUPPORT,
        )
        .await;
    }
    arrived(&server, &mail, CUSTOMER, "steady.0@example.test").await;
    // The IMAP server goes away while mail keeps coming (Postfix queues it).
    mail.stop_imap();
    for i in 3..6 {
        mail.deliver(
            &customer_mail(&format!("steady.{i}@example.test"), "steady", "", "hello"),
            SUPPORT,
        )
        .await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    mail.start_imap().await;

    // Hostile and odd mail in between ordinary mail.
    let hostile: Vec<(&str, Vec<u8>)> = vec![
        (
            "broken.boundary@example.test",
            format!(
                "From: {CUSTOMER}\r\nTo: {SUPPORT}\r\nSubject: broken\r\n\
                 Message-ID: <broken.boundary@example.test>\r\nMIME-Version: 1.0\r\n\
                 Content-Type: multipart/mixed; boundary=\"never-closed\"\r\n\r\n\
                 --never-closed\r\nContent-Type: text/plain\r\n\r\nstill readable\r\n\
                 --not-the-boundary\r\n"
            )
            .into_bytes(),
        ),
        ("deep.nesting@example.test", {
            let mut s = format!(
                "From: {CUSTOMER}\r\nTo: {SUPPORT}\r\nSubject: deep\r\n\
                 Message-ID: <deep.nesting@example.test>\r\nMIME-Version: 1.0\r\n"
            );
            for i in 0..2000 {
                s.push_str(&format!(
                    "Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n"
                ));
            }
            s.push_str("Content-Type: text/plain\r\n\r\nat the bottom\r\n");
            s.into_bytes()
        }),
        (
            "bad.charset@example.test",
            format!(
                "From: {CUSTOMER}\r\nTo: {SUPPORT}\r\nSubject: =?x-unknown?B?AAAA?=\r\n\
                 Message-ID: <bad.charset@example.test>\r\nMIME-Version: 1.0\r\n\
                 Content-Type: text/plain; charset=x-no-such-charset\r\n\
                 Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9 =ZZ broken\r\n"
            )
            .into_bytes(),
        ),
        (
            "script.html@example.test",
            format!(
                "From: {CUSTOMER}\r\nTo: {SUPPORT}\r\nSubject: html\r\n\
                 Message-ID: <script.html@example.test>\r\nMIME-Version: 1.0\r\n\
                 Content-Type: text/html\r\n\r\n<script>steal()</script>\
                 <img src=x onerror=steal()><form action=https://evil.test><input></form>\
                 <p>real words</p>\r\n"
            )
            .into_bytes(),
        ),
        ("huge.attachment@example.test", {
            let mut s = format!(
                "From: {CUSTOMER}\r\nTo: {SUPPORT}\r\nSubject: huge\r\n\
                 Message-ID: <huge.attachment@example.test>\r\nMIME-Version: 1.0\r\n\
                 Content-Type: multipart/mixed; boundary=\"h\"\r\n\r\n--h\r\n\
                 Content-Type: text/plain\r\n\r\nsee attached\r\n--h\r\n\
                 Content-Type: application/octet-stream; name=big.bin\r\n\
                 Content-Transfer-Encoding: base64\r\n\r\n"
            );
            // 50 MB of data, base64 in 76-character lines.
            let line = "QUJD".repeat(19);
            for _ in 0..(50 * 1024 * 1024 / 57) {
                s.push_str(&line);
                s.push_str("\r\n");
            }
            s.push_str("--h--\r\n");
            s.into_bytes()
        }),
    ];
    for (_, raw) in &hostile {
        mail.deliver(raw, SUPPORT).await;
    }
    mail.deliver(
        &customer_mail(
            "after.hostile@example.test",
            "still flowing",
            "",
            "hello again",
        ),
        SUPPORT,
    )
    .await;

    // Everything arrives, each once.
    for i in 0..6 {
        arrived(
            &server,
            &mail,
            CUSTOMER,
            &format!("steady.{i}@example.test"),
        )
        .await;
    }
    for (id, _) in &hostile {
        arrived(&server, &mail, CUSTOMER, id).await;
    }
    arrived(&server, &mail, CUSTOMER, "after.hostile@example.test").await;
    let contact = server
        .contact_by(&format!("email:{CUSTOMER}"))
        .await
        .unwrap();
    let events = timeline(&server, contact["id"].as_str().unwrap()).await;
    let messages: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "message" && e["direction"] == "in")
        .collect();
    assert_eq!(messages.len(), 6 + hostile.len() + 1, "each mail once");
    let find = |id: &str| {
        messages
            .iter()
            .find(|e| e["provider_id"] == id)
            .copied()
            .unwrap()
    };
    let broken = find("broken.boundary@example.test");
    assert!(
        broken["body"].as_str().unwrap().contains("still readable"),
        "{broken}"
    );
    let huge = find("huge.attachment@example.test");
    assert!(huge["body"].as_str().unwrap().contains("see attached"));
    assert!(
        huge["data"]["metadata"]["problem"].is_null(),
        "a mail too large to read whole misses nothing: {huge}"
    );
    // Raw HTML is kept as received (the desk sanitizes it for display).
    assert!(
        find("script.html@example.test")["data"]["metadata"]["html_body"]
            .as_str()
            .unwrap()
            .contains("real words")
    );
    // The 50 MB attachment is copied whole into the blob store.
    let (file, bytes) = stored_file(&server, &mail, CUSTOMER, "huge.attachment@example.test").await;
    let lines = 50 * 1024 * 1024 / 57;
    assert_eq!(file["filename"], "big.bin", "{file}");
    assert_eq!(file["size"], lines * 57, "{file}");
    assert_eq!(
        hex::encode(Sha256::digest(&bytes)),
        hex::encode(Sha256::digest("ABC".repeat(19 * lines).as_bytes())),
        "the stored file is the one sent"
    );
}

#[tokio::test]
async fn a_20_mib_message_keeps_its_attachment_byte_for_byte() {
    let (mail, server) = start().await;
    // 15 MiB of noise: about 20.3 MiB on the wire, over the 16 MiB the
    // connector reads whole.
    let original = noise(15 * 1024 * 1024, 20);
    let raw = format!(
        "From: Ann Customer <{CUSTOMER}>\r\nTo: {SUPPORT}\r\nSubject: the scans\r\n\
         Message-ID: <scans@{DOMAIN}>\r\nDate: Mon, 07 Dec 2026 09:00:00 +0000\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"s\"\r\n\r\n\
         --s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nAll the scans, attached.\r\n\
         --s\r\nContent-Type: application/octet-stream\r\n\
         Content-Disposition: attachment; filename*=utf-8''Sc%C3%A4ns%202026.bin\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}--s--\r\n",
        base64_lines(&original)
    );
    assert!(raw.len() > 20 * 1024 * 1024, "{} bytes", raw.len());
    mail.deliver(raw.as_bytes(), SUPPORT).await;
    let message = arrived(&server, &mail, CUSTOMER, &format!("scans@{DOMAIN}")).await;
    assert!(
        message["body"]
            .as_str()
            .unwrap()
            .contains("All the scans, attached.")
    );
    assert!(
        message["data"]["metadata"]["problem"].is_null(),
        "{message}"
    );
    let (file, bytes) = stored_file(&server, &mail, CUSTOMER, &format!("scans@{DOMAIN}")).await;
    assert_eq!(file["filename"], "Scäns 2026.bin", "{file}");
    assert_eq!(file["size"], original.len(), "{file}");
    assert_eq!(bytes.len(), original.len());
    assert_eq!(
        hex::encode(Sha256::digest(&bytes)),
        hex::encode(Sha256::digest(&original)),
        "the stored file is the one sent"
    );
}

#[tokio::test]
async fn each_mailbox_feeds_its_own_queue() {
    let (mail, server) = start_with(Some("email=support,email-billing=billing")).await;
    install_mailbox(&server, &mail, "email-billing", BILLING, BILLING_PASSWORD).await;
    mail.deliver(
        &customer_mail("q.support@example.test", "where is my parcel", "", "hello"),
        SUPPORT,
    )
    .await;
    let billing = format!(
        "From: Bo Payer <boss@example.test>\r\nTo: {BILLING}\r\nSubject: invoice\r\n\
         Message-ID: <q.billing@example.test>\r\nDate: Mon, 07 Dec 2026 09:00:00 +0000\r\n\r\nwrong amount\r\n"
    );
    mail.deliver(billing.as_bytes(), BILLING).await;
    let on_billing = arrived(&server, &mail, BOSS, "q.billing@example.test").await;
    assert_eq!(on_billing["plugin_id"], "email-billing");
    arrived(&server, &mail, CUSTOMER, "q.support@example.test").await;
    let queues = server
        .eventually(Duration::from_secs(15), || async {
            let (_, board) = server.get("/api/v1/wallboard").await;
            let waiting = |name: &str| {
                board["queues"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|q| q["name"] == name || q["id"] == name)
                    .and_then(|q| q["waiting"].as_u64())
            };
            (waiting("billing") == Some(1) && waiting("support") == Some(1)).then_some(board)
        })
        .await;
    assert!(
        queues.is_some(),
        "each mailbox's mail waits in its own queue: {}",
        server.get("/api/v1/wallboard").await.1
    );
}
