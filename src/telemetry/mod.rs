//! Telemetry: metric names, the Prometheus recorder, and the HTTP endpoints beside them.
//!
//! Names follow Prometheus conventions. Recording is a no-op until `install_recorder` runs.
//! This module must not decide answers or change registry state; it only reads it.

pub mod http;
pub mod systemd;

use std::{sync::OnceLock, time::Duration};

use hickory_server::{
    net::xfer::Protocol,
    proto::{op::ResponseCode, rr::RecordType},
};
use metrics::{Counter, counter, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{BuildError, PrometheusBuilder, PrometheusHandle};

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

fn describe() {
    describe_counter!(
        DNS_REQUESTS_TOTAL,
        "DNS requests answered, by query type, rcode and protocol"
    );
    describe_histogram!(
        DNS_REQUEST_DURATION,
        "Time from decoded request to response sent"
    );
    describe_counter!(CONFIG_RELOADS_TOTAL, "Config file reloads, by result");
    describe_gauge!("netalias_registry_networks", "Networks in the registry");
    describe_gauge!("netalias_registry_endpoints", "Endpoints in the registry");
    describe_gauge!("netalias_registry_names", "Distinct names served");
    describe_gauge!(
        "netalias_process_resident_memory_bytes",
        "Resident memory of the process"
    );
    describe_gauge!(
        "netalias_docker_pending_events",
        "Docker events read but not yet applied"
    );
    describe_counter!(
        "netalias_docker_event_overflows_total",
        "Times the pending-events queue overflowed and a snapshot resynced instead"
    );
    describe_counter!(
        "netalias_registry_refused_endpoints_total",
        "Endpoints not served because server.max_endpoints was reached"
    );
    describe_counter!(
        "netalias_docker_events_total",
        "Docker events received, by action"
    );
    describe_counter!(
        "netalias_docker_resyncs_total",
        "Full Docker snapshots applied"
    );
    describe_gauge!(
        "netalias_docker_stale",
        "1 while the engine is unreachable and records may be stale"
    );
    describe_histogram!(
        "netalias_docker_event_to_apply_seconds",
        "From the engine's event time to the registry change"
    );
    describe_counter!(
        "netalias_upstream_requests_total",
        "Queries sent upstream, by upstream"
    );
    describe_counter!(
        "netalias_upstream_failures_total",
        "Upstream timeouts, errors, SERVFAIL and REFUSED, by upstream"
    );
    describe_histogram!(
        "netalias_upstream_request_duration_seconds",
        "Upstream round trip, by upstream"
    );
    describe_counter!(
        "netalias_forward_rejected_total",
        "Queries not forwarded, by reason"
    );
    describe_counter!(
        FORWARD_CACHE_EVICTIONS_TOTAL,
        "Answers the forward cache let go before their TTL, by reason (entries, bytes)"
    );
    describe_counter!(
        FAST_PATH_TOTAL,
        "Answers the UDP fast path gave, by source (local names, the forwarding cache)"
    );
    describe_counter!(FORWARD_CACHE_TOTAL, "Forward cache lookups, by result");
}

/// DNS requests answered, by query type, rcode and protocol.
pub const DNS_REQUESTS_TOTAL: &str = "netalias_dns_requests_total";
pub const DNS_REQUEST_DURATION: &str = "netalias_dns_request_duration_seconds";
/// Static-file reloads, by result.
pub const CONFIG_RELOADS_TOTAL: &str = "netalias_config_reloads_total";

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

/// Answers the UDP fast path gave, by where they came from (`local` names, the forwarding
/// `cache`); the rest took the full path.
pub const FAST_PATH_TOTAL: &str = "netalias_dns_fast_path_total";

/// Forward cache lookups, by result (hit, miss, stale).
pub const FORWARD_CACHE_TOTAL: &str = "netalias_forward_cache_total";
/// Answers the forward cache let go before their TTL, by reason (entries, bytes).
pub const FORWARD_CACHE_EVICTIONS_TOTAL: &str = "netalias_forward_cache_evictions_total";

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
