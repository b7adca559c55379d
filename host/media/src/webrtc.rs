//! The agent leg of a call: the host's WebRTC endpoint for agents' browsers.
//!
//! Every agent's browser opens **one** `RTCPeerConnection` to the host when the agent logs
//! in and keeps it for the whole shift, so answering a call is instant: the audio path is
//! already up when the call is offered. The host side of those connections is a
//! [`WebRtcEndpoint`], an ICE-lite endpoint built on str0m's sans-IO `Rtc`:
//!
//! - **One UDP socket for all agents** (`SWITCHBOARD_WEBRTC_ADDR`), advertised as the
//!   only host candidate inside each SDP answer; ICE-lite needs no trickle and never
//!   sends a connectivity check of its own, it only answers the browser's.
//! - **G.711 only**: the answer offers PCMU, PCMA and `telephone-event/8000` (RFC 4733
//!   DTMF) and nothing else, so the host relays the caller's SIP audio without
//!   transcoding.
//! - **Plain RTP in and out**: audio from the browser comes out as
//!   [`WebRtcEvent::Rtp`] holding an unencrypted RTP datagram (12-byte header and
//!   payload), and [`WebRtcEndpoint::send_rtp`] takes the datagrams the call
//!   [`Relay`](crate::Relay) produces for [`Leg::B`](crate::Leg::B). To the relay the
//!   agent's leg is one more RTP leg; SRTP, DTLS and ICE stay in here.
//!
//! # Mode: str0m's RTP mode
//!
//! Each `Rtc` runs in str0m's RTP mode (the "direct API"): incoming packets arrive as
//! `Event::RtpPacket` with their header intact, and outgoing ones are written with
//! `StreamTx::write_rtp`, which keeps the payload type, sequence number, timestamp and
//! marker bit the relay chose. Frame mode would re-packetize and re-stamp every packet,
//! and could not forward telephone events as packets at all.
//!
//! # What it owns and what it must never do
//!
//! One tokio task owns the socket and every session's `Rtc`. It demultiplexes each
//! datagram with `Rtc::accepts`, drives each `Rtc` to its next timeout after every input,
//! and ends sessions whose browser disconnects or falls silent for
//! [`WebRtcConfig::consent_timeout`]. It never blocks on its consumer and keeps no
//! unbounded queue: commands, outgoing packets and events travel on bounded channels,
//! and whatever does not fit is dropped and counted in [`WebRtcStats`]. Junk on the
//! socket is dropped and counted too; it never ends a session and never panics.
//!
//! It knows nothing of calls: which session belongs to which agent, and which call is
//! bridged to it, is the call controller's business.
//!
//! The handle lives here; `driver` is the task, `session` one agent's `Rtc` without the
//! network, `model` the types all three speak and `shared` what the handles and the task
//! share. The children never import from this module, only from each other.
//!
//! # An agent logs in and takes a call
//!
//! ```no_run
//! use switchboard_media::webrtc::{WebRtcConfig, WebRtcEndpoint, WebRtcEvent};
//!
//! # async fn login(browser_offer: &str) -> Result<(), Box<dyn std::error::Error>> {
//! let (endpoint, mut events) =
//!     WebRtcEndpoint::bind(WebRtcConfig::new("127.0.0.1:3478".parse()?)).await?;
//!
//! // At login: the desk posts its offer, the host answers with its candidate inside.
//! let (session, answer, negotiated) = endpoint.accept_offer(browser_offer).await?;
//! # let _ = (answer, negotiated);
//! while let Some(event) = events.recv().await {
//!     match event {
//!         WebRtcEvent::Connected { session } => { /* the agent can take calls */ }
//!         WebRtcEvent::Rtp { session, packet } => {
//!             // relay.handle_packet(now, Leg::B, &packet), and each
//!             // Output::Transmit { to: Leg::B, packet } goes back with
//!             // endpoint.send_rtp(session, &packet)
//!         }
//!         WebRtcEvent::Disconnected { session } => { /* the agent is unreachable */ }
//!     }
//! #   let _ = session;
//! }
//! # Ok(())
//! # }
//! ```

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use str0m::Candidate;
use str0m::config::CryptoProvider;
use tokio::net::UdpSocket;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};

use crate::rtp::RtpPacket;

mod driver;
mod model;
mod session;
mod shared;

use driver::{Command, Driver, OutgoingRtp};
pub use model::{Negotiated, SessionId, WebRtcError, WebRtcEvent};
pub use shared::WebRtcStats;
use shared::{Counters, Shared};

/// How long a session may go without a datagram from its browser before it is ended.
///
/// Browsers send an ICE consent check every few seconds (RFC 7675 allows 30 s of
/// silence), so this only fires once the browser or its network is gone.
pub const DEFAULT_CONSENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Events the consumer has not read yet, at most.
const EVENT_CAPACITY: usize = 1024;
/// Outgoing RTP packets not yet handed to their session, at most (about 20 s of one call).
const OUTGOING_CAPACITY: usize = 1024;
/// Offers, renegotiations and new sessions not yet taken up by the driver, at most.
const COMMAND_CAPACITY: usize = 64;

/// Where the endpoint listens and what it advertises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebRtcConfig {
    /// The one UDP socket for all agents (`SWITCHBOARD_WEBRTC_ADDR`). Port 0 picks one.
    pub bind: SocketAddr,
    /// The address to advertise as the host candidate when browsers reach the host at a
    /// different one (a 1:1 NAT in front of it). Required when `bind` is unspecified
    /// (`0.0.0.0`), since that is not an address a browser can send to.
    pub public_addr: Option<SocketAddr>,
    /// Silence after which a session is ended; see [`DEFAULT_CONSENT_TIMEOUT`].
    pub consent_timeout: Duration,
}

impl WebRtcConfig {
    /// Listens on `bind`, advertises it as is, and uses the default consent timeout.
    pub fn new(bind: SocketAddr) -> Self {
        WebRtcConfig {
            bind,
            public_addr: None,
            consent_timeout: DEFAULT_CONSENT_TIMEOUT,
        }
    }
}

#[derive(Debug)]
struct Inner {
    local_addr: SocketAddr,
    candidate: Candidate,
    crypto: Arc<CryptoProvider>,
    commands: mpsc::Sender<Command>,
    outgoing: mpsc::Sender<OutgoingRtp>,
    shared: Arc<Shared>,
    next_session: AtomicU64,
}

/// The host's WebRTC endpoint for agents; cheap to clone, all clones drive the same
/// socket. The driver task stops when the last clone is dropped, ending every session.
#[derive(Debug, Clone)]
pub struct WebRtcEndpoint {
    inner: Arc<Inner>,
}

impl WebRtcEndpoint {
    /// Binds the socket and starts the driver task on the current tokio runtime.
    ///
    /// Fails if the socket cannot be bound, or if the address to advertise (`public_addr`,
    /// else the bound address) is not one a browser can send to.
    pub async fn bind(
        config: WebRtcConfig,
    ) -> io::Result<(WebRtcEndpoint, mpsc::Receiver<WebRtcEvent>)> {
        // Checked before binding, so a config that cannot work opens nothing.
        let unusable = |addr: SocketAddr, e: str0m::error::IceError| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "cannot advertise {addr} as the WebRTC host candidate ({e}); \
                     bind a specific address or set public_addr"
                ),
            )
        };
        let planned = config.public_addr.unwrap_or(config.bind);
        Candidate::host(planned, "udp").map_err(|e| unusable(planned, e))?;
        let socket = UdpSocket::bind(config.bind).await?;
        let local_addr = socket.local_addr()?;
        let advertised = config.public_addr.unwrap_or(local_addr);
        let candidate = Candidate::host(advertised, "udp").map_err(|e| unusable(advertised, e))?;

        let (commands, command_rx) = mpsc::channel(COMMAND_CAPACITY);
        let (outgoing, outgoing_rx) = mpsc::channel(OUTGOING_CAPACITY);
        let (events, event_rx) = mpsc::channel(EVENT_CAPACITY);
        let shared = Arc::new(Shared::default());
        let driver = Driver::new(
            socket,
            advertised,
            config.consent_timeout,
            command_rx,
            outgoing_rx,
            events,
            Arc::clone(&shared),
        );
        tokio::spawn(driver.run());

        let endpoint = WebRtcEndpoint {
            inner: Arc::new(Inner {
                local_addr,
                candidate,
                crypto: Arc::new(str0m::crypto::from_feature_flags()),
                commands,
                outgoing,
                shared,
                next_session: AtomicU64::new(1),
            }),
        };
        Ok((endpoint, event_rx))
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// Accepts a browser's SDP offer (the string in `RTCSessionDescription.sdp`) for a
    /// new session — a fresh login, or a desk that reloaded and replaces its old
    /// connection — and returns the SDP answer with the host candidate inside.
    ///
    /// The session counts in [`sessions`](Self::sessions) from now on; it reports
    /// [`WebRtcEvent::Connected`] once the browser has connected. A replaced connection
    /// lingers until its consent timeout unless the caller [`close`](Self::close)s it.
    pub async fn accept_offer(
        &self,
        offer_sdp: &str,
    ) -> Result<(SessionId, String, Negotiated), WebRtcError> {
        let inner = &self.inner;
        let accepted = session::accept(&inner.crypto, &inner.candidate, offer_sdp)?;
        let id = SessionId(inner.next_session.fetch_add(1, Ordering::Relaxed));
        let (ack, acked) = oneshot::channel();
        let command = Command::Add {
            id,
            session: Box::new(accepted.session),
            payload_types: accepted.negotiated.payload_types(),
            ack,
        };
        inner
            .commands
            .send(command)
            .await
            .map_err(|_| WebRtcError::Closed)?;
        // Answering only once the driver holds the session means the browser's first
        // connectivity check always finds it.
        acked.await.map_err(|_| WebRtcError::Closed)?;
        Ok((id, accepted.answer, accepted.negotiated))
    }

    /// Accepts a new offer on an existing session (the browser renegotiates, e.g. after
    /// an ICE restart) and returns the answer.
    ///
    /// An offer that no longer offers G.711 is still answered, since the session has
    /// taken it; `send_rtp` then refuses every packet until an offer brings G.711 back.
    pub async fn renegotiate(
        &self,
        session: SessionId,
        offer_sdp: &str,
    ) -> Result<String, WebRtcError> {
        let offer = session::parse_offer(offer_sdp)?;
        let (reply, replied) = oneshot::channel();
        self.inner
            .commands
            .send(Command::Renegotiate {
                id: session,
                offer,
                reply,
            })
            .await
            .map_err(|_| WebRtcError::Closed)?;
        replied.await.map_err(|_| WebRtcError::Closed)?
    }

    /// Sends one plain RTP datagram (as the relay produces for the agent's leg) into the
    /// session's audio track. Payload type, sequence number, timestamp and marker go to
    /// the browser as given; only the SSRC becomes the session's own. When the SSRC of
    /// the packets changes (the next call's relay), sequence numbers and timestamps are
    /// carried on from the previous stream, because the browser sees one stream for the
    /// whole login and SRTP cannot follow a jump in sequence numbers.
    ///
    /// Packets given before the session has connected are dropped and counted.
    pub fn send_rtp(&self, session: SessionId, packet: &[u8]) -> Result<(), WebRtcError> {
        let inner = &self.inner;
        let rtp = RtpPacket::parse(packet)
            .map_err(|source| WebRtcError::MalformedRtp { session, source })?;
        match inner.shared.sessions().get(&session) {
            None => return Err(WebRtcError::UnknownSession(session)),
            Some(payload_types) if !payload_types.contains(&rtp.payload_type) => {
                return Err(WebRtcError::PayloadTypeNotNegotiated {
                    session,
                    payload_type: rtp.payload_type,
                });
            }
            Some(_) => {}
        }
        let outgoing = OutgoingRtp {
            session,
            payload_type: rtp.payload_type,
            sequence: rtp.sequence,
            timestamp: rtp.timestamp,
            ssrc: rtp.ssrc,
            marker: rtp.marker,
            payload: rtp.payload.to_vec(),
        };
        match inner.outgoing.try_send(outgoing) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                Counters::bump(&inner.shared.counters.rtp_out_dropped);
                Err(WebRtcError::QueueFull { session })
            }
            Err(TrySendError::Closed(_)) => Err(WebRtcError::Closed),
        }
    }

    /// Ends a session (the agent logged out): the browser is told (DTLS close_notify) and
    /// [`WebRtcEvent::Disconnected`] follows. It stops counting in
    /// [`sessions`](Self::sessions) at once. Closing an unknown session does nothing.
    pub fn close(&self, session: SessionId) {
        if self.inner.shared.sessions().remove(&session).is_some() {
            self.inner.shared.wake.notify_one();
        }
    }

    /// How many sessions are live.
    pub fn sessions(&self) -> usize {
        self.inner.shared.sessions().len()
    }

    /// The endpoint's counters.
    pub fn stats(&self) -> WebRtcStats {
        self.inner.shared.counters.snapshot()
    }
}
