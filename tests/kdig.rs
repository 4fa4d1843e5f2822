//! The README's promise, checked with a real third-party client: `kdig @127.0.0.1 -p PORT app`
//! answers 172.72.0.2, .3 and .4, in rotation.

mod common;

use std::process::Command;

use common::*;

fn kdig(server: &Server, args: &[&str]) -> Option<String> {
    let out = Command::new("kdig")
        .arg(format!("@{}", server.addr.ip()))
        .args(["-p", &server.addr.port().to_string(), "+short"])
        .args(args)
        .output();
    match out {
        Ok(out) => Some(String::from_utf8_lossy(&out.stdout).to_string()),
        Err(_) if std::env::var_os("CI").is_none() => None,
        Err(e) => panic!("kdig is needed in CI (knot-dnsutils): {e}"),
    }
}

#[test]
fn kdig_sees_the_seed_alias_in_rotation() {
    let server = Server::start(&seed_config(""));
    let Some(first) = kdig(&server, &["app"]) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs kdig (knot-dnsutils; tests/run.sh installs it)"
        );
        eprintln!("kdig not installed; skipped (tests/run.sh installs it)");
        return;
    };
    let second = kdig(&server, &["app"]).unwrap_or_default();
    let third = kdig(&server, &["+tcp", "app"]).unwrap_or_default();
    let lines = |s: &str| s.lines().map(str::to_string).collect::<Vec<_>>();
    let (a, b, c) = (lines(&first), lines(&second), lines(&third));
    let mut sorted = a.clone();
    sorted.sort();
    assert_eq!(sorted, ["172.72.0.2", "172.72.0.3", "172.72.0.4"]);
    assert_eq!(
        b,
        [a[1].clone(), a[2].clone(), a[0].clone()],
        "rotated by one"
    );
    assert_eq!(
        c,
        [a[2].clone(), a[0].clone(), a[1].clone()],
        "TCP shares the rotation"
    );
}

/// A 32-member alias asked without EDNS by a client that does not retry over TCP (kdig
/// `+ignore`, as musl before 1.2.4 behaves): the 30 records that fit 512 octets come, TC set,
/// the first one rotating; over TCP all 32 (issue 25).
#[test]
fn kdig_without_tcp_retry_gets_the_records_that_fit() {
    let mut config = seed_config("");
    config.push_str("\n[networks.i25cnet]\n");
    for i in 0..32 {
        config.push_str(&format!(
            "[[networks.i25cnet.endpoints]]\nname = \"k{i}\"\nipv4 = \"10.233.9.{}\"\naliases = [\"big32\"]\n",
            i + 1
        ));
    }
    let server = Server::start(&config);
    let Some(first) = kdig(&server, &["+noedns", "+ignore", "+notcp", "big32"]) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs kdig (knot-dnsutils; tests/run.sh installs it)"
        );
        eprintln!("kdig not installed; skipped (tests/run.sh installs it)");
        return;
    };
    let second = kdig(&server, &["+noedns", "+ignore", "+notcp", "big32"]).unwrap_or_default();
    let lines = |s: &str| s.lines().map(str::to_string).collect::<Vec<_>>();
    let (a, b) = (lines(&first), lines(&second));
    assert_eq!(a.len(), 30, "the records that fit 512 octets: {first}");
    assert_eq!(b.len(), 30);
    assert_eq!(b[0], a[1], "rotated by one");
    let whole = kdig(&server, &["+tcp", "big32"]).unwrap_or_default();
    assert_eq!(lines(&whole).len(), 32, "TCP: every member");
    // The flags, without +short: TC on the cut answer.
    let out = Command::new("kdig")
        .arg(format!("@{}", server.addr.ip()))
        .args(["-p", &server.addr.port().to_string()])
        .args(["+noedns", "+ignore", "+notcp", "big32"])
        .output()
        .expect("kdig");
    let text = String::from_utf8_lossy(&out.stdout);
    let flags = text
        .lines()
        .find(|l| l.contains("Flags:"))
        .unwrap_or_default();
    assert!(flags.contains(" tc"), "TC set: {text}");
}
