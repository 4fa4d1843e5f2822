//! The UDP fast path answers byte for byte what the full handler answers: the same queries go
//! to a server with it and one without, in lockstep (so their rotations agree), and every
//! response must be identical.

mod common;

use common::{upstream::*, *};

fn config(fast: bool, upstream: &FakeUpstream) -> String {
    let mut c = seed_config(&format!("udp_fast_path = {fast}\nudp_workers = 2"));
    c.push_str("\n[networks.v6net]\n[[networks.v6net.endpoints]]\nname = \"six\"\nipv6 = \"fd00::6\"\nipv4 = \"10.6.0.6\"\naliases = [\"dual\"]\nttl = 7\n");
    c.push_str(
        "[[networks.v6net.endpoints]]\nname = \"six2\"\nipv6 = \"fd00::7\"\naliases = [\"dual\"]\n",
    );
    for i in 0..40 {
        c.push_str(&format!("[[networks.v6net.endpoints]]\nname = \"m{i}\"\nipv4 = \"10.7.0.{}\"\naliases = [\"big\"]\n", i + 1));
    }
    // 32 members: musl's getaddrinfo asks without EDNS and never retries over TCP (issue 25).
    for i in 0..32 {
        c.push_str(&format!("[[networks.v6net.endpoints]]\nname = \"t{i}\"\nipv4 = \"10.9.0.{}\"\naliases = [\"big32\"]\n", i + 1));
    }
    // Aliases of 248 and 249 wire octets: under `.docker.` (7 more) they make names of exactly
    // 255 octets (the most RFC 1035 allows) and 256 (one too many).
    for k in [54, 55] {
        c.push_str(&format!(
            "[[networks.v6net.endpoints]]\nname = \"long{k}\"\nipv4 = \"10.8.0.{k}\"\naliases = [\"{}\"]\n",
            long_alias(k)
        ));
    }
    // Static records: a CNAME to the rotating `app`, and a TXT name (the fast path declines
    // both; the full path's answer is the one given).
    c.push_str("[networks.v6net.records.cname]\n\"www.shop.test\" = \"app\"\n[networks.v6net.records.txt]\n\"info.shop.test\" = \"v=1\"\n");
    c.push_str(&format!(
        "\n[forward]\nenabled = true\nupstreams = [\"{}\"]\n",
        upstream.addr
    ));
    c
}

/// Three 63-octet labels and one of `last` octets: `194 + last` octets on the wire.
fn long_alias(last: usize) -> String {
    format!(
        "{}.{}.{}.{}",
        "a".repeat(63),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(last)
    )
}

/// A query for `labels` (dotted, no trailing dot) built byte by byte: hickory refuses to
/// encode a name over 255 octets, and the server must see one.
fn raw_query(id: u16, labels: &str, qtype: u16) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1]);
    for label in labels.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&[0, 1]);
    // EDNS0 with 1232 octets: a 255-octet owner name does not fit 512.
    q.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
    q
}

fn raw(server: &Server, bytes: &[u8]) -> Option<Vec<u8>> {
    udp_raw(server.addr, bytes, std::time::Duration::from_secs(2))
}

#[test]
fn fast_and_full_paths_give_identical_bytes() {
    let up = FakeUpstream::start(Mode::Answer { ttl: 0 });
    let fast = Server::start(&config(true, &up));
    let full = Server::start(&config(false, &up));
    let mut queries: Vec<Message> = Vec::new();
    for name in [
        "app.",
        "APP.",
        "aPp.DoCkEr.",
        "web2.my_custom_network.",
        "dual.",
        "six.v6net.docker.",
        "big.",
        "big32.",
        "m3.",
        "www.shop.test.",
        "WWW.shop.test.docker.",
        "info.shop.test.",
    ] {
        for qtype in [
            RecordType::A,
            RecordType::AAAA,
            RecordType::MX,
            RecordType::ANY,
            RecordType::TXT,
        ] {
            let plain = query(name, qtype);
            let mut no_rd = query(name, qtype);
            no_rd.metadata.recursion_desired = false;
            let mut cd = query(name, qtype);
            cd.metadata.checking_disabled = true;
            queries.push(plain);
            queries.push(no_rd);
            queries.push(cd);
            queries.push(with_edns(query(name, qtype), 4096, 0));
            queries.push(with_edns(query(name, qtype), 600, 0));
            queries.push(with_edns(query(name, qtype), 100, 0));
            queries.push(with_edns(query(name, qtype), 1232, 1));
        }
    }
    for name in [
        "nope.docker.",
        "elsewhere.example.",
        "2.0.72.172.in-addr.arpa.",
    ] {
        queries.push(query(name, RecordType::A));
        queries.push(with_edns(query(name, RecordType::PTR), 1232, 0));
    }
    let mut compared = 0;
    for round in 0..3 {
        for (at, q) in queries.iter().enumerate() {
            // A distinct ID a question: the same question again within about a second is a
            // copy that takes no turn (`dns::turns`), and whether a round's repeat fell inside
            // that window depended on each server's speed (CI once saw the two a turn apart).
            let mut q = q.clone();
            q.metadata.id = (round * queries.len() + at) as u16;
            let bytes = q.to_vec().expect("encode");
            let a = raw(&fast, &bytes);
            let b = raw(&full, &bytes);
            assert_eq!(a, b, "round {round}, query {:?} {:?}", q.queries[0], q.edns);
            assert!(a.is_some(), "answered");
            compared += 1;
        }
    }
    assert!(compared > 600);
    // The rotation is one cursor for both paths: a fast A answer, then a full-path A answer
    // (EDNS payload below 512 is clamped, fits, takes the fast path too) — all advance one turn.
    let firsts: Vec<_> = (0..3).map(|_| a_of(&fast, "app.")[0]).collect();
    let mut sorted = firsts.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        3,
        "three consecutive answers start at three members: {firsts:?}"
    );
}

/// An alias too large for the client's UDP size (32 and 40 members, no EDNS or a small one)
/// keeps the records that fit, in rotation order, with TC set, on both paths alike: the same
/// bytes, the same single turn of the rotation (the first member advances by one per answer),
/// and the fast path gives it rather than declining. Over TCP every member comes.
#[test]
fn big_aliases_keep_the_records_that_fit_with_tc_on_both_paths() {
    let up = FakeUpstream::start(Mode::Answer { ttl: 0 });
    let http: std::net::SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let fast = Server::start(&config(true, &up).replacen(
        "[server]\n",
        &format!("[server]\nhttp_listen = \"{http}\"\n"),
        1,
    ));
    let full = Server::start(&config(false, &up));
    let mut cut = 0;
    for (name, members, base) in [("big.", 40u8, [10, 7, 0]), ("big32.", 32, [10, 9, 0])] {
        // The members in configured order; answer k starts at member k mod n.
        let member = |i: usize| {
            std::net::Ipv4Addr::new(
                base[0],
                base[1],
                base[2],
                (i % usize::from(members)) as u8 + 1,
            )
        };
        let mut turn = None;
        // 12 header octets, the question (the name, type, class), the OPT when asked with
        // EDNS (11), and 16 octets per A record whose owner points at the question.
        let question = name.len() + 1 + 4;
        for payload in [None, Some(512), Some(100), Some(600)] {
            let limit = usize::from(payload.unwrap_or(512).max(512));
            let fit = (limit - 12 - question - if payload.is_some() { 11 } else { 0 }) / 16;
            for _ in 0..3 {
                let q = match payload {
                    None => query(name, RecordType::A),
                    Some(p) => with_edns(query(name, RecordType::A), p, 0),
                };
                let bytes = q.to_vec().expect("encode");
                let a = raw(&fast, &bytes).expect("fast server answers");
                let b = raw(&full, &bytes).expect("full server answers");
                assert_eq!(a, b, "{name} EDNS {payload:?}");
                assert!(a.len() <= limit);
                let answer = Message::from_vec(&a).expect("decodes");
                let got = a_records(&answer);
                let expected = fit.min(usize::from(members));
                assert_eq!(got.len(), expected, "{name} EDNS {payload:?}");
                assert_eq!(
                    answer.metadata.truncation,
                    expected < usize::from(members),
                    "TC exactly when records were left out: {name} EDNS {payload:?}"
                );
                // Consecutive members from where the rotation stands, one turn per answer.
                let start = usize::from(got[0].octets()[3]) - 1;
                let listed: Vec<_> = (start..start + expected).map(member).collect();
                assert_eq!(got, listed, "in rotation order");
                if let Some(previous) = turn {
                    assert_eq!(start, (previous + 1) % usize::from(members), "{name}");
                }
                turn = Some(start);
                cut += usize::from(answer.metadata.truncation);
            }
        }
        let whole = tcp(fast.addr, &query(name, RecordType::A));
        assert!(!whole.metadata.truncation);
        assert_eq!(
            a_records(&whole).len(),
            usize::from(members),
            "TCP: every member"
        );
    }
    assert_eq!(
        cut,
        2 * 9 + 3,
        "40 members are cut at 600 octets too, 32 are not"
    );
    let page = metrics_page(http);
    assert!(
        metric(&page, "netalias_dns_fast_path_total{source=\"local\"}") >= 24.0,
        "the cut answers stayed on the fast path: {page}"
    );
}

/// The two paths agree on the name-length limit: a 255-octet name is answered, a 256-octet one
/// gets FORMERR from both, even when its labels spell a name held under the search domain.
#[test]
fn fast_and_full_paths_agree_on_the_name_length_limit() {
    let up = FakeUpstream::start(Mode::Answer { ttl: 0 });
    let fast = Server::start(&config(true, &up));
    let full = Server::start(&config(false, &up));
    let at_limit = format!("{}.docker", long_alias(54));
    let over = format!("{}.docker", long_alias(55));
    let qualified = format!("{}.v6net", long_alias(55)); // 255 octets by another route
    assert_eq!(raw_query(1, &at_limit, 1).len() - 12 - 4 - 11, 255);
    assert_eq!(raw_query(1, &over, 1).len() - 12 - 4 - 11, 256);
    for (id, name) in [(7, &at_limit), (8, &over), (9, &qualified)] {
        for qtype in [1u16, 28] {
            let q = raw_query(id, name, qtype);
            let a = raw(&fast, &q).expect("fast server answers");
            let b = raw(&full, &q).expect("full server answers");
            assert_eq!(a, b, "{name} type {qtype}");
        }
    }
    let answered = Message::from_vec(&raw(&fast, &raw_query(7, &at_limit, 1)).unwrap()).unwrap();
    assert_eq!(answered.metadata.response_code, ResponseCode::NoError);
    assert_eq!(
        a_records(&answered),
        vec![std::net::Ipv4Addr::new(10, 8, 0, 54)]
    );
    let refused = raw(&fast, &raw_query(8, &over, 1)).unwrap();
    assert_eq!(refused[3] & 0x0f, 1, "FORMERR for a 256-octet name");
}

/// Forwarded names answered from the cache: the fast path's bytes are the full path's, fresh
/// (the miss that fills the cache), cached, aged a second, negative (NXDOMAIN and NODATA with
/// an SOA), a CNAME chain, too large for 512 (the fast path declines; the full path sets TC),
/// a question asked in another case than the cached one, a long name, with and without EDNS.
#[test]
fn forwarded_answers_from_the_cache_are_the_full_paths_bytes() {
    let up = FakeUpstream::start(Mode::Zone);
    let http: std::net::SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let fast = Server::start(&config(true, &up).replacen(
        "[server]\n",
        &format!("[server]\nhttp_listen = \"{http}\"\n"),
        1,
    ));
    let full = Server::start(&config(false, &up));
    let mut queries: Vec<Message> = Vec::new();
    for (name, qtype) in [
        ("www.example.test.", RecordType::A),
        ("www.example.test.", RecordType::AAAA),
        ("cname.test.", RecordType::A),
        ("many.test.", RecordType::A),
        ("gone.test.", RecordType::A),
        ("mx.example.test.", RecordType::MX),
        ("WWW.Example.TEST.", RecordType::A),
        // Past the 24 octets a registry key keeps inline.
        ("s3.us-east-1.amazonaws.example.test.", RecordType::A),
    ] {
        let mut no_rd = query(name, qtype);
        no_rd.metadata.recursion_desired = false;
        let mut cd = query(name, qtype);
        cd.metadata.checking_disabled = true;
        queries.extend([
            query(name, qtype),
            no_rd,
            cd,
            with_edns(query(name, qtype), 4096, 0),
            with_edns(query(name, qtype), 600, 0),
            with_edns(query(name, qtype), 1232, 0),
        ]);
    }
    // The two servers stored each entry a moment apart; at a second's boundary their ages can
    // differ by one. A mismatch is asked again a little later: the bytes must then agree.
    let agree = |bytes: &[u8]| {
        for _ in 0..4 {
            let a = raw(&fast, bytes);
            let b = raw(&full, bytes);
            assert!(a.is_some(), "answered");
            if a == b {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(230));
        }
        false
    };
    for round in 0..3 {
        if round == 2 {
            std::thread::sleep(std::time::Duration::from_millis(1100)); // aged by a second
        }
        for q in &queries {
            let bytes = q.to_vec().expect("encode");
            assert!(
                agree(&bytes),
                "round {round}, {:?} {:?}",
                q.queries[0],
                q.edns
            );
        }
    }
    let page = metrics_page(http);
    let from_cache = metric(&page, "netalias_dns_fast_path_total{source=\"cache\"}");
    assert!(
        from_cache >= 40.0,
        "the fast path answered the cache hits: {from_cache}"
    );
    // An aged answer's TTL went down, and the answer is the upstream's, in its order.
    let aged = Message::from_vec(
        &raw(
            &fast,
            &query("cname.test.", RecordType::A)
                .to_vec()
                .expect("encode"),
        )
        .expect("answer"),
    )
    .expect("decodes");
    assert!(aged.answers.iter().all(|r| r.ttl < 300), "{aged:?}");
    assert_eq!(aged.answers[0].record_type(), RecordType::CNAME);
    let many = Message::from_vec(
        &raw(
            &fast,
            &with_edns(query("many.test.", RecordType::A), 1232, 0)
                .to_vec()
                .expect("encode"),
        )
        .expect("answer"),
    )
    .expect("decodes");
    assert_eq!(
        a_records(&many),
        (1..=40)
            .map(|i| std::net::Ipv4Addr::new(192, 0, 2, i))
            .collect::<Vec<_>>(),
        "as the upstream ordered them"
    );
}

/// One lookup sent to two of netalias's addresses at once (as musl sends each question to every
/// nameserver: one socket, so one port and one ID) takes one turn of the rotation, whichever
/// path answers it: both copies get the same order, and the next lookup (a new ID) the next
/// member. Taking a turn per copy, the two copies would start at two different members.
#[test]
fn one_lookup_sent_to_two_addresses_takes_one_turn() {
    for fast in [true, false] {
        let port = free_port();
        let config = seed_config(&format!("udp_fast_path = {fast}\nudp_workers = 2")).replace(
            "listen = [\"127.0.0.1:0\"]",
            &format!("listen = [\"127.0.0.1:{port}\", \"127.0.0.2:{port}\"]"),
        );
        let server = Server::start(&config);
        let addresses: [std::net::SocketAddr; 2] = [
            format!("127.0.0.1:{port}").parse().unwrap(),
            format!("127.0.0.2:{port}").parse().unwrap(),
        ];
        // `start` returns at the first listener's line; the other may come just after.
        for addr in addresses {
            let addr = addr.to_string();
            if !server.startup_log.iter().any(|l| l.contains(&addr)) {
                server.wait_log(&addr);
            }
        }
        let sock = udp_socket();
        let mut firsts = Vec::new();
        for lookup in 0..6u16 {
            let mut q = query("app.", RecordType::A);
            q.metadata.id = 0x5000 + lookup;
            let bytes = q.to_vec().expect("encode");
            for to in addresses {
                sock.send_to(&bytes, to).expect("send");
            }
            let mut answers = Vec::new();
            for _ in addresses {
                let mut buf = [0u8; 512];
                let (n, _) = sock.recv_from(&mut buf).expect("both addresses answer");
                answers.push(buf[..n].to_vec());
            }
            assert_eq!(
                answers[0], answers[1],
                "fast path {fast}, lookup {lookup}: both copies in one order"
            );
            let answer = Message::from_vec(&answers[0]).expect("decode");
            assert_eq!(answer.metadata.id, q.metadata.id);
            assert_eq!(a_records(&answer).len(), 3);
            firsts.push(a_records(&answer)[0]);
        }
        // Six lookups over three members: each first twice, in turn.
        for (i, pair) in firsts.windows(2).enumerate() {
            assert_ne!(
                pair[0],
                pair[1],
                "fast path {fast}, lookups {i} and {}: {firsts:?}",
                i + 1
            );
        }
        assert_eq!(firsts[..3], firsts[3..], "fast path {fast}: {firsts:?}");
        drop(server);
    }
}
