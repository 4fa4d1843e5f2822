//! Binds the UDP and TCP sockets: UDP to netalias's own receive loops (`udp`), TCP to
//! hickory-server.
//!
//! Every listen address gets UDP sockets and a TCP listener on the same port. Port 0 picks one
//! free port for both. Nothing here decides answers.

use std::{io, net::SocketAddr, time::Duration};

use hickory_server::Server;
use tokio::net::TcpListener;
use tracing::info;

use super::{Responder, udp};

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
        UdpOptions {
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            fast_path: true,
        }
    }
}

/// Running listeners: where they are bound, and the server that drives them.
pub struct Listeners {
    pub addrs: Vec<SocketAddr>,
    server: Server<Responder>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} ({proto}): {source}")]
pub struct BindError {
    pub addr: SocketAddr,
    pub proto: &'static str,
    #[source]
    pub source: io::Error,
}

/// How many times to look for a port free on both UDP and TCP when asked for port 0.
const PORT_ZERO_TRIES: usize = 20;
/// Bytes buffered per TCP connection for responses.
pub(super) const TCP_RESPONSE_BUFFER: usize = 64;

pub(super) async fn bind_pair(
    addr: SocketAddr,
    udp_workers: usize,
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
        let udp = udp::bind_reuseport(addr, udp_workers).map_err(udp_err)?;
        let chosen = udp[0].local_addr().map_err(udp_err)?;
        match TcpListener::bind(chosen).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last = Some(e),
        }
    }
    Err(tcp_err(
        last.unwrap_or_else(|| io::Error::other("no free port")),
    ))
}

/// Starts serving already-bound sockets with `responder`; returns the server driving TCP.
pub(super) fn serve_pair(
    udp_sockets: Vec<std::net::UdpSocket>,
    tcp: TcpListener,
    responder: Responder,
    tcp_idle_timeout: Duration,
    fast_path: bool,
) -> io::Result<Server<Responder>> {
    let mut server = Server::new(responder.clone());
    server.register_listener(tcp, tcp_idle_timeout, TCP_RESPONSE_BUFFER);
    // The UDP loops stop with the server.
    udp::spawn(
        udp_sockets,
        responder,
        fast_path,
        server.shutdown_token().clone(),
    )?;
    Ok(server)
}

/// Binds every address (UDP and TCP) and starts answering with `responder`.
pub async fn bind(
    addrs: &[SocketAddr],
    responder: Responder,
    tcp_idle_timeout: Duration,
    udp_options: UdpOptions,
) -> Result<Listeners, BindError> {
    let mut server = Server::new(responder.clone());
    let mut bound = Vec::with_capacity(addrs.len());
    for addr in addrs {
        let (udp_sockets, tcp) = bind_pair(*addr, udp_options.workers).await?;
        let udp_err = |source| BindError {
            addr: *addr,
            proto: "udp",
            source,
        };
        let local = udp_sockets[0].local_addr().map_err(udp_err)?;
        server.register_listener(tcp, tcp_idle_timeout, TCP_RESPONSE_BUFFER);
        udp::spawn(
            udp_sockets,
            responder.clone(),
            udp_options.fast_path,
            server.shutdown_token().clone(),
        )
        .map_err(udp_err)?;
        info!(addr = %local, udp_workers = udp_options.workers, fast_path = udp_options.fast_path, "listening on udp and tcp");
        bound.push(local);
    }
    Ok(Listeners {
        addrs: bound,
        server,
    })
}

impl Listeners {
    /// Runs until the server stops (it stops on its own only on an unrecoverable socket error).
    pub async fn run(mut self) -> anyhow::Result<()> {
        self.server.block_until_done().await?;
        Ok(())
    }
}
