//! Switchboard's SIP stack for trunks and desk phones: a sans-IO core (the message
//! parser, the RFC 3261 transaction state machines, dialogs, digest authentication and
//! SDP offer/answer) and the thin tokio transport that drives it.
//!
//! Nothing but [`transport`] opens a socket, reads a clock or spawns a task. The core
//! turns bytes and instants into decisions; the transport owns the UDP/TCP/TLS sockets
//! and the timer and feeds the core:
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
//! - [`sdp`]: [`SessionDescription`](sdp::SessionDescription) reads and writes SDP
//!   bodies; [`negotiate`](sdp::negotiate) picks a received offer's G.711 codec,
//!   telephone-event, RTP address and direction, and
//!   [`Negotiated::answer`](sdp::Negotiated::answer) writes our answer;
//!   [`LocalAudio::offer`](sdp::LocalAudio::offer) and
//!   [`Negotiated::from_answer`](sdp::Negotiated::from_answer) do the same for calls
//!   we place.
//! - [`transport`]: [`SipEndpoint::bind`](transport::SipEndpoint::bind) listens on
//!   UDP, TCP and TLS, runs one task that owns the transaction layer, and hands the
//!   call logic [`SipEvent`](transport::SipEvent)s.
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
//! # On sockets
//!
//! The transport does that loop for you. A transaction user answers what arrives: here,
//! OPTIONS pings with 200, and INVITEs with the SDP answer to their offer, or 488 when
//! there is no codec in common:
//!
//! ```
//! use switchboard_sip::message::{Message, Method};
//! use switchboard_sip::sdp::{AudioCodec, LocalAudio, SessionDescription, negotiate};
//! use switchboard_sip::transport::{SipEndpoint, SipEvent, TransportConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let config = TransportConfig::new("127.0.0.1:0".parse().unwrap());
//! let (sip, mut events) = SipEndpoint::bind(config).await?;
//! let media = LocalAudio::new(sip.udp_addr().ip(), 40000);
//! let codecs = [AudioCodec::Pcmu, AudioCodec::Pcma];
//! # sip.shutdown(); // so this example ends
//! while let Some(event) = events.recv().await {
//!     match event {
//!         SipEvent::Request { id, request, .. } => {
//!             let response = match request.method() {
//!                 Some(Method::Invite) => {
//!                     let offer = SessionDescription::parse(request.body());
//!                     match offer.and_then(|offer| negotiate(&offer, &codecs)) {
//!                         Ok(call) => {
//!                             let mut ok = Message::response_to(&request, 200);
//!                             ok.set_body("application/sdp", call.answer(&media).to_bytes());
//!                             ok
//!                         }
//!                         Err(refused) => Message::response_to(&request, refused.status()),
//!                     }
//!                 }
//!                 _ => Message::response_to(&request, 200),
//!             };
//!             sip.respond(id, response);
//!         }
//!         SipEvent::Malformed { source, error, .. } => eprintln!("{source}: {error}"),
//!         _ => {}
//!     }
//! }
//! # Ok(())
//! # }
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
//! - The layer files every deadline in an ordered index, so a trunk's tens of thousands
//!   of lingering UDP transactions cost nothing per message.
//! - SDP answers use the offer's payload type numbers and list one codec plus the
//!   telephone-event; every stream but one plain-RTP audio stream is turned down.
//! - The transport parses in its reader tasks and keeps the layer in one task; when the
//!   call logic falls behind, new requests are answered 503 rather than queued without
//!   bound.
#![deny(missing_docs)]

pub mod dialog;
pub mod digest;
pub mod fuzzing;
pub mod message;
pub mod sdp;
pub mod transaction;
pub mod transport;
