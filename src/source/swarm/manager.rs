//! Reads the cluster state from a Swarm manager: is it one, and what are its networks,
//! services and tasks.
//!
//! Networks, services and node state come through bollard. Tasks come through a plain
//! `GET /tasks` on the same engine, because bollard's `Task` model drops
//! `NetworksAttachments`, the only place the manager puts a task's addresses. Read-only:
//! nothing here writes to the engine.

use std::{collections::BTreeMap, collections::HashMap, path::PathBuf};

use bollard::{
    Docker,
    models::{EndpointPortConfigProtocolEnum, EndpointSpecModeEnum, LocalNodeState, Service},
    query_parameters::ListNetworksOptionsBuilder,
};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use hyperlocal::UnixConnector;

use super::translate::{ServiceView, SwarmState, Task, address_of, service_srv};
use crate::registry::SrvProto;

/// `{"desired-state":["running"]}`: tasks on their way out are not fetched at all.
const RUNNING_TASKS: &str = "/tasks?filters=%7B%22desired-state%22%3A%5B%22running%22%5D%7D";
/// The longest one read of the cluster may take. A manager that stalls (or a proxy that holds
/// the connection) must not freeze the source: the read fails, the source reconnects.
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);
/// The largest `GET /services` or `GET /tasks` body read (the lists that grow with the
/// cluster). A task's or service's JSON is a few KB; 64 MiB holds over ten thousand, and
/// bounds what a hostile or broken endpoint can make us hold.
const MAX_LIST_BODY: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error("cannot connect to the Swarm manager at {host}: {source}")]
    Connect {
        host: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("Swarm manager request failed ({what}): {source}")]
    Request {
        what: &'static str,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("GET /{what} from {host} failed: {message}")]
    List {
        what: &'static str,
        host: String,
        message: String,
    },
    #[error("the event stream from the Swarm manager at {host} ended")]
    EventsEnded { host: String },
    #[error("unsupported engine address {0:?}: use unix:///path or tcp://host:port")]
    Address(String),
    #[error("the Swarm manager at {host} did not answer {what} within {secs} s")]
    Timeout {
        host: String,
        what: &'static str,
        secs: u64,
    },
}

/// Where this node stands in a swarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Not in a swarm: nothing to serve, and anything served before is gone.
    Outside,
    /// In a swarm but without the manager's API (a worker): cluster state is not readable here.
    Worker,
    Manager,
}

/// A plain HTTP client for the cluster's lists, so that their bodies are read under a limit
/// (bollard reads a body whole, however large).
enum ListClient {
    Unix {
        client: Client<UnixConnector, Empty<Bytes>>,
        socket: PathBuf,
    },
    Tcp {
        client: Client<HttpConnector, Empty<Bytes>>,
        base: String,
    },
}

pub struct Manager {
    docker: Docker,
    lists: ListClient,
    host: String,
}

impl Manager {
    /// `host`: `unix:///path` or `tcp://host:port`; `None` uses `DOCKER_HOST` or the local socket.
    pub async fn connect(host: Option<&str>) -> Result<Manager, ManagerError> {
        let host = crate::source::reach::engine_address(host);
        let lists = if let Some(path) = host.strip_prefix("unix://") {
            ListClient::Unix {
                client: Client::builder(TokioExecutor::new()).build(UnixConnector),
                socket: PathBuf::from(path),
            }
        } else if let Some(authority) = host
            .strip_prefix("tcp://")
            .or_else(|| host.strip_prefix("http://"))
        {
            ListClient::Tcp {
                client: Client::builder(TokioExecutor::new()).build_http(),
                base: format!("http://{}", authority.trim_end_matches('/')),
            }
        } else {
            return Err(ManagerError::Address(host));
        };
        let docker = Docker::connect_with_host(&host)
            .map_err(|source| ManagerError::Connect {
                host: host.clone(),
                source,
            })?
            .negotiate_version()
            .await
            .map_err(|source| ManagerError::Connect {
                host: host.clone(),
                source,
            })?;
        Ok(Manager {
            docker,
            lists,
            host,
        })
    }

    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub async fn role(&self) -> Result<Role, ManagerError> {
        let info = self
            .within("info", self.docker.info())
            .await?
            .map_err(|source| ManagerError::Request {
                what: "info",
                source,
            })?;
        let swarm = info.swarm.unwrap_or_default();
        Ok(match swarm.local_node_state {
            Some(LocalNodeState::ACTIVE) if swarm.control_available == Some(true) => Role::Manager,
            Some(LocalNodeState::ACTIVE) => Role::Worker,
            _ => Role::Outside,
        })
    }

    /// `request`, or [`ManagerError::Timeout`] past [`READ_TIMEOUT`].
    async fn within<T>(
        &self,
        what: &'static str,
        request: impl std::future::Future<Output = T>,
    ) -> Result<T, ManagerError> {
        tokio::time::timeout(READ_TIMEOUT, request)
            .await
            .map_err(|_| ManagerError::Timeout {
                host: self.host.clone(),
                what,
                secs: READ_TIMEOUT.as_secs(),
            })
    }

    /// One consistent-enough read: networks, then services, then tasks, within
    /// [`READ_TIMEOUT`] in all. A task that appears between the reads belongs to a service
    /// already listed or is picked up next time.
    pub async fn read(&self) -> Result<SwarmState, ManagerError> {
        self.within("a read of networks, services and tasks", self.read_all())
            .await?
    }

    async fn read_all(&self) -> Result<SwarmState, ManagerError> {
        let filters = HashMap::from([("driver", vec!["overlay"])]);
        let networks = self
            .docker
            .list_networks(Some(
                ListNetworksOptionsBuilder::new().filters(&filters).build(),
            ))
            .await
            .map_err(|source| ManagerError::Request {
                what: "list networks",
                source,
            })?;
        let networks: BTreeMap<String, String> = networks
            .into_iter()
            .filter(|n| n.scope.as_deref() == Some("swarm"))
            .filter_map(|n| Some((n.id?, n.name?)))
            .collect();
        let services: Vec<Service> = self.list("services", "/services").await?;
        let services = services.into_iter().filter_map(service_view).collect();
        let tasks: Vec<Task> = self.list("tasks", RUNNING_TASKS).await?;
        Ok(SwarmState {
            networks,
            services,
            tasks,
        })
    }

    /// `GET path` (a path and query), its body read up to [`MAX_LIST_BODY`] and parsed.
    async fn list<T: serde::de::DeserializeOwned>(
        &self,
        what: &'static str,
        path: &str,
    ) -> Result<T, ManagerError> {
        let fail = |message: String| ManagerError::List {
            what,
            host: self.host.clone(),
            message,
        };
        let response = match &self.lists {
            ListClient::Unix { client, socket } => {
                client.get(hyperlocal::Uri::new(socket, path).into()).await
            }
            ListClient::Tcp { client, base } => {
                let uri = format!("{base}{path}")
                    .parse()
                    .map_err(|e| fail(format!("bad address: {e}")))?;
                client.get(uri).await
            }
        }
        .map_err(|e| fail(e.to_string()))?;
        let status = response.status();
        let body = http_body_util::Limited::new(response.into_body(), MAX_LIST_BODY)
            .collect()
            .await
            .map_err(|e| fail(format!("{e} (at most {MAX_LIST_BODY} bytes are read)")))?
            .to_bytes();
        if !status.is_success() {
            return Err(fail(format!(
                "status {status}: {}",
                String::from_utf8_lossy(&body).trim()
            )));
        }
        serde_json::from_slice(&body).map_err(|e| fail(format!("unexpected JSON: {e}")))
    }
}

/// What naming needs from a service.
fn service_view(service: Service) -> Option<ServiceView> {
    let spec = service.spec?;
    let mut aliases: HashMap<String, Vec<String>> = HashMap::new();
    let attachments = spec
        .task_template
        .and_then(|t| t.networks)
        .into_iter()
        .flatten()
        .chain(spec.networks.into_iter().flatten());
    for attachment in attachments {
        if let Some(target) = attachment.target {
            aliases
                .entry(target)
                .or_default()
                .extend(attachment.aliases.unwrap_or_default());
        }
    }
    let endpoint = service.endpoint.unwrap_or_default();
    // The spec says what was asked; the endpoint's own spec is often empty.
    let mode = spec
        .endpoint_spec
        .as_ref()
        .and_then(|s| s.mode)
        .or_else(|| endpoint.spec.as_ref().and_then(|s| s.mode));
    let dnsrr = mode == Some(EndpointSpecModeEnum::DNSRR);
    let virtual_ips = endpoint
        .virtual_ips
        .into_iter()
        .flatten()
        .filter_map(|v| Some((v.network_id?, address_of(v.addr.as_deref()?)?)))
        .collect();
    let labels = spec.labels.unwrap_or_default();
    // Named ports of the spec (the port tasks listen on, reached at the VIP too).
    let named_ports: Vec<(String, SrvProto, u16)> = spec
        .endpoint_spec
        .and_then(|e| e.ports)
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let proto = match p.protocol {
                Some(EndpointPortConfigProtocolEnum::UDP) => SrvProto::Udp,
                Some(EndpointPortConfigProtocolEnum::SCTP) => return None,
                _ => SrvProto::Tcp,
            };
            Some((p.name?, proto, u16::try_from(p.target_port?).ok()?))
        })
        .collect();
    Some(ServiceView {
        id: service.id?,
        srv: service_srv(&labels, named_ports),
        name: spec.name?,
        dnsrr,
        aliases,
        virtual_ips,
        labels,
    })
}
