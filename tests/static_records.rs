//! Static records beside the containers (`[networks.N.records]`: CNAME, A, AAAA, TXT), over
//! real UDP and TCP sockets against the library server in this process, and a live reload
//! against the binary.

mod common;

use std::{collections::HashSet, net::Ipv4Addr, time::Instant};

use common::{in_process::InProcess, *};

/// The seed (`app` = web1..3 on my_custom_network) with records on it, and a second network
/// with records of its own.
fn config(extra_server: &str) -> String {
    let mut text = seed_config(extra_server);
    text.push_str(
        r#"
[networks.my_custom_network.records.cname]
"www.shop.test" = "app"
"hop.shop.test" = "www.shop.test"
"loop1.shop.test" = "loop2.shop.test"
"away.shop.test" = "example.com"
"gone.shop.test" = "nope.docker"
"db-alias.shop.test" = "db.shop.test"

[networks.my_custom_network.records.a]
"db.shop.test" = "172.72.9.1"
"pair.shop.test" = ["172.72.9.2", "172.72.9.3"]

[networks.my_custom_network.records.aaaa]
"db.shop.test" = "fd00:72::9"

[networks.my_custom_network.records.txt]
"info.shop.test" = ["v=1", "owner=ops"]

[networks.other]
[[networks.other.endpoints]]
name = "lone"
ipv4 = "10.77.0.2"

[networks.other.records.a]
"elsewhere.shop.test" = "10.77.9.9"

# Half of a loop: the file refuses a loop within one network; across two, an asker who sees
# both gets SERVFAIL.
[networks.other.records.cname]
"loop2.shop.test" = "loop1.shop.test"
"#,
    );
    text
}

fn cname_targets(msg: &Message) -> Vec<String> {
    msg.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::CNAME(c) => Some(format!("{} -> {}", r.name, c.0)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_cname_to_a_held_alias_rotates_over_its_members_on_udp_and_tcp() {
    let server = InProcess::start(&config(""));
    for ask in [udp, tcp] {
        let mut firsts = HashSet::new();
        for _ in 0..3 {
            let answer = ask(server.addr, &query("www.shop.test.", RecordType::A));
            assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
            assert!(answer.metadata.authoritative);
            assert_eq!(cname_targets(&answer), ["www.shop.test. -> app."]);
            assert_eq!(
                answer.answers[0].record_type(),
                RecordType::CNAME,
                "the CNAME comes first"
            );
            let ips = a_records(&answer);
            assert_eq!(ips.len(), 3, "every member follows: {answer:?}");
            assert!(
                answer.answers[1..]
                    .iter()
                    .all(|r| r.name.to_ascii() == "app."),
                "the target's records are owned by the target"
            );
            firsts.insert(ips[0]);
        }
        assert_eq!(
            firsts.len(),
            3,
            "three asks, three first members: {firsts:?}"
        );
    }
    // The CNAME takes the target's own turn: a direct question comes next in the rotation.
    let via = a_of(&server, "www.shop.test.");
    let direct = a_of(&server, "app.");
    assert_eq!(direct[0], via[1], "{via:?} then {direct:?}");
}

#[test]
fn a_chain_of_two_cnames_is_followed_and_cname_asked_gets_the_cname_alone() {
    let server = InProcess::start(&config(""));
    let answer = udp(server.addr, &query("hop.shop.test.", RecordType::A));
    assert_eq!(
        cname_targets(&answer),
        ["hop.shop.test. -> www.shop.test.", "www.shop.test. -> app."]
    );
    assert_eq!(a_records(&answer).len(), 3);
    let cname = udp(server.addr, &query("hop.shop.test.", RecordType::CNAME));
    assert_eq!(cname_targets(&cname), ["hop.shop.test. -> www.shop.test."]);
    assert_eq!(cname.answers.len(), 1);
    // A static name's AAAA through a CNAME.
    let v6 = tcp(server.addr, &query("db-alias.shop.test.", RecordType::AAAA));
    assert_eq!(v6.answers.len(), 2, "{v6:?}");
    assert!(matches!(&v6.answers[1].data, RData::AAAA(a) if a.0.to_string() == "fd00:72::9"));
}

#[test]
fn a_txt_name_returns_its_strings() {
    let server = InProcess::start(&config(""));
    for ask in [udp, tcp] {
        let answer = ask(server.addr, &query("info.shop.test.", RecordType::TXT));
        assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
        assert!(answer.metadata.authoritative);
        let strings: Vec<Vec<u8>> = answer
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(t) => Some(t.txt_data.iter().map(|s| s.to_vec()).collect::<Vec<_>>()),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(strings, [b"v=1".to_vec(), b"owner=ops".to_vec()]);
        // The name exists without addresses: NODATA with the SOA.
        let a = ask(server.addr, &query("info.shop.test.", RecordType::A));
        assert_eq!(a.metadata.response_code, ResponseCode::NoError);
        assert!(a.answers.is_empty());
        assert_eq!(a.authorities.len(), 1);
    }
}

#[test]
fn static_a_and_aaaa_names_answer_and_several_addresses_rotate() {
    let server = InProcess::start(&config(""));
    assert_eq!(
        a_of(&server, "db.shop.test."),
        [Ipv4Addr::new(172, 72, 9, 1)]
    );
    let v6 = udp(server.addr, &query("db.shop.test.", RecordType::AAAA));
    assert!(
        matches!(&v6.answers[..], [r] if matches!(&r.data, RData::AAAA(a) if a.0.to_string() == "fd00:72::9"))
    );
    let first = a_of(&server, "pair.shop.test.");
    let second = tcp(server.addr, &query("pair.shop.test.", RecordType::A));
    assert_eq!(first.len(), 2);
    assert_eq!(a_records(&second), [first[1], first[0]]);
    // Under the search domain too, as any name.
    assert_eq!(
        a_of(&server, "db.shop.test.docker."),
        [Ipv4Addr::new(172, 72, 9, 1)]
    );
}

/// A loop the file cannot see (across two networks) is SERVFAIL when asked; one within a
/// network is refused at load (`config`'s unit test).
#[test]
fn a_cname_loop_is_servfail() {
    let server = InProcess::start(&config(""));
    for ask in [udp, tcp] {
        let answer = ask(server.addr, &query("loop1.shop.test.", RecordType::A));
        assert_eq!(answer.metadata.response_code, ResponseCode::ServFail);
        assert!(answer.answers.is_empty());
    }
}

#[test]
fn a_cname_to_an_unheld_name_is_the_cname_alone_or_nxdomain_under_our_domain() {
    let server = InProcess::start(&config(""));
    // Not ours (forwarding is off here): the CNAME alone, for the resolver to chase.
    let away = udp(server.addr, &query("away.shop.test.", RecordType::A));
    assert_eq!(away.metadata.response_code, ResponseCode::NoError);
    assert!(away.metadata.authoritative);
    assert_eq!(cname_targets(&away), ["away.shop.test. -> example.com."]);
    assert_eq!(away.answers.len(), 1);
    // Under the search domain and not held: NXDOMAIN (RFC 6604), the CNAME and the SOA.
    let gone = tcp(server.addr, &query("gone.shop.test.", RecordType::A));
    assert_eq!(gone.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(cname_targets(&gone), ["gone.shop.test. -> nope.docker."]);
    assert!(matches!(&gone.authorities[..], [soa] if soa.record_type() == RecordType::SOA));
}

#[test]
fn records_are_scoped_to_their_network() {
    // The host sees only the seed network: the other network's records are not its.
    let server = InProcess::start(&config("default_view = [\"my_custom_network\"]"));
    assert_eq!(
        a_of(&server, "db.shop.test."),
        [Ipv4Addr::new(172, 72, 9, 1)]
    );
    let hidden = udp(server.addr, &query("elsewhere.shop.test.", RecordType::A));
    assert!(hidden.answers.is_empty(), "{hidden:?}");
    assert_ne!(hidden.metadata.response_code, ResponseCode::NoError);
    let all = InProcess::start(&config(""));
    assert_eq!(
        a_of(&all, "elsewhere.shop.test."),
        [Ipv4Addr::new(10, 77, 9, 9)]
    );
}

#[test]
fn records_reload_live() {
    let server = Server::start(&config(""));
    assert_eq!(
        a_of(&server, "db.shop.test."),
        [Ipv4Addr::new(172, 72, 9, 1)]
    );
    let edited = config("")
        .replace(
            "\"db.shop.test\" = \"172.72.9.1\"",
            "\"db.shop.test\" = \"172.72.9.7\"",
        )
        .replace("\"www.shop.test\" = \"app\"\n", "");
    std::fs::write(server.config_path(), edited).expect("rewrite the config");
    let deadline = Instant::now() + TIMEOUT;
    while a_of(&server, "db.shop.test.") != [Ipv4Addr::new(172, 72, 9, 7)] {
        assert!(Instant::now() < deadline, "the edit was not applied");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let removed = udp(server.addr, &query("www.shop.test.", RecordType::A));
    assert!(cname_targets(&removed).is_empty(), "{removed:?}");
}

/// Issue 28 item 7: `netalias explain` and `/records` say where a static name and a CNAME
/// come from; the query log names it (label and compose names: the unit test in
/// `source::docker::translate`, which runs them through the registry to the same wording).
#[test]
fn explain_records_and_the_query_log_say_where_a_name_comes_from() {
    let http: std::net::SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let server = Server::start(&config(&format!(
        "http_listen = \"{http}\"\nlog_queries = true"
    )));
    let explain = |name: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_netalias"))
            .args(["explain", name, "--http", &http.to_string()])
            .output()
            .expect("netalias explain");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let www = explain("www.shop.test");
    assert!(www.contains("CNAME app (from static (CNAME))"), "{www}");
    assert!(www.contains("name from: CNAME"), "{www}");
    assert!(www.contains("answer: app. 0 IN A 172.72.0."), "{www}");
    let db = explain("db.shop.test");
    assert!(
        db.contains("A 172.72.9.1 (in rotation; from static (config))"),
        "{db}"
    );
    let app = explain("app");
    assert!(
        app.contains("172.72.0.2 web1 (in rotation; server TTL; from static (config))"),
        "{app}"
    );

    let records: std::collections::BTreeMap<
        String,
        std::collections::BTreeMap<String, Vec<String>>,
    > = serde_json::from_str(&http_get(http, "/records")).expect("records JSON");
    let seed = &records["my_custom_network"];
    assert_eq!(seed["www.shop.test"], ["CNAME app. (from CNAME)"]);
    assert_eq!(
        seed["db.shop.test"],
        ["172.72.9.1 (from config)", "fd00:72::9 (from config)"]
    );
    assert_eq!(
        seed["info.shop.test"],
        ["TXT \"v=1\" \"owner=ops\" (from config)"]
    );

    udp(server.addr, &query("www.shop.test.", RecordType::A));
    let line = server.wait_log("netalias::query");
    assert!(
        line.contains("name=www.shop.test.") && line.contains("from=\"CNAME\""),
        "{line}"
    );
    tcp(server.addr, &query("pair.shop.test.", RecordType::A));
    let line = server.wait_log("netalias::query");
    assert!(line.contains("from=\"config\""), "{line}");
}

/// Issue 28 item 4: a CNAME to a name netalias would forward carries the target's records
/// from the upstream in the same answer (stub resolvers do not chase a CNAME), and the
/// upstream's NXDOMAIN is the answer's (RFC 6604).
#[test]
fn a_cname_to_a_forwarded_name_carries_the_upstream_s_records() {
    let up = upstream::FakeUpstream::start(upstream::Mode::Zone);
    let mut text = config("");
    text = text.replace(
        "\"away.shop.test\" = \"example.com\"",
        "\"away.shop.test\" = \"far.example.test\"\n\"lost.shop.test\" = \"gone.test\"",
    );
    text.push_str(&format!(
        "\n[forward]\nenabled = true\nupstreams = [\"{}\"]\n",
        up.addr
    ));
    let server = InProcess::start(&text);
    for reply in [
        udp(server.addr, &query("away.shop.test.", RecordType::A)),
        tcp(server.addr, &query("away.shop.test.", RecordType::A)),
    ] {
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert_eq!(
            cname_targets(&reply),
            ["away.shop.test. -> far.example.test."]
        );
        let targets: Vec<String> = reply
            .answers
            .iter()
            .filter(|r| r.record_type() == RecordType::A)
            .map(|r| r.name.to_string())
            .collect();
        assert_eq!(
            targets,
            ["far.example.test.", "far.example.test."],
            "{reply:?}"
        );
    }
    let lost = udp(server.addr, &query("lost.shop.test.", RecordType::A));
    assert_eq!(lost.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(cname_targets(&lost), ["lost.shop.test. -> gone.test."]);
    // CNAME asked: the CNAME alone, nothing forwarded for it.
    let before = up.udp() + up.tcp();
    let asked = udp(server.addr, &query("away.shop.test.", RecordType::CNAME));
    assert_eq!(asked.answers.len(), 1);
    assert_eq!(up.udp() + up.tcp(), before);
}
