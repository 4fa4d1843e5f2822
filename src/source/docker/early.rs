//! Early askers: which networks a container's addresses are on, read before the container can
//! be read whole, so that its first packet is answered as the engine knows it.
//!
//! The engine connects a container to its networks (and gives it its addresses) 400–480 ms
//! before its process starts (measured on Docker 20.10), but a container inspect blocks on the
//! engine's per-container lock until the start is done. A network inspect does not wait on that lock (1–2 ms while the container
//! starts), and it lists every endpoint with its address. So this task, beside the event loop
//! and with its own requests:
//! - on `network connect` (handed over by the event reader as it arrives, not after the queue)
//!   reads the network and scopes the container's addresses to its networks
//!   ([`Registry::learn_early`]); on `disconnect` forgets them;
//! - on a lookup from the DNS front end (an unknown asker inside a followed subnet), reads the
//!   networks whose subnets hold the address, finds the container there, and scopes it the
//!   same way; not found, nothing changes (the asker stays a stranger: scoping fails closed).
//!
//!
//! Beside it, on `container create` the event reader itself has the container read
//! ([`Created::read`]: not yet started, so its inspect does not wait on a start, 2–3 ms
//! measured) and kept in [`Created`], from which the event loop publishes the container's
//! names at its `network connect`, as Docker registers them then.
//!
//! It publishes no names and owns no records itself: the event loop publishes (from
//! [`Created`], then from the container's own inspect after `start`), and its publication
//! replaces the early scope. It never writes to the engine.

use std::{
    collections::{BTreeMap, HashMap},
    net::IpAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bollard::{
    Docker,
    models::{ContainerInspectResponse, ContainerStateStatusEnum},
    query_parameters::{
        InspectContainerOptions, InspectNetworkOptions, ListContainersOptionsBuilder,
        ListNetworksOptions,
    },
};
use metrics::counter;
use tokio::sync::mpsc;
use tracing::{debug, info};

use crate::registry::{EARLY_TTL, MAX_PENDING_LOOKUPS, Registry};
use crate::source::engine::Engine;
use crate::telemetry::names;

/// What the event reader hands over, as it reads it.
#[derive(Debug)]
pub enum EarlyEvent {
    /// A container was connected to a network (`network connect`): IDs as the event gives them.
    Connect { network: String, container: String },
    /// A container left a network.
    Disconnect { network: String, container: String },
    /// A network came or went: the subnets to look askers up in changed.
    Networks,
}

/// Events queued for the task, at most; past it they are dropped (the event loop still
/// reads every container; only the head start is lost).
pub const EVENT_QUEUE: usize = 1024;

/// Containers read at once after `create`, at most: each read is one engine request. A read
/// that loses the race with the container's start waits on its lock (400 ms and more under
/// churn) holding its place: with 8, a burst of 16 parallel `docker run`s had most of its
/// creates left unread.
const CREATED_READS: usize = 32;

/// Containers as read right after `create`, by ID, for the event loop to publish at their
/// `network connect` ([`crate::source::docker::translate::as_started`]). An entry goes when
/// the event loop reads the container itself (a container event; on Docker a `start` keeps it
/// for its list read, which publishes from it, and its `Ask::Started` (`reads.rs`) takes a
/// read that found it started), or after [`Created::TTL`]: `docker run` and compose start
/// what they create within milliseconds, and a container created long before its start may
/// have changed since.
///
/// An entry is made *expected* by the event reader the moment the `create` event arrives, and
/// filled when the read lands, so that the event loop, at the `network connect`, can wait the
/// few milliseconds the read still needs instead of missing it: under load (two test binaries
/// starting containers at once on 2 cores) the read lost that race and the container was
/// published only after its start, 400 ms later.
#[derive(Clone, Default)]
pub struct Created(Arc<CreatedInner>);

pub struct CreatedInner {
    map: Mutex<HashMap<String, (Instant, Slot)>>,
    /// Woken whenever a read lands or is given up.
    changed: tokio::sync::Notify,
    /// Places for reads in flight ([`CREATED_READS`]).
    reads: Arc<tokio::sync::Semaphore>,
}

impl Default for CreatedInner {
    fn default() -> Self {
        CreatedInner {
            map: Mutex::default(),
            changed: tokio::sync::Notify::new(),
            reads: Arc::new(tokio::sync::Semaphore::new(CREATED_READS)),
        }
    }
}

enum Slot {
    /// The read is on its way.
    Reading,
    Read(Box<ContainerInspectResponse>),
    /// The read lost the race with the container's start, waited on its lock, and read it
    /// started: as fresh as the `start` event, and sooner than a read asked at that event
    /// (dockerd answered those in 80–230 ms under churn): for the connect still waiting
    /// ([`Created::wait`], a copy) and the start ([`Created::wait_started`], which takes it).
    Started(Box<ContainerInspectResponse>),
}

/// What a `network connect` found of its container's create-time read ([`Created::wait`]).
#[derive(Debug)]
pub enum Waited {
    /// Read before its start (status `created`), and fresh: kept for the connect to publish
    /// from ([`Created::peek`]).
    Read,
    /// Read as the start was done (the read waited on its lock): the container whole.
    Started(Box<ContainerInspectResponse>),
    /// Not read at `create`, failed, late, or taken by the start.
    Nothing,
}

impl Created {
    pub const TTL: Duration = Duration::from_secs(10);
    /// Entries kept at most (a burst of creates without starts).
    const MAX: usize = 1024;

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Slot)>> {
        self.0.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn put(&self, id: &str, slot: Slot) {
        let mut map = self.lock();
        let now = Instant::now();
        if map.len() >= Self::MAX && !map.contains_key(id) {
            map.retain(|_, (at, _)| now.duration_since(*at) < Self::TTL);
            if map.len() >= Self::MAX {
                return;
            }
        }
        map.insert(id.to_string(), (now, slot));
    }

    /// Marks `id` as being read: [`Created::wait`] waits for it.
    pub fn expect(&self, id: &str) {
        self.put(id, Slot::Reading);
    }

    /// Reads created container `id` in a task of its own, at once (the event reader calls
    /// this as the `create` event arrives: queued behind other work, as it was behind the
    /// early task's network reads of 300–470 ms under churn, the read lost the race with the
    /// start and waited on its lock), and keeps it.
    pub fn read(&self, docker: &Docker, id: &str) {
        self.expect(id);
        let Ok(permit) = Arc::clone(&self.0.reads).try_acquire_owned() else {
            // A burst: these containers are read after their start, as before.
            debug!(
                container = id,
                "create-time read skipped: {CREATED_READS} in flight"
            );
            self.forget(id);
            return;
        };
        let (docker, created, container) = (docker.clone(), self.clone(), id.to_string());
        tokio::spawn(async move {
            let _permit = permit;
            let asked = Instant::now();
            let read = docker
                .inspect_container(&container, None::<InspectContainerOptions>)
                .await;
            let elapsed_ms = asked.elapsed().as_secs_f64() * 1000.0;
            let status = read
                .as_ref()
                .ok()
                .and_then(|c| c.state.as_ref())
                .and_then(|s| s.status);
            match read {
                // Only a container not started yet: one that is already running is the event
                // loop's to read.
                Ok(c) if status == Some(ContainerStateStatusEnum::CREATED) => {
                    debug!(container, elapsed_ms, "create-time read: not started");
                    created.fill(&container, c);
                }
                Ok(c) if c.state.as_ref().and_then(|s| s.running) == Some(true) => {
                    debug!(container, elapsed_ms, "create-time read: started");
                    created.started(&container, c)
                }
                // Started and gone already (or its start failed): nothing to publish early;
                // its events say the rest.
                Ok(_) => {
                    debug!(
                        container,
                        elapsed_ms,
                        ?status,
                        "create-time read: not running"
                    );
                    created.forget(&container);
                }
                Err(error) => {
                    created.forget(&container);
                    debug!(%error, container, "cannot read a created container")
                }
            }
        });
    }

    /// Keeps `container` as read (or as it will be once started), for [`Created::TTL`].
    pub fn keep(&self, id: &str, container: ContainerInspectResponse) {
        self.put(id, Slot::Read(Box::new(container)));
        self.0.changed.notify_waiters();
    }

    /// Fills the slot [`Created::expect`] made with the create-time read, only while it is
    /// still expected: a read that lands after the event loop has read the container whole
    /// (and forgotten it) is stale, and a later connect must not publish from it.
    pub fn fill(&self, id: &str, container: ContainerInspectResponse) {
        {
            let mut map = self.lock();
            match map.get_mut(id) {
                Some((at, slot @ Slot::Reading)) => {
                    *at = Instant::now();
                    *slot = Slot::Read(Box::new(container));
                }
                _ => return,
            }
        }
        self.0.changed.notify_waiters();
    }

    /// Keeps the read that found the container started (see [`Slot::Started`]), while it is
    /// still expected.
    fn started(&self, id: &str, container: ContainerInspectResponse) {
        {
            let mut map = self.lock();
            match map.get_mut(id) {
                Some((at, slot @ Slot::Reading)) => {
                    *at = Instant::now();
                    *slot = Slot::Started(Box::new(container));
                }
                _ => return,
            }
        }
        self.0.changed.notify_waiters();
    }

    /// Whether the read of `id` is still on its way, or found it started (and is fresh): what
    /// [`Created::wait_started`] may give.
    pub fn may_have_started(&self, id: &str) -> bool {
        matches!(
            self.lock().get(id),
            Some((at, Slot::Reading | Slot::Started(_))) if at.elapsed() < Self::TTL
        )
    }

    /// Looks at the entries with `look` until it gives an answer, woken as reads land, for up
    /// to `limit` (None past it). `look` gives None while a read is to be waited for.
    async fn wait_for<T>(
        &self,
        limit: Duration,
        mut look: impl FnMut(&mut HashMap<String, (Instant, Slot)>) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            // Registered before the look, so a read landing in between still wakes us.
            let notified = self.0.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(answer) = look(&mut self.lock()) {
                return Some(answer);
            }
            tokio::time::timeout_at(deadline, notified).await.ok()?;
        }
    }

    /// The read that found the container started, taken (once); waits up to `limit` for a
    /// read on its way. None when the read found it not started, failed, or is late.
    pub async fn wait_started(
        &self,
        id: &str,
        limit: Duration,
    ) -> Option<ContainerInspectResponse> {
        self.wait_for(limit, |map| match map.get(id) {
            Some((at, _)) if at.elapsed() >= Self::TTL => Some(None),
            Some((_, Slot::Reading)) => None,
            Some((_, Slot::Started(_))) => match map.remove(id) {
                Some((_, Slot::Started(c))) => Some(Some(*c)),
                _ => Some(None),
            },
            _ => Some(None),
        })
        .await
        .flatten()
    }

    /// What the create-time read of `id` gives its `network connect` to `network` (by ID, as
    /// the event gives it), waiting up to `limit` for a read on its way:
    /// - [`Waited::Read`] while the container is not started and the read is fresh;
    /// - [`Waited::Started`], a copy, when the read lost the race with the start, waited on
    ///   its lock and landed as the start was done, and it shows the container on `network`.
    ///   That read and the `start` event are let go at once: the event usually reaches the
    ///   loop 0.3–1 ms first (then this connect's read is stale, and the start takes the read,
    ///   [`Created::wait_started`]); when the read is first, the connect publishes it then.
    ///   A copy without `network` (a later connect to another network) is not this connect's.
    pub async fn wait(&self, id: &str, network: &str, limit: Duration) -> Waited {
        self.wait_for(limit, |map| match map.get(id) {
            Some((at, _)) if at.elapsed() >= Self::TTL => Some(Waited::Nothing),
            Some((_, Slot::Read(_))) => Some(Waited::Read),
            Some((_, Slot::Reading)) => None,
            // A copy: taken here, it was lost whenever this read was stale, and the start
            // waited 50–90 ms under churn for its list read instead.
            Some((_, Slot::Started(c))) if on_network(c, network) => {
                Some(Waited::Started(c.clone()))
            }
            Some((_, Slot::Started(_))) | None => Some(Waited::Nothing),
        })
        .await
        .unwrap_or(Waited::Nothing)
    }

    /// The container as kept, if it is read and fresh; no waiting.
    pub fn peek(&self, id: &str) -> Option<ContainerInspectResponse> {
        match self.lock().get(id) {
            Some((at, Slot::Read(container))) if at.elapsed() < Self::TTL => {
                Some(container.as_ref().clone())
            }
            _ => None,
        }
    }

    /// Forgets `id`, read or on its way (a waiter gives up at once).
    pub fn forget(&self, id: &str) {
        self.lock().remove(id);
        self.0.changed.notify_waiters();
    }
}

/// A followed network: its name and subnets.
#[derive(Debug, Clone)]
struct Followed {
    id: String,
    name: String,
    subnets: Vec<ipnet::IpNet>,
}

/// The early task's state: the networks it follows and what it has scoped.
pub struct EarlyAskers {
    docker: Docker,
    registry: Arc<Registry>,
    engine: Engine,
    networks: Vec<Followed>,
    /// Container ID → its addresses per network name, as connects have shown them; kept for
    /// [`EARLY_TTL`] (the early scope lapses then anyway).
    containers: HashMap<String, (Instant, BTreeMap<String, Vec<IpAddr>>)>,
}

impl EarlyAskers {
    pub fn new(docker: Docker, registry: Arc<Registry>, engine: Engine) -> EarlyAskers {
        EarlyAskers {
            docker,
            registry,
            engine,
            networks: Vec::new(),
            containers: HashMap::new(),
        }
    }

    /// Serves `events` and the DNS front end's lookups until `events` closes (the session
    /// ended); then lookups stop being sent here.
    pub async fn run(mut self, mut events: mpsc::Receiver<EarlyEvent>) {
        let (lookups_tx, mut lookups) = mpsc::channel::<IpAddr>(MAX_PENDING_LOOKUPS);
        self.refresh_networks().await;
        self.registry
            .set_asker_lookups(Some(lookups_tx), self.subnets());
        let _stop_lookups = StopLookups(Arc::clone(&self.registry));
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(EarlyEvent::Connect { network, container }) => {
                        self.connected(&network, &container).await;
                    }
                    Some(EarlyEvent::Disconnect { network, container }) => {
                        self.disconnected(&network, &container);
                    }
                    Some(EarlyEvent::Networks) => {
                        self.refresh_networks().await;
                        self.registry.set_lookup_subnets(self.subnets());
                    }
                    None => return,
                },
                Some(ip) = lookups.recv() => self.look_up(ip).await,
            }
        }
    }

    fn subnets(&self) -> Vec<ipnet::IpNet> {
        self.networks
            .iter()
            .flat_map(|n| n.subnets.iter().copied())
            .collect()
    }

    /// Lists the engine's user-defined networks and their subnets.
    async fn refresh_networks(&mut self) {
        match self.docker.list_networks(None::<ListNetworksOptions>).await {
            Ok(networks) => {
                self.networks = networks
                    .iter()
                    .filter_map(|n| {
                        let name = n.name.clone()?;
                        if !self.engine.is_user_defined(&name) {
                            return None;
                        }
                        let subnets = n
                            .ipam
                            .as_ref()
                            .and_then(|i| i.config.as_ref())
                            .into_iter()
                            .flatten()
                            .filter_map(|c| c.subnet.as_deref()?.parse().ok())
                            .collect();
                        Some(Followed {
                            id: n.id.clone().unwrap_or_default(),
                            name,
                            subnets,
                        })
                    })
                    .collect();
            }
            // The event loop reports the engine's troubles; the early scope just waits.
            Err(error) => debug!(%error, "early askers: cannot list networks"),
        }
    }

    async fn connected(&mut self, network: &str, container: &str) {
        let Some((name, addresses)) = addresses_on(&self.docker, network, container).await else {
            return;
        };
        if !self.engine.is_user_defined(&name) || addresses.is_empty() {
            return;
        }
        counter!(names::DOCKER_EARLY_ASKERS_TOTAL, "how" => "connect").increment(1);
        let now = Instant::now();
        self.containers
            .retain(|_, (at, _)| now.duration_since(*at) < EARLY_TTL);
        let entry = self
            .containers
            .entry(container.to_string())
            .or_insert_with(|| (now, BTreeMap::new()));
        entry.0 = now;
        entry.1.insert(name, addresses);
        let networks: Vec<String> = entry.1.keys().cloned().collect();
        let all: Vec<IpAddr> = entry.1.values().flatten().copied().collect();
        debug!(
            container,
            ?networks,
            ?all,
            "early scope from network connect"
        );
        self.registry.learn_early(&all, &networks);
    }

    fn disconnected(&mut self, network: &str, container: &str) {
        let Some((_, by_network)) = self.containers.get_mut(container) else {
            return;
        };
        // The event names the network by ID; the map holds names.
        let name = self
            .networks
            .iter()
            .find(|n| n.id == network || n.name == network)
            .map(|n| n.name.clone());
        if let Some(addresses) = name.and_then(|n| by_network.remove(&n)) {
            self.registry.forget_early(&addresses);
        }
    }

    /// Finds the container asking from `ip` on the followed networks whose subnets hold it,
    /// and scopes `ip` to that container's networks.
    async fn look_up(&mut self, ip: IpAddr) {
        if self.registry.knows_asker(ip) {
            return;
        }
        let candidates: Vec<Followed> = self
            .networks
            .iter()
            .filter(|n| n.subnets.iter().any(|s| s.contains(&ip)))
            .cloned()
            .collect();
        for network in candidates {
            let Ok(inspected) = self
                .docker
                .inspect_network(&network.id, None::<InspectNetworkOptions>)
                .await
            else {
                continue;
            };
            let found = inspected
                .containers
                .unwrap_or_default()
                .into_iter()
                .find(|(_, e)| endpoint_addresses(e).contains(&ip));
            let Some((container, _)) = found else {
                continue;
            };
            let mut networks = vec![network.name.clone()];
            networks.extend(self.networks_of(&container).await);
            networks.sort();
            networks.dedup();
            counter!(names::DOCKER_EARLY_ASKERS_TOTAL, "how" => "lookup").increment(1);
            info!(%ip, container = %short(&container), ?networks, "an unknown asker was looked up in the engine");
            self.registry.learn_early(&[ip], &networks);
            return;
        }
        counter!(names::DOCKER_EARLY_ASKERS_TOTAL, "how" => "not_found").increment(1);
        debug!(%ip, "an unknown asker inside a followed subnet is no container's");
    }

    /// The user-defined networks the engine's container list names for `container` (the list
    /// reads the engine's snapshot, without the container's lock).
    async fn networks_of(&self, container: &str) -> Vec<String> {
        let filters = HashMap::from([("id", vec![container])]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let Ok(listed) = self.docker.list_containers(Some(options)).await else {
            return Vec::new();
        };
        listed
            .into_iter()
            .flat_map(|c| {
                c.network_settings
                    .and_then(|n| n.networks)
                    .unwrap_or_default()
                    .into_keys()
            })
            .filter(|n| self.engine.is_user_defined(n))
            .collect()
    }
}

/// Clears the registry's lookup channel when the task ends, so the front end stops waiting
/// on lookups nobody serves.
struct StopLookups(Arc<Registry>);

impl Drop for StopLookups {
    fn drop(&mut self) {
        self.0.set_asker_lookups(None, Vec::new());
    }
}

/// Whether inspected container `c` is on the network with ID `network`.
fn on_network(c: &ContainerInspectResponse, network: &str) -> bool {
    c.network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
        .is_some_and(|nets| {
            nets.values()
                .any(|ep| ep.network_id.as_deref() == Some(network))
        })
}

/// The addresses `container` has on `network` (an ID or a name), and the network's name, from
/// the network's inspect, which does not wait on the container's lock (1–2 ms while the engine
/// starts it). `None` when the network cannot be read or does not list the container.
pub async fn addresses_on(
    docker: &Docker,
    network: &str,
    container: &str,
) -> Option<(String, Vec<IpAddr>)> {
    let inspected = docker
        .inspect_network(network, None::<InspectNetworkOptions>)
        .await
        .map_err(|error| debug!(%error, network, "cannot inspect network"))
        .ok()?;
    let name = inspected.name.clone()?;
    let endpoints = inspected.containers.unwrap_or_default();
    let endpoint = endpoints.get(container)?;
    Some((name, endpoint_addresses(endpoint)))
}

/// An endpoint's addresses, without their prefix lengths (`10.0.0.2/24`).
pub fn endpoint_addresses(endpoint: &bollard::models::EndpointResource) -> Vec<IpAddr> {
    [&endpoint.ipv4_address, &endpoint.ipv6_address]
        .into_iter()
        .filter_map(|a| a.as_deref())
        .filter_map(|a| a.split('/').next()?.parse().ok())
        .collect()
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET: &str = "4e7400004e7400004e7400004e7400004e7400004e7400004e7400004e740000";

    fn named(name: &str) -> ContainerInspectResponse {
        ContainerInspectResponse {
            name: Some(name.into()),
            ..Default::default()
        }
    }

    /// Read started, on the network with ID `network`.
    fn started_on(name: &str, network: &str) -> ContainerInspectResponse {
        let endpoint = bollard::models::EndpointSettings {
            network_id: Some(network.into()),
            ..Default::default()
        };
        ContainerInspectResponse {
            network_settings: Some(bollard::models::NetworkSettings {
                networks: Some(HashMap::from([("net".to_string(), endpoint)])),
                ..Default::default()
            }),
            ..named(name)
        }
    }

    #[tokio::test]
    async fn a_connect_waits_for_the_create_read_on_its_way_and_no_longer() {
        let created = Created::default();
        // Nothing expected: no wait at all.
        let started = Instant::now();
        assert!(matches!(
            created.wait("none", NET, Duration::from_secs(5)).await,
            Waited::Nothing
        ));
        assert!(started.elapsed() < Duration::from_secs(1));
        // Expected, landing 30 ms later: the waiter gets it.
        created.expect("a");
        let landing = created.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            landing.fill("a", named("/a"));
        });
        let got = created.wait("a", NET, Duration::from_secs(5)).await;
        assert!(matches!(got, Waited::Read));
        assert_eq!(created.peek("a").and_then(|c| c.name), Some("/a".into()));
        // Expected, then given up: the waiter is told at once, not at its limit.
        created.expect("b");
        let giving_up = created.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            giving_up.forget("b");
        });
        let started = Instant::now();
        assert!(matches!(
            created.wait("b", NET, Duration::from_secs(5)).await,
            Waited::Nothing
        ));
        assert!(started.elapsed() < Duration::from_secs(4));
        // Expected and never landing: the limit holds.
        created.expect("c");
        assert!(matches!(
            created.wait("c", NET, Duration::from_millis(50)).await,
            Waited::Nothing
        ));
        // A read landing after the container was read whole and forgotten is dropped.
        created.expect("d");
        created.forget("d");
        created.fill("d", named("/d"));
        assert!(matches!(
            created.wait("d", NET, Duration::from_secs(5)).await,
            Waited::Nothing
        ));
    }

    #[tokio::test]
    async fn a_read_that_found_the_container_started_serves_its_connect_and_is_taken_by_its_start()
    {
        let created = Created::default();
        created.expect("a");
        assert!(created.may_have_started("a"), "on its way");
        let landing = created.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            landing.started("a", started_on("/a", NET));
        });
        // The connect still waiting gets it as it lands (before the start event) ...
        match created.wait("a", NET, Duration::from_secs(5)).await {
            Waited::Started(c) => assert_eq!(c.name.as_deref(), Some("/a")),
            other => panic!("the connect gets the started read, got {other:?}"),
        }
        // ... and so does the start (the connect's read may be stale by then), once.
        assert!(created.may_have_started("a"));
        let got = created.wait_started("a", Duration::from_secs(5)).await;
        assert_eq!(got.and_then(|c| c.name), Some("/a".to_string()));
        assert!(!created.may_have_started("a"));
        assert!(
            created
                .wait_started("a", Duration::from_millis(10))
                .await
                .is_none()
        );
        assert!(matches!(
            created.wait("a", NET, Duration::from_millis(10)).await,
            Waited::Nothing
        ));
        // A start that comes first takes it, and a later connect finds nothing.
        created.expect("s");
        created.started("s", started_on("/s", NET));
        let got = created.wait_started("s", Duration::from_secs(5)).await;
        assert_eq!(got.and_then(|c| c.name), Some("/s".to_string()));
        assert!(matches!(
            created.wait("s", NET, Duration::from_millis(10)).await,
            Waited::Nothing
        ));
        // A copy that does not show the connect's network is not that connect's (a later
        // `docker network connect`): it gets nothing, and the start still takes the read.
        created.expect("o");
        created.started("o", started_on("/o", NET));
        assert!(matches!(
            created
                .wait("o", "other-network", Duration::from_millis(10))
                .await,
            Waited::Nothing
        ));
        assert!(created.may_have_started("o"));
        assert!(created.wait_started("o", Duration::ZERO).await.is_some());
        // A read landing after the loop read the container and forgot it is dropped.
        created.expect("f");
        created.forget("f");
        created.started("f", started_on("/f", NET));
        assert!(!created.may_have_started("f"));
        assert!(matches!(
            created.wait("f", NET, Duration::from_millis(10)).await,
            Waited::Nothing
        ));
        // A read that found it not started is the connect's, not the start's.
        created.expect("b");
        created.fill("b", named("/b"));
        assert!(!created.may_have_started("b"));
        assert!(
            created
                .wait_started("b", Duration::from_millis(10))
                .await
                .is_none()
        );
        assert!(created.peek("b").is_some());
    }

    #[test]
    fn endpoint_addresses_drop_prefix_lengths_and_blanks() {
        let endpoint = bollard::models::EndpointResource {
            ipv4_address: Some("10.231.0.2/24".into()),
            ipv6_address: Some(String::new()),
            ..Default::default()
        };
        assert_eq!(
            endpoint_addresses(&endpoint),
            vec!["10.231.0.2".parse::<IpAddr>().unwrap()]
        );
    }
}
