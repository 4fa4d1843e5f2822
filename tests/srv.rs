//! SRV records (RFC 2782, named as the Kubernetes DNS specification names them) from the
//! static config, over real UDP and TCP sockets against the running binary: the set, its
//! rotation, the glue, no data and no such name, truncation, and a third-party client (kdig).

mod common;

use std::{collections::HashMap, net::Ipv4Addr, process::Command};

use common::*;
use hickory_server::proto::rr::{RData, rdata::SRV};

/// The seed's three `app` members offer `http` on 8080, `web1` with weight 5; `web3` also
/// `dns` over UDP. A second network holds a 40-member alias offering `http`.
fn srv_config() -> String {
    let mut c = String::from(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nttl = 0\ndomain = \"docker\"\nmax_udp_payload = 4096\n\n[networks.my_custom_network]\nsubnet = \"172.72.0.0/16\"\n",
    );
    for (i, extra) in [
        (2, ", weight = 5"),
        (3, ""),
        (4, " }, { service = \"dns\", proto = \"udp\", port = 53"),
    ] {
        c.push_str(&format!(
            "[[networks.my_custom_network.endpoints]]\nname = \"web{}\"\nipv4 = \"172.72.0.{i}\"\naliases = [\"app\"]\nsrv = [{{ service = \"http\", port = 8080{extra} }}]\n",
            i - 1
        ));
    }
    c.push_str(
        "[[networks.my_custom_network.endpoints]]\nname = \"plain\"\nipv4 = \"172.72.0.9\"\n",
    );
    c.push_str("\n[networks.bignet]\n");
    for i in 0..40 {
        c.push_str(&format!(
            "[[networks.bignet.endpoints]]\nname = \"member{i}\"\nipv4 = \"10.40.0.{}\"\naliases = [\"many\"]\nsrv = [{{ service = \"http\", port = 80 }}]\n",
            i + 1
        ));
    }
    c
}

fn srvs(msg: &Message) -> Vec<SRV> {
    msg.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(srv) => Some(srv.clone()),
            _ => None,
        })
        .collect()
}

fn glue(msg: &Message) -> HashMap<String, Ipv4Addr> {
    msg.additionals
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some((r.name.to_ascii(), a.0)),
            _ => None,
        })
        .collect()
}

#[test]
fn an_alias_answers_its_members_srv_in_rotation_with_glue() {
    let server = Server::start(&srv_config());
    let mut firsts: HashMap<String, usize> = HashMap::new();
    for _ in 0..30 {
        let reply = udp(server.addr, &query("_http._tcp.app.", RecordType::SRV));
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert!(reply.metadata.authoritative);
        let records = srvs(&reply);
        assert_eq!(records.len(), 3, "{reply:?}");
        let mut targets: Vec<String> = records.iter().map(|s| s.target.to_ascii()).collect();
        *firsts.entry(targets[0].clone()).or_default() += 1;
        targets.sort();
        assert_eq!(
            targets,
            [
                "web1.my_custom_network.",
                "web2.my_custom_network.",
                "web3.my_custom_network."
            ]
        );
        for srv in &records {
            assert_eq!((srv.priority, srv.port), (0, 8080));
            let want = if srv.target.to_ascii().starts_with("web1.") {
                5
            } else {
                1
            };
            assert_eq!(srv.weight, want, "{srv:?}");
        }
        let glue = glue(&reply);
        assert_eq!(
            glue.get("web2.my_custom_network."),
            Some(&Ipv4Addr::new(172, 72, 0, 3)),
            "the target's address is in the additional section: {glue:?}"
        );
        assert_eq!(glue.len(), 3);
    }
    assert_eq!(firsts.len(), 3, "rotation: {firsts:?}");
    assert!(firsts.values().all(|&n| n == 10), "exact: {firsts:?}");
}

#[test]
fn every_name_form_has_the_service_and_other_names_and_types_do_not() {
    let server = Server::start(&srv_config());
    for name in [
        "_http._tcp.app.docker.",
        "_http._tcp.app.my_custom_network.",
        "_HTTP._TCP.App.My_Custom_Network.docker.",
    ] {
        let reply = udp(server.addr, &query(name, RecordType::SRV));
        assert_eq!(srvs(&reply).len(), 3, "{name}");
    }
    let one = udp(server.addr, &query("_http._tcp.web2.", RecordType::SRV));
    assert_eq!(srvs(&one).len(), 1);
    let dns = udp(server.addr, &query("_dns._udp.app.", RecordType::SRV));
    assert_eq!(srvs(&dns).len(), 1, "only web3 offers dns");
    assert_eq!(srvs(&dns)[0].port, 53);

    // A name that exists without the service, or the service asked with another type: NODATA.
    for (name, qtype) in [
        ("_ldap._tcp.app.", RecordType::SRV),
        ("_http._udp.app.", RecordType::SRV),
        ("_http._tcp.plain.", RecordType::SRV),
        ("_http._tcp.app.", RecordType::A),
    ] {
        let reply = udp(server.addr, &query(name, qtype));
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NoError,
            "{name}"
        );
        assert!(reply.answers.is_empty(), "{name}");
        assert_eq!(
            reply.authorities.first().map(|r| r.record_type()),
            Some(RecordType::SOA),
            "{name}: NODATA carries the SOA"
        );
    }
    // Under the search domain, an unknown host: NXDOMAIN.
    let missing = udp(
        server.addr,
        &query("_http._tcp.nothere.docker.", RecordType::SRV),
    );
    assert_eq!(missing.metadata.response_code, ResponseCode::NXDomain);
}

#[test]
fn a_large_srv_set_is_cut_over_udp_and_comes_whole_over_tcp() {
    let server = Server::start(&srv_config());
    let over_udp = udp(server.addr, &query("_http._tcp.many.", RecordType::SRV));
    assert!(over_udp.metadata.truncation, "40 SRV records exceed 512");
    assert!(
        !over_udp.answers.is_empty() && srvs(&over_udp).len() < 40,
        "the SRV records that fit, TC set: {}",
        over_udp.answers.len()
    );
    assert!(over_udp.additionals.is_empty(), "glue goes first");
    let over_tcp = tcp(server.addr, &query("_http._tcp.many.", RecordType::SRV));
    assert!(!over_tcp.metadata.truncation);
    assert_eq!(srvs(&over_tcp).len(), 40);
    assert_eq!(glue(&over_tcp).len(), 40, "glue fits over TCP");
    // With EDNS room for the SRV set (about 1,400 octets: RFC 2782 forbids compressing the
    // targets) but not its glue (640 more), the glue is what goes.
    let roomy = udp(
        server.addr,
        &with_edns(query("_http._tcp.many.", RecordType::SRV), 1800, 0),
    );
    assert!(!roomy.metadata.truncation);
    assert_eq!(srvs(&roomy).len(), 40);
    assert!(roomy.additionals.is_empty(), "glue dropped before TC");
}

#[test]
fn kdig_reads_the_srv_set() {
    let server = Server::start(&srv_config());
    let out = Command::new("kdig")
        .arg(format!("@{}", server.addr.ip()))
        .args(["-p", &server.addr.port().to_string(), "+short", "SRV"])
        .arg("_http._tcp.app")
        .output();
    let out = match out {
        Ok(out) => String::from_utf8_lossy(&out.stdout).to_string(),
        Err(_) if std::env::var_os("CI").is_none() => return,
        Err(e) => panic!("kdig is needed in CI (knot-dnsutils): {e}"),
    };
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "0 1 8080 web2.my_custom_network.",
            "0 1 8080 web3.my_custom_network.",
            "0 5 8080 web1.my_custom_network."
        ],
        "{out}"
    );
}

/// Against the real engine: three replicas behind one alias with `netalias.srv.http=8080`, and
/// a container of an image that declares `EXPOSE 80` (as nginx's does), followed as they stop.
#[test]
fn docker_containers_offer_labelled_and_exposed_ports_as_srv() {
    use common::docker::*;
    use std::time::Duration;
    if !available() {
        return;
    }
    // An image declaring EXPOSE 80, built from the local test image (nothing is pulled).
    let exposes = "netalias-test/exposes80:1";
    let present = Command::new("docker")
        .args(["image", "inspect", exposes])
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        let mut build = Command::new("docker")
            .args(["build", "-q", "-t", exposes, "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("docker build");
        use std::io::Write;
        build
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("FROM {IMAGE}\nEXPOSE 80\n").as_bytes())
            .expect("Dockerfile");
        assert!(build.wait().is_ok_and(|s| s.success()), "docker build");
    }
    let mut stack = Stack::default();
    let net = stack.network("natest-srv", &["--subnet=10.218.0.0/24"]);
    let server = Server::start_with(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nttl = 0\ndomain = \"docker\"\n",
        &["--docker"],
    );
    server.wait_ready();
    let mut ips = HashMap::new();
    for i in 1..=3 {
        let name = format!("natest-srv-r{i}");
        stack.run(
            &name,
            &[
                "--network",
                &net,
                "--network-alias",
                "srvapp",
                "--label",
                "netalias.srv.http=8080",
            ],
        );
        ips.insert(format!("{name}.natest-srv."), ip_on(&name, &net));
    }
    let mut args = vec!["run", "-d", "--label", LABEL, "--name", "natest-srv-web"];
    args.extend(["--network", &net, exposes]);
    args.extend(IDLE);
    docker(&args);
    stack.adopt("natest-srv-web");
    let web_ip = ip_on("natest-srv-web", &net);

    let ask = |name: &str| udp(server.addr, &query(name, RecordType::SRV));
    assert!(
        eventually(Duration::from_secs(20), || srvs(&ask("_http._tcp.srvapp."))
            .len()
            == 3),
        "three members offer http"
    );
    let mut firsts = Vec::new();
    for _ in 0..3 {
        let reply = ask("_http._tcp.srvapp.docker.");
        let records = srvs(&reply);
        assert!(records.iter().all(|s| s.port == 8080 && s.priority == 0));
        firsts.push(records[0].target.to_ascii());
        // The glue is what `docker inspect` says.
        assert_eq!(glue(&reply), ips, "glue matches docker inspect");
    }
    firsts.sort();
    firsts.dedup();
    assert_eq!(firsts.len(), 3, "each answer starts one member later");

    let exposed = srvs(&ask("_http._tcp.natest-srv-web."));
    assert_eq!(exposed.len(), 1, "EXPOSE 80 is http");
    assert_eq!(exposed[0].port, 80);
    assert_eq!(exposed[0].target.to_ascii(), "natest-srv-web.natest-srv.");
    assert_eq!(
        glue(&ask("_http._tcp.natest-srv-web.natest-srv.")).get("natest-srv-web.natest-srv."),
        Some(&web_ip)
    );

    docker(&["stop", "-t", "0", "natest-srv-r2"]);
    assert!(
        eventually(Duration::from_secs(20), || srvs(&ask("_http._tcp.srvapp."))
            .len()
            == 2),
        "a stopped member leaves the SRV set"
    );
    assert!(
        srvs(&ask("_http._tcp.srvapp."))
            .iter()
            .all(|s| s.target.to_ascii() != "natest-srv-r2.natest-srv.")
    );
}

/// `/records` and `netalias records` list the SRV records beside the addresses.
#[test]
fn records_list_the_srv_records() {
    let http: std::net::SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let config = srv_config().replacen(
        "[server]\n",
        &format!("[server]\nhttp_listen = \"{http}\"\n"),
        1,
    );
    let server = Server::start(&config);
    let records = http_get(http, "/records");
    assert!(
        records.contains("\"_http._tcp.app\"")
            && records.contains("0 5 8080 web1.my_custom_network."),
        "{records}"
    );
    assert!(records.contains("\"_dns._udp.web3\""), "{records}");
    let out = Command::new(env!("CARGO_BIN_EXE_netalias"))
        .args(["records", "--http", &http.to_string()])
        .output()
        .expect("netalias records");
    let table = String::from_utf8_lossy(&out.stdout);
    let line = table
        .lines()
        .find(|l| l.contains("_http._tcp.app "))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(line.starts_with("my_custom_network"), "{line}");
    assert_eq!(line.matches("8080").count(), 3, "{line}");
    drop(server);
}
