//! The UDP fast path: the commonest question (A or AAAA of a name we hold; an answer too large
//! for the client keeps the records that fit, TC set, as the full path cuts it) answered
//! straight into a reused buffer, without decoding the message into hickory's types or
//! allocating.
//!
//! It gives byte-for-byte the answer the full handler gives (a test holds it to that) and
//! takes the same rotation turn from the same record set. Anything else, it declines and the
//! packet goes to the full handler. It must never guess: when in doubt, decline.

use std::net::IpAddr;

use smallvec::SmallVec;

use super::{
    Responder,
    turns::Sender,
    wire::{
        self, CLASS_IN, FLAG_AA, FLAG_CD, FLAG_QR, FLAG_RA, FLAG_RD, FLAG_TC, HEADER_LEN, OPT_LEN,
        POINTER_TO_QNAME, PlainQuery, TYPE_A, TYPE_AAAA, TYPE_OPT, TYPE_PTR, plain_query,
    },
};
use crate::telemetry;

/// The longest question section: QNAME (255 octets at most) and QTYPE and QCLASS.
const QUESTION_MAX: usize = 259;

/// Writes an empty answer with TC set for `packet` into `out` (a rate-limited client's cue to
/// retry over TCP, where no limit applies) and returns true; false for a packet that is not a
/// plain query, which is then dropped.
pub fn truncated(responder: &Responder, packet: &[u8], out: &mut Vec<u8>) -> bool {
    let Some(question) = plain_query(packet) else {
        return false;
    };
    out.clear();
    out.extend_from_slice(&packet[..2]);
    // QR, opcode QUERY, TC, RD copied; RA when forwarding; CD copied; NOERROR.
    out.push(FLAG_QR | FLAG_TC | (packet[2] & FLAG_RD));
    out.push(ra(responder) | (packet[3] & FLAG_CD));
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(question.question(packet));
    true
}

/// Writes the answer to `packet` into `out` and returns true, or returns false to decline.
pub fn try_answer(
    responder: &Responder,
    packet: &[u8],
    asker: IpAddr,
    port: u16,
    out: &mut Vec<u8>,
) -> bool {
    let Some(question) = plain_query(packet) else {
        return false;
    };
    if question.qclass != CLASS_IN {
        return false;
    }
    // The question lowercased, once, on the stack (QNAME is at most 255 octets, then QTYPE
    // and QCLASS): its name without the root label is the registry's key (a `NameKey`'s
    // bytes; `plain_query` checked the labels are plain), the whole is the cache's key. A
    // `NameKey` here cost a second copy, and a heap allocation for names past 24 octets
    // (`s3.us-east-1.amazonaws.com`), on every forwarded question.
    // Inline storage, filled without being zeroed first (a zeroed array cost 40 instructions
    // per query, `benches/instructions.sh`).
    let asked = question.question(packet);
    if asked.len() > QUESTION_MAX {
        return false;
    }
    let mut lower = SmallVec::<[u8; QUESTION_MAX]>::from_slice(asked);
    if !wire::lowercase_question(&mut lower) {
        return false;
    }
    let lower = &lower[..];
    let key = &lower[..question.name_labels(packet).len()];
    let registry = responder.registry();
    if !(question.qtype == TYPE_A || question.qtype == TYPE_AAAA) {
        if registry.lookup_key(key, asker).is_some() {
            return false; // held, another type: the full path's NODATA
        }
        return from_cache(responder, packet, &question, lower, asker, out);
    }
    let Some(set) = registry.lookup_key(key, asker) else {
        return from_cache(responder, packet, &question, lower, asker, out);
    };
    let (members, rdlen) = match question.qtype {
        TYPE_A => (set.v4_members().len(), 4),
        _ => (set.v6_members().len(), 16),
    };
    if members == 0 {
        return false; // NODATA: the full path adds the SOA
    }
    let limit = responder.udp_limit(question.edns_payload);
    // Laid out as the full path's encoder lays it out (see `wire::answer_len`): every owner a
    // pointer to the question's name. Too large, it keeps the records that fit with TC set,
    // as the full path's `exchange::encode` cuts it (a test holds the two to the same bytes).
    let size = wire::answer_len(
        question.end - HEADER_LEN,
        std::iter::repeat_n(rdlen, members),
        question.edns_payload.is_some(),
    );
    let (sent, tc) = if size <= limit {
        (members, 0)
    } else {
        let fit = wire::records_that_fit(
            limit,
            question.end - HEADER_LEN,
            rdlen,
            question.edns_payload.is_some(),
        );
        (fit.min(members), FLAG_TC)
    };
    let ttl = set.ttl().unwrap_or_else(|| responder.ttl()).to_be_bytes();

    out.clear();
    out.extend_from_slice(&packet[..2]); // ID
    // QR, opcode QUERY, AA, TC when cut, RD copied; RA when forwarding; CD copied; NOERROR.
    out.push(FLAG_QR | FLAG_AA | tc | (packet[2] & FLAG_RD));
    out.push(ra(responder) | (packet[3] & FLAG_CD));
    out.extend_from_slice(&[0, 1]);
    out.extend_from_slice(&(sent as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&[0, u8::from(question.edns_payload.is_some())]);
    out.extend_from_slice(question.question(packet));
    let mut record = |rdata: &[u8]| {
        out.extend_from_slice(&POINTER_TO_QNAME);
        out.extend_from_slice(&question.qtype.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&ttl);
        out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        out.extend_from_slice(rdata);
    };
    // The same turn the full path would take, from the same cursor, cut or not, and the turn
    // a copy of this question sent to another of our addresses took, if one did (`turns`).
    let id = u16::from_be_bytes([packet[0], packet[1]]);
    let turn = responder.turn(Some(Sender { port, id }));
    if question.qtype == TYPE_A {
        for ip in turn.v4(registry, asker, key, &set).iter().take(sent) {
            record(&ip.octets());
        }
    } else {
        for ip in turn.v6(registry, asker, key, &set).iter().take(sent) {
            record(&ip.octets());
        }
    }
    if let Some(payload) = question.edns_payload {
        write_opt(out, responder.udp_payload(payload));
    }
    telemetry::count_fast_answer(question.qtype == TYPE_A);
    true
}

/// A question the full path would forward (the caller found the name of `lower`, the
/// lowercase question, held by no network the asker sees), answered from the forwarding cache's encoded
/// entry: byte for byte what the full path relays (the ID and RD/CD copied in, TTLs aged by
/// whole seconds as the cache ages them, the OPT as for local answers). Declines whatever the
/// full path treats otherwise: PTR (the reverse names netalias holds), service names (their
/// host may be ours), names netalias holds or may deny, askers it does not forward for, a
/// question cached in another case (the encoded answer echoes the first asker's), an expired
/// entry, an answer that does not fit. That last stays the full path's: it cuts a relayed
/// answer by re-encoding (records of any type, compressed against each other), which the
/// cached bytes cannot be cut to without decoding them, and declining costs those answers
/// only the full path's decode.
fn from_cache(
    responder: &Responder,
    packet: &[u8],
    question: &PlainQuery,
    lower: &[u8],
    asker: IpAddr,
    out: &mut Vec<u8>,
) -> bool {
    let key = &lower[..question.name_labels(packet).len()];
    if question.qtype == TYPE_PTR || is_service_name(key) {
        return false;
    }
    if !responder.registry().is_unheld_not_ours(key, asker) {
        return false;
    }
    let Some(entry) = responder.cached_answer(asker, lower) else {
        return false;
    };
    if entry.question() != question.question(packet) {
        return false;
    }
    let Some(age) = entry.age() else {
        return false; // expired: the full path drops it and asks again
    };
    let limit = responder.udp_limit(question.edns_payload);
    let with_opt = question.edns_payload.is_some();
    if HEADER_LEN + entry.body.len() + if with_opt { OPT_LEN } else { 0 } > limit {
        return false; // the full path drops the additional section or sets TC
    }
    let [answers, authorities, additionals] = entry.counts;
    out.clear();
    out.extend_from_slice(&packet[..2]); // ID
    // QR, opcode QUERY, RD copied; RA (we forward); CD copied; the upstream's rcode.
    out.push(FLAG_QR | (packet[2] & FLAG_RD));
    out.push(FLAG_RA | (packet[3] & FLAG_CD) | entry.rcode);
    out.extend_from_slice(&[0, 1]);
    out.extend_from_slice(&answers.to_be_bytes());
    out.extend_from_slice(&authorities.to_be_bytes());
    out.extend_from_slice(&(additionals + u16::from(with_opt)).to_be_bytes());
    out.extend_from_slice(&entry.body);
    for &(at, ttl) in entry.ttls.iter() {
        let at = HEADER_LEN + at;
        out[at..at + 4].copy_from_slice(&ttl.saturating_sub(age).to_be_bytes());
    }
    if let Some(payload) = question.edns_payload {
        write_opt(out, responder.udp_payload(payload));
    }
    telemetry::count_fast_forward(
        question.qtype.into(),
        hickory_server::proto::op::ResponseCode::from(0, entry.rcode),
    );
    true
}

/// Whether a name's first two labels start with `_` (`_http._tcp.app`): a service name,
/// which the full path answers from its host's records.
fn is_service_name(labels: &[u8]) -> bool {
    let second = usize::from(labels.first().copied().unwrap_or(0)) + 1;
    labels.get(1) == Some(&b'_') && labels.get(second + 1) == Some(&b'_')
}

/// An OPT record with no options, for a client we answer with `payload` octets.
fn write_opt(out: &mut Vec<u8>, payload: u16) {
    out.push(0);
    out.extend_from_slice(&TYPE_OPT.to_be_bytes());
    out.extend_from_slice(&payload.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
}

/// RA when netalias forwards.
fn ra(responder: &Responder) -> u8 {
    if responder.forwards() { FLAG_RA } else { 0 }
}
