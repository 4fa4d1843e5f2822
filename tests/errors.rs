//! Every error once, with its fix: what a newcomer meets when a file, a port or the engine is
//! not as expected. Each case runs the real binary and reads what it printed: the OS's reason
//! said once, the address or path it concerns, and what to do.

mod common;

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

const BINARY: &str = env!("CARGO_BIN_EXE_netalias");

/// `netalias ARGS`, as `uid` (with no groups) when given, without the environment that
/// would choose a config, a listener or an engine for it.
fn netalias(args: &[&str], uid: Option<u32>) -> Command {
    let mut command = match uid {
        Some(uid) => {
            let mut c = Command::new("setpriv");
            c.args([
                &format!("--reuid={uid}"),
                &format!("--regid={uid}"),
                "--clear-groups",
                BINARY,
            ]);
            c
        }
        None => Command::new(BINARY),
    };
    command
        .args(args)
        .env_remove("NETALIAS_CONFIG")
        .env_remove("NETALIAS_LISTEN")
        .env_remove("DOCKER_HOST");
    command
}

/// Runs `netalias ARGS` (as `uid` when given, with no groups), which must exit by itself
/// within a few seconds; returns its stderr.
fn exits_with(args: &[&str], uid: Option<u32>) -> String {
    let out = netalias(args, uid).output().expect("run netalias");
    assert!(!out.status.success(), "{args:?} must fail");
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// Runs `netalias ARGS` for `for_how_long`, then stops it; returns what it logged.
fn logs_for(args: &[&str], uid: Option<u32>, for_how_long: Duration) -> String {
    let mut child = netalias(args, uid)
        .env("NETALIAS_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn netalias");
    let stderr = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
            .join("\n")
    });
    let deadline = Instant::now() + for_how_long;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    reader.join().expect("reader")
}

fn is_root() -> bool {
    // The effective uid as `id -u` prints it (no unsafe `geteuid` for a test).
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[test]
fn a_missing_config_file_is_named_once_with_what_to_do() {
    let err = exits_with(&["serve", "--config", "nope.toml"], None);
    assert_eq!(
        err.matches("No such file or directory").count(),
        1,
        "the OS's reason once: {err}"
    );
    assert!(err.contains("cannot read nope.toml"), "{err}");
    assert!(err.contains("without --config"), "the way out: {err}");
}

#[test]
fn a_malformed_engine_address_is_a_usage_error_at_start() {
    let started = Instant::now();
    let err = exits_with(&["serve", "--docker", "--docker-host", "foo"], None);
    assert!(started.elapsed() < Duration::from_secs(10), "not retried");
    assert!(err.contains("--docker-host"), "names the flag: {err}");
    assert!(
        err.contains("NETALIAS_DOCKER_HOST"),
        "and the variable: {err}"
    );
    assert!(
        err.contains("`foo` is not an engine address") && err.contains("unix:///"),
        "says what is wrong, with an example: {err}"
    );
}

#[test]
fn a_taken_port_says_so_once_and_what_to_do() {
    let held = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = held.local_addr().expect("addr").to_string();
    let err = exits_with(&["serve", "--listen", &addr], None);
    assert_eq!(err.matches("Address already in use").count(), 1, "{err}");
    assert!(err.contains(&addr), "names the address: {err}");
    assert!(err.contains("another process holds it"), "{err}");
}

#[test]
fn a_low_port_without_the_capability_names_it() {
    if !is_root() {
        eprintln!("not root: cannot drop to another user; skipped");
        assert!(std::env::var_os("CI").is_none(), "CI runs as root");
        return;
    }
    let err = exits_with(&["serve", "--listen", "127.0.0.1:53"], Some(65534));
    assert_eq!(err.matches("Permission denied").count(), 1, "{err}");
    assert!(err.contains("CAP_NET_BIND_SERVICE"), "{err}");
}

#[test]
fn an_engine_never_reached_is_told_apart_from_one_lost_and_said_once() {
    let port = common::free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    // No engine at that path: named, with the flag to give another.
    let log = logs_for(
        &[
            "serve",
            "--docker",
            "--docker-host",
            "unix:///nonexistent/docker.sock",
            "--listen",
            &listen,
        ],
        None,
        Duration::from_secs(2),
    );
    assert_eq!(
        log.matches("has not been reached yet").count(),
        1,
        "once, though it was retried: {log}"
    );
    assert!(
        !log.contains("lost the Docker engine"),
        "it never had it: {log}"
    );
    assert!(
        log.contains("no socket at /nonexistent/docker.sock"),
        "{log}"
    );
    assert!(log.contains("--docker-host"), "{log}");

    // A socket it may not open: permission denied, and the group to join.
    if is_root() && std::path::Path::new("/var/run/docker.sock").exists() {
        let log = logs_for(
            &["serve", "--docker", "--listen", &listen],
            Some(65534),
            Duration::from_secs(2),
        );
        assert_eq!(log.matches("has not been reached yet").count(), 1, "{log}");
        assert!(
            log.contains("permission denied on /var/run/docker.sock"),
            "{log}"
        );
        assert!(log.contains("--group-add"), "{log}");
    }
}

#[test]
fn the_image_is_not_healthy_while_it_has_never_reached_its_engine() {
    if !common::docker::available() || !common::docker::netalias_image_present() {
        return;
    }
    use common::docker::{LABEL, NETALIAS_IMAGE, Stack, docker};
    let mut stack = Stack::default();
    // No socket mounted: the Docker source (on in the image) can never sync.
    docker(&[
        "run",
        "-d",
        "--label",
        LABEL,
        "--name",
        "na-errors-nosocket",
        NETALIAS_IMAGE,
    ]);
    stack.adopt("na-errors-nosocket");
    let health = |ready: bool| {
        let mut args = vec![
            "exec",
            "na-errors-nosocket",
            "/usr/local/bin/netalias",
            "health",
            "--http",
            "127.0.0.1:9153",
        ];
        if ready {
            args.push("--ready");
        }
        Command::new("docker")
            .args(&args)
            .output()
            .expect("docker exec")
            .status
            .success()
    };
    assert!(
        common::docker::eventually(Duration::from_secs(20), || health(false)),
        "the server is up"
    );
    assert!(
        !health(true),
        "but not ready: it has never reached the engine"
    );
    let healthcheck = docker(&[
        "inspect",
        "-f",
        "{{json .Config.Healthcheck.Test}}",
        "na-errors-nosocket",
    ]);
    assert!(
        healthcheck.contains("--ready"),
        "the image's HEALTHCHECK asks for readiness: {healthcheck}"
    );
    let logs = common::docker::docker_logs("na-errors-nosocket");
    assert!(
        logs.contains("has not been reached yet") && logs.contains("no socket at"),
        "{logs}"
    );
}

#[test]
fn environment_values_are_read_as_people_write_them() {
    // A switch: 1/0, yes/no, on/off; a wrong one names the flag and the variable.
    let bad = netalias(&["serve"], None)
        .env("NETALIAS_DOCKER", "maybe")
        .output()
        .expect("run netalias");
    let bad = String::from_utf8_lossy(&bad.stderr).to_string();
    assert!(
        bad.contains("--docker") && bad.contains("NETALIAS_DOCKER") && bad.contains("yes or no"),
        "{bad}"
    );

    // Lists with spaces after the commas, and the trusted askers from the environment.
    let http = format!("127.0.0.1:{}", common::free_port());
    let mut child = netalias(&["serve"], None)
        .env("NETALIAS_LOG_QUERIES", "yes")
        .env("NETALIAS_LISTEN", "127.0.0.1:0, 127.0.0.2:0")
        .env("NETALIAS_TRUSTED_ASKERS", "10.9.0.0/16, 10.10.0.0/16")
        .env("NETALIAS_HTTP_LISTEN", &http)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn netalias");
    let explained = common::docker::eventually(Duration::from_secs(10), || {
        std::panic::catch_unwind(|| common::http_get(&http, "/explain?name=app&from=10.10.3.4"))
            .is_ok_and(|text| text.contains("trusted"))
    });
    let _ = child.kill();
    let log = {
        let mut text = String::new();
        let _ = child.wait();
        if let Some(mut stderr) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        }
        text
    };
    assert!(explained, "10.10.3.4 is a trusted asker: {log}");
    assert_eq!(log.matches("listening on udp and tcp").count(), 2, "{log}");
}
