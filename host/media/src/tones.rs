//! The prompts Switchboard ships, synthesized from a few lines of arithmetic.
//!
//! This module owns the generator behind `host/media/prompts/*.wav`: a test checks that
//! every shipped file equals what [`shipped_prompts`] produces, byte for byte, and
//! rewrites them when `SWITCHBOARD_REGENERATE_PROMPTS=1` is set. The synthesis uses only
//! IEEE-754 additions, multiplications and divisions (its own sine polynomial, no
//! `f64::sin`, whose last bit varies by platform), so every machine generates the same
//! bytes. It never touches the file system itself.

use crate::g711::Codec;
use crate::wav::{SAMPLE_RATE, WavError, write_g711};

/// The length of the fade at each end of a note, so notes do not click.
const FADE_SAMPLES: usize = 80;

/// `sin(2π · turns)`, from a Taylor polynomial on a quarter wave (error below 1e-11).
fn sin_turns(turns: f64) -> f64 {
    // Into [-0.5, 0.5), then folded into [-0.25, 0.25] using sin(π − x) = sin(x).
    let mut t = turns - (turns + 0.5).floor();
    if t > 0.25 {
        t = 0.5 - t;
    } else if t < -0.25 {
        t = -0.5 - t;
    }
    let x = 2.0 * std::f64::consts::PI * t;
    let x2 = x * x;
    let mut term = x;
    let mut sum = x;
    for n in 1..9 {
        let k = (2 * n) as f64;
        term = -term * x2 / (k * (k + 1.0));
        sum += term;
    }
    sum
}

/// A note: `frequency_hz` for `duration_ms` at `amplitude` (peak), faded in and out.
pub fn tone(frequency_hz: u32, duration_ms: u32, amplitude: i16) -> Vec<i16> {
    mix(&[(frequency_hz, amplitude)], duration_ms)
}

/// Several sine partials played together for `duration_ms`, faded in and out. The
/// amplitudes should sum to at most `i16::MAX`.
pub fn mix(partials: &[(u32, i16)], duration_ms: u32) -> Vec<i16> {
    let len = (SAMPLE_RATE * duration_ms / 1000) as usize;
    (0..len)
        .map(|n| {
            // The phase is exact: (n·f mod rate) / rate, computed in integers.
            let value: f64 = partials
                .iter()
                .map(|&(frequency, amplitude)| {
                    let phase = (n as u64 * u64::from(frequency)) % u64::from(SAMPLE_RATE);
                    f64::from(amplitude) * sin_turns(phase as f64 / f64::from(SAMPLE_RATE))
                })
                .sum();
            let edge = n.min(len - 1 - n);
            let fade = if edge < FADE_SAMPLES {
                edge as f64 / FADE_SAMPLES as f64
            } else {
                1.0
            };
            (value * fade)
                .round()
                .clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16
        })
        .collect()
}

/// Silence for `duration_ms`.
pub fn silence(duration_ms: u32) -> Vec<i16> {
    vec![0; (SAMPLE_RATE * duration_ms / 1000) as usize]
}

/// The recording beep: 400 ms of 440 Hz at about −12 dBFS, then 100 ms of silence.
pub fn beep() -> Vec<i16> {
    let mut samples = tone(440, 400, 8000);
    samples.extend(silence(100));
    samples
}

/// Four seconds of gentle hold music: a rising and falling arpeggio over a soft fifth,
/// which loops seamlessly because every note fades to silence at its edges.
pub fn hold_music() -> Vec<i16> {
    // C major then G major, quarter notes at 120 bpm.
    const MELODY: [(u32, u32); 8] = [
        (523, 262), // C5 over C4
        (659, 262),
        (784, 262),
        (659, 262),
        (494, 196), // B4 over G3
        (587, 196),
        (784, 196),
        (587, 196),
    ];
    MELODY
        .iter()
        .flat_map(|&(note, bass)| mix(&[(note, 5000), (bass, 2500)], 500))
        .collect()
}

/// The greeting stand-in: a two-note chime (E5, C5), 800 ms. Operators replace it
/// with a spoken greeting in `{data_dir}/prompts/welcome.wav`.
pub fn welcome() -> Vec<i16> {
    let mut samples = mix(&[(659, 6000)], 300);
    samples.extend(mix(&[(523, 6000)], 400));
    samples.extend(silence(100));
    samples
}

/// The IVR menu stand-in: three rising notes (C5, E5, G5) and a pause, 1.2 s: "make
/// your choice now". Operators replace it with a spoken menu in
/// `{data_dir}/prompts/main-menu.wav`.
pub fn main_menu() -> Vec<i16> {
    let mut samples = Vec::new();
    for note in [523, 659, 784] {
        samples.extend(mix(&[(note, 6000)], 250));
        samples.extend(silence(50));
    }
    samples.extend(silence(300));
    samples
}

/// Every prompt shipped in `host/media/prompts/`, by file stem, as linear samples.
pub fn shipped_prompts() -> Vec<(&'static str, Vec<i16>)> {
    vec![
        ("beep", beep()),
        ("hold-music", hold_music()),
        ("main-menu", main_menu()),
        ("welcome", welcome()),
    ]
}

/// The bytes of a shipped prompt file: 8 kHz mono μ-law WAV.
pub fn prompt_file(samples: &[i16]) -> Result<Vec<u8>, WavError> {
    let mut file = Vec::new();
    write_g711(&mut file, Codec::Pcmu, &Codec::Pcmu.encode(samples))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sine_polynomial_matches_the_library_sine() {
        for i in -2000..=2000 {
            let turns = f64::from(i) / 997.0;
            let expected = (2.0 * std::f64::consts::PI * turns).sin();
            assert!((sin_turns(turns) - expected).abs() < 1e-10, "turns={turns}");
        }
    }

    #[test]
    fn a_tone_has_its_frequency_and_its_length() {
        let samples = tone(1000, 100, 10000);
        assert_eq!(samples.len(), 800);
        // 1000 Hz at 8 kHz: a full cycle every 8 samples; quarter cycle at the peak.
        assert_eq!(samples[402], 10000);
        assert_eq!(samples[406], -10000);
        assert_eq!(samples[0], 0);
        let peak = samples.iter().map(|s| s.unsigned_abs()).max().unwrap();
        assert_eq!(peak, 10000);
    }

    #[test]
    fn prompts_are_short() {
        for (name, samples) in shipped_prompts() {
            let seconds = samples.len() as f64 / f64::from(SAMPLE_RATE);
            assert!((0.2..=5.0).contains(&seconds), "{name} lasts {seconds} s");
        }
    }
}
