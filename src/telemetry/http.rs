//! HTTP beside the DNS: `/metrics` (Prometheus), `/healthz`, `/readyz`, `/records`,
//! `/label-names` (for `netalias host-dns`) and `/explain`.
//!
//! Read-only: it renders what the registry and the recorder hold and never changes them. It
//! decides no answer: what `/explain` predicts comes from the DNS front end through
//! [`Predict`], handed in by the assembly, so that this module need not know the dns layer.
//! Locked down like the DNS side: a connection cap (a permit released on drop), a header
//! timeout and a request timeout (hyper's and tower-http's own), a bounded header buffer and
//! body, one request per connection, and `/records` and `/label-names` only for loopback,
//! `server.http_allow`, and known containers (which see only their own networks, as in DNS). The first three
//! paths stay open for Prometheus and health checks.

use std::{
    net::{IpAddr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    extract::{ConnectInfo, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use ipnet::IpNet;
use metrics::{counter, gauge};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::{net::TcpListener, sync::Semaphore};
use tower::ServiceExt;
use tower_http::{limit::RequestBodyLimitLayer, timeout::TimeoutLayer};
use tracing::{debug, info};

use super::names;
use crate::registry::Registry;

/// The DNS front end as `/explain` needs it, handed in by the assembly (`main.rs`; the dns
/// layer implements it). The prediction must be the server's own answer, never a copy of the
/// answer rules here: a copy drifts from the wire.
pub trait Predict: Send + Sync {
    /// The asker a packet from `ip` is, as the DNS policies see it (one of the host's own
    /// addresses asks as the host).
    fn asker(&self, ip: IpAddr) -> IpAddr;
    /// What the server would answer `asker` for `name` `qtype` now, taking no rotation turn,
    /// as lines for people.
    fn predict(
        &self,
        name: &hickory_server::proto::rr::Name,
        qtype: hickory_server::proto::rr::RecordType,
        asker: IpAddr,
    ) -> Vec<String>;
}

/// What `/readyz` waits for: the listeners, and the first sync of every enabled live source.
#[derive(Debug, Default)]
pub struct Readiness {
    listeners_up: AtomicBool,
    /// The enabled sources that have not synced once yet.
    waiting: std::sync::Mutex<Vec<&'static str>>,
}

impl Readiness {
    /// `sources`: the live sources (`docker`, `swarm`) that must sync once before we are ready.
    pub fn new(sources: &[&'static str]) -> Arc<Readiness> {
        Arc::new(Readiness {
            listeners_up: AtomicBool::new(false),
            waiting: std::sync::Mutex::new(sources.to_vec()),
        })
    }
    pub fn listeners_up(&self) {
        self.listeners_up.store(true, Ordering::Relaxed);
    }
    /// `source` has applied its first complete view of the world.
    pub fn synced(&self, source: &str) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        waiting.retain(|s| *s != source);
    }
    /// `None` when ready, else what is missing, for people.
    pub fn not_ready(&self) -> Option<String> {
        if !self.listeners_up.load(Ordering::Relaxed) {
            return Some("the DNS listeners are not up yet".into());
        }
        let waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        (!waiting.is_empty())
            .then(|| format!("waiting for the first sync of: {}", waiting.join(", ")))
    }
    pub fn is_ready(&self) -> bool {
        self.not_ready().is_none()
    }
}

/// The HTTP side's limits. A scrape or a health check is one small GET answered in
/// milliseconds: these leave room for that many times over and nothing for a slow client.
pub mod limits {
    use std::time::Duration;
    /// A request's headers must arrive within this.
    pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
    /// A request must be answered within this.
    pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
    /// A connection lives at most this long, whatever it does.
    pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(30);
    /// Header buffer (hyper's smallest allowed) and body bytes accepted.
    pub const MAX_HEADER_BYTES: usize = 8192;
    pub const MAX_BODY_BYTES: usize = 1024;
}

struct HttpState {
    registry: Arc<Registry>,
    prometheus: PrometheusHandle,
    readiness: Arc<Readiness>,
    /// Who besides loopback may read `/records` in full.
    allow: Vec<IpNet>,
    /// What the DNS side would answer (for `/explain`).
    predict: Arc<dyn Predict>,
    /// Names with at most this many members get `netalias_rotation_first_total` series.
    spread_max_members: usize,
}

/// What the HTTP side shows and to whom, and how many connections it takes.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Networks (besides loopback) that may read every record.
    pub allow: Vec<IpNet>,
    pub max_connections: usize,
    /// Names with 2 to this many members get `netalias_rotation_first_total` series.
    pub spread_max_members: usize,
}

/// Binds `addr` (so an error is reported before serving starts) and serves until the process
/// ends.
pub async fn serve(
    addr: SocketAddr,
    registry: Arc<Registry>,
    prometheus: PrometheusHandle,
    readiness: Arc<Readiness>,
    predict: Arc<dyn Predict>,
    options: HttpOptions,
) -> std::io::Result<impl std::future::Future<Output = std::io::Result<()>>> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let max_connections = options.max_connections;
    let state = Arc::new(HttpState {
        registry,
        prometheus,
        readiness,
        allow: options.allow,
        predict,
        spread_max_members: options.spread_max_members,
    });
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/records", get(records))
        .route("/label-names", get(label_names))
        .route("/explain", get(explain))
        .with_state(state)
        .layer(RequestBodyLimitLayer::new(limits::MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits::REQUEST_TIMEOUT,
        ));
    info!(
        addr = %local,
        max_connections,
        "http listening: /metrics /healthz /readyz /records /label-names /explain"
    );
    Ok(accept_loop(listener, app, max_connections))
}

/// Connections from loopback served past the cap, so that `/healthz` and `/readyz` (the
/// HEALTHCHECK, an orchestrator's probe through `netalias health`) are never starved by others.
/// Each holds a descriptor: the plan (`fd_budget`) counts them beside the cap.
pub const LOOPBACK_RESERVED: usize = 4;

/// Who may hold an HTTP connection: at most `total` at once, at most a quarter of that from
/// one address (70 idle connections from one container took every slot, and the health check
/// with them), and loopback a few more past the cap. A [`Place`] gives its share back on drop.
struct Slots {
    total: Arc<Semaphore>,
    loopback: Arc<Semaphore>,
    per_address: usize,
    held: std::sync::Mutex<std::collections::HashMap<IpAddr, usize>>,
}

/// One connection's place in [`Slots`].
struct Place {
    slots: Arc<Slots>,
    peer: IpAddr,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = held.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.peer);
            }
        }
    }
}

impl Slots {
    fn new(total: usize) -> Arc<Slots> {
        let total = total.max(1);
        Arc::new(Slots {
            total: Arc::new(Semaphore::new(total)),
            loopback: Arc::new(Semaphore::new(LOOPBACK_RESERVED)),
            per_address: (total / 4).max(1),
            held: Default::default(),
        })
    }

    /// A place for a connection from `peer`, or `None` (then it is closed at accept).
    fn admit(self: &Arc<Self>, peer: IpAddr) -> Option<Place> {
        let loopback = peer.is_loopback();
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let mine = held.get(&peer).copied().unwrap_or(0);
        if !loopback && mine >= self.per_address {
            return None;
        }
        let permit = Arc::clone(&self.total)
            .try_acquire_owned()
            .ok()
            .or_else(|| {
                loopback
                    .then(|| Arc::clone(&self.loopback).try_acquire_owned().ok())
                    .flatten()
            })?;
        held.insert(peer, mine + 1);
        Some(Place {
            slots: Arc::clone(self),
            peer,
            _permit: permit,
        })
    }
}

/// Accepts up to `max_connections` at once, a quarter of them from one address, and a few from
/// loopback past that (see [`Slots`]); others are closed at accept. Each serves one request
/// with hyper's header timeout.
async fn accept_loop(
    listener: TcpListener,
    app: Router,
    max_connections: usize,
) -> std::io::Result<()> {
    let slots = Slots::new(max_connections);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                debug!(%error, "http accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        // The place is the connection's; it goes back when the task ends.
        let Some(permit) = slots.admit(peer.ip().to_canonical()) else {
            counter!(names::HTTP_REFUSED_TOTAL).increment(1);
            continue; // dropping the stream closes it
        };
        let app = app.clone();
        tokio::spawn(async move {
            let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
            let service = hyper::service::service_fn(move |mut request| {
                request.extensions_mut().insert(ConnectInfo(peer));
                app.clone().oneshot(request)
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits::HEADER_TIMEOUT)
                .max_buf_size(limits::MAX_HEADER_BYTES)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(limits::CONNECTION_LIFETIME, connection).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => debug!(%peer, %error, "http connection ended"),
                Err(_) => debug!(%peer, "http connection outlived its limit; closed"),
            }
            drop(permit);
        });
    }
}

async fn metrics(State(state): State<Arc<HttpState>>) -> impl IntoResponse {
    let sizes = state.registry.sizes();
    gauge!(names::REGISTRY_NETWORKS).set(sizes.networks as f64);
    gauge!(names::REGISTRY_ENDPOINTS).set(sizes.endpoints as f64);
    gauge!(names::REGISTRY_NAMES).set(sizes.names as f64);
    if let Some(bytes) = resident_memory_bytes() {
        gauge!(names::PROCESS_RESIDENT_MEMORY).set(bytes as f64);
    }
    let mut page = state.prometheus.render();
    render_spread(&mut page, &state.registry.spread(state.spread_max_members));
    ([("content-type", "text/plain; version=0.0.4")], page)
}

/// `netalias_rotation_first_total`, written at scrape from the rotation cursors (nothing on
/// the answer path counts them, see `registry::record_set`): a member that leaves has no
/// series left behind, and only names with few members have any.
fn render_spread(page: &mut String, spread: &[(String, String, IpAddr, u64)]) {
    use std::fmt::Write;
    if spread.is_empty() {
        return;
    }
    let metric = names::ROTATION_FIRST_TOTAL;
    let help = names::CATALOGUE
        .iter()
        .find(|m| m.name == metric)
        .map_or("", |m| m.help);
    // Label values escaped as the text format asks (backslash, quote, newline).
    let escape = |v: &str| {
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    };
    let _ = writeln!(page, "# HELP {metric} {help}\n# TYPE {metric} counter");
    for (network, name, member, count) in spread {
        let _ = writeln!(
            page,
            "{metric}{{network=\"{}\",name=\"{}\",member=\"{member}\"}} {count}",
            escape(network),
            escape(name)
        );
    }
}

async fn readyz(State(state): State<Arc<HttpState>>) -> impl IntoResponse {
    match state.readiness.not_ready() {
        None => (StatusCode::OK, "ready\n".to_string()),
        Some(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}

/// networks → names → members, in the order the next answer will give them: a known
/// container's own networks (as DNS scopes its answers), everything for loopback and
/// `server.http_allow`, and nothing (403) for anyone else.
async fn records(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    match records_for(&state.registry, &state.allow, peer.ip()) {
        Some(records) => axum::Json(records).into_response(),
        None => (
            StatusCode::FORBIDDEN,
            "/records is for loopback, server.http_allow and known containers\n",
        )
            .into_response(),
    }
}

/// The names `netalias.names` labels claim (a JSON array of strings, `*.D` for a wildcard, in
/// name order), for `netalias host-dns` to route their domains from the host; seen as
/// `/records` is (a known container: its own networks; loopback and `server.http_allow`: all;
/// anyone else: 403).
async fn label_names(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    match label_names_for(&state.registry, &state.allow, peer.ip()) {
        Some(names) => axum::Json(names).into_response(),
        None => (
            StatusCode::FORBIDDEN,
            "/label-names is for loopback, server.http_allow and known containers\n",
        )
            .into_response(),
    }
}

/// `/explain?name=NAME[&from=CONTAINER|IP][&type=TYPE]`, for people: why NAME answers as it
/// does (see [`Registry::explain`]) and what the answer is ([`Predict`]). The access rule of
/// `/records`: loopback and `server.http_allow` may explain for any asker; a known container
/// only for itself.
async fn explain(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    axum::extract::Query(params): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let (status, text) = explain_for(&state, peer.ip(), &params);
    (status, text).into_response()
}

fn explain_for(
    state: &HttpState,
    peer: IpAddr,
    params: &std::collections::HashMap<String, String>,
) -> (StatusCode, String) {
    use hickory_server::proto::rr::{Name, RecordType};
    let registry = &state.registry;
    let trusted = peer.is_loopback() || state.allow.iter().any(|net| net.contains(&peer));
    let given = match params.get("from") {
        None => peer,
        Some(from) if trusted => match from.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => match registry.address_of(from) {
                Some(ip) => ip,
                None => {
                    return (
                        StatusCode::NOT_FOUND,
                        format!("no container named {from}\n"),
                    );
                }
            },
        },
        Some(_) => {
            return (
                StatusCode::FORBIDDEN,
                "a container may explain only for itself (no from=)\n".into(),
            );
        }
    };
    if !trusted && registry.records_seen_by(peer).is_none() {
        return (
            StatusCode::FORBIDDEN,
            "/explain is for loopback, server.http_allow and known containers\n".into(),
        );
    }
    let Some(name) = params.get("name") else {
        return (StatusCode::BAD_REQUEST, "give name=NAME\n".into());
    };
    let type_given = params.get("type").map_or("A", String::as_str);
    let Ok(qtype) = type_given.to_ascii_uppercase().parse::<RecordType>() else {
        return (
            StatusCode::BAD_REQUEST,
            format!("{type_given} is not a DNS record type\n"),
        );
    };
    let trimmed = name.trim_end_matches('.');
    // An address is asked as `kdig -x` asks it: its reverse name, type PTR.
    let (asked, qtype) = match trimmed.parse::<IpAddr>() {
        Ok(ip) => (Name::from(ip), RecordType::PTR),
        Err(_) => match Name::from_ascii(format!("{trimmed}.")) {
            Ok(asked) => (asked, qtype),
            Err(_) => {
                return (
                    StatusCode::BAD_REQUEST,
                    format!("{name} is not a DNS name\n"),
                );
            }
        },
    };
    let mut lines = vec![format!("question: {asked} {qtype}")];
    // The asker as the DNS side sees it: one of the host's own addresses asks as the host.
    let asker = state.predict.asker(given);
    if asker != given.to_canonical() {
        lines.push(format!(
            "{given} is one of this host's addresses: it asks as the host ({asker})"
        ));
    }
    // A service name (`_SERVICE._PROTO.HOST`) is answered from HOST's members: explain those;
    // their `offers` lines say who offers what.
    let mut described = asked.clone();
    let labels: Vec<&[u8]> = asked.iter().collect();
    if let [service, proto, _, ..] = labels.as_slice()
        && service.starts_with(b"_")
        && proto.starts_with(b"_")
    {
        described = asked.trim_to(labels.len() - 2);
        lines.push(format!(
            "{}.{} is offered by the members of {described} marked `offers {0}.{1}`",
            String::from_utf8_lossy(service),
            String::from_utf8_lossy(proto),
        ));
    }
    // A container explaining for itself learns nothing of networks it is not on (`/records`'
    // rule); loopback and `http_allow` see them, marked as not seen by the asker. The answer
    // it is then told is the one it would get itself.
    let described: hickory_server::proto::rr::LowerName = described.into();
    let description = registry.describe(&described, asker, !trusted);
    lines.extend(super::explain::lines(&described.to_string(), &description));
    lines.extend(state.predict.predict(&asked, qtype, asker));
    (StatusCode::OK, lines.join("\n") + "\n")
}

type Records = std::collections::BTreeMap<String, std::collections::BTreeMap<String, Vec<String>>>;

/// What `/records` shows `ip`, or `None` for 403.
fn records_for(registry: &Registry, allow: &[IpNet], ip: IpAddr) -> Option<Records> {
    if let Some(own) = registry.records_seen_by(ip) {
        return Some(own);
    }
    (ip.is_loopback() || allow.iter().any(|net| net.contains(&ip))).then(|| registry.records())
}

/// What `/label-names` shows `ip` (the rule of [`records_for`]), or `None` for 403.
fn label_names_for(registry: &Registry, allow: &[IpNet], ip: IpAddr) -> Option<Vec<String>> {
    if let Some(own) = registry.label_names_seen_by(ip) {
        return Some(own);
    }
    (ip.is_loopback() || allow.iter().any(|net| net.contains(&ip))).then(|| registry.label_names())
}

/// This process's resident memory, from /proc (Linux); `None` elsewhere.
fn resident_memory_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions; it only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{Change, Endpoint};

    fn endpoint(network: &str, name: &str, ip: [u8; 4]) -> Change {
        Change::EndpointUp(Endpoint {
            network: network.into(),
            container: name.into(),
            name: name.into(),
            aliases: vec![],
            ipv4: Some(ip.into()),
            ipv6: None,
            ttl: None,
            out_of_rotation: None,
            srv: Vec::new(),
            origins: Default::default(),
        })
    }

    #[test]
    fn one_address_cannot_take_every_http_slot_and_loopback_always_gets_one() {
        let slots = Slots::new(8);
        let flood: IpAddr = [10, 0, 0, 9].into();
        let held: Vec<Place> = (0..8).filter_map(|_| slots.admit(flood)).collect();
        assert_eq!(held.len(), 2, "a quarter of the cap from one address");
        let others: Vec<Place> = (1..=6u8)
            .filter_map(|i| slots.admit([10, 0, 1, i].into()))
            .collect();
        assert_eq!(others.len(), 6, "the rest of the cap for everyone else");
        assert!(slots.admit([10, 0, 2, 1].into()).is_none(), "full");
        let probes: Vec<Place> = (0..LOOPBACK_RESERVED)
            .filter_map(|_| slots.admit([127, 0, 0, 1].into()))
            .collect();
        assert_eq!(probes.len(), LOOPBACK_RESERVED, "loopback past the cap");
        drop(held);
        assert!(slots.admit(flood).is_some(), "places come back on drop");
    }

    #[test]
    fn explain_keeps_the_records_rule_for_a_container_asking_for_itself() {
        let registry = Arc::new(Registry::new(Some("docker")).expect("registry"));
        registry.apply_all(
            crate::registry::Owner("test"),
            [
                endpoint("neta", "web", [10, 1, 0, 2]),
                endpoint("netb", "secretdb", [10, 2, 0, 2]),
            ],
        );
        let predict = crate::dns::Responder::new(
            Arc::clone(&registry),
            Arc::new(crate::dns::Settings::new(0, 1232)),
        );
        let state = HttpState {
            registry,
            prometheus: metrics_exporter_prometheus::PrometheusBuilder::new()
                .build_recorder()
                .handle(),
            readiness: Readiness::new(&[]),
            allow: Vec::new(),
            predict: Arc::new(predict),
            spread_max_members: 0,
        };
        let ask = |peer: [u8; 4], params: &[(&str, &str)]| {
            let params = params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            explain_for(&state, peer.into(), &params)
        };
        // The container on neta, for itself: netb and its members are not even named.
        let (status, text) = ask([10, 1, 0, 2], &[("name", "secretdb"), ("type", "SRV")]);
        assert_eq!(status, StatusCode::OK, "{text}");
        assert!(
            !text.contains("netb") && !text.contains("10.2.0.2"),
            "{text}"
        );
        // Loopback explaining for that container sees why: held on a network it does not see.
        let (_, text) = ask(
            [127, 0, 0, 1],
            &[("name", "secretdb"), ("from", "10.1.0.2")],
        );
        assert!(
            text.contains("network netb (NOT seen by the asker)"),
            "{text}"
        );
    }

    #[test]
    fn records_are_scoped_like_dns_and_closed_to_strangers() {
        let registry = Registry::new(Some("docker")).expect("registry");
        registry.apply_all(
            crate::registry::Owner("test"),
            [
                endpoint("a", "in-a", [10, 1, 0, 2]),
                endpoint("b", "in-b", [10, 2, 0, 2]),
            ],
        );
        let allow: Vec<IpNet> = vec!["192.168.7.0/24".parse().unwrap()];
        let all = records_for(&registry, &allow, [127, 0, 0, 1].into()).expect("loopback");
        assert_eq!(all.keys().collect::<Vec<_>>(), ["a", "b"]);
        let own = records_for(&registry, &allow, [10, 1, 0, 2].into()).expect("a container");
        assert_eq!(
            own.keys().collect::<Vec<_>>(),
            ["a"],
            "its own network only"
        );
        assert!(records_for(&registry, &allow, [192, 168, 7, 9].into()).is_some());
        assert!(
            records_for(&registry, &allow, [10, 9, 9, 9].into()).is_none(),
            "a stranger"
        );
        // /label-names keeps the same rule.
        assert!(label_names_for(&registry, &allow, [127, 0, 0, 1].into()).is_some());
        assert!(label_names_for(&registry, &allow, [10, 1, 0, 2].into()).is_some());
        assert!(label_names_for(&registry, &allow, [192, 168, 7, 9].into()).is_some());
        assert!(label_names_for(&registry, &allow, [10, 9, 9, 9].into()).is_none());
    }
}
