//! The full path as one function: query bytes in, answer bytes out, for UDP and TCP alike.
//!
//! Decodes with hickory, runs the [`Responder`], and encodes the way the transport needs (UDP
//! capped at the client's EDNS size, TCP whole). An undecodable query gets a bare FORMERR; a
//! packet that is itself a response, or too short to carry a header, gets nothing. It never
//! touches a socket: the UDP loops, the TCP connections and the fuzz targets call it alike.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use hickory_server::{
    net::{NetError, runtime::TokioTime, xfer::Protocol},
    proto::{rr::Record, serialize::binary::BinEncoder},
    server::{Request, RequestHandler, ResponseHandler, ResponseInfo},
    zone_handler::MessageResponse,
};
use tracing::debug;

use super::Responder;

const HEADER: usize = 12;

/// The answer to `bytes` from `src` over `protocol`, or `None` when nothing is to be sent.
pub async fn answer_bytes(
    responder: &Responder,
    bytes: &[u8],
    src: SocketAddr,
    protocol: Protocol,
) -> Option<Vec<u8>> {
    // Too short for a header, or QR set (a response): nothing to answer.
    if bytes.len() < HEADER || bytes[2] & 0x80 != 0 {
        return None;
    }
    // What a query may hold is checked on the header before anything is decoded, so that no
    // message costs more than a few plain ones: a 64 KB TCP message of records took 75 ms to
    // decode whole (see benches/answer_path.rs, `worst_*`).
    if let Some(rcode) = refused_before_decoding(bytes) {
        debug!(%src, rcode, "query refused on its header");
        return Some(header_only(bytes, rcode).to_vec());
    }
    if !questions_are_echo_safe(bytes) {
        debug!(%src, "question name pointing into the header, or an extended label: FORMERR");
        return Some(formerr(bytes).to_vec());
    }
    // The request's source is the asker as the policies see it (see `Responder::asker`); the
    // caller still answers to the socket address it received from.
    let asker = SocketAddr::new(responder.asker(src.ip()), src.port());
    let request = match Request::from_bytes(bytes.to_vec(), asker, protocol) {
        Ok(request) => request,
        Err(error) => {
            debug!(%error, %src, "undecodable query: FORMERR");
            return Some(formerr(bytes).to_vec());
        }
    };
    let capture = Capture {
        protocol,
        out: Arc::new(Mutex::new(None)),
    };
    responder
        .handle_request::<_, TokioTime>(&request, capture.clone())
        .await;
    capture.out.lock().ok()?.take()
}

/// Whether the question section can be echoed byte for byte. hickory decodes a question
/// name whose compression pointer targets the header, then copies the question's original
/// bytes into the answer, whose header differs: the pointer then lands on other bytes and the
/// answer cannot be decoded (found by the fuzz targets; the first name in a message has no
/// earlier name to point at, so such a pointer is never valid). Pointers to earlier question
/// names are copied to the same offsets and stay right. Extended label types are refused too.
fn questions_are_echo_safe(bytes: &[u8]) -> bool {
    let questions = u16::from_be_bytes([bytes[4], bytes[5]]);
    let mut at = HEADER;
    for _ in 0..questions {
        loop {
            let Some(&len) = bytes.get(at) else {
                return true; // truncated: the decoder's to refuse
            };
            match len {
                0 => {
                    at += 1;
                    break;
                }
                1..=63 => at += 1 + usize::from(len),
                0xc0..=0xff => {
                    let Some(&low) = bytes.get(at + 1) else {
                        return true;
                    };
                    let target = (usize::from(len & 0x3f) << 8) | usize::from(low);
                    if target < HEADER {
                        return false;
                    }
                    at += 2;
                    break;
                }
                _ => return false,
            }
        }
        at += 4; // type and class
    }
    true
}

/// The most a query can need: a header, one question (at most 259 octets), an OPT with its
/// options (padding to a 128-octet block, RFC 8467) and a TSIG fit in half of this. At 4,096
/// the worst query let through cost 10.7 times a plain one (a 4 KB padding option decodes
/// byte by byte: 34.9 µs against 3.3 µs); at 1,024 it is within the 10x budget.
pub const MAX_QUERY_LEN: usize = 1024;
/// Additional records a query may carry: an OPT and a TSIG (RFC 6891, RFC 8945).
const MAX_ADDITIONAL: u16 = 2;
/// EDNS options a query may carry. Real ones carry a few (cookie, padding, client subnet,
/// keepalive); decoding a thousand empty ones cost 15 times a plain query (48.6 µs against
/// 3.2 µs, `cargo bench --bench answer_path -- worst`).
const MAX_EDNS_OPTIONS: usize = 16;
const TYPE_OPT: u16 = 41;
const RCODE_FORMERR: u8 = 1;
const RCODE_NOTIMP: u8 = 4;

/// The code for a query its header alone rules out (RFC 1035 4.1.1, RFC 6891): not QUERY →
/// NOTIMP; not one question, any answer or authority record, more than an OPT and a TSIG in
/// additional, or longer than any query → FORMERR. `bytes` has at least a header.
fn refused_before_decoding(bytes: &[u8]) -> Option<u8> {
    let count = |at: usize| u16::from_be_bytes([bytes[at], bytes[at + 1]]);
    let opcode = (bytes[2] >> 3) & 0x0f;
    if opcode != 0 {
        return Some(RCODE_NOTIMP);
    }
    let malformed = count(4) != 1
        || count(6) != 0
        || count(8) != 0
        || count(10) > MAX_ADDITIONAL
        || bytes.len() > MAX_QUERY_LEN
        || edns_options(bytes, count(10)).is_some_and(|n| n > MAX_EDNS_OPTIONS);
    malformed.then_some(RCODE_FORMERR)
}

/// The number of EDNS options in the query's OPT record, found by walking the record headers
/// only (no decoding); `None` when there is no OPT or the walk runs off the message (the
/// decoder then says what is wrong).
fn edns_options(bytes: &[u8], additional: u16) -> Option<usize> {
    let u16_at = |at: usize| Some(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]));
    let skip_name = |mut at: usize| -> Option<usize> {
        loop {
            let len = *bytes.get(at)?;
            match len {
                0 => return Some(at + 1),
                1..=63 => at += 1 + usize::from(len),
                0xc0..=0xff => return Some(at + 2),
                _ => return None,
            }
        }
    };
    let mut at = skip_name(HEADER)? + 4; // the question, its type and class
    for _ in 0..additional {
        at = skip_name(at)?;
        let rtype = u16_at(at)?;
        let rdlen = usize::from(u16_at(at + 8)?);
        let rdata = at + 10;
        if rtype == TYPE_OPT {
            let (mut option, end) = (rdata, rdata.checked_add(rdlen)?.min(bytes.len()));
            let mut options = 0;
            while option + 4 <= end {
                options += 1;
                option += 4 + usize::from(u16_at(option + 2)?);
            }
            return Some(options);
        }
        at = rdata + rdlen;
    }
    None
}

/// A header-only reply with `rcode`, echoing the query's ID, opcode and RD. `bytes` has at
/// least a header.
fn header_only(bytes: &[u8], rcode: u8) -> [u8; HEADER] {
    let mut reply = [0u8; HEADER];
    reply[..2].copy_from_slice(&bytes[..2]);
    reply[2] = 0x80 | (bytes[2] & 0x79);
    reply[3] = (bytes[3] & 0x10) | rcode;
    reply
}

/// A header-only FORMERR (see [`header_only`]).
fn formerr(bytes: &[u8]) -> [u8; HEADER] {
    header_only(bytes, RCODE_FORMERR)
}

/// Keeps the encoded response instead of sending it.
#[derive(Clone)]
struct Capture {
    protocol: Protocol,
    out: Arc<Mutex<Option<Vec<u8>>>>,
}

#[async_trait::async_trait]
impl ResponseHandler for Capture {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        // UDP: at most what the client's EDNS allows, 512 without (the encoder truncates and
        // sets TC past that). TCP: whole.
        let max = match self.protocol {
            Protocol::Udp => response.edns().map_or(512, |e| e.max_payload()),
            _ => u16::MAX,
        };
        let mut bytes = Vec::with_capacity(512);
        let mut encoder = BinEncoder::new(&mut bytes);
        encoder.set_max_size(max);
        let info = response.destructive_emit(&mut encoder)?;
        if let Ok(mut out) = self.out.lock() {
            *out = Some(bytes);
        }
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(questions: u16) -> Vec<u8> {
        let mut h = vec![0x12, 0x34, 0x01, 0x00, 0x00, 0x00, 0, 0, 0, 0, 0, 0];
        h[4..6].copy_from_slice(&questions.to_be_bytes());
        h
    }

    #[test]
    fn counts_opcode_and_length_are_checked_before_decoding() {
        let mut plain = header(1);
        plain.extend_from_slice(&[1, b'a', 0, 0, 1, 0, 1]);
        assert_eq!(refused_before_decoding(&plain), None);
        let mut update = plain.clone();
        update[2] = 5 << 3;
        assert_eq!(refused_before_decoding(&update), Some(RCODE_NOTIMP));
        for (at, value) in [(5, 2u8), (5, 0), (7, 1), (9, 1), (11, 3)] {
            let mut bad = plain.clone();
            bad[at] = value;
            assert_eq!(
                refused_before_decoding(&bad),
                Some(RCODE_FORMERR),
                "byte {at} = {value}"
            );
        }
        let mut with_opt_and_tsig = plain.clone();
        with_opt_and_tsig[11] = 2;
        assert_eq!(refused_before_decoding(&with_opt_and_tsig), None);
        let opt = |options: usize| {
            let mut q = plain.clone();
            q[11] = 1;
            q.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0]);
            q.extend_from_slice(&((options * 4) as u16).to_be_bytes());
            for _ in 0..options {
                q.extend_from_slice(&[0xfd, 0xe9, 0, 0]);
            }
            q
        };
        assert_eq!(edns_options(&opt(3), 1), Some(3));
        assert_eq!(refused_before_decoding(&opt(MAX_EDNS_OPTIONS)), None);
        assert_eq!(
            refused_before_decoding(&opt(MAX_EDNS_OPTIONS + 1)),
            Some(RCODE_FORMERR)
        );
        let mut long = plain.clone();
        long.resize(MAX_QUERY_LEN + 1, 0);
        assert_eq!(refused_before_decoding(&long), Some(RCODE_FORMERR));
        let reply = header_only(&update, RCODE_NOTIMP);
        assert_eq!(reply[2] & 0x80, 0x80, "a response");
        assert_eq!(reply[3] & 0x0f, RCODE_NOTIMP);
    }

    #[test]
    fn only_pointers_into_the_header_and_extended_labels_are_refused() {
        let mut plain = header(1);
        plain.extend_from_slice(&[1, b'a', 0, 0, 1, 0, 1]);
        assert!(questions_are_echo_safe(&plain));

        let mut into_header = header(1);
        into_header.extend_from_slice(&[1, b'a', 0xc0, 0x02, 0, 1, 0, 1]);
        assert!(!questions_are_echo_safe(&into_header));

        // The second question points at the first (offset 12): echoed at the same offsets.
        let mut to_earlier = header(2);
        to_earlier.extend_from_slice(&[1, b'a', 0, 0, 1, 0, 1, 0xc0, 12, 0, 1, 0, 1]);
        assert!(questions_are_echo_safe(&to_earlier));

        // A root first question, then one pointing into the header (the fuzzers' second find).
        let mut second_bad = header(2);
        second_bad.extend_from_slice(&[0, 0, 1, 0, 1, 0xc0, 0x02, 0, 1, 0, 1]);
        assert!(!questions_are_echo_safe(&second_bad));

        let mut extended = header(1);
        extended.extend_from_slice(&[0x41, 0, 0, 1, 0, 1]);
        assert!(!questions_are_echo_safe(&extended));
    }
}
