//! Every metric netalias records: its name, its kind and its help text, in one catalogue.
//!
//! Call sites name a metric by its constant here, never by a string of their own, so a name
//! is spelled once and every metric gets a HELP line (`describe` walks [`CATALOGUE`]). This
//! module imports nothing: any layer may name a metric without depending on the recorder.

/// What a metric is, for its HELP and TYPE lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One entry of the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
}

macro_rules! catalogue {
    ($($(#[$doc:meta])* $konst:ident = $name:literal, $kind:ident, $help:literal;)*) => {
        $(
            #[doc = $help]
            $(#[$doc])*
            pub const $konst: &str = $name;
        )*
        /// Every metric, for `describe` and the catalogue's own checks.
        pub const CATALOGUE: &[Metric] = &[
            $(Metric { name: $name, kind: Kind::$kind, help: $help },)*
        ];
    };
}

catalogue! {
    // The DNS front end.
    DNS_REQUESTS_TOTAL = "netalias_dns_requests_total", Counter,
        "DNS requests answered, by query type, rcode and protocol";
    DNS_REQUEST_DURATION = "netalias_dns_request_duration_seconds", Histogram,
        "Time from decoded request to response sent (the full path)";
    FAST_PATH_TOTAL = "netalias_dns_fast_path_total", Counter,
        "Answers the UDP fast path gave, by source (local names, the forwarding cache)";
    DNS_DROPPED_TOTAL = "netalias_dns_dropped_total", Counter,
        "UDP questions dropped unanswered, by reason (overload: the full path was full)";
    DNS_RATE_LIMITED_TOTAL = "netalias_dns_rate_limited_total", Counter,
        "UDP answers held back by the per-client rate limit, by action (slip, drop)";
    DNS_TCP_CONNECTIONS = "netalias_dns_tcp_connections", Gauge,
        "DNS-over-TCP connections open";
    DNS_TCP_REFUSED_TOTAL = "netalias_dns_tcp_refused_total", Counter,
        "DNS-over-TCP connections refused at accept, by reason";
    DNS_TCP_CLOSED_TOTAL = "netalias_dns_tcp_closed_total", Counter,
        "DNS-over-TCP connections closed by netalias, by reason";
    DNS_NEW_ASKERS_TOTAL = "netalias_dns_new_askers_total", Counter,
        "Questions from an unknown asker inside a followed subnet, held until it was looked up, by outcome (known, unknown)";
    DNS_TCP_ADMISSION_WAIT = "netalias_dns_tcp_admission_wait_seconds", Histogram,
        "Time a new DNS-over-TCP connection at a cap waited for room, by outcome (admitted, refused)";

    // Forwarding and its cache.
    FORWARD_REJECTED_TOTAL = "netalias_forward_rejected_total", Counter,
        "Queries not forwarded, by reason";
    FORWARD_COALESCED_TOTAL = "netalias_forward_coalesced_total", Counter,
        "Questions that joined one already on its way upstream instead of asking again";
    FORWARD_LOOPS_TOTAL = "netalias_forward_loops_total", Counter,
        "Questions that came back to netalias from its own forwarding (a loop), answered SERVFAIL";
    FORWARD_CACHE_TOTAL = "netalias_forward_cache_total", Counter,
        "Forward cache lookups, by result (hit, miss, stale)";
    FORWARD_CACHE_EVICTIONS_TOTAL = "netalias_forward_cache_evictions_total", Counter,
        "Answers the forward cache let go before their TTL, by reason (entries, bytes)";
    UPSTREAM_REQUESTS_TOTAL = "netalias_upstream_requests_total", Counter,
        "Queries sent upstream, by upstream";
    UPSTREAM_FAILURES_TOTAL = "netalias_upstream_failures_total", Counter,
        "Upstream timeouts, errors, SERVFAIL and REFUSED, by upstream";
    UPSTREAM_REQUEST_DURATION = "netalias_upstream_request_duration_seconds", Histogram,
        "Upstream round trip, by upstream";
    UPSTREAM_TCP_RETRIES_TOTAL = "netalias_upstream_tcp_retries_total", Counter,
        "Truncated upstream answers asked again over TCP, by upstream";

    // The registry and the process.
    REGISTRY_NETWORKS = "netalias_registry_networks", Gauge,
        "Networks in the registry";
    REGISTRY_ENDPOINTS = "netalias_registry_endpoints", Gauge,
        "Endpoints in the registry";
    ROTATION_FIRST_TOTAL = "netalias_rotation_first_total", Counter,
        "Answers that named this member first, by network, name and member: for names with 2 to server.spread_metric_max_members members, rendered at scrape from the rotation cursors";
    REGISTRY_NAMES = "netalias_registry_names", Gauge,
        "Distinct names served";
    REGISTRY_REFUSED_ENDPOINTS_TOTAL = "netalias_registry_refused_endpoints_total", Counter,
        "Endpoints not served because server.max_endpoints was reached";
    PROCESS_RESIDENT_MEMORY = "netalias_process_resident_memory_bytes", Gauge,
        "Resident memory of the process";
    HTTP_REFUSED_TOTAL = "netalias_http_refused_total", Counter,
        "HTTP connections closed at accept: over the connection limit";

    // Sources.
    CONFIG_RELOADS_TOTAL = "netalias_config_reloads_total", Counter,
        "Config file reloads, by result";
    SOURCE_RECONCILE_CORRECTIONS_TOTAL = "netalias_source_reconcile_corrections_total", Counter,
        "Records a periodic re-read of the engine found wrong and corrected, by source";
    DOCKER_PENDING_EVENTS = "netalias_docker_pending_events", Gauge,
        "Docker events read but not yet applied";
    DOCKER_EVENT_OVERFLOWS_TOTAL = "netalias_docker_event_overflows_total", Counter,
        "Times the pending-events queue overflowed and a snapshot resynced instead";
    DOCKER_EARLY_ASKERS_TOTAL = "netalias_docker_early_askers_total", Counter,
        "Containers scoped or published before the container could be read whole, by how (connect, lookup, not_found: scoped; created, started: published at network connect from the create-time read, taken before or as the start was done)";
    DOCKER_LIST_READS_TOTAL = "netalias_docker_list_reads_total", Counter,
        "Containers published from the engine's list without waiting on their lock, by how (complete, partial: an inspect completes it; unsure: the list was older than the event, an inspect decides)";
    DOCKER_EVENTS_TOTAL = "netalias_docker_events_total", Counter,
        "Docker events received, by action";
    DOCKER_RESYNCS_TOTAL = "netalias_docker_resyncs_total", Counter,
        "Full Docker snapshots applied";
    DOCKER_STALE = "netalias_docker_stale", Gauge,
        "1 while the engine is unreachable and records may be stale";
    DOCKER_EVENT_TO_APPLY = "netalias_docker_event_to_apply_seconds", Histogram,
        "From the engine's event time to the registry change";
    SWARM_TRIGGERS_TOTAL = "netalias_swarm_triggers_total", Counter,
        "Swarm refreshes started, by what started them (event, poll)";
    SWARM_SERVICES = "netalias_swarm_services", Gauge,
        "Swarm services seen at the last refresh";
    SWARM_TASKS = "netalias_swarm_tasks", Gauge,
        "Swarm tasks seen at the last refresh";
    SWARM_REFRESH = "netalias_swarm_refresh_seconds", Histogram,
        "Time to read the swarm's services and tasks";
    SWARM_MANAGER = "netalias_swarm_manager", Gauge,
        "1 when the engine read is a swarm manager";
    SWARM_STALE = "netalias_swarm_stale", Gauge,
        "1 while the swarm cannot be read and records may be stale";
}

#[cfg(test)]
mod tests {
    use super::{CATALOGUE, Kind};

    #[test]
    fn names_are_unique_and_follow_prometheus_conventions() {
        let mut seen = std::collections::HashSet::new();
        for metric in CATALOGUE {
            assert!(seen.insert(metric.name), "{} twice", metric.name);
            assert!(metric.name.starts_with("netalias_"), "{}", metric.name);
            assert!(
                metric
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{}",
                metric.name
            );
            assert_eq!(
                metric.name.ends_with("_total"),
                metric.kind == Kind::Counter,
                "counters, and only counters, end in _total: {}",
                metric.name
            );
            if metric.kind == Kind::Histogram {
                assert!(metric.name.ends_with("_seconds"), "{}", metric.name);
            }
            assert!(!metric.help.is_empty(), "{}", metric.name);
        }
    }
}
