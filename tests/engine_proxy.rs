//! Read-only engine access: netalias serves through a proxy in front of the engine that
//! passes GET (and HEAD) and refuses every other method, as the shipped deployments' socket
//! proxy does. The proxy is nginx from Debian's package (tests/run.sh installs it), on
//! loopback, in front of /var/run/docker.sock. Resources are labelled and removed at the end.

mod common;

use std::{
    io::{Read, Write},
    os::unix::net::UnixStream,
    time::Duration,
};

use common::{
    docker::*,
    engine_proxy::{EngineProxy, silent_listener},
    *,
};

#[test]
fn netalias_serves_through_an_engine_proxy_that_refuses_all_but_get() {
    if !available() {
        return;
    }
    let port = free_port();
    let Some(proxy) = EngineProxy::start(port, "limit_except GET { deny all; }") else {
        return;
    };
    let mut stack = Stack::default();
    let net = stack.network("natest-ro", &["--subnet=10.213.95.0/24"]);
    stack.run(
        "natest-ro-web",
        &["--network", &net, "--network-alias", "ro-app"],
    );
    let ip = ip_on("natest-ro-web", &net);
    let host = format!("tcp://127.0.0.1:{port}");
    let server = Server::start_with(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nttl = 0\ndomain = \"docker\"\n",
        &["--docker", "--docker-host", &host],
    );
    server.wait_ready();
    assert!(
        eventually(Duration::from_secs(20), || a_of(&server, "ro-app.")
            == vec![ip]),
        "served through the read-only proxy"
    );
    // Events come through it too: a container started now is served.
    stack.run(
        "natest-ro-late",
        &["--network", &net, "--network-alias", "ro-app"],
    );
    let late = ip_on("natest-ro-late", &net);
    assert!(
        eventually(Duration::from_secs(20), || a_sorted(&server, "ro-app.")
            .len()
            == 2),
        "{late} joins through the event stream"
    );
    // The Swarm stack's form: each node's netalias reads a proxied unix socket that the
    // node's proxy keeps in a node-local volume.
    let via_socket = Server::start_with(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nttl = 0\ndomain = \"docker\"\n",
        &["--docker", "--docker-host", &proxy.unix_host()],
    );
    via_socket.wait_ready();
    assert_eq!(
        a_sorted(&via_socket, "ro-app."),
        a_sorted(&server, "ro-app."),
        "served through the proxy's unix socket"
    );
    let mut unix = UnixStream::connect(proxy.unix_host().trim_start_matches("unix://"))
        .expect("connect to the proxy's socket");
    unix.write_all(b"POST /containers/natest-ro-web/stop HTTP/1.0\r\nHost: engine\r\n\r\n")
        .expect("send");
    let mut reply = String::new();
    let _ = unix.read_to_string(&mut reply);
    assert!(
        reply.starts_with("HTTP/1.1 403"),
        "POST refused on the socket: {reply}"
    );
    // A write through the same proxy is refused, and changes nothing.
    let post = ureq::post(format!(
        "http://127.0.0.1:{port}/containers/natest-ro-web/stop"
    ))
    .send_empty();
    match post {
        Err(ureq::Error::StatusCode(code)) => assert_eq!(code, 403, "POST refused"),
        other => panic!("a POST went through the proxy: {other:?}"),
    }
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.Running}}", "natest-ro-web"]),
        "true"
    );
}

/// No event is lost for good: with the event stream held back (the proxy sends `/events` to a
/// listener that never answers), a stopped container still leaves the answers and a started
/// one joins them, within a reconcile period, and the correction is counted.
#[test]
fn a_periodic_reconcile_corrects_what_a_held_back_event_stream_missed() {
    if !available() {
        return;
    }
    let silent_port = silent_listener();
    let port = free_port();
    let rules = format!(
        "location ~ /events {{ proxy_pass http://127.0.0.1:{silent_port}; proxy_read_timeout 3600s; }}"
    );
    let Some(_proxy) = EngineProxy::start(port, &rules) else {
        return;
    };
    let mut stack = Stack::default();
    let net = stack.network("natest-rec", &["--subnet=10.213.96.0/24"]);
    stack.run(
        "natest-rec-a",
        &["--network", &net, "--network-alias", "rec"],
    );
    let a = ip_on("natest-rec-a", &net);
    let http: std::net::SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let host = format!("tcp://127.0.0.1:{port}");
    let server = Server::start_with(
        &format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\nttl = 0\nhttp_listen = \"{http}\"\n[docker]\nreconcile_secs = 2\n"
        ),
        &["--docker", "--docker-host", &host],
    );
    server.wait_ready();
    assert_eq!(a_of(&server, "rec."), vec![a], "from the snapshot");

    docker(&["stop", "-t", "1", "natest-rec-a"]);
    stack.run(
        "natest-rec-b",
        &["--network", &net, "--network-alias", "rec"],
    );
    let b = ip_on("natest-rec-b", &net);
    assert!(
        eventually(Duration::from_secs(15), || a_of(&server, "rec.") == vec![b]),
        "the reconcile removed the stopped one and added the new one: {:?}",
        a_of(&server, "rec.")
    );
    // The counter is raised once a reconcile has applied everything it found (after the
    // answers change); the stop and the start may fall in one period or in two.
    let corrections = || {
        metric(
            &metrics_page(http),
            "netalias_source_reconcile_corrections_total{source=\"docker\"}",
        )
    };
    assert!(
        eventually(Duration::from_secs(10), || corrections() >= 2.0),
        "both corrections counted: {}",
        corrections()
    );
}
