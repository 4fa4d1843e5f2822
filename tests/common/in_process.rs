//! netalias as a library in the test's own process: `netalias::server::start`, the assembly
//! the binary runs, on a runtime of its own, returned once its readiness handle says so (not
//! when a log line appears). Stopped when dropped. For tests of what the server answers; the
//! binary's own edges (flags, exit codes, logs, signals) are tested through `Server`.

use std::net::SocketAddr;

use netalias::{
    config::Config,
    server::{self, Launch},
};

pub struct InProcess {
    pub addr: SocketAddr,
    /// Dropped last: it stops the listeners' task (and with it the receive loops).
    runtime: Option<tokio::runtime::Runtime>,
}

impl InProcess {
    /// Starts a server for `config` (TOML, as a file would hold it) and waits until it is ready.
    pub fn start(config: &str) -> InProcess {
        let config = Config::parse(config, "in-process.toml").unwrap_or_else(|e| panic!("{e}"));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let running = runtime
            .block_on(server::start(Launch {
                config,
                path: None,
                overrides: Box::new(|_| {}),
                upstreams_from: "forward.upstreams",
            }))
            .unwrap_or_else(|e| panic!("the server did not start: {e}"));
        let readiness = std::sync::Arc::clone(&running.readiness);
        let addr = *running.dns.first().expect("a DNS address");
        runtime.spawn(running.serve());
        let deadline = std::time::Instant::now() + super::TIMEOUT;
        while !readiness.is_ready() {
            assert!(
                std::time::Instant::now() < deadline,
                "not ready: {:?}",
                readiness.not_ready()
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        InProcess {
            addr,
            runtime: Some(runtime),
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl super::Dns for InProcess {
    fn dns(&self) -> SocketAddr {
        self.addr
    }
}
