//! Binds the UDP and TCP sockets: UDP to netalias's own receive loops (`udp`), TCP to its
//! own accept loop (`tcp`), both stopped by one token.
//!
//! Every listen address gets UDP sockets and a TCP listener on the same port. Port 0 picks one
//! free port for both. Nothing here decides answers.

use std::{io, net::SocketAddr, sync::Arc};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::{Responder, tcp, udp};

/// How UDP is served.
#[derive(Debug, Clone, Copy)]
pub struct UdpOptions {
    /// SO_REUSEPORT sockets (receive loops) per address.
    pub workers: usize,
    /// Answer plain A/AAAA questions without the full handler.
    pub fast_path: bool,
}

impl Default for UdpOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        UdpOptions {
            workers: default_udp_workers(cores),
            fast_path: true,
        }
    }
}

/// One receive loop per two cores, at least one. netalias shares its host with the clients it
/// answers (a sidecar, a load test), and on loopback a sender's core also does the receiver's
/// kernel work; a loop per core made the loops and the clients preempt each other: on 2 cores
/// two loops cost 7.4 µs of CPU per query against 6.5 µs for one, with 4× the context switches
/// and no more throughput. One loop answers about 150k queries/s on one such core.
fn default_udp_workers(cores: usize) -> usize {
    (cores / 2).max(1)
}

/// Running listeners: where they are bound, and the token that stops them.
pub struct Listeners {
    pub addrs: Vec<SocketAddr>,
    stop: CancellationToken,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} ({proto}): {source}{}", bind_hint(*addr, source))]
pub struct BindError {
    pub addr: SocketAddr,
    pub proto: &'static str,
    #[source]
    pub source: io::Error,
}

/// What to do about a failed bind, for the common causes.
fn bind_hint(addr: SocketAddr, error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::PermissionDenied if addr.port() < 1024 => format!(
            "; port {} is below 1024: run with the capability CAP_NET_BIND_SERVICE (systemd: AmbientCapabilities=CAP_NET_BIND_SERVICE; a container: --cap-add NET_BIND_SERVICE; a binary: setcap cap_net_bind_service=+ep), or listen on a port above 1023",
            addr.port()
        ),
        io::ErrorKind::AddrInUse => format!(
            "; another process holds it (see `ss -lunp 'sport = :{}'`): stop it or pick another --listen",
            addr.port()
        ),
        io::ErrorKind::AddrNotAvailable => {
            "; no interface here has that address (give one `ip -brief addr` lists, or 0.0.0.0)"
                .into()
        }
        _ => String::new(),
    }
}

/// How many times to look for a port free on both UDP and TCP when asked for port 0.
const PORT_ZERO_TRIES: usize = 20;

/// A TCP listener on `addr`, with the same socket rules as the UDP ones.
fn bind_tcp(addr: SocketAddr, freebind: bool) -> io::Result<TcpListener> {
    let socket = udp::listen_socket(addr, socket2::Type::STREAM, freebind)?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

pub(super) async fn bind_pair(
    addr: SocketAddr,
    udp_workers: usize,
    freebind: bool,
) -> Result<(Vec<std::net::UdpSocket>, TcpListener), BindError> {
    let udp_err = |source| BindError {
        addr,
        proto: "udp",
        source,
    };
    let tcp_err = |source| BindError {
        addr,
        proto: "tcp",
        source,
    };
    let tries = if addr.port() == 0 { PORT_ZERO_TRIES } else { 1 };
    let mut last = None;
    for _ in 0..tries {
        let udp = udp::bind_reuseport(addr, udp_workers, freebind).map_err(udp_err)?;
        let chosen = udp[0].local_addr().map_err(udp_err)?;
        match bind_tcp(chosen, freebind) {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last = Some(e),
        }
    }
    Err(tcp_err(
        last.unwrap_or_else(|| io::Error::other("no free port")),
    ))
}

/// Starts serving already-bound sockets with `responder`; cancelling the token stops them.
pub(super) fn serve_pair(
    udp_sockets: Vec<std::net::UdpSocket>,
    tcp_listener: TcpListener,
    responder: Responder,
    admission: Arc<tcp::Admission>,
    fast_path: bool,
    stop: CancellationToken,
) -> io::Result<()> {
    udp::spawn(udp_sockets, responder.clone(), fast_path, stop.clone())?;
    tokio::spawn(tcp::serve(tcp_listener, responder, admission, stop));
    Ok(())
}

/// Binds every address (UDP and TCP) and starts answering with `responder`.
pub async fn bind(
    addrs: &[SocketAddr],
    responder: Responder,
    admission: Arc<tcp::Admission>,
    udp_options: UdpOptions,
) -> Result<Listeners, BindError> {
    let stop = CancellationToken::new();
    let mut bound = Vec::with_capacity(addrs.len());
    for addr in addrs {
        let (udp_sockets, tcp_listener) = bind_pair(*addr, udp_options.workers, false).await?;
        let udp_err = |source| BindError {
            addr: *addr,
            proto: "udp",
            source,
        };
        let local = udp_sockets[0].local_addr().map_err(udp_err)?;
        serve_pair(
            udp_sockets,
            tcp_listener,
            responder.clone(),
            Arc::clone(&admission),
            udp_options.fast_path,
            stop.clone(),
        )
        .map_err(udp_err)?;
        let limits = admission.limits();
        info!(
            addr = %local,
            udp_workers = udp_options.workers,
            fast_path = udp_options.fast_path,
            tcp_max_connections = limits.max_connections,
            tcp_max_per_client = limits.max_per_client,
            "listening on udp and tcp"
        );
        bound.push(local);
    }
    Ok(Listeners { addrs: bound, stop })
}

impl Listeners {
    /// Serves until the process stops; dropping the value stops the listeners.
    pub async fn run(self) -> anyhow::Result<()> {
        let _stop_on_drop = self.stop.drop_guard();
        std::future::pending::<()>().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::default_udp_workers;

    #[test]
    fn one_receive_loop_per_two_cores_and_never_none() {
        assert_eq!(default_udp_workers(0), 1);
        assert_eq!(default_udp_workers(1), 1);
        assert_eq!(default_udp_workers(2), 1);
        assert_eq!(default_udp_workers(3), 1);
        assert_eq!(default_udp_workers(4), 2);
        assert_eq!(default_udp_workers(64), 32);
    }
}
