//! The stack spec: networks, volumes and containers declared in TOML (`config/stack.toml`).
//!
//! Types only (serde reads them); `load` reads a file into them, `validate` checks them and
//! `plan` compares them with the engine. It imports none of those.
//! Fields that validation must point at are `Spanned`, so errors can name their line.

use std::{collections::BTreeMap, path::PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::config::bounded;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stack {
    pub stack: StackMeta,
    #[serde(default)]
    pub networks: BTreeMap<String, NetworkSpec>,
    #[serde(default)]
    pub volumes: BTreeMap<String, VolumeSpec>,
    #[serde(default)]
    pub containers: BTreeMap<String, ContainerSpec>,
    /// The file's canonical path, when it was read from one (labels say which file owns what).
    #[serde(skip)]
    pub(super) file: Option<String>,
    #[serde(skip)]
    pub(super) resolver: Option<Resolver>,
}

/// The `[stack] resolver` setting as checked (`provision::resolver::plan`): the resolver's
/// address on each declared user-defined network, and where the resolv.conf files go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolver {
    pub container: String,
    pub addresses: BTreeMap<String, std::net::Ipv4Addr>,
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackMeta {
    /// Everything created carries the label `netalias.stack=<name>`.
    pub name: Spanned<String>,
    /// The stack's netalias container: every other container on a user-defined network
    /// resolves through it first (see `provision::resolver`).
    pub resolver: Option<Spanned<String>>,
    /// Where the resolv.conf files for `resolver` are written (absolute; default
    /// /var/lib/netalias/stacks/NAME).
    pub resolver_dir: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    Bridge,
    Overlay,
    Macvlan,
    /// Built-in: declared for completeness, never created.
    Host,
    /// Built-in: declared for completeness, never created.
    None,
}

impl Driver {
    pub fn as_str(self) -> &'static str {
        match self {
            Driver::Bridge => "bridge",
            Driver::Overlay => "overlay",
            Driver::Macvlan => "macvlan",
            Driver::Host => "host",
            Driver::None => "null",
        }
    }
    pub fn is_builtin(self) -> bool {
        matches!(self, Driver::Host | Driver::None)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// Made outside the stack (`docker network create`), used as it is: never created,
    /// changed or removed here, and required to exist (compose's `external: true`).
    #[serde(default)]
    pub external: bool,
    #[serde(default = "default_driver")]
    pub driver: Driver,
    /// CIDR strings, checked by `validate` so that a typo points at its line.
    pub subnet: Option<Spanned<String>>,
    pub ip_range: Option<Spanned<String>>,
    pub gateway: Option<Spanned<String>>,
    #[serde(default)]
    pub internal: bool,
    /// Overlay only: let standalone containers attach.
    #[serde(default)]
    pub attachable: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Addresses IPAM must not hand out, by host name (`--aux-address`): inside `subnet`.
    #[serde(default)]
    pub aux_addresses: BTreeMap<String, Spanned<String>>,
    /// An IPv6 subnet (CIDR): turns IPv6 on for the network (`--ipv6 --subnet`).
    pub ipv6_subnet: Option<Spanned<String>>,
}

fn default_driver() -> Driver {
    Driver::Bridge
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct VolumeSpec {
    /// Made outside the stack (`docker volume create`), used as it is: never created or
    /// removed here (`destroy --volumes` included), and required to exist.
    #[serde(default)]
    pub external: bool,
    #[serde(default = "default_volume_driver")]
    pub driver: String,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

fn default_volume_driver() -> String {
    "local".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerSpec {
    pub image: Spanned<String>,
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// `no`, `always`, `unless-stopped`, `on-failure`.
    pub restart: Option<Spanned<String>>,
    pub healthcheck: Option<HealthSpec>,
    /// `"/host/dir:/in/container[:ro,z]"` binds or `"volume:/in/container[:ro]"` named volumes.
    #[serde(default)]
    pub mounts: Vec<Spanned<String>>,
    /// Create missing bind-mount source directories instead of refusing.
    #[serde(default)]
    pub create_host_dirs: bool,
    /// `"NAME"` or `"NAME:ro"`: take over another declared container's volumes.
    #[serde(default)]
    pub volumes_from: Vec<Spanned<String>>,
    /// `host`, `none` or `container:NAME`; absent: the declared `networks`.
    pub network_mode: Option<Spanned<String>>,
    #[serde(default)]
    pub networks: BTreeMap<String, Attachment>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `UID[:GID]` to run as.
    pub user: Option<String>,
    /// Extra groups, e.g. the Docker socket's group for a non-root sidecar.
    #[serde(default)]
    pub group_add: Vec<String>,
    #[serde(default)]
    pub cap_add: Vec<String>,
    #[serde(default)]
    pub cap_drop: Vec<String>,
    /// `--dns`: the servers Docker's 127.0.0.11 in this container forwards outside names to
    /// (the daemon's `dns`, else the host's, when absent). IP addresses.
    #[serde(default)]
    pub dns: Vec<Spanned<String>>,
    /// Published ports in compose's short syntax (`"127.0.0.1:8080:80/tcp"`,
    /// `"9000-9001:9000-9001"`, `"80"`); parsed by `fields::PortSpec`.
    #[serde(default)]
    pub ports: Vec<Spanned<String>>,
    /// Replaces the image's ENTRYPOINT (`--entrypoint`), as a list.
    pub entrypoint: Option<Vec<String>>,
    /// `--workdir`: an absolute path in the container.
    pub working_dir: Option<Spanned<String>>,
    /// Files of `KEY=VALUE` lines (relative to the stack file), read at load; `environment`
    /// wins over them, a later file over an earlier one, as in compose.
    #[serde(default)]
    pub env_file: Vec<Spanned<String>>,
    /// `"/path[:options]"`: a tmpfs at an absolute path (`--tmpfs`).
    #[serde(default)]
    pub tmpfs: Vec<Spanned<String>>,
    /// `--read-only`: the root file system is mounted read-only.
    #[serde(default)]
    pub read_only: bool,
    /// `--init`: an init process reaps zombies and forwards signals.
    #[serde(default)]
    pub init: bool,
    /// Memory limit: bytes, or a number with b, k, m or g (`"512m"`).
    pub memory: Option<Spanned<String>>,
    /// CPU limit in cores (`1.5`).
    pub cpus: Option<Spanned<f64>>,
    /// The logging driver and its options (`--log-driver`, `--log-opt`).
    pub logging: Option<LoggingSpec>,
    /// `N` containers `NAME-1`..`NAME-N`, each answering to the aliases and to `NAME` on its
    /// networks, so `NAME` rotates over them (compose's `--scale`). Expanded at load.
    pub replicas: Option<Spanned<u32>>,
    /// `{ db = "healthy" }` or `"started"`: start after these containers, and once each is
    /// healthy (its health check passes) when so asked, as compose's `depends_on`.
    #[serde(default)]
    pub depends_on: BTreeMap<String, Spanned<String>>,
    /// When the image is pulled: `missing` (the default), `always` (before every apply; a
    /// container whose image changed is recreated), `never` (a missing image fails the plan).
    pub pull: Option<Spanned<String>>,
    /// The environment `env_file` gave, read at load (`environment` not merged in).
    #[serde(skip)]
    pub(super) file_env: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LoggingSpec {
    pub driver: Spanned<String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Attachment {
    #[serde(default)]
    pub aliases: Vec<String>,
    pub ipv4: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSpec {
    /// As in Docker: `["CMD", "arg", ...]` or `["CMD-SHELL", "command"]`.
    pub test: Vec<String>,
    #[serde(
        default = "default_interval",
        deserialize_with = "bounded::<_, _, 1, 86_400>"
    )]
    pub interval_secs: u64,
    #[serde(
        default = "default_timeout",
        deserialize_with = "bounded::<_, _, 1, 86_400>"
    )]
    pub timeout_secs: u64,
    #[serde(
        default = "default_retries",
        deserialize_with = "bounded::<_, _, 0, 1000>"
    )]
    pub retries: u32,
    /// Failures in this first window do not count against `retries` (0: none).
    #[serde(default, deserialize_with = "bounded::<_, _, 0, 86_400>")]
    pub start_period_secs: u64,
}

fn default_interval() -> u64 {
    10
}
fn default_timeout() -> u64 {
    5
}
fn default_retries() -> u32 {
    3
}

/// One parsed `mounts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    Bind {
        source: PathBuf,
        target: String,
        options: Vec<String>,
    },
    Volume {
        name: String,
        target: String,
        read_only: bool,
    },
}

impl Mount {
    /// Parses `SOURCE:TARGET[:OPTIONS]`; a source with a `/` is a host path.
    pub fn parse(text: &str) -> Result<Mount, String> {
        let parts: Vec<&str> = text.split(':').collect();
        let (source, target, options) = match parts.as_slice() {
            [s, t] => (*s, *t, ""),
            [s, t, o] => (*s, *t, *o),
            _ => return Err(format!("`{text}` is not SOURCE:TARGET[:OPTIONS]")),
        };
        if !target.starts_with('/') {
            return Err(format!(
                "mount target `{target}` must be an absolute path in the container"
            ));
        }
        let options: Vec<String> = options
            .split(',')
            .filter(|o| !o.is_empty())
            .map(str::to_string)
            .collect();
        for option in &options {
            if !["ro", "rw", "z", "Z"].contains(&option.as_str()) {
                return Err(format!("unknown mount option `{option}` (ro, rw, z, Z)"));
            }
        }
        if source.contains('/') || source.starts_with('.') || source.starts_with('~') {
            Ok(Mount::Bind {
                source: PathBuf::from(source),
                target: target.to_string(),
                options,
            })
        } else {
            Ok(Mount::Volume {
                name: source.to_string(),
                target: target.to_string(),
                read_only: options.iter().any(|o| o == "ro"),
            })
        }
    }

    /// The Engine API `Binds` entry.
    pub fn to_bind(&self) -> String {
        match self {
            Mount::Bind {
                source,
                target,
                options,
            } if options.is_empty() => format!("{}:{target}", source.display()),
            Mount::Bind {
                source,
                target,
                options,
            } => format!("{}:{target}:{}", source.display(), options.join(",")),
            Mount::Volume {
                name,
                target,
                read_only,
            } => {
                if *read_only {
                    format!("{name}:{target}:ro")
                } else {
                    format!("{name}:{target}")
                }
            }
        }
    }
}

/// How a container is networked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkMode {
    Host,
    None,
    Container(String),
    /// The declared `networks` (the first at create, the others connected after).
    Networks,
}

impl NetworkMode {
    pub fn parse(text: &str) -> Result<NetworkMode, String> {
        match text {
            "host" => Ok(NetworkMode::Host),
            "none" => Ok(NetworkMode::None),
            other => match other.strip_prefix("container:") {
                Some(name) if !name.is_empty() => Ok(NetworkMode::Container(name.to_string())),
                _ => Err(format!(
                    "network_mode `{other}` is not host, none or container:NAME"
                )),
            },
        }
    }
}

/// A restart policy as Docker takes it: `no`, `always`, `unless-stopped`, `on-failure` or
/// `on-failure:N` (at most N restarts). Returns the policy and the retry count.
pub fn parse_restart(text: &str) -> Result<(&str, Option<i64>), String> {
    match text.split_once(':') {
        None if ["no", "always", "unless-stopped", "on-failure"].contains(&text) => {
            Ok((text, None))
        }
        Some(("on-failure", n)) => match n.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(("on-failure", Some(n))),
            _ => Err(format!(
                "`{n}` is not a retry count: on-failure:N takes a whole number"
            )),
        },
        _ => Err(format!(
            "`{text}` is not no, always, unless-stopped, on-failure or on-failure:N"
        )),
    }
}

/// What a `depends_on` entry waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Running.
    Started,
    /// Its health check passes (one it has none for is an error).
    Healthy,
    /// Healthy if it has a health check, else running: what the stack's resolver must be
    /// before the containers that resolve through it start. Not written in files.
    Ready,
}

impl Condition {
    /// The conditions a file may give.
    pub fn parse(text: &str) -> Result<Condition, String> {
        match text {
            "started" | "service_started" => Ok(Condition::Started),
            "healthy" | "service_healthy" => Ok(Condition::Healthy),
            other => Err(format!("`{other}` is not a condition: started or healthy")),
        }
    }

    /// `parse`, and `ready` (set by `resolver::expand`).
    pub(super) fn parse_any(text: &str) -> Option<Condition> {
        match text {
            "ready" => Some(Condition::Ready),
            other => Condition::parse(other).ok(),
        }
    }
}

/// When a container's image is pulled (`pull`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pull {
    Missing,
    Always,
    Never,
}

impl Pull {
    pub fn parse(text: &str) -> Result<Pull, String> {
        match text {
            "missing" => Ok(Pull::Missing),
            "always" => Ok(Pull::Always),
            "never" => Ok(Pull::Never),
            other => Err(format!("`{other}` is not missing, always or never")),
        }
    }
}

impl ContainerSpec {
    pub fn pull(&self) -> Pull {
        self.pull
            .as_ref()
            .and_then(|p| Pull::parse(p.get_ref()).ok())
            .unwrap_or(Pull::Missing)
    }

    pub fn network_mode(&self) -> NetworkMode {
        self.network_mode
            .as_ref()
            .and_then(|m| NetworkMode::parse(m.get_ref()).ok())
            .unwrap_or(NetworkMode::Networks)
    }

    pub fn parsed_mounts(&self) -> Vec<Mount> {
        self.mounts
            .iter()
            .filter_map(|m| Mount::parse(m.get_ref()).ok())
            .collect()
    }

    /// The environment the container gets: `env_file`'s, then `environment` over it.
    pub fn environment_all(&self) -> BTreeMap<String, String> {
        let mut env = self.file_env.clone();
        env.extend(self.environment.iter().map(|(k, v)| (k.clone(), v.clone())));
        env
    }

    /// The names the container is created as: `NAME`, or `NAME-1`..`NAME-N` with `replicas`.
    pub fn replica_names(&self, name: &str) -> Vec<String> {
        match &self.replicas {
            Some(n) => (1..=*n.get_ref()).map(|i| format!("{name}-{i}")).collect(),
            None => vec![name.to_string()],
        }
    }

    /// Containers this one needs to exist first: those it shares volumes or a network
    /// namespace with, and those it `depends_on`.
    pub fn dependencies(&self) -> Vec<String> {
        let mut deps = self.shared_with();
        deps.extend(self.depends_on.keys().cloned());
        deps
    }

    /// What this container must wait for before it starts: each `depends_on` entry's
    /// container and condition (conditions were checked at load).
    pub fn waits_for(&self) -> Vec<(String, Condition)> {
        self.depends_on
            .iter()
            .filter_map(|(name, c)| Condition::parse_any(c.get_ref()).map(|c| (name.clone(), c)))
            .collect()
    }

    /// The containers whose volumes (`volumes_from`) or network namespace (`container:`)
    /// this one takes: it needs exactly that container, not one of a set.
    pub fn shared_with(&self) -> Vec<String> {
        let mut deps: Vec<String> = self
            .volumes_from
            .iter()
            .map(|v| {
                v.get_ref()
                    .split(':')
                    .next()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        if let NetworkMode::Container(name) = self.network_mode() {
            deps.push(name);
        }
        deps
    }
}

impl Stack {
    /// The canonical path of the file this stack was read from.
    pub fn file(&self) -> Option<&str> {
        self.file.as_deref()
    }

    /// The resolver setting, checked (see `provision::resolver`).
    pub fn resolver(&self) -> Option<&Resolver> {
        self.resolver.as_ref()
    }

    pub fn name(&self) -> &str {
        self.stack.name.get_ref()
    }
}
