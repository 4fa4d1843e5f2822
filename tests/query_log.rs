//! The query log over real sockets: off by default, turned on by a reload, one line per
//! question with the asker's container, the answers in order and the path taken; JSON lines
//! with `--log-format json`.

mod common;

use std::{net::UdpSocket, time::Duration};

use common::{upstream::*, *};

/// The seed's network, plus an endpoint at 127.0.0.9 to ask from, and forwarding.
fn config(log_queries: bool, upstream: &FakeUpstream) -> String {
    seed_config(&format!("log_queries = {log_queries}"))
        + &format!(
            "\n[networks.lognet]\n[[networks.lognet.endpoints]]\nname = \"probe\"\nipv4 = \"127.0.0.9\"\n\n[forward]\nenabled = true\nupstreams = [\"{}\"]\n",
            upstream.addr
        )
}

fn ask_from(source: &str, server: &Server, name: &str) -> Message {
    let socket = UdpSocket::bind((source, 0)).expect("bind");
    socket.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let bytes = query(name, RecordType::A).to_vec().expect("encode");
    socket.send_to(&bytes, server.addr).expect("send");
    let mut buf = [0u8; 4096];
    let (n, _) = socket.recv_from(&mut buf).expect("answer");
    Message::from_vec(&buf[..n]).expect("decodes")
}

#[test]
fn queries_are_logged_once_a_reload_turns_the_log_on() {
    let up = FakeUpstream::start(Mode::Answer { ttl: 300 });
    let server = Server::start(&config(false, &up));
    assert_eq!(a_of(&server, "app.").len(), 3);
    std::fs::write(server.config_path(), config(true, &up)).expect("rewrite");
    server.wait_log("config reloaded");
    // Nothing was logged while it was off: the first query line is the one asked now.
    let app = a_of(&server, "app.");
    let line = server.wait_log("netalias::query");
    let listed: Vec<String> = app.iter().map(|ip| ip.to_string()).collect();
    assert!(
        line.contains("name=app.")
            && line.contains(&format!("answers={}", listed.join(",")))
            && line.contains("path=\"fast\"")
            && line.contains("rcode=\"NOERROR\"")
            && line.contains("from=\"config\""),
        "the answers in the order sent, and where the name comes from: {line}"
    );

    // A container asking is named by its endpoint.
    ask_from("127.0.0.9", &server, "app.lognet.");
    let line = server.wait_log("netalias::query");
    assert!(
        line.contains("asker=127.0.0.9") && line.contains("container=\"probe.lognet\""),
        "{line}"
    );

    // Forwarded, then from the cache on the fast path.
    udp(server.addr, &query("far.example.", RecordType::A));
    assert!(
        server
            .wait_log("netalias::query")
            .contains("path=\"forwarded\"")
    );
    udp(server.addr, &query("far.example.", RecordType::A));
    assert!(
        server
            .wait_log("netalias::query")
            .contains("path=\"fast-cache\"")
    );
    tcp(server.addr, &query("nope.docker.", RecordType::A));
    let line = server.wait_log("netalias::query");
    assert!(
        line.contains("path=\"full\"") && line.contains("rcode=\"NXDOMAIN\""),
        "{line}"
    );
}

#[test]
fn json_lines_carry_the_same_fields() {
    let up = FakeUpstream::start(Mode::Answer { ttl: 300 });
    let server = Server::start_with(
        &config(false, &up),
        &["--log-queries", "--log-format", "json"],
    );
    a_of(&server, "web2.");
    let line = server.wait_log("netalias::query");
    let json: serde_json::Value = serde_json::from_str(&line).expect("one JSON object a line");
    assert_eq!(json["name"], "web2.");
    assert_eq!(json["answers"], "172.72.0.3");
    assert_eq!(json["path"], "fast");
    assert!(json["micros"].as_u64().is_some());
    std::thread::sleep(Duration::from_millis(10));
}
