//! Docker source figures against the real engine (run: `cargo bench --bench docker_latency`):
//! - event to answer: from `docker run -d` returning to the first correct A answer, over 50
//!   containers (median, p99);
//! - first snapshot: with 200 running containers, the time netalias reports for its snapshot
//!   and the time from process start until the last of them answers.
//!
//! Under `cargo test` (no `--bench`) it only says how to run it. Queries go to 127.0.0.1 only.

#[path = "../tests/common/mod.rs"]
mod common;

use std::{
    process::Command,
    time::{Duration, Instant},
};

use common::{docker::*, *};

const LATENCY_CONTAINERS: usize = 50;
const SNAPSHOT_CONTAINERS: usize = 200;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn answers(server: &Server, name: &str) -> bool {
    !a_records(&udp(server.addr, &query(name, RecordType::A))).is_empty()
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "docker_latency: run with `cargo bench --bench docker_latency` (needs the Docker engine)"
        );
        return;
    }
    if !available() {
        return;
    }
    let config = "[server]\nlisten = [\"127.0.0.1:0\"]\n";
    let mut stack = Stack::default();
    let net = stack.network("natest-bench", &["--subnet=10.215.0.0/16"]);

    // Event to answer.
    let server = Server::start_with(config, &["--docker"]);
    server.wait_log("Docker snapshot applied");
    let mut delays = Vec::with_capacity(LATENCY_CONTAINERS);
    for i in 0..LATENCY_CONTAINERS {
        let name = format!("natest-bench-lat{i}");
        stack.run(&name, &["--network", &net]);
        let returned = Instant::now();
        let fqdn = format!("{name}.");
        while !answers(&server, &fqdn) {
            assert!(
                returned.elapsed() < Duration::from_secs(10),
                "{name} never answered"
            );
        }
        delays.push(returned.elapsed());
    }
    delays.sort();
    println!(
        "event to answer over {} containers: median {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        delays.len(),
        percentile(&delays, 50.0).as_secs_f64() * 1e3,
        percentile(&delays, 99.0).as_secs_f64() * 1e3,
        delays.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
    );
    drop(server);

    // First snapshot with SNAPSHOT_CONTAINERS running.
    let started = Instant::now();
    let mut handles = Vec::new();
    for batch in 0..(SNAPSHOT_CONTAINERS - LATENCY_CONTAINERS).div_ceil(25) {
        let net = net.clone();
        handles.push(std::thread::spawn(move || {
            let mut names = Vec::new();
            for j in 0..25 {
                let i = LATENCY_CONTAINERS + batch * 25 + j;
                if i >= SNAPSHOT_CONTAINERS {
                    break;
                }
                let name = format!("natest-bench-lat{i}");
                let out = Command::new("docker")
                    .args([
                        "run",
                        "-d",
                        "--label",
                        LABEL,
                        "--name",
                        &name,
                        "--network",
                        &net,
                        IMAGE,
                    ])
                    .args(IDLE)
                    .output()
                    .expect("docker run");
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                names.push(name);
            }
            names
        }));
    }
    let mut extra = Vec::new();
    for h in handles {
        extra.extend(h.join().expect("starter"));
    }
    println!(
        "started {} more containers in {:.1} s",
        extra.len(),
        started.elapsed().as_secs_f64()
    );
    let process_start = Instant::now();
    let server = Server::start_with(config, &["--docker"]);
    let line = server.wait_log("Docker snapshot applied");
    let reported = line
        .split("elapsed_ms=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or("?")
        .to_string();
    let last = format!("natest-bench-lat{}.", SNAPSHOT_CONTAINERS - 1);
    while !answers(&server, &last) {
        assert!(process_start.elapsed() < Duration::from_secs(60));
    }
    println!(
        "first snapshot of {SNAPSHOT_CONTAINERS} containers: {reported} ms as reported, {:.0} ms from process start to answers",
        process_start.elapsed().as_secs_f64() * 1e3
    );
    drop(server);
    for name in extra {
        let _ = Command::new("docker").args(["rm", "-f", &name]).output();
    }
}
