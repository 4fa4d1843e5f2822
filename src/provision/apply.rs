//! Carrying a plan out, and undoing a stack: the only code in netalias that writes to the engine.
//!
//! Order: networks and volumes, then containers in dependency order; removals after. Progress
//! goes to stdout for people. A failure stops the run and reports what was done; running again
//! converges. Volumes and host directories are never removed unless `destroy --volumes` says so
//! (and host directories never).

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
        RemoveContainerOptions, RemoveVolumeOptions, StartContainerOptions, StopContainerOptions,
    },
};
use futures_util::StreamExt;
use tracing::warn;

use super::{
    SPEC_LABEL,
    error::{ProvisionError, engine, is_not_found},
    plan::{Action, Plan, attached, fingerprint, owner_labels, read_engine},
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

pub async fn apply(
    docker: &Docker,
    stack: &Stack,
    plan: &Plan,
    options: ApplyOptions,
) -> Result<Summary, ProvisionError> {
    // Refuse before doing anything: a drifted network in use needs --recreate.
    for action in &plan.actions {
        if let Action::RecreateNetwork { name, diff } = action {
            let in_use = attached(docker, name).await?;
            if in_use > 0 && !options.recreate {
                return Err(ProvisionError::NetworkInUse {
                    network: name.clone(),
                    diff: diff.clone(),
                    attached: in_use,
                });
            }
        }
    }
    let mut summary = Summary::default();
    let total = plan.actions.len();
    for (i, action) in plan.actions.iter().enumerate() {
        let step = format!("[{}/{total}]", i + 1);
        match action {
            Action::KeepNetwork(_)
            | Action::KeepVolume(_)
            | Action::KeepContainer(_)
            | Action::OrphanVolume(_) => {
                summary.kept += 1;
                continue;
            }
            _ => println!("{step} {action}"),
        }
        match action {
            Action::CreateNetwork(name) => {
                create_network(docker, stack, name).await?;
                summary.created += 1;
            }
            Action::RecreateNetwork { name, .. } => {
                // Our containers on it are recreated after; disconnect them first.
                remove_owned_containers_on(docker, stack, name).await?;
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
                create_container(docker, stack, name).await?;
                summary.created += 1;
            }
            Action::RecreateContainer { name, .. } => {
                remove_container(docker, name).await?;
                create_container(docker, stack, name).await?;
                summary.recreated += 1;
            }
            Action::StartContainer(name) => {
                docker
                    .start_container(name, None::<StartContainerOptions>)
                    .await
                    .map_err(engine(format!("start container {name}")))?;
                summary.started += 1;
            }
            Action::RemoveContainer(name) => {
                remove_container(docker, name).await?;
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

async fn ensure_image(docker: &Docker, image: &str, container: &str) -> Result<(), ProvisionError> {
    match docker.inspect_image(image).await {
        Ok(_) => return Ok(()),
        Err(e) if is_not_found(&e) => {}
        Err(e) => return Err(engine(format!("inspect image {image}"))(e)),
    }
    println!("      pulling {image} for {container}");
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

async fn create_container(
    docker: &Docker,
    stack: &Stack,
    name: &str,
) -> Result<(), ProvisionError> {
    let spec = &stack.containers[name];
    let image = spec.image.get_ref();
    ensure_image(docker, image, name).await?;
    let mounts = spec.parsed_mounts();
    if spec.create_host_dirs {
        for mount in &mounts {
            if let Mount::Bind { source, .. } = mount
                && !source.exists()
            {
                std::fs::create_dir_all(source).map_err(|source_err| ProvisionError::HostDir {
                    path: source.display().to_string(),
                    container: name.to_string(),
                    source: source_err,
                })?;
            }
        }
    }
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
            binds: Some(mounts.iter().map(Mount::to_bind).collect()),
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
            let request = NetworkConnectRequest {
                container: name.to_string(),
                endpoint_config: Some(endpoint(spec, network)),
            };
            docker
                .connect_network(network, request)
                .await
                .map_err(engine(format!("connect {name} to {network}")))?;
        }
    }
    docker
        .start_container(name, None::<StartContainerOptions>)
        .await
        .map_err(engine(format!("start container {name}")))?;
    Ok(())
}

async fn remove_container(docker: &Docker, name: &str) -> Result<(), ProvisionError> {
    let stop = StopContainerOptions {
        t: Some(5),
        ..Default::default()
    };
    match docker.stop_container(name, Some(stop)).await {
        Ok(()) => {}
        Err(e) if is_not_found(&e) => return Ok(()),
        Err(e) => warn!(container = name, error = %e, "stop failed; removing with force"),
    }
    // Anonymous volumes go with it (v); named volumes and bind mounts never do.
    let options = RemoveContainerOptions {
        force: true,
        v: true,
        ..Default::default()
    };
    match docker.remove_container(name, Some(options)).await {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(engine(format!("remove container {name}"))(e)),
    }
}

async fn remove_owned_containers_on(
    docker: &Docker,
    stack: &Stack,
    network: &str,
) -> Result<(), ProvisionError> {
    let engine_state = read_engine(docker).await?;
    for (name, state) in &engine_state.containers {
        if state.networks.iter().any(|n| n == network) {
            if state.stack.as_deref() != Some(stack.name()) {
                return Err(ProvisionError::NotOwned {
                    kind: "container (attached to a network being recreated)",
                    name: name.clone(),
                    stack: stack.name().to_string(),
                });
            }
            println!("      removing {name} from {network} (it is recreated after)");
            remove_container(docker, name).await?;
        }
    }
    Ok(())
}

/// Removes what the stack owns, in reverse dependency order. Volumes only with `volumes`.
pub async fn destroy(
    docker: &Docker,
    stack: &Stack,
    volumes: bool,
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
        let owned = engine_state
            .containers
            .get(&name)
            .is_some_and(|s| s.stack.as_deref() == Some(stack.name()));
        if owned {
            println!("- container {name}");
            remove_container(docker, &name).await?;
            summary.removed += 1;
        }
    }
    for (name, state) in &engine_state.networks {
        if state.stack.as_deref() == Some(stack.name()) {
            println!("- network {name}");
            docker
                .remove_network(name)
                .await
                .map_err(engine(format!("remove network {name}")))?;
            summary.removed += 1;
        }
    }
    for (name, owner) in &engine_state.volumes {
        if owner.as_deref() == Some(stack.name()) {
            if volumes {
                println!("- volume {name}");
                docker
                    .remove_volume(name, None::<RemoveVolumeOptions>)
                    .await
                    .map_err(engine(format!("remove volume {name}")))?;
                summary.removed += 1;
            } else {
                println!("  volume {name} kept (its data stays; destroy --volumes removes it)");
                summary.kept += 1;
            }
        }
    }
    Ok(summary)
}
