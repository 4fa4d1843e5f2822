//! The config file: check-config errors, reload on change and SIGHUP, and a broken file
//! that keeps the old records.

mod common;

use std::{
    process::Command,
    time::{Duration, Instant},
};

use common::*;

fn check_config(text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, text).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_netalias"))
        .args(["check-config"])
        .arg(&path)
        .output()
        .expect("run check-config");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// 1-based line of the first line containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .expect("needle present")
        + 1
}

#[test]
fn check_config_accepts_the_shipped_default() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/netalias.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_netalias"))
        .args(["check-config", path])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_config_names_file_line_and_field_for_the_seed_typo() {
    let text = seed_config("").replace("172.72.0.0/16", "172.72.0.0./16");
    let line = line_of(&text, "172.72.0.0./16");
    let (ok, output) = check_config(&text);
    assert!(!ok, "exit status must be non-zero");
    assert!(
        output.contains(&format!("bad.toml:{line}:")),
        "file and line {line}: {output}"
    );
    assert!(
        output.contains("networks.my_custom_network.subnet"),
        "field: {output}"
    );
    assert!(output.contains("hint:"), "hint: {output}");
}

#[test]
fn check_config_rejects_a_bad_endpoint_address() {
    let text = seed_config("").replace("ipv4 = \"172.72.0.3\"", "ipv4 = \"172.72.0.0./16\"");
    let line = line_of(&text, "172.72.0.0./16");
    let (ok, output) = check_config(&text);
    assert!(!ok);
    assert!(
        output.contains(&format!("bad.toml:{line}:")),
        "line {line}: {output}"
    );
    assert!(
        output.contains("networks.my_custom_network.endpoints[1].ipv4"),
        "{output}"
    );
}

#[test]
fn serve_refuses_to_start_on_a_bad_file() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("x.toml");
    std::fs::write(
        &path,
        "[server]\nlisten = [\"127.0.0.1:0\"]\nttl = \"soon\"\n",
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_netalias"))
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("x.toml:3:") && err.contains("server.ttl"),
        "{err}"
    );
}

fn wait_for_answers(server: &Server, name: &str, want: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if a_of(server, name).len() == want {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn edited_file_is_reloaded_and_a_broken_one_keeps_the_old_records() {
    let server = Server::start(&seed_config(""));
    let with_fourth = seed_config("")
        + "\n[[networks.my_custom_network.endpoints]]\nname = \"web4\"\nipv4 = \"172.72.0.5\"\naliases = [\"app\"]\n";
    std::fs::write(server.config_path(), &with_fourth).expect("rewrite");
    assert!(
        wait_for_answers(&server, "app.", 4),
        "the new member appears"
    );

    std::fs::write(
        server.config_path(),
        with_fourth.replace("172.72.0.5", "172.72.0.5./16"),
    )
    .expect("break");
    let line = server.wait_log("config not reloaded");
    assert!(
        line.contains("netalias.toml:") && line.contains("ipv4"),
        "{line}"
    );
    assert_eq!(a_of(&server, "app.").len(), 4, "old records kept");
}

/// Flags outrank the file on every reload as at start: `--ttl 7` stays 7 when an edit sets
/// `ttl = 60`, and a `--listen` other than the file's is not taken for a change that needs a
/// restart (it was: each reload warned of one), while one that does is named.
#[test]
fn flags_outrank_every_reloaded_file() {
    let listen = format!("127.0.0.1:{}", free_port());
    let server = Server::start_with(&seed_config(""), &["--ttl", "7", "--listen", &listen]);
    assert_eq!(server.addr.to_string(), listen);
    let edited = seed_config("").replace("ttl = 0", "ttl = 60")
        + "\n[[networks.my_custom_network.endpoints]]\nname = \"web4\"\nipv4 = \"172.72.0.5\"\naliases = [\"app\"]\n";
    std::fs::write(server.config_path(), &edited).expect("rewrite");
    // Every line up to the reload's own (the warning would come before it).
    let mut logged = Vec::new();
    while !logged
        .last()
        .is_some_and(|l: &String| l.contains("config reloaded"))
    {
        logged.push(server.wait_log(""));
    }
    assert!(
        !logged.iter().any(|l| l.contains("after a restart")),
        "{logged:#?}"
    );
    assert!(wait_for_answers(&server, "app.", 4), "the edit is loaded");
    let answer = udp(server.addr, &query("web4.", RecordType::A));
    assert!(!answer.answers.is_empty(), "{answer:?}");
    assert!(answer.answers.iter().all(|r| r.ttl == 7), "{answer:?}");

    // A setting only a restart applies is named, alone.
    std::fs::write(
        server.config_path(),
        edited.replace("ttl = 60", "ttl = 60\nrate_limit_per_second = 500"),
    )
    .expect("rewrite");
    let warning = server.wait_log("after a restart");
    assert!(
        warning.contains("settings=\"server.rate_limit_per_second\"")
            && !warning.contains("listen"),
        "{warning}"
    );
}

#[test]
fn sighup_reloads() {
    let server = Server::start(&seed_config(""));
    let fewer = seed_config("").replace(
        "aliases = [\"app\"]\n\n[[networks.my_custom_network.endpoints]]\nname = \"web3\"",
        "aliases = [\"app\"]\n\n[[networks.my_custom_network.endpoints]]\nname = \"web3x\"",
    );
    assert_ne!(fewer, seed_config(""));
    std::fs::write(server.config_path(), &fewer).expect("rewrite");
    let status = Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    server.wait_log("config reloaded");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut found = false;
    while Instant::now() < deadline && !found {
        found = !udp(server.addr, &query("web3x.", RecordType::A))
            .answers
            .is_empty();
    }
    assert!(found, "renamed endpoint answers after SIGHUP");
    assert!(
        udp(server.addr, &query("web3.", RecordType::A))
            .answers
            .is_empty()
    );
}

/// A Kubernetes ConfigMap mount: the file is a symlink into `..data/`, and an update swaps the
/// `..data` symlink; the file's own name never shows in an event. It is reloaded all the same.
#[test]
fn a_config_updated_by_a_symlink_swap_is_reloaded() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    let version = |name: &str, ip: &str| {
        std::fs::create_dir(d.join(name)).expect("version dir");
        let text = seed_config("").replace("172.72.0.2", ip);
        std::fs::write(d.join(name).join("netalias.toml"), text).expect("write version");
    };
    version("..v1", "172.72.0.2");
    std::os::unix::fs::symlink("..v1", d.join("..data")).expect("..data");
    std::os::unix::fs::symlink("..data/netalias.toml", d.join("netalias.toml")).expect("link");
    let server = Server::start_with_config_path(&d.join("netalias.toml"));
    assert_eq!(
        a_of(&server, "web1."),
        vec![std::net::Ipv4Addr::new(172, 72, 0, 2)]
    );

    version("..v2", "172.72.0.99");
    std::os::unix::fs::symlink("..v2", d.join("..data_tmp")).expect("..data_tmp");
    std::fs::rename(d.join("..data_tmp"), d.join("..data")).expect("swap");
    server.wait_log("config reloaded");
    assert_eq!(
        a_of(&server, "web1."),
        vec![std::net::Ipv4Addr::new(172, 72, 0, 99)]
    );
}

/// A file being written is not loaded until its writer closes it, even when the half already
/// written parses (it would drop the records of the other half).
#[test]
fn a_half_written_config_is_not_loaded_until_the_writer_closes_it() {
    use std::io::Write;
    let server = Server::start(&seed_config(""));
    let full = seed_config("").replace("172.72.0.4", "172.72.0.44");
    // Everything up to web3: a valid file on its own, without web3.
    let cut = full
        .find("[[networks.my_custom_network.endpoints]]\nname = \"web3\"")
        .expect("web3");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(server.config_path())
        .expect("open for writing");
    file.write_all(&full.as_bytes()[..cut]).expect("first half");
    file.flush().expect("flush");
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(
        a_sorted(&server, "app.").len(),
        3,
        "the half-written file was not loaded"
    );
    file.write_all(&full.as_bytes()[cut..]).expect("the rest");
    drop(file);
    server.wait_log("config reloaded");
    assert!(a_of(&server, "web3.").contains(&std::net::Ipv4Addr::new(172, 72, 0, 44)));
    assert_eq!(a_sorted(&server, "app.").len(), 3);
}

/// Ready means every enabled live source has synced once: with a Swarm source whose manager
/// cannot be reached, /readyz and `netalias health --ready` say so, naming it.
#[test]
fn readiness_names_the_source_that_has_not_synced() {
    let http: std::net::SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let dead = format!("tcp://127.0.0.1:{}", free_port());
    let server = Server::start_with(
        &seed_config(&format!("http_listen = \"{http}\"")),
        &["--swarm", "--swarm-host", &dead],
    );
    let status = ureq::get(format!("http://{http}/readyz"))
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .expect("readyz answers");
    assert_eq!(status.status().as_u16(), 503);
    let out = Command::new(env!("CARGO_BIN_EXE_netalias"))
        .args(["health", "--ready", "--http", &http.to_string()])
        .output()
        .expect("health");
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("waiting for the first sync of: swarm"),
        "{said}"
    );
    assert_eq!(a_sorted(&server, "app.").len(), 3, "serving meanwhile");

    // Without live sources, ready as soon as it listens.
    let plain_http: std::net::SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let _plain = Server::start(&seed_config(&format!("http_listen = \"{plain_http}\"")));
    let ok = Command::new(env!("CARGO_BIN_EXE_netalias"))
        .args(["health", "--ready", "--http", &plain_http.to_string()])
        .output()
        .expect("health");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    // Nothing listening: every subcommand that asks a running server says where it looked.
    let nowhere = format!("127.0.0.1:{}", free_port());
    for args in [vec!["health"], vec!["records"], vec!["explain", "app"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_netalias"))
            .args(&args)
            .args(["--http", &nowhere])
            .output()
            .expect("run");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            said.contains(&format!("cannot reach http://{nowhere}/"))
                && said.contains("server.http_listen"),
            "{args:?}: {said}"
        );
    }
}
