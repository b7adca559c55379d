//! Outbox vocabulary and retry policy.
//!
//! An outbound message is written to the outbox in the same transaction as its timeline
//! event; a worker sends it through the connector and retries failures with capped
//! exponential backoff until [`RetryPolicy::max_attempts`], then leaves it as a dead
//! letter an operator can requeue. This module owns the states and the delay
//! arithmetic; it never sleeps and never draws random numbers (callers that want jitter
//! pass it in via [`RetryPolicy::delay_with_jitter`]).

use std::time::Duration;

string_enum! {
    /// State of an outbox row.
    "outbox status",
    pub enum OutboxStatus {
        /// Waiting for its next attempt.
        Pending => "pending",
        /// Claimed by a worker under a lease.
        Sending => "sending",
        /// Accepted by the provider.
        Sent => "sent",
        /// Gave up; visible to operators and requeueable.
        Dead => "dead",
    }
}

/// Default number of attempts before a message becomes a dead letter.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 8;
/// Default delay before the first retry.
pub const DEFAULT_RETRY_BASE: Duration = Duration::from_secs(2);
/// Default cap on the delay between retries.
pub const DEFAULT_RETRY_MAX: Duration = Duration::from_secs(10 * 60);

/// Delay before retry number `attempt` (1 = the retry after the first failure):
/// `base · 2^(attempt-1)`, capped at `max`. Attempt 0 is treated as 1. Never overflows.
pub fn retry_delay(attempt: u32, base: Duration, max: Duration) -> Duration {
    let exponent = attempt.saturating_sub(1);
    let factor = (exponent < 32).then(|| 1u32 << exponent);
    factor
        .and_then(|f| base.checked_mul(f))
        .map_or(max, |d| d.min(max))
}

/// How the outbox retries failed sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay before the first retry.
    pub base: Duration,
    /// Cap on any single delay.
    pub max: Duration,
    /// Attempts (including the first) before the row becomes a dead letter.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base: DEFAULT_RETRY_BASE,
            max: DEFAULT_RETRY_MAX,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Try again after this delay.
    RetryAfter(Duration),
    /// Give up: the row becomes a dead letter.
    GiveUp,
}

impl RetryPolicy {
    /// The delay before retry number `attempt`; see [`retry_delay`].
    pub fn delay(&self, attempt: u32) -> Duration {
        retry_delay(attempt, self.base, self.max)
    }

    /// Like [`delay`](Self::delay) but shortened by up to half, by `jitter` in `0.0..=1.0`
    /// (so many rows failing together do not retry in lockstep). Out-of-range jitter is
    /// clamped.
    pub fn delay_with_jitter(&self, attempt: u32, jitter: f64) -> Duration {
        let d = self.delay(attempt);
        d.mul_f64(1.0 - 0.5 * jitter.clamp(0.0, 1.0))
    }

    /// Decision after `attempts_made` failed attempts.
    pub fn after_failure(&self, attempts_made: u32) -> RetryDecision {
        if attempts_made >= self.max_attempts {
            RetryDecision::GiveUp
        } else {
            RetryDecision::RetryAfter(self.delay(attempts_made))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn delays_double_then_cap() {
        let max = Duration::from_secs(60);
        let got: Vec<u64> = (0..10).map(|a| retry_delay(a, S, max).as_secs()).collect();
        assert_eq!(got, vec![1, 1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(retry_delay(u32::MAX, S, max), max);
        assert_eq!(
            retry_delay(40, Duration::from_secs(3600), Duration::MAX),
            Duration::MAX
        );
    }

    #[test]
    fn policy_gives_up_after_max_attempts() {
        let p = RetryPolicy {
            base: S,
            max: 10 * S,
            max_attempts: 3,
        };
        assert_eq!(p.after_failure(1), RetryDecision::RetryAfter(S));
        assert_eq!(p.after_failure(2), RetryDecision::RetryAfter(2 * S));
        assert_eq!(p.after_failure(3), RetryDecision::GiveUp);
        assert_eq!(p.delay_with_jitter(2, 1.0), S);
        assert_eq!(p.delay_with_jitter(2, 7.0), S);
        assert_eq!(RetryPolicy::default().max_attempts, DEFAULT_MAX_ATTEMPTS);
    }

    #[test]
    fn statuses() {
        assert_eq!("dead".parse::<OutboxStatus>().unwrap(), OutboxStatus::Dead);
    }
}
