//! Response-rate limiting for UDP, per client subnet (off by default).
//!
//! A token bucket per /24 (IPv4) or /56 (IPv6): each answer takes a token, tokens come back at
//! the configured rate, a full bucket holds one second's worth. Over the limit a query is
//! dropped and counted, except every [`SLIP`]th one, which gets an empty truncated answer
//! (TC set) so that a real client behind a limited subnet retries over TCP and succeeds, as
//! BIND's RRL "slip" does; TCP is never limited (its source cannot be spoofed).
//!
//! The buckets live in a fixed table of [`SLOTS`] buckets that belong to no one: a subnet is
//! hashed (per-process random seeds) to two of them and is answered only while both have a
//! token, taking one from each, as a count-min sketch counts. Memory is fixed when the limiter
//! starts, and every packet costs two hashes and two uncontended locks, however many subnets a
//! spoofed flood uses. A bucket is never handed over or reset, so a flood over many subnets
//! cannot free the one it is aimed at: a subnet that shares a bucket with others is held to
//! at most its rate plus one second's burst, and less when they use the bucket too. The
//! table used to track one subnet per slot and answer, unlimited, a subnet whose slot another
//! active subnet held: a spray over 65,280 /24s let 20–27 of 40 victim /24s through at up to
//! 53 answers of 60 (issue 26). Two buckets rather than one keep a quiet subnet from being
//! limited because it collides with one busy subnet. It decides only whether to answer,
//! never what.

use std::{hash::BuildHasher, net::IpAddr, sync::Mutex, time::Instant};

use metrics::counter;

use crate::telemetry::names;

/// Buckets in the table: about 3 MB when the limiter is on, nothing when it is off.
pub const SLOTS: usize = 1 << 16;
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

/// One token bucket, shared by every subnet hashed to it.
#[derive(Default)]
struct Slot {
    tokens: f64,
    /// When `tokens` was last brought up to date; `None`: never used (full).
    refilled: Option<Instant>,
    /// Refusals so far, for the slip.
    limited: u32,
}

impl Slot {
    /// The tokens now, at `rate` per second up to one second's worth.
    fn refill(&mut self, rate: f64, now: Instant) {
        self.tokens = match self.refilled {
            None => rate,
            Some(t) => {
                (self.tokens + now.saturating_duration_since(t).as_secs_f64() * rate).min(rate)
            }
        };
        self.refilled = Some(now);
    }
}

pub struct RateLimiter {
    limit: RateLimit,
    slots: Box<[Mutex<Slot>]>,
    /// Two independent hashes: a subnet's two buckets.
    hashers: [foldhash::quality::RandomState; 2],
}

impl RateLimiter {
    /// `None` when the limit is off, so the receive loop pays nothing.
    pub fn new(limit: RateLimit) -> Option<RateLimiter> {
        (limit.per_second > 0).then(|| RateLimiter {
            limit,
            slots: (0..SLOTS).map(|_| Mutex::new(Slot::default())).collect(),
            hashers: Default::default(),
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
        let [first, second] = self
            .hashers
            .each_ref()
            .map(|h| (h.hash_one(subnet) as usize) & (SLOTS - 1));
        let lock = |i: usize| {
            self.slots[i]
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        // Locked in index order (the same bucket twice is locked once), so two packets can
        // never wait on each other.
        let (low, high) = (first.min(second), first.max(second));
        let mut a = lock(low);
        let mut b = (high != low).then(|| lock(high));
        a.refill(rate, now);
        if let Some(b) = b.as_mut() {
            b.refill(rate, now);
        }
        let has = |s: &Slot| s.tokens >= 1.0;
        if has(&a) && b.as_deref().is_none_or(has) {
            a.tokens -= 1.0;
            if let Some(b) = b.as_mut() {
                b.tokens -= 1.0;
            }
            return Verdict::Answer;
        }
        a.limited = a.limited.wrapping_add(1);
        if a.limited.is_multiple_of(SLIP) {
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
    use std::time::Duration;

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

    /// Issue 26's spray: every /24 of 127/8 but 127.0/16 (65,280 of them, as many as the
    /// table has buckets) sends one query every 100 ms, while 40 victim /24s send 60 each
    /// within a second. No victim gets more than its rate plus one second's burst.
    #[test]
    fn a_spray_that_fills_the_table_frees_no_victim_from_its_limit() {
        let limiter = limiter(10);
        let start = Instant::now();
        let victims: Vec<IpAddr> = (0..40u8).map(|i| IpAddr::from([198, 51, i, 7])).collect();
        let mut answered = vec![0u32; victims.len()];
        for tick in 0..10u32 {
            let now = start + Duration::from_millis(u64::from(tick) * 100);
            for b in 1..=255u8 {
                for c in 0..=255u8 {
                    limiter.check_at(IpAddr::from([127, b, c, 1]), now);
                }
            }
            // Six queries per victim per tick, spread over the 100 ms.
            for step in 0..6u32 {
                let at = now + Duration::from_millis(u64::from(step) * 16);
                for (victim, count) in victims.iter().zip(answered.iter_mut()) {
                    if limiter.check_at(*victim, at) == Verdict::Answer {
                        *count += 1;
                    }
                }
            }
        }
        // One second: a full bucket (10) and one second's refill (10).
        let worst = answered.iter().max().copied().unwrap_or(0);
        assert!(
            worst <= 20,
            "a victim got {worst} answers of 60: {answered:?}"
        );
        assert!(
            answered.iter().all(|&n| n > 0),
            "limited, not locked out: {answered:?}"
        );
    }
}
