//! Shedding a SIP flood from one address, as Kamailio's pike module does: each source
//! address that is not a configured trunk gets a token bucket (a steady rate of
//! requests per second and a burst); a request beyond it is answered 503 with
//! `Retry-After` and not processed. Trunks are trusted by address and carry many calls,
//! so they are never limited here. Time is passed in, so the rule is tested without
//! sleeping.

use std::net::IpAddr;
use std::time::Instant;

use switchboard_app::rate::Buckets;

/// Token buckets per source address.
pub struct SourceLimiter(Buckets<IpAddr>);

impl SourceLimiter {
    /// `rate_per_sec` requests a second with bursts of `burst`; a rate of 0 turns
    /// the limit off.
    pub fn new(rate_per_sec: u32, burst: u32) -> SourceLimiter {
        SourceLimiter(Buckets::new(f64::from(rate_per_sec), burst))
    }

    /// Whether one more request from `source` at `now` is within its budget.
    pub fn allow(&self, source: IpAddr, now: Instant) -> bool {
        self.0.allow(source, now)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_then_the_rate_per_source() {
        let limiter = SourceLimiter::new(10, 5);
        let (a, b) = (IpAddr::from([192, 0, 2, 1]), IpAddr::from([192, 0, 2, 2]));
        let t0 = Instant::now();
        let allowed = (0..20).filter(|_| limiter.allow(a, t0)).count();
        assert_eq!(allowed, 5, "the burst");
        assert!(limiter.allow(b, t0), "another source is not affected");
        assert!(!limiter.allow(a, t0 + Duration::from_millis(50)));
        assert!(
            limiter.allow(a, t0 + Duration::from_millis(110)),
            "refilled at 10/s"
        );
        assert!(SourceLimiter::new(0, 0).allow(a, t0), "a rate of 0 is off");
    }
}
