//! Forwarding loops, with the real binary on loopback: an upstream that hands netalias's
//! questions straight back to it (as Docker's 127.0.0.11 does when the daemon's `dns` names
//! netalias: same ID) gets one SERVFAIL, at once, never forwarded again; a resolver in between
//! that rewrites IDs (a real dnsmasq) cannot multiply them either. Every query is counted.

mod common;

use std::{
    net::{SocketAddr, UdpSocket},
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use common::{dnsmasq, *};

/// The most a relay passes on: far above what any of these tests needs, so that a loop that
/// did multiply stays bounded and shows in the count.
const RELAY_CAP: usize = 50;

/// A UDP relay on 127.0.0.2: each datagram it receives goes, unchanged (ID and all), to
/// `target`, and the answer goes back to the sender. Counts what it relayed.
struct Relay {
    addr: SocketAddr,
    target: Arc<OnceLock<SocketAddr>>,
    relayed: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Relay {
    fn start() -> Relay {
        let socket = UdpSocket::bind("127.0.0.2:0").expect("bind 127.0.0.2");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let addr = socket.local_addr().expect("addr");
        let target: Arc<OnceLock<SocketAddr>> = Arc::default();
        let relayed = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (t, r, s) = (Arc::clone(&target), Arc::clone(&relayed), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while !s.load(Ordering::Relaxed) {
                let Ok((len, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let Some(&to) = t.get() else { continue };
                if r.fetch_add(1, Ordering::Relaxed) >= RELAY_CAP {
                    continue;
                }
                let back = UdpSocket::bind("127.0.0.2:0").expect("bind");
                back.set_read_timeout(Some(TIMEOUT)).expect("timeout");
                let _ = back.send_to(&buf[..len], to);
                let mut answer = vec![0u8; 4096];
                if let Ok((n, _)) = back.recv_from(&mut answer) {
                    let _ = socket.send_to(&answer[..n], from);
                }
            }
        });
        Relay {
            addr,
            target,
            relayed,
            stop,
        }
    }

    fn relayed(&self) -> usize {
        self.relayed.load(Ordering::Relaxed)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn rcode(server: &Server, name: &str) -> ResponseCode {
    udp(server.addr, &query(name, RecordType::A))
        .metadata
        .response_code
}

const LOOP_WARNING: &str = "a forwarded question came back to netalias";

/// An upstream that is netalias itself, through another address (so it is not dropped as
/// one of ours at start): the question comes back under the ID netalias sent it with.
#[test]
fn a_question_coming_back_under_our_id_fails_at_once_and_is_not_forwarded_again() {
    let relay = Relay::start();
    let http = SocketAddr::from(([127, 0, 0, 1], free_port()));
    // A forward timeout far past the client's: were the loop not caught, the question that
    // came back would wait for the first (which waits for it) and the client would hear
    // nothing within its 5 s.
    let config = seed_config(&format!("http_listen = \"{http}\""))
        + &format!(
            "\n[forward]\nenabled = true\nupstreams = [\"{}\"]\ntimeout_ms = 20000\n",
            relay.addr
        );
    let server = Server::start(&config);
    relay.target.set(server.addr).expect("target set once");
    // Another address of ours is not recognised at start (only our listen addresses are):
    // kept, and the log says where it came from.
    let said = format!("upstreams=[{}] from=\"forward.upstreams\"", relay.addr);
    assert!(
        server.startup_log.iter().any(|l| l.contains(&said)),
        "{said} in {:?}",
        server.startup_log
    );

    assert_eq!(rcode(&server, "loop.example."), ResponseCode::ServFail);
    assert_eq!(relay.relayed(), 1, "the question came back once, no more");
    server.wait_log(LOOP_WARNING);
    let page = metrics_page(http);
    assert_eq!(metric(&page, "netalias_forward_loops_total"), 1.0, "{page}");
    let upstream = format!(
        "netalias_upstream_requests_total{{upstream=\"{}\"}}",
        relay.addr
    );
    assert_eq!(metric(&page, &upstream), 1.0, "asked upstream once");

    // Another question loops the same way: counted, not logged at warn again.
    assert_eq!(rcode(&server, "loop2.example."), ResponseCode::ServFail);
    assert_eq!(relay.relayed(), 2);
    let page = metrics_page(http);
    assert_eq!(metric(&page, "netalias_forward_loops_total"), 2.0, "{page}");
    assert_eq!(metric(&page, &upstream), 2.0);
    let later = server.log_so_far();
    assert!(!later.contains(LOOP_WARNING), "warned once only:\n{later}");
    // Its own names are unaffected.
    assert_eq!(rcode(&server, "web1."), ResponseCode::NoError);
}

/// A real dnsmasq between netalias and itself rewrites the ID, so the question that comes
/// back is not recognised as ours; it joins the identical one in flight instead of being
/// sent again, so each client question makes one trip round the loop, and the client gets
/// SERVFAIL when the forward times out.
#[test]
fn a_resolver_that_rewrites_ids_cannot_make_a_storm() {
    if !dnsmasq::Dnsmasq::installed() {
        assert!(std::env::var_os("CI").is_none(), "CI needs dnsmasq");
        eprintln!("dnsmasq not installed; skipped");
        return;
    }
    let netalias_port = free_port();
    let dnsmasq_port = free_port();
    let http = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let _dnsmasq = dnsmasq::Dnsmasq::start_with(
        "127.0.0.1",
        dnsmasq_port,
        "",
        &[&format!("--server=127.0.0.1#{netalias_port}")],
    );
    let config = seed_config(&format!("http_listen = \"{http}\""))
        .replace("127.0.0.1:0", &format!("127.0.0.1:{netalias_port}"))
        + &format!(
            "\n[forward]\nenabled = true\nupstreams = [\"127.0.0.1:{dnsmasq_port}\"]\ntimeout_ms = 1000\n"
        );
    let server = Server::start(&config);

    assert_eq!(rcode(&server, "storm.example."), ResponseCode::ServFail);
    // Settle: anything still going round the loop would show in the counts below.
    std::thread::sleep(Duration::from_secs(2));
    let page = metrics_page(http);
    let upstream =
        format!("netalias_upstream_requests_total{{upstream=\"127.0.0.1:{dnsmasq_port}\"}}");
    assert_eq!(metric(&page, &upstream), 1.0, "sent upstream once\n{page}");
    assert_eq!(
        metric(&page, "netalias_forward_coalesced_total"),
        1.0,
        "the question that came back joined the one in flight"
    );
    assert_eq!(
        _dnsmasq.count("query[A] storm.example from 127.0.0.1"),
        1,
        "dnsmasq saw it once:\n{}",
        _dnsmasq.log()
    );
}
