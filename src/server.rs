//! The server assembled in one place: from a checked [`Config`] to the registry, the answer
//! path, forwarding, HTTP, the reloader, the live sources and the listeners, handed back as a
//! [`Running`] server. The binary's `serve` calls [`start`]; the fuzz targets and the benches
//! answer from [`core`], the same registry and responder `start` serves.
//!
//! It parses no command line, installs no signal handler and prints nothing: the flags reach
//! it already applied to the config (and as an override for reloads), and how to stop is the
//! caller's. What a setting means is decided in `config`, not here: this only wires.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use tracing::{info, warn};

use crate::{
    config::Config,
    dns::{
        self, ForwardPolicy, Responder, Settings, UdpOptions,
        forward::{CacheLimits, ForwardSettings, Forwarder, choose_upstreams, without_loops},
    },
    fd_budget,
    registry::Registry,
    source::{
        docker::{self as docker_source, DockerOptions, DockerSource, Policy},
        publish::Publisher,
        static_file::{self, StaticSource},
        swarm::{self as swarm_source, SwarmOptions, SwarmSource},
    },
    telemetry::{self, http::Readiness, names},
};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot install the metrics recorder: {0}")]
    Recorder(#[from] metrics_exporter_prometheus::BuildError),
    #[error("cannot build the registry: {0}")]
    Registry(String),
    #[error("cannot listen for HTTP on {addr}: {source}")]
    Http {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the DNS listeners: {0}")]
    Listeners(#[from] dns::BindError),
}

/// What [`start`] serves.
pub struct Launch {
    pub config: Config,
    /// The file the config came from: reloaded when it changes and on SIGHUP. `None`: the
    /// embedded default, never reloaded.
    pub path: Option<PathBuf>,
    /// Applied to every config a reload loads: the command line outranks every file, as it
    /// outranked the first.
    pub overrides: Box<dyn Fn(&mut Config) + Send + Sync>,
    /// Where `forward.upstreams` came from, as the start log names it (`--upstream`, or the
    /// file's `forward.upstreams`).
    pub upstreams_from: &'static str,
}

/// The registry and the answer path a config describes, its static records loaded.
pub struct Core {
    pub registry: Arc<Registry>,
    pub settings: Arc<Settings>,
    pub responder: Responder,
    /// What the static records were loaded from, for the reloader to diff against.
    pub static_source: StaticSource,
    /// Changes the static records made.
    pub changes: usize,
}

/// The registry and responder for `config`, with its static records, rate limit and TTL, and
/// forwarding when `forward` is given. Nothing is bound and nothing runs in the background.
pub fn core(config: &Config, forward: Option<ForwardPolicy>) -> Result<Core, StartError> {
    let registry = Arc::new(
        Registry::new(config.server.domain()).map_err(|e| StartError::Registry(e.to_string()))?,
    );
    // At least 1, as every count here: the config's bounds say so at load.
    registry.set_max_endpoints(config.server.max_endpoints);
    let mut static_source = StaticSource::default();
    let changes = static_source.sync(config, &registry);
    registry.set_scoping(
        config.server.default_view.clone(),
        config.server.trusted_askers.clone(),
    );
    registry.set_own_domains(&config.server.own_domains());
    registry.set_host_name(config.server.host_name());
    let settings = Arc::new(Settings::new(
        config.server.ttl,
        config.server.max_udp_payload,
    ));
    settings.set_log_queries(config.server.log_queries);
    let mut responder = Responder::new(Arc::clone(&registry), Arc::clone(&settings))
        .with_rate_limit(dns::RateLimit {
            per_second: config.server.rate_limit_per_second,
            ..dns::RateLimit::default()
        });
    if let Some(policy) = forward {
        responder = responder.with_forwarding(policy);
    }
    Ok(Core {
        registry,
        settings,
        responder,
        static_source,
        changes,
    })
}

/// A started server: where it listens and whether it is ready. Dropping it stops the
/// listeners; [`Running::serve`] keeps them until the future is dropped.
pub struct Running {
    /// The DNS addresses bound (UDP and TCP on each), ports chosen when 0 was asked.
    pub dns: Vec<SocketAddr>,
    pub readiness: Arc<Readiness>,
    listeners: dns::Listeners,
}

impl Running {
    /// Serves until the future is dropped (or the listeners fail).
    pub async fn serve(self) -> anyhow::Result<()> {
        self.listeners.run().await
    }
}

/// Starts everything `launch` describes on the current tokio runtime: the recorder (when
/// HTTP is on), the descriptor plan, the registry and its static records, forwarding, HTTP,
/// the reloader, the Docker and Swarm sources, the listeners, and systemd's notifications.
pub async fn start(launch: Launch) -> Result<Running, StartError> {
    let Launch {
        config,
        path,
        overrides,
        upstreams_from,
    } = launch;
    // The recorder first: metric handles kept by what is built below (an upstream's series,
    // the fast path's counters) are the recorder's only if it is installed before them.
    let prometheus = match config.server.http_listen {
        Some(_) => Some(telemetry::install_recorder()?),
        None => None,
    };
    let budget = plan_descriptors(&config);
    let forward = forward_policy(&config, budget.forwards, upstreams_from);
    let Core {
        registry,
        settings,
        responder,
        static_source,
        changes,
    } = core(&config, forward)?;
    let sizes = registry.sizes();
    info!(
        source = path
            .as_ref()
            .map_or("embedded default".to_string(), |p| p.display().to_string()),
        changes,
        networks = sizes.networks,
        endpoints = sizes.endpoints,
        names = sizes.names,
        "static records loaded"
    );
    if config.server.rate_limit_per_second > 0 {
        info!(
            per_second = config.server.rate_limit_per_second,
            "UDP response-rate limiting per client subnet (/24, /56) is on"
        );
    }
    let live: Vec<&'static str> = [
        (config.docker.enabled, "docker"),
        (config.swarm.enabled, "swarm"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    let readiness = Readiness::new(&live);
    let listen = config.server.listen.clone();
    let admission = dns::Admission::new(dns::TcpLimits {
        idle_timeout: Duration::from_secs(config.server.tcp_idle_timeout_secs),
        max_connections: budget.tcp_connections,
        max_per_client: config.server.tcp_max_connections_per_client,
    });
    let docker = config.docker.clone();
    let swarm = config.swarm.clone();
    let mut udp_options = UdpOptions {
        fast_path: config.server.udp_fast_path,
        ..UdpOptions::default()
    };
    if let Some(workers) = config.server.udp_workers {
        udp_options.workers = workers;
    }
    // Default upstreams read from resolv.conf follow it (a laptop changing networks, a VPN
    // coming up); given ones stay as given.
    if config.forward.enabled && config.forward.upstream_addrs().is_empty() {
        tokio::spawn(follow_resolv_conf(
            responder.clone(),
            config.forward.resolv_conf.clone(),
            own_addresses(&config),
        ));
    }
    // The host's own addresses count as the host asking (scoping fails closed for strangers).
    responder.host_addresses().refresh();
    tokio::spawn(dns::host::follow(Arc::clone(responder.host_addresses())));
    // HTTP once the responder is whole: `/explain` predicts with it (forwarding included).
    if let (Some(addr), Some(prometheus)) = (config.server.http_listen, prometheus) {
        let http = telemetry::http::serve(
            addr,
            Arc::clone(&registry),
            prometheus,
            Arc::clone(&readiness),
            Arc::new(responder.clone()),
            telemetry::http::HttpOptions {
                allow: config.server.http_allow.clone(),
                max_connections: budget.http_connections,
                spread_max_members: config.server.spread_metric_max_members,
            },
        )
        .await
        .map_err(|source| StartError::Http { addr, source })?;
        tokio::spawn(async move {
            if let Err(error) = http.await {
                warn!(%error, "HTTP listener stopped");
            }
        });
    }
    // Reloading starts before the listeners are announced, so no edit after that is missed.
    match path {
        Some(path) => {
            static_file::spawn_reloader(
                path,
                static_source,
                config,
                Arc::clone(&registry),
                overrides,
                {
                    let registry = Arc::clone(&registry);
                    move |server| {
                        settings.set_ttl(server.ttl);
                        settings.set_log_queries(server.log_queries);
                        registry.set_scoping(
                            server.default_view.clone(),
                            server.trusted_askers.clone(),
                        );
                        registry.set_own_domains(&server.own_domains());
                        registry.set_host_name(server.host_name());
                    }
                },
            );
        }
        None => info!("serving the embedded default; give --config FILE to reload on change"),
    }
    // The parsed config's networks are gone by now (the reloader keeps only the settings).
    crate::heap::trim();

    if docker.enabled {
        let options = DockerOptions {
            host: docker.host.clone(),
            policy: Policy {
                include_unhealthy: docker.include_unhealthy,
                skip_swarm_tasks: swarm.enabled,
                // Told by the engine itself when the source connects.
                ..Policy::default()
            },
            max_pending_events: docker.max_pending_events,
            reconcile: Duration::from_secs(docker.reconcile_secs),
        };
        let publisher = Publisher::new(
            Arc::clone(&registry),
            docker_source::OWNER,
            names::DOCKER_STALE,
        )
        .with_ready(ready_signal(&readiness, "docker"));
        let mut source = DockerSource::new(options, publisher);
        if docker.attach_bridges || docker.attach_default_bridge {
            let (tx, rx) = tokio::sync::mpsc::channel(64);
            source = source.with_bridges(tx, docker.attach_bridges, docker.attach_default_bridge);
            tokio::spawn(dns::follow_gateways(
                rx,
                responder.clone(),
                docker.bridge_port,
                Arc::clone(&admission),
            ));
        }
        tokio::spawn(source.run());
    }
    if swarm.enabled {
        let options = SwarmOptions {
            host: swarm.host.clone().or_else(|| docker.host.clone()),
            poll: Duration::from_millis(swarm.poll_interval_ms),
        };
        let publisher = Publisher::new(
            Arc::clone(&registry),
            swarm_source::OWNER,
            names::SWARM_STALE,
        )
        .with_ready(ready_signal(&readiness, "swarm"));
        let source = SwarmSource::new(options, publisher);
        tokio::spawn(source.run());
    }
    let listeners = dns::bind(&listen, responder, admission, udp_options).await?;
    readiness.listeners_up();
    // Under systemd (Type=notify): READY=1 when /readyz would say so, then the watchdog.
    telemetry::systemd::spawn(Arc::clone(&readiness));
    Ok(Running {
        dns: listeners.addrs.clone(),
        readiness,
        listeners,
    })
}

/// A sender that marks `source` as synced in `readiness` when it fires.
fn ready_signal(
    readiness: &Arc<Readiness>,
    source: &'static str,
) -> tokio::sync::oneshot::Sender<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let readiness = Arc::clone(readiness);
    tokio::spawn(async move {
        if rx.await.is_ok() {
            readiness.synced(source);
            info!(source, "first sync done");
        }
    });
    tx
}

/// Raises the descriptor limit and sizes the TCP, HTTP and forwarding pools within it.
fn plan_descriptors(config: &Config) -> fd_budget::Budget {
    let limit = fd_budget::raise().unwrap_or_else(|error| {
        warn!(%error, "cannot read or raise the open-file limit; assuming 1024");
        1024
    });
    let budget = fd_budget::plan(
        limit,
        config.server.tcp_max_connections,
        config.server.tcp_max_connections_per_client,
        config.forward.max_in_flight,
    );
    info!(
        open_files = limit,
        tcp_connections = budget.tcp_connections,
        tcp_waiting = budget.tcp_waiting,
        http_connections = budget.http_connections,
        http_loopback = budget.http_loopback,
        forwards = budget.forwards,
        reserved = fd_budget::RESERVED,
        planned = budget.total(),
        "file descriptors planned"
    );
    if budget.tcp_connections < config.server.tcp_max_connections
        || budget.forwards < config.forward.max_in_flight
    {
        warn!(
            open_files = limit,
            "the open-file limit is lower than the configured TCP and forwarding caps; they were lowered to fit (raise `ulimit -n`, or LimitNOFILE=, to get them back)"
        );
    }
    budget
}

/// Where netalias itself listens for DNS, as forwarding must not send there.
fn own_addresses(config: &Config) -> Vec<SocketAddr> {
    let mut own = config.server.listen.clone();
    if config.docker.attach_bridges || config.docker.attach_default_bridge {
        // Gateway listeners come and go; any local address on that port is us.
        own.push(SocketAddr::from(([0, 0, 0, 0], config.docker.bridge_port)));
    }
    own
}

/// How often the resolv.conf the default upstreams came from is read again. Polled, not
/// watched: /etc/resolv.conf is often a symlink into /run (systemd-resolved, NetworkManager)
/// or a file Docker bind-mounts into a container, where a directory watch sees nothing; a
/// read of a few hundred bytes every 2 s costs nothing.
const RESOLV_CONF_POLL: Duration = Duration::from_secs(2);

/// Keeps the forwarder's default upstreams equal to what `resolv_conf` names (through
/// [`choose_upstreams`]: systemd-resolved's uplinks, netalias itself left out). An unreadable
/// or empty file keeps the upstreams in use (a file being replaced is briefly missing).
async fn follow_resolv_conf(responder: Responder, resolv_conf: PathBuf, own: Vec<SocketAddr>) {
    let Some(forwarder) = responder.forwarder() else {
        return;
    };
    let mut tick = tokio::time::interval(RESOLV_CONF_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Ok(chosen) = choose_upstreams(None, &resolv_conf, &own) else {
            continue;
        };
        if chosen.upstreams.is_empty() {
            continue;
        }
        if forwarder.set_default_upstreams(&chosen.upstreams) {
            info!(upstreams = ?chosen.upstreams, from = %chosen.from, "resolv.conf changed: forwarding to its name servers now");
        }
    }
}

/// The forwarder and its policy, or `None` when forwarding is off. On with no usable upstream,
/// the forwarder has none and every forward fails (SERVFAIL): the askers still hear "cannot
/// answer now", not REFUSED. At most `max_in_flight` forwards (sockets) at once: the
/// config's, within the descriptor budget. `upstreams_from` names where the configured
/// upstreams came from, for the start log.
fn forward_policy(
    config: &Config,
    max_in_flight: usize,
    upstreams_from: &str,
) -> Option<ForwardPolicy> {
    let forward = &config.forward;
    if !forward.enabled {
        return None;
    }
    let own = own_addresses(config);
    let given = (forward.upstream_addrs(), upstreams_from);
    let (upstreams, from) = match choose_upstreams(Some(given), &forward.resolv_conf, &own) {
        Err(error) => {
            // Local names are still worth serving; say loudly why others fail.
            warn!(%error, "forwarding is on but no upstreams are given and resolv.conf is unusable; names netalias does not own get SERVFAIL (give --upstream)");
            (Vec::new(), None)
        }
        Ok(chosen) => {
            for upstream in &chosen.dropped {
                warn!(%upstream, from = %chosen.from, "upstream dropped: it is one of netalias's own listen addresses");
            }
            (chosen.upstreams, Some(chosen.from))
        }
    };
    match &from {
        // Said above already: resolv.conf could not be read.
        None => {}
        Some(from) if upstreams.is_empty() => warn!(
            from = ?from,
            "forwarding is on but no usable upstream is left; names netalias does not own get SERVFAIL (give --upstream)"
        ),
        Some(from) => {
            info!(upstreams = ?upstreams, from = ?from, "forwarding names netalias does not own")
        }
    }
    if forward.allow_any_client {
        warn!("forwarding for any client: this is an open resolver; keep it off public interfaces");
    }
    let zones: Vec<_> = forward
        .zone_upstreams()
        .into_iter()
        .map(|(zone, upstreams)| {
            let kept = without_loops(upstreams.clone(), &own);
            // Names under our own domains are answered here and never forwarded.
            let owned = config
                .server
                .domain()
                .into_iter()
                .map(str::to_string)
                .chain(config.server.own_domains())
                .find(|d| {
                    hickory_server::proto::rr::Name::from_ascii(d)
                        .is_ok_and(|d| d.zone_of(&zone))
                });
            if let Some(owned) = owned {
                warn!(zone = %zone, owned = %owned, "this forward zone is inside a domain netalias owns: its names are answered here and never forwarded (remove the zone, or the domain from server.domain / server.own_domains)");
            }
            for upstream in upstreams.iter().filter(|u| !kept.contains(u)) {
                warn!(zone = %zone, %upstream, "upstream dropped: it is one of netalias's own listen addresses");
            }
            if kept.is_empty() {
                warn!(zone = %zone, given = ?upstreams, "every upstream of this forward zone is netalias itself; its names get SERVFAIL");
            } else {
                info!(zone = %zone, upstreams = ?kept, "forwarding this zone to its own upstreams");
            }
            (zone, kept)
        })
        .collect();
    let settings = ForwardSettings {
        upstreams,
        zones,
        timeout: Duration::from_millis(forward.timeout_ms),
        max_in_flight,
        max_in_flight_per_client: forward.per_client_in_flight(max_in_flight),
        cache: CacheLimits {
            entries: forward.cache_entries,
            max_bytes: forward.cache_max_bytes,
            max_ttl: forward.cache_max_ttl_secs,
            serve_stale: forward.serve_stale_secs,
        },
    };
    Some(ForwardPolicy {
        forwarder: Forwarder::new(&settings),
        allow_any_client: forward.allow_any_client,
    })
}
