//! The DNS wire layout, known here and nowhere else: header offsets and flag bits, the plain
//! query the fast path answers (read off the bytes, never decoded), answer sizes, and the
//! header-only replies (FORMERR, NOTIMP) given before anything is decoded.
//!
//! Pure byte work on slices: no registry, no sockets, no hickory types.

/// Every DNS message starts with a 12-octet header (RFC 1035 4.1.1).
pub const HEADER_LEN: usize = 12;
/// Flags in header octet 2: QR, then the opcode (4 bits), AA, TC, RD.
pub const FLAG_QR: u8 = 0x80;
pub const FLAG_AA: u8 = 0x04;
pub const FLAG_TC: u8 = 0x02;
pub const FLAG_RD: u8 = 0x01;
/// Flags in header octet 3: RA, Z, AD, CD, then the rcode (4 bits).
pub const FLAG_RA: u8 = 0x80;
pub const FLAG_CD: u8 = 0x10;

pub const TYPE_A: u16 = 1;
pub const TYPE_PTR: u16 = 12;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_OPT: u16 = 41;
pub const CLASS_IN: u16 = 1;

pub const RCODE_FORMERR: u8 = 1;
pub const RCODE_SERVFAIL: u8 = 2;
pub const RCODE_NOTIMP: u8 = 4;

/// An OPT record with no options: root owner, type, class (payload), TTL, rdlength.
pub const OPT_LEN: usize = 11;
/// Type, class, TTL and rdlength of a record.
const RR_FIXED_LEN: usize = 10;
/// An owner name written as a compression pointer.
const POINTER_LEN: usize = 2;
/// The compression pointer to the question's name, which always starts right after the header.
pub const POINTER_TO_QNAME: [u8; 2] = [0xc0, HEADER_LEN as u8];
/// RFC 1035 3.1: a name is 255 octets at most.
const MAX_NAME_LEN: usize = 255;

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

pub fn u16_at(buf: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*buf.get(at)?, *buf.get(at + 1)?]))
}

/// Whether `bytes` can be a query at all: a whole header, QR clear. Anything else gets no
/// reply (answering a response invites loops).
pub fn is_query(bytes: &[u8]) -> bool {
    bytes.len() >= HEADER_LEN && bytes[2] & FLAG_QR == 0
}

/// The code for a query its header alone rules out (RFC 1035 4.1.1, RFC 6891): not QUERY →
/// NOTIMP; not one question, any answer or authority record, more than an OPT and a TSIG in
/// additional, or longer than any query → FORMERR. `bytes` has at least a header.
pub fn refused_before_decoding(bytes: &[u8]) -> Option<u8> {
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

/// Whether the question names' compression pointers can be valid: a pointer into the header
/// never is (no name precedes the first question; found by the fuzz targets), and extended
/// label types are not DNS today. Pointers to earlier question names are fine.
pub fn question_pointers_valid(bytes: &[u8]) -> bool {
    let questions = u16::from_be_bytes([bytes[4], bytes[5]]);
    let mut at = HEADER_LEN;
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
                    if target < HEADER_LEN {
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

/// The offset just past the name at `at`, walking labels without following pointers.
pub fn skip_name(bytes: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *bytes.get(at)?;
        match len {
            0 => return Some(at + 1),
            1..=63 => at += 1 + usize::from(len),
            0xc0..=0xff => return Some(at + 2),
            _ => return None,
        }
    }
}

/// The number of EDNS options in the query's OPT record, found by walking the record headers
/// only (no decoding); `None` when there is no OPT or the walk runs off the message (the
/// decoder then says what is wrong).
fn edns_options(bytes: &[u8], additional: u16) -> Option<usize> {
    let mut at = skip_name(bytes, HEADER_LEN)? + 4; // the question, its type and class
    for _ in 0..additional {
        at = skip_name(bytes, at)?;
        let rtype = u16_at(bytes, at)?;
        let rdlen = usize::from(u16_at(bytes, at + 8)?);
        let rdata = at + RR_FIXED_LEN;
        if rtype == TYPE_OPT {
            let (mut option, end) = (rdata, rdata.checked_add(rdlen)?.min(bytes.len()));
            let mut options = 0;
            while option + 4 <= end {
                options += 1;
                option += 4 + usize::from(u16_at(bytes, option + 2)?);
            }
            return Some(options);
        }
        at = rdata + rdlen;
    }
    None
}

/// A header-only reply with `rcode`, echoing the query's ID, opcode, RD and CD. `bytes` has
/// at least a header.
pub fn header_only(bytes: &[u8], rcode: u8) -> [u8; HEADER_LEN] {
    let mut reply = [0u8; HEADER_LEN];
    reply[..2].copy_from_slice(&bytes[..2]);
    reply[2] = FLAG_QR | (bytes[2] & 0x79); // opcode and RD kept; AA and TC cleared
    reply[3] = (bytes[3] & FLAG_CD) | rcode;
    reply
}

/// Lowercases a question section's name in place (QNAME, QTYPE, QCLASS as on the wire):
/// ASCII letters only; length bytes are at most 63, below `A`, and the type and class after
/// the name are left as they are. `false` when it is too short to be a question.
pub fn lowercase_question(question: &mut [u8]) -> bool {
    let Some(name_end) = question.len().checked_sub(4) else {
        return false;
    };
    question[..name_end].make_ascii_lowercase();
    true
}

/// The parts of a plain query the fast path needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlainQuery {
    /// Where QNAME + QTYPE + QCLASS end, as sent (echoed verbatim: 0x20 case survives).
    pub end: usize,
    pub qtype: u16,
    pub qclass: u16,
    /// The client's EDNS payload size, when it sent an OPT (version 0).
    pub edns_payload: Option<u16>,
}

impl PlainQuery {
    /// The question name's labels without the root label (a [`crate::registry::NameKey`]'s
    /// wire form).
    pub fn name_labels<'a>(&self, packet: &'a [u8]) -> &'a [u8] {
        &packet[HEADER_LEN..self.end - 5]
    }

    /// The question section as sent.
    pub fn question<'a>(&self, packet: &'a [u8]) -> &'a [u8] {
        &packet[HEADER_LEN..self.end]
    }
}

/// Accepts only: QR=0, opcode QUERY, one question of plain uncompressed labels (letters,
/// digits, `-`, `_`), no answer or authority records, and at most one additional record that
/// is an EDNS version 0 OPT, with nothing after it. Anything else is `None`: the full path's.
pub fn plain_query(packet: &[u8]) -> Option<PlainQuery> {
    if packet.len() < HEADER_LEN + 5 {
        return None;
    }
    let flags = packet[2];
    if flags & FLAG_QR != 0 || (flags >> 3) & 0x0f != 0 {
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
        // 255 octets at most, counting the root label still to come.
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
        if version != 0 || packet.len() != end + OPT_LEN + rdlen {
            return None;
        }
        Some(payload)
    } else {
        if packet.len() != end {
            return None;
        }
        None
    };
    Some(PlainQuery {
        end,
        qtype,
        qclass,
        edns_payload,
    })
}

/// The encoded size of an answer whose every owner is the question's name: the header, the
/// question, each record with its owner as a pointer to the question's name, and the OPT when
/// there is one. This is how the full path's encoder lays such an answer out, and how the
/// fast path writes it.
pub fn answer_len(
    question_len: usize,
    rdata_lens: impl IntoIterator<Item = usize>,
    with_opt: bool,
) -> usize {
    let records: usize = rdata_lens
        .into_iter()
        .map(|rdata| POINTER_LEN + RR_FIXED_LEN + rdata)
        .sum();
    HEADER_LEN + question_len + records + if with_opt { OPT_LEN } else { 0 }
}

/// How many records of `rdata_len` octets each fit within `limit` in an answer laid out as
/// [`answer_len`] lays it out: the fast path's cut of an answer too large, the count the full
/// path's encoder reaches by encoding (0 when not even the header, question and OPT fit).
pub fn records_that_fit(
    limit: usize,
    question_len: usize,
    rdata_len: usize,
    with_opt: bool,
) -> usize {
    let fixed = answer_len(question_len, [], with_opt);
    limit.saturating_sub(fixed) / (POINTER_LEN + RR_FIXED_LEN + rdata_len)
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
        assert_eq!(reply[2] & FLAG_QR, FLAG_QR, "a response");
        assert_eq!(reply[3] & 0x0f, RCODE_NOTIMP);
    }

    #[test]
    fn only_pointers_into_the_header_and_extended_labels_are_refused() {
        let mut plain = header(1);
        plain.extend_from_slice(&[1, b'a', 0, 0, 1, 0, 1]);
        assert!(question_pointers_valid(&plain));

        let mut into_header = header(1);
        into_header.extend_from_slice(&[1, b'a', 0xc0, 0x02, 0, 1, 0, 1]);
        assert!(!question_pointers_valid(&into_header));

        // The second question points at the first (offset 12).
        let mut to_earlier = header(2);
        to_earlier.extend_from_slice(&[1, b'a', 0, 0, 1, 0, 1, 0xc0, 12, 0, 1, 0, 1]);
        assert!(question_pointers_valid(&to_earlier));

        // A root first question, then one pointing into the header (the fuzzers' second find).
        let mut second_bad = header(2);
        second_bad.extend_from_slice(&[0, 0, 1, 0, 1, 0xc0, 0x02, 0, 1, 0, 1]);
        assert!(!question_pointers_valid(&second_bad));

        let mut extended = header(1);
        extended.extend_from_slice(&[0x41, 0, 0, 1, 0, 1]);
        assert!(!question_pointers_valid(&extended));
    }

    #[test]
    fn a_plain_query_is_read_off_the_bytes_and_anything_stranger_declined() {
        let mut q = header(1);
        q.extend_from_slice(&[3, b'w', b'e', b'b', 0, 0, 1, 0, 1]);
        let plain = plain_query(&q).expect("plain");
        assert_eq!(plain.qtype, TYPE_A);
        assert_eq!(plain.name_labels(&q), &[3, b'w', b'e', b'b']);
        assert_eq!(plain.edns_payload, None);
        let mut with_opt = q.clone();
        with_opt[11] = 1;
        with_opt.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            plain_query(&with_opt).and_then(|p| p.edns_payload),
            Some(1232)
        );
        let mut compressed = header(1);
        compressed.extend_from_slice(&[1, b'a', 0xc0, 12, 0, 1, 0, 1]);
        assert_eq!(plain_query(&compressed), None);
        let mut trailing = q.clone();
        trailing.push(0);
        assert_eq!(plain_query(&trailing), None, "bytes after the question");
    }

    #[test]
    fn answer_sizes_count_one_pointer_per_owner() {
        // Question `web.` A IN: 9 octets; two A records of 16 octets each; an OPT.
        assert_eq!(answer_len(9, [4, 4], true), 12 + 9 + 2 * 16 + 11);
        assert_eq!(answer_len(9, [], false), 21);
    }

    #[test]
    fn records_that_fit_are_what_answer_len_allows() {
        // `big.` A without EDNS: 21 fixed octets, 16 per record: 30 fit 512 (501), 31 do not.
        assert_eq!(records_that_fit(512, 9, 4, false), 30);
        assert!(answer_len(9, [4; 30], false) <= 512 && answer_len(9, [4; 31], false) > 512);
        // AAAA with an OPT: 32 fixed, 28 per record.
        assert_eq!(records_that_fit(512, 9, 16, true), 17);
        assert_eq!(records_that_fit(20, 9, 4, false), 0);
    }
}
