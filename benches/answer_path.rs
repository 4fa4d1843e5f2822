//! Criterion benches of the answer path (packet bytes → handler → encoded answer), of the
//! answer rules alone (lookup, rotation, records), and of registry updates.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    str::FromStr,
};

use criterion::{Criterion, criterion_group, criterion_main};
use hickory_server::{
    net::xfer::Protocol,
    proto::{
        op::{LowerQuery, Message, Query},
        rr::{Name, RecordType},
    },
};
use netalias::{
    config::Config,
    dns,
    registry::{Change, Endpoint, Owner, Registry},
};

const OWNER: Owner = Owner("bench");

/// The registry and responder the server assembles for the embedded default.
fn seed_core() -> netalias::server::Core {
    let config = Config::embedded_default().expect("embedded default");
    netalias::server::core(&config, None).expect("the embedded default serves")
}

fn query_bytes(name: &str, qtype: RecordType) -> Vec<u8> {
    let mut msg = Message::query();
    msg.add_query(Query::query(Name::from_str(name).expect("name"), qtype));
    msg.to_vec().expect("encode")
}

fn answer_path(c: &mut Criterion) {
    let core = seed_core();
    let (registry, responder) = (core.registry, core.responder);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let src = SocketAddr::from(([127, 0, 0, 1], 40000));
    let mut group = c.benchmark_group("answer_path");
    // The worst a client can send, against a plain query (at most 10x its cost). A 64 KB TCP
    // message of answer records and a 4 KB OPT of a thousand empty options are refused on
    // their headers; the worst a query may be is 1 KB with 16 options, one of them padding.
    let cases = [
        (
            "udp_alias_a",
            query_bytes("app.", RecordType::A),
            Protocol::Udp,
        ),
        (
            "udp_alias_aaaa_nodata",
            query_bytes("app.", RecordType::AAAA),
            Protocol::Udp,
        ),
        (
            "udp_name_network_domain",
            query_bytes("web1.my_custom_network.docker.", RecordType::A),
            Protocol::Udp,
        ),
        (
            "udp_nxdomain",
            query_bytes("nope.docker.", RecordType::A),
            Protocol::Udp,
        ),
        (
            "tcp_plain_query",
            query_bytes("app.", RecordType::A),
            Protocol::Tcp,
        ),
        (
            "worst_tcp_64k_of_records",
            records_message(65_000),
            Protocol::Tcp,
        ),
        (
            "worst_tcp_4k_opt_of_tiny_options",
            tiny_options_query(4096),
            Protocol::Tcp,
        ),
        (
            "worst_allowed_1k_opt_16_options",
            sixteen_options_query(1024),
            Protocol::Tcp,
        ),
    ];
    for (label, bytes, protocol) in cases {
        group.bench_function(label, |b| {
            b.iter(|| {
                runtime.block_on(dns::exchange::answer_bytes(
                    &responder, &bytes, src, protocol,
                ))
            })
        });
    }
    let alias = query_bytes("app.", RecordType::A);
    let mut out = Vec::with_capacity(512);
    group.bench_function("fast_path_alias_a", |b| {
        b.iter(|| dns::fast_answer(&responder, &alias, src.ip(), src.port(), &mut out))
    });
    let query = LowerQuery::query(Query::query(
        Name::from_str("app.").expect("name"),
        RecordType::A,
    ));
    let asker = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let turns = dns::Turns::default();
    group.bench_function("answer_rules_only", |b| {
        b.iter(|| dns::answer(&registry, &query, asker, 0, dns::Turn::new(&turns, None)))
    });
    group.finish();
}

/// A query followed by as many A records (owner a pointer to the question) as fit `len`.
fn records_message(len: usize) -> Vec<u8> {
    let mut bytes = query_bytes("app.", RecordType::A);
    let record = [0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 10, 0, 0, 1];
    let count = (len - bytes.len()) / record.len();
    bytes[6..8].copy_from_slice(&(count as u16).to_be_bytes());
    for _ in 0..count {
        bytes.extend_from_slice(&record);
    }
    bytes
}

/// A query with an OPT whose options are as many empty ones as fit `len` bytes.
fn tiny_options_query(len: usize) -> Vec<u8> {
    let mut bytes = query_bytes("app.", RecordType::A);
    bytes[10..12].copy_from_slice(&1u16.to_be_bytes());
    let options = (len - bytes.len() - 11) / 4;
    bytes.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0]);
    bytes.extend_from_slice(&((options * 4) as u16).to_be_bytes());
    for i in 0..options {
        bytes.extend_from_slice(&(65001 + (i % 500) as u16).to_be_bytes());
        bytes.extend_from_slice(&[0, 0]);
    }
    bytes
}

/// The worst query the header checks let through: an OPT with the most options allowed
/// (16), the last one padding (RFC 7830) up to `len` bytes.
fn sixteen_options_query(len: usize) -> Vec<u8> {
    let mut bytes = query_bytes("app.", RecordType::A);
    bytes[10..12].copy_from_slice(&1u16.to_be_bytes());
    let rdlen = len - bytes.len() - 11;
    bytes.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0]);
    bytes.extend_from_slice(&(rdlen as u16).to_be_bytes());
    for i in 0..15u16 {
        bytes.extend_from_slice(&(65001 + i).to_be_bytes());
        bytes.extend_from_slice(&[0, 0]);
    }
    let padding = rdlen - 15 * 4 - 4;
    bytes.extend_from_slice(&12u16.to_be_bytes());
    bytes.extend_from_slice(&(padding as u16).to_be_bytes());
    bytes.resize(bytes.len() + padding, 0);
    bytes
}

fn registry_updates(c: &mut Criterion) {
    let registry = Registry::new(Some("docker")).expect("registry");
    for i in 0..1000u32 {
        registry.apply(OWNER, Change::EndpointUp(endpoint(i, "svc")));
    }
    let mut group = c.benchmark_group("registry");
    let mut i = 0u32;
    group.bench_function("endpoint_up_into_1000", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            registry.apply(OWNER, Change::EndpointUp(endpoint(1000 + i % 1000, "svc")));
        })
    });
    group.bench_function("endpoint_down_up_in_500_member_alias", |b| {
        b.iter(|| {
            registry.apply(
                OWNER,
                Change::EndpointDown {
                    network: "bench".into(),
                    container: "c7".into(),
                },
            );
            registry.apply(OWNER, Change::EndpointUp(endpoint(7, "svc")));
        })
    });
    group.finish();
}

fn endpoint(i: u32, alias: &str) -> Endpoint {
    let [_, _, hi, lo] = i.to_be_bytes();
    Endpoint {
        network: "bench".into(),
        container: format!("c{i}"),
        name: format!("c{i}"),
        aliases: vec![alias.to_string()],
        ipv4: Some(Ipv4Addr::new(10, 60, hi, lo)),
        ipv6: None,
        ttl: None,
        out_of_rotation: None,
        srv: Vec::new(),
        origins: Default::default(),
    }
}

criterion_group!(benches, answer_path, registry_updates);
criterion_main!(benches);
