//! Carrying a plan out, and undoing a stack: the only code in netalias that writes to the engine
//! (through [`Engine`]).
//!
//! It decides nothing the engine could change its mind about: every refusal, every missing
//! image, what a network's recreate removes and whether an old container is there to put
//! aside were decided by `plan` from one read; `apply` runs the plan's actions in their order
//! and reads nothing. That order: missing images first, so that nothing is touched when a pull
//! fails; then networks and volumes, then containers in dependency order; removals after.
//! Progress is reported to the caller as it goes ([`Report`]); nothing here prints. A recreate
//! creates the new container beside the old one (renamed aside) and swaps them, rolling back
//! to the old one if the new one does not start. A failure stops the run and reports what was
//! done; running again converges. Volumes, anonymous ones included, and host directories are
//! never removed unless `destroy --volumes` says so (and host directories never).

use tracing::warn;

use super::{
    FIELDS_LABEL, SPEC_LABEL,
    engine::{Engine, Health, NewContainer, VolumeMount},
    error::{ProvisionError, status_of},
    fields,
    plan::{
        Action, Plan, aside_name, check_file, fingerprint, is_anonymous, owner_labels, read_lists,
    },
    resolver::{self, Resolver},
    spec::{Condition, Mount, NetworkMode, Stack},
    validate::creation_order,
};

/// What a run did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub created: usize,
    pub recreated: usize,
    pub started: usize,
    pub removed: usize,
    pub kept: usize,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} created, {} recreated, {} started, {} removed, {} unchanged",
            self.created, self.recreated, self.started, self.removed, self.kept
        )
    }
}

/// On a host where SELinux enforces, a bind mount without `z`/`Z` fails inside the container
/// with "Permission denied" (the seed's `chown: ... Permission denied`).
pub fn selinux_warnings(stack: &Stack) -> Vec<String> {
    let enforcing =
        std::fs::read_to_string("/sys/fs/selinux/enforce").is_ok_and(|s| s.trim() == "1");
    if !enforcing {
        return Vec::new();
    }
    let mut warnings = Vec::new();
    for (name, c) in &stack.containers {
        for mount in c.parsed_mounts() {
            if let Mount::Bind {
                source, options, ..
            } = &mount
                && !options.iter().any(|o| o == "z" || o == "Z")
            {
                warnings.push(format!(
                    "containers.{name}.mounts: SELinux is enforcing and {} has no z/Z option: the container will get \"Permission denied\" there. Add :z (shared) or :Z (private) to relabel it.",
                    source.display()
                ));
            }
        }
    }
    warnings
}

/// What apply and destroy say as they go, for the command to show (the library prints
/// nothing). `Display` gives the line people read.
#[derive(Debug, Clone, Copy)]
pub enum Report<'a> {
    /// Step `n` of `total` starts: `action`.
    Step {
        n: usize,
        total: usize,
        action: &'a Action,
    },
    /// A wait for a container's health begins (`Action::Wait`).
    Waiting { action: &'a Action },
    /// A missing image is being pulled for a container.
    Pulling { image: &'a str, container: &'a str },
    /// A container goes so that its network can be recreated (it is recreated after).
    RemovingFor {
        container: &'a str,
        network: &'a str,
    },
    /// `destroy` removed an object of kind `kind` ("container", "network", "volume").
    Removed { kind: &'static str, name: &'a str },
    /// An anonymous volume of a removed container, removed with it or kept.
    AnonymousVolume {
        volume: &'a str,
        container: &'a str,
        at: &'a str,
        removed: bool,
    },
    /// A named volume `destroy` kept.
    VolumeKept { name: &'a str },
    /// A volume `destroy --volumes` kept: a container outside the stack still uses it.
    VolumeInUse { name: &'a str },
}

impl std::fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Report::Step { n, total, action } => write!(f, "[{n}/{total}] {action}"),
            Report::Waiting { action } => write!(f, "      {action}"),
            Report::Pulling { image, container } => {
                write!(f, "      pulling {image} for {container}")
            }
            Report::RemovingFor { container, network } => write!(
                f,
                "      putting {container} aside, off {network} (it is recreated after, with its volumes)"
            ),
            Report::Removed { kind, name } => write!(f, "- {kind} {name}"),
            Report::AnonymousVolume {
                volume,
                at,
                removed: true,
                ..
            } => write!(f, "  anonymous volume {volume} at {at} removed with it"),
            Report::AnonymousVolume {
                volume,
                container,
                at,
                removed: false,
            } => write!(
                f,
                "  anonymous volume {volume} ({container}:{at}) kept (its data stays; destroy --volumes removes it, or docker volume rm)"
            ),
            Report::VolumeInUse { name } => write!(
                f,
                "  volume {name} kept: a container outside the stack still uses it"
            ),
            Report::VolumeKept { name } => write!(
                f,
                "  volume {name} kept (its data stays; destroy --volumes removes it)"
            ),
        }
    }
}

/// Carries `plan` out, action by action, in its order. The plan must come from `plan` for this
/// `stack`: nothing is checked again.
pub async fn apply(
    engine: &impl Engine,
    stack: &Stack,
    plan: &Plan,
    report: &mut dyn FnMut(Report<'_>),
) -> Result<Summary, ProvisionError> {
    // Missing images first, as `plan` put them, then the resolv.conf files (before any
    // container that mounts one is created), then the rest.
    let pulls = plan
        .actions
        .iter()
        .take_while(|a| matches!(a, Action::PullImage { .. }))
        .count();
    let (pulls, steps) = plan.actions.split_at(pulls);
    for action in pulls {
        if let Action::PullImage {
            image, container, ..
        } = action
        {
            report(Report::Pulling { image, container });
            engine.pull_image(image, container).await?;
        }
    }
    if let Some(resolver) = stack.resolver() {
        write_resolver_files(stack, resolver)?;
    }
    let mut summary = Summary::default();
    let total = steps.len();
    for (i, action) in steps.iter().enumerate() {
        match action {
            Action::KeepNetwork(_)
            | Action::KeepVolume(_)
            | Action::KeepContainer(_)
            | Action::OrphanVolume(_)
            | Action::OrphanAnonymous { .. } => {
                summary.kept += 1;
                continue;
            }
            Action::Wait { .. } => report(Report::Waiting { action }),
            Action::PullImage {
                image, container, ..
            } => {
                report(Report::Pulling { image, container });
                engine.pull_image(image, container).await?;
                continue;
            }
            _ => report(Report::Step {
                n: i + 1,
                total,
                action,
            }),
        }
        match action {
            Action::CreateNetwork(name) => {
                let spec = &stack.networks[name];
                engine
                    .create_network(name, spec, owner_labels(stack, &spec.labels))
                    .await?;
                summary.created += 1;
            }
            Action::RecreateNetwork { name, attached, .. } => {
                // Someone may have attached a container since the plan was read (after the
                // pulls): it is not the stack's to take off. Checked before anything moves.
                if let Some(foreign) = engine
                    .attached(name)
                    .await?
                    .into_iter()
                    .find(|c| !attached.contains(c))
                {
                    return Err(ProvisionError::NotOwned {
                        kind: "container (attached to the network being recreated since the plan was read)",
                        name: foreign,
                        stack: stack.name().to_string(),
                    });
                }
                // Our containers on it (all ours: `plan` refused otherwise) are put aside,
                // stopped and off the network, not removed: each is recreated after from its
                // aside copy, which keeps its volumes until the new one runs. A run killed
                // here leaves them aside, and the next plan hands their volumes over.
                for container in attached {
                    report(Report::RemovingFor {
                        container,
                        network: name,
                    });
                    let aside = aside_name(container);
                    remove_container(engine, stack.name(), &aside, false).await?;
                    stop_container(engine, container).await;
                    engine.rename_container(container, &aside).await?;
                    engine.disconnect(&aside, name).await?;
                }
                engine.remove_network(name).await?;
                let spec = &stack.networks[name];
                engine
                    .create_network(name, spec, owner_labels(stack, &spec.labels))
                    .await?;
                summary.recreated += 1;
            }
            Action::CreateVolume(name) => {
                let spec = &stack.volumes[name];
                engine
                    .create_volume(name, spec, owner_labels(stack, &spec.labels))
                    .await?;
                summary.created += 1;
            }
            Action::CreateContainer(name) => {
                create_container(engine, stack, name, &[]).await?;
                engine.start_container(name).await?;
                summary.created += 1;
            }
            Action::RecreateContainer {
                name,
                carried,
                removed_with_network,
                stale_aside,
                from_aside,
                wait,
                predecessor,
                ..
            } => {
                // The container it succeeds goes aside under its aside name first: from
                // there on it is the old one, as one an earlier run left aside (and an apply
                // stopped here finds it there next time).
                if let Some(predecessor) = predecessor {
                    engine
                        .rename_container(&predecessor.at, &aside_name(name))
                        .await?;
                }
                let old = Old {
                    there: !removed_with_network && !from_aside,
                    stale_aside: *stale_aside,
                    // Put aside by its network's recreate, or by a run stopped half-way.
                    aside: *from_aside || *removed_with_network,
                    restore_as: predecessor
                        .as_ref()
                        .map_or(name.as_str(), |p| p.restore_as.as_str()),
                };
                recreate_container(engine, stack, name, carried, old, *wait).await?;
                summary.recreated += 1;
            }
            Action::CompleteContainer { name, missing } => {
                for network in missing {
                    connect(engine, stack, name, network).await?;
                }
                engine.start_container(name).await?;
                summary.started += 1;
            }
            Action::StartContainer(name) => {
                engine.start_container(name).await?;
                summary.started += 1;
            }
            Action::RemoveContainer(name) => {
                remove_container(engine, stack.name(), name, false).await?;
                summary.removed += 1;
            }
            Action::RemoveNetwork(name) => {
                engine.remove_network(name).await?;
                summary.removed += 1;
            }
            // Shown (the step above), never acted on: its data stays.
            Action::DriftedVolume { .. } => summary.kept += 1,
            Action::Wait {
                name,
                condition,
                timeout_secs,
                probe,
                ..
            } => {
                wait_for(engine, name, *condition, *timeout_secs, probe).await?;
            }
            Action::PullImage { .. }
            | Action::KeepNetwork(_)
            | Action::KeepVolume(_)
            | Action::KeepContainer(_)
            | Action::OrphanVolume(_)
            | Action::OrphanAnonymous { .. } => {}
        }
    }
    Ok(summary)
}

/// Pulls the images of the stack's `pull = "always"` containers, before the engine is read
/// for the plan (`PlanOptions::pulled`): the plan then sees what each tag names now, and
/// recreates a container whose image changed. A failed pull changes nothing.
pub async fn pull_always(
    engine: &impl Engine,
    stack: &Stack,
    report: &mut dyn FnMut(Report<'_>),
) -> Result<(), ProvisionError> {
    for (image, container) in super::plan::always_pulled(stack) {
        report(Report::Pulling {
            image: &image,
            container: &container,
        });
        engine.pull_image(&image, &container).await?;
    }
    Ok(())
}

/// Creates `path` and any missing parents, refusing to follow a symbolic link anywhere on
/// the way (one could lead the container's bind mount out of the declared path). Validation
/// refused such a path already; this holds if a link appeared since.
fn create_host_dir(path: &std::path::Path, container: &str) -> Result<(), ProvisionError> {
    if path.is_dir() {
        return Ok(()); // nothing to create: mounting what exists is the file's own choice
    }
    let mut at = std::path::PathBuf::new();
    for part in path.components() {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(ProvisionError::SymlinkInPath {
                    path: at.display().to_string(),
                    container: container.to_string(),
                });
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // create_dir, not create_dir_all: each level is checked as it is made.
                match std::fs::create_dir(&at) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        if std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink())
                        {
                            return Err(ProvisionError::SymlinkInPath {
                                path: at.display().to_string(),
                                container: container.to_string(),
                            });
                        }
                    }
                    Err(source) => {
                        return Err(ProvisionError::HostDir {
                            path: at.display().to_string(),
                            container: container.to_string(),
                            source,
                        });
                    }
                }
            }
            Err(source) => {
                return Err(ProvisionError::HostDir {
                    path: at.display().to_string(),
                    container: container.to_string(),
                    source,
                });
            }
        }
    }
    Ok(())
}

/// Creates `name` on its first network and connects the others; does not start it.
/// `carried` volumes (from the container it replaces) are mounted where they were.
async fn create_container(
    engine: &impl Engine,
    stack: &Stack,
    name: &str,
    carried: &[VolumeMount],
) -> Result<(), ProvisionError> {
    let spec = &stack.containers[name];
    let mounts = spec.parsed_mounts();
    if spec.create_host_dirs {
        for mount in &mounts {
            if let Mount::Bind { source, .. } = mount {
                create_host_dir(source, name)?;
            }
        }
    }
    let binds: Vec<String> = mounts
        .iter()
        .map(Mount::to_bind)
        .chain(
            carried
                .iter()
                .map(|v| format!("{}:{}", v.name, v.destination)),
        )
        .collect();
    let mut labels = owner_labels(stack, &spec.labels);
    labels.insert(SPEC_LABEL.to_string(), fingerprint(spec));
    if let Ok(rendered) = serde_json::to_string(&fields::render(spec)) {
        labels.insert(FIELDS_LABEL.to_string(), rendered);
    }
    let new = NewContainer {
        spec,
        labels,
        binds,
    };
    engine.create_container(name, new).await?;
    // API < 1.44 takes one endpoint at create (the first network): the others are connected.
    if spec.network_mode() == NetworkMode::Networks {
        for network in spec.networks.keys().skip(1) {
            connect(engine, stack, name, network).await?;
        }
    }
    Ok(())
}

async fn connect(
    engine: &impl Engine,
    stack: &Stack,
    name: &str,
    network: &str,
) -> Result<(), ProvisionError> {
    let attachment = stack.containers[name]
        .networks
        .get(network)
        .cloned()
        .unwrap_or_default();
    engine.connect(name, network, &attachment).await
}

/// The container a recreate replaces, as `plan` saw it.
#[derive(Debug, Clone, Copy)]
struct Old<'a> {
    /// Still there under its name (not removed with its network).
    there: bool,
    /// An earlier run left a container aside under `NAME-netalias-old`, to be removed.
    stale_aside: bool,
    /// The old container is already aside (an earlier run stopped after the rename).
    aside: bool,
    /// The name the old container gets back if the new one fails: the new one's, or the
    /// one a predecessor served under.
    restore_as: &'a str,
}

/// Replaces `name` by a container made from the current spec. The old one is renamed aside
/// and keeps running while the new one is created and connected; it is stopped only to let
/// the new one start (its fixed addresses free), and comes back if the new one fails.
/// Nothing is removed with its volumes: `carried` ones move to the new container.
async fn recreate_container(
    engine: &impl Engine,
    stack: &Stack,
    name: &str,
    carried: &[VolumeMount],
    old: Old<'_>,
    wait: Option<u64>,
) -> Result<(), ProvisionError> {
    let aside = aside_name(name);
    if old.stale_aside {
        remove_container(engine, stack.name(), &aside, false).await?;
    }
    if old.there {
        engine.rename_container(name, &aside).await?;
    }
    let has_old = old.there || old.aside;
    // Puts the old container back under its name (`restore_as`). Whatever fails is said: the old one is
    // then left aside, where the next apply finds it and hands its volumes over.
    let restore = async |error: ProvisionError| -> ProvisionError {
        let source = Box::new(error);
        if let Err(e) = remove_container(engine, stack.name(), name, false).await {
            return ProvisionError::NotRestored {
                container: name.to_string(),
                aside: aside.clone(),
                step: format!("removing the new container failed: {e}"),
                source,
            };
        }
        if !has_old {
            return ProvisionError::Failed {
                container: name.to_string(),
                source,
            };
        }
        let back = old.restore_as;
        if let Err(e) = engine.rename_container(&aside, back).await {
            return ProvisionError::NotRestored {
                container: back.to_string(),
                aside: aside.clone(),
                step: format!("renaming it back failed: {e}"),
                source,
            };
        }
        if let Err(e) = engine.start_container(back).await {
            warn!(container = back, error = %e, "could not start the old container again");
            return ProvisionError::RestoredStopped {
                container: back.to_string(),
                start: e.to_string(),
                source,
            };
        }
        ProvisionError::RolledBack {
            container: back.to_string(),
            source,
        }
    };
    if let Err(error) = create_container(engine, stack, name, carried).await {
        return Err(restore(error).await);
    }
    if has_old {
        stop_container(engine, &aside).await;
    }
    if let Err(error) = engine.start_container(name).await {
        return Err(restore(error).await);
    }
    // Waited for (a dependent needs it healthy, or --wait): one that does not get there is
    // rolled back like one that does not start, while the old one is still there.
    if let Some(timeout) = wait
        && let Err(error) = wait_for(engine, name, Condition::Ready, timeout, &[]).await
    {
        return Err(restore(error).await);
    }
    if has_old {
        remove_container(engine, stack.name(), &aside, false).await?;
    }
    Ok(())
}

/// Waits, at most `timeout_secs`, until `name` is healthy; `Ready` takes running for enough
/// when it has no health check, `Healthy` does not. With `probe` addresses (the stack's
/// resolver), `Ready` is a DNS reply at one of them while it runs and is not unhealthy.
/// Polls the engine every 250 ms.
async fn wait_for(
    engine: &impl Engine,
    name: &str,
    condition: Condition,
    timeout_secs: u64,
    probe: &[std::net::SocketAddrV4],
) -> Result<(), ProvisionError> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(timeout_secs);
    let mut probe = probe.to_vec();
    loop {
        let health = engine.health(name).await?;
        // Healthy by its own check ends any wait; the probe only makes a fresh resolver's
        // wait shorter than its image's first check (10 s).
        if condition == Condition::Ready
            && !probe.is_empty()
            && matches!(health, Health::Starting | Health::NoCheck)
        {
            let mut reachable = false;
            for address in &probe {
                match engine.answers_dns(*address).await {
                    Some(true) => return Ok(()),
                    Some(false) => reachable = true,
                    None => {}
                }
            }
            if !reachable {
                probe.clear(); // the engine's networks are not reachable from here: health
                continue;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ProvisionError::NotHealthy {
                    container: name.to_string(),
                    state: format!(
                        "running but not answering DNS at {} after {timeout_secs} s",
                        probe
                            .iter()
                            .map(|a| a.ip().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            continue;
        }
        let state = match health {
            Health::Healthy => return Ok(()),
            Health::NoCheck if condition != Condition::Healthy => return Ok(()),
            Health::NoCheck => {
                return Err(ProvisionError::NoHealthcheck {
                    container: name.to_string(),
                });
            }
            Health::Unhealthy(output) => {
                return Err(ProvisionError::NotHealthy {
                    container: name.to_string(),
                    state: format!("unhealthy; its last check said: {output}"),
                });
            }
            Health::Down(state) => {
                return Err(ProvisionError::NotHealthy {
                    container: name.to_string(),
                    state: format!("not running ({state})"),
                });
            }
            Health::Starting => "still starting",
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(ProvisionError::NotHealthy {
                container: name.to_string(),
                state: format!(
                    "{state} after {timeout_secs} s (apply --wait-timeout SECS gives it longer)"
                ),
            });
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// Stops a container; a failure is logged, as removal forces it anyway.
async fn stop_container(engine: &impl Engine, name: &str) {
    if let Err(e) = engine.stop_container(name).await {
        warn!(container = name, error = %e, "stop failed; removing with force");
    }
}

/// Stops and removes a container. Its anonymous volumes go with it only when
/// `with_anonymous_volumes` (`destroy --volumes`); named volumes and bind mounts never do.
/// Removes a container of `stack`, checking right before that it still is one: the plan's
/// read may be minutes old (image pulls), and a name can change hands meanwhile.
async fn remove_container(
    engine: &impl Engine,
    stack: &str,
    name: &str,
    with_anonymous_volumes: bool,
) -> Result<(), ProvisionError> {
    match engine.container_owner(name).await? {
        None => return Ok(()), // gone already
        Some(owner) if owner.stack.as_deref() != Some(stack) => {
            return Err(ProvisionError::NotOwned {
                kind: "container (it changed hands since the plan was read)",
                name: name.to_string(),
                stack: stack.to_string(),
            });
        }
        Some(_) => {}
    }
    stop_container(engine, name).await;
    engine.remove_container(name, with_anonymous_volumes).await
}

/// Writes the resolv.conf of each container that resolves through the stack's netalias
/// (before any container that mounts one is created); unchanged files are left alone.
fn write_resolver_files(stack: &Stack, resolver: &Resolver) -> Result<(), ProvisionError> {
    let io = |path: &std::path::Path| {
        let path = path.display().to_string();
        move |source| ProvisionError::ResolverFile { path, source }
    };
    std::fs::create_dir_all(&resolver.dir).map_err(io(&resolver.dir))?;
    for (_, path, text) in resolver::files(stack, resolver) {
        if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
            continue;
        }
        std::fs::write(&path, text).map_err(io(&path))?;
    }
    Ok(())
}

/// Removes what the stack owns, in reverse dependency order. Volumes only with `volumes`.
/// Reads the engine once, and removes what that read found.
pub async fn destroy(
    engine: &impl Engine,
    stack: &Stack,
    volumes: bool,
    adopt: bool,
    report: &mut dyn FnMut(Report<'_>),
) -> Result<Summary, ProvisionError> {
    let mut summary = Summary::default();
    let mut anonymous: Vec<(String, String, String)> = Vec::new();
    let engine_state = read_lists(engine).await?;
    check_file(stack, &engine_state, adopt)?;
    let ours = |owner: &super::engine::Owner| owner.stack.as_deref() == Some(stack.name());
    // Declared ones in reverse dependency order; owned ones no longer declared before them.
    let mut order: Vec<String> = creation_order(stack).into_iter().rev().collect();
    for (name, state) in &engine_state.containers {
        if ours(&state.owner) && !order.contains(name) {
            order.insert(0, name.clone());
        }
    }
    for name in order {
        let Some(state) = engine_state
            .containers
            .get(&name)
            .filter(|s| ours(&s.owner))
        else {
            continue;
        };
        report(Report::Removed {
            kind: "container",
            name: &name,
        });
        remove_container(engine, stack.name(), &name, volumes).await?;
        summary.removed += 1;
        for v in state.volumes.iter().filter(|v| is_anonymous(&v.name)) {
            if volumes {
                anonymous.push((v.name.clone(), name.clone(), v.destination.clone()));
            } else {
                report(Report::AnonymousVolume {
                    volume: &v.name,
                    container: &name,
                    at: &v.destination,
                    removed: false,
                });
                summary.kept += 1;
            }
        }
    }
    // Docker's remove-with-volumes skips a volume mounted by name, and a recreate carries
    // anonymous volumes by name: each is removed here, once no container of the stack holds
    // it, so that what is listed as removed is. One still in use elsewhere is kept and said.
    anonymous.dedup_by(|a, b| a.0 == b.0);
    for (volume, container, at) in &anonymous {
        let removed = match engine.remove_volume(volume).await {
            Ok(()) => true,
            Err(e) if status_of(&e) == Some(404) => true, // went with its container
            Err(e) if status_of(&e) == Some(409) => false,
            Err(e) => return Err(e),
        };
        if removed {
            report(Report::AnonymousVolume {
                volume,
                container,
                at,
                removed,
            });
        } else {
            report(Report::VolumeInUse { name: volume });
            summary.kept += 1;
        }
    }
    // The resolv.conf files apply wrote for the stack's containers go with them: only files
    // that say they were written for this stack, and the folder only when left empty.
    if let Some(resolver) = stack.resolver() {
        for (_, path, _) in resolver::files(stack, resolver) {
            let ours = std::fs::read_to_string(&path).is_ok_and(|text| {
                text.starts_with(&format!(
                    "# Written by `netalias provision` for stack {}:",
                    stack.name()
                ))
            });
            if ours && std::fs::remove_file(&path).is_ok() {
                let shown = path.display().to_string();
                report(Report::Removed {
                    kind: "file",
                    name: &shown,
                });
            }
        }
        let _ = std::fs::remove_dir(&resolver.dir); // only if empty
    }
    for (name, state) in &engine_state.networks {
        if ours(&state.owner) {
            report(Report::Removed {
                kind: "network",
                name,
            });
            engine.remove_network(name).await?;
            summary.removed += 1;
        }
    }
    for (name, volume) in &engine_state.volumes {
        if ours(&volume.owner) {
            if volumes {
                report(Report::Removed {
                    kind: "volume",
                    name,
                });
                engine.remove_volume(name).await?;
                summary.removed += 1;
            } else {
                report(Report::VolumeKept { name });
                summary.kept += 1;
            }
        }
    }
    Ok(summary)
}
