//! What one source has put into the registry, and the changes that move it to a new state.
//!
//! Every source keeps one of these so that a reload or a resync applies only the difference:
//! what vanished is removed, what appeared is added, nothing is duplicated. Pure bookkeeping:
//! it returns `Change`s and never applies them itself.

use std::{
    borrow::Borrow,
    collections::{BTreeMap, BTreeSet},
    hash::{DefaultHasher, Hash, Hasher},
};

use crate::registry::{Change, Endpoint};

/// (network, container)
pub type EndpointKey = (String, String);

/// What an applied endpoint looked like, as a 64-bit hash. Keeping the whole endpoint here
/// duplicated every name and address the registry already holds (~30 MB at 100,000
/// endpoints); a hash is enough to tell "changed" from "same" (a collision, which would
/// miss one update, has odds of 2^-64 per comparison).
type Fingerprint = u64;

fn fingerprint(endpoint: &Endpoint) -> Fingerprint {
    // `DefaultHasher::new()` has fixed keys, so equal endpoints always hash alike.
    let mut hasher = DefaultHasher::new();
    endpoint.hash(&mut hasher);
    hasher.finish()
}

/// (container, network) in one allocation: the container's bytes, a 0xFF byte (never in
/// UTF-8, so never in either name), the network's. Ordered by the container first, so that
/// one container's endpoints are a range (a Docker event touches one container; scanning every
/// endpoint for it cost O(n)): keys that share the prefix `CONTAINER 0xFF` are contiguous. Two
/// `String`s cost about 60 bytes more an endpoint at 100,000. Up to 15 bytes (`web-1` on
/// `backend`, a static endpoint's key) it is kept inline, with no allocation: as a `Box<[u8]>`
/// each cost a 32-byte chunk of the allocator, 3.2 MB at 100,000 static endpoints; a longer
/// one (a Docker container's 64-character ID) is on the heap as before, in the same 16 bytes.
#[derive(Debug, Clone)]
struct ByContainer(compact_bytes::CompactBytesSlice);

const _: () = assert!(std::mem::size_of::<ByContainer>() == 16);

// Compared and ordered as the bytes are (container first).
impl PartialEq for ByContainer {
    fn eq(&self, other: &ByContainer) -> bool {
        self.0.as_slice() == other.0.as_slice()
    }
}

impl Eq for ByContainer {}

impl PartialOrd for ByContainer {
    fn partial_cmp(&self, other: &ByContainer) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ByContainer {
    fn cmp(&self, other: &ByContainer) -> std::cmp::Ordering {
        self.0.as_slice().cmp(other.0.as_slice())
    }
}

const SEPARATOR: u8 = 0xFF;

impl ByContainer {
    fn new(container: &str, network: &str) -> ByContainer {
        let mut key: smallvec::SmallVec<[u8; 64]> = smallvec::SmallVec::new();
        key.extend_from_slice(container.as_bytes());
        key.push(SEPARATOR);
        key.extend_from_slice(network.as_bytes());
        ByContainer(compact_bytes::CompactBytesSlice::new(&key))
    }

    /// Where every key of `container` starts.
    fn prefix(container: &str) -> Vec<u8> {
        let mut prefix = container.as_bytes().to_vec();
        prefix.push(SEPARATOR);
        prefix
    }

    fn container(&self) -> &str {
        self.split().0
    }

    fn network(&self) -> &str {
        self.split().1
    }

    fn split(&self) -> (&str, &str) {
        let at = self
            .0
            .iter()
            .position(|b| *b == SEPARATOR)
            .unwrap_or(self.0.len());
        let (container, network) = self.0.split_at(at);
        (text(container), text(network.get(1..).unwrap_or_default()))
    }
}

/// Either side of the separator: UTF-8, as it was built from `&str`s.
fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

impl std::borrow::Borrow<[u8]> for ByContainer {
    fn borrow(&self) -> &[u8] {
        self.0.as_slice()
    }
}

/// What [`Tracked::retrack`] found: the changes that go before any endpoint is added or
/// updated, and, for each endpoint it was given in that order, whether it is new or changed.
#[derive(Debug)]
pub struct Retracked {
    pub changes: Vec<Change>,
    pub changed: Vec<bool>,
}

#[derive(Debug, Default)]
pub struct Tracked {
    networks: BTreeSet<String>,
    endpoints: BTreeMap<ByContainer, Fingerprint>,
}

impl Tracked {
    /// What a source applied, told back: `networks`, and each endpoint `recall` hands the
    /// function it is given (a source that diffs against what the registry holds rebuilds
    /// this for one reload instead of keeping it between reloads). Collected, then built at
    /// once: the tree's nodes are full whatever order the endpoints come in.
    pub fn recalled(
        networks: BTreeSet<String>,
        recall: impl FnOnce(&mut dyn FnMut(&Endpoint)),
    ) -> Tracked {
        let mut applied = Vec::new();
        recall(&mut |endpoint: &Endpoint| {
            let key = ByContainer::new(&endpoint.container, &endpoint.network);
            applied.push((key, fingerprint(endpoint)));
        });
        Tracked {
            networks,
            endpoints: applied.into_iter().collect(),
        }
    }

    pub fn networks(&self) -> &BTreeSet<String> {
        &self.networks
    }

    pub fn endpoint_count(&self) -> usize {
        self.endpoints.len()
    }

    /// Moves to exactly `networks` and `endpoints`, returning the changes that do it.
    pub fn reconcile(
        &mut self,
        networks: BTreeSet<String>,
        endpoints: BTreeMap<EndpointKey, Endpoint>,
    ) -> Vec<Change> {
        debug_assert!(
            (endpoints.iter()).all(|((n, c), e)| *n == e.network && *c == e.container),
            "an endpoint keyed by other than its own network and container"
        );
        let Retracked {
            mut changes,
            changed,
        } = self.retrack(networks, endpoints.values());
        changes.extend(
            (endpoints.into_values().zip(changed))
                .filter(|(_, changed)| *changed)
                .map(|(endpoint, _)| Change::EndpointUp(endpoint)),
        );
        changes
    }

    /// [`Tracked::reconcile`] in two halves, for a caller that can walk its endpoints twice
    /// and would rather not hold them all at once: this moves the bookkeeping to exactly
    /// `networks` and `endpoints` (each one's key taken from its own network and container;
    /// no two may share one) and returns the removals and network changes, which go first,
    /// and which endpoints, by position, are new or changed. The caller then sends an
    /// `EndpointUp` for each of those, in any order and in as many batches as it likes.
    pub fn retrack<E: Borrow<Endpoint>>(
        &mut self,
        networks: BTreeSet<String>,
        endpoints: impl IntoIterator<Item = E>,
    ) -> Retracked {
        let mut applied = Vec::new();
        let mut changed = Vec::new();
        for endpoint in endpoints {
            let endpoint = endpoint.borrow();
            let key = ByContainer::new(&endpoint.container, &endpoint.network);
            let print = fingerprint(endpoint);
            changed.push(self.endpoints.get(&key) != Some(&print));
            applied.push((key, print));
        }
        // Built at once from the sorted keys, the tree's nodes are full; inserted one at a
        // time in the config's order they were about half empty (45 against ~27 bytes an
        // endpoint at 100,000).
        let applied: BTreeMap<ByContainer, Fingerprint> = applied.into_iter().collect();
        debug_assert_eq!(applied.len(), changed.len(), "two endpoints with one key");
        let mut changes: Vec<Change> = self
            .endpoints
            .keys()
            .filter(|k| !applied.contains_key(*k))
            .map(|key| Change::EndpointDown {
                network: key.network().to_string(),
                container: key.container().to_string(),
            })
            .collect();
        for network in self.networks.difference(&networks) {
            changes.push(Change::NetworkDown {
                network: network.clone(),
            });
        }
        for network in networks.difference(&self.networks) {
            changes.push(Change::NetworkUp {
                network: network.clone(),
            });
        }
        self.networks = networks;
        self.endpoints = applied;
        Retracked { changes, changed }
    }

    /// Replaces everything one container has, on every network, with `endpoints`.
    pub fn replace_container(&mut self, container: &str, endpoints: Vec<Endpoint>) -> Vec<Change> {
        let mut changes = Vec::new();
        let wanted: BTreeMap<String, Endpoint> = endpoints
            .into_iter()
            .map(|e| (e.network.clone(), e))
            .collect();
        let prefix = ByContainer::prefix(container);
        let gone: Vec<ByContainer> = self
            .endpoints
            .range::<[u8], _>((
                std::ops::Bound::Included(&prefix[..]),
                std::ops::Bound::Unbounded,
            ))
            .map(|(key, _)| key)
            .take_while(|key| key.0.starts_with(&prefix))
            .filter(|key| !wanted.contains_key(key.network()))
            .cloned()
            .collect();
        for key in gone {
            self.endpoints.remove(&key);
            changes.push(Change::EndpointDown {
                network: key.network().to_string(),
                container: key.container().to_string(),
            });
        }
        for (network, endpoint) in wanted {
            let key = ByContainer::new(container, &network);
            let print = fingerprint(&endpoint);
            if self.endpoints.get(&key) == Some(&print) {
                continue;
            }
            if self.networks.insert(network.clone()) {
                changes.push(Change::NetworkUp { network });
            }
            changes.push(Change::EndpointUp(endpoint));
            self.endpoints.insert(key, print);
        }
        changes
    }

    /// Whether `container` has an endpoint on any network.
    pub fn has_container(&self, container: &str) -> bool {
        let prefix = ByContainer::prefix(container);
        self.endpoints
            .range::<[u8], _>((
                std::ops::Bound::Included(&prefix[..]),
                std::ops::Bound::Unbounded,
            ))
            .next()
            .is_some_and(|(key, _)| key.0.starts_with(&prefix))
    }

    /// Removes one container's endpoint on one network, if it had one there.
    pub fn remove_endpoint(&mut self, container: &str, network: &str) -> Vec<Change> {
        match self
            .endpoints
            .remove(ByContainer::new(container, network).0.as_ref())
        {
            Some(_) => vec![Change::EndpointDown {
                network: network.to_string(),
                container: container.to_string(),
            }],
            None => Vec::new(),
        }
    }

    pub fn add_network(&mut self, network: &str) -> Vec<Change> {
        if self.networks.insert(network.to_string()) {
            vec![Change::NetworkUp {
                network: network.to_string(),
            }]
        } else {
            Vec::new()
        }
    }

    /// The network and, with it, every endpoint on it.
    pub fn remove_network(&mut self, network: &str) -> Vec<Change> {
        self.endpoints.retain(|key, _| key.network() != network);
        if self.networks.remove(network) {
            vec![Change::NetworkDown {
                network: network.to_string(),
            }]
        } else {
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_key_is_inline_and_a_long_one_splits_alike() {
        let short = ByContainer::new("web-1", "backend");
        assert!(!short.0.spilled());
        assert_eq!(short.split(), ("web-1", "backend"));
        let id = "0123456789abcdef".repeat(4);
        let long = ByContainer::new(&id, "backend");
        assert!(long.0.spilled());
        assert_eq!(long.split(), (id.as_str(), "backend"));
        assert!(short < ByContainer::new("web-1", "backends"));
        // One container's keys are contiguous: 0xFF is above any byte of UTF-8.
        assert!(ByContainer::new("web-10", "z") < ByContainer::new("web-1", "a"));
    }

    fn ep(network: &str, container: &str, last: u8) -> Endpoint {
        Endpoint {
            network: network.into(),
            container: container.into(),
            name: container.into(),
            aliases: vec![],
            ipv4: Some([10, 0, 0, last].into()),
            ipv6: None,
            ttl: None,
            out_of_rotation: None,
            srv: Vec::new(),
            origins: Default::default(),
        }
    }

    #[test]
    fn retrack_sends_removals_first_and_flags_only_what_is_new_or_changed() {
        let mut tracked = Tracked::default();
        let before = [ep("n", "a", 1), ep("n", "b", 2), ep("n", "d", 4)];
        let first = tracked.retrack(["n".to_string()].into(), before.iter());
        assert_eq!(first.changed, [true, true, true], "all new");
        assert!(matches!(&first.changes[..], [Change::NetworkUp { network }] if network == "n"));
        // Owned endpoints as well as borrowed ones; a different order than before.
        let after = vec![ep("m", "c", 3), ep("n", "b", 7), ep("n", "a", 1)];
        let second = tracked.retrack(["m".to_string(), "n".to_string()].into(), after);
        assert_eq!(
            second.changed,
            [true, true, false],
            "c new, b changed, a the same"
        );
        assert!(matches!(
            &second.changes[..],
            [Change::EndpointDown { network, container }, Change::NetworkUp { network: up }]
                if network == "n" && container == "d" && up == "m"
        ));
        assert_eq!(tracked.endpoint_count(), 3);
        // reconcile is the two halves together.
        let same = tracked.reconcile(
            ["m".to_string(), "n".to_string()].into(),
            [ep("m", "c", 3), ep("n", "b", 7), ep("n", "a", 1)]
                .into_iter()
                .map(|e| ((e.network.clone(), e.container.clone()), e))
                .collect(),
        );
        assert!(same.is_empty(), "{same:?}");
    }

    #[test]
    fn one_network_of_a_container_can_be_dropped_alone() {
        let mut t = Tracked::default();
        t.replace_container("c1", vec![ep("a", "c1", 2), ep("b", "c1", 3)]);
        assert_eq!(
            t.remove_endpoint("c1", "a"),
            vec![Change::EndpointDown {
                network: "a".into(),
                container: "c1".into()
            }]
        );
        assert!(t.remove_endpoint("c1", "a").is_empty(), "once");
        assert_eq!(t.endpoint_count(), 1);
        // The read that follows finds it gone from `a` already: only `b` is left to compare.
        assert!(t.replace_container("c1", vec![ep("b", "c1", 3)]).is_empty());
    }

    #[test]
    fn replace_container_adds_updates_and_removes_only_its_own() {
        let mut t = Tracked::default();
        let first = t.replace_container("a", vec![ep("n1", "a", 1), ep("n2", "a", 2)]);
        assert_eq!(
            first.len(),
            4,
            "two networks up, two endpoints up: {first:?}"
        );
        t.replace_container("b", vec![ep("n1", "b", 3)]);
        assert!(
            t.replace_container("a", vec![ep("n1", "a", 1), ep("n2", "a", 2)])
                .is_empty(),
            "no-op"
        );
        let moved = t.replace_container("a", vec![ep("n1", "a", 9)]);
        assert_eq!(
            moved,
            vec![
                Change::EndpointDown {
                    network: "n2".into(),
                    container: "a".into()
                },
                Change::EndpointUp(ep("n1", "a", 9)),
            ]
        );
        assert_eq!(t.endpoint_count(), 2);
    }

    #[test]
    fn a_container_whose_name_starts_another_is_a_range_of_its_own() {
        let mut t = Tracked::default();
        t.replace_container("ab", vec![ep("n", "ab", 1)]);
        t.replace_container("a", vec![ep("n", "a", 2), ep("m", "a", 3)]);
        t.replace_container("a-b", vec![ep("n", "a-b", 4)]);
        assert!(t.has_container("a") && t.has_container("ab") && !t.has_container("b"));
        assert_eq!(
            t.replace_container("a", Vec::new()),
            vec![
                Change::EndpointDown {
                    network: "m".into(),
                    container: "a".into()
                },
                Change::EndpointDown {
                    network: "n".into(),
                    container: "a".into()
                },
            ]
        );
        assert!(!t.has_container("a"));
        assert_eq!(t.endpoint_count(), 2, "ab's and a-b's stay");
        assert_eq!(t.remove_network("n").len(), 1);
        assert_eq!(t.endpoint_count(), 0);
    }

    #[test]
    fn reconcile_removes_what_vanished_and_keeps_what_stayed() {
        let mut t = Tracked::default();
        t.replace_container("a", vec![ep("n1", "a", 1)]);
        t.replace_container("b", vec![ep("n1", "b", 2)]);
        let nets = BTreeSet::from(["n1".to_string()]);
        let eps = BTreeMap::from([(("n1".to_string(), "b".to_string()), ep("n1", "b", 2))]);
        let changes = t.reconcile(nets, eps);
        assert_eq!(
            changes,
            vec![Change::EndpointDown {
                network: "n1".into(),
                container: "a".into()
            }]
        );
    }
}
