//! From what the engine says about a container to the endpoints it has, as Docker names them,
//! and about a network to the bridge whose gateway netalias can listen on.
//!
//! Pure: takes an inspect response, returns `Endpoint`s (or a `Bridge`). It decides which names
//! an endpoint answers to and whether it is in rotation (running, not paused, healthy, not
//! excluded); which networks count is the engine's rule (`source::engine`). It never calls
//! the engine.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use bollard::models::{
    ContainerInspectResponse, EndpointSettings, HealthStatusEnum, Ipam, Network, NetworkInspect,
};
use ipnet::IpNet;
use tracing::warn;

use crate::{
    registry::{Endpoint, NameOrigin, NameOrigins, SrvPort},
    source::{
        bridge::Bridge,
        engine::{
            Engine, LABEL_NAMES, LABEL_SWARM_TASK, LABEL_TTL, compose_name, excluded_by_label,
            merge_srv, names_from_labels, short_id, srv_from_exposed, srv_from_labels,
            ttl_from_labels,
        },
    },
};

/// The network option naming a bridge's host interface; without it Docker names the
/// interface `br-` and the first 12 characters of the network ID.
const BRIDGE_NAME_OPTION: &str = "com.docker.network.bridge.name";
/// The option the engine sets on its default bridge.
const DEFAULT_BRIDGE_OPTION: &str = "com.docker.network.bridge.default_bridge";

/// The parts of a network (listed or inspected: bollard has a type for each) that say
/// whether and where it has a bridge gateway.
#[derive(Debug, Clone, Copy)]
pub struct NetworkFacts<'a> {
    pub name: &'a str,
    pub id: Option<&'a str>,
    pub driver: Option<&'a str>,
    pub options: Option<&'a HashMap<String, String>>,
    pub ipam: Option<&'a Ipam>,
}

impl<'a> NetworkFacts<'a> {
    pub fn of_listed(n: &'a Network) -> Option<NetworkFacts<'a>> {
        Some(NetworkFacts {
            name: n.name.as_deref()?,
            id: n.id.as_deref(),
            driver: n.driver.as_deref(),
            options: n.options.as_ref(),
            ipam: n.ipam.as_ref(),
        })
    }

    pub fn of_inspected(n: &'a NetworkInspect) -> Option<NetworkFacts<'a>> {
        Some(NetworkFacts {
            name: n.name.as_deref()?,
            id: n.id.as_deref(),
            driver: n.driver.as_deref(),
            options: n.options.as_ref(),
            ipam: n.ipam.as_ref(),
        })
    }
}

/// The host's addresses on a user-defined bridge network, which the host name answers its
/// containers with: each subnet's gateway as the engine's IPAM names it, else the subnet's
/// first host (where Docker puts a gateway it was not given). None for other drivers (an
/// overlay's gateway is no address of this host) and for internal networks (the host is not
/// reachable there).
pub fn gateways_of(network: NetworkFacts<'_>, internal: bool, engine: Engine) -> Vec<IpAddr> {
    if network.driver != Some("bridge") || internal || !engine.is_user_defined(network.name) {
        return Vec::new();
    }
    ipam_subnets(network)
        .into_iter()
        .filter_map(|(subnet, gateway)| gateway.or_else(|| subnet.hosts().next()))
        .collect()
}

/// A network's subnets as its IPAM config lists them, each with the gateway it names when
/// that is inside the subnet.
fn ipam_subnets(network: NetworkFacts<'_>) -> Vec<(IpNet, Option<IpAddr>)> {
    network
        .ipam
        .and_then(|i| i.config.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let subnet: IpNet = c.subnet.as_deref()?.parse().ok()?;
            let gateway = c
                .gateway
                .as_deref()
                .and_then(|g| g.parse::<IpAddr>().ok())
                .filter(|g| subnet.contains(g));
            Some((subnet, gateway))
        })
        .collect()
}

/// Why a network gets no gateway listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoBridge {
    /// Not the bridge driver (overlay, macvlan, host, none): nothing to listen on. Not logged.
    NotABridge,
    /// The default bridge, without `--attach-default-bridge`.
    DefaultBridge,
    /// Swarm's `docker_gwbridge`: plumbing, not a network containers are named on.
    SystemBridge,
    /// The engine lists no subnet for it.
    NoSubnet,
}

impl NoBridge {
    pub fn reason(self) -> &'static str {
        match self {
            NoBridge::NotABridge => "not a bridge network",
            NoBridge::DefaultBridge => {
                "the default bridge; --attach-default-bridge (docker.attach_default_bridge) listens there too"
            }
            NoBridge::SystemBridge => "a system bridge (Swarm's docker_gwbridge)",
            NoBridge::NoSubnet => "the engine lists no subnet for it",
        }
    }
}

/// A bridge network as a [`Bridge`] to listen on, or why not. The default bridge counts only
/// with `attach_default`.
pub fn bridge_of(
    network: NetworkFacts<'_>,
    attach_default: bool,
    engine: Engine,
) -> Result<Bridge, NoBridge> {
    if network.driver != Some("bridge") {
        return Err(NoBridge::NotABridge);
    }
    let default = network.name == "bridge"
        || network
            .options
            .and_then(|o| o.get(DEFAULT_BRIDGE_OPTION))
            .is_some_and(|v| v == "true");
    if default {
        if !attach_default {
            return Err(NoBridge::DefaultBridge);
        }
    } else if !engine.is_user_defined(network.name) {
        return Err(NoBridge::SystemBridge);
    }
    let interface = network
        .options
        .and_then(|o| o.get(BRIDGE_NAME_OPTION))
        .cloned()
        .or_else(|| Some(format!("br-{}", short_id(network.id?))))
        .unwrap_or_default();
    let subnets = ipam_subnets(network);
    if subnets.is_empty() {
        return Err(NoBridge::NoSubnet);
    }
    Ok(Bridge {
        network: network.name.to_string(),
        interface,
        default,
        subnets,
    })
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Policy {
    /// Keep containers whose healthcheck fails (or has not passed yet) in rotation.
    pub include_unhealthy: bool,
    /// Leave Swarm task containers to the Swarm source, which names them as Swarm does.
    pub skip_swarm_tasks: bool,
    /// Whose naming rules apply; the source sets it from the engine's `GET /version`.
    pub engine: Engine,
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
    let out = out_of_rotation(c, policy);
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
    let srv = srv_of(c, &name);
    let compose = labels.and_then(compose_name);
    let (named, bad) = labels.map(names_from_labels).unwrap_or_default();
    if !bad.is_empty() {
        warn!(container = %name, ?bad, "label {LABEL_NAMES}: not DNS names; ignored");
    }

    let networks = c
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref());
    let mut endpoints: Vec<Endpoint> = networks
        .into_iter()
        .flatten()
        .filter(|(network, _)| policy.engine.is_user_defined(network))
        .filter_map(|(network, ep)| {
            let (ipv4, ipv6) = addresses_on(ep);
            if ipv4.is_none() && ipv6.is_none() {
                return None;
            }
            let mut aliases: Vec<String> = ep.aliases.clone().unwrap_or_default();
            aliases.extend(ep.dns_names.clone().unwrap_or_default());
            aliases.push(short_id(id).to_string());
            aliases.extend(hostname.clone());
            // Every name before the compose and label names is the container's or an alias.
            let plain = 1 + aliases.len();
            aliases.extend(compose.clone());
            aliases.extend(named.iter().cloned());
            let mut origins = NameOrigins::default();
            for at in plain..plain + usize::from(compose.is_some()) {
                origins.set(at, NameOrigin::Compose);
            }
            for at in plain + usize::from(compose.is_some())..1 + aliases.len() {
                origins.set(at, NameOrigin::Label);
            }
            Some(Endpoint {
                network: network.clone(),
                container: id.to_string(),
                name: name.clone(),
                aliases,
                ipv4,
                ipv6,
                ttl,
                out_of_rotation: out,
                srv: srv.clone(),
                origins,
            })
        })
        .collect();
    endpoints.sort_by(|a, b| a.network.cmp(&b.network));
    endpoints
}

/// What a container read when it was created (not yet started) will be once the engine has
/// connected it to `network` with `addresses`: running, its health check (if it has one)
/// `starting`, and those addresses on that network. The engine connects a container to its
/// networks before its process starts, and a container inspect then waits on the start; so
/// the event path publishes from this (the same translation, [`endpoints_of`]) at `network
/// connect`, and the container's own inspect after `start` corrects whatever differs.
pub fn as_started(
    created: &ContainerInspectResponse,
    network: &str,
    addresses: &[IpAddr],
) -> ContainerInspectResponse {
    let mut started = created.clone();
    let has_healthcheck = started
        .config
        .as_ref()
        .and_then(|c| c.healthcheck.as_ref())
        .and_then(|h| h.test.as_ref())
        .is_some_and(|test| !test.is_empty() && test[0] != "NONE");
    let state = started.state.get_or_insert_with(Default::default);
    state.running = Some(true);
    state.restarting = Some(false);
    state.paused = Some(false);
    state.status = Some(bollard::models::ContainerStateStatusEnum::RUNNING);
    state.health = has_healthcheck.then(|| bollard::models::Health {
        status: Some(HealthStatusEnum::STARTING),
        ..Default::default()
    });
    let endpoint = started
        .network_settings
        .get_or_insert_with(Default::default)
        .networks
        .get_or_insert_with(Default::default)
        .entry(network.to_string())
        .or_default();
    for ip in addresses {
        match ip {
            IpAddr::V4(v4) => endpoint.ip_address = Some(v4.to_string()),
            IpAddr::V6(v6) => endpoint.global_ipv6_address = Some(v6.to_string()),
        }
    }
    started
}

/// The service ports a container offers: its `netalias.srv.*` labels, then its exposed ports
/// that have a well-known service name (`EXPOSE 80` → `http`) and that no label names.
fn srv_of(c: &ContainerInspectResponse, name: &str) -> Vec<SrvPort> {
    let config = c.config.as_ref();
    let no_labels = HashMap::new();
    let labels = config
        .and_then(|cfg| cfg.labels.as_ref())
        .unwrap_or(&no_labels);
    let from_labels = srv_from_labels(labels);
    for (label, value) in &from_labels.bad {
        warn!(container = %name, %label, %value, "SRV label ignored: want netalias.srv.SERVICE=PORT[/tcp|/udp] (a service name of 1 to 15 letters, digits and hyphens) or netalias.srv.weight=N");
    }
    let exposed = config
        .and_then(|cfg| cfg.exposed_ports.as_ref())
        .into_iter()
        .flatten()
        .map(String::as_str);
    let exposed = srv_from_exposed(exposed, from_labels.weight);
    merge_srv(from_labels.ports, exposed)
}

/// A container's IPv4 and IPv6 address on one network, as the engine reports them.
fn addresses_on(ep: &EndpointSettings) -> (Option<Ipv4Addr>, Option<Ipv6Addr>) {
    let ipv4 = ep.ip_address.as_deref().and_then(|s| s.parse().ok());
    let ipv6 = ep
        .global_ipv6_address
        .as_deref()
        .and_then(|s| s.parse().ok());
    (ipv4, ipv6)
}

/// The addresses a running container also asks from on networks where it has no names (the
/// default bridge; Swarm's `docker_gwbridge`, which a task's inspect does not list, so the
/// caller passes it from the network's own inspect), keyed as its endpoints are (a Swarm
/// task's as the Swarm source keys it). `None` when it is not running or has none.
pub fn asker_addresses_of(
    c: &ContainerInspectResponse,
    gwbridge: Option<IpAddr>,
    engine: Engine,
) -> Option<(String, Vec<IpAddr>)> {
    let id = c.id.as_deref()?;
    let state = c.state.as_ref()?;
    if state.running != Some(true) || state.restarting == Some(true) {
        return None;
    }
    let addresses: Vec<IpAddr> = c
        .network_settings
        .as_ref()?
        .networks
        .as_ref()?
        .iter()
        .filter(|(network, _)| engine.asks_without_names(network))
        .flat_map(|(_, ep)| {
            let (v4, v6) = addresses_on(ep);
            v4.map(IpAddr::V4).into_iter().chain(v6.map(IpAddr::V6))
        })
        .chain(gwbridge)
        .collect();
    if addresses.is_empty() {
        return None;
    }
    let task = c
        .config
        .as_ref()
        .and_then(|cfg| cfg.labels.as_ref())
        .and_then(|l| l.get(LABEL_SWARM_TASK));
    let key = match task {
        Some(task) => format!("{}{task}", crate::source::SWARM_TASK_KEY),
        None => id.to_string(),
    };
    Some((key, addresses))
}

/// A one-line description of why a container is (not) served, for logs.
pub fn describe(c: &ContainerInspectResponse, policy: Policy) -> &'static str {
    out_of_rotation(c, policy).unwrap_or("in rotation")
}

#[cfg(test)]
mod tests {

    mod bridges {
        use super::super::*;

        fn facts<'a>(
            name: &'a str,
            driver: &'a str,
            ipam: &'a Ipam,
            options: &'a HashMap<String, String>,
        ) -> NetworkFacts<'a> {
            NetworkFacts {
                name,
                id: Some("b8c2dab17884c62a2ef0fff864cd9adc"),
                driver: Some(driver),
                options: Some(options),
                ipam: Some(ipam),
            }
        }

        fn ipam(configs: &[(&str, Option<&str>)]) -> Ipam {
            Ipam {
                config: Some(
                    configs
                        .iter()
                        .map(|(s, g)| bollard::models::IpamConfig {
                            subnet: Some(s.to_string()),
                            gateway: g.map(str::to_string),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }
        }

        #[test]
        fn a_subnet_only_network_is_a_bridge_without_an_ipam_gateway() {
            let none = HashMap::new();
            let i = ipam(&[("10.231.0.0/24", None), ("fd00:231::/64", None)]);
            let b = bridge_of(facts("mynet", "bridge", &i, &none), false, Engine::Docker)
                .expect("a bridge");
            assert_eq!(b.interface, "br-b8c2dab17884");
            assert_eq!(b.subnets.len(), 2);
            assert!(b.subnets.iter().all(|(_, g)| g.is_none()));
        }

        #[test]
        fn default_system_and_other_drivers_are_skipped_with_a_reason() {
            let named = HashMap::from([(BRIDGE_NAME_OPTION.to_string(), "docker0".to_string())]);
            let i = ipam(&[("172.17.0.0/16", None)]);
            assert_eq!(
                bridge_of(facts("bridge", "bridge", &i, &named), false, Engine::Docker),
                Err(NoBridge::DefaultBridge)
            );
            let b = bridge_of(facts("bridge", "bridge", &i, &named), true, Engine::Docker)
                .expect("attached");
            assert_eq!(b.interface, "docker0");
            assert_eq!(
                bridge_of(
                    facts("docker_gwbridge", "bridge", &i, &named),
                    true,
                    Engine::Docker
                ),
                Err(NoBridge::SystemBridge)
            );
            assert_eq!(
                bridge_of(facts("ov", "overlay", &i, &named), true, Engine::Docker),
                Err(NoBridge::NotABridge)
            );
            let empty = ipam(&[]);
            assert_eq!(
                bridge_of(facts("x", "bridge", &empty, &named), true, Engine::Docker),
                Err(NoBridge::NoSubnet)
            );
        }
    }
    use std::collections::HashMap;

    use bollard::models::{
        ContainerConfig, ContainerState, EndpointSettings, Health, NetworkSettings,
    };

    use super::*;
    use crate::source::engine::LABEL_EXCLUDE;

    /// `web1` on the network `front` (10.1.0.2), with `labels`.
    pub(super) fn labelled(labels: HashMap<String, String>) -> ContainerInspectResponse {
        let mut c = container(&[("front", "10.1.0.2")]);
        if let Some(cfg) = c.config.as_mut() {
            cfg.labels = Some(labels);
        }
        c
    }

    pub(super) fn container(networks: &[(&str, &str)]) -> ContainerInspectResponse {
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
        assert!(ep.in_rotation());
    }

    #[test]
    fn a_created_container_connected_to_its_networks_answers_as_it_will_once_started() {
        // As inspected right after `create`: not running, no addresses yet.
        let mut created = container(&[("front", ""), ("back", "")]);
        if let Some(s) = created.state.as_mut() {
            s.running = Some(false);
        }
        assert!(endpoints_of(&created, Policy::default()).is_empty());
        let front = as_started(&created, "front", &["10.1.0.2".parse().unwrap()]);
        let eps = endpoints_of(&front, Policy::default());
        assert_eq!(eps.len(), 1, "only the network connected so far");
        assert_eq!(eps[0].ipv4, Some(Ipv4Addr::new(10, 1, 0, 2)));
        let names: Vec<&str> = eps[0].names().collect();
        assert_eq!(names, ["web1", "app", "0123456789ab", "webhost"]);
        assert!(eps[0].in_rotation());
        // Connects accumulate on the started copy.
        let both = as_started(&front, "back", &["10.2.0.2".parse().unwrap()]);
        assert_eq!(endpoints_of(&both, Policy::default()).len(), 2);

        // A health check keeps it out of rotation until the engine says healthy; "NONE"
        // (the image's check turned off) does not.
        for (test, in_rotation) in [(vec!["CMD-SHELL", "true"], false), (vec!["NONE"], true)] {
            let mut checked = created.clone();
            if let Some(cfg) = checked.config.as_mut() {
                cfg.healthcheck = Some(bollard::models::HealthConfig {
                    test: Some(test.iter().map(|t| t.to_string()).collect()),
                    ..Default::default()
                });
            }
            let started = as_started(&checked, "front", &["10.1.0.2".parse().unwrap()]);
            assert_eq!(
                endpoints_of(&started, Policy::default())[0].in_rotation(),
                in_rotation,
                "{test:?}"
            );
        }
    }

    #[test]
    fn stopped_has_no_endpoints_and_paused_is_out_of_rotation() {
        let mut c = container(&[("front", "10.1.0.2")]);
        if let Some(s) = c.state.as_mut() {
            s.paused = Some(true);
        }
        assert!(!endpoints_of(&c, Policy::default())[0].in_rotation());
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
                endpoints_of(&c, Policy::default())[0].in_rotation(),
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
                .in_rotation()
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
        assert!(!endpoints_of(&c, Policy::default())[0].in_rotation());
    }
}

/// Issue 28 item 7: where each name comes from, from the labels through the registry to what
/// `explain` and `/records` say.
#[cfg(test)]
mod origins {
    use std::{collections::HashMap, net::IpAddr, str::FromStr};

    use hickory_server::proto::rr::LowerName;

    use super::{Policy, endpoints_of, tests::labelled};
    use crate::{
        config::Config,
        registry::{Change, NameKey, NameOrigin, Owner, Registry},
        source::static_file::StaticSource,
        telemetry::explain,
    };

    fn key(name: &str) -> NameKey {
        NameKey::new(&LowerName::from_str(name).expect("name"))
    }

    #[test]
    fn labels_and_compose_give_names_their_origin() {
        let c = labelled(HashMap::from([
            ("com.docker.compose.project".into(), "shop".into()),
            ("com.docker.compose.service".into(), "web".into()),
            ("netalias.names".into(), "api.shop.test,*.wild.test".into()),
        ]));
        let eps = endpoints_of(&c, Policy::default());
        let ep = &eps[0];
        for (name, origin) in [
            ("web1.", NameOrigin::Container),
            ("app.", NameOrigin::Alias),
            ("webhost.", NameOrigin::Alias),
            ("0123456789ab.", NameOrigin::Alias),
            ("web.shop.", NameOrigin::Compose),
            ("api.shop.test.", NameOrigin::Label),
            ("*.wild.test.", NameOrigin::Label),
        ] {
            assert_eq!(ep.origin_of(key(name).as_bytes()), Some(origin), "{name}");
        }
        assert_eq!(ep.origin_of(key("other.").as_bytes()), None);
    }

    #[test]
    fn explain_and_records_say_where_each_name_comes_from() {
        let registry = Registry::new(Some("docker")).expect("registry");
        let c = labelled(HashMap::from([
            ("com.docker.compose.project".into(), "shop".into()),
            ("com.docker.compose.service".into(), "web".into()),
            ("netalias.names".into(), "api.shop.test,*.wild.test".into()),
        ]));
        let owner = Owner("docker");
        for ep in endpoints_of(&c, Policy::default()) {
            registry.apply(owner, Change::EndpointUp(ep));
        }
        let config = Config::parse(
            "[networks.front]\n[[networks.front.endpoints]]\nname = \"db\"\nipv4 = \"10.1.0.9\"\n[networks.front.records.cname]\n\"www.shop.test\" = \"api.shop.test\"\n[networks.front.records.txt]\n\"info.shop.test\" = [\"v=1\"]\n",
            "o.toml",
        )
        .expect("config");
        StaticSource::default().sync(&config, &registry);
        let host = IpAddr::from([127, 0, 0, 1]);
        let explain = |name: &str| {
            let lower = LowerName::from_str(name).expect("name");
            explain::lines(name, &registry.describe(&lower, host, false)).join("\n")
        };
        for (name, says) in [
            ("api.shop.test.", "from docker (label)"),
            ("web.shop.", "from docker (compose)"),
            ("web1.", "from docker (container name)"),
            ("app.", "from docker (alias)"),
            ("db.", "from static (config)"),
            (
                "www.shop.test.",
                "CNAME api.shop.test (from static (CNAME))",
            ),
            ("info.shop.test.", "TXT \"v=1\" (from static (config))"),
            ("x.wild.test.", "name from: label, wildcard"),
            ("www.shop.test.", "name from: CNAME"),
        ] {
            let text = explain(name);
            assert!(text.contains(says), "{name}: {says}\n{text}");
        }
        let records = registry.records();
        let front = &records["front"];
        for (name, says) in [
            ("api.shop.test", "10.1.0.2 (from label)"),
            ("web.shop", "10.1.0.2 (from compose)"),
            ("web1", "10.1.0.2 (from container name)"),
            ("db", "10.1.0.9 (from config)"),
            ("*.wild.test", "10.1.0.2 (from label, wildcard)"),
            ("www.shop.test", "CNAME api.shop.test. (from CNAME)"),
            ("info.shop.test", "TXT \"v=1\" (from config)"),
        ] {
            assert!(
                front[name].iter().any(|m| m == says),
                "{name}: {says}: {:?}",
                front.get(name)
            );
        }
    }
}
