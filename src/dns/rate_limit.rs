//! Response-rate limiting for UDP, per client subnet (off by default).
//!
//! A token bucket per /24 (IPv4) or /56 (IPv6): each answer takes a token, tokens come back at
//! the configured rate, a full bucket holds one second's worth. Over the limit the query is
//! dropped and counted; TCP is never limited (its source cannot be spoofed). The table is
//! bounded: past its size, buckets not touched for a second are forgotten. It decides only
//! whether to answer, never what.

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use dashmap::DashMap;
use metrics::counter;

/// Subnets tracked at once before idle ones are forgotten.
const MAX_SUBNETS: usize = 65_536;
const FORGET_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    /// Answers per second per subnet; 0 turns limiting off.
    pub per_second: u32,
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            per_second: 0,
            ipv4_prefix: 24,
            ipv6_prefix: 56,
        }
    }
}

struct Bucket {
    tokens: f64,
    refilled: Instant,
}

pub struct RateLimiter {
    limit: RateLimit,
    buckets: DashMap<(IpAddr, u8), Bucket>,
}

impl RateLimiter {
    /// `None` when the limit is off, so the receive loop pays nothing.
    pub fn new(limit: RateLimit) -> Option<RateLimiter> {
        (limit.per_second > 0).then(|| RateLimiter {
            limit,
            buckets: DashMap::new(),
        })
    }

    fn subnet(&self, ip: IpAddr) -> (IpAddr, u8) {
        let prefix = match ip {
            IpAddr::V4(_) => self.limit.ipv4_prefix.min(32),
            IpAddr::V6(_) => self.limit.ipv6_prefix.min(128),
        };
        let network = ipnet::IpNet::new(ip, prefix).map_or(ip, |n| n.network());
        (network, prefix)
    }

    /// Whether a query from `ip` may be answered now; a refusal is counted.
    pub fn allow(&self, ip: IpAddr) -> bool {
        self.allow_at(ip, Instant::now())
    }

    fn allow_at(&self, ip: IpAddr, now: Instant) -> bool {
        let rate = f64::from(self.limit.per_second);
        if self.buckets.len() > MAX_SUBNETS {
            self.buckets
                .retain(|_, b| now.saturating_duration_since(b.refilled) < FORGET_AFTER);
        }
        let mut bucket = self.buckets.entry(self.subnet(ip)).or_insert(Bucket {
            tokens: rate,
            refilled: now,
        });
        let elapsed = now.saturating_duration_since(bucket.refilled).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(rate);
        bucket.refilled = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            counter!("netalias_dns_rate_limited_total").increment(1);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subnet_gets_its_rate_and_others_are_untouched() {
        let limiter = RateLimiter::new(RateLimit {
            per_second: 10,
            ..RateLimit::default()
        })
        .expect("on");
        let start = Instant::now();
        let a: IpAddr = [10, 0, 0, 1].into();
        let same_subnet: IpAddr = [10, 0, 0, 200].into();
        let other: IpAddr = [10, 0, 1, 1].into();
        let allowed = (0..50)
            .filter(|i| limiter.allow_at(if i % 2 == 0 { a } else { same_subnet }, start))
            .count();
        assert_eq!(allowed, 10, "one second's worth, shared by the /24");
        assert!(
            limiter.allow_at(other, start),
            "another /24 has its own bucket"
        );
        assert!(
            limiter.allow_at(a, start + Duration::from_millis(100)),
            "refills"
        );
        assert!(
            RateLimiter::new(RateLimit::default()).is_none(),
            "off by default"
        );
    }
}
