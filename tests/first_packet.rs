//! Answered from the first packet, against the real engine with real resolver libraries: a
//! container whose entrypoint resolves an alias at once (static glibc and musl `getaddrinfo`,
//! Go's pure resolver) is answered on its first try, through Docker's 127.0.0.11 with
//! `--dns <gateway>` and through a mounted resolv.conf naming netalias. The container is
//! scoped from its `network connect` (or looked up when it asks first), never refused for
//! being new. Every resource is labelled and removed at the end.

mod common;

use std::{
    net::Ipv4Addr,
    process::Command,
    sync::{Arc, Mutex},
    time::Duration,
};

use common::{
    clients::{self, Library, Lookup},
    docker::*,
    *,
};

/// Containers per library and mode (the count).
const EACH: usize = 20;
/// Started at once: enough to press the engine the way a compose `up` does.
const AT_ONCE: usize = 5;

/// How a client container reaches netalias.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// `--dns <gateway>`: Docker's 127.0.0.11 forwards `NAME.docker` from the container's
    /// own address.
    DockerDns,
    /// A resolv.conf naming the gateway, mounted over the container's.
    Mounted,
}

/// Runs `count` client containers of `library` in `mode`, `AT_ONCE` at a time, each resolving
/// `name` once as its entrypoint, and returns each one's lookups.
fn run_clients(
    library: Library,
    mode: Mode,
    count: usize,
    network: &str,
    gateway: &str,
    resolv_conf: &str,
    name: &str,
) -> Vec<(String, Vec<Lookup>)> {
    let results = Arc::new(Mutex::new(Vec::new()));
    for batch in (0..count).collect::<Vec<_>>().chunks(AT_ONCE) {
        let threads: Vec<_> = batch
            .iter()
            .map(|i| {
                let container = format!("fp-{mode:?}-{library:?}-{i}").to_lowercase();
                let mut args: Vec<String> = [
                    "run",
                    "--rm",
                    "--label",
                    LABEL,
                    "--name",
                    &container,
                    "--network",
                    network,
                ]
                .map(String::from)
                .to_vec();
                match mode {
                    Mode::DockerDns => args.extend(["--dns".into(), gateway.into()]),
                    Mode::Mounted => {
                        args.extend(["-v".into(), format!("{resolv_conf}:/etc/resolv.conf:ro")])
                    }
                }
                args.extend([
                    clients::IMAGE.to_string(),
                    library.binary().to_string(),
                    name.to_string(),
                ]);
                let results = Arc::clone(&results);
                std::thread::spawn(move || {
                    let out = Command::new("docker")
                        .args(&args)
                        .output()
                        .expect("docker run");
                    let text = String::from_utf8_lossy(&out.stdout).to_string();
                    let err = String::from_utf8_lossy(&out.stderr).to_string();
                    results
                        .lock()
                        .unwrap()
                        .push((format!("{container}: {text}{err}"), clients::parse(&text)));
                })
            })
            .collect();
        for t in threads {
            t.join().expect("client thread");
        }
    }
    Arc::try_unwrap(results).unwrap().into_inner().unwrap()
}

#[test]
fn a_container_resolving_in_its_first_millisecond_is_answered_by_every_library() {
    if !available() {
        return;
    }
    let image = clients::image();
    assert_eq!(image, clients::IMAGE);
    let mut stack = Stack::default();
    let gateway = "10.235.0.1";
    let net = stack.network(
        "fpnet",
        &["--subnet=10.235.0.0/24", &format!("--gateway={gateway}")],
    );
    for web in ["fp-web1", "fp-web2"] {
        stack.run(web, &["--network", &net, "--network-alias", "fpapp"]);
    }
    let replicas: Vec<Ipv4Addr> = ["fp-web1", "fp-web2"]
        .iter()
        .map(|c| ip_on(c, &net))
        .collect();
    let server = Server::start_without_config(&[
        "--docker",
        "--listen",
        "127.0.0.1:0",
        "--listen",
        &format!("{gateway}:53"),
    ]);
    assert!(
        eventually(Duration::from_secs(20), || a_sorted(&server, "fpapp.")
            .len()
            == 2),
        "netalias serves the replicas: {:?}",
        a_of(&server, "fpapp.")
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let resolv_conf = dir.path().join("resolv.conf");
    // One try, one second: a refusal or a lost answer shows as a failure or a slow lookup,
    // not hidden by the library's retries.
    std::fs::write(
        &resolv_conf,
        format!("nameserver {gateway}\nsearch docker\noptions ndots:1 timeout:1 attempts:1\n"),
    )
    .expect("write resolv.conf");
    let resolv_conf = resolv_conf.to_str().expect("utf-8 path");

    let mut failures = Vec::new();
    let mut asked = 0;
    for mode in [Mode::DockerDns, Mode::Mounted] {
        // Through 127.0.0.11 a bare name is Docker's own: the search domain makes it ours.
        let name = match mode {
            Mode::DockerDns => "fpapp.docker",
            Mode::Mounted => "fpapp",
        };
        for library in Library::ALL {
            for (what, lookups) in
                run_clients(library, mode, EACH, &net, gateway, resolv_conf, name)
            {
                asked += 1;
                let ok = match lookups.as_slice() {
                    [one] => {
                        one.first().is_some_and(|ip| replicas.contains(&ip))
                            && (library != Library::Musl || one.millis < 1000.0)
                    }
                    _ => false,
                };
                if !ok {
                    failures.push(what);
                }
            }
        }
    }
    assert_eq!(asked, 2 * 3 * EACH);
    assert!(
        failures.is_empty(),
        "{} of {asked} first lookups failed, were slow (musl ≥ 1 s) or wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn a_new_container_is_named_at_its_network_connect_under_the_same_rules() {
    if !available() {
        return;
    }
    let mut stack = Stack::default();
    let net = stack.network("fpnet2", &["--subnet=10.235.1.0/24"]);
    let http = format!("127.0.0.1:{}", free_port());
    let server = Server::start_without_config(&[
        "--docker",
        "--listen",
        "127.0.0.1:0",
        "--http-listen",
        &http,
    ]);
    let http: std::net::SocketAddr = http.parse().expect("http address");
    assert!(
        eventually(Duration::from_secs(20), || is_ready(http)),
        "netalias becomes ready"
    );
    stack.run("fp-new", &["--network", &net, "--network-alias", "fpnew"]);
    let ip = ip_on("fp-new", &net);
    assert!(
        eventually(Duration::from_secs(10), || a_of(&server, "fpnew.")
            == vec![ip]),
        "the new container answers: {:?}",
        a_of(&server, "fpnew.")
    );
    let published_early =
        |page: &str| metric(page, "netalias_docker_early_askers_total{how=\"created\"}");
    assert!(
        eventually(Duration::from_secs(10), || published_early(&metrics_page(
            http
        )) >= 1.0),
        "published at its network connect, from what was read at create:\n{}\nits log:\n{}",
        metrics_page(http),
        server.log_so_far()
    );
    // Early or not, a container with a health check answers only once healthy: this one
    // never is.
    stack.run(
        "fp-checked",
        &[
            "--network",
            &net,
            "--network-alias",
            "fpchecked",
            "--health-cmd",
            "false",
            "--health-interval",
            "1s",
        ],
    );
    // `docker run -d` returns at the start; the events may still be on their way here.
    assert!(
        eventually(Duration::from_secs(10), || published_early(&metrics_page(
            http
        )) >= 2.0),
        "the checked one went the early way too; the log:\n{}",
        server.log_so_far()
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        a_of(&server, "fpchecked.").is_empty(),
        "never healthy, never answered"
    );
    assert_eq!(a_of(&server, "fpnew."), vec![ip]);
}

/// Whether `/readyz` answers 200 (the Docker source has synced once).
fn is_ready(http: std::net::SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&http, Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    reply.starts_with("HTTP/1.1 200")
}
