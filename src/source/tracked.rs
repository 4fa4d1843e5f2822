//! What one source has put into the registry, and the changes that move it to a new state.
//!
//! Every source keeps one of these so that a reload or a resync applies only the difference:
//! what vanished is removed, what appeared is added, nothing is duplicated. Pure bookkeeping:
//! it returns `Change`s and never applies them itself.

use std::{
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

#[derive(Debug, Default)]
pub struct Tracked {
    networks: BTreeSet<String>,
    endpoints: BTreeMap<EndpointKey, Fingerprint>,
}

impl Tracked {
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
        let mut changes = Vec::new();
        for (network, container) in self
            .endpoints
            .keys()
            .filter(|k| !endpoints.contains_key(*k))
        {
            changes.push(Change::EndpointDown {
                network: network.clone(),
                container: container.clone(),
            });
        }
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
        let mut applied = BTreeMap::new();
        for (key, endpoint) in endpoints {
            let print = fingerprint(&endpoint);
            if self.endpoints.get(&key) != Some(&print) {
                changes.push(Change::EndpointUp(endpoint));
            }
            applied.insert(key, print);
        }
        self.networks = networks;
        self.endpoints = applied;
        changes
    }

    /// Replaces everything one container has, on every network, with `endpoints`.
    pub fn replace_container(&mut self, container: &str, endpoints: Vec<Endpoint>) -> Vec<Change> {
        let mut changes = Vec::new();
        let wanted: BTreeMap<EndpointKey, Endpoint> = endpoints
            .into_iter()
            .map(|e| ((e.network.clone(), container.to_string()), e))
            .collect();
        let gone: Vec<EndpointKey> = self
            .endpoints
            .keys()
            .filter(|(_, c)| c == container)
            .filter(|k| !wanted.contains_key(*k))
            .cloned()
            .collect();
        for key in gone {
            self.endpoints.remove(&key);
            changes.push(Change::EndpointDown {
                network: key.0,
                container: key.1,
            });
        }
        for (key, endpoint) in wanted {
            let print = fingerprint(&endpoint);
            if self.endpoints.get(&key) == Some(&print) {
                continue;
            }
            if self.networks.insert(key.0.clone()) {
                changes.push(Change::NetworkUp {
                    network: key.0.clone(),
                });
            }
            changes.push(Change::EndpointUp(endpoint));
            self.endpoints.insert(key, print);
        }
        changes
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
        self.endpoints.retain(|(n, _), _| n != network);
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

    fn ep(network: &str, container: &str, last: u8) -> Endpoint {
        Endpoint {
            network: network.into(),
            container: container.into(),
            name: container.into(),
            aliases: vec![],
            ipv4: Some([10, 0, 0, last].into()),
            ipv6: None,
            ttl: None,
            in_rotation: true,
        }
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
