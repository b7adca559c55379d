//! DTMF digits as RFC 4733 telephone events.
//!
//! This module owns the 4-byte `telephone-event` payload ([`TelephoneEvent`]), the
//! receiving rule that turns a stream of event packets into digits exactly once
//! ([`DtmfReceiver`]), and the sending schedule for one digit on a clock passed in
//! ([`DtmfSender`]). It never builds RTP headers: all packets of one event share the RTP
//! timestamp of the event's start, which the caller owns.

use std::collections::VecDeque;

use thiserror::Error;

use crate::rtp::RtpPacket;

/// The RTP clock of telephone events sent alongside G.711 (8000 Hz).
const SAMPLES_PER_MS: u32 = 8;
/// How often a sender repeats a running event (RFC 4733 §2.5.1.2 suggests 50 ms).
pub const DTMF_INTERVAL_MS: u64 = 50;
/// How many times the final packet of an event is sent (RFC 4733 §2.5.1.4).
pub const DTMF_END_REPEATS: u8 = 3;
/// The longest event one timestamp can carry: the 16-bit duration at 8000 Hz.
pub const DTMF_MAX_DURATION_MS: u32 = u16::MAX as u32 / SAMPLES_PER_MS;

/// A malformed event payload or an impossible digit.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DtmfError {
    /// Fewer than the 4 bytes an event payload needs.
    #[error("telephone-event payload of {len} bytes is shorter than 4")]
    TooShort {
        /// The payload length.
        len: usize,
    },
    /// Not one of `0`–`9`, `*`, `#`, `A`–`D`.
    #[error("{0:?} is not a DTMF digit")]
    NotADigit(char),
    /// A duration the 16-bit field cannot carry, or zero.
    #[error("DTMF duration of {0} ms is not between 1 and {DTMF_MAX_DURATION_MS} ms")]
    BadDuration(u32),
    /// A volume outside the 6-bit field (0 is loudest, 63 quietest, in −dBm0).
    #[error("DTMF volume {0} is above 63")]
    BadVolume(u8),
}

/// The digit an event code stands for: 0–9, `*` (10), `#` (11), `A`–`D` (12–15).
pub fn event_to_digit(event: u8) -> Option<char> {
    match event {
        0..=9 => Some(char::from(b'0' + event)),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + event - 12)),
        _ => None,
    }
}

/// The event code of a digit (`a`–`d` are accepted as `A`–`D`).
pub fn digit_to_event(digit: char) -> Result<u8, DtmfError> {
    match digit {
        '0'..='9' => Ok(digit as u8 - b'0'),
        '*' => Ok(10),
        '#' => Ok(11),
        'A'..='D' => Ok(digit as u8 - b'A' + 12),
        'a'..='d' => Ok(digit as u8 - b'a' + 12),
        _ => Err(DtmfError::NotADigit(digit)),
    }
}

/// One RFC 4733 telephone-event payload (§2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// The event code; 0–15 are the DTMF digits.
    pub event: u8,
    /// The E bit: this is (a copy of) the event's final packet.
    pub end: bool,
    /// Power level in −dBm0, 0–63 (bigger is quieter).
    pub volume: u8,
    /// How long the event has lasted so far, in RTP clock units from its timestamp.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parses the first event of a payload; the reserved bit is ignored as the RFC asks.
    pub fn parse(payload: &[u8]) -> Result<Self, DtmfError> {
        let [event, flags, hi, lo, ..] = *payload else {
            return Err(DtmfError::TooShort { len: payload.len() });
        };
        Ok(TelephoneEvent {
            event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3F,
            duration: u16::from_be_bytes([hi, lo]),
        })
    }

    /// The 4-byte payload.
    pub fn to_bytes(&self) -> [u8; 4] {
        let [hi, lo] = self.duration.to_be_bytes();
        let flags = if self.end { 0x80 } else { 0 } | (self.volume & 0x3F);
        [self.event, flags, hi, lo]
    }

    /// The DTMF digit, if the event is one.
    pub fn digit(&self) -> Option<char> {
        event_to_digit(self.event)
    }
}

/// Turns telephone-event packets into digits, once per event.
///
/// An event is identified by its source and RTP timestamp: every packet of one key press
/// — the start, the 50 ms updates, the three end copies — carries the same timestamp,
/// and the next press gets a new one. The digit is reported on the first packet seen for
/// a timestamp, so a lost start packet or lost end packets still yield it exactly once.
#[derive(Debug, Clone, Default)]
pub struct DtmfReceiver {
    /// Recent (SSRC, timestamp) pairs, so reordered copies of an older event are
    /// recognized too.
    seen: VecDeque<(u32, u32)>,
}

/// How many past events a receiver remembers.
const REMEMBERED_EVENTS: usize = 16;

impl DtmfReceiver {
    /// A receiver that has seen no events.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one event from `ssrc` at RTP `timestamp`; returns the digit the first time
    /// that event is seen. Non-DTMF events (codes above 15) are remembered but yield
    /// nothing.
    pub fn handle(&mut self, ssrc: u32, timestamp: u32, event: &TelephoneEvent) -> Option<char> {
        let key = (ssrc, timestamp);
        if self.seen.contains(&key) {
            return None;
        }
        if self.seen.len() == REMEMBERED_EVENTS {
            self.seen.pop_front();
        }
        self.seen.push_back(key);
        event.digit()
    }

    /// Feeds an RTP packet already known to carry `telephone-event`.
    pub fn handle_packet(&mut self, packet: &RtpPacket<'_>) -> Result<Option<char>, DtmfError> {
        let event = TelephoneEvent::parse(packet.payload)?;
        Ok(self.handle(packet.ssrc, packet.timestamp, &event))
    }
}

/// One packet a [`DtmfSender`] wants sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfPacket {
    /// Set on the first packet of the event only.
    pub marker: bool,
    /// The payload to send, with the event's start timestamp in the RTP header.
    pub event: TelephoneEvent,
}

/// Sends one digit: a start packet, an update every [`DTMF_INTERVAL_MS`], then
/// [`DTMF_END_REPEATS`] end packets, all on a clock passed in (milliseconds).
///
/// The end copies are due at the same instant; the driver sends them back to back.
#[derive(Debug, Clone)]
pub struct DtmfSender {
    event: u8,
    volume: u8,
    start: u64,
    duration_ms: u32,
    /// Updates sent so far, the start packet included.
    updates_sent: u64,
    ends_sent: u8,
}

impl DtmfSender {
    /// A sender for `digit` lasting `duration_ms`, starting at `now`, at volume 10 (−10 dBm0).
    pub fn new(now: u64, digit: char, duration_ms: u32) -> Result<Self, DtmfError> {
        if duration_ms == 0 || duration_ms > DTMF_MAX_DURATION_MS {
            return Err(DtmfError::BadDuration(duration_ms));
        }
        Ok(DtmfSender {
            event: digit_to_event(digit)?,
            volume: 10,
            start: now,
            duration_ms,
            updates_sent: 0,
            ends_sent: 0,
        })
    }

    /// Sets the volume in −dBm0 (0 loudest, 63 quietest).
    pub fn with_volume(mut self, volume: u8) -> Result<Self, DtmfError> {
        if volume > 63 {
            return Err(DtmfError::BadVolume(volume));
        }
        self.volume = volume;
        Ok(self)
    }

    /// When the next packet is due, or `None` once the last end packet has been handed out.
    pub fn poll_timeout(&self) -> Option<u64> {
        if self.ends_sent == DTMF_END_REPEATS {
            return None;
        }
        let next_update = self.updates_sent * DTMF_INTERVAL_MS;
        if next_update < u64::from(self.duration_ms) {
            Some(self.start + next_update)
        } else {
            Some(self.start + u64::from(self.duration_ms))
        }
    }

    /// Hands out the packet due at `now`, if one is; call again until it returns `None`.
    pub fn handle_timeout(&mut self, now: u64) -> Option<DtmfPacket> {
        let due = self.poll_timeout()?;
        if now < due {
            return None;
        }
        let elapsed_ms = due - self.start;
        let end = elapsed_ms == u64::from(self.duration_ms);
        let packet = DtmfPacket {
            marker: self.updates_sent == 0 && self.ends_sent == 0,
            event: TelephoneEvent {
                event: self.event,
                end,
                volume: self.volume,
                // elapsed ≤ DTMF_MAX_DURATION_MS, checked in `new`.
                duration: (elapsed_ms * u64::from(SAMPLES_PER_MS)) as u16,
            },
        };
        if end {
            self.ends_sent += 1;
        } else {
            self.updates_sent += 1;
        }
        Some(packet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_digit_maps_to_its_event_and_back() {
        for (event, digit) in "0123456789*#ABCD".chars().enumerate() {
            assert_eq!(digit_to_event(digit), Ok(event as u8));
            assert_eq!(event_to_digit(event as u8), Some(digit));
        }
        assert_eq!(digit_to_event('d'), Ok(15));
        assert_eq!(digit_to_event('E'), Err(DtmfError::NotADigit('E')));
        assert_eq!(event_to_digit(16), None);
    }

    #[test]
    fn payload_round_trips_and_reads_the_standard_layout() {
        // Digit 5, end bit, volume 10, duration 800 (100 ms).
        let bytes = [5, 0x80 | 10, 0x03, 0x20];
        let event = TelephoneEvent::parse(&bytes).unwrap();
        assert_eq!(
            event,
            TelephoneEvent {
                event: 5,
                end: true,
                volume: 10,
                duration: 800
            }
        );
        assert_eq!(event.to_bytes(), bytes);
        assert_eq!(event.digit(), Some('5'));
        // The reserved bit is ignored on receipt.
        assert_eq!(
            TelephoneEvent::parse(&[5, 0x40 | 10, 0, 0]).unwrap().volume,
            10
        );
        assert_eq!(
            TelephoneEvent::parse(&[5, 0, 0]),
            Err(DtmfError::TooShort { len: 3 })
        );
    }

    #[test]
    fn sender_rejects_impossible_settings() {
        assert_eq!(
            DtmfSender::new(0, '1', 0).unwrap_err(),
            DtmfError::BadDuration(0)
        );
        assert!(DtmfSender::new(0, '1', DTMF_MAX_DURATION_MS).is_ok());
        assert!(DtmfSender::new(0, '1', DTMF_MAX_DURATION_MS + 1).is_err());
        assert_eq!(
            DtmfSender::new(0, 'x', 100).unwrap_err(),
            DtmfError::NotADigit('x')
        );
        let sender = DtmfSender::new(0, '1', 100).unwrap();
        assert_eq!(
            sender.with_volume(64).unwrap_err(),
            DtmfError::BadVolume(64)
        );
    }
}
