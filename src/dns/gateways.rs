//! Listeners on the gateway addresses of bridge networks (`--attach-bridges`,
//! `--attach-default-bridge`).
//!
//! Follows bridges as a source reports them ([`BridgeEvent`]): one UDP+TCP listener per
//! gateway address, IPv4 and IPv6, opened when the network appears and closed when it goes.
//! Each gateway comes from the engine's IPAM when it names one, else from the bridge
//! interface's own address, else the subnet's first host, and the log says which. Containers
//! can then use `--dns <gateway>`. It answers through the same `Responder`; it never decides
//! answers.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::{
    Responder,
    listener::{BindError, bind_pair, serve_pair},
    tcp::Admission,
};
use crate::source::bridge::{Bridge, BridgeEvent};

/// A bind can fail for a moment while the engine sets the bridge up; the sockets are bound
/// with freebind, so an address not yet on the interface (or IPv6 still tentative) binds.
const BIND_TRIES: u32 = 10;
const BIND_RETRY: Duration = Duration::from_millis(200);

struct Active {
    ip: IpAddr,
    stop: CancellationToken,
}

/// Every open gateway listener, by network.
struct Gateways {
    active: HashMap<String, Vec<Active>>,
    responder: Responder,
    port: u16,
    admission: Arc<Admission>,
}

/// Runs until the sender side is dropped.
pub async fn follow_gateways(
    mut events: mpsc::Receiver<BridgeEvent>,
    responder: Responder,
    port: u16,
    admission: Arc<Admission>,
) {
    let mut gateways = Gateways {
        active: HashMap::new(),
        responder,
        port,
        admission,
    };
    while let Some(event) = events.recv().await {
        match event {
            BridgeEvent::Sync(all) => {
                let gone: Vec<String> = gateways
                    .active
                    .keys()
                    .filter(|n| !all.iter().any(|b| &b.network == *n))
                    .cloned()
                    .collect();
                for network in gone {
                    gateways.close(&network);
                }
                for bridge in &all {
                    gateways.follow(bridge).await;
                }
            }
            BridgeEvent::Up(bridge) => gateways.follow(&bridge).await,
            BridgeEvent::Down(network) => gateways.close(&network),
        }
    }
    for network in gateways.active.keys().cloned().collect::<Vec<_>>() {
        gateways.close(&network);
    }
}

/// The addresses the host holds on `interface` (none when it is not visible here, e.g. when
/// netalias runs in a container of its own).
fn interface_addresses(interface: &str) -> Vec<IpAddr> {
    match if_addrs::get_if_addrs() {
        Ok(all) => all
            .into_iter()
            .filter(|i| i.name == interface)
            .map(|i| i.ip())
            .collect(),
        Err(error) => {
            debug!(%error, "cannot list interface addresses");
            Vec::new()
        }
    }
}

impl Gateways {
    /// Makes the listeners of `bridge` those of its gateways now: new ones opened, old ones
    /// closed, unchanged ones left alone.
    async fn follow(&mut self, bridge: &Bridge) {
        let wanted = bridge.gateways(&interface_addresses(&bridge.interface));
        let mut active = self.active.remove(&bridge.network).unwrap_or_default();
        active.retain(|a| {
            let keep = wanted.iter().any(|(ip, _)| *ip == a.ip);
            if !keep {
                a.stop.cancel();
                info!(network = %bridge.network, ip = %a.ip, "gateway changed; old listener closed");
            }
            keep
        });
        for (ip, from) in wanted {
            if active.iter().any(|a| a.ip == ip) {
                continue;
            }
            if let Some(stop) = self.open(&bridge.network, ip).await {
                info!(
                    network = %bridge.network,
                    interface = %bridge.interface,
                    addr = %SocketAddr::new(ip, self.port),
                    gateway_from = from.as_str(),
                    "listening on bridge gateway (udp and tcp)"
                );
                active.push(Active { ip, stop });
            }
        }
        if !active.is_empty() {
            self.active.insert(bridge.network.clone(), active);
        }
    }

    fn close(&mut self, network: &str) {
        for a in self.active.remove(network).unwrap_or_default() {
            a.stop.cancel();
            info!(%network, ip = %a.ip, "bridge gone; gateway listener closed");
        }
    }

    async fn open(&self, network: &str, ip: IpAddr) -> Option<CancellationToken> {
        let addr = SocketAddr::new(ip, self.port);
        let mut last_error = None;
        for _ in 0..BIND_TRIES {
            let stop = CancellationToken::new();
            let served = match bind_pair(addr, 1, true).await {
                Ok((udp, tcp)) => serve_pair(
                    udp,
                    tcp,
                    self.responder.clone(),
                    Arc::clone(&self.admission),
                    true,
                    stop.clone(),
                )
                .map_err(|source| BindError {
                    addr,
                    proto: "udp",
                    source,
                }),
                Err(e) => Err(e),
            };
            match served {
                Ok(()) => return Some(stop),
                Err(e) => {
                    last_error = Some(e);
                    tokio::time::sleep(BIND_RETRY).await;
                }
            }
        }
        if let Some(error) = last_error {
            warn!(%network, %error, "cannot listen on the bridge gateway; containers there cannot use it as --dns");
        }
        None
    }
}
