//! The UDP listener: SO_REUSEPORT sockets, one receive loop (thread) each, so the kernel
//! spreads packets over the cores. A packet the fast path can answer is answered in the loop; any
//! other goes to the full handler in a task of its own, exactly as hickory-server would send it.

use std::{
    io,
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use hickory_server::net::xfer::Protocol;
use metrics::counter;
use socket2::{Domain, Socket, Type};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::{
    Responder,
    batch::{Inbox, Outbox},
    exchange, fast, query_log,
    rate_limit::Verdict,
};
use crate::telemetry::names;

/// Largest datagram we read; anything longer is not a DNS query we answer.
const MAX_DATAGRAM: usize = 4096;
/// Questions on the full path at once, per receive loop, besides those forwarding; more are
/// dropped and counted. The full path answers in microseconds unless it forwards, and
/// forwards are capped on their own (every asker charged, `forward`): each loop has room for
/// all of them on top of this, so that a flood of forwards never takes a local answer's slot.
pub const FULL_PATH_IN_FLIGHT: usize = 2048;

/// A socket for `addr` as every listener wants it: `[::]` takes IPv4 clients too (whatever
/// the host's `bindv6only`), and with `freebind` an address that is not usable yet can be
/// bound (a bridge's IPv6 gateway stays "tentative" until a container brings the bridge up).
pub(super) fn listen_socket(addr: SocketAddr, ty: Type, freebind: bool) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), ty, None)?;
    if let SocketAddr::V6(v6) = addr {
        if v6.ip().is_unspecified() {
            socket.set_only_v6(false)?;
        }
        if freebind {
            socket.set_freebind_v6(true)?;
        }
    } else if freebind {
        socket.set_freebind_v4(true)?;
    }
    Ok(socket)
}

/// Binds `count` UDP sockets sharing `addr` (port 0: the first picks the port).
pub fn bind_reuseport(
    addr: SocketAddr,
    count: usize,
    freebind: bool,
) -> io::Result<Vec<std::net::UdpSocket>> {
    let mut sockets = Vec::with_capacity(count);
    let mut addr = addr;
    for _ in 0..count.max(1) {
        let socket = listen_socket(addr, Type::DGRAM, freebind)?;
        socket.set_reuse_port(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        let socket: std::net::UdpSocket = socket.into();
        addr = socket.local_addr()?;
        sockets.push(socket);
    }
    Ok(sockets)
}

/// How often a blocked receive loop looks at its stop token.
const STOP_CHECK: std::time::Duration = std::time::Duration::from_millis(250);

/// Starts one receive loop per socket, each on a thread of its own: a blocking receive costs
/// less per packet than a readiness wake-up, and the fast path never awaits. Packets for the
/// full handler go to the async runtime. The loops end when `stop` is cancelled.
pub fn spawn(
    sockets: Vec<std::net::UdpSocket>,
    responder: Responder,
    fast_path: bool,
    stop: CancellationToken,
) -> io::Result<()> {
    let runtime = tokio::runtime::Handle::current();
    for (i, socket) in sockets.into_iter().enumerate() {
        socket.set_nonblocking(false)?;
        socket.set_read_timeout(Some(STOP_CHECK))?;
        let responder = responder.clone();
        let stop = stop.clone();
        let runtime = runtime.clone();
        std::thread::Builder::new()
            .name(format!("netalias-udp-{i}"))
            .spawn(move || receive_loop(Arc::new(socket), responder, fast_path, stop, runtime))?;
    }
    Ok(())
}

fn answerable_source(src: SocketAddr) -> bool {
    src.port() != 0 && !src.ip().is_unspecified() && src.ip() != IpAddr::from([255, 255, 255, 255])
}

// Never inlined: `benches/instructions.sh` counts from this symbol (callgrind's --toggle-collect),
// and once inlined into the thread's closure it counted nothing. Called once per thread.
#[inline(never)]
fn receive_loop(
    socket: Arc<std::net::UdpSocket>,
    responder: Responder,
    fast_path: bool,
    stop: CancellationToken,
    runtime: tokio::runtime::Handle,
) {
    let in_flight = Arc::new(tokio::sync::Semaphore::new(
        FULL_PATH_IN_FLIGHT + responder.forward_capacity(),
    ));
    let mut inbox = Inbox::new(MAX_DATAGRAM);
    let mut outbox = Outbox::default();
    while !stop.is_cancelled() {
        match inbox.receive(&socket) {
            Ok(_) => {}
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(error) => {
                // ICMP errors from earlier sends surface here on Linux; they are not fatal.
                debug!(%error, "udp receive error");
                continue;
            }
        }
        for i in 0..inbox.len() {
            let Some((bytes, src)) = inbox.get(i) else {
                continue;
            };
            // Every rule below (rate limit, scoping, forwarding) sees the asker as it is: an
            // IPv4 client of a `[::]` socket as IPv4, the host's own address as the host.
            let asker = responder.asker(src.ip());
            if !answerable_source(src) {
                continue;
            }
            match responder.udp_verdict(asker) {
                Verdict::Answer => {}
                Verdict::Drop => continue,
                Verdict::Slip => {
                    if let Some(reply) = outbox.next_buffer()
                        && fast::truncated(&responder, bytes, reply)
                    {
                        outbox.commit(src);
                    }
                    continue;
                }
            }
            // Timed only when the query log is on.
            let logged = responder.logs_queries().then(std::time::Instant::now);
            if fast_path
                && let Some(answer) = outbox.next_buffer()
                && fast::try_answer(&responder, bytes, asker, src.port(), answer)
            {
                if let Some(started) = logged {
                    let path = query_log::fast_path_label(answer);
                    query_log::record(responder.registry(), asker, answer, path, started);
                }
                outbox.commit(src);
                continue;
            }
            // A flood of slow questions must not pile up tasks without end.
            let Ok(permit) = Arc::clone(&in_flight).try_acquire_owned() else {
                counter!(names::DNS_DROPPED_TOTAL, "reason" => "overload").increment(1);
                continue;
            };
            let socket = Arc::clone(&socket);
            let responder = responder.clone();
            let bytes = bytes.to_vec();
            runtime.spawn(async move {
                full_path(socket, responder, bytes, src).await;
                drop(permit);
            });
        }
        outbox.flush(&socket);
    }
}

/// The full path for one datagram (`exchange`): QR=1 is ignored, a header
/// without a decodable body gets FORMERR, fewer than 12 bytes get nothing.
async fn full_path(
    socket: Arc<std::net::UdpSocket>,
    responder: Responder,
    bytes: Vec<u8>,
    src: SocketAddr,
) {
    if let Some(answer) = exchange::answer_bytes(&responder, &bytes, src, Protocol::Udp).await {
        // A UDP send does not block for long: the socket buffer takes it or drops it.
        if let Err(error) = socket.send_to(&answer, src) {
            warn!(%error, dst = %src, "udp send failed");
        }
    }
}
