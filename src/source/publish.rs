//! The one handle a live source publishes through, bound to its owner: it applies the
//! source's changes under that owner, marks the source stale or fresh (its gauge), counts its
//! syncs, and says once when the first sync is in (readiness).
//!
//! Before it, each source carried the same five loose pieces (an `OWNER` constant, an
//! `Arc<Registry>`, a ready oneshot, a stale gauge, a sync counter) and wired them by hand.
//! It decides nothing about what is published; it never reads an engine.

use std::sync::Arc;

use metrics::{Gauge, gauge};
use tokio::sync::oneshot;

use crate::registry::{Change, Owner, Registry};

pub struct Publisher {
    registry: Arc<Registry>,
    owner: Owner,
    stale: Gauge,
    ready: Option<oneshot::Sender<()>>,
    syncs: u64,
}

impl Publisher {
    /// Publishes as `owner`; `stale_gauge` is the source's staleness metric (its handle is
    /// made here, so the recorder must be installed first).
    pub fn new(registry: Arc<Registry>, owner: Owner, stale_gauge: &'static str) -> Publisher {
        Publisher {
            registry,
            owner,
            stale: gauge!(stale_gauge),
            ready: None,
            syncs: 0,
        }
    }

    /// Fired once, at the first [`Publisher::synced`].
    pub fn with_ready(mut self, ready: oneshot::Sender<()>) -> Publisher {
        self.ready = Some(ready);
        self
    }

    pub fn owner(&self) -> Owner {
        self.owner
    }

    /// Applies `changes` as this source's, in order; nothing when there are none.
    pub fn apply_all(&self, changes: Vec<Change>) {
        if !changes.is_empty() {
            self.registry.apply_all(self.owner, changes);
        }
    }

    pub fn apply(&self, change: Change) {
        self.registry.apply(self.owner, change);
    }

    /// A whole sync is applied: the source is fresh from this moment (the gauge turns with
    /// the records, not after the source's bookkeeping), and the first one makes it ready.
    pub fn synced(&mut self) {
        self.set_stale(false);
        self.syncs += 1;
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(());
        }
    }

    pub fn set_stale(&self, stale: bool) {
        self.stale.set(if stale { 1.0 } else { 0.0 });
    }

    /// Syncs applied since the process started: none means never reached.
    pub fn syncs(&self) -> u64 {
        self.syncs
    }

    /// The registry, for what is no owner's records: the early scope of askers
    /// (`Registry::learn_early`), and reads.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Endpoint;

    #[tokio::test]
    async fn it_publishes_as_its_owner_and_is_ready_once() {
        let registry = Arc::new(Registry::new(None).expect("registry"));
        let (tx, rx) = oneshot::channel();
        let mut publisher =
            Publisher::new(Arc::clone(&registry), Owner("test"), "test_stale").with_ready(tx);
        publisher.apply(Change::NetworkUp {
            network: "net".into(),
        });
        publisher.apply_all(vec![Change::EndpointUp(Endpoint {
            network: "net".into(),
            container: "c1".into(),
            name: "web".into(),
            aliases: Vec::new(),
            ipv4: Some("10.0.0.2".parse().expect("ip")),
            ipv6: None,
            ttl: None,
            out_of_rotation: None,
            srv: Vec::new(),
            origins: Default::default(),
        })]);
        assert_eq!(registry.sizes().endpoints, 1);
        // Another owner's withdrawal does not take this one's endpoint.
        registry.apply(
            Owner("other"),
            Change::EndpointDown {
                network: "net".into(),
                container: "c1".into(),
            },
        );
        assert_eq!(registry.sizes().endpoints, 1);
        assert_eq!(publisher.syncs(), 0);
        publisher.synced();
        publisher.synced();
        assert_eq!(publisher.syncs(), 2);
        assert!(rx.await.is_ok(), "ready fired at the first sync");
    }
}
