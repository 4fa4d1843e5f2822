//! One upstream server: how to ask it (UDP, TCP, UDP then TCP on truncation) and how well it
//! has been answering. Health is a penalty deadline: a failing upstream is tried after the
//! healthy ones until the deadline passes. No caching and no policy here.

use std::{
    net::SocketAddr,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use hickory_server::proto::{op::Message, rr::LowerName};
use metrics::{Counter, Histogram, counter, histogram};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpStream, UdpSocket},
};

use crate::telemetry::names;

/// How long a failed upstream goes to the back of the line.
const PENALTY: Duration = Duration::from_secs(30);
/// Largest UDP answer we accept from an upstream (we advertise the same in our OPT).
pub const UPSTREAM_UDP_PAYLOAD: u16 = 1232;

#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("network error: {0}")]
    Io(#[from] std::io::Error),
    #[error("undecodable answer: {0}")]
    Decode(String),
}

#[derive(Debug)]
pub struct Upstream {
    pub addr: SocketAddr,
    /// The label used in metrics and logs.
    pub label: String,
    /// Its series, registered once (each `counter!` with a label built and hashed its key,
    /// and cloned the label, on every forwarded question).
    pub metrics: UpstreamMetrics,
    /// Milliseconds since `epoch` until which this upstream is penalised; 0 = healthy.
    penalised_until: AtomicU64,
    epoch: Instant,
}

/// One upstream's metric handles (`upstream` label = its address). Made after the recorder
/// is installed, as `serve` does it, or they record nothing.
#[derive(Debug)]
pub struct UpstreamMetrics {
    pub requests: Counter,
    pub failures: Counter,
    pub tcp_retries: Counter,
    pub duration: Histogram,
}

impl UpstreamMetrics {
    fn new(label: &str) -> UpstreamMetrics {
        let label = || ("upstream", label.to_string());
        UpstreamMetrics {
            requests: counter!(names::UPSTREAM_REQUESTS_TOTAL, &[label()]),
            failures: counter!(names::UPSTREAM_FAILURES_TOTAL, &[label()]),
            tcp_retries: counter!(names::UPSTREAM_TCP_RETRIES_TOTAL, &[label()]),
            duration: histogram!(names::UPSTREAM_REQUEST_DURATION, &[label()]),
        }
    }
}

impl Upstream {
    pub fn new(addr: SocketAddr) -> Upstream {
        let label = addr.to_string();
        Upstream {
            addr,
            metrics: UpstreamMetrics::new(&label),
            label,
            penalised_until: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    pub fn is_healthy(&self) -> bool {
        self.penalised_until.load(Ordering::Relaxed) <= self.now_ms()
    }

    pub fn mark_failed(&self) {
        let until = self.now_ms() + PENALTY.as_millis() as u64;
        self.penalised_until.store(until, Ordering::Relaxed);
    }

    pub fn mark_ok(&self) {
        self.penalised_until.store(0, Ordering::Relaxed);
    }
}

/// Whether `answer` answers `query`: same ID, a response, same question.
fn matches(query: &Message, answer: &Message) -> bool {
    let same_question = match (query.queries.first(), answer.queries.first()) {
        (Some(q), Some(a)) => {
            q.query_type() == a.query_type()
                && q.query_class() == a.query_class()
                && LowerName::new(q.name()) == LowerName::new(a.name())
        }
        _ => false,
    };
    answer.metadata.id == query.metadata.id
        && answer.metadata.message_type == hickory_server::proto::op::MessageType::Response
        && same_question
}

fn decode(bytes: &[u8]) -> Result<Message, ExchangeError> {
    Message::from_vec(bytes).map_err(|e| ExchangeError::Decode(e.to_string()))
}

/// One UDP exchange. A connected socket turns "port unreachable" into an immediate error.
pub async fn exchange_udp(
    addr: SocketAddr,
    query: &Message,
    wire: &[u8],
    timeout: Duration,
) -> Result<Message, ExchangeError> {
    let local: SocketAddr = if addr.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(addr).await?;
    socket.send(wire).await?;
    let mut buf = vec![0u8; usize::from(UPSTREAM_UDP_PAYLOAD).max(4096)];
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let received = tokio::time::timeout_at(deadline, socket.recv(&mut buf))
            .await
            .map_err(|_| ExchangeError::Timeout(timeout))??;
        // Anything that is not the answer to this query (late, spoofed) is ignored.
        if let Ok(answer) = decode(&buf[..received])
            && matches(query, &answer)
        {
            return Ok(answer);
        }
    }
}

/// One TCP exchange (RFC 1035 4.2.2 framing).
pub async fn exchange_tcp(
    addr: SocketAddr,
    query: &Message,
    wire: &[u8],
    timeout: Duration,
) -> Result<Message, ExchangeError> {
    let work = async {
        let mut stream = TcpStream::connect(addr).await?;
        let len = u16::try_from(wire.len())
            .map_err(|_| ExchangeError::Decode("query longer than 65535 bytes".into()))?;
        let mut framed = Vec::with_capacity(wire.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(wire);
        stream.write_all(&framed).await?;
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await?;
        let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut body).await?;
        let answer = decode(&body)?;
        if matches(query, &answer) {
            Ok(answer)
        } else {
            Err(ExchangeError::Decode(
                "answer does not match the query".into(),
            ))
        }
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| ExchangeError::Timeout(timeout))?
}
