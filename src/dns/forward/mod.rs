//! Forwarding: names netalias does not own go to upstream servers.
//!
//! Upstreams are tried healthy-first; a timeout, SERVFAIL, REFUSED or network error moves on
//! to the next and penalises the one that failed. NXDOMAIN and NODATA pass through as they
//! are. TCP clients are forwarded over TCP; a truncated UDP answer is retried over TCP. The
//! number in flight is bounded, in all and per client (one client cannot hold every slot),
//! and identical questions in flight are sent upstream once and answered to every asker.
//! Who may be forwarded for is decided by the caller, not here.

mod cache;
mod upstream;

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    path::Path,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use hickory_server::proto::{
    op::{Edns, Message, Query, ResponseCode},
    rr::LowerName,
};
use metrics::counter;
use tokio::sync::{Semaphore, oneshot};
use tracing::{debug, warn};

pub use cache::{Cache, CacheLimits, Encoded};
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

/// Docker's embedded resolver inside a container: forwarding there would loop through Docker.
const DOCKER_EMBEDDED_DNS: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 11));

#[derive(Debug, Clone)]
pub struct ForwardSettings {
    pub upstreams: Vec<SocketAddr>,
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

/// Drops upstreams that would send queries back to us or through Docker's embedded DNS.
/// `own` are our listen addresses; an unspecified one (0.0.0.0) covers every local address.
pub fn without_loops(upstreams: Vec<SocketAddr>, own: &[SocketAddr]) -> Vec<SocketAddr> {
    upstreams
        .into_iter()
        .filter(|u| {
            let to_self = own.iter().any(|o| {
                o.port() == u.port()
                    && (o.ip() == u.ip() || (o.ip().is_unspecified() && is_own_address(u.ip())))
            });
            let to_docker = u.ip() == DOCKER_EMBEDDED_DNS;
            if to_self || to_docker {
                warn!(upstream = %u, "upstream dropped: it would forward back to netalias or to Docker's 127.0.0.11");
            }
            !to_self && !to_docker
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

pub struct Forwarder {
    upstreams: Vec<Upstream>,
    timeout: Duration,
    in_flight: Arc<Semaphore>,
    max_in_flight: usize,
    max_per_client: usize,
    per_client: Arc<Mutex<HashMap<IpAddr, usize>>>,
    /// Questions being asked upstream now, with the askers waiting for the same answer.
    pending: Mutex<HashMap<QuestionKey, Vec<oneshot::Sender<Outcome>>>>,
    cache: Cache,
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
            upstreams: settings
                .upstreams
                .iter()
                .copied()
                .map(Upstream::new)
                .collect(),
            timeout: settings.timeout,
            in_flight: Arc::new(Semaphore::new(settings.max_in_flight)),
            max_in_flight: settings.max_in_flight,
            max_per_client: settings
                .max_in_flight_per_client
                .clamp(1, settings.max_in_flight.max(1)),
            per_client: Arc::default(),
            pending: Mutex::default(),
            cache: Cache::new(settings.cache),
        }
    }

    pub fn upstreams(&self) -> impl Iterator<Item = &Upstream> {
        self.upstreams.iter()
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

    /// The upstreams, in the configured order, as logs name them.
    pub fn upstream_labels(&self) -> Vec<String> {
        self.upstreams.iter().map(|u| u.label.clone()).collect()
    }

    /// The answer cache (the fast path reads its encoded entries).
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Asks the upstreams `question` for `client`; `tcp` when the client came over TCP.
    pub async fn forward(
        &self,
        question: &Query,
        tcp: bool,
        client: IpAddr,
    ) -> Result<Message, ForwardError> {
        let key = (
            LowerName::new(question.name()),
            question.query_type(),
            question.query_class(),
        );
        if let Some(hit) = self.cache.get(&key) {
            counter!(names::FORWARD_CACHE_TOTAL, "result" => "hit").increment(1);
            return Ok(hit);
        }
        counter!(names::FORWARD_CACHE_TOTAL, "result" => "miss").increment(1);
        if self.upstreams.is_empty() {
            return Err(ForwardError::NoUpstreams);
        }
        // The same question already on its way upstream: wait for that answer. Checked and
        // claimed under one lock, so two askers never both send it.
        let waiting = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            match pending.get_mut(&key) {
                Some(waiters) => {
                    let (tx, rx) = oneshot::channel();
                    waiters.push(tx);
                    Some(rx)
                }
                None => {
                    pending.insert(key.clone(), Vec::new());
                    None
                }
            }
        };
        if let Some(rx) = waiting {
            counter!(names::FORWARD_COALESCED_TOTAL).increment(1);
            return match rx.await {
                Ok(Ok(answer)) => Ok(answer),
                Ok(Err(failure)) => Err(ForwardError::AllFailed(failure)),
                Err(_) => Err(ForwardError::AllFailed("the first asker went away".into())),
            };
        }
        // This asker sends it. Whatever happens below (an answer, a failure, a refusal, this
        // task dropped), the waiters hear of it and the entry goes.
        let mut leader = Leader {
            forwarder: self,
            key: Some(key.clone()),
        };
        let Some(_client_slot) = self.client_slot(client) else {
            counter!(names::FORWARD_REJECTED_TOTAL, "reason" => "client_limit").increment(1);
            leader.finish(Err("the first asker was over its share".into()));
            return Err(ForwardError::ClientBusy(self.max_per_client));
        };
        let Ok(_permit) = self.in_flight.try_acquire() else {
            counter!(names::FORWARD_REJECTED_TOTAL, "reason" => "in_flight_limit").increment(1);
            leader.finish(Err("too many forwards in flight".into()));
            return Err(ForwardError::Busy(self.max_in_flight));
        };
        // Every upstream failed: an answer that expired a little while ago, when allowed (RFC
        // 8767), beats SERVFAIL.
        let outcome = self
            .ask_upstreams(question, tcp, key.clone())
            .await
            .or_else(|error| self.cache.stale(&key).ok_or(error));
        leader.finish(match &outcome {
            Ok(answer) => Ok(answer.clone()),
            Err(error) => Err(error.to_string()),
        });
        outcome
    }

    async fn ask_upstreams(
        &self,
        question: &Query,
        tcp: bool,
        key: QuestionKey,
    ) -> Result<Message, ForwardError> {
        let mut query = Message::query();
        query.add_query(question.clone());
        query.metadata.recursion_desired = true;
        let mut edns = Edns::new();
        edns.set_max_payload(UPSTREAM_UDP_PAYLOAD);
        query.edns = Some(edns);
        let wire = query
            .to_vec()
            .map_err(|e| ForwardError::AllFailed(format!("cannot encode the query: {e}")))?;

        // Healthy upstreams first, each group in configured order.
        let order = self
            .upstreams
            .iter()
            .filter(|u| u.is_healthy())
            .chain(self.upstreams.iter().filter(|u| !u.is_healthy()));
        let mut last_error = String::new();
        for upstream in order {
            let started = Instant::now();
            let result = self.ask(upstream, &query, &wire, tcp).await;
            let metrics = &upstream.metrics;
            metrics.duration.record(started.elapsed().as_secs_f64());
            metrics.requests.increment(1);
            let failure = match result {
                Ok(answer)
                    if matches!(
                        answer.metadata.response_code,
                        ResponseCode::ServFail | ResponseCode::Refused
                    ) =>
                {
                    format!(
                        "{} answered {}",
                        upstream.addr, answer.metadata.response_code
                    )
                }
                Ok(answer) => {
                    upstream.mark_ok();
                    // Relayed as kept: TTLs capped.
                    return Ok(self.cache.put(key, question, answer));
                }
                Err(e) => format!("{}: {e}", upstream.addr),
            };
            metrics.failures.increment(1);
            debug!(%failure, "upstream failed; trying the next");
            upstream.mark_failed();
            last_error = failure;
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
    fn loops_are_dropped() {
        let own: Vec<SocketAddr> = vec!["0.0.0.0:53".parse().expect("addr")];
        let ups = vec![
            "127.0.0.1:53".parse().expect("addr"),
            "127.0.0.11:53".parse().expect("addr"),
            "127.0.0.1:5300".parse().expect("addr"),
        ];
        assert_eq!(
            without_loops(ups, &own),
            vec!["127.0.0.1:5300".parse::<SocketAddr>().expect("addr")]
        );
        // A documentation address is not ours, whatever we listen on.
        let remote: SocketAddr = "192.0.2.1:53".parse().expect("addr");
        assert_eq!(without_loops(vec![remote], &own), vec![remote]);
    }
}
