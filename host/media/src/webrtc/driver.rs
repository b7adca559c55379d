//! The task that owns the socket and every session's `Rtc`.
//!
//! Each turn of the loop takes exactly one input — a datagram, a command, an outgoing
//! packet or a timer — hands it to the one `Rtc` it concerns, and drains that `Rtc` to
//! its next timeout before anything else touches it (str0m's single-mutation rule).
//! Sessions whose timeout has come are driven on the same loop. The loop never awaits
//! anything but its inputs: datagrams go out with `try_send_to` and events with
//! `try_send`, so a slow consumer or a full socket buffer costs packets, never the task.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::SdpOffer;
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpWrite;
use str0m::{Event, IceConnectionState, Input, Output, RtcError};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use super::model::{SessionId, WebRtcError, WebRtcEvent};
use super::session::{self, AgentSession};
use super::shared::{Counters, Shared};

/// Room kept in the event channel (`EVENT_CAPACITY` long) for `Connected` and
/// `Disconnected`: audio is dropped first.
const LIFECYCLE_RESERVE: usize = 64;
/// Larger than any datagram str0m sends or expects (its MTU ceiling is below 1500).
const RECEIVE_BUFFER: usize = 2048;
/// The longest the loop sleeps, so consent expiry is noticed within a second.
const HOUSEKEEPING: Duration = Duration::from_secs(1);

/// Work for the driver from the endpoint's handles.
pub(super) enum Command {
    /// A session whose offer was answered; acknowledged once the driver holds it.
    Add {
        id: SessionId,
        session: Box<AgentSession>,
        payload_types: Vec<u8>,
        ack: oneshot::Sender<()>,
    },
    /// A new offer on a live session.
    Renegotiate {
        id: SessionId,
        offer: SdpOffer,
        reply: oneshot::Sender<Result<String, WebRtcError>>,
    },
}

/// One packet from `send_rtp`, already checked against the session's payload types.
pub(super) struct OutgoingRtp {
    pub session: SessionId,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub marker: bool,
    pub payload: Vec<u8>,
}

/// What every session's drain writes to: the socket, the event channel, the counters.
struct Io {
    socket: UdpSocket,
    events: mpsc::Sender<WebRtcEvent>,
    shared: Arc<Shared>,
}

impl Io {
    fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    fn transmit(&self, destination: SocketAddr, datagram: &[u8]) {
        if let Err(e) = self.socket.try_send_to(datagram, destination) {
            debug!(%destination, error = %e, "WebRTC datagram not sent");
            Counters::bump(&self.counters().send_errors);
        }
    }

    /// Audio yields to `Connected`/`Disconnected`: it only takes the channel while the
    /// reserve for those is free.
    fn deliver_rtp(&self, session: SessionId, packet: Vec<u8>) {
        let sent = self.events.capacity() > LIFECYCLE_RESERVE
            && self
                .events
                .try_send(WebRtcEvent::Rtp { session, packet })
                .is_ok();
        let counters = self.counters();
        Counters::bump(if sent {
            &counters.rtp_in
        } else {
            &counters.rtp_in_dropped
        });
    }

    fn deliver_lifecycle(&self, event: WebRtcEvent) {
        if self.events.try_send(event).is_err() {
            Counters::bump(&self.counters().events_dropped);
        }
    }
}

pub(super) struct Driver {
    io: Io,
    /// The advertised host candidate: every datagram is taken as sent to it, which is
    /// what lets a 1:1 NAT's public address work on a socket bound to a private one.
    advertised: SocketAddr,
    consent_timeout: Duration,
    commands: mpsc::Receiver<Command>,
    outgoing: mpsc::Receiver<OutgoingRtp>,
    sessions: HashMap<SessionId, AgentSession>,
    /// The session that last accepted a datagram from each address: the first to ask,
    /// before the linear `accepts` scan. Entries go when their session does.
    by_source: HashMap<SocketAddr, SessionId>,
    /// The earliest session timeout, capped by the housekeeping interval.
    next_wake: Instant,
}

impl Driver {
    pub(super) fn new(
        socket: UdpSocket,
        advertised: SocketAddr,
        consent_timeout: Duration,
        commands: mpsc::Receiver<Command>,
        outgoing: mpsc::Receiver<OutgoingRtp>,
        events: mpsc::Sender<WebRtcEvent>,
        shared: Arc<Shared>,
    ) -> Self {
        Driver {
            io: Io {
                socket,
                events,
                shared,
            },
            advertised,
            consent_timeout,
            commands,
            outgoing,
            sessions: HashMap::new(),
            by_source: HashMap::new(),
            next_wake: Instant::now() + HOUSEKEEPING,
        }
    }

    pub(super) async fn run(mut self) {
        let mut buffer = vec![0u8; RECEIVE_BUFFER];
        loop {
            let wake_at = tokio::time::Instant::from_std(self.next_wake);
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    // Every handle is gone: nobody can use a session any more.
                    None => break,
                },
                Some(packet) = self.outgoing.recv() => self.on_outgoing(packet),
                received = self.io.socket.recv_from(&mut buffer) => match received {
                    Ok((len, source)) => self.on_datagram(source, &buffer[..len]),
                    Err(e) => debug!(error = %e, "WebRTC socket receive failed"),
                },
                () = self.io.shared.wake.notified() => self.end_closed_sessions(),
                () = tokio::time::sleep_until(wake_at) => {}
            }
            let now = Instant::now();
            if now >= self.next_wake {
                self.on_timeouts(now);
            }
        }
        let ids: Vec<SessionId> = self.sessions.keys().copied().collect();
        for id in ids {
            self.end(id);
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Add {
                id,
                session,
                payload_types,
                ack,
            } => {
                self.io.shared.sessions().insert(id, payload_types);
                self.sessions.insert(id, *session);
                self.after_input(id, Ok(()));
                // The caller may have given up waiting; the session stands regardless
                // and expires like any browser that never connects.
                let _ = ack.send(());
            }
            Command::Renegotiate { id, offer, reply } => {
                let _ = reply.send(self.renegotiate(id, offer));
            }
        }
    }

    fn renegotiate(&mut self, id: SessionId, offer: SdpOffer) -> Result<String, WebRtcError> {
        let session = self
            .sessions
            .get_mut(&id)
            .ok_or(WebRtcError::UnknownSession(id))?;
        let answer = session.rtc.sdp_api().accept_offer(offer);
        // Drained whether or not it was accepted: a refused offer may still have changed
        // the session.
        self.after_input(id, Ok(()));
        let answer = answer.map_err(|e| WebRtcError::OfferRejected(e.to_string()))?;
        let session = self
            .sessions
            .get(&id)
            .ok_or(WebRtcError::UnknownSession(id))?;
        let negotiated = session::negotiated(&session.rtc, session.mid);
        if negotiated.codecs.is_empty() {
            warn!(%id, "renegotiated WebRTC session no longer speaks G.711");
        }
        if let Some(payload_types) = self.io.shared.sessions().get_mut(&id) {
            *payload_types = negotiated.payload_types();
        }
        Ok(answer.to_sdp_string())
    }

    fn on_outgoing(&mut self, packet: OutgoingRtp) {
        let counters = &self.io.shared.counters;
        let Some(session) = self.sessions.get_mut(&packet.session) else {
            Counters::bump(&counters.rtp_out_dropped);
            return;
        };
        // Before the first connect there are no SRTP keys to send with. After it, str0m
        // keeps sending on the nominated pair even while an ICE restart checks new ones.
        if !session.connected {
            Counters::bump(&counters.rtp_out_dropped);
            return;
        }
        let now = Instant::now();
        let stamped = session.outgoing.map(
            now,
            packet.ssrc,
            packet.sequence,
            packet.timestamp,
            packet.marker,
        );
        let mid = session.mid;
        let mut direct = session.rtc.direct_api();
        let Some(stream) = direct.stream_tx_by_mid(mid, None) else {
            // The browser's offer made the track receive-only.
            Counters::bump(&counters.rtp_out_dropped);
            return;
        };
        stream.write_rtp(
            RtpWrite::new(
                packet.payload_type.into(),
                stamped.sequence.into(),
                stamped.timestamp,
                now,
                packet.payload,
            )
            .marker(stamped.marker),
        );
        Counters::bump(&counters.rtp_out);
        self.after_input(packet.session, Ok(()));
    }

    fn on_datagram(&mut self, source: SocketAddr, datagram: &[u8]) {
        let counters = &self.io.shared.counters;
        let Ok(contents) = datagram.try_into() else {
            Counters::bump(&counters.malformed_datagrams);
            return;
        };
        let now = Instant::now();
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.advertised,
                contents,
            },
        );
        let sessions = &self.sessions;
        let owner = self
            .by_source
            .get(&source)
            .copied()
            .filter(|id| sessions.get(id).is_some_and(|s| s.rtc.accepts(&input)))
            .or_else(|| {
                sessions
                    .iter()
                    .find(|(_, s)| s.rtc.accepts(&input))
                    .map(|(id, _)| *id)
            });
        let Some(id) = owner else {
            Counters::bump(&counters.unmatched_datagrams);
            return;
        };
        self.by_source.insert(source, id);
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        session.last_heard = now;
        let result = session.rtc.handle_input(input);
        self.after_input(id, result);
    }

    fn on_timeouts(&mut self, now: Instant) {
        let due: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.timeout <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Some(session) = self.sessions.get_mut(&id) {
                let result = session.rtc.handle_input(Input::Timeout(now));
                self.after_input(id, result);
            }
        }

        let silent: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, s)| now.saturating_duration_since(s.last_heard) >= self.consent_timeout)
            .map(|(id, _)| *id)
            .collect();
        for id in silent {
            debug!(%id, "WebRTC session silent past its consent timeout");
            self.end(id);
        }

        self.next_wake = self
            .sessions
            .values()
            .map(|s| s.timeout)
            .fold(now + HOUSEKEEPING, Instant::min);
    }

    /// Drains a session after the one input it was given, then ends it if that was the
    /// last thing it will do.
    fn after_input(&mut self, id: SessionId, result: Result<(), RtcError>) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        if let Err(e) = result {
            // A datagram that fails authentication or parsing is the sender's problem;
            // the session carries on, and str0m marks it dead itself if it cannot.
            debug!(%id, error = %e, "WebRTC session rejected a datagram");
            Counters::bump(&self.io.counters().rejected_datagrams);
        }
        if let Err(e) = drain(session, id, &self.io) {
            warn!(%id, error = %e, "WebRTC session failed");
            session.ending = true;
        }
        if session.ending || !session.rtc.is_alive() {
            self.end(id);
        } else {
            self.next_wake = self.next_wake.min(session.timeout);
        }
    }

    /// Ends every session that `close` removed from the shared map.
    fn end_closed_sessions(&mut self) {
        let closed: Vec<SessionId> = {
            let live = self.io.shared.sessions();
            self.sessions
                .keys()
                .filter(|id| !live.contains_key(id))
                .copied()
                .collect()
        };
        for id in closed {
            self.end(id);
        }
    }

    /// Removes a session, telling the browser if it is still listening.
    fn end(&mut self, id: SessionId) {
        let Some(mut session) = self.sessions.remove(&id) else {
            return;
        };
        if session.rtc.is_alive() && session.rtc.close().is_ok() {
            // Sends the RTCP BYE and DTLS close_notify; nothing after matters.
            let _ = drain(&mut session, id, &self.io);
        }
        self.by_source.retain(|_, owner| *owner != id);
        self.io.shared.sessions().remove(&id);
        self.io
            .deliver_lifecycle(WebRtcEvent::Disconnected { session: id });
        debug!(%id, "WebRTC session ended");
    }
}

/// Polls a session until it has nothing more to say and knows its next timeout.
fn drain(session: &mut AgentSession, id: SessionId, io: &Io) -> Result<(), RtcError> {
    loop {
        match session.rtc.poll_output()? {
            Output::Timeout(at) => {
                session.timeout = at;
                return Ok(());
            }
            Output::Transmit(transmit) => io.transmit(transmit.destination, &transmit.contents),
            Output::Event(event) => match event {
                Event::Connected if !session.connected => {
                    session.connected = true;
                    io.deliver_lifecycle(WebRtcEvent::Connected { session: id });
                }
                Event::IceConnectionStateChange(IceConnectionState::Disconnected)
                | Event::Closed => session.ending = true,
                Event::RtpPacket(packet) => match session::plain_rtp(&packet) {
                    Some(plain) => io.deliver_rtp(id, plain),
                    None => Counters::bump(&io.counters().rejected_datagrams),
                },
                _ => {}
            },
        }
    }
}
