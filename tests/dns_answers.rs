//! The answer rules, over real UDP and TCP sockets, against the library server started in
//! this process (`common::in_process`: the assembly the binary runs, ready by its handle).

mod common;

use std::{collections::HashMap, net::Ipv4Addr, time::Duration};

use common::{in_process::InProcess, *};

fn first_counts(server: &InProcess, name: &str, rounds: usize) -> HashMap<Ipv4Addr, usize> {
    let mut counts = HashMap::new();
    for _ in 0..rounds {
        let answer = udp(server.addr, &query(name, RecordType::A));
        let ips = a_records(&answer);
        assert_eq!(ips.len(), 3, "every answer lists all members");
        *counts.entry(ips[0]).or_insert(0) += 1;
    }
    counts
}

#[test]
fn alias_rotates_exactly_over_udp() {
    let server = InProcess::start(&seed_config(""));
    let counts = first_counts(&server, "app.", 300);
    assert_eq!(counts.len(), 3);
    assert!(counts.values().all(|&c| c == 100), "{counts:?}");
}

#[test]
fn consecutive_answers_start_one_member_later() {
    let server = InProcess::start(&seed_config(""));
    let first = a_of(&server, "app.");
    let second = a_of(&server, "app.");
    assert_eq!(second, vec![first[1], first[2], first[0]]);
}

#[test]
fn rotation_stays_exact_under_concurrent_clients() {
    let server = InProcess::start(&seed_config(""));
    let addr = server.addr;
    let workers: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                let mut firsts = Vec::new();
                for _ in 0..150 {
                    let answer = udp(addr, &query("app.", RecordType::A));
                    firsts.push(a_records(&answer)[0]);
                }
                firsts
            })
        })
        .collect();
    let mut counts: HashMap<Ipv4Addr, usize> = HashMap::new();
    for w in workers {
        for ip in w.join().expect("worker") {
            *counts.entry(ip).or_insert(0) += 1;
        }
    }
    assert!(counts.values().all(|&c| c == 200), "{counts:?}");
}

#[test]
fn every_name_form_answers_with_aa_and_ttl() {
    let server = InProcess::start(&seed_config(""));
    for name in [
        "web2.",
        "WEB2.docker.",
        "web2.my_custom_network.",
        "web2.my_custom_network.docker.",
    ] {
        let answer = udp(server.addr, &query(name, RecordType::A));
        assert_eq!(
            answer.metadata.response_code,
            ResponseCode::NoError,
            "{name}"
        );
        assert!(answer.metadata.authoritative, "{name}: AA");
        assert_eq!(
            a_records(&answer),
            vec![Ipv4Addr::new(172, 72, 0, 3)],
            "{name}"
        );
        assert_eq!(answer.answers[0].ttl, 0, "default TTL is 0");
    }
    let app = udp(
        server.addr,
        &query("app.my_custom_network.docker.", RecordType::A),
    );
    assert_eq!(a_records(&app).len(), 3);
}

#[test]
fn question_case_is_echoed_byte_for_byte() {
    let server = InProcess::start(&seed_config(""));
    let msg = query("aPp.DoCkEr.", RecordType::A);
    let bytes = msg.to_vec().expect("encode");
    let reply = udp_raw(server.addr, &bytes, TIMEOUT).expect("answer");
    let qlen = bytes.len() - 12;
    assert_eq!(
        &reply[12..12 + qlen],
        &bytes[12..],
        "question section echoed exactly"
    );
    let parsed = Message::from_vec(&reply).expect("decode");
    assert_eq!(a_records(&parsed).len(), 3);
}

#[test]
fn known_name_other_type_is_nodata_with_soa() {
    let server = InProcess::start(&seed_config(""));
    for qtype in [RecordType::AAAA, RecordType::MX, RecordType::TXT] {
        let answer = udp(server.addr, &query("app.docker.", qtype));
        assert_eq!(
            answer.metadata.response_code,
            ResponseCode::NoError,
            "{qtype}"
        );
        assert!(answer.answers.is_empty(), "{qtype}");
        assert!(answer.metadata.authoritative);
        let soa = answer
            .authorities
            .iter()
            .find(|r| r.record_type() == RecordType::SOA);
        assert_eq!(
            soa.map(|r| r.name.to_string()),
            Some("docker.".to_string()),
            "{qtype}"
        );
    }
}

#[test]
fn unknown_names_nxdomain_under_the_domain_not_ours_under_a_bare_network() {
    let server = InProcess::start(&seed_config(""));
    for name in ["nope.docker.", "nope.my_custom_network.docker."] {
        let answer = udp(server.addr, &query(name, RecordType::A));
        assert_eq!(
            answer.metadata.response_code,
            ResponseCode::NXDomain,
            "{name}"
        );
        assert!(answer.metadata.authoritative, "{name}");
        assert!(
            answer
                .authorities
                .iter()
                .any(|r| r.record_type() == RecordType::SOA),
            "{name}: SOA"
        );
    }
    // A network's bare name is not a zone netalias owns: what it does not hold there is not
    // denied (without forwarding: SERVFAIL for this loopback asker, as from Docker's resolver
    // when it cannot forward; never an authoritative NXDOMAIN).
    for name in ["nope.my_custom_network.", "example.com."] {
        let answer = udp(server.addr, &query(name, RecordType::A));
        assert_eq!(
            answer.metadata.response_code,
            ResponseCode::ServFail,
            "{name}"
        );
        assert!(!answer.metadata.authoritative, "{name}");
        assert!(answer.answers.is_empty());
    }
}

#[test]
fn zone_apexes_are_nodata_with_their_soa() {
    let server = InProcess::start(&seed_config(""));
    for (name, zone) in [
        ("docker.", "docker."),
        ("my_custom_network.docker.", "my_custom_network.docker."),
        ("My_Custom_Network.", "my_custom_network."),
    ] {
        for qtype in [RecordType::A, RecordType::AAAA, RecordType::SOA] {
            let answer = udp(server.addr, &query(name, qtype));
            assert_eq!(
                answer.metadata.response_code,
                ResponseCode::NoError,
                "{name} {qtype}"
            );
            assert!(answer.metadata.authoritative, "{name} {qtype}");
            // The SOA itself when asked for, else NODATA with the SOA in authority.
            let (soa_in, other) = if qtype == RecordType::SOA {
                (&answer.answers, &answer.authorities)
            } else {
                (&answer.authorities, &answer.answers)
            };
            assert!(other.is_empty(), "{name} {qtype}");
            let soa: Vec<String> = soa_in
                .iter()
                .filter(|r| r.record_type() == RecordType::SOA)
                .map(|r| r.name.to_ascii().to_ascii_lowercase())
                .collect();
            assert_eq!(soa, vec![zone.to_string()], "{name} {qtype}");
        }
    }
    // The zone a NODATA names is one whose apex answers: no SOA pointing at an NXDOMAIN.
    let nodata = udp(
        server.addr,
        &query("web1.my_custom_network.", RecordType::AAAA),
    );
    let zone = nodata.authorities[0].name.to_ascii();
    let apex = udp(server.addr, &query(&zone, RecordType::SOA));
    assert_eq!(apex.metadata.response_code, ResponseCode::NoError, "{zone}");
}

#[test]
fn ptr_for_ipv4_and_ipv6_members() {
    let config = seed_config("")
        + r#"
[networks.v6net]
subnet6 = "fd00:72::/64"

[[networks.v6net.endpoints]]
name = "six"
ipv6 = "fd00:72::5"
"#;
    let server = InProcess::start(&config);
    let v4 = udp(
        server.addr,
        &query("4.0.72.172.in-addr.arpa.", RecordType::PTR),
    );
    let target = v4.answers.first().map(|r| r.data.to_string());
    assert_eq!(target.as_deref(), Some("web3.my_custom_network."));
    let arpa = "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.7.0.0.0.0.d.f.ip6.arpa.";
    let v6 = udp(server.addr, &query(arpa, RecordType::PTR));
    assert_eq!(
        v6.answers.first().map(|r| r.data.to_string()).as_deref(),
        Some("six.v6net.")
    );
    let aaaa = udp(server.addr, &query("six.", RecordType::AAAA));
    assert_eq!(aaaa.answers.len(), 1);
}

#[test]
fn edns_is_echoed_and_newer_versions_get_badvers() {
    let server = InProcess::start(&seed_config(""));
    let answer = udp(
        server.addr,
        &with_edns(query("app.", RecordType::A), 4096, 0),
    );
    let edns = answer.edns.as_ref().expect("OPT echoed");
    assert_eq!(edns.version(), 0);
    assert!(edns.max_payload() >= 512);
    assert_eq!(a_records(&answer).len(), 3);

    let no_edns = udp(server.addr, &query("app.", RecordType::A));
    assert!(no_edns.edns.is_none(), "no OPT when none was sent");

    let badvers = udp(
        server.addr,
        &with_edns(query("app.", RecordType::A), 1232, 1),
    );
    // BADVERS and BADSIG share the code 16 (RFC 6891, RFC 8945); the decoder names it BADSIG.
    assert_eq!(u16::from(badvers.metadata.response_code), 16);
    assert_eq!(badvers.edns.as_ref().map(|e| e.version()), Some(0));
    assert!(badvers.answers.is_empty());
}

#[test]
fn any_is_answered_small_per_rfc8482() {
    let server = InProcess::start(&seed_config(""));
    let answer = udp(server.addr, &query("app.", RecordType::ANY));
    assert_eq!(answer.answers.len(), 1);
    assert_eq!(answer.answers[0].record_type(), RecordType::HINFO);
}

#[test]
fn other_classes_are_refused() {
    let server = InProcess::start(&seed_config(""));
    let mut msg = Message::query();
    let mut q = Query::query(
        Name::from_ascii("version.bind.").expect("name"),
        RecordType::TXT,
    );
    q.set_query_class(DNSClass::CH);
    msg.add_query(q);
    let answer = udp(server.addr, &msg);
    assert_eq!(answer.metadata.response_code, ResponseCode::Refused);
}

#[test]
fn ttl_comes_from_config_and_endpoint_override() {
    let config = r#"
[server]
listen = ["127.0.0.1:0"]
ttl = 7
[[networks.n.endpoints]]
name = "a"
ipv4 = "10.9.0.1"
[[networks.n.endpoints]]
name = "b"
ipv4 = "10.9.0.2"
ttl = 2
"#;
    let server = InProcess::start(config);
    assert_eq!(
        udp(server.addr, &query("a.", RecordType::A)).answers[0].ttl,
        7
    );
    assert_eq!(
        udp(server.addr, &query("b.", RecordType::A)).answers[0].ttl,
        2
    );
}

#[test]
fn default_view_hides_other_networks_from_the_host() {
    let config = seed_config("default_view = [\"other\"]")
        + "\n[[networks.other.endpoints]]\nname = \"o\"\nipv4 = \"10.8.0.1\"\n";
    let server = InProcess::start(&config);
    assert_eq!(
        udp(server.addr, &query("o.", RecordType::A)).answers.len(),
        1
    );
    let hidden = udp(server.addr, &query("app.", RecordType::A));
    assert!(hidden.answers.is_empty(), "app is outside the default view");
}

#[test]
fn idle_tcp_connection_is_closed_after_the_timeout() {
    let server = InProcess::start(&seed_config("tcp_idle_timeout_secs = 1"));
    let mut stream = tcp_connect(server.addr);
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut buf = [0u8; 1];
    let started = std::time::Instant::now();
    let read = std::io::Read::read(&mut stream, &mut buf);
    // Closed (EOF or a reset), not our own 10 s read timeout running out.
    let closed = match &read {
        Ok(0) => true,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        Ok(_) => false,
    };
    assert!(
        closed && started.elapsed() < Duration::from_secs(9),
        "server closed the idle connection: {read:?} after {:?}",
        started.elapsed()
    );
}
