//! G.711 companding (ITU-T G.711): PCMU (μ-law) and PCMA (A-law).
//!
//! This module owns the conversion between 16-bit linear samples and the 8-bit codes that
//! travel in RTP payload types 0 and 8. It is pure arithmetic: no tables to load, no
//! allocation except in the slice helpers, and no knowledge of packets or clocks.
//!
//! Linear values use the 16-bit scale every sound card and WAV file uses; G.711 itself is
//! defined on 14-bit (μ-law) and 13-bit (A-law) signed values, so decoded values are the
//! standard's reconstruction levels multiplied by 4 and 8 respectively. Both decoders
//! return the midpoint of the quantization interval, so a round trip is off by at most
//! half a step of the segment the sample falls in.

/// The bias μ-law adds before finding the segment (33 on the 14-bit scale, times 4).
const ULAW_BIAS: i32 = 0x84;
/// The largest magnitude μ-law can represent before the top segment overflows.
const ULAW_CLIP: i32 = 32635;

/// One of the two G.711 codecs, as negotiated in SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// μ-law, static RTP payload type 0 (North America, Japan).
    Pcmu,
    /// A-law, static RTP payload type 8 (rest of the world).
    Pcma,
}

impl Codec {
    /// The G.711 clock rate: 8000 samples per second, one byte per sample.
    pub const CLOCK_RATE: u32 = 8000;

    /// The static RTP payload type (RFC 3551): 0 for PCMU, 8 for PCMA.
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// The codec a static payload type stands for, if it is one of the two.
    pub fn from_payload_type(payload_type: u8) -> Option<Codec> {
        match payload_type {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        }
    }

    /// The code that decodes to (near) silence: `0xFF` for μ-law, `0xD5` for A-law.
    pub fn silence(self) -> u8 {
        match self {
            Codec::Pcmu => 0xFF,
            Codec::Pcma => 0xD5,
        }
    }

    /// Encodes one linear sample.
    pub fn encode_sample(self, sample: i16) -> u8 {
        match self {
            Codec::Pcmu => ulaw_encode(sample),
            Codec::Pcma => alaw_encode(sample),
        }
    }

    /// Decodes one code to a linear sample.
    pub fn decode_sample(self, code: u8) -> i16 {
        match self {
            Codec::Pcmu => ulaw_decode(code),
            Codec::Pcma => alaw_decode(code),
        }
    }

    /// Encodes a block of linear samples, one byte per sample.
    pub fn encode(self, samples: &[i16]) -> Vec<u8> {
        samples.iter().map(|&s| self.encode_sample(s)).collect()
    }

    /// Decodes a block of codes (an RTP payload), one sample per byte.
    pub fn decode(self, codes: &[u8]) -> Vec<i16> {
        codes.iter().map(|&c| self.decode_sample(c)).collect()
    }
}

/// Encodes a 16-bit linear sample as a μ-law code.
pub fn ulaw_encode(sample: i16) -> u8 {
    let sample = i32::from(sample);
    let (sign, magnitude) = if sample < 0 {
        (0x80, -sample)
    } else {
        (0x00, sample)
    };
    let biased = magnitude.min(ULAW_CLIP) + ULAW_BIAS;
    // The biased magnitude lies in [2^7, 2^15); the segment is how far its top bit sits
    // above bit 7.
    let exponent = (31 - biased.leading_zeros() as i32) - 7;
    let mantissa = (biased >> (exponent + 3)) & 0x0F;
    // μ-law transmits the complement so that silence is a busy bit pattern (0xFF).
    !((sign | (exponent << 4) | mantissa) as u8)
}

/// Decodes a μ-law code to a 16-bit linear sample.
pub fn ulaw_decode(code: u8) -> i16 {
    let code = !code;
    let exponent = i32::from((code >> 4) & 0x07);
    let mantissa = i32::from(code & 0x0F);
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
    (if code & 0x80 != 0 {
        -magnitude
    } else {
        magnitude
    }) as i16
}

/// Encodes a 16-bit linear sample as an A-law code.
pub fn alaw_encode(sample: i16) -> u8 {
    // A-law is symmetric around -0.5 LSB: negative samples use their ones' complement, so
    // -1 and 0 land in mirror-image intervals.
    let (sign, magnitude) = if sample >= 0 {
        (0x80u8, (sample >> 3) as u16)
    } else {
        (0x00u8, ((!sample) >> 3) as u16)
    };
    let (segment, mantissa) = if magnitude < 32 {
        (0u16, magnitude >> 1)
    } else {
        // magnitude lies in [32, 4096): segment 1 starts at 2^5.
        let segment = (16 - magnitude.leading_zeros() as u16) - 5;
        (segment, (magnitude >> segment) & 0x0F)
    };
    // Even bits are inverted on the wire (G.711 §A), hence the 0x55 mask.
    (sign | ((segment as u8) << 4) | mantissa as u8) ^ 0x55
}

/// Decodes an A-law code to a 16-bit linear sample.
pub fn alaw_decode(code: u8) -> i16 {
    let code = code ^ 0x55;
    let segment = (code >> 4) & 0x07;
    let mantissa = i16::from(code & 0x0F);
    let magnitude = if segment == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (segment - 1)
    };
    if code & 0x80 != 0 {
        magnitude
    } else {
        -magnitude
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// μ-law reconstruction level from G.711 Table 2: ((2M + 33)·2^E − 33) on the 14-bit
    /// scale.
    fn ulaw_standard(code: u8) -> i32 {
        let c = !code;
        let e = i32::from((c >> 4) & 7);
        let m = i32::from(c & 15);
        let level = ((2 * m + 33) << e) - 33;
        4 * if c & 0x80 != 0 { -level } else { level }
    }

    /// A-law reconstruction level from G.711 Table 1 on the 13-bit scale: segment 0 is
    /// linear (2M + 1), segment S ≥ 1 is (2M + 33)·2^(S−1).
    fn alaw_standard(code: u8) -> i32 {
        let c = code ^ 0x55;
        let s = i32::from((c >> 4) & 7);
        let m = i32::from(c & 15);
        let level = if s == 0 {
            2 * m + 1
        } else {
            (2 * m + 33) << (s - 1)
        };
        8 * if c & 0x80 != 0 { level } else { -level }
    }

    #[test]
    fn known_vectors() {
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x7F), 0);
        assert_eq!(ulaw_decode(0x00), -32124);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);

        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_decode(0xAA), 32256);
        assert_eq!(alaw_decode(0x2A), -32256);
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_encode(-1), 0x55);
        assert_eq!(alaw_encode(i16::MAX), 0xAA);
        assert_eq!(alaw_encode(i16::MIN), 0x2A);
    }

    #[test]
    fn every_code_decodes_to_the_standards_segment_formula() {
        for code in 0..=255u8 {
            assert_eq!(
                i32::from(ulaw_decode(code)),
                ulaw_standard(code),
                "μ-law {code:#04x}"
            );
            assert_eq!(
                i32::from(alaw_decode(code)),
                alaw_standard(code),
                "A-law {code:#04x}"
            );
        }
    }

    #[test]
    fn every_code_survives_decode_then_encode() {
        for code in 0..=255u8 {
            // μ-law has two zeros (0xFF and 0x7F); both decode to 0, which encodes as 0xFF.
            let expected = if code == 0x7F { 0xFF } else { code };
            assert_eq!(
                ulaw_encode(ulaw_decode(code)),
                expected,
                "μ-law {code:#04x}"
            );
            assert_eq!(alaw_encode(alaw_decode(code)), code, "A-law {code:#04x}");
        }
    }

    #[test]
    fn ulaw_round_trip_is_within_half_a_step_for_every_sample() {
        for x in i16::MIN..=i16::MAX {
            let code = ulaw_encode(x);
            let y = i32::from(ulaw_decode(code));
            let x = i32::from(x);
            let exponent = i32::from((!code >> 4) & 7);
            let half_step = 4 << exponent;
            if x.abs() <= ULAW_CLIP {
                assert!(
                    (y - x).abs() <= half_step,
                    "x={x} y={y} half_step={half_step}"
                );
            } else {
                assert_eq!(y, 32124 * x.signum(), "x={x} clips to the top level");
            }
        }
    }

    #[test]
    fn alaw_round_trip_is_within_half_a_step_for_every_sample() {
        for x in i16::MIN..=i16::MAX {
            let code = alaw_encode(x);
            let y = i32::from(alaw_decode(code));
            let segment = i32::from(((code ^ 0x55) >> 4) & 7);
            let half_step = 8 << (segment - 1).max(0);
            assert!(
                (y - i32::from(x)).abs() <= half_step,
                "x={x} y={y} half_step={half_step}"
            );
        }
    }

    #[test]
    fn encoding_is_monotonic() {
        let mut previous = (i32::MIN, i32::MIN);
        for x in i16::MIN..=i16::MAX {
            let u = i32::from(ulaw_decode(ulaw_encode(x)));
            let a = i32::from(alaw_decode(alaw_encode(x)));
            assert!(u >= previous.0 && a >= previous.1, "not monotonic at {x}");
            previous = (u, a);
        }
    }

    #[test]
    fn codec_metadata() {
        assert_eq!(Codec::Pcmu.payload_type(), 0);
        assert_eq!(Codec::Pcma.payload_type(), 8);
        assert_eq!(Codec::from_payload_type(8), Some(Codec::Pcma));
        assert_eq!(Codec::from_payload_type(9), None);
        for codec in [Codec::Pcmu, Codec::Pcma] {
            assert!(codec.decode_sample(codec.silence()).abs() <= 8);
            let samples = [0, 1000, -1000, 20000];
            assert_eq!(codec.decode(&codec.encode(&samples)).len(), 4);
        }
    }
}
