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

impl ContainerSpec {
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

    /// Containers this one needs to exist first.
    pub fn dependencies(&self) -> Vec<String> {
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
