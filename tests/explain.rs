//! `netalias explain` against a running server: who asks and what it sees, the members and
//! the next answer's order, and what becomes of names that are not held.

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
        members.map(|m| format!("{m} (first 10)")),
        "/records: {records:?}"
    );
    assert_eq!(
        records["my_custom_network"]["web1"],
        ["172.72.0.2"],
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
