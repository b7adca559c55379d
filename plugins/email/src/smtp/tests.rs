use base64::Engine as _;

use super::*;
use crate::testing::Script;

const DATA: &[u8] = b"Subject: hi\r\n\r\n.hidden dot\r\nbody\r\n";

fn recipients() -> Vec<String> {
    vec!["ann@example.org".into(), "audit@example.com".into()]
}

fn submit_to(
    server: &str,
    starttls: bool,
    auth: Option<Auth<'_>>,
) -> (Script, Result<(), SmtpError>) {
    let mut script = Script::new(server);
    let recipients = recipients();
    let result = submit(
        &mut script,
        starttls,
        auth,
        &Envelope {
            helo: "example.com",
            from: "support@example.com",
            recipients: &recipients,
            data: DATA,
        },
    );
    (script, result)
}

const PASSWORD: Option<Auth<'static>> = Some(Auth::Password {
    username: "support@example.com",
    password: "s3cret",
});

#[test]
fn a_submission_over_starttls_with_auth_plain() {
    let server = "220 mail.example.com ESMTP Postfix\r\n\
250-mail.example.com\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 SIZE 10240000\r\n\
220 2.0.0 Ready to start TLS\r\n\
250-mail.example.com\r\n250-SIZE 10240000\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n\
235 2.7.0 Authentication successful\r\n\
250 2.1.0 Ok\r\n\
250 2.1.5 Ok\r\n\
250 2.1.5 Ok\r\n\
354 End data with <CR><LF>.<CR><LF>\r\n\
250 2.0.0 Ok: queued as ABC\r\n\
221 2.0.0 Bye\r\n";
    let (script, result) = submit_to(server, true, PASSWORD);
    result.unwrap();
    assert!(script.finished());
    let plain = base64::engine::general_purpose::STANDARD.encode("\0support@example.com\0s3cret");
    let expected = format!(
        "EHLO example.com\r\nSTARTTLS\r\nEHLO example.com\r\nAUTH PLAIN {plain}\r\n\
MAIL FROM:<support@example.com> SIZE={}\r\nRCPT TO:<ann@example.org>\r\nRCPT TO:<audit@example.com>\r\n\
DATA\r\nSubject: hi\r\n\r\n..hidden dot\r\nbody\r\n.\r\nQUIT\r\n",
        DATA.len()
    );
    assert_eq!(script.transcript(), expected);
    // Nothing but the STARTTLS exchange went out in the clear.
    assert_eq!(
        script.tls_after,
        Some("EHLO example.com\r\nSTARTTLS\r\n".len())
    );
}

#[test]
fn auth_login_when_plain_is_not_offered() {
    let server = "220 hi\r\n250-x\r\n250 AUTH=LOGIN\r\n334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n235 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n250 ok\r\n221 bye\r\n";
    let (script, result) = submit_to(server, false, PASSWORD);
    result.unwrap();
    let transcript = script.transcript();
    assert!(
        transcript.contains("AUTH LOGIN\r\nc3VwcG9ydEBleGFtcGxlLmNvbQ==\r\nczNjcmV0\r\n"),
        "{transcript}"
    );
    assert!(!script.tls);
}

#[test]
fn starttls_must_be_offered() {
    let (script, result) = submit_to("220 hi\r\n250-x\r\n250 AUTH PLAIN\r\n", true, PASSWORD);
    assert!(matches!(result, Err(SmtpError::Config(_))), "{result:?}");
    assert!(
        !script.transcript().contains("AUTH"),
        "no credentials in the clear"
    );
}

#[test]
fn a_refused_login_is_a_config_error() {
    let (_, result) = submit_to(
        "220 hi\r\n250-x\r\n250 AUTH PLAIN\r\n535 5.7.8 Error: authentication failed\r\n",
        false,
        PASSWORD,
    );
    let error = PluginError::from(result.unwrap_err());
    assert!(
        matches!(&error, PluginError::Config(m) if m == "SMTP login refused: 535 5.7.8 Error: authentication failed"),
        "{error:?}"
    );
}

#[test]
fn xoauth2_failure_details_are_acknowledged() {
    let server = "220 hi\r\n250-x\r\n250 AUTH XOAUTH2 PLAIN\r\n334 eyJzdGF0dXMiOiI0MDAifQ==\r\n535 5.7.8 Username and Password not accepted\r\n";
    let (script, result) = submit_to(
        server,
        false,
        Some(Auth::XOauth2 {
            username: "support@example.com",
            token: "ya29.token",
        }),
    );
    assert!(matches!(
        PluginError::from(result.unwrap_err()),
        PluginError::Config(_)
    ));
    let initial =
        crate::imap::client::xoauth2_initial_response("support@example.com", "ya29.token");
    assert!(
        script
            .transcript()
            .ends_with(&format!("AUTH XOAUTH2 {initial}\r\n\r\n"))
    );
}

#[test]
fn refused_recipients_are_permanent_and_deferrals_transient() {
    let server = "220 hi\r\n250 x\r\n250 ok\r\n550 5.1.1 <ann@example.org>: Recipient address rejected: User unknown\r\n";
    let (_, result) = submit_to(server, false, None);
    let error = PluginError::from(result.unwrap_err());
    assert!(
        matches!(&error, PluginError::Permanent(m) if m.contains("ann@example.org") && m.contains("550 5.1.1")),
        "{error:?}"
    );
    let server = "220 hi\r\n250 x\r\n250 ok\r\n450 4.2.0 Greylisted, try again\r\n";
    let (_, result) = submit_to(server, false, None);
    assert!(matches!(
        PluginError::from(result.unwrap_err()),
        PluginError::Transient(_)
    ));
}

#[test]
fn a_refused_sender_is_the_operators_to_fix() {
    let server = "220 hi\r\n250 x\r\n553 5.7.1 <support@example.com>: Sender address rejected: not owned by user\r\n";
    let (_, result) = submit_to(server, false, None);
    assert!(
        matches!(PluginError::from(result.unwrap_err()), PluginError::Config(m) if m.contains("refused sender"))
    );
}

#[test]
fn a_dropped_connection_is_transient() {
    let (_, result) = submit_to("220 hi\r\n250 x\r\n250 ok\r\n", false, None);
    assert!(matches!(
        PluginError::from(result.unwrap_err()),
        PluginError::Transient(_)
    ));
    let (_, result) = submit_to("", false, None);
    assert!(matches!(
        PluginError::from(result.unwrap_err()),
        PluginError::Transient(_)
    ));
}

#[test]
fn the_servers_size_limit_is_checked_first() {
    let (script, result) = submit_to("220 hi\r\n250-x\r\n250 SIZE 10\r\n", false, None);
    assert!(matches!(
        PluginError::from(result.unwrap_err()),
        PluginError::Permanent(_)
    ));
    assert!(!script.transcript().contains("MAIL FROM"));
}

#[test]
fn garbage_replies_are_protocol_errors() {
    let (_, result) = submit_to("HTTP/1.1 400 Bad Request\r\n", false, None);
    assert!(matches!(result, Err(SmtpError::Protocol(_))));
}

#[test]
fn extensions_are_read_from_ehlo() {
    let reply = Reply {
        code: 250,
        lines: vec![
            "smtp.example.com at your service".into(),
            "SIZE 35882577".into(),
            "8BITMIME".into(),
            "AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH".into(),
            "ENHANCEDSTATUSCODES".into(),
            "SMTPUTF8".into(),
        ],
    };
    let extensions = Extensions::parse(&reply);
    assert_eq!(extensions.size, Some(35_882_577));
    assert!(extensions.smtputf8 && !extensions.starttls);
    assert!(extensions.auth.contains(&"XOAUTH2".to_owned()));
}

#[test]
fn dot_stuffing_and_line_ends() {
    assert_eq!(
        dot_stuff(b".a\r\nb\r\n..c\nd"),
        b"..a\r\nb\r\n...c\r\nd\r\n.\r\n"
    );
    assert_eq!(dot_stuff(b""), b"\r\n.\r\n");
    assert_eq!(dot_stuff(b"x\r\n.\r\n"), b"x\r\n..\r\n.\r\n");
}
