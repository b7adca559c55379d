use super::*;
use crate::imap::client;
use crate::imap::sync::tests::{GREETING, examine, literal, logged_in, transcript};

#[test]
fn oversized_mail_is_assembled_from_header_and_text() {
    let header = b"From: a@example.org\r\nContent-Type: multipart/mixed;\r\n boundary=x\r\nSubject: big\r\nMIME-Version: 1.0\r\n\r\n";
    let part = TextPart {
        path: "1".into(),
        subtype: "plain".into(),
        charset: Some("iso-8859-1".into()),
        encoding: "quoted-printable".into(),
        octets: 6,
    };
    let raw = assemble(header, &[(part, b"caf=E9".to_vec())]);
    let text = String::from_utf8_lossy(&raw);
    assert!(!text.contains("boundary=x"), "{text}");
    assert!(text.contains("Subject: big"), "{text}");
    let message = crate::inbound::parser().parse(&raw).unwrap();
    assert_eq!(message.body_text(0).unwrap().trim(), "café");
    let bare = assemble(b"From: a@example.org\r\n\r\n", &[]);
    assert!(crate::inbound::parser().parse(&bare).is_some());
}

fn structure(text: &str) -> imap_proto::BodyStructure<'static> {
    let response = format!("* 1 FETCH (UID 1 BODYSTRUCTURE {text})\r\n");
    client::parse_fetch(response.into_bytes())
        .unwrap()
        .body_structure
        .unwrap()
}

#[test]
fn parts_are_found_by_path() {
    let root = structure(
        "((\"text\" \"plain\" NIL NIL NIL \"7bit\" 1 1)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 100 (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) ((\"text\" \"plain\" NIL NIL NIL \"7bit\" 1 1)(\"image\" \"png\" NIL NIL NIL \"base64\" 8) \"mixed\") 5) \"mixed\")",
    );
    let (ct, encoding) = describe_part(part_at(&root, &[2, 2]).unwrap());
    assert_eq!(ct.as_deref(), Some("image/png"));
    assert_eq!(encoding, "base64");
    assert_eq!(
        describe_part(part_at(&root, &[2]).unwrap()).0.as_deref(),
        Some("message/rfc822")
    );
    assert!(part_at(&root, &[3]).is_none());
    assert!(part_at(&root, &[1, 1]).is_none());
    let single = structure("(\"application\" \"pdf\" NIL NIL NIL \"base64\" 8)");
    assert!(part_at(&single, &[1]).is_some());
    assert!(part_at(&single, &[2]).is_none());
    let texts = text_parts(&root);
    assert_eq!(texts.len(), 1);
    assert_eq!(texts[0].path, "1");
}

const PDF_MESSAGE: &str = "((\"text\" \"plain\" NIL NIL NIL \"7bit\" 1 1)(\"application\" \"pdf\" (\"name\" \"a.pdf\") NIL NIL \"base64\" 14) \"mixed\")";

#[test]
fn a_referenced_part_is_fetched_and_decoded() {
    let server = format!(
        "{GREETING}sb1 OK Logged in\r\n{}* 1 FETCH (UID 42 BODYSTRUCTURE {PDF_MESSAGE} BODY[2]<0> {})\r\nsb3 OK done\r\n",
        examine(7, 50, 1, "sb2"),
        literal("JVBERi0x\r\nLjQ=\r\n")
    );
    let mut session = logged_in(&server);
    let reference = PartReference::parse("imap:7/42/2").unwrap();
    let file = fetch_part(&mut session, "INBOX", &reference).unwrap();
    assert_eq!(file.content, b"%PDF-1.4");
    assert_eq!(file.content_type.as_deref(), Some("application/pdf"));
    assert!(
        transcript(session)
            .contains("sb3 UID FETCH 42 (UID BODYSTRUCTURE BODY.PEEK[2]<0.1048576>)")
    );

    let server = format!("{GREETING}sb1 OK Logged in\r\n{}", examine(8, 50, 1, "sb2"));
    let mut session = logged_in(&server);
    assert!(matches!(
        fetch_part(&mut session, "INBOX", &reference),
        Err(PluginError::Permanent(_))
    ));
    for bad in [
        "imap:7/42/",
        "imap:x/1/1",
        "imap:7/42/0",
        "imap:7/42/1..2",
        "http://x/1",
    ] {
        assert_eq!(PartReference::parse(bad), None, "{bad}");
    }
}

/// A sink that refuses bytes past `max`, like the host's writer.
struct Capped {
    bytes: Vec<u8>,
    max: usize,
}

impl PartSink for Capped {
    fn write(&mut self, bytes: &[u8]) -> Result<(), PluginError> {
        if self.bytes.len() + bytes.len() > self.max {
            return Err(PluginError::Permanent("too large".into()));
        }
        self.bytes.extend_from_slice(bytes);
        Ok(())
    }
}

#[test]
fn a_part_is_copied_in_chunks_decoded_across_their_boundaries() {
    // "%PDF-1.4" as base64 in lines, sent 5 bytes at a time: every chunk
    // ends inside a base64 quad or a line break.
    let encoded = "JVBE\r\nRi0x\r\nLjQ=\r\n";
    let chunks: Vec<&str> = encoded
        .as_bytes()
        .chunks(5)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let mut server = format!(
        "{GREETING}sb1 OK Logged in\r\n{}* 1 FETCH (UID 42 BODYSTRUCTURE {PDF_MESSAGE} BODY[2]<0> {})\r\nsb3 OK done\r\n",
        examine(7, 50, 1, "sb2"),
        literal(chunks[0]),
    );
    for (i, chunk) in chunks.iter().enumerate().skip(1) {
        server.push_str(&format!(
            "* 1 FETCH (UID 42 BODY[2]<{}> {})\r\nsb{} OK done\r\n",
            i * 5,
            literal(chunk),
            i + 3
        ));
    }
    let mut session = logged_in(&server);
    let reference = PartReference::parse("imap:7/42/2").unwrap();
    let mut sink = Vec::new();
    let content_type = fetch_part_in_chunks(&mut session, "INBOX", &reference, &mut sink, 5);
    assert_eq!(content_type.unwrap().as_deref(), Some("application/pdf"));
    assert_eq!(sink, b"%PDF-1.4");
    let sent = transcript(session);
    assert!(sent.contains("sb3 UID FETCH 42 (UID BODYSTRUCTURE BODY.PEEK[2]<0.5>)"));
    assert!(sent.contains("sb4 UID FETCH 42 (UID BODY.PEEK[2]<5.5>)"));
    assert!(
        sent.ends_with("sb6 UID FETCH 42 (UID BODY.PEEK[2]<15.5>)\r\n"),
        "{sent}"
    );
}

#[test]
fn a_copy_stops_at_the_first_refused_write() {
    let server = format!(
        "{GREETING}sb1 OK Logged in\r\n{}* 1 FETCH (UID 42 BODYSTRUCTURE {PDF_MESSAGE} BODY[2]<0> {})\r\nsb3 OK done\r\n\
* 1 FETCH (UID 42 BODY[2]<8> {})\r\nsb4 OK done\r\n",
        examine(7, 50, 1, "sb2"),
        literal("JVBERi0x"),
        literal("LjQxLjQx"),
    );
    let mut session = logged_in(&server);
    let reference = PartReference::parse("imap:7/42/2").unwrap();
    let mut sink = Capped {
        bytes: Vec::new(),
        max: 7,
    };
    let result = fetch_part_in_chunks(&mut session, "INBOX", &reference, &mut sink, 8);
    assert!(matches!(result, Err(PluginError::Permanent(m)) if m == "too large"));
    assert_eq!(sink.bytes, b"%PDF-1", "the first chunk, then nothing more");
    let sent = transcript(session);
    assert!(sent.contains("sb4 UID FETCH 42 (UID BODY.PEEK[2]<8.8>)"));
    assert!(
        !sent.contains("sb5"),
        "no more chunks are asked for: {sent}"
    );
}

#[test]
fn a_server_ignoring_the_partial_fetch_is_refused() {
    let server = format!(
        "{GREETING}sb1 OK Logged in\r\n{}* 1 FETCH (UID 42 BODYSTRUCTURE {PDF_MESSAGE} BODY[2] {})\r\nsb3 OK done\r\n",
        examine(7, 50, 1, "sb2"),
        literal("JVBERi0x\r\nLjQ=\r\n"),
    );
    let mut session = logged_in(&server);
    let reference = PartReference::parse("imap:7/42/2").unwrap();
    let result = fetch_part_in_chunks(&mut session, "INBOX", &reference, &mut Vec::new(), 4);
    assert!(matches!(result, Err(PluginError::Transient(m)) if m.contains("when 4 were asked")));
}

#[test]
fn file_parts_are_capped_and_do_not_descend_into_messages_or_too_deep() {
    let many = format!(
        "({} \"mixed\")",
        "(\"image\" \"png\" NIL NIL NIL \"base64\" 8 NIL NIL NIL NIL)".repeat(5)
    );
    let root = structure(&many);
    let (files, more) = file_parts(&root, &[], 3);
    assert_eq!(
        files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(),
        ["1", "2", "3"]
    );
    assert_eq!(more, 2);
    assert_eq!(files[0].estimated_size(), 6);
    let single = structure("(\"application\" \"pdf\" NIL NIL NIL \"base64\" 780 NIL NIL NIL NIL)");
    let (files, more) = file_parts(&single, &[], 3);
    assert_eq!(
        (files[0].path.as_str(), files[0].estimated_size(), more),
        ("1", 570, 0)
    );
    let text = structure("(\"text\" \"plain\" NIL NIL NIL \"7bit\" 4 1 NIL NIL NIL NIL)");
    assert!(file_parts(&text, &["1"], 3).0.is_empty());
    let mut deep = "(\"image\" \"gif\" NIL NIL NIL \"base64\" 8 NIL NIL NIL NIL)".to_owned();
    for _ in 0..MAX_PART_DEPTH + 2 {
        deep = format!("({deep} \"mixed\")");
    }
    // imap-proto parses nesting by recursion, deeper than a test thread's
    // stack holds in a debug build.
    let files = std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(move || file_parts(&structure(&deep), &[], 3).0)
        .unwrap()
        .join()
        .unwrap();
    assert!(
        files.is_empty(),
        "deeper than MAX_PART_DEPTH is not reached"
    );
}
