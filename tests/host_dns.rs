//! `netalias host-dns` against a real dnsmasq playing the host's resolver: the lines it writes
//! send `*.docker`, the declared domains and the domains of label names to netalias (static
//! names and Docker containers'), and nothing else.

mod common;

use std::{
    net::Ipv4Addr,
    process::{Child, Command},
    time::Duration,
};

use common::{docker::*, *};

struct Resolver(Child);

impl Drop for Resolver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The rcode and addresses dnsmasq answers for `name`; `None` when it does not answer (not
/// started yet, or nothing to say).
fn a_via(port: u16, name: &str) -> Option<(ResponseCode, Vec<Ipv4Addr>)> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let bytes = query(name, RecordType::A).to_vec().ok()?;
    let reply = Message::from_vec(&udp_raw(addr, &bytes, Duration::from_millis(500))?).ok()?;
    Some((reply.metadata.response_code, a_records(&reply)))
}

#[test]
fn the_host_resolver_sends_only_the_domain_to_netalias() {
    if !dnsmasq_installed() {
        return;
    }
    let with_docker = available();
    let mut stack = Stack::default();
    let container_ip = with_docker.then(|| {
        let net = stack.network("natest-hostdns", &["--subnet=10.219.0.0/24"]);
        stack.run("natest-hostdns-web", &["--network", &net]);
        ip_on("natest-hostdns-web", &net)
    });
    let args: &[&str] = if with_docker { &["--docker"] } else { &[] };
    let server = Server::start_with(&seed_config("log_queries = true"), args);
    if with_docker {
        server.wait_ready();
    }

    let root = tempfile::tempdir().expect("root");
    let out = Command::new(env!("CARGO_BIN_EXE_netalias"))
        .args([
            "host-dns",
            "--resolver",
            "dnsmasq",
            "--domain",
            "docker",
            "--write",
        ])
        .args(["--listen", &server.addr.to_string()])
        .arg("--root")
        .arg(root.path())
        .output()
        .expect("netalias host-dns");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("to undo: rm "), "{said}");
    let line_file = root.path().join("etc/dnsmasq.d/netalias.conf");
    let written = std::fs::read_to_string(&line_file).expect("written");
    assert!(
        written.contains(&format!("server=/docker/127.0.0.1#{}", server.addr.port())),
        "{written}"
    );

    // dnsmasq as the host's resolver, fed that file and nothing else.
    let (resolver, port) = host_resolver(&line_file);
    assert!(
        eventually(Duration::from_secs(10), || a_via(port, "web1.docker.")
            .is_some_and(|(_, ips)| ips == [Ipv4Addr::new(172, 72, 0, 2)])),
        "web1.docker through the host's resolver: {:?}",
        a_via(port, "web1.docker.")
    );
    if let Some(ip) = container_ip {
        assert_eq!(
            a_via(port, "natest-hostdns-web.docker.").map(|(_, ips)| ips),
            Some(vec![ip])
        );
    }
    let other = a_via(port, "elsewhere.example.");
    assert!(
        other
            .as_ref()
            .is_none_or(|(rcode, _)| *rcode != ResponseCode::NoError),
        "no upstream for other names: {other:?}"
    );
    std::thread::sleep(Duration::from_millis(200));
    let logged = server.log_so_far();
    assert!(
        logged.contains("web1.docker.") && !logged.contains("elsewhere.example"),
        "only the domain reached netalias:\n{logged}"
    );
    drop(resolver);
}

/// `host-dns` run with `args` (and a clean environment): its exit, stdout and stderr.
fn host_dns(args: &[&str], root: &std::path::Path) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_netalias"))
        .arg("host-dns")
        .args(args)
        .arg("--root")
        .arg(root)
        .env_remove("NETALIAS_HTTP")
        .env_remove("NETALIAS_CONFIG")
        .output()
        .expect("netalias host-dns");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The domains a dnsmasq snippet sends to `at` (`server=/DOMAIN/IP#PORT`), in file order.
fn routed_in(snippet: &str, at: std::net::SocketAddr) -> Vec<String> {
    let tail = format!("/{}#{}", at.ip(), at.port());
    snippet
        .lines()
        .filter_map(|l| l.strip_prefix("server=/")?.strip_suffix(&tail))
        .map(str::to_string)
        .collect()
}

/// Issue 28, item 6: the host reaches every domain netalias owns. A container labelled with
/// names in domains netalias does not declare (`api.shop.test`, `*.wild.test`), one below a
/// declared domain, one below another label name and one in a public top-level domain; after
/// `host-dns` (asking the running server over HTTP), a real dnsmasq playing the host's
/// resolver reaches the container under the label domains; the public one (`com`) is refused
/// with a line on stderr and its name does not reach netalias, though netalias holds it.
#[test]
fn the_host_reaches_label_names_through_the_domains_host_dns_routes() {
    if !dnsmasq_installed() || !available() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI has Docker and dnsmasq"
        );
        return;
    }
    let mut stack = Stack::default();
    let net = stack.network("natest-hostlabel", &["--subnet=10.228.0.0/24"]);
    let names = "netalias.names=api.shop.test,deep.api.shop.test,*.wild.test,x.owned.test,\
                 natest-hostlabel.com";
    stack.run(
        "natest-hostlabel-api",
        &["--network", &net, "--label", names],
    );
    let ip = ip_on("natest-hostlabel-api", &net);
    let http = format!("127.0.0.1:{}", free_port());
    let server = Server::start_with(
        &seed_config("own_domains = [\"owned.test\"]"),
        &["--docker", "--http-listen", &http],
    );
    server.wait_ready();
    assert!(
        eventually(Duration::from_secs(10), || a_of(&server, "api.shop.test.")
            == [ip]),
        "netalias holds the label name: {:?}",
        a_of(&server, "api.shop.test.")
    );
    // netalias holds the name in the public domain too: only the routing keeps it away.
    assert_eq!(a_of(&server, "natest-hostlabel.com."), [ip]);

    let root = tempfile::tempdir().expect("root");
    let config = server.config_path().display().to_string();
    let listen = server.addr.to_string();
    let (ok, said, warned) = host_dns(
        &[
            "--config",
            &config,
            "--listen",
            &listen,
            "--http",
            &http,
            "--resolver",
            "dnsmasq",
            "--write",
        ],
        root.path(),
    );
    assert!(ok, "{said}{warned}");
    let line_file = root.path().join("etc/dnsmasq.d/netalias.conf");
    let written = std::fs::read_to_string(&line_file).expect("written");
    let routed = routed_in(&written, server.addr);
    // The search domain and the declared one first, then the label domains. Other labelled
    // containers on a shared engine may add theirs; these must be there, and these not.
    assert_eq!(routed[..2], ["docker", "owned.test"], "{written}");
    for domain in ["shop.test", "wild.test"] {
        assert!(routed.iter().any(|d| d == domain), "{domain}: {written}");
    }
    for domain in ["com", "api.shop.test", "x.owned.test"] {
        assert!(!routed.iter().any(|d| d == domain), "{domain}: {written}");
    }
    assert_eq!(
        routed.iter().filter(|d| *d == "shop.test").count(),
        1,
        "{written}"
    );
    assert!(
        warned.contains("`com`") && warned.contains("natest-hostlabel.com"),
        "the refused domain and the name that asked for it: {warned}"
    );
    assert!(!warned.contains("not included"), "{warned}");

    let (resolver, port) = host_resolver(&line_file);
    assert!(
        eventually(Duration::from_secs(10), || a_via(port, "api.shop.test.")
            .is_some_and(|(_, ips)| ips == [ip])),
        "the label name through the host's resolver: {:?}",
        a_via(port, "api.shop.test.")
    );
    assert_eq!(
        a_via(port, "anything.wild.test.").map(|(_, ips)| ips),
        Some(vec![ip]),
        "a name below the wildcard"
    );
    assert_eq!(
        a_via(port, "x.owned.test.").map(|(_, ips)| ips),
        Some(vec![ip]),
        "a label name under the declared domain"
    );
    let public = a_via(port, "natest-hostlabel.com.");
    assert!(
        public.as_ref().is_none_or(|(_, ips)| !ips.contains(&ip)),
        "a name outside every routed domain does not reach netalias: {public:?}"
    );
    drop(resolver);
}

/// Without a server to ask, `host-dns` still routes the config's domains, and says in one line
/// on stderr that label domains are missing and how to get them.
#[test]
fn without_a_server_host_dns_routes_the_config_s_domains_and_says_what_is_missing() {
    let root = tempfile::tempdir().expect("root");
    let nobody = format!("127.0.0.1:{}", free_port());
    let (ok, said, warned) = host_dns(
        &[
            "--resolver",
            "dnsmasq",
            "--domain",
            "docker",
            "--listen",
            "127.0.0.1:1053",
            "--http",
            &nobody,
        ],
        root.path(),
    );
    assert!(ok, "{said}{warned}");
    let at: std::net::SocketAddr = "127.0.0.1:1053".parse().expect("addr");
    assert_eq!(routed_in(&said, at), ["docker"], "{said}");
    let lines: Vec<&str> = warned.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {warned}");
    assert!(
        lines[0].contains("label domains not included")
            && lines[0].contains(&nobody)
            && lines[0].contains("--http"),
        "{warned}"
    );
}

/// A real dnsmasq playing the host's resolver on a free loopback port, fed `line_file` (what
/// `host-dns --write` wrote) and nothing else: no upstream, no hosts, no cache.
fn host_resolver(line_file: &std::path::Path) -> (common::dnsmasq::Dnsmasq, u16) {
    let port = free_port();
    let conf = format!("--conf-file={}", line_file.display());
    let dnsmasq =
        common::dnsmasq::Dnsmasq::start_with("127.0.0.1", port, "", &["--cache-size=0", &conf]);
    (dnsmasq, port)
}

fn dnsmasq_installed() -> bool {
    let ok = common::dnsmasq::Dnsmasq::installed();
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "CI installs dnsmasq");
        eprintln!("dnsmasq not installed: skipped");
    }
    ok
}

/// Issue 30, item 2: the host install fits together. The shipped unit's own command line
/// (`config/netalias.service`'s ExecStart and Environment, the binary and the config path put
/// where this checkout has them) serves `config/host.toml` on 127.0.0.1:53; `host-dns`, read
/// from that same file, writes the line a real dnsmasq (the host's resolver) needs, and a
/// container's name resolves through it. No demo names are served.
#[test]
fn the_unit_s_command_line_and_host_dns_fit_together() {
    if !dnsmasq_installed() || !available() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI has Docker and dnsmasq"
        );
        return;
    }
    let repo = env!("CARGO_MANIFEST_DIR");
    let unit = std::fs::read_to_string(format!("{repo}/config/netalias.service")).expect("unit");
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    let host_toml = format!("{repo}/config/host.toml");
    let mut words = exec.split_whitespace().map(|w| match w {
        "/etc/netalias/host.toml" => host_toml.clone(),
        w => w.to_string(),
    });
    assert_eq!(
        words.next().as_deref(),
        Some("/usr/local/bin/netalias"),
        "{exec}"
    );
    let args: Vec<String> = words.collect();
    assert!(
        args.contains(&host_toml),
        "the unit reads /etc/netalias/host.toml: {exec}"
    );

    let mut stack = Stack::default();
    let net = stack.network("natest-hostunit", &["--subnet=10.218.0.0/24"]);
    stack.run("natest-hostunit-web", &["--network", &net]);
    let ip = ip_on("natest-hostunit-web", &net);

    let mut command = Command::new(env!("CARGO_BIN_EXE_netalias"));
    command.args(&args).stdout(std::process::Stdio::null());
    for (key, value) in unit
        .lines()
        .filter_map(|l| l.strip_prefix("Environment="))
        .filter_map(|kv| kv.split_once('='))
    {
        command.env(key, value);
    }
    let log = tempfile::NamedTempFile::new().expect("log");
    command.stderr(log.reopen().expect("log"));
    let served = Resolver(command.spawn().expect("netalias as the unit runs it"));
    let listen = std::net::SocketAddr::from(([127, 0, 0, 1], 53));
    let direct = |name: &str| {
        let bytes = query(name, RecordType::A).to_vec().ok()?;
        Message::from_vec(&udp_raw(listen, &bytes, Duration::from_millis(500))?).ok()
    };
    assert!(
        eventually(Duration::from_secs(20), || direct(
            "natest-hostunit-web.docker."
        )
        .is_some_and(|m| a_records(&m) == [ip])),
        "the unit's netalias on 127.0.0.1:53 answers the container; log:\n{}",
        std::fs::read_to_string(log.path()).unwrap_or_default()
    );
    let demo = direct("web1.docker.").expect("answered");
    assert!(a_records(&demo).is_empty(), "no demo records: {demo:?}");

    let root = tempfile::tempdir().expect("root");
    let out = Command::new(env!("CARGO_BIN_EXE_netalias"))
        .args(["host-dns", "--config", &host_toml, "--resolver", "dnsmasq"])
        .arg("--write")
        .arg("--root")
        .arg(root.path())
        .output()
        .expect("netalias host-dns");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line_file = root.path().join("etc/dnsmasq.d/netalias.conf");
    let written = std::fs::read_to_string(&line_file).expect("written");
    assert!(
        written.contains("server=/docker/127.0.0.1#53\n"),
        "host-dns names the address the unit listens on: {written}"
    );

    let (resolver, port) = host_resolver(&line_file);
    assert!(
        eventually(Duration::from_secs(10), || a_via(
            port,
            "natest-hostunit-web.docker."
        )
        .is_some_and(|(_, ips)| ips == [ip])),
        "the container through the host's resolver: {:?}",
        a_via(port, "natest-hostunit-web.docker.")
    );
    drop(resolver);
    drop(served);
}
