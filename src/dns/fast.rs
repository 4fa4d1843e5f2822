//! The UDP fast path: the commonest questions written straight into a reused buffer, without
//! decoding the message into hickory's types or allocating.
//!
//! It decides nothing itself. `answer::decide` says what a question gets, the same decision
//! the full path formats as hickory records; `reply` says the header; the forwarding cache
//! holds the upstream's answer in the one form both paths relay. This module only writes
//! them as bytes: the addresses of a held name (an answer too large for the client keeps the
//! records that fit, TC set, as the full path cuts it), or a cached forwarded answer. It gives
//! byte-for-byte the answer the full handler gives (a test holds it to that) and takes the
//! same rotation turn from the same record set. Whatever the decision leaves to the full
//! rules, or a formatter here cannot write, it declines, and the packet goes to the full path.

use std::net::IpAddr;

use hickory_server::proto::op::ResponseCode;
use smallvec::SmallVec;

use super::{
    Responder,
    answer::{Decision, decide},
    forward::{Encoded, Served},
    reply::NOERROR,
    turns::Sender,
    wire::{
        self, CLASS_IN, HEADER_LEN, OPT_LEN, POINTER_TO_QNAME, PlainQuery, TYPE_A, TYPE_OPT,
        plain_query,
    },
};
use crate::registry::RecordSet;
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
    let reply = super::reply::Reply {
        truncated: true,
        ..responder.reply(false, NOERROR)
    };
    out.extend_from_slice(&reply.flags([packet[2], packet[3]]));
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
    match decide(
        responder.registry(),
        key,
        question.qtype,
        asker,
        responder.ttl(),
    ) {
        Decision::Addresses { set, v6, ttl } => write_addresses(
            responder,
            packet,
            &question,
            key,
            (&set, v6, ttl),
            asker,
            port,
            out,
        ),
        Decision::NotOurs => from_cache(responder, packet, &question, lower, asker, out),
        // The full rules' (NODATA and NXDOMAIN carry the zone's SOA, a CNAME is followed).
        Decision::Held(_) | Decision::Unheld | Decision::Other => false,
    }
}

/// The decision [`Decision::Addresses`] for the name `key`, written as the full path's
/// encoder lays it out (see `wire::answer_len`): every owner a pointer to the question's
/// name. Too large, it keeps the records that fit with TC set, as the full path's
/// `exchange::encode` cuts it (a test holds the two to the same bytes).
#[allow(clippy::too_many_arguments)] // one answer's parts, each used once
fn write_addresses(
    responder: &Responder,
    packet: &[u8],
    question: &PlainQuery,
    key: &[u8],
    (set, v6, ttl): (&RecordSet, bool, u32),
    asker: IpAddr,
    port: u16,
    out: &mut Vec<u8>,
) -> bool {
    let registry = responder.registry();
    let (members, rdlen) = if v6 {
        (set.v6_members().len(), 16)
    } else {
        (set.v4_members().len(), 4)
    };
    let limit = responder.udp_limit(question.edns_payload);
    let size = wire::answer_len(
        question.end - HEADER_LEN,
        std::iter::repeat_n(rdlen, members),
        question.edns_payload.is_some(),
    );
    let (sent, truncated) = if size <= limit {
        (members, false)
    } else {
        let fit = wire::records_that_fit(
            limit,
            question.end - HEADER_LEN,
            rdlen,
            question.edns_payload.is_some(),
        );
        (fit.min(members), true)
    };
    let ttl = ttl.to_be_bytes();
    let reply = super::reply::Reply {
        truncated,
        ..responder.reply(true, NOERROR)
    };

    // Written a part at a time from stack arrays, each with one `extend_from_slice`: a call per
    // field cost about 50 instructions per answer in capacity checks (`benches/instructions.sh`).
    let [f2, f3] = reply.flags([packet[2], packet[3]]);
    let [an0, an1] = (sent as u16).to_be_bytes();
    let opt = u8::from(question.edns_payload.is_some());
    out.clear();
    // ID; flags; QDCOUNT 1; ANCOUNT; NSCOUNT 0; ARCOUNT (the OPT).
    out.extend_from_slice(&[packet[0], packet[1], f2, f3, 0, 1, an0, an1, 0, 0, 0, opt]);
    out.extend_from_slice(question.question(packet));
    let [t0, t1] = question.qtype.to_be_bytes();
    let [c0, c1] = CLASS_IN.to_be_bytes();
    let [l0, l1, l2, l3] = ttl;
    let mut record = |rdata: &[u8]| {
        let [r0, r1] = (rdata.len() as u16).to_be_bytes();
        let [p0, p1] = POINTER_TO_QNAME;
        // Owner (a pointer to the question's name), type, class, TTL, RDLENGTH.
        out.extend_from_slice(&[p0, p1, t0, t1, c0, c1, l0, l1, l2, l3, r0, r1]);
        out.extend_from_slice(rdata);
    };
    // The same turn the full path would take, from the same cursor, cut or not, and the turn
    // a copy of this question sent to another of our addresses took, if one did (`turns`).
    let id = u16::from_be_bytes([packet[0], packet[1]]);
    let turn = responder.turn(Some(Sender { port, id }));
    if v6 {
        for ip in turn.v6(registry, asker, key, set).iter().take(sent) {
            record(&ip.octets());
        }
    } else {
        for ip in turn.v4(registry, asker, key, set).iter().take(sent) {
            record(&ip.octets());
        }
    }
    if let Some(payload) = question.edns_payload {
        write_opt(out, responder.udp_payload(payload));
    }
    telemetry::count_fast_answer(question.qtype == TYPE_A);
    true
}

/// A question decided [`Decision::NotOurs`] (the caller's `lower` is it lowercased), answered
/// from the forwarding cache's entry: byte for byte what the full path relays (the ID and
/// RD/CD copied in, TTLs aged as the cache ages them for both paths, the OPT as for local
/// answers). Declines askers netalias does not forward for, a question cached in another case
/// (the entry echoes the first asker's), an expired entry, an answer that does not fit. That last stays the full path's: it cuts a relayed
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
    let Some(entry) = responder.cached_answer(asker, lower) else {
        return false;
    };
    let Some(age) = entry.age() else {
        return false; // expired: the full path drops it and asks again
    };
    let limit = responder.udp_limit(question.edns_payload);
    if !write_cached(
        responder,
        packet,
        &entry,
        Served::Fresh { age },
        (limit, question.edns_payload),
        out,
    ) {
        return false;
    }
    telemetry::count_fast_forward(question.qtype.into(), ResponseCode::from(0, entry.rcode));
    true
}

/// A cached upstream answer to `packet` relayed as bytes into `out`: the query's ID, the
/// header `reply` gives, the entry's sections as `served` says, and an OPT for a client that
/// sent EDNS (`edns_payload`), the OPT as the full path writes it. What both paths relay from
/// the cache; false, writing nothing the caller keeps, when the entry cannot be relayed whole
/// within `limit` octets, or the question was cached in another case (the entry echoes its
/// first asker's question, and its records' owners point into it).
// Inlined: as a call of its own it cost each cached answer about 45 instructions.
#[inline(always)]
pub fn write_cached(
    responder: &Responder,
    packet: &[u8],
    entry: &Encoded,
    served: Served,
    (limit, edns_payload): (usize, Option<u16>),
    out: &mut Vec<u8>,
) -> bool {
    let asked = packet.get(HEADER_LEN..HEADER_LEN + entry.question().len());
    if asked != Some(entry.question()) {
        return false;
    }
    let with_opt = edns_payload.is_some();
    if HEADER_LEN + entry.body.len() + if with_opt { OPT_LEN } else { 0 } > limit {
        return false; // the full path drops the additional section or sets TC
    }
    let reply = responder.reply(false, u16::from(entry.rcode));
    let [f2, f3] = reply.flags([packet[2], packet[3]]);
    out.clear();
    out.extend_from_slice(&[packet[0], packet[1], f2, f3]); // ID, flags
    entry.write_sections(out, served, with_opt);
    if let Some(payload) = edns_payload {
        write_opt(out, responder.udp_payload(payload));
    }
    true
}

/// An OPT record with no options, for a client we answer with `payload` octets.
fn write_opt(out: &mut Vec<u8>, payload: u16) {
    let [t0, t1] = TYPE_OPT.to_be_bytes();
    let [p0, p1] = payload.to_be_bytes();
    // Root owner, type, class (the payload size), TTL (extended rcode, version, flags) 0,
    // RDLENGTH 0.
    out.extend_from_slice(&[0, t0, t1, p0, p1, 0, 0, 0, 0, 0, 0]);
}

#[cfg(test)]
mod tests {
    use std::{str::FromStr, sync::Arc};

    use hickory_server::proto::{
        op::{Edns, Message, MessageType, Query},
        rr::{
            DNSClass, LowerName, Name, RData, Record, RecordType,
            rdata::{A, CNAME},
        },
    };

    use super::*;
    use crate::{
        dns::{Settings, forward::Cache},
        registry::Registry,
    };

    /// A cached answer relayed as bytes is what the full path's decode-and-relay encodes, for
    /// a client with EDNS and one without, fresh and stale; another case, or a limit it does
    /// not fit, is left to that decode.
    #[test]
    fn a_cached_answer_relayed_as_bytes_is_the_decoded_relay_encoded() {
        let registry = Arc::new(Registry::new(Some("docker")).expect("registry"));
        let responder = Responder::new(registry, Arc::new(Settings::new(0, 1232)));
        let cache = Cache::new(Default::default());
        let asked = Name::from_ascii("WWW.Example.com.").expect("name");
        let question = Query::query(asked.clone(), RecordType::A);
        let mut upstream = Message::query();
        upstream.metadata.message_type = MessageType::Response;
        let target = Name::from_str("edge.example.net.").expect("name");
        upstream.answers.push(Record::from_rdata(
            asked.clone(),
            300,
            RData::CNAME(CNAME(target.clone())),
        ));
        for last in 1..=3 {
            upstream.answers.push(Record::from_rdata(
                target.clone(),
                60,
                RData::A(A::new(192, 0, 2, last)),
            ));
        }
        let key = (LowerName::new(&asked), RecordType::A, DNSClass::IN);
        cache.put(key.clone(), &question, upstream);
        let (entry, age) = cache.fresh(&key).expect("cached");
        for edns in [None, Some(1232u16)] {
            for served in [Served::Fresh { age }, Served::Stale] {
                let mut request = Message::query();
                request.metadata.id = 0xbeef;
                request.metadata.recursion_desired = true;
                request.add_query(question.clone());
                if let Some(payload) = edns {
                    let mut opt = Edns::new();
                    opt.set_max_payload(payload);
                    request.edns = Some(opt);
                }
                let packet = request.to_vec().expect("query");
                let limit = responder.udp_limit(edns);
                let mut out = Vec::new();
                assert!(write_cached(
                    &responder,
                    &packet,
                    &entry,
                    served,
                    (limit, edns),
                    &mut out
                ));
                let decoded = entry.message(served).expect("decodes");
                let relayed = responder.relay(&request, decoded);
                assert_eq!(
                    out,
                    relayed.to_vec().expect("encode"),
                    "{edns:?} {served:?}"
                );
                // Not whole within a smaller limit: left to the decode, which cuts it.
                assert!(!write_cached(
                    &responder,
                    &packet,
                    &entry,
                    served,
                    (out.len() - 1, edns),
                    &mut Vec::new()
                ));
            }
        }
        // Asked in another case: the entry's owners point into its own question.
        let mut other = Message::query();
        other.add_query(Query::query(
            Name::from_ascii("www.example.com.").expect("name"),
            RecordType::A,
        ));
        let packet = other.to_vec().expect("query");
        let fresh = Served::Fresh { age };
        let whole = (512, None);
        assert!(!write_cached(
            &responder,
            &packet,
            &entry,
            fresh,
            whole,
            &mut Vec::new()
        ));
    }
}
