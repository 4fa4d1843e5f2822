//! Real-engine helpers: a locally built test image, labelled resources removed on drop, and
//! a sweep of anything a crashed run left behind. Nothing is pulled.

use std::{
    process::Command,
    sync::Once,
    time::{Duration, Instant},
};

/// Every resource a test creates carries this label, so a crashed run can be swept.
pub const LABEL: &str = "netalias.test=1";
pub const IMAGE: &str = "netalias-test/busybox:1";
/// netalias's own image, built by tests/build-image.sh (tests/run.sh does it first).
pub const NETALIAS_IMAGE: &str = "netalias:test";

/// The netalias image the tests run: `NETALIAS_TEST_IMAGE` when set (a developer's own
/// build, e.g. `bash tests/build-image.sh netalias:mine`, where several share one engine and
/// would overwrite each other's `netalias:test`), else [`NETALIAS_IMAGE`].
pub fn netalias_image() -> String {
    std::env::var("NETALIAS_TEST_IMAGE").unwrap_or_else(|_| NETALIAS_IMAGE.to_string())
}
/// A PID 1 that stops promptly on SIGTERM.
pub const IDLE: [&str; 3] = [
    "sh",
    "-c",
    "trap 'exit 0' TERM; while true; do sleep 1; done",
];

/// Runs `docker ARGS`, returning stdout; panics with stderr on failure.
pub fn docker(args: &[&str]) -> String {
    engine_cli("docker", args)
}

/// Runs an engine's CLI (`docker`, `podman`) with `args`, returning stdout; panics with
/// stderr on failure.
pub fn engine_cli(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Whether tests can use the engine. In CI a missing engine is a failure, not a skip.
pub fn available() -> bool {
    let ok = Command::new("docker")
        .arg("info")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok && std::env::var_os("CI").is_some() {
        panic!("CI needs a running Docker engine");
    }
    if ok {
        prepare();
    } else {
        eprintln!("no Docker engine: skipped");
    }
    ok
}

static PREPARE: Once = Once::new();

/// Once per test process: sweep leftovers and build the test image from busybox-static.
fn prepare() {
    PREPARE.call_once(|| {
        // NETALIAS_TEST_NO_SWEEP: several test runs share one engine (developers working side
        // by side); each then leaves the others' resources alone and removes only its own.
        if std::env::var_os("NETALIAS_TEST_NO_SWEEP").is_none() {
            sweep();
        }
        // One recipe for tests and benches: tests/build-test-image.sh (docker import of
        // busybox-static).
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/build-test-image.sh");
        let status = Command::new("bash")
            .arg(script)
            .status()
            .expect("run tests/build-test-image.sh");
        assert!(status.success(), "tests/build-test-image.sh failed");
    });
}

/// Removes every container, network, volume and registry image carrying the test label.
pub fn sweep() {
    let leftovers = || docker(&["ps", "-aq", "--filter", &format!("label={LABEL}")]);
    let containers = leftovers();
    let ids: Vec<&str> = containers.split_whitespace().collect();
    if !ids.is_empty() {
        // Some may be on their way out already (a swarm's tasks after a leave): that is fine.
        // -v: with their anonymous volumes (an image's `VOLUME`); named volumes stay.
        let _ = Command::new("docker")
            .args(["rm", "-f", "-v"])
            .args(&ids)
            .output();
        eventually(Duration::from_secs(20), || leftovers().is_empty());
    }
    let networks = docker(&["network", "ls", "-q", "--filter", &format!("label={LABEL}")]);
    for id in networks.split_whitespace() {
        let _ = Command::new("docker").args(["network", "rm", id]).output();
    }
    let volumes = docker(&["volume", "ls", "-q", "--filter", &format!("label={LABEL}")]);
    for name in volumes.split_whitespace() {
        let _ = Command::new("docker").args(["volume", "rm", name]).output();
    }
    // Images pulled from a test's loopback registry (`registry.rs`).
    remove_labelled_images(|repo| repo.starts_with("127.0.0.1:"));
}

/// Removes every image carrying the test label whose repository `remove` picks, by ID: a
/// moved tag leaves the image it named untagged (`<none>`), which no name reaches.
pub fn remove_labelled_images(remove: impl Fn(&str) -> bool) {
    let images = docker(&[
        "images",
        "--format",
        "{{.ID}} {{.Repository}}",
        "--filter",
        &format!("label={LABEL}"),
    ]);
    for (id, _) in images
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(_, repo)| remove(repo))
    {
        let _ = Command::new("docker").args(["rmi", "-f", id]).output();
    }
}

/// Containers and networks made by one test, removed when it ends, pass or fail.
#[derive(Default)]
pub struct Stack {
    containers: Vec<String>,
    networks: Vec<String>,
}

impl Stack {
    /// `docker network create` with the label; `extra` holds the flags.
    pub fn network(&mut self, name: &str, extra: &[&str]) -> String {
        let mut args = vec!["network", "create", "--label", LABEL];
        args.extend(extra);
        args.push(name);
        docker(&args);
        self.networks.push(name.to_string());
        name.to_string()
    }

    /// `docker run -d` with the label and the idle command; returns the container ID.
    pub fn run(&mut self, name: &str, extra: &[&str]) -> String {
        let mut args = vec!["run", "-d", "--label", LABEL, "--name", name];
        args.extend(extra);
        args.push(IMAGE);
        args.extend(IDLE);
        let id = docker(&args);
        self.containers.push(name.to_string());
        id
    }

    /// A container started by other means, removed with the rest.
    pub fn adopt(&mut self, name: &str) {
        self.containers.push(name.to_string());
    }

    pub fn forget_network(&mut self, name: &str) {
        self.networks.retain(|n| n != name);
    }

    pub fn rename(&mut self, old: &str, new: &str) {
        docker(&["rename", old, new]);
        for c in &mut self.containers {
            if c == old {
                *c = new.to_string();
            }
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        for c in &self.containers {
            // With its anonymous volumes (an image's `VOLUME`); named ones are the test's.
            let _ = Command::new("docker").args(["rm", "-f", "-v", c]).output();
        }
        for n in &self.networks {
            let _ = Command::new("docker").args(["network", "rm", n]).output();
        }
    }
}

/// The IPv4 address of `container` on `network`.
pub fn ip_on(container: &str, network: &str) -> std::net::Ipv4Addr {
    engine_ip_on("docker", container, network)
}

/// The IPv4 address of `container` on `network`, as an engine's CLI (`docker`, `podman`)
/// inspects it.
pub fn engine_ip_on(program: &str, container: &str, network: &str) -> std::net::Ipv4Addr {
    let format = format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}");
    engine_cli(program, &["inspect", "-f", &format, container])
        .parse()
        .expect("container IP")
}

pub fn pid_of(container: &str) -> String {
    docker(&["inspect", "-f", "{{.State.Pid}}", container])
}

/// kdig run inside `container`'s network namespace against `server_ip:port`: its +short output.
pub fn kdig_from(container: &str, server_ip: &str, port: u16, name: &str) -> String {
    let out = Command::new("nsenter")
        .args([
            "-t",
            &pid_of(container),
            "-n",
            "kdig",
            &format!("@{server_ip}"),
        ])
        .args([
            "-p",
            &port.to_string(),
            "+short",
            "+timeout=2",
            "+retry=0",
            name,
        ])
        .output()
        .expect("nsenter kdig");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// What a container has logged, stdout then stderr (netalias logs to stderr).
pub fn docker_logs(name: &str) -> String {
    let out = Command::new("docker")
        .args(["logs", name])
        .output()
        .expect("docker logs");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Polls `check` until it holds or `timeout` passes; returns whether it held.
pub fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    check()
}

/// Whether netalias's own image is built; in CI its absence is a failure, not a skip.
pub fn netalias_image_present() -> bool {
    let image = netalias_image();
    let present = Command::new("docker")
        .args(["image", "inspect", &image])
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must build {image} first (tests/build-image.sh {image})"
        );
        eprintln!("{image} not built; skipped (run tests/build-image.sh {image})");
    }
    present
}

/// The group of the engine's socket, for a non-root netalias container's `group_add`.
pub fn docker_socket_gid() -> String {
    std::os::unix::fs::MetadataExt::gid(
        &std::fs::metadata("/var/run/docker.sock").expect("the engine's socket"),
    )
    .to_string()
}
