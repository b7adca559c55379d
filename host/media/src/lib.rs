//! Switchboard's media core: what the host does with call audio, without the network.
//!
//! A call's media is anchored on the host (see "Voice" in DESIGN.md): the SIP leg is
//! plain RTP G.711, the agent's leg is WebRTC offering PCMU/PCMA, and the bridge between
//! them relays packets without transcoding. This crate is that bridge and everything the
//! host says or hears on it, **sans-IO** in the manner of str0m's `Rtc`: datagrams and
//! `now` (milliseconds on any monotonic scale) go in, datagrams and events come out. None
//! of it opens a socket, reads a clock, spawns a thread or sleeps; the voice driver owns
//! the SIP leg's UDP sockets and calls in.
//!
//! The one exception is [`webrtc`], the agent leg's endpoint: the browser's side of the
//! bridge needs ICE, DTLS and SRTP, so that module runs str0m's sans-IO `Rtc`s on one
//! tokio task with one UDP socket, and hands the relay plain RTP datagrams like any
//! other leg's.
//!
//! The pieces, from the wire up:
//!
//! - [`g711`] — PCMU (μ-law) and PCMA (A-law) encode/decode, the [`Codec`] enum.
//! - [`rtp`] — [`RtpPacket`] parse/serialize that never panics on junk, RTP/RTCP
//!   demultiplexing ([`classify`]), extended sequence numbers ([`SequenceUnwrapper`]).
//! - [`dtmf`] — RFC 4733 [`TelephoneEvent`]s, a [`DtmfReceiver`] that reports each key
//!   press once, a [`DtmfSender`] that schedules one digit's packets.
//! - [`relay`] — the two-leg [`Relay`]: forwards RTP between [`Leg::A`] (the caller) and
//!   [`Leg::B`] (the agent), each leg hearing one continuous stream across holds and
//!   transfers, with per-leg [`LegStats`].
//! - [`player`] — a [`Player`] turning a prompt into 20 ms [`Frame`]s on a clock, once
//!   or looping for hold music.
//! - [`wav`] and [`recording`] — prompt files in, a stereo call [`Recorder`] out.
//! - [`tones`] — the generator of the prompts shipped in `host/media/prompts/`.
//! - [`webrtc`] — the agent leg: a [`WebRtcEndpoint`] holding each logged-in agent's
//!   persistent peer connection (ICE-lite, PCMU/PCMA and telephone-event only), turning
//!   its SRTP into plain RTP [`WebRtcEvent`]s and back.
//!
//! # Relaying a call on virtual time
//!
//! The driver owns one [`Relay`] per bridged call. Every datagram read from a leg's
//! socket goes to [`Relay::handle_packet`]; every [`Output::Transmit`] is written to the
//! named leg's socket. While the call is on hold, nothing crosses the bridge and the
//! driver plays hold music into the caller's stream with [`Relay::play`], sleeping until
//! [`Player::poll_timeout`].
//!
//! ```
//! use switchboard_media::{
//!     Codec, Leg, LegConfig, Output, Player, Relay, RelayConfig, RtpPacket, StreamStart,
//!     tones,
//! };
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // What SDP negotiated; SSRCs and starting numbers are random in production.
//! let mut relay = Relay::new(RelayConfig {
//!     codec: Codec::Pcmu,
//!     a: LegConfig {
//!         outgoing: StreamStart { ssrc: 0xAAAA, sequence: 1000, timestamp: 0 },
//!         telephone_event: Some(101),
//!     },
//!     b: LegConfig {
//!         outgoing: StreamStart { ssrc: 0xBBBB, sequence: 5000, timestamp: 0 },
//!         telephone_event: Some(111),
//!     },
//! })?;
//! let mut now = 0; // virtual time, in ms
//! let frame = Codec::Pcmu.encode(&tones::tone(440, 20, 8000)); // 20 ms of audio
//!
//! // The agent speaks on leg B; the caller hears the relay's own stream 0xAAAA.
//! let mut to_caller = Vec::new();
//! for i in 0..3u16 {
//!     let datagram = RtpPacket::new(0, 700 + i, 9_000 + 160 * u32::from(i), 0xA6E1, &frame)
//!         .to_bytes()?;
//!     for output in relay.handle_packet(now, Leg::B, &datagram) {
//!         if let Output::Transmit { to: Leg::A, packet } = output {
//!             to_caller.push(packet); // the driver sends it to the caller's address
//!         }
//!     }
//!     now += 20;
//! }
//!
//! // The agent puts the caller on hold: the bridge goes quiet, music plays.
//! relay.set_hold(true);
//! let mut music = Player::from_samples(now, Codec::Pcmu, &tones::hold_music(), true)?;
//! while now < 200 {
//!     while let Some(frame) = music.handle_timeout(now) {
//!         to_caller.push(relay.play(Leg::A, &frame));
//!     }
//!     now = music.poll_timeout().expect("looping music never ends");
//! }
//!
//! // Transferred: a different agent (a new SSRC on leg B) picks up.
//! relay.set_hold(false);
//! let datagram = RtpPacket::new(0, 31_000, 4_000_000, 0x5EC0, &frame).to_bytes()?;
//! for output in relay.handle_packet(now, Leg::B, &datagram) {
//!     if let Output::Transmit { to: Leg::A, packet } = output {
//!         to_caller.push(packet);
//!     }
//! }
//!
//! // However many sources fed it, the caller heard one unbroken stream.
//! let heard: Vec<RtpPacket> =
//!     to_caller.iter().map(|d| RtpPacket::parse(d)).collect::<Result<_, _>>()?;
//! for pair in heard.windows(2) {
//!     assert_eq!(pair[0].ssrc, 0xAAAA);
//!     assert_eq!(pair[1].sequence, pair[0].sequence.wrapping_add(1));
//!     assert!(pair[1].timestamp > pair[0].timestamp);
//! }
//! assert_eq!(heard[0].payload, &frame[..], "payload bytes cross unchanged");
//! assert_eq!(relay.stats(Leg::B).packets_in, 4);
//! # Ok(())
//! # }
//! ```
//!
//! Recording is a separate consumer of the same packets: feed each leg's received RTP to
//! [`Recorder::record_rtp`] and call [`Recorder::finish`] when the call ends.
//!
//! # The agent's leg over WebRTC
//!
//! Leg B's datagrams do not go to a socket of the driver's: they come from and go to the
//! agent's [`WebRtcEndpoint`] session. [`WebRtcEvent::Rtp`] feeds
//! [`Relay::handle_packet`] for [`Leg::B`], each [`Output::Transmit`] to [`Leg::B`] goes
//! to [`WebRtcEndpoint::send_rtp`], and the session's [`Negotiated`] telephone-event
//! payload type is leg B's [`LegConfig::telephone_event`]. See [`webrtc`] for the
//! endpoint's own example.

#![deny(missing_docs)]

pub mod dtmf;
pub mod g711;
pub mod player;
pub mod recording;
pub mod relay;
pub mod rtp;
pub mod tones;
pub mod wav;
pub mod webrtc;

pub use dtmf::{DtmfError, DtmfPacket, DtmfReceiver, DtmfSender, TelephoneEvent};
pub use g711::Codec;
pub use player::{FRAME_BYTES, FRAME_MS, Frame, Player, PlayerError};
pub use recording::Recorder;
pub use relay::{LegConfig, LegStats, Output, Relay, RelayConfig, RelayError, StreamStart};
pub use rtp::{
    PacketKind, RtpError, RtpExtension, RtpPacket, SequenceUnwrapper, classify, is_rtcp,
};
pub use wav::{Wav, WavEncoding, WavError};
pub use webrtc::{
    Negotiated, SessionId, WebRtcConfig, WebRtcEndpoint, WebRtcError, WebRtcEvent, WebRtcStats,
};

/// One side of a bridged call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Leg {
    /// The caller's side: the SIP trunk or desk phone. Left channel in recordings.
    A,
    /// The agent's side: the WebRTC desk. Right channel in recordings.
    B,
}

impl Leg {
    /// The other side of the bridge.
    pub fn other(self) -> Leg {
        match self {
            Leg::A => Leg::B,
            Leg::B => Leg::A,
        }
    }
}
