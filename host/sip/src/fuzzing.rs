//! The properties the parser must hold for any input, shared by the cargo-fuzz target
//! (`host/sip/fuzz`) and a stable `#[test]` that runs them over mutated fixtures.
//!
//! This module exists for testing; the driver never calls it.

use std::time::Instant;

use crate::message::{Framing, MAX_MESSAGE_LEN, Message, Transport, frame};
use crate::transaction::{Input, Received, TransactionLayer};

/// Runs every parser property on `data`, panicking when one fails:
///
/// - [`frame`] never claims more bytes than it was given;
/// - a parse error either drops or yields an answer that serializes;
/// - a parsed message serializes, re-parses, and comes back equal (unless its canonical
///   form outgrew [`MAX_MESSAGE_LEN`]), and its typed accessors agree before and after;
/// - the transaction layer accepts the parsed message without panicking.
pub fn check(data: &[u8]) {
    match frame(data) {
        Framing::Complete(n) => {
            assert!(n <= data.len(), "frame claimed {n} of {} bytes", data.len());
            let _ = Message::parse(&data[..n]);
        }
        Framing::KeepAlive(n) => assert!(n > 0 && n <= data.len()),
        Framing::Incomplete | Framing::Invalid => {}
    }

    let message = match Message::parse(data) {
        Ok(m) => m,
        Err(error) => {
            if let Some(answer) = error.answer() {
                assert!(matches!(answer.status(), Some(400 | 416 | 505)));
                let _ = answer.to_bytes();
            }
            return;
        }
    };

    let bytes = message.to_bytes();
    if bytes.len() <= MAX_MESSAGE_LEN {
        let again = Message::parse(&bytes).unwrap_or_else(|e| {
            panic!("re-parse failed: {e}\n{}", String::from_utf8_lossy(&bytes))
        });
        assert_eq!(again.method(), message.method());
        assert_eq!(again.uri(), message.uri());
        assert_eq!(again.status(), message.status());
        assert_eq!(again.call_id(), message.call_id());
        assert_eq!(again.cseq(), message.cseq());
        assert_eq!(again.vias(), message.vias());
        assert_eq!(again.from(), message.from());
        assert_eq!(again.to(), message.to());
        assert_eq!(again.contacts(), message.contacts());
        assert_eq!(again.body(), message.body());
        assert_eq!(again, message);
        assert_eq!(again.to_bytes(), bytes, "serialization is a fixed point");
        if let Framing::Complete(n) = frame(&bytes) {
            assert_eq!(n, bytes.len());
        }
    }

    let mut layer = TransactionLayer::new();
    let now = Instant::now();
    let _ = layer.handle_input(
        now,
        Input::Received(Received {
            message,
            source: "192.0.2.1:5060".parse().expect("literal address"),
            transport: Transport::Udp,
        }),
    );
    while layer.poll_output().is_some() {}
    if let Some(at) = layer.poll_timeout() {
        layer.handle_timeout(at);
    }
}
