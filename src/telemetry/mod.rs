//! Telemetry: the metric catalogue (`names`), the Prometheus recorder, the counting helpers
//! of the answer paths, and the HTTP endpoints beside them.
//!
//! Names follow Prometheus conventions. Recording is a no-op until `install_recorder` runs.
//! This module must not decide answers or change registry state; it only reads it.

pub mod explain;
pub mod http;
pub mod names;
pub mod systemd;

use std::{sync::OnceLock, time::Duration};

use hickory_server::{
    net::xfer::Protocol,
    proto::{op::ResponseCode, rr::RecordType},
};
use metrics::{Counter, counter, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{BuildError, PrometheusBuilder, PrometheusHandle};
use names::{CONFIG_RELOADS_TOTAL, DNS_REQUESTS_TOTAL, FAST_PATH_TOTAL, FORWARD_CACHE_TOTAL};

/// Installs the global Prometheus recorder and keeps it tidy; returns the handle that renders.
pub fn install_recorder() -> Result<PrometheusHandle, BuildError> {
    let handle = PrometheusBuilder::new()
        .set_buckets(&[
            0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.05, 0.25, 1.0, 5.0,
        ])?
        .install_recorder()?;
    describe();
    let upkeep = handle.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

/// A HELP line for every metric in the catalogue.
fn describe() {
    for metric in names::CATALOGUE {
        match metric.kind {
            names::Kind::Counter => describe_counter!(metric.name, metric.help),
            names::Kind::Gauge => describe_gauge!(metric.name, metric.help),
            names::Kind::Histogram => describe_histogram!(metric.name, metric.help),
        }
    }
}

pub fn count_request(qtype: &'static str, rcode: ResponseCode, protocol: Protocol) {
    let protocol = match protocol {
        Protocol::Udp => "udp",
        Protocol::Tcp => "tcp",
        #[allow(unreachable_patterns)]
        _ => "other",
    };
    counter!(DNS_REQUESTS_TOTAL, "type" => qtype, "rcode" => rcode_label(rcode), "protocol" => protocol)
        .increment(1);
}

/// `count_request` for the fast path's only outcome (an A or AAAA answer over UDP). The two
/// counters are registered on first use and kept: `counter!` builds and hashes its key and asks
/// the recorder for it on every call, about 150 instructions of the fast path's 2,200. `serve`
/// installs the recorder before any listener starts, so the kept handles are the recorder's.
pub fn count_fast_answer(qtype_is_a: bool) {
    static COUNTERS: OnceLock<[Counter; 3]> = OnceLock::new();
    let [a, aaaa, fast] = COUNTERS.get_or_init(|| {
        [
            counter!(DNS_REQUESTS_TOTAL, "type" => "A", "rcode" => "NOERROR", "protocol" => "udp"),
            counter!(DNS_REQUESTS_TOTAL, "type" => "AAAA", "rcode" => "NOERROR", "protocol" => "udp"),
            counter!(FAST_PATH_TOTAL, "source" => "local"),
        ]
    });
    if qtype_is_a { a } else { aaaa }.increment(1);
    fast.increment(1);
}

/// `count_request` and a cache hit for the fast path's answer from the forwarding cache, with
/// kept handles as [`count_fast_answer`] keeps them (A and AAAA; other types by name).
pub fn count_fast_forward(qtype: RecordType, rcode: ResponseCode) {
    static HITS: OnceLock<[Counter; 2]> = OnceLock::new();
    static COMMON: OnceLock<[Counter; 4]> = OnceLock::new();
    let [hit, fast] = HITS.get_or_init(|| {
        [
            counter!(FORWARD_CACHE_TOTAL, "result" => "hit"),
            counter!(FAST_PATH_TOTAL, "source" => "cache"),
        ]
    });
    hit.increment(1);
    fast.increment(1);
    let common = COMMON.get_or_init(|| {
        [
            counter!(DNS_REQUESTS_TOTAL, "type" => "A", "rcode" => "NOERROR", "protocol" => "udp"),
            counter!(DNS_REQUESTS_TOTAL, "type" => "AAAA", "rcode" => "NOERROR", "protocol" => "udp"),
            counter!(DNS_REQUESTS_TOTAL, "type" => "A", "rcode" => "NXDOMAIN", "protocol" => "udp"),
            counter!(DNS_REQUESTS_TOTAL, "type" => "AAAA", "rcode" => "NXDOMAIN", "protocol" => "udp"),
        ]
    });
    let at = match (qtype, rcode) {
        (RecordType::A, ResponseCode::NoError) => 0,
        (RecordType::AAAA, ResponseCode::NoError) => 1,
        (RecordType::A, ResponseCode::NXDomain) => 2,
        (RecordType::AAAA, ResponseCode::NXDomain) => 3,
        _ => return count_request(qtype.into(), rcode, Protocol::Udp),
    };
    common[at].increment(1);
}

/// The mnemonic of an rcode, as DNS tools print it (NOERROR, NXDOMAIN, ...).
pub fn rcode_label(rcode: ResponseCode) -> &'static str {
    match rcode {
        ResponseCode::NoError => "NOERROR",
        ResponseCode::FormErr => "FORMERR",
        ResponseCode::ServFail => "SERVFAIL",
        ResponseCode::NXDomain => "NXDOMAIN",
        ResponseCode::NotImp => "NOTIMP",
        ResponseCode::Refused => "REFUSED",
        ResponseCode::BADVERS => "BADVERS",
        _ => "OTHER",
    }
}

pub fn count_reload(ok: bool) {
    counter!(CONFIG_RELOADS_TOTAL, "result" => if ok { "ok" } else { "error" }).increment(1);
}
