//! Call recording: both directions of a bridged call in one stereo WAV file.
//!
//! A [`Recorder`] owns the file being written: 8 kHz 16-bit PCM, two channels, the
//! caller (leg A) on the left and the agent (leg B) on the right. Each leg's audio is
//! placed by its RTP timestamp, anchored to the recording's clock when the leg's source
//! first speaks, so gaps (lost packets, silence suppression, hold) become silence and
//! the two directions stay aligned however the packets interleave. It never reads a
//! clock (`now` is passed in, in milliseconds) and never decides *whether* to record.
//!
//! Audio is buffered for [`Recorder::REORDER_WINDOW_MS`] so a leg that runs a little
//! behind the other still lands in place; anything later than that is dropped. The RIFF
//! sizes are written by [`Recorder::finish`]; until then the header says zero length.

use std::collections::VecDeque;
use std::io::{Seek, SeekFrom, Write};

use crate::Leg;
use crate::g711::Codec;
use crate::rtp::RtpPacket;
use crate::wav::{WavEncoding, WavError, header};

const SAMPLES_PER_MS: u64 = 8;
const BYTES_PER_FRAME: u64 = 4;
/// The longest data chunk a RIFF file can describe in its 32-bit size fields.
const MAX_DATA_BYTES: u64 = u32::MAX as u64 - 64;

/// Where one leg's current source sits on the recording's timeline.
#[derive(Debug, Clone, Copy)]
struct Anchor {
    ssrc: u32,
    timestamp: u32,
    position: u64,
}

/// Writes a two-channel call recording; see the [module docs](self).
#[derive(Debug)]
pub struct Recorder<W: Write + Seek> {
    writer: W,
    start: u64,
    /// Frames already written to `writer`.
    flushed: u64,
    /// Frames from `flushed` on, still open to late audio: [left, right].
    pending: VecDeque<[i16; 2]>,
    anchors: [Option<Anchor>; 2],
    late_samples: u64,
}

impl<W: Write + Seek> Recorder<W> {
    /// How long audio is held back for a lagging leg before it is written out.
    pub const REORDER_WINDOW_MS: u64 = 1000;
    /// A timestamp this far ahead of where the clock says the leg should be is a new
    /// timeline (a jump in the sender's clock), not a gap to fill with silence; the leg
    /// is re-anchored at the clock.
    pub const RESYNC_MS: u64 = 2000;

    /// Starts a recording at `now`, writing a placeholder header.
    pub fn new(mut writer: W, now: u64) -> Result<Self, WavError> {
        writer.write_all(&header(WavEncoding::Pcm16, 2, 0)?)?;
        Ok(Recorder {
            writer,
            start: now,
            flushed: 0,
            pending: VecDeque::new(),
            anchors: [None, None],
            late_samples: 0,
        })
    }

    /// Sample frames recorded so far, written or still buffered.
    pub fn frames(&self) -> u64 {
        self.flushed + self.pending.len() as u64
    }

    /// Samples dropped because they arrived after their place was written out.
    pub fn late_samples(&self) -> u64 {
        self.late_samples
    }

    /// Records one RTP packet received from `leg`, decoding it with `codec`; packets of
    /// another payload type (telephone events, comfort noise) are not audio and are
    /// ignored.
    pub fn record_rtp(
        &mut self,
        now: u64,
        leg: Leg,
        codec: Codec,
        packet: &RtpPacket<'_>,
    ) -> Result<(), WavError> {
        if packet.payload_type != codec.payload_type() {
            return Ok(());
        }
        self.record(
            now,
            leg,
            packet.ssrc,
            packet.timestamp,
            &codec.decode(packet.payload),
        )
    }

    /// Records linear samples from `leg`'s source `ssrc`, starting at RTP `timestamp`.
    pub fn record(
        &mut self,
        now: u64,
        leg: Leg,
        ssrc: u32,
        timestamp: u32,
        samples: &[i16],
    ) -> Result<(), WavError> {
        let clock_position = now.saturating_sub(self.start) * SAMPLES_PER_MS;
        let channel = match leg {
            Leg::A => 0,
            Leg::B => 1,
        };
        let anchored = self.anchors[channel]
            .filter(|a| a.ssrc == ssrc)
            .and_then(|a| {
                let offset = i64::from(timestamp.wrapping_sub(a.timestamp) as i32);
                let position = a.position.checked_add_signed(offset)?;
                // Far behind the clock is just late audio; only a leap ahead is a new
                // timeline, since filling it would write minutes of silence.
                (position <= clock_position + Self::RESYNC_MS * SAMPLES_PER_MS).then_some(position)
            });
        let position = match anchored {
            Some(position) => position,
            None => {
                self.anchors[channel] = Some(Anchor {
                    ssrc,
                    timestamp,
                    position: clock_position,
                });
                clock_position
            }
        };

        let skip = self
            .flushed
            .saturating_sub(position)
            .min(samples.len() as u64);
        self.late_samples += skip;
        let position = position + skip;
        let samples = &samples[skip as usize..];
        if samples.is_empty() {
            return Ok(());
        }
        let end = position + samples.len() as u64;
        if end > self.frames() {
            self.pending.resize((end - self.flushed) as usize, [0, 0]);
        }
        let first = (position - self.flushed) as usize;
        for (frame, &sample) in self.pending.range_mut(first..).zip(samples) {
            frame[channel] = sample;
        }

        let window = (Self::REORDER_WINDOW_MS * SAMPLES_PER_MS) as usize;
        if self.pending.len() > window {
            self.flush(self.pending.len() - window)?;
        }
        Ok(())
    }

    /// Writes the oldest `count` pending frames.
    fn flush(&mut self, count: usize) -> Result<(), WavError> {
        if (self.flushed + count as u64) * BYTES_PER_FRAME > MAX_DATA_BYTES {
            return Err(WavError::TooLong);
        }
        let bytes: Vec<u8> = self
            .pending
            .drain(..count)
            .flat_map(|[left, right]| {
                let [l0, l1] = left.to_le_bytes();
                let [r0, r1] = right.to_le_bytes();
                [l0, l1, r0, r1]
            })
            .collect();
        self.writer.write_all(&bytes)?;
        self.flushed += count as u64;
        Ok(())
    }

    /// Writes what is buffered, fills in the RIFF sizes and returns the writer,
    /// positioned at the end of the file.
    pub fn finish(mut self) -> Result<W, WavError> {
        self.flush(self.pending.len())?;
        let data_len =
            u32::try_from(self.flushed * BYTES_PER_FRAME).map_err(|_| WavError::TooLong)?;
        self.writer.seek(SeekFrom::Start(0))?;
        self.writer
            .write_all(&header(WavEncoding::Pcm16, 2, data_len)?)?;
        self.writer.seek(SeekFrom::End(0))?;
        self.writer.flush()?;
        Ok(self.writer)
    }
}
