//! The query log: one line per question when `server.log_queries` is on (a reload can turn it
//! on or off), target `netalias::query`, in the log format of every other line (`--log-format
//! json` for Loki or Elasticsearch).
//!
//! A local answer names where the name comes from (`from`: container name, alias, label,
//! compose, config, CNAME, wildcard), read back from the registry without a turn.
//!
//! It reads the answer as it was sent, so every path (fast, fast from the cache, full,
//! forwarded) is logged alike and none of them changes for it; when off it costs one relaxed
//! atomic load per packet. It never changes an answer.

use std::{net::IpAddr, time::Instant};

use hickory_server::proto::{
    op::Message,
    rr::{LowerName, RData},
};
use tracing::info;

use crate::registry::Registry;

/// Answers listed in full up to this many; past it, their count.
const LISTED: usize = 8;

/// The path an answer took, as the log names it.
pub fn fast_path_label(response: &[u8]) -> &'static str {
    // The fast path answers local names with AA set, forwarded ones from the cache without.
    if response.get(2).is_some_and(|flags| flags & 0x04 != 0) {
        "fast"
    } else {
        "fast-cache"
    }
}

/// Logs `response`, sent to `asker` after `started`, which took `path`.
pub fn record(
    registry: &Registry,
    asker: IpAddr,
    response: &[u8],
    path: &'static str,
    started: Instant,
) {
    let micros = started.elapsed().as_micros() as u64;
    let Ok(message) = Message::from_vec(response) else {
        info!(target: "netalias::query", %asker, path, micros, bytes = response.len(), "answer (not decodable)");
        return;
    };
    let container = registry
        .endpoint_name(asker)
        .map(|n| n.to_string().trim_end_matches('.').to_string());
    let (name, qtype) = message
        .queries
        .first()
        .map(|q| (q.name().to_string(), q.query_type().to_string()))
        .unwrap_or_default();
    // Where a name answered here comes from (container name, alias, label, compose, config,
    // CNAME, wildcard): read back without a turn, as `explain` reads it.
    let from = message
        .queries
        .first()
        .filter(|_| message.metadata.authoritative && !message.answers.is_empty())
        .and_then(|q| registry.origins_of(&LowerName::from(q.name()), asker))
        .map(|o| o.words())
        .filter(|w| !w.is_empty());
    let answers = if message.answers.len() > LISTED {
        format!("{} records", message.answers.len())
    } else {
        message
            .answers
            .iter()
            .map(|r| match &r.data {
                RData::A(a) => a.to_string(),
                RData::AAAA(a) => a.to_string(),
                other => format!("{} {other}", r.record_type()),
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    info!(
        target: "netalias::query",
        %asker,
        container = container.as_deref().unwrap_or("-"),
        %name,
        qtype = %qtype,
        rcode = crate::telemetry::rcode_label(message.metadata.response_code),
        answers = %answers,
        from = from.as_deref().unwrap_or("-"),
        truncated = message.metadata.truncation,
        path,
        micros,
        "query"
    );
}
