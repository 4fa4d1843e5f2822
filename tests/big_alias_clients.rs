//! Big aliases reach every real client (issue 25): an alias of 32 members does not fit 512
//! octets, and musl's getaddrinfo (Debian 12's 1.2.3, which never retries over TCP) asks
//! without EDNS. It gets the records that fit, TC set, the first one rotating across lookups,
//! as it gets 24 from Docker's 127.0.0.11; glibc's retries over TCP on TC and gets all 32.
//!
//! netalias runs on the host, listening on a test network's gateway (port 53: resolv.conf has
//! no port), and the client container reads a resolv.conf naming that gateway only. The
//! members are a static network of the config (records only: nothing need run at those
//! addresses), and the client's subnet is a trusted asker, so it sees them.

mod common;

use std::{collections::HashSet, net::Ipv4Addr, process::Command};

use common::{clients::*, docker::*, *};

const SUBNET: &str = "10.233.5.0/24";
const GATEWAY: &str = "10.233.5.1";

fn config() -> String {
    let mut config = format!(
        "[server]\nlisten = [\"127.0.0.1:0\", \"{GATEWAY}:53\"]\nttl = 0\ndomain = \"docker\"\ntrusted_askers = [\"{SUBNET}\"]\n\n[networks.i25cbig]\n"
    );
    for i in 0..32 {
        config.push_str(&format!(
            "[[networks.i25cbig.endpoints]]\nname = \"i25c-m{i}\"\nipv4 = \"10.233.6.{}\"\naliases = [\"big32\"]\n",
            i + 1
        ));
    }
    config
}

/// `library`'s lookups of `big32`, `count` of them, from a container on `network` whose
/// resolv.conf is `resolv`.
fn lookups(library: Library, network: &str, resolv: &std::path::Path, count: u32) -> Vec<Lookup> {
    let name = format!("i25c-client-{library:?}").to_lowercase();
    let out = Command::new("docker")
        .args(["run", "--rm", "--label", LABEL, "--name", &name])
        .args(["--network", network])
        .args([
            "-v",
            &format!("{}:/etc/resolv.conf:ro", resolv.display()),
            image(),
            library.binary(),
            "big32",
            &count.to_string(),
            "20",
        ])
        .output()
        .expect("docker run");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let got = parse(&text);
    assert_eq!(
        got.len(),
        count as usize,
        "{library:?} printed a line per lookup: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    got
}

#[test]
fn a_32_member_alias_reaches_musl_and_glibc() {
    if !available() {
        return;
    }
    let mut stack = Stack::default();
    let network = stack.network("i25c-bignet", &[&format!("--subnet={SUBNET}")]);
    let server = Server::start(&config());
    let members: HashSet<Ipv4Addr> = (1..=32).map(|i| Ipv4Addr::new(10, 233, 6, i)).collect();
    assert_eq!(
        a_of(&server, "big32.").len(),
        30,
        "over loopback: 30 fit 512"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(
        &resolv,
        format!("nameserver {GATEWAY}\noptions attempts:2\n"),
    )
    .expect("write resolv.conf");

    // musl: no EDNS, no TCP retry. Before issue 25: "Name does not resolve".
    let musl = lookups(Library::Musl, &network, &resolv, 6);
    let mut firsts = Vec::new();
    for lookup in &musl {
        let addresses = lookup
            .addresses
            .as_ref()
            .unwrap_or_else(|| panic!("musl got nothing: {}", lookup.error));
        assert_eq!(addresses.len(), 30, "the records that fit: {addresses:?}");
        assert!(
            addresses.iter().all(|a| members.contains(a)),
            "{addresses:?}"
        );
        firsts.push(addresses[0]);
    }
    let distinct: HashSet<_> = firsts.iter().collect();
    assert!(
        distinct.len() >= 5,
        "the first address rotates across lookups: {firsts:?}"
    );

    // glibc: retries over TCP on TC, and gets every member.
    let glibc = lookups(Library::Glibc, &network, &resolv, 3);
    for lookup in &glibc {
        let addresses = lookup
            .addresses
            .as_ref()
            .unwrap_or_else(|| panic!("glibc got nothing: {}", lookup.error));
        let got: HashSet<_> = addresses.iter().copied().collect();
        assert_eq!(got, members, "all 32 over TCP");
    }
    drop(server);
}
