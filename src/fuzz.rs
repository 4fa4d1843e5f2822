//! Entry points for the fuzz targets (`tests/fuzz`, cargo-fuzz) and for the replay of their
//! corpus in the ordinary test run.
//!
//! Each takes arbitrary bytes and panics only when an invariant breaks: an answer that does
//! not decode or does not carry the query's ID, a parser that panics, an error that does not
//! name its file. They serve the seed's records from the embedded default; nothing here opens
//! a socket.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::OnceLock,
};

use bytes::BytesMut;
use hickory_server::{net::xfer::Protocol, proto::op::Message};
use tokio_util::codec::Decoder;

use crate::{
    config::Config,
    dns::{self, Responder},
    provision::spec::Stack,
};

const FILE: &str = "fuzz.toml";

struct Fixture {
    responder: Responder,
    runtime: tokio::runtime::Runtime,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let config = Config::embedded_default().expect("the embedded default parses");
        // The registry and responder the server itself assembles for this config.
        let core = crate::server::core(&config, None).expect("the embedded default serves");
        // A wildcard beside the seed's names, so that the corpus reaches synthesis too
        // (`*.wild.test`, answering `anything.wild.test`).
        core.registry.apply(
            crate::registry::Owner("fuzz"),
            crate::registry::Change::EndpointUp(crate::registry::Endpoint {
                network: "my_custom_network".into(),
                container: "wild".into(),
                name: "wild".into(),
                aliases: vec!["*.wild.test".into()],
                ipv4: Some(Ipv4Addr::new(172, 72, 0, 9)),
                ipv6: None,
                ttl: None,
                out_of_rotation: None,
                srv: Vec::new(),
                origins: Default::default(),
            }),
        );
        // Static records: a CNAME to the seed's `app` (a chain, and a loop), and a TXT name,
        // so that the corpus reaches the CNAME rule.
        for (name, data) in [
            ("www.cname.test", ("app", &[][..])),
            ("hop.cname.test", ("www.cname.test", &[][..])),
            ("loop.cname.test", ("loop2.cname.test", &[][..])),
            ("loop2.cname.test", ("loop.cname.test", &[][..])),
            (
                "txt.cname.test",
                ("", &[&b"v=1"[..], &b"owner=ops"[..]][..]),
            ),
        ] {
            let (target, txt) = data;
            core.registry.apply(
                crate::registry::Owner("fuzz"),
                crate::registry::Change::NameData {
                    network: "my_custom_network".into(),
                    name: name.into(),
                    data: Some(crate::registry::NameData {
                        cname: (!target.is_empty()).then(|| target.to_string()),
                        txt: txt.iter().map(|t| t.to_vec()).collect(),
                        ..Default::default()
                    }),
                },
            );
        }
        Fixture {
            responder: core.responder,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime"),
        }
    })
}

/// An answer must decode, carry the query's ID and fit its transport.
fn check_answer(query: &[u8], answer: &[u8], limit: usize) {
    assert!(answer.len() <= limit, "answer of {} bytes", answer.len());
    assert_eq!(answer[..2], query[..2], "answer ID");
    if let Err(error) = Message::from_vec(answer) {
        panic!("an answer that does not decode: {error}: {answer:02x?}");
    }
}

/// The UDP answer path: the fast path, else the full one, as the receive loop runs them.
pub fn udp_answer(packet: &[u8]) {
    let fixture = fixture();
    let asker = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut out = Vec::with_capacity(512);
    if dns::fast_answer(&fixture.responder, packet, asker, 5300, &mut out) {
        check_answer(packet, &out, 1232);
        return;
    }
    let src = SocketAddr::new(asker, 5300);
    let answer = fixture.runtime.block_on(dns::exchange::answer_bytes(
        &fixture.responder,
        packet,
        src,
        Protocol::Udp,
    ));
    if let Some(answer) = answer {
        // EDNS may ask for up to 65535, but never for more than a datagram.
        check_answer(packet, &answer, usize::from(u16::MAX));
    }
}

/// TCP framing: a byte stream split into 2-byte-length frames as a connection does, each
/// answered whole.
pub fn tcp_stream(stream: &[u8]) {
    let fixture = fixture();
    let mut codec = dns::frame_codec();
    let mut buffer = BytesMut::from(stream);
    let src = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5300);
    while let Ok(Some(frame)) = codec.decode(&mut buffer) {
        let answer = fixture.runtime.block_on(dns::exchange::answer_bytes(
            &fixture.responder,
            &frame,
            src,
            Protocol::Tcp,
        ));
        if let Some(answer) = answer {
            check_answer(&frame, &answer, usize::from(u16::MAX));
        }
    }
}

/// The server config parser: any text gives a config or an error naming the file.
pub fn config(text: &[u8]) {
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    if let Err(error) = Config::parse(text, FILE) {
        assert!(error.to_string().contains(FILE), "{error}");
    }
}

/// The stack-spec parser and validator: the same promise.
pub fn stack(text: &[u8]) {
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    if let Err(error) = Stack::parse(text, FILE) {
        assert!(error.to_string().contains(FILE), "{error}");
    }
}
