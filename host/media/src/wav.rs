//! WAV files: reading prompts, and the RIFF headers the recorder and prompt generator
//! write.
//!
//! This module owns the RIFF/WAVE container for the three encodings telephony uses:
//! 16-bit PCM (format tag 1), G.711 A-law (6) and μ-law (7), including
//! `WAVE_FORMAT_EXTENSIBLE` files that wrap one of them. Readers get linear samples
//! whatever the encoding. It does no resampling or mixing: a prompt must already be
//! 8 kHz mono ([`read_prompt`] says so with a typed error if it is not).

use std::io::{self, Read, Write};

use thiserror::Error;

use crate::g711::Codec;

const FORMAT_PCM: u16 = 1;
const FORMAT_ALAW: u16 = 6;
const FORMAT_ULAW: u16 = 7;
const FORMAT_EXTENSIBLE: u16 = 0xFFFE;

/// The sample rate every prompt and recording uses.
pub const SAMPLE_RATE: u32 = 8000;

/// Why a WAV file cannot be read or written.
#[derive(Debug, Error)]
pub enum WavError {
    /// Reading or writing the underlying file failed.
    #[error("WAV I/O failed: {0}")]
    Io(#[from] io::Error),
    /// Not a RIFF/WAVE file.
    #[error("not a RIFF/WAVE file")]
    NotWave,
    /// A chunk header or body runs past the end of the file.
    #[error("WAV chunk {id:?} needs {needed} bytes but only {available} remain")]
    Truncated {
        /// The four-character chunk id.
        id: String,
        /// Bytes the chunk claims.
        needed: usize,
        /// Bytes left in the file.
        available: usize,
    },
    /// No `fmt ` chunk before the `data` chunk.
    #[error("WAV file has no fmt chunk before its data")]
    MissingFormat,
    /// No `data` chunk.
    #[error("WAV file has no data chunk")]
    MissingData,
    /// An encoding other than 16-bit PCM, A-law or μ-law.
    #[error("WAV format tag {format_tag} with {bits_per_sample} bits per sample is not supported")]
    UnsupportedFormat {
        /// The format tag (after unwrapping `WAVE_FORMAT_EXTENSIBLE`).
        format_tag: u16,
        /// The bits per sample.
        bits_per_sample: u16,
    },
    /// A channel count of zero, or a block alignment that does not match it.
    #[error("WAV file has {channels} channels and block alignment {block_align}")]
    BadLayout {
        /// The channel count.
        channels: u16,
        /// The block alignment.
        block_align: u16,
    },
    /// A prompt that is not 8 kHz mono.
    #[error("a prompt must be 8000 Hz mono, this one is {sample_rate} Hz with {channels} channels")]
    NotPromptFormat {
        /// The file's sample rate.
        sample_rate: u32,
        /// The file's channel count.
        channels: u16,
    },
    /// More audio than a WAV file's 32-bit sizes can describe.
    #[error("WAV data would exceed the 4 GiB RIFF limit")]
    TooLong,
}

/// How the samples of a WAV file are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WavEncoding {
    /// Signed 16-bit little-endian PCM (format tag 1).
    Pcm16,
    /// G.711 in one byte per sample (format tag 7 for μ-law, 6 for A-law).
    G711(Codec),
}

impl WavEncoding {
    fn format_tag(self) -> u16 {
        match self {
            WavEncoding::Pcm16 => FORMAT_PCM,
            WavEncoding::G711(Codec::Pcma) => FORMAT_ALAW,
            WavEncoding::G711(Codec::Pcmu) => FORMAT_ULAW,
        }
    }

    fn bytes_per_sample(self) -> u16 {
        match self {
            WavEncoding::Pcm16 => 2,
            WavEncoding::G711(_) => 1,
        }
    }
}

/// A decoded WAV file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wav {
    /// How the file stored its samples.
    pub encoding: WavEncoding,
    /// Samples per second per channel.
    pub sample_rate: u32,
    /// Channel count; samples are interleaved.
    pub channels: u16,
    /// Linear samples, interleaved by channel.
    pub samples: Vec<i16>,
}

impl Wav {
    /// One channel's samples (0 is left).
    pub fn channel(&self, channel: u16) -> Vec<i16> {
        self.samples
            .iter()
            .skip(usize::from(channel))
            .step_by(usize::from(self.channels.max(1)))
            .copied()
            .collect()
    }

    /// Sample frames (one sample per channel) in the file.
    pub fn frames(&self) -> usize {
        self.samples.len() / usize::from(self.channels.max(1))
    }
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Reads a whole WAV file from `reader`.
pub fn read<R: Read>(mut reader: R) -> Result<Wav, WavError> {
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes)?;
    parse(&bytes)
}

/// Reads an 8 kHz mono prompt and returns its linear samples.
pub fn read_prompt(bytes: &[u8]) -> Result<Vec<i16>, WavError> {
    let wav = parse(bytes)?;
    if wav.sample_rate != SAMPLE_RATE || wav.channels != 1 {
        return Err(WavError::NotPromptFormat {
            sample_rate: wav.sample_rate,
            channels: wav.channels,
        });
    }
    Ok(wav.samples)
}

/// Parses a WAV file held in memory.
///
/// A `data` chunk that claims more bytes than the file holds is read up to the end: a
/// recording cut short by a crash keeps what was written.
pub fn parse(bytes: &[u8]) -> Result<Wav, WavError> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(WavError::NotWave);
    }
    let mut format: Option<(WavEncoding, u32, u16)> = None;
    let mut offset = 12;
    while offset < bytes.len() {
        let available = bytes.len() - offset;
        if available < 8 {
            return Err(WavError::Truncated {
                id: "(header)".into(),
                needed: 8,
                available,
            });
        }
        let id = &bytes[offset..offset + 4];
        let size = le32(bytes, offset + 4) as usize;
        let body_start = offset + 8;
        let available = bytes.len() - body_start;
        if id == b"data" {
            let (encoding, sample_rate, channels) = format.ok_or(WavError::MissingFormat)?;
            let body = &bytes[body_start..body_start + size.min(available)];
            return Ok(Wav {
                encoding,
                sample_rate,
                channels,
                samples: decode_samples(encoding, body),
            });
        }
        if size > available {
            return Err(WavError::Truncated {
                id: String::from_utf8_lossy(id).into_owned(),
                needed: size,
                available,
            });
        }
        let body = &bytes[body_start..body_start + size];
        if id == b"fmt " {
            format = Some(parse_format(body)?);
        }
        // Chunks are word-aligned: an odd-sized body is followed by a pad byte.
        offset = body_start + size + (size & 1);
    }
    Err(WavError::MissingData)
}

fn parse_format(body: &[u8]) -> Result<(WavEncoding, u32, u16), WavError> {
    if body.len() < 16 {
        return Err(WavError::Truncated {
            id: "fmt ".into(),
            needed: 16,
            available: body.len(),
        });
    }
    let mut format_tag = le16(body, 0);
    let channels = le16(body, 2);
    let sample_rate = le32(body, 4);
    let block_align = le16(body, 12);
    let bits_per_sample = le16(body, 14);
    if format_tag == FORMAT_EXTENSIBLE && body.len() >= 40 {
        // The sub-format GUID starts with the real format tag.
        format_tag = le16(body, 24);
    }
    let encoding = match (format_tag, bits_per_sample) {
        (FORMAT_PCM, 16) => WavEncoding::Pcm16,
        (FORMAT_ALAW, 8) => WavEncoding::G711(Codec::Pcma),
        (FORMAT_ULAW, 8) => WavEncoding::G711(Codec::Pcmu),
        _ => {
            return Err(WavError::UnsupportedFormat {
                format_tag,
                bits_per_sample,
            });
        }
    };
    if channels == 0
        || u32::from(block_align) != u32::from(channels) * u32::from(encoding.bytes_per_sample())
    {
        return Err(WavError::BadLayout {
            channels,
            block_align,
        });
    }
    Ok((encoding, sample_rate, channels))
}

fn decode_samples(encoding: WavEncoding, body: &[u8]) -> Vec<i16> {
    match encoding {
        // A trailing odd byte is half a sample; it is dropped.
        WavEncoding::Pcm16 => body
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect(),
        WavEncoding::G711(codec) => codec.decode(body),
    }
}

/// The RIFF header for `data_len` bytes of audio; the audio follows it directly.
///
/// PCM files get the classic 44-byte header. G.711 files get the 18-byte `fmt ` chunk and
/// the `fact` chunk that non-PCM formats require.
pub fn header(encoding: WavEncoding, channels: u16, data_len: u32) -> Result<Vec<u8>, WavError> {
    let bytes_per_sample = encoding.bytes_per_sample();
    let block_align = channels
        .checked_mul(bytes_per_sample)
        .filter(|&b| b > 0)
        .ok_or(WavError::BadLayout {
            channels,
            block_align: 0,
        })?;
    let is_pcm = encoding == WavEncoding::Pcm16;
    let fmt_len: u32 = if is_pcm { 16 } else { 18 };
    let fact_len: u32 = if is_pcm { 0 } else { 12 };
    let riff_len = data_len
        .checked_add(data_len & 1)
        .and_then(|padded| padded.checked_add(4 + 8 + fmt_len + fact_len + 8))
        .ok_or(WavError::TooLong)?;

    let mut h = Vec::with_capacity(58);
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&riff_len.to_le_bytes());
    h.extend_from_slice(b"WAVE");
    h.extend_from_slice(b"fmt ");
    h.extend_from_slice(&fmt_len.to_le_bytes());
    h.extend_from_slice(&encoding.format_tag().to_le_bytes());
    h.extend_from_slice(&channels.to_le_bytes());
    h.extend_from_slice(&SAMPLE_RATE.to_le_bytes());
    h.extend_from_slice(&(SAMPLE_RATE * u32::from(block_align)).to_le_bytes());
    h.extend_from_slice(&block_align.to_le_bytes());
    h.extend_from_slice(&(8 * bytes_per_sample).to_le_bytes());
    if !is_pcm {
        h.extend_from_slice(&0u16.to_le_bytes());
        h.extend_from_slice(b"fact");
        h.extend_from_slice(&4u32.to_le_bytes());
        h.extend_from_slice(&(data_len / u32::from(block_align)).to_le_bytes());
    }
    h.extend_from_slice(b"data");
    h.extend_from_slice(&data_len.to_le_bytes());
    Ok(h)
}

/// Writes an 8 kHz mono G.711 WAV file holding `codes`.
pub fn write_g711<W: Write>(mut writer: W, codec: Codec, codes: &[u8]) -> Result<(), WavError> {
    let data_len = u32::try_from(codes.len()).map_err(|_| WavError::TooLong)?;
    writer.write_all(&header(WavEncoding::G711(codec), 1, data_len)?)?;
    writer.write_all(codes)?;
    if codes.len() % 2 == 1 {
        writer.write_all(&[0])?;
    }
    Ok(())
}

/// Writes an 8 kHz 16-bit PCM WAV file holding interleaved `samples`.
pub fn write_pcm16<W: Write>(
    mut writer: W,
    channels: u16,
    samples: &[i16],
) -> Result<(), WavError> {
    let data_len = samples
        .len()
        .checked_mul(2)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or(WavError::TooLong)?;
    writer.write_all(&header(WavEncoding::Pcm16, channels, data_len)?)?;
    let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    writer.write_all(&bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt_chunk(tag: u16, channels: u16, rate: u32, block_align: u16, bits: u16) -> Vec<u8> {
        let mut c = b"fmt ".to_vec();
        c.extend_from_slice(&16u32.to_le_bytes());
        c.extend_from_slice(&tag.to_le_bytes());
        c.extend_from_slice(&channels.to_le_bytes());
        c.extend_from_slice(&rate.to_le_bytes());
        c.extend_from_slice(&(rate * u32::from(block_align)).to_le_bytes());
        c.extend_from_slice(&block_align.to_le_bytes());
        c.extend_from_slice(&bits.to_le_bytes());
        c
    }

    fn riff(chunks: &[&[u8]]) -> Vec<u8> {
        let body: Vec<u8> = chunks.concat();
        let mut f = b"RIFF".to_vec();
        f.extend_from_slice(&(4 + body.len() as u32).to_le_bytes());
        f.extend_from_slice(b"WAVE");
        f.extend_from_slice(&body);
        f
    }

    fn data(bytes: &[u8]) -> Vec<u8> {
        let mut c = b"data".to_vec();
        c.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        c.extend_from_slice(bytes);
        c
    }

    #[test]
    fn pcm_prompt_reads_back_what_was_written() {
        let samples = [0i16, 1000, -1000, i16::MAX, i16::MIN];
        let mut file = Vec::new();
        write_pcm16(&mut file, 1, &samples).unwrap();
        assert_eq!(file.len(), 44 + 10);
        assert_eq!(read_prompt(&file).unwrap(), samples);
    }

    #[test]
    fn g711_prompts_decode_to_linear_samples() {
        for codec in [Codec::Pcmu, Codec::Pcma] {
            let codes = codec.encode(&[0, 8000, -8000]);
            let mut file = Vec::new();
            write_g711(&mut file, codec, &codes).unwrap();
            let wav = parse(&file).unwrap();
            assert_eq!(wav.encoding, WavEncoding::G711(codec));
            assert_eq!(wav.samples, codec.decode(&codes));
        }
    }

    #[test]
    fn unknown_chunks_and_odd_padding_are_skipped() {
        let list = [b"LIST".as_slice(), &3u32.to_le_bytes(), b"abc", &[0]].concat();
        let file = riff(&[&list, &fmt_chunk(7, 1, 8000, 1, 8), &data(&[0xFF, 0x80])]);
        assert_eq!(read_prompt(&file).unwrap(), vec![0, 32124]);
    }

    #[test]
    fn a_data_chunk_cut_short_keeps_what_is_there() {
        let mut file = riff(&[&fmt_chunk(1, 1, 8000, 2, 16), &data(&[1, 0, 2, 0])]);
        file.truncate(file.len() - 2);
        assert_eq!(read_prompt(&file).unwrap(), vec![1]);
    }

    #[test]
    fn files_that_are_not_usable_prompts_are_typed_errors() {
        assert!(matches!(parse(b"RIFX\0\0\0\0WAVE"), Err(WavError::NotWave)));
        assert!(matches!(
            parse(&riff(&[&data(&[0])])),
            Err(WavError::MissingFormat)
        ));
        assert!(matches!(
            parse(&riff(&[&fmt_chunk(1, 1, 8000, 2, 16)])),
            Err(WavError::MissingData)
        ));
        assert!(matches!(
            parse(&riff(&[&fmt_chunk(3, 1, 8000, 4, 32), &data(&[])])),
            Err(WavError::UnsupportedFormat {
                format_tag: 3,
                bits_per_sample: 32
            })
        ));
        assert!(matches!(
            parse(&riff(&[&fmt_chunk(1, 2, 8000, 2, 16), &data(&[])])),
            Err(WavError::BadLayout {
                channels: 2,
                block_align: 2
            })
        ));
        assert!(matches!(
            read_prompt(&riff(&[&fmt_chunk(1, 1, 16000, 2, 16), &data(&[])])),
            Err(WavError::NotPromptFormat {
                sample_rate: 16000,
                channels: 1
            })
        ));
        let mut cut = riff(&[&fmt_chunk(1, 1, 8000, 2, 16)]);
        cut.truncate(30);
        assert!(matches!(parse(&cut), Err(WavError::Truncated { .. })));
    }
}
