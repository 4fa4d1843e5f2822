//! From the Swarm manager's services and tasks to endpoints, as Swarm names them.
//!
//! Pure: takes what the manager said, returns the endpoints netalias serves on each overlay
//! network. It decides the names (`SERVICE`, `tasks.SERVICE`, aliases, task names), the
//! addresses (the virtual IP in `vip` mode, the tasks' own in `dnsrr`) and who is in rotation
//! (running tasks whose desired state is running). It never calls the engine.

use std::{
    collections::{BTreeMap, HashMap},
    net::IpAddr,
};

use ipnet::IpNet;
use serde::Deserialize;

use crate::{
    registry::{Endpoint, NameOrigin, NameOrigins, SrvPort, SrvProto},
    source::{
        engine::{
            Engine, excluded_by_label, merge_srv, names_from_labels, short_id, srv_from_labels,
            ttl_from_labels,
        },
        tracked::EndpointKey,
    },
};

/// Swarm mode is Docker's alone, so Docker's naming rules apply (`ingress`, `docker_gwbridge`).
const RULES: Engine = Engine::Docker;

/// The asker key of a service's virtual IP: never a client, but one key per service.
const SERVICE_KEY: &str = "swarm-service:";
/// The asker key of a task, the same on every network it is attached to.
use crate::source::SWARM_TASK_KEY as TASK_KEY;

/// A service as the translation needs it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceView {
    pub id: String,
    pub name: String,
    /// `dnsrr`: the name answers with the tasks' addresses. Otherwise the virtual IP's.
    pub dnsrr: bool,
    /// Network ID or name → aliases on it.
    pub aliases: HashMap<String, Vec<String>>,
    /// (network ID, virtual IP) in `vip` mode.
    pub virtual_ips: Vec<(String, IpAddr)>,
    pub labels: HashMap<String, String>,
    /// The service ports its tasks (and its VIP) offer, served as SRV.
    pub srv: Vec<SrvPort>,
}

/// A service's service ports: its `netalias.srv.*` labels, then its named ports (a port
/// named `web` is `_web._PROTO`) that no label names. Unreadable labels and port names that
/// are not service names are left out quietly: this runs on every refresh.
pub fn service_srv(
    labels: &HashMap<String, String>,
    named_ports: Vec<(String, SrvProto, u16)>,
) -> Vec<SrvPort> {
    let from_labels = srv_from_labels(labels);
    let weight = from_labels.weight;
    let named = named_ports
        .into_iter()
        .filter_map(|(name, proto, port)| {
            Some(SrvPort {
                service: SrvPort::service_name(&name)?,
                proto,
                port,
                weight,
            })
        })
        .collect();
    merge_srv(from_labels.ports, named)
}

/// `GET /tasks` as the manager sends it. bollard's `Task` model has no `NetworksAttachments`,
/// which is where a task's addresses are, so this module reads its own (serde, fields it needs).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Task {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "ServiceID", default)]
    pub service_id: String,
    #[serde(default)]
    pub slot: Option<u64>,
    #[serde(rename = "NodeID", default)]
    pub node_id: Option<String>,
    #[serde(default)]
    pub status: TaskStatus,
    #[serde(default)]
    pub desired_state: String,
    #[serde(default)]
    pub networks_attachments: Vec<NetworkAttachment>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct TaskStatus {
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub container_status: Option<ContainerStatus>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerStatus {
    #[serde(rename = "ContainerID", default)]
    pub container_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkAttachment {
    #[serde(default)]
    pub network: AttachedNetwork,
    /// CIDR forms: "10.0.1.5/24".
    #[serde(default)]
    pub addresses: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct AttachedNetwork {
    #[serde(rename = "ID", default)]
    pub id: String,
    #[serde(default)]
    pub spec: AttachedNetworkSpec,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct AttachedNetworkSpec {
    #[serde(default)]
    pub name: String,
}

impl Task {
    /// Serving: the manager wants it running and it is. A task being shut down has its
    /// desired state changed first, so it leaves rotation before its container stops.
    /// Why it is not handed out, if it is not: it is not running (yet, or any more).
    pub fn out_of_rotation(&self) -> Option<&'static str> {
        if self.desired_state != "running" {
            Some("task shutting down")
        } else if self.status.state != "running" {
            Some("task not running yet")
        } else {
            None
        }
    }

    /// Whether it is worth keeping as an endpoint (an asker and a PTR) at all.
    pub fn is_live(&self) -> bool {
        self.desired_state == "running"
            && matches!(
                self.status.state.as_str(),
                "assigned" | "accepted" | "preparing" | "ready" | "starting" | "running"
            )
    }

    /// As Swarm names the container: `SERVICE.SLOT.ID`, or `SERVICE.NODE.ID` for global services.
    pub fn name(&self, service: &str) -> String {
        match (self.slot, self.node_id.as_deref()) {
            (Some(slot), _) if slot > 0 => format!("{service}.{slot}.{}", self.id),
            (_, Some(node)) => format!("{service}.{node}.{}", self.id),
            _ => format!("{service}.{}", self.id),
        }
    }
}

/// The first address of a CIDR form, or of a bare address.
pub fn address_of(cidr: &str) -> Option<IpAddr> {
    cidr.parse::<IpNet>()
        .map(|n| n.addr())
        .or_else(|_| cidr.parse::<IpAddr>())
        .ok()
}

/// Everything the manager said, reduced to what naming needs.
#[derive(Debug, Clone, Default)]
pub struct SwarmState {
    /// Overlay network ID → name.
    pub networks: BTreeMap<String, String>,
    pub services: Vec<ServiceView>,
    pub tasks: Vec<Task>,
}

impl SwarmState {
    fn network_name<'a>(&'a self, id_or_name: &'a str) -> &'a str {
        self.networks
            .get(id_or_name)
            .map_or(id_or_name, String::as_str)
    }

    /// The overlay networks Swarm names are served on.
    pub fn network_names(&self) -> impl Iterator<Item = &str> {
        self.networks
            .values()
            .map(String::as_str)
            .filter(|n| RULES.is_user_defined(n))
    }

    /// Every endpoint, keyed as the tracked state keys them.
    pub fn endpoints(&self) -> BTreeMap<EndpointKey, Endpoint> {
        let mut out = BTreeMap::new();
        // Excluded services have neither tasks nor a VIP served.
        let services: HashMap<&str, &ServiceView> = self
            .services
            .iter()
            .filter(|s| !excluded_by_label(&s.labels))
            .map(|s| (s.id.as_str(), s))
            .collect();
        // (service, network) pairs with at least one task in rotation: a VIP with no backend
        // there would take connections nobody accepts.
        let mut serving: HashMap<(&str, &str), usize> = HashMap::new();

        for task in self.tasks.iter().filter(|t| t.is_live()) {
            let Some(service) = services.get(task.service_id.as_str()) else {
                continue;
            };
            let name = task.name(&service.name);
            // A bad value is ignored quietly here: this runs on every refresh.
            let ttl = ttl_from_labels(&service.labels).unwrap_or(None);
            for attachment in &task.networks_attachments {
                let network = if attachment.network.spec.name.is_empty() {
                    self.network_name(&attachment.network.id)
                } else {
                    attachment.network.spec.name.as_str()
                };
                if !RULES.is_user_defined(network) {
                    continue;
                }
                let (ipv4, ipv6) =
                    first_of_each_family(attachment.addresses.iter().filter_map(|a| address_of(a)));
                if ipv4.is_none() && ipv6.is_none() {
                    continue;
                }
                let aliases_here = service.aliases_on(&attachment.network.id, network);
                let mut aliases = vec![format!("tasks.{}", service.name)];
                aliases.extend(aliases_here.iter().map(|a| format!("tasks.{a}")));
                let mut labelled = 0..0;
                if service.dnsrr {
                    aliases.push(service.name.clone());
                    aliases.extend(aliases_here.iter().cloned());
                    let start = aliases.len();
                    aliases.extend(names_from_labels(&service.labels).0);
                    labelled = start..aliases.len();
                }
                if let Some(container) = task
                    .status
                    .container_status
                    .as_ref()
                    .and_then(|c| c.container_id.as_deref())
                {
                    aliases.push(short_id(container).to_string());
                }
                let out_of_rotation = task.out_of_rotation();
                if out_of_rotation.is_none() {
                    *serving
                        .entry((service.id.as_str(), attachment.network.id.as_str()))
                        .or_default() += 1;
                }
                let container = format!("{TASK_KEY}{}", task.id);
                out.insert(
                    (network.to_string(), container.clone()),
                    Endpoint {
                        network: network.to_string(),
                        container,
                        name: name.clone(),
                        aliases,
                        ipv4,
                        ipv6,
                        ttl,
                        out_of_rotation,
                        srv: service.srv.clone(),
                        origins: label_origins(labelled),
                    },
                );
            }
        }

        for service in services.values().filter(|s| !s.dnsrr) {
            let ttl = ttl_from_labels(&service.labels).unwrap_or(None);
            let mut by_network: BTreeMap<&str, Vec<IpAddr>> = BTreeMap::new();
            for (network_id, vip) in &service.virtual_ips {
                by_network.entry(network_id).or_default().push(*vip);
            }
            for (network_id, vips) in by_network {
                let network = self.network_name(network_id);
                if !RULES.is_user_defined(network) || !self.networks.contains_key(network_id) {
                    continue;
                }
                let (ipv4, ipv6) = first_of_each_family(vips.into_iter());
                let container = format!("{SERVICE_KEY}{}", service.id);
                let mut aliases = service.aliases_on(network_id, network).to_vec();
                let start = aliases.len();
                aliases.extend(names_from_labels(&service.labels).0);
                let origins = label_origins(start..aliases.len());
                out.insert(
                    (network.to_string(), container.clone()),
                    Endpoint {
                        network: network.to_string(),
                        container,
                        name: service.name.clone(),
                        aliases: aliases.clone(),
                        ipv4,
                        ipv6,
                        ttl,
                        out_of_rotation: (!serving
                            .contains_key(&(service.id.as_str(), network_id)))
                        .then_some("no task of the service is running there"),
                        srv: service.srv.clone(),
                        origins,
                    },
                );
            }
        }
        out
    }
}

/// The origins of an endpoint's names whose aliases `labelled` came from a `netalias.names`
/// label (the rest are the service's or task's name and aliases).
fn label_origins(labelled: std::ops::Range<usize>) -> NameOrigins {
    let mut origins = NameOrigins::default();
    for alias in labelled {
        origins.set(1 + alias, NameOrigin::Label);
    }
    origins
}

impl ServiceView {
    /// Aliases on a network; the service spec may name it by ID or by name.
    fn aliases_on(&self, network_id: &str, network_name: &str) -> &[String] {
        self.aliases
            .get(network_id)
            .or_else(|| self.aliases.get(network_name))
            .map_or(&[], Vec::as_slice)
    }
}

/// The first IPv4 and the first IPv6 address among `addresses`.
fn first_of_each_family(
    addresses: impl Iterator<Item = IpAddr>,
) -> (Option<std::net::Ipv4Addr>, Option<std::net::Ipv6Addr>) {
    let (mut v4, mut v6) = (None, None);
    for address in addresses {
        match address {
            IpAddr::V4(a) => {
                v4.get_or_insert(a);
            }
            IpAddr::V6(a) => {
                v6.get_or_insert(a);
            }
        }
    }
    (v4, v6)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::source::engine::{LABEL_EXCLUDE, LABEL_TTL};

    fn task(id: &str, service: &str, slot: u64, state: &str, desired: &str, ip: &str) -> Task {
        Task {
            id: id.into(),
            service_id: service.into(),
            slot: Some(slot),
            node_id: Some("node1".into()),
            status: TaskStatus {
                state: state.into(),
                container_status: Some(ContainerStatus {
                    container_id: Some(format!("{id}0123456789abcdef")),
                }),
            },
            desired_state: desired.into(),
            networks_attachments: vec![NetworkAttachment {
                network: AttachedNetwork {
                    id: "netid".into(),
                    spec: AttachedNetworkSpec { name: "ov".into() },
                },
                addresses: vec![format!("{ip}/24")],
            }],
        }
    }

    #[test]
    fn a_services_named_ports_and_srv_labels_go_with_its_vip_and_its_tasks() {
        let endpoints = state(false).endpoints();
        let offered: Vec<Vec<(String, u16)>> = endpoints
            .values()
            .map(|e| e.srv.iter().map(|p| (p.service.clone(), p.port)).collect())
            .collect();
        assert!(!offered.is_empty());
        for ports in offered {
            assert_eq!(
                ports,
                [("metrics".to_string(), 9100), ("web".to_string(), 80)],
                "a port name that is not a service name is left out"
            );
        }
    }

    fn state(dnsrr: bool) -> SwarmState {
        SwarmState {
            networks: BTreeMap::from([
                ("netid".to_string(), "ov".to_string()),
                ("ingid".to_string(), "ingress".to_string()),
            ]),
            services: vec![ServiceView {
                id: "svc".into(),
                name: "web".into(),
                dnsrr,
                aliases: HashMap::from([("netid".to_string(), vec!["front".to_string()])]),
                virtual_ips: vec![
                    ("netid".into(), "10.0.9.2".parse().expect("ip")),
                    ("ingid".into(), "10.255.0.5".parse().expect("ip")),
                ],
                labels: HashMap::new(),
                srv: service_srv(
                    &HashMap::from([("netalias.srv.metrics".to_string(), "9100".to_string())]),
                    vec![
                        ("web".into(), SrvProto::Tcp, 80),
                        ("Bad_Name".into(), SrvProto::Tcp, 81),
                    ],
                ),
            }],
            tasks: vec![
                task("t1", "svc", 1, "running", "running", "10.0.9.3"),
                task("t2", "svc", 2, "running", "running", "10.0.9.4"),
                task("t3", "svc", 3, "starting", "running", "10.0.9.5"),
                task("t4", "svc", 4, "running", "shutdown", "10.0.9.6"),
                task("t5", "svc", 5, "failed", "running", "10.0.9.7"),
            ],
        }
    }

    fn members<'a>(eps: &'a BTreeMap<EndpointKey, Endpoint>, name: &str) -> Vec<&'a Endpoint> {
        eps.values()
            .filter(|e| e.in_rotation() && e.names().any(|n| n == name))
            .collect()
    }

    #[test]
    fn vip_mode_answers_the_service_with_its_virtual_ip_and_tasks_with_theirs() {
        let eps = state(false).endpoints();
        let service: Vec<_> = members(&eps, "web");
        assert_eq!(service.len(), 1);
        assert_eq!(service[0].ipv4, Some(Ipv4Addr::new(10, 0, 9, 2)));
        assert_eq!(members(&eps, "front")[0].ipv4, service[0].ipv4);
        let tasks: Vec<_> = members(&eps, "tasks.web")
            .iter()
            .filter_map(|e| e.ipv4)
            .collect();
        assert_eq!(
            tasks,
            [Ipv4Addr::new(10, 0, 9, 3), Ipv4Addr::new(10, 0, 9, 4)],
            "running only: starting is out, shut-down and failed are gone"
        );
        assert_eq!(members(&eps, "tasks.front").len(), 2);
        assert_eq!(members(&eps, "web.1.t1").len(), 1, "each task's own name");
        assert_eq!(members(&eps, "t10123456789").len(), 1, "container short ID");
        assert!(
            eps.keys().all(|(network, _)| network == "ov"),
            "ingress is not served: {eps:?}"
        );
        assert!(
            eps.values()
                .any(|e| e.name == "web.3.t3" && !e.in_rotation()),
            "a starting task stays as an asker, out of rotation"
        );
        assert!(
            !eps.values()
                .any(|e| e.name.contains("t4") || e.name.contains("t5"))
        );
    }

    #[test]
    fn a_services_label_names_are_labelled_on_its_vip_and_its_dnsrr_tasks() {
        use crate::registry::{NameKey, NameOrigin};
        let key = |n: &str| {
            NameKey::new(
                &n.parse::<hickory_server::proto::rr::LowerName>()
                    .expect("name"),
            )
        };
        for dnsrr in [false, true] {
            let mut s = state(dnsrr);
            s.services[0]
                .labels
                .insert("netalias.names".into(), "api.shop.test".into());
            let eps = s.endpoints();
            let serving = members(&eps, "api.shop.test");
            assert!(!serving.is_empty(), "dnsrr {dnsrr}");
            for e in serving {
                assert_eq!(
                    e.origin_of(key("api.shop.test.").as_bytes()),
                    Some(NameOrigin::Label)
                );
                assert_eq!(
                    e.origin_of(key("front.").as_bytes()),
                    Some(NameOrigin::Alias)
                );
            }
            let service = members(&eps, "web");
            assert_eq!(
                service[0].origin_of(key("web.").as_bytes()),
                Some(if dnsrr {
                    NameOrigin::Alias
                } else {
                    NameOrigin::Container
                }),
                "dnsrr {dnsrr}: the service's name on a task is one of its aliases"
            );
        }
    }

    #[test]
    fn dnsrr_mode_answers_the_service_with_every_running_task() {
        let eps = state(true).endpoints();
        let ips: Vec<_> = members(&eps, "web").iter().filter_map(|e| e.ipv4).collect();
        assert_eq!(
            ips,
            [Ipv4Addr::new(10, 0, 9, 3), Ipv4Addr::new(10, 0, 9, 4)]
        );
        assert_eq!(members(&eps, "front").len(), 2);
        assert!(
            !eps.values()
                .any(|e| e.ipv4 == Some(Ipv4Addr::new(10, 0, 9, 2))),
            "no virtual IP in dnsrr mode"
        );
    }

    #[test]
    fn a_vip_with_no_running_task_is_out_of_rotation_and_labels_apply() {
        let mut s = state(false);
        s.tasks.retain(|t| t.status.state != "running");
        let eps = s.endpoints();
        assert!(members(&eps, "web").is_empty());
        assert!(eps.values().any(|e| e.name == "web"), "known, so NODATA");

        let mut s = state(false);
        s.services[0].labels.insert(LABEL_TTL.into(), "9".into());
        assert!(s.endpoints().values().all(|e| e.ttl == Some(9)));
        s.services[0]
            .labels
            .insert(LABEL_EXCLUDE.into(), "true".into());
        assert!(s.endpoints().is_empty());
    }

    #[test]
    fn task_names_and_addresses_as_swarm_spells_them() {
        let mut t = task("abc", "svc", 2, "running", "running", "10.0.0.1");
        assert_eq!(t.name("web"), "web.2.abc");
        t.slot = None;
        assert_eq!(
            t.name("web"),
            "web.node1.abc",
            "global services use the node"
        );
        assert_eq!(
            address_of("10.0.0.9/24"),
            Some("10.0.0.9".parse().expect("ip"))
        );
        assert_eq!(address_of("fd00::5"), Some("fd00::5".parse().expect("ip")));
        assert_eq!(address_of("junk"), None);
        let json = r#"[{"ID":"x","ServiceID":"s","Slot":1,"Status":{"State":"running"},
            "DesiredState":"running","NetworksAttachments":[{"Network":{"ID":"n",
            "Spec":{"Name":"ov"}},"Addresses":["10.1.0.3/24"]}],"Unknown":{"a":1}}]"#;
        let tasks: Vec<Task> = serde_json::from_str(json).expect("manager's JSON");
        assert_eq!(tasks[0].networks_attachments[0].addresses, ["10.1.0.3/24"]);
    }
}
