//! Scoping fails closed: an asker that is neither an endpoint, loopback, the host itself nor
//! inside `server.trusted_askers` sees no names (REFUSED) and is not forwarded for. The asker
//! is a real routed address: a network namespace this test makes, joined to the host by a
//! veth pair (root only; skipped otherwise, and a failure in CI).

mod common;

use std::process::Command;

use common::{upstream::*, *};

/// A namespace with one veth to the host: host side `HOST_IP`, namespace side `NS_IP`.
struct Namespace(&'static str);

const HOST_IP: &str = "10.213.90.1";
const NS_IP: &str = "10.213.90.2";

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

impl Namespace {
    fn make() -> Option<Namespace> {
        let name = "natest-scope";
        Namespace::remove(name);
        let ok = ip(&["netns", "add", name])
            && ip(&[
                "link", "add", "natest-h", "type", "veth", "peer", "name", "natest-n",
            ])
            && ip(&["link", "set", "natest-n", "netns", name])
            && ip(&["addr", "add", &format!("{HOST_IP}/30"), "dev", "natest-h"])
            && ip(&["link", "set", "natest-h", "up"])
            && ip(&[
                "-n",
                name,
                "addr",
                "add",
                &format!("{NS_IP}/30"),
                "dev",
                "natest-n",
            ])
            && ip(&["-n", name, "link", "set", "natest-n", "up"])
            && ip(&["-n", name, "link", "set", "lo", "up"]);
        if !ok {
            Namespace::remove(name);
            assert!(
                std::env::var_os("CI").is_none(),
                "CI runs as root and must be able to make a network namespace"
            );
            eprintln!("cannot make a network namespace (not root?): skipped");
            return None;
        }
        Some(Namespace(name))
    }

    fn remove(name: &str) {
        let _ = Command::new("ip")
            .args(["link", "del", "natest-h"])
            .output();
        let _ = Command::new("ip").args(["netns", "del", name]).output();
    }

    /// `kdig +short` from inside the namespace; its rcode line when not NOERROR.
    fn ask(&self, server: &str, port: u16, name: &str) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", self.0, "kdig", &format!("@{server}"), "-p"])
            .arg(port.to_string())
            .args(["+timeout=2", "+retry=0", name])
            .output()
            .expect("kdig in the namespace");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let status = text
            .lines()
            .find_map(|l| l.split("status: ").nth(1))
            .map(|s| s.split(';').next().unwrap_or(s).trim().to_string())
            .unwrap_or_default();
        let answers: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with(';') && l.contains("\tA\t"))
            .filter_map(|l| l.split_whitespace().last())
            .collect();
        format!("{status} {}", answers.join(" ")).trim().to_string()
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        Namespace::remove(self.0);
    }
}

fn config(extra: &str, upstream: &FakeUpstream, port: u16) -> String {
    seed_config(&format!(
        "{extra}\nlisten = [\"127.0.0.1:0\", \"{HOST_IP}:{port}\"]"
    ))
    .replacen("listen = [\"127.0.0.1:0\"]\n", "", 1)
        + &format!(
            "\n[forward]\nenabled = true\nupstreams = [\"{}\"]\n",
            upstream.addr
        )
}

#[test]
fn an_unknown_routed_asker_sees_nothing_unless_trusted() {
    let Some(ns) = Namespace::make() else {
        return;
    };
    let up = FakeUpstream::start(Mode::Answer { ttl: 0 });
    let port = free_port();

    let closed = Server::start(&config("", &up, port));
    assert_eq!(ns.ask(HOST_IP, port, "app."), "REFUSED", "no local names");
    assert_eq!(
        ns.ask(HOST_IP, port, "app.docker."),
        "REFUSED",
        "not even under the domain"
    );
    assert_eq!(
        ns.ask(HOST_IP, port, "far.example."),
        "REFUSED",
        "not forwarded for"
    );
    assert_eq!(up.udp(), 0);
    assert_eq!(
        a_sorted(&closed, "app.").len(),
        3,
        "loopback still sees everything"
    );
    drop(closed);

    let trusted = Server::start(&config("trusted_askers = [\"10.213.90.0/30\"]", &up, port));
    let answer = ns.ask(HOST_IP, port, "app.");
    assert!(answer.starts_with("NOERROR 172.72.0."), "{answer}");
    assert_eq!(
        ns.ask(HOST_IP, port, "far.example."),
        "NOERROR 192.0.2.1 192.0.2.2"
    );
    drop(trusted);

    // A configured default_view is what strangers see, as documented.
    let viewed = Server::start(&config("default_view = []", &up, port));
    assert_eq!(ns.ask(HOST_IP, port, "app."), "REFUSED");
    drop(viewed);
}
