//! RTP packets (RFC 3550 §5.1), RTCP demultiplexing (RFC 5761 §4) and extended sequence
//! numbers (RFC 3550 §A.1).
//!
//! This module owns the wire format only: [`RtpPacket::parse`] borrows a datagram and
//! checks every length before it reads, so junk from the network yields an [`RtpError`],
//! never a panic; [`RtpPacket::to_bytes`] builds the datagram back. It never decides what
//! a packet means for a call — that is the relay's job.

use thiserror::Error;

/// The fixed RTP header is 12 bytes.
pub const RTP_HEADER_LEN: usize = 12;

/// Why a datagram is not a well-formed RTP packet, or a packet cannot be serialized.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RtpError {
    /// Shorter than the 12-byte fixed header.
    #[error("RTP packet of {len} bytes is shorter than the 12-byte fixed header")]
    TooShort {
        /// The datagram length.
        len: usize,
    },
    /// The version bits are not 2.
    #[error("RTP version {version} is not 2")]
    BadVersion {
        /// The version found in the top two bits.
        version: u8,
    },
    /// The CSRC count promises more identifiers than the datagram holds.
    #[error("RTP header lists {count} CSRCs, needing {needed} bytes, but the packet has {len}")]
    CsrcTruncated {
        /// The CSRC count from the first byte.
        count: usize,
        /// Bytes the header plus CSRC list need.
        needed: usize,
        /// The datagram length.
        len: usize,
    },
    /// The header extension runs past the end of the datagram.
    #[error("RTP header extension needs {needed} bytes, but the packet has {len}")]
    ExtensionTruncated {
        /// Bytes the header, CSRCs and extension need.
        needed: usize,
        /// The datagram length.
        len: usize,
    },
    /// The padding flag is set but the padding count is zero or eats into the header.
    #[error("RTP padding of {padding} bytes is invalid with {available} bytes after the header")]
    BadPadding {
        /// The padding count from the last byte.
        padding: usize,
        /// Bytes available after the header, CSRCs and extension.
        available: usize,
    },
    /// Serialization: a payload type must fit in 7 bits.
    #[error("RTP payload type {0} does not fit in 7 bits")]
    PayloadTypeOutOfRange(u8),
    /// Serialization: at most 15 CSRCs fit in the 4-bit count.
    #[error("{0} CSRCs do not fit in the 4-bit CSRC count")]
    TooManyCsrcs(usize),
    /// Serialization: extension data must be whole 32-bit words, at most 65535 of them.
    #[error("RTP header extension of {0} bytes is not a whole number of 32-bit words below 2^16")]
    BadExtensionLength(usize),
}

/// An RTP header extension (RFC 3550 §5.3.1): a profile-defined 16-bit value and data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpExtension<'a> {
    /// The profile-specific identifier (`0xBEDE` for RFC 8285 one-byte headers).
    pub profile: u16,
    /// The extension body, a whole number of 32-bit words.
    pub data: &'a [u8],
}

/// One RTP packet, borrowing its payload from the datagram it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    /// The marker bit; for audio, the first packet of a talkspurt.
    pub marker: bool,
    /// The 7-bit payload type.
    pub payload_type: u8,
    /// The 16-bit sequence number.
    pub sequence: u16,
    /// The media timestamp, in clock-rate units (8000 Hz for G.711).
    pub timestamp: u32,
    /// The synchronization source.
    pub ssrc: u32,
    /// Contributing sources, at most 15.
    pub csrcs: Vec<u32>,
    /// The header extension, if the X bit was set.
    pub extension: Option<RtpExtension<'a>>,
    /// The payload, without padding.
    pub payload: &'a [u8],
    /// Padding bytes after the payload (0 when the P bit is clear), including the count
    /// byte itself.
    pub padding: u8,
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl<'a> RtpPacket<'a> {
    /// A packet with no CSRCs, extension or padding.
    pub fn new(
        payload_type: u8,
        sequence: u16,
        timestamp: u32,
        ssrc: u32,
        payload: &'a [u8],
    ) -> Self {
        RtpPacket {
            marker: false,
            payload_type,
            sequence,
            timestamp,
            ssrc,
            csrcs: Vec::new(),
            extension: None,
            payload,
            padding: 0,
        }
    }

    /// Parses a datagram, checking every length field against its size.
    pub fn parse(datagram: &'a [u8]) -> Result<Self, RtpError> {
        let len = datagram.len();
        if len < RTP_HEADER_LEN {
            return Err(RtpError::TooShort { len });
        }
        let first = datagram[0];
        let version = first >> 6;
        if version != 2 {
            return Err(RtpError::BadVersion { version });
        }
        let has_padding = first & 0x20 != 0;
        let has_extension = first & 0x10 != 0;
        let csrc_count = usize::from(first & 0x0F);
        let mut offset = RTP_HEADER_LEN + 4 * csrc_count;
        if offset > len {
            return Err(RtpError::CsrcTruncated {
                count: csrc_count,
                needed: offset,
                len,
            });
        }
        let csrcs = (0..csrc_count)
            .map(|i| be32(datagram, RTP_HEADER_LEN + 4 * i))
            .collect();

        let extension = if has_extension {
            if offset + 4 > len {
                return Err(RtpError::ExtensionTruncated {
                    needed: offset + 4,
                    len,
                });
            }
            let profile = be16(datagram, offset);
            let words = usize::from(be16(datagram, offset + 2));
            let start = offset + 4;
            let end = start + 4 * words;
            if end > len {
                return Err(RtpError::ExtensionTruncated { needed: end, len });
            }
            offset = end;
            Some(RtpExtension {
                profile,
                data: &datagram[start..end],
            })
        } else {
            None
        };

        let available = len - offset;
        let padding = if has_padding {
            let padding = usize::from(datagram[len - 1]);
            if padding == 0 || padding > available {
                return Err(RtpError::BadPadding { padding, available });
            }
            padding
        } else {
            0
        };

        Ok(RtpPacket {
            marker: datagram[1] & 0x80 != 0,
            payload_type: datagram[1] & 0x7F,
            sequence: be16(datagram, 2),
            timestamp: be32(datagram, 4),
            ssrc: be32(datagram, 8),
            csrcs,
            extension,
            payload: &datagram[offset..len - padding],
            // `padding` ≤ the last byte's value, so it fits.
            padding: padding as u8,
        })
    }

    /// The serialized length in bytes.
    pub fn len(&self) -> usize {
        RTP_HEADER_LEN
            + 4 * self.csrcs.len()
            + self.extension.map_or(0, |e| 4 + e.data.len())
            + self.payload.len()
            + usize::from(self.padding)
    }

    /// Whether the packet carries no payload.
    pub fn is_empty(&self) -> bool {
        self.payload.is_empty()
    }

    /// Serializes the packet; padding bytes are zero except the final count byte.
    pub fn to_bytes(&self) -> Result<Vec<u8>, RtpError> {
        if self.payload_type > 0x7F {
            return Err(RtpError::PayloadTypeOutOfRange(self.payload_type));
        }
        if self.csrcs.len() > 15 {
            return Err(RtpError::TooManyCsrcs(self.csrcs.len()));
        }
        if let Some(ext) = self.extension
            && (ext.data.len() % 4 != 0 || ext.data.len() / 4 > usize::from(u16::MAX))
        {
            return Err(RtpError::BadExtensionLength(ext.data.len()));
        }
        let mut out = Vec::with_capacity(self.len());
        out.push(
            0x80 | if self.padding > 0 { 0x20 } else { 0 }
                | if self.extension.is_some() { 0x10 } else { 0 }
                | self.csrcs.len() as u8,
        );
        out.push(if self.marker { 0x80 } else { 0 } | self.payload_type);
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        for csrc in &self.csrcs {
            out.extend_from_slice(&csrc.to_be_bytes());
        }
        if let Some(ext) = self.extension {
            out.extend_from_slice(&ext.profile.to_be_bytes());
            out.extend_from_slice(&((ext.data.len() / 4) as u16).to_be_bytes());
            out.extend_from_slice(ext.data);
        }
        out.extend_from_slice(self.payload);
        if self.padding > 0 {
            out.resize(out.len() + usize::from(self.padding) - 1, 0);
            out.push(self.padding);
        }
        Ok(out)
    }
}

/// What a datagram on a shared RTP/RTCP port is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    /// An RTP media packet (it may still fail [`RtpPacket::parse`]).
    Rtp,
    /// An RTCP packet (sender/receiver report, SDES, BYE, APP, feedback).
    Rtcp,
    /// Neither: too short, or not version 2 (STUN and DTLS land here, RFC 7983).
    Other,
}

/// Tells RTP from RTCP on a multiplexed port (RFC 5761 §4).
///
/// The second byte of RTCP is its packet type, 200–204 for SR, RR, SDES, BYE and APP
/// (205/206 for feedback). Read as RTP, that byte is the marker bit plus payload types
/// 72–76, which is why RFC 5761 forbids payload types 64–95 on a multiplexed session and
/// why the whole range 192–223 is taken as RTCP here.
pub fn classify(datagram: &[u8]) -> PacketKind {
    if datagram.len() < 4 || datagram[0] >> 6 != 2 {
        return PacketKind::Other;
    }
    if (192..=223).contains(&datagram[1]) {
        PacketKind::Rtcp
    } else {
        PacketKind::Rtp
    }
}

/// Whether a datagram is RTCP rather than RTP (see [`classify`]).
pub fn is_rtcp(datagram: &[u8]) -> bool {
    classify(datagram) == PacketKind::Rtcp
}

/// Turns 16-bit sequence numbers into a 64-bit count that does not wrap (RFC 3550 §A.1).
///
/// Each number is placed at the extended value nearest the highest one seen so far, so
/// a rollover from 65535 to 0 continues at 65536 and a packet that arrives a little late
/// keeps its place behind. The first number seen is its own extended value; a packet
/// older than that, across zero, is placed a cycle forward (a count cannot go below
/// zero) without disturbing the numbers that follow.
#[derive(Debug, Clone, Default)]
pub struct SequenceUnwrapper {
    highest: Option<u64>,
}

impl SequenceUnwrapper {
    /// An unwrapper that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The extended sequence number for `sequence`.
    pub fn unwrap(&mut self, sequence: u16) -> u64 {
        let Some(highest) = self.highest else {
            self.highest = Some(u64::from(sequence));
            return u64::from(sequence);
        };
        let delta = i64::from(sequence.wrapping_sub(highest as u16) as i16);
        let Some(extended) = highest.checked_add_signed(delta) else {
            // Older than the first packet, across zero: it cannot be counted below zero,
            // and moving `highest` a cycle ahead for it would misplace everything after.
            return highest + (delta + 65536) as u64;
        };
        if extended > highest {
            self.highest = Some(extended);
        }
        extended
    }

    /// The highest extended sequence number seen, if any.
    pub fn highest(&self) -> Option<u64> {
        self.highest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_packet_round_trips() {
        let payload = [0xFFu8; 160];
        let mut packet = RtpPacket::new(0, 65535, 0xDEAD_BEEF, 0x1234_5678, &payload);
        packet.marker = true;
        let bytes = packet.to_bytes().unwrap();
        assert_eq!(bytes.len(), 172);
        assert_eq!(
            &bytes[..12],
            &[
                0x80, 0x80, 0xFF, 0xFF, 0xDE, 0xAD, 0xBE, 0xEF, 0x12, 0x34, 0x56, 0x78
            ]
        );
        assert_eq!(RtpPacket::parse(&bytes).unwrap(), packet);
    }

    #[test]
    fn csrcs_extension_and_padding_are_skipped_to_find_the_payload() {
        let ext = [1, 2, 3, 4, 5, 6, 7, 8];
        let packet = RtpPacket {
            marker: false,
            payload_type: 8,
            sequence: 7,
            timestamp: 160,
            ssrc: 42,
            csrcs: vec![1, 2, 3],
            extension: Some(RtpExtension {
                profile: 0xBEDE,
                data: &ext,
            }),
            payload: b"voice",
            padding: 3,
        };
        let bytes = packet.to_bytes().unwrap();
        assert_eq!(bytes.len(), packet.len());
        assert_eq!(bytes[0], 0x80 | 0x20 | 0x10 | 3);
        assert_eq!(*bytes.last().unwrap(), 3);
        let parsed = RtpPacket::parse(&bytes).unwrap();
        assert_eq!(parsed.payload, b"voice");
        assert_eq!(parsed, packet);
    }

    #[test]
    fn serializing_rejects_what_the_header_cannot_express() {
        let mut packet = RtpPacket::new(128, 0, 0, 0, &[]);
        assert_eq!(packet.to_bytes(), Err(RtpError::PayloadTypeOutOfRange(128)));
        packet.payload_type = 0;
        packet.csrcs = vec![0; 16];
        assert_eq!(packet.to_bytes(), Err(RtpError::TooManyCsrcs(16)));
        packet.csrcs.clear();
        packet.extension = Some(RtpExtension {
            profile: 0,
            data: &[1, 2, 3],
        });
        assert_eq!(packet.to_bytes(), Err(RtpError::BadExtensionLength(3)));
    }

    #[test]
    fn malformed_packets_are_typed_errors() {
        let header = |first: u8| {
            let mut b = vec![first, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9];
            b.extend_from_slice(&[0xFF; 4]);
            b
        };
        let cases: Vec<(&str, Vec<u8>, RtpError)> = vec![
            ("empty", vec![], RtpError::TooShort { len: 0 }),
            (
                "eleven bytes",
                vec![0x80; 11],
                RtpError::TooShort { len: 11 },
            ),
            (
                "version 0",
                header(0x00),
                RtpError::BadVersion { version: 0 },
            ),
            (
                "version 1",
                header(0x40),
                RtpError::BadVersion { version: 1 },
            ),
            (
                "version 3",
                header(0xC0),
                RtpError::BadVersion { version: 3 },
            ),
            (
                "two CSRCs promised, one present",
                header(0x82),
                RtpError::CsrcTruncated {
                    count: 2,
                    needed: 20,
                    len: 16,
                },
            ),
            (
                "fifteen CSRCs promised",
                header(0x8F),
                RtpError::CsrcTruncated {
                    count: 15,
                    needed: 72,
                    len: 16,
                },
            ),
            (
                "extension header cut off",
                vec![0x90, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9, 0xBE],
                RtpError::ExtensionTruncated {
                    needed: 16,
                    len: 13,
                },
            ),
            (
                "extension longer than packet",
                {
                    let mut b = header(0x90);
                    b[12..16].copy_from_slice(&[0xBE, 0xDE, 0x00, 0x02]);
                    b.extend_from_slice(&[0; 4]);
                    b
                },
                RtpError::ExtensionTruncated {
                    needed: 24,
                    len: 20,
                },
            ),
            (
                "zero padding count",
                {
                    let mut b = header(0xA0);
                    b[15] = 0;
                    b
                },
                RtpError::BadPadding {
                    padding: 0,
                    available: 4,
                },
            ),
            (
                "padding longer than body",
                header(0xA0),
                RtpError::BadPadding {
                    padding: 255,
                    available: 4,
                },
            ),
        ];
        for (name, bytes, expected) in cases {
            assert_eq!(RtpPacket::parse(&bytes), Err(expected), "{name}");
        }
    }

    #[test]
    fn padding_may_consume_the_whole_payload() {
        let mut b = vec![0xA0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9];
        b.extend_from_slice(&[0, 0, 0, 4]);
        let packet = RtpPacket::parse(&b).unwrap();
        assert!(packet.is_empty());
        assert_eq!(packet.padding, 4);
    }

    #[test]
    fn rtcp_is_told_apart_from_rtp() {
        for packet_type in 200..=204u8 {
            let rtcp = [0x80, packet_type, 0, 6, 0, 0, 0, 1];
            assert_eq!(classify(&rtcp), PacketKind::Rtcp, "type {packet_type}");
            assert!(is_rtcp(&rtcp));
        }
        let pcmu = RtpPacket::new(0, 1, 2, 3, &[0xFF]).to_bytes().unwrap();
        assert_eq!(classify(&pcmu), PacketKind::Rtp);
        let mut marked_event = RtpPacket::new(101, 1, 2, 3, &[0; 4]);
        marked_event.marker = true;
        assert_eq!(classify(&marked_event.to_bytes().unwrap()), PacketKind::Rtp);
        // A STUN binding request starts with 0x00 0x01.
        assert_eq!(
            classify(&[0x00, 0x01, 0x00, 0x00, 0x21, 0x12]),
            PacketKind::Other
        );
        assert_eq!(classify(&[0x80, 200]), PacketKind::Other);
    }

    #[test]
    fn sequence_numbers_unwrap_across_rollover_and_reordering() {
        let mut unwrapper = SequenceUnwrapper::new();
        assert_eq!(unwrapper.unwrap(65534), 65534);
        assert_eq!(unwrapper.unwrap(65535), 65535);
        assert_eq!(unwrapper.unwrap(0), 65536);
        assert_eq!(
            unwrapper.unwrap(65535),
            65535,
            "a late packet keeps its place"
        );
        assert_eq!(unwrapper.unwrap(1), 65537);
        assert_eq!(unwrapper.highest(), Some(65537));
        for cycle in 1..4u64 {
            for s in (0..=65535u32).step_by(1000) {
                let extended = unwrapper.unwrap(s as u16);
                assert_eq!(extended, cycle * 65536 + u64::from(s));
            }
        }
    }

    #[test]
    fn a_packet_older_than_the_first_one_across_zero_goes_forward() {
        let mut unwrapper = SequenceUnwrapper::new();
        assert_eq!(unwrapper.unwrap(2), 2);
        assert_eq!(unwrapper.unwrap(65535), 65535);
        assert_eq!(unwrapper.unwrap(3), 3, "the stream after it is unaffected");
    }
}
