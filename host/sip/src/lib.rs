//! Switchboard's sans-IO SIP core: the message parser, the RFC 3261 transaction state
//! machines, dialogs, and digest authentication, for trunks and desk phones.
//!
//! Nothing here opens a socket, reads a clock or spawns a thread. A thin driver (the
//! tokio transport) owns the UDP/TCP/TLS sockets and the timer; this crate turns bytes
//! and instants into decisions:
//!
//! - [`message`]: [`Message::parse`](message::Message::parse) reads one datagram or
//!   one stream frame (find it with [`message::frame`]); a
//!   [`ParseError`](message::ParseError) says whether to drop the bytes or answer them
//!   ([`ParseError::answer`](message::ParseError::answer) builds the 400/416/505).
//! - [`transaction`]: the [`TransactionLayer`](transaction::TransactionLayer) runs the
//!   four §17 state machines with timers A–K on time you pass in.
//! - [`dialog`]: [`Dialog`](dialog::Dialog) keeps Call-ID, tags, CSeqs, route set and
//!   remote target, and builds ACK, BYE and re-INVITE.
//! - [`digest`]: [`DigestServer`](digest::DigestServer) challenges REGISTERs from desk
//!   phones; [`DigestClient`](digest::DigestClient) answers a trunk's 401/407.
//!
//! # The run loop
//!
//! The driver feeds every parsed message in, then drains outputs: `Transmit` goes to
//! the socket, the rest goes to the transaction user (the call logic). When idle it
//! sleeps until [`poll_timeout`](transaction::TransactionLayer::poll_timeout).
//!
//! This example answers an INVITE over UDP with 486 Busy Here on virtual time, loses
//! the ACK, and watches the layer retransmit the 486 on timer G until timer H gives up:
//!
//! ```
//! use std::time::Instant;
//! use switchboard_sip::message::{Message, Transport};
//! use switchboard_sip::transaction::{Input, Output, Received, TransactionLayer};
//!
//! let invite = b"INVITE sip:+15551234567@switchboard.example SIP/2.0\r\n\
//!     Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKdeskphone1;rport\r\n\
//!     Max-Forwards: 70\r\n\
//!     From: <sip:1001@switchboard.example>;tag=a1\r\n\
//!     To: <sip:+15551234567@switchboard.example>\r\n\
//!     Call-ID: call-1@192.0.2.10\r\n\
//!     CSeq: 1 INVITE\r\n\
//!     Contact: <sip:1001@192.0.2.10:5060>\r\n\
//!     Content-Length: 0\r\n\r\n";
//!
//! let start = Instant::now(); // virtual time: only ever moved forward by hand
//! let mut layer = TransactionLayer::new();
//! let message = Message::parse(invite).expect("a valid INVITE");
//! layer
//!     .handle_input(
//!         start,
//!         Input::Received(Received {
//!             message,
//!             source: "192.0.2.10:5060".parse().unwrap(),
//!             transport: Transport::Udp,
//!         }),
//!     )
//!     .unwrap();
//!
//! // The layer answers 100 Trying by itself and hands the INVITE to us.
//! let mut invite_id = None;
//! while let Some(output) = layer.poll_output() {
//!     match output {
//!         Output::Transmit(t) => assert_eq!(t.message.status(), Some(100)),
//!         Output::Request { id, .. } => invite_id = Some(id),
//!         other => panic!("unexpected {other:?}"),
//!     }
//! }
//! let id = invite_id.unwrap();
//!
//! // Every agent is busy.
//! let busy = Message::response_to(layer.request(id).unwrap(), 486);
//! layer.handle_input(start, Input::Respond { id, response: busy }).unwrap();
//!
//! // The ACK never comes: run the clock until the transaction is gone.
//! let mut sent = Vec::new();
//! let mut timed_out = false;
//! loop {
//!     while let Some(output) = layer.poll_output() {
//!         match output {
//!             Output::Transmit(t) => sent.push((t.message.status(), t.destination)),
//!             Output::Timeout { .. } => timed_out = true,
//!             Output::Terminated { .. } => {}
//!             other => panic!("unexpected {other:?}"),
//!         }
//!     }
//!     let Some(at) = layer.poll_timeout() else { break };
//!     layer.handle_timeout(at);
//! }
//! assert!(timed_out, "timer H reports the missing ACK");
//! assert!(sent.iter().all(|(status, _)| *status == Some(486)));
//! assert_eq!(sent.len(), 11, "the 486 and its retransmissions on timer G");
//! assert!(layer.is_empty());
//! ```
//!
//! # Decisions
//!
//! - The layer answers CANCEL itself (200, and 487 for the pending INVITE) and
//!   retransmits 2xx responses to INVITE until the ACK (RFC 6026 "Accepted"), so the
//!   call logic only decides *what* to answer.
//! - Parsing accepts LF line ends and folded headers but rejects control characters,
//!   NUL bytes and non-UTF-8 header sections; bodies are opaque bytes.
//! - Responses to UDP requests go to the source address when `rport` was asked for and
//!   to the sent-by port otherwise; stream responses go back on the connection.
//! - Time is [`std::time::Instant`]; tests make their own and add durations to it.
#![deny(missing_docs)]

pub mod dialog;
pub mod digest;
pub mod fuzzing;
pub mod message;
pub mod transaction;
