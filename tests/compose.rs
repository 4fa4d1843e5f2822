//! Compose and the daemon, without mounts, against the real engine and docker-compose 1.29:
//! services given `dns: [<netalias>]`, `dns_search: [docker]` and `dns_opt: [ndots:1]` keep
//! Docker's 127.0.0.11, which sees a bare `web` asked as `web.docker` first (the search
//! domain), does not hold it, and forwards it to netalias from the client's own address. So
//! `--scale web=3` rotates exactly for glibc and musl clients, and no lookup is answered by
//! Docker instead (Docker would list its own shuffled order). Every resource is labelled and
//! removed at the end (`docker-compose down`).

mod common;

use std::{collections::HashMap, net::Ipv4Addr, path::PathBuf, process::Command, time::Duration};

use common::{
    clients::{self, Library},
    docker::*,
    *,
};

const PROJECT: &str = "nacompose";
const GATEWAY: &str = "10.236.0.1";
const REPLICAS: usize = 3;
const LOOKUPS: usize = 12;

/// The project, taken down (with its anonymous volumes) when the test ends, pass or fail.
struct Project {
    file: PathBuf,
    _dir: tempfile::TempDir,
}

impl Project {
    fn compose(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker-compose")
            .arg("-p")
            .arg(PROJECT)
            .arg("-f")
            .arg(&self.file)
            .args(args)
            .output()
            .expect("run docker-compose (apt-get install docker-compose)")
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = self.compose(&["down", "-v", "--remove-orphans"]);
    }
}

fn compose_file(network: &str) -> String {
    let client = |library: Library| {
        format!(
            r#"  client-{lib}:
    image: {image}
    command: ["{bin}", "web", "{LOOKUPS}", "20"]
    labels: ["{LABEL}"]
    dns: ["{GATEWAY}"]
    dns_search: ["docker"]
    dns_opt: ["ndots:1"]
    networks: [appnet]
    profiles: ["clients"]
"#,
            lib = format!("{library:?}").to_lowercase(),
            image = clients::IMAGE,
            bin = library.binary(),
        )
    };
    format!(
        r#"version: "3.9"
services:
  web:
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    labels: ["{LABEL}"]
    networks: [appnet]
{glibc}{musl}networks:
  appnet:
    external: true
    name: {network}
"#,
        glibc = client(Library::Glibc),
        musl = client(Library::Musl),
    )
}

#[test]
fn compose_dns_search_and_ndots_send_bare_names_to_netalias_in_exact_rotation() {
    if !available() {
        return;
    }
    clients::image();
    let mut stack = Stack::default();
    let net = stack.network(
        "nacompose-net",
        &["--subnet=10.236.0.0/24", &format!("--gateway={GATEWAY}")],
    );
    let server = Server::start_without_config(&[
        "--docker",
        "--listen",
        "127.0.0.1:0",
        "--listen",
        &format!("{GATEWAY}:53"),
    ]);
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("docker-compose.yml");
    std::fs::write(&file, compose_file(&net)).expect("write compose file");
    let project = Project { file, _dir: dir };
    let up = project.compose(&["up", "-d", "--scale", &format!("web={REPLICAS}"), "web"]);
    assert!(
        up.status.success(),
        "docker-compose up: {}",
        String::from_utf8_lossy(&up.stderr)
    );
    // The replicas as the engine has them, and netalias serving them.
    let ids = docker(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.compose.project={PROJECT}"),
        "--filter",
        "label=com.docker.compose.service=web",
    ]);
    let mut replicas: Vec<Ipv4Addr> = ids.split_whitespace().map(|id| ip_on(id, &net)).collect();
    replicas.sort();
    assert_eq!(
        replicas.len(),
        REPLICAS,
        "compose started {REPLICAS} replicas"
    );
    assert!(
        eventually(Duration::from_secs(20), || a_sorted(&server, "web.")
            == replicas),
        "netalias serves web: {:?}",
        a_sorted(&server, "web.")
    );

    for library in [Library::Glibc, Library::Musl] {
        let service = format!("client-{}", format!("{library:?}").to_lowercase());
        let run = project.compose(&["--profile", "clients", "run", "--rm", "-T", &service]);
        let text = String::from_utf8_lossy(&run.stdout).to_string();
        let lookups = clients::parse(&text);
        assert_eq!(
            lookups.len(),
            LOOKUPS,
            "{library:?}: {text}{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let mut firsts: HashMap<Ipv4Addr, usize> = HashMap::new();
        for (i, lookup) in lookups.iter().enumerate() {
            let addresses = lookup
                .addresses
                .clone()
                .unwrap_or_else(|| panic!("{library:?} lookup {i} failed: {}", lookup.error));
            let mut sorted = addresses.clone();
            sorted.sort();
            assert_eq!(
                sorted, replicas,
                "{library:?}: every replica in each answer"
            );
            // netalias's order is a rotation of one cycle; Docker's own would be shuffled.
            let start = replicas_cycle_start(&addresses, &lookups[0].addresses.clone().unwrap());
            assert!(
                start.is_some(),
                "{library:?} lookup {i}: {addresses:?} is not a rotation of the first answer's order (answered by Docker?)"
            );
            *firsts.entry(addresses[0]).or_default() += 1;
        }
        let counts: Vec<usize> = replicas
            .iter()
            .map(|ip| firsts.get(ip).copied().unwrap_or(0))
            .collect();
        assert_eq!(
            counts,
            vec![LOOKUPS / REPLICAS; REPLICAS],
            "{library:?}: each replica first equally often (exact rotation): {firsts:?}"
        );
    }
}

/// Where `order` starts in the cycle `reference`, if `order` is a rotation of it.
fn replicas_cycle_start(order: &[Ipv4Addr], reference: &[Ipv4Addr]) -> Option<usize> {
    (0..reference.len()).find(|&k| {
        order
            .iter()
            .enumerate()
            .all(|(i, ip)| reference[(k + i) % reference.len()] == *ip)
    })
}

/// Two compose projects on one external network, each with its own `api` (not `web`: the test above, run beside this one, holds the bare
/// `web` to its own replicas): `api.PROJECT`
/// rotates over that project's replicas only (and answers under the search domain too),
/// while the bare `api` holds all five, as Docker's own DNS would.
#[test]
fn two_projects_on_one_network_each_reach_their_own_service_as_service_dot_project() {
    if !available() {
        return;
    }
    let mut stack = Stack::default();
    let net = stack.network("nacompose-shared", &["--subnet=10.236.1.0/24"]);
    let server = Server::start_without_config(&["--docker", "--listen", "127.0.0.1:0"]);
    let file_text = format!(
        r#"version: "3.9"
services:
  api:
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    labels: ["{LABEL}"]
    networks: [shared]
networks:
  shared:
    external: true
    name: {net}
"#
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("docker-compose.yml");
    std::fs::write(&file, file_text).expect("write compose file");
    let projects = [("naproj1", 3usize), ("naproj2", 2usize)];
    let _down: Vec<ProjectNamed> = projects
        .iter()
        .map(|(name, _)| ProjectNamed {
            name: name.to_string(),
            file: file.clone(),
        })
        .collect();
    let mut replicas: HashMap<&str, Vec<Ipv4Addr>> = HashMap::new();
    for (project, scale) in projects {
        let up = Command::new("docker-compose")
            .args(["-p", project, "-f"])
            .arg(&file)
            .args(["up", "-d", "--scale", &format!("api={scale}")])
            .output()
            .expect("run docker-compose (apt-get install docker-compose)");
        assert!(
            up.status.success(),
            "docker-compose up ({project}): {}",
            String::from_utf8_lossy(&up.stderr)
        );
        let ids = docker(&[
            "ps",
            "-q",
            "--filter",
            &format!("label=com.docker.compose.project={project}"),
            "--filter",
            "label=com.docker.compose.service=api",
        ]);
        let mut ips: Vec<Ipv4Addr> = ids.split_whitespace().map(|id| ip_on(id, &net)).collect();
        ips.sort();
        assert_eq!(ips.len(), scale, "{project}: compose started {scale}");
        replicas.insert(project, ips);
    }
    let mut everyone: Vec<Ipv4Addr> = replicas.values().flatten().copied().collect();
    everyone.sort();
    assert!(
        eventually(Duration::from_secs(20), || a_sorted(&server, "api.")
            == everyone),
        "the bare name holds every project's replicas: {:?}",
        a_sorted(&server, "api.")
    );
    for (project, scale) in projects {
        let name = format!("api.{project}.");
        assert!(
            eventually(Duration::from_secs(20), || a_sorted(&server, &name)
                == replicas[project]),
            "{name} holds {project}'s replicas only: {:?}",
            a_sorted(&server, &name)
        );
        assert_eq!(
            a_sorted(&server, &format!("api.{project}.docker.")),
            replicas[project],
            "and under the search domain"
        );
        // Exact rotation over the project's own replicas: each first equally often.
        let mut firsts: HashMap<Ipv4Addr, usize> = HashMap::new();
        for _ in 0..scale * 4 {
            let order = a_of(&server, &name);
            *firsts.entry(order[0]).or_default() += 1;
        }
        assert_eq!(
            firsts.len(),
            scale,
            "{name}: every replica first: {firsts:?}"
        );
        assert!(firsts.values().all(|n| *n == 4), "{name}: {firsts:?}");
    }
}

/// A compose project taken down (with its anonymous volumes) when the test ends.
struct ProjectNamed {
    name: String,
    file: PathBuf,
}

impl Drop for ProjectNamed {
    fn drop(&mut self) {
        let _ = Command::new("docker-compose")
            .args(["-p", &self.name, "-f"])
            .arg(&self.file)
            .args(["down", "-v", "--remove-orphans"])
            .output();
    }
}
