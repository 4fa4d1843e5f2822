//! The engine as provisioning sees it: what it reports (`EngineState` and its parts) and the
//! operations `plan` reads through and `apply` writes through ([`Engine`]). [`BollardEngine`]
//! puts the Docker engine behind it; it holds every bollard call of provisioning, and unit tests
//! put an in-memory fake in its place.
//!
//! It translates, and never decides: which calls are made, and in which order, is `plan`'s and
//! `apply`'s. It imports neither (they import it).

use std::{
    collections::{BTreeMap, HashMap},
    future::Future,
    net::SocketAddrV4,
};

use bollard::{
    Docker,
    models::{
        ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HealthConfig, HealthStatusEnum,
        HostConfig, HostConfigLogConfig, Ipam, IpamConfig, NetworkConnectRequest,
        NetworkCreateRequest, NetworkDisconnectRequest, NetworkingConfig, PortBinding, PortMap,
        RestartPolicy, RestartPolicyNameEnum, VolumeCreateRequest,
    },
    query_parameters::{
        CreateContainerOptionsBuilder, CreateImageOptions, InspectContainerOptions,
        InspectNetworkOptions, ListContainersOptions, ListNetworksOptions, ListVolumesOptions,
        RemoveContainerOptions, RemoveVolumeOptions, RenameContainerOptionsBuilder,
        StartContainerOptions, StopContainerOptions,
    },
};
use futures_util::StreamExt;

use super::{
    FIELDS_LABEL, FILE_LABEL, REPLICA_LABEL, SPEC_LABEL, STACK_LABEL,
    error::{ProvisionError, engine, is_not_found},
    fields::{PortSpec, parse_memory, parse_tmpfs},
    spec::{Attachment, ContainerSpec, NetworkMode, NetworkSpec, VolumeSpec},
};

/// What the engine has, as far as provisioning cares: read once (`plan::read_engine`), and
/// everything `plan` decides is decided from it.
#[derive(Debug, Default, Clone)]
pub struct EngineState {
    pub networks: BTreeMap<String, NetworkState>,
    pub volumes: BTreeMap<String, VolumeState>,
    pub containers: BTreeMap<String, ContainerState>,
    /// The ID of each of the stack's images the engine has, by the name the spec gives; a
    /// missing one is absent (it is pulled before anything changes).
    pub image_ids: BTreeMap<String, String>,
    /// The registry digests each of those was pulled by (`RepoDigests`, `NAME@sha256:…`;
    /// empty for one built or loaded here).
    pub image_digests: BTreeMap<String, Vec<String>>,
    /// What the registry says of each image a pull would fetch (a missing one, or a
    /// `pull = "always"` one not pulled yet), asked without pulling.
    pub registry: BTreeMap<String, RegistryImage>,
}

impl EngineState {
    /// Whether the engine has `image` and it is what its registry said a pull brings now
    /// (false when the registry was not asked or gave no digest).
    pub fn is_current(&self, image: &str) -> bool {
        match (self.image_digests.get(image), self.registry.get(image)) {
            (Some(here), Some(registry)) => registry.is_here(here),
            _ => false,
        }
    }
}

/// An image the engine has: its ID, and the registry digests it was pulled by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalImage {
    pub id: String,
    /// `RepoDigests`: `NAME@sha256:…`, one per repository it was pulled from; none for an
    /// image built or loaded here.
    pub repo_digests: Vec<String>,
}

/// What an image's registry says of its name, asked through the engine without pulling
/// (`GET /distribution/NAME/json`, what `docker manifest inspect` reads): so `plan` can say
/// what a pull would bring, and refuse a name no registry has before anything changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryImage {
    /// It has the name: the digest of the manifest a pull brings now.
    Digest(String),
    /// It has the name as a multi-platform index: the index's digest (what the engine
    /// records in `RepoDigests` on a pull). The index moves when any platform's image does,
    /// so a new one says this platform's image may have changed, not that it did.
    Index(String),
    /// It answered that it has no such name, or that this engine may not pull it: a pull
    /// would fail.
    Unknown(String),
    /// It could not be asked (no route, no answer in time, TLS): nothing is known either way.
    Unreachable(String),
}

impl RegistryImage {
    /// The digest a pull brings (a manifest's or an index's), when the registry gave one.
    pub fn digest(&self) -> Option<&str> {
        match self {
            RegistryImage::Digest(digest) | RegistryImage::Index(digest) => Some(digest),
            RegistryImage::Unknown(_) | RegistryImage::Unreachable(_) => None,
        }
    }

    /// Whether an image pulled by `repo_digests` is what the registry has now.
    pub fn is_here(&self, repo_digests: &[String]) -> bool {
        // The digest names the content whatever repository it came through.
        self.digest().is_some_and(|digest| {
            repo_digests
                .iter()
                .any(|d| d.rsplit_once('@').is_some_and(|(_, d)| d == digest))
        })
    }
}

/// How long the registry may take to say what an image is: past this, the plan says it
/// could not be asked, and apply's pull (the first thing apply does) decides.
const REGISTRY_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// Whose a resource is: the stack named by its label, and the stack file that created it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Owner {
    pub stack: Option<String>,
    pub file: Option<String>,
}

impl Owner {
    pub fn of(labels: Option<&HashMap<String, String>>) -> Owner {
        Owner {
            stack: labels.and_then(|l| l.get(STACK_LABEL).cloned()),
            file: labels.and_then(|l| l.get(FILE_LABEL).cloned()),
        }
    }
}

/// A volume as the engine reports it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct VolumeState {
    pub owner: Owner,
    pub driver: String,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Default, Clone)]
pub struct NetworkState {
    pub owner: Owner,
    pub driver: String,
    pub subnet: Option<String>,
    pub ip_range: Option<String>,
    pub gateway: Option<String>,
    pub internal: bool,
    pub attachable: bool,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// Addresses kept out of IPAM, by host name (`--aux-address`).
    pub aux_addresses: BTreeMap<String, String>,
    /// The IPv6 subnet, when IPv6 is on.
    pub ipv6_subnet: Option<String>,
    /// The containers with an endpoint on it (running ones), by name. Read only for the
    /// networks the stack declares (the only ones it may recreate); empty for the others.
    pub attached: Vec<String>,
}

#[derive(Debug, Default, Clone)]
pub struct ContainerState {
    pub owner: Owner,
    pub spec: Option<String>,
    /// Its fields as they were rendered at create (`fields::render`), when it has them.
    pub fields: Option<BTreeMap<String, String>>,
    /// The image it runs (`sha256:...`): a tag that now names another image recreates it.
    pub image_id: Option<String>,
    pub running: bool,
    pub networks: Vec<String>,
    /// Volumes mounted in it (named, or anonymous ones the image's `VOLUME` made).
    pub volumes: Vec<VolumeMount>,
    /// The declared container it is a replica of (`replicas = N`; its `REPLICA_LABEL`).
    pub replica_of: Option<String>,
}

/// A container's health as the engine reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Running, with no health check (none in its spec, none in its image).
    NoCheck,
    Starting,
    Healthy,
    /// Its checks fail; the last one's output.
    Unhealthy(String),
    /// Not running: its state and exit code.
    Down(String),
}

/// A volume mounted in a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeMount {
    pub name: String,
    pub destination: String,
}

/// A container to create: its spec, and what `apply` worked out for it (labels with the
/// fingerprint, binds with the carried volumes). Created on its first network only.
#[derive(Debug)]
pub struct NewContainer<'a> {
    pub spec: &'a ContainerSpec,
    pub labels: HashMap<String, String>,
    pub binds: Vec<String>,
}

/// The operations provisioning needs. Removing or stopping what is already gone is not an
/// error (a run stopped half-way is continued by the next); anything else that fails is.
/// Futures are `Send` so that an engine can be driven from any runtime.
pub trait Engine {
    /// Every network, without `attached` (see [`Engine::attached`]).
    fn networks(
        &self,
    ) -> impl Future<Output = Result<Vec<(String, NetworkState)>, ProvisionError>> + Send;
    /// The names of the containers with an endpoint on `network`.
    fn attached(
        &self,
        network: &str,
    ) -> impl Future<Output = Result<Vec<String>, ProvisionError>> + Send;
    fn volumes(
        &self,
    ) -> impl Future<Output = Result<Vec<(String, VolumeState)>, ProvisionError>> + Send;
    /// Every container, running or not.
    fn containers(
        &self,
    ) -> impl Future<Output = Result<Vec<(String, ContainerState)>, ProvisionError>> + Send;
    /// Whether a DNS server answers at `address`, asked from this machine; None when this
    /// machine cannot reach the engine's networks (the engine is elsewhere).
    fn answers_dns(&self, address: SocketAddrV4) -> impl Future<Output = Option<bool>> + Send;
    /// Whose a container is now (None: there is no such container).
    fn container_owner(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<Owner>, ProvisionError>> + Send;
    /// A container's health (`depends_on = "healthy"`, `apply --wait`).
    fn health(&self, name: &str) -> impl Future<Output = Result<Health, ProvisionError>> + Send;
    /// The image as the engine has it, or None when it does not have it.
    fn image(
        &self,
        image: &str,
    ) -> impl Future<Output = Result<Option<LocalImage>, ProvisionError>> + Send;
    /// What the image's registry says of `image` now, without pulling it.
    fn registry_image(&self, image: &str) -> impl Future<Output = RegistryImage> + Send;

    /// Pulls `image` for `container` (named in the error).
    fn pull_image(
        &self,
        image: &str,
        container: &str,
    ) -> impl Future<Output = Result<(), ProvisionError>> + Send;
    fn create_network(
        &self,
        name: &str,
        spec: &NetworkSpec,
        labels: HashMap<String, String>,
    ) -> impl Future<Output = Result<(), ProvisionError>> + Send;
    fn remove_network(&self, name: &str)
    -> impl Future<Output = Result<(), ProvisionError>> + Send;
    fn create_volume(
        &self,
        name: &str,
        spec: &VolumeSpec,
        labels: HashMap<String, String>,
    ) -> impl Future<Output = Result<(), ProvisionError>> + Send;
    fn remove_volume(&self, name: &str) -> impl Future<Output = Result<(), ProvisionError>> + Send;
    /// Creates `name` (not started), on its first declared network when it has networks.
    fn create_container(
        &self,
        name: &str,
        container: NewContainer<'_>,
    ) -> impl Future<Output = Result<(), ProvisionError>> + Send;
    /// Takes `container` off `network` (forced: it may be stopped).
    fn disconnect(
        &self,
        container: &str,
        network: &str,
    ) -> impl Future<Output = Result<(), ProvisionError>> + Send;
    /// Connects `container` to `network` with its aliases and fixed address.
    fn connect(
        &self,
        container: &str,
        network: &str,
        attachment: &Attachment,
    ) -> impl Future<Output = Result<(), ProvisionError>> + Send;
    fn start_container(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<(), ProvisionError>> + Send;
    /// Stops with a 5 s grace.
    fn stop_container(&self, name: &str)
    -> impl Future<Output = Result<(), ProvisionError>> + Send;
    /// Removes (forced). Its anonymous volumes go with it only when `with_anonymous_volumes`;
    /// named volumes and bind mounts never do.
    fn remove_container(
        &self,
        name: &str,
        with_anonymous_volumes: bool,
    ) -> impl Future<Output = Result<(), ProvisionError>> + Send;
    fn rename_container(
        &self,
        from: &str,
        to: &str,
    ) -> impl Future<Output = Result<(), ProvisionError>> + Send;
}

/// The Docker engine, through bollard.
#[derive(Debug, Clone)]
pub struct BollardEngine {
    docker: Docker,
    /// The engine runs on this machine (its socket, or TCP to loopback): its bridge
    /// networks' addresses are reachable from here.
    local: bool,
}

impl BollardEngine {
    /// Connects to `host` (else DOCKER_HOST or the local socket) and agrees on an API version.
    pub async fn connect(host: Option<&str>) -> Result<BollardEngine, ProvisionError> {
        let docker = match host {
            Some(host) => Docker::connect_with_host(host),
            None => Docker::connect_with_defaults(),
        }
        .map_err(ProvisionError::Connect)?
        .negotiate_version()
        .await
        .map_err(ProvisionError::Connect)?;
        Ok(BollardEngine {
            docker,
            local: host
                .map(str::to_string)
                .or_else(|| std::env::var("DOCKER_HOST").ok())
                .as_deref()
                .is_none_or(is_local_host),
        })
    }
}

/// Sorts the engine's answer to a registry question: the registry said no (a pull would
/// fail), or it could not be asked (a pull might still work later). dockerd passes the
/// registry's errcodes on as 401 (UNAUTHORIZED: Docker Hub's answer for a name that does not
/// exist or is private), 403 (DENIED) and 404 (MANIFEST_UNKNOWN, NAME_UNKNOWN). A bare 404
/// without a registry's words is the engine's own (an engine without `/distribution`, as
/// podman's compat API): nothing is known then.
fn registry_error(error: bollard::errors::Error) -> RegistryImage {
    match error {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        } => {
            let lower = message.to_ascii_lowercase();
            let registry_said_no = [
                "manifest unknown",
                "name unknown",
                "manifest_unknown",
                "name_unknown",
                "denied",
                "unauthorized",
                "repository does not exist",
            ]
            .iter()
            .any(|w| lower.contains(w));
            let said_no = matches!(status_code, 401 | 403) || registry_said_no;
            let message = message.trim().replace('\n', "; ");
            if said_no {
                RegistryImage::Unknown(message)
            } else {
                RegistryImage::Unreachable(message)
            }
        }
        other => RegistryImage::Unreachable(other.to_string()),
    }
}

/// Whether a `--docker-host` address is this machine: a unix socket, or TCP to loopback.
pub fn is_local_host(host: &str) -> bool {
    if host.starts_with("unix://") || host.starts_with('/') {
        return true;
    }
    let rest = host
        .split_once("://")
        .map_or(host, |(_, rest)| rest)
        .trim_end_matches('/');
    let name = rest.rsplit_once(':').map_or(rest, |(name, _)| name);
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// One DNS question (`.` NS, no recursion) to `address`: whether any reply comes within
/// 1.5 s. A reply of any kind means the server reads and answers its socket. (netalias holds
/// a first question from an asker it does not know yet up to 300 ms while it looks the
/// asker up in the engine, and this machine's bridge address is such an asker.)
async fn dns_answers(address: SocketAddrV4) -> bool {
    // Header (ID 0x6e61, no flags, one question), root name, type NS, class IN.
    const QUERY: [u8; 17] = [0x6e, 0x61, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1];
    let Ok(socket) = tokio::net::UdpSocket::bind("0.0.0.0:0").await else {
        return false;
    };
    if socket.send_to(&QUERY, address).await.is_err() {
        return false;
    }
    let mut reply = [0u8; 512];
    let wait = std::time::Duration::from_millis(1500);
    matches!(
        tokio::time::timeout(wait, socket.recv_from(&mut reply)).await,
        Ok(Ok((n, from))) if n >= 12 && from == std::net::SocketAddr::V4(address) && reply[..2] == QUERY[..2]
    )
}

fn endpoint(attachment: &Attachment) -> EndpointSettings {
    EndpointSettings {
        aliases: (!attachment.aliases.is_empty()).then(|| attachment.aliases.clone()),
        ipam_config: attachment.ipv4.as_ref().map(|ip| EndpointIpamConfig {
            ipv4_address: Some(ip.get_ref().clone()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn restart_policy(text: &str) -> RestartPolicy {
    let (name, retries) = super::spec::parse_restart(text).unwrap_or(("no", None));
    let name = match name {
        "always" => RestartPolicyNameEnum::ALWAYS,
        "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
        "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
        _ => RestartPolicyNameEnum::NO,
    };
    RestartPolicy {
        name: Some(name),
        maximum_retry_count: retries,
    }
}

/// `ports` as the engine takes them: the exposed ports, and their bindings on the host.
fn port_bindings(spec: &ContainerSpec) -> (Vec<String>, PortMap) {
    let mut exposed = Vec::new();
    let mut map: PortMap = HashMap::new();
    for entry in &spec.ports {
        for p in PortSpec::parse(entry.get_ref()).unwrap_or_default() {
            let key = p.key();
            if !exposed.contains(&key) {
                exposed.push(key.clone());
            }
            let binding = PortBinding {
                host_ip: p.host_ip.clone(),
                host_port: Some(p.host_port.map(|h| h.to_string()).unwrap_or_default()),
            };
            map.entry(key)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(binding);
        }
    }
    (exposed, map)
}

/// A 404 is "already gone": fine for a stop or a remove.
fn gone_is_done(
    result: Result<(), bollard::errors::Error>,
    what: String,
) -> Result<(), ProvisionError> {
    match result {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(engine(what)(e)),
    }
}

impl Engine for BollardEngine {
    async fn networks(&self) -> Result<Vec<(String, NetworkState)>, ProvisionError> {
        let mut networks = Vec::new();
        for n in self
            .docker
            .list_networks(None::<ListNetworksOptions>)
            .await
            .map_err(engine("list networks"))?
        {
            let Some(name) = n.name else { continue };
            let configs = n.ipam.and_then(|i| i.config).unwrap_or_default();
            let is_v6 = |c: &IpamConfig| c.subnet.as_deref().is_some_and(|s| s.contains(':'));
            let config = configs
                .iter()
                .find(|c| !is_v6(c))
                .cloned()
                .unwrap_or_default();
            let ipv6_subnet = configs
                .iter()
                .find(|c| is_v6(c))
                .and_then(|c| c.subnet.clone());
            networks.push((
                name,
                NetworkState {
                    owner: Owner::of(n.labels.as_ref()),
                    driver: n.driver.unwrap_or_default(),
                    subnet: config.subnet,
                    ip_range: config.ip_range,
                    gateway: config.gateway,
                    internal: n.internal == Some(true),
                    attachable: n.attachable == Some(true),
                    options: n.options.unwrap_or_default().into_iter().collect(),
                    labels: n.labels.unwrap_or_default().into_iter().collect(),
                    aux_addresses: config
                        .auxiliary_addresses
                        .unwrap_or_default()
                        .into_iter()
                        .collect(),
                    ipv6_subnet,
                    attached: Vec::new(),
                },
            ));
        }
        Ok(networks)
    }

    async fn attached(&self, network: &str) -> Result<Vec<String>, ProvisionError> {
        let n = self
            .docker
            .inspect_network(network, None::<InspectNetworkOptions>)
            .await
            .map_err(engine(format!("inspect network {network}")))?;
        Ok(n.containers
            .unwrap_or_default()
            .into_values()
            .filter_map(|c| c.name)
            .collect())
    }

    async fn volumes(&self) -> Result<Vec<(String, VolumeState)>, ProvisionError> {
        let volumes = self
            .docker
            .list_volumes(None::<ListVolumesOptions>)
            .await
            .map_err(engine("list volumes"))?;
        Ok(volumes
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| {
                let state = VolumeState {
                    owner: Owner::of(Some(&v.labels)),
                    driver: v.driver,
                    options: v.options.into_iter().collect(),
                    labels: v.labels.into_iter().collect(),
                };
                (v.name, state)
            })
            .collect())
    }

    async fn containers(&self) -> Result<Vec<(String, ContainerState)>, ProvisionError> {
        let all = ListContainersOptions {
            all: true,
            ..Default::default()
        };
        let mut containers = Vec::new();
        for c in self
            .docker
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
            containers.push((
                name.trim_start_matches('/').to_string(),
                ContainerState {
                    owner: Owner::of(Some(&labels)),
                    spec: labels.get(SPEC_LABEL).cloned(),
                    fields: labels
                        .get(FIELDS_LABEL)
                        .and_then(|f| serde_json::from_str(f).ok()),
                    image_id: c.image_id,
                    running: c.state.map(|s| s.to_string()) == Some("running".into()),
                    networks,
                    volumes,
                    replica_of: labels.get(REPLICA_LABEL).cloned(),
                },
            ));
        }
        Ok(containers)
    }

    async fn answers_dns(&self, address: SocketAddrV4) -> Option<bool> {
        if !self.local {
            return None;
        }
        Some(dns_answers(address).await)
    }

    async fn container_owner(&self, name: &str) -> Result<Option<Owner>, ProvisionError> {
        match self
            .docker
            .inspect_container(name, None::<InspectContainerOptions>)
            .await
        {
            Ok(c) => Ok(Some(Owner::of(c.config.and_then(|c| c.labels).as_ref()))),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(engine(format!("inspect container {name}"))(e)),
        }
    }

    async fn health(&self, name: &str) -> Result<Health, ProvisionError> {
        let c = self
            .docker
            .inspect_container(name, None::<InspectContainerOptions>)
            .await
            .map_err(engine(format!("inspect container {name}")))?;
        let state = c.state.unwrap_or_default();
        if state.running != Some(true) || state.restarting == Some(true) {
            return Ok(Health::Down(format!(
                "{}, exit code {}",
                state.status.map(|s| s.to_string()).unwrap_or_default(),
                state.exit_code.unwrap_or_default()
            )));
        }
        let health = state.health.unwrap_or_default();
        Ok(match health.status {
            Some(HealthStatusEnum::STARTING) => Health::Starting,
            Some(HealthStatusEnum::HEALTHY) => Health::Healthy,
            Some(HealthStatusEnum::UNHEALTHY) => Health::Unhealthy(
                health
                    .log
                    .and_then(|l| l.into_iter().last())
                    .and_then(|r| r.output)
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
            ),
            _ => Health::NoCheck,
        })
    }

    async fn image(&self, image: &str) -> Result<Option<LocalImage>, ProvisionError> {
        match self.docker.inspect_image(image).await {
            Ok(i) => Ok(Some(LocalImage {
                id: i.id.unwrap_or_default(),
                repo_digests: i.repo_digests.unwrap_or_default(),
            })),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(engine(format!("inspect image {image}"))(e)),
        }
    }

    async fn registry_image(&self, image: &str) -> RegistryImage {
        let ask = self.docker.inspect_registry_image(image, None);
        match tokio::time::timeout(REGISTRY_WAIT, ask).await {
            Ok(Ok(found)) => {
                let index = found
                    .descriptor
                    .media_type
                    .as_deref()
                    .is_some_and(|t| t.contains("manifest.list") || t.contains("image.index"));
                match found.descriptor.digest {
                    Some(digest) if index => RegistryImage::Index(digest),
                    Some(digest) => RegistryImage::Digest(digest),
                    None => RegistryImage::Unreachable("the registry gave no digest".into()),
                }
            }
            Ok(Err(e)) => registry_error(e),
            Err(_) => RegistryImage::Unreachable(format!(
                "no answer within {} s",
                REGISTRY_WAIT.as_secs()
            )),
        }
    }

    async fn pull_image(&self, image: &str, container: &str) -> Result<(), ProvisionError> {
        let options = CreateImageOptions {
            from_image: Some(image.to_string()),
            ..Default::default()
        };
        let mut pull = self.docker.create_image(Some(options), None, None);
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

    async fn create_network(
        &self,
        name: &str,
        spec: &NetworkSpec,
        labels: HashMap<String, String>,
    ) -> Result<(), ProvisionError> {
        let config = IpamConfig {
            subnet: spec.subnet.as_ref().map(|s| s.get_ref().clone()),
            ip_range: spec.ip_range.as_ref().map(|s| s.get_ref().clone()),
            gateway: spec.gateway.as_ref().map(|s| s.get_ref().clone()),
            auxiliary_addresses: (!spec.aux_addresses.is_empty()).then(|| {
                spec.aux_addresses
                    .iter()
                    .map(|(k, v)| (k.clone(), v.get_ref().clone()))
                    .collect()
            }),
        };
        let mut configs: Vec<IpamConfig> = config
            .subnet
            .is_some()
            .then_some(config)
            .into_iter()
            .collect();
        if let Some(v6) = &spec.ipv6_subnet {
            configs.push(IpamConfig {
                subnet: Some(v6.get_ref().clone()),
                ..Default::default()
            });
        }
        let ipam = (!configs.is_empty()).then(|| Ipam {
            config: Some(configs),
            ..Default::default()
        });
        let request = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some(spec.driver.as_str().to_string()),
            internal: Some(spec.internal),
            attachable: Some(spec.attachable),
            enable_ipv6: spec.ipv6_subnet.is_some().then_some(true),
            ipam,
            options: Some(spec.options.clone().into_iter().collect()),
            labels: Some(labels),
            ..Default::default()
        };
        self.docker
            .create_network(request)
            .await
            .map_err(engine(format!("create network {name}")))?;
        Ok(())
    }

    async fn remove_network(&self, name: &str) -> Result<(), ProvisionError> {
        self.docker
            .remove_network(name)
            .await
            .map_err(engine(format!("remove network {name}")))
    }

    async fn create_volume(
        &self,
        name: &str,
        spec: &VolumeSpec,
        labels: HashMap<String, String>,
    ) -> Result<(), ProvisionError> {
        let request = VolumeCreateRequest {
            name: Some(name.to_string()),
            driver: Some(spec.driver.clone()),
            driver_opts: Some(spec.options.clone().into_iter().collect()),
            labels: Some(labels),
            ..Default::default()
        };
        self.docker
            .create_volume(request)
            .await
            .map_err(engine(format!("create volume {name}")))?;
        Ok(())
    }

    async fn remove_volume(&self, name: &str) -> Result<(), ProvisionError> {
        self.docker
            .remove_volume(name, None::<RemoveVolumeOptions>)
            .await
            .map_err(engine(format!("remove volume {name}")))
    }

    async fn create_container(
        &self,
        name: &str,
        container: NewContainer<'_>,
    ) -> Result<(), ProvisionError> {
        let NewContainer {
            spec,
            labels,
            binds,
        } = container;
        let mode = spec.network_mode();
        let (exposed, ports) = port_bindings(spec);
        // API < 1.44 takes one endpoint at create: the first network; `apply` connects the others.
        let first_network = spec.networks.iter().next();
        let network_mode = match &mode {
            NetworkMode::Host => Some("host".to_string()),
            NetworkMode::None => Some("none".to_string()),
            NetworkMode::Container(other) => Some(format!("container:{other}")),
            NetworkMode::Networks => first_network.map(|(n, _)| n.clone()),
        };
        let body = ContainerCreateBody {
            image: Some(spec.image.get_ref().clone()),
            user: spec.user.clone(),
            cmd: (!spec.command.is_empty()).then(|| spec.command.clone()),
            env: Some(
                spec.environment_all()
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect(),
            ),
            entrypoint: spec.entrypoint.clone(),
            working_dir: spec.working_dir.as_ref().map(|w| w.get_ref().clone()),
            exposed_ports: (!exposed.is_empty()).then_some(exposed),
            labels: Some(labels),
            healthcheck: spec.healthcheck.as_ref().map(|h| HealthConfig {
                test: Some(h.test.clone()),
                interval: Some((h.interval_secs * 1_000_000_000) as i64),
                timeout: Some((h.timeout_secs * 1_000_000_000) as i64),
                retries: Some(i64::from(h.retries)),
                start_period: (h.start_period_secs > 0)
                    .then(|| (h.start_period_secs * 1_000_000_000) as i64),
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
                restart_policy: spec.restart.as_ref().map(|r| restart_policy(r.get_ref())),
                port_bindings: (!ports.is_empty()).then_some(ports),
                tmpfs: (!spec.tmpfs.is_empty()).then(|| {
                    spec.tmpfs
                        .iter()
                        .filter_map(|t| parse_tmpfs(t.get_ref()).ok())
                        .collect()
                }),
                readonly_rootfs: spec.read_only.then_some(true),
                init: spec.init.then_some(true),
                memory: spec
                    .memory
                    .as_ref()
                    .and_then(|m| parse_memory(m.get_ref()).ok()),
                nano_cpus: spec
                    .cpus
                    .as_ref()
                    .map(|c| (c.get_ref() * 1e9).round() as i64),
                log_config: spec.logging.as_ref().map(|l| HostConfigLogConfig {
                    typ: Some(l.driver.get_ref().clone()),
                    config: (!l.options.is_empty())
                        .then(|| l.options.clone().into_iter().collect()),
                }),
                ..Default::default()
            }),
            networking_config: first_network.filter(|_| mode == NetworkMode::Networks).map(
                |(n, a)| NetworkingConfig {
                    endpoints_config: Some(HashMap::from([(n.clone(), endpoint(a))])),
                },
            ),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::new().name(name).build();
        self.docker
            .create_container(Some(options), body)
            .await
            .map_err(engine(format!("create container {name}")))?;
        Ok(())
    }

    async fn connect(
        &self,
        container: &str,
        network: &str,
        attachment: &Attachment,
    ) -> Result<(), ProvisionError> {
        let request = NetworkConnectRequest {
            container: container.to_string(),
            endpoint_config: Some(endpoint(attachment)),
        };
        self.docker
            .connect_network(network, request)
            .await
            .map_err(engine(format!("connect {container} to {network}")))
    }

    async fn disconnect(&self, container: &str, network: &str) -> Result<(), ProvisionError> {
        let request = NetworkDisconnectRequest {
            container: container.to_string(),
            force: Some(true),
        };
        gone_is_done(
            self.docker.disconnect_network(network, request).await,
            format!("disconnect {container} from {network}"),
        )
    }

    async fn start_container(&self, name: &str) -> Result<(), ProvisionError> {
        self.docker
            .start_container(name, None::<StartContainerOptions>)
            .await
            .map_err(engine(format!("start container {name}")))
    }

    async fn stop_container(&self, name: &str) -> Result<(), ProvisionError> {
        let stop = StopContainerOptions {
            t: Some(5),
            ..Default::default()
        };
        gone_is_done(
            self.docker.stop_container(name, Some(stop)).await,
            format!("stop container {name}"),
        )
    }

    async fn remove_container(
        &self,
        name: &str,
        with_anonymous_volumes: bool,
    ) -> Result<(), ProvisionError> {
        let options = RemoveContainerOptions {
            force: true,
            v: with_anonymous_volumes,
            ..Default::default()
        };
        gone_is_done(
            self.docker.remove_container(name, Some(options)).await,
            format!("remove container {name}"),
        )
    }

    async fn rename_container(&self, from: &str, to: &str) -> Result<(), ProvisionError> {
        let options = RenameContainerOptionsBuilder::new().name(to).build();
        self.docker
            .rename_container(from, options)
            .await
            .map_err(engine(format!("rename {from} to {to}")))
    }
}

#[cfg(test)]
mod tests {
    use super::{RegistryImage, registry_error};

    fn engine_said(status_code: u16, message: &str) -> RegistryImage {
        registry_error(bollard::errors::Error::DockerResponseServerError {
            status_code,
            message: message.to_string(),
        })
    }

    #[test]
    fn a_registry_s_no_is_unknown_and_anything_else_is_unreachable() {
        // What dockerd 20.10 passes on from a registry (Docker Hub answers 401 for a name
        // that does not exist or is private), and its own failures.
        let unknown = [
            (
                401,
                "errors:\ndenied: requested access to the resource is denied\nunauthorized: authentication required\n",
            ),
            (403, "denied"),
            (
                404,
                "manifest for 127.0.0.1:5000/a:1 not found: manifest unknown: manifest unknown",
            ),
            (500, "name unknown: repository name not known to registry"),
        ];
        for (status, message) in unknown {
            assert!(
                matches!(engine_said(status, message), RegistryImage::Unknown(m) if !m.contains('\n')),
                "{status} {message}"
            );
        }
        let unreachable = [
            (
                500,
                "Get \"https://registry-1.docker.io/v2/\": dial tcp: lookup registry-1.docker.io: no such host",
            ),
            // An engine without the /distribution endpoint (podman's compat API).
            (404, "Not Found"),
            (
                500,
                "Get \"http://127.0.0.1:1/v2/\": dial tcp 127.0.0.1:1: connect: connection refused",
            ),
        ];
        for (status, message) in unreachable {
            assert!(
                matches!(engine_said(status, message), RegistryImage::Unreachable(_)),
                "{status} {message}"
            );
        }
    }

    #[test]
    fn an_image_is_current_when_one_of_its_repo_digests_is_the_registry_s() {
        let digest = "sha256:abc".to_string();
        let here = vec!["docker.io/library/nginx@sha256:abc".to_string()];
        assert!(RegistryImage::Digest(digest.clone()).is_here(&here));
        assert!(RegistryImage::Index(digest).is_here(&here));
        assert!(!RegistryImage::Digest("sha256:def".into()).is_here(&here));
        assert!(!RegistryImage::Unreachable("x".into()).is_here(&here));
        assert!(!RegistryImage::Digest("sha256:abc".into()).is_here(&[]));
    }
}
