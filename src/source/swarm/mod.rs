//! The Swarm source: follows a Swarm manager's services and tasks on overlay networks.
//!
//! Each refresh reads the whole cluster state from the manager (networks, services, running
//! tasks) and reconciles it against what this source applied before, so a missed event costs
//! at most one poll interval and never leaves a stale entry. Refreshes are triggered by the
//! engine's `service`, `node`, `network` and container events (task state itself has no
//! events) and by a short poll. Outside a swarm it serves nothing; when the manager is
//! unreachable it keeps the last state (stale) and retries with capped backoff. It reads the
//! manager only; it never writes to it.

pub mod manager;
pub mod translate;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use bollard::query_parameters::EventsOptionsBuilder;
use futures_util::{FutureExt, StreamExt};
use metrics::{counter, gauge, histogram};
use tracing::{debug, info, warn};

use manager::{Manager, ManagerError, Role};

use super::{publish::Publisher, tracked::Tracked};
use crate::registry::Owner;
use crate::telemetry::names;

/// Re-read pace, and for how long, after an event.
/// What the Swarm source publishes is its own (see [`crate::registry::Owner`]).
pub const OWNER: Owner = Owner("swarm");

const QUICK_REREAD: Duration = Duration::from_millis(100);
const QUICK_WINDOW: Duration = Duration::from_secs(3);
/// Container actions on this node that move a task (the manager's view follows them).
const CONTAINER_ACTIONS: [&str; 4] = ["start", "die", "health_status", "destroy"];

#[derive(Debug, Clone)]
pub struct SwarmOptions {
    /// The manager's engine address; `None` uses `DOCKER_HOST` or the local socket.
    pub host: Option<String>,
    /// How often the tasks are read when no event says so.
    pub poll: Duration,
}

pub struct SwarmSource {
    options: SwarmOptions,
    publisher: Publisher,
    tracked: Tracked,
    role: Option<Role>,
    /// When `role` was last asked of the engine.
    role_checked: Option<Instant>,
}

impl SwarmSource {
    /// Publishes through `publisher` (as [`OWNER`]); it is ready when the first read of the
    /// cluster (or of not being in one) is applied.
    pub fn new(options: SwarmOptions, publisher: Publisher) -> SwarmSource {
        SwarmSource {
            options,
            publisher,
            tracked: Tracked::default(),
            role: None,
            role_checked: None,
        }
    }

    /// Follows the manager forever, reconnecting with capped backoff (`source::live`).
    pub async fn run(self) {
        crate::source::live::run(self).await;
    }

    /// Returns only with the error that ended it.
    async fn follow(&mut self) -> ManagerError {
        let manager = match Manager::connect(self.options.host.as_deref()).await {
            Ok(m) => m,
            Err(e) => return e,
        };
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            .to_string();
        let filters = HashMap::from([
            ("type", vec!["service", "node", "network", "container"]),
            (
                "event",
                CONTAINER_ACTIONS
                    .iter()
                    .copied()
                    // Service and node changes, network changes; "destroy" is already there.
                    .chain(["create", "update", "remove", "connect", "disconnect"])
                    .collect(),
            ),
        ]);
        let mut events = manager.docker().events(Some(
            EventsOptionsBuilder::new()
                .since(&since)
                .filters(&filters)
                .build(),
        ));
        // After an event the manager's task states lag the containers by a moment (a task
        // shows "starting" after its container's start event), so an event opens a short
        // window of quick re-reads; otherwise the poll interval applies.
        let mut quick_until = Instant::now();
        loop {
            if let Err(e) = self.refresh(&manager).await {
                return e;
            }
            self.publisher.synced();
            let wait = if Instant::now() < quick_until {
                QUICK_REREAD.min(self.options.poll)
            } else {
                self.options.poll
            };
            tokio::select! {
                event = events.next() => {
                    match event {
                        Some(Ok(event)) => {
                            counter!(names::SWARM_TRIGGERS_TOTAL, "by" => "event").increment(1);
                            debug!(typ = ?event.typ, action = ?event.action, "Swarm refresh on event");
                            // Events that arrived together cost one refresh.
                            while let Some(Some(Ok(_))) = events.next().now_or_never() {}
                            quick_until = Instant::now() + QUICK_WINDOW;
                        }
                        Some(Err(source)) => {
                            return ManagerError::Request { what: "events", source };
                        }
                        None => {
                            return ManagerError::EventsEnded {
                                host: manager.host().to_string(),
                            };
                        }
                    }
                }
                _ = tokio::time::sleep(wait) => {
                    counter!(names::SWARM_TRIGGERS_TOTAL, "by" => "poll").increment(1);
                }
            }
        }
    }

    async fn refresh(&mut self, manager: &Manager) -> Result<(), ManagerError> {
        let started = Instant::now();
        // `/info` costs the engine ~15 times a task read, so a known manager is asked again
        // only once per poll interval, or when a read fails (it may just have left the swarm).
        let role_is_fresh = self.role == Some(Role::Manager)
            && self
                .role_checked
                .is_some_and(|at| at.elapsed() < self.options.poll);
        let mut role = if role_is_fresh {
            Role::Manager
        } else {
            self.check_role(manager).await?
        };
        let state = match role {
            Role::Manager => match manager.read().await {
                Ok(state) => Some(state),
                Err(error) => {
                    role = self.check_role(manager).await?;
                    if role == Role::Manager {
                        return Err(error);
                    }
                    None
                }
            },
            _ => None,
        };
        let changes = match (role, state) {
            (Role::Manager, Some(state)) => {
                let networks: BTreeSet<String> =
                    state.network_names().map(str::to_string).collect();
                let endpoints = state.endpoints();
                gauge!(names::SWARM_SERVICES).set(state.services.len() as f64);
                gauge!(names::SWARM_TASKS).set(state.tasks.len() as f64);
                self.tracked.reconcile(networks, endpoints)
            }
            // After `docker swarm leave` the overlays are gone, and with them their names.
            (Role::Outside, _) => self.tracked.reconcile(BTreeSet::new(), BTreeMap::new()),
            // Unreadable, not empty: keep what was known.
            _ => Vec::new(),
        };
        if !changes.is_empty() {
            info!(
                changes = changes.len(),
                endpoints = self.tracked.endpoint_count(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "Swarm state applied"
            );
            self.publisher.apply_all(changes);
        }
        histogram!(names::SWARM_REFRESH).record(started.elapsed().as_secs_f64());
        Ok(())
    }

    /// Asks the engine where it stands in a swarm, and says so when that changed.
    async fn check_role(&mut self, manager: &Manager) -> Result<Role, ManagerError> {
        let role = manager.role().await?;
        self.role_checked = Some(Instant::now());
        if self.role != Some(role) {
            match role {
                Role::Manager => info!(
                    host = manager.host(),
                    "Swarm manager: following services and tasks"
                ),
                Role::Worker => warn!(
                    host = manager.host(),
                    "this engine is a Swarm worker: cluster state is only readable from a manager \
                     (give --swarm-host tcp://MANAGER:PORT, e.g. a read-only socket proxy on a manager)"
                ),
                Role::Outside => info!(
                    host = manager.host(),
                    "not in a swarm: no Swarm services to serve"
                ),
            }
            gauge!(names::SWARM_MANAGER).set(if role == Role::Manager { 1.0 } else { 0.0 });
            self.role = Some(role);
        }
        Ok(role)
    }
}

impl crate::source::live::LiveSource for SwarmSource {
    const WHAT: &'static str = "the Swarm manager";
    type Error = ManagerError;

    async fn session(&mut self) -> ManagerError {
        self.follow().await
    }

    fn publisher(&self) -> &Publisher {
        &self.publisher
    }

    fn endpoints_held(&self) -> usize {
        self.tracked.endpoint_count()
    }
}
