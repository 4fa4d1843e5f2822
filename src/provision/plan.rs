//! The plan: what `apply` would create, keep, recreate, start or remove, from a spec and the
//! engine's current state. Reads the engine; never changes it.

use std::{
    collections::{BTreeMap, HashMap},
    fmt,
};

use bollard::{
    Docker,
    query_parameters::{
        InspectNetworkOptions, ListContainersOptions, ListNetworksOptions, ListVolumesOptions,
    },
};
use ipnet::Ipv4Net;

use super::{
    FILE_LABEL, SPEC_LABEL, STACK_LABEL,
    error::{ProvisionError, engine},
    spec::{ContainerSpec, Mount, NetworkMode, Stack},
    validate::{creation_order, overlaps, parse_cidr},
};

/// What the engine has, as far as provisioning cares.
#[derive(Debug, Default)]
pub struct EngineState {
    pub networks: BTreeMap<String, NetworkState>,
    pub volumes: BTreeMap<String, Owner>,
    pub containers: BTreeMap<String, ContainerState>,
}

/// Whose a resource is: the stack named by its label, and the stack file that created it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Owner {
    pub stack: Option<String>,
    pub file: Option<String>,
}

impl Owner {
    fn of(labels: Option<&HashMap<String, String>>) -> Owner {
        Owner {
            stack: labels.and_then(|l| l.get(STACK_LABEL).cloned()),
            file: labels.and_then(|l| l.get(FILE_LABEL).cloned()),
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct NetworkState {
    pub owner: Owner,
    pub driver: String,
    pub subnet: Option<String>,
    pub ip_range: Option<String>,
    pub gateway: Option<String>,
    pub internal: bool,
}

#[derive(Debug, Default, Clone)]
pub struct ContainerState {
    pub owner: Owner,
    pub spec: Option<String>,
    pub running: bool,
    pub networks: Vec<String>,
    /// Volumes mounted in it (named, or anonymous ones the image's `VOLUME` made).
    pub volumes: Vec<VolumeMount>,
}

/// A volume mounted in a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeMount {
    pub name: String,
    pub destination: String,
}

pub async fn read_engine(docker: &Docker) -> Result<EngineState, ProvisionError> {
    let mut state = EngineState::default();
    for n in docker
        .list_networks(None::<ListNetworksOptions>)
        .await
        .map_err(engine("list networks"))?
    {
        let Some(name) = n.name else { continue };
        let config = n
            .ipam
            .and_then(|i| i.config)
            .and_then(|c| c.into_iter().next())
            .unwrap_or_default();
        state.networks.insert(
            name,
            NetworkState {
                owner: Owner::of(n.labels.as_ref()),
                driver: n.driver.unwrap_or_default(),
                subnet: config.subnet,
                ip_range: config.ip_range,
                gateway: config.gateway,
                internal: n.internal == Some(true),
            },
        );
    }
    let volumes = docker
        .list_volumes(None::<ListVolumesOptions>)
        .await
        .map_err(engine("list volumes"))?;
    for v in volumes.volumes.unwrap_or_default() {
        state.volumes.insert(v.name, Owner::of(Some(&v.labels)));
    }
    let all = ListContainersOptions {
        all: true,
        ..Default::default()
    };
    for c in docker
        .list_containers(Some(all))
        .await
        .map_err(engine("list containers"))?
    {
        let Some(name) = c.names.and_then(|n| n.into_iter().next()) else {
            continue;
        };
        let labels = c.labels.unwrap_or_default();
        let networks = c
            .network_settings
            .and_then(|n| n.networks)
            .map(|n| n.into_keys().collect())
            .unwrap_or_default();
        let volumes = c
            .mounts
            .unwrap_or_default()
            .into_iter()
            .filter(|m| m.typ.as_deref() == Some("volume"))
            .filter_map(|m| {
                Some(VolumeMount {
                    name: m.name?,
                    destination: m.destination?,
                })
            })
            .collect();
        state.containers.insert(
            name.trim_start_matches('/').to_string(),
            ContainerState {
                owner: Owner::of(Some(&labels)),
                spec: labels.get(SPEC_LABEL).cloned(),
                running: c.state.map(|s| s.to_string()) == Some("running".into()),
                networks,
                volumes,
            },
        );
    }
    Ok(state)
}

/// The names of the containers attached to `network`.
pub async fn attached(docker: &Docker, network: &str) -> Result<Vec<String>, ProvisionError> {
    let n = docker
        .inspect_network(network, None::<InspectNetworkOptions>)
        .await
        .map_err(engine(format!("inspect network {network}")))?;
    Ok(n.containers
        .unwrap_or_default()
        .into_values()
        .filter_map(|c| c.name)
        .collect())
}

/// A stable fingerprint of a container's spec: a change means the container is recreated.
pub fn fingerprint(c: &ContainerSpec) -> String {
    let mut canonical = format!(
        "{}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
        c.image.get_ref(),
        c.command,
        c.environment,
        c.restart.as_ref().map(|r| r.get_ref()),
        c.healthcheck
            .as_ref()
            .map(|h| (&h.test, h.interval_secs, h.timeout_secs, h.retries)),
        c.mounts.iter().map(|m| m.get_ref()).collect::<Vec<_>>(),
        c.volumes_from
            .iter()
            .map(|m| m.get_ref())
            .collect::<Vec<_>>(),
        c.network_mode.as_ref().map(|m| m.get_ref()),
        c.labels,
    );
    canonical.push_str(&format!(
        "|{:?}|{:?}|{:?}|{:?}",
        c.user, c.group_add, c.cap_add, c.cap_drop
    ));
    // Only when set: a stack without `dns` keeps the fingerprint it had before the key existed
    // (no recreation on upgrade).
    if !c.dns.is_empty() {
        let dns: Vec<&String> = c.dns.iter().map(|d| d.get_ref()).collect();
        canonical.push_str(&format!("|dns:{dns:?}"));
    }
    for (net, a) in &c.networks {
        canonical.push_str(&format!(
            "|{net}:{:?}:{:?}",
            a.aliases,
            a.ipv4.as_ref().map(|i| i.get_ref())
        ));
    }
    // FNV-1a: stable across builds and Rust versions, unlike std's hasher.
    let hash = canonical.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    CreateNetwork(String),
    KeepNetwork(String),
    RecreateNetwork {
        name: String,
        diff: String,
    },
    RemoveNetwork(String),
    CreateVolume(String),
    KeepVolume(String),
    /// Owned by the stack, no longer declared: kept unless `destroy --volumes`.
    OrphanVolume(String),
    CreateContainer(String),
    KeepContainer(String),
    StartContainer(String),
    RecreateContainer {
        name: String,
        reason: String,
        /// Volumes of the old container that the spec does not name (an image's `VOLUME`),
        /// mounted at the same paths in the new one so that no data is lost.
        carried: Vec<VolumeMount>,
    },
    /// Its spec is unchanged but it is not on all its networks (an apply stopped between
    /// create and connect): connect the missing ones, then start it.
    CompleteContainer {
        name: String,
        missing: Vec<String>,
    },
    RemoveContainer(String),
}

impl Action {
    pub fn is_change(&self) -> bool {
        !matches!(
            self,
            Action::KeepNetwork(_)
                | Action::KeepVolume(_)
                | Action::KeepContainer(_)
                | Action::OrphanVolume(_)
        )
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::CreateNetwork(n) => write!(f, "+ network {n}"),
            Action::KeepNetwork(n) => write!(f, "  network {n} (unchanged)"),
            Action::RecreateNetwork { name, diff } => {
                write!(f, "~ network {name}: {diff} (recreate)")
            }
            Action::RemoveNetwork(n) => write!(f, "- network {n} (no longer declared)"),
            Action::CreateVolume(n) => write!(f, "+ volume {n}"),
            Action::KeepVolume(n) => write!(f, "  volume {n} (unchanged)"),
            Action::OrphanVolume(n) => write!(
                f,
                "  volume {n} (no longer declared; kept: data is only removed by destroy --volumes)"
            ),
            Action::CreateContainer(n) => write!(f, "+ container {n}"),
            Action::KeepContainer(n) => write!(f, "  container {n} (unchanged, running)"),
            Action::StartContainer(n) => write!(f, "> container {n} (unchanged, will be started)"),
            Action::RecreateContainer {
                name,
                reason,
                carried,
            } => {
                write!(f, "~ container {name}: {reason} (recreate")?;
                for v in carried {
                    write!(
                        f,
                        "; carries anonymous volume {} at {}",
                        short_volume(&v.name),
                        v.destination
                    )?;
                }
                write!(f, ")")
            }
            Action::CompleteContainer { name, missing } => write!(
                f,
                "> container {name} (unchanged; connect to {} and start)",
                missing.join(", ")
            ),
            Action::RemoveContainer(n) => write!(f, "- container {n} (no longer declared)"),
        }
    }
}

#[derive(Debug)]
pub struct Plan {
    pub stack: String,
    pub actions: Vec<Action>,
    /// What the resolver setting does, for people (see `provision::resolver`).
    pub resolver: Option<String>,
}

impl Plan {
    pub fn changes(&self) -> usize {
        self.actions.iter().filter(|a| a.is_change()).count()
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "stack {}:", self.stack)?;
        if let Some(resolver) = &self.resolver {
            writeln!(f, "  {resolver}")?;
        }
        for action in &self.actions {
            writeln!(f, "  {action}")?;
        }
        match self.changes() {
            0 => write!(f, "no changes"),
            n => write!(f, "{n} change(s)"),
        }
    }
}

fn subnet_of(state: &NetworkState) -> Option<Ipv4Net> {
    state.subnet.as_deref().and_then(|s| s.parse().ok())
}

/// The first 12 characters of a volume name (anonymous ones are 64 hex digits).
fn short_volume(name: &str) -> &str {
    name.get(..12).unwrap_or(name)
}

/// Compares the spec with the engine. Fails on anything it must never touch: a resource of
/// another stack, or of this stack but created from another file (unless `adopt`).
pub fn plan(stack: &Stack, engine: &EngineState, adopt: bool) -> Result<Plan, ProvisionError> {
    let name = stack.name().to_string();
    check_file(stack, engine, adopt)?;
    let ours = |owner: &Owner| owner.stack.as_deref() == Some(name.as_str());
    let mut actions = Vec::new();

    for (net_name, spec) in &stack.networks {
        if spec.driver.is_builtin() {
            continue; // host and none always exist
        }
        let wanted = spec
            .subnet
            .as_ref()
            .and_then(|s| parse_cidr(s.get_ref()).ok());
        match engine.networks.get(net_name) {
            None => {
                if let Some(subnet) = wanted
                    && let Some((other, state)) = engine
                        .networks
                        .iter()
                        .find(|(_, s)| subnet_of(s).is_some_and(|o| overlaps(&o, &subnet)))
                {
                    return Err(ProvisionError::Overlap {
                        network: net_name.clone(),
                        subnet: subnet.to_string(),
                        other: other.clone(),
                        other_subnet: state.subnet.clone().unwrap_or_default(),
                    });
                }
                actions.push(Action::CreateNetwork(net_name.clone()));
            }
            Some(state) if !ours(&state.owner) => {
                return Err(ProvisionError::NotOwned {
                    kind: "network",
                    name: net_name.clone(),
                    stack: name,
                });
            }
            Some(state) => {
                let mut diff = Vec::new();
                let mut compare = |what: &str, want: Option<String>, have: &Option<String>| {
                    if want.is_some() && want != *have {
                        diff.push(format!(
                            "{what} {} → {}",
                            have.as_deref().unwrap_or("none"),
                            want.unwrap_or_default()
                        ));
                    }
                };
                compare(
                    "subnet",
                    spec.subnet.as_ref().map(|s| s.get_ref().clone()),
                    &state.subnet,
                );
                compare(
                    "ip_range",
                    spec.ip_range.as_ref().map(|s| s.get_ref().clone()),
                    &state.ip_range,
                );
                compare(
                    "gateway",
                    spec.gateway.as_ref().map(|s| s.get_ref().clone()),
                    &state.gateway,
                );
                if state.driver != spec.driver.as_str() {
                    diff.push(format!(
                        "driver {} → {}",
                        state.driver,
                        spec.driver.as_str()
                    ));
                }
                if state.internal != spec.internal {
                    diff.push(format!("internal {} → {}", state.internal, spec.internal));
                }
                if diff.is_empty() {
                    actions.push(Action::KeepNetwork(net_name.clone()));
                } else {
                    actions.push(Action::RecreateNetwork {
                        name: net_name.clone(),
                        diff: diff.join(", "),
                    });
                }
            }
        }
    }

    for vol in stack.volumes.keys() {
        match engine.volumes.get(vol) {
            None => actions.push(Action::CreateVolume(vol.clone())),
            Some(owner) if !ours(owner) => {
                return Err(ProvisionError::NotOwned {
                    kind: "volume",
                    name: vol.clone(),
                    stack: name,
                });
            }
            Some(_) => actions.push(Action::KeepVolume(vol.clone())),
        }
    }

    let recreated_networks: Vec<String> = actions
        .iter()
        .filter_map(|a| match a {
            Action::RecreateNetwork { name, .. } => Some(name.clone()),
            _ => None,
        })
        .collect();
    for container in creation_order(stack) {
        let spec = &stack.containers[&container];
        match engine.containers.get(&container) {
            None => actions.push(Action::CreateContainer(container.clone())),
            Some(state) if !ours(&state.owner) => {
                return Err(ProvisionError::NotOwned {
                    kind: "container",
                    name: container.clone(),
                    stack: name,
                });
            }
            Some(state) => {
                let reason = if state.spec.as_deref() != Some(fingerprint(spec).as_str()) {
                    Some("spec changed".to_string())
                } else {
                    state
                        .networks
                        .iter()
                        .find(|n| recreated_networks.contains(n))
                        .map(|n| format!("its network {n} is recreated"))
                };
                let missing: Vec<String> = match spec.network_mode() {
                    NetworkMode::Networks => spec
                        .networks
                        .keys()
                        .filter(|n| !state.networks.contains(n))
                        .cloned()
                        .collect(),
                    _ => Vec::new(),
                };
                match reason {
                    Some(reason) => actions.push(Action::RecreateContainer {
                        name: container.clone(),
                        reason,
                        carried: carried_volumes(engine, spec, state),
                    }),
                    None if !missing.is_empty() => actions.push(Action::CompleteContainer {
                        name: container.clone(),
                        missing,
                    }),
                    None if state.running => actions.push(Action::KeepContainer(container.clone())),
                    None => actions.push(Action::StartContainer(container.clone())),
                }
            }
        }
    }

    // Owned but no longer declared. Containers first: networks cannot go while in use.
    for (c, state) in &engine.containers {
        if ours(&state.owner) && !stack.containers.contains_key(c) {
            actions.push(Action::RemoveContainer(c.clone()));
        }
    }
    for (n, state) in &engine.networks {
        if ours(&state.owner) && !stack.networks.contains_key(n) {
            actions.push(Action::RemoveNetwork(n.clone()));
        }
    }
    for (v, owner) in &engine.volumes {
        if ours(owner) && !stack.volumes.contains_key(v) {
            actions.push(Action::OrphanVolume(v.clone()));
        }
    }
    let resolver = stack.resolver().map(|r| {
        let at: Vec<String> = r
            .addresses
            .iter()
            .map(|(net, ip)| format!("{ip} on {net}"))
            .collect();
        format!(
            "resolver: {} answers first for the stack's containers ({}); their resolv.conf files are in {}",
            r.container,
            at.join(", "),
            r.dir.display()
        )
    });
    Ok(Plan {
        stack: name,
        actions,
        resolver,
    })
}

/// The volumes a recreate must carry over: those mounted in the old container that neither
/// the spec's own mounts nor its `volumes_from` provide, as Compose does. Those are the
/// anonymous volumes an image's `VOLUME` made (mysql's /var/lib/mysql): removing them, or
/// letting the new container make fresh ones, would lose the data.
pub fn carried_volumes(
    engine: &EngineState,
    spec: &ContainerSpec,
    old: &ContainerState,
) -> Vec<VolumeMount> {
    let own: Vec<Mount> = spec.parsed_mounts();
    let from_others: Vec<&str> = spec
        .volumes_from
        .iter()
        .filter_map(|v| v.get_ref().split(':').next())
        .filter_map(|source| engine.containers.get(source))
        .flat_map(|c| c.volumes.iter().map(|v| v.destination.as_str()))
        .collect();
    old.volumes
        .iter()
        .filter(|v| {
            !own.iter().any(|m| match m {
                Mount::Bind { target, .. } => *target == v.destination,
                Mount::Volume { name, target, .. } => *target == v.destination || *name == v.name,
            })
        })
        .filter(|v| !from_others.contains(&v.destination.as_str()))
        .cloned()
        .collect()
}

/// Refuses resources of this stack that another stack file created, naming both files,
/// unless `adopt`: two files with one `[stack] name` would otherwise remove each other's.
pub fn check_file(stack: &Stack, engine: &EngineState, adopt: bool) -> Result<(), ProvisionError> {
    if adopt {
        return Ok(());
    }
    let Some(ours) = stack.file() else {
        return Ok(());
    };
    let owners = engine
        .networks
        .iter()
        .map(|(n, s)| ("network", n, &s.owner))
        .chain(engine.volumes.iter().map(|(n, o)| ("volume", n, o)))
        .chain(
            engine
                .containers
                .iter()
                .map(|(n, s)| ("container", n, &s.owner)),
        );
    for (kind, name, owner) in owners {
        if owner.stack.as_deref() == Some(stack.name())
            && let Some(theirs) = &owner.file
            && theirs != ours
        {
            return Err(ProvisionError::OtherFile {
                stack: stack.name().to_string(),
                kind,
                name: name.clone(),
                theirs: theirs.clone(),
                ours: ours.to_string(),
            });
        }
    }
    Ok(())
}

/// Labels every resource of `stack` carries: its stack, and the file that declared it.
pub fn owner_labels(stack: &Stack, extra: &BTreeMap<String, String>) -> HashMap<String, String> {
    let mut labels: HashMap<String, String> =
        extra.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    labels.insert(STACK_LABEL.to_string(), stack.name().to_string());
    if let Some(file) = stack.file() {
        labels.insert(FILE_LABEL.to_string(), file.to_string());
    }
    labels
}
