//! Transport rules: truncation and TCP, pipelining, idle clients, and bad packets.

mod common;

use std::{io::Write, time::Duration};

use common::*;

/// A network where `big` has `n` members.
fn big_alias_config(n: u32) -> String {
    let mut config = seed_config("");
    config.push_str("\n[networks.bignet]\nsubnet = \"10.50.0.0/16\"\n");
    for i in 0..n {
        config.push_str(&format!(
            "[[networks.bignet.endpoints]]\nname = \"m{i}\"\nipv4 = \"10.50.{}.{}\"\naliases = [\"big\"]\n",
            i / 250,
            i % 250 + 1
        ));
    }
    config
}

#[test]
fn large_udp_answer_keeps_what_fits_with_tc_and_tcp_gives_it_whole() {
    let server = Server::start(&big_alias_config(60));
    // Without EDNS the limit is 512 bytes: 60 A records (960 bytes) cannot fit; 30 do
    // (12 + 9 + 30 * 16 = 501), sent with TC set, as Docker sends them (issue 25: musl before
    // 1.2.4 never retries over TCP and got nothing from an empty TC answer).
    let mut firsts = Vec::new();
    for _ in 0..3 {
        let plain = udp(server.addr, &query("big.", RecordType::A));
        assert!(plain.metadata.truncation, "TC set");
        let got = a_records(&plain);
        assert_eq!(got.len(), 30, "the records that fit");
        let mut distinct = got.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 30, "30 different members");
        firsts.push(got[0]);
    }
    firsts.dedup();
    assert_eq!(firsts.len(), 3, "the first member rotates: {firsts:?}");
    // With EDNS 1232 they fit.
    let edns = udp(
        server.addr,
        &with_edns(query("big.", RecordType::A), 1232, 0),
    );
    assert!(!edns.metadata.truncation);
    assert_eq!(edns.answers.len(), 60);
    // TCP always whole.
    let over_tcp = tcp(server.addr, &query("big.", RecordType::A));
    assert!(!over_tcp.metadata.truncation);
    assert_eq!(over_tcp.answers.len(), 60);
}

#[test]
fn server_udp_cap_applies_even_when_the_client_offers_more() {
    let server = Server::start(&big_alias_config(200));
    let edns = udp(
        server.addr,
        &with_edns(query("big.", RecordType::A), 4096, 0),
    );
    assert!(
        edns.metadata.truncation,
        "200 records exceed the 1232-byte server cap"
    );
    assert!(edns.edns.is_some(), "OPT kept in a truncated answer");
    let over_tcp = tcp(server.addr, &query("big.", RecordType::A));
    assert_eq!(over_tcp.answers.len(), 200);
}

#[test]
fn pipelined_tcp_queries_are_all_answered() {
    let server = Server::start(&seed_config(""));
    let mut stream = tcp_connect(server.addr);
    let names = [
        "app.",
        "web1.",
        "web2.",
        "web3.",
        "nope.docker.",
        "app.docker.",
    ];
    let queries: Vec<Message> = (0..30)
        .map(|i| query(names[i % names.len()], RecordType::A))
        .collect();
    let mut burst = Vec::new();
    for q in &queries {
        let bytes = q.to_vec().expect("encode");
        burst.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        burst.extend_from_slice(&bytes);
    }
    stream.write_all(&burst).expect("write burst");
    let mut ids: Vec<u16> = (0..queries.len())
        .map(|_| tcp_read(&mut stream).metadata.id)
        .collect();
    let mut expected: Vec<u16> = queries.iter().map(|q| q.metadata.id).collect();
    ids.sort_unstable();
    expected.sort_unstable();
    assert_eq!(ids, expected);
}

#[test]
fn many_idle_tcp_clients_block_neither_udp_nor_new_tcp() {
    let server = Server::start(&seed_config("tcp_idle_timeout_secs = 30"));
    let idle: Vec<_> = (0..300).map(|_| tcp_connect(server.addr)).collect();
    // Half-sent messages too: a length prefix promising more than arrives.
    let mut stuck: Vec<_> = (0..20).map(|_| tcp_connect(server.addr)).collect();
    for s in &mut stuck {
        s.write_all(&[0x01, 0x00, 0xab, 0xcd])
            .expect("partial write");
    }
    assert_eq!(a_of(&server, "app.").len(), 3);
    // Another client: 127.0.0.1 itself is at its per-client cap by now.
    assert_eq!(
        a_records(&tcp_from(
            [127, 0, 0, 2].into(),
            server.addr,
            &query("app.", RecordType::A)
        ))
        .len(),
        3
    );
    drop(idle);
    drop(stuck);
}

#[test]
fn non_query_opcodes_get_notimp() {
    let server = Server::start(&seed_config(""));
    for opcode in [OpCode::Update, OpCode::Notify, OpCode::Status] {
        let mut msg = query("app.", RecordType::A);
        msg.metadata.op_code = opcode;
        let answer = udp(server.addr, &msg);
        assert_eq!(
            answer.metadata.response_code,
            ResponseCode::NotImp,
            "{opcode:?}"
        );
    }
}

#[test]
fn question_count_other_than_one_gets_formerr() {
    let server = Server::start(&seed_config(""));
    let none = Message::query();
    assert_eq!(
        udp(server.addr, &none).metadata.response_code,
        ResponseCode::FormErr
    );
    let mut two = query("app.", RecordType::A);
    two.add_query(Query::query(
        Name::from_ascii("web1.").expect("name"),
        RecordType::A,
    ));
    assert_eq!(
        udp(server.addr, &two).metadata.response_code,
        ResponseCode::FormErr
    );
}

#[test]
fn responses_and_garbage_are_not_answered_and_the_server_stays_up() {
    let mut server = Server::start(&seed_config(""));
    let mut response = query("app.", RecordType::A);
    response.metadata.message_type = MessageType::Response;
    let bytes = response.to_vec().expect("encode");
    assert!(
        udp_raw(server.addr, &bytes, Duration::from_millis(500)).is_none(),
        "QR=1 is never answered"
    );

    assert!(
        udp_raw(server.addr, &[0x12, 0x34, 0x01], Duration::from_millis(300)).is_none(),
        "short packet dropped"
    );

    // A header promising a question that is not there: FORMERR or silence, never a crash.
    let truncated = [
        0xbe, 0xef, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0x03, b'a', b'p',
    ];
    if let Some(reply) = udp_raw(server.addr, &truncated, Duration::from_millis(500)) {
        assert_eq!(reply[3] & 0x0f, 1, "FORMERR");
        assert_eq!(&reply[..2], &[0xbe, 0xef]);
    }
    // A compression loop in the question name.
    let looped = [
        0xbe, 0xf0, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, 0, 1, 0, 1,
    ];
    let _ = udp_raw(server.addr, &looped, Duration::from_millis(500));
    // Pseudo-random junk, deterministic.
    let mut seed: u32 = 0x1234_5678;
    for len in [12usize, 13, 40, 300, 512, 1500] {
        let junk: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                seed as u8
            })
            .collect();
        let _ = udp_raw(server.addr, &junk, Duration::from_millis(100));
    }
    // Reset mid-message over TCP.
    let mut half = tcp_connect(server.addr);
    half.write_all(&[0x00, 0x40, 0x12]).expect("partial");
    drop(half);

    assert!(server.is_running(), "server survived");
    assert_eq!(a_of(&server, "app.").len(), 3);
    assert_eq!(
        a_records(&tcp(server.addr, &query("app.", RecordType::A))).len(),
        3
    );
}

#[test]
fn a_long_name_near_the_udp_limit_keeps_all_but_the_record_past_it() {
    // 28 A records behind a 50-character alias: 12 + 56 + 28 * 16 = 516 bytes encoded (every
    // owner a pointer to the question), 4 over 512; 27 fit, and come with TC set (RFC 2181 9
    // allows the partial RRset in a TC answer; the client may retry over TCP for all 28).
    let alias = "a".repeat(50);
    let mut config = seed_config("");
    config.push_str("\n[networks.longnet]\n");
    for i in 0..28 {
        config.push_str(&format!(
            "[[networks.longnet.endpoints]]\nname = \"l{i}\"\nipv4 = \"10.51.0.{}\"\naliases = [\"{alias}\"]\n",
            i + 1
        ));
    }
    let server = Server::start(&config);
    let answer = udp(server.addr, &query(&format!("{alias}."), RecordType::A));
    assert!(answer.metadata.truncation, "516 bytes do not fit 512");
    assert_eq!(answer.answers.len(), 27, "all but the one past 512");
    assert_eq!(
        tcp(server.addr, &query(&format!("{alias}."), RecordType::A))
            .answers
            .len(),
        28
    );
    let roomy = udp(
        server.addr,
        &with_edns(query(&format!("{alias}."), RecordType::A), 1232, 0),
    );
    assert_eq!(roomy.answers.len(), 28);
}

/// Found by the tcp_framing fuzz target: a question name ending in a compression pointer into
/// the header (never a valid target: no name precedes the first question). It is FORMERR,
/// over both transports, as BIND answers it.
#[test]
fn a_question_name_with_a_compression_pointer_gets_formerr() {
    let server = Server::start(&seed_config(""));
    // ID 0x1234, RD, one question: "\x01a" then a pointer to offset 2 (the flags).
    let packet = [
        0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, b'a', 0xc0,
        0x02, 0x00, 0x01, 0x00, 0x01,
    ];
    let reply = udp_raw(server.addr, &packet, TIMEOUT).expect("an answer");
    let parsed = Message::from_vec(&reply).expect("the answer decodes");
    assert_eq!(parsed.metadata.id, 0x1234);
    assert_eq!(parsed.metadata.response_code, ResponseCode::FormErr);

    let mut stream = tcp_connect(server.addr);
    let mut framed = (packet.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&packet);
    stream.write_all(&framed).expect("write");
    assert_eq!(
        tcp_read(&mut stream).metadata.response_code,
        ResponseCode::FormErr
    );
    assert_eq!(a_of(&server, "app.").len(), 3);
}
