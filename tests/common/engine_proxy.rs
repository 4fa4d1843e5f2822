//! nginx (Debian's nginx-light, which tests/run.sh installs) as a proxy in front of the
//! engine's socket on 127.0.0.1:PORT and on a unix socket of its own (the form the Swarm
//! stack's per-node proxy takes), with location rules the test chooses: refuse every
//! method but GET (read-only access), or fail one endpoint (an injected engine failure).
//! Stopped when dropped.

use std::{
    process::{Child, Command},
    time::Duration,
};

use super::docker::eventually;

pub struct EngineProxy {
    child: Child,
    dir: tempfile::TempDir,
}

impl EngineProxy {
    /// Proxies everything to the engine, applying `rules` (nginx directives inside the
    /// catch-all `location /`, or whole `location` blocks before it when they start so).
    pub fn start(port: u16, rules: &str) -> Option<EngineProxy> {
        if Command::new("nginx").arg("-v").output().is_err() {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI installs nginx-light (tests/run.sh)"
            );
            eprintln!("nginx not installed: skipped");
            return None;
        }
        let (own_locations, inside) = if rules.trim_start().starts_with("location") {
            (rules, "")
        } else {
            ("", rules)
        };
        let dir = tempfile::tempdir().expect("dir");
        let d = dir.path().display();
        let conf = format!(
            r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{}}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port};
        listen unix:{d}/engine.sock;
        {own_locations}
        location / {{
            {inside}
            proxy_pass http://unix:/var/run/docker.sock;
            proxy_http_version 1.1;
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_read_timeout 3600s;
        }}
    }}
}}
"#
        );
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, conf).expect("write nginx.conf");
        let child = Command::new("nginx")
            .arg("-c")
            .arg(&path)
            .arg("-p")
            .arg(dir.path())
            .spawn()
            .expect("start nginx");
        let up = eventually(Duration::from_secs(5), || {
            ureq::get(format!("http://127.0.0.1:{port}/_ping"))
                .call()
                .is_ok()
        });
        assert!(up, "the proxy answers /_ping");
        Some(EngineProxy { child, dir })
    }

    /// The proxy's unix socket, as a `--docker-host` URL.
    pub fn unix_host(&self) -> String {
        format!("unix://{}/engine.sock", self.dir.path().display())
    }
}

/// A TCP port on loopback that accepts connections and never answers (an engine endpoint the
/// proxy sends somewhere that stalls); held for the life of the test process.
pub fn silent_listener() -> u16 {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming().flatten() {
            held.push(stream); // accepted, never answered
        }
    });
    port
}

impl Drop for EngineProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
