//! The image as the README runs it, with no upstream given: outside names go through Docker's
//! own resolver (127.0.0.11 in netalias's container), which forwards them the way the
//! container was told (`--dns`, here a test dnsmasq on the test network's gateway). Real
//! glibc and musl clients whose resolv.conf names the sidecar resolve through it. And a
//! sidecar whose `--dns` names itself (a loop through Docker's resolver) answers SERVFAIL at
//! once and counts the loop. Needs `tests/build-image.sh` and `tests/build-client-image.sh`.

mod common;

use std::{process::Command, time::Duration};

use common::{
    clients::{self, Library, Lookup},
    dnsmasq,
    docker::*,
    http_get, metric,
};

const SETTLE: Duration = Duration::from_secs(30);
const NET: &str = "i32-dflt";
const SUBNET: &str = "10.232.7.0/24";
const GATEWAY: &str = "10.232.7.1";

/// Removes the sidecars (started outside `Stack` because their image and flags differ).
struct Containers(Vec<String>);
impl Drop for Containers {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = Command::new("docker").args(["rm", "-f", name]).output();
        }
    }
}

/// Starts the netalias image on `NET` with `extra` flags and nothing about upstreams.
fn sidecar(name: &str, extra: &[&str]) {
    let gid = docker_socket_gid();
    let image = netalias_image();
    let allow = format!("NETALIAS_HTTP_ALLOW={GATEWAY}/32");
    let mut args = vec![
        "run",
        "-d",
        "--label",
        LABEL,
        "--name",
        name,
        "--network",
        NET,
        "--cap-drop",
        "ALL",
        "--cap-add",
        "NET_BIND_SERVICE",
        "--group-add",
        &gid,
        "-v",
        "/var/run/docker.sock:/var/run/docker.sock:ro",
        // The host asks /metrics from the network's gateway.
        "-e",
        &allow,
    ];
    args.extend(extra);
    args.push(&image);
    docker(&args);
}

/// A client container on `net` whose resolv.conf names only `server`, started idle and
/// returned once `server` knows it as a container (its own name answers): a container that
/// asks before netalias's Docker source has seen it start is still a stranger, and refused.
fn client(name: &str, net: &str, server: &str, dir: &std::path::Path) -> String {
    let resolv = dir.join(format!("resolv-{name}.conf"));
    std::fs::write(
        &resolv,
        format!("nameserver {server}\noptions attempts:1\n"),
    )
    .expect("write");
    let mount = format!("{}:/etc/resolv.conf:ro", resolv.display());
    let mut args = vec![
        "run",
        "-d",
        "--label",
        LABEL,
        "--name",
        name,
        "--network",
        net,
        "-v",
        &mount,
    ];
    let image = clients::image();
    args.push(image);
    args.extend(IDLE);
    docker(&args);
    assert!(
        eventually(SETTLE, || !kdig_from(name, server, 53, name).is_empty()),
        "{server} knows {name}"
    );
    name.to_string()
}

/// `library`'s getaddrinfo for `name`, run in `container`.
fn lookup(container: &str, library: Library, name: &str) -> Lookup {
    let out = Command::new("docker")
        .args(["exec", container, library.binary(), name])
        .output()
        .expect("docker exec client");
    let text = String::from_utf8_lossy(&out.stdout);
    clients::parse(&text).pop().unwrap_or_else(|| {
        panic!(
            "{library:?} printed nothing: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn with_no_upstream_the_sidecar_forwards_through_docker_s_resolver() {
    if !available() || !netalias_image_present() || !dnsmasq::Dnsmasq::installed() {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let mut stack = Stack::default();
    stack.network(
        NET,
        &[
            &format!("--subnet={SUBNET}"),
            &format!("--gateway={GATEWAY}"),
        ],
    );
    // What the daemon's `dns` would be: a dnsmasq on the network's gateway, port 53, which
    // knows outside.test and nothing else (no resolv.conf of its own: nothing leaves).
    let upstream = dnsmasq::Dnsmasq::start(GATEWAY, 53, "192.0.2.77 outside.test\n");
    let mut containers = Containers(Vec::new());
    containers.0.push("i32-sidecar".into());
    sidecar("i32-sidecar", &["--dns", GATEWAY]);
    let sidecar_ip = ip_on("i32-sidecar", NET).to_string();

    // The start log says what it forwards to, and why.
    let mut logs = String::new();
    assert!(
        eventually(SETTLE, || {
            logs = docker_logs("i32-sidecar");
            logs.contains("listening on udp and tcp")
        }),
        "the sidecar started:\n{logs}"
    );
    let line = logs
        .lines()
        .find(|l| l.contains("forwarding names netalias does not own"))
        .unwrap_or_else(|| panic!("no upstream line:\n{logs}"));
    assert!(
        line.contains("upstreams=[127.0.0.11:53]")
            && line.contains("from=\"/etc/resolv.conf (Docker's embedded DNS)\""),
        "{line}"
    );
    eprintln!("sidecar start log: {line}");

    containers.0.push("i32-client".into());
    let asker = client("i32-client", NET, &sidecar_ip, dir.path());
    for library in [Library::Musl, Library::Glibc] {
        let got = lookup(&asker, library, "outside.test");
        assert_eq!(
            got.addresses,
            Some(vec!["192.0.2.77".parse().expect("ip")]),
            "{library:?}: {got:?}\ndnsmasq:\n{}",
            upstream.log()
        );
    }
    assert!(
        upstream.count("query[A] outside.test") >= 1,
        "the answer came from the test's dnsmasq:\n{}",
        upstream.log()
    );
    let page = http_get(format!("{sidecar_ip}:9153"), "/metrics");
    assert!(
        metric(
            &page,
            "netalias_upstream_requests_total{upstream=\"127.0.0.11:53\"}"
        ) >= 1.0,
        "{page}"
    );
}

#[test]
fn a_sidecar_whose_dns_names_itself_answers_servfail_and_counts_the_loop() {
    if !available() || !netalias_image_present() {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let mut stack = Stack::default();
    // A network of its own (the other test may run beside it).
    let net = "i32-loop";
    stack.network(net, &["--subnet=10.232.8.0/24", "--gateway=10.232.8.1"]);
    // Its fixed address, which its own `--dns` names.
    let ip = "10.232.8.53";
    let mut containers = Containers(Vec::new());
    containers.0.push("i32-looping".into());
    let gid = docker_socket_gid();
    let image = netalias_image();
    docker(&[
        "run",
        "-d",
        "--label",
        LABEL,
        "--name",
        "i32-looping",
        "--network",
        net,
        "--ip",
        ip,
        // Docker's 127.0.0.11 in it forwards outside names to... itself.
        "--dns",
        ip,
        "--cap-drop",
        "ALL",
        "--cap-add",
        "NET_BIND_SERVICE",
        "--group-add",
        &gid,
        "-v",
        "/var/run/docker.sock:/var/run/docker.sock:ro",
        "-e",
        "NETALIAS_HTTP_ALLOW=10.232.8.1/32",
        &image,
    ]);
    assert!(
        eventually(SETTLE, || docker_logs("i32-looping")
            .contains("listening on udp and tcp")),
        "started:\n{}",
        docker_logs("i32-looping")
    );
    containers.0.push("i32-loop-client".into());
    let asker = client("i32-loop-client", net, ip, dir.path());
    // Each fails (how fast is the library's business: glibc and Go at once on SERVFAIL,
    // musl only after its timeout, as on REFUSED; printed, not asserted).
    for library in Library::ALL {
        let got = lookup(&asker, library, "loop.test");
        assert!(
            got.addresses.is_none(),
            "{library:?}: the looped name does not resolve: {got:?}"
        );
        eprintln!("{library:?} through the looping sidecar: {got:?}");
    }
    let page = http_get(format!("{ip}:9153"), "/metrics");
    let loops = metric(&page, "netalias_forward_loops_total");
    let sent = metric(
        &page,
        "netalias_upstream_requests_total{upstream=\"127.0.0.11:53\"}",
    );
    eprintln!("loops {loops}, sent to 127.0.0.11: {sent}");
    assert!(loops >= 1.0, "the loop was seen: {page}");
    // glibc asks A and AAAA, perhaps twice each: a handful, not a storm.
    assert!(sent <= 8.0, "no storm: {sent} sent to 127.0.0.11");
    let logs = docker_logs("i32-looping");
    assert_eq!(
        logs.matches("a forwarded question came back to netalias")
            .count(),
        1,
        "warned once:\n{logs}"
    );
}
