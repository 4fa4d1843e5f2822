//! The Docker source's engine reads: each API call the source makes, turned into plain facts
//! (`state.rs`'s [`ContainerFacts`] and [`SnapshotFacts`], an [`Engine`], a time, a list).
//!
//! Every bollard call of the source's loop is here, so the loop in `mod.rs` reads as "read,
//! hand the facts to the state, publish what it returns". It keeps no state and publishes
//! nothing; it never writes to the engine. (`early.rs` has its own few reads, on its own
//! task, beside the loop.)

use std::{collections::HashMap, net::IpAddr, time::SystemTime, time::UNIX_EPOCH};

use bollard::{
    Docker,
    errors::Error as BollardError,
    models::{ContainerInspectResponse, ContainerSummary, Network, NetworkInspect},
    query_parameters::{
        InspectContainerOptions, InspectNetworkOptions, ListContainersOptions, ListNetworksOptions,
    },
};
use futures_util::{StreamExt, TryStreamExt, stream};
use tracing::{debug, info, warn};

use super::{
    DockerSourceError, early, listed,
    state::{ContainerFacts, Listed},
    translate::{self, Policy, asker_addresses_of, endpoints_of},
};
use crate::source::engine::{Engine, LABEL_SWARM_TASK};

/// Containers inspected at once during a snapshot.
const SNAPSHOT_CONCURRENCY: usize = 8;
/// A snapshot logs progress every this many containers.
const PROGRESS_EVERY: usize = 50;

pub(super) fn request_error(
    what: impl Into<String>,
) -> impl FnOnce(BollardError) -> DockerSourceError {
    let what = what.into();
    move |source| DockerSourceError::Request { what, source }
}

pub(super) fn is_not_found(error: &BollardError) -> bool {
    matches!(
        error,
        BollardError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// Which engine this is, by its `GET /version`: its naming rules differ (`source::engine`).
pub(super) async fn engine_of(docker: &Docker) -> Result<Engine, DockerSourceError> {
    let version = docker.version().await.map_err(request_error("version"))?;
    let platform = version.platform.as_ref().map(|p| p.name.as_str());
    let components = version.components.iter().flatten().map(|c| c.name.as_str());
    Ok(Engine::from_version(platform, components))
}

/// The engine's clock now, less a second, as `since` for its event stream (a replayed event
/// is harmless, a missed one is not). netalias's own clock may differ from the engine's.
pub(super) async fn engine_now(docker: &Docker) -> Result<String, DockerSourceError> {
    let info = docker.info().await.map_err(request_error("info"))?;
    let engine = info.system_time.as_deref().and_then(|t| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
    });
    let seconds = match engine {
        Some(t) => t.unix_timestamp(),
        None => {
            warn!("the engine did not say its time; the event stream starts from ours");
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        }
    };
    Ok((seconds - 1).max(0).to_string())
}

pub(super) async fn networks(docker: &Docker) -> Result<Vec<Network>, DockerSourceError> {
    docker
        .list_networks(None::<ListNetworksOptions>)
        .await
        .map_err(request_error("list networks"))
}

/// A network by ID or name; `None` when it is gone.
pub(super) async fn network(
    docker: &Docker,
    id: &str,
) -> Result<Option<NetworkInspect>, DockerSourceError> {
    match docker
        .inspect_network(id, None::<InspectNetworkOptions>)
        .await
    {
        Ok(n) => Ok(Some(n)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(request_error(format!("inspect network {id}"))(e)),
    }
}

/// The running containers, as listed.
pub(super) async fn running(docker: &Docker) -> Result<Vec<ContainerSummary>, DockerSourceError> {
    docker
        .list_containers(None::<ListContainersOptions>)
        .await
        .map_err(request_error("list containers"))
}

/// Container `id` read whole, as facts; a container gone since has none.
pub(super) async fn container(
    docker: &Docker,
    id: &str,
    policy: Policy,
) -> Result<ContainerFacts, DockerSourceError> {
    match docker
        .inspect_container(id, None::<InspectContainerOptions>)
        .await
    {
        Ok(c) => {
            debug!(
                id,
                state = translate::describe(&c, policy),
                "container inspected"
            );
            let via_gwbridge = if is_task(&c) {
                gwbridge_addresses(docker).await?.get(id).copied()
            } else {
                None
            };
            Ok(inspected_facts(&c, via_gwbridge, policy))
        }
        Err(e) if is_not_found(&e) => Ok(ContainerFacts::default()),
        Err(e) => Err(request_error(format!("inspect container {id}"))(e)),
    }
}

/// Every container in `ids` read whole, a few at once, with progress in the log.
pub(super) async fn containers(
    docker: &Docker,
    ids: Vec<String>,
    policy: Policy,
) -> Result<Vec<(String, ContainerFacts)>, DockerSourceError> {
    let total = ids.len();
    let gwbridge = &gwbridge_addresses(docker).await?;
    let mut inspected = stream::iter(ids)
        .map(|id| async move {
            match docker
                .inspect_container(&id, None::<InspectContainerOptions>)
                .await
            {
                Ok(c) => {
                    let facts = inspected_facts(&c, gwbridge.get(&id).copied(), policy);
                    Ok((id, facts))
                }
                // Gone since the list.
                Err(e) if is_not_found(&e) => Ok((id, ContainerFacts::default())),
                Err(e) => Err(request_error(format!("inspect container {id}"))(e)),
            }
        })
        .buffer_unordered(SNAPSHOT_CONCURRENCY);
    let mut out = Vec::with_capacity(total);
    while let Some(read) = inspected.try_next().await? {
        out.push(read);
        if out.len().is_multiple_of(PROGRESS_EVERY) {
            info!(done = out.len(), total, "Docker snapshot progress");
        }
    }
    Ok(out)
}

/// What a container read whole (or as it will be once started) publishes.
pub(super) fn facts_of(
    c: &ContainerInspectResponse,
    via_gwbridge: Option<IpAddr>,
    policy: Policy,
) -> ContainerFacts {
    ContainerFacts {
        endpoints: endpoints_of(c, policy),
        asks_from: asker_addresses_of(c, via_gwbridge, policy.engine),
        known: None,
    }
}

/// What a container's inspect publishes, with what only the inspect says (`listed.rs`).
pub(super) fn inspected_facts(
    c: &ContainerInspectResponse,
    via_gwbridge: Option<IpAddr>,
    policy: Policy,
) -> ContainerFacts {
    ContainerFacts {
        known: Some(listed::known_of(c)),
        ..facts_of(c, via_gwbridge, policy)
    }
}

pub(super) fn is_task(c: &ContainerInspectResponse) -> bool {
    c.config
        .as_ref()
        .and_then(|cfg| cfg.labels.as_ref())
        .is_some_and(|l| l.contains_key(LABEL_SWARM_TASK))
}

/// What the list of running containers says of each, as far as its records go: state, health
/// (the status's parenthesised part, without the uptime), names, and addresses per network.
/// A container whose entry changes between two lists is re-read.
pub(super) fn listed(containers: &[ContainerSummary]) -> Listed {
    containers
        .iter()
        .filter_map(|c| {
            let id = c.id.clone()?;
            let health = c
                .status
                .as_deref()
                .and_then(|s| s.split_once('('))
                .map(|(_, rest)| rest);
            let mut networks: Vec<(String, String)> = c
                .network_settings
                .as_ref()
                .and_then(|n| n.networks.as_ref())
                .into_iter()
                .flatten()
                .map(|(name, ep)| (name.clone(), ep.ip_address.clone().unwrap_or_default()))
                .collect();
            networks.sort();
            Some((
                id,
                format!("{:?}|{health:?}|{:?}|{networks:?}", c.state, c.names),
            ))
        })
        .collect()
}

/// Container ID → its address on Swarm's `docker_gwbridge`, which only the network's inspect
/// lists (a task's own inspect does not). Empty outside a swarm.
async fn gwbridge_addresses(docker: &Docker) -> Result<HashMap<String, IpAddr>, DockerSourceError> {
    Ok(network(docker, "docker_gwbridge")
        .await?
        .and_then(|n| n.containers)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(id, c)| {
            let ip = early::endpoint_addresses(&c)
                .into_iter()
                .find(IpAddr::is_ipv4)?;
            Some((id, ip))
        })
        .collect())
}
