//! The UDP fast path: the commonest question (A or AAAA of a name we hold, for an answer that
//! fits) answered straight into a reused buffer, without decoding the message into hickory's
//! types or allocating.
//!
//! It gives byte-for-byte the answer the full handler gives (a test holds it to that) and
//! takes the same rotation turn from the same record set. Anything else, it declines and the
//! packet goes to the full handler. It must never guess: when in doubt, decline.

use std::net::IpAddr;

use super::{Responder, handler::answer_len};
use crate::{registry::NameKey, telemetry};

const HEADER_LEN: usize = 12;
const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
const TYPE_OPT: u16 = 41;
const CLASS_IN: u16 = 1;
const MAX_NAME_LEN: usize = 255;

fn u16_at(buf: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*buf.get(at)?, *buf.get(at + 1)?]))
}

/// The parts of a plain query the fast path needs.
struct Question {
    /// QNAME + QTYPE + QCLASS, as sent (echoed verbatim: 0x20 case survives).
    end: usize,
    qtype: u16,
    qclass: u16,
    /// The client's EDNS payload size, when it sent an OPT (version 0).
    edns_payload: Option<u16>,
}

/// Accepts only: QR=0, opcode QUERY, one question, no answer/authority records, and at most
/// one additional record that is an EDNS version 0 OPT, with nothing after it.
fn parse(packet: &[u8]) -> Option<Question> {
    if packet.len() < HEADER_LEN + 5 {
        return None;
    }
    let flags = packet[2];
    if flags & 0x80 != 0 || (flags >> 3) & 0x0f != 0 {
        return None;
    }
    let (qd, an, ns, ar) = (
        u16_at(packet, 4)?,
        u16_at(packet, 6)?,
        u16_at(packet, 8)?,
        u16_at(packet, 10)?,
    );
    if qd != 1 || an != 0 || ns != 0 || ar > 1 {
        return None;
    }
    // Uncompressed labels of plain hostname characters only; anything stranger takes the full path.
    let mut at = HEADER_LEN;
    loop {
        let len = usize::from(*packet.get(at)?);
        if len == 0 {
            at += 1;
            break;
        }
        if len > 63 {
            return None;
        }
        let label = packet.get(at + 1..at + 1 + len)?;
        if !label
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
        {
            return None;
        }
        at += 1 + len;
        // RFC 1035 3.1: 255 octets at most, counting the root label still to come.
        if at - HEADER_LEN + 1 > MAX_NAME_LEN {
            return None;
        }
    }
    let qtype = u16_at(packet, at)?;
    let qclass = u16_at(packet, at + 2)?;
    let end = at + 4;
    let edns_payload = if ar == 1 {
        // Root name, type OPT, class = payload, TTL = ext-rcode|version|flags, rdlength, options.
        if *packet.get(end)? != 0 || u16_at(packet, end + 1)? != TYPE_OPT {
            return None;
        }
        let payload = u16_at(packet, end + 3)?;
        let version = *packet.get(end + 6)?;
        let rdlen = usize::from(u16_at(packet, end + 9)?);
        if version != 0 || packet.len() != end + 11 + rdlen {
            return None;
        }
        Some(payload)
    } else {
        if packet.len() != end {
            return None;
        }
        None
    };
    Some(Question {
        end,
        qtype,
        qclass,
        edns_payload,
    })
}

/// Writes an empty answer with TC set for `packet` into `out` (a rate-limited client's cue to
/// retry over TCP, where no limit applies) and returns true; false for a packet that is not a
/// plain query, which is then dropped.
pub fn truncated(responder: &Responder, packet: &[u8], out: &mut Vec<u8>) -> bool {
    let Some(question) = parse(packet) else {
        return false;
    };
    out.clear();
    out.extend_from_slice(&packet[..2]);
    // QR, opcode QUERY, TC, RD copied; RA when forwarding; CD copied; NOERROR.
    out.push(0x80 | 0x02 | (packet[2] & 0x01));
    out.push(if responder.forwards() { 0x80 } else { 0 } | (packet[3] & 0x10));
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&packet[HEADER_LEN..question.end]);
    true
}

/// Writes the answer to `packet` into `out` and returns true, or returns false to decline.
pub fn try_answer(responder: &Responder, packet: &[u8], asker: IpAddr, out: &mut Vec<u8>) -> bool {
    let Some(question) = parse(packet) else {
        return false;
    };
    if question.qclass != CLASS_IN || !(question.qtype == TYPE_A || question.qtype == TYPE_AAAA) {
        return false;
    }
    // `parse` checked these are plain labels; the name's root label is left out of the key.
    let key = NameKey::from_wire(&packet[HEADER_LEN..question.end - 5]);
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
    let qname = &packet[HEADER_LEN..question.end - 4];
    // Laid out as the full path lays it out (see `answer_len`): the first owner in full, the
    // following owners pointing at it.
    let first_owner = question.end;
    let size = answer_len(
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
    out.push(0x80 | 0x04 | (packet[2] & 0x01));
    out.push(if responder.forwards() { 0x80 } else { 0 } | (packet[3] & 0x10));
    out.extend_from_slice(&[0, 1]);
    out.extend_from_slice(&(members as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&[0, u8::from(question.edns_payload.is_some())]);
    out.extend_from_slice(&packet[HEADER_LEN..question.end]);
    let pointer = (0xc000 | first_owner as u16).to_be_bytes();
    let mut first = true;
    let mut record = |rdata: &[u8]| {
        if std::mem::take(&mut first) {
            out.extend_from_slice(qname);
        } else {
            out.extend_from_slice(&pointer);
        }
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
