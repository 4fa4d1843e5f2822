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
//! waits with at most its cap, and the server with an eighth of its own; past either, the
//! newest arrival takes the place of the oldest waiter (of the longest line), which is
//! refused, so a flood holds no more than twice its cap and cannot lock out the next client.
//! Each connection reads 2-byte-length frames (tokio-util's codec), answers them in order
//! through [`exchange`](super::exchange), and closes when idle, when a message stays
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

use futures_util::StreamExt;
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

/// One waiting connection: cancelled when a newer arrival takes its place in line.
struct Waiter {
    id: u64,
    displaced: CancellationToken,
}

/// A place in line, given back on drop (admitted, refused or displaced alike).
struct Place {
    admission: Arc<Admission>,
    client: IpAddr,
    id: u64,
    displaced: CancellationToken,
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut guard = self.admission.line();
        let line = &mut *guard;
        if let Some(queue) = line.waiting.get_mut(&self.client) {
            if let Some(at) = queue.iter().position(|w| w.id == self.id) {
                queue.remove(at);
                line.total -= 1;
            }
            if queue.is_empty() {
                line.waiting.remove(&self.client);
            }
        }
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

    /// The most connections waiting for room at once: an eighth of the total cap, at least
    /// one address's cap.
    fn max_waiting(&self) -> usize {
        (self.limits.max_connections / 8).max(self.limits.max_per_client)
    }

    /// A place in line for a new connection from `client`. Its address's line full, its oldest
    /// waiter is displaced; the whole line full, the oldest waiter of the longest line is, when
    /// that line is longer than `client`'s would be (else `None`: refused at once).
    fn wait_in_line(self: &Arc<Self>, client: IpAddr) -> Option<Place> {
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
                // active client, as RFC 7766 6.2.3 allows; waiting must not hold up the accept loop.
                let (responder, admission, stop) =
                    (responder.clone(), Arc::clone(&admission), stop.clone());
                tokio::spawn(async move {
                    match make_room(&admission, client, refusal).await {
                        Ok(ticket) => connection(stream, peer, responder, ticket, stop).await,
                        Err(refusal) => refuse(peer, refusal),
                    }
                });
            }
        }
    }
}

/// Waits in line, bounded by [`ADMISSION_WAIT`], for `client` to fit: every tick asks one
/// idle connection to close (its own when it is at its own cap, anyone's when the server is
/// full; the one waiting longest for a query goes first, and only once idle for
/// [`SHED_IDLE_AFTER`]) and tries again. Gives up when displaced by a newer arrival.
async fn make_room(
    admission: &Arc<Admission>,
    client: IpAddr,
    mut refusal: Refusal,
) -> Result<Ticket, Refusal> {
    let started = Instant::now();
    let outcome = match admission.wait_in_line(client) {
        None => Err(refusal),
        Some(place) => loop {
            admission.press(client, refusal);
            tokio::select! {
                _ = place.displaced.cancelled() => break Err(refusal),
                _ = tokio::time::sleep(WAIT_TICK) => {}
            }
            match admission.admit(client) {
                Ok(ticket) => break Ok(ticket),
                Err(again) => refusal = again,
            }
            if started.elapsed() >= ADMISSION_WAIT {
                break Err(refusal);
            }
        },
    };
    let label = if outcome.is_ok() {
        "admitted"
    } else {
        "refused"
    };
    histogram!(names::DNS_TCP_ADMISSION_WAIT, "outcome" => label)
        .record(started.elapsed().as_secs_f64());
    outcome
}

fn refuse(peer: SocketAddr, refusal: Refusal) {
    counter!(names::DNS_TCP_REFUSED_TOTAL, "reason" => refusal.label()).increment(1);
    debug!(%peer, reason = refusal.label(), "tcp connection refused");
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
    let mut last_activity = Instant::now();
    let reason = loop {
        let frame = tokio::select! {
            _ = stop.cancelled() => break "shutdown",
            _ = admission.pressure.notified() => None,
            _ = ticket.client_pressure.notified() => None,
            frame = tokio::time::timeout_at(last_activity + idle_timeout, frames.next()) => Some(frame),
        };
        let Some(frame) = frame else {
            // Asked to make room: only an idle connection goes, never one mid-message.
            if last_activity.elapsed() >= SHED_IDLE_AFTER && frames.read_buffer().is_empty() {
                break "shed";
            }
            continue; // busy enough to keep; the idle deadline is absolute, so nothing resets
        };
        let bytes = match frame {
            Err(_) => break "idle",
            Ok(None) => break "eof",
            Ok(Some(Err(error))) => {
                debug!(%peer, %error, "tcp read failed");
                break "error";
            }
            Ok(Some(Ok(bytes))) => bytes,
        };
        last_activity = Instant::now();
        let Some(answer) = exchange::answer_bytes(&responder, &bytes, peer, Protocol::Tcp).await
        else {
            continue;
        };
        let Ok(len) = u16::try_from(answer.len()) else {
            break "oversized";
        };
        let mut framed = Vec::with_capacity(answer.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&answer);
        match tokio::time::timeout(WRITE_TIMEOUT, write.write_all(&framed)).await {
            Ok(Ok(())) => last_activity = Instant::now(),
            Ok(Err(_)) => break "error",
            Err(_) => break "write_timeout",
        }
    };
    counter!(names::DNS_TCP_CLOSED_TOTAL, "reason" => reason).increment(1);
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

    #[test]
    fn the_line_is_bounded_per_address_and_in_total_and_the_newest_keeps_its_place() {
        let admission = Admission::new(TcpLimits {
            idle_timeout: Duration::from_secs(1),
            max_connections: 16,
            max_per_client: 2,
        });
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        // 16 / 8 = 2 in line at most, one address's cap.
        assert_eq!(admission.max_waiting(), 2);
        let first = admission.wait_in_line(a).expect("a place");
        let second = admission.wait_in_line(a).expect("a place");
        let third = admission.wait_in_line(a).expect("the newest keeps a place");
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
        let other = admission
            .wait_in_line(b)
            .expect("another address is not locked out");
        assert!(second.displaced.is_cancelled());
        // With one waiter each, a third address is refused rather than displace an equal.
        let c: IpAddr = [127, 0, 0, 3].into();
        assert!(admission.wait_in_line(c).is_none());
        drop((second, third, other));
        let line = admission.line();
        assert_eq!((line.total, line.waiting.len()), (0, 0), "all given back");
    }
}
