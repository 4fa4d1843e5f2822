//! File descriptors, planned: the process raises its soft `RLIMIT_NOFILE` to the hard limit
//! at start, and the three pools that open descriptors on demand (DNS over TCP, HTTP, sockets
//! for forwarding) are sized within what it got, each in its own share, so that running out
//! in one never starves another.
//!
//! [`plan`] is pure (the sizes from a limit and what the config asks for); [`raise`] is the
//! one system call. Neither decides anything else.

/// Descriptors kept for everything that is not a pool: listeners (UDP per worker, TCP), the
/// engine connection and its event stream, the config watcher, logs, the runtime's own.
pub const RESERVED: u64 = 64;
/// The HTTP side's connection cap when the budget allows it (scrapes and health checks).
pub const HTTP_CONNECTIONS: usize = 64;

/// How many descriptors each pool may hold at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The soft limit the process runs with.
    pub limit: u64,
    pub tcp_connections: usize,
    pub http_connections: usize,
    /// Forwards in flight (each holds one UDP or TCP socket).
    pub forwards: usize,
}

/// Sizes the pools within `limit`: what the config asks for when it fits, else shares of what
/// is left after [`RESERVED`] (HTTP an eighth, forwarding a quarter, TCP the rest), never 0.
pub fn plan(limit: u64, tcp_wanted: usize, forwards_wanted: usize) -> Budget {
    let free = usize::try_from(limit.saturating_sub(RESERVED)).unwrap_or(usize::MAX);
    let http = HTTP_CONNECTIONS.min(free / 8).max(1);
    let forwards = forwards_wanted.min(free / 4).max(1);
    let tcp = tcp_wanted.min(free.saturating_sub(http + forwards)).max(1);
    Budget {
        limit,
        tcp_connections: tcp,
        http_connections: http,
        forwards,
    }
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
        let b = plan(1_048_576, 1024, 256);
        assert_eq!(
            (b.tcp_connections, b.http_connections, b.forwards),
            (1024, 64, 256)
        );
    }

    #[test]
    fn a_small_limit_is_shared_and_no_pool_can_take_it_all() {
        // The usual soft limit, 1024: TCP's 1024 would have taken every descriptor.
        let b = plan(1024, 1024, 256);
        assert_eq!(b.http_connections, 64);
        assert_eq!(b.forwards, 240);
        assert_eq!(b.tcp_connections, 1024 - 64 - 64 - 240);
        let used = RESERVED as usize + b.tcp_connections + b.http_connections + b.forwards;
        assert!(used <= 1024);
        // Very small: every pool keeps at least one.
        let tiny = plan(70, 1024, 256);
        assert!(tiny.tcp_connections >= 1 && tiny.http_connections >= 1 && tiny.forwards >= 1);
    }
}
