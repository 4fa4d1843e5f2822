//! The Docker source against a real Podman engine: `podman system service` speaks Docker's API
//! on a socket of the test's own, and netalias follows it with `--docker-host unix://…`.
//! Podman's naming rules apply: its default network (`podman`) serves no names, as Docker's
//! `bridge` does not. Every resource is labelled `netalias.test=1` and removed at the end.

mod common;

use std::{
    net::Ipv4Addr,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use common::{docker::*, *};

const NETWORK: &str = "natest-podnet";
const PODMAN_IMAGE: &str = "localhost/netalias-test/busybox:1";

/// Runs `podman ARGS`, returning stdout; panics with stderr on failure.
fn podman(args: &[&str]) -> String {
    engine_cli("podman", args)
}

/// Whether podman is installed (tests/run.sh installs it; in CI its absence is a failure).
fn podman_installed() -> bool {
    let ok = Command::new("podman")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok && std::env::var_os("CI").is_some() {
        panic!("CI needs podman (tests/run.sh installs it)");
    }
    if !ok {
        eprintln!("no podman: skipped");
    }
    ok
}

/// Removes every Podman container and network carrying the test label.
fn podman_sweep() {
    let containers = podman(&["ps", "-aq", "--filter", &format!("label={LABEL}")]);
    for id in containers.split_whitespace() {
        let _ = Command::new("podman")
            .args(["rm", "-f", "-v", "-t", "0", id])
            .output();
    }
    let networks = podman(&["network", "ls", "-q", "--filter", &format!("label={LABEL}")]);
    for id in networks.split_whitespace() {
        let _ = Command::new("podman").args(["network", "rm", id]).output();
    }
}

/// `podman system service` on a socket in a temporary directory; stopped, and the test's
/// containers and network removed, when dropped.
struct PodmanService {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl PodmanService {
    fn start() -> PodmanService {
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = dir.path().join("podman.sock");
        let child = Command::new("podman")
            .args(["system", "service", "--time=0"])
            .arg(format!("unix://{}", socket.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start podman system service");
        assert!(
            eventually(Duration::from_secs(20), || socket.exists()),
            "podman system service made no socket"
        );
        PodmanService {
            child,
            socket,
            _dir: dir,
        }
    }

    fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }
}

impl Drop for PodmanService {
    fn drop(&mut self) {
        podman_sweep();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `podman run -d` of the test image with the label. The explicit ulimits: Podman's default
/// open-file limit is above what this machine's containers may set, and runc refuses it.
fn podman_run(name: &str, extra: &[&str]) {
    let mut args = vec![
        "run",
        "-d",
        "--label",
        LABEL,
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
        "--name",
        name,
    ];
    args.extend(extra);
    args.push(PODMAN_IMAGE);
    args.extend(IDLE);
    podman(&args);
}

fn podman_ip(container: &str, network: &str) -> Ipv4Addr {
    engine_ip_on("podman", container, network)
}

fn sorted(mut v: Vec<Ipv4Addr>) -> Vec<Ipv4Addr> {
    v.sort();
    v
}

#[test]
fn podman_containers_with_network_aliases_are_followed() {
    // The test image comes from the Docker engine (docker save | podman load).
    if !podman_installed() || !available() {
        return;
    }
    podman_sweep();
    let exists = Command::new("podman")
        .args(["image", "exists", PODMAN_IMAGE])
        .status()
        .is_ok_and(|s| s.success());
    if !exists {
        let mut save = Command::new("docker")
            .args(["save", IMAGE])
            .stdout(Stdio::piped())
            .spawn()
            .expect("docker save");
        let status = Command::new("podman")
            .args(["load", "-q"])
            .stdin(save.stdout.take().expect("docker save's output"))
            .stdout(Stdio::null())
            .status()
            .expect("podman load");
        assert!(
            save.wait().is_ok_and(|s| s.success()),
            "docker save {IMAGE}"
        );
        assert!(status.success(), "podman load of {IMAGE}");
    }
    let service = PodmanService::start();
    podman(&[
        "network",
        "create",
        "--label",
        LABEL,
        "--subnet",
        "10.217.0.0/24",
        NETWORK,
    ]);
    for web in ["natest-pod-web1", "natest-pod-web2"] {
        podman_run(web, &["--network", NETWORK, "--network-alias", "app"]);
    }
    // On Podman's default network: Podman serves it no names, and neither may netalias.
    podman_run("natest-pod-plain", &[]);
    let web1 = podman_ip("natest-pod-web1", NETWORK);
    let web2 = podman_ip("natest-pod-web2", NETWORK);

    let server = Server::start_with(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nttl = 0\ndomain = \"docker\"\n",
        &["--docker", "--docker-host", &service.host()],
    );
    let line = server.wait_log("naming rules apply");
    assert!(line.contains("Podman"), "{line}");
    server.wait_ready();

    assert_eq!(sorted(a_of(&server, "app.")), sorted(vec![web1, web2]));
    assert_eq!(a_of(&server, &format!("app.{NETWORK}.docker.")).len(), 2);
    assert_eq!(a_of(&server, "natest-pod-web1."), vec![web1]);
    assert!(
        a_of(&server, "natest-pod-plain.").is_empty(),
        "a container on Podman's default network gets no name"
    );
    assert!(
        a_of(&server, "natest-pod-plain.podman.").is_empty(),
        "Podman's default network is not served as a network"
    );

    // Followed through Podman's event stream.
    podman(&["stop", "-t", "0", "natest-pod-web1"]);
    assert!(
        eventually(Duration::from_secs(20), || a_of(&server, "app.")
            == vec![web2]),
        "a stopped Podman container leaves the rotation: {:?}\n{}",
        a_of(&server, "app."),
        server.log_so_far()
    );
    podman_run(
        "natest-pod-web3",
        &["--network", NETWORK, "--network-alias", "app"],
    );
    let web3 = podman_ip("natest-pod-web3", NETWORK);
    assert!(
        eventually(Duration::from_secs(20), || sorted(a_of(&server, "app."))
            == sorted(vec![web2, web3])),
        "a started one joins it: {:?}",
        a_of(&server, "app.")
    );
    drop(server);
    drop(service);
}
