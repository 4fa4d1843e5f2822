//! The protocol rules around an answer, as a hickory-server `RequestHandler`.
//!
//! Checks the request (opcode, question count, EDNS version), asks `answer` for the records
//! and shapes the response: AA, EDNS0 echo, and truncation to the UDP size the client can take.
//! Names that are not ours go to the forwarder when policy allows the asker.
//! Responses (QR=1) and undecodable messages never reach it: `exchange` drops the first and
//! answers the second with FORMERR.

use std::{
    net::IpAddr,
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
};

use hickory_server::{
    net::{runtime::Time, xfer::Protocol},
    proto::{
        op::{Edns, Header, HeaderCounts, Message, MessageType, Metadata, OpCode, ResponseCode},
        rr::{Record, RecordType},
    },
    server::{Request, RequestHandler, ResponseHandler, ResponseInfo},
    zone_handler::MessageResponseBuilder,
};
use metrics::counter;
use tracing::{debug, warn};

use super::host::HostAddresses;
use super::rate_limit::{RateLimit, RateLimiter, Verdict};
use super::{
    answer::{Answer, answer},
    forward::{ForwardError, Forwarder},
};
use crate::{
    registry::{Asker, Registry},
    telemetry,
};

/// Settings the handler reads on every request; the TTL can change on reload.
#[derive(Debug)]
pub struct Settings {
    ttl: AtomicU32,
    max_udp_payload: u16,
}

impl Settings {
    pub fn new(ttl: u32, max_udp_payload: u16) -> Settings {
        Settings {
            ttl: AtomicU32::new(ttl),
            max_udp_payload: max_udp_payload.max(512),
        }
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
        }
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
    /// Whether names we do not own are forwarded (answers then carry RA).
    pub fn forwards(&self) -> bool {
        self.forward.is_some()
    }

    /// Names we do not own go to `policy`'s upstreams instead of getting REFUSED.
    pub fn with_forwarding(mut self, policy: ForwardPolicy) -> Responder {
        self.forward = Some(Arc::new(policy));
        self
    }

    /// Why `asker` may not be forwarded for, if it may not.
    fn forward_denied(&self, policy: &ForwardPolicy, asker: IpAddr) -> Option<&'static str> {
        match self.registry.asker(asker) {
            Asker::InternalOnly => Some("internal_network"),
            Asker::Outside if !policy.allow_any_client => Some("outside_asker"),
            _ => None,
        }
    }

    /// Forwards one question; `None` when policy or failure says REFUSED/SERVFAIL instead.
    async fn forward(&self, request: &Request, answer: &mut Answer) -> Option<Message> {
        let policy = self.forward.as_ref()?;
        if let Some(reason) = self.forward_denied(policy, request.src().ip()) {
            counter!("netalias_forward_rejected_total", "reason" => reason).increment(1);
            return None;
        }
        let question = request.queries.queries().first()?.original();
        match policy
            .forwarder
            .forward(
                question,
                request.protocol() == Protocol::Tcp,
                request.src().ip(),
            )
            .await
        {
            Ok(message) => Some(message),
            Err(ForwardError::Busy(_) | ForwardError::ClientBusy(_)) => None,
            Err(error) => {
                debug!(%error, name = %question.name(), "forwarding failed");
                *answer = Answer::error(ResponseCode::ServFail);
                None
            }
        }
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

// Fixed wire sizes, used to decide truncation before encoding.
const HEADER_LEN: usize = 12;
const OPT_LEN: usize = 11;
/// Type, class, TTL and rdlength of a record.
const RR_FIXED_LEN: usize = 10;
/// An owner name written as a compression pointer.
const POINTER_LEN: usize = 2;

/// The encoded size of an answer, laid out as hickory encodes it: the question copied as sent,
/// the first owner name in full (the copied question is not indexed for compression), every
/// later owner a pointer to the first, then the OPT when there is one.
pub(super) fn answer_len(
    question_len: usize,
    rdata_lens: impl IntoIterator<Item = usize>,
    with_opt: bool,
) -> usize {
    let qname_len = question_len.saturating_sub(4);
    let records: usize = rdata_lens
        .into_iter()
        .enumerate()
        .map(|(i, rdata)| if i == 0 { qname_len } else { POINTER_LEN } + RR_FIXED_LEN + rdata)
        .sum();
    HEADER_LEN + question_len + records + if with_opt { OPT_LEN } else { 0 }
}

/// Whether the answer records fit `limit` bytes alongside the header, question and OPT.
fn fits(question_len: usize, answers: &[Record], with_opt: bool, limit: usize) -> bool {
    let rdata = answers.iter().map(|r| match r.record_type() {
        RecordType::A => 4,
        RecordType::AAAA => 16,
        // Anything else is small and single; a generous bound is enough.
        _ => 64,
    });
    answer_len(question_len, rdata, with_opt) <= limit
}

#[async_trait::async_trait]
impl RequestHandler for Responder {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let started = std::time::Instant::now();
        let reply_edns = request.edns.as_ref().map(|e| self.reply_edns(e));
        let mut metadata = Metadata::response_from_request(&request.metadata);
        let queries = request.queries.queries();
        let qtype: &'static str = queries.first().map_or("none", |q| q.query_type().into());

        let early_rcode = if request.metadata.op_code != OpCode::Query {
            Some(ResponseCode::NotImp)
        } else if queries.len() != 1 {
            Some(ResponseCode::FormErr)
        } else if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
            // RFC 6891 6.1.3: we speak version 0 only.
            Some(ResponseCode::BADVERS)
        } else {
            None
        };

        let mut result = match early_rcode {
            Some(rcode) => Answer::error(rcode),
            None => answer(
                &self.registry,
                &queries[0],
                request.src().ip(),
                self.settings.ttl(),
            ),
        };

        let forwarded = if result.forwardable {
            self.forward(request, &mut result).await
        } else {
            None
        };

        if request.protocol() == Protocol::Udp && forwarded.is_none() {
            let limit = reply_edns
                .as_ref()
                .map_or(512, |e| usize::from(e.max_payload()));
            let question_len = request.queries.as_bytes().len();
            if !fits(question_len, &result.answers, reply_edns.is_some(), limit) {
                // RFC 2181 9: a partial RRset misleads; send none, set TC, the client retries over TCP.
                result.answers.clear();
                metadata.truncation = true;
            }
        }

        let mut builder = MessageResponseBuilder::new(&request.queries, None);
        if let Some(edns) = &reply_edns {
            builder.edns(edns);
        }
        let sent = match &forwarded {
            Some(upstream) => {
                metadata.response_code = upstream.metadata.response_code;
                metadata.recursion_available = true;
                telemetry::count_request(qtype, metadata.response_code, request.protocol());
                let response = builder.build(
                    metadata,
                    upstream.answers.iter(),
                    upstream.authorities.iter(),
                    std::iter::empty(),
                    upstream.additionals.iter(),
                );
                response_handle.send_response(response).await
            }
            None => {
                metadata.response_code = result.rcode;
                metadata.authoritative = result.authoritative;
                metadata.recursion_available = self.forward.is_some();
                telemetry::count_request(qtype, result.rcode, request.protocol());
                let response = builder.build(
                    metadata,
                    result.answers.iter(),
                    std::iter::empty(),
                    result.soa.iter(),
                    std::iter::empty(),
                );
                response_handle.send_response(response).await
            }
        };
        metrics::histogram!(telemetry::DNS_REQUEST_DURATION)
            .record(started.elapsed().as_secs_f64());
        match sent {
            Ok(info) => info,
            Err(error) => {
                warn!(%error, src = %request.src(), "failed to send a response");
                let mut failed = Metadata::response_from_request(&request.metadata);
                failed.message_type = MessageType::Response;
                failed.response_code = ResponseCode::ServFail;
                Header {
                    metadata: failed,
                    counts: HeaderCounts::default(),
                }
                .into()
            }
        }
    }
}
