//! The UDP fast path: the commonest question (A or AAAA of a name we hold, for an answer that
//! fits) answered straight into a reused buffer, without decoding the message into hickory's
//! types or allocating.
//!
//! It gives byte-for-byte the answer the full handler gives (a test holds it to that) and
//! takes the same rotation turn from the same record set. Anything else, it declines and the
//! packet goes to the full handler. It must never guess: when in doubt, decline.

use std::net::IpAddr;

use super::{
    Responder,
    wire::{
        self, CLASS_IN, FLAG_AA, FLAG_CD, FLAG_QR, FLAG_RA, FLAG_RD, FLAG_TC, HEADER_LEN,
        POINTER_TO_QNAME, TYPE_A, TYPE_AAAA, TYPE_OPT, plain_query,
    },
};
use crate::{registry::NameKey, telemetry};

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
pub fn try_answer(responder: &Responder, packet: &[u8], asker: IpAddr, out: &mut Vec<u8>) -> bool {
    let Some(question) = plain_query(packet) else {
        return false;
    };
    if question.qclass != CLASS_IN || !(question.qtype == TYPE_A || question.qtype == TYPE_AAAA) {
        return false;
    }
    // `plain_query` checked these are plain labels; the root label is left out of the key.
    let key = NameKey::from_wire(question.name_labels(packet));
    let registry = responder.registry();
    let Some(set) = registry.lookup_key(key.as_bytes(), asker) else {
        return false;
    };
    let (members, rdlen) = match question.qtype {
        TYPE_A => (set.v4_members().len(), 4),
        _ => (set.v6_members().len(), 16),
    };
    if members == 0 {
        return false; // NODATA: the full path adds the SOA
    }
    let limit = question
        .edns_payload
        .map_or(512, |payload| usize::from(responder.udp_payload(payload)));
    // Laid out as the full path's encoder lays it out (see `wire::answer_len`): every owner a
    // pointer to the question's name.
    let size = wire::answer_len(
        question.end - HEADER_LEN,
        std::iter::repeat_n(rdlen, members),
        question.edns_payload.is_some(),
    );
    if size > limit {
        return false; // the full path sets TC
    }
    let ttl = set.ttl().unwrap_or_else(|| responder.ttl()).to_be_bytes();

    out.clear();
    out.extend_from_slice(&packet[..2]); // ID
    // QR, opcode QUERY, AA, RD copied; RA when forwarding; CD copied; rcode NOERROR.
    out.push(FLAG_QR | FLAG_AA | (packet[2] & FLAG_RD));
    out.push(ra(responder) | (packet[3] & FLAG_CD));
    out.extend_from_slice(&[0, 1]);
    out.extend_from_slice(&(members as u16).to_be_bytes());
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
    // The same turn the full path would take, from the same cursor.
    if question.qtype == TYPE_A {
        for ip in set.next_v4().iter() {
            record(&ip.octets());
        }
    } else {
        for ip in set.next_v6().iter() {
            record(&ip.octets());
        }
    }
    if let Some(payload) = question.edns_payload {
        let ours = responder.udp_payload(payload);
        out.push(0);
        out.extend_from_slice(&TYPE_OPT.to_be_bytes());
        out.extend_from_slice(&ours.to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    }
    telemetry::count_fast_answer(question.qtype == TYPE_A);
    true
}

/// RA when netalias forwards.
fn ra(responder: &Responder) -> u8 {
    if responder.forwards() { FLAG_RA } else { 0 }
}
