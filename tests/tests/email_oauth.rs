//! The e-mail connector with OAuth 2.0 (`auth = xoauth2`) against real servers:
//! Dovecot's `oauth2` passdb checks every XOAUTH2 login over IMAP, and Postfix's
//! submission asks the same Dovecot auth service for `AUTH XOAUTH2` over SMTP
//! (`tests/src/mail.rs`, `MailServer::start_with_oauth2`). The test runs the
//! identity provider (`tests/src/oauth.rs`): the token endpoint the connector
//! refreshes its access token at, and the introspection endpoint Dovecot asks
//! whether a token is active. No password is ever configured.
//!
//! - Mail is polled in with an access token refreshed from the refresh token,
//!   an agent's reply is submitted with the same cached token, and both servers
//!   log the XOAUTH2 login.
//! - An access token that expires (the provider answers it inactive) is refused
//!   by Postfix (through Dovecot) on the next reply and by Dovecot on the next
//!   poll, even after a restart that kept it cached: the connector refreshes it
//!   once and carries on.
//! - A revoked refresh token stops the mailbox with a clear error in the log and
//!   on the reply (a dead letter, nothing sent); mail that arrives meanwhile waits
//!   in the mailbox and is polled in once the operator sets a new refresh token.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_e2e::mail::{MailServer, header};
use switchboard_e2e::oauth::{CLIENT_ID, CLIENT_SECRET, FakeOAuth, INTROSPECTION_PASSWORD};
use switchboard_e2e::*;

const SUPPORT: &str = "support@example.test";
const SUPPORT_PASSWORD: &str = "support-mailbox-pw-never-used";
const CUSTOMER: &str = "customer@example.test";
const CUSTOMER_PASSWORD: &str = "customer-mailbox-pw";
const WAIT: Duration = Duration::from_secs(30);

/// The identity provider, and a mail system whose logins it vouches for.
async fn mail_system() -> (FakeOAuth, MailServer) {
    let oauth = FakeOAuth::start().await;
    let mail = MailServer::start_with_oauth2(
        &[(SUPPORT, SUPPORT_PASSWORD), (CUSTOMER, CUSTOMER_PASSWORD)],
        &oauth.introspection_url(),
    )
    .await;
    (oauth, mail)
}

/// The server, trusting the mail system's CA; replies retried 200 ms apart.
async fn start_server(mail: &MailServer, twilio: &FakeTwilio) -> Server {
    let ca = mail.ca_pem_path();
    Server::start(
        Options::env(&[
            ("SWITCHBOARD_EXTRA_CA_FILE", ca.to_str().unwrap()),
            ("SWITCHBOARD_OUTBOX_RETRY_BASE_MS", "200"),
        ]),
        twilio,
    )
    .await
}

/// Installs the connector as `email` for the support mailbox with XOAUTH2:
/// IMAP and submission both with STARTTLS (as Microsoft 365's 587 is), the
/// token endpoint allowed, polled every `poll_seconds`.
async fn install(
    server: &Server,
    mail: &MailServer,
    oauth: &FakeOAuth,
    refresh_token: &str,
    poll_seconds: &str,
) {
    let (status, body) = server
        .post(
            "/api/v1/plugins",
            json!({
                "path": plugin_dist().join("email"),
                "id": "email",
                "allow_hosts": [oauth.base],
                "config": {
                    "address": SUPPORT,
                    "display_name": "Example Support",
                    "imap_host": mail.host(),
                    "imap_port": mail.imap_plain_port().to_string(),
                    "smtp_host": mail.host(),
                    "smtp_port": mail.smtp_submission_port().to_string(),
                    "security": "starttls",
                    "auth": "xoauth2",
                    "oauth_token_url": oauth.token_url(),
                    "oauth_client_id": CLIENT_ID,
                    "oauth_client_secret": CLIENT_SECRET,
                    "oauth_refresh_token": refresh_token,
                    "poll_seconds": poll_seconds,
                },
            }),
        )
        .await;
    assert_eq!(status, 201, "installing the e-mail connector: {body}");
    let text = body.to_string();
    assert!(
        !text.contains(refresh_token) && !text.contains(CLIENT_SECRET),
        "OAuth secrets never come back: {body}"
    );
}

fn customer_mail(message_id: &str, subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Ann Customer <{CUSTOMER}>\r\nTo: Example Support <{SUPPORT}>\r\n\
         Subject: {subject}\r\nMessage-ID: <{message_id}>\r\n\
         Date: Mon, 07 Dec 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

async fn timeline(server: &Server, contact_id: &str) -> Vec<Value> {
    let (status, v) = server
        .get(&format!("/api/v1/contacts/{contact_id}/timeline"))
        .await;
    assert_eq!(status, 200, "{v}");
    v["events"].as_array().unwrap().clone()
}

fn inbound(events: &[Value]) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e["kind"] == "message" && e["direction"] == "in")
        .cloned()
        .collect()
}

/// The customer's message with this Message-ID, once it is on the timeline.
async fn arrived(server: &Server, mail: &MailServer, message_id: &str) -> Value {
    server
        .eventually(WAIT, || async {
            let contact = server.contact_by(&format!("email:{CUSTOMER}")).await?;
            timeline(server, contact["id"].as_str()?)
                .await
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

async fn reply(server: &Server, conversation: &str, text: &str) -> String {
    let (status, v) = server
        .post(
            &format!("/api/v1/conversations/{conversation}/messages"),
            json!({"body": text}),
        )
        .await;
    assert_eq!(status, 202, "{v}");
    v["event"]["id"].as_str().unwrap().to_string()
}

/// The timeline event `event_id` once its delivery status is `want`.
async fn delivery(server: &Server, mail: &MailServer, event_id: &str, want: &str) -> Value {
    let contact = server
        .contact_by(&format!("email:{CUSTOMER}"))
        .await
        .unwrap();
    let contact_id = contact["id"].as_str().unwrap().to_string();
    server
        .eventually(WAIT, || async {
            timeline(server, &contact_id)
                .await
                .into_iter()
                .find(|e| e["id"] == event_id && e["delivery_status"] == want)
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "{event_id} never {want}\nserver: {}\nmail: {}",
                server.log(),
                mail.logs()
            )
        })
}

fn text(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}

/// Whether a line of `log` holds every one of `parts`.
fn logged(log: &str, parts: &[&str]) -> bool {
    log.lines()
        .any(|line| parts.iter().all(|p| line.contains(p)))
}

#[tokio::test]
async fn xoauth2_polls_and_replies_through_dovecot_and_postfix_and_refreshes_expired_tokens() {
    let (oauth, mail) = mail_system().await;
    let refresh = oauth.grant(SUPPORT);
    // The customer writes before the mailbox is connected; the connector polls
    // once at install and then not for an hour, so every login below is one the
    // test caused.
    mail.deliver(
        &customer_mail(
            "oauth.first@example.test",
            "Order 7 is late",
            "Where is order 7?",
        ),
        SUPPORT,
    )
    .await;
    mail.wait_for_messages(SUPPORT, 1, WAIT).await;
    let twilio = FakeTwilio::start().await;
    let server = start_server(&mail, &twilio).await;
    install(&server, &mail, &oauth, &refresh, "3600").await;

    // 1. Polled in over IMAP with XOAUTH2: one refresh at the token endpoint with
    //    the client's credentials, the token vouched for to Dovecot.
    let first = arrived(&server, &mail, "oauth.first@example.test").await;
    assert!(
        first["body"]
            .as_str()
            .unwrap()
            .contains("Where is order 7?"),
        "{first}"
    );
    let tokens = oauth.token_requests();
    assert_eq!(
        tokens.len(),
        1,
        "one refresh for the first login: {tokens:#?}"
    );
    assert_eq!(tokens[0].grant_type.as_deref(), Some("refresh_token"));
    assert_eq!(tokens[0].client_id.as_deref(), Some(CLIENT_ID));
    assert!(tokens[0].client_authenticated, "{tokens:#?}");
    assert_eq!(tokens[0].refresh_token.as_deref(), Some(refresh.as_str()));
    assert_eq!(tokens[0].status, 200);
    let first_token = tokens[0].issued.clone().unwrap();
    let checked = oauth.introspections();
    assert!(
        checked.iter().all(|i| i.authorized),
        "Dovecot authenticates to the introspection endpoint: {checked:#?}"
    );
    assert!(
        checked
            .iter()
            .any(|i| i.token == first_token && i.active && i.service.as_deref() == Some("imap")),
        "Dovecot asked about the token for IMAP: {checked:#?}"
    );
    assert!(
        logged(
            &mail.logs(),
            &[
                "imap-login",
                "Login: user=<support@example.test>",
                "method=XOAUTH2"
            ]
        ),
        "Dovecot logged an XOAUTH2 login:\n{}",
        mail.logs()
    );

    // 2. The agent's reply goes out through Postfix's submission with AUTH
    //    XOAUTH2, with the token cached in kv: no second refresh.
    let conversation = first["conversation_id"].as_str().unwrap().to_string();
    let sent = reply(&server, &conversation, "We are on it.").await;
    delivery(&server, &mail, &sent, "sent").await;
    let inbox = mail.wait_for_messages(CUSTOMER, 1, WAIT).await;
    assert!(
        text(&inbox[0]).contains("We are on it."),
        "{}",
        text(&inbox[0])
    );
    assert_eq!(
        header(&inbox[0], "In-Reply-To").as_deref(),
        Some("<oauth.first@example.test>")
    );
    assert_eq!(
        oauth.token_requests().len(),
        1,
        "the cached access token served SMTP too"
    );
    assert!(
        oauth
            .introspections()
            .iter()
            .any(|i| i.token == first_token && i.active && i.service.as_deref() == Some("smtp")),
        "Postfix's AUTH went through Dovecot's oauth2 passdb: {:#?}",
        oauth.introspections()
    );
    assert!(
        logged(
            &mail.logs(),
            &[
                "postfix/submission",
                "sasl_method=XOAUTH2",
                "sasl_username=support@example.test"
            ]
        ),
        "Postfix logged an XOAUTH2 submission:\n{}",
        mail.logs()
    );

    // 3. The access token expires at the provider before the next reply. The
    //    connector still holds it (an hour was announced); Postfix refuses it,
    //    the connector refreshes once and submits again.
    oauth.expire_access_tokens();
    let second = reply(&server, &conversation, "It ships today.").await;
    delivery(&server, &mail, &second, "sent").await;
    let inbox = mail.wait_for_messages(CUSTOMER, 2, WAIT).await;
    assert!(text(&inbox[1]).contains("It ships today."));
    let issued = oauth.issued();
    assert_eq!(
        issued.len(),
        2,
        "one refresh: {:#?}",
        oauth.token_requests()
    );
    let second_token = issued[1].clone();
    assert_ne!(second_token, first_token);
    let checked = oauth.introspections();
    let refused = checked
        .iter()
        .position(|i| i.token == first_token && !i.active && i.service.as_deref() == Some("smtp"))
        .unwrap_or_else(|| panic!("the expired token was tried on SMTP: {checked:#?}"));
    let accepted = checked
        .iter()
        .position(|i| i.token == second_token && i.active && i.service.as_deref() == Some("smtp"))
        .unwrap_or_else(|| panic!("the new token was accepted on SMTP: {checked:#?}"));
    assert!(refused < accepted, "{checked:#?}");
    assert!(
        logged(&mail.logs(), &["SASL XOAUTH2 authentication failed"]),
        "Postfix refused the expired token:\n{}",
        mail.logs()
    );

    // 4. It expires again while the server is down and the customer writes
    //    again. After a restart the connector's first poll tries the token kept
    //    in kv; Dovecot refuses it, one refresh, and the mail comes in.
    oauth.expire_access_tokens();
    mail.deliver(
        &customer_mail(
            "oauth.second@example.test",
            "Re: Order 7 is late",
            "Thanks!",
        ),
        SUPPORT,
    )
    .await;
    mail.wait_for_messages(SUPPORT, 2, WAIT).await;
    let (data, options) = server.kill().await;
    let server = Server::start_in(data, options).await;
    let again = arrived(&server, &mail, "oauth.second@example.test").await;
    assert_eq!(again["conversation_id"], conversation.as_str());
    let issued = oauth.issued();
    assert_eq!(
        issued.len(),
        3,
        "one refresh: {:#?}",
        oauth.token_requests()
    );
    let checked = oauth.introspections();
    let refused = checked
        .iter()
        .position(|i| i.token == second_token && !i.active && i.service.as_deref() == Some("imap"))
        .unwrap_or_else(|| panic!("the kept token was tried on IMAP: {checked:#?}"));
    let accepted = checked
        .iter()
        .position(|i| i.token == issued[2] && i.active && i.service.as_deref() == Some("imap"))
        .unwrap_or_else(|| panic!("the new token was accepted on IMAP: {checked:#?}"));
    assert!(refused < accepted, "{checked:#?}");
    let contact = server
        .contact_by(&format!("email:{CUSTOMER}"))
        .await
        .unwrap();
    let messages = inbound(&timeline(&server, contact["id"].as_str().unwrap()).await);
    assert_eq!(
        messages.len(),
        2,
        "nothing lost, nothing twice: {messages:#?}"
    );
    assert_eq!(
        mail.fetch_all(CUSTOMER, CUSTOMER_PASSWORD, "INBOX")
            .await
            .len(),
        2,
        "a refused login sent nothing: each reply went once"
    );

    // Never a secret in the log.
    let log = server.log();
    for secret in [refresh.as_str(), CLIENT_SECRET, INTROSPECTION_PASSWORD]
        .into_iter()
        .chain(issued.iter().map(String::as_str))
    {
        assert!(!log.contains(secret), "a secret in the server's log");
    }
}

#[tokio::test]
async fn a_revoked_refresh_token_stops_the_mailbox_with_a_clear_error_and_loses_nothing() {
    let (oauth, mail) = mail_system().await;
    let refresh = oauth.grant(SUPPORT);
    let twilio = FakeTwilio::start().await;
    let server = start_server(&mail, &twilio).await;
    install(&server, &mail, &oauth, &refresh, "2").await;
    mail.deliver(
        &customer_mail(
            "revoked.first@example.test",
            "Invoice 12",
            "Is invoice 12 paid?",
        ),
        SUPPORT,
    )
    .await;
    let first = arrived(&server, &mail, "revoked.first@example.test").await;
    let conversation = first["conversation_id"].as_str().unwrap().to_string();

    // The mailbox owner revokes the grant (or an administrator does). Mail keeps
    // arriving at the mailbox.
    oauth.revoke(&refresh);
    mail.deliver(
        &customer_mail("revoked.second@example.test", "Re: Invoice 12", "Hello?"),
        SUPPORT,
    )
    .await;
    mail.wait_for_messages(SUPPORT, 2, WAIT).await;

    // Polls fail: Dovecot refuses the access token, the token endpoint refuses
    // the refresh token, and the log says so in words an operator can act on.
    let tokens = oauth
        .wait_for_tokens(WAIT, |r| r.iter().any(|t| t.status == 400))
        .await;
    let refused = tokens
        .iter()
        .find(|t| t.status == 400)
        .unwrap_or_else(|| panic!("the revoked refresh token was tried: {tokens:#?}"));
    assert_eq!(refused.refresh_token.as_deref(), Some(refresh.as_str()));
    assert_eq!(refused.error.as_deref(), Some("invalid_grant"));
    let reported = server
        .eventually(WAIT, || async {
            logged(
                &server.log(),
                &[
                    "poll failed",
                    "OAuth token refresh refused",
                    "invalid_grant",
                ],
            )
            .then_some(())
        })
        .await;
    assert!(
        reported.is_some(),
        "the poll failure names the refused refresh token:\n{}",
        server.log()
    );

    // A reply now cannot be sent: a dead letter with the reason, not retried,
    // nothing submitted.
    let refused_reply = reply(&server, &conversation, "Yes, it is paid.").await;
    let failed = delivery(&server, &mail, &refused_reply, "failed").await;
    assert!(
        failed["error"]
            .as_str()
            .unwrap_or_default()
            .contains("OAuth token refresh refused"),
        "the agent sees why: {failed}"
    );
    let (_, rows) = server.get("/api/v1/outbox").await;
    let row = rows["outbox"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["event_id"] == refused_reply.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("an outbox row: {rows:#}"));
    assert_eq!(row["status"], "dead", "{row}");
    let reason = row["last_error"].as_str().unwrap_or_default();
    assert!(
        reason.contains("OAuth token refresh refused") && reason.contains("revoked"),
        "a readable reason: {row}"
    );
    assert!(!reason.contains(&refresh), "{reason}");
    assert!(
        mail.fetch_all(CUSTOMER, CUSTOMER_PASSWORD, "INBOX")
            .await
            .is_empty(),
        "nothing was sent"
    );

    // Nothing received is lost: the first mail is still there, and once the
    // operator sets a newly granted refresh token the mail that arrived
    // meanwhile is polled in, once.
    let granted = oauth.grant(SUPPORT);
    let (status, body) = server
        .call(
            &server.token,
            "PUT",
            "/api/v1/plugins/email/config",
            json!({"config": {"oauth_refresh_token": granted}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(!body.to_string().contains(&granted), "{body}");
    let second = arrived(&server, &mail, "revoked.second@example.test").await;
    assert_eq!(second["conversation_id"], conversation.as_str());
    let contact = server
        .contact_by(&format!("email:{CUSTOMER}"))
        .await
        .unwrap();
    let messages = inbound(&timeline(&server, contact["id"].as_str().unwrap()).await);
    let ids: Vec<&str> = messages
        .iter()
        .filter_map(|m| m["provider_id"].as_str())
        .collect();
    assert_eq!(ids.len(), 2, "both mails, each once: {ids:?}");
    assert!(
        ids.contains(&"revoked.first@example.test") && ids.contains(&"revoked.second@example.test")
    );
    assert!(
        oauth
            .token_requests()
            .iter()
            .any(|t| t.refresh_token.as_deref() == Some(granted.as_str()) && t.status == 200),
        "the new grant was used"
    );
    let log = server.log();
    for secret in [refresh.as_str(), granted.as_str(), CLIENT_SECRET] {
        assert!(!log.contains(secret), "a secret in the server's log");
    }
}
