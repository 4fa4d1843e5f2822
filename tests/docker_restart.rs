//! A real Docker daemon restart: dockerd is stopped and started again under netalias.
//! Answers continue from the last known records while it is down, and once it is back the
//! records equal what the engine says (a `--restart always` container returns, another is gone).
//!
//! It needs root and a dockerd this test may restart; elsewhere it is skipped. Alone in its
//! test binary, so no other Docker test runs while the daemon is down.

mod common;

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::{docker::*, *};

fn dockerd_pid() -> Option<u32> {
    let out = Command::new("pidof").arg("dockerd").output().ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn engine_up() -> bool {
    Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn records_survive_a_real_daemon_restart_and_reconcile_after() {
    if !available() {
        return;
    }
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let Some(pid) = dockerd_pid().filter(|_| is_root) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs as root beside a local dockerd"
        );
        eprintln!("needs root and a local dockerd: skipped");
        return;
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("dockerd cmdline");
    let argv: Vec<String> = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();

    let mut stack = Stack::default();
    let net = stack.network("natest-restart", &["--subnet=10.213.43.0/24"]);
    stack.run(
        "natest-restart-back",
        &[
            "--network",
            &net,
            "--network-alias",
            "app",
            "--restart",
            "always",
        ],
    );
    stack.run(
        "natest-restart-gone",
        &["--network", &net, "--network-alias", "app"],
    );
    let back_ip = ip_on("natest-restart-back", &net);
    let gone_ip = ip_on("natest-restart-gone", &net);

    let server = Server::start_with("[server]\nlisten = [\"127.0.0.1:0\"]\n", &["--docker"]);
    server.wait_ready();
    let mut both = vec![back_ip, gone_ip];
    both.sort();
    assert!(eventually(Duration::from_secs(20), || a_sorted(
        &server, "app"
    ) == both));

    // Stop the daemon; it stops its containers on the way down.
    let down = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill")
            .success()
    );
    assert!(
        eventually(Duration::from_secs(60), || dockerd_pid().is_none()),
        "dockerd did not stop"
    );
    server.wait_log("lost the Docker engine");
    assert_eq!(
        a_sorted(&server, "app"),
        both,
        "answers continue while the daemon is down"
    );

    // Start it again as it was started, detached from this test.
    let log = std::fs::File::create(std::env::temp_dir().join("netalias-test-dockerd.log"))
        .expect("dockerd log");
    let mut restart = Command::new("setsid");
    restart
        .arg("-f")
        .args(&argv)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log);
    assert!(restart.status().expect("start dockerd").success());
    assert!(
        eventually(Duration::from_secs(90), engine_up),
        "dockerd did not come back"
    );
    let outage = down.elapsed();

    // `--restart always` brings one back; the other stays stopped and leaves the answers.
    assert!(eventually(Duration::from_secs(60), || {
        docker(&["inspect", "-f", "{{.State.Running}}", "natest-restart-back"]) == "true"
    }));
    let back_now = ip_on("natest-restart-back", &net);
    assert!(
        eventually(Duration::from_secs(30), || a_sorted(&server, "app")
            == [back_now]),
        "after the restart: {:?}, want [{back_now}]",
        a_sorted(&server, "app")
    );
    assert!(a_sorted(&server, "natest-restart-gone").is_empty());
    eprintln!("daemon restart: engine away for {outage:?}; records reconciled after");
}
