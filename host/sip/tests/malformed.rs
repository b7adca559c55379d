//! Bad packets: each is dropped or answered with the proper 4xx, and nothing panics.
//! Real-world messages round-trip through parse and serialize.

mod common;

use common::{fixture, fixtures};
use switchboard_sip::message::{Framing, Message, ParseError, frame};

#[derive(Debug, PartialEq)]
enum Outcome {
    Drop,
    Answer(u16),
}

fn outcome(bytes: &[u8]) -> Outcome {
    switchboard_sip::fuzzing::check(bytes);
    match Message::parse(bytes) {
        Ok(m) => panic!("parsed garbage: {m}"),
        Err(e) => match e.answer() {
            Some(answer) => Outcome::Answer(answer.status().unwrap()),
            None => Outcome::Drop,
        },
    }
}

fn options_with(find: &str, replace: &str) -> Vec<u8> {
    let text = String::from_utf8(fixture("options.sip")).unwrap();
    assert!(text.contains(find), "{find}");
    text.replacen(find, replace, 1).into_bytes()
}

#[test]
fn every_malformed_packet_has_a_decided_outcome() {
    let invite = fixture("invite.sip");
    let mut nul = options_with("Max-Forwards: 70", "Max-Forwards: 7\0");
    let mut huge_header = options_with("Accept:", "X-Junk: ");
    huge_header.splice(40..40, vec![b'a'; 1 << 20]);
    let mut many = String::from_utf8(fixture("options.sip")).unwrap();
    many = many.replacen("Accept:", &"X-A: 1\r\n".repeat(120), 1) + "";
    let long_line = options_with(
        "Accept: application/sdp",
        &format!("Accept: {}", "a".repeat(9000)),
    );
    let junk: Vec<u8> = (0..512u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();

    let table: Vec<(&str, Vec<u8>, Outcome)> = vec![
        ("empty", vec![], Outcome::Drop),
        ("only CRLF", b"\r\n\r\n".to_vec(), Outcome::Drop),
        ("binary junk", junk, Outcome::Drop),
        (
            "HTTP request",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            Outcome::Drop,
        ),
        (
            "truncated in the request line",
            invite[..20].to_vec(),
            Outcome::Drop,
        ),
        (
            "truncated in the headers",
            invite[..400].to_vec(),
            Outcome::Answer(400),
        ),
        (
            "truncated body",
            invite[..invite.len() - 10].to_vec(),
            Outcome::Answer(400),
        ),
        (
            "huge Content-Length",
            options_with("Content-Length: 0", "Content-Length: 4294967296000"),
            Outcome::Answer(400),
        ),
        (
            "negative Content-Length",
            options_with("Content-Length: 0", "Content-Length: -1"),
            Outcome::Answer(400),
        ),
        (
            "negative CSeq",
            options_with("CSeq: 42 OPTIONS", "CSeq: -42 OPTIONS"),
            Outcome::Answer(400),
        ),
        (
            "CSeq method mismatch",
            options_with("CSeq: 42 OPTIONS", "CSeq: 42 INVITE"),
            Outcome::Answer(400),
        ),
        (
            "missing Via",
            options_with(
                "v: SIP/2.0/UDP 198.51.100.5:5060;branch=z9hG4bKping42\r\n",
                "",
            ),
            Outcome::Drop,
        ),
        (
            "missing Call-ID",
            options_with("i: ping-000042@198.51.100.5\r\n", ""),
            Outcome::Drop,
        ),
        (
            "missing From",
            options_with("f: <sip:ping@switchboard.example>;tag=p1\r\n", ""),
            Outcome::Drop,
        ),
        (
            "header without colon",
            options_with("Max-Forwards: 70", "Max-Forwards 70"),
            Outcome::Answer(400),
        ),
        (
            "NUL byte in a header",
            std::mem::take(&mut nul),
            Outcome::Answer(400),
        ),
        ("1 MB header", huge_header, Outcome::Drop),
        ("header line over 8 KiB", long_line, Outcome::Answer(400)),
        (
            "more than 100 headers",
            many.into_bytes(),
            Outcome::Answer(400),
        ),
        (
            "bad Max-Forwards",
            options_with("Max-Forwards: 70", "Max-Forwards: many"),
            Outcome::Answer(400),
        ),
        (
            "unsupported URI scheme",
            options_with("sip:trunk.carrier.example:5060", "http://trunk.example"),
            Outcome::Answer(416),
        ),
        (
            "garbage Request-URI",
            options_with("sip:trunk.carrier.example:5060", "sip:@@"),
            Outcome::Answer(400),
        ),
        (
            "SIP/3.0",
            options_with("5060 SIP/2.0", "5060 SIP/3.0"),
            Outcome::Answer(505),
        ),
        (
            "bad method token",
            options_with("OPTIONS sip", "OPT(ONS sip"),
            Outcome::Drop,
        ),
        (
            "malformed response",
            b"SIP/2.0 200 OK\r\nVia: nonsense\r\n\r\n".to_vec(),
            Outcome::Drop,
        ),
        (
            "status out of range",
            b"SIP/2.0 999 Huh\r\n\r\n".to_vec(),
            Outcome::Drop,
        ),
        (
            "unreadable To",
            options_with("t: <sip:trunk.carrier.example>", "t: <sip:trunk"),
            Outcome::Drop,
        ),
    ];
    for (name, bytes, expected) in table {
        assert_eq!(outcome(&bytes), expected, "{name}");
    }
}

#[test]
fn a_400_goes_back_to_the_sender_with_its_identifiers() {
    let bytes = options_with("CSeq: 42 OPTIONS", "CSeq: -42 OPTIONS");
    let err = Message::parse(&bytes).unwrap_err();
    assert!(matches!(err, ParseError::BadRequest { .. }));
    let answer = err.answer().unwrap();
    assert_eq!(answer.via().unwrap().branch(), Some("z9hG4bKping42"));
    assert_eq!(answer.call_id(), Some("ping-000042@198.51.100.5"));
    assert_eq!(answer.header("CSeq"), Some("-42 OPTIONS"));
    assert!(answer.to().unwrap().tag().is_some());
}

#[test]
fn real_world_messages_round_trip() {
    for (name, bytes) in fixtures() {
        let first = Message::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let second = Message::parse(&first.to_bytes()).unwrap();
        assert_eq!(first, second, "{name}");
        assert_eq!(frame(&bytes), Framing::Complete(bytes.len()), "{name}");
        switchboard_sip::fuzzing::check(&bytes);
    }
    let invite = common::message("invite.sip");
    assert_eq!(invite.content_type(), Some("application/sdp"));
    assert!(invite.body().starts_with(b"v=0\r\n"));
    assert_eq!(
        invite.from().unwrap().display_name.as_deref(),
        Some("Front Desk")
    );
    let options = common::message("options.sip");
    assert_eq!(
        options.header("Subject"),
        Some("keep-alive, folded over two lines")
    );
    let register = common::message("register.sip");
    assert_eq!(
        register.contact().unwrap().params.value("expires"),
        Some("3600")
    );
}

#[test]
fn a_stream_splits_back_to_back_messages() {
    let mut stream = b"\r\n\r\n".to_vec();
    for (_, bytes) in fixtures() {
        stream.extend_from_slice(&bytes);
    }
    let mut messages = 0;
    let mut rest = &stream[..];
    while !rest.is_empty() {
        match frame(rest) {
            Framing::KeepAlive(n) => rest = &rest[n..],
            Framing::Complete(n) => {
                Message::parse(&rest[..n]).unwrap();
                messages += 1;
                rest = &rest[n..];
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(messages, fixtures().len());
}
