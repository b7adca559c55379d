//! The two-leg media relay of a bridged call.
//!
//! A [`Relay`] owns what crosses the bridge: RTP from one [`Leg`] is forwarded to the
//! other with its payload bytes untouched (both legs speak the same G.711 codec, so
//! there is no transcoding) but with SSRC, sequence number and timestamp rewritten into
//! the outgoing leg's own stream. Each leg therefore hears one continuous source for the
//! whole call, whoever is on the other side: when a transfer re-bridges the caller to a
//! new agent, or hold music stops and the agent comes back, the caller's stream carries
//! on at the next sequence number with a timestamp that moved forward by the time that
//! passed, and the marker bit tells its jitter buffer to resynchronize.
//!
//! It never opens a socket or reads a clock: datagrams and `now` (milliseconds) come in,
//! [`Output`]s go out. RTCP is detected and counted, not forwarded: reports describe one
//! leg's stream and mean nothing on the other; terminating them is the driver's job.

use thiserror::Error;

use crate::Leg;
use crate::dtmf::{DtmfPacket, DtmfReceiver, TelephoneEvent};
use crate::g711::Codec;
use crate::player::Frame;
use crate::rtp::{PacketKind, RtpPacket, SequenceUnwrapper, classify};

/// Where an outgoing stream starts. Production picks these at random (RFC 3550 §5.1);
/// tests pick them to read well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamStart {
    /// The SSRC the relay uses towards this leg for the whole call.
    pub ssrc: u32,
    /// The first sequence number sent.
    pub sequence: u16,
    /// The first timestamp sent.
    pub timestamp: u32,
}

/// What was negotiated for one leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegConfig {
    /// The relay's outgoing stream towards this leg.
    pub outgoing: StreamStart,
    /// The leg's `telephone-event` payload type, if it negotiated RFC 4733 DTMF.
    pub telephone_event: Option<u8>,
}

/// The negotiated shape of the bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayConfig {
    /// The audio codec both legs speak.
    pub codec: Codec,
    /// Leg A, the caller's side.
    pub a: LegConfig,
    /// Leg B, the agent's side.
    pub b: LegConfig,
}

/// A bridge that cannot be set up as configured.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RelayError {
    /// A telephone-event payload type outside 0–127 or equal to the codec's.
    #[error(
        "leg {leg:?} telephone-event payload type {payload_type} is not a free 7-bit payload type"
    )]
    BadTelephoneEvent {
        /// The misconfigured leg.
        leg: Leg,
        /// The payload type given.
        payload_type: u8,
    },
}

/// Counters for one leg: what came in from it and what went out to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LegStats {
    /// Datagrams received from the leg (RTP and RTCP, well-formed or not).
    pub packets_in: u64,
    /// Bytes of those datagrams.
    pub bytes_in: u64,
    /// RTP packets sent to the leg, forwarded or played.
    pub packets_out: u64,
    /// Bytes of those packets.
    pub bytes_out: u64,
    /// RTP from the leg whose payload type is neither the codec nor its telephone-event.
    pub dropped_payload_type: u64,
    /// Audio packets in the other G.711 law, converted to the call's codec.
    pub converted: u64,
    /// RTP from the leg dropped because the call is on hold.
    pub dropped_on_hold: u64,
    /// Datagrams from the leg that were neither valid RTP nor RTCP.
    pub dropped_malformed: u64,
    /// RTCP packets received from the leg (counted, not forwarded).
    pub rtcp_in: u64,
    /// Packets the leg's sources never delivered, judged by sequence gaps; a packet that
    /// arrives late after its gap was counted is taken back off.
    pub lost: u64,
    /// DTMF digits the leg pressed.
    pub digits: u64,
}

impl LegStats {
    /// Everything received from the leg and not forwarded, for any reason.
    pub fn dropped(&self) -> u64 {
        self.dropped_payload_type + self.dropped_on_hold + self.dropped_malformed
    }
}

/// What the driver must do after an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send this RTP datagram to the leg.
    Transmit {
        /// The leg to send to.
        to: Leg,
        /// The datagram.
        packet: Vec<u8>,
    },
    /// A DTMF digit pressed on a leg (reported once per key press).
    Digit {
        /// The leg that pressed it.
        from: Leg,
        /// `0`–`9`, `*`, `#` or `A`–`D`.
        digit: char,
    },
}

/// Who is feeding an outgoing stream right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// A remote sender on the other leg, by its SSRC.
    Remote(u32),
    /// The host itself: prompts and hold music.
    Local,
}

/// The offsets that map one source's numbers onto an outgoing stream.
#[derive(Debug, Clone, Copy)]
struct Mapping {
    source: Source,
    sequence_delta: u16,
    timestamp_delta: u32,
}

/// The highest packet sent on an outgoing stream.
#[derive(Debug, Clone, Copy)]
struct Sent {
    sequence: u16,
    timestamp: u32,
    at: u64,
    samples: u32,
}

/// The relay's stream towards one leg.
#[derive(Debug, Clone)]
struct OutgoingStream {
    start: StreamStart,
    mapping: Option<Mapping>,
    last: Option<Sent>,
    /// The local source's own sequence counter.
    local_sequence: u16,
}

impl OutgoingStream {
    fn new(start: StreamStart) -> Self {
        OutgoingStream {
            start,
            mapping: None,
            last: None,
            local_sequence: 0,
        }
    }

    /// Maps a source's sequence number and timestamp into this stream; the flag says a
    /// new source took over, so the packet must carry the marker bit.
    fn map(
        &mut self,
        now: u64,
        source: Source,
        sequence: u16,
        timestamp: u32,
        samples: u32,
    ) -> (u16, u32, bool) {
        let (mapping, switched) = match self.mapping {
            Some(mapping) if mapping.source == source => (mapping, false),
            _ => {
                let (next_sequence, next_timestamp) = match self.last {
                    None => (self.start.sequence, self.start.timestamp),
                    Some(last) => {
                        // Move the clock on by the wall time that passed, and at least by
                        // what the last packet played, so timestamps never repeat or go back.
                        let elapsed = now
                            .saturating_sub(last.at)
                            .saturating_mul(u64::from(Codec::CLOCK_RATE) / 1000);
                        let advance = elapsed
                            .max(u64::from(last.samples))
                            .clamp(1, u64::from(u32::MAX / 2));
                        (
                            last.sequence.wrapping_add(1),
                            last.timestamp.wrapping_add(advance as u32),
                        )
                    }
                };
                let mapping = Mapping {
                    source,
                    sequence_delta: next_sequence.wrapping_sub(sequence),
                    timestamp_delta: next_timestamp.wrapping_sub(timestamp),
                };
                self.mapping = Some(mapping);
                (mapping, true)
            }
        };
        let out_sequence = sequence.wrapping_add(mapping.sequence_delta);
        let out_timestamp = timestamp.wrapping_add(mapping.timestamp_delta);
        let newer = self
            .last
            .is_none_or(|last| (out_sequence.wrapping_sub(last.sequence) as i16) > 0);
        if newer || switched {
            self.last = Some(Sent {
                sequence: out_sequence,
                timestamp: out_timestamp,
                at: now,
                samples,
            });
        }
        (out_sequence, out_timestamp, switched)
    }
}

/// Loss accounting for the current source on one incoming leg.
#[derive(Debug, Clone, Default)]
struct Incoming {
    ssrc: Option<u32>,
    sequence: SequenceUnwrapper,
}

#[derive(Debug, Clone)]
struct LegState {
    config: LegConfig,
    stats: LegStats,
    incoming: Incoming,
    outgoing: OutgoingStream,
    dtmf: DtmfReceiver,
}

/// A sans-IO two-leg relay; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Relay {
    codec: Codec,
    held: bool,
    a: LegState,
    b: LegState,
}

impl Relay {
    /// A relay for a freshly bridged call.
    pub fn new(config: RelayConfig) -> Result<Self, RelayError> {
        for (leg, leg_config) in [(Leg::A, config.a), (Leg::B, config.b)] {
            if let Some(payload_type) = leg_config.telephone_event
                && (payload_type > 0x7F || payload_type == config.codec.payload_type())
            {
                return Err(RelayError::BadTelephoneEvent { leg, payload_type });
            }
        }
        let leg = |config: LegConfig| LegState {
            config,
            stats: LegStats::default(),
            incoming: Incoming::default(),
            outgoing: OutgoingStream::new(config.outgoing),
            dtmf: DtmfReceiver::new(),
        };
        Ok(Relay {
            codec: config.codec,
            held: false,
            a: leg(config.a),
            b: leg(config.b),
        })
    }

    /// The codec both legs speak.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// Puts the call on hold (nothing is forwarded either way; the host plays hold music
    /// with [`Relay::play`]) or takes it off.
    pub fn set_hold(&mut self, held: bool) {
        self.held = held;
    }

    /// Changes a leg's `telephone-event` payload type: the agent leg of a call is
    /// bridged (or re-bridged after a transfer) to a browser that negotiated its own.
    pub fn set_telephone_event(
        &mut self,
        leg: Leg,
        payload_type: Option<u8>,
    ) -> Result<(), RelayError> {
        if let Some(pt) = payload_type
            && (pt > 127 || pt == self.codec.payload_type())
        {
            return Err(RelayError::BadTelephoneEvent {
                leg,
                payload_type: pt,
            });
        }
        self.leg_mut(leg).config.telephone_event = payload_type;
        Ok(())
    }

    /// Stamps a host-generated DTMF packet (from a [`DtmfSender`](crate::DtmfSender)
    /// started at `started_at`) into the stream towards `to`; `None` when that leg
    /// negotiated no telephone events. Every packet of one digit carries the same RTP
    /// timestamp, the digit's start.
    pub fn play_event(&mut self, to: Leg, started_at: u64, packet: &DtmfPacket) -> Option<Vec<u8>> {
        let target = self.leg_mut(to);
        let payload_type = target.config.telephone_event?;
        let stream = &mut target.outgoing;
        let local_sequence = stream.local_sequence;
        stream.local_sequence = local_sequence.wrapping_add(1);
        let local_timestamp = started_at.wrapping_mul(u64::from(Codec::CLOCK_RATE) / 1000) as u32;
        let (sequence, timestamp, switched) = stream.map(
            started_at,
            Source::Local,
            local_sequence,
            local_timestamp,
            0,
        );
        let payload = packet.event.to_bytes();
        let mut rtp = RtpPacket::new(
            payload_type,
            sequence,
            timestamp,
            target.config.outgoing.ssrc,
            &payload,
        );
        rtp.marker = packet.marker || switched;
        Some(target.send(&rtp))
    }

    /// Whether the call is on hold.
    pub fn is_held(&self) -> bool {
        self.held
    }

    /// The counters for one leg.
    pub fn stats(&self, leg: Leg) -> &LegStats {
        &self.leg(leg).stats
    }

    fn leg(&self, leg: Leg) -> &LegState {
        match leg {
            Leg::A => &self.a,
            Leg::B => &self.b,
        }
    }

    fn leg_mut(&mut self, leg: Leg) -> &mut LegState {
        match leg {
            Leg::A => &mut self.a,
            Leg::B => &mut self.b,
        }
    }

    /// Handles one datagram received from a leg at `now`.
    pub fn handle_packet(&mut self, now: u64, from: Leg, datagram: &[u8]) -> Vec<Output> {
        let codec = self.codec;
        let held = self.held;
        let mut outputs = Vec::new();
        let state = self.leg_mut(from);
        state.stats.packets_in += 1;
        state.stats.bytes_in += datagram.len() as u64;

        match classify(datagram) {
            PacketKind::Rtcp => {
                state.stats.rtcp_in += 1;
                return outputs;
            }
            PacketKind::Other => {
                state.stats.dropped_malformed += 1;
                return outputs;
            }
            PacketKind::Rtp => {}
        }
        let Ok(packet) = RtpPacket::parse(datagram) else {
            state.stats.dropped_malformed += 1;
            return outputs;
        };
        state.count_loss(&packet);

        let is_event = state.config.telephone_event == Some(packet.payload_type);
        // The other G.711 law (a browser that prefers PCMU on a PCMA call) is
        // converted sample by sample, a table lookup each way; anything else that is
        // not the call's codec or its events is dropped.
        let converted = match Codec::from_payload_type(packet.payload_type) {
            Some(other) if other != codec && !is_event => {
                state.stats.converted += 1;
                Some(codec.encode(&other.decode(packet.payload)))
            }
            _ => None,
        };
        let is_audio = packet.payload_type == codec.payload_type() || converted.is_some();
        if !is_audio && !is_event {
            state.stats.dropped_payload_type += 1;
            return outputs;
        }
        if is_event {
            let Ok(event) = TelephoneEvent::parse(packet.payload) else {
                state.stats.dropped_malformed += 1;
                return outputs;
            };
            if let Some(digit) = state.dtmf.handle(packet.ssrc, packet.timestamp, &event) {
                state.stats.digits += 1;
                outputs.push(Output::Digit { from, digit });
            }
        }
        if held {
            state.stats.dropped_on_hold += 1;
            return outputs;
        }

        let to = from.other();
        let target = self.leg_mut(to);
        let payload_type = if is_audio {
            codec.payload_type()
        } else if let Some(event_type) = target.config.telephone_event {
            event_type
        } else {
            // The other side cannot receive events; the digit was still reported.
            return outputs;
        };
        let samples = if is_audio {
            packet.payload.len() as u32
        } else {
            0
        };
        let (sequence, timestamp, switched) = target.outgoing.map(
            now,
            Source::Remote(packet.ssrc),
            packet.sequence,
            packet.timestamp,
            samples,
        );
        let payload = converted.as_deref().unwrap_or(packet.payload);
        let mut forwarded = RtpPacket::new(
            payload_type,
            sequence,
            timestamp,
            target.config.outgoing.ssrc,
            payload,
        );
        forwarded.marker = packet.marker || switched;
        outputs.push(Output::Transmit {
            to,
            packet: target.send(&forwarded),
        });
        outputs
    }

    /// Stamps a host-generated frame (a prompt, hold music) into the stream towards `to`
    /// and returns the datagram to send. Its timestamp follows the frame's due time, so
    /// frames from [`Player`](crate::Player) are spaced exactly 160 apart.
    pub fn play(&mut self, to: Leg, frame: &Frame) -> Vec<u8> {
        let payload_type = self.codec.payload_type();
        let target = self.leg_mut(to);
        let stream = &mut target.outgoing;
        let local_sequence = stream.local_sequence;
        stream.local_sequence = local_sequence.wrapping_add(1);
        let local_timestamp = frame.at.wrapping_mul(u64::from(Codec::CLOCK_RATE) / 1000) as u32;
        let (sequence, timestamp, switched) = stream.map(
            frame.at,
            Source::Local,
            local_sequence,
            local_timestamp,
            frame.payload.len() as u32,
        );
        let mut packet = RtpPacket::new(
            payload_type,
            sequence,
            timestamp,
            target.config.outgoing.ssrc,
            &frame.payload,
        );
        packet.marker = frame.first || switched;
        target.send(&packet)
    }
}

impl LegState {
    fn count_loss(&mut self, packet: &RtpPacket<'_>) {
        if self.incoming.ssrc != Some(packet.ssrc) {
            self.incoming = Incoming {
                ssrc: Some(packet.ssrc),
                sequence: SequenceUnwrapper::new(),
            };
        }
        let highest = self.incoming.sequence.highest();
        let extended = self.incoming.sequence.unwrap(packet.sequence);
        match highest {
            Some(highest) if extended > highest => self.stats.lost += extended - highest - 1,
            Some(highest) if extended < highest => {
                self.stats.lost = self.stats.lost.saturating_sub(1)
            }
            _ => {}
        }
    }

    fn send(&mut self, packet: &RtpPacket<'_>) -> Vec<u8> {
        // Built by the relay: payload types checked in `Relay::new`, no CSRCs, no
        // extension.
        let bytes = packet
            .to_bytes()
            .expect("relay packets are always serializable");
        self.stats.packets_out += 1;
        self.stats.bytes_out += bytes.len() as u64;
        bytes
    }
}
