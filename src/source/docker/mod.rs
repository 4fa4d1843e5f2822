//! The Docker source: follows the engine and keeps the registry equal to what it says.
//!
//! A session connects, notes the time, takes a snapshot (networks, then every running
//! container, inspected), reconciles it against what this source applied before, then follows
//! the event stream from the noted time, so nothing between snapshot and stream is missed
//! (replayed events are harmless: each one re-inspects). When the engine goes away the records
//! stay as they were (stale, and logged as such) and the session starts again with capped
//! backoff. What each event means is decided apart (`events.rs`); the loop here does it.
//! This module reads the engine only; it never writes to it.

mod client;
mod early;
mod events;
mod listed;
mod reads;
pub mod state;
pub mod translate;

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use bollard::{
    Docker, errors::Error as BollardError, models::EventMessage,
    query_parameters::EventsOptionsBuilder,
};
use futures_util::StreamExt;
use metrics::{counter, gauge, histogram};
use tokio::sync::mpsc;
use tokio_util::task::AbortOnDropHandle;
use tracing::{debug, info, warn};

pub use translate::Policy;
use translate::{NetworkFacts, NoBridge, bridge_of, gateways_of};

use events::Act;
use listed::{Implies, Verdict};
use reads::{Answer, Ask, Why};
use state::{ContainerFacts, DockerState, SnapshotFacts};

use super::{bridge::BridgeEvent, engine::Engine, publish::Publisher};
use crate::registry::Owner;
use crate::telemetry::names;

/// What the Docker source publishes is its own: the static file and Swarm may publish on the
/// same network names without taking or losing each other's endpoints.
pub const OWNER: Owner = Owner("docker");

#[derive(Debug, Clone)]
pub struct DockerOptions {
    /// `unix:///path`, `tcp://host:port`; `None` uses `DOCKER_HOST` or the local socket.
    pub host: Option<String>,
    pub policy: Policy,
    /// Engine events read but not yet applied, at most. Past it the queue is dropped and a
    /// fresh snapshot reconciles instead, so a storm costs one resync, not unbounded memory.
    pub max_pending_events: usize,
    /// How often the engine's list of containers is compared with what the source holds, to
    /// catch what the event stream missed; zero turns it off.
    pub reconcile: Duration,
}

impl Default for DockerOptions {
    fn default() -> Self {
        DockerOptions {
            host: None,
            policy: Policy::default(),
            max_pending_events: crate::config::DEFAULT_MAX_PENDING_EVENTS,
            reconcile: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DockerSourceError {
    #[error("Docker engine request failed ({what}): {source}")]
    Request {
        what: String,
        #[source]
        source: BollardError,
    },
    #[error("the Docker event stream ended")]
    StreamEnded,
    /// The first request of a session failed: the engine is not there for us.
    #[error("cannot reach the Docker engine at {address}: {reason}")]
    Unreachable { address: String, reason: String },
}

/// The running source: its options, what it applied (`state.rs`), where it publishes and
/// where it reports bridges.
pub struct DockerSource {
    options: DockerOptions,
    publisher: Publisher,
    state: DockerState,
    bridges: Option<Bridges>,
    /// Containers as read at `create` (`early.rs`), published from at `network connect`.
    created: early::Created,
    /// Container reads in flight beside the loop (`reads.rs`).
    reads: reads::Reads,
}

impl DockerSource {
    /// Publishes through `publisher` (as [`OWNER`]); it is ready when the first snapshot is
    /// applied.
    pub fn new(options: DockerOptions, publisher: Publisher) -> DockerSource {
        DockerSource {
            options,
            publisher,
            state: DockerState::default(),
            bridges: None,
            created: early::Created::default(),
            reads: reads::Reads::default(),
        }
    }

    /// Reports user-defined bridges as they come and go (for `--attach-bridges`), and the
    /// default bridge too with `attach_default`.
    pub fn with_bridges(
        mut self,
        tx: mpsc::Sender<BridgeEvent>,
        user_defined: bool,
        attach_default: bool,
    ) -> DockerSource {
        self.bridges = Some(Bridges {
            tx,
            user_defined,
            attach_default,
        });
        self
    }

    /// Follows the engine forever, reconnecting with capped backoff (`source::live`).
    pub async fn run(self) {
        crate::source::live::run(self).await;
    }

    fn connect(&self) -> Result<Docker, DockerSourceError> {
        let host = self.options.host.clone();
        let result = match &host {
            Some(h) => Docker::connect_with_host(h),
            None => Docker::connect_with_defaults(),
        };
        result.map_err(|error| {
            let address = crate::source::reach::engine_address(host.as_deref());
            let reason = match &error {
                BollardError::SocketNotFoundError(path) => format!(
                    "no socket at {path}; is the engine running here? Give its address with --docker-host"
                ),
                other => crate::source::reach::unreachable_reason(&address, other),
            };
            DockerSourceError::Unreachable { address, reason }
        })
    }

    async fn session(&mut self) -> Result<(), DockerSourceError> {
        let docker = self.connect()?.negotiate_version().await.map_err(|error| {
            let address = crate::source::reach::engine_address(self.options.host.as_deref());
            let reason = crate::source::reach::unreachable_reason(&address, &error);
            DockerSourceError::Unreachable { address, reason }
        })?;
        let engine = client::engine_of(&docker).await?;
        if engine != self.options.policy.engine {
            info!(engine = engine.name(), "the engine's naming rules apply");
        }
        self.options.policy.engine = engine;
        // Taken from the engine's clock before the snapshot and handed to the event stream: no
        // gap between the two, however far our clock is from the engine's.
        let since = client::engine_now(&docker).await?;
        // Early askers: containers scoped from their `network connect`, and unknown askers
        // looked up, beside this loop (see `early.rs`); it ends with the session.
        let (early_tx, early_rx) = mpsc::channel(early::EVENT_QUEUE);
        self.created = early::Created::default();
        let early = early::EarlyAskers::new(
            docker.clone(),
            Arc::clone(self.publisher.registry()),
            engine,
        );
        let _early = AbortOnDropHandle::new(tokio::spawn(early.run(early_rx)));
        self.reads = reads::Reads::new(&docker, self.options.policy, self.created.clone());
        self.snapshot(&docker).await?;

        let mut filters = HashMap::from([("type", vec!["container", "network"])]);
        if let Some(actions) = events::action_filter(engine) {
            filters.insert("event", actions);
        }
        let options = EventsOptionsBuilder::new()
            .since(&since)
            .filters(&filters)
            .build();
        // A reader task keeps the engine's stream flowing into a bounded queue; this task
        // applies from it. If the queue fills, the reader drops what it cannot queue and
        // flags it, and the next turn here reconciles from a fresh snapshot instead.
        let capacity = self.options.max_pending_events.max(1);
        let (tx, mut rx) = mpsc::channel::<Result<EventMessage, BollardError>>(capacity);
        let overflowed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut events = docker.events(Some(options));
        let reader_overflowed = Arc::clone(&overflowed);
        let reader_created = self.created.clone();
        let reader_docker = docker.clone();
        let reader = tokio::spawn(async move {
            while let Some(event) = events.next().await {
                if let Ok(event) = &event {
                    // As it arrives, ahead of the queue: the head start is the point. A
                    // create is read now (and marked so: the event loop, reaching the
                    // container's connect, waits for the read instead of racing it).
                    if let Some(container) = events::created_container(event) {
                        reader_created.read(&reader_docker, container);
                    } else if let Some(early) = events::early_event(event) {
                        let _ = early_tx.try_send(early);
                    }
                }
                let failed = event.is_err();
                match tx.try_send(event) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        if !reader_overflowed.swap(true, std::sync::atomic::Ordering::Relaxed) {
                            counter!(names::DOCKER_EVENT_OVERFLOWS_TOTAL).increment(1);
                        }
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => return,
                }
                gauge!(names::DOCKER_PENDING_EVENTS)
                    .set((tx.max_capacity() - tx.capacity()) as f64);
                if failed {
                    return;
                }
            }
        });
        let _stop_reader = AbortOnDropHandle::new(reader);
        let period = self.options.reconcile;
        let mut reconcile = (!period.is_zero())
            .then(|| tokio::time::interval_at(tokio::time::Instant::now() + period, period));
        loop {
            // Events, reads landing (`reads.rs`) and the reconcile tick, whichever comes.
            enum Turn {
                Event(Option<Result<EventMessage, BollardError>>),
                Read(Option<reads::Landed>),
                Tick,
            }
            let reading = !self.reads.is_empty();
            let turn = tokio::select! {
                event = rx.recv() => Turn::Event(event),
                landed = self.reads.next(), if reading => Turn::Read(landed),
                _ = tick(&mut reconcile) => Turn::Tick,
            };
            let event = match turn {
                Turn::Event(event) => event,
                Turn::Read(landed) => {
                    if let Some(landed) = landed {
                        self.landed(landed)?;
                    }
                    continue;
                }
                Turn::Tick => {
                    self.reconcile(&docker).await?;
                    continue;
                }
            };
            let Some(event) = event else { break };
            if overflowed.swap(false, std::sync::atomic::Ordering::Relaxed) {
                while rx.try_recv().is_ok() {}
                warn!(
                    max_pending_events = capacity,
                    "Docker events arrived faster than they could be applied; resyncing from a snapshot"
                );
                self.snapshot(&docker).await?;
                continue;
            }
            gauge!(names::DOCKER_PENDING_EVENTS).set(rx.len() as f64);
            let event = event.map_err(client::request_error("events"))?;
            self.handle_event(&docker, event).await?;
        }
        Ok(())
    }

    async fn snapshot(&mut self, docker: &Docker) -> Result<(), DockerSourceError> {
        // Everything is read afresh here: reads in flight are older than that.
        self.reads.clear();
        let started = Instant::now();
        let networks = client::networks(docker).await?;
        let engine = self.engine();
        let user_defined = |n: &bollard::models::Network| {
            n.name.clone().filter(|name| engine.is_user_defined(name))
        };
        let bridges: Vec<_> = networks
            .iter()
            .filter_map(NetworkFacts::of_listed)
            .filter_map(|n| self.bridge(n))
            .collect();
        let running = client::running(docker).await?;
        let listed = client::listed(&running);
        let ids: Vec<String> = running.into_iter().filter_map(|c| c.id).collect();
        let total = ids.len();
        info!(
            networks = networks.iter().filter_map(user_defined).count(),
            containers = total,
            "Docker snapshot: inspecting running containers"
        );
        let facts = SnapshotFacts {
            networks: networks.iter().filter_map(user_defined).collect(),
            internal: networks
                .iter()
                .filter_map(|n| Some((user_defined(n)?, n.internal == Some(true))))
                .collect(),
            gateways: networks
                .iter()
                .filter_map(|n| {
                    let facts = NetworkFacts::of_listed(n)?;
                    let gateways = gateways_of(facts, n.internal == Some(true), engine);
                    Some((user_defined(n)?, gateways))
                })
                .collect(),
            listed,
            containers: client::containers(docker, ids, self.options.policy).await?,
        };
        let changes = self.state.snapshot(facts);
        let applied = changes.len();
        self.publisher.apply_all(changes);
        // The gateway listeners hear of the bridges before the source says it is ready, as
        // they did before the Publisher.
        self.report_bridges(BridgeEvent::Sync(bridges)).await;
        self.publisher.synced();
        counter!(names::DOCKER_RESYNCS_TOTAL).increment(1);
        info!(
            containers = total,
            endpoints = self.state.endpoint_count(),
            changes = applied,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "Docker snapshot applied; following events"
        );
        Ok(())
    }

    /// Applies one engine event: what it means is decided in `events.rs`; here it is done.
    async fn handle_event(
        &mut self,
        docker: &Docker,
        event: EventMessage,
    ) -> Result<(), DockerSourceError> {
        let Some(event) = events::decode(event) else {
            return Ok(()); // an engine that cannot filter by action sends every one (Podman)
        };
        counter!(names::DOCKER_EVENTS_TOTAL, "action" => event.verb.clone()).increment(1);
        debug!(
            ?event.typ,
            action = %event.action,
            id = ?event.id,
            name = event.attributes.get("name").map(String::as_str),
            lag_us = event.time_nano.map(|t| (unix_nanos() - t) / 1000),
            "Docker event"
        );
        let event_time = event.time_nano;
        let act = event.decide(self.engine(), self.lists_containers(), |id| {
            self.created.may_have_started(id)
        });
        match act {
            Act::Nothing => {}
            Act::Gone { id } => {
                self.reads.supersede(&id);
                self.publish_container(&id, ContainerFacts::default());
                self.created.forget(&id);
            }
            Act::Read {
                id,
                first: (why, ask),
                also,
                forget_created,
            } => {
                let seq = self.reads.begin(&id, why, ask);
                for (why, ask) in also {
                    self.reads.also(&id, seq, why, ask);
                }
                if forget_created {
                    self.created.forget(&id);
                }
            }
            Act::NetworkCreated { id, name } => {
                self.network_created(docker, id.as_deref(), name).await?;
            }
            Act::NetworkDestroyed { name } => {
                let changes = self.state.network_destroyed(&name);
                self.publisher.apply_all(changes);
                self.report_bridges(BridgeEvent::Down(name)).await;
            }
            Act::Connected { container, ask } => {
                self.reads.begin(&container, Why::Connect, ask);
            }
            Act::Disconnected {
                container,
                network,
                then: (why, ask),
            } => {
                let changes = self.state.left_network(&container, &network);
                self.publisher.apply_all(changes);
                if self.state.publishes(&container) {
                    self.reads.begin(&container, why, ask);
                } else {
                    self.reads.supersede(&container);
                }
            }
        }
        if let Some(nanos) = event_time {
            let delay = (unix_nanos() - nanos).max(0) as f64 / 1e9;
            histogram!(names::DOCKER_EVENT_TO_APPLY).record(delay);
        }
        Ok(())
    }

    /// Publishes user-defined `network` as created, as internal and with the gateways
    /// its inspect (by `id`) says, and reports it as a bridge when it is one.
    async fn network_created(
        &mut self,
        docker: &Docker,
        id: Option<&str>,
        network: String,
    ) -> Result<(), DockerSourceError> {
        let inspected = match id {
            Some(id) => client::network(docker, id).await?,
            None => None,
        };
        let internal = inspected.as_ref().map(|n| n.internal == Some(true));
        let gateways = inspected
            .as_ref()
            .and_then(|n| {
                let facts = NetworkFacts::of_inspected(n)?;
                Some(gateways_of(facts, n.internal == Some(true), self.engine()))
            })
            .unwrap_or_default();
        let changes = self.state.network_created(&network, internal, gateways);
        self.publisher.apply_all(changes);
        if let Some(bridge) = inspected
            .as_ref()
            .and_then(NetworkFacts::of_inspected)
            .and_then(|n| self.bridge(n))
        {
            self.report_bridges(BridgeEvent::Up(bridge)).await;
        }
        Ok(())
    }

    /// Applies a read that landed and still counts (`reads.rs`).
    fn landed(&mut self, landed: reads::Landed) -> Result<(), DockerSourceError> {
        let reads::Landed {
            id,
            seq,
            why,
            answer,
            ..
        } = landed;
        match answer? {
            Answer::StartedEarly(facts) => {
                counter!(names::DOCKER_EARLY_ASKERS_TOTAL, "how" => "started").increment(1);
                debug!(
                    id,
                    "published at network connect, from the create-time read that waited on the start"
                );
                self.publish_container(&id, facts);
            }
            Answer::Inspected(facts) => {
                if self.publish_container(&id, facts) && why == Why::Reconcile {
                    self.corrected(&id, 1);
                }
            }
            Answer::Listed(entry) => {
                let implies = match why {
                    Why::Event(implies) => implies,
                    _ => Implies::Anything,
                };
                self.publish_listed(&id, seq, entry.as_deref(), &implies);
            }
            Answer::Connected {
                created,
                on,
                listed,
            } => self.publish_connected(&id, seq, created, on, listed),
            Answer::Nothing => {}
        }
        Ok(())
    }

    /// Publishes container `id` from its list entry, as far as the list and what is known of
    /// it go (`listed.rs`); what the list leaves open or contradicts, its inspect settles.
    fn publish_listed(
        &mut self,
        id: &str,
        seq: u64,
        entry: Option<&bollard::models::ContainerSummary>,
        implies: &Implies,
    ) {
        // A first start: what the create-time read says (hostname, aliases) until its own
        // inspect lands, so the names published at connect stay.
        let created = match self.state.known(id) {
            Some(_) => None,
            None => self.created.peek(id).map(|c| listed::known_of(&c)),
        };
        if *implies == Implies::Running {
            self.created.forget(id);
        }
        let known = self.state.known(id).or(created.as_ref());
        match listed::judge(entry, implies, known, self.engine()) {
            Verdict::Gone => {
                self.publish_container(id, ContainerFacts::default());
            }
            Verdict::Publish {
                container,
                complete,
            } => {
                debug!(id, complete, "published from the list");
                counter!(names::DOCKER_LIST_READS_TOTAL, "how" => if complete { "complete" } else { "partial" }).increment(1);
                let facts = client::facts_of(&container, None, self.options.policy);
                self.publish_container(id, facts);
                if !complete || created.is_some() {
                    self.reads.refine(id, seq);
                }
            }
            Verdict::Unsure => {
                counter!(names::DOCKER_LIST_READS_TOTAL, "how" => "unsure").increment(1);
                debug!(id, ?implies, "the list is older than the event; inspecting");
                self.reads.refine(id, seq);
            }
        }
    }

    /// Publishes a container at its `network connect`, with the addresses the network lists
    /// for it (`on`): from what was read at its `create` when that read is there (as Docker
    /// registers a container at connect, before its process starts, when its own inspect
    /// would wait for the start: 400–480 ms measured), else, when it is running already
    /// (`docker network connect`), from its list entry. A container not started yet and not
    /// read at `create` is published at its start.
    fn publish_connected(
        &mut self,
        id: &str,
        seq: u64,
        created: bool,
        on: Option<(String, Vec<std::net::IpAddr>)>,
        entry: Option<Box<bollard::models::ContainerSummary>>,
    ) {
        use bollard::models::ContainerSummaryStateEnum as State;
        let lists = self.lists_containers();
        let not_started = entry
            .as_ref()
            .is_some_and(|e| e.state == Some(State::CREATED));
        let Some((network, addresses)) = on.filter(|(_, addresses)| !addresses.is_empty()) else {
            if !(lists && not_started) {
                self.reads.refine(id, seq);
            }
            return;
        };
        if created && let Some(read) = self.created.peek(id) {
            let started = translate::as_started(&read, &network, &addresses);
            let facts = client::facts_of(&started, None, self.options.policy);
            self.created.keep(id, started);
            counter!(names::DOCKER_EARLY_ASKERS_TOTAL, "how" => "created").increment(1);
            debug!(
                id,
                network, "published at network connect, from the create-time read"
            );
            self.publish_container(id, facts);
            return;
        }
        let Some(mut entry) = entry.filter(|_| lists) else {
            self.reads.refine(id, seq);
            return;
        };
        if not_started {
            return; // its start publishes it
        }
        // The list may not show this network yet (dockerd logs the connect before it updates
        // that view): its addresses are the network's.
        let endpoint = entry
            .network_settings
            .get_or_insert_with(Default::default)
            .networks
            .get_or_insert_with(Default::default)
            .entry(network)
            .or_default();
        for ip in addresses {
            match ip {
                std::net::IpAddr::V4(v4) => endpoint.ip_address = Some(v4.to_string()),
                std::net::IpAddr::V6(v6) => endpoint.global_ipv6_address = Some(v6.to_string()),
            }
        }
        self.publish_listed(id, seq, Some(&entry), &Implies::Running);
    }

    /// Compares the engine's running containers with the last list and has those that
    /// changed or appeared inspected (beside the loop, as any read); those that went are
    /// gone. What that corrects, the event stream had missed (counted: in a healthy run the
    /// counter stays at 0).
    async fn reconcile(&mut self, docker: &Docker) -> Result<(), DockerSourceError> {
        let now = client::listed(&client::running(docker).await?);
        let relisted = self.state.relist(now);
        // Read afresh: a read of the same container still pending is older.
        for id in relisted.changed {
            self.reads.begin(&id, Why::Reconcile, Ask::Inspect);
        }
        let mut corrections = 0u64;
        for id in relisted.gone {
            self.reads.supersede(&id);
            corrections += u64::from(self.publish_container(&id, ContainerFacts::default()));
        }
        if corrections > 0 {
            self.corrected("(gone)", corrections);
        }
        Ok(())
    }

    fn corrected(&self, id: &str, corrections: u64) {
        counter!(names::SOURCE_RECONCILE_CORRECTIONS_TOTAL, "source" => "docker")
            .increment(corrections);
        warn!(
            id,
            corrections,
            "reconcile found containers whose records the event stream had not brought; corrected"
        );
    }

    /// Whether containers are published from the engine's list (`listed.rs`): Docker's; for
    /// Podman, whose list entries have not been checked against its inspect, every read is an
    /// inspect.
    fn lists_containers(&self) -> bool {
        self.engine() == Engine::Docker
    }

    /// Publishes what container `id` is now; returns whether that changed anything.
    fn publish_container(&mut self, id: &str, facts: ContainerFacts) -> bool {
        let changes = self.state.container(id, facts);
        let changed = !changes.is_empty();
        if changed {
            debug!(id, changes = changes.len(), "container changed");
            self.publisher.apply_all(changes);
        }
        changed
    }

    /// Whose naming rules apply (set from the engine at the start of each session).
    fn engine(&self) -> Engine {
        self.options.policy.engine
    }

    /// The bridge to report for `network`, when bridges are followed; a skipped one is
    /// logged with its reason.
    fn bridge(&self, network: NetworkFacts<'_>) -> Option<crate::source::bridge::Bridge> {
        let bridges = self.bridges.as_ref()?;
        match bridge_of(network, bridges.attach_default, self.engine()) {
            Ok(bridge) if bridge.default || bridges.user_defined => Some(bridge),
            Ok(_) => None, // only the default bridge was asked for
            Err(NoBridge::NotABridge) => None,
            Err(skip) => {
                info!(
                    network = network.name,
                    reason = skip.reason(),
                    "no gateway listener for this bridge"
                );
                None
            }
        }
    }

    async fn report_bridges(&self, event: BridgeEvent) {
        if let Some(bridges) = &self.bridges {
            let _ = bridges.tx.send(event).await;
        }
    }
}

impl crate::source::live::LiveSource for DockerSource {
    const WHAT: &'static str = "the Docker engine";
    type Error = DockerSourceError;

    async fn session(&mut self) -> DockerSourceError {
        match DockerSource::session(self).await {
            Ok(()) => DockerSourceError::StreamEnded,
            Err(e) => e,
        }
    }

    fn publisher(&self) -> &Publisher {
        &self.publisher
    }

    fn endpoints_held(&self) -> usize {
        self.state.endpoint_count()
    }
}

/// Now, in nanoseconds since the Unix epoch (as the engine stamps its events).
fn unix_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Waits for the next reconcile tick, or forever when reconciling is off.
async fn tick(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Where bridges are reported, and whether the default bridge is one of them.
struct Bridges {
    tx: mpsc::Sender<BridgeEvent>,
    user_defined: bool,
    attach_default: bool,
}
