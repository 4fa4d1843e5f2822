//! The full path as one function: query bytes in, answer bytes out, for UDP and TCP alike.
//!
//! Checks the header (`wire`), decodes with hickory-proto, answers from local data
//! ([`Responder::respond`], a plain function), forwards when the name is not ours (the only
//! async step), and encodes the way the transport needs: UDP within the client's EDNS size,
//! cut by the real encoded size (the answers that fit, TC set) when it does not fit; TCP whole.
//! A cached forwarded answer is relayed as the bytes the cache keeps, as the fast path relays
//! it (`fast::write_cached`), and decoded only when it cannot be relayed whole.
//! An undecodable query gets a bare FORMERR; a packet that is itself a response, or too short
//! to carry a header, gets nothing. It never touches a socket: the UDP loops, the TCP
//! connections and the fuzz targets call it alike.

use std::net::SocketAddr;

use hickory_server::{
    net::xfer::Protocol,
    proto::op::{Message, ResponseCode},
};
use tracing::debug;

use super::{
    Responder,
    forward::Relayed,
    handler::Forwarded,
    wire::{self, RCODE_FORMERR, RCODE_SERVFAIL},
};
use crate::registry::NewAsker;
use crate::telemetry;

/// How long a question from an unknown asker inside a followed subnet waits for it to be
/// looked up in the engine. A network inspect takes 1–2 ms even while the engine starts the
/// container (its container inspect blocks 100–480 ms then); a client retries after 1 s
/// (glibc 5 s, musl 2.5 s), so waiting longer than this would gain nothing.
pub const NEW_ASKER_WAIT: std::time::Duration = std::time::Duration::from_millis(300);

/// The answer to `bytes` from `src` over `protocol`, or `None` when nothing is to be sent.
pub async fn answer_bytes(
    responder: &Responder,
    bytes: &[u8],
    src: SocketAddr,
    protocol: Protocol,
) -> Option<Vec<u8>> {
    if !wire::is_query(bytes) {
        return None;
    }
    // What a query may hold is checked on the header before anything is decoded, so that no
    // message costs more than a few plain ones: a 64 KB TCP message of records took 75 ms to
    // decode whole (see benches/answer_path.rs, `worst_*`).
    if let Some(rcode) = wire::refused_before_decoding(bytes) {
        debug!(%src, rcode, "query refused on its header");
        return Some(wire::header_only(bytes, rcode).to_vec());
    }
    if !wire::question_pointers_valid(bytes) {
        debug!(%src, "question name pointing into the header, or an extended label: FORMERR");
        return Some(wire::header_only(bytes, RCODE_FORMERR).to_vec());
    }
    let started = std::time::Instant::now();
    let request = match Message::from_vec(bytes) {
        Ok(request) => request,
        Err(error) => {
            debug!(%error, %src, "undecodable query: FORMERR");
            return Some(wire::header_only(bytes, RCODE_FORMERR).to_vec());
        }
    };
    // The asker as the policies see it (see `Responder::asker`); the caller still answers to
    // the socket address it received from.
    let asker = responder.asker(src.ip());
    // A container's first packet can come before any source has read it: an unknown asker
    // from inside a followed subnet is looked up and waited for, never refused for being new.
    let outcome = match responder
        .registry()
        .await_asker(asker, NEW_ASKER_WAIT)
        .await
    {
        NewAsker::Learned => Some("known"),
        NewAsker::NotFound => Some("unknown"),
        NewAsker::Known | NewAsker::NotLookedUp => None,
    };
    if let Some(outcome) = outcome {
        metrics::counter!(telemetry::names::DNS_NEW_ASKERS_TOTAL, "outcome" => outcome)
            .increment(1);
    }
    let tcp = protocol == Protocol::Tcp;
    // A UDP question may be one copy of several sent to our addresses at once (musl sends
    // each to every nameserver): they share one turn (`turns`). A TCP client asks one server
    // at a time, a retry is a new question, and its port is a new connection's: nothing to share.
    let port = (!tcp).then(|| src.port());
    let (mut response, forwardable) = responder.respond(&request, asker, port);
    let mut forwarded = false;
    if let Some(target) = cname_to_chase(&response) {
        // A CNAME of ours to a name we do not hold: the target's records follow from the
        // upstream in the same answer (RFC 1034 4.3.2 step 3a), as stub resolvers (glibc,
        // musl) do not chase a CNAME themselves. Not allowed to forward for this asker, or
        // the upstream failing: the CNAME alone stays.
        let mut chase = request.clone();
        if let Some(query) = chase.queries.first_mut() {
            query.set_name(target);
        }
        if let Forwarded::Answer(upstream) = responder.forward(&chase, asker, tcp).await
            && let Some(upstream) = upstream.into_message()
        {
            response.answers.extend(upstream.answers);
            // RFC 6604: the RCODE is the last name's.
            if upstream.metadata.response_code == ResponseCode::NXDomain {
                response.metadata.response_code = upstream.metadata.response_code;
            }
            forwarded = true;
        }
    }
    let edns_payload = request.edns.as_ref().map(|e| e.max_payload());
    let limit = if tcp {
        usize::from(u16::MAX)
    } else {
        responder.udp_limit(edns_payload)
    };
    let qtype: &'static str = request
        .queries
        .first()
        .map_or("none", |q| q.query_type().into());
    // A cached answer relayed as the bytes it is kept as, as the fast path relays it
    // (`fast::write_cached`); decoded into the response only where it cannot be (another
    // case, too large for this client): a decode cost a hit 1.2 µs, a clone of the old
    // decoded copy 0.2 µs.
    let mut relayed = None;
    if forwardable {
        match responder.forward(&request, asker, tcp).await {
            Forwarded::Answer(Relayed::Cached(entry, served)) => {
                let mut out = Vec::new();
                let whole = (limit, edns_payload);
                if super::fast::write_cached(responder, bytes, &entry, served, whole, &mut out) {
                    relayed = Some((out, ResponseCode::from(0, entry.rcode)));
                } else if let Some(upstream) = entry.message(served) {
                    response = responder.relay(&request, upstream);
                } else {
                    response.metadata.response_code = ResponseCode::ServFail;
                }
                forwarded = true;
            }
            Forwarded::Answer(Relayed::Fresh(upstream)) => {
                response = responder.relay(&request, upstream);
                forwarded = true;
            }
            Forwarded::Refused => {}
            Forwarded::Failed => response.metadata.response_code = ResponseCode::ServFail,
        }
    }
    let (encoded, rcode) = match relayed {
        Some(relayed) => relayed,
        None => {
            let rcode = response.metadata.response_code;
            let encoded = encode(response, limit).unwrap_or_else(|error| {
                debug!(%error, %src, "response not encodable: SERVFAIL");
                wire::header_only(bytes, RCODE_SERVFAIL).to_vec()
            });
            (encoded, rcode)
        }
    };
    telemetry::count_request(qtype, rcode, protocol);
    if responder.logs_queries() {
        let path = if forwarded { "forwarded" } else { "full" };
        super::query_log::record(responder.registry(), asker, &encoded, path, started);
    }
    metrics::histogram!(telemetry::names::DNS_REQUEST_DURATION)
        .record(started.elapsed().as_secs_f64());
    Some(encoded)
}

/// The target to forward for, when `response` is ours and ends in a CNAME to a name we do
/// not hold: NOERROR, the last answer a CNAME, no SOA (a held target with no data of the
/// type carries its zone's SOA, and is answered as it is).
fn cname_to_chase(response: &Message) -> Option<hickory_server::proto::rr::Name> {
    use hickory_server::proto::rr::RData;
    if response.metadata.response_code != hickory_server::proto::op::ResponseCode::NoError
        || !response.authorities.is_empty()
    {
        return None;
    }
    let asked = response.queries.first()?.query_type();
    if matches!(
        asked,
        hickory_server::proto::rr::RecordType::CNAME | hickory_server::proto::rr::RecordType::ANY
    ) {
        return None;
    }
    match &response.answers.last()?.data {
        RData::CNAME(target) => Some(target.0.clone()),
        _ => None,
    }
}

/// `response` encoded within `limit` octets, by its real encoded size. Past it, the additional
/// section (SRV glue, which a client can ask for) goes first, without TC (RFC 2181 9: TC is
/// not set for extra information). Still too large, the authority section goes and TC is set,
/// then the answer section is cut to its longest prefix that fits: the records that fit, in
/// rotation order, as Docker's 127.0.0.11 sends them. RFC 2181 9 lets a partial RRset stay in
/// a TC answer; a client that retries over TCP gets every record, and one that never does
/// (musl before 1.2.4) still gets addresses instead of "Name does not resolve". Forwarded
/// answers are cut the same way (Docker cuts its relayed answers too).
fn encode(
    mut response: Message,
    limit: usize,
) -> Result<Vec<u8>, hickory_server::proto::ProtoError> {
    let bytes = response.to_vec()?;
    if bytes.len() <= limit {
        return Ok(bytes);
    }
    if !response.additionals.is_empty() {
        response.additionals.clear();
        let bytes = response.to_vec()?;
        if bytes.len() <= limit {
            return Ok(bytes);
        }
    }
    response.authorities.clear();
    response.metadata.truncation = true;
    // The longest prefix that fits, by bisection over real encodings (a prefix never encodes
    // longer than a longer one): 6 encodings for 40 records, 12 for the 4,000 of a 64 KB
    // upstream answer. `fits` holds a prefix length known to fit (none is assumed to: a
    // header, a question and an OPT are under 512), `over` one known not to.
    let answers = std::mem::take(&mut response.answers);
    let (mut fits, mut over) = (0, answers.len() + 1);
    let mut best = None;
    while over - fits > 1 {
        let mid = fits + (over - fits) / 2;
        response.answers = answers[..mid].to_vec();
        let bytes = response.to_vec()?;
        if bytes.len() <= limit {
            fits = mid;
            best = Some(bytes);
        } else {
            over = mid;
        }
    }
    match best {
        Some(bytes) => Ok(bytes),
        None => {
            response.answers.clear();
            response.to_vec()
        }
    }
}
