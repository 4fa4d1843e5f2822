//! Carrying a plan out, and undoing a stack: the only code in netalias that writes to the engine.
//!
//! Order: every refusal and every image first, so that nothing is touched when something is
//! missing or forbidden; then networks and volumes, then containers in dependency order;
//! removals after. Progress is reported to the caller as it goes ([`Report`]); nothing here
//! prints. A recreate creates the new container
//! beside the old one (renamed aside) and swaps them, rolling back to the old one if the new
//! one does not start. A failure stops the run and reports what was done; running again
//! converges. Volumes, anonymous ones included, and host directories are never removed unless
//! `destroy --volumes` says so (and host directories never).

use std::collections::HashMap;

use bollard::{
    Docker,
    models::{
        ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HealthConfig, HostConfig, Ipam,
        IpamConfig, NetworkConnectRequest, NetworkCreateRequest, NetworkingConfig, RestartPolicy,
        RestartPolicyNameEnum, VolumeCreateRequest,
    },
    query_parameters::{
        CreateContainerOptionsBuilder, CreateImageOptions, ListContainersOptions,
        RemoveContainerOptions, RemoveVolumeOptions, RenameContainerOptionsBuilder,
        StartContainerOptions, StopContainerOptions,
    },
};
use futures_util::StreamExt;
use tracing::warn;

use super::{
    SPEC_LABEL,
    error::{ProvisionError, engine, is_not_found},
    plan::{
        Action, EngineState, Plan, VolumeMount, attached, check_file, fingerprint, owner_labels,
        read_engine,
    },
    resolver::{self, Resolver},
    spec::{ContainerSpec, Mount, NetworkMode, Stack},
    validate::creation_order,
};

#[derive(Debug, Default, Clone, Copy)]
pub struct ApplyOptions {
    /// Recreate networks whose settings drifted even when containers are attached.
    pub recreate: bool,
}

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
}

impl std::fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Report::Step { n, total, action } => write!(f, "[{n}/{total}] {action}"),
            Report::Pulling { image, container } => {
                write!(f, "      pulling {image} for {container}")
            }
            Report::RemovingFor { container, network } => write!(
                f,
                "      removing {container} from {network} (it is recreated after, with its volumes)"
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
            Report::VolumeKept { name } => write!(
                f,
                "  volume {name} kept (its data stays; destroy --volumes removes it)"
            ),
        }
    }
}

pub async fn apply(
    docker: &Docker,
    stack: &Stack,
    plan: &Plan,
    options: ApplyOptions,
    report: &mut dyn FnMut(Report<'_>),
) -> Result<Summary, ProvisionError> {
    // Refuse before doing anything: a drifted network in use needs --recreate, and one that
    // holds a container of someone else's cannot be recreated at all.
    let recreated: Vec<(&String, &String)> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::RecreateNetwork { name, diff } => Some((name, diff)),
            _ => None,
        })
        .collect();
    // One read of the engine for all of them: who owns what is attached.
    let engine_state = if recreated.is_empty() {
        EngineState::default()
    } else {
        read_engine(docker).await?
    };
    for (name, diff) in recreated {
        let on_it = attached(docker, name).await?;
        if !on_it.is_empty() && !options.recreate {
            return Err(ProvisionError::NetworkInUse {
                network: name.clone(),
                diff: diff.clone(),
                attached: on_it.len(),
            });
        }
        if let Some(foreign) = on_it.iter().find(|c| {
            engine_state
                .containers
                .get(*c)
                .is_none_or(|s| s.owner.stack.as_deref() != Some(stack.name()))
        }) {
            return Err(ProvisionError::NotOwned {
                kind: "container (attached to a network being recreated)",
                name: foreign.clone(),
                stack: stack.name().to_string(),
            });
        }
    }
    // Every image before anything is stopped: a failed pull must leave the old service running.
    for action in &plan.actions {
        if let Action::CreateContainer(name) | Action::RecreateContainer { name, .. } = action {
            ensure_image(docker, stack.containers[name].image.get_ref(), name, report).await?;
        }
    }
    if let Some(resolver) = stack.resolver() {
        write_resolver_files(stack, resolver)?;
    }
    let mut summary = Summary::default();
    let total = plan.actions.len();
    for (i, action) in plan.actions.iter().enumerate() {
        match action {
            Action::KeepNetwork(_)
            | Action::KeepVolume(_)
            | Action::KeepContainer(_)
            | Action::OrphanVolume(_) => {
                summary.kept += 1;
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
                create_network(docker, stack, name).await?;
                summary.created += 1;
            }
            Action::RecreateNetwork { name, .. } => {
                // Our containers on it are recreated after (carrying their volumes); they
                // must go first. All of them are ours: checked before anything was touched.
                remove_containers_on(docker, name, report).await?;
                docker
                    .remove_network(name)
                    .await
                    .map_err(engine(format!("remove network {name}")))?;
                create_network(docker, stack, name).await?;
                summary.recreated += 1;
            }
            Action::CreateVolume(name) => {
                let spec = &stack.volumes[name];
                let request = VolumeCreateRequest {
                    name: Some(name.clone()),
                    driver: Some(spec.driver.clone()),
                    driver_opts: Some(spec.options.clone().into_iter().collect()),
                    labels: Some(owner_labels(stack, &spec.labels)),
                    ..Default::default()
                };
                docker
                    .create_volume(request)
                    .await
                    .map_err(engine(format!("create volume {name}")))?;
                summary.created += 1;
            }
            Action::CreateContainer(name) => {
                create_container(docker, stack, name, &[]).await?;
                start_container(docker, name).await?;
                summary.created += 1;
            }
            Action::RecreateContainer { name, carried, .. } => {
                recreate_container(docker, stack, name, carried).await?;
                summary.recreated += 1;
            }
            Action::CompleteContainer { name, missing } => {
                let spec = &stack.containers[name];
                for network in missing {
                    connect(docker, spec, name, network).await?;
                }
                start_container(docker, name).await?;
                summary.started += 1;
            }
            Action::StartContainer(name) => {
                docker
                    .start_container(name, None::<StartContainerOptions>)
                    .await
                    .map_err(engine(format!("start container {name}")))?;
                summary.started += 1;
            }
            Action::RemoveContainer(name) => {
                remove_container(docker, name, false).await?;
                summary.removed += 1;
            }
            Action::RemoveNetwork(name) => {
                docker
                    .remove_network(name)
                    .await
                    .map_err(engine(format!("remove network {name}")))?;
                summary.removed += 1;
            }
            Action::KeepNetwork(_)
            | Action::KeepVolume(_)
            | Action::KeepContainer(_)
            | Action::OrphanVolume(_) => {}
        }
    }
    Ok(summary)
}

async fn create_network(docker: &Docker, stack: &Stack, name: &str) -> Result<(), ProvisionError> {
    let spec = &stack.networks[name];
    let config = IpamConfig {
        subnet: spec.subnet.as_ref().map(|s| s.get_ref().clone()),
        ip_range: spec.ip_range.as_ref().map(|s| s.get_ref().clone()),
        gateway: spec.gateway.as_ref().map(|s| s.get_ref().clone()),
        ..Default::default()
    };
    let ipam = (config.subnet.is_some()).then(|| Ipam {
        config: Some(vec![config]),
        ..Default::default()
    });
    let request = NetworkCreateRequest {
        name: name.to_string(),
        driver: Some(spec.driver.as_str().to_string()),
        internal: Some(spec.internal),
        attachable: Some(spec.attachable),
        ipam,
        options: Some(spec.options.clone().into_iter().collect()),
        labels: Some(owner_labels(stack, &spec.labels)),
        ..Default::default()
    };
    docker
        .create_network(request)
        .await
        .map_err(engine(format!("create network {name}")))?;
    Ok(())
}

async fn ensure_image(
    docker: &Docker,
    image: &str,
    container: &str,
    report: &mut dyn FnMut(Report<'_>),
) -> Result<(), ProvisionError> {
    match docker.inspect_image(image).await {
        Ok(_) => return Ok(()),
        Err(e) if is_not_found(&e) => {}
        Err(e) => return Err(engine(format!("inspect image {image}"))(e)),
    }
    report(Report::Pulling { image, container });
    let options = CreateImageOptions {
        from_image: Some(image.to_string()),
        ..Default::default()
    };
    let mut pull = docker.create_image(Some(options), None, None);
    while let Some(progress) = pull.next().await {
        if let Err(error) = progress {
            return Err(ProvisionError::Image {
                image: image.to_string(),
                container: container.to_string(),
                reason: error.to_string(),
            });
        }
    }
    Ok(())
}

fn endpoint(spec: &ContainerSpec, network: &str) -> EndpointSettings {
    let attachment = spec.networks.get(network).cloned().unwrap_or_default();
    EndpointSettings {
        aliases: (!attachment.aliases.is_empty()).then_some(attachment.aliases),
        ipam_config: attachment.ipv4.map(|ip| EndpointIpamConfig {
            ipv4_address: Some(ip.get_ref().clone()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn restart_policy(text: &str) -> RestartPolicyNameEnum {
    match text {
        "always" => RestartPolicyNameEnum::ALWAYS,
        "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
        "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
        _ => RestartPolicyNameEnum::NO,
    }
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
    docker: &Docker,
    stack: &Stack,
    name: &str,
    carried: &[VolumeMount],
) -> Result<(), ProvisionError> {
    let spec = &stack.containers[name];
    let image = spec.image.get_ref();
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
    let mode = spec.network_mode();
    // API < 1.44 takes one endpoint at create: the first network; the others are connected after.
    let first_network = spec.networks.keys().next().cloned();
    let network_mode = match &mode {
        NetworkMode::Host => Some("host".to_string()),
        NetworkMode::None => Some("none".to_string()),
        NetworkMode::Container(other) => Some(format!("container:{other}")),
        NetworkMode::Networks => first_network.clone(),
    };
    let mut labels = owner_labels(stack, &spec.labels);
    labels.insert(SPEC_LABEL.to_string(), fingerprint(spec));
    let body = ContainerCreateBody {
        image: Some(image.clone()),
        user: spec.user.clone(),
        cmd: (!spec.command.is_empty()).then(|| spec.command.clone()),
        env: Some(
            spec.environment
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect(),
        ),
        labels: Some(labels),
        healthcheck: spec.healthcheck.as_ref().map(|h| HealthConfig {
            test: Some(h.test.clone()),
            interval: Some((h.interval_secs * 1_000_000_000) as i64),
            timeout: Some((h.timeout_secs * 1_000_000_000) as i64),
            retries: Some(i64::from(h.retries)),
            ..Default::default()
        }),
        host_config: Some(HostConfig {
            binds: Some(binds),
            volumes_from: Some(
                spec.volumes_from
                    .iter()
                    .map(|v| v.get_ref().clone())
                    .collect(),
            ),
            network_mode,
            group_add: (!spec.group_add.is_empty()).then(|| spec.group_add.clone()),
            cap_add: (!spec.cap_add.is_empty()).then(|| spec.cap_add.clone()),
            cap_drop: (!spec.cap_drop.is_empty()).then(|| spec.cap_drop.clone()),
            dns: (!spec.dns.is_empty())
                .then(|| spec.dns.iter().map(|d| d.get_ref().clone()).collect()),
            restart_policy: spec.restart.as_ref().map(|r| RestartPolicy {
                name: Some(restart_policy(r.get_ref())),
                ..Default::default()
            }),
            ..Default::default()
        }),
        networking_config: first_network
            .as_ref()
            .filter(|_| mode == NetworkMode::Networks)
            .map(|n| NetworkingConfig {
                endpoints_config: Some(HashMap::from([(n.clone(), endpoint(spec, n))])),
            }),
        ..Default::default()
    };
    let options = CreateContainerOptionsBuilder::new().name(name).build();
    docker
        .create_container(Some(options), body)
        .await
        .map_err(engine(format!("create container {name}")))?;
    if mode == NetworkMode::Networks {
        for network in spec.networks.keys().skip(1) {
            connect(docker, spec, name, network).await?;
        }
    }
    Ok(())
}

async fn connect(
    docker: &Docker,
    spec: &ContainerSpec,
    name: &str,
    network: &str,
) -> Result<(), ProvisionError> {
    let request = NetworkConnectRequest {
        container: name.to_string(),
        endpoint_config: Some(endpoint(spec, network)),
    };
    docker
        .connect_network(network, request)
        .await
        .map_err(engine(format!("connect {name} to {network}")))
}

async fn start_container(docker: &Docker, name: &str) -> Result<(), ProvisionError> {
    docker
        .start_container(name, None::<StartContainerOptions>)
        .await
        .map_err(engine(format!("start container {name}")))
}

/// The name an old container has while its replacement is made.
fn aside_name(name: &str) -> String {
    format!("{name}-netalias-old")
}

async fn rename(docker: &Docker, from: &str, to: &str) -> Result<(), bollard::errors::Error> {
    let options = RenameContainerOptionsBuilder::new().name(to).build();
    docker.rename_container(from, options).await
}

/// Replaces `name` by a container made from the current spec. The old one is renamed aside
/// and keeps running while the new one is created and connected; it is stopped only to let
/// the new one start (its fixed addresses free), and comes back if the new one fails.
/// Nothing is removed with its volumes: `carried` ones move to the new container.
async fn recreate_container(
    docker: &Docker,
    stack: &Stack,
    name: &str,
    carried: &[VolumeMount],
) -> Result<(), ProvisionError> {
    let aside = aside_name(name);
    // An earlier run stopped half-way may have left the old container aside.
    if docker.inspect_container(&aside, None).await.is_ok() {
        remove_container(docker, &aside, false).await?;
    }
    let had_old = match rename(docker, name, &aside).await {
        Ok(()) => true,
        Err(e) if is_not_found(&e) => false,
        Err(e) => return Err(engine(format!("rename {name} aside"))(e)),
    };
    let restore = async || {
        let _ = remove_container(docker, name, false).await;
        if had_old {
            if let Err(e) = rename(docker, &aside, name).await {
                warn!(container = name, error = %e, "could not rename the old container back");
            }
            if let Err(e) = start_container(docker, name).await {
                warn!(container = name, error = %e, "could not start the old container again");
            }
        }
    };
    if let Err(error) = create_container(docker, stack, name, carried).await {
        restore().await;
        return Err(ProvisionError::RolledBack {
            container: name.to_string(),
            source: Box::new(error),
        });
    }
    if had_old {
        stop_container(docker, &aside).await;
    }
    if let Err(error) = start_container(docker, name).await {
        restore().await;
        return Err(ProvisionError::RolledBack {
            container: name.to_string(),
            source: Box::new(error),
        });
    }
    if had_old {
        remove_container(docker, &aside, false).await?;
    }
    Ok(())
}

/// Stops a container (5 s grace); a failure is logged, as removal forces it anyway.
async fn stop_container(docker: &Docker, name: &str) {
    let stop = StopContainerOptions {
        t: Some(5),
        ..Default::default()
    };
    match docker.stop_container(name, Some(stop)).await {
        Ok(()) => {}
        Err(e) if is_not_found(&e) => {}
        Err(e) => warn!(container = name, error = %e, "stop failed; removing with force"),
    }
}

/// Stops and removes a container. Its anonymous volumes go with it only when
/// `with_anonymous_volumes` (`destroy --volumes`); named volumes and bind mounts never do.
async fn remove_container(
    docker: &Docker,
    name: &str,
    with_anonymous_volumes: bool,
) -> Result<(), ProvisionError> {
    stop_container(docker, name).await;
    let options = RemoveContainerOptions {
        force: true,
        v: with_anonymous_volumes,
        ..Default::default()
    };
    match docker.remove_container(name, Some(options)).await {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(engine(format!("remove container {name}"))(e)),
    }
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

/// Whether a volume name is one the engine made up: 64 hex digits, for an image's `VOLUME`.
fn is_anonymous(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Removes the containers on `network` (checked to be the stack's before anything started),
/// keeping their volumes for the recreate that follows.
async fn remove_containers_on(
    docker: &Docker,
    network: &str,
    report: &mut dyn FnMut(Report<'_>),
) -> Result<(), ProvisionError> {
    for name in attached(docker, network).await? {
        report(Report::RemovingFor {
            container: &name,
            network,
        });
        remove_container(docker, &name, false).await?;
    }
    Ok(())
}

/// Removes what the stack owns, in reverse dependency order. Volumes only with `volumes`.
pub async fn destroy(
    docker: &Docker,
    stack: &Stack,
    volumes: bool,
    adopt: bool,
    report: &mut dyn FnMut(Report<'_>),
) -> Result<Summary, ProvisionError> {
    let mut summary = Summary::default();
    let owned = ListContainersOptions {
        all: true,
        filters: Some(HashMap::from([(
            "label".to_string(),
            vec![format!("{}={}", super::STACK_LABEL, stack.name())],
        )])),
        ..Default::default()
    };
    let engine_state = read_engine(docker).await?;
    check_file(stack, &engine_state, adopt)?;
    let mut order: Vec<String> = creation_order(stack).into_iter().rev().collect();
    for c in docker
        .list_containers(Some(owned))
        .await
        .map_err(engine("list containers"))?
    {
        if let Some(name) = c.names.and_then(|n| n.into_iter().next()) {
            let name = name.trim_start_matches('/').to_string();
            if !order.contains(&name) {
                order.insert(0, name);
            }
        }
    }
    for name in order {
        let Some(state) = engine_state
            .containers
            .get(&name)
            .filter(|s| s.owner.stack.as_deref() == Some(stack.name()))
        else {
            continue;
        };
        report(Report::Removed {
            kind: "container",
            name: &name,
        });
        remove_container(docker, &name, volumes).await?;
        summary.removed += 1;
        for v in state.volumes.iter().filter(|v| is_anonymous(&v.name)) {
            report(Report::AnonymousVolume {
                volume: &v.name,
                container: &name,
                at: &v.destination,
                removed: volumes,
            });
            if !volumes {
                summary.kept += 1;
            }
        }
    }
    for (name, state) in &engine_state.networks {
        if state.owner.stack.as_deref() == Some(stack.name()) {
            report(Report::Removed {
                kind: "network",
                name,
            });
            docker
                .remove_network(name)
                .await
                .map_err(engine(format!("remove network {name}")))?;
            summary.removed += 1;
        }
    }
    for (name, owner) in &engine_state.volumes {
        if owner.stack.as_deref() == Some(stack.name()) {
            if volumes {
                report(Report::Removed {
                    kind: "volume",
                    name,
                });
                docker
                    .remove_volume(name, None::<RemoveVolumeOptions>)
                    .await
                    .map_err(engine(format!("remove volume {name}")))?;
                summary.removed += 1;
            } else {
                report(Report::VolumeKept { name });
                summary.kept += 1;
            }
        }
    }
    Ok(summary)
}
