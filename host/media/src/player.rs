//! Prompt and hold-music playback as 20 ms G.711 frames on a clock passed in.
//!
//! A [`Player`] owns one encoded prompt and a schedule: a frame is due every
//! [`FRAME_MS`] from the instant it was started. It never sends anything; the host hands
//! each [`Frame`] to [`Relay::play`](crate::Relay::play), which stamps it into a leg's
//! outgoing stream.

use thiserror::Error;

use crate::g711::Codec;

/// The packetization time of every frame: 20 ms, the G.711 default (RFC 3551).
pub const FRAME_MS: u64 = 20;
/// Bytes (and samples) in one 20 ms G.711 frame at 8 kHz.
pub const FRAME_BYTES: usize = 160;
/// A frame that is this late is skipped rather than sent in a burst, so the far side's
/// jitter buffer sees a gap instead of a flood when the driver stalls.
pub const LATE_LIMIT_MS: u64 = 3 * FRAME_MS;

/// Why a prompt cannot be played.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PlayerError {
    /// A prompt with no audio; looping it would spin forever.
    #[error("the prompt has no audio")]
    EmptyPrompt,
}

/// One 20 ms frame of encoded audio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The instant the frame was due (ms); the relay derives RTP timestamps from it.
    pub at: u64,
    /// [`FRAME_BYTES`] bytes of G.711 in the player's codec.
    pub payload: Vec<u8>,
    /// The first frame of this playback: it starts a talkspurt (RTP marker bit).
    pub first: bool,
}

/// Plays an encoded prompt once or in a loop, one frame per [`FRAME_MS`].
#[derive(Debug, Clone)]
pub struct Player {
    codec: Codec,
    audio: Vec<u8>,
    looping: bool,
    position: usize,
    next_at: Option<u64>,
    frames_played: u64,
}

impl Player {
    /// A player for audio already encoded in `codec`, whose first frame is due at `now`.
    pub fn new(now: u64, codec: Codec, audio: Vec<u8>, looping: bool) -> Result<Self, PlayerError> {
        if audio.is_empty() {
            return Err(PlayerError::EmptyPrompt);
        }
        Ok(Player {
            codec,
            audio,
            looping,
            position: 0,
            next_at: Some(now),
            frames_played: 0,
        })
    }

    /// A player for linear samples (for example a WAV prompt), encoded once up front.
    pub fn from_samples(
        now: u64,
        codec: Codec,
        samples: &[i16],
        looping: bool,
    ) -> Result<Self, PlayerError> {
        Self::new(now, codec, codec.encode(samples), looping)
    }

    /// The codec of the frames.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// When the next frame is due, or `None` once a one-shot prompt has finished.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.next_at
    }

    /// Whether a one-shot prompt has played to its end (or the player was stopped).
    pub fn is_finished(&self) -> bool {
        self.next_at.is_none()
    }

    /// Stops playback; no more frames are due.
    pub fn stop(&mut self) {
        self.next_at = None;
    }

    /// Frames handed out so far.
    pub fn frames_played(&self) -> u64 {
        self.frames_played
    }

    /// Hands out the frame due at `now`, if one is. Frames more than [`LATE_LIMIT_MS`]
    /// overdue are skipped, keeping the prompt in time; call again until it returns
    /// `None` to drain frames that are due but not yet that late.
    pub fn handle_timeout(&mut self, now: u64) -> Option<Frame> {
        loop {
            let due = self.next_at?;
            if now < due {
                return None;
            }
            let mut frame = self.next_frame(due);
            if now - due <= LATE_LIMIT_MS {
                frame.first = self.frames_played == 0;
                self.frames_played += 1;
                return Some(frame);
            }
        }
    }

    /// Takes the frame due at `due` and schedules the one after it.
    fn next_frame(&mut self, due: u64) -> Frame {
        let mut payload = Vec::with_capacity(FRAME_BYTES);
        while payload.len() < FRAME_BYTES {
            if self.position == self.audio.len() {
                if !self.looping {
                    break;
                }
                self.position = 0;
            }
            let take = (FRAME_BYTES - payload.len()).min(self.audio.len() - self.position);
            payload.extend_from_slice(&self.audio[self.position..self.position + take]);
            self.position += take;
        }
        // The tail of a one-shot prompt is padded with silence to a whole frame.
        payload.resize(FRAME_BYTES, self.codec.silence());
        self.next_at = if !self.looping && self.position == self.audio.len() {
            None
        } else {
            Some(due + FRAME_MS)
        };
        Frame {
            at: due,
            payload,
            first: false,
        }
    }
}
