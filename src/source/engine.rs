//! The engine's naming rules, in one place for every source that reads a Docker-API engine
//! (the Docker source against Docker or Podman, the Swarm source): the labels netalias reads,
//! the short ID an engine registers as a name, and which networks are the engine's own
//! plumbing, where it serves no names and neither does netalias.
//!
//! Chosen per engine from what the engine says it is (`GET /version`). Pure: no I/O, nothing
//! of the registry or of any source.

use std::collections::HashMap;

use crate::registry::{DEFAULT_SRV_WEIGHT, SrvPort};

/// Label that keeps a container (or a Swarm service) out of rotation.
pub const LABEL_EXCLUDE: &str = "netalias.exclude";
/// Label that sets the TTL of a container's (or a service's) records.
pub const LABEL_TTL: &str = "netalias.ttl";
/// Labels `netalias.srv.SERVICE=PORT[/tcp|/udp]` name a port as a service, served as SRV
/// `_SERVICE._PROTO.NAME`; several may be given.
pub const LABEL_SRV_PREFIX: &str = "netalias.srv.";
/// Label that sets the SRV weight of every port its owner offers (so `weight` is no service).
pub const LABEL_SRV_WEIGHT: &str = "netalias.srv.weight";
/// Label Swarm puts on every task container.
pub const LABEL_SWARM_TASK: &str = "com.docker.swarm.task.id";
/// Label naming further names a container (or a Swarm service) answers to, comma-separated:
/// `netalias.names=api.shop.test,*.shop.test`.
pub const LABEL_NAMES: &str = "netalias.names";
/// Labels compose puts on every container it creates: its project and its service.
pub const LABEL_COMPOSE_PROJECT: &str = "com.docker.compose.project";
pub const LABEL_COMPOSE_SERVICE: &str = "com.docker.compose.service";
/// Set to `True` on a container `compose run` started (a migration, a shell): not a replica.
pub const LABEL_COMPOSE_ONEOFF: &str = "com.docker.compose.oneoff";

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

/// `SERVICE.PROJECT` for a container compose created, so that two projects sharing a network
/// each reach their own `web` (what compose#8223 and #11257 ask for): every replica of the
/// service holds it, so it rotates over that service's replicas only. `None` when either
/// label is missing or is not one DNS label (letters, digits, `-`, `_`; 63 octets at most):
/// such a name could not be asked for, and would be warned about at every change; and for a
/// one-off container (`compose run`), which is no replica of the service and must not take
/// a share of its answers.
pub fn compose_name(labels: &HashMap<String, String>) -> Option<String> {
    if labels
        .get(LABEL_COMPOSE_ONEOFF)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        return None;
    }
    let label = |key| {
        labels
            .get(key)
            .map(String::as_str)
            .filter(|v: &&str| is_one_label(v))
    };
    let (project, service) = (label(LABEL_COMPOSE_PROJECT)?, label(LABEL_COMPOSE_SERVICE)?);
    Some(format!("{service}.{project}").to_ascii_lowercase())
}

/// The names a `netalias.names` label gives, lowercased, each a DNS name (several labels
/// allowed; `*.` first makes it a wildcard for every name below what follows), and the
/// entries that are not, for the caller to warn about.
pub fn names_from_labels(labels: &HashMap<String, String>) -> (Vec<String>, Vec<String>) {
    let mut names = Vec::new();
    let mut bad = Vec::new();
    for entry in labels
        .get(LABEL_NAMES)
        .into_iter()
        .flat_map(|v| v.split(','))
    {
        let entry = entry.trim().trim_end_matches('.');
        if entry.is_empty() {
            continue;
        }
        let plain = entry.strip_prefix("*.").unwrap_or(entry);
        let valid = plain.len() <= 253
            && plain
                .split('.')
                .all(|label| is_one_label(label) && !label.starts_with('-'));
        if valid {
            names.push(entry.to_ascii_lowercase());
        } else {
            bad.push(entry.to_string());
        }
    }
    names.sort();
    names.dedup();
    (names, bad)
}

fn is_one_label(text: &str) -> bool {
    (1..=63).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
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

/// Well-known ports and their IANA service names (the Service Name and Transport Protocol
/// Port Number Registry): a container that exposes one of these offers it as that service
/// without a label. src/README.md lists them (SRV records).
pub const WELL_KNOWN_PORTS: [(u16, &str); 19] = [
    (22, "ssh"),
    (25, "smtp"),
    (53, "domain"),
    (80, "http"),
    (110, "pop3"),
    (143, "imap"),
    (389, "ldap"),
    (443, "https"),
    (587, "submission"),
    (2379, "etcd-client"),
    (2380, "etcd-server"),
    (3306, "mysql"),
    (5432, "postgresql"),
    (5671, "amqps"),
    (5672, "amqp"),
    (6379, "redis"),
    (8080, "http-alt"),
    (11211, "memcache"),
    (27017, "mongodb"),
];

/// The IANA service name of a well-known port, if it is in [`WELL_KNOWN_PORTS`].
pub fn well_known_service(port: u16) -> Option<&'static str> {
    WELL_KNOWN_PORTS
        .binary_search_by_key(&port, |(p, _)| *p)
        .ok()
        .map(|i| WELL_KNOWN_PORTS[i].1)
}

/// The SRV weight labels set, or the default; `Err(value)` when the label is not a number.
fn srv_weight(labels: &HashMap<String, String>) -> Result<u16, &str> {
    match labels.get(LABEL_SRV_WEIGHT) {
        None => Ok(DEFAULT_SRV_WEIGHT),
        Some(v) => v.trim().parse().map_err(|_| v.as_str()),
    }
}

/// What the `netalias.srv.*` labels of a container or a service say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvLabels {
    /// The ports they name (`netalias.srv.SERVICE=PORT[/tcp|/udp]`), sorted.
    pub ports: Vec<SrvPort>,
    /// The weight they set (`netalias.srv.weight`), or the default: for every port the owner
    /// offers, from the labels or elsewhere (exposed ports, named ports).
    pub weight: u16,
    /// The labels that could not be read (label, value), for the caller to warn about or not.
    pub bad: Vec<(String, String)>,
}

/// Reads the `netalias.srv.*` labels.
pub fn srv_from_labels(labels: &HashMap<String, String>) -> SrvLabels {
    let mut bad = Vec::new();
    let weight = srv_weight(labels).unwrap_or_else(|value| {
        bad.push((LABEL_SRV_WEIGHT.to_string(), value.to_string()));
        DEFAULT_SRV_WEIGHT
    });
    let mut ports: Vec<SrvPort> = labels
        .iter()
        .filter(|(label, _)| label.as_str() != LABEL_SRV_WEIGHT)
        .filter_map(|(label, value)| {
            let service = label.strip_prefix(LABEL_SRV_PREFIX)?;
            let parsed = SrvPort::service_name(service)
                .zip(SrvPort::parse_port(value))
                .map(|(service, (port, proto))| SrvPort {
                    service,
                    proto,
                    port,
                    weight,
                });
            if parsed.is_none() {
                bad.push((label.clone(), value.clone()));
            }
            parsed
        })
        .collect();
    ports.sort();
    SrvLabels { ports, weight, bad }
}

/// Exposed ports (`80/tcp`) with a well-known service name, as service ports.
pub fn srv_from_exposed<'a>(
    exposed: impl IntoIterator<Item = &'a str>,
    weight: u16,
) -> Vec<SrvPort> {
    exposed
        .into_iter()
        .filter_map(|spec| {
            let (port, proto) = SrvPort::parse_port(spec)?;
            Some(SrvPort {
                service: well_known_service(port)?.to_string(),
                proto,
                port,
                weight,
            })
        })
        .collect()
}

/// Labels first, then exposed well-known ports for services the labels do not name.
pub fn merge_srv(mut labelled: Vec<SrvPort>, exposed: Vec<SrvPort>) -> Vec<SrvPort> {
    for port in exposed {
        if !labelled
            .iter()
            .any(|p| p.service == port.service && p.proto == port.proto)
        {
            labelled.push(port);
        }
    }
    labelled.sort();
    labelled
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::SrvProto;

    #[test]
    fn a_names_label_gives_names_and_wildcards_and_says_what_it_cannot_take() {
        let labels = HashMap::from([(
            LABEL_NAMES.to_string(),
            " API.shop.test, *.shop.test,,bad..name, -x.test, api.shop.test. ".to_string(),
        )]);
        let (names, bad) = names_from_labels(&labels);
        assert_eq!(names, vec!["*.shop.test", "api.shop.test"]);
        assert_eq!(bad, vec!["bad..name", "-x.test"]);
        assert_eq!(names_from_labels(&HashMap::new()), (vec![], vec![]));
    }

    #[test]
    fn compose_containers_also_answer_service_dot_project() {
        let labels = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let both = |project, service| {
            labels(&[
                (LABEL_COMPOSE_PROJECT, project),
                (LABEL_COMPOSE_SERVICE, service),
            ])
        };
        assert_eq!(compose_name(&both("shop", "web")), Some("web.shop".into()));
        // `compose run`: no replica, no share of the service's answers.
        let mut oneoff = both("shop", "web");
        oneoff.insert(LABEL_COMPOSE_ONEOFF.into(), "True".into());
        assert_eq!(compose_name(&oneoff), None);
        oneoff.insert(LABEL_COMPOSE_ONEOFF.into(), "False".into());
        assert_eq!(compose_name(&oneoff), Some("web.shop".into()));
        assert_eq!(
            compose_name(&both("My_Shop", "api-1")),
            Some("api-1.my_shop".into())
        );
        // Not one label each, or missing: no name.
        assert_eq!(compose_name(&both("shop", "web.v2")), None);
        assert_eq!(compose_name(&both("", "web")), None);
        assert_eq!(compose_name(&both(&"p".repeat(64), "web")), None);
        assert_eq!(
            compose_name(&labels(&[(LABEL_COMPOSE_PROJECT, "shop")])),
            None
        );
    }

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
    fn srv_labels_name_ports_and_bad_ones_are_reported() {
        let labels: HashMap<String, String> = [
            ("netalias.srv.http", "8080"),
            ("netalias.srv.dns", "53/udp"),
            ("netalias.srv.weight", "5"),
            ("netalias.srv.bad_name", "80"),
            ("netalias.srv.grpc", "70000"),
            ("other", "x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let SrvLabels { ports, bad, .. } = srv_from_labels(&labels);
        assert_eq!(
            ports,
            vec![
                SrvPort {
                    service: "dns".into(),
                    proto: SrvProto::Udp,
                    port: 53,
                    weight: 5
                },
                SrvPort {
                    service: "http".into(),
                    proto: SrvProto::Tcp,
                    port: 8080,
                    weight: 5
                },
            ]
        );
        assert_eq!(bad.len(), 2, "{bad:?}");
    }

    #[test]
    fn exposed_well_known_ports_are_services_unless_a_label_names_them() {
        assert!(
            WELL_KNOWN_PORTS.windows(2).all(|w| w[0].0 < w[1].0),
            "sorted"
        );
        let exposed = srv_from_exposed(["80/tcp", "5432/tcp", "9999/tcp", "53/udp"], 1);
        let names: Vec<&str> = exposed.iter().map(|p| p.service.as_str()).collect();
        assert_eq!(names, ["http", "postgresql", "domain"]);
        let labelled = vec![SrvPort {
            service: "http".into(),
            proto: SrvProto::Tcp,
            port: 8080,
            weight: 1,
        }];
        let merged = merge_srv(labelled, exposed);
        let http: Vec<u16> = merged
            .iter()
            .filter(|p| p.service == "http")
            .map(|p| p.port)
            .collect();
        assert_eq!(http, [8080], "the label wins over the exposed port");
        assert_eq!(merged.len(), 3);
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
