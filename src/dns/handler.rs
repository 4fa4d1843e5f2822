//! The protocol rules around an answer, and who may be answered or forwarded for.
//!
//! [`Responder::respond`] is the full path's answer from local data, a plain function: it
//! checks the request (EDNS version), asks `answer` for the records and shapes the response
//! (AA, RA, the EDNS0 reply). A name that is not ours comes back as forwardable, and
//! [`Responder::forward`], the only async step, asks the upstreams when policy allows the
//! asker. Bytes are not its business: `exchange` decodes, encodes and truncates.

use std::{
    net::IpAddr,
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
};

use hickory_server::proto::op::{Edns, LowerQuery, Message, ResponseCode};
use metrics::counter;
use tracing::debug;

use super::host::HostAddresses;
use super::rate_limit::{RateLimit, RateLimiter, Verdict};
use super::reply::Reply;
use super::turns::{Sender, Turn, Turns};
use super::{
    answer::{Answer, answer},
    forward::Forwarder,
};
use crate::registry::{Asker, Registry};
use crate::telemetry::names;

/// Settings the handler reads on every request; the TTL can change on reload.
#[derive(Debug)]
pub struct Settings {
    ttl: AtomicU32,
    max_udp_payload: u16,
    log_queries: std::sync::atomic::AtomicBool,
}

impl Settings {
    pub fn new(ttl: u32, max_udp_payload: u16) -> Settings {
        Settings {
            ttl: AtomicU32::new(ttl),
            max_udp_payload: max_udp_payload.max(512),
            log_queries: Default::default(),
        }
    }
    pub fn set_log_queries(&self, on: bool) {
        self.log_queries.store(on, Ordering::Relaxed);
    }
    /// Whether each question is logged (`dns::query_log`).
    pub fn log_queries(&self) -> bool {
        self.log_queries.load(Ordering::Relaxed)
    }
    pub fn set_ttl(&self, ttl: u32) {
        self.ttl.store(ttl, Ordering::Relaxed);
    }
    pub fn ttl(&self) -> u32 {
        self.ttl.load(Ordering::Relaxed)
    }
}

/// Answers DNS requests from the registry. Cheap to clone: one per listener set.
#[derive(Clone)]
pub struct Responder {
    registry: Arc<Registry>,
    settings: Arc<Settings>,
    forward: Option<Arc<ForwardPolicy>>,
    rate_limiter: Option<Arc<RateLimiter>>,
    host: Arc<HostAddresses>,
    /// The turns copies of one question share (`turns`): one memo for every listener and
    /// both paths, so a copy gets the same order whichever path answers it.
    turns: Arc<Turns>,
}

/// What forwarding a question came to.
///
/// REFUSED is for askers that may not use netalias for other names at all (strangers,
/// containers on internal-only networks). An asker that may, but whose question cannot be
/// forwarded now (forwarding off, no usable upstream, every slot busy, a loop, every
/// upstream failed), gets SERVFAIL, as from Docker's own resolver: "cannot answer now", on
/// which glibc and Go move on or fail at once (musl waits out its timeout on either).
#[derive(Debug)]
pub enum Forwarded {
    /// The upstream's answer, fresh or cached.
    Answer(super::forward::Relayed),
    /// Not for this asker (REFUSED stands).
    Refused,
    /// Not answerable now (SERVFAIL).
    Failed,
}

/// What becomes of a question that is not ours, for one asker (before any upstream is asked).
pub(super) enum ForwardPlan<'a> {
    /// Forwarded by this policy.
    Forward(&'a ForwardPolicy),
    /// REFUSED: the asker may not use netalias for other names.
    Refuse(Denied),
    /// SERVFAIL: forwarding is off, for an asker that may use netalias.
    Off,
}

/// Why an asker is not forwarded for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Denied {
    /// Its networks are all internal.
    InternalNetwork,
    /// A stranger, and forwarding is not for any asker.
    Outside,
}

impl Denied {
    /// The `reason` label of `netalias_forward_rejected_total`.
    fn label(self) -> &'static str {
        match self {
            Denied::InternalNetwork => "internal_network",
            Denied::Outside => "outside_asker",
        }
    }
}

/// Forwarding, and who may use it.
pub struct ForwardPolicy {
    pub forwarder: Forwarder,
    /// Forward for any asker, not only loopback and known containers (an open resolver).
    pub allow_any_client: bool,
}

impl Responder {
    pub fn new(registry: Arc<Registry>, settings: Arc<Settings>) -> Responder {
        Responder {
            registry,
            settings,
            forward: None,
            rate_limiter: None,
            host: Arc::default(),
            turns: Arc::default(),
        }
    }

    /// How a question from `sender` (a UDP one; `None` for TCP) takes its rotation turns.
    pub(super) fn turn(&self, sender: Option<Sender>) -> Turn<'_> {
        Turn::new(&self.turns, sender)
    }

    /// A turn that takes none: the order the next question will get (`predict`).
    pub(super) fn peek_turn(&self) -> Turn<'_> {
        Turn::peek(&self.turns)
    }

    /// This host's own addresses (kept current by `dns::host::follow`).
    pub fn host_addresses(&self) -> &Arc<HostAddresses> {
        &self.host
    }

    /// The asker a packet from `src` is, as every policy sees it: IPv4-mapped IPv6 made IPv4
    /// (an IPv4 client of a `[::]` socket), and the host's own addresses made loopback (the
    /// host asking a bridge gateway listener arrives from the gateway address).
    pub fn asker(&self, src: IpAddr) -> IpAddr {
        let ip = src.to_canonical();
        if !ip.is_loopback() && self.host.contains(ip) {
            return match ip {
                IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
            };
        }
        ip
    }

    /// Limits UDP answers per client subnet (nothing changes when `limit` is off).
    pub fn with_rate_limit(mut self, limit: RateLimit) -> Responder {
        self.rate_limiter = RateLimiter::new(limit).map(Arc::new);
        self
    }

    /// Whether a UDP query from `ip` is answered now, dropped, or slipped (TC set).
    pub fn udp_verdict(&self, ip: std::net::IpAddr) -> Verdict {
        self.rate_limiter
            .as_ref()
            .map_or(Verdict::Answer, |l| l.check(ip))
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }
    pub fn ttl(&self) -> u32 {
        self.settings.ttl()
    }
    /// Whether each question is logged (one relaxed load: nothing else when off).
    pub fn logs_queries(&self) -> bool {
        self.settings.log_queries()
    }
    /// Whether names we do not own are forwarded (answers then carry RA).
    pub fn forwards(&self) -> bool {
        self.forward.is_some()
    }

    /// The most questions forwarding holds at once (0 when it is off): the full path keeps
    /// room for that many beside its own, so that local answers never wait behind forwards.
    pub fn forward_capacity(&self) -> usize {
        self.forward
            .as_ref()
            .map_or(0, |policy| policy.forwarder.max_in_flight())
    }

    /// Names we do not own go to `policy`'s upstreams instead of getting REFUSED.
    pub fn with_forwarding(mut self, policy: ForwardPolicy) -> Responder {
        self.forward = Some(Arc::new(policy));
        self
    }

    /// The forwarder, when forwarding is on (to replace its default upstreams).
    pub fn forwarder(&self) -> Option<&Forwarder> {
        self.forward.as_deref().map(|p| &p.forwarder)
    }

    /// Why `asker` may not be forwarded for, if it may not (`allow_any_client`: strangers may).
    fn forward_denied(&self, allow_any_client: bool, asker: IpAddr) -> Option<Denied> {
        match self.registry.asker(asker) {
            Asker::InternalOnly => Some(Denied::InternalNetwork),
            Asker::Outside if !allow_any_client => Some(Denied::Outside),
            _ => None,
        }
    }

    /// Where a question that is not ours goes for `asker`: the one decision that
    /// [`Responder::forward`] acts on and `netalias explain` predicts from (`predict`).
    pub(super) fn forward_plan(&self, asker: IpAddr) -> ForwardPlan<'_> {
        let Some(policy) = self.forward.as_deref() else {
            // Forwarding off: strangers are refused as ever; an asker that may use netalias
            // hears "cannot answer this", as Docker's resolver says when it cannot forward.
            return match self.forward_denied(false, asker) {
                Some(reason) => ForwardPlan::Refuse(reason),
                None => ForwardPlan::Off,
            };
        };
        match self.forward_denied(policy.allow_any_client, asker) {
            Some(reason) => ForwardPlan::Refuse(reason),
            None => ForwardPlan::Forward(policy),
        }
    }

    /// Forwards the request's question for `asker` (TCP upstream when `tcp`).
    pub async fn forward(&self, request: &Message, asker: IpAddr, tcp: bool) -> Forwarded {
        let policy = match self.forward_plan(asker) {
            ForwardPlan::Forward(policy) => policy,
            ForwardPlan::Refuse(reason) => {
                if self.forwards() {
                    counter!(names::FORWARD_REJECTED_TOTAL, "reason" => reason.label())
                        .increment(1);
                }
                return Forwarded::Refused;
            }
            ForwardPlan::Off => return Forwarded::Failed,
        };
        let Some(question) = request.queries.first() else {
            return Forwarded::Refused;
        };
        match policy
            .forwarder
            .forward(question, request.metadata.id, tcp, asker)
            .await
        {
            Ok(message) => Forwarded::Answer(message),
            Err(error) => {
                debug!(%error, name = %question.name(), "forwarding failed");
                Forwarded::Failed
            }
        }
    }

    /// The full path's answer to `request` from local data: the response, and whether its
    /// name is not ours (then [`Responder::forward`] may answer it instead). `port` is the
    /// UDP source port, for a copy of the question sent to several of our addresses to take
    /// one turn; `None` (TCP) takes a turn of its own.
    pub fn respond(&self, request: &Message, asker: IpAddr, port: Option<u16>) -> (Message, bool) {
        let turn = self.turn(port.map(|port| Sender {
            port,
            id: request.metadata.id,
        }));
        self.respond_with(request, asker, turn)
    }

    /// [`Responder::respond`], taking rotation turns as `turn` says (a peek takes none).
    pub(super) fn respond_with(
        &self,
        request: &Message,
        asker: IpAddr,
        turn: Turn<'_>,
    ) -> (Message, bool) {
        let result = if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
            // RFC 6891 6.1.3: we speak version 0 only.
            Answer::error(ResponseCode::BADVERS)
        } else if let [query] = request.queries.as_slice() {
            answer(
                &self.registry,
                &LowerQuery::query(query.clone()),
                asker,
                self.settings.ttl(),
                turn,
            )
        } else {
            // `exchange` refuses other counts before decoding; a caller that did not gets this.
            Answer::error(ResponseCode::FormErr)
        };
        let mut response = self.reply_to(
            request,
            self.reply(result.authoritative, u16::from(result.rcode)),
        );
        response.answers = result.answers;
        response.authorities.extend(result.soa);
        response.additionals = result.additionals;
        (response, result.forwardable)
    }

    /// The response carrying an upstream's answer to `request`.
    pub fn relay(&self, request: &Message, upstream: Message) -> Message {
        let reply = self.reply(false, u16::from(upstream.metadata.response_code));
        let mut response = self.reply_to(request, reply);
        super::forward::relay_into(&mut response, upstream);
        response
    }

    /// The header of a reply, AA when `authoritative` (the name is ours), with `rcode`: RA
    /// when we forward. The one rule both paths write (`reply`); TC is the formatter's.
    pub(super) fn reply(&self, authoritative: bool, rcode: u16) -> Reply {
        Reply {
            authoritative,
            truncated: false,
            recursion_available: self.forwards(),
            rcode,
        }
    }

    /// An empty response to `request` with the header `reply`: its ID, opcode, RD and CD, its
    /// question, and the EDNS reply when it sent EDNS.
    fn reply_to(&self, request: &Message, reply: Reply) -> Message {
        let mut response = Message::response(request.metadata.id, request.metadata.op_code);
        response.metadata = reply.metadata(&request.metadata);
        response.queries = request.queries.clone();
        response.edns = request.edns.as_ref().map(|e| self.reply_edns(e));
        response
    }

    /// The most a UDP answer may take for a client that advertised `edns_payload` (its EDNS0
    /// size, if it sent an OPT): that size within our cap; 512 without EDNS.
    pub fn udp_limit(&self, edns_payload: Option<u16>) -> usize {
        edns_payload.map_or(512, |payload| usize::from(self.udp_payload(payload)))
    }

    /// The cached upstream answer the full path would relay to `asker` for this question (its
    /// lowercase wire form), when forwarding is on and `asker` may be forwarded for: the fast
    /// path's, which answers from its encoded bytes.
    pub(super) fn cached_answer(
        &self,
        asker: IpAddr,
        question: &[u8],
    ) -> Option<Arc<super::forward::Encoded>> {
        let policy = self.forward.as_ref()?;
        if self
            .forward_denied(policy.allow_any_client, asker)
            .is_some()
        {
            return None; // the full path refuses it, and counts why
        }
        policy.forwarder.cache().encoded(question)
    }

    /// The UDP size we really use for a client that advertised `payload` (EDNS0), within our cap.
    pub fn udp_payload(&self, payload: u16) -> u16 {
        payload.clamp(512, self.settings.max_udp_payload)
    }

    /// The OPT we send back: version 0, and the payload size we will really use for this client.
    fn reply_edns(&self, request: &Edns) -> Edns {
        let mut edns = Edns::new();
        edns.set_version(0);
        edns.set_max_payload(self.udp_payload(request.max_payload()));
        edns
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use hickory_server::proto::{
        op::Query,
        rr::{Name, RecordType},
    };

    use super::*;

    fn question() -> Message {
        let mut request = Message::query();
        request.add_query(Query::query(
            Name::from_str("elsewhere.example.").expect("name"),
            RecordType::A,
        ));
        request
    }

    /// Forwarding off: REFUSED only for an asker that may not use netalias (a stranger);
    /// loopback, which may, hears SERVFAIL as from Docker's resolver that cannot forward.
    #[tokio::test]
    async fn without_forwarding_strangers_are_refused_and_others_fail() {
        let registry = Arc::new(Registry::new(Some("docker")).expect("registry"));
        let responder = Responder::new(registry, Arc::new(Settings::new(0, 1232)));
        let request = question();
        let stranger: IpAddr = "192.0.2.1".parse().expect("ip");
        let local: IpAddr = "127.0.0.1".parse().expect("ip");
        assert!(matches!(
            responder.forward(&request, stranger, false).await,
            Forwarded::Refused
        ));
        assert!(matches!(
            responder.forward(&request, local, false).await,
            Forwarded::Failed
        ));
    }
}
