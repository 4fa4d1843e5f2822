//! What a source says about bridge networks, so that listeners can follow their gateways.
//!
//! Neutral ground between the Docker source, which publishes [`BridgeEvent`]s, and
//! `dns::gateways`, which opens and closes listeners from them: neither imports the other.
//! [`Bridge::gateways`] decides, purely, which address of each subnet is the gateway. Nothing
//! here does I/O.

use std::net::IpAddr;

use ipnet::IpNet;

/// One bridge network as the engine describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bridge {
    pub network: String,
    /// The host interface that carries its gateway addresses (`br-…`, `docker0`).
    pub interface: String,
    /// Docker's default bridge (`docker0`), where containers get no names.
    pub default: bool,
    /// Its subnets, IPv4 and IPv6, with the gateway the engine's IPAM names, if any (a network
    /// made with only `--subnet` has none there, though its bridge has one).
    pub subnets: Vec<(IpNet, Option<IpAddr>)>,
}

/// Where a gateway address came from, for the log line that says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayFrom {
    /// The engine's IPAM config.
    Ipam,
    /// The bridge interface's own address inside the subnet.
    Interface,
    /// Neither says: the subnet's first host, where Docker puts a default gateway.
    FirstHost,
}

impl GatewayFrom {
    pub fn as_str(self) -> &'static str {
        match self {
            GatewayFrom::Ipam => "ipam",
            GatewayFrom::Interface => "interface",
            GatewayFrom::FirstHost => "subnet first host",
        }
    }
}

impl Bridge {
    /// One gateway per subnet: IPAM's when given, else the address `interface_addrs` (the
    /// bridge interface's) holds inside that subnet, else the subnet's first host.
    pub fn gateways(&self, interface_addrs: &[IpAddr]) -> Vec<(IpAddr, GatewayFrom)> {
        let mut out: Vec<(IpAddr, GatewayFrom)> = Vec::new();
        for (subnet, gateway) in &self.subnets {
            let found = match gateway {
                Some(ip) => Some((*ip, GatewayFrom::Ipam)),
                None => interface_addrs
                    .iter()
                    .find(|ip| subnet.contains(*ip) && **ip != subnet.network())
                    .map(|ip| (*ip, GatewayFrom::Interface))
                    .or_else(|| first_host(subnet).map(|ip| (ip, GatewayFrom::FirstHost))),
            };
            if let Some(found) = found
                && !out.iter().any(|(ip, _)| *ip == found.0)
            {
                out.push(found);
            }
        }
        out
    }
}

/// The first address after the network address (`10.1.0.1` of `10.1.0.0/24`), if the
/// subnet has one.
fn first_host(subnet: &IpNet) -> Option<IpAddr> {
    subnet.hosts().find(|ip| *ip != subnet.network())
}

/// What a source says about bridges as they come and go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BridgeEvent {
    /// The full set, after a snapshot: listeners of bridges not in it are closed.
    Sync(Vec<Bridge>),
    Up(Bridge),
    Down(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bridge(subnets: &[(&str, Option<&str>)]) -> Bridge {
        Bridge {
            network: "n".into(),
            interface: "br-0123456789ab".into(),
            default: false,
            subnets: subnets
                .iter()
                .map(|(s, g)| (s.parse().unwrap(), g.map(|g| g.parse().unwrap())))
                .collect(),
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ipam_first_then_the_interface_then_the_first_host() {
        let b = bridge(&[("172.72.0.0/16", Some("172.72.0.254"))]);
        assert_eq!(
            b.gateways(&[ip("172.72.0.1")]),
            vec![(ip("172.72.0.254"), GatewayFrom::Ipam)]
        );
        // `--subnet` only: IPAM names no gateway; the bridge's own address does.
        let b = bridge(&[("10.231.0.0/24", None), ("fd00:231::/64", None)]);
        assert_eq!(
            b.gateways(&[ip("10.9.9.9"), ip("10.231.0.1"), ip("fd00:231::1")]),
            vec![
                (ip("10.231.0.1"), GatewayFrom::Interface),
                (ip("fd00:231::1"), GatewayFrom::Interface)
            ]
        );
        // The interface is not visible (netalias in a container): the subnet's first host.
        assert_eq!(
            b.gateways(&[]),
            vec![
                (ip("10.231.0.1"), GatewayFrom::FirstHost),
                (ip("fd00:231::1"), GatewayFrom::FirstHost)
            ]
        );
        assert!(bridge(&[]).gateways(&[]).is_empty());
    }
}
