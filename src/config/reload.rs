//! Which settings a reload applies and which wait for a restart: one table. The reloader's
//! warning names what an edit changed that needs a restart from it, and a test holds
//! config/README.md's list to it. It decides nothing else (what a setting means is in `mod.rs`).

use super::{Config, ServerConfig};

/// When an edited setting takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takes {
    /// At the reload that reads it.
    Live,
    /// When netalias restarts; a reload warns that it changed.
    Restart,
}

/// One setting (or section) as a reload sees it.
pub struct Setting {
    /// As written in the file: `server.KEY`, or a section's `docker.*`.
    pub key: &'static str,
    pub takes: Takes,
    /// Whether an edit from the first config to the second changed it.
    pub changed: fn(&Config, &Config) -> bool,
}

macro_rules! server {
    ($key:literal, $takes:ident, $field:ident) => {
        Setting {
            key: concat!("server.", $key),
            takes: Takes::$takes,
            changed: |a, b| a.server.$field != b.server.$field,
        }
    };
}

/// Every server setting, and the sections a reload does not apply. The records (`networks`, their
/// `records` included) always reload.
pub const SETTINGS: &[Setting] = &[
    server!("listen", Restart, listen),
    server!("ttl", Live, ttl),
    Setting {
        key: "server.domain",
        takes: Takes::Restart,
        changed: |a, b| a.server.domain() != b.server.domain(),
    },
    server!("default_view", Live, default_view),
    server!("trusted_askers", Live, trusted_askers),
    server!("own_domains", Live, own_domains),
    server!("host_name", Live, host_name),
    server!("max_udp_payload", Restart, max_udp_payload),
    server!("tcp_idle_timeout_secs", Restart, tcp_idle_timeout_secs),
    server!("tcp_max_connections", Restart, tcp_max_connections),
    server!(
        "tcp_max_connections_per_client",
        Restart,
        tcp_max_connections_per_client
    ),
    server!("max_endpoints", Restart, max_endpoints),
    server!("rate_limit_per_second", Restart, rate_limit_per_second),
    server!("http_listen", Restart, http_listen),
    server!("http_allow", Restart, http_allow),
    server!(
        "spread_metric_max_members",
        Restart,
        spread_metric_max_members
    ),
    server!("udp_workers", Restart, udp_workers),
    server!("udp_fast_path", Restart, udp_fast_path),
    server!("log_queries", Live, log_queries),
    Setting {
        key: "docker.*",
        takes: Takes::Restart,
        changed: |a, b| a.docker != b.docker,
    },
    Setting {
        key: "swarm.*",
        takes: Takes::Restart,
        changed: |a, b| a.swarm != b.swarm,
    },
    Setting {
        key: "forward.*",
        takes: Takes::Restart,
        changed: |a, b| a.forward != b.forward,
    },
];

/// The settings an edit from `old` to `new` changed that only a restart applies, as keys.
pub fn needs_restart(old: &Config, new: &Config) -> Vec<&'static str> {
    SETTINGS
        .iter()
        .filter(|s| s.takes == Takes::Restart && (s.changed)(old, new))
        .map(|s| s.key)
        .collect()
}

/// The keys of every setting that takes `takes`.
pub fn keys(takes: Takes) -> impl Iterator<Item = &'static str> {
    SETTINGS
        .iter()
        .filter(move |s| s.takes == takes)
        .map(|s| s.key)
}

// The table names every server field: a field added to `ServerConfig` without a line here
// fails to compile (the destructuring is exhaustive).
#[allow(dead_code)]
fn every_server_field_is_in_the_table(server: &ServerConfig) {
    let ServerConfig {
        listen: _,
        ttl: _,
        domain: _,
        default_view: _,
        trusted_askers: _,
        own_domains: _,
        host_name: _,
        max_udp_payload: _,
        tcp_idle_timeout_secs: _,
        tcp_max_connections: _,
        tcp_max_connections_per_client: _,
        max_endpoints: _,
        rate_limit_per_second: _,
        http_listen: _,
        http_allow: _,
        spread_metric_max_members: _,
        udp_workers: _,
        udp_fast_path: _,
        log_queries: _,
    } = server;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edit_names_what_waits_for_a_restart_and_nothing_live() {
        let old = Config::embedded_default().expect("default");
        let mut new = old.clone();
        new.server.ttl = 30;
        new.server.log_queries = true;
        assert!(
            needs_restart(&old, &new).is_empty(),
            "ttl and log_queries are live"
        );
        new.server.max_udp_payload = 512;
        new.server.udp_workers = Some(3);
        new.forward.timeout_ms = 700;
        assert_eq!(
            needs_restart(&old, &new),
            ["server.max_udp_payload", "server.udp_workers", "forward.*"]
        );
        // Text moving around `[forward]` (its upstreams are `Spanned`, whose spans move) is no
        // change of the section: only values count.
        let with_upstream = |ttl: &str| {
            Config::parse(
                &format!("[server]\nttl = {ttl}\n\n[forward]\nenabled = true\nupstreams = [\"10.0.0.2\"]\n"),
                "t.toml",
            )
            .expect("valid")
        };
        assert!(needs_restart(&with_upstream("5"), &with_upstream("30")).is_empty());
        // The table has one line per server field (see the exhaustive destructuring above).
        assert_eq!(
            SETTINGS
                .iter()
                .filter(|s| s.key.starts_with("server."))
                .count(),
            19
        );
    }

    /// config/README.md says which settings a reload applies; it must say what the table says.
    #[test]
    fn the_docs_list_what_the_table_says() {
        let docs = include_str!("../../config/README.md");
        let sentence = docs
            .split("take effect on restart")
            .next()
            .and_then(|before| before.rsplit("\n\n").next())
            .expect("config/README.md says which settings take effect on restart");
        for key in keys(Takes::Restart) {
            let short = key.trim_start_matches("server.");
            assert!(
                sentence.contains(&format!("`{short}`")),
                "config/README.md's restart list lacks `{short}`: {sentence}"
            );
        }
        for key in keys(Takes::Live) {
            let short = key.trim_start_matches("server.");
            assert!(
                !sentence.contains(&format!("`{short}`")),
                "`{short}` is live, not restart: {sentence}"
            );
        }
    }
}
