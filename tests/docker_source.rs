//! The Docker source against the real engine on this machine: the seed scenario, health,
//! scoping through bridge gateway listeners, labels, and loss of the engine.
//! Every resource is labelled `netalias.test=1` and removed at the end.

mod common;

use std::{collections::HashMap, net::Ipv4Addr, time::Duration};

use common::{docker::*, upstream, *};

const SETTLE: Duration = Duration::from_secs(20);

/// Only the server settings: the names come from Docker.
fn docker_config() -> String {
    "[server]\nlisten = [\"127.0.0.1:0\"]\nttl = 0\ndomain = \"docker\"\n".to_string()
}

fn start_docker_server(extra: &[&str]) -> Server {
    let mut args = vec!["--docker"];
    args.extend(extra);
    let server = Server::start_with(&docker_config(), &args);
    server.wait_ready();
    server
}

fn sorted(mut v: Vec<Ipv4Addr>) -> Vec<Ipv4Addr> {
    v.sort();
    v
}

fn answers_become(server: &Server, name: &str, want: &[Ipv4Addr]) -> bool {
    let want = sorted(want.to_vec());
    eventually(SETTLE, || sorted(a_of(server, name)) == want)
}

#[test]
fn seed_scenario_alias_rotation_and_lifecycle() {
    if !available() {
        return;
    }
    let mut stack = Stack::default();
    // The seed's bridge, test-local: subnet, ip-range and gateway.
    let net = stack.network(
        "natest-seed",
        &[
            "--driver=bridge",
            "--subnet=10.214.0.0/16",
            "--ip-range=10.214.5.0/24",
            "--gateway=10.214.0.1",
        ],
    );
    let server = start_docker_server(&[]);
    let mut ips = Vec::new();
    for i in 1..=3 {
        let name = format!("natest-seed-web{i}");
        stack.run(&name, &["--network", &net, "--network-alias", "app"]);
        ips.push(ip_on(&name, &net));
    }
    assert!(
        ips.iter().all(|ip| ip.octets()[..3] == [10, 214, 5]),
        "ip-range honoured: {ips:?}"
    );
    assert!(
        answers_become(&server, "app.", &ips),
        "app answers all three"
    );

    // Exact rotation: 30 asks, each member first 10 times.
    let mut firsts: HashMap<Ipv4Addr, usize> = HashMap::new();
    for _ in 0..30 {
        let answer = a_of(&server, "app.");
        assert_eq!(answer.len(), 3);
        *firsts.entry(answer[0]).or_default() += 1;
    }
    assert!(firsts.values().all(|&n| n == 10), "{firsts:?}");

    // Every name form, and PTR.
    let id = docker(&["inspect", "-f", "{{.Id}}", "natest-seed-web1"]);
    for name in [
        "natest-seed-web1.".to_string(),
        "natest-seed-web1.natest-seed.".to_string(),
        "natest-seed-web1.docker.".to_string(),
        format!("{}.", &id[..12]),
        "app.natest-seed.".to_string(),
    ] {
        assert!(a_of(&server, &name).contains(&ips[0]), "{name}");
    }
    let [o1, o2, o3, o4] = ips[0].octets();
    let ptr = udp(
        server.addr,
        &query(
            &format!("{o4}.{o3}.{o2}.{o1}.in-addr.arpa."),
            RecordType::PTR,
        ),
    );
    assert_eq!(
        ptr.answers.first().map(|r| r.data.to_string()).as_deref(),
        Some("natest-seed-web1.natest-seed.")
    );

    // Stop one: gone. Start it: back.
    docker(&["stop", "-t", "2", "natest-seed-web2"]);
    assert!(
        answers_become(&server, "app.", &[ips[0], ips[2]]),
        "stopped member leaves"
    );
    docker(&["start", "natest-seed-web2"]);
    let web2 = ip_on("natest-seed-web2", &net);
    assert!(
        answers_become(&server, "app.", &[ips[0], web2, ips[2]]),
        "restarted member returns"
    );

    // Disconnect: gone. Connect with the alias: back.
    docker(&["network", "disconnect", &net, "natest-seed-web3"]);
    assert!(
        answers_become(&server, "app.", &[ips[0], web2]),
        "disconnected member leaves"
    );
    docker(&[
        "network",
        "connect",
        "--alias",
        "app",
        &net,
        "natest-seed-web3",
    ]);
    let web3 = ip_on("natest-seed-web3", &net);
    assert!(
        answers_become(&server, "app.", &[ips[0], web2, web3]),
        "reconnected member returns"
    );

    // Rename: the new name answers, the old one does not.
    stack.rename("natest-seed-web1", "natest-seed-renamed");
    assert!(
        answers_become(&server, "natest-seed-renamed.", &[ips[0]]),
        "new name answers"
    );
    assert!(
        a_of(&server, "natest-seed-web1.").is_empty(),
        "old name is gone"
    );
    assert_eq!(
        sorted(a_of(&server, "app.")).len(),
        3,
        "alias unaffected by rename"
    );

    // Destroy the network: its names go with it.
    for c in [
        "natest-seed-renamed",
        "natest-seed-web2",
        "natest-seed-web3",
    ] {
        docker(&["rm", "-f", c]);
    }
    docker(&["network", "rm", &net]);
    stack.forget_network(&net);
    assert!(
        answers_become(&server, "app.natest-seed.", &[]),
        "names gone with the network"
    );
    assert!(
        eventually(SETTLE, || {
            udp(server.addr, &query("x.natest-seed.", RecordType::A))
                .metadata
                .response_code
                == ResponseCode::ServFail
        }),
        "the network's zone is gone (not ours, and forwarding is off: SERVFAIL)"
    );
}

#[test]
fn health_pause_and_labels_decide_rotation() {
    if !available() {
        return;
    }
    let mut stack = Stack::default();
    let net = stack.network("natest-health", &["--subnet=10.213.21.0/24"]);
    let http: std::net::SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let server = start_docker_server(&["--http-listen", &http.to_string()]);
    let health = [
        "--health-cmd",
        "test -f /tmp/ok",
        "--health-interval",
        "1s",
        "--health-retries",
        "1",
        "--health-timeout",
        "1s",
    ];
    let mut args = vec!["--network", net.as_str(), "--network-alias", "svc"];
    args.extend(health);
    stack.run("natest-health-a", &args);
    stack.run(
        "natest-health-b",
        &["--network", &net, "--network-alias", "svc"],
    );
    let ip_a = ip_on("natest-health-a", &net);
    let ip_b = ip_on("natest-health-b", &net);

    assert!(
        answers_become(&server, "svc.", &[ip_b]),
        "a is not healthy yet: out"
    );
    docker(&["exec", "natest-health-a", "touch", "/tmp/ok"]);
    assert!(
        answers_become(&server, "svc.", &[ip_a, ip_b]),
        "healthy: in"
    );
    docker(&["exec", "natest-health-a", "rm", "/tmp/ok"]);
    assert!(answers_become(&server, "svc.", &[ip_b]), "unhealthy: out");

    docker(&["pause", "natest-health-b"]);
    assert!(answers_become(&server, "svc.", &[]), "paused: out");
    docker(&["unpause", "natest-health-b"]);
    assert!(answers_become(&server, "svc.", &[ip_b]), "unpaused: in");

    stack.run(
        "natest-health-ttl",
        &["--network", &net, "--label", "netalias.ttl=9"],
    );
    assert!(
        eventually(SETTLE, || {
            udp(server.addr, &query("natest-health-ttl.", RecordType::A))
                .answers
                .first()
                .map(|r| r.ttl)
                == Some(9)
        }),
        "netalias.ttl label sets the TTL"
    );
    stack.run(
        "natest-health-hidden",
        &[
            "--network",
            &net,
            "--network-alias",
            "svc",
            "--label",
            "netalias.exclude=true",
        ],
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        a_of(&server, "svc."),
        vec![ip_b],
        "netalias.exclude keeps it out"
    );
    assert!(a_of(&server, "natest-health-hidden.").is_empty());

    // /records lists who is out and why, beside who is in.
    let records = http_get(http, "/records");
    assert!(
        records.contains(&format!("{ip_a} (out of rotation: unhealthy)")),
        "{records}"
    );
    let hidden = ip_on("natest-health-hidden", &net);
    assert!(
        records.contains(&format!("{hidden} (out of rotation: excluded by label)")),
        "{records}"
    );
    // And `netalias explain` says the same, with the next answer.
    let explained = std::process::Command::new(env!("CARGO_BIN_EXE_netalias"))
        .args(["explain", "svc", "--http", &http.to_string()])
        .output()
        .expect("netalias explain");
    let text = String::from_utf8_lossy(&explained.stdout);
    assert!(
        text.contains(&format!(
            "{ip_a} natest-health-a (OUT of rotation: unhealthy"
        )) && text.contains("OUT of rotation: excluded by label")
            && text.contains(&format!("next answer: {ip_b}")),
        "{text}"
    );
}

#[test]
fn include_unhealthy_keeps_failing_containers() {
    if !available() {
        return;
    }
    let mut stack = Stack::default();
    let net = stack.network("natest-unhealthy", &["--subnet=10.213.22.0/24"]);
    let server = start_docker_server(&["--include-unhealthy"]);
    stack.run(
        "natest-unhealthy-a",
        &[
            "--network",
            &net,
            "--health-cmd",
            "false",
            "--health-interval",
            "1s",
            "--health-retries",
            "1",
        ],
    );
    let ip = ip_on("natest-unhealthy-a", &net);
    assert!(answers_become(&server, "natest-unhealthy-a.", &[ip]));
}

#[test]
fn containers_see_only_their_networks_through_the_bridge_gateway() {
    if !available() {
        return;
    }
    let mut stack = Stack::default();
    let front = stack.network(
        "natest-front",
        &["--subnet=10.213.31.0/24", "--gateway=10.213.31.1"],
    );
    let back = stack.network(
        "natest-back",
        &["--subnet=10.213.32.0/24", "--gateway=10.213.32.1"],
    );
    let port = 15353u16;
    let server = start_docker_server(&["--attach-bridges", "--bridge-port", &port.to_string()]);
    stack.run(
        "natest-scope-f",
        &["--network", &front, "--network-alias", "frontapp"],
    );
    stack.run("natest-scope-b", &["--network", &back]);
    let ip_f = ip_on("natest-scope-f", &front);
    let ip_b = ip_on("natest-scope-b", &back);
    assert!(answers_become(&server, "natest-scope-b.", &[ip_b]));
    assert!(
        answers_become(&server, "frontapp.", &[ip_f]),
        "loopback sees every network"
    );

    let gw_front = "10.213.31.1";
    let gw_back = "10.213.32.1";
    assert!(
        eventually(SETTLE, || kdig_from(
            "natest-scope-f",
            gw_front,
            port,
            "frontapp"
        ) == ip_f.to_string()),
        "a container resolves names on its own network via its gateway"
    );
    assert_eq!(
        kdig_from("natest-scope-b", gw_back, port, "natest-scope-b"),
        ip_b.to_string()
    );
    assert_eq!(
        kdig_from("natest-scope-b", gw_back, port, "frontapp"),
        "",
        "other networks are invisible"
    );
    assert_eq!(
        kdig_from(
            "natest-scope-b",
            gw_back,
            port,
            "natest-scope-f.natest-front"
        ),
        ""
    );

    // A bridge created later gets a listener; one destroyed loses it.
    let late = stack.network(
        "natest-late",
        &["--subnet=10.213.33.0/24", "--gateway=10.213.33.1"],
    );
    stack.run("natest-scope-l", &["--network", &late]);
    let ip_l = ip_on("natest-scope-l", &late);
    assert!(
        eventually(SETTLE, || kdig_from(
            "natest-scope-l",
            "10.213.33.1",
            port,
            "natest-scope-l"
        ) == ip_l.to_string()),
        "listener follows a new bridge"
    );
    drop(server);
}

#[test]
fn forwarding_policy_internal_networks_and_outside_askers() {
    if !available() {
        return;
    }
    let upstream = upstream::FakeUpstream::start(upstream::Mode::Answer { ttl: 0 });
    let mut stack = Stack::default();
    let open = stack.network(
        "natest-fwd",
        &["--subnet=10.213.51.0/24", "--gateway=10.213.51.1"],
    );
    let internal = stack.network(
        "natest-int",
        &[
            "--internal",
            "--subnet=10.213.52.0/24",
            "--gateway=10.213.52.1",
        ],
    );
    // On the default bridge: a container with no names. Its gateway is docker0's address.
    stack.run("natest-fwd-outside", &[]);
    let docker0 = docker(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.Gateway}}",
        "natest-fwd-outside",
    ]);
    let port = 15354u16;
    let upstream_arg = upstream.addr.to_string();
    let docker0_listen = format!("{docker0}:{port}");
    let server = start_docker_server(&[
        "--attach-bridges",
        "--bridge-port",
        &port.to_string(),
        "--upstream",
        &upstream_arg,
        "--listen",
        "127.0.0.1:0",
        "--listen",
        &docker0_listen,
    ]);
    stack.run("natest-fwd-open", &["--network", &open]);
    stack.run("natest-fwd-int", &["--network", &internal]);
    let ip_int = ip_on("natest-fwd-int", &internal);
    assert!(answers_become(&server, "natest-fwd-int.", &[ip_int]));

    assert!(
        eventually(SETTLE, || kdig_from(
            "natest-fwd-open",
            "10.213.51.1",
            port,
            "far.example"
        ) == "192.0.2.1\n192.0.2.2"),
        "a container on a normal network is forwarded for"
    );
    let seen = upstream.udp();
    assert_eq!(
        kdig_from("natest-fwd-int", "10.213.52.1", port, "far2.example"),
        "",
        "a container on an internal network is not"
    );
    assert_eq!(
        kdig_from("natest-fwd-int", "10.213.52.1", port, "natest-fwd-int"),
        ip_int.to_string(),
        "but its own names still resolve"
    );
    assert_eq!(
        upstream.udp(),
        seen,
        "the internal one's query never reached the upstream"
    );
    // A container on the default bridge is a known container there: forwarded for, and, as
    // in Docker, no names (not even those of other networks).
    assert_eq!(
        kdig_from("natest-fwd-outside", &docker0, port, "far3.example"),
        "192.0.2.1\n192.0.2.2",
        "a default-bridge container is forwarded for"
    );
    let ip_open = ip_on("natest-fwd-open", &open).to_string();
    let seen_by_outside = kdig_from("natest-fwd-outside", &docker0, port, "natest-fwd-open");
    assert!(
        !seen_by_outside.contains(&ip_open),
        "and sees no container names (the name went upstream instead): {seen_by_outside}"
    );
}

/// `docker ARGS` for every one of `names` at once (`args` gives each one's), each asserted to
/// succeed: a burst of the engine's events.
fn docker_at_once(names: &[String], args: impl Fn(&str) -> Vec<String>) {
    let spawned: Vec<_> = names
        .iter()
        .map(|name| {
            std::process::Command::new("docker")
                .args(args(name))
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("docker")
        })
        .collect();
    for (mut child, name) in spawned.into_iter().zip(names) {
        assert!(child.wait().expect("docker").success(), "{name}");
    }
}

/// A burst of events into a pending-events queue of one: what cannot be queued is dropped,
/// a snapshot resyncs, and the answers end up equal to what the engine says.
#[test]
fn an_event_burst_past_the_queue_bound_resyncs_to_the_right_state() {
    if !available() {
        return;
    }
    let http: std::net::SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let config = format!(
        "{}http_listen = \"{http}\"\n\n[docker]\nmax_pending_events = 1\n",
        docker_config()
    );
    let server = Server::start_with(&config, &["--docker"]);
    server.wait_ready();
    let mut stack = Stack::default();
    let net = stack.network("natest-burst", &["--subnet=10.213.71.0/24"]);
    let names: Vec<String> = (1..=12).map(|i| format!("natest-burst-{i}")).collect();
    // Adopted first: removed at the end even when one of them fails to start.
    for name in &names {
        stack.adopt(name);
    }
    // Started in parallel: their events arrive faster than one inspect each.
    docker_at_once(&names, |name| {
        let run = ["run", "-d", "--label", LABEL, "--name", name];
        let on = ["--network", &net, "--network-alias", "burst", IMAGE];
        run.iter()
            .chain(&on)
            .chain(&IDLE)
            .map(|a| a.to_string())
            .collect()
    });
    // Whether a burst overflows the queue depends on how the engine's stream and the loop
    // are scheduled (on a loaded machine the events can come spread out): until one has, the
    // twelve are restarted together, another burst (kill, die, stop, start, restart each),
    // three at the most. After each, the answers must be the engine's.
    let mut overflows = 0.0;
    for round in 0..3 {
        if round > 0 {
            docker_at_once(&names, |name| {
                ["restart", "-t", "0", name].map(String::from).to_vec()
            });
        }
        let want: Vec<Ipv4Addr> = names.iter().map(|n| ip_on(n, &net)).collect();
        assert!(
            answers_become(&server, "burst", &want),
            "after burst {round}: {:?}",
            sorted(a_of(&server, "burst"))
        );
        for (name, ip) in names.iter().zip(&want) {
            assert_eq!(a_of(&server, name), [*ip], "{name} after burst {round}");
        }
        overflows = metric(&metrics_page(http), "netalias_docker_event_overflows_total");
        if overflows >= 1.0 {
            break;
        }
    }
    assert!(
        overflows >= 1.0,
        "no burst of three overflowed a queue of one"
    );
}

/// The static file and the engine publish on one network name; each removes only its own.
/// (Its alias is its own: the other tests here ask for `app.` unqualified, which the first
/// network in name order that holds it answers.)
#[test]
fn static_and_docker_on_one_network_name_keep_each_others_members() {
    if !available() {
        return;
    }
    let mut stack = Stack::default();
    let net = stack.network("natest-owned", &["--subnet=10.216.0.0/24"]);
    let with_file = |also: &str| {
        format!(
            "{}{also}\n[[networks.natest-owned.endpoints]]\nname = \"fileweb\"\nipv4 = \"10.216.0.200\"\naliases = [\"owned-app\"]\n",
            docker_config()
        )
    };
    let server = Server::start_with(&with_file(""), &["--docker"]);
    server.wait_ready();
    stack.run(
        "natest-owned-web",
        &["--network", &net, "--network-alias", "owned-app"],
    );
    let engine_ip = ip_on("natest-owned-web", &net);
    let file_ip: Ipv4Addr = "10.216.0.200".parse().expect("ip");
    assert!(
        answers_become(&server, "owned-app.natest-owned.", &[file_ip, engine_ip]),
        "one name held by both sources answers all their members: {:?}",
        a_of(&server, "owned-app.natest-owned.")
    );

    docker(&["stop", "-t", "0", "natest-owned-web"]);
    assert!(
        answers_become(&server, "owned-app.natest-owned.", &[file_ip]),
        "the container stopped; the file's member still answers: {:?}",
        a_of(&server, "owned-app.natest-owned.")
    );
    docker(&["start", "natest-owned-web"]);
    let engine_ip = ip_on("natest-owned-web", &net);
    assert!(answers_become(
        &server,
        "owned-app.natest-owned.",
        &[file_ip, engine_ip]
    ));

    // The file drops the network: the engine's member stays, and is not waiting for its
    // container to change to come back.
    std::fs::write(server.config_path(), docker_config()).expect("rewrite");
    server.wait_log("config reloaded");
    assert!(
        answers_become(&server, "owned-app.natest-owned.", &[engine_ip]),
        "the file's network went; the engine's member still answers: {:?}",
        a_of(&server, "owned-app.natest-owned.")
    );
    assert_eq!(
        a_of(&server, "natest-owned-web.natest-owned.docker."),
        vec![engine_ip]
    );
}

/// Names from the `netalias.names` label, against the real engine: two containers labelled
/// with a name and a wildcard rotate over both for the name and any name below the wildcard,
/// a name held more exactly (a third container's alias) keeps its own answer, and a
/// container that goes takes its names with it.
#[test]
fn names_and_wildcards_from_labels_rotate_like_aliases() {
    if !available() {
        return;
    }
    let mut stack = Stack::default();
    let net = stack.network("natest-labels", &["--subnet=10.213.71.0/24"]);
    let http = format!("127.0.0.1:{}", free_port());
    let server = start_docker_server(&["--http-listen", &http]);
    let labelled = ["--label", "netalias.names=api.shop.test,*.shop.test"];
    stack.run(
        "natest-label-a",
        &[&["--network", &net][..], &labelled].concat(),
    );
    stack.run(
        "natest-label-b",
        &[&["--network", &net][..], &labelled].concat(),
    );
    stack.run(
        "natest-label-c",
        &["--network", &net, "--network-alias", "admin.shop.test"],
    );
    let a = ip_on("natest-label-a", &net);
    let b = ip_on("natest-label-b", &net);
    let c = ip_on("natest-label-c", &net);
    let both = sorted(vec![a, b]);
    assert!(answers_become(&server, "api.shop.test.", &both));
    assert_eq!(sorted(a_of(&server, "anything.shop.test.")), both);
    assert_eq!(sorted(a_of(&server, "deep.er.shop.test.docker.")), both);
    assert!(answers_become(&server, "admin.shop.test.", &[c]));
    // Rotation over the two, whichever name below the wildcard is asked.
    let firsts: Vec<Ipv4Addr> = (0..4)
        .map(|i| a_of(&server, &format!("n{i}.shop.test."))[0])
        .collect();
    assert_eq!(
        firsts.iter().filter(|ip| **ip == a).count(),
        2,
        "{firsts:?}"
    );
    // Where each name comes from (issue 28 item 7): explain and /records say it.
    let explained = http_get(&http, "/explain?name=api.shop.test");
    assert!(
        explained.contains(&format!(
            "{a} natest-label-a (in rotation; server TTL; from docker (label))"
        )),
        "{explained}"
    );
    let wild = http_get(&http, "/explain?name=n9.shop.test");
    assert!(wild.contains("name from: label, wildcard"), "{wild}");
    let alias = http_get(&http, "/explain?name=admin.shop.test");
    assert!(alias.contains("from docker (alias)"), "{alias}");
    let records = http_get(&http, "/records");
    assert!(
        records.contains(&format!("\"{c} (from alias)\"")),
        "{records}"
    );
    assert!(records.contains("(from label, wildcard)"), "{records}");
    docker(&["rm", "-f", "natest-label-a", "natest-label-b"]);
    assert!(answers_become(&server, "api.shop.test.", &[]));
    assert!(a_of(&server, "anything.shop.test.").is_empty());
}

/// `server.host_name`: each container asking `host.docker` (through the gateway listener on
/// its own bridge) gets the host's address on its own network, the engine's gateway or, for a
/// `--subnet`-only network, the subnet's first host.
#[test]
fn the_host_name_answers_each_container_its_own_gateway() {
    if !available() {
        return;
    }
    let mut stack = Stack::default();
    let plain = stack.network("natest-host-a", &["--subnet=10.213.81.0/24"]);
    let given = stack.network(
        "natest-host-b",
        &["--subnet=10.213.82.0/24", "--gateway=10.213.82.254"],
    );
    let port = 15363u16;
    let config = docker_config().replacen("[server]\n", "[server]\nhost_name = \"host\"\n", 1);
    let server = Server::start_with(
        &config,
        &[
            "--docker",
            "--attach-bridges",
            "--bridge-port",
            &port.to_string(),
        ],
    );
    server.wait_ready();
    stack.run("natest-host-ca", &["--network", &plain]);
    stack.run("natest-host-cb", &["--network", &given]);
    let ip_a = ip_on("natest-host-ca", &plain);
    assert!(answers_become(&server, "natest-host-ca.", &[ip_a]));
    assert!(answers_become(
        &server,
        "natest-host-cb.",
        &[ip_on("natest-host-cb", &given)]
    ));
    for (container, gateway) in [
        ("natest-host-ca", "10.213.81.1"),
        ("natest-host-cb", "10.213.82.254"),
    ] {
        assert!(
            eventually(SETTLE, || kdig_from(
                container,
                gateway,
                port,
                "host.docker"
            ) == gateway),
            "{container} gets its own gateway: {:?}",
            kdig_from(container, gateway, port, "host.docker")
        );
    }
    // The host itself asks over loopback: it has no network of its own.
    assert!(a_of(&server, "host.docker.").is_empty());
}
