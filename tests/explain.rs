//! `netalias explain` against a running server: who asks and what it sees, the members and
//! the next answer's order, and what becomes of names that are not held; and, asked of a
//! table of questions by every kind of asker, that its prediction is what the wire then says.

mod common;

use std::process::Command;

use common::{upstream::*, *};

fn explain(http: std::net::SocketAddr, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_netalias"))
        .arg("explain")
        .args(args)
        .args(["--http", &http.to_string()])
        .output()
        .expect("netalias explain");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

#[test]
fn explain_says_who_asks_what_they_see_and_what_the_next_answer_is() {
    let up = FakeUpstream::start(Mode::Answer { ttl: 60 });
    let http: std::net::SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let config = seed_config(&format!("http_listen = \"{http}\""))
        + &format!(
            "\n[networks.other]\n[[networks.other.endpoints]]\nname = \"lone\"\nipv4 = \"10.77.0.2\"\nsrv = [{{ service = \"http\", port = 8080 }}]\n\n[forward]\nenabled = true\nupstreams = [\"{}\"]\n",
            up.addr
        );
    let server = Server::start(&config);

    let (ok, text) = explain(http, &["app"]);
    assert!(ok, "{text}");
    assert!(text.contains("the host, or a trusted asker"), "{text}");
    assert!(text.contains("sees: my_custom_network, other"), "{text}");
    assert!(text.contains("172.72.0.3 web2 (in rotation"), "{text}");
    // The order it says is the order the next answer gives, and asking it took no turn.
    let next = text
        .lines()
        .find_map(|l| l.strip_prefix("next answer: "))
        .unwrap_or_else(|| panic!("{text}"))
        .to_string();
    let answered: Vec<String> = a_of(&server, "app.")
        .iter()
        .map(|ip| ip.to_string())
        .collect();
    assert_eq!(next, answered.join(" "));

    // As a container: its own network only; another network's name is held but not seen.
    let (_, text) = explain(http, &["lone", "--from", "web1"]);
    assert!(
        text.contains("a container (web1.my_custom_network.)"),
        "{text}"
    );
    assert!(text.contains("sees: my_custom_network\n"), "{text}");
    assert!(
        text.contains("network other (NOT seen by the asker)"),
        "{text}"
    );
    assert!(
        text.contains("no member is in rotation on a network the asker sees"),
        "{text}"
    );

    let (_, text) = explain(http, &["_http._tcp.lone", "--type", "SRV"]);
    assert!(text.contains("offers _http._tcp port 8080"), "{text}");

    let (_, text) = explain(http, &["pkg.example"]);
    assert!(
        text.contains("not ours") && text.contains(&format!("to {}", up.addr)),
        "{text}"
    );
    let (_, text) = explain(http, &["nope.docker"]);
    assert!(text.contains("NXDOMAIN"), "{text}");
    // An address is asked as `kdig -x` asks it; any type is taken.
    let (ok, text) = explain(http, &["172.72.0.3"]);
    assert!(ok, "{text}");
    assert!(
        text.contains("answer: 3.0.72.172.in-addr.arpa. 0 IN PTR web2.my_custom_network."),
        "{text}"
    );
    let (ok, text) = explain(http, &["web1", "--type", "txt"]);
    assert!(
        ok && text.contains("next answer: no TXT records (NODATA"),
        "{text}"
    );
    let (ok, text) = explain(http, &["app", "--from", "nobody-here"]);
    assert!(!ok && text.contains("no container named"), "{text}");
}

/// Issue 30, item 6: the spread a load test wants to see. After 30 lookups of a 3-member
/// alias (over UDP's fast path and TCP's full path alike), `/records`, `netalias records`,
/// `explain` and `/metrics` each say 10 answers named each member first (a member that leaves
/// takes its count with it: `registry::record_set`'s unit test).
#[test]
fn thirty_lookups_of_three_members_show_ten_each_everywhere() {
    let http: std::net::SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let server = Server::start(&seed_config(&format!(
        "http_listen = \"{http}\"\nspread_metric_max_members = 3"
    )));
    for i in 0..30 {
        let answer = if i % 2 == 0 {
            udp(server.addr, &query("app.", RecordType::A))
        } else {
            tcp(server.addr, &query("app.", RecordType::A))
        };
        assert_eq!(a_records(&answer).len(), 3);
    }
    let members = ["172.72.0.2", "172.72.0.3", "172.72.0.4"];

    let records: std::collections::BTreeMap<
        String,
        std::collections::BTreeMap<String, Vec<String>>,
    > = serde_json::from_str(&http_get(http, "/records")).expect("records JSON");
    let mut app = records["my_custom_network"]["app"].clone();
    app.sort();
    assert_eq!(
        app,
        members.map(|m| format!("{m} (first 10) (from config)")),
        "/records: {records:?}"
    );
    assert_eq!(
        records["my_custom_network"]["web1"],
        ["172.72.0.2 (from config)"],
        "a lone member has no spread to show"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_netalias"))
        .args(["records", "--http", &http.to_string()])
        .output()
        .expect("netalias records");
    let table = String::from_utf8_lossy(&out.stdout);
    let row = table
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("app"))
        .unwrap_or_else(|| panic!("{table}"));
    for m in members {
        assert!(row.contains(&format!("{m} (first 10)")), "{table}");
    }

    let (ok, text) = explain(http, &["app"]);
    assert!(ok, "{text}");
    assert!(
        text.contains("answers naming each first since start: 172.72.0."),
        "{text}"
    );
    for m in members {
        assert!(text.contains(&format!("{m} 10")), "{text}");
    }

    let page = metrics_page(http);
    for m in members {
        let series = format!(
            "netalias_rotation_first_total{{network=\"my_custom_network\",name=\"app\",member=\"{m}\"}}"
        );
        assert_eq!(metric(&page, &series), 10.0, "{page}");
    }
    assert_eq!(
        page.matches("# TYPE netalias_rotation_first_total").count(),
        1,
        "{page}"
    );
    assert!(
        !page.contains("name=\"web1\""),
        "only names with 2 to 3 members"
    );
}

/// The network namespace the differential test asks from, joined to the host by a veth pair:
/// the host side is where the server listens, the namespace side holds one address per kind
/// of asker (a trusted one, a stranger, a container's endpoint). An address of the host's own
/// (loopback, or any address on its interfaces) counts as the host asking, so those askers
/// must be elsewhere: here. Root only; skipped otherwise, and a failure in CI.
struct AskerNamespace;

const NETNS: &str = "natest-explain";
const NS_HOST_IP: &str = "10.213.97.1";
const TRUSTED_IP: &str = "10.213.97.2";
const STRANGER_IP: &str = "10.213.97.3";
const CONTAINER_IP: &str = "10.213.97.4";

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

impl AskerNamespace {
    fn make() -> Option<AskerNamespace> {
        AskerNamespace::remove();
        let mut ok = ip(&["netns", "add", NETNS])
            && ip(&[
                "link",
                "add",
                "natest-xh",
                "type",
                "veth",
                "peer",
                "name",
                "natest-xn",
            ])
            && ip(&["link", "set", "natest-xn", "netns", NETNS])
            && ip(&[
                "addr",
                "add",
                &format!("{NS_HOST_IP}/29"),
                "dev",
                "natest-xh",
            ])
            && ip(&["link", "set", "natest-xh", "up"])
            && ip(&["-n", NETNS, "link", "set", "natest-xn", "up"])
            && ip(&["-n", NETNS, "link", "set", "lo", "up"]);
        for asker in [TRUSTED_IP, STRANGER_IP, CONTAINER_IP] {
            ok = ok
                && ip(&[
                    "-n",
                    NETNS,
                    "addr",
                    "add",
                    &format!("{asker}/29"),
                    "dev",
                    "natest-xn",
                ]);
        }
        if !ok {
            AskerNamespace::remove();
            assert!(
                std::env::var_os("CI").is_none(),
                "CI runs as root and must be able to make a network namespace"
            );
            eprintln!("cannot make a network namespace (not root?): only loopback asks");
            return None;
        }
        Some(AskerNamespace)
    }

    fn remove() {
        let _ = Command::new("ip")
            .args(["link", "del", "natest-xh"])
            .output();
        let _ = Command::new("ip").args(["netns", "del", NETNS]).output();
    }

    /// `msg` over UDP from `src` inside the namespace to `server`: on a thread of its own
    /// that enters the namespace (a thread's namespace is its own; the test's stays put).
    fn udp_from(
        &self,
        src: std::net::IpAddr,
        server: std::net::SocketAddr,
        msg: &Message,
    ) -> Message {
        let bytes = msg.to_vec().expect("encode");
        let reply = std::thread::spawn(move || {
            use std::os::fd::AsRawFd;
            let netns = std::fs::File::open(format!("/run/netns/{NETNS}")).expect("netns file");
            // SAFETY: setns on this thread only, with an fd we hold open for the call.
            let entered = unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(entered, 0, "setns: {}", std::io::Error::last_os_error());
            let sock = std::net::UdpSocket::bind((src, 0)).expect("bind in the namespace");
            sock.set_read_timeout(Some(TIMEOUT)).expect("timeout");
            sock.send_to(&bytes, server).expect("send");
            let mut buf = vec![0u8; 65535];
            let (n, _) = sock.recv_from(&mut buf).expect("an answer from the server");
            buf.truncate(n);
            buf
        })
        .join()
        .expect("the asking thread");
        Message::from_vec(&reply).expect("decode answer")
    }
}

impl Drop for AskerNamespace {
    fn drop(&mut self) {
        AskerNamespace::remove();
    }
}

/// `/explain`'s text for `path`; an error status becomes text that predicts nothing.
fn explain_over_http(http: std::net::SocketAddr, path: &str) -> String {
    let mut response = ureq::get(format!("http://{http}{path}"))
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = response.status();
    let body = response.body_mut().read_to_string().expect("body");
    if status.is_success() {
        body
    } else {
        format!("HTTP {status}: {body}")
    }
}

/// One kind of asker: how `/explain` is told who asks (`from=`; none for the HTTP peer,
/// loopback), and where its wire questions come from (`None`: loopback).
struct Asker {
    label: &'static str,
    from: Option<&'static str>,
    source: Option<std::net::IpAddr>,
}

/// The lines of a response that the prediction must give exactly: the rcode and AA, then
/// every record of the answer, authority and additional sections, in order, as dig shows them.
fn response_lines(msg: &Message) -> Vec<String> {
    let code = msg.metadata.response_code;
    let rcode = match code {
        ResponseCode::NoError => "NOERROR".to_string(),
        ResponseCode::NXDomain => "NXDOMAIN".to_string(),
        ResponseCode::Refused => "REFUSED".to_string(),
        ResponseCode::ServFail => "SERVFAIL".to_string(),
        other => format!("{other:?}"),
    };
    let aa = if msg.metadata.authoritative {
        ", authoritative"
    } else {
        ""
    };
    let mut lines = vec![format!("response: {rcode}{aa}")];
    for (section, records) in [
        ("answer", &msg.answers),
        ("authority", &msg.authorities),
        ("additional", &msg.additionals),
    ] {
        lines.extend(records.iter().map(|r| format!("{section}: {r}")));
    }
    lines
}

/// Issue 30, item 1: `explain` is the wire's twin. For a table of questions (every type it
/// takes, PTR by address and by reverse name, names held, unheld, not ours) asked by each
/// kind of asker (loopback, a trusted address, a stranger, a container), the answer explain
/// predicts (rcode, AA, records in order) is what the server then sends; a name that is not
/// ours is predicted forwarded (and the wire then carries the upstream's answer), REFUSED or
/// SERVFAIL, as forwarding is on or off. Explain takes no rotation turn: the next answer to
/// a rotating name is the order it just predicted.
#[test]
fn explain_predicts_exactly_what_the_wire_answers() {
    let ns = AskerNamespace::make();
    let up = FakeUpstream::start(Mode::Answer { ttl: 0 });
    let mut askers = vec![Asker {
        label: "loopback",
        from: None,
        source: None,
    }];
    if ns.is_some() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().expect("ip");
        askers.extend([
            Asker {
                label: "trusted",
                from: Some(TRUSTED_IP),
                source: Some(ip(TRUSTED_IP)),
            },
            Asker {
                label: "stranger",
                from: Some(STRANGER_IP),
                source: Some(ip(STRANGER_IP)),
            },
            Asker {
                label: "container",
                from: Some("probe"),
                source: Some(ip(CONTAINER_IP)),
            },
        ]);
    }
    // (name as given to explain, its type, the wire question: name and type)
    let cases: &[(&str, &str, &str, RecordType)] = &[
        ("web1", "A", "web1.", RecordType::A),
        ("web1", "AAAA", "web1.", RecordType::AAAA),
        ("app", "A", "app.", RecordType::A),
        ("app", "A", "app.", RecordType::A),
        ("app", "AAAA", "app.", RecordType::AAAA),
        (
            "app.my_custom_network",
            "A",
            "app.my_custom_network.",
            RecordType::A,
        ),
        ("app.docker", "A", "app.docker.", RecordType::A),
        ("dual", "AAAA", "dual.", RecordType::AAAA),
        ("six", "A", "six.", RecordType::A),
        ("six", "AAAA", "six.", RecordType::AAAA),
        ("svc", "A", "svc.", RecordType::A),
        ("_http._tcp.svc", "SRV", "_http._tcp.svc.", RecordType::SRV),
        ("_http._tcp.svc", "SRV", "_http._tcp.svc.", RecordType::SRV),
        ("_http._tcp.app", "SRV", "_http._tcp.app.", RecordType::SRV),
        (
            "172.72.0.3",
            "PTR",
            "3.0.72.172.in-addr.arpa.",
            RecordType::PTR,
        ),
        (
            "172.72.0.3",
            "A",
            "3.0.72.172.in-addr.arpa.",
            RecordType::PTR,
        ),
        (
            "2.0.77.10.in-addr.arpa",
            "PTR",
            "2.0.77.10.in-addr.arpa.",
            RecordType::PTR,
        ),
        (
            "fd72::5",
            "PTR",
            "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.7.d.f.ip6.arpa.",
            RecordType::PTR,
        ),
        ("10.9.9.9", "PTR", "9.9.9.10.in-addr.arpa.", RecordType::PTR),
        ("nope.docker", "A", "nope.docker.", RecordType::A),
        ("docker", "A", "docker.", RecordType::A),
        ("docker", "SOA", "docker.", RecordType::SOA),
        (
            "my_custom_network",
            "A",
            "my_custom_network.",
            RecordType::A,
        ),
        ("pkg.example", "A", "pkg.example.", RecordType::A),
        ("web1", "TXT", "web1.", RecordType::TXT),
        ("web1", "MX", "web1.", RecordType::MX),
        ("web1", "ANY", "web1.", RecordType::ANY),
    ];
    let mut failures = Vec::new();
    let mut table = vec![format!(
        "{:<9} {:<10} {:<26} {:<5} {}",
        "SERVER", "ASKER", "QUESTION", "SAME", "EXPLAIN'S NEXT ANSWER"
    )];
    let mut id = 0u16;
    for forwarding in [true, false] {
        let http: std::net::SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let port = free_port();
        let listen = if ns.is_some() {
            format!("listen = [\"127.0.0.1:0\", \"{NS_HOST_IP}:{port}\"]")
        } else {
            "listen = [\"127.0.0.1:0\"]".to_string()
        };
        let config = seed_config(&format!(
            "http_listen = \"{http}\"\ntrusted_askers = [\"{TRUSTED_IP}/32\"]"
        ))
        .replacen("listen = [\"127.0.0.1:0\"]\n", &format!("{listen}\n"), 1)
            + &format!(
                r#"
[[networks.my_custom_network.endpoints]]
name = "dual"
ipv4 = "172.72.0.5"
ipv6 = "fd72::5"
aliases = ["app"]

[[networks.my_custom_network.endpoints]]
name = "six"
ipv6 = "fd72::6"

[networks.other]
[[networks.other.endpoints]]
name = "lone"
ipv4 = "10.77.0.2"
aliases = ["svc"]
srv = [{{ service = "http", port = 8080 }}]

[[networks.other.endpoints]]
name = "lone2"
ipv4 = "10.77.0.3"
aliases = ["svc"]
srv = [{{ service = "http", port = 8081, weight = 5 }}]

[[networks.other.endpoints]]
name = "probe"
ipv4 = "{CONTAINER_IP}"

[forward]
enabled = {forwarding}
upstreams = ["{}"]
"#,
                up.addr
            );
        let server = Server::start(&config);
        let wire_at = std::net::SocketAddr::new(NS_HOST_IP.parse().expect("ip"), port);
        let server_label = if forwarding { "fwd on" } else { "fwd off" };
        for asker in &askers {
            for &(name, qtype, wire_name, wire_type) in cases {
                let mut path = format!("/explain?name={name}&type={qtype}");
                if let Some(from) = asker.from {
                    path += &format!("&from={from}");
                }
                let text = explain_over_http(http, &path);
                let predicted: Vec<String> = text
                    .lines()
                    .filter(|l| {
                        ["response: ", "answer: ", "authority: ", "additional: "]
                            .iter()
                            .any(|p| l.starts_with(p))
                    })
                    .map(str::to_string)
                    .collect();
                let summary = text
                    .lines()
                    .find_map(|l| l.strip_prefix("next answer: "))
                    .or_else(|| text.lines().last())
                    .unwrap_or_default()
                    .to_string();
                // Then the wire, at once: nothing else asks between the two.
                id = id.wrapping_add(1);
                let mut question = query(wire_name, wire_type);
                question.metadata.id = id;
                let answer = match (asker.source, &ns) {
                    (Some(src), Some(ns)) => ns.udp_from(src, wire_at, &question),
                    _ => udp(server.addr, &question),
                };
                let mut wire = response_lines(&answer);
                let forwarded = predicted
                    .first()
                    .is_some_and(|l| l.contains("forwarded to"));
                let same = if forwarded {
                    // Not predicted record by record (an upstream's answer is its own): the
                    // wire must carry the fake upstream's, and explain must name it.
                    let relayed: Vec<String> =
                        a_records(&answer).iter().map(|a| a.to_string()).collect();
                    wire = vec![format!("relayed: {}", relayed.join(" "))];
                    forwarding
                        && predicted[0].contains(&up.addr.to_string())
                        && predicted.len() == 1
                        && answer.metadata.response_code == ResponseCode::NoError
                        && relayed == ["192.0.2.1", "192.0.2.2"]
                } else {
                    predicted == wire
                };
                table.push(format!(
                    "{:<9} {:<10} {:<26} {:<5} {summary}",
                    server_label,
                    asker.label,
                    format!("{name} {qtype}"),
                    if same { "yes" } else { "NO" },
                ));
                if !same {
                    failures.push(format!(
                        "{server_label}, {} asks {name} {qtype}:\n  explain: {predicted:?}\n  wire:    {wire:?}\n  explain said:\n{text}",
                        asker.label
                    ));
                }
            }
        }
    }
    println!("{}", table.join("\n"));
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}\n\n{}",
        failures.len(),
        table.len() - 1,
        table.join("\n"),
        failures.join("\n")
    );
}
