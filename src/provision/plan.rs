//! The plan: what `apply` will pull, create, keep, recreate, start or remove, and what it
//! refuses, from a spec and one read of the engine (`read_engine`, through `engine::Engine`).
//! Every decision is made here, so `provision plan` shows exactly what `apply` will do or
//! refuse. Reads the engine; never changes it.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    fmt,
};

use ipnet::Ipv4Net;

use super::{
    FILE_LABEL, STACK_LABEL,
    engine::{
        ContainerState, Engine, EngineState, NetworkState, Owner, RegistryImage, VolumeMount,
    },
    error::ProvisionError,
    fields,
    spec::{Condition, ContainerSpec, Mount, NetworkMode, Pull, Stack},
    validate::{creation_order, overlaps, parse_cidr},
};

/// Reads what the engine has: networks, volumes and containers. What `destroy` needs.
pub async fn read_lists(engine: &impl Engine) -> Result<EngineState, ProvisionError> {
    Ok(EngineState {
        networks: engine.networks().await?.into_iter().collect(),
        volumes: engine.volumes().await?.into_iter().collect(),
        containers: engine.containers().await?.into_iter().collect(),
        ..Default::default()
    })
}

/// Reads, once, everything `plan` decides from: the lists, what is attached to each network
/// the stack declares (a drifted one in use needs `--recreate`; one holding someone else's
/// container cannot be recreated), and what each of the stack's images is (missing ones
/// are absent). With `ask_registry` (`provision plan`), also what the registry says of each
/// image a pull would fetch: a missing one, and a `pull = "always"` one. The questions go
/// out together, each bounded (`engine::REGISTRY_WAIT`). apply and status do not ask: apply
/// pulls first anyway (a registry's manifest read counts as a pull against Docker Hub's
/// limit), and status compares the engine with the file.
pub async fn read_engine(
    engine: &impl Engine,
    stack: &Stack,
    ask_registry: bool,
) -> Result<EngineState, ProvisionError> {
    let mut state = read_lists(engine).await?;
    for name in stack.networks.keys() {
        if let Some(network) = state.networks.get_mut(name) {
            network.attached = engine.attached(name).await?;
        }
    }
    let images: BTreeSet<&String> = stack
        .containers
        .values()
        .map(|c| c.image.get_ref())
        .collect();
    for image in images {
        if let Some(found) = engine.image(image).await? {
            state.image_ids.insert(image.clone(), found.id);
            state
                .image_digests
                .insert(image.clone(), found.repo_digests);
        }
    }
    let mut ask: BTreeSet<&String> = BTreeSet::new();
    for spec in stack.containers.values() {
        let image = spec.image.get_ref();
        let fetched = match spec.pull() {
            Pull::Never => false,
            Pull::Always => true,
            Pull::Missing => !state.image_ids.contains_key(image),
        };
        if ask_registry && fetched {
            ask.insert(image);
        }
    }
    let answers =
        futures_util::future::join_all(ask.iter().map(|image| engine.registry_image(image))).await;
    state.registry = ask.into_iter().cloned().zip(answers).collect();
    Ok(state)
}

/// The images of the stack's `pull = "always"` containers, each once: `provision apply`
/// pulls them before it reads the engine, so the plan sees what they are now.
pub fn always_pulled(stack: &Stack) -> Vec<(String, String)> {
    let mut images: BTreeMap<String, String> = BTreeMap::new();
    for (name, c) in &stack.containers {
        if c.pull() == Pull::Always {
            images
                .entry(c.image.get_ref().clone())
                .or_insert_with(|| name.clone());
        }
    }
    images.into_iter().collect()
}

/// Whether a volume name is one the engine made up: 64 hex digits, for an image's `VOLUME`.
pub fn is_anonymous(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
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
    // The fields added later, again only when set: an older stack keeps its fingerprint.
    let later = later_fields(c);
    if !later.is_empty() {
        canonical.push_str(&format!("|{later:?}"));
    }
    format!("{:016x}", fields::fnv(&canonical))
}

/// The renders of the fields the fingerprint did not always cover (`fields::render`), plus the
/// env files' variables (hashed there) and the healthcheck's start period.
fn later_fields(c: &ContainerSpec) -> Vec<(String, String)> {
    const LATER: &[&str] = &[
        "ports",
        "entrypoint",
        "working_dir",
        "tmpfs",
        "read_only",
        "init",
        "memory",
        "cpus",
        "logging",
    ];
    let render = fields::render(c);
    let mut later: Vec<(String, String)> = LATER
        .iter()
        .filter_map(|k| render.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect();
    for (k, v) in &c.file_env {
        if !c.environment.contains_key(k) {
            later.push((format!("env_file.{k}"), format!("{:016x}", fields::fnv(v))));
        }
    }
    if let Some(h) = &c.healthcheck
        && h.start_period_secs > 0
    {
        later.push(("start_period".into(), h.start_period_secs.to_string()));
    }
    later
}

/// The container a new one succeeds (see `predecessor`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Predecessor {
    /// Its name in the engine as the plan read it.
    pub name: String,
    /// Its name when the step runs: `name`, or its aside name when its network's recreate
    /// put it aside first.
    pub at: String,
    /// The name it gets back if the new container fails: the one it served under.
    pub restore_as: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// An image a created or recreated container needs and the engine does not have. Pulls
    /// come first in a plan: a failed one leaves everything as it was.
    PullImage {
        image: String,
        container: String,
        /// Pulled because the container says `pull = "always"` (it may be present).
        always: bool,
        /// What the registry says the pull brings (None: not asked).
        registry: Option<RegistryImage>,
        /// The engine has an image by this name now (`always` only: otherwise it is missing).
        present: bool,
        /// ... and it is what the registry has (a pull changes nothing).
        current: bool,
    },
    CreateNetwork(String),
    KeepNetwork(String),
    RecreateNetwork {
        name: String,
        diff: String,
        /// The containers on it, all the stack's (checked by `plan`): removed before it goes,
        /// and recreated after (each has its `RecreateContainer`).
        attached: Vec<String>,
    },
    RemoveNetwork(String),
    CreateVolume(String),
    KeepVolume(String),
    /// Its driver, options or labels differ from the file. A volume holds data: it is never
    /// recreated here, and apply leaves it as it is (the plan says how to redo it).
    DriftedVolume {
        name: String,
        diff: String,
    },
    /// Owned by the stack, no longer declared: kept unless `destroy --volumes`.
    OrphanVolume(String),
    /// An anonymous volume of a container this plan removes (no longer declared, a replica
    /// scaled away): kept, unattached, and said, so that no data is left silently.
    OrphanAnonymous {
        volume: String,
        container: String,
        at: String,
    },
    CreateContainer(String),
    KeepContainer(String),
    StartContainer(String),
    RecreateContainer {
        name: String,
        reason: String,
        /// Volumes of the old container that the spec does not name (an image's `VOLUME`),
        /// mounted at the same paths in the new one so that no data is lost.
        carried: Vec<VolumeMount>,
        /// The old container was put aside (stopped, off the network) by its network's
        /// `RecreateNetwork` before this runs: it is the old one, as with `from_aside`.
        removed_with_network: bool,
        /// An earlier run stopped half-way left the old container aside (`NAME-netalias-old`):
        /// it is removed first, to free the name.
        stale_aside: bool,
        /// Its health is waited for once it runs (it is `depends_on` "healthy", or `apply
        /// --wait`): seconds. Failing within them rolls it back like a failed start.
        wait: Option<u64>,
        /// `NAME` is missing and an earlier run stopped half-way left the old container aside:
        /// that one is the old container (its volumes are carried, it comes back if the new
        /// one fails, and goes only once the new one runs).
        from_aside: bool,
        /// The old container is another one of the stack, no longer declared, that this one
        /// succeeds (`NAME` becoming replicas `NAME-1`.., or back): apply first puts it
        /// aside under this one's aside name, then goes on as with `from_aside`, so its
        /// anonymous volumes are handed over instead of left unattached.
        predecessor: Option<Predecessor>,
    },
    /// Its spec is unchanged but it is not on all its networks (an apply stopped between
    /// create and connect): connect the missing ones, then start it.
    CompleteContainer {
        name: String,
        missing: Vec<String>,
    },
    RemoveContainer(String),
    /// Wait, at most `timeout_secs`, until `name` is healthy (or, for the stack's resolver
    /// and `apply --wait`, running when it has no health check): `before` start after it.
    Wait {
        name: String,
        condition: Condition,
        before: Vec<String>,
        timeout_secs: u64,
        /// The stack's resolver: its addresses on the stack's bridges, asked over DNS from
        /// this machine; the first reply ends the wait (its image's health check runs only
        /// every 10 s, the first one 10 s after start).
        probe: Vec<std::net::SocketAddrV4>,
    },
}

/// How long a wait for health lasts unless `apply --wait-timeout` says (compose has none;
/// a database's first start with an import takes a while).
pub const DEFAULT_WAIT_SECS: u64 = 120;

impl Action {
    /// The container this action makes run, if any.
    pub fn starts(&self) -> Option<&str> {
        match self {
            Action::CreateContainer(n) | Action::StartContainer(n) => Some(n),
            Action::RecreateContainer { name, .. } | Action::CompleteContainer { name, .. } => {
                Some(name)
            }
            _ => None,
        }
    }

    /// Whether it changes a network, volume or container. A pull does not count: it comes
    /// with a create or recreate, which does.
    pub fn is_change(&self) -> bool {
        !matches!(
            self,
            Action::PullImage { .. }
                | Action::Wait { .. }
                | Action::DriftedVolume { .. }
                | Action::KeepNetwork(_)
                | Action::KeepVolume(_)
                | Action::KeepContainer(_)
                | Action::OrphanVolume(_)
                | Action::OrphanAnonymous { .. }
        )
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::PullImage {
                image,
                container,
                always,
                registry,
                present,
                current,
            } => {
                let digest = registry.as_ref().and_then(|r| r.digest()).map(short_digest);
                let index = matches!(registry, Some(RegistryImage::Index(_)));
                match (always, present, &digest) {
                    (false, _, _) => write!(
                        f,
                        "+ image {image} (missing, will be pulled for {container})"
                    )?,
                    (true, true, Some(d)) if *current => {
                        return write!(
                            f,
                            "  image {image} (pull = \"always\" for {container}: what is here is the registry's {d}, unchanged)"
                        );
                    }
                    (true, true, Some(d)) if index => {
                        return write!(
                            f,
                            "~ image {image} (pull = \"always\" for {container}: the registry's multi-platform index is {d}, not what is here; apply pulls it first and recreates what runs it if this platform's image changed)"
                        );
                    }
                    (true, true, Some(d)) => {
                        return write!(
                            f,
                            "~ image {image} (pull = \"always\" for {container}: the registry has {d}, not what is here; apply pulls it first and recreates what runs it)"
                        );
                    }
                    (true, false, _) => write!(
                        f,
                        "+ image {image} (pull = \"always\" for {container}: missing; apply pulls it first)"
                    )?,
                    (true, true, None) => write!(
                        f,
                        "+ image {image} (pull = \"always\" for {container}: apply pulls it first, and recreates what runs it if it changed)"
                    )?,
                }
                match (registry, digest) {
                    (_, Some(d)) if index => {
                        write!(f, ": the registry has {d} (a multi-platform index)")
                    }
                    (_, Some(d)) => write!(f, ": the registry has {d}"),
                    (Some(RegistryImage::Unreachable(why)), _) => write!(
                        f,
                        ": its registry could not be asked ({why}); apply's pull, its first step, will tell"
                    ),
                    (Some(RegistryImage::Unknown(why)), _) => {
                        write!(f, ": its registry has no such image ({why})")
                    }
                    _ => Ok(()),
                }
            }
            Action::CreateNetwork(n) => write!(f, "+ network {n}"),
            Action::KeepNetwork(n) => write!(f, "  network {n} (unchanged)"),
            Action::RecreateNetwork { name, diff, .. } => {
                write!(f, "~ network {name}: {diff} (recreate)")
            }
            Action::RemoveNetwork(n) => write!(f, "- network {n} (no longer declared)"),
            Action::CreateVolume(n) => write!(f, "+ volume {n}"),
            Action::KeepVolume(n) => write!(f, "  volume {n} (unchanged)"),
            Action::DriftedVolume { name, diff } => write!(
                f,
                "! volume {name}: {diff} (left as it is: a volume holds data and is never recreated here; to apply this, back it up, docker volume rm {name}, and apply makes it anew)"
            ),
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
                ..
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
            Action::OrphanAnonymous {
                volume,
                container,
                at,
            } => write!(
                f,
                "  anonymous volume {} ({container}:{at}) stays, unattached: its data is kept (docker volume rm {volume} drops it)",
                short_volume(volume)
            ),
            Action::Wait {
                name,
                condition,
                before,
                timeout_secs,
                probe,
            } => {
                let what = match (condition, probe.first()) {
                    (Condition::Healthy, _) => "healthy".to_string(),
                    (_, Some(at)) => format!("answering at {}", at.ip()),
                    _ => "ready".to_string(),
                };
                write!(
                    f,
                    "… wait for {name} to be {what} (at most {timeout_secs} s"
                )?;
                if before.is_empty() {
                    write!(f, ", apply --wait)")
                } else {
                    write!(f, "; then {})", before.join(", "))
                }
            }
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

    /// Whether apply has anything to do: a change, or a wait (`--wait`).
    pub fn has_work(&self) -> bool {
        self.actions
            .iter()
            .any(|a| a.is_change() || matches!(a, Action::Wait { .. }))
    }

    /// Whether the engine differs from the file: a change, or a volume that drifted (which
    /// apply leaves as it is). What `status` reports.
    pub fn differs(&self) -> bool {
        self.actions
            .iter()
            .any(|a| a.is_change() || matches!(a, Action::DriftedVolume { .. }))
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

/// Differences between what the engine has and what the file wants, one entry per key:
/// `options o: addr=1 → addr=2`. With `exact`, keys the engine has and the file does not
/// count too; without, only the file's keys are compared (the engine and the stack add
/// their own labels and defaults).
fn map_diff(
    what: &str,
    have: &BTreeMap<String, String>,
    want: &BTreeMap<String, String>,
    exact: bool,
) -> Vec<String> {
    let mut out: Vec<String> = want
        .iter()
        .filter(|(k, v)| have.get(*k) != Some(*v))
        .map(|(k, v)| {
            format!(
                "{what} {k}: {} → {v}",
                have.get(k).map_or("none", String::as_str)
            )
        })
        .collect();
    if exact {
        out.extend(
            have.iter()
                .filter(|(k, _)| !want.contains_key(*k))
                .map(|(k, v)| format!("{what} {k}: {v} → none")),
        );
    }
    out
}

/// For a container whose image some container of the stack pulls always (`pull =
/// "always"`; apply's pull changes what the tag names for every container running it), when
/// that image is here but is not what its registry has now: the recreate's reason. None
/// once apply pulled (`pulled`: the image's ID tells then).
fn newer_in_registry(
    spec: &ContainerSpec,
    stack: &Stack,
    engine: &EngineState,
    options: PlanOptions,
) -> Option<String> {
    let image = spec.image.get_ref();
    if options.pulled
        || !engine.image_ids.contains_key(image)
        || !stack
            .containers
            .values()
            .any(|c| c.pull() == Pull::Always && c.image.get_ref() == image)
    {
        return None;
    }
    let found = engine.registry.get(image)?;
    let digest = short_digest(found.digest()?);
    if engine.is_current(image) {
        None
    } else if matches!(found, RegistryImage::Index(_)) {
        Some(format!(
            "image {image} may change (the registry's multi-platform index is {digest}; apply recreates it only if the pull brings another image for this platform)"
        ))
    } else {
        Some(format!("image {image} changes (the registry has {digest})"))
    }
}

/// A registry digest as `docker images --digests` shows it, cut to 12 hex digits.
fn short_digest(digest: &str) -> String {
    match digest.split_once(':') {
        Some((algorithm, hex)) => format!("{algorithm}:{}", hex.get(..12).unwrap_or(hex)),
        None => digest.get(..12).unwrap_or(digest).to_string(),
    }
}

/// An image ID as `docker images` shows it: 12 hex digits, without `sha256:`.
fn short_id(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    id.get(..12).unwrap_or(id)
}

/// The first 12 characters of a volume name (anonymous ones are 64 hex digits).
fn short_volume(name: &str) -> &str {
    name.get(..12).unwrap_or(name)
}

/// What the command was told, that changes what may be done.
#[derive(Debug, Default, Clone, Copy)]
pub struct PlanOptions {
    /// Take over resources of this stack that another stack file created.
    pub adopt: bool,
    /// Recreate networks whose settings drifted even when containers are attached.
    pub recreate: bool,
    /// `apply --wait`: wait for every container to be healthy (those with a health check).
    pub wait: bool,
    /// Seconds each wait for health lasts (None: `DEFAULT_WAIT_SECS`).
    pub wait_timeout: Option<u64>,
    /// The `pull = "always"` images were pulled just before the engine was read (`apply`
    /// does so): the plan needs no pull for them, and sees what they are now.
    pub pulled: bool,
}

/// The name an old container has while its replacement is made.
pub fn aside_name(name: &str) -> String {
    format!("{name}-netalias-old")
}

/// Compares the spec with the engine and decides everything `apply` does. Fails on anything
/// it must never touch or may not do: a resource of another stack, or of this stack but
/// created from another file (unless `adopt`); a drifted network with containers attached
/// (unless `recreate`), or with someone else's container attached (never). `apply` carries
/// the plan out as it is, so what `plan` accepts, `apply` does not refuse.
pub fn plan(
    stack: &Stack,
    engine: &EngineState,
    options: PlanOptions,
) -> Result<Plan, ProvisionError> {
    let name = stack.name().to_string();
    check_file(stack, engine, options.adopt)?;
    let ours = |owner: &Owner| owner.stack.as_deref() == Some(name.as_str());
    let mut actions = Vec::new();

    for (net_name, spec) in &stack.networks {
        if spec.driver.is_builtin() {
            continue; // host and none always exist
        }
        if spec.external {
            // Someone else's, used as it is: it must be there, and nothing here changes it.
            if !engine.networks.contains_key(net_name) {
                return Err(ProvisionError::ExternalMissing {
                    kind: "network",
                    name: net_name.clone(),
                });
            }
            actions.push(Action::KeepNetwork(net_name.clone()));
            continue;
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
                if state.attachable != spec.attachable {
                    diff.push(format!(
                        "attachable {} → {}",
                        state.attachable, spec.attachable
                    ));
                }
                let aux: BTreeMap<String, String> = spec
                    .aux_addresses
                    .iter()
                    .map(|(k, v)| (k.clone(), v.get_ref().clone()))
                    .collect();
                diff.extend(map_diff("aux_addresses", &state.aux_addresses, &aux, true));
                // Only when the file says: a daemon with IPv6 on by default gives every
                // network one, which is no drift.
                let v6 = spec.ipv6_subnet.as_ref().map(|s| s.get_ref().clone());
                if v6.is_some() && v6 != state.ipv6_subnet {
                    diff.push(format!(
                        "ipv6_subnet {} → {}",
                        state.ipv6_subnet.as_deref().unwrap_or("none"),
                        v6.as_deref().unwrap_or("none")
                    ));
                }
                diff.extend(map_diff("options", &state.options, &spec.options, false));
                diff.extend(map_diff("labels", &state.labels, &spec.labels, false));
                if diff.is_empty() {
                    actions.push(Action::KeepNetwork(net_name.clone()));
                    continue;
                }
                let diff = diff.join(", ");
                let attached = &state.attached;
                if !attached.is_empty() && !options.recreate {
                    return Err(ProvisionError::NetworkInUse {
                        network: net_name.clone(),
                        diff,
                        attached: attached.len(),
                    });
                }
                // Recreating removes every container on it: someone else's would be lost.
                if let Some(foreign) = attached
                    .iter()
                    .find(|c| engine.containers.get(*c).is_none_or(|s| !ours(&s.owner)))
                {
                    return Err(ProvisionError::NotOwned {
                        kind: "container (attached to a network being recreated)",
                        name: foreign.clone(),
                        stack: name,
                    });
                }
                actions.push(Action::RecreateNetwork {
                    name: net_name.clone(),
                    diff,
                    attached: attached.clone(),
                });
            }
        }
    }

    for (vol, spec) in &stack.volumes {
        if spec.external {
            if !engine.volumes.contains_key(vol) {
                return Err(ProvisionError::ExternalMissing {
                    kind: "volume",
                    name: vol.clone(),
                });
            }
            actions.push(Action::KeepVolume(vol.clone()));
            continue;
        }
        match engine.volumes.get(vol) {
            None => actions.push(Action::CreateVolume(vol.clone())),
            Some(state) if !ours(&state.owner) => {
                return Err(ProvisionError::NotOwned {
                    kind: "volume",
                    name: vol.clone(),
                    stack: name,
                });
            }
            Some(state) => {
                let mut diff = Vec::new();
                if state.driver != spec.driver {
                    diff.push(format!("driver {} → {}", state.driver, spec.driver));
                }
                diff.extend(map_diff("options", &state.options, &spec.options, true));
                diff.extend(map_diff("labels", &state.labels, &spec.labels, false));
                if diff.is_empty() {
                    actions.push(Action::KeepVolume(vol.clone()));
                } else {
                    actions.push(Action::DriftedVolume {
                        name: vol.clone(),
                        diff: diff.join(", "),
                    });
                }
            }
        }
    }

    let recreated_networks: Vec<String> = actions
        .iter()
        .filter_map(|a| match a {
            Action::RecreateNetwork { name, .. } => Some(name.clone()),
            _ => None,
        })
        .collect();
    // Removed by a network's recreate before their own turn comes.
    let removed_with_networks: Vec<String> = actions
        .iter()
        .filter_map(|a| match a {
            Action::RecreateNetwork { attached, .. } => Some(attached),
            _ => None,
        })
        .flatten()
        .cloned()
        .collect();
    let mut pulls: Vec<Action> = if options.pulled {
        Vec::new()
    } else {
        always_pulled(stack)
            .into_iter()
            .map(|(image, container)| {
                let registry = engine.registry.get(&image).cloned();
                let present = engine.image_ids.contains_key(&image);
                let current = present && engine.is_current(&image);
                Action::PullImage {
                    image,
                    container,
                    always: true,
                    registry,
                    present,
                    current,
                }
            })
            .collect()
    };
    let mut pull_for = |container: &String| {
        let image = stack.containers[container].image.get_ref();
        if !engine.image_ids.contains_key(image)
            && !pulls
                .iter()
                .any(|p| matches!(p, Action::PullImage { image: i, .. } if i == image))
        {
            pulls.push(Action::PullImage {
                image: image.clone(),
                container: container.clone(),
                always: false,
                registry: engine.registry.get(image).cloned(),
                present: false,
                current: false,
            });
        }
    };
    // An image that may not be pulled must be here before anything is planned around it.
    for (container, spec) in &stack.containers {
        if spec.pull() == Pull::Never && !engine.image_ids.contains_key(spec.image.get_ref()) {
            return Err(ProvisionError::ImageNeverPulled {
                image: spec.image.get_ref().clone(),
                container: container.clone(),
            });
        }
    }
    for container in creation_order(stack) {
        let spec = &stack.containers[&container];
        let aside = aside_name(&container);
        match engine.containers.get(&container) {
            // An apply stopped between the rename aside and the new container: the old one,
            // aside, holds the data. Creating afresh would give the new container empty
            // anonymous volumes and remove the old one with the data unattached.
            None if engine
                .containers
                .get(&aside)
                .is_some_and(|a| ours(&a.owner)) =>
            {
                pull_for(&container);
                actions.push(Action::RecreateContainer {
                    name: container.clone(),
                    reason: format!(
                        "an earlier apply stopped half-way; the old container, left as {aside}, hands its volumes over"
                    ),
                    carried: carried_volumes(engine, spec, &engine.containers[&aside]),
                    removed_with_network: false,
                    stale_aside: false,
                    from_aside: true,
                    wait: None,
                    predecessor: None,
                });
            }
            None if let Some(old) =
                predecessor(stack, &container, engine, &ours, &removed_with_networks) =>
            {
                pull_for(&container);
                actions.push(Action::RecreateContainer {
                    name: container.clone(),
                    reason: format!(
                        "it succeeds {}, no longer declared, which hands its volumes over",
                        old.name
                    ),
                    carried: carried_volumes(engine, spec, &engine.containers[&old.name]),
                    removed_with_network: false,
                    stale_aside: false,
                    from_aside: true,
                    wait: None,
                    predecessor: Some(old),
                });
            }
            None => {
                pull_for(&container);
                actions.push(Action::CreateContainer(container.clone()));
            }
            Some(state) if !ours(&state.owner) => {
                return Err(ProvisionError::NotOwned {
                    kind: "container",
                    name: container.clone(),
                    stack: name,
                });
            }
            Some(state) => {
                let image_now = engine.image_ids.get(spec.image.get_ref());
                let reason = if state.spec.as_deref() != Some(fingerprint(spec).as_str()) {
                    let changed = state
                        .fields
                        .as_ref()
                        .map(|old| fields::diff(old, &fields::render(spec)))
                        .unwrap_or_default();
                    Some(if changed.is_empty() {
                        "spec changed".to_string()
                    } else {
                        changed.join(", ")
                    })
                } else if let (Some(now), Some(was)) = (image_now, &state.image_id)
                    && now != was
                {
                    // The tag now names another image (pulled or built since): compose
                    // recreates on this too.
                    Some(format!(
                        "image {} changed ({} → {})",
                        spec.image.get_ref(),
                        short_id(was),
                        short_id(now)
                    ))
                } else if let Some(newer) = newer_in_registry(spec, stack, engine, options) {
                    // `pull = "always"`, and what apply's pull brings is not what is here: the
                    // plan shows now the recreate that apply's read after the pull will make.
                    Some(newer)
                } else if let NetworkMode::Container(host) = spec.network_mode()
                    && actions.iter().any(|a| {
                        matches!(a, Action::RecreateContainer { name, .. } | Action::CreateContainer(name) if *name == host)
                    })
                {
                    // Joined to the namespace of a container that goes: left as it is, it
                    // would keep only loopback (Docker does not rejoin it), as compose knows.
                    Some(format!(
                        "it shares {host}'s network namespace, and {host} is made anew"
                    ))
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
                    Some(reason) => {
                        pull_for(&container);
                        actions.push(Action::RecreateContainer {
                            name: container.clone(),
                            reason,
                            carried: carried_volumes(engine, spec, state),
                            removed_with_network: removed_with_networks.contains(&container),
                            // Put aside by the network's recreate, that one is the old
                            // container; otherwise one left by an earlier run goes first.
                            stale_aside: !removed_with_networks.contains(&container)
                                && engine
                                    .containers
                                    .get(&aside)
                                    .is_some_and(|a| ours(&a.owner)),
                            from_aside: false,
                            wait: None,
                            predecessor: None,
                        });
                    }
                    None if state.running => actions.push(Action::KeepContainer(container.clone())),
                    None => {
                        // An earlier run made the new container and stopped before putting
                        // the old one away: the old one may still run on the same volumes
                        // (and addresses). It goes before the new one starts; the new one
                        // holds the carried volumes.
                        if engine
                            .containers
                            .get(&aside)
                            .is_some_and(|a| ours(&a.owner))
                        {
                            actions.push(Action::RemoveContainer(aside.clone()));
                        }
                        actions.push(if missing.is_empty() {
                            Action::StartContainer(container.clone())
                        } else {
                            Action::CompleteContainer {
                                name: container.clone(),
                                missing,
                            }
                        });
                    }
                }
            }
        }
    }

    // Owned but no longer declared. Containers first: networks cannot go while in use.
    let handed_over: Vec<String> = actions
        .iter()
        .filter_map(|a| match a {
            Action::RecreateContainer {
                name,
                from_aside: true,
                predecessor,
                ..
            } => Some(
                predecessor
                    .as_ref()
                    .map_or_else(|| aside_name(name), |p| p.name.clone()),
            ),
            _ => None,
        })
        .collect();
    for (c, state) in &engine.containers {
        let removed_already = actions
            .iter()
            .any(|a| matches!(a, Action::RemoveContainer(r) if r == c));
        if ours(&state.owner)
            && !stack.containers.contains_key(c)
            && !handed_over.contains(c)
            && !removed_already
        {
            actions.push(Action::RemoveContainer(c.clone()));
            for v in state.volumes.iter().filter(|v| is_anonymous(&v.name)) {
                actions.push(Action::OrphanAnonymous {
                    volume: v.name.clone(),
                    container: c.clone(),
                    at: v.destination.clone(),
                });
            }
        }
    }
    for (n, state) in &engine.networks {
        if ours(&state.owner) && !stack.networks.contains_key(n) {
            actions.push(Action::RemoveNetwork(n.clone()));
        }
    }
    for (v, state) in &engine.volumes {
        if ours(&state.owner) && !stack.volumes.contains_key(v) {
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
    let actions = with_waits(stack, actions, options);
    let mut actions = actions;
    // A name its registry says it does not have fails here, not at apply's first pull.
    for pull in &pulls {
        if let Action::PullImage {
            image,
            container,
            registry: Some(RegistryImage::Unknown(reason)),
            ..
        } = pull
        {
            return Err(ProvisionError::UnknownImage {
                image: image.clone(),
                container: container.clone(),
                reason: reason.clone(),
            });
        }
    }
    // Every image before anything changes: a failed pull must leave the old service running.
    pulls.append(&mut actions);
    Ok(Plan {
        stack: name,
        actions: pulls,
        resolver,
    })
}

/// Puts a `Wait` before the first container of the plan that must wait for another (its
/// `depends_on` "healthy", or the stack's resolver), and with `wait`, one for every container
/// at the end; a recreate that is waited for is told so (`wait`), to be rolled back if it
/// does not become healthy. Only containers this plan starts wait: a plan that starts
/// nothing has no waits.
fn with_waits(stack: &Stack, actions: Vec<Action>, options: PlanOptions) -> Vec<Action> {
    let timeout_secs = options.wait_timeout.unwrap_or(DEFAULT_WAIT_SECS);
    let mut out: Vec<Action> = Vec::with_capacity(actions.len());
    for action in actions {
        if let Some(starting) = action.starts().map(str::to_string)
            && let Some(spec) = stack.containers.get(&starting)
        {
            for (target, condition) in spec.waits_for() {
                if condition == Condition::Started {
                    continue; // the order alone gives it: the target was started before
                }
                let existing = out.iter_mut().find_map(|a| match a {
                    Action::Wait {
                        name,
                        before,
                        condition: c,
                        probe,
                        ..
                    } if *name == target => Some((before, c, probe)),
                    _ => None,
                });
                match existing {
                    Some((before, c, probe)) => {
                        before.push(starting.clone());
                        // The strictest condition wins: healthy over ready.
                        if condition == Condition::Healthy {
                            *c = Condition::Healthy;
                            probe.clear();
                        }
                    }
                    None => out.push(Action::Wait {
                        probe: probe_of(stack, &target, condition),
                        name: target,
                        condition,
                        before: vec![starting.clone()],
                        timeout_secs,
                    }),
                }
            }
        }
        out.push(action);
    }
    if options.wait {
        for name in creation_order(stack) {
            if !out
                .iter()
                .any(|a| matches!(a, Action::Wait { name: n, .. } if *n == name))
            {
                out.push(Action::Wait {
                    probe: probe_of(stack, &name, Condition::Ready),
                    name,
                    condition: Condition::Ready,
                    before: Vec::new(),
                    timeout_secs,
                });
            }
        }
    }
    // Nothing starts: nothing waits, unless `--wait` asks for the stack to be healthy.
    if !options.wait && out.iter().all(|a| a.starts().is_none()) {
        out.retain(|a| !matches!(a, Action::Wait { .. }));
    }
    let waited: Vec<String> = out
        .iter()
        .filter_map(|a| match a {
            Action::Wait { name, .. } => Some(name.clone()),
            _ => None,
        })
        .collect();
    for action in &mut out {
        if let Action::RecreateContainer { name, wait, .. } = action
            && waited.contains(name)
        {
            *wait = Some(timeout_secs);
        }
    }
    out
}

/// Where to ask the stack's resolver whether it answers: its addresses on the stack's own
/// bridges (reachable from the engine's machine), port 53. Empty for any other container.
fn probe_of(stack: &Stack, name: &str, condition: Condition) -> Vec<std::net::SocketAddrV4> {
    let Some(resolver) = stack.resolver() else {
        return Vec::new();
    };
    if resolver.container != name || condition != Condition::Ready {
        return Vec::new();
    }
    resolver
        .addresses
        .iter()
        .filter(|(net, _)| {
            stack
                .networks
                .get(*net)
                .is_some_and(|n| n.driver == super::spec::Driver::Bridge && !n.external)
        })
        .map(|(_, ip)| std::net::SocketAddrV4::new(*ip, 53))
        .collect()
}

/// The stack's container, no longer declared, that `container` (missing) succeeds: `NAME`
/// when `container` is its first replica `NAME-1` (`replicas` was added), or `NAME-1`, a
/// replica of `container`, when `replicas` was taken away; or that one left aside by an
/// apply stopped half-way (after this very succession's rename, or a network's recreate).
/// Its anonymous volumes (an image's `VOLUME`) then go to the successor, as a recreate's
/// do, instead of being left unattached. Only these, told by name and replica label: any
/// other container keeps its own data. None when `container`'s own aside name is taken by
/// a container not the stack's (the rename would fail half-way).
fn predecessor(
    stack: &Stack,
    container: &str,
    engine: &EngineState,
    ours: &impl Fn(&Owner) -> bool,
    removed_with_networks: &[String],
) -> Option<Predecessor> {
    let set = stack.containers[container].labels.get(super::REPLICA_LABEL);
    let candidate = match set {
        Some(set) if *container == format!("{set}-1") => set.clone(),
        Some(_) => return None,
        None => format!("{container}-1"),
    };
    if stack.containers.contains_key(&candidate)
        || engine.containers.contains_key(&aside_name(container))
    {
        return None;
    }
    if let Some(old) = engine.containers.get(&candidate) {
        let succeeds = match set {
            Some(_) => old.replica_of.is_none(),
            None => old.replica_of.as_deref() == Some(container),
        };
        if !succeeds || !ours(&old.owner) {
            return None;
        }
        let at = if removed_with_networks.contains(&candidate) {
            aside_name(&candidate)
        } else {
            candidate.clone()
        };
        return Some(Predecessor {
            name: candidate.clone(),
            at,
            restore_as: candidate,
        });
    }
    let aside = aside_name(&candidate);
    let old = engine.containers.get(&aside)?;
    if !ours(&old.owner) {
        return None;
    }
    // Aside, it served either as `candidate` or, when a succession back to `container` was
    // stopped half-way, as `container` itself (no replica label): it gets that name back.
    let restore_as = match (set, &old.replica_of) {
        (None, None) => container.to_string(),
        _ => candidate,
    };
    Some(Predecessor {
        name: aside.clone(),
        at: aside,
        restore_as,
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
        // A named volume the spec no longer mounts was taken out on purpose: carrying it
        // would keep it mounted for good (it stays, unmounted, until destroy --volumes).
        .filter(|v| is_anonymous(&v.name))
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
        .chain(engine.volumes.iter().map(|(n, v)| ("volume", n, &v.owner)))
        .chain(
            engine
                .containers
                .iter()
                .map(|(n, s)| ("container", n, &s.owner)),
        );
    for (kind, name, owner) in owners {
        // A file that is no longer where it was (moved, renamed) cannot apply again: its
        // resources pass to this one without --adopt (a network or volume keeps its first
        // label for good, so --adopt would otherwise be needed on every later command).
        if owner.stack.as_deref() == Some(stack.name())
            && let Some(theirs) = &owner.file
            && theirs != ours
            && std::path::Path::new(theirs).exists()
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
