//! The Docker source's state machine: what it has published, and the changes that make the
//! registry equal to what the engine now says.
//!
//! Facts in (a snapshot, a container read whole, a network created or destroyed, a container
//! leaving a network, the list of running containers), [`Change`]s out. It reads no engine,
//! publishes nothing and knows no clock, so it is tested on fixtures; the loop in `mod.rs`
//! reads the engine (`client.rs`) and publishes what this returns.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::IpAddr,
};

use super::listed::Known;
use crate::registry::{Change, Endpoint};
use crate::source::tracked::{EndpointKey, Tracked};

/// The asker key and the nameless addresses a container asks from (see
/// `translate::asker_addresses_of`).
pub type AskerAddresses = Option<(String, Vec<IpAddr>)>;

/// One container as read: its endpoints on the followed networks, and where it asks from.
/// A container that is gone has neither. `known` is what its inspect says that the engine's
/// list does not (`listed.rs`); None when these facts come from the list, which leaves what
/// was known as it was.
#[derive(Debug, Clone, Default)]
pub struct ContainerFacts {
    pub endpoints: Vec<Endpoint>,
    pub asks_from: AskerAddresses,
    pub known: Option<Known>,
}

/// Everything a snapshot reads.
#[derive(Debug, Default)]
pub struct SnapshotFacts {
    /// The user-defined networks the engine lists.
    pub networks: BTreeSet<String>,
    /// Which of those are internal.
    pub internal: Vec<(String, bool)>,
    /// The host's addresses on each (`translate::gateways_of`), for the host name.
    pub gateways: Vec<(String, Vec<IpAddr>)>,
    /// The running containers as listed ([`Listed`]), for the periodic reconcile.
    pub listed: Listed,
    /// Every running container, read whole, by ID.
    pub containers: Vec<(String, ContainerFacts)>,
}

/// The running containers as the engine's list shows them: ID → what the list says of its
/// records (state, health, names, addresses); a container whose entry changes is re-read.
pub type Listed = HashMap<String, String>;

/// What comparing a new list of running containers with the last one found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Relisted {
    /// Listed now and new or different: to be read again.
    pub changed: Vec<String>,
    /// Listed before and not now: gone.
    pub gone: Vec<String>,
}

#[derive(Debug, Default)]
pub struct DockerState {
    tracked: Tracked,
    /// Container ID → the asker key and nameless addresses published for it.
    askers: HashMap<String, (String, Vec<IpAddr>)>,
    /// The running containers as last listed.
    listed: Listed,
    /// Container ID → what its last inspect said that the list does not (hostname, aliases
    /// per network), for publishing it from the list (`listed.rs`).
    known: HashMap<String, Known>,
}

impl DockerState {
    pub fn endpoint_count(&self) -> usize {
        self.tracked.endpoint_count()
    }

    /// Moves to exactly what `facts` says: containers gone since the last snapshot take
    /// their endpoints and nameless addresses with them.
    pub fn snapshot(&mut self, facts: SnapshotFacts) -> Vec<Change> {
        self.listed = facts.listed;
        let mut endpoints: BTreeMap<EndpointKey, Endpoint> = BTreeMap::new();
        let mut askers: HashMap<String, AskerAddresses> = HashMap::new();
        self.known.clear();
        for (id, container) in facts.containers {
            if let Some(known) = container.known {
                self.known.insert(id.clone(), known);
            }
            for ep in container.endpoints {
                endpoints.insert((ep.network.clone(), ep.container.clone()), ep);
            }
            askers.insert(id, container.asks_from);
        }
        let gone: Vec<String> = (self.askers.keys())
            .filter(|id| !askers.contains_key(*id))
            .cloned()
            .collect();
        for id in gone {
            askers.insert(id, None);
        }
        // A container's networks can only be ones the engine listed, or ones created since.
        let mut networks = facts.networks;
        networks.extend(endpoints.keys().map(|(n, _)| n.clone()));
        let mut changes = self.tracked.reconcile(networks, endpoints);
        changes.extend(
            facts
                .internal
                .into_iter()
                .map(|(network, internal)| Change::NetworkInternal { network, internal }),
        );
        changes.extend(
            facts
                .gateways
                .into_iter()
                .filter(|(_, gateways)| !gateways.is_empty())
                .map(|(network, gateways)| Change::NetworkGateways { network, gateways }),
        );
        // In ID order, so the same facts give the same changes.
        let mut askers: Vec<_> = askers.into_iter().collect();
        askers.sort_by(|a, b| a.0.cmp(&b.0));
        for (id, asks_from) in askers {
            changes.extend(self.asker_changes(&id, asks_from));
        }
        changes
    }

    /// Container `id` is now as `facts` says (read after an event, or gone).
    pub fn container(&mut self, id: &str, facts: ContainerFacts) -> Vec<Change> {
        if facts.endpoints.is_empty() && facts.asks_from.is_none() {
            self.known.remove(id);
        } else if let Some(known) = facts.known {
            self.known.insert(id.to_string(), known);
        }
        let mut changes = self.tracked.replace_container(id, facts.endpoints);
        changes.extend(self.asker_changes(id, facts.asks_from));
        changes
    }

    /// A user-defined network was created; `internal` when its inspect said, and the host's
    /// addresses on it.
    pub fn network_created(
        &mut self,
        network: &str,
        internal: Option<bool>,
        gateways: Vec<IpAddr>,
    ) -> Vec<Change> {
        let mut changes = self.tracked.add_network(network);
        if let Some(internal) = internal {
            changes.push(Change::NetworkInternal {
                network: network.to_string(),
                internal,
            });
        }
        if !gateways.is_empty() {
            changes.push(Change::NetworkGateways {
                network: network.to_string(),
                gateways,
            });
        }
        changes
    }

    /// A network was destroyed, with every endpoint on it.
    pub fn network_destroyed(&mut self, network: &str) -> Vec<Change> {
        self.tracked.remove_network(network)
    }

    /// `container` left `network` (gone from there at once, as from Docker's DNS).
    pub fn left_network(&mut self, container: &str, network: &str) -> Vec<Change> {
        if let Some(known) = self.known.get_mut(container) {
            known.left(network);
        }
        self.tracked.remove_endpoint(container, network)
    }

    /// What container `id`'s last inspect said that the list does not, if it was inspected.
    pub fn known(&self, id: &str) -> Option<&Known> {
        self.known.get(id)
    }

    /// Whether anything is published for container `id`.
    pub fn publishes(&self, id: &str) -> bool {
        self.askers.contains_key(id) || self.tracked.has_container(id)
    }

    /// Compares `now` with the last list and keeps it: what changed or appeared is to be read
    /// again, what went is gone (the event stream had missed them).
    pub fn relist(&mut self, now: Listed) -> Relisted {
        let mut changed: Vec<String> = now
            .iter()
            .filter(|(id, seen)| self.listed.get(*id) != Some(*seen))
            .map(|(id, _)| id.clone())
            .collect();
        let mut gone: Vec<String> = self
            .listed
            .keys()
            .filter(|id| !now.contains_key(*id))
            .cloned()
            .collect();
        changed.sort();
        gone.sort();
        self.listed = now;
        Relisted { changed, gone }
    }

    /// The changes that make the nameless addresses published for container `id` equal
    /// `now`; none when nothing changed.
    fn asker_changes(&mut self, id: &str, now: AskerAddresses) -> Vec<Change> {
        let before = match &now {
            Some(now) => self.askers.insert(id.to_string(), now.clone()),
            None => self.askers.remove(id),
        };
        if before == now {
            return Vec::new();
        }
        let mut changes = Vec::new();
        if let Some((key, _)) = before
            && now.as_ref().is_none_or(|(k, _)| *k != key)
        {
            changes.push(Change::AskerAddresses {
                container: key,
                addresses: Vec::new(),
            });
        }
        if let Some((key, addresses)) = now {
            changes.push(Change::AskerAddresses {
                container: key,
                addresses,
            });
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::docker::translate::{Policy, asker_addresses_of, endpoints_of};
    use bollard::models::{
        ContainerConfig, ContainerInspectResponse, ContainerState, EndpointSettings,
        NetworkSettings,
    };

    /// A running container as the engine's inspect gives it: `networks` as (name, address,
    /// aliases).
    fn inspected(id: &str, name: &str, networks: &[(&str, &str, &[&str])]) -> ContainerFacts {
        let container = ContainerInspectResponse {
            id: Some(id.into()),
            name: Some(format!("/{name}")),
            config: Some(ContainerConfig {
                hostname: Some(id[..12].into()),
                ..Default::default()
            }),
            state: Some(ContainerState {
                running: Some(true),
                ..Default::default()
            }),
            network_settings: Some(NetworkSettings {
                networks: Some(
                    networks
                        .iter()
                        .map(|(net, ip, aliases)| {
                            (
                                net.to_string(),
                                EndpointSettings {
                                    ip_address: Some(ip.to_string()),
                                    aliases: Some(aliases.iter().map(|a| a.to_string()).collect()),
                                    ..Default::default()
                                },
                            )
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        };
        let policy = Policy::default();
        ContainerFacts {
            endpoints: endpoints_of(&container, policy),
            asks_from: asker_addresses_of(&container, None, policy.engine),
            known: None,
        }
    }

    const A: &str = "aaaaaaaaaaaa0000000000000000000000000000000000000000000000000000";
    const B: &str = "bbbbbbbbbbbb0000000000000000000000000000000000000000000000000000";

    fn ups(changes: &[Change]) -> Vec<(String, String)> {
        changes
            .iter()
            .filter_map(|c| match c {
                Change::EndpointUp(ep) => Some((ep.network.clone(), ep.name.clone())),
                _ => None,
            })
            .collect()
    }

    fn downs(changes: &[Change]) -> Vec<(String, String)> {
        changes
            .iter()
            .filter_map(|c| match c {
                Change::EndpointDown { network, container } => {
                    Some((network.clone(), container.clone()))
                }
                _ => None,
            })
            .collect()
    }

    fn snapshot_of(containers: Vec<(&str, ContainerFacts)>) -> SnapshotFacts {
        SnapshotFacts {
            networks: ["dev".to_string(), "back".to_string()].into(),
            internal: vec![("back".into(), true)],
            gateways: vec![("dev".into(), vec!["10.1.0.1".parse().expect("ip")])],
            listed: containers
                .iter()
                .map(|(id, _)| (id.to_string(), "running".to_string()))
                .collect(),
            containers: containers
                .into_iter()
                .map(|(id, c)| (id.to_string(), c))
                .collect(),
        }
    }

    #[test]
    fn a_snapshot_publishes_each_network_and_endpoint_once_and_the_next_only_the_difference() {
        let mut state = DockerState::default();
        let web = inspected(
            A,
            "web",
            &[("dev", "10.1.0.2", &["api"]), ("back", "10.2.0.2", &[])],
        );
        let db = inspected(B, "db", &[("back", "10.2.0.3", &[])]);
        let changes = state.snapshot(snapshot_of(vec![(A, web.clone()), (B, db)]));
        let mut up = ups(&changes);
        up.sort();
        assert_eq!(
            up,
            vec![
                ("back".into(), "db".into()),
                ("back".into(), "web".into()),
                ("dev".into(), "web".into())
            ]
        );
        assert!(changes.contains(&Change::NetworkUp {
            network: "dev".into()
        }));
        assert!(changes.contains(&Change::NetworkInternal {
            network: "back".into(),
            internal: true
        }));
        assert!(changes.contains(&Change::NetworkGateways {
            network: "dev".into(),
            gateways: vec!["10.1.0.1".parse().expect("ip")]
        }));
        assert_eq!(state.endpoint_count(), 3);
        // The same facts again: nothing but the internal marks (idempotent in the registry).
        let again = state.snapshot(snapshot_of(vec![
            (A, web.clone()),
            (B, inspected(B, "db", &[("back", "10.2.0.3", &[])])),
        ]));
        assert!(
            ups(&again).is_empty() && downs(&again).is_empty(),
            "{again:?}"
        );
        // db gone: only its endpoint goes.
        let gone = state.snapshot(snapshot_of(vec![(A, web)]));
        assert_eq!(downs(&gone), vec![("back".into(), B.into())]);
        assert!(ups(&gone).is_empty());
        assert_eq!(state.endpoint_count(), 2);
    }

    #[test]
    fn a_container_read_after_an_event_changes_only_what_changed() {
        let mut state = DockerState::default();
        state.snapshot(snapshot_of(vec![(
            A,
            inspected(A, "web", &[("dev", "10.1.0.2", &[])]),
        )]));
        // Reconnected with an alias: one endpoint up again, nothing down.
        let changes = state.container(A, inspected(A, "web", &[("dev", "10.1.0.2", &["api"])]));
        assert_eq!(ups(&changes), vec![("dev".into(), "web".into())]);
        assert!(downs(&changes).is_empty());
        // Left the network, as the disconnect event says before any read.
        assert_eq!(
            downs(&state.left_network(A, "dev")),
            vec![("dev".into(), A.into())]
        );
        assert!(state.left_network(A, "dev").is_empty(), "once");
        // Gone entirely.
        assert!(state.container(A, ContainerFacts::default()).is_empty());
        assert_eq!(state.endpoint_count(), 0);
    }

    #[test]
    fn nameless_addresses_follow_their_container_and_go_with_it() {
        let mut state = DockerState::default();
        let key = "key".to_string();
        let ip: IpAddr = "172.17.0.5".parse().expect("ip");
        let with = |addresses: Vec<IpAddr>| ContainerFacts {
            endpoints: Vec::new(),
            asks_from: Some((key.clone(), addresses)),
            known: None,
        };
        assert_eq!(
            state.container(A, with(vec![ip])),
            vec![Change::AskerAddresses {
                container: key.clone(),
                addresses: vec![ip]
            }]
        );
        assert!(state.container(A, with(vec![ip])).is_empty(), "unchanged");
        // Missing from the next snapshot: withdrawn.
        let changes = state.snapshot(SnapshotFacts::default());
        assert!(changes.contains(&Change::AskerAddresses {
            container: key,
            addresses: Vec::new()
        }));
    }

    #[test]
    fn what_an_inspect_knew_stays_until_the_container_goes_or_leaves_the_network() {
        let mut state = DockerState::default();
        let known = Known {
            hostname: Some("webhost".into()),
            aliases: vec![("dev".into(), vec!["api".into()])],
        };
        let mut web = inspected(A, "web", &[("dev", "10.1.0.2", &["api"])]);
        web.known = Some(known.clone());
        state.container(A, web.clone());
        assert_eq!(state.known(A), Some(&known));
        assert!(state.publishes(A));
        // Published from the list (no `known`): what the inspect knew stays.
        web.known = None;
        state.container(A, web.clone());
        assert_eq!(state.known(A), Some(&known));
        // Left the network: its aliases there are no longer known (a new connect may bring
        // others); the hostname still is.
        state.left_network(A, "dev");
        let left = state.known(A).expect("still known");
        assert!(left.aliases.is_empty() && left.hostname.is_some());
        assert!(!state.publishes(A));
        // Gone: forgotten.
        state.container(A, web);
        state.container(A, ContainerFacts::default());
        assert_eq!(state.known(A), None);
        // A snapshot keeps what its inspects knew, and only that.
        let mut db = inspected(B, "db", &[("back", "10.2.0.3", &[])]);
        db.known = Some(Known::default());
        state.snapshot(snapshot_of(vec![(B, db)]));
        assert_eq!(state.known(B), Some(&Known::default()));
        assert_eq!(state.known(A), None);
    }

    #[test]
    fn a_relist_names_what_changed_appeared_and_went() {
        let mut state = DockerState::default();
        let list = |entries: &[(&str, &str)]| -> Listed {
            entries
                .iter()
                .map(|(id, seen)| (id.to_string(), seen.to_string()))
                .collect()
        };
        assert_eq!(
            state.relist(list(&[("a", "up"), ("b", "up")])),
            Relisted {
                changed: vec!["a".into(), "b".into()],
                gone: vec![]
            }
        );
        assert_eq!(
            state.relist(list(&[("a", "up (unhealthy)"), ("c", "up")])),
            Relisted {
                changed: vec!["a".into(), "c".into()],
                gone: vec!["b".into()]
            }
        );
        assert_eq!(
            state.relist(list(&[("a", "up (unhealthy)"), ("c", "up")])),
            Relisted::default()
        );
    }

    #[test]
    fn a_network_created_and_destroyed_takes_its_endpoints_along() {
        let mut state = DockerState::default();
        let changes = state.network_created("dev", Some(false), Vec::new());
        assert_eq!(
            changes,
            vec![
                Change::NetworkUp {
                    network: "dev".into()
                },
                Change::NetworkInternal {
                    network: "dev".into(),
                    internal: false
                }
            ]
        );
        state.container(A, inspected(A, "web", &[("dev", "10.1.0.2", &[])]));
        assert_eq!(state.endpoint_count(), 1);
        assert_eq!(
            state.network_destroyed("dev"),
            vec![Change::NetworkDown {
                network: "dev".into()
            }]
        );
        assert_eq!(state.endpoint_count(), 0);
    }
}
