//! Response-rate limiting for UDP, per client subnet (off by default).
//!
//! A token bucket per /24 (IPv4) or /56 (IPv6): each answer takes a token, tokens come back at
//! the configured rate, a full bucket holds one second's worth. Over the limit a query is
//! dropped and counted, except every [`SLIP`]th one, which gets an empty truncated answer
//! (TC set) so that a real client behind a limited subnet retries over TCP and succeeds, as
//! BIND's RRL "slip" does; TCP is never limited (its source cannot be spoofed).
//!
//! The buckets live in a fixed table of [`SLOTS`] slots, hashed by subnet with a per-process
//! random seed: memory is fixed when the limiter starts and every packet costs one hash and
//! one uncontended lock, however many subnets a spoofed flood uses. A subnet whose slot is
//! held by another active subnet is not tracked (answered) until the slot goes idle: a flood
//! can thus never reset the bucket of the subnet it is aimed at. It decides only whether to
//! answer, never what.

use std::{
    hash::BuildHasher,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use metrics::counter;

use crate::telemetry::names;

/// Slots in the bucket table: about 3 MB when the limiter is on, nothing when it is off.
pub const SLOTS: usize = 1 << 16;
/// A slot untouched this long is free for another subnet.
const FORGET_AFTER: Duration = Duration::from_secs(1);
/// One limited query in this many gets a truncated answer instead of nothing (BIND's default).
pub const SLIP: u32 = 2;

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

/// What to do with one UDP query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Answer,
    /// Over the limit: send nothing.
    Drop,
    /// Over the limit: send an empty answer with TC set, so a real client retries over TCP.
    Slip,
}

#[derive(Default)]
struct Slot {
    /// The subnet this slot tracks; `None` while empty.
    subnet: Option<(IpAddr, u8)>,
    tokens: f64,
    refilled: Option<Instant>,
    limited: u32,
}

pub struct RateLimiter {
    limit: RateLimit,
    slots: Box<[Mutex<Slot>]>,
    hasher: foldhash::quality::RandomState,
}

impl RateLimiter {
    /// `None` when the limit is off, so the receive loop pays nothing.
    pub fn new(limit: RateLimit) -> Option<RateLimiter> {
        (limit.per_second > 0).then(|| RateLimiter {
            limit,
            slots: (0..SLOTS).map(|_| Mutex::new(Slot::default())).collect(),
            hasher: foldhash::quality::RandomState::default(),
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

    /// What to do with a query from `ip` now; a drop or a slip is counted.
    pub fn check(&self, ip: IpAddr) -> Verdict {
        self.check_at(ip, Instant::now())
    }

    fn check_at(&self, ip: IpAddr, now: Instant) -> Verdict {
        let rate = f64::from(self.limit.per_second);
        let subnet = self.subnet(ip);
        let index = (self.hasher.hash_one(subnet) as usize) & (SLOTS - 1);
        let mut slot = self.slots[index]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if slot.subnet != Some(subnet) {
            let idle = slot
                .refilled
                .is_none_or(|t| now.saturating_duration_since(t) >= FORGET_AFTER);
            if !idle {
                return Verdict::Answer; // held by another active subnet: untracked for now
            }
            *slot = Slot {
                subnet: Some(subnet),
                tokens: rate,
                refilled: Some(now),
                limited: 0,
            };
        }
        let elapsed = slot
            .refilled
            .map_or(0.0, |t| now.saturating_duration_since(t).as_secs_f64());
        slot.tokens = (slot.tokens + elapsed * rate).min(rate);
        slot.refilled = Some(now);
        if slot.tokens >= 1.0 {
            slot.tokens -= 1.0;
            return Verdict::Answer;
        }
        slot.limited = slot.limited.wrapping_add(1);
        if slot.limited.is_multiple_of(SLIP) {
            counter!(names::DNS_RATE_LIMITED_TOTAL, "action" => "slip").increment(1);
            Verdict::Slip
        } else {
            counter!(names::DNS_RATE_LIMITED_TOTAL, "action" => "drop").increment(1);
            Verdict::Drop
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_second: u32) -> RateLimiter {
        RateLimiter::new(RateLimit {
            per_second,
            ..RateLimit::default()
        })
        .expect("on")
    }

    #[test]
    fn a_subnet_gets_its_rate_others_are_untouched_and_every_second_refusal_slips() {
        let limiter = limiter(10);
        let start = Instant::now();
        let a: IpAddr = [10, 0, 0, 1].into();
        let same_subnet: IpAddr = [10, 0, 0, 200].into();
        let other: IpAddr = [10, 0, 1, 1].into();
        let verdicts: Vec<Verdict> = (0..50)
            .map(|i| limiter.check_at(if i % 2 == 0 { a } else { same_subnet }, start))
            .collect();
        let count = |v: Verdict| verdicts.iter().filter(|x| **x == v).count();
        assert_eq!(
            count(Verdict::Answer),
            10,
            "one second's worth, shared by the /24"
        );
        assert_eq!(count(Verdict::Slip), 20, "every second refusal slips");
        assert_eq!(count(Verdict::Drop), 20);
        assert_eq!(
            limiter.check_at(other, start),
            Verdict::Answer,
            "another /24"
        );
        assert_eq!(
            limiter.check_at(a, start + Duration::from_millis(100)),
            Verdict::Answer,
            "refills"
        );
        assert!(
            RateLimiter::new(RateLimit::default()).is_none(),
            "off by default"
        );
    }

    /// A spoofed flood over 200,000 subnets neither grows the table nor frees the subnet it is
    /// aimed at from its limit.
    #[test]
    fn a_flood_across_200000_subnets_keeps_the_table_and_the_victim_limited() {
        let limiter = limiter(5);
        let start = Instant::now();
        let victim: IpAddr = [192, 0, 2, 1].into();
        for _ in 0..10 {
            limiter.check_at(victim, start);
        }
        assert_ne!(limiter.check_at(victim, start), Verdict::Answer, "limited");
        for i in 0..200_000u32 {
            let [_, b, c, d] = (i + 1).to_be_bytes();
            let spoofed = IpAddr::from([10, b, c, d]);
            limiter.check_at(spoofed, start);
            if i % 1000 == 0 {
                assert_ne!(
                    limiter.check_at(victim, start),
                    Verdict::Answer,
                    "still limited after {i} spoofed subnets"
                );
            }
        }
        assert_eq!(limiter.slots.len(), SLOTS, "the table never grows");
    }
}
