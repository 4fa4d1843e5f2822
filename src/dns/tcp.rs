//! DNS over TCP: netalias's own accept loop and connections, with the limits a shared DNS
//! server needs (hickory-server's TCP listener has none).
//!
//! Admission caps connections per client address and in total. When either cap is reached,
//! connections idle for a while (the address's own at its cap, anyone's at the total) are
//! asked to close, oldest waiter first (RFC 7766 lets a server shed idle ones under load), so
//! that an active client is never locked out by idle ones; one mid-message is never shed.
//! A new connection at a cap waits in line, bounded ([`ADMISSION_WAIT`]), until one may be
//! shed: a burst of more than the cap from one address within [`SHED_IDLE_AFTER`] (a host
//! resolver forwarding over TCP from 127.0.0.1 under load) is served, not reset. The line is
//! bounded too, so that waiting sockets cannot hold descriptors without limit: an address
//! waits with at most its cap, and the server with [`max_waiting`] (an eighth of its own cap,
//! at least one address's); past either, the newest arrival takes the place of the oldest
//! waiter (of the longest line), which is refused, so a flood holds no more than twice its cap
//! and cannot lock out the next client. The accept loop puts a connection in line itself and
//! the line holds the waiting sockets, so that one refused or displaced is closed at once:
//! every accepted socket is a connection's or the line's, as the descriptor plan
//! (`fd_budget`, which asks [`max_waiting`] too) counts them. Each connection reads 2-byte-length frames (tokio-util's codec) and answers them through
//! [`exchange`](super::exchange) as each is ready, several at once (RFC 7766 6.2.1.1: a local
//! answer does not wait behind a slow forwarded one; each carries its question's ID), at most
//! [`MAX_PIPELINED`] at once, each written whole by the connection's one task. It closes when
//! idle (nothing owed, nothing read or written for the idle timeout), when a message stays
//! half-sent past the idle timeout, on a reset, or on shutdown. Nothing here decides answers.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use futures_util::{StreamExt, stream::FuturesUnordered};
use hickory_server::net::xfer::Protocol;
use metrics::{counter, gauge, histogram};
use tokio::{
    io::AsyncWriteExt,
    net::{TcpListener, TcpStream},
    sync::Notify,
    time::Instant,
};
use tokio_util::{
    codec::{FramedRead, LengthDelimitedCodec},
    sync::CancellationToken,
};
use tracing::debug;

use super::{Responder, exchange};
use crate::telemetry::names;

/// How long a client may take to read an answer before the connection is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Under pressure, connections idle at least this long are shed.
const SHED_IDLE_AFTER: Duration = Duration::from_millis(500);
/// How long a new connection at a cap waits for room: three times [`SHED_IDLE_AFTER`], so that
/// when every connection of its address is brand new (a burst: none may be shed yet) they
/// become sheddable within the wait, with room for the line ahead of it to be served first
/// (at most the cap, which one such turnover admits). Was 200 ms, less than the idle age, so
/// a burst of 65 connections within 0.5 s had the 65th reset (issue 25). Under glibc's 5 s
/// and Go's 5 s resolver timeouts.
const ADMISSION_WAIT: Duration = Duration::from_millis(1500);
/// How often a waiting connection asks again (and presses an idle one to close).
const WAIT_TICK: Duration = Duration::from_millis(25);
/// Questions one connection may have in flight at once; past it the connection reads no
/// more until one is answered, so pipelining cannot start unbounded work.
const MAX_PIPELINED: usize = 16;

/// The most connections that may wait in the admission line at once, given the total cap and
/// the per-address cap: an eighth of the total, at least one address's cap (no more than the
/// total: an address holds no more than that either). Each waiter holds an accepted socket,
/// so the descriptor plan ([`crate::fd_budget::plan`]) counts them beside the connections;
/// both ask here, so that the line and the plan cannot disagree.
pub fn max_waiting(max_connections: usize, max_per_client: usize) -> usize {
    (max_connections / 8).max(max_per_client.min(max_connections))
}

/// TCP limits, shared by every listener of the process.
#[derive(Debug, Clone, Copy)]
pub struct TcpLimits {
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub max_per_client: usize,
}

impl Default for TcpLimits {
    fn default() -> Self {
        TcpLimits {
            idle_timeout: Duration::from_secs(10),
            max_connections: 1024,
            max_per_client: 64,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    PerClient,
    Full,
}

impl Refusal {
    fn label(self) -> &'static str {
        match self {
            Refusal::PerClient => "per_client",
            Refusal::Full => "full",
        }
    }
}

/// Who holds a connection: counts per client and in total.
pub struct Admission {
    limits: TcpLimits,
    total: AtomicUsize,
    per_client: Mutex<HashMap<IpAddr, Client>>,
    /// Wakes one waiting connection at a time; it closes if it has been idle long enough.
    pressure: Notify,
    /// New connections waiting at a cap, per client address, oldest first.
    line: Mutex<Line>,
}

/// The connections waiting for room, and how many in all.
#[derive(Default)]
struct Line {
    waiting: HashMap<IpAddr, std::collections::VecDeque<Waiter>>,
    total: usize,
    next_id: u64,
}

/// One waiting connection, with its socket: the line holds the socket, so that a waiter
/// displaced by a newer arrival is closed at once by the one displacing it, not whenever its
/// own task next runs (under a connect flood, hundreds of those took the process to its
/// open-file limit, and forwards got SERVFAIL: issue 26). Cancelled when displaced.
struct Waiter {
    id: u64,
    displaced: CancellationToken,
    stream: TcpStream,
}

impl Line {
    /// Takes waiter `id` of `client` out of line, if it is still in it.
    fn take(&mut self, client: IpAddr, id: u64) -> Option<Waiter> {
        let queue = self.waiting.get_mut(&client)?;
        let waiter = queue
            .iter()
            .position(|w| w.id == id)
            .and_then(|at| queue.remove(at));
        if waiter.is_some() {
            self.total -= 1;
        }
        if queue.is_empty() {
            self.waiting.remove(&client);
        }
        waiter
    }

    fn holds(&self, client: IpAddr, id: u64) -> bool {
        self.waiting
            .get(&client)
            .is_some_and(|queue| queue.iter().any(|w| w.id == id))
    }
}

/// A place in line, given back on drop (admitted, refused or displaced alike).
struct Place {
    admission: Arc<Admission>,
    client: IpAddr,
    id: u64,
    displaced: CancellationToken,
}

impl Place {
    /// This waiter admitted, if there is room now: its ticket, and its socket out of line.
    /// `Ok(None)` when it was displaced meanwhile (its socket is closed already).
    fn admit(&self) -> Result<Option<(Ticket, TcpStream)>, Refusal> {
        // The line stays locked until the socket is out of it, so that no newer arrival can
        // displace a waiter that holds a ticket already (the lock order is line, then clients).
        let mut line = self.admission.line();
        if !line.holds(self.client, self.id) {
            return Ok(None);
        }
        let ticket = self.admission.admit(self.client)?;
        Ok(line
            .take(self.client, self.id)
            .map(|waiter| (ticket, waiter.stream)))
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        // Still in line (refused after its wait): out of it, its socket closed.
        let waiter = self.admission.line().take(self.client, self.id);
        drop(waiter);
    }
}

/// One client address's connections, and the signal that asks one of them to make room.
struct Client {
    held: usize,
    pressure: Arc<Notify>,
}

impl Admission {
    pub fn new(limits: TcpLimits) -> Arc<Admission> {
        Arc::new(Admission {
            limits,
            total: AtomicUsize::new(0),
            per_client: Mutex::new(HashMap::new()),
            pressure: Notify::new(),
            line: Mutex::default(),
        })
    }

    fn line(&self) -> std::sync::MutexGuard<'_, Line> {
        self.line
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The most connections waiting for room at once: see [`max_waiting`].
    fn max_waiting(&self) -> usize {
        max_waiting(self.limits.max_connections, self.limits.max_per_client)
    }

    /// A place in line for `stream`, a new connection from `client`; the line holds it. Its
    /// address's line full, its oldest waiter is displaced (and closed); the whole line full,
    /// the oldest waiter of the longest line is, when that line is longer than `client`'s would
    /// be (else `None`: refused at once, and `stream` closed).
    fn wait_in_line(self: &Arc<Self>, client: IpAddr, stream: TcpStream) -> Option<Place> {
        let max_waiting = self.max_waiting();
        let mut guard = self.line();
        let line = &mut *guard;
        let own = line.waiting.get(&client).map_or(0, |q| q.len());
        let displace = if own >= self.limits.max_per_client {
            Some(client)
        } else if line.total >= max_waiting {
            let (longest, len) = line
                .waiting
                .iter()
                .map(|(ip, q)| (*ip, q.len()))
                .max_by_key(|(_, len)| *len)?;
            if len <= own + 1 {
                return None;
            }
            Some(longest)
        } else {
            None
        };
        if let Some(ip) = displace
            && let Some(queue) = line.waiting.get_mut(&ip)
            && let Some(oldest) = queue.pop_front()
        {
            oldest.displaced.cancel();
            if queue.is_empty() {
                line.waiting.remove(&ip);
            }
            line.total -= 1;
        }
        let id = line.next_id;
        line.next_id += 1;
        let displaced = CancellationToken::new();
        line.waiting.entry(client).or_default().push_back(Waiter {
            id,
            displaced: displaced.clone(),
            stream,
        });
        line.total += 1;
        Some(Place {
            admission: Arc::clone(self),
            client,
            id,
            displaced,
        })
    }

    pub fn limits(&self) -> TcpLimits {
        self.limits
    }

    fn admit(self: &Arc<Self>, client: IpAddr) -> Result<Ticket, Refusal> {
        let mut per_client = self
            .per_client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let held = per_client.get(&client).map_or(0, |c| c.held);
        if held >= self.limits.max_per_client {
            return Err(Refusal::PerClient);
        }
        if self.total.load(Ordering::Relaxed) >= self.limits.max_connections {
            return Err(Refusal::Full);
        }
        let entry = per_client.entry(client).or_insert_with(|| Client {
            held: 0,
            pressure: Arc::new(Notify::new()),
        });
        entry.held += 1;
        let client_pressure = Arc::clone(&entry.pressure);
        let total = self.total.fetch_add(1, Ordering::Relaxed) + 1;
        gauge!(names::DNS_TCP_CONNECTIONS).set(total as f64);
        Ok(Ticket {
            admission: Arc::clone(self),
            client,
            client_pressure,
        })
    }

    /// Asks one idle connection to close: one of `client`'s for [`Refusal::PerClient`], any
    /// for [`Refusal::Full`].
    fn press(&self, client: IpAddr, refusal: Refusal) {
        match refusal {
            Refusal::Full => self.pressure.notify_one(),
            Refusal::PerClient => {
                let per_client = self
                    .per_client
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if let Some(c) = per_client.get(&client) {
                    c.pressure.notify_one();
                }
            }
        }
    }
}

/// One admitted connection; giving it back happens on drop, whatever ends the connection.
struct Ticket {
    admission: Arc<Admission>,
    client: IpAddr,
    /// Signalled when another connection from the same address needs this one's place.
    client_pressure: Arc<Notify>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut per_client = self
            .admission
            .per_client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = per_client.get_mut(&self.client) {
            c.held -= 1;
            if c.held == 0 {
                per_client.remove(&self.client);
            }
        }
        let total = self.admission.total.fetch_sub(1, Ordering::Relaxed) - 1;
        gauge!(names::DNS_TCP_CONNECTIONS).set(total as f64);
    }
}

/// DNS over TCP framing (RFC 1035 4.2.2): a 2-byte length, then the message.
pub fn frame_codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(2)
        .max_frame_length(usize::from(u16::MAX))
        .new_codec()
}

/// Accepts until `stop`; every connection runs on its own task.
pub async fn serve(
    listener: TcpListener,
    responder: Responder,
    admission: Arc<Admission>,
    stop: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of descriptors, mostly: give connections a moment to close.
                debug!(%error, "tcp accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        // Counted per client as the other policies see it: IPv4-mapped made IPv4.
        let client = peer.ip().to_canonical();
        match admission.admit(client) {
            Ok(ticket) => {
                tokio::spawn(connection(
                    stream,
                    peer,
                    responder.clone(),
                    ticket,
                    stop.clone(),
                ));
            }
            Err(refusal) => {
                // At a cap (this address's or everyone's), idle connections make room for an
                // active client, as RFC 7766 6.2.3 allows. The place in line is taken here,
                // before any task runs, so that an accepted socket is always a connection's or
                // the line's, both bounded and counted in the descriptor plan; the waiting
                // must not hold up the accept loop.
                let Some(place) = admission.wait_in_line(client, stream) else {
                    record_wait(Duration::ZERO, false);
                    refuse(peer, refusal);
                    continue;
                };
                let (responder, admission, stop) =
                    (responder.clone(), Arc::clone(&admission), stop.clone());
                tokio::spawn(async move {
                    match make_room(&admission, place, refusal).await {
                        Ok((ticket, stream)) => {
                            connection(stream, peer, responder, ticket, stop).await;
                        }
                        Err(refusal) => refuse(peer, refusal),
                    }
                });
            }
        }
    }
}

/// Waits in line, bounded by [`ADMISSION_WAIT`], for the waiter at `place` to fit: every
/// tick asks one idle connection to close (its own address's when it is at its own cap,
/// anyone's when the server is full; the one waiting longest for a query goes first, and only
/// once idle for [`SHED_IDLE_AFTER`]) and tries again. Gives up when displaced by a newer
/// arrival. Admitted, the socket comes out of line with its ticket.
async fn make_room(
    admission: &Arc<Admission>,
    place: Place,
    mut refusal: Refusal,
) -> Result<(Ticket, TcpStream), Refusal> {
    let started = Instant::now();
    let outcome = loop {
        admission.press(place.client, refusal);
        tokio::select! {
            _ = place.displaced.cancelled() => break Err(refusal),
            _ = tokio::time::sleep(WAIT_TICK) => {}
        }
        match place.admit() {
            Ok(Some(admitted)) => break Ok(admitted),
            Ok(None) => break Err(refusal),
            Err(again) => refusal = again,
        }
        if started.elapsed() >= ADMISSION_WAIT {
            break Err(refusal);
        }
    };
    // Refused after the wait: out of line, its socket closed, before the wait is counted.
    drop(place);
    record_wait(started.elapsed(), outcome.is_ok());
    outcome
}

fn record_wait(waited: Duration, admitted: bool) {
    let label = if admitted { "admitted" } else { "refused" };
    histogram!(names::DNS_TCP_ADMISSION_WAIT, "outcome" => label).record(waited.as_secs_f64());
}

fn refuse(peer: SocketAddr, refusal: Refusal) {
    counter!(names::DNS_TCP_REFUSED_TOTAL, "reason" => refusal.label()).increment(1);
    debug!(%peer, reason = refusal.label(), "tcp connection refused");
}

/// What woke a connection's loop.
enum Event {
    /// Asked to make room for another connection.
    Pressed,
    /// The next frame, the end of the stream, or a read error.
    Frame(Option<std::io::Result<bytes::BytesMut>>),
    /// One question's answer (`None`: nothing to send).
    Answer(Option<Vec<u8>>),
}

/// One question's answer, on a task of its own: the connection keeps its handle among the
/// pending ones. A task, not a future the connection polls, so that a question this client
/// leads upstream (others may be waiting on it, `forward`) goes on when the connection ends
/// (a reset, a write timeout) or while it waits on a slow reader: its answer is then only
/// not sent here.
fn answer(
    responder: &Responder,
    bytes: bytes::BytesMut,
    peer: SocketAddr,
) -> tokio::task::JoinHandle<Option<Vec<u8>>> {
    let responder = responder.clone();
    tokio::spawn(
        async move { exchange::answer_bytes(&responder, &bytes, peer, Protocol::Tcp).await },
    )
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    responder: Responder,
    ticket: Ticket,
    stop: CancellationToken,
) {
    let admission = Arc::clone(&ticket.admission);
    let idle_timeout = admission.limits.idle_timeout;
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut frames = FramedRead::new(read, frame_codec());
    // Questions being answered, each written when its answer is ready (RFC 7766 6.2.1.1: a
    // local answer does not wait behind a slow forwarded one). At most [`MAX_PIPELINED`]:
    // past it the connection stops reading, so one client cannot start work without bound.
    let mut pending: FuturesUnordered<tokio::task::JoinHandle<Option<Vec<u8>>>> =
        FuturesUnordered::new();
    // False once the client has sent its last byte: what it asked is still answered.
    let mut reading = true;
    let mut last_activity = Instant::now();
    let reason = loop {
        if !reading && pending.is_empty() {
            break "eof";
        }
        let event = tokio::select! {
            _ = stop.cancelled() => break "shutdown",
            _ = admission.pressure.notified() => Event::Pressed,
            _ = ticket.client_pressure.notified() => Event::Pressed,
            Some(answer) = pending.next(), if !pending.is_empty() => {
                // A task that panicked answers nothing (the client's retry will).
                Event::Answer(answer.unwrap_or(None))
            }
            frame = frames.next(), if reading && pending.len() < MAX_PIPELINED => Event::Frame(frame),
            // Idle only with nothing to answer; counted from the last frame read or written.
            _ = tokio::time::sleep_until(last_activity + idle_timeout), if pending.is_empty() => {
                break "idle";
            }
        };
        match event {
            Event::Pressed => {
                // Asked to make room: only an idle connection goes, never one mid-message
                // or with answers owed.
                if pending.is_empty()
                    && last_activity.elapsed() >= SHED_IDLE_AFTER
                    && frames.read_buffer().is_empty()
                {
                    break "shed";
                }
                // Busy enough to keep; the idle deadline is absolute, so nothing resets.
            }
            Event::Frame(None) => reading = false,
            Event::Frame(Some(Err(error))) => {
                debug!(%peer, %error, "tcp read failed");
                break "error";
            }
            Event::Frame(Some(Ok(bytes))) => {
                last_activity = Instant::now();
                pending.push(answer(&responder, bytes, peer));
            }
            Event::Answer(None) => {}
            Event::Answer(Some(answer)) => {
                let Ok(len) = u16::try_from(answer.len()) else {
                    break "oversized";
                };
                // One whole frame per write, from this one task: frames never interleave.
                let mut framed = Vec::with_capacity(answer.len() + 2);
                framed.extend_from_slice(&len.to_be_bytes());
                framed.extend_from_slice(&answer);
                match tokio::time::timeout(WRITE_TIMEOUT, write.write_all(&framed)).await {
                    Ok(Ok(())) => last_activity = Instant::now(),
                    Ok(Err(_)) => break "error",
                    Err(_) => break "write_timeout",
                }
            }
        }
    };
    counter!(names::DNS_TCP_CLOSED_TOTAL, "reason" => reason).increment(1);
    // The socket closed before its place is given back, so that the next one admitted never
    // holds a descriptor beside it. Questions still pending finish on their own tasks.
    drop(pending);
    drop((frames, write));
    drop(ticket);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_caps_per_client_and_in_total_and_gives_back_on_drop() {
        let admission = Admission::new(TcpLimits {
            idle_timeout: Duration::from_secs(1),
            max_connections: 3,
            max_per_client: 2,
        });
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        let first = admission.admit(a).expect("first");
        let _second = admission.admit(a).expect("second");
        assert_eq!(admission.admit(a).err(), Some(Refusal::PerClient));
        let _third = admission.admit(b).expect("another client");
        assert_eq!(admission.admit(b).err(), Some(Refusal::Full));
        drop(first);
        assert!(admission.admit(b).is_ok(), "room again after a close");
    }

    /// `n` accepted sockets (the server's sides of loopback connections), each with its
    /// client's side.
    async fn accepted(n: usize) -> Vec<(TcpStream, TcpStream)> {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let mut pairs = Vec::new();
        for _ in 0..n {
            let client = TcpStream::connect(addr).await.expect("connect");
            let (server, _) = listener.accept().await.expect("accept");
            pairs.push((server, client));
        }
        pairs
    }

    /// Whether the server closed the connection whose client side is `client`.
    async fn closed(client: &mut TcpStream) -> bool {
        use tokio::io::AsyncReadExt;
        let mut byte = [0u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_millis(200), client.read(&mut byte)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    #[test]
    fn the_line_is_an_eighth_of_the_cap_at_least_one_address_s_and_at_most_the_cap() {
        assert_eq!(max_waiting(1024, 64), 128);
        assert_eq!(max_waiting(16, 2), 2);
        assert_eq!(max_waiting(100, 64), 64);
        assert_eq!(max_waiting(100, 1000), 100, "no longer than the cap itself");
    }

    #[tokio::test]
    async fn the_line_is_bounded_per_address_and_in_total_and_the_newest_keeps_its_place() {
        let admission = Admission::new(TcpLimits {
            idle_timeout: Duration::from_secs(1),
            max_connections: 16,
            max_per_client: 2,
        });
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        let c: IpAddr = [127, 0, 0, 3].into();
        let mut sockets = accepted(6).await.into_iter();
        let mut next = || sockets.next().expect("a socket");
        let mut clients = Vec::new();
        let mut wait = |client: IpAddr| {
            let (server, peer) = next();
            clients.push(peer);
            admission.wait_in_line(client, server)
        };
        // 16 / 8 = 2 in line at most, one address's cap.
        assert_eq!(admission.max_waiting(), 2);
        let first = wait(a).expect("a place");
        let second = wait(a).expect("a place");
        let third = wait(a).expect("the newest keeps a place");
        assert!(first.displaced.is_cancelled(), "the oldest gave way");
        assert!(!second.displaced.is_cancelled() && !third.displaced.is_cancelled());
        assert_eq!(admission.line().total, 2);
        drop(first);
        assert_eq!(
            admission.line().total,
            2,
            "a displaced place was given back already"
        );
        // Another address, the line full: it takes the place of the longest line's oldest.
        let other = wait(b).expect("another address is not locked out");
        assert!(second.displaced.is_cancelled());
        // With one waiter each, a third address is refused rather than displace an equal.
        assert!(wait(c).is_none());
        // The displaced and the refused were closed at once, by whoever displaced or refused
        // them, whether or not their own tasks have run since; the waiting are open.
        let open: Vec<bool> = {
            let mut open = Vec::new();
            for client in &mut clients {
                open.push(!closed(client).await);
            }
            open
        };
        assert_eq!(open, [false, false, true, true, false]);
        // Admitted, a waiter's socket comes out of line with its ticket.
        let (ticket, _stream) = third
            .admit()
            .expect("room")
            .expect("still in line, not displaced");
        assert_eq!(admission.line().total, 1);
        assert!(second.admit().expect("room").is_none(), "displaced earlier");
        drop((second, third, other, ticket));
        let line = admission.line();
        assert_eq!((line.total, line.waiting.len()), (0, 0), "all given back");
        assert_eq!(admission.total.load(Ordering::Relaxed), 0);
    }
}
