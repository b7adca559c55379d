use switchboard_sdk::{ChannelEvent, PluginError};

use super::*;
use crate::imap::client::{self, ImapError};
use crate::testing::Script;

pub(crate) const GREETING: &str = "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN] Dovecot ready.\r\n";

pub(crate) fn literal(text: &str) -> String {
    format!("{{{}}}\r\n{text}", text.len())
}

pub(crate) fn examine(uid_validity: u32, uid_next: u32, exists: u32, tag: &str) -> String {
    format!(
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n\
* OK [PERMANENTFLAGS ()] Read-only mailbox.\r\n\
* {exists} EXISTS\r\n\
* 0 RECENT\r\n\
* OK [UIDVALIDITY {uid_validity}] UIDs valid\r\n\
* OK [UIDNEXT {uid_next}] Predicted next UID\r\n\
{tag} OK [READ-ONLY] Examine completed (0.001 + 0.000 secs).\r\n"
    )
}

fn mail(id: &str, body: &str) -> String {
    format!(
        "From: Ann <ann@example.org>\r\nTo: support@example.com\r\nSubject: {id}\r\nMessage-ID: <{id}@example.org>\r\n\r\n{body}\r\n"
    )
}

fn settings(max_message_bytes: u64) -> PollSettings<'static> {
    PollSettings {
        mailbox: "INBOX",
        address: "support@example.com",
        initial_sync: InitialSync::All,
        max_message_bytes,
    }
}

pub(crate) fn logged_in(server: &str) -> Session<Script> {
    let mut session = Session::start(Script::new(server), false, 64 * 1024 * 1024).unwrap();
    session.login("support@example.com", "pa\"ss").unwrap();
    session
}

pub(crate) fn transcript(session: Session<Script>) -> String {
    session.into_transport().transcript()
}

/// A server that, after the login, serves one poll of `bodies` (UIDs 1…n,
/// UIDVALIDITY 3): their sizes, then the messages.
fn serving(bodies: &[String]) -> String {
    let n = bodies.len() as u32;
    let mut server = format!(
        "{GREETING}sb1 OK Logged in\r\n{}",
        examine(3, n + 1, n, "sb2")
    );
    for (i, body) in bodies.iter().enumerate() {
        server.push_str(&format!(
            "* {} FETCH (UID {} RFC822.SIZE {})\r\n",
            i + 1,
            i + 1,
            body.len()
        ));
    }
    server.push_str("sb3 OK done\r\n");
    for (i, body) in bodies.iter().enumerate() {
        server.push_str(&format!(
            "* {} FETCH (UID {} BODY[] {})\r\n",
            i + 1,
            i + 1,
            literal(body)
        ));
    }
    server.push_str("sb4 OK done\r\n");
    server
}

fn messages(batch: &MailBatch) -> Vec<&switchboard_sdk::InboundMessage> {
    batch
        .events
        .iter()
        .filter_map(|e| match e {
            ChannelEvent::Message(m) => Some(m),
            _ => None,
        })
        .collect()
}

#[test]
fn a_first_poll_reads_every_message_and_oversized_ones_in_part() {
    let first = mail("m5", "first");
    let second = mail("m6", "second");
    let header = "From: Bob <bob@example.org>\r\nTo: support@example.com\r\nSubject: huge\r\nMessage-ID: <m7@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed;\r\n boundary=\"b\"\r\n\r\n";
    let server = format!(
        "{GREETING}sb1 OK [CAPABILITY IMAP4rev1 LITERAL+] Logged in\r\n{}\
* 1 FETCH (UID 5 RFC822.SIZE {})\r\n* 2 FETCH (UID 6 RFC822.SIZE {})\r\n* 3 FETCH (UID 7 RFC822.SIZE 99999999)\r\nsb3 OK Fetch completed.\r\n\
* 1 FETCH (UID 5 BODY[] {})\r\n* 2 FETCH (UID 6 BODY[] {})\r\n* 2 FETCH (FLAGS (\\Seen))\r\nsb4 OK Fetch completed.\r\n\
* 3 FETCH (UID 7 BODYSTRUCTURE ((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" 20 1 NIL NIL NIL NIL)(\"application\" \"pdf\" (\"name\" \"big.pdf\") NIL NIL \"base64\" 99999000 NIL (\"attachment\" (\"filename\" \"big.pdf\")) NIL NIL) \"mixed\" (\"boundary\" \"b\") NIL NIL NIL) BODY[HEADER] {})\r\nsb5 OK Fetch completed.\r\n\
* 3 FETCH (UID 7 BODY[1]<0> {})\r\nsb6 OK Fetch completed.\r\n\
* 3 FETCH (UID 7 BODY[2.MIME] {})\r\nsb7 OK Fetch completed.\r\n",
        examine(1_700_000_000, 8, 3, "sb2"),
        first.len(),
        second.len(),
        literal(&first),
        literal(&second),
        literal(header),
        literal("Hello =E2=80=93 big\r\n"),
        literal(
            "Content-Type: application/pdf;\r\n name*=utf-8''Gro%C3%9Fer%20Bericht.pdf\r\n\
             Content-Disposition: attachment;\r\n filename*=utf-8''Gro%C3%9Fer%20Bericht.pdf\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n"
        ),
    );
    let mut session = logged_in(&server);
    let batch = poll(&mut session, None, &settings(1000)).unwrap();
    assert_eq!(batch.cursor.as_deref(), Some("1700000000:7"));
    assert!(!batch.more);
    let messages = messages(&batch);
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[0].provider_id, "m5@example.org");
    assert_eq!(messages[0].body.trim(), "first");
    assert_eq!(messages[1].provider_id, "m6@example.org");
    assert_eq!(messages[2].provider_id, "m7@example.org");
    assert_eq!(messages[2].body.trim(), "Hello – big");
    // The oversized message keeps its file, by reference, named from the
    // part's own MIME header (RFC 2231).
    let files = &messages[2].attachments;
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].url, "imap:1700000000/7/2");
    assert_eq!(files[0].filename.as_deref(), Some("Großer Bericht.pdf"));
    assert_eq!(files[0].content_type.as_deref(), Some("application/pdf"));
    assert_eq!(
        files[0].size,
        Some(99_999_000 / 78 * 57 + 99_999_000 % 78 * 3 / 4)
    );
    assert_eq!(files[0].content, None);
    assert_eq!(batch.envelopes.len(), 3);
    assert_eq!(batch.envelopes[0].problem, None);
    assert_eq!(batch.envelopes[2].problem, None, "nothing is missing");
    assert_eq!(
        transcript(session),
        "sb1 LOGIN \"support@example.com\" \"pa\\\"ss\"\r\n\
sb2 EXAMINE \"INBOX\"\r\n\
sb3 UID FETCH 1:7 (UID RFC822.SIZE)\r\n\
sb4 UID FETCH 5:6 (UID BODY.PEEK[])\r\n\
sb5 UID FETCH 7 (UID BODYSTRUCTURE BODY.PEEK[HEADER])\r\n\
sb6 UID FETCH 7 (UID BODY.PEEK[1]<0.524288>)\r\n\
sb7 UID FETCH 7 (UID BODY.PEEK[2.MIME])\r\n"
    );
}

#[test]
fn an_oversized_message_lists_every_file_and_says_what_text_was_cut() {
    let header = "From: Bob <bob@example.org>\r\nSubject: many\r\nMessage-ID: <m9@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n";
    // mixed(alternative(plain, related(html, png)), rfc822 message, zip)
    let body_structure = "(((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 900000 1 NIL NIL NIL NIL)\
((\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 20 1 NIL NIL NIL NIL)\
(\"image\" \"png\" NIL \"<logo@x>\" NIL \"base64\" 7800 NIL (\"inline\" NIL) NIL NIL) \"related\" (\"boundary\" \"r\") NIL NIL NIL) \"alternative\" (\"boundary\" \"a\") NIL NIL NIL)\
(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 300 (NIL \"=?utf-8?q?Caf=C3=A9_menu?=\" NIL NIL NIL NIL NIL NIL NIL NIL) (\"text\" \"plain\" NIL NIL NIL \"7bit\" 10 1 NIL NIL NIL NIL) 12 NIL NIL NIL NIL)\
(\"application\" \"zip\" NIL NIL NIL \"base64\" 30000000 NIL (\"attachment\" (\"filename\" \"a.zip\")) NIL NIL) \"mixed\" (\"boundary\" \"b\") NIL NIL NIL)";
    let server = format!(
        "{GREETING}sb1 OK Logged in\r\n{}* 1 FETCH (UID 9 RFC822.SIZE 41000000)\r\nsb3 OK done\r\n\
* 1 FETCH (UID 9 BODYSTRUCTURE {body_structure} BODY[HEADER] {})\r\nsb4 OK done\r\n\
* 1 FETCH (UID 9 BODY[1.1]<0> {} BODY[1.2.1]<0> {})\r\nsb5 OK done\r\n\
* 1 FETCH (UID 9 BODY[1.2.2.MIME] {} BODY[2.MIME] {} BODY[3.MIME] {})\r\nsb6 OK done\r\n",
        examine(4, 10, 1, "sb2"),
        literal(header),
        literal("plain words"),
        literal("<p>html words</p>"),
        literal(
            "Content-Type: image/png\r\nContent-ID: <logo@x>\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        ),
        literal("Content-Type: message/rfc822\r\n\r\n"),
        literal(
            "Content-Type: application/zip\r\nContent-Disposition: attachment; filename=\"=?utf-8?B?UmVjaG51bmcuemlw?=\"\r\n\r\n"
        ),
    );
    let mut session = logged_in(&server);
    let batch = poll(&mut session, None, &settings(16 * 1024 * 1024)).unwrap();
    let message = messages(&batch)[0];
    assert_eq!(message.body.trim(), "plain words");
    assert!(message.html_body.as_deref().unwrap().contains("html words"));
    let files: Vec<_> = message
        .attachments
        .iter()
        .map(|a| {
            (
                a.url.as_str(),
                a.filename.as_deref(),
                a.content_type.as_deref(),
                a.content_id.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        files,
        [
            ("imap:4/9/1.2.2", None, Some("image/png"), Some("logo@x")),
            (
                "imap:4/9/2",
                Some("Café menu.eml"),
                Some("message/rfc822"),
                None
            ),
            (
                "imap:4/9/3",
                Some("Rechnung.zip"),
                Some("application/zip"),
                None
            ),
        ]
    );
    assert_eq!(
        batch.envelopes[0].problem.as_deref(),
        Some("message is 39 MB: its text was read to the first 512 KB")
    );
    assert!(transcript(session).ends_with(
        "sb5 UID FETCH 9 (UID BODY.PEEK[1.1]<0.524288> BODY.PEEK[1.2.1]<0.524288>)\r\n\
sb6 UID FETCH 9 (UID BODY.PEEK[1.2.2.MIME] BODY.PEEK[2.MIME] BODY.PEEK[3.MIME])\r\n"
    ));
}

#[test]
fn nothing_new_means_no_fetch() {
    let server = format!("{GREETING}sb1 OK Logged in\r\n{}", examine(9, 8, 3, "sb2"));
    let mut session = logged_in(&server);
    let batch = poll(&mut session, Some("9:7"), &settings(1000)).unwrap();
    assert_eq!(batch.cursor.as_deref(), Some("9:7"));
    assert!(batch.events.is_empty() && !batch.more);
    assert!(!transcript(session).contains("FETCH"));
}

#[test]
fn a_renumbered_folder_is_read_again() {
    let body = mail("again", "x");
    let server = format!(
        "{GREETING}sb1 OK Logged in\r\n{}* 1 FETCH (UID 1 RFC822.SIZE {})\r\nsb3 OK done\r\n* 1 FETCH (UID 1 BODY[] {})\r\nsb4 OK done\r\n",
        examine(2, 2, 1, "sb2"),
        body.len(),
        literal(&body)
    );
    let mut session = logged_in(&server);
    let batch = poll(&mut session, Some("1:7"), &settings(1000)).unwrap();
    assert_eq!(batch.cursor.as_deref(), Some("2:1"));
    assert_eq!(messages(&batch).len(), 1);
    assert!(transcript(session).contains("sb3 UID FETCH 1:1 (UID RFC822.SIZE)"));
}

#[test]
fn starting_with_new_mail_only() {
    let server = format!(
        "{GREETING}sb1 OK Logged in\r\n{}",
        examine(3, 120, 100, "sb2")
    );
    let mut session = logged_in(&server);
    let settings = PollSettings {
        initial_sync: InitialSync::New,
        ..settings(1000)
    };
    let batch = poll(&mut session, None, &settings).unwrap();
    assert_eq!(batch.cursor.as_deref(), Some("3:119"));
    assert!(batch.events.is_empty());
}

#[test]
fn a_large_folder_is_walked_in_windows() {
    // UIDs 1..=500 are gone; the window moves on without events.
    let server = format!(
        "{GREETING}sb1 OK Logged in\r\n{}sb3 OK done\r\n",
        examine(3, 5000, 10, "sb2")
    );
    let mut session = logged_in(&server);
    let batch = poll(&mut session, None, &settings(1000)).unwrap();
    assert_eq!(batch.cursor.as_deref(), Some("3:500"));
    assert!(batch.more);
    assert!(transcript(session).contains("UID FETCH 1:500 (UID RFC822.SIZE)"));
}

#[test]
fn the_highest_message_of_an_open_range_is_not_read_twice() {
    // Without UIDNEXT the range is `8:*`, which names UID 7 when it is the
    // highest.
    let server = format!(
        "{GREETING}sb1 OK Logged in\r\n* 3 EXISTS\r\n* OK [UIDVALIDITY 9] ok\r\nsb2 OK [READ-ONLY] done\r\n* 3 FETCH (UID 7 RFC822.SIZE 10)\r\nsb3 OK done\r\n"
    );
    let mut session = logged_in(&server);
    let batch = poll(&mut session, Some("9:7"), &settings(1000)).unwrap();
    assert_eq!(batch.cursor.as_deref(), Some("9:7"));
    assert!(batch.events.is_empty());
    assert!(transcript(session).contains("UID FETCH 8:* (UID RFC822.SIZE)"));
}

#[test]
fn a_refused_batch_is_read_message_by_message() {
    let header = "From: ann@example.org\r\nMessage-ID: <bad@x>\r\nSubject: s\r\n\r\n";
    let server = format!(
        "{GREETING}sb1 OK Logged in\r\n{}* 1 FETCH (UID 4 RFC822.SIZE 10)\r\nsb3 OK done\r\n\
sb4 NO [SERVERBUG] Internal error occurred. Refer to server log for more information.\r\n\
* 1 FETCH (UID 4 BODYSTRUCTURE (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 4 1 NIL NIL NIL NIL) BODY[HEADER] {})\r\nsb5 OK done\r\n\
* 1 FETCH (UID 4 BODY[1]<0> {})\r\nsb6 OK done\r\n",
        examine(3, 5, 1, "sb2"),
        literal(header),
        literal("text"),
    );
    let mut session = logged_in(&server);
    let batch = poll(&mut session, None, &settings(1000)).unwrap();
    assert_eq!(batch.cursor.as_deref(), Some("3:4"));
    let messages = messages(&batch);
    assert_eq!(messages[0].provider_id, "bad@x");
    assert_eq!(messages[0].body.trim(), "text");
    let problem = batch.envelopes[0].problem.as_deref().unwrap();
    assert!(problem.contains("SERVERBUG"), "{problem}");
}

#[test]
fn a_message_that_cannot_be_read_at_all_is_skipped() {
    let server = format!(
        "{GREETING}sb1 OK Logged in\r\n{}* 1 FETCH (UID 4 RFC822.SIZE 10)\r\nsb3 OK done\r\nsb4 NO gone\r\nsb5 NO gone\r\n",
        examine(3, 5, 1, "sb2"),
    );
    let mut session = logged_in(&server);
    let batch = poll(&mut session, None, &settings(1000)).unwrap();
    assert_eq!(batch.cursor.as_deref(), Some("3:4"));
    assert!(batch.events.is_empty());
}

#[test]
fn the_output_budget_cuts_a_batch() {
    let big_body = "x".repeat(200 * 1024);
    let bodies: Vec<String> = (1..=6).map(|i| mail(&format!("b{i}"), &big_body)).collect();
    let mut session = logged_in(&serving(&bodies));
    let batch = poll(&mut session, None, &settings(25 * 1024 * 1024)).unwrap();
    let count = messages(&batch).len();
    assert!((1..6).contains(&count), "{count}");
    assert_eq!(batch.cursor, Some(format!("3:{count}")));
    assert!(batch.more);
}

/// The budget counts what a message carries besides its text: a batch of short
/// mails with long `Cc` lists is cut before the host's output cap (ten such
/// mails are about 1.2 MB of addresses; the cap is 1 MiB).
#[test]
fn cc_lists_count_towards_the_output_budget() {
    let cc: Vec<String> = (0..480)
        .map(|i| {
            format!(
                "colleague-{i:05}-{}@{}.example.net",
                "x".repeat(50),
                "y".repeat(160)
            )
        })
        .collect();
    let bodies: Vec<String> = (1..=10)
        .map(|i| {
            format!(
                "From: Ann <ann@example.org>\r\nTo: support@example.com\r\nCc: {}\r\n\
                 Subject: c{i}\r\nMessage-ID: <c{i}@example.org>\r\n\r\nshort\r\n",
                cc.join(",\r\n ")
            )
        })
        .collect();
    let mut session = logged_in(&serving(&bodies));
    let batch = poll(&mut session, None, &settings(25 * 1024 * 1024)).unwrap();
    // Each envelope lists 480 addresses of about 240 bytes (about 120 KB): six
    // fit 768 KiB.
    assert_eq!(batch.envelopes.len(), 6);
    assert_eq!(batch.envelopes[0].cc.len(), 480);
    assert_eq!(batch.cursor.as_deref(), Some("3:6"));
    assert!(batch.more);
}

#[test]
fn a_login_refusal_is_a_config_error_and_unavailability_transient() {
    let mut session = Session::start(
        Script::new(format!(
            "{GREETING}sb1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
        )),
        false,
        1024,
    )
    .unwrap();
    let error = PluginError::from(session.login("a", "b").unwrap_err());
    assert_eq!(
        error,
        PluginError::Config(
            "IMAP login refused: [AUTHENTICATIONFAILED] Authentication failed.".into()
        )
    );
    let mut session = Session::start(
        Script::new(format!("{GREETING}sb1 NO [UNAVAILABLE] Try later\r\n")),
        false,
        1024,
    )
    .unwrap();
    assert!(matches!(
        PluginError::from(session.login("a", "b").unwrap_err()),
        PluginError::Transient(_)
    ));
}

#[test]
fn bye_and_dropped_connections_are_transient() {
    let closed = Session::start(Script::new("* BYE Too many connections\r\n"), false, 1024);
    assert!(matches!(closed, Err(ImapError::Closed(_))));
    assert!(matches!(
        PluginError::from(closed.err().unwrap()),
        PluginError::Transient(_)
    ));
    let mut session = Session::start(
        Script::new(format!("{GREETING}* BYE shutting down\r\n")),
        false,
        1024,
    )
    .unwrap();
    assert!(matches!(session.login("a", "b"), Err(ImapError::Closed(_))));
    let mut session = Session::start(Script::new(GREETING), false, 1024).unwrap();
    assert!(matches!(
        PluginError::from(session.login("a", "b").unwrap_err()),
        PluginError::Transient(_)
    ));
}

#[test]
fn passwords_that_cannot_be_quoted_go_as_literals() {
    let server = format!("{GREETING}+ OK\r\nsb1 OK Logged in\r\n");
    let mut session = Session::start(Script::new(server), false, 1024).unwrap();
    session.login("support@example.com", "pässwörd").unwrap();
    assert_eq!(
        transcript(session),
        "sb1 LOGIN \"support@example.com\" {10}\r\npässwörd\r\n"
    );
    // Refused at the literal: the command ends there.
    let server = format!("{GREETING}sb1 NO too long\r\n");
    let mut session = Session::start(Script::new(server), false, 1024).unwrap();
    assert!(matches!(
        session.login("u", "pässwörd"),
        Err(ImapError::LoginRefused(_))
    ));
}

#[test]
fn starttls_comes_before_login_and_capabilities_are_asked_again() {
    let server = "* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\nsb1 OK Begin TLS negotiation now.\r\n* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\nsb2 OK done\r\nsb3 OK Logged in\r\n";
    let mut session = Session::start(Script::new(server), true, 1024).unwrap();
    session.login("u", "p").unwrap();
    let script = session.into_transport();
    assert_eq!(script.tls_after, Some("sb1 STARTTLS\r\n".len()));
    assert_eq!(
        script.transcript(),
        "sb1 STARTTLS\r\nsb2 CAPABILITY\r\nsb3 LOGIN \"u\" \"p\"\r\n"
    );
    let refused = Session::start(
        Script::new("* OK [CAPABILITY IMAP4rev1] ready\r\n"),
        true,
        1024,
    );
    assert!(matches!(refused, Err(ImapError::Config(_))));
    let mut disabled = Session::start(
        Script::new("* OK [CAPABILITY IMAP4rev1 LOGINDISABLED] ready\r\n"),
        false,
        1024,
    )
    .unwrap();
    assert!(matches!(
        disabled.login("u", "p"),
        Err(ImapError::Config(_))
    ));
}

#[test]
fn xoauth2_with_and_without_sasl_ir() {
    let mut session = Session::start(
        Script::new(format!("{GREETING}sb1 OK Logged in\r\n")),
        false,
        1024,
    )
    .unwrap();
    session
        .authenticate_xoauth2("u@example.com", "tok")
        .unwrap();
    let initial = client::xoauth2_initial_response("u@example.com", "tok");
    assert_eq!(
        transcript(session),
        format!("sb1 AUTHENTICATE XOAUTH2 {initial}\r\n")
    );

    let server = "* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2] ready\r\n+ \r\n+ eyJzdGF0dXMiOiI0MDEifQ==\r\nsb1 NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)\r\n";
    let mut session = Session::start(Script::new(server), false, 1024).unwrap();
    let refused = session.authenticate_xoauth2("u@example.com", "tok");
    assert!(matches!(refused, Err(ImapError::LoginRefused(_))));
    assert_eq!(
        transcript(session),
        format!("sb1 AUTHENTICATE XOAUTH2\r\n{initial}\r\n\r\n")
    );
}

#[test]
fn responses_are_framed_with_their_literals() {
    let mut script = Script::new("* 1 FETCH (BODY[] {5}\r\nab\r\nc UID 3)\r\nnext\r\n");
    let response = client::read_response(&mut script, 100).unwrap();
    assert_eq!(response, b"* 1 FETCH (BODY[] {5}\r\nab\r\nc UID 3)\r\n");
    let mut script = Script::new("* 1 FETCH (BODY[] {500}\r\n");
    assert!(matches!(
        client::read_response(&mut script, 100),
        Err(ImapError::Protocol(_))
    ));
    let mut script = Script::new("* 1 FETCH (BODY[] {50}\r\nshort");
    assert!(matches!(
        client::read_response(&mut script, 100),
        Err(ImapError::Stream(_))
    ));
}

#[test]
fn fetch_responses_keep_their_sections() {
    let response = b"* 2 FETCH (UID 9 RFC822.SIZE 44 BODY[1.MIME] {3}\r\nabc BODY[] {12}\r\nhello\r\nworld)\r\n".to_vec();
    let mut fetched = client::parse_fetch(response).unwrap();
    assert_eq!(fetched.uid, Some(9));
    assert_eq!(fetched.size, Some(44));
    let names: Vec<String> = fetched.sections.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert_eq!(fetched.take_section("").unwrap(), b"hello\r\nworld");
    assert_eq!(fetched.take_section("1.MIME").unwrap(), b"abc");
    assert!(client::parse_fetch(b"* 3 EXISTS\r\n".to_vec()).is_none());
    assert!(client::parse_fetch(b"* 1 FETCH (garbage\r\n".to_vec()).is_none());
}

#[test]
fn cursors() {
    let cursor = Cursor::parse("1700000000:42").unwrap();
    assert_eq!(cursor.encode(), "1700000000:42");
    assert_eq!(resume_after(Some(cursor), 1_700_000_000), 42);
    assert_eq!(resume_after(Some(cursor), 5), 0);
    assert_eq!(resume_after(None, 5), 0);
    for bad in ["", "42", "a:b", "1:2:3", ":", "-1:4"] {
        assert_eq!(Cursor::parse(bad), None, "{bad}");
    }
    assert_eq!(window(0, Some(8)), Some((1, Some(7))));
    assert_eq!(window(7, Some(8)), None);
    assert_eq!(window(0, Some(10_000)), Some((1, Some(500))));
    assert_eq!(window(3, None), Some((4, None)));
    assert_eq!(window(u32::MAX, None), None);
}

#[test]
fn batches_are_bounded() {
    let sizes: Vec<(u32, u64)> = (1..=60).map(|uid| (uid, 1000)).collect();
    let (items, more) = plan(&sizes, 25 * 1024 * 1024);
    assert_eq!(items.len(), MAX_BATCH_MESSAGES);
    assert!(more);

    let sizes = vec![(1, 10 * 1024 * 1024), (2, 10 * 1024 * 1024), (3, 10)];
    let (items, more) = plan(&sizes, 25 * 1024 * 1024);
    assert_eq!(items, vec![Item::Whole(1)]);
    assert!(more);

    // A message larger than the budget still goes alone.
    let (items, more) = plan(&[(1, 20 * 1024 * 1024)], 25 * 1024 * 1024);
    assert_eq!(items, vec![Item::Whole(1)]);
    assert!(!more);

    let (items, _) = plan(&[(1, 60 * 1024 * 1024), (2, 10)], 25 * 1024 * 1024);
    assert_eq!(
        items,
        vec![
            Item::Oversized {
                uid: 1,
                size: 60 * 1024 * 1024
            },
            Item::Whole(2)
        ]
    );
}
