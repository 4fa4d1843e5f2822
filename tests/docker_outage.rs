//! Loss of the engine: netalias reaches Docker through a socket proxy that the test cuts and
//! restores. Answers continue from the last known records while it is down, and changes made
//! meanwhile are right once it is back.

mod common;

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use common::{docker::*, *};
use tokio::{
    net::{UnixListener, UnixStream},
    runtime::Runtime,
    task::{JoinHandle, JoinSet},
};

const ENGINE_SOCKET: &str = "/var/run/docker.sock";
/// How long the engine stays cut off (the hardening issue asks for 30 s).
const OUTAGE: Duration = Duration::from_secs(30);

/// A unix-socket proxy in front of the engine, which the test can cut.
struct Proxy {
    path: PathBuf,
    runtime: Runtime,
    task: Option<JoinHandle<()>>,
}

impl Proxy {
    fn new(path: &Path) -> Proxy {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let mut proxy = Proxy {
            path: path.to_path_buf(),
            runtime,
            task: None,
        };
        proxy.up();
        proxy
    }

    fn up(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let path = self.path.clone();
        let listener = self
            .runtime
            .block_on(async { UnixListener::bind(&path) })
            .expect("bind proxy");
        self.task = Some(self.runtime.spawn(async move {
            // Dropping this set (when the task is aborted) closes every proxied connection.
            let mut connections = JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut engine) = UnixStream::connect(ENGINE_SOCKET).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut engine).await;
                    }
                });
            }
        }));
    }

    fn cut(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = self.runtime.block_on(task);
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
    }
}

#[test]
fn answers_continue_while_the_engine_is_away_and_catch_up_after() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let socket = dir.path().join("docker.sock");
    let mut proxy = Proxy::new(&socket);

    let mut stack = Stack::default();
    let net = stack.network("natest-outage", &["--subnet=10.213.41.0/24"]);
    stack.run(
        "natest-outage-1",
        &["--network", &net, "--network-alias", "app"],
    );
    stack.run(
        "natest-outage-2",
        &["--network", &net, "--network-alias", "app"],
    );
    let ip1 = ip_on("natest-outage-1", &net);
    let ip2 = ip_on("natest-outage-2", &net);

    let host = format!("unix://{}", socket.display());
    let http: std::net::SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let config = format!("[server]\nlisten = [\"127.0.0.1:0\"]\nhttp_listen = \"{http}\"\n");
    let server = Server::start_with(&config, &["--docker", "--docker-host", &host]);
    server.wait_ready();
    let mut before = vec![ip1, ip2];
    before.sort();
    assert!(eventually(Duration::from_secs(20), || a_sorted(
        &server, "app."
    ) == before));

    proxy.cut();
    server.wait_log("lost the Docker engine");

    // While the engine is unreachable: another starts, one stops (in this order, so that
    // the new one cannot reuse the stopped one's address).
    stack.run(
        "natest-outage-3",
        &["--network", &net, "--network-alias", "app"],
    );
    let ip3 = ip_on("natest-outage-3", &net);
    docker(&["stop", "-t", "2", "natest-outage-1"]);
    assert_eq!(
        metric(&metrics_page(http), "netalias_docker_stale"),
        1.0,
        "the outage shows in /metrics"
    );
    // The engine stays away for OUTAGE while queries go on, every one answered.
    let started = std::time::Instant::now();
    let mut answered = 0;
    while started.elapsed() < OUTAGE {
        assert_eq!(
            a_sorted(&server, "app."),
            before,
            "stale records keep answering"
        );
        answered += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("outage of {OUTAGE:?}: {answered} queries answered from the last known records");

    proxy.up();
    let mut after = vec![ip2, ip3];
    after.sort();
    assert!(
        eventually(Duration::from_secs(30), || a_sorted(&server, "app.")
            == after),
        "after the engine returns: {:?}, want {after:?}",
        a_sorted(&server, "app.")
    );
    assert!(a_of(&server, "natest-outage-1.").is_empty());
    assert!(
        eventually(Duration::from_secs(10), || metric(
            &metrics_page(http),
            "netalias_docker_stale"
        ) == 0.0),
        "fresh again in /metrics"
    );
    assert_eq!(
        a_of(&server, "natest-outage-3."),
        vec![ip3],
        "no duplicates, new container present"
    );
}
