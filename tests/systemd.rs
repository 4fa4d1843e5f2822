//! netalias as a host service: the shipped unit passes `systemd-analyze verify`, and under a
//! notify socket `serve` says READY=1 once it answers, then feeds the watchdog.

mod common;

use std::{
    os::unix::net::UnixDatagram,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::*;

#[test]
fn the_shipped_unit_verifies() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI installs systemd (tests/run.sh)"
        );
        eprintln!("systemd-analyze not installed: skipped");
        return;
    }
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/netalias.service"
    ))
    .expect("config/netalias.service");
    for must in [
        "Type=notify",
        "WatchdogSec=",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "DynamicUser=yes",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
        "ProtectSystem=strict",
    ] {
        assert!(unit.contains(must), "{must}");
    }
    // verify needs the program to exist: the one this test built.
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("netalias.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/netalias", env!("CARGO_BIN_EXE_netalias")),
    )
    .expect("write unit");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze verify");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn under_systemd_it_says_ready_then_feeds_the_watchdog() {
    let dir = tempfile::tempdir().expect("dir");
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("notify socket");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let config = dir.path().join("netalias.toml");
    std::fs::write(&config, seed_config("")).expect("config");
    // systemd sets WATCHDOG_PID to the service's PID: a shell that execs keeps its own.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("WATCHDOG_PID=$$ exec \"$0\" serve --config \"$1\"")
        .arg(env!("CARGO_BIN_EXE_netalias"))
        .arg(&config)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "200000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut said: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 512];
    while Instant::now() < deadline && said.iter().filter(|s| s.contains("WATCHDOG=1")).count() < 3
    {
        if let Ok(n) = socket.recv(&mut buf) {
            said.push(String::from_utf8_lossy(&buf[..n]).to_string());
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let ready = said.iter().position(|s| s.contains("READY=1"));
    let first_ping = said.iter().position(|s| s.contains("WATCHDOG=1"));
    assert!(ready.is_some(), "READY=1 sent: {said:?}");
    assert!(first_ping > ready, "the watchdog after readiness: {said:?}");
    assert!(
        said.iter().filter(|s| s.contains("WATCHDOG=1")).count() >= 3,
        "fed at half of WatchdogSec: {said:?}"
    );
}

/// The host install fits together: the unit serves `config/host.toml` as installed (its
/// `--config` and nothing that overrides the file), the file checks, and `host-dns` reading the
/// same file points the host's resolver at the address the service listens on.
#[test]
fn the_unit_the_host_config_and_host_dns_agree() {
    let root = env!("CARGO_MANIFEST_DIR");
    let unit = std::fs::read_to_string(format!("{root}/config/netalias.service")).expect("unit");
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    assert_eq!(
        exec, "/usr/local/bin/netalias serve --config /etc/netalias/host.toml",
        "the file decides, so host-dns --config reads what the service does"
    );
    assert!(
        unit.contains("config/host.toml /etc/netalias/host.toml"),
        "the install steps put config/host.toml where the unit reads it"
    );
    let binary = env!("CARGO_BIN_EXE_netalias");
    let host = format!("{root}/config/host.toml");
    let checked = Command::new(binary)
        .args(["check-config", &host])
        .output()
        .expect("check-config");
    let checked = String::from_utf8_lossy(&checked.stdout).to_string();
    assert!(
        checked.contains("ok (0 networks"),
        "no demo records: {checked}"
    );
    let snippet = Command::new(binary)
        .args(["host-dns", "--config", &host, "--resolver", "resolved"])
        .output()
        .expect("host-dns");
    let snippet = String::from_utf8_lossy(&snippet.stdout).to_string();
    assert!(
        snippet.contains("DNS=127.0.0.1:53") && snippet.contains("Domains=~docker"),
        "{snippet}"
    );
}
