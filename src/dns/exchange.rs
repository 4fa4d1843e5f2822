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
    proto::{op::MessageType, rr::Record, serialize::binary::BinEncoder},
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
    if bytes.len() < HEADER || bytes[2] & 0x80 != 0 {
        return None;
    }
    if !question_name_is_plain(bytes) {
        debug!(%src, "question name with a compression pointer or extended label: FORMERR");
        return Some(formerr(bytes).to_vec());
    }
    let request = match Request::from_bytes(bytes.to_vec(), src, protocol) {
        Ok(request) => request,
        Err(error) => {
            debug!(%error, %src, "undecodable query: FORMERR");
            return Some(formerr(bytes).to_vec());
        }
    };
    if request.metadata.message_type == MessageType::Response {
        return None;
    }
    let capture = Capture {
        protocol,
        out: Arc::new(Mutex::new(None)),
    };
    responder
        .handle_request::<_, TokioTime>(&request, capture.clone())
        .await;
    capture.out.lock().ok()?.take()
}

/// Whether the first question's name is plain labels. It is the first name in the message,
/// so a compression pointer there can only point into the header: never a valid name. hickory
/// decodes such a name anyway and echoes the question's original bytes, pointer included,
/// into the answer, where the header differs: an answer no client can decode (found by the
/// tcp_framing fuzz target).
fn question_name_is_plain(bytes: &[u8]) -> bool {
    let questions = u16::from_be_bytes([bytes[4], bytes[5]]);
    if questions == 0 {
        return true;
    }
    let mut at = HEADER;
    while let Some(&len) = bytes.get(at) {
        match len {
            0 => return true,
            1..=63 => at += 1 + usize::from(len),
            _ => return false,
        }
    }
    true // truncated: the decoder's to refuse
}

/// A header-only FORMERR echoing the query's ID, opcode and RD. `bytes` has at least a header.
fn formerr(bytes: &[u8]) -> [u8; HEADER] {
    let mut reply = [0u8; HEADER];
    reply[..2].copy_from_slice(&bytes[..2]);
    reply[2] = 0x80 | (bytes[2] & 0x79);
    reply[3] = (bytes[3] & 0x10) | 0x01;
    reply
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
