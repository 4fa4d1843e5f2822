//! Which addresses are this host's own, so that a query from one of them counts as the host
//! asking (like loopback) rather than as a stranger.
//!
//! A query from the host to a bridge gateway listener arrives from the gateway address
//! itself, not from 127.0.0.1; with scoping failing closed, the host would otherwise see
//! nothing. The set is read from the interfaces every few seconds (bridges come and go) and
//! swapped in whole; the answer path only searches it. Nothing here decides answers.

use std::{net::IpAddr, sync::Arc, time::Duration};

use arc_swap::ArcSwap;
use tracing::debug;

/// How often the interface addresses are read again.
const REFRESH: Duration = Duration::from_secs(5);

/// The host's own addresses, sorted for a binary search.
#[derive(Default)]
pub struct HostAddresses(ArcSwap<Box<[IpAddr]>>);

impl HostAddresses {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.load().binary_search(&ip).is_ok()
    }

    fn set(&self, mut ips: Vec<IpAddr>) {
        ips.sort_unstable();
        ips.dedup();
        self.0.store(Arc::new(ips.into()));
    }

    /// Reads the interfaces now.
    pub fn refresh(&self) {
        match if_addrs::get_if_addrs() {
            Ok(all) => self.set(all.into_iter().map(|i| i.ip()).collect()),
            Err(error) => debug!(%error, "cannot list interface addresses"),
        }
    }
}

/// Keeps `addresses` current until the process ends.
pub async fn follow(addresses: Arc<HostAddresses>) {
    let mut every = tokio::time::interval(REFRESH);
    loop {
        every.tick().await;
        addresses.refresh();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_among_the_hosts_addresses() {
        let host = HostAddresses::default();
        assert!(!host.contains(IpAddr::from([127, 0, 0, 1])));
        host.refresh();
        assert!(host.contains(IpAddr::from([127, 0, 0, 1])));
        assert!(
            !host.contains(IpAddr::from([192, 0, 2, 1])),
            "a documentation address"
        );
    }
}
