//! Forwarding: names netalias does not own go to upstream servers.
//!
//! Upstreams are tried healthy-first; a timeout, SERVFAIL, REFUSED or network error moves on
//! to the next and penalises the one that failed. NXDOMAIN and NODATA pass through as they
//! are. TCP clients are forwarded over TCP; a truncated UDP answer is retried over TCP. The
//! number in flight is bounded, in all and per client (one client cannot hold every slot),
//! and identical questions in flight are sent upstream once and answered to every asker.
//! A question that comes back to us from our own forwarding (the same question with the ID
//! we sent it under) is a loop: it fails at once and is never sent again. Who may be
//! forwarded for is decided by the caller, not here; so is the rcode a failure becomes.

mod cache;
mod upstream;

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    path::Path,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use arc_swap::ArcSwap;
use futures_util::{StreamExt, stream::FuturesUnordered};
use hickory_server::proto::{
    op::{Edns, Message, Query, ResponseCode},
    rr::{LowerName, Name},
};
use metrics::counter;
use tokio::sync::{Semaphore, oneshot};
use tracing::{debug, warn};

pub use cache::{Cache, CacheLimits, Encoded, Served};

/// What forwarding brought: an upstream's answer just received (or shared by the asker that
/// sent the question), or one from the cache in its one encoded form, which the caller relays
/// as bytes where it can (`fast::write_cached`) and decodes only where it must.
#[derive(Debug)]
pub enum Relayed {
    Fresh(Message),
    Cached(Arc<Encoded>, Served),
}

impl Relayed {
    /// The answer as a message (a cached one decoded); `None` for a cached entry hickory
    /// cannot read back (it is not kept, see `Cache::keep`).
    pub fn into_message(self) -> Option<Message> {
        match self {
            Relayed::Fresh(message) => Some(message),
            Relayed::Cached(entry, served) => entry.message(served),
        }
    }
}
pub use upstream::{ExchangeError, Upstream};
use upstream::{UPSTREAM_UDP_PAYLOAD, exchange_tcp, exchange_udp};

use crate::telemetry::names;

/// `response` carrying `upstream`'s answer: its rcode and its three sections as the upstream
/// ordered them (its OPT and signature stay the upstream's). The full path relays with this,
/// and the cache encodes what the fast path sends with it, so the two cannot drift apart.
pub fn relay_into(response: &mut Message, upstream: Message) {
    response.metadata.response_code = upstream.metadata.response_code;
    response.answers = upstream.answers;
    response.authorities = upstream.authorities;
    response.additionals = upstream.additionals;
}

/// Docker's embedded resolver inside a container on a user-defined network. Docker redirects
/// 127.0.0.11:53 to its resolver before any socket of ours sees it, so a wildcard listener of
/// ours on port 53 does not make it "us"; when our own resolv.conf names it, it forwards the
/// way the daemon is configured (a loop through it is caught on arrival, see `forward`).
const DOCKER_EMBEDDED_DNS: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 11));

/// How long an upstream has to answer before the next one is asked as well. Unbound gives a
/// server it knows nothing of about 376 ms; a recursive answer not cached upstream can take
/// longer, and then the first is still heard (whichever answers first wins). Capped at the
/// per-upstream timeout.
const NEXT_UPSTREAM_AFTER: Duration = Duration::from_millis(400);

#[derive(Debug, Clone)]
pub struct ForwardSettings {
    /// For every name no zone below claims.
    pub upstreams: Vec<SocketAddr>,
    /// Zones with upstreams of their own (`corp.example` → 10.1.2.3): a name at or under one
    /// goes to the most specific one's upstreams, and only to them.
    pub zones: Vec<(Name, Vec<SocketAddr>)>,
    pub timeout: Duration,
    pub max_in_flight: usize,
    /// In flight for one client address at once (default: a quarter of `max_in_flight`).
    pub max_in_flight_per_client: usize,
    pub cache: CacheLimits,
}

#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("{0} forwarded queries already in flight")]
    Busy(usize),
    #[error("this client already has {0} forwarded queries in flight")]
    ClientBusy(usize),
    #[error("every upstream failed; last: {0}")]
    AllFailed(String),
    #[error("no upstream servers")]
    NoUpstreams,
    #[error("the question came back from our own forwarding (a loop)")]
    Loop,
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot parse {path}: {source}")]
    Parse {
        path: String,
        #[source]
        source: resolv_conf::ParseError,
    },
}

/// The name servers of a resolv.conf, and nothing else: its `search` and `domain` are
/// deliberately ignored, so a forwarded FQDN is never rewritten.
pub fn upstreams_from_resolv_conf(path: &Path) -> Result<Vec<SocketAddr>, UpstreamConfigError> {
    let text = std::fs::read(path).map_err(|source| UpstreamConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let parsed =
        resolv_conf::Config::parse(&text).map_err(|source| UpstreamConfigError::Parse {
            path: path.display().to_string(),
            source,
        })?;
    Ok(parsed
        .nameservers
        .iter()
        .map(|ip| SocketAddr::new(IpAddr::from(ip), 53))
        .collect())
}

/// Whether `ip` is one of this host's (or container's) own addresses: only those can be bound.
fn is_own_address(ip: IpAddr) -> bool {
    std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

/// Drops upstreams that are netalias itself: one of `own` (our listen addresses), or, for an
/// unspecified one (0.0.0.0), any local address on its port. Docker's 127.0.0.11 is kept:
/// Docker redirects it to its own resolver, and a loop through that is caught on arrival.
/// Says nothing: the caller logs what was dropped, once (the resolv.conf follower asks every
/// 2 s, and a warning each time filled the log).
pub fn without_loops(upstreams: Vec<SocketAddr>, own: &[SocketAddr]) -> Vec<SocketAddr> {
    upstreams
        .into_iter()
        .filter(|u| {
            !own.iter().any(|o| {
                o.port() == u.port()
                    && (o.ip() == u.ip()
                        || (o.ip().is_unspecified()
                            && u.ip() != DOCKER_EMBEDDED_DNS
                            && is_own_address(u.ip())))
            })
        })
        .collect()
}

/// The upstreams in use and where they came from, as the start log says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChosenUpstreams {
    pub upstreams: Vec<SocketAddr>,
    pub from: String,
    /// Named there but left out: netalias's own addresses.
    pub dropped: Vec<SocketAddr>,
}

/// The upstreams to use: `explicit` (with the name of where they were given) when there are
/// any, else the name servers of the resolv.conf at `resolv_conf`: inside a container on a
/// user-defined network that is Docker's 127.0.0.11, which forwards the way the daemon is
/// configured; on a host, the host's servers. Either way our own listen addresses (`own`)
/// are left out.
///
/// A resolv.conf that names only systemd-resolved's stub (127.0.0.53, or 127.0.0.54) stands
/// for the uplinks resolved itself uses, which it lists in [`RESOLVED_UPLINKS`]: those are
/// used, so a netalias that cannot reach the stub (in a container, or once `host-dns` routes
/// names to it) still reaches the servers behind it, VPN ones included.
pub fn choose_upstreams(
    explicit: Option<(Vec<SocketAddr>, &str)>,
    resolv_conf: &Path,
    own: &[SocketAddr],
) -> Result<ChosenUpstreams, UpstreamConfigError> {
    choose_upstreams_with(explicit, resolv_conf, Path::new(RESOLVED_UPLINKS), own)
}

/// Where systemd-resolved lists the servers of every link (what its stub forwards to).
pub const RESOLVED_UPLINKS: &str = "/run/systemd/resolve/resolv.conf";

/// systemd-resolved's stub listeners: the stub (127.0.0.53) and its proxy (127.0.0.54).
fn is_resolved_stub(addr: &SocketAddr) -> bool {
    addr.port() == 53
        && matches!(addr.ip(), IpAddr::V4(v4) if v4.octets() == [127, 0, 0, 53] || v4.octets() == [127, 0, 0, 54])
}

/// [`choose_upstreams`], with systemd-resolved's uplinks read from `uplinks`.
fn choose_upstreams_with(
    explicit: Option<(Vec<SocketAddr>, &str)>,
    resolv_conf: &Path,
    uplinks: &Path,
    own: &[SocketAddr],
) -> Result<ChosenUpstreams, UpstreamConfigError> {
    let (found, from) = match explicit {
        Some((given, from)) if !given.is_empty() => (given, from.to_string()),
        _ => {
            let found = upstreams_from_resolv_conf(resolv_conf)?;
            let mut from = resolv_conf.display().to_string();
            if found.iter().any(|u| u.ip() == DOCKER_EMBEDDED_DNS) {
                from.push_str(" (Docker's embedded DNS)");
            }
            let behind_stub = (!found.is_empty() && found.iter().all(is_resolved_stub))
                .then(|| upstreams_from_resolv_conf(uplinks).ok())
                .flatten()
                .map(|servers| {
                    servers
                        .into_iter()
                        .filter(|s| !is_resolved_stub(s))
                        .collect::<Vec<_>>()
                })
                .filter(|servers| !servers.is_empty());
            match behind_stub {
                Some(servers) => {
                    let from = format!(
                        "{} (systemd-resolved's uplinks; {from} names its stub)",
                        uplinks.display()
                    );
                    (servers, from)
                }
                None => (found, from),
            }
        }
    };
    let upstreams = without_loops(found.clone(), own);
    let dropped = found
        .into_iter()
        .filter(|u| !upstreams.contains(u))
        .collect();
    Ok(ChosenUpstreams {
        upstreams,
        from,
        dropped,
    })
}

/// `addrs` as a group, in their order, reusing those of `kept` with the same address.
fn group(addrs: &[SocketAddr], kept: &[Arc<Upstream>]) -> Group {
    addrs
        .iter()
        .map(|addr| {
            kept.iter()
                .find(|u| u.addr == *addr)
                .cloned()
                .unwrap_or_else(|| Arc::new(Upstream::new(*addr)))
        })
        .collect()
}

/// A question as the cache and the in-flight table key it.
type QuestionKey = (
    LowerName,
    hickory_server::proto::rr::RecordType,
    hickory_server::proto::rr::DNSClass,
);
type Outcome = Result<Message, String>;

/// A question on its way upstream: the ID it was sent under, and the askers waiting for it.
struct InFlight {
    id: u16,
    waiters: Vec<oneshot::Sender<Outcome>>,
}

/// Upstreams asked for one set of names, in the configured order. Shared, so that a question
/// keeps the group it started with when the default upstreams are replaced meanwhile, and an
/// upstream kept across a replacement keeps its health.
type Group = Arc<[Arc<Upstream>]>;

/// A zone forwarded to upstreams of its own.
struct ForwardZone {
    zone: LowerName,
    upstreams: Group,
}

pub struct Forwarder {
    /// For names no zone claims; replaced when the resolv.conf they came from changes
    /// ([`Forwarder::set_default_upstreams`]).
    upstreams: ArcSwap<Group>,
    /// Most specific first (most labels), so the first that holds a name is the one.
    zones: Vec<ForwardZone>,
    timeout: Duration,
    in_flight: Arc<Semaphore>,
    max_in_flight: usize,
    max_per_client: usize,
    per_client: Arc<Mutex<HashMap<IpAddr, usize>>>,
    /// Questions being asked upstream now, with the askers waiting for the same answer.
    pending: Mutex<HashMap<QuestionKey, InFlight>>,
    cache: Cache,
    /// Whether a loop has been logged at warn yet: once, not once per packet.
    loop_logged: AtomicBool,
}

/// One client's place among the forwards in flight; given back on drop.
struct ClientSlot {
    table: Arc<Mutex<HashMap<IpAddr, usize>>>,
    client: IpAddr,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(held) = table.get_mut(&self.client) {
            *held -= 1;
            if *held == 0 {
                table.remove(&self.client);
            }
        }
    }
}

impl Forwarder {
    pub fn new(settings: &ForwardSettings) -> Forwarder {
        Forwarder {
            upstreams: ArcSwap::from_pointee(group(&settings.upstreams, &[])),
            zones: {
                let mut zones: Vec<ForwardZone> = settings
                    .zones
                    .iter()
                    .map(|(zone, upstreams)| ForwardZone {
                        zone: LowerName::new(zone),
                        upstreams: group(upstreams, &[]),
                    })
                    .collect();
                zones.sort_by_key(|z| std::cmp::Reverse(z.zone.num_labels()));
                zones
            },
            timeout: settings.timeout,
            in_flight: Arc::new(Semaphore::new(settings.max_in_flight)),
            max_in_flight: settings.max_in_flight,
            max_per_client: settings
                .max_in_flight_per_client
                .clamp(1, settings.max_in_flight.max(1)),
            per_client: Arc::default(),
            pending: Mutex::default(),
            cache: Cache::new(settings.cache),
            loop_logged: AtomicBool::new(false),
        }
    }

    /// The most questions in forwarding at once (senders and waiters alike).
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// Every upstream, the default ones then each zone's.
    pub fn upstreams(&self) -> Vec<Arc<Upstream>> {
        let default = self.upstreams.load_full();
        default
            .iter()
            .chain(self.zones.iter().flat_map(|z| z.upstreams.iter()))
            .cloned()
            .collect()
    }

    /// Replaces the default upstreams (the resolv.conf they came from changed); one kept
    /// keeps its health, questions already asked finish with the group they started with,
    /// and the answer cache is emptied. Returns whether anything changed.
    pub fn set_default_upstreams(&self, addrs: &[SocketAddr]) -> bool {
        let current = self.upstreams.load_full();
        if current.iter().map(|u| u.addr).eq(addrs.iter().copied()) {
            return false;
        }
        self.upstreams.store(Arc::new(group(addrs, &current)));
        // What the old upstreams said goes with them.
        self.cache.clear();
        true
    }

    /// The upstreams `name` goes to: the most specific zone's that holds it, else the
    /// default ones; and that zone.
    fn route(&self, name: &LowerName) -> (Group, Option<&LowerName>) {
        match self.zones.iter().find(|z| z.zone.zone_of(name)) {
            Some(zone) => (Arc::clone(&zone.upstreams), Some(&zone.zone)),
            None => (Arc::clone(&self.upstreams.load()), None),
        }
    }

    /// The upstreams `name` would be forwarded to, as logs name them, and the zone that
    /// routes it there (`None`: the default upstreams).
    pub fn route_labels(&self, name: &LowerName) -> (Vec<String>, Option<String>) {
        let (upstreams, zone) = self.route(name);
        (
            upstreams.iter().map(|u| u.label.clone()).collect(),
            zone.map(|z| z.to_string()),
        )
    }

    /// Takes a place for `client`, unless it holds its share already.
    fn client_slot(&self, client: IpAddr) -> Option<ClientSlot> {
        let mut table = self.per_client.lock().unwrap_or_else(|p| p.into_inner());
        let held = table.entry(client).or_insert(0);
        if *held >= self.max_per_client {
            return None;
        }
        *held += 1;
        Some(ClientSlot {
            table: Arc::clone(&self.per_client),
            client,
        })
    }

    /// The answer cache (the fast path reads its encoded entries).
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Asks the upstreams `question` for `client`, which asked it under DNS ID `id`; `tcp`
    /// when the client came over TCP.
    pub async fn forward(
        &self,
        question: &Query,
        id: u16,
        tcp: bool,
        client: IpAddr,
    ) -> Result<Relayed, ForwardError> {
        let key = (
            LowerName::new(question.name()),
            question.query_type(),
            question.query_class(),
        );
        if let Some((entry, age)) = self.cache.fresh(&key) {
            counter!(names::FORWARD_CACHE_TOTAL, "result" => "hit").increment(1);
            return Ok(Relayed::Cached(entry, Served::Fresh { age }));
        }
        counter!(names::FORWARD_CACHE_TOTAL, "result" => "miss").increment(1);
        let (upstreams, _) = self.route(&key.0);
        let upstreams = &upstreams;
        if upstreams.is_empty() {
            return Err(ForwardError::NoUpstreams);
        }
        // Our own question come back (see below): a loop, whatever this client holds, so that
        // it is counted as one even when the looping resolver's share is full.
        let looped = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .is_some_and(|in_flight| in_flight.id == id);
        if looped {
            self.count_loop(question, client);
            return Err(ForwardError::Loop);
        }
        // Every asker is charged, the one that sends and those that wait on it alike: a
        // client that asks one question over and over (the same 48 names, 100 times each)
        // used to wait uncharged behind its own first copy, holding the receive loops' slots
        // until every other client's forwards timed out (9 of 10, issue 26). Over its share or
        // the total, it is answered now and holds nothing.
        let Some(_client_slot) = self.client_slot(client) else {
            counter!(names::FORWARD_REJECTED_TOTAL, "reason" => "client_limit").increment(1);
            return Err(ForwardError::ClientBusy(self.max_per_client));
        };
        let Ok(_permit) = self.in_flight.try_acquire() else {
            counter!(names::FORWARD_REJECTED_TOTAL, "reason" => "in_flight_limit").increment(1);
            return Err(ForwardError::Busy(self.max_in_flight));
        };
        // The same question already on its way upstream: wait for that answer. Checked and
        // claimed under one lock, so two askers never both send it. Under the very ID we sent
        // it with, it is our own query come back (a resolver that forwards to us keeps the
        // ID: Docker's 127.0.0.11, a resolv.conf or upstream naming us): waiting would only
        // hold both until the timeout, and sending it again would feed the loop.
        let sent_id = rand::random::<u16>();
        let waiting = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            match pending.get_mut(&key) {
                Some(in_flight) if in_flight.id == id => None,
                Some(in_flight) => {
                    let (tx, rx) = oneshot::channel();
                    in_flight.waiters.push(tx);
                    Some(Some(rx))
                }
                None => {
                    pending.insert(
                        key.clone(),
                        InFlight {
                            id: sent_id,
                            waiters: Vec::new(),
                        },
                    );
                    Some(None)
                }
            }
        };
        let Some(waiting) = waiting else {
            self.count_loop(question, client);
            return Err(ForwardError::Loop);
        };
        if let Some(rx) = waiting {
            counter!(names::FORWARD_COALESCED_TOTAL).increment(1);
            return match rx.await {
                Ok(Ok(answer)) => Ok(Relayed::Fresh(answer)),
                Ok(Err(failure)) => Err(ForwardError::AllFailed(failure)),
                Err(_) => Err(ForwardError::AllFailed("the first asker went away".into())),
            };
        }
        // This asker sends it. Whatever happens below (an answer, a failure, this task
        // dropped), the waiters hear of it and the entry goes.
        let mut leader = Leader {
            forwarder: self,
            key: Some(key.clone()),
        };
        // Every upstream failed: an answer that expired a little while ago, when allowed (RFC
        // 8767), beats SERVFAIL.
        match self
            .ask_upstreams(upstreams, question, sent_id, tcp, key.clone())
            .await
        {
            Ok(answer) => {
                leader.finish(Ok(answer.clone()));
                Ok(Relayed::Fresh(answer))
            }
            Err(error) => match self.cache.stale(&key) {
                Some(entry) => {
                    // The askers waiting on this one hear the same stale answer, decoded.
                    leader.finish(
                        entry
                            .message(Served::Stale)
                            .ok_or_else(|| error.to_string()),
                    );
                    Ok(Relayed::Cached(entry, Served::Stale))
                }
                None => {
                    leader.finish(Err(error.to_string()));
                    Err(error)
                }
            },
        }
    }

    /// Counts a loop, and says so at warn the first time only: a loop repeats for as long as
    /// the configuration stands, and one line per packet would drown the log.
    fn count_loop(&self, question: &Query, client: IpAddr) {
        counter!(names::FORWARD_LOOPS_TOTAL).increment(1);
        if !self.loop_logged.swap(true, Ordering::Relaxed) {
            warn!(
                name = %question.name(),
                %client,
                upstreams = ?self.route_labels(&LowerName::new(question.name())).0,
                "a forwarded question came back to netalias (a forwarding loop: an upstream, or the resolver behind it, sends to netalias); answered SERVFAIL and not forwarded again; further loops are only counted (netalias_forward_loops_total)"
            );
        } else {
            debug!(name = %question.name(), %client, "forwarding loop: SERVFAIL");
        }
    }

    /// Asks the upstreams in turn, healthy ones first, each once. One that has not answered
    /// within [`NEXT_UPSTREAM_AFTER`] is kept waiting for while the next is asked too, and the
    /// first good answer wins: two silent upstreams before a live one cost 0.8 s, not two
    /// whole timeouts (3.0 s at the default 1.5 s, past glibc's 5 s with a retry; issue 26).
    async fn ask_upstreams<'a>(
        &'a self,
        group: &'a [Arc<Upstream>],
        question: &Query,
        id: u16,
        tcp: bool,
        key: QuestionKey,
    ) -> Result<Message, ForwardError> {
        let mut query = Message::query();
        // The ID the in-flight table holds for this question: how a loop is recognised.
        query.metadata.id = id;
        query.add_query(question.clone());
        query.metadata.recursion_desired = true;
        let mut edns = Edns::new();
        edns.set_max_payload(UPSTREAM_UDP_PAYLOAD);
        query.edns = Some(edns);
        let wire = query
            .to_vec()
            .map_err(|e| ForwardError::AllFailed(format!("cannot encode the query: {e}")))?;

        // Healthy upstreams first, each group in configured order. Fixed before the first is
        // asked: a lazy chain would see an upstream that just failed as unhealthy and ask it a
        // second time in the unhealthy group. Each is asked once per question.
        let order: Vec<&Upstream> = group
            .iter()
            .filter(|u| u.is_healthy())
            .chain(group.iter().filter(|u| !u.is_healthy()))
            .map(|u| &**u)
            .collect();
        let stagger = NEXT_UPSTREAM_AFTER.min(self.timeout);
        // An attempt beyond the first holds a permit of its own (the caller's pays for the
        // first), so that the sockets in use never pass `max_in_flight`; given back when that
        // attempt ends, not when the question does.
        let attempt = |upstream: &'a Upstream, permit: Option<tokio::sync::SemaphorePermit<'a>>| {
            let (query, wire) = (&query, &wire);
            async move {
                let started = tokio::time::Instant::now();
                let result = self.ask(upstream, query, wire, tcp).await;
                drop(permit);
                (upstream, started, result)
            }
        };
        let mut untried = order.into_iter();
        let mut asked: Vec<&Upstream> = Vec::with_capacity(group.len());
        let mut asking = FuturesUnordered::new();
        let mut next_at = tokio::time::Instant::now();
        let mut last_error = String::new();
        loop {
            if asking.is_empty() {
                // Nothing pending: the next one now, or every one has failed.
                let Some(upstream) = untried.next() else {
                    break;
                };
                asked.push(upstream);
                asking.push(attempt(upstream, None));
                next_at = tokio::time::Instant::now() + stagger;
            }
            tokio::select! {
                Some((upstream, started, result)) = asking.next() => {
                    let metrics = &upstream.metrics;
                    metrics.duration.record(started.elapsed().as_secs_f64());
                    metrics.requests.increment(1);
                    match judge(upstream, result) {
                        Ok(answer) => {
                            upstream.mark_ok();
                            // Those asked before it and still silent go to the back of the
                            // line, as a failed one does: else every question would wait
                            // 400 ms on a dead first upstream before the live one is asked.
                            let before = asked
                                .iter()
                                .take_while(|u| !std::ptr::eq(**u, upstream));
                            for slower in before {
                                slower.mark_failed();
                            }
                            // Relayed as kept: TTLs capped.
                            return Ok(self.cache.put(key, question, answer));
                        }
                        Err(failure) => {
                            metrics.failures.increment(1);
                            debug!(%failure, "upstream failed; trying the next");
                            upstream.mark_failed();
                            last_error = failure;
                        }
                    }
                }
                _ = tokio::time::sleep_until(next_at), if untried.len() > 0 => {
                    // Slow to answer: ask the next as well, still listening to this one.
                    if let Ok(permit) = self.in_flight.try_acquire()
                        && let Some(upstream) = untried.next()
                    {
                        asked.push(upstream);
                        asking.push(attempt(upstream, Some(permit)));
                    }
                    next_at = tokio::time::Instant::now() + stagger;
                }
            }
        }
        Err(ForwardError::AllFailed(last_error))
    }

    /// Sends `outcome` to everyone waiting for `key`, and forgets it.
    fn settle(&self, key: &QuestionKey, outcome: Outcome) {
        let waiters = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key)
            .map(|in_flight| in_flight.waiters)
            .unwrap_or_default();
        for waiter in waiters {
            let _ = waiter.send(outcome.clone());
        }
    }

    async fn ask(
        &self,
        upstream: &Upstream,
        query: &Message,
        wire: &[u8],
        tcp: bool,
    ) -> Result<Message, ExchangeError> {
        if tcp {
            return exchange_tcp(upstream.addr, query, wire, self.timeout).await;
        }
        let answer = exchange_udp(upstream.addr, query, wire, self.timeout).await?;
        if answer.metadata.truncation {
            upstream.metrics.tcp_retries.increment(1);
            return exchange_tcp(upstream.addr, query, wire, self.timeout).await;
        }
        Ok(answer)
    }
}

/// An upstream's reply as forwarding takes it: an answer to relay (NXDOMAIN and NODATA
/// included), or why to move on (SERVFAIL, REFUSED, a timeout, a network error).
fn judge(upstream: &Upstream, result: Result<Message, ExchangeError>) -> Result<Message, String> {
    match result {
        Ok(answer)
            if matches!(
                answer.metadata.response_code,
                ResponseCode::ServFail | ResponseCode::Refused
            ) =>
        {
            Err(format!(
                "{} answered {}",
                upstream.addr, answer.metadata.response_code
            ))
        }
        Ok(answer) => Ok(answer),
        Err(e) => Err(format!("{}: {e}", upstream.addr)),
    }
}

/// The asker that sends a question upstream; its waiters always hear how it went.
struct Leader<'a> {
    forwarder: &'a Forwarder,
    key: Option<QuestionKey>,
}

impl Leader<'_> {
    fn finish(&mut self, outcome: Outcome) {
        if let Some(key) = self.key.take() {
            self.forwarder.settle(&key, outcome);
        }
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        self.finish(Err("the first asker went away".into()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_gives_name_servers_only() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("resolv.conf");
        std::fs::write(
            &path,
            "search corp.test\nnameserver 127.0.0.53\nnameserver ::1\noptions ndots:5\n",
        )
        .expect("write");
        let ups = upstreams_from_resolv_conf(&path).expect("parse");
        assert_eq!(
            ups,
            vec![
                "127.0.0.53:53".parse().expect("addr"),
                "[::1]:53".parse().expect("addr")
            ]
        );
    }

    #[test]
    fn our_own_addresses_are_dropped_docker_s_resolver_is_not() {
        let own: Vec<SocketAddr> = vec!["0.0.0.0:53".parse().expect("addr")];
        let ups = vec![
            "127.0.0.1:53".parse().expect("addr"),
            "127.0.0.11:53".parse().expect("addr"),
            "127.0.0.1:5300".parse().expect("addr"),
        ];
        // 127.0.0.11 is bindable here as all of 127/8 is, but Docker redirects it before a
        // wildcard listener of ours sees it: it is Docker's resolver, not us.
        assert_eq!(
            without_loops(ups, &own),
            vec![
                "127.0.0.11:53".parse::<SocketAddr>().expect("addr"),
                "127.0.0.1:5300".parse::<SocketAddr>().expect("addr")
            ]
        );
        // A documentation address is not ours, whatever we listen on.
        let remote: SocketAddr = "192.0.2.1:53".parse().expect("addr");
        assert_eq!(without_loops(vec![remote], &own), vec![remote]);
        // Listening on 127.0.0.11:53 ourselves does make it us.
        let docker: SocketAddr = "127.0.0.11:53".parse().expect("addr");
        assert!(without_loops(vec![docker], &[docker]).is_empty());
    }

    fn resolv_conf(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    #[test]
    fn docker_s_embedded_dns_is_the_default_upstream_in_a_container() {
        let dir = tempfile::tempdir().expect("dir");
        // What Docker writes into a container on a user-defined network.
        let path = resolv_conf(
            &dir,
            "container",
            "# Generated by Docker Engine.\nnameserver 127.0.0.11\nsearch corp.test\noptions ndots:0\n",
        );
        let own: Vec<SocketAddr> = vec!["0.0.0.0:53".parse().expect("addr")];
        let chosen = choose_upstreams(None, &path, &own).expect("chosen");
        assert_eq!(
            chosen.upstreams,
            vec!["127.0.0.11:53".parse::<SocketAddr>().expect("addr")]
        );
        assert_eq!(
            chosen.from,
            format!("{} (Docker's embedded DNS)", path.display())
        );
    }

    #[test]
    fn a_resolv_conf_naming_us_is_skipped_and_the_rest_kept() {
        let dir = tempfile::tempdir().expect("dir");
        let path = resolv_conf(
            &dir,
            "host",
            "nameserver 127.0.0.1\nnameserver 192.0.2.53\n",
        );
        let own: Vec<SocketAddr> = vec!["127.0.0.1:53".parse().expect("addr")];
        let chosen = choose_upstreams(None, &path, &own).expect("chosen");
        assert_eq!(
            chosen.upstreams,
            vec!["192.0.2.53:53".parse::<SocketAddr>().expect("addr")]
        );
        assert_eq!(chosen.from, path.display().to_string(), "no Docker note");
        // Naming only us: nothing is left, and the caller says so.
        let only_us = resolv_conf(&dir, "only-us", "nameserver 127.0.0.1\n");
        assert!(
            choose_upstreams(None, &only_us, &own)
                .expect("chosen")
                .upstreams
                .is_empty()
        );
    }

    #[test]
    fn a_resolv_conf_naming_systemd_resolved_s_stub_stands_for_its_uplinks() {
        let dir = tempfile::tempdir().expect("dir");
        let stub = dir.path().join("resolv.conf");
        std::fs::write(
            &stub,
            "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n",
        )
        .expect("write");
        let uplinks = dir.path().join("uplinks.conf");
        std::fs::write(&uplinks, "nameserver 10.8.0.1\nnameserver 192.168.1.1\n").expect("write");
        let chosen = choose_upstreams_with(None, &stub, &uplinks, &[]).expect("chosen");
        assert_eq!(
            chosen.upstreams,
            vec![
                "10.8.0.1:53".parse::<SocketAddr>().expect("addr"),
                "192.168.1.1:53".parse().expect("addr")
            ]
        );
        assert!(chosen.from.contains("systemd-resolved"), "{}", chosen.from);
        // No uplinks file (resolved not running): the stub as written.
        let missing = dir.path().join("missing.conf");
        let chosen = choose_upstreams_with(None, &stub, &missing, &[]).expect("chosen");
        assert_eq!(
            chosen.upstreams,
            vec!["127.0.0.53:53".parse::<SocketAddr>().expect("addr")]
        );
        // A resolv.conf with a real server beside the stub is taken as written.
        let mixed = dir.path().join("mixed.conf");
        std::fs::write(&mixed, "nameserver 127.0.0.53\nnameserver 10.0.0.2\n").expect("write");
        let chosen = choose_upstreams_with(None, &mixed, &uplinks, &[]).expect("chosen");
        assert_eq!(chosen.upstreams.len(), 2);
        // Given upstreams win, whatever resolv.conf says.
        let given: SocketAddr = "10.9.9.9:53".parse().expect("addr");
        let chosen = choose_upstreams_with(Some((vec![given], "--upstream")), &stub, &uplinks, &[])
            .expect("chosen");
        assert_eq!(chosen.upstreams, vec![given]);
    }

    #[test]
    fn explicit_upstreams_win_over_resolv_conf() {
        let dir = tempfile::tempdir().expect("dir");
        let path = resolv_conf(&dir, "container", "nameserver 127.0.0.11\n");
        let given: SocketAddr = "192.0.2.7:5353".parse().expect("addr");
        let chosen =
            choose_upstreams(Some((vec![given], "--upstream")), &path, &[]).expect("chosen");
        assert_eq!(chosen.upstreams, vec![given]);
        assert_eq!(chosen.from, "--upstream");
        // Given as an empty list: the default applies.
        let chosen =
            choose_upstreams(Some((Vec::new(), "forward.upstreams")), &path, &[]).expect("chosen");
        assert!(
            chosen.from.contains("Docker's embedded DNS"),
            "{}",
            chosen.from
        );
        // A missing resolv.conf is an error only when it is needed.
        let missing = dir.path().join("missing");
        assert!(choose_upstreams(None, &missing, &[]).is_err());
        assert!(choose_upstreams(Some((vec![given], "--upstream")), &missing, &[]).is_ok());
    }

    #[test]
    fn a_name_goes_to_the_most_specific_zone_that_holds_it_else_the_default_upstreams() {
        let addr = |last: u8| SocketAddr::from(([127, 0, 0, last], 53));
        let zone = |text: &str| Name::from_ascii(text).expect("zone");
        let mut s = settings(addr(1));
        // Given least specific first: the order of the file does not matter.
        s.zones = vec![
            (zone("corp.example."), vec![addr(2)]),
            (zone("a.corp.example."), vec![addr(3), addr(4)]),
        ];
        let forwarder = Forwarder::new(&s);
        let route = |name: &str| {
            forwarder.route_labels(&LowerName::new(&Name::from_ascii(name).expect("name")))
        };
        assert_eq!(
            route("db.a.corp.example."),
            (
                vec!["127.0.0.3:53".to_string(), "127.0.0.4:53".to_string()],
                Some("a.corp.example.".to_string())
            )
        );
        assert_eq!(
            route("CORP.example."),
            (
                vec!["127.0.0.2:53".to_string()],
                Some("corp.example.".to_string())
            )
        );
        // Label by label: `notcorp.example` is not under `corp.example`.
        assert_eq!(
            route("notcorp.example."),
            (vec!["127.0.0.1:53".to_string()], None)
        );
        assert_eq!(route("example."), (vec!["127.0.0.1:53".to_string()], None));
        assert_eq!(forwarder.upstreams().len(), 4);
    }

    #[test]
    fn replaced_default_upstreams_keep_the_health_of_those_that_stay() {
        let addr = |last: u8| SocketAddr::from(([127, 0, 0, last], 53));
        let forwarder = Forwarder::new(&settings(addr(1)));
        forwarder.upstreams()[0].mark_failed();
        assert!(!forwarder.set_default_upstreams(&[addr(1)]), "unchanged");
        assert!(forwarder.set_default_upstreams(&[addr(2), addr(1)]));
        let now = forwarder.upstreams();
        assert_eq!(
            now.iter().map(|u| u.addr).collect::<Vec<_>>(),
            vec![addr(2), addr(1)]
        );
        assert!(now[0].is_healthy(), "a new one starts healthy");
        assert!(!now[1].is_healthy(), "the one kept is still penalised");
        let name = LowerName::new(&Name::from_ascii("x.example.").expect("name"));
        assert_eq!(
            forwarder.route_labels(&name).0,
            vec!["127.0.0.2:53", "127.0.0.1:53"]
        );
    }

    fn settings(upstream: SocketAddr) -> ForwardSettings {
        ForwardSettings {
            upstreams: vec![upstream],
            zones: Vec::new(),
            timeout: Duration::from_secs(5),
            max_in_flight: 8,
            max_in_flight_per_client: 8,
            cache: CacheLimits {
                entries: 16,
                max_bytes: 1 << 20,
                max_ttl: 60,
                serve_stale: 0,
            },
        }
    }

    /// A real upstream socket that hands what it receives back to the forwarder as a new
    /// question, as a resolver naming netalias does: the question under the ID we sent is
    /// a loop, failed at once; under any other ID it joins the one in flight.
    #[tokio::test]
    async fn a_question_coming_back_under_our_id_is_a_loop() {
        use hickory_server::proto::rr::{Name, RecordType};
        use std::str::FromStr;

        let upstream = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let forwarder = Arc::new(Forwarder::new(&settings(
            upstream.local_addr().expect("addr"),
        )));
        let question = Query::query(Name::from_str("loop.test.").expect("name"), RecordType::A);
        let client: IpAddr = "127.0.0.1".parse().expect("ip");
        let asking = {
            let forwarder = Arc::clone(&forwarder);
            let question = question.clone();
            tokio::spawn(async move { forwarder.forward(&question, 1, false, client).await })
        };
        let mut buf = vec![0u8; 4096];
        let (len, from) =
            tokio::time::timeout(Duration::from_secs(5), upstream.recv_from(&mut buf))
                .await
                .expect("the question reaches the upstream")
                .expect("recv");
        let sent = Message::from_vec(&buf[..len]).expect("decode");
        let came_back = forwarder
            .forward(&question, sent.metadata.id, false, client)
            .await;
        assert!(
            matches!(came_back, Err(ForwardError::Loop)),
            "{came_back:?}"
        );
        // The upstream, told SERVFAIL by the resolver that looped, fails the first asker.
        let mut servfail = Message::response(sent.metadata.id, sent.metadata.op_code);
        servfail.queries = sent.queries.clone();
        servfail.metadata.response_code = ResponseCode::ServFail;
        upstream
            .send_to(&servfail.to_vec().expect("encode"), from)
            .await
            .expect("send");
        let first = asking.await.expect("task");
        assert!(
            matches!(first, Err(ForwardError::AllFailed(_))),
            "{first:?}"
        );
        // Nothing is left in flight, and nothing else was sent upstream (not even the failed
        // upstream asked again as an unhealthy one).
        assert!(forwarder.pending.lock().expect("lock").is_empty());
        let more =
            tokio::time::timeout(Duration::from_millis(200), upstream.recv_from(&mut buf)).await;
        assert!(more.is_err(), "a loop is never forwarded again: {more:?}");
    }
}
