//! Server configuration: the TOML file that holds the server settings and the static
//! networks with their endpoints, every rule that ties settings together, and (`reload`)
//! which settings a reload applies.
//!
//! Parsing and validation only. Every error names the file, the line, the column and the
//! field, with a hint (`located`). This module never touches the registry or the network.

mod located;
pub mod reload;

use located::line_column;
pub use located::{
    ConfigError, LoadError, Violation, bounded, bounded_opt, load_file, parse_located,
};

use std::{
    collections::{BTreeMap, HashSet},
    net::{Ipv4Addr, Ipv6Addr, SocketAddr},
    path::{Path, PathBuf},
};

use ipnet::{Ipv4Net, Ipv6Net};
use serde::Deserialize;
use toml::Spanned;

/// The file the binary falls back to when no `--config` is given.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../config/netalias.toml");
/// Engine events read but not yet applied, at most, by default (`docker.max_pending_events`).
pub const DEFAULT_MAX_PENDING_EVENTS: usize = 4096;
/// How the embedded default is named in messages.
pub const EMBEDDED_DEFAULT_NAME: &str = "<embedded config/netalias.toml>";

/// The whole file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    /// The Docker source.
    #[serde(default)]
    pub docker: DockerConfig,
    /// The Swarm source (services and tasks on overlay networks).
    #[serde(default)]
    pub swarm: SwarmConfig,
    /// Forwarding of names netalias does not own.
    #[serde(default)]
    pub forward: ForwardConfig,
    /// Static networks, keyed by network name.
    #[serde(default)]
    pub networks: BTreeMap<String, StaticNetwork>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerConfig {
    /// Follow the Docker engine and serve its user-defined networks.
    #[serde(default)]
    pub enabled: bool,
    /// Engine address (`unix:///var/run/docker.sock`, `tcp://host:2375`). Absent: DOCKER_HOST or the local socket.
    #[serde(default)]
    pub host: Option<String>,
    /// Keep containers whose healthcheck fails in rotation.
    #[serde(default)]
    pub include_unhealthy: bool,
    /// Listen on the gateway address of every user-defined bridge (host mode).
    #[serde(default)]
    pub attach_bridges: bool,
    /// Also listen on the default bridge's gateway (`docker0`, usually 172.17.0.1), so that one
    /// daemon-wide `"dns"` setting reaches netalias from every container.
    #[serde(default)]
    pub attach_default_bridge: bool,
    /// Port of those gateway listeners.
    #[serde(default = "default_bridge_port")]
    pub bridge_port: u16,
    /// Engine events read but not yet applied, at most; past it a snapshot resyncs instead.
    #[serde(
        default = "default_max_pending_events",
        deserialize_with = "bounded::<_, _, 1, 10_000_000>"
    )]
    pub max_pending_events: usize,
    /// Every this many seconds the engine's running containers are compared with what the
    /// source holds, catching what the event stream missed; 0: off.
    #[serde(
        default = "default_reconcile_secs",
        deserialize_with = "bounded::<_, _, 0, 86_400>"
    )]
    pub reconcile_secs: u64,
}

fn default_reconcile_secs() -> u64 {
    60
}

impl Default for DockerConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            host: None,
            include_unhealthy: false,
            attach_bridges: false,
            attach_default_bridge: false,
            bridge_port: default_bridge_port(),
            max_pending_events: default_max_pending_events(),
            reconcile_secs: default_reconcile_secs(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwarmConfig {
    /// Follow a Swarm manager's services and tasks. Task containers are then named by
    /// this source only (the Docker source leaves them alone).
    #[serde(default)]
    pub enabled: bool,
    /// The manager's engine address. Absent: the Docker source's (`docker.host`), else
    /// DOCKER_HOST or the local socket. On a worker, point it at a manager.
    #[serde(default)]
    pub host: Option<String>,
    /// How often tasks are read when no event says so, in milliseconds.
    #[serde(
        default = "default_swarm_poll_ms",
        deserialize_with = "bounded::<_, _, 1, 3_600_000>"
    )]
    pub poll_interval_ms: u64,
}

impl Default for SwarmConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            host: None,
            poll_interval_ms: default_swarm_poll_ms(),
        }
    }
}

fn default_swarm_poll_ms() -> u64 {
    1000
}

fn default_max_pending_events() -> usize {
    DEFAULT_MAX_PENDING_EVENTS
}

fn default_bridge_port() -> u16 {
    53
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardConfig {
    /// Forward names netalias does not own. Off: they get SERVFAIL (REFUSED for strangers).
    #[serde(default)]
    pub enabled: bool,
    /// "IP" or "IP:PORT" (port 53 by default). Empty: the name servers of `resolv_conf`.
    #[serde(default)]
    pub upstreams: Vec<Spanned<String>>,
    /// Zones with upstreams of their own: `"corp.example" = ["10.1.2.3"]`. A name at or under
    /// one goes to the most specific zone's upstreams only; other names to `upstreams`.
    #[serde(default)]
    pub zones: BTreeMap<String, Spanned<Vec<Spanned<String>>>>,
    #[serde(default = "default_resolv_conf")]
    pub resolv_conf: PathBuf,
    /// Per upstream attempt.
    #[serde(
        default = "default_forward_timeout_ms",
        deserialize_with = "bounded::<_, _, 1, 60_000>"
    )]
    pub timeout_ms: u64,
    /// Forwarded queries in flight at once; past it, SERVFAIL.
    #[serde(
        default = "default_max_in_flight",
        deserialize_with = "bounded::<_, _, 1, 1_000_000>"
    )]
    pub max_in_flight: usize,
    /// Forwarded queries in flight for one client address; absent: a quarter of
    /// `max_in_flight` (at least 1). Past it, SERVFAIL for that client only.
    #[serde(default, deserialize_with = "bounded_opt::<_, _, 1, 1_000_000>")]
    pub max_in_flight_per_client: Option<usize>,
    /// Answers cached (upstream TTLs honoured); 0 disables the cache.
    #[serde(
        default = "default_cache_entries",
        deserialize_with = "bounded::<_, _, 0, 100_000_000>"
    )]
    pub cache_entries: usize,
    /// Bytes the cache may hold (an estimate per answer); the least recently used go first.
    #[serde(
        default = "default_cache_max_bytes",
        deserialize_with = "bounded::<_, _, 65_536, 4_294_967_296>"
    )]
    pub cache_max_bytes: usize,
    /// The longest an answer is cached, whatever its TTL says (seconds).
    #[serde(
        default = "default_cache_max_ttl_secs",
        deserialize_with = "bounded::<_, _, 1, 604_800>"
    )]
    pub cache_max_ttl_secs: u32,
    /// How long past its TTL a cached answer may still be served when every upstream fails
    /// (RFC 8767, with TTL 30); 0, the default, never.
    #[serde(default, deserialize_with = "bounded::<_, _, 0, 259_200>")]
    pub serve_stale_secs: u32,
    /// Forward for any asker, not only loopback and known containers. Makes an open resolver.
    #[serde(default)]
    pub allow_any_client: bool,
}

impl Default for ForwardConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            upstreams: Vec::new(),
            zones: BTreeMap::new(),
            resolv_conf: default_resolv_conf(),
            timeout_ms: default_forward_timeout_ms(),
            max_in_flight: default_max_in_flight(),
            max_in_flight_per_client: None,
            cache_entries: default_cache_entries(),
            cache_max_bytes: default_cache_max_bytes(),
            cache_max_ttl_secs: default_cache_max_ttl_secs(),
            serve_stale_secs: 0,
            allow_any_client: false,
        }
    }
}

impl ForwardConfig {
    /// Forwards one client may hold when `max_in_flight` fit the descriptor budget: the
    /// configured share, else a quarter of the total, never 0 nor more than the total.
    pub fn per_client_in_flight(&self, max_in_flight: usize) -> usize {
        let max_in_flight = max_in_flight.max(1);
        self.max_in_flight_per_client
            .unwrap_or(max_in_flight / 4)
            .clamp(1, max_in_flight)
    }

    /// The configured upstreams as socket addresses (validated at load).
    pub fn upstream_addrs(&self) -> Vec<SocketAddr> {
        self.upstreams
            .iter()
            .filter_map(|u| parse_upstream(u.get_ref()).ok())
            .collect()
    }

    /// Each zone with its upstreams (validated at load), as names and socket addresses.
    pub fn zone_upstreams(&self) -> Vec<(hickory_server::proto::rr::Name, Vec<SocketAddr>)> {
        self.zones
            .iter()
            .filter_map(|(zone, upstreams)| {
                let mut name = hickory_server::proto::rr::Name::from_ascii(zone).ok()?;
                name.set_fqdn(true);
                let addrs = upstreams
                    .get_ref()
                    .iter()
                    .filter_map(|u| parse_upstream(u.get_ref()).ok())
                    .collect();
                Some((name, addrs))
            })
            .collect()
    }
}

/// "IP", "IP:PORT" or "[IPv6]:PORT"; the port defaults to 53.
pub fn parse_upstream(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    text.parse::<std::net::IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| format!("`{text}` is not an IP or IP:PORT"))
}

fn default_resolv_conf() -> PathBuf {
    PathBuf::from("/etc/resolv.conf")
}
fn default_forward_timeout_ms() -> u64 {
    1500
}
fn default_max_in_flight() -> usize {
    256
}
fn default_cache_entries() -> usize {
    4096
}
fn default_cache_max_bytes() -> usize {
    16 << 20
}
fn default_cache_max_ttl_secs() -> u32 {
    3600
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Addresses to answer on, UDP and TCP alike.
    #[serde(default = "default_listen")]
    pub listen: Vec<SocketAddr>,
    /// TTL of answers for local names, in seconds. 0 makes clients ask again, so rotation reaches them.
    #[serde(default, deserialize_with = "bounded::<_, _, 0, MAX_TTL>")]
    pub ttl: u32,
    /// Optional search domain: `app.docker` answers like `app` when this is `docker`.
    #[serde(default)]
    pub domain: Option<Spanned<String>>,
    /// Networks seen by askers that are not containers. Absent: loopback and
    /// `trusted_askers` see all networks, and any other asker sees none (scoping fails closed).
    #[serde(default)]
    pub default_view: Option<Vec<String>>,
    /// Networks (CIDRs) whose askers are trusted like loopback: they see the default view and
    /// may be forwarded for (a LAN routed to a bridge gateway, say).
    #[serde(default)]
    pub trusted_askers: Vec<ipnet::IpNet>,
    /// Domains netalias owns besides the search domain (`shop.test`): a name under one that
    /// it does not hold is NXDOMAIN (with an SOA), not forwarded.
    #[serde(default)]
    pub own_domains: Vec<Spanned<String>>,
    /// A name (`host`, so `host.docker` too) that answers each container with the host's
    /// address on its own network (the bridge's gateway); absent: off.
    #[serde(default)]
    pub host_name: Option<Spanned<String>>,
    /// Largest UDP answer we send, whatever the client advertises (EDNS0). 1232 avoids IP fragmentation.
    #[serde(
        default = "default_max_udp_payload",
        deserialize_with = "bounded::<_, _, 512, 65535>"
    )]
    pub max_udp_payload: u16,
    /// A TCP connection that sends nothing for this long is closed.
    #[serde(
        default = "default_tcp_idle_timeout_secs",
        deserialize_with = "bounded::<_, _, 1, 3600>"
    )]
    pub tcp_idle_timeout_secs: u64,
    /// TCP connections held at once, all clients together. At the cap, connections idle for
    /// half a second are shed to let a new client in.
    #[serde(
        default = "default_tcp_max_connections",
        deserialize_with = "bounded::<_, _, 1, 1_000_000>"
    )]
    pub tcp_max_connections: usize,
    /// TCP connections one client address may hold; more are refused at once.
    #[serde(
        default = "default_tcp_max_connections_per_client",
        deserialize_with = "bounded::<_, _, 1, 1_000_000>"
    )]
    pub tcp_max_connections_per_client: usize,
    /// The most endpoints served at once, a bound on memory (about 1 KB each); past it, new
    /// endpoints are refused, logged and counted.
    #[serde(
        default = "default_max_endpoints",
        deserialize_with = "bounded::<_, _, 1, 1_000_000_000>"
    )]
    pub max_endpoints: usize,
    /// UDP answers per second per client subnet (/24, /56); over it, queries are dropped.
    /// 0: off. TCP is never limited.
    #[serde(default)]
    pub rate_limit_per_second: u32,
    /// HTTP for /metrics, /healthz, /readyz, /records, /label-names and /explain. Absent: off.
    #[serde(default)]
    pub http_listen: Option<SocketAddr>,
    /// Networks (CIDRs) that may read every record over HTTP, besides loopback. Known
    /// containers see their own networks; anyone else gets 403.
    #[serde(default)]
    pub http_allow: Vec<ipnet::IpNet>,
    /// `/metrics` gives `netalias_rotation_first_total` (answers that named a member first)
    /// for names with 2 up to this many members, so that a load test can watch the spread
    /// without a series per member of every name. 0: off. `/records` and `explain` show the
    /// counts for every name.
    #[serde(
        default = "default_spread_metric_max_members",
        deserialize_with = "bounded::<_, _, 0, 1024>"
    )]
    pub spread_metric_max_members: usize,
    /// UDP receive loops (SO_REUSEPORT sockets) per address; absent: one per two cores.
    #[serde(default, deserialize_with = "bounded_opt::<_, _, 1, 1024>")]
    pub udp_workers: Option<usize>,
    /// Answer plain A/AAAA questions on a fast path (same bytes as the full handler).
    #[serde(default = "default_true")]
    pub udp_fast_path: bool,
    /// Log one line per question (asker, question, rcode, answers, path, time); switchable on
    /// reload.
    #[serde(default)]
    pub log_queries: bool,
}

fn default_true() -> bool {
    true
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            ttl: 0,
            domain: None,
            default_view: None,
            trusted_askers: Vec::new(),
            own_domains: Vec::new(),
            host_name: None,
            max_udp_payload: default_max_udp_payload(),
            tcp_idle_timeout_secs: default_tcp_idle_timeout_secs(),
            tcp_max_connections: default_tcp_max_connections(),
            rate_limit_per_second: 0,
            max_endpoints: default_max_endpoints(),
            tcp_max_connections_per_client: default_tcp_max_connections_per_client(),
            http_listen: None,
            http_allow: Vec::new(),
            spread_metric_max_members: default_spread_metric_max_members(),
            udp_workers: None,
            udp_fast_path: true,
            log_queries: false,
        }
    }
}

fn default_spread_metric_max_members() -> usize {
    16
}

fn default_listen() -> Vec<SocketAddr> {
    vec![SocketAddr::from(([127, 0, 0, 1], 1053))]
}
fn default_max_udp_payload() -> u16 {
    1232
}
fn default_max_endpoints() -> usize {
    1_000_000
}
fn default_tcp_max_connections() -> usize {
    1024
}
fn default_tcp_max_connections_per_client() -> usize {
    64
}
fn default_tcp_idle_timeout_secs() -> u64 {
    10
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct StaticNetwork {
    /// Optional: when given, every endpoint address must lie inside it.
    pub subnet: Option<Spanned<Ipv4Net>>,
    pub subnet6: Option<Spanned<Ipv6Net>>,
    #[serde(default)]
    pub endpoints: Vec<StaticEndpoint>,
    /// Records beside the endpoints, seen by whoever sees the network (`[networks.N.records]`).
    #[serde(default)]
    pub records: StaticRecords,
}

/// `[networks.N.records]`: names the network answers besides its endpoints'. Keys are the
/// names (a `*.D` wildcard allowed); every value is checked at load.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct StaticRecords {
    /// `"www.shop.test" = "api.shop.test"`: the name is an alias (RFC 1034 3.6.2) for the
    /// target, whose records follow the CNAME in an answer when netalias holds it.
    #[serde(default, alias = "CNAME")]
    pub cname: BTreeMap<String, Spanned<String>>,
    /// `"db.shop.test" = "10.0.0.5"` or a list: IPv4 addresses, rotated like members.
    #[serde(default, alias = "A")]
    pub a: BTreeMap<String, Spanned<OneOrMany>>,
    /// IPv6 addresses, as `a`.
    #[serde(default, alias = "AAAA")]
    pub aaaa: BTreeMap<String, Spanned<OneOrMany>>,
    /// `"info.shop.test" = ["v=1", "owner=ops"]`: one TXT record of these strings.
    #[serde(default, alias = "TXT")]
    pub txt: BTreeMap<String, Spanned<OneOrMany>>,
}

impl StaticRecords {
    pub fn is_empty(&self) -> bool {
        self.cname.is_empty() && self.a.is_empty() && self.aaaa.is_empty() && self.txt.is_empty()
    }
}

/// A string, or a list of strings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OneOrMany(pub Vec<String>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany(vec![v.to_string()]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<OneOrMany, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element::<String>()? {
                    out.push(item);
                }
                Ok(OneOrMany(out))
            }
        }
        deserializer.deserialize_any(Visit)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticEndpoint {
    pub name: Spanned<String>,
    #[serde(default)]
    pub aliases: Vec<Spanned<String>>,
    pub ipv4: Option<Spanned<Ipv4Addr>>,
    pub ipv6: Option<Spanned<Ipv6Addr>>,
    /// Overrides the server TTL for this endpoint's records.
    #[serde(default, deserialize_with = "bounded_opt::<_, _, 0, MAX_TTL>")]
    pub ttl: Option<u32>,
    /// Endpoints that share a `container` value are one asker: each sees all their networks.
    pub container: Option<String>,
    /// Service ports, served as SRV `_SERVICE._PROTO.NAME` for each of the endpoint's names.
    #[serde(default)]
    pub srv: Vec<Spanned<StaticSrv>>,
}

/// `{ service = "http", proto = "tcp", port = 80, weight = 1 }` on a static endpoint.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StaticSrv {
    /// The service name without its underscore (RFC 6335: 1 to 15 letters, digits, hyphens).
    pub service: String,
    /// `tcp` (the default) or `udp`.
    #[serde(default = "default_srv_proto")]
    pub proto: String,
    #[serde(deserialize_with = "bounded::<_, _, 1, 65535>")]
    pub port: u16,
    /// RFC 2782 weight among the members offering the service; equal when unsaid.
    #[serde(default, deserialize_with = "bounded_opt::<_, _, 0, 65535>")]
    pub weight: Option<u16>,
}

fn default_srv_proto() -> String {
    "tcp".into()
}

impl ServerConfig {
    pub fn domain(&self) -> Option<&str> {
        self.domain.as_ref().map(|d| d.get_ref().as_str())
    }

    /// `host_name` as written (validated at load).
    pub fn host_name(&self) -> Option<&str> {
        self.host_name.as_ref().map(|d| d.get_ref().as_str())
    }

    /// `own_domains` as written (validated at load).
    pub fn own_domains(&self) -> Vec<String> {
        self.own_domains
            .iter()
            .map(|d| d.get_ref().clone())
            .collect()
    }
}

impl Config {
    /// The rules that tie settings to each other when serving, checked once the command line
    /// is applied (a flag can break them as a file can): engine addresses are well-formed (a
    /// malformed one is a usage error now, not a reconnect loop forever), the Swarm poll is at
    /// least 1 ms, and gateway listeners have the Docker source they follow. The error names
    /// the flag, its config key and its variable.
    pub fn check_serving(&self) -> Result<(), String> {
        let docker_host = std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty());
        for (what, host) in [
            (
                "--docker-host (docker.host, NETALIAS_DOCKER_HOST)",
                &self.docker.host,
            ),
            (
                "--swarm-host (swarm.host, NETALIAS_SWARM_HOST)",
                &self.swarm.host,
            ),
            ("DOCKER_HOST", &docker_host),
        ] {
            if let Some(host) = host {
                crate::source::reach::check_engine_url(host)
                    .map_err(|reason| format!("{what}: {reason}"))?;
            }
        }
        if self.swarm.poll_interval_ms == 0 {
            return Err("--swarm-poll-ms (swarm.poll_interval_ms) must be at least 1".into());
        }
        let docker = &self.docker;
        if docker.attach_default_bridge && !docker.enabled {
            return Err("--attach-default-bridge needs the Docker source: add --docker (or docker.enabled = true)".into());
        }
        if docker.attach_bridges && !docker.enabled {
            return Err(
                "--attach-bridges needs the Docker source: add --docker (or docker.enabled = true)"
                    .into(),
            );
        }
        Ok(())
    }

    /// The embedded demo records are for trying netalias out: with a live source on and no
    /// file given, exactly what the engine holds is served (a demo `web1` would shadow a real
    /// one). Whether the demo was dropped.
    pub fn drop_demo_for_live_sources(&mut self) -> bool {
        let live = self.docker.enabled || self.swarm.enabled;
        if live {
            self.networks.clear();
        }
        live
    }
}

impl Config {
    /// Reads and validates a config file.
    ///
    /// On a thread of its own, which glibc gives an allocator arena of its own: the parse's
    /// transient tables (a ~440-byte entry vector per endpoint table) are then not interleaved
    /// with what the registry keeps, and go back to the kernel whole once the config is
    /// dropped (with glibc's trim threshold fixed: `heap::tune`). Parsed on the
    /// caller's thread, 3.2 MB of them stayed stranded between registry entries at 100,000
    /// endpoints (29.5 against 32.5 MB anonymous resident, same live heap).
    /// A thread the system refuses (a container at its `--pids-limit`) costs only that: the
    /// file is parsed on the caller's thread, as before.
    pub fn load(path: &Path) -> Result<Config, LoadError> {
        let load = || load_file(path, Config::parse);
        std::thread::scope(|scope| {
            match std::thread::Builder::new()
                .name("config-parse".into())
                .spawn_scoped(scope, load)
            {
                Ok(parse) => parse
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                Err(_) => load(),
            }
        })
    }

    /// The built-in default, as shipped in `config/netalias.toml`.
    pub fn embedded_default() -> Result<Config, ConfigError> {
        Config::parse(EMBEDDED_DEFAULT, EMBEDDED_DEFAULT_NAME)
    }

    /// Parses and validates `text`; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let config: Config = parse_located(text, file)?;
        config.validate(text).map_err(|v| v.locate(text, file))?;
        Ok(config)
    }

    /// `text` is the file itself, so that an error can name the line of an earlier entry too.
    fn validate(&self, text: &str) -> Result<(), Violation> {
        if let Some(domain) = &self.server.domain {
            check_dns_name(domain, "server.domain")?;
        }
        if let Some(host) = &self.server.host_name {
            check_dns_name(host, "server.host_name")?;
        }
        for (i, domain) in self.server.own_domains.iter().enumerate() {
            check_dns_name(domain, &format!("server.own_domains[{i}]"))?;
        }
        for (i, upstream) in self.forward.upstreams.iter().enumerate() {
            parse_upstream(upstream.get_ref()).map_err(|message| {
                Violation::new(upstream, format!("forward.upstreams[{i}]"), message)
            })?;
        }
        for (zone, upstreams) in &self.forward.zones {
            let field = format!("forward.zones.\"{zone}\"");
            let valid = !zone.trim_end_matches('.').is_empty()
                && hickory_server::proto::rr::Name::from_ascii(zone).is_ok();
            if !valid {
                return Err(Violation::new(
                    upstreams,
                    field,
                    format!("`{zone}` is not a DNS name (a zone such as \"corp.example\")"),
                ));
            }
            if upstreams.get_ref().is_empty() {
                return Err(Violation::new(
                    upstreams,
                    field,
                    "no upstream given; name at least one (\"IP\" or \"IP:PORT\")".to_string(),
                ));
            }
            for (i, upstream) in upstreams.get_ref().iter().enumerate() {
                parse_upstream(upstream.get_ref()).map_err(|message| {
                    Violation::new(upstream, format!("{field}[{i}]"), message)
                })?;
            }
        }
        for (net_name, net) in &self.networks {
            check_records(net_name, net)?;
            let mut seen: HashSet<String> = HashSet::new();
            // An endpoint is keyed by its asker (`container`, default its name) on a network: a
            // second one with the same key would silently replace the first.
            let mut askers: std::collections::HashMap<String, usize> = Default::default();
            let mut addresses: std::collections::HashMap<std::net::IpAddr, (usize, String)> =
                Default::default();
            for (i, ep) in net.endpoints.iter().enumerate() {
                let at = |key: &str| format!("networks.{net_name}.endpoints[{i}].{key}");
                check_dns_name(&ep.name, &at("name"))?;
                let asker = ep
                    .container
                    .clone()
                    .unwrap_or_else(|| ep.name.get_ref().clone());
                // Without `container`, the key is the name: say so in the user's own words.
                if ep.container.is_none()
                    && let Some(first) = askers.get(&asker)
                {
                    let (line, _) = line_column(text, *first);
                    return Err(Violation::new(
                        &ep.name,
                        at("name"),
                        format!(
                            "endpoint name `{asker}` is used twice in network `{net_name}` (first on line {line})"
                        ),
                    ));
                }
                if let Some(first) = askers.insert(asker.clone(), ep.name.span().start) {
                    let (line, _) = line_column(text, first);
                    return Err(Violation::new(
                        &ep.name,
                        at("container"),
                        format!(
                            "`{asker}` is already the container of the endpoint on line {line} in network `{net_name}`; one container has one endpoint per network (give each its own `container`, or merge them)"
                        ),
                    ));
                }
                if !seen.insert(ep.name.get_ref().to_ascii_lowercase()) {
                    return Err(Violation::new(
                        &ep.name,
                        at("name"),
                        format!(
                            "endpoint name `{}` is used twice in network `{net_name}`",
                            ep.name.get_ref()
                        ),
                    ));
                }
                for alias in &ep.aliases {
                    check_alias(alias, &at("aliases"))?;
                }
                for srv in &ep.srv {
                    let value = srv.get_ref();
                    if crate::registry::SrvPort::service_name(&value.service).is_none() {
                        return Err(Violation::new(
                            srv,
                            at("srv.service"),
                            format!(
                                "`{}` is not a service name: 1 to 15 letters, digits and hyphens, with a letter, no hyphen at either end (RFC 6335), and no leading underscore",
                                value.service
                            ),
                        ));
                    }
                    if crate::registry::SrvProto::from_label(&value.proto).is_none() {
                        return Err(Violation::new(
                            srv,
                            at("srv.proto"),
                            format!("`{}` is not `tcp` or `udp`", value.proto),
                        ));
                    }
                }
                if ep.ipv4.is_none() && ep.ipv6.is_none() {
                    return Err(Violation::new(
                        &ep.name,
                        at("ipv4"),
                        "endpoint has neither `ipv4` nor `ipv6`".into(),
                    ));
                }
                if let (Some(ip), Some(subnet)) = (&ep.ipv4, &net.subnet)
                    && !subnet.get_ref().contains(ip.get_ref())
                {
                    return Err(Violation::new(
                        ip,
                        at("ipv4"),
                        format!(
                            "{} is outside the network's subnet {}",
                            ip.get_ref(),
                            subnet.get_ref()
                        ),
                    ));
                }
                if let (Some(ip), Some(subnet)) = (&ep.ipv6, &net.subnet6)
                    && !subnet.get_ref().contains(ip.get_ref())
                {
                    return Err(Violation::new(
                        ip,
                        at("ipv6"),
                        format!(
                            "{} is outside the network's subnet6 {}",
                            ip.get_ref(),
                            subnet.get_ref()
                        ),
                    ));
                }
                // One address, two endpoints: a name would rotate over fewer addresses than
                // members and the address's PTR would name only one of them.
                let v4 = ep
                    .ipv4
                    .as_ref()
                    .map(|ip| (std::net::IpAddr::V4(*ip.get_ref()), ip.span(), "ipv4"));
                let v6 = ep
                    .ipv6
                    .as_ref()
                    .map(|ip| (std::net::IpAddr::V6(*ip.get_ref()), ip.span(), "ipv6"));
                for (ip, span, key) in v4.into_iter().chain(v6) {
                    if let Some((first, owner)) = addresses.get(&ip) {
                        let (line, _) = line_column(text, *first);
                        return Err(Violation {
                            span,
                            field: at(key),
                            message: format!(
                                "{ip} is already the address of endpoint `{owner}` (line {line}) in network `{net_name}`; two endpoints cannot share one address (give one endpoint several `aliases` instead)"
                            ),
                        });
                    }
                    addresses.insert(ip, (span.start, ep.name.get_ref().clone()));
                }
            }
        }
        Ok(())
    }
}

/// The most CNAMEs one answer follows (`dns::answer::MAX_CNAME_HOPS`).
const MAX_CNAME_CHAIN: usize = 8;

/// `text` as the registry compares names: lower case, without a trailing dot.
fn comparable(text: &str) -> String {
    text.trim_end_matches('.').to_ascii_lowercase()
}

/// One network's `records`: every name a DNS name (a wildcard allowed), every value what its
/// type holds, and a CNAME name with no other data (RFC 1034 3.6.2), neither here nor as an
/// endpoint's name or alias on the network.
fn check_records(net_name: &str, net: &StaticNetwork) -> Result<(), Violation> {
    let records = &net.records;
    let at = |kind: &str, name: &str| format!("networks.{net_name}.records.{kind}.\"{name}\"");
    let name_of = |kind: &str, name: &str, value_span: &std::ops::Range<usize>| {
        let spanned = Spanned::new(value_span.clone(), name.to_string());
        check_alias(&spanned, &at(kind, name))
    };
    for (name, target) in &records.cname {
        name_of("cname", name, &target.span())?;
        check_dns_name(target, &at("cname", name)).map_err(|mut v| {
            v.message = format!("the CNAME target {}", v.message);
            v
        })?;
        if comparable(target.get_ref()) == comparable(name) {
            return Err(Violation::new(
                target,
                at("cname", name),
                format!("`{name}` is a CNAME for itself: a loop"),
            ));
        }
        let other = [
            ("a", &records.a),
            ("aaaa", &records.aaaa),
            ("txt", &records.txt),
        ]
        .into_iter()
        .find(|(_, map)| map.keys().any(|n| comparable(n) == comparable(name)));
        if let Some((kind, _)) = other {
            return Err(Violation::new(
                target,
                at("cname", name),
                format!(
                    "`{name}` is a CNAME and also has {} records: a CNAME name has no other data (RFC 1034 3.6.2)",
                    kind.to_ascii_uppercase()
                ),
            ));
        }
        let endpoint = net.endpoints.iter().find(|ep| {
            std::iter::once(&ep.name)
                .chain(&ep.aliases)
                .any(|n| comparable(n.get_ref()) == comparable(name))
        });
        if let Some(ep) = endpoint {
            return Err(Violation::new(
                target,
                at("cname", name),
                format!(
                    "`{name}` is a CNAME and also the name or an alias of endpoint `{}` on this network: a CNAME name has no other data (RFC 1034 3.6.2)",
                    ep.name.get_ref()
                ),
            ));
        }
    }
    // A chain within the file that comes back to where it started, or runs past what an answer
    // follows, is caught here (one across networks or sources is SERVFAIL when asked).
    let targets: std::collections::HashMap<String, &Spanned<String>> = records
        .cname
        .iter()
        .map(|(name, target)| (comparable(name), target))
        .collect();
    for (name, target) in &records.cname {
        let mut chain = vec![comparable(name)];
        let mut next = comparable(target.get_ref());
        while let Some(hop) = targets.get(&next) {
            chain.push(next.clone());
            if chain.len() > MAX_CNAME_CHAIN || chain[1..].contains(&chain[0]) {
                let why = if chain[1..].contains(&chain[0]) {
                    "a loop"
                } else {
                    "longer than an answer follows (8 CNAMEs)"
                };
                return Err(Violation::new(
                    target,
                    at("cname", name),
                    format!("the CNAME chain {} is {why}", chain.join(" -> ")),
                ));
            }
            if chain[1..chain.len() - 1].contains(&next) {
                break; // a loop that does not pass through `name`: reported from its own names
            }
            next = comparable(hop.get_ref());
        }
    }
    for (kind, map) in [("a", &records.a), ("aaaa", &records.aaaa)] {
        for (name, values) in map {
            name_of(kind, name, &values.span())?;
            if values.get_ref().0.is_empty() {
                return Err(Violation::new(
                    values,
                    at(kind, name),
                    "no address given; give one or a list".into(),
                ));
            }
            for (i, value) in values.get_ref().0.iter().enumerate() {
                let ok = match kind {
                    "a" => value.parse::<Ipv4Addr>().is_ok(),
                    _ => value.parse::<Ipv6Addr>().is_ok(),
                };
                if !ok {
                    let family = if kind == "a" { "IPv4" } else { "IPv6" };
                    return Err(Violation::new(
                        values,
                        format!("{}[{i}]", at(kind, name)),
                        format!("`{value}` is not an {family} address"),
                    ));
                }
            }
        }
    }
    for (name, strings) in &records.txt {
        name_of("txt", name, &strings.span())?;
        if strings.get_ref().0.is_empty() {
            return Err(Violation::new(
                strings,
                at("txt", name),
                "no string given; give one or a list".into(),
            ));
        }
        for (i, text) in strings.get_ref().0.iter().enumerate() {
            if text.len() > 255 {
                return Err(Violation::new(
                    strings,
                    format!("{}[{i}]", at("txt", name)),
                    format!(
                        "a TXT string is {} octets; one holds at most 255 (RFC 1035 3.3)",
                        text.len()
                    ),
                ));
            }
        }
        let total: usize = strings.get_ref().0.iter().map(|t| t.len() + 1).sum();
        if total > 4096 {
            return Err(Violation::new(
                strings,
                at("txt", name),
                format!(
                    "the TXT strings come to {total} octets; netalias serves at most 4096 per name"
                ),
            ));
        }
    }
    Ok(())
}

/// The largest TTL DNS allows (RFC 2181 8): 2^31 - 1 seconds.
pub const MAX_TTL: u64 = 2_147_483_647;

/// A name must be a valid DNS name: labels of letters, digits, `-` and `_`, at most 63 bytes each.
/// An alias is a DNS name, or a wildcard `*.NAME` that answers every name below `NAME`
/// nothing holds more exactly.
fn check_alias(alias: &Spanned<String>, field: &str) -> Result<(), Violation> {
    check_name_text(
        alias,
        alias
            .get_ref()
            .strip_prefix("*.")
            .unwrap_or(alias.get_ref()),
        field,
    )
}

fn check_dns_name(name: &Spanned<String>, field: &str) -> Result<(), Violation> {
    check_name_text(name, name.get_ref(), field)
}

/// Checks `text` (all of `name`, or the part after a wildcard's `*.`); errors point at `name`.
fn check_name_text(name: &Spanned<String>, text: &str, field: &str) -> Result<(), Violation> {
    let bad = |why: &str| {
        Violation::new(
            name,
            field.to_string(),
            format!("`{text}` is not a usable DNS name: {why}"),
        )
    };
    if text.is_empty() {
        return Err(bad("it is empty"));
    }
    if text.len() > 253 {
        return Err(bad("it is longer than 253 bytes"));
    }
    for label in text.trim_end_matches('.').split('.') {
        if label.is_empty() {
            return Err(bad("it has an empty label"));
        }
        if label.len() > 63 {
            return Err(bad("a label is longer than 63 bytes"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(bad("only letters, digits, '-', '_' and '.' are allowed"));
        }
    }
    Ok(())
}

/// The dotted field path, without the private segment `toml::Spanned` adds.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alias_may_be_a_wildcard_and_only_in_front() {
        let config = |alias: &str| {
            format!(
                "[networks.n]\n[[networks.n.endpoints]]\nname = \"a\"\nipv4 = \"10.0.0.2\"\naliases = [\"{alias}\"]\n"
            )
        };
        assert!(Config::parse(&config("*.shop.test"), "w.toml").is_ok());
        let inside = Config::parse(&config("a.*.test"), "w.toml")
            .expect_err("inside")
            .to_string();
        assert!(inside.contains("not a usable DNS name"), "{inside}");
        assert!(Config::parse(&config("*"), "w.toml").is_err());
    }

    #[test]
    fn static_records_are_checked_with_file_line_field_and_hint() {
        let with = |records: &str| {
            format!(
                "[networks.n]\n[[networks.n.endpoints]]\nname = \"web\"\nipv4 = \"10.0.0.2\"\n{records}"
            )
        };
        let good = Config::parse(
            &with("[networks.n.records.cname]\n\"www.shop.test\" = \"web\"\n[networks.n.records.a]\n\"db.shop.test\" = [\"10.0.0.9\", \"10.0.0.10\"]\n[networks.n.records.txt]\n\"info\" = \"v=1\"\n"),
            "r.toml",
        )
        .expect("valid");
        assert_eq!(
            good.networks["n"].records.a["db.shop.test"]
                .get_ref()
                .0
                .len(),
            2
        );
        let long = "x".repeat(256);
        for (records, line, field, message, hint) in [
            (
                "[networks.n.records.cname]\n\"www\" = \"bad..name\"\n".to_string(),
                6,
                "networks.n.records.cname.\"www\"",
                "CNAME target",
                "letters, digits",
            ),
            (
                "[networks.n.records.a]\n\"db\" = [\"10.0.0.9\", \"fd00::1\"]\n".to_string(),
                6,
                "networks.n.records.a.\"db\"[1]",
                "`fd00::1` is not an IPv4 address",
                "under `aaaa`",
            ),
            (
                "[networks.n.records.aaaa]\n\"db\" = \"10.0.0.9\"\n".to_string(),
                6,
                "networks.n.records.aaaa.\"db\"[0]",
                "not an IPv6 address",
                "under `a`",
            ),
            (
                format!("[networks.n.records.txt]\n\"t\" = [\"ok\", \"{long}\"]\n"),
                6,
                "networks.n.records.txt.\"t\"[1]",
                "256 octets",
                "at most 255 octets",
            ),
            (
                "[networks.n.records.cname]\n\"www\" = \"web\"\n[networks.n.records.txt]\n\"www\" = \"v=1\"\n".to_string(),
                6,
                "networks.n.records.cname.\"www\"",
                "also has TXT records",
                "drop the CNAME",
            ),
            (
                "[networks.n.records.cname]\n\"WEB\" = \"elsewhere\"\n".to_string(),
                6,
                "networks.n.records.cname.\"WEB\"",
                "endpoint `web`",
                "drop the CNAME",
            ),
            (
                "[networks.n.records.a]\n\"a b\" = \"10.0.0.9\"\n".to_string(),
                6,
                "networks.n.records.a.\"a b\"",
                "not a usable DNS name",
                "letters, digits",
            ),
            (
                "[networks.n.records.cname]\n\"a\" = \"b\"\n\"b\" = \"A.\"\n".to_string(),
                6,
                "networks.n.records.cname.\"a\"",
                "the CNAME chain a -> b -> a is a loop",
                "another name",
            ),
            (
                "[networks.n.records.cname]\n\"self\" = \"self.\"\n".to_string(),
                6,
                "networks.n.records.cname.\"self\"",
                "a loop",
                "another name",
            ),
        ] {
            let error = Config::parse(&with(&records), "r.toml").expect_err(&records);
            assert_eq!(
                (error.file.as_str(), error.line, error.field.as_str()),
                ("r.toml", line, field),
                "{records}: {error}"
            );
            assert!(error.message.contains(message), "{records}: {error}");
            assert!(
                error.hint.as_deref().unwrap_or_default().contains(hint),
                "{records}: {error}"
            );
        }
    }

    #[test]
    fn forward_zones_are_checked_with_file_line_and_field() {
        let error = |text: &str| Config::parse(text, "z.toml").expect_err(text).to_string();
        let bad = error(
            "[forward]\nenabled = true\n[forward.zones]\n\"corp.example\" = [\"10.1.2.3\", \"nope\"]\n",
        );
        assert!(
            bad.starts_with("z.toml:4:")
                && bad.contains("forward.zones.\"corp.example\"[1]")
                && bad.contains("not an IP or IP:PORT"),
            "{bad}"
        );
        let empty = error("[forward.zones]\n\"consul\" = []\n");
        assert!(
            empty.starts_with("z.toml:2:") && empty.contains("name at least one"),
            "{empty}"
        );
        let not_a_name = error("[forward.zones]\n\"a..b\" = [\"10.0.0.1\"]\n");
        assert!(not_a_name.contains("is not a DNS name"), "{not_a_name}");
        let good = Config::parse(
            "[forward.zones]\n\"consul\" = [\"127.0.0.1:8600\"]\n\"corp.example.\" = [\"10.1.2.3\"]\n",
            "z.toml",
        )
        .expect("valid");
        let zones = good.forward.zone_upstreams();
        assert_eq!(zones.len(), 2);
        assert_eq!(zones[0].0.to_ascii(), "consul.");
        assert_eq!(
            zones[0].1,
            vec!["127.0.0.1:8600".parse::<SocketAddr>().expect("addr")]
        );
        assert_eq!(
            zones[1].1,
            vec!["10.1.2.3:53".parse::<SocketAddr>().expect("addr")]
        );
    }

    #[test]
    fn a_container_with_two_endpoints_on_one_network_names_both_lines() {
        let text = "[networks.n]\n[[networks.n.endpoints]]\nname = \"a\"\nipv4 = \"10.0.0.1\"\ncontainer = \"c\"\n[[networks.n.endpoints]]\nname = \"b\"\nipv4 = \"10.0.0.2\"\ncontainer = \"c\"\n";
        let error = Config::parse(text, "d.toml")
            .expect_err("duplicate")
            .to_string();
        assert!(
            error.starts_with("d.toml:7:") && error.contains("line 3") && error.contains("`c`"),
            "{error}"
        );
    }

    #[test]
    fn errors_that_used_to_miss_say_what_the_reader_wrote_and_what_to_do() {
        let error = |text: &str| Config::parse(text, "m.toml").expect_err(text).to_string();
        let ttl = error("[server]\nttl = \"five\"\n");
        assert!(
            ttl.contains("expected a whole number") && !ttl.contains("i128"),
            "{ttl}"
        );
        let listen = error("[server]\nlisten = \"127.0.0.1:1053\"\n");
        assert!(listen.contains("takes a list"), "{listen}");
        let outside = error(
            "[networks.n]\nsubnet = \"10.0.0.0/24\"\n[[networks.n.endpoints]]\nname = \"a\"\nipv4 = \"10.1.0.2\"\n",
        );
        assert!(outside.contains("inside the subnet"), "{outside}");
        let typo = error("[server]\nlsten = []\n");
        assert!(
            !typo.contains("check-config"),
            "no pointing at itself: {typo}"
        );
        // A duplicate name is said as one, on the field the reader wrote.
        let twice = error(
            "[networks.n]\n[[networks.n.endpoints]]\nname = \"a\"\nipv4 = \"10.0.0.2\"\n[[networks.n.endpoints]]\nname = \"a\"\nipv4 = \"10.0.0.3\"\n",
        );
        assert!(
            twice.starts_with("m.toml:6:")
                && twice.contains(".name`")
                && twice.contains("used twice")
                && twice.contains("line 3"),
            "{twice}"
        );
        // One address on two endpoints is an error naming both lines.
        let shared = error(
            "[networks.n]\n[[networks.n.endpoints]]\nname = \"a\"\nipv4 = \"10.0.0.2\"\n[[networks.n.endpoints]]\nname = \"b\"\nipv4 = \"10.0.0.2\"\n",
        );
        assert!(
            shared.starts_with("m.toml:7:") && shared.contains("`a` (line 4)"),
            "{shared}"
        );
        // The same address on two networks is fine.
        Config::parse(
            "[networks.n]\n[[networks.n.endpoints]]\nname = \"a\"\nipv4 = \"10.0.0.2\"\n[networks.m]\n[[networks.m.endpoints]]\nname = \"b\"\nipv4 = \"10.0.0.2\"\n",
            "m.toml",
        )
        .expect("one address per network");
    }

    #[test]
    fn srv_entries_are_checked_with_file_line_and_field() {
        let with = |srv: &str| {
            format!(
                "[networks.n]\n[[networks.n.endpoints]]\nname = \"a\"\nipv4 = \"10.0.0.1\"\nsrv = [{srv}]\n"
            )
        };
        let ok = Config::parse(
            &with("{ service = \"http\", port = 80 }, { service = \"dns\", proto = \"udp\", port = 53, weight = 3 }"),
            "s.toml",
        )
        .expect("valid");
        assert_eq!(ok.networks["n"].endpoints[0].srv.len(), 2);
        for (srv, field) in [
            ("{ service = \"_http\", port = 80 }", "srv.service"),
            (
                "{ service = \"way-too-long-service\", port = 80 }",
                "srv.service",
            ),
            (
                "{ service = \"http\", proto = \"sctp\", port = 80 }",
                "srv.proto",
            ),
            ("{ service = \"http\", port = 0 }", "port"),
            ("{ service = \"http\", port = 70000 }", "port"),
            ("{ service = \"http\", port = 80, colour = 1 }", "colour"),
        ] {
            let error = Config::parse(&with(srv), "s.toml")
                .expect_err(srv)
                .to_string();
            assert!(
                error.starts_with("s.toml:5:") && error.contains(field),
                "{srv}: {error}"
            );
        }
    }

    #[test]
    fn numbers_out_of_range_are_errors_naming_file_line_and_field() {
        for (key, value, field) in [
            (
                "tcp_idle_timeout_secs",
                "18446744073709551615",
                "server.tcp_idle_timeout_secs",
            ),
            ("tcp_idle_timeout_secs", "0", "server.tcp_idle_timeout_secs"),
            ("ttl", "4294967295", "server.ttl"),
            ("max_udp_payload", "100", "server.max_udp_payload"),
            ("udp_workers", "-1", "server.udp_workers"),
        ] {
            let text = format!("[server]\nlisten = [\"127.0.0.1:0\"]\n{key} = {value}\n");
            let error = Config::parse(&text, "n.toml").expect_err(key).to_string();
            assert!(
                error.starts_with("n.toml:3:")
                    && error.contains(field)
                    && error.contains("out of range"),
                "{key} = {value}: {error}"
            );
        }
        let text = "[forward]\ntimeout_ms = 99999999999\n";
        let error = Config::parse(text, "n.toml")
            .expect_err("timeout")
            .to_string();
        assert!(
            error.contains("forward.timeout_ms") && error.contains("1 to 60000"),
            "{error}"
        );
        let fine = "[server]\ntcp_idle_timeout_secs = 3600\nttl = 2147483647\n";
        assert!(Config::parse(fine, "n.toml").is_ok());
    }

    #[test]
    fn embedded_default_is_valid_and_holds_the_seed_network() {
        let config = Config::embedded_default().expect("embedded default parses");
        let net = &config.networks["my_custom_network"];
        let names: Vec<_> = net
            .endpoints
            .iter()
            .map(|e| e.name.get_ref().as_str())
            .collect();
        assert_eq!(names, ["web1", "web2", "web3"]);
        assert!(
            net.endpoints
                .iter()
                .all(|e| e.aliases.iter().any(|a| a.get_ref() == "app"))
        );
    }

    #[test]
    fn seed_typo_in_subnet_names_line_and_field() {
        let text =
            "[server]\nttl = 0\n\n[networks.my_custom_network]\nsubnet = \"172.72.0.0./16\"\n";
        let err = Config::parse(text, "bad.toml").expect_err("typo must be rejected");
        assert_eq!(err.file, "bad.toml");
        assert_eq!(err.line, 5);
        assert_eq!(err.field, "networks.my_custom_network.subnet");
        assert!(err.hint.as_deref().unwrap_or_default().contains("CIDR"));
    }

    #[test]
    fn bad_endpoint_ip_is_located() {
        let text =
            "[networks.n]\n[[networks.n.endpoints]]\nname = \"a\"\nipv4 = \"172.72.0.0./16\"\n";
        let err = Config::parse(text, "f.toml").expect_err("bad ip");
        assert_eq!(
            (err.line, err.field.as_str()),
            (4, "networks.n.endpoints[0].ipv4")
        );
    }

    #[test]
    fn unknown_key_is_rejected() {
        let err = Config::parse("[server]\nttll = 3\n", "f.toml").expect_err("unknown key");
        assert_eq!(err.line, 2);
        assert!(err.message.contains("unknown field"), "{err}");
    }

    #[test]
    fn address_outside_subnet_is_rejected() {
        let text = "[networks.n]\nsubnet = \"10.1.0.0/24\"\n[[networks.n.endpoints]]\nname = \"a\"\nipv4 = \"10.2.0.1\"\n";
        let err = Config::parse(text, "f.toml").expect_err("outside subnet");
        assert_eq!(err.line, 5);
        assert!(err.message.contains("outside"), "{err}");
    }

    #[test]
    fn line_column_counts_from_one() {
        assert_eq!(line_column("ab\ncd", 0), (1, 1));
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
    }

    #[test]
    fn a_client_s_forwarding_share_is_decided_here_once() {
        let mut forward = ForwardConfig::default();
        assert_eq!(
            forward.per_client_in_flight(256),
            64,
            "a quarter by default"
        );
        assert_eq!(forward.per_client_in_flight(3), 1, "never 0");
        forward.max_in_flight_per_client = Some(500);
        assert_eq!(
            forward.per_client_in_flight(240),
            240,
            "never past the total"
        );
    }
}
