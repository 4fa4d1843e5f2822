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
    c.push_str(&format!(
        "\n[forward]\nenabled = true\nupstreams = [\"{}\"]\n",
        upstream.addr
    ));
    c
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
        "m3.",
    ] {
        for qtype in [
            RecordType::A,
            RecordType::AAAA,
            RecordType::MX,
            RecordType::ANY,
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
        for q in &queries {
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
