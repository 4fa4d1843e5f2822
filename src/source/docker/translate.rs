//! From what the engine says about a container to the endpoints it has, as Docker names them.
//!
//! Pure: takes an inspect response, returns `Endpoint`s. It decides which networks count
//! (user-defined only), which names an endpoint answers to, and whether it is in rotation
//! (running, not paused, healthy, not excluded). It never calls the engine.

use std::{
    collections::HashMap,
    net::{Ipv4Addr, Ipv6Addr},
};

use bollard::models::{ContainerInspectResponse, HealthStatusEnum};
use tracing::warn;

use crate::registry::Endpoint;

/// Label that keeps a container out of rotation.
pub const LABEL_EXCLUDE: &str = "netalias.exclude";
/// Label that sets the TTL of a container's records.
pub const LABEL_TTL: &str = "netalias.ttl";

/// Whether labels keep their owner (a container, a Swarm service) out of rotation.
pub fn excluded_by_label(labels: &HashMap<String, String>) -> bool {
    labels
        .get(LABEL_EXCLUDE)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// The TTL that labels set: `Ok(None)` without the label, `Err(value)` when it is not a number
/// of seconds (the caller decides whether that is worth a warning).
pub fn ttl_from_labels(labels: &HashMap<String, String>) -> Result<Option<u32>, &str> {
    match labels.get(LABEL_TTL) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| v.as_str()),
    }
}

/// Networks with no embedded DNS in Docker: the default bridge, host, none, and Swarm's plumbing.
const SYSTEM_NETWORKS: [&str; 5] = ["bridge", "host", "none", "docker_gwbridge", "ingress"];

/// Whether Docker would serve names on this network.
pub fn is_user_defined(network: &str) -> bool {
    !SYSTEM_NETWORKS.contains(&network)
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Policy {
    /// Keep containers whose healthcheck fails (or has not passed yet) in rotation.
    pub include_unhealthy: bool,
    /// Leave Swarm task containers to the Swarm source, which names them as Swarm does.
    pub skip_swarm_tasks: bool,
}

/// Label Swarm puts on every task container.
pub const LABEL_SWARM_TASK: &str = "com.docker.swarm.task.id";

/// The 12-character short ID Docker registers as a name.
pub fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// Why a container is out of rotation, if it is.
fn out_of_rotation(c: &ContainerInspectResponse, policy: Policy) -> Option<&'static str> {
    let state = c.state.as_ref();
    if state.and_then(|s| s.paused) == Some(true) {
        return Some("paused");
    }
    let labels = c.config.as_ref().and_then(|cfg| cfg.labels.as_ref());
    if labels.is_some_and(excluded_by_label) {
        return Some("excluded by label");
    }
    if !policy.include_unhealthy {
        match state.and_then(|s| s.health.as_ref()).and_then(|h| h.status) {
            Some(HealthStatusEnum::STARTING) => return Some("health check starting"),
            Some(HealthStatusEnum::UNHEALTHY) => return Some("unhealthy"),
            _ => {}
        }
    }
    None
}

/// The container's endpoints on user-defined networks; empty when it is not running.
pub fn endpoints_of(c: &ContainerInspectResponse, policy: Policy) -> Vec<Endpoint> {
    let Some(id) = c.id.as_deref() else {
        return Vec::new();
    };
    let state = c.state.as_ref();
    let running = state.and_then(|s| s.running) == Some(true);
    let restarting = state.and_then(|s| s.restarting) == Some(true);
    if !running || restarting {
        return Vec::new();
    }
    let labels = c.config.as_ref().and_then(|cfg| cfg.labels.as_ref());
    if policy.skip_swarm_tasks && labels.is_some_and(|l| l.contains_key(LABEL_SWARM_TASK)) {
        return Vec::new();
    }
    let in_rotation = out_of_rotation(c, policy).is_none();
    let name = c
        .name
        .as_deref()
        .unwrap_or(short_id(id))
        .trim_start_matches('/')
        .to_string();
    let ttl = labels.map_or(Ok(None), ttl_from_labels).unwrap_or_else(|value| {
        warn!(container = %name, value, "label {LABEL_TTL} is not a number of seconds; ignored");
        None
    });
    let hostname = c
        .config
        .as_ref()
        .and_then(|cfg| cfg.hostname.clone())
        .filter(|h| !h.is_empty());

    let networks = c
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref());
    let mut endpoints: Vec<Endpoint> = networks
        .into_iter()
        .flatten()
        .filter(|(network, _)| is_user_defined(network))
        .filter_map(|(network, ep)| {
            let ipv4 = ep
                .ip_address
                .as_deref()
                .and_then(|s| s.parse::<Ipv4Addr>().ok());
            let ipv6 = ep
                .global_ipv6_address
                .as_deref()
                .and_then(|s| s.parse::<Ipv6Addr>().ok());
            if ipv4.is_none() && ipv6.is_none() {
                return None;
            }
            let mut aliases: Vec<String> = ep.aliases.clone().unwrap_or_default();
            aliases.extend(ep.dns_names.clone().unwrap_or_default());
            aliases.push(short_id(id).to_string());
            aliases.extend(hostname.clone());
            Some(Endpoint {
                network: network.clone(),
                container: id.to_string(),
                name: name.clone(),
                aliases,
                ipv4,
                ipv6,
                ttl,
                in_rotation,
            })
        })
        .collect();
    endpoints.sort_by(|a, b| a.network.cmp(&b.network));
    endpoints
}

/// A one-line description of why a container is (not) served, for logs.
pub fn describe(c: &ContainerInspectResponse, policy: Policy) -> &'static str {
    out_of_rotation(c, policy).unwrap_or("in rotation")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use bollard::models::{
        ContainerConfig, ContainerState, EndpointSettings, Health, NetworkSettings,
    };

    use super::*;

    fn container(networks: &[(&str, &str)]) -> ContainerInspectResponse {
        ContainerInspectResponse {
            id: Some("0123456789abcdef0123".into()),
            name: Some("/web1".into()),
            state: Some(ContainerState {
                running: Some(true),
                paused: Some(false),
                restarting: Some(false),
                ..Default::default()
            }),
            config: Some(ContainerConfig {
                hostname: Some("webhost".into()),
                labels: Some(HashMap::new()),
                ..Default::default()
            }),
            network_settings: Some(NetworkSettings {
                networks: Some(
                    networks
                        .iter()
                        .map(|(n, ip)| {
                            (
                                n.to_string(),
                                EndpointSettings {
                                    ip_address: Some(ip.to_string()),
                                    global_ipv6_address: Some(String::new()),
                                    aliases: Some(vec!["app".into()]),
                                    ..Default::default()
                                },
                            )
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn names_as_docker_registers_them_on_user_defined_networks_only() {
        let c = container(&[("bridge", "172.17.0.2"), ("front", "10.1.0.2")]);
        let eps = endpoints_of(&c, Policy::default());
        assert_eq!(eps.len(), 1, "default bridge has no names");
        let ep = &eps[0];
        assert_eq!(ep.network, "front");
        assert_eq!(ep.name, "web1");
        let names: Vec<&str> = ep.names().collect();
        assert_eq!(names, ["web1", "app", "0123456789ab", "webhost"]);
        assert_eq!(ep.ipv4, Some(Ipv4Addr::new(10, 1, 0, 2)));
        assert_eq!(ep.ipv6, None, "empty string means no address");
        assert!(ep.in_rotation);
    }

    #[test]
    fn stopped_has_no_endpoints_and_paused_is_out_of_rotation() {
        let mut c = container(&[("front", "10.1.0.2")]);
        if let Some(s) = c.state.as_mut() {
            s.paused = Some(true);
        }
        assert!(!endpoints_of(&c, Policy::default())[0].in_rotation);
        if let Some(s) = c.state.as_mut() {
            s.running = Some(false);
        }
        assert!(endpoints_of(&c, Policy::default()).is_empty());
    }

    #[test]
    fn health_and_labels_decide_rotation() {
        let mut c = container(&[("front", "10.1.0.2")]);
        for (status, expected) in [
            (HealthStatusEnum::STARTING, false),
            (HealthStatusEnum::UNHEALTHY, false),
            (HealthStatusEnum::HEALTHY, true),
        ] {
            if let Some(s) = c.state.as_mut() {
                s.health = Some(Health {
                    status: Some(status),
                    ..Default::default()
                });
            }
            assert_eq!(
                endpoints_of(&c, Policy::default())[0].in_rotation,
                expected,
                "{status:?}"
            );
            assert!(
                endpoints_of(
                    &c,
                    Policy {
                        include_unhealthy: true,
                        ..Policy::default()
                    }
                )[0]
                .in_rotation
            );
        }
        let labels = c
            .config
            .as_mut()
            .and_then(|cfg| cfg.labels.as_mut())
            .expect("labels");
        labels.insert(LABEL_TTL.into(), "7".into());
        assert_eq!(endpoints_of(&c, Policy::default())[0].ttl, Some(7));
        let labels = c
            .config
            .as_mut()
            .and_then(|cfg| cfg.labels.as_mut())
            .expect("labels");
        labels.insert(LABEL_EXCLUDE.into(), "true".into());
        assert!(!endpoints_of(&c, Policy::default())[0].in_rotation);
    }
}
