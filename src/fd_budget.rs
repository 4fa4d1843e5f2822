//! File descriptors, planned: the process raises its soft `RLIMIT_NOFILE` to the hard limit
//! at start, and everything that opens descriptors on demand (DNS over TCP, with its
//! admission line; HTTP, with its loopback reserve; sockets for forwarding) is sized within
//! what it got, each in its own share, so that running out in one never starves another.
//!
//! [`plan`] is pure (the sizes from a limit and what the config asks for); [`raise`] is the
//! one system call. Neither decides anything else: how many TCP connections may wait is
//! [`crate::dns::tcp_max_waiting`]'s rule, and how many HTTP connections loopback may hold
//! past the cap is [`crate::telemetry::http::LOOPBACK_RESERVED`]; the plan only counts them.

use crate::{dns::tcp_max_waiting, telemetry::http::LOOPBACK_RESERVED};

/// Descriptors kept for everything that is not a pool: listeners (UDP per worker, TCP), the
/// engine connection and its event stream, the config watcher, logs, the runtime's own, and
/// the socket each accept loop holds between accepting it and admitting or refusing it.
pub const RESERVED: u64 = 64;
/// The HTTP side's connection cap when the budget allows it (scrapes and health checks).
pub const HTTP_CONNECTIONS: usize = 64;

/// How many descriptors each pool may hold at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The soft limit the process runs with.
    pub limit: u64,
    pub tcp_connections: usize,
    /// TCP connections waiting in the admission line (each an accepted socket), at most.
    pub tcp_waiting: usize,
    pub http_connections: usize,
    /// HTTP connections from loopback served past `http_connections` (health probes).
    pub http_loopback: usize,
    /// Forwards in flight (each holds one UDP or TCP socket).
    pub forwards: usize,
}

impl Budget {
    /// Every descriptor the plan may have open at once.
    pub fn total(&self) -> u64 {
        [
            self.tcp_connections,
            self.tcp_waiting,
            self.http_connections,
            self.http_loopback,
            self.forwards,
        ]
        .into_iter()
        .fold(RESERVED, |sum, pool| sum.saturating_add(pool as u64))
    }
}

/// Sizes the pools within `limit`: what the config asks for when it fits, else shares of what
/// is left after [`RESERVED`] (HTTP an eighth with its loopback reserve, forwarding a
/// quarter, TCP the rest with its admission line), never 0. `tcp_per_client` is the
/// per-address cap, on which the line's length depends.
pub fn plan(
    limit: u64,
    tcp_wanted: usize,
    tcp_per_client: usize,
    forwards_wanted: usize,
) -> Budget {
    let free = usize::try_from(limit.saturating_sub(RESERVED)).unwrap_or(usize::MAX);
    let http = HTTP_CONNECTIONS
        .min((free / 8).saturating_sub(LOOPBACK_RESERVED))
        .max(1);
    let forwards = forwards_wanted.min(free / 4).max(1);
    let tcp_share = free.saturating_sub(http + LOOPBACK_RESERVED + forwards);
    let tcp = tcp_fitting(tcp_share, tcp_wanted.max(1), tcp_per_client.max(1));
    Budget {
        limit,
        tcp_connections: tcp,
        tcp_waiting: tcp_max_waiting(tcp, tcp_per_client.max(1)),
        http_connections: http,
        http_loopback: LOOPBACK_RESERVED,
        forwards,
    }
}

/// The most TCP connections, up to `wanted`, whose line fits beside them in `share`; at
/// least 1. The line grows with the cap, so the largest that fits is found by bisection.
fn tcp_fitting(share: usize, wanted: usize, per_client: usize) -> usize {
    let fits = |n: usize| n.saturating_add(tcp_max_waiting(n, per_client)) <= share;
    if fits(wanted) {
        return wanted;
    }
    // `fits(low)` or low is 1, and `!fits(high)`.
    let (mut low, mut high) = (1, wanted);
    while high - low > 1 {
        let mid = low + (high - low) / 2;
        if fits(mid) {
            low = mid;
        } else {
            high = mid;
        }
    }
    low
}

/// Raises the soft limit to the hard one; returns the soft limit now in force.
pub fn raise() -> std::io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_asked_fits_a_large_limit_unchanged() {
        let b = plan(1_048_576, 1024, 64, 256);
        assert_eq!(
            (b.tcp_connections, b.http_connections, b.forwards),
            (1024, 64, 256)
        );
        assert_eq!(b.tcp_waiting, 128, "an eighth of the TCP cap may wait");
        assert_eq!(b.http_loopback, LOOPBACK_RESERVED);
    }

    #[test]
    fn a_small_limit_is_shared_and_no_pool_can_take_it_all() {
        // The usual soft limit, 1024: TCP's 1024 would have taken every descriptor.
        let b = plan(1024, 1024, 64, 256);
        assert_eq!(b.http_connections, 64);
        assert_eq!(b.forwards, 240);
        // 960 free: HTTP 64 + 4, forwarding 240, TCP's share 652 for connections and line.
        assert_eq!(b.tcp_connections + b.tcp_waiting, 652);
        assert_eq!(b.tcp_waiting, tcp_max_waiting(b.tcp_connections, 64));
        assert_eq!((b.tcp_connections, b.tcp_waiting), (580, 72));
        assert!(b.total() <= 1024, "{b:?}");
        // Very small: every pool keeps at least one.
        let tiny = plan(70, 1024, 64, 256);
        assert!(tiny.tcp_connections >= 1 && tiny.http_connections >= 1 && tiny.forwards >= 1);
    }

    #[test]
    fn the_tcp_line_and_the_http_reserve_are_in_the_sum_whatever_the_caps() {
        for limit in [100, 200, 256, 512, 1024, 2048, 4096, 65_536] {
            for per_client in [1, 8, 64, 256, 1000, 100_000] {
                for tcp_wanted in [1, 64, 1024, 100_000] {
                    let b = plan(limit, tcp_wanted, per_client, 256);
                    assert!(b.tcp_connections >= 1 && b.tcp_connections <= tcp_wanted);
                    assert_eq!(
                        b.tcp_waiting,
                        tcp_max_waiting(b.tcp_connections, per_client),
                        "the line is the admission's own rule"
                    );
                    assert!(
                        b.total() <= limit,
                        "limit {limit}, per client {per_client}, TCP {tcp_wanted}: {b:?}"
                    );
                    let share = usize::try_from(limit).unwrap()
                        - RESERVED as usize
                        - b.http_connections
                        - b.http_loopback
                        - b.forwards;
                    assert!(b.tcp_connections + b.tcp_waiting <= share);
                    // The most that fit: one more connection (and its line) would not.
                    if b.tcp_connections < tcp_wanted {
                        let more = b.tcp_connections + 1;
                        assert!(more + tcp_max_waiting(more, per_client) > share);
                    }
                }
            }
        }
    }

    #[test]
    fn a_per_client_cap_past_the_share_halves_tcp_rather_than_overrun_it() {
        // An address may wait with its whole cap: with a cap of 1000 under a limit of 200,
        // the line is as long as the connections, and the two share what TCP has.
        let b = plan(200, 1024, 1000, 256);
        let share = 200 - RESERVED as usize - b.http_connections - b.http_loopback - b.forwards;
        assert_eq!(b.tcp_waiting, b.tcp_connections);
        assert_eq!(b.tcp_connections, share / 2);
    }
}
