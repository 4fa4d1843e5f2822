//! Listeners on the gateway address of every user-defined bridge (`--attach-bridges`).
//!
//! Follows bridge networks as the Docker source reports them: one UDP+TCP listener per
//! gateway, opened when the network appears and closed when it goes. Containers can then use
//! `--dns <gateway>`. It answers through the same `Responder`; it never decides answers.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{
    Responder,
    listener::{BindError, bind_pair, serve_pair},
    tcp::Admission,
};

/// What the Docker source says about bridges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayEvent {
    /// The full set, after a snapshot: listeners not in it are closed.
    Sync(Vec<(String, IpAddr)>),
    Up(String, IpAddr),
    Down(String),
}

/// The bridge interface may get its address a moment after the network event.
const BIND_TRIES: u32 = 10;
const BIND_RETRY: Duration = Duration::from_millis(200);

struct Active {
    ip: IpAddr,
    stop: CancellationToken,
}

/// Runs until the sender side is dropped.
pub async fn follow_gateways(
    mut events: mpsc::Receiver<GatewayEvent>,
    responder: Responder,
    port: u16,
    admission: Arc<Admission>,
) {
    let mut active: HashMap<String, Active> = HashMap::new();
    while let Some(event) = events.recv().await {
        match event {
            GatewayEvent::Sync(all) => {
                let keep: HashMap<String, IpAddr> = all.into_iter().collect();
                active.retain(|network, a| {
                    let stays = keep.get(network) == Some(&a.ip);
                    if !stays {
                        a.stop.cancel();
                    }
                    stays
                });
                for (network, ip) in keep {
                    if !active.contains_key(&network)
                        && let Some(a) = open(&network, ip, port, &responder, &admission).await
                    {
                        active.insert(network, a);
                    }
                }
            }
            GatewayEvent::Up(network, ip) => {
                if active.get(&network).is_some_and(|a| a.ip == ip) {
                    continue;
                }
                if let Some(old) = active.remove(&network) {
                    old.stop.cancel();
                }
                if let Some(a) = open(&network, ip, port, &responder, &admission).await {
                    active.insert(network, a);
                }
            }
            GatewayEvent::Down(network) => {
                if let Some(a) = active.remove(&network) {
                    a.stop.cancel();
                    info!(%network, ip = %a.ip, "bridge gone; gateway listener closed");
                }
            }
        }
    }
    for a in active.values() {
        a.stop.cancel();
    }
}

async fn open(
    network: &str,
    ip: IpAddr,
    port: u16,
    responder: &Responder,
    admission: &Arc<Admission>,
) -> Option<Active> {
    let addr = SocketAddr::new(ip, port);
    let mut last_error = None;
    for _ in 0..BIND_TRIES {
        let stop = CancellationToken::new();
        let served = match bind_pair(addr, 1).await {
            Ok((udp, tcp)) => serve_pair(
                udp,
                tcp,
                responder.clone(),
                Arc::clone(admission),
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
            Ok(()) => {
                info!(%network, %addr, "listening on bridge gateway (udp and tcp)");
                return Some(Active { ip, stop });
            }
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
