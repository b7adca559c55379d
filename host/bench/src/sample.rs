//! What the benchmarks share about their samples: the text every benchmark message
//! carries, random ids for fixtures, and percentiles of timed samples.

use std::time::Duration;

/// The text every benchmark message carries (non-ASCII on purpose: it is
/// percent-encoded or JSON-escaped on the wire like real traffic).
pub const MESSAGE_TEXT: &str = "Hi, my replacement router (order #48213) still hasn't arrived — \
                                can you check where it is? Thanks!";

/// `bytes` random bytes as lower-case hex.
pub fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut b);
    hex::encode(b)
}

/// Percentiles of a set of durations.
pub struct Summary {
    pub count: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub mean: Duration,
}

impl Summary {
    /// Sorts `samples` and summarizes them (all zero when there are none).
    pub fn of(samples: &mut [Duration]) -> Summary {
        samples.sort_unstable();
        let n = samples.len();
        let at = |p: f64| {
            if n == 0 {
                Duration::ZERO
            } else {
                samples[((p * n as f64).ceil() as usize).clamp(1, n) - 1]
            }
        };
        let total: Duration = samples.iter().sum();
        Summary {
            count: n,
            p50: at(0.50),
            p99: at(0.99),
            mean: if n == 0 {
                Duration::ZERO
            } else {
                total / n as u32
            },
        }
    }
}

/// Microseconds.
pub fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let mut v: Vec<Duration> = (1..=100).rev().map(Duration::from_micros).collect();
        let s = Summary::of(&mut v);
        assert_eq!(s.p50, Duration::from_micros(50));
        assert_eq!(s.p99, Duration::from_micros(99));
        assert_eq!(s.count, 100);
    }
}
