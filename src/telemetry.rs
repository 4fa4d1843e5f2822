//! Telemetry: metric names and the small helpers that record them.
//!
//! Names follow Prometheus conventions. Recording is a no-op until an exporter is installed
//! (a later issue). This module must not decide answers or hold registry state.

use hickory_server::{net::xfer::Protocol, proto::op::ResponseCode};
use metrics::counter;

/// DNS requests answered, by query type, rcode and protocol.
pub const DNS_REQUESTS_TOTAL: &str = "netalias_dns_requests_total";
/// Static-file reloads, by result.
pub const CONFIG_RELOADS_TOTAL: &str = "netalias_config_reloads_total";

pub fn count_request(qtype: &'static str, rcode: ResponseCode, protocol: Protocol) {
    let protocol = match protocol {
        Protocol::Udp => "udp",
        Protocol::Tcp => "tcp",
        #[allow(unreachable_patterns)]
        _ => "other",
    };
    counter!(DNS_REQUESTS_TOTAL, "type" => qtype, "rcode" => rcode.to_str(), "protocol" => protocol)
        .increment(1);
}

pub fn count_reload(ok: bool) {
    counter!(CONFIG_RELOADS_TOTAL, "result" => if ok { "ok" } else { "error" }).increment(1);
}
