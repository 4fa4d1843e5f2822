//! The Swarm source against a real single-node swarm that this test starts and leaves.
//!
//! One test function on purpose: a swarm is engine-wide, so every step runs in order inside
//! one guard that inits the swarm and always leaves it. Other test binaries run one at a time
//! (cargo's default), so they never see it. Services carry `netalias.test=1` on their
//! containers, so a crashed run is swept like any other.

mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    net::Ipv4Addr,
    process::Command,
    time::{Duration, Instant},
};

use common::{
    docker::*,
    engine_proxy::{EngineProxy, silent_listener},
    *,
};

const SETTLE: Duration = Duration::from_secs(30);
const OVERLAY: &str = "natest-ov";
/// Marks a swarm this test made, so a crashed run's swarm is recognised and only that one is left.
const NODE_LABEL: &str = "netalias.test";

fn set(v: Vec<Ipv4Addr>) -> BTreeSet<Ipv4Addr> {
    v.into_iter().collect()
}

fn swarm_state() -> String {
    docker(&["info", "-f", "{{.Swarm.LocalNodeState}}"])
}

/// Inits a swarm and always leaves it, with the bridge Swarm adds, when dropped.
struct Swarm {
    had_gwbridge: bool,
}

impl Swarm {
    /// Leaves a swarm a crashed run of this test left behind. `false` when the engine is in
    /// a swarm this test did not make: that one is not ours to leave.
    fn clear_leftover() -> bool {
        if swarm_state() == "active" {
            let ours = docker(&[
                "node",
                "inspect",
                "self",
                "-f",
                &format!("{{{{index .Spec.Labels \"{NODE_LABEL}\"}}}}"),
            ]);
            if ours != "1" {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "CI's engine is in a swarm this test did not make"
                );
                eprintln!("the engine is in someone else's swarm: skipped");
                return false;
            }
            docker(&["swarm", "leave", "--force"]);
        }
        true
    }

    fn init() -> Swarm {
        let had_gwbridge = Command::new("docker")
            .args(["network", "inspect", "docker_gwbridge"])
            .output()
            .is_ok_and(|o| o.status.success());
        docker(&[
            "swarm",
            "init",
            "--advertise-addr",
            "127.0.0.1",
            "--default-addr-pool",
            "10.236.0.0/16",
            "--default-addr-pool-mask-length",
            "24",
        ]);
        let guard = Swarm { had_gwbridge };
        let node = docker(&["info", "-f", "{{.Swarm.NodeID}}"]);
        docker(&[
            "node",
            "update",
            "--label-add",
            &format!("{NODE_LABEL}=1"),
            &node,
        ]);
        guard
    }

    fn leave(&self) {
        let _ = Command::new("docker")
            .args(["swarm", "leave", "--force"])
            .output();
    }
}

impl Drop for Swarm {
    fn drop(&mut self) {
        self.leave();
        // The leave removes the task containers in the background; let it finish.
        eventually(Duration::from_secs(20), || {
            docker(&[
                "ps",
                "-aq",
                "--filter",
                &format!("label={LABEL}"),
                "--filter",
                "label=com.docker.swarm.task.id",
            ])
            .is_empty()
        });
        if !self.had_gwbridge {
            // Its sandbox endpoint goes a moment after the leave.
            eventually(Duration::from_secs(10), || {
                Command::new("docker")
                    .args(["network", "rm", "docker_gwbridge"])
                    .output()
                    .is_ok_and(|o| o.status.success())
            });
        }
    }
}

/// `docker service create` of the idle test image with the test label on its containers.
fn service(name: &str, extra: &[&str]) {
    let mut args = vec![
        "service",
        "create",
        "-d",
        "--name",
        name,
        "--no-resolve-image",
        "--container-label",
        LABEL,
        "--stop-grace-period",
        "2s",
    ];
    args.extend(extra);
    args.push(IMAGE);
    args.extend(IDLE);
    docker(&args);
}

/// The running task containers of a service: container name → address on the overlay.
fn task_ips(service: &str) -> BTreeMap<String, Ipv4Addr> {
    let ids = docker(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.swarm.service.name={service}"),
    ]);
    let format = format!(
        "{{{{.Name}}}} {{{{with index .NetworkSettings.Networks \"{OVERLAY}\"}}}}{{{{.IPAddress}}}}{{{{end}}}}"
    );
    ids.split_whitespace()
        .filter_map(|id| {
            // A container can be running a moment before its overlay address shows.
            let out = Command::new("docker")
                .args(["inspect", "-f", &format, id])
                .output()
                .ok()?;
            let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let (name, ip) = line.split_once(' ')?;
            Some((name.trim_start_matches('/').to_string(), ip.parse().ok()?))
        })
        .collect()
}

fn vip_of(service: &str) -> Ipv4Addr {
    let format = "{{range .Endpoint.VirtualIPs}}{{.Addr}} {{end}}";
    let vips = docker(&["service", "inspect", "-f", format, service]);
    let network_id = docker(&["network", "inspect", "-f", "{{.ID}}", OVERLAY]);
    let format = format!(
        "{{{{range .Endpoint.VirtualIPs}}}}{{{{if eq .NetworkID \"{network_id}\"}}}}{{{{.Addr}}}}{{{{end}}}}{{{{end}}}}"
    );
    let on_overlay = docker(&["service", "inspect", "-f", &format, service]);
    on_overlay
        .split('/')
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no VIP on {OVERLAY} among {vips}"))
}

/// Waits until `name` answers exactly `want`; returns how long that took.
fn settles_to(server: &Server, name: &str, want: &BTreeSet<Ipv4Addr>) -> Duration {
    let started = Instant::now();
    let ok = eventually(SETTLE, || set(a_of(server, name)) == *want);
    assert!(
        ok,
        "{name}: wanted {want:?}, answers {:?}",
        set(a_of(server, name))
    );
    started.elapsed()
}

#[test]
fn swarm_services_tasks_health_scaling_and_leaving() {
    if !available() || !Swarm::clear_leftover() {
        return;
    }
    // A plain bridge container that exists before the swarm and must outlive it in DNS.
    let mut stack = Stack::default();
    let bridge = stack.network("natest-sw-br", &["--subnet=10.235.0.0/24"]);
    stack.run(
        "natest-sw-keeper",
        &["--network", &bridge, "--network-alias", "keep"],
    );
    let keeper_ip = ip_on("natest-sw-keeper", &bridge);

    // Also on every address, for the tasks asking through docker_gwbridge below.
    let gw_port = free_port();
    let server = Server::start_with(
        &format!("[server]\nlisten = [\"127.0.0.1:0\", \"0.0.0.0:{gw_port}\"]\nttl = 0\n"),
        &["--docker", "--swarm"],
    );
    // The two sources start together; either may log first.
    server.wait_logs(&["Docker snapshot applied", "not in a swarm"]);
    assert_eq!(a_of(&server, "keep"), [keeper_ip]);

    let swarm = Swarm::init();
    server.wait_log("Swarm manager: following services and tasks");
    docker(&[
        "network",
        "create",
        "-d",
        "overlay",
        "--attachable",
        "--label",
        LABEL,
        "--subnet",
        "10.237.0.0/24",
        OVERLAY,
    ]);
    service(
        "natest-rr",
        &[
            "--endpoint-mode",
            "dnsrr",
            "--replicas",
            "3",
            "--network",
            &format!("name={OVERLAY},alias=natest-rra"),
        ],
    );
    service("natest-vip", &["--replicas", "2", "--network", OVERLAY]);
    // Never healthy: its task stays "starting" and must never be answered.
    service(
        "natest-sick",
        &[
            "--replicas",
            "1",
            "--network",
            OVERLAY,
            "--health-cmd",
            "false",
            "--health-interval",
            "1s",
            "--health-start-period",
            "60s",
        ],
    );
    assert!(
        eventually(SETTLE, || task_ips("natest-rr").len() == 3
            && task_ips("natest-vip").len() == 2),
        "services did not start"
    );

    // Names, as Swarm registers them.
    let rr: BTreeSet<Ipv4Addr> = task_ips("natest-rr").into_values().collect();
    settles_to(&server, "natest-rr", &rr);
    assert_eq!(set(a_of(&server, "tasks.natest-rr")), rr);
    assert_eq!(set(a_of(&server, "natest-rra")), rr, "service alias");
    assert_eq!(set(a_of(&server, "tasks.natest-rra")), rr);
    assert_eq!(set(a_of(&server, &format!("natest-rr.{OVERLAY}"))), rr);
    let vip = vip_of("natest-vip");
    let vip_tasks: BTreeSet<Ipv4Addr> = task_ips("natest-vip").into_values().collect();
    settles_to(&server, "tasks.natest-vip", &vip_tasks);
    assert_eq!(
        a_of(&server, "natest-vip"),
        [vip],
        "VIP mode answers the virtual IP"
    );
    assert!(!vip_tasks.contains(&vip));
    for (task_name, ip) in task_ips("natest-rr") {
        assert_eq!(a_of(&server, &task_name), [ip], "a task's own name");
    }

    // A task asking through docker_gwbridge (how the shipped Swarm stack's tasks reach
    // netalias) is mapped to its own networks: it sees its service, not the bridge's names.
    let gateway = docker(&[
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Gateway}}{{end}}",
        "docker_gwbridge",
    ]);
    let (task, _) = task_ips("natest-rr").into_iter().next().expect("a task");
    assert!(
        eventually(SETTLE, || kdig_from(&task, &gateway, gw_port, "natest-rr")
            .lines()
            .filter_map(|l| l.parse::<Ipv4Addr>().ok())
            .collect::<BTreeSet<_>>()
            == rr),
        "a task through docker_gwbridge sees its overlay's names: {:?} from {task} to {gateway}:{gw_port}",
        kdig_from(&task, &gateway, gw_port, "natest-rr")
    );
    assert_eq!(
        kdig_from(&task, &gateway, gw_port, "keep"),
        "",
        "and not a bridge network it is not on"
    );

    // dnsrr rotation is exact: each task first once per cycle.
    let mut firsts: BTreeMap<Ipv4Addr, usize> = BTreeMap::new();
    for _ in 0..30 {
        let answer = a_of(&server, "natest-rr");
        assert_eq!(answer.len(), 3, "always the whole set");
        *firsts.entry(answer[0]).or_default() += 1;
    }
    assert_eq!(firsts.values().copied().collect::<Vec<_>>(), [10, 10, 10]);

    // Health: the never-healthy task exists but is not answered.
    assert!(
        eventually(SETTLE, || docker(&[
            "service",
            "ps",
            "--filter",
            "desired-state=running",
            "-q",
            "natest-sick"
        ])
        .lines()
        .count()
            == 1),
        "the sick service has a task"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(a_of(&server, "tasks.natest-sick").is_empty());
    assert!(
        a_of(&server, "natest-sick").is_empty(),
        "a VIP without a healthy task"
    );

    // Change: scale up, then down; removed tasks leave the answers.
    docker(&["service", "scale", "-d", "natest-rr=5"]);
    assert!(eventually(SETTLE, || task_ips("natest-rr").len() == 5));
    let five: BTreeSet<Ipv4Addr> = task_ips("natest-rr").into_values().collect();
    let up = settles_to(&server, "natest-rr", &five);
    let scaled_down = Instant::now();
    docker(&["service", "scale", "-d", "natest-rr=1"]);
    let mut down = None;
    while scaled_down.elapsed() < SETTLE {
        let answer = a_of(&server, "natest-rr");
        if answer.len() == 1 {
            down = Some(scaled_down.elapsed());
            assert!(five.contains(&answer[0]));
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let down = down.expect("scale-down reached the answers");
    assert!(eventually(SETTLE, || task_ips("natest-rr").len() == 1));
    let one: BTreeSet<Ipv4Addr> = task_ips("natest-rr").into_values().collect();
    assert_eq!(
        set(a_of(&server, "natest-rr")),
        one,
        "the survivor is the one answered"
    );
    eprintln!(
        "propagation: scale-up seen {} ms after the tasks ran; scale-down answered {} ms after `docker service scale` returned",
        up.as_millis(),
        down.as_millis()
    );

    // Health: a task that turns unhealthy leaves the answers.
    service(
        "natest-hc",
        &[
            "--replicas",
            "2",
            "--network",
            OVERLAY,
            "--health-cmd",
            "cat /tmp/ok",
            "--health-interval",
            "1s",
            "--health-retries",
            "1",
            // Failures before the first success do not count: without it, a task whose first
            // check (1 s after start) came before the test's `touch` went unhealthy and was
            // replaced by one that never gets /tmp/ok (seen once under a loaded CI machine).
            "--health-start-period",
            "60s",
        ],
    );
    // The idle command does not create /tmp/ok; the test does, in each task.
    assert!(eventually(SETTLE, || task_ips("natest-hc").len() == 2));
    for name in task_ips("natest-hc").keys() {
        docker(&["exec", name, "touch", "/tmp/ok"]);
    }
    let healthy: BTreeSet<Ipv4Addr> = task_ips("natest-hc").into_values().collect();
    settles_to(&server, "tasks.natest-hc", &healthy);
    let (victim, victim_ip) = task_ips("natest-hc").into_iter().next().expect("a task");
    docker(&["exec", &victim, "rm", "/tmp/ok"]);
    assert!(
        eventually(SETTLE, || !a_of(&server, "tasks.natest-hc")
            .contains(&victim_ip)),
        "an unhealthy task left rotation"
    );

    swarm_srv_from_named_ports(&server);
    swarm_reads_are_bounded();

    // Records through netalias and, for the record, through Docker's embedded DNS.
    let docker_before = kdig_from("natest-sw-keeper", "127.0.0.11", 53, "natest-sw-keeper");
    swarm.leave();
    assert!(eventually(SETTLE, || swarm_state() == "inactive"));
    assert!(
        eventually(SETTLE, || a_of(&server, "natest-rr").is_empty()
            && a_of(&server, "tasks.natest-vip").is_empty()),
        "Swarm names are gone with the swarm"
    );
    assert_eq!(
        a_of(&server, "keep"),
        [keeper_ip],
        "a bridge container outlives the swarm"
    );
    assert_eq!(a_of(&server, "natest-sw-keeper"), [keeper_ip]);
    let docker_after = kdig_from("natest-sw-keeper", "127.0.0.11", 53, "natest-sw-keeper");
    eprintln!(
        "Docker's embedded DNS for the bridge container: in the swarm {docker_before:?}, after leaving it {docker_after:?}"
    );
    drop(swarm);
}

/// `docker service create` has no flag for a port's name, so this service is created through
/// the engine's API (`POST /services/create` on its socket): a port named `web` (target 80)
/// and a label `netalias.srv.metrics=9100`.
fn create_service_with_named_port(name: &str) {
    use std::io::{Read, Write};
    let idle: Vec<String> = IDLE.iter().map(|s| format!("{s:?}")).collect();
    let body = format!(
        r#"{{"Name":"{name}","Labels":{{"netalias.srv.metrics":"9100"}},"TaskTemplate":{{"ContainerSpec":{{"Image":"{IMAGE}","Command":[{}],"Labels":{{"netalias.test":"1"}},"StopGracePeriod":2000000000}},"Networks":[{{"Target":"{OVERLAY}"}}]}},"Mode":{{"Replicated":{{"Replicas":2}}}},"EndpointSpec":{{"Mode":"vip","Ports":[{{"Name":"web","Protocol":"tcp","TargetPort":80}}]}}}}"#,
        idle.join(",")
    );
    let mut socket =
        std::os::unix::net::UnixStream::connect("/var/run/docker.sock").expect("engine socket");
    write!(
        socket,
        "POST /services/create HTTP/1.0\r\nHost: engine\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut reply = String::new();
    let _ = socket.read_to_string(&mut reply);
    assert!(
        reply.starts_with("HTTP/1.0 201") || reply.starts_with("HTTP/1.1 201"),
        "{reply}"
    );
}

/// SRV from a Swarm service: its named port and its label, on the service's name (the VIP)
/// and on `tasks.SERVICE` (each task), with the addresses as glue.
fn swarm_srv_from_named_ports(server: &Server) {
    use hickory_server::proto::rr::RData;
    let srv = |name: &str| {
        let reply = udp(server.addr, &query(name, RecordType::SRV));
        let records: Vec<(u16, String)> = reply
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::SRV(s) => Some((s.port, s.target.to_ascii())),
                _ => None,
            })
            .collect();
        let glue: BTreeSet<Ipv4Addr> = reply
            .additionals
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(a.0),
                _ => None,
            })
            .collect();
        (records, glue)
    };
    create_service_with_named_port("natest-named");
    assert!(eventually(SETTLE, || task_ips("natest-named").len() == 2));
    let tasks: BTreeSet<Ipv4Addr> = task_ips("natest-named").into_values().collect();
    assert!(
        eventually(SETTLE, || srv("_web._tcp.tasks.natest-named.").0.len() == 2),
        "two tasks offer web: {:?}",
        srv("_web._tcp.tasks.natest-named.")
    );
    let (records, glue) = srv("_web._tcp.tasks.natest-named.");
    assert!(records.iter().all(|(port, target)| *port == 80
        && target.starts_with("natest-named.")
        && target.ends_with(&format!(".{OVERLAY}."))));
    assert_eq!(glue, tasks, "the tasks' addresses as glue");
    let (records, glue) = srv("_web._tcp.natest-named.");
    assert_eq!(
        records,
        [(80, format!("natest-named.{OVERLAY}."))],
        "the service's name offers it at its VIP"
    );
    assert_eq!(glue, BTreeSet::from([vip_of("natest-named")]));
    let (metrics, _) = srv("_metrics._tcp.tasks.natest-named.");
    assert_eq!(metrics.len(), 2, "from the label");
    assert!(metrics.iter().all(|(port, _)| *port == 9100));
    docker(&["service", "rm", "natest-named"]);
}

/// A manager that stalls, or sends a task or service list past the limit, fails the read
/// (logged, and retried) instead of freezing the source or filling memory. The manager is the
/// real engine behind nginx, with `GET /tasks` sent to a listener that never answers, or
/// `GET /tasks` or `GET /services` served from a file of 65 MiB (the limit is 64 MiB).
fn swarm_reads_are_bounded() {
    let dir = tempfile::tempdir().expect("dir");
    let big = dir.path().join("tasks.json");
    std::fs::File::create(&big)
        .and_then(|f| f.set_len(65 << 20))
        .expect("a 65 MiB task list");
    let silent_port = silent_listener();
    let (stall_port, big_port, big_services_port) = (free_port(), free_port(), free_port());
    let stall = format!(
        "location = /tasks {{ proxy_pass http://127.0.0.1:{silent_port}; proxy_read_timeout 3600s; }}"
    );
    let oversized = |list: &str| {
        format!(
            "location = /{list} {{ default_type application/json; alias {}; }}",
            big.display()
        )
    };
    let (Some(_stall), Some(_big), Some(_big_services)) = (
        EngineProxy::start(stall_port, &stall),
        EngineProxy::start(big_port, &oversized("tasks")),
        EngineProxy::start(big_services_port, &oversized("services")),
    ) else {
        return;
    };
    let config = "[server]\nlisten = [\"127.0.0.1:0\"]\ndomain = \"docker\"\n";
    let start = |port: u16| {
        let host = format!("tcp://127.0.0.1:{port}");
        Server::start_with(config, &["--swarm", "--swarm-host", &host])
    };
    let (stalled, flooded, flooded_services) =
        (start(stall_port), start(big_port), start(big_services_port));
    for (server, list) in [
        (&flooded, "GET /tasks"),
        (&flooded_services, "GET /services"),
    ] {
        let line = server.wait_log_within("at most 67108864 bytes", Duration::from_secs(20));
        assert!(line.contains("WARN") && line.contains(list), "{line}");
    }
    let line = stalled.wait_log_within("did not answer", Duration::from_secs(40));
    assert!(line.contains("within 15 s"), "{line}");
    // Both go on (retrying) and answer what they hold (a name under their own zone).
    for server in [&stalled, &flooded, &flooded_services] {
        let reply = udp(server.addr, &query("nothing.docker.", RecordType::A));
        assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    }
}

#[test]
fn the_swarm_stack_file_is_one_docker_accepts() {
    if !available() {
        return;
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/swarm-stack.yaml");
    let config = docker(&["stack", "config", "-c", path]);
    let netalias = config
        .split("\n  netalias:")
        .nth(1)
        .expect("a netalias service");
    assert!(netalias.contains("mode: global"), "{netalias}");
    assert!(netalias.contains("--swarm-host=tcp://manager-api:2375"));
    assert!(
        config.contains("POST: \"0\""),
        "the manager API proxy is read-only"
    );
    // netalias holds no raw engine socket: its node is read through node-api's socket.
    let netalias_service = netalias.split("\n  node-api:").next().unwrap_or(netalias);
    let netalias_service = netalias_service
        .split("\n  web:")
        .next()
        .unwrap_or(netalias_service);
    assert!(
        !netalias_service.contains("docker.sock:/var/run/docker.sock"),
        "{netalias_service}"
    );
    assert!(netalias_service.contains("--docker-host=unix:///run/node-engine/docker.sock"));
    let node_api = config
        .split("\n  node-api:")
        .nth(1)
        .expect("a node-api service");
    assert!(node_api.contains("mode: global"), "{node_api}");
    assert!(!node_api.contains("allowPOST"), "{node_api}");
}
