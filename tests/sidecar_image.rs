//! The image, end to end against the real engine: netalias as a non-root sidecar on two
//! networks with the Docker socket read-only, app containers resolving through it, a test
//! upstream (dnsmasq on a network the test created), /metrics and /records, and its health.
//! The image is built first by tests/build-image.sh (tests/run.sh does it).

mod common;

use std::{collections::BTreeMap, process::Command, time::Duration};

use common::{dnsmasq, docker::*, http_get};

const SETTLE: Duration = Duration::from_secs(30);

/// kdig from inside `container`'s network namespace, one answer per line.
fn kdig_lines(container: &str, server: &str, name: &str) -> Vec<String> {
    kdig_from(container, server, 53, name)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn sidecar_serves_its_networks_forwards_the_rest_and_reports() {
    if !available() || !netalias_image_present() {
        return;
    }
    let mut stack = Stack::default();
    let net_a = stack.network(
        "natest-sca",
        &["--subnet=10.213.61.0/24", "--gateway=10.213.61.1"],
    );
    let net_b = stack.network(
        "natest-scb",
        &["--subnet=10.213.62.0/24", "--gateway=10.213.62.1"],
    );

    // The test upstream: dnsmasq on network A's gateway address.
    let upstream_port = 15355;
    let _dnsmasq =
        dnsmasq::Dnsmasq::start("10.213.61.1", upstream_port, "203.0.113.9 outside.test\n");

    let socket_gid = docker_socket_gid();
    let upstream = format!("NETALIAS_UPSTREAM=10.213.61.1:{upstream_port}");
    let mut sidecar_args = vec![
        "--network",
        net_a.as_str(),
        "--cap-drop",
        "ALL",
        "--cap-add",
        "NET_BIND_SERVICE",
        "--group-add",
        socket_gid.as_str(),
        "-v",
        "/var/run/docker.sock:/var/run/docker.sock:ro",
        "-e",
        upstream.as_str(),
        // The host asks from network A's gateway: let it read every record.
        "-e",
        "NETALIAS_HTTP_ALLOW=10.213.61.1/32",
        "--health-interval",
        "1s",
        "--label",
        LABEL,
        "--name",
        "natest-sidecar",
    ];
    let mut args = vec!["run", "-d"];
    args.append(&mut sidecar_args);
    let image = netalias_image();
    args.push(&image);
    docker(&args);
    let _sidecar = Sidecar;
    docker(&["network", "connect", &net_b, "natest-sidecar"]);
    let dns_a = ip_on("natest-sidecar", &net_a).to_string();
    let dns_b = ip_on("natest-sidecar", &net_b).to_string();

    let mut a_ips = Vec::new();
    for name in ["natest-sc-a1", "natest-sc-a2"] {
        stack.run(
            name,
            &[
                "--network",
                &net_a,
                "--network-alias",
                "app",
                "--dns",
                &dns_a,
            ],
        );
        a_ips.push(ip_on(name, &net_a).to_string());
    }
    stack.run(
        "natest-sc-b1",
        &[
            "--network",
            &net_b,
            "--network-alias",
            "app",
            "--dns",
            &dns_b,
        ],
    );
    let b_ip = ip_on("natest-sc-b1", &net_b).to_string();
    a_ips.sort();

    // Own network only, in rotation.
    assert!(
        eventually(SETTLE, || {
            let mut got = kdig_lines("natest-sc-a1", &dns_a, "app");
            got.sort();
            got == a_ips
        }),
        "a1 sees A's two app members: {:?}",
        kdig_lines("natest-sc-a1", &dns_a, "app")
    );
    let first: Vec<String> = (0..4)
        .map(|_| kdig_lines("natest-sc-a1", &dns_a, "app")[0].clone())
        .collect();
    assert_eq!(first[0], first[2]);
    assert_ne!(first[0], first[1], "rotation: {first:?}");
    assert_eq!(
        kdig_lines("natest-sc-b1", &dns_b, "app"),
        vec![b_ip.clone()],
        "b1 sees only B's member"
    );
    assert!(
        kdig_lines("natest-sc-b1", &dns_b, "natest-sc-a1").is_empty(),
        "A's names are invisible from B"
    );

    // A name netalias does not own goes to the test upstream.
    assert_eq!(
        kdig_lines("natest-sc-a1", &dns_a, "outside.test"),
        vec!["203.0.113.9".to_string()]
    );

    // /metrics counts those queries; /records shows the members.
    let http = format!("{dns_a}:9153");
    let metrics = http_get(&http, "/metrics");
    let answered: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("netalias_dns_requests_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(answered >= 7.0, "requests counted: {answered}\n{metrics}");
    assert!(metrics.contains("netalias_upstream_requests_total{upstream=\"10.213.61.1:15355\"}"));
    let records = http_get(&http, "/records");
    let parsed: BTreeMap<String, BTreeMap<String, Vec<String>>> =
        serde_json::from_str(&records).expect("records JSON");
    // "172.x.y.z (first N)": each rotating member with how many answers named it first.
    let mut members: Vec<String> = parsed["natest-sca"]["app"]
        .iter()
        .map(|m| m.split(' ').next().unwrap_or_default().to_string())
        .collect();
    members.sort();
    assert_eq!(members, a_ips);
    assert!(
        parsed.contains_key("natest-scb"),
        "the allowed host sees every network"
    );
    // A container sees only its own network's records, as in DNS.
    let dns_b_http = format!("http://{dns_b}:9153/records");
    let seen_by_b = docker(&[
        "exec",
        "natest-sc-b1",
        "/bin/busybox",
        "wget",
        "-qO-",
        &dns_b_http,
    ]);
    let seen_by_b: BTreeMap<String, BTreeMap<String, Vec<String>>> =
        serde_json::from_str(&seen_by_b).expect("records JSON");
    assert_eq!(
        seen_by_b.keys().collect::<Vec<_>>(),
        ["natest-scb"],
        "a container on B sees B only"
    );

    // The image: non-root, and healthy by its own HEALTHCHECK.
    let uid_line = std::fs::read_to_string(format!("/proc/{}/status", pid_of("natest-sidecar")))
        .expect("status");
    let uid = uid_line
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .unwrap_or_default()
        .to_string();
    assert!(
        uid.split_whitespace().skip(1).all(|u| u == "65532"),
        "runs as 65532: {uid}"
    );
    assert!(
        eventually(SETTLE, || docker(&[
            "inspect",
            "-f",
            "{{.State.Health.Status}}",
            "natest-sidecar"
        ]) == "healthy"),
        "the image reports healthy"
    );
}

/// Removes the sidecar container (started outside `Stack` because its flags differ).
struct Sidecar;
impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", "natest-sidecar"])
            .output();
    }
}
