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
