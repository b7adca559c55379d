//! Token buckets: a steady rate with bursts, one bucket alone (a socket's messages)
//! or one per key (a source address, a webchat session). Time is passed in, so the
//! rules are tested without sleeping. A rate of 0 turns a limit off.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Instant;

/// Keys tracked before those with full buckets are swept.
const SWEEP_AT: usize = 10_000;

/// One token bucket.
#[derive(Debug, Clone)]
pub struct Bucket {
    rate_per_sec: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// A full bucket: `rate_per_sec` a second with bursts of `burst` (at least 1).
    pub fn new(rate_per_sec: f64, burst: u32, now: Instant) -> Bucket {
        let burst = f64::from(burst.max(1));
        Bucket {
            rate_per_sec,
            burst,
            tokens: burst,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate_per_sec).min(self.burst);
        self.at = now;
    }

    /// Takes one token if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        if self.rate_per_sec <= 0.0 {
            return true;
        }
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether a token is there, without taking it.
    pub fn has_token(&mut self, now: Instant) -> bool {
        if self.rate_per_sec <= 0.0 {
            return true;
        }
        self.refill(now);
        self.tokens >= 1.0
    }

    /// Whole seconds until the next token (at least 1).
    pub fn retry_after_secs(&self) -> u64 {
        if self.rate_per_sec <= 0.0 {
            return 1;
        }
        ((1.0 - self.tokens).max(0.0) / self.rate_per_sec)
            .ceil()
            .max(1.0) as u64
    }

    fn full_after_secs(&self) -> f64 {
        if self.rate_per_sec <= 0.0 {
            0.0
        } else {
            self.burst / self.rate_per_sec
        }
    }
}

/// A token bucket per key.
pub struct Buckets<K> {
    rate_per_sec: f64,
    burst: u32,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq> Buckets<K> {
    /// `rate_per_sec` a second with bursts of `burst` for each key; 0 turns it off.
    pub fn new(rate_per_sec: f64, burst: u32) -> Buckets<K> {
        Buckets {
            rate_per_sec,
            burst,
            buckets: Mutex::default(),
        }
    }

    /// `per_minute` a minute for each key, with bursts of `burst`; 0 turns it off.
    pub fn per_minute(per_minute: u32, burst: u32) -> Buckets<K> {
        Buckets::new(f64::from(per_minute) / 60.0, burst)
    }

    /// Whether the limit is on.
    pub fn is_on(&self) -> bool {
        self.rate_per_sec > 0.0
    }

    fn with<T>(&self, key: K, now: Instant, f: impl FnOnce(&mut Bucket) -> T) -> T {
        let mut buckets = self.buckets.lock().expect("rate buckets");
        if buckets.len() >= SWEEP_AT {
            buckets.retain(|_, b| {
                now.saturating_duration_since(b.at).as_secs_f64() < b.full_after_secs()
            });
        }
        let bucket = buckets
            .entry(key)
            .or_insert_with(|| Bucket::new(self.rate_per_sec, self.burst, now));
        f(bucket)
    }

    /// Takes one of `key`'s tokens if there is one.
    pub fn allow(&self, key: K, now: Instant) -> bool {
        !self.is_on() || self.with(key, now, |b| b.take(now))
    }

    /// `Err(seconds to wait)` when `key` has no token left; takes none.
    pub fn check(&self, key: K, now: Instant) -> Result<(), u64> {
        self.spend(key, now, Bucket::has_token)
    }

    /// Takes one of `key`'s tokens, or `Err(seconds to wait)`.
    pub fn take(&self, key: K, now: Instant) -> Result<(), u64> {
        self.spend(key, now, Bucket::take)
    }

    /// `Ok` when `try_bucket` finds a token in `key`'s bucket, else the wait.
    fn spend(
        &self,
        key: K,
        now: Instant,
        try_bucket: fn(&mut Bucket, Instant) -> bool,
    ) -> Result<(), u64> {
        if !self.is_on() {
            return Ok(());
        }
        self.with(key, now, |b| {
            if try_bucket(b, now) {
                Ok(())
            } else {
                Err(b.retry_after_secs())
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_then_the_rate_per_key() {
        let limiter = Buckets::new(10.0, 5);
        let (a, b) = (IpAddr::from([192, 0, 2, 1]), IpAddr::from([192, 0, 2, 2]));
        let t0 = Instant::now();
        let allowed = (0..20).filter(|_| limiter.allow(a, t0)).count();
        assert_eq!(allowed, 5, "the burst");
        assert!(limiter.allow(b, t0), "another key is not affected");
        assert!(!limiter.allow(a, t0 + Duration::from_millis(50)));
        assert_eq!(limiter.take(a, t0 + Duration::from_millis(50)), Err(1));
        assert!(
            limiter.allow(a, t0 + Duration::from_millis(110)),
            "refilled at 10/s"
        );
        assert!(Buckets::new(0.0, 0).allow(a, t0), "a rate of 0 is off");
    }

    #[test]
    fn check_looks_without_taking() {
        let limiter = Buckets::new(1.0, 2);
        let t0 = Instant::now();
        for _ in 0..10 {
            assert_eq!(limiter.check("k", t0), Ok(()));
        }
        assert_eq!(limiter.take("k", t0), Ok(()));
        assert_eq!(limiter.take("k", t0), Ok(()));
        assert_eq!(limiter.check("k", t0), Err(1));
        let slow = Buckets::new(0.1, 1);
        assert_eq!(slow.take("k", t0), Ok(()));
        assert_eq!(
            slow.check("k", t0),
            Err(10),
            "ten seconds to the next token"
        );
    }

    #[test]
    fn one_bucket() {
        let t0 = Instant::now();
        let mut bucket = Bucket::new(2.0, 3, t0);
        assert_eq!((0..5).filter(|_| bucket.take(t0)).count(), 3);
        assert!(!bucket.has_token(t0));
        assert!(bucket.take(t0 + Duration::from_millis(500)));
    }
}
