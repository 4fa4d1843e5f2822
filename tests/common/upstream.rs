//! A tiny upstream DNS server on loopback for forwarding tests, whose behaviour the test
//! picks: answer, SERVFAIL, NXDOMAIN, silence, truncate over UDP, or answer slowly.

use std::{
    io::{Read, Write},
    net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use hickory_server::proto::{
    op::{Message, MessageType, ResponseCode},
    rr::{
        Name, RData, Record,
        rdata::{A, SOA},
    },
};

#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// A records 192.0.2.1 and 192.0.2.2 with this TTL.
    Answer {
        ttl: u32,
    },
    ServFail,
    NxDomain,
    /// Never answers.
    Silent,
    /// Never answers names that start with this; answers others as `Answer { ttl: 0 }`.
    SilentFor(&'static str),
    /// UDP: TC set and no answers; TCP: the full answer.
    TruncateUdp,
    /// Answers after this long.
    Slow(Duration),
    /// A small zone with TTL 300: `cname.test.` is a CNAME to `target.test.` (192.0.2.7),
    /// `many.test.` has 40 A records, `gone.test.` is NXDOMAIN with an SOA, AAAA of anything
    /// else is NODATA with an SOA, and A of anything else is 192.0.2.1 and 192.0.2.2.
    Zone,
}

pub struct FakeUpstream {
    pub addr: SocketAddr,
    pub udp_queries: Arc<AtomicUsize>,
    pub tcp_queries: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn respond(query: &[u8], mode: Mode, over_tcp: bool) -> Option<Vec<u8>> {
    let request = Message::from_vec(query).ok()?;
    let mut reply = Message::new(
        request.metadata.id,
        MessageType::Response,
        request.metadata.op_code,
    );
    reply.metadata.recursion_desired = request.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.queries = request.queries.clone();
    let name = request.queries.first()?.name().clone();
    match mode {
        Mode::Silent => return None,
        Mode::SilentFor(prefix) if name.to_ascii().starts_with(prefix) => return None,
        Mode::SilentFor(_) => {
            for last in [1, 2] {
                reply.answers.push(Record::from_rdata(
                    name.clone(),
                    0,
                    RData::A(A(Ipv4Addr::new(192, 0, 2, last))),
                ));
            }
        }
        Mode::ServFail => reply.metadata.response_code = ResponseCode::ServFail,
        Mode::NxDomain => {
            reply.metadata.response_code = ResponseCode::NXDomain;
            let zone = Name::from_ascii("test.").ok()?;
            let soa = SOA::new(zone.clone(), zone.clone(), 1, 60, 60, 60, 30);
            reply
                .authorities
                .push(Record::from_rdata(zone, 30, RData::SOA(soa)));
        }
        Mode::TruncateUdp if !over_tcp => reply.metadata.truncation = true,
        Mode::Slow(delay) => {
            std::thread::sleep(delay);
            reply.answers.push(Record::from_rdata(
                name,
                60,
                RData::A(A(Ipv4Addr::new(192, 0, 2, 1))),
            ));
        }
        Mode::Answer { ttl } => {
            for last in [1, 2] {
                reply.answers.push(Record::from_rdata(
                    name.clone(),
                    ttl,
                    RData::A(A(Ipv4Addr::new(192, 0, 2, last))),
                ));
            }
        }
        Mode::Zone => zone_answer(&mut reply, &name, request.queries.first()?.query_type())?,
        Mode::TruncateUdp => {
            for last in 1..=40 {
                reply.answers.push(Record::from_rdata(
                    name.clone(),
                    60,
                    RData::A(A(Ipv4Addr::new(192, 0, 2, last))),
                ));
            }
        }
    }
    reply.to_vec().ok()
}

fn zone_answer(
    reply: &mut Message,
    name: &Name,
    qtype: hickory_server::proto::rr::RecordType,
) -> Option<()> {
    use hickory_server::proto::rr::{RecordType, rdata::CNAME};
    let zone = Name::from_ascii("test.").ok()?;
    let soa = Record::from_rdata(
        zone.clone(),
        300,
        RData::SOA(SOA::new(zone.clone(), zone, 1, 60, 60, 60, 120)),
    );
    let a = |owner: &Name, last: u8| {
        Record::from_rdata(
            owner.clone(),
            300,
            RData::A(A(Ipv4Addr::new(192, 0, 2, last))),
        )
    };
    let lower = name.to_lowercase().to_ascii();
    match (lower.as_str(), qtype) {
        ("gone.test.", _) => {
            reply.metadata.response_code = ResponseCode::NXDomain;
            reply.authorities.push(soa);
        }
        ("cname.test.", RecordType::A) => {
            let target = Name::from_ascii("target.test.").ok()?;
            reply.answers.push(Record::from_rdata(
                name.clone(),
                300,
                RData::CNAME(CNAME(target.clone())),
            ));
            reply.answers.push(a(&target, 7));
        }
        ("many.test.", RecordType::A) => reply.answers.extend((1..=40).map(|i| a(name, i))),
        (_, RecordType::A) => reply.answers.extend([a(name, 1), a(name, 2)]),
        _ => reply.authorities.push(soa),
    }
    Some(())
}

impl FakeUpstream {
    pub fn start(mode: Mode) -> FakeUpstream {
        // A free UDP port may be taken on TCP: try again until both are ours.
        let (udp, tcp, addr) = (0..50)
            .find_map(|_| {
                let udp = UdpSocket::bind("127.0.0.1:0").ok()?;
                let addr = udp.local_addr().ok()?;
                let tcp = TcpListener::bind(addr).ok()?;
                Some((udp, tcp, addr))
            })
            .expect("bind fake upstream on UDP and TCP");
        udp.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        tcp.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let udp_queries = Arc::new(AtomicUsize::new(0));
        let tcp_queries = Arc::new(AtomicUsize::new(0));
        {
            let (stop, count) = (stop.clone(), udp_queries.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, from)) = udp.recv_from(&mut buf) else {
                        continue;
                    };
                    count.fetch_add(1, Ordering::Relaxed);
                    let query = buf[..n].to_vec();
                    let socket = udp.try_clone().expect("clone");
                    std::thread::spawn(move || {
                        if let Some(reply) = respond(&query, mode, false) {
                            let _ = socket.send_to(&reply, from);
                        }
                    });
                }
            });
        }
        {
            let (stop, count) = (stop.clone(), tcp_queries.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Ok((mut stream, _)) = tcp.accept() else {
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    };
                    let count = count.clone();
                    std::thread::spawn(move || {
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                        let mut len = [0u8; 2];
                        if stream.read_exact(&mut len).is_err() {
                            return;
                        }
                        let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
                        if stream.read_exact(&mut body).is_err() {
                            return;
                        }
                        count.fetch_add(1, Ordering::Relaxed);
                        if let Some(reply) = respond(&body, mode, true) {
                            let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
                            framed.extend_from_slice(&reply);
                            let _ = stream.write_all(&framed);
                        }
                    });
                }
            });
        }
        FakeUpstream {
            addr,
            udp_queries,
            tcp_queries,
            stop,
        }
    }

    pub fn udp(&self) -> usize {
        self.udp_queries.load(Ordering::Relaxed)
    }
    pub fn tcp(&self) -> usize {
        self.tcp_queries.load(Ordering::Relaxed)
    }
}
