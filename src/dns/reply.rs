//! The header of a reply, decided once and written two ways: as the two flag octets the fast
//! path writes into its bytes, and as the hickory `Metadata` the full path encodes. A test
//! holds the two to the same bits.
//!
//! It decides only the header's flags and code. What an answer holds is `answer`'s, how
//! large it may be and whether it is cut (TC) is each formatter's (`fast`, `exchange`), and
//! who may be answered is `handler`'s.

use hickory_server::proto::op::{MessageType, Metadata, ResponseCode};

use super::wire::{FLAG_AA, FLAG_CD, FLAG_QR, FLAG_RA, FLAG_RD, FLAG_TC};

/// What a reply sets in its header (RFC 1035 4.1.1). The rest is the query's: its ID, opcode
/// and RD (RFC 1035 4.1.1), and CD (RFC 4035 3.2.2); Z and AD stay clear (no DNSSEC here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    /// AA: the name is ours.
    pub authoritative: bool,
    /// TC: the formatter cut the answer to fit.
    pub truncated: bool,
    /// RA: netalias forwards what it does not hold.
    pub recursion_available: bool,
    /// The rcode's whole value (RFC 6891 6.1.3: 12 bits; above 15 its high bits go in the
    /// OPT, which only the full path writes). A number, not hickory's `ResponseCode`: its
    /// conversions are calls the fast path would pay for on every answer.
    pub rcode: u16,
}

/// NOERROR, as [`Reply::rcode`].
pub const NOERROR: u16 = 0;

impl Reply {
    /// Octets 2 and 3 of the header of this reply to a query whose octets 2 and 3 are
    /// `asked`, with the rcode's low four bits. Inlined: as a call it cost the fast path 36
    /// instructions per answer (`benches/instructions.sh`).
    #[inline(always)]
    pub fn flags(self, asked: [u8; 2]) -> [u8; 2] {
        let bit = |on: bool, flag: u8| if on { flag } else { 0 };
        [
            FLAG_QR
                | (asked[0] & 0x78) // the opcode
                | bit(self.authoritative, FLAG_AA)
                | bit(self.truncated, FLAG_TC)
                | (asked[0] & FLAG_RD),
            bit(self.recursion_available, FLAG_RA)
                | (asked[1] & FLAG_CD)
                | (self.rcode & 0x0f) as u8,
        ]
    }

    /// The same header in hickory's terms, for the reply to `request`.
    pub fn metadata(self, request: &Metadata) -> Metadata {
        let mut metadata = Metadata::response_from_request(request);
        metadata.message_type = MessageType::Response;
        metadata.authoritative = self.authoritative;
        metadata.truncation = self.truncated;
        metadata.recursion_available = self.recursion_available;
        metadata.authentic_data = false;
        metadata.response_code =
            ResponseCode::from((self.rcode >> 4) as u8, (self.rcode & 0x0f) as u8);
        metadata
    }
}

#[cfg(test)]
mod tests {
    use hickory_server::proto::op::{Message, OpCode};

    use super::*;

    /// Every combination of what a reply sets and of the query's copied bits: the fast path's
    /// octets are what hickory encodes for the full path.
    #[test]
    fn both_formats_set_the_same_bits() {
        let rcodes = [
            ResponseCode::NoError,
            ResponseCode::NXDomain,
            ResponseCode::Refused,
            ResponseCode::ServFail,
        ];
        for bits in 0..16u8 {
            for rcode in rcodes {
                for (rd, cd) in [(false, false), (true, false), (false, true), (true, true)] {
                    let reply = Reply {
                        authoritative: bits & 1 != 0,
                        truncated: bits & 2 != 0,
                        recursion_available: bits & 4 != 0,
                        rcode: u16::from(rcode),
                    };
                    let mut query = Message::query();
                    query.metadata.id = 0x1234;
                    query.metadata.op_code = OpCode::Query;
                    query.metadata.recursion_desired = rd;
                    query.metadata.checking_disabled = cd;
                    let asked = query.to_vec().expect("query");
                    let mut response = Message::query();
                    response.metadata = reply.metadata(&query.metadata);
                    let encoded = response.to_vec().expect("response");
                    assert_eq!(
                        reply.flags([asked[2], asked[3]]),
                        [encoded[2], encoded[3]],
                        "{reply:?} rd={rd} cd={cd}"
                    );
                    assert_eq!(encoded[..2], [0x12, 0x34], "the ID is the query's");
                    assert_eq!(response.metadata.response_code, rcode);
                }
            }
        }
    }
}
