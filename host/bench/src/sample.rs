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

/// A 95 % interval of `p50(a) - p50(b)` in ms, for samples taken in rounds in which
/// `a` and `b` alternated (`a[r]` and `b[r]` are round `r`'s): a paired block
/// bootstrap that draws whole rounds with replacement, the same rounds for both, so
/// drift between rounds and samples that move together within one are part of the
/// interval instead of being taken for signal. A fixed seed, so a run's report is
/// reproducible from its samples. An interval that reaches 0 means the run cannot
/// tell the two apart.
pub fn p50_difference_interval(
    a: &[Vec<Duration>],
    b: &[Vec<Duration>],
    resamplings: usize,
) -> (f64, f64) {
    use rand::{Rng, SeedableRng};
    let rounds = a.len().min(b.len());
    if rounds == 0 || resamplings == 0 {
        return (0.0, 0.0);
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x05b0_c0de);
    let median = |pooled: &mut Vec<Duration>| {
        if pooled.is_empty() {
            return 0.0;
        }
        let k = ((0.5 * pooled.len() as f64).ceil() as usize).clamp(1, pooled.len()) - 1;
        ms(*pooled.select_nth_unstable(k).1)
    };
    let (mut pooled_a, mut pooled_b) = (Vec::new(), Vec::new());
    let mut differences: Vec<f64> = (0..resamplings)
        .map(|_| {
            pooled_a.clear();
            pooled_b.clear();
            for _ in 0..rounds {
                let r = rng.random_range(0..rounds);
                pooled_a.extend_from_slice(&a[r]);
                pooled_b.extend_from_slice(&b[r]);
            }
            median(&mut pooled_a) - median(&mut pooled_b)
        })
        .collect();
    differences.sort_unstable_by(f64::total_cmp);
    let at = |p: f64| differences[((p * resamplings as f64) as usize).min(resamplings - 1)];
    (at(0.025), at(0.975))
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

    #[test]
    fn a_shifted_median_is_told_apart_and_drift_between_rounds_is_not() {
        let round = |base: u64, shift: u64| -> Vec<Duration> {
            (0..50)
                .map(|i| Duration::from_micros(base + shift + (i * 37) % 100))
                .collect()
        };
        // Every round 300 µs apart, rounds drifting by up to 1 ms: told apart.
        let b: Vec<Vec<Duration>> = (0..12).map(|r| round(1000 + 90 * r, 0)).collect();
        let a: Vec<Vec<Duration>> = (0..12).map(|r| round(1000 + 90 * r, 300)).collect();
        let (low, high) = p50_difference_interval(&a, &b, 500);
        assert!(low > 0.0 && high < 0.6, "({low}, {high})");
        // Drift alone, a ahead in some rounds and behind in others: not told apart.
        let a: Vec<Vec<Duration>> = (0..12)
            .map(|r| round(1000 + 90 * r, if r % 2 == 0 { 200 } else { 0 }))
            .collect();
        let b: Vec<Vec<Duration>> = (0..12)
            .map(|r| round(1000 + 90 * r, if r % 2 == 0 { 0 } else { 200 }))
            .collect();
        let (low, high) = p50_difference_interval(&a, &b, 500);
        assert!(low <= 0.0 && high >= 0.0, "({low}, {high})");
    }
}
