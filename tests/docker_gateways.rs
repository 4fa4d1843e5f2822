//! How containers reach netalias, against the real engine: `serve --docker` serves exactly
//! what the engine holds; every user-defined bridge gets a gateway listener however it was
//! created (only `--subnet`, `--subnet --gateway`, no options, IPv6), and the default bridge
//! with `--attach-default-bridge`; and the zero-configuration path, a container with
//! `--dns <gateway>` asking `app.docker` through Docker's own 127.0.0.11, gets netalias's exact
//! rotation, scoped to its networks. Every resource is labelled and removed at the end.

mod common;

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    process::Command,
    time::Duration,
};

use common::{docker::*, *};

const SETTLE: Duration = Duration::from_secs(20);

/// `name`'s A records asked at `addr` over UDP; `None` when nothing answers.
fn a_at(addr: SocketAddr, name: &str) -> Option<Vec<Ipv4Addr>> {
    let sock = udp_bound_to(addr);
    let bytes = query(name, RecordType::A).to_vec().expect("encode");
    sock.send_to(&bytes, addr).ok()?;
    let mut buf = [0u8; 1500];
    let (n, _) = sock.recv_from(&mut buf).ok()?;
    Message::from_vec(&buf[..n]).ok().map(|m| a_records(&m))
}

fn udp_bound_to(addr: SocketAddr) -> std::net::UdpSocket {
    let any: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0".parse().unwrap()
    } else {
        "[::]:0".parse().unwrap()
    };
    let sock = std::net::UdpSocket::bind(any).expect("bind");
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    sock
}

/// Whether a query for `name` to `addr` gets an answer with `want` in it.
fn answers_at(addr: SocketAddr, name: &str, want: Ipv4Addr) -> bool {
    a_at(addr, name).is_some_and(|ips| ips.contains(&want))
}

fn inspect(what: &str, format: &str) -> String {
    docker(&["inspect", "-f", format, what])
}

#[test]
fn serve_docker_without_a_config_serves_only_what_the_engine_holds() {
    if !available() {
        return;
    }
    let mut stack = Stack::default();
    let net = stack.network("natest-true", &["--subnet=10.213.71.0/24"]);
    // A real container answering to `web1`, as the embedded demo's first member does.
    stack.run(
        "natest-true-web",
        &["--network", &net, "--network-alias", "web1"],
    );
    let ip = ip_on("natest-true-web", &net);
    let server = Server::start_without_config(&["--docker", "--listen", "127.0.0.1:0"]);
    server.wait_ready();
    assert!(
        eventually(SETTLE, || a_of(&server, "web1.") == vec![ip]),
        "web1 is the engine's container, not the demo's 172.72.0.2: {:?}",
        a_of(&server, "web1.")
    );
    for demo in ["app.", "web2.", "web3.my_custom_network.", "app.docker."] {
        assert!(a_of(&server, demo).is_empty(), "{demo}: no demo records");
    }
    let nx = udp(
        server.addr,
        &query("web2.my_custom_network.docker.", RecordType::A),
    );
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);

    // Without a live source the demo is what there is to try.
    let demo = Server::start_without_config(&["--listen", "127.0.0.1:0"]);
    assert_eq!(a_sorted(&demo, "app.").len(), 3);
}

#[test]
fn every_user_defined_bridge_gets_a_gateway_listener() {
    if !available() {
        return;
    }
    let mut stack = Stack::default();
    let subnet_only = stack.network("natest-gw-subnet", &["--subnet=10.213.72.0/24"]);
    let with_gateway = stack.network(
        "natest-gw-gateway",
        &["--subnet=10.213.73.0/24", "--gateway=10.213.73.254"],
    );
    let plain = stack.network("natest-gw-plain", &[]);
    let v6 = stack.network(
        "natest-gw-v6",
        &[
            "--ipv6",
            "--subnet=10.213.74.0/24",
            "--subnet=fd00:213:74::/64",
        ],
    );
    let port = 15356u16;
    let server = Server::start_with(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nttl = 0\ndomain = \"docker\"\n",
        &[
            "--docker",
            "--attach-bridges",
            "--attach-default-bridge",
            "--bridge-port",
            &port.to_string(),
        ],
    );
    server.wait_ready();
    let mut members = Vec::new();
    for net in [&subnet_only, &with_gateway, &plain, &v6] {
        let name = format!("{net}-c");
        stack.run(&name, &["--network", net]);
        members.push((net.clone(), name.clone(), ip_on(&name, net)));
    }
    let plain_gateway: IpAddr = inspect(
        &plain,
        "{{range .IPAM.Config}}{{if .Gateway}}{{.Gateway}}{{end}}{{end}}",
    )
    .parse()
    .expect("the engine names a gateway for a network made without options");
    let gateways: [(&str, IpAddr); 5] = [
        (&subnet_only, "10.213.72.1".parse().unwrap()),
        (&with_gateway, "10.213.73.254".parse().unwrap()),
        (&plain, plain_gateway),
        (&v6, "10.213.74.1".parse().unwrap()),
        (&v6, "fd00:213:74::1".parse().unwrap()),
    ];
    for (net, gateway) in gateways {
        let (_, name, ip) = members.iter().find(|(n, _, _)| n == net).expect("member");
        let at = SocketAddr::new(gateway, port);
        // An IPv6 gateway is usable once the bridge is up and its address leaves "tentative".
        assert!(
            eventually(SETTLE, || answers_at(at, &format!("{name}."), *ip)),
            "{net}: {name} through its gateway {at}"
        );
    }
    // The default bridge (docker0), for a daemon-wide "dns" in daemon.json.
    let docker0: IpAddr = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "dev", "docker0"])
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).to_string();
            let cidr = text.split_whitespace().nth(3)?.to_string();
            cidr.split('/').next()?.parse().ok()
        })
        .expect("docker0's address");
    let (_, name, ip) = &members[0];
    assert!(
        eventually(SETTLE, || answers_at(
            SocketAddr::new(docker0, port),
            &format!("{name}."),
            *ip
        )),
        "a listener on the default bridge's gateway {docker0}"
    );
    // A bridge that goes loses its listener (said in the log: its address is gone with it,
    // and a query there would leave the machine).
    drop(stack);
    server.wait_log("gateway listener closed network=natest-gw-subnet ");
}

/// The documented zero-configuration path: `--dns <gateway>` leaves Docker's 127.0.0.11 in the
/// container's resolv.conf; Docker answers bare names itself and forwards `NAME.docker`, from
/// the container's own address, to netalias, which rotates exactly and scopes to the asker.
#[test]
fn app_docker_through_127_0_0_11_rotates_exactly_and_is_scoped() {
    if !available() {
        return;
    }
    let mut stack = Stack::default();
    let net = stack.network("natest-zc", &["--subnet=10.213.75.0/24"]);
    let other = stack.network("natest-zc-other", &["--subnet=10.213.76.0/24"]);
    // Docker forwards to the --dns servers on port 53 only.
    let server = Server::start_with(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nttl = 0\ndomain = \"docker\"\n",
        &["--docker", "--attach-bridges", "--bridge-port", "53"],
    );
    server.wait_ready();
    let mut replicas = Vec::new();
    for i in 1..=3 {
        let name = format!("natest-zc-web{i}");
        stack.run(&name, &["--network", &net, "--network-alias", "app"]);
        replicas.push(ip_on(&name, &net));
    }
    stack.run(
        "natest-zc-elsewhere",
        &["--network", &other, "--network-alias", "app"],
    );
    let elsewhere = ip_on("natest-zc-elsewhere", &other);
    stack.run(
        "natest-zc-client",
        &["--network", &net, "--dns", "10.213.75.1"],
    );
    let resolv = docker(&["exec", "natest-zc-client", "cat", "/etc/resolv.conf"]);
    assert!(
        resolv.contains("nameserver 127.0.0.11") && !resolv.contains("10.213.75.1"),
        "Docker's own resolver stays first: {resolv}"
    );
    assert!(eventually(SETTLE, || a_sorted(&server, "app.natest-zc.")
        .len()
        == 3));

    let lookup = || -> Vec<Ipv4Addr> {
        let out = Command::new("docker")
            .args([
                "exec",
                "natest-zc-client",
                "/bin/busybox",
                "nslookup",
                "-type=a",
                "app.docker",
            ])
            .output()
            .expect("docker exec");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("Address:"))
            .filter_map(|a| a.trim().parse().ok())
            .collect()
    };
    assert!(
        eventually(SETTLE, || lookup().len() == 3),
        "app.docker answers through 127.0.0.11: {:?}",
        lookup()
    );
    let mut firsts: HashMap<Ipv4Addr, usize> = HashMap::new();
    for _ in 0..9 {
        let answer = lookup();
        let mut sorted = answer.clone();
        sorted.sort();
        let mut want = replicas.clone();
        want.sort();
        assert_eq!(sorted, want, "the asker's network only, never {elsewhere}");
        *firsts.entry(answer[0]).or_default() += 1;
    }
    assert_eq!(firsts.len(), 3, "{firsts:?}");
    assert!(
        firsts.values().all(|&n| n == 3),
        "exact rotation: {firsts:?}"
    );
}
