//! Shared helpers for the media scenario tests: a bridged call's configuration, packet
//! builders, and a deterministic pseudo-random source.

#![allow(dead_code)]

use switchboard_media::{Codec, Leg, LegConfig, Output, RelayConfig, RtpPacket, StreamStart};

/// The SSRC the relay uses towards the caller.
pub const TO_CALLER_SSRC: u32 = 0xCA11_0000;
/// The SSRC the relay uses towards the agent.
pub const TO_AGENT_SSRC: u32 = 0xA6E7_0000;
/// The caller's telephone-event payload type (SIP side).
pub const CALLER_EVENT_PT: u8 = 101;
/// The agent's telephone-event payload type (WebRTC side).
pub const AGENT_EVENT_PT: u8 = 126;

/// A PCMU bridge whose outgoing streams start at readable numbers.
pub fn bridge() -> RelayConfig {
    RelayConfig {
        codec: Codec::Pcmu,
        a: LegConfig {
            outgoing: StreamStart {
                ssrc: TO_CALLER_SSRC,
                sequence: 1000,
                timestamp: 10_000,
            },
            telephone_event: Some(CALLER_EVENT_PT),
        },
        b: LegConfig {
            outgoing: StreamStart {
                ssrc: TO_AGENT_SSRC,
                sequence: 5000,
                timestamp: 50_000,
            },
            telephone_event: Some(AGENT_EVENT_PT),
        },
    }
}

/// One remote sender: an SSRC with its own sequence and timestamp counters.
pub struct Phone {
    pub ssrc: u32,
    pub sequence: u16,
    pub timestamp: u32,
    pub payload_type: u8,
}

impl Phone {
    pub fn new(ssrc: u32, sequence: u16, timestamp: u32) -> Self {
        Phone {
            ssrc,
            sequence,
            timestamp,
            payload_type: 0,
        }
    }

    /// The next 20 ms audio packet, `fill` repeated 160 times.
    pub fn speak(&mut self, fill: u8) -> Vec<u8> {
        let payload = [fill; 160];
        let packet = RtpPacket::new(
            self.payload_type,
            self.sequence,
            self.timestamp,
            self.ssrc,
            &payload,
        );
        self.sequence = self.sequence.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(160);
        packet.to_bytes().unwrap()
    }

    /// Skips `count` packets, as if the network lost them.
    pub fn lose(&mut self, count: u16) {
        self.sequence = self.sequence.wrapping_add(count);
        self.timestamp = self.timestamp.wrapping_add(160 * u32::from(count));
    }
}

/// The datagrams an input produced for `leg`, parsed back.
pub fn sent_to(outputs: &[Output], leg: Leg) -> Vec<RtpPacket<'_>> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Transmit { to, packet } if *to == leg => {
                Some(RtpPacket::parse(packet).unwrap())
            }
            _ => None,
        })
        .collect()
}

/// The digits an input produced.
pub fn digits(outputs: &[Output]) -> String {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Digit { digit, .. } => Some(*digit),
            _ => None,
        })
        .collect()
}

/// xorshift64*: deterministic, so a failing mutation reproduces.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }
}
