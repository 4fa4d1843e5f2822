//! Askers the engine already has but no source has published yet: a container's first packet.
//!
//! Docker gives a container its address when it connects it to a network, hundreds of
//! milliseconds before its process starts (measured on Docker 20.10: the `connect` event came
//! 400–480 ms before `start`), but an inspect of the container blocks on the engine's
//! per-container lock until the start is done. Sources therefore publish endpoints late, and
//! a container that resolves in its first millisecond would be a stranger (REFUSED). This
//! table closes that window: a live source tells it, as early as the engine knows, which
//! networks an address is on ([`Registry::learn_early`](super::Registry::learn_early)), and
//! the DNS front end may ask it to look up an unknown asker from inside a followed subnet and
//! wait, bounded, for the answer ([`Registry::await_asker`](super::Registry::await_asker)).
//!
//! It only scopes askers: it publishes no names and owns nothing. An entry lapses after
//! [`EARLY_TTL`], and whatever a source publishes for the same address wins at once (the
//! writer drops the entry). It does no I/O itself: lookups go out on a channel to whoever
//! follows the engine.

use std::{
    net::IpAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use arc_swap::{ArcSwap, ArcSwapOption};
use tokio::sync::{Notify, mpsc};

use super::{ReadMap, View};

/// How long an early entry scopes its address without a source confirming it. The event path
/// publishes within a second in a calm run; under heavy churn its p99 reached 2.3 s.
pub const EARLY_TTL: Duration = Duration::from_secs(30);
/// A lookup for one address is asked at most this often: a flood from a spoofed address
/// inside a followed subnet costs the engine one question per address per second.
const ASK_AGAIN_AFTER: Duration = Duration::from_secs(1);
/// Lookups waiting to be sent, at most; past it an asker is not looked up (and stays a
/// stranger until a source publishes it).
pub const MAX_PENDING_LOOKUPS: usize = 256;

/// One address's early scope.
#[derive(Debug, Clone)]
pub(super) struct EarlyEntry {
    pub view: Arc<View>,
    pub until: Instant,
    /// Whether every network in the view is internal (never forwarded for).
    pub internal_only: bool,
}

/// The early table, its lookup channel and the subnets it may look up in.
pub(super) struct Early {
    pub entries: ReadMap<IpAddr, EarlyEntry>,
    /// Woken whenever an asker becomes known (early or published), for waiters to look again.
    pub learned: Notify,
    /// Where lookups go: set by the live source while it is connected.
    lookups: ArcSwapOption<mpsc::Sender<IpAddr>>,
    /// Subnets of the networks the live source follows: only askers inside one are looked up.
    subnets: ArcSwap<Box<[ipnet::IpNet]>>,
    /// When each address was last sent for lookup.
    asked: ReadMap<IpAddr, Instant>,
}

impl Default for Early {
    fn default() -> Self {
        Early {
            entries: ReadMap::default(),
            learned: Notify::new(),
            lookups: ArcSwapOption::empty(),
            subnets: ArcSwap::from_pointee(Box::default()),
            asked: ReadMap::default(),
        }
    }
}

impl Early {
    /// The entry for `ip` while it is current.
    pub fn get(&self, ip: &IpAddr) -> Option<EarlyEntry> {
        let entry = self.entries.get(ip)?;
        (entry.until > Instant::now()).then(|| entry.value().clone())
    }

    pub fn set_lookups(&self, sender: Option<mpsc::Sender<IpAddr>>) {
        self.lookups.store(sender.map(Arc::new));
    }

    pub fn set_subnets(&self, subnets: Vec<ipnet::IpNet>) {
        self.subnets.store(Arc::new(subnets.into()));
    }

    /// Whether `ip` lies inside a followed network's subnet (and a lookup could find it).
    pub fn may_look_up(&self, ip: IpAddr) -> bool {
        self.lookups.load().is_some() && self.subnets.load().iter().any(|n| n.contains(&ip))
    }

    /// Sends `ip` for lookup unless it was sent within [`ASK_AGAIN_AFTER`] or too many wait.
    pub fn request(&self, ip: IpAddr) {
        let now = Instant::now();
        if let Some(at) = self.asked.get(&ip)
            && now.duration_since(*at) < ASK_AGAIN_AFTER
        {
            return;
        }
        if self.asked.len() >= MAX_PENDING_LOOKUPS * 4 {
            self.asked
                .retain(|_, at| now.duration_since(*at) < ASK_AGAIN_AFTER);
        }
        let Some(sender) = self.lookups.load_full() else {
            return;
        };
        if sender.try_send(ip).is_ok() {
            self.asked.insert(ip, now);
        }
    }

    /// Drops lapsed entries (called by the writer now and then, never by readers).
    pub fn sweep(&self) {
        let now = Instant::now();
        self.entries.retain(|_, e| e.until > now);
        self.asked
            .retain(|_, at| now.duration_since(*at) < ASK_AGAIN_AFTER);
    }
}
