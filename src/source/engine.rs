//! The engine's naming rules, in one place for every source that reads a Docker-API engine
//! (the Docker source against Docker or Podman, the Swarm source): the labels netalias reads,
//! the short ID an engine registers as a name, and which networks are the engine's own
//! plumbing, where it serves no names and neither does netalias.
//!
//! Chosen per engine from what the engine says it is (`GET /version`). Pure: no I/O, nothing
//! of the registry or of any source.

use std::collections::HashMap;

/// Label that keeps a container (or a Swarm service) out of rotation.
pub const LABEL_EXCLUDE: &str = "netalias.exclude";
/// Label that sets the TTL of a container's (or a service's) records.
pub const LABEL_TTL: &str = "netalias.ttl";
/// Label Swarm puts on every task container.
pub const LABEL_SWARM_TASK: &str = "com.docker.swarm.task.id";

/// Which engine speaks the Docker API at the other end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Engine {
    #[default]
    Docker,
    /// Podman's Docker-compatible service (`podman system service`).
    Podman,
}

/// Docker's own networks: the default bridge, host, none, and Swarm's plumbing. Docker's
/// embedded DNS serves no names on them.
const DOCKER_SYSTEM: [&str; 5] = ["bridge", "host", "none", "docker_gwbridge", "ingress"];
/// Podman's: its default network is `podman` in a container's inspect (and `bridge` in the
/// compat network list); aardvark-dns serves no names there, as Docker's does not on `bridge`.
const PODMAN_SYSTEM: [&str; 4] = ["podman", "bridge", "host", "none"];

impl Engine {
    /// The engine that names itself so in `GET /version`: Podman lists a component named
    /// "Podman Engine"; Docker lists "Engine" and a platform "Docker Engine - …".
    pub fn from_version<'a>(
        platform: Option<&str>,
        components: impl IntoIterator<Item = &'a str>,
    ) -> Engine {
        let podman = |name: &str| name.to_ascii_lowercase().contains("podman");
        if platform.is_some_and(podman) || components.into_iter().any(podman) {
            Engine::Podman
        } else {
            Engine::Docker
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Engine::Docker => "Docker",
            Engine::Podman => "Podman",
        }
    }

    fn system_networks(self) -> &'static [&'static str] {
        match self {
            Engine::Docker => &DOCKER_SYSTEM,
            Engine::Podman => &PODMAN_SYSTEM,
        }
    }

    /// Whether the engine serves names on this network (so netalias does too).
    pub fn is_user_defined(self, network: &str) -> bool {
        !self.system_networks().contains(&network)
    }

    /// Whether the engine's event stream can be filtered by action (`filters={"event":[…]}`).
    /// Podman 4.3's cannot: it matches the filter against its own names ("died" for Docker's
    /// "die", so a stop never arrives), and with `since` its stream stopped after replaying
    /// the past events (both seen with Debian's 4.3.1). Its events are then filtered by type
    /// only, and by action in netalias.
    pub fn filters_events_by_action(self) -> bool {
        self == Engine::Docker
    }

    /// Whether a container on this network asks from there without names: one of the
    /// engine's own networks that has addresses (not `host`, not `none`).
    pub fn asks_without_names(self, network: &str) -> bool {
        !self.is_user_defined(network) && !matches!(network, "host" | "none")
    }
}

/// The 12-character short ID an engine registers as a name.
pub fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// Whether labels keep their owner (a container, a Swarm service) out of rotation.
pub fn excluded_by_label(labels: &HashMap<String, String>) -> bool {
    labels
        .get(LABEL_EXCLUDE)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// The TTL that labels set: `Ok(None)` without the label, `Err(value)` when it is not a number
/// of seconds within the largest TTL (the caller decides whether that is worth a warning).
pub fn ttl_from_labels(labels: &HashMap<String, String>) -> Result<Option<u32>, &str> {
    match labels.get(LABEL_TTL) {
        None => Ok(None),
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|ttl| u64::from(*ttl) <= crate::config::MAX_TTL)
            .map(Some)
            .ok_or(v.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_engine_has_its_own_system_networks() {
        assert!(!Engine::Docker.is_user_defined("bridge"));
        assert!(!Engine::Docker.is_user_defined("docker_gwbridge"));
        assert!(
            Engine::Docker.is_user_defined("podman"),
            "a Docker network may be called podman"
        );
        assert!(!Engine::Podman.is_user_defined("podman"));
        assert!(!Engine::Podman.is_user_defined("bridge"));
        assert!(Engine::Podman.is_user_defined("natest"));
        assert!(Engine::Podman.asks_without_names("podman"));
        assert!(!Engine::Podman.asks_without_names("host"));
        assert!(Engine::Docker.asks_without_names("docker_gwbridge"));
    }

    #[test]
    fn the_engine_is_told_by_its_version_answer() {
        assert_eq!(
            Engine::from_version(Some("linux/amd64/debian-12"), ["Podman Engine", "Conmon"]),
            Engine::Podman
        );
        assert_eq!(
            Engine::from_version(
                Some("Docker Engine - Community"),
                ["Engine", "containerd", "runc"]
            ),
            Engine::Docker
        );
        assert_eq!(Engine::from_version(None, []), Engine::Docker);
    }

    #[test]
    fn ttl_labels_out_of_range_are_refused() {
        let labels = |v: &str| HashMap::from([(LABEL_TTL.to_string(), v.to_string())]);
        assert_eq!(ttl_from_labels(&labels("30")), Ok(Some(30)));
        assert_eq!(ttl_from_labels(&labels("-1")), Err("-1"));
        assert_eq!(ttl_from_labels(&labels("4294967295")), Err("4294967295"));
        assert_eq!(ttl_from_labels(&HashMap::new()), Ok(None));
    }
}
