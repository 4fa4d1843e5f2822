//! IPv4 clients of a dual-stack `[::]` listener arrive as `::ffff:a.b.c.d`; every rule that
//! looks at the asker must see the IPv4 address: loopback may forward, a container sees only
//! its own networks, and each /24 has its own rate-limit bucket.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};

use common::{upstream::*, *};

fn config(upstream: &FakeUpstream, extra: &str) -> String {
    format!(
        r#"[server]
listen = ["[::]:0"]
domain = "docker"
{extra}

[forward]
enabled = true
upstreams = ["{}"]

[networks.front]
[[networks.front.endpoints]]
name = "web1"
ipv4 = "172.72.0.2"
aliases = ["app"]

[networks.side]
[[networks.side.endpoints]]
name = "me"
ipv4 = "127.0.0.5"
"#,
        upstream.addr
    )
}

/// Over IPv4 to the `[::]` listener's port, from `src`.
fn ask_from(src: [u8; 4], port: u16, name: &str) -> Option<Message> {
    let sock = UdpSocket::bind((IpAddr::from(src), 0)).expect("bind");
    sock.set_read_timeout(Some(std::time::Duration::from_millis(800)))
        .expect("timeout");
    let q = query(name, RecordType::A);
    let to = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    sock.send_to(&q.to_vec().expect("encode"), to)
        .expect("send");
    let mut buf = [0u8; 1500];
    let (n, _) = sock.recv_from(&mut buf).ok()?;
    Some(Message::from_vec(&buf[..n]).expect("decode"))
}

#[test]
fn ipv4_askers_on_a_dual_stack_listener_are_recognised() {
    let up = FakeUpstream::start(Mode::Answer { ttl: 0 });
    let server = Server::start(&config(&up, ""));
    assert!(server.addr.ip().is_unspecified() && server.addr.is_ipv6());
    let port = server.addr.port();

    // Loopback over IPv4 may forward.
    let forwarded = ask_from([127, 0, 0, 1], port, "elsewhere.example.").expect("answer");
    assert_eq!(forwarded.metadata.response_code, ResponseCode::NoError);
    assert_eq!(a_records(&forwarded).len(), 2);
    assert_eq!(up.udp(), 1);
    // The host sees every network.
    assert_eq!(
        a_records(&ask_from([127, 0, 0, 1], port, "app.").expect("answer")).len(),
        1
    );

    // A container (127.0.0.5 is `me` on `side`) sees its own network only.
    let own = ask_from([127, 0, 0, 5], port, "me.").expect("answer");
    assert_eq!(a_records(&own), vec![Ipv4Addr::new(127, 0, 0, 5)]);
    let other = ask_from([127, 0, 0, 5], port, "web1.front.docker.").expect("answer");
    assert!(a_records(&other).is_empty(), "front is not its network");
    assert_eq!(other.metadata.response_code, ResponseCode::NXDomain);

    // Over TCP too.
    let mut tcp = tcp_connect_from(
        IpAddr::from([127, 0, 0, 5]),
        SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
    )
    .expect("tcp");
    tcp_send(&mut tcp, &query("web1.front.docker.", RecordType::A));
    assert_eq!(
        tcp_read(&mut tcp).metadata.response_code,
        ResponseCode::NXDomain
    );
}

#[test]
fn each_ipv4_subnet_has_its_own_rate_limit_bucket_on_a_dual_stack_listener() {
    let up = FakeUpstream::start(Mode::Answer { ttl: 0 });
    let server = Server::start(&config(&up, "rate_limit_per_second = 5"));
    let port = server.addr.port();
    // A burst sent at once from `src`; the answers counted as they come back.
    let answered_from = |src: [u8; 4], n: usize| {
        let sock = UdpSocket::bind((IpAddr::from(src), 0)).expect("bind");
        sock.set_read_timeout(Some(std::time::Duration::from_millis(500)))
            .expect("timeout");
        let to = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        for _ in 0..n {
            let q = query("app.", RecordType::A).to_vec().expect("encode");
            sock.send_to(&q, to).expect("send");
        }
        let mut buf = [0u8; 1500];
        let mut answered = 0;
        while let Ok((len, _)) = sock.recv_from(&mut buf) {
            // Rate-limited queries may get an empty truncated reply (a slip): not an answer.
            let reply = Message::from_vec(&buf[..len]).expect("decode");
            answered += usize::from(!reply.metadata.truncation);
        }
        answered
    };
    let first = answered_from([127, 0, 1, 1], 30);
    assert!(
        first <= 10,
        "127.0.1.0/24 is limited: {first} of 30 answered"
    );
    assert!(first >= 1);
    // A different /24 has its own bucket, untouched by the first one's flood.
    assert!(
        answered_from([127, 0, 2, 1], 3) == 3,
        "127.0.2.0/24 has its own bucket"
    );
}
