//! Binds the UDP and TCP sockets and runs hickory-server over them.
//!
//! Every listen address gets both a UDP socket and a TCP listener on the same port. Port 0
//! picks one free port for both. Nothing here decides answers.

use std::{io, net::SocketAddr, time::Duration};

use hickory_server::Server;
use tokio::net::{TcpListener, UdpSocket};
use tracing::info;

use super::Responder;

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

pub(super) async fn bind_pair(addr: SocketAddr) -> Result<(UdpSocket, TcpListener), BindError> {
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
    if addr.port() != 0 {
        let udp = UdpSocket::bind(addr).await.map_err(udp_err)?;
        let tcp = TcpListener::bind(addr).await.map_err(tcp_err)?;
        return Ok((udp, tcp));
    }
    let mut last = None;
    for _ in 0..PORT_ZERO_TRIES {
        let udp = UdpSocket::bind(addr).await.map_err(udp_err)?;
        let chosen = udp.local_addr().map_err(udp_err)?;
        match TcpListener::bind(chosen).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last = Some(e),
        }
    }
    Err(tcp_err(
        last.unwrap_or_else(|| io::Error::other("no free port")),
    ))
}

/// Binds every address (UDP and TCP) and starts answering with `responder`.
pub async fn bind(
    addrs: &[SocketAddr],
    responder: Responder,
    tcp_idle_timeout: Duration,
) -> Result<Listeners, BindError> {
    let mut server = Server::new(responder);
    let mut bound = Vec::with_capacity(addrs.len());
    for addr in addrs {
        let (udp, tcp) = bind_pair(*addr).await?;
        let local = udp.local_addr().map_err(|source| BindError {
            addr: *addr,
            proto: "udp",
            source,
        })?;
        server.register_socket(udp);
        server.register_listener(tcp, tcp_idle_timeout, TCP_RESPONSE_BUFFER);
        info!(addr = %local, "listening on udp and tcp");
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
