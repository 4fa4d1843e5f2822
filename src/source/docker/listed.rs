//! A container as the engine's list shows it, turned into facts without waiting on the
//! container's lock.
//!
//! `GET /containers/ID/json` (inspect) waits on dockerd's per-container lock while the engine
//! starts or cleans up a container: 102–146 ms each under churn, and at most
//! [`super::reads::MAX_READS`] at once, so a burst of starts waited up to 1.3 s to be answered
//! (issue 31). `GET /containers/json?filters={"id":[ID]}` reads dockerd's lock-free view of
//! its containers and answers in about 1 ms; on Docker 20.10 its entry carries the state, the
//! health (in `Status`), the names, the labels, the exposed ports and each network's
//! addresses, but not the aliases (`Aliases` is null even for `--network-alias`) nor the
//! hostname. What only an inspect says is kept per container as [`Known`] (from the last
//! inspect, or the create-time read of `early.rs`) and laid over the list entry; an entry
//! without all of it is published as far as it goes (names missing, never wrong) and the
//! caller has the container inspected to complete it.
//!
//! The list is trusted only where it agrees with the event that asked ([`Implies`]): dockerd
//! logs some events before it updates that view (a `network disconnect` comes before the
//! container's checkpoint), so a list entry that contradicts its event is [`Verdict::Unsure`]
//! and the inspect decides. Pure: no engine, no clock, no registry; the output is an
//! inspect-shaped value for the one translation (`translate::endpoints_of`).

use std::collections::HashMap;

use bollard::models::{
    ContainerConfig, ContainerInspectResponse, ContainerState, ContainerSummary,
    ContainerSummaryHealthStatusEnum, ContainerSummaryStateEnum, EndpointSettings,
    HealthStatusEnum, NetworkSettings,
};

use crate::source::engine::{Engine, LABEL_SWARM_TASK, short_id};

/// What only an inspect (or the create-time read) says of a container: its hostname, and its
/// aliases on each network, as the inspect gives them. A network missing here is one whose
/// aliases are not known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Known {
    pub hostname: Option<String>,
    pub aliases: Vec<(String, Vec<String>)>,
}

impl Known {
    fn aliases_on(&self, network: &str) -> Option<&Vec<String>> {
        self.aliases
            .iter()
            .find(|(n, _)| n == network)
            .map(|(_, a)| a)
    }

    /// Forgets what it knew of `network` (the container left it; a new connect may bring
    /// other aliases).
    pub fn left(&mut self, network: &str) {
        self.aliases.retain(|(n, _)| n != network);
    }
}

/// What an inspect (or the create-time read) says only it knows.
pub fn known_of(c: &ContainerInspectResponse) -> Known {
    Known {
        hostname: c
            .config
            .as_ref()
            .and_then(|cfg| cfg.hostname.clone())
            .filter(|h| !h.is_empty()),
        aliases: c
            .network_settings
            .as_ref()
            .and_then(|n| n.networks.as_ref())
            .into_iter()
            .flatten()
            .map(|(network, ep)| (network.clone(), ep.aliases.clone().unwrap_or_default()))
            .collect(),
    }
}

/// What the event that asked for a list entry says must be true of it, if the entry is as
/// new as the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Implies {
    /// `start`, `restart`, `unpause`: running, not paused.
    Running,
    /// `pause`.
    Paused,
    /// `health_status: STATUS`.
    Health(HealthStatusEnum),
    /// `rename`: running under this name.
    Named(String),
    /// `stop`: not running any more.
    Stopped,
    /// `network disconnect`: not on this network any more.
    Off(String),
    /// Nothing (a `kill` short of SIGKILL): whatever the entry says.
    Anything,
}

impl Implies {
    /// What a container event says, by its verb (`health_status` without its `: STATUS`),
    /// its full action and its attributes; None for verbs that are not read this way.
    pub fn of_event(
        verb: &str,
        action: &str,
        attributes: &HashMap<String, String>,
    ) -> Option<Implies> {
        Some(match verb {
            "start" | "restart" | "unpause" => Implies::Running,
            "pause" => Implies::Paused,
            "health_status" => {
                let status = action.split_once(':').map(|(_, s)| s.trim())?;
                Implies::Health(match status {
                    "healthy" => HealthStatusEnum::HEALTHY,
                    "unhealthy" => HealthStatusEnum::UNHEALTHY,
                    "starting" => HealthStatusEnum::STARTING,
                    _ => return None,
                })
            }
            "rename" => Implies::Named(attributes.get("name")?.clone()),
            "stop" => Implies::Stopped,
            "kill" => Implies::Anything,
            _ => return None,
        })
    }
}

/// What a list entry makes of a container.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Not running (or not listed at all): it has nothing to publish.
    Gone,
    /// Running: publish this (inspect-shaped, for `translate`); when not `complete`, names
    /// only an inspect gives are missing from it, and the container is to be inspected.
    Publish {
        container: Box<ContainerInspectResponse>,
        complete: bool,
    },
    /// The entry contradicts its event (older than it), or it is a kind the list cannot
    /// describe (a Swarm task, whose gwbridge address only the network lists): inspect.
    Unsure,
}

/// Judges `listed` (the container's entry, None when the engine lists no such container)
/// against what its event `implies`, with what is `known` of it from an inspect.
pub fn judge(
    listed: Option<&ContainerSummary>,
    implies: &Implies,
    known: Option<&Known>,
    engine: Engine,
) -> Verdict {
    let Some(c) = listed else {
        return match implies {
            Implies::Stopped | Implies::Off(_) | Implies::Anything => Verdict::Gone,
            _ => Verdict::Unsure,
        };
    };
    let state = c.state.unwrap_or(ContainerSummaryStateEnum::EMPTY);
    let up = matches!(
        state,
        ContainerSummaryStateEnum::RUNNING | ContainerSummaryStateEnum::PAUSED
    );
    let agrees = match implies {
        Implies::Running => state == ContainerSummaryStateEnum::RUNNING,
        Implies::Paused => state == ContainerSummaryStateEnum::PAUSED,
        Implies::Health(h) => state == ContainerSummaryStateEnum::RUNNING && health(c) == Some(*h),
        Implies::Named(name) => up && name_of(c) == Some(name.trim_start_matches('/')),
        Implies::Stopped => !up,
        Implies::Off(network) => !networks(c).any(|(n, _)| n == network),
        Implies::Anything => true,
    };
    if !agrees {
        return Verdict::Unsure;
    }
    if !up && state != ContainerSummaryStateEnum::RESTARTING {
        return Verdict::Gone;
    }
    as_inspected(c, known, engine).map_or(Verdict::Unsure, |(container, complete)| {
        Verdict::Publish {
            container: Box::new(container),
            complete,
        }
    })
}

/// The list entry in the shape of an inspect, with what `known` adds; and whether that is
/// all an inspect would say for the records. None for what the list cannot describe.
pub fn as_inspected(
    c: &ContainerSummary,
    known: Option<&Known>,
    engine: Engine,
) -> Option<(ContainerInspectResponse, bool)> {
    let id = c.id.as_deref()?;
    let labels = c.labels.clone().unwrap_or_default();
    if labels.contains_key(LABEL_SWARM_TASK) {
        return None;
    }
    let name = name_of(c)?;
    let state = c.state.unwrap_or(ContainerSummaryStateEnum::EMPTY);
    let hostname = known.and_then(|k| k.hostname.clone());
    let mut complete = hostname.is_some();
    let short = short_id(id);
    let networks: HashMap<String, EndpointSettings> = networks(c)
        .map(|(network, ep)| {
            let known_aliases = known.and_then(|k| k.aliases_on(network));
            let mut aliases = match (known_aliases, &ep.aliases) {
                (Some(known), _) => known.clone(),
                (None, Some(listed)) => listed.clone(),
                (None, None) => Vec::new(),
            };
            if engine.is_user_defined(network) {
                complete &= known_aliases.is_some() || ep.aliases.is_some();
                // As dockerd adds it on a user-defined network (an inspect lists it).
                if !aliases.iter().any(|a| a == short) {
                    aliases.push(short.to_string());
                }
            }
            let endpoint = EndpointSettings {
                aliases: Some(aliases),
                network_id: ep.network_id.clone(),
                ip_address: ep.ip_address.clone(),
                global_ipv6_address: ep.global_ipv6_address.clone(),
                ..Default::default()
            };
            (network.clone(), endpoint)
        })
        .collect();
    // An inspect lists exposed ports as "PORT/PROTO" keys of a JSON object, which the engine
    // writes sorted; the list names each once per host binding.
    let mut exposed: Vec<String> = (c.ports.iter().flatten())
        .map(|p| {
            let proto = p.typ.map_or("tcp".to_string(), |t| t.to_string());
            format!(
                "{}/{}",
                p.private_port,
                if proto.is_empty() { "tcp" } else { &proto }
            )
        })
        .collect();
    exposed.sort();
    exposed.dedup();
    let container = ContainerInspectResponse {
        id: Some(id.to_string()),
        name: Some(format!("/{name}")),
        config: Some(ContainerConfig {
            hostname,
            labels: Some(labels),
            exposed_ports: (!exposed.is_empty()).then_some(exposed),
            ..Default::default()
        }),
        state: Some(ContainerState {
            running: Some(matches!(
                state,
                ContainerSummaryStateEnum::RUNNING
                    | ContainerSummaryStateEnum::PAUSED
                    | ContainerSummaryStateEnum::RESTARTING
            )),
            paused: Some(state == ContainerSummaryStateEnum::PAUSED),
            restarting: Some(state == ContainerSummaryStateEnum::RESTARTING),
            health: health(c).map(|status| bollard::models::Health {
                status: Some(status),
                ..Default::default()
            }),
            ..Default::default()
        }),
        network_settings: Some(NetworkSettings {
            networks: Some(networks),
            ..Default::default()
        }),
        ..Default::default()
    };
    Some((container, complete))
}

/// The container's own name (without its slash): the one of its names that is not a legacy
/// link's (`/other/alias`).
fn name_of(c: &ContainerSummary) -> Option<&str> {
    c.names
        .iter()
        .flatten()
        .map(|n| n.trim_start_matches('/'))
        .find(|n| !n.is_empty() && !n.contains('/'))
}

fn networks(c: &ContainerSummary) -> impl Iterator<Item = (&String, &EndpointSettings)> {
    c.network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
        .into_iter()
        .flatten()
}

/// The health the entry shows: its `Health` where the engine gives one (API 1.52+), else the
/// parenthesised part of its `Status` ("Up 3 seconds (health: starting)").
fn health(c: &ContainerSummary) -> Option<HealthStatusEnum> {
    if let Some(status) = c.health.as_ref().and_then(|h| h.status) {
        return match status {
            ContainerSummaryHealthStatusEnum::STARTING => Some(HealthStatusEnum::STARTING),
            ContainerSummaryHealthStatusEnum::HEALTHY => Some(HealthStatusEnum::HEALTHY),
            ContainerSummaryHealthStatusEnum::UNHEALTHY => Some(HealthStatusEnum::UNHEALTHY),
            _ => None,
        };
    }
    let status = c.status.as_deref()?;
    let (_, rest) = status.rsplit_once('(')?;
    match rest.trim_end_matches(')').trim() {
        "health: starting" => Some(HealthStatusEnum::STARTING),
        "healthy" => Some(HealthStatusEnum::HEALTHY),
        "unhealthy" => Some(HealthStatusEnum::UNHEALTHY),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    //! Fixtures: one container's inspect and its list entry, as Docker 20.10.24 gave them
    //! (`web`: `--hostname webhost --network-alias api --network-alias shop-web --expose 80
    //! --expose 443 --health-cmd true`, compose and `netalias.names` labels, healthy; `plain`:
    //! no options, also connected to the default bridge).
    use std::collections::{BTreeSet, HashMap};

    use bollard::models::{ContainerInspectResponse, ContainerSummary, ContainerSummaryStateEnum};

    use super::*;
    use crate::registry::Endpoint;
    use crate::source::docker::translate::{Policy, asker_addresses_of, endpoints_of};

    fn fixture(name: &str) -> (ContainerInspectResponse, ContainerSummary) {
        let (inspect, listed) = match name {
            "web" => (
                include_str!("fixtures/web.inspect.json"),
                include_str!("fixtures/web.listed.json"),
            ),
            _ => (
                include_str!("fixtures/plain.inspect.json"),
                include_str!("fixtures/plain.listed.json"),
            ),
        };
        (
            serde_json::from_str(inspect).expect("inspect fixture"),
            serde_json::from_str(listed).expect("list fixture"),
        )
    }

    fn names(endpoints: &[Endpoint]) -> BTreeSet<(String, String)> {
        endpoints
            .iter()
            .flat_map(|ep| ep.names().map(|n| (ep.network.clone(), n.to_string())))
            .collect()
    }

    fn published(verdict: Verdict) -> (ContainerInspectResponse, bool) {
        match verdict {
            Verdict::Publish {
                container,
                complete,
            } => (*container, complete),
            other => panic!("not published: {other:?}"),
        }
    }

    #[test]
    fn the_list_entry_with_what_the_inspect_knew_publishes_what_the_inspect_does() {
        let policy = Policy::default();
        for name in ["web", "plain"] {
            let (inspect, entry) = fixture(name);
            let known = known_of(&inspect);
            let (listed, complete) = published(judge(
                Some(&entry),
                &Implies::Running,
                Some(&known),
                policy.engine,
            ));
            assert!(complete, "{name}");
            let from_inspect = endpoints_of(&inspect, policy);
            assert!(!from_inspect.is_empty(), "{name}");
            assert_eq!(endpoints_of(&listed, policy), from_inspect, "{name}");
            assert_eq!(
                asker_addresses_of(&listed, None, policy.engine),
                asker_addresses_of(&inspect, None, policy.engine),
                "{name}"
            );
        }
        // The web fixture is in rotation (healthy), with its SRV from its exposed ports.
        let (inspect, _) = fixture("web");
        let eps = endpoints_of(&inspect, policy);
        assert!(eps[0].in_rotation());
        assert_eq!(eps[0].srv.len(), 2, "{:?}", eps[0].srv);
    }

    #[test]
    fn the_list_entry_alone_misses_names_but_never_has_a_wrong_one() {
        let policy = Policy::default();
        for name in ["web", "plain"] {
            let (inspect, entry) = fixture(name);
            let (listed, complete) =
                published(judge(Some(&entry), &Implies::Running, None, policy.engine));
            assert!(!complete, "{name}: the list has no aliases nor hostname");
            let (from_list, from_inspect) = (
                endpoints_of(&listed, policy),
                endpoints_of(&inspect, policy),
            );
            assert!(
                names(&from_list).is_subset(&names(&from_inspect)),
                "{name}: {:?} ⊄ {:?}",
                names(&from_list),
                names(&from_inspect)
            );
            for (a, b) in from_list.iter().zip(&from_inspect) {
                assert_eq!(
                    (
                        &a.network,
                        &a.name,
                        a.ipv4,
                        a.ipv6,
                        a.in_rotation(),
                        &a.srv,
                        a.ttl
                    ),
                    (
                        &b.network,
                        &b.name,
                        b.ipv4,
                        b.ipv6,
                        b.in_rotation(),
                        &b.srv,
                        b.ttl
                    ),
                    "{name}"
                );
            }
        }
        // What is missing is the aliases and the hostname; the compose and label names are
        // there (labels are listed).
        let (_, entry) = fixture("web");
        let (listed, _) = published(judge(Some(&entry), &Implies::Running, None, Engine::Docker));
        let got = names(&endpoints_of(&listed, Policy::default()));
        let net = "natest-h31probe".to_string();
        for present in ["natest-h31-web", "web.shop", "www.shop.test"] {
            assert!(got.contains(&(net.clone(), present.into())), "{present}");
        }
        for missing in ["api", "shop-web", "webhost"] {
            assert!(!got.contains(&(net.clone(), missing.into())), "{missing}");
        }
    }

    #[test]
    fn an_entry_that_contradicts_its_event_is_left_to_the_inspect() {
        let (inspect, entry) = fixture("web");
        let known = known_of(&inspect);
        let judge = |entry: Option<&ContainerSummary>, implies: Implies| {
            judge(entry, &implies, Some(&known), Engine::Docker)
        };
        let publishes = |v: &Verdict| matches!(v, Verdict::Publish { .. });
        assert!(publishes(&judge(Some(&entry), Implies::Running)));
        assert!(publishes(&judge(
            Some(&entry),
            Implies::Health(HealthStatusEnum::HEALTHY)
        )));
        assert!(publishes(&judge(
            Some(&entry),
            Implies::Named("/natest-h31-web".into())
        )));
        assert!(publishes(&judge(
            Some(&entry),
            Implies::Off("other".into())
        )));
        assert!(publishes(&judge(Some(&entry), Implies::Anything)));
        for older in [
            Implies::Paused,
            Implies::Health(HealthStatusEnum::UNHEALTHY),
            Implies::Named("renamed".into()),
            Implies::Stopped,
            // Disconnected, but the list still shows the network (dockerd logs the
            // disconnect before it updates that view): not published back.
            Implies::Off("natest-h31probe".into()),
        ] {
            assert_eq!(
                judge(Some(&entry), older.clone()),
                Verdict::Unsure,
                "{older:?}"
            );
        }
        // Not listed at all: gone for what says it went, else the inspect decides.
        assert_eq!(judge(None, Implies::Stopped), Verdict::Gone);
        assert_eq!(judge(None, Implies::Anything), Verdict::Gone);
        assert_eq!(judge(None, Implies::Running), Verdict::Unsure);
        // Exited: gone.
        let mut exited = entry.clone();
        exited.state = Some(ContainerSummaryStateEnum::EXITED);
        assert_eq!(judge(Some(&exited), Implies::Stopped), Verdict::Gone);
        assert_eq!(judge(Some(&exited), Implies::Running), Verdict::Unsure);
        // Paused: published out of rotation.
        let mut paused = entry.clone();
        paused.state = Some(ContainerSummaryStateEnum::PAUSED);
        let (container, _) = published(judge(Some(&paused), Implies::Paused));
        let eps = endpoints_of(&container, Policy::default());
        assert!(!eps.is_empty() && !eps[0].in_rotation());
        // Health starting: published out of rotation.
        let mut starting = entry.clone();
        starting.status = Some("Up Less than a second (health: starting)".into());
        let (container, _) = published(judge(
            Some(&starting),
            Implies::Health(HealthStatusEnum::STARTING),
        ));
        assert!(!endpoints_of(&container, Policy::default())[0].in_rotation());
        // A Swarm task's gwbridge address only the network lists: inspected.
        let mut task = entry;
        task.labels
            .get_or_insert_with(HashMap::new)
            .insert(LABEL_SWARM_TASK.into(), "t1".into());
        assert_eq!(judge(Some(&task), Implies::Running), Verdict::Unsure);
    }

    #[test]
    fn leaving_a_network_forgets_its_aliases_and_events_say_what_they_imply() {
        let (inspect, _) = fixture("web");
        let mut known = known_of(&inspect);
        assert_eq!(known.hostname.as_deref(), Some("webhost"));
        assert!(known.aliases_on("natest-h31probe").is_some());
        known.left("natest-h31probe");
        assert!(known.aliases_on("natest-h31probe").is_none());

        let none = HashMap::new();
        let named = HashMap::from([("name".to_string(), "new".to_string())]);
        for (verb, action, attributes, implies) in [
            ("start", "start", &none, Some(Implies::Running)),
            ("unpause", "unpause", &none, Some(Implies::Running)),
            ("pause", "pause", &none, Some(Implies::Paused)),
            (
                "health_status",
                "health_status: unhealthy",
                &none,
                Some(Implies::Health(HealthStatusEnum::UNHEALTHY)),
            ),
            ("health_status", "health_status: what", &none, None),
            (
                "rename",
                "rename",
                &named,
                Some(Implies::Named("new".into())),
            ),
            ("rename", "rename", &none, None),
            ("stop", "stop", &none, Some(Implies::Stopped)),
            ("kill", "kill", &none, Some(Implies::Anything)),
            ("die", "die", &none, None),
        ] {
            assert_eq!(
                Implies::of_event(verb, action, attributes),
                implies,
                "{action}"
            );
        }
    }
}
