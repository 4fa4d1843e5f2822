//! Forwarding against test upstreams on loopback: pass-through, failover, the in-flight
//! limit, TCP, the cache, and a real dnsmasq as the upstream.

mod common;

use std::time::Duration;

use common::{dnsmasq, upstream::*, *};

fn forward_config(upstreams: &[&FakeUpstream], extra: &str) -> String {
    let list: Vec<String> = upstreams
        .iter()
        .map(|u| format!("\"{}\"", u.addr))
        .collect();
    seed_config("")
        + &format!(
            "\n[forward]\nenabled = true\nupstreams = [{}]\ntimeout_ms = 1000\n{extra}\n",
            list.join(", ")
        )
}

fn rcode(server: &Server, name: &str) -> ResponseCode {
    udp(server.addr, &query(name, RecordType::A))
        .metadata
        .response_code
}

#[test]
fn unknown_names_are_forwarded_and_local_ones_are_not() {
    let up = FakeUpstream::start(Mode::Answer { ttl: 0 });
    let server = Server::start(&forward_config(&[&up], ""));
    let answer = udp(server.addr, &query("elsewhere.example.", RecordType::A));
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    assert_eq!(a_records(&answer).len(), 2);
    assert!(answer.metadata.recursion_available);
    assert!(
        !answer.metadata.authoritative,
        "forwarded answers are not ours"
    );
    // Local names and names inside our zones never leave.
    assert_eq!(a_of(&server, "app.").len(), 3);
    assert_eq!(rcode(&server, "nope.docker."), ResponseCode::NXDomain);
    assert_eq!(up.udp(), 1);
}

#[test]
fn nxdomain_passes_through_without_failover() {
    let nx = FakeUpstream::start(Mode::NxDomain);
    let other = FakeUpstream::start(Mode::Answer { ttl: 0 });
    let server = Server::start(&forward_config(&[&nx, &other], ""));
    let answer = udp(server.addr, &query("missing.test.", RecordType::A));
    assert_eq!(answer.metadata.response_code, ResponseCode::NXDomain);
    assert!(
        answer
            .authorities
            .iter()
            .any(|r| r.record_type() == RecordType::SOA)
    );
    assert_eq!(other.udp(), 0, "NXDOMAIN is an answer, not a failure");
}

#[test]
fn a_dead_upstream_fails_over_within_the_client_timeout_and_is_then_skipped() {
    let dead = FakeUpstream::start(Mode::Silent);
    let live = FakeUpstream::start(Mode::Answer { ttl: 0 });
    let server = Server::start(&forward_config(&[&dead, &live], ""));
    let started = std::time::Instant::now();
    let first = udp(server.addr, &query("a.example.", RecordType::A));
    assert_eq!(first.metadata.response_code, ResponseCode::NoError);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered within a client's usual 5 s"
    );
    for name in ["b.example.", "c.example.", "d.example."] {
        assert_eq!(rcode(&server, name), ResponseCode::NoError);
    }
    assert_eq!(
        dead.udp(),
        1,
        "a failing upstream goes to the back of the line"
    );
    assert_eq!(live.udp(), 4);
}

#[test]
fn servfail_moves_on_to_the_next_upstream() {
    let bad = FakeUpstream::start(Mode::ServFail);
    let good = FakeUpstream::start(Mode::Answer { ttl: 0 });
    let server = Server::start(&forward_config(&[&bad, &good], ""));
    assert_eq!(rcode(&server, "x.example."), ResponseCode::NoError);
    assert_eq!((bad.udp(), good.udp()), (1, 1));
}

#[test]
fn all_upstreams_failing_gives_servfail() {
    let bad = FakeUpstream::start(Mode::ServFail);
    let server = Server::start(&forward_config(&[&bad], ""));
    assert_eq!(rcode(&server, "x.example."), ResponseCode::ServFail);
}

/// Past the in-flight limit: SERVFAIL ("cannot answer now", as Docker's resolver says), not
/// REFUSED ("not for you").
#[test]
fn the_in_flight_limit_answers_servfail() {
    let slow = FakeUpstream::start(Mode::Slow(Duration::from_millis(800)));
    let server = Server::start(&forward_config(&[&slow], "max_in_flight = 1"));
    let addr = server.addr;
    let first = std::thread::spawn(move || udp(addr, &query("slow1.example.", RecordType::A)));
    // Wait until the upstream holds the first query, then ask a second name.
    assert!(docker::eventually(Duration::from_secs(5), || slow.udp() == 1));
    let second = udp(server.addr, &query("slow2.example.", RecordType::A));
    assert_eq!(second.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(
        first.join().expect("first").metadata.response_code,
        ResponseCode::NoError
    );
    assert_eq!(
        slow.udp(),
        1,
        "the query over the limit never reached the upstream"
    );
}

#[test]
fn truncated_upstream_answers_are_retried_over_tcp_and_tcp_clients_use_tcp() {
    let up = FakeUpstream::start(Mode::TruncateUdp);
    let http: std::net::SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let server = Server::start(&forward_config(&[&up], "cache_entries = 0").replacen(
        "[server]\n",
        &format!("[server]\nhttp_listen = \"{http}\"\n"),
        1,
    ));
    let over_tcp = tcp(server.addr, &query("big.example.", RecordType::A));
    assert_eq!(a_records(&over_tcp).len(), 40);
    assert_eq!(
        (up.udp(), up.tcp()),
        (0, 1),
        "a TCP client is forwarded over TCP"
    );
    let over_udp = udp(
        server.addr,
        &with_edns(query("big2.example.", RecordType::A), 1232, 0),
    );
    assert_eq!(
        a_records(&over_udp).len(),
        40,
        "UDP client gets the TCP-fetched answer"
    );
    assert_eq!(
        (up.udp(), up.tcp()),
        (1, 2),
        "TC from the upstream → retried over TCP"
    );
    // The upstream's own series, registered when it was configured, with their HELP lines.
    let page = metrics_page(http);
    let series = |name: &str| metric(&page, &format!("{name}{{upstream=\"{}\"}}", up.addr));
    assert_eq!(series("netalias_upstream_requests_total"), 2.0, "{page}");
    assert_eq!(series("netalias_upstream_tcp_retries_total"), 1.0, "{page}");
    assert_eq!(series("netalias_upstream_failures_total"), 0.0, "{page}");
    assert!(
        page.contains("# HELP netalias_upstream_tcp_retries_total Truncated upstream answers"),
        "{page}"
    );
}

#[test]
fn answers_are_cached_for_their_ttl() {
    let up = FakeUpstream::start(Mode::Answer { ttl: 300 });
    let server = Server::start(&forward_config(&[&up], ""));
    for _ in 0..5 {
        assert_eq!(a_of(&server, "cached.example.").len(), 2);
    }
    assert_eq!(up.udp(), 1);
    let zero = FakeUpstream::start(Mode::Answer { ttl: 0 });
    let server = Server::start(&forward_config(&[&zero], ""));
    for _ in 0..3 {
        udp(server.addr, &query("uncached.example.", RecordType::A));
    }
    assert_eq!(zero.udp(), 3, "TTL 0 is not cached");
}

/// Forwarding off: an asker that may use netalias (here loopback) hears SERVFAIL, as Docker's
/// resolver answers when it cannot forward; strangers still get REFUSED (handler's tests).
#[test]
fn forwarding_off_means_servfail() {
    let server = Server::start(&seed_config(""));
    assert_eq!(rcode(&server, "elsewhere.example."), ResponseCode::ServFail);
}

/// Forwarding on with no upstream given and no readable resolv.conf: the start log says so,
/// and names not ours get SERVFAIL at once (was REFUSED).
#[test]
fn no_usable_upstream_means_servfail() {
    let dir = tempfile::tempdir().expect("dir");
    let missing = dir.path().join("no-resolv.conf");
    let config = seed_config("")
        + &format!(
            "\n[forward]\nenabled = true\nresolv_conf = \"{}\"\n",
            missing.display()
        );
    let server = Server::start(&config);
    assert!(
        server
            .startup_log
            .iter()
            .any(|l| l.contains("resolv.conf is unusable") && l.contains("SERVFAIL")),
        "{:?}",
        server.startup_log
    );
    assert_eq!(rcode(&server, "elsewhere.example."), ResponseCode::ServFail);
    // Its own names are still answered.
    assert_eq!(rcode(&server, "web1."), ResponseCode::NoError);
}

#[test]
fn a_real_dnsmasq_upstream() {
    if !dnsmasq::Dnsmasq::installed() {
        assert!(std::env::var_os("CI").is_none(), "CI needs dnsmasq");
        eprintln!("dnsmasq not installed; skipped");
        return;
    }
    // Pick a free port, then let dnsmasq take it.
    let port = free_port();
    let _dnsmasq = dnsmasq::Dnsmasq::start("127.0.0.1", port, "198.51.100.7 peer.test\n");
    let config = seed_config("")
        + &format!("\n[forward]\nenabled = true\nupstreams = [\"127.0.0.1:{port}\"]\n");
    let server = Server::start(&config);
    let answered = docker::eventually(Duration::from_secs(5), || {
        a_of(&server, "peer.test.") == [std::net::Ipv4Addr::new(198, 51, 100, 7)]
    });
    assert!(answered, "answered through dnsmasq");
}

/// A network named like a real domain (`dev`) answers its own names and hides nothing else:
/// `pkg.go.dev` and any other unheld name below `dev.` go upstream, as Docker's resolver
/// sends names it does not hold; only the search domain answers NXDOMAIN for itself.
#[test]
fn a_network_named_dev_does_not_hide_pkg_go_dev() {
    let up = FakeUpstream::start(Mode::Answer { ttl: 0 });
    let config = forward_config(&[&up], "")
        + "\n[networks.dev]\n[[networks.dev.endpoints]]\nname = \"web\"\nipv4 = \"10.9.0.2\"\naliases = [\"api\"]\n";
    let server = Server::start(&config);
    for name in [
        "web.dev.",
        "api.dev.",
        "WEB.Dev.",
        "web.dev.docker.",
        "web.",
    ] {
        let answer = udp(server.addr, &query(name, RecordType::A));
        assert_eq!(
            a_records(&answer),
            vec![std::net::Ipv4Addr::new(10, 9, 0, 2)],
            "{name}"
        );
        assert!(answer.metadata.authoritative, "{name}");
    }
    assert_eq!(up.udp(), 0, "held names never leave");
    for (i, name) in ["pkg.go.dev.", "nope.dev.", "go.dev."].iter().enumerate() {
        let answer = udp(server.addr, &query(name, RecordType::A));
        assert_eq!(
            answer.metadata.response_code,
            ResponseCode::NoError,
            "{name}"
        );
        assert!(!answer.metadata.authoritative, "{name} is not ours");
        assert_eq!(a_records(&answer).len(), 2, "{name}: the upstream's answer");
        assert_eq!(up.udp(), i + 1, "{name} went upstream");
    }
    assert_eq!(rcode(&server, "nope.dev.docker."), ResponseCode::NXDomain);
    assert_eq!(rcode(&server, "nope.docker."), ResponseCode::NXDomain);
    assert_eq!(up.udp(), 3, "names under the search domain never leave");
}

/// One client cannot hold every forwarding slot: past its share (a quarter by default) it
/// gets SERVFAIL at once while another client is still forwarded for.
#[test]
fn one_client_holds_at_most_its_share_of_the_forwarding_slots() {
    let slow = FakeUpstream::start(Mode::Slow(Duration::from_millis(800)));
    let server = Server::start(&forward_config(&[&slow], "max_in_flight = 8"));
    let addr = server.addr;
    // Two slots for 127.0.0.2: its first two distinct questions go upstream...
    let greedy: Vec<_> = (0..2)
        .map(|i| {
            std::thread::spawn(move || {
                let sock = std::net::UdpSocket::bind("127.0.0.2:0").expect("bind");
                sock.set_read_timeout(Some(TIMEOUT)).expect("timeout");
                let q = query(&format!("greedy{i}.example."), RecordType::A);
                sock.send_to(&q.to_vec().expect("encode"), addr)
                    .expect("send");
                let mut buf = [0u8; 1500];
                let (n, _) = sock.recv_from(&mut buf).expect("answer");
                Message::from_vec(&buf[..n])
                    .expect("decode")
                    .metadata
                    .response_code
            })
        })
        .collect();
    assert!(docker::eventually(Duration::from_secs(5), || slow.udp() == 2));
    // ...its third fails at once (SERVFAIL), without reaching the upstream...
    let sock = std::net::UdpSocket::bind("127.0.0.2:0").expect("bind");
    sock.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let q = query("greedy3.example.", RecordType::A);
    sock.send_to(&q.to_vec().expect("encode"), addr)
        .expect("send");
    let mut buf = [0u8; 1500];
    let (n, _) = sock.recv_from(&mut buf).expect("answer");
    assert_eq!(
        Message::from_vec(&buf[..n])
            .expect("decode")
            .metadata
            .response_code,
        ResponseCode::ServFail
    );
    // ...while another client is forwarded for.
    let other = udp(server.addr, &query("polite.example.", RecordType::A));
    assert_eq!(other.metadata.response_code, ResponseCode::NoError);
    for g in greedy {
        assert_eq!(g.join().expect("greedy"), ResponseCode::NoError);
    }
    assert_eq!(
        slow.udp(),
        3,
        "the question over the share never went upstream"
    );
}

/// Identical questions in flight go upstream once, and every asker gets the answer.
#[test]
fn identical_questions_in_flight_are_sent_upstream_once() {
    let slow = FakeUpstream::start(Mode::Slow(Duration::from_millis(800)));
    let server = Server::start(&forward_config(&[&slow], "cache_entries = 0"));
    let addr = server.addr;
    let askers: Vec<_> = (0..10)
        .map(|_| std::thread::spawn(move || udp(addr, &query("same.example.", RecordType::A))))
        .collect();
    for asker in askers {
        let answer = asker.join().expect("asker");
        assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
        assert_eq!(
            a_records(&answer),
            vec![std::net::Ipv4Addr::new(192, 0, 2, 1)]
        );
    }
    assert_eq!(slow.udp(), 1, "one question upstream for ten askers");
    // Once answered, the next ask goes upstream again (no cache here).
    assert_eq!(rcode(&server, "same.example."), ResponseCode::NoError);
    assert_eq!(slow.udp(), 2);
}

/// RFC 8767, when configured: an answer that expired while every upstream is down is served
/// with TTL 30 for `serve_stale_secs`, counted; without it, SERVFAIL. TTLs are capped.
#[test]
fn stale_answers_only_when_configured_and_ttls_capped() {
    let http: std::net::SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let up = FakeUpstream::start(Mode::Answer { ttl: 1 });
    let stale_ok = Server::start(&forward_config(&[&up], "serve_stale_secs = 60").replacen(
        "[server]\n",
        &format!("[server]\nhttp_listen = \"{http}\"\n"),
        1,
    ));
    let strict = Server::start(&forward_config(&[&up], ""));
    for server in [&stale_ok, &strict] {
        assert_eq!(rcode(server, "blip.example."), ResponseCode::NoError);
    }
    drop(up); // the only upstream goes silent
    std::thread::sleep(Duration::from_millis(1200)); // the TTL of 1 s has run out
    let stale = udp(stale_ok.addr, &query("blip.example.", RecordType::A));
    assert_eq!(stale.metadata.response_code, ResponseCode::NoError);
    assert_eq!(a_records(&stale).len(), 2);
    assert!(stale.answers.iter().all(|r| r.ttl == 30), "{stale:?}");
    assert_eq!(
        metric(
            &metrics_page(http),
            "netalias_forward_cache_total{result=\"stale\"}"
        ),
        1.0
    );
    assert_eq!(rcode(&strict, "blip.example."), ResponseCode::ServFail);

    let long = FakeUpstream::start(Mode::Answer { ttl: 86_400 });
    let capped = Server::start(&forward_config(&[&long], "cache_max_ttl_secs = 2"));
    let first = udp(capped.addr, &query("long.example.", RecordType::A));
    assert!(
        first.answers.iter().all(|r| r.ttl <= 2),
        "no client keeps it longer than the cache: {first:?}"
    );
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(rcode(&capped, "long.example."), ResponseCode::NoError);
    assert_eq!(long.udp(), 2, "asked again once the cap ran out");
}

/// Asks `name` from `src` once and waits at most `wait`: the answer's rcode and how long it
/// took, or `None` on a timeout (no retry, so a lost answer shows).
fn ask_once_from(
    src: std::net::IpAddr,
    server: std::net::SocketAddr,
    name: &str,
    qtype: RecordType,
    wait: Duration,
) -> Option<(ResponseCode, Duration)> {
    let sock = std::net::UdpSocket::bind((src, 0)).expect("bind");
    sock.set_read_timeout(Some(wait)).expect("timeout");
    let started = std::time::Instant::now();
    sock.send_to(&query(name, qtype).to_vec().expect("encode"), server)
        .expect("send");
    let mut buf = [0u8; 1500];
    let (n, _) = sock.recv_from(&mut buf).ok()?;
    let reply = Message::from_vec(&buf[..n]).expect("decode");
    Some((reply.metadata.response_code, started.elapsed()))
}

/// Issue 26, item 1: from 127.0.0.2, about 5,000 questions a second for 48 names the
/// upstream never answers, 100 in a row per name. Each waiting copy is charged to its
/// client, so the flood holds its own share only: another address still gets every new
/// forwarded name within a second, and its local SRV answers (off the fast path) at once.
/// Before, it got 9 timeouts of 10 and 3 of 3.
#[test]
fn a_flood_of_unanswered_questions_from_one_address_starves_no_one_else() {
    let up = FakeUpstream::start(Mode::SilentFor("black"));
    let config = forward_config(&[&up], "").replacen(
        "aliases = [\"app\"]\n",
        "aliases = [\"app\"]\nsrv = [{ service = \"http\", port = 8080 }]\n",
        1,
    );
    let server = Server::start(&config);
    let addr = server.addr;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let flood = {
        let (stop, sent) = (stop.clone(), sent.clone());
        std::thread::spawn(move || {
            let sock = std::net::UdpSocket::bind("127.0.0.2:0").expect("bind");
            sock.set_nonblocking(true).expect("nonblocking");
            let started = std::time::Instant::now();
            let mut n = 0usize;
            // Bounded: at most 30 s even if the test body hangs.
            while !stop.load(std::sync::atomic::Ordering::Relaxed)
                && started.elapsed() < Duration::from_secs(30)
            {
                let name = format!("black{}.example.", (n / 100) % 48);
                let q = query(&name, RecordType::A).to_vec().expect("encode");
                let _ = sock.send_to(&q, addr);
                n += 1;
                if n.is_multiple_of(50) {
                    std::thread::sleep(Duration::from_millis(10));
                    // Replies are not read; drain so the socket never backs up.
                    let mut buf = [0u8; 1500];
                    while sock.recv_from(&mut buf).is_ok() {}
                }
            }
            sent.store(n, std::sync::atomic::Ordering::Relaxed);
        })
    };
    // Let the flood fill whatever it can.
    std::thread::sleep(Duration::from_millis(1500));
    let victim: std::net::IpAddr = [127, 0, 0, 3].into();
    let forwarded: Vec<_> = (0..10)
        .map(|i| {
            ask_once_from(
                victim,
                addr,
                &format!("fine{i}.example."),
                RecordType::A,
                Duration::from_secs(1),
            )
        })
        .collect();
    let mut srv_times: Vec<Duration> = (0..50)
        .filter_map(|_| {
            ask_once_from(
                victim,
                addr,
                "_http._tcp.app.",
                RecordType::SRV,
                Duration::from_secs(1),
            )
            .map(|(rcode, took)| {
                assert_eq!(rcode, ResponseCode::NoError);
                took
            })
        })
        .collect();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    flood.join().expect("flood");
    let answered = forwarded
        .iter()
        .filter(|a| matches!(a, Some((ResponseCode::NoError, _))))
        .count();
    assert_eq!(
        answered, 10,
        "the other address's forwards, within 1 s each: {forwarded:?}"
    );
    assert_eq!(
        srv_times.len(),
        50,
        "every local SRV question answered within 1 s"
    );
    srv_times.sort();
    eprintln!(
        "flood of {} questions; other address: forwarded {:?}, local SRV p50 {:?} p99 {:?}",
        sent.load(std::sync::atomic::Ordering::Relaxed),
        forwarded.iter().flatten().map(|(_, t)| *t).max(),
        srv_times[25],
        srv_times[49]
    );
}

/// Issue 26, item 6: two silent upstreams before a live one. Each upstream is asked once;
/// one that has not answered within 400 ms is kept listening to while the next is asked, so
/// the answer comes well within the client's patience (it took two whole timeouts before).
#[test]
fn two_silent_upstreams_before_a_live_one_cost_less_than_one_timeout() {
    let silent1 = FakeUpstream::start(Mode::Silent);
    let silent2 = FakeUpstream::start(Mode::Silent);
    let live = FakeUpstream::start(Mode::Answer { ttl: 0 });
    // The default per-upstream timeout, 1.5 s.
    let server = Server::start(
        &forward_config(&[&silent1, &silent2, &live], "")
            .replace("timeout_ms = 1000\n", "timeout_ms = 1500\n"),
    );
    let (rcode, took) = ask_once_from(
        [127, 0, 0, 1].into(),
        server.addr,
        "far.example.",
        RecordType::A,
        Duration::from_secs(5),
    )
    .expect("answered within 5 s");
    assert_eq!(rcode, ResponseCode::NoError);
    assert!(took < Duration::from_secs(3), "total {took:?}");
    eprintln!("two silent upstreams, then a live one: answered in {took:?}");
    assert_eq!(
        (silent1.udp(), silent2.udp(), live.udp()),
        (1, 1, 1),
        "each upstream asked once"
    );
}

/// Three real upstreams on loopback: the default, one for `corp.example` and one for
/// `a.corp.example`. A name goes to the most specific zone that holds it, and only there (a
/// zone's name the default upstream happens to know is never asked of it); other names go to
/// the default upstreams.
#[test]
fn forward_zones_send_each_name_to_the_most_specific_zone_s_upstreams() {
    if !dnsmasq::Dnsmasq::installed() {
        assert!(std::env::var_os("CI").is_none(), "CI needs dnsmasq");
        eprintln!("dnsmasq not installed; skipped");
        return;
    }
    let (p_default, p_corp, p_a) = (free_port(), free_port(), free_port());
    let default = dnsmasq::Dnsmasq::start(
        "127.0.0.1",
        p_default,
        "198.51.100.1 www.public.test\n198.51.100.9 db.corp.example\n198.51.100.9 leak.corp.example\n",
    );
    let corp = dnsmasq::Dnsmasq::start(
        "127.0.0.1",
        p_corp,
        "198.51.100.2 db.corp.example\n198.51.100.8 deep.a.corp.example\n",
    );
    let a_corp = dnsmasq::Dnsmasq::start("127.0.0.1", p_a, "198.51.100.4 deep.a.corp.example\n");
    let config = seed_config("")
        + &format!(
            "\n[forward]\nenabled = true\nupstreams = [\"127.0.0.1:{p_default}\"]\ntimeout_ms = 1000\n\
             [forward.zones]\n\"corp.example\" = [\"127.0.0.1:{p_corp}\"]\n\"a.corp.example\" = [\"127.0.0.1:{p_a}\"]\n"
        );
    let server = Server::start(&config);
    let ip = |last: u8| std::net::Ipv4Addr::new(198, 51, 100, last);
    assert!(
        docker::eventually(Duration::from_secs(5), || a_of(&server, "www.public.test.")
            == [ip(1)]),
        "a name under no zone goes to the default upstream"
    );
    assert_eq!(a_of(&server, "db.corp.example."), [ip(2)], "corp's own");
    assert_eq!(
        a_of(&server, "DEEP.a.corp.example."),
        [ip(4)],
        "the most specific zone wins"
    );
    // Known only to the default upstream: never asked there.
    assert!(a_of(&server, "leak.corp.example.").is_empty());
    assert_eq!(default.count("leak.corp.example"), 0, "{}", default.log());
    assert_eq!(default.count("db.corp.example"), 0, "{}", default.log());
    assert!(corp.count("leak.corp.example") >= 1, "{}", corp.log());
    assert_eq!(corp.count("deep.a.corp.example"), 0, "{}", corp.log());
    assert!(a_corp.count("deep.a.corp.example") >= 1, "{}", a_corp.log());
}

/// Default upstreams come from resolv.conf and follow it: rewritten under a running server to
/// name another server, the next question goes there, without a restart. Two real dnsmasq on
/// loopback addresses (resolv.conf names no port: they listen on 53).
#[test]
fn default_upstreams_follow_a_resolv_conf_rewritten_under_a_running_server() {
    if !dnsmasq::Dnsmasq::installed() {
        assert!(std::env::var_os("CI").is_none(), "CI needs dnsmasq");
        eprintln!("dnsmasq not installed; skipped");
        return;
    }
    let _first = dnsmasq::Dnsmasq::start("127.0.0.61", 53, "198.51.100.61 moving.test\n");
    let _second = dnsmasq::Dnsmasq::start("127.0.0.62", 53, "198.51.100.62 moving.test\n");
    let dir = tempfile::tempdir().expect("dir");
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(&resolv, "nameserver 127.0.0.61\n").expect("write");
    let config = seed_config("")
        + &format!(
            "\n[forward]\nenabled = true\ntimeout_ms = 1000\nresolv_conf = \"{}\"\n",
            resolv.display()
        );
    let server = Server::start(&config);
    let ip = |last: u8| std::net::Ipv4Addr::new(198, 51, 100, last);
    assert!(
        docker::eventually(Duration::from_secs(5), || a_of(&server, "moving.test.")
            == [ip(61)]),
        "the first resolv.conf's server answers"
    );
    // Replaced as tools do it: a new file renamed over the old.
    let next = dir.path().join("resolv.conf.new");
    std::fs::write(&next, "nameserver 127.0.0.62\n").expect("write");
    std::fs::rename(&next, &resolv).expect("rename");
    assert!(
        docker::eventually(Duration::from_secs(10), || a_of(&server, "moving.test.")
            == [ip(62)]),
        "after the rewrite, the new server answers: {:?}",
        a_of(&server, "moving.test.")
    );
}

/// A domain only labels mention is not netalias's: its other names are forwarded. Declared
/// in `server.own_domains`, it is: an unheld name under it is NXDOMAIN with its SOA, and the
/// upstream never hears of it.
#[test]
fn an_owned_domain_answers_nxdomain_for_what_it_does_not_hold_instead_of_forwarding() {
    let up = FakeUpstream::start(Mode::Answer { ttl: 0 });
    let forwarded = forward_config(&[&up], "");
    let server = Server::start(&forwarded);
    assert_eq!(rcode(&server, "www.shop.test."), ResponseCode::NoError);
    assert_eq!(up.udp(), 1, "not owned: forwarded");
    drop(server);
    let owned = forwarded.replacen("[server]\n", "[server]\nown_domains = [\"shop.test\"]\n", 1);
    assert_ne!(owned, forwarded, "the seed config has a [server] table");
    let server = Server::start(&owned);
    let answer = udp(server.addr, &query("www.shop.test.", RecordType::A));
    assert_eq!(answer.metadata.response_code, ResponseCode::NXDomain);
    assert!(answer.metadata.authoritative);
    assert!(
        answer
            .authorities
            .iter()
            .any(|r| r.record_type() == RecordType::SOA && r.name.to_ascii() == "shop.test."),
        "{answer:?}"
    );
    assert_eq!(up.udp(), 1, "owned: never forwarded");
}
