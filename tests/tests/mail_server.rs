//! The e-mail tests' mail system itself (`switchboard_e2e::mail`): real Postfix and
//! Dovecot started per test, reached only over TLS checked against their own CA.
//! These tests run in parallel threads, so they also prove that servers are
//! independent of each other. The last one is the OAuth mode: XOAUTH2 logins to
//! IMAP and submission checked by Dovecot's `oauth2` passdb against the test's
//! introspection endpoint.

use std::time::Duration;

use switchboard_e2e::mail::{MailServer, Security, header};
use switchboard_e2e::oauth::{CLIENT_ID, CLIENT_SECRET, FakeOAuth};

const CUSTOMER: (&str, &str) = ("customer@example.test", "customer-pw");
const SUPPORT: (&str, &str) = ("support@example.test", "support-pw");
const BILLING: (&str, &str) = ("billing@example.test", "billing-pw");
const WAIT: Duration = Duration::from_secs(20);

fn message(from: &str, to: &str, subject: &str, message_id: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\nTo: {to}\nSubject: {subject}\nMessage-ID: {message_id}\n\
         Date: Mon, 07 Dec 2026 10:00:00 +0000\nMIME-Version: 1.0\n\
         Content-Type: text/plain; charset=utf-8\n\n{body}\n"
    )
    .into_bytes()
}

fn text(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}

#[tokio::test]
async fn delivered_mail_is_read_back_over_imaps_and_starttls() {
    let mail = MailServer::start(&[CUSTOMER, SUPPORT]).await;
    eprintln!("mail server started in {:?}", mail.startup_time());
    assert!(mail.ca_pem_path().exists());
    let ca = std::fs::read_to_string(mail.ca_pem_path()).unwrap();
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");

    let raw = message(
        "Casey Customer <customer@example.test>",
        "support@example.test",
        "My order is late",
        "<order-late-1@customer.example.test>",
        "Where is order 1234?\n.a line starting with a dot\n",
    );
    mail.deliver(&raw, "support@example.test").await;
    let inbox = mail
        .wait_for_messages("support@example.test", 1, WAIT)
        .await;
    assert_eq!(inbox.len(), 1);
    let got = text(&inbox[0]);
    assert_eq!(
        header(&inbox[0], "subject").as_deref(),
        Some("My order is late")
    );
    assert_eq!(
        header(&inbox[0], "message-id").as_deref(),
        Some("<order-late-1@customer.example.test>")
    );
    assert!(
        got.contains("Where is order 1234?\r\n.a line starting with a dot\r\n"),
        "{got}"
    );
    // It went through Postfix and LMTP like real mail.
    assert!(got.contains("Received: from "), "{got}");
    assert!(
        got.contains("Return-Path: <customer@example.test>"),
        "{got}"
    );

    // The same mailbox over the plain port, upgraded with STARTTLS, and in plain text.
    for security in [Security::StartTls, Security::Plain] {
        let again = mail
            .imap_fetch(security, SUPPORT.0, SUPPORT.1, "INBOX")
            .await
            .unwrap();
        assert_eq!(again, inbox, "{security:?}");
    }
    // Every user has a Sent folder; the customer's INBOX is empty.
    assert!(
        mail.fetch_all(SUPPORT.0, SUPPORT.1, "Sent")
            .await
            .is_empty()
    );
    assert!(
        mail.fetch_all(CUSTOMER.0, CUSTOMER.1, "INBOX")
            .await
            .is_empty()
    );
    // A wrong password is refused.
    let refused = mail
        .imap_fetch(Security::Tls, SUPPORT.0, "wrong", "INBOX")
        .await
        .unwrap_err();
    assert!(refused.contains("NO"), "{refused}");
    // TLS is checked: a client trusting another CA fails the handshake.
    let other = MailServer::start(&[CUSTOMER]).await;
    let stranger = tokio_rustls::TlsConnector::from(other.tls_config());
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", mail.imap_port()))
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from(mail.host()).unwrap();
    assert!(stranger.connect(name, tcp).await.is_err());
    // The two servers share nothing.
    assert_ne!(other.imap_port(), mail.imap_port());
    assert!(
        other
            .fetch_all(CUSTOMER.0, CUSTOMER.1, "INBOX")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn submission_with_auth_reaches_the_customer() {
    let mail = MailServer::start(&[CUSTOMER, SUPPORT, BILLING]).await;

    // 587: STARTTLS, then AUTH PLAIN.
    let reply = message(
        "Support <support@example.test>",
        "customer@example.test",
        "Re: My order is late",
        "<reply-1@example.test>",
        "It ships today.",
    );
    mail.submit(SUPPORT.0, SUPPORT.1, &[CUSTOMER.0], &reply)
        .await;
    // 465: TLS on connect, then AUTH PLAIN.
    let second = message(
        "Billing <billing@example.test>",
        "customer@example.test",
        "Your invoice",
        "<invoice-1@example.test>",
        "Attached soon.",
    );
    mail.smtp_send(
        mail.smtps_port(),
        Security::Tls,
        Some(BILLING),
        BILLING.0,
        &[CUSTOMER.0],
        &second,
    )
    .await
    .unwrap();
    let inbox = mail.wait_for_messages(CUSTOMER.0, 2, WAIT).await;
    let mut ids: Vec<String> = inbox
        .iter()
        .map(|m| header(m, "message-id").unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, ["<invoice-1@example.test>", "<reply-1@example.test>"]);
    let got = text(inbox.iter().find(|m| text(m).contains("reply-1")).unwrap());
    assert!(got.contains("Return-Path: <support@example.test>"), "{got}");
    assert!(got.contains("ESMTPSA"), "TLS and auth were used: {got}");

    // Refusals a connector must cope with.
    let wrong = mail
        .smtp_send(
            mail.smtp_submission_port(),
            Security::StartTls,
            Some((SUPPORT.0, "wrong")),
            SUPPORT.0,
            &[CUSTOMER.0],
            &reply,
        )
        .await
        .unwrap_err();
    assert!(wrong.contains("535"), "{wrong}");
    let no_tls = mail
        .smtp_send(
            mail.smtp_submission_port(),
            Security::Plain,
            Some(SUPPORT),
            SUPPORT.0,
            &[CUSTOMER.0],
            &reply,
        )
        .await
        .unwrap_err();
    assert!(no_tls.contains("AUTH"), "no AUTH before STARTTLS: {no_tls}");
    let anonymous = mail
        .smtp_send(
            mail.smtp_submission_port(),
            Security::StartTls,
            None,
            SUPPORT.0,
            &[CUSTOMER.0],
            &reply,
        )
        .await
        .unwrap_err();
    assert!(anonymous.contains("554"), "{anonymous}");
    // Port 25 takes mail for local domains only.
    let relay = mail
        .smtp_send(
            mail.smtp_port(),
            Security::Plain,
            None,
            "someone@elsewhere.test",
            &["someone@gmail.com"],
            &reply,
        )
        .await
        .unwrap_err();
    assert!(relay.contains("Relay access denied"), "{relay}");
    assert_eq!(
        mail.fetch_all(CUSTOMER.0, CUSTOMER.1, "INBOX").await.len(),
        2
    );
}

#[tokio::test]
async fn unknown_local_recipient_bounces_a_dsn_to_the_sender() {
    let mail = MailServer::start(&[CUSTOMER, SUPPORT]).await;
    let raw = message(
        "Support <support@example.test>",
        "nobody@example.test",
        "Hello?",
        "<to-nobody-1@example.test>",
        "Anyone there?",
    );
    // Accepted at submission (the refusal comes later, as with many providers)…
    mail.submit(SUPPORT.0, SUPPORT.1, &["nobody@example.test"], &raw)
        .await;
    // …and a real RFC 3464 report lands in the sender's INBOX.
    let inbox = mail.wait_for_messages(SUPPORT.0, 1, WAIT).await;
    let dsn = text(&inbox[0]);
    assert!(
        header(&inbox[0], "from")
            .unwrap()
            .contains("MAILER-DAEMON@mail.example.test"),
        "{dsn}"
    );
    assert!(
        header(&inbox[0], "content-type")
            .unwrap()
            .contains("report-type=delivery-status"),
        "{dsn}"
    );
    assert!(
        dsn.contains("Final-Recipient: rfc822; nobody@example.test"),
        "{dsn}"
    );
    assert!(dsn.contains("Action: failed"), "{dsn}");
    assert!(dsn.contains("Status: 5.1.1"), "{dsn}");
    // The original's headers come back, so the bounce can be matched to it.
    assert!(
        dsn.contains("Message-ID: <to-nobody-1@example.test>"),
        "{dsn}"
    );
    // The Return-Path is empty: nobody bounces a bounce.
    assert!(dsn.contains("Return-Path: <>"), "{dsn}");

    // Mail for a domain that is not local is bounced too, never sent anywhere.
    let outside = message(
        "Support <support@example.test>",
        "someone@gmail.com",
        "Outside",
        "<outside-1@example.test>",
        "Never leaves.",
    );
    mail.submit(SUPPORT.0, SUPPORT.1, &["someone@gmail.com"], &outside)
        .await;
    let inbox = mail.wait_for_messages(SUPPORT.0, 2, WAIT).await;
    let dsn = text(&inbox[1]);
    assert!(
        dsn.contains("Final-Recipient: rfc822; someone@gmail.com"),
        "{dsn}"
    );
    assert!(
        dsn.contains("Message-ID: <outside-1@example.test>"),
        "{dsn}"
    );
    assert!(
        mail.fetch_all(CUSTOMER.0, CUSTOMER.1, "INBOX")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn restarting_imap_keeps_the_mail_and_queued_mail_arrives_after() {
    let mut mail = MailServer::start(&[CUSTOMER, SUPPORT]).await;
    let port = mail.imap_port();
    let first = message(
        "customer@example.test",
        "support@example.test",
        "First",
        "<first@customer.example.test>",
        "one",
    );
    mail.deliver(&first, SUPPORT.0).await;
    let before = mail.wait_for_messages(SUPPORT.0, 1, WAIT).await;

    let started = std::time::Instant::now();
    mail.restart_imap().await;
    eprintln!("IMAP restarted in {:?}", started.elapsed());
    assert_eq!(mail.imap_port(), port);
    assert_eq!(mail.fetch_all(SUPPORT.0, SUPPORT.1, "INBOX").await, before);

    // While Dovecot is down, IMAP is refused and Postfix queues the mail; it is
    // delivered once Dovecot is back.
    mail.stop_imap();
    assert!(
        mail.imap_fetch(Security::Tls, SUPPORT.0, SUPPORT.1, "INBOX")
            .await
            .is_err()
    );
    let second = message(
        "customer@example.test",
        "support@example.test",
        "Second",
        "<second@customer.example.test>",
        "two",
    );
    mail.deliver(&second, SUPPORT.0).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    mail.start_imap().await;
    let after = mail.wait_for_messages(SUPPORT.0, 2, WAIT).await;
    assert_eq!(after[0], before[0]);
    assert_eq!(
        header(&after[1], "message-id").as_deref(),
        Some("<second@customer.example.test>")
    );

    // stop() ends everything: nothing answers on the ports any more.
    let smtp = mail.smtp_port();
    mail.stop();
    for p in [port, smtp] {
        assert!(
            tokio::net::TcpStream::connect(("127.0.0.1", p))
                .await
                .is_err(),
            "port {p} still answers"
        );
    }
}

/// An access token for `refresh_token`, from the stand-in's token endpoint.
async fn access_token(oauth: &FakeOAuth, refresh_token: &str) -> String {
    let answer: serde_json::Value = reqwest::Client::new()
        .post(oauth.token_url())
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"))
        .to_string()
}

#[tokio::test]
async fn oauth2_logins_are_introspected_for_imap_and_submission() {
    let oauth = FakeOAuth::start().await;
    let mail =
        MailServer::start_with_oauth2(&[CUSTOMER, SUPPORT], &oauth.introspection_url()).await;
    let token = access_token(&oauth, &oauth.grant(SUPPORT.0)).await;

    // A live token logs in to IMAP and to submission (Postfix asks Dovecot).
    mail.imap_xoauth2(SUPPORT.0, &token)
        .await
        .unwrap_or_else(|e| panic!("IMAP XOAUTH2: {e}\n{}", mail.logs()));
    mail.smtp_xoauth2(SUPPORT.0, &token)
        .await
        .unwrap_or_else(|e| panic!("SMTP XOAUTH2: {e}\n{}", mail.logs()));
    let services: Vec<Option<String>> = oauth
        .introspections()
        .into_iter()
        .filter(|i| i.token == token && i.active && i.authorized)
        .map(|i| i.service)
        .collect();
    assert_eq!(
        services,
        [Some("imap".to_string()), Some("smtp".to_string())],
        "{:#?}",
        oauth.introspections()
    );

    // Passwords still work, and delivery too (LMTP's user lookup).
    mail.submit(
        CUSTOMER.0,
        CUSTOMER.1,
        &[SUPPORT.0],
        &message(
            "customer@example.test",
            "support@example.test",
            "Hello",
            "<oauth-mode-1@example.test>",
            "Hi",
        ),
    )
    .await;
    assert_eq!(mail.wait_for_messages(SUPPORT.0, 1, WAIT).await.len(), 1);

    // Refused: another user's token, a password given as a token, an unknown one.
    let theirs = access_token(&oauth, &oauth.grant(CUSTOMER.0)).await;
    for (what, bad) in [
        ("another user's token", theirs.as_str()),
        ("a password", SUPPORT.1),
        ("made up", "at-made-up"),
    ] {
        let refused = mail.imap_xoauth2(SUPPORT.0, bad).await.unwrap_err();
        assert!(
            refused.contains("AUTHENTICATIONFAILED"),
            "{what}: {refused}"
        );
    }

    // Once the provider says the token expired, both refuse it the XOAUTH2 way:
    // the error as JSON in a continuation, then the failure.
    oauth.expire_access_tokens();
    let refused = mail.imap_xoauth2(SUPPORT.0, &token).await.unwrap_err();
    assert!(
        refused.contains(r#""status":"401""#) && refused.contains("NO [AUTHENTICATIONFAILED]"),
        "{refused}"
    );
    let refused = mail.smtp_xoauth2(SUPPORT.0, &token).await.unwrap_err();
    assert!(
        refused.starts_with("334 ") && refused.contains("535 5.7.8"),
        "{refused}"
    );
    assert!(
        mail.logs().contains("oauth2 failed"),
        "Dovecot says why:\n{}",
        mail.logs()
    );
}
