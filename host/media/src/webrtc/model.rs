//! What the endpoint and its callers talk about: session ids, what a session reports,
//! what an offer negotiated, and why an offer or a packet was refused.
//!
//! Plain data, spoken by the handle (`webrtc`), the driver and the session code alike;
//! it depends on none of them.

use std::fmt;

use thiserror::Error;

use crate::g711::Codec;
use crate::rtp::RtpError;

/// One agent's peer connection, from its offer until it disconnects or is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "webrtc-{}", self.0)
    }
}

/// What happened on a session, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebRtcEvent {
    /// ICE and DTLS are up: media can flow both ways. Reported once per session.
    Connected {
        /// The session.
        session: SessionId,
    },
    /// Audio (or a telephone event) from the browser, as a plain RTP datagram: the
    /// 12-byte fixed header with the browser's SSRC, sequence number, timestamp, marker
    /// and payload type, then the payload. Header extensions and CSRCs are not kept.
    Rtp {
        /// The session.
        session: SessionId,
        /// The datagram, ready for [`Relay::handle_packet`](crate::Relay::handle_packet).
        packet: Vec<u8>,
    },
    /// The session ended: the browser went away, it stopped answering for the consent
    /// timeout, or [`WebRtcEndpoint::close`](crate::webrtc::WebRtcEndpoint::close) was called. Reported once per session,
    /// whether or not it ever connected.
    Disconnected {
        /// The session.
        session: SessionId,
    },
}

/// What the browser's offer and the host agreed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// The G.711 codecs both sides speak, in the answer's order: the browser's order of
    /// preference. The browser sends the first unless told otherwise, so that is the
    /// codec a call bridged to this session should use.
    pub codecs: Vec<Codec>,
    /// The browser's `telephone-event/8000` payload type (e.g. 126), if it offered one;
    /// use it as the agent leg's [`LegConfig::telephone_event`](crate::LegConfig).
    pub telephone_event: Option<u8>,
}

impl Negotiated {
    /// The payload types `WebRtcEndpoint::send_rtp` accepts on this session.
    pub(super) fn payload_types(&self) -> Vec<u8> {
        self.codecs
            .iter()
            .map(|codec| codec.payload_type())
            .chain(self.telephone_event)
            .collect()
    }
}

/// Why an offer or a packet was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WebRtcError {
    /// The offer is not SDP.
    #[error("the SDP offer does not parse: {0}")]
    MalformedOffer(String),
    /// The offer is SDP but cannot be answered (no ICE credentials, no fingerprint, …).
    #[error("the SDP offer cannot be answered: {0}")]
    OfferRejected(String),
    /// The offer has no audio the host can relay without transcoding.
    #[error("the SDP offer has no audio m-line offering PCMU or PCMA")]
    NoG711Audio,
    /// The session ended or never existed.
    #[error("there is no WebRTC session {0}")]
    UnknownSession(SessionId),
    /// `send_rtp` was given something that is not an RTP packet.
    #[error("the packet for {session} is not RTP: {source}")]
    MalformedRtp {
        /// The session it was meant for.
        session: SessionId,
        /// What is wrong with it.
        source: RtpError,
    },
    /// `send_rtp` was given a payload type the session did not negotiate.
    #[error("payload type {payload_type} was not negotiated on {session}")]
    PayloadTypeNotNegotiated {
        /// The session it was meant for.
        session: SessionId,
        /// The packet's payload type.
        payload_type: u8,
    },
    /// The outgoing queue is full (the driver is overloaded); the packet was dropped.
    #[error("the outgoing queue is full; the packet for {session} was dropped")]
    QueueFull {
        /// The session it was meant for.
        session: SessionId,
    },
    /// The endpoint's driver task has stopped.
    #[error("the WebRTC endpoint has shut down")]
    Closed,
}
