//! Test harness: runs the real `netalias` binary on a free loopback port and talks to it
//! over real UDP and TCP sockets. Messages are built and parsed with hickory-proto, a DNS
//! library, never with netalias's own types.
#![allow(dead_code, unused_imports)]

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream, UdpSocket},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

pub use hickory_server::proto::{
    op::{Edns, Message, MessageType, OpCode, Query, ResponseCode},
    rr::{DNSClass, Name, RData, Record, RecordType},
};
use std::str::FromStr;

pub const TIMEOUT: Duration = Duration::from_secs(5);

/// A running server; killed when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub config: PathBuf,
    _dir: tempfile::TempDir,
    log: mpsc::Receiver<String>,
    /// What the server logged up to its "listening" line.
    pub startup_log: Vec<String>,
    /// The server's systemd notify socket (NOTIFY_SOCKET): `READY=1` comes once the listeners
    /// are up and every live source has synced, as `/readyz` says it.
    notify: std::os::unix::net::UnixDatagram,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The seed's network plus whatever `extra` TOML adds.
pub fn seed_config(extra: &str) -> String {
    format!(
        r#"[server]
listen = ["127.0.0.1:0"]
ttl = 0
domain = "docker"
{extra}

[networks.my_custom_network]
subnet = "172.72.0.0/16"

[[networks.my_custom_network.endpoints]]
name = "web1"
ipv4 = "172.72.0.2"
aliases = ["app"]

[[networks.my_custom_network.endpoints]]
name = "web2"
ipv4 = "172.72.0.3"
aliases = ["app"]

[[networks.my_custom_network.endpoints]]
name = "web3"
ipv4 = "172.72.0.4"
aliases = ["app"]
"#
    )
}

impl Server {
    /// Starts the binary with `config` written to a temporary file.
    pub fn start(config: &str) -> Server {
        Server::start_with(config, &[])
    }

    /// Starts the binary with `config` and extra `serve` arguments.
    pub fn start_with(config: &str, args: &[&str]) -> Server {
        Server::spawn(Some(config), args, None)
    }

    /// Starts the binary with `--config PATH` as it is (a file the test laid out itself).
    pub fn start_with_config_path(path: &Path) -> Server {
        let mut server = Server::spawn(None, &["--config", &path.display().to_string()], None);
        server.config = path.to_path_buf();
        server
    }

    /// Starts the binary with no `--config` (the embedded default's settings), and `args`.
    pub fn start_without_config(args: &[&str]) -> Server {
        Server::spawn(None, args, None)
    }

    /// Starts the binary with `config` under an open-file limit of `nofile` (soft and hard,
    /// so it cannot raise it), through util-linux's prlimit.
    pub fn start_with_nofile(config: &str, nofile: u64) -> Server {
        Server::spawn(Some(config), &[], Some(nofile))
    }

    /// Starts the binary with `config` on a free port of its own choosing for a listener the
    /// test must name: `config_on(port)` gives the config. A port found free can be taken by a
    /// parallel test before the server binds it (seen in CI once for `0.0.0.0:PORT`): then it
    /// tries another, three times at most.
    pub fn start_on_free_port(config_on: impl Fn(u16) -> String) -> (Server, u16) {
        let mut said = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            match Server::try_spawn(Some(&config_on(port)), &[], None) {
                Ok(server) => return (server, port),
                Err(log) if log.contains("Address already in use") => said.push(log),
                Err(log) => panic!("server did not report its address; it said:\n{log}"),
            }
        }
        panic!("three free ports were taken before the server bound them:\n{said:?}")
    }

    fn spawn(config: Option<&str>, args: &[&str], nofile: Option<u64>) -> Server {
        Server::try_spawn(config, args, nofile)
            .unwrap_or_else(|log| panic!("server did not report its address; it said:\n{log}"))
    }

    /// The server, or what it said before it failed to report its address.
    fn try_spawn(
        config: Option<&str>,
        args: &[&str],
        nofile: Option<u64>,
    ) -> Result<Server, String> {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("netalias.toml");
        let binary = env!("CARGO_BIN_EXE_netalias");
        let mut command = match nofile {
            Some(n) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}")).arg(binary);
                c
            }
            None => Command::new(binary),
        };
        command.arg("serve");
        if let Some(config) = config {
            std::fs::write(&path, config).expect("write config");
            command.arg("--config").arg(&path);
        }
        let notify_path = dir.path().join("notify");
        let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).expect("notify socket");
        let mut child = command
            .args(args)
            .env("NOTIFY_SOCKET", &notify_path)
            .env("NETALIAS_LOG", "info,netalias::source::docker=debug")
            .env_remove("NETALIAS_LISTEN")
            .env_remove("NETALIAS_CONFIG")
            .env_remove("NETALIAS_TTL")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn netalias");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + TIMEOUT;
        let mut seen = Vec::new();
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(line) => line,
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("({e})\n{}", seen.join("\n")));
                }
            };
            seen.push(line.clone());
            if line.contains("listening on udp and tcp")
                && let Some(rest) = line.split("addr=").nth(1)
            {
                let text = rest.split_whitespace().next().unwrap_or_default();
                break SocketAddr::from_str(text).expect("address in log");
            }
            // --log-format json
            if line.contains("listening on udp and tcp")
                && let Some(rest) = line.split("\"addr\":\"").nth(1)
            {
                let text = rest.split('"').next().unwrap_or_default();
                break SocketAddr::from_str(text).expect("address in log");
            }
        };
        Ok(Server {
            child,
            addr,
            config: path,
            _dir: dir,
            log: rx,
            startup_log: seen,
            notify,
        })
    }

    /// Waits until the server says it is ready (systemd's `READY=1`: the listeners up and
    /// every live source synced once), not for a line of its log.
    pub fn wait_ready(&self) {
        self.notify
            .set_read_timeout(Some(TIMEOUT))
            .expect("notify timeout");
        let mut buf = [0u8; 4096];
        loop {
            let n = self
                .notify
                .recv(&mut buf)
                .unwrap_or_else(|error| panic!("the server never said READY=1 ({error})"));
            if String::from_utf8_lossy(&buf[..n])
                .lines()
                .any(|l| l == "READY=1")
            {
                return;
            }
        }
    }

    /// Waits for a log line containing `needle`.
    pub fn wait_log(&self, needle: &str) -> String {
        self.wait_log_within(needle, TIMEOUT)
    }

    /// Waits up to `timeout` for a log line containing `needle`.
    pub fn wait_log_within(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .log
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no log line containing {needle:?}"));
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// Waits until a line containing each of `needles` has been logged, in any order.
    pub fn wait_logs(&self, needles: &[&str]) {
        let deadline = Instant::now() + TIMEOUT;
        let mut missing: Vec<&str> = needles.to_vec();
        while !missing.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .log
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no log lines containing {missing:?}"));
            missing.retain(|needle| !line.contains(needle));
        }
    }

    /// Every line logged since the last wait, for a failure message.
    pub fn log_so_far(&self) -> String {
        self.log.try_iter().collect::<Vec<_>>().join("\n")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn config_path(&self) -> &Path {
        &self.config
    }
}

pub fn query(name: &str, qtype: RecordType) -> Message {
    let mut msg = Message::query();
    msg.add_query(Query::query(Name::from_str(name).expect("name"), qtype));
    msg.metadata.recursion_desired = true;
    msg
}

pub fn with_edns(mut msg: Message, payload: u16, version: u8) -> Message {
    let mut edns = Edns::new();
    edns.set_max_payload(payload);
    edns.set_version(version);
    msg.edns = Some(edns);
    msg
}

/// A loopback port free on both UDP and TCP right now, for a peer that binds it itself.
pub fn free_port() -> u16 {
    (0..50)
        .find_map(|_| {
            let udp = UdpSocket::bind("127.0.0.1:0").ok()?;
            let port = udp.local_addr().ok()?.port();
            // On every address: a listener on `0.0.0.0:PORT` fails while any socket holds
            // the port on any address (another test's client connection from the host's own
            // address, say), which a check on loopback alone does not see.
            std::net::TcpListener::bind(("0.0.0.0", port)).ok()?;
            Some(port)
        })
        .expect("a free loopback port")
}

pub fn udp_socket() -> UdpSocket {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    sock.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    sock
}

/// Sends raw bytes over UDP; `None` if nothing comes back within `wait`.
pub fn udp_raw(addr: SocketAddr, bytes: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let sock = udp_socket();
    sock.set_read_timeout(Some(wait)).expect("timeout");
    sock.send_to(bytes, addr).expect("send");
    let mut buf = vec![0u8; 65535];
    match sock.recv_from(&mut buf) {
        Ok((n, _)) => Some(buf[..n].to_vec()),
        Err(_) => None,
    }
}

pub fn udp(addr: SocketAddr, msg: &Message) -> Message {
    let bytes = msg.to_vec().expect("encode");
    let reply = udp_raw(addr, &bytes, TIMEOUT).expect("no UDP answer");
    let parsed = Message::from_vec(&reply).expect("decode answer");
    assert_eq!(parsed.metadata.id, msg.metadata.id, "answer id matches");
    parsed
}

pub fn tcp_connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, TIMEOUT).expect("tcp connect");
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    stream
}

/// A TCP connection from a chosen loopback source address (127.0.0.0/8 all reaches 127.0.0.1).
pub fn tcp_connect_from(src: std::net::IpAddr, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    socket.bind(&SocketAddr::new(src, 0).into())?;
    socket.connect_timeout(&addr.into(), TIMEOUT)?;
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(TIMEOUT))?;
    Ok(stream)
}

/// One query over a fresh TCP connection from `src`.
pub fn tcp_from(src: std::net::IpAddr, addr: SocketAddr, msg: &Message) -> Message {
    let mut stream = tcp_connect_from(src, addr).expect("tcp connect");
    tcp_send(&mut stream, msg);
    tcp_read(&mut stream)
}

pub fn tcp_send(stream: &mut TcpStream, msg: &Message) {
    let bytes = msg.to_vec().expect("encode");
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&bytes);
    stream.write_all(&framed).expect("tcp write");
}

pub fn tcp_read(stream: &mut TcpStream) -> Message {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).expect("tcp length");
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut body).expect("tcp body");
    Message::from_vec(&body).expect("decode tcp answer")
}

pub fn tcp(addr: SocketAddr, msg: &Message) -> Message {
    let mut stream = tcp_connect(addr);
    tcp_send(&mut stream, msg);
    tcp_read(&mut stream)
}

/// The A records `server` answers for `name` over UDP, in answer order.
/// A server a test can ask: the binary (`Server`) or the library in this process
/// (`in_process::InProcess`).
pub trait Dns {
    fn dns(&self) -> SocketAddr;
}

impl Dns for Server {
    fn dns(&self) -> SocketAddr {
        self.addr
    }
}

pub fn a_of(server: &impl Dns, name: &str) -> Vec<std::net::Ipv4Addr> {
    a_records(&udp(server.dns(), &query(name, RecordType::A)))
}

/// The same, sorted: for comparing member sets whatever the rotation.
pub fn a_sorted(server: &impl Dns, name: &str) -> Vec<std::net::Ipv4Addr> {
    let mut ips = a_of(server, name);
    ips.sort();
    ips
}

pub fn a_records(msg: &Message) -> Vec<std::net::Ipv4Addr> {
    msg.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}
pub mod clients;
pub mod dnsmasq;
pub mod docker;
pub mod engine_proxy;
pub mod in_process;
pub mod registry;
pub mod upstream;

/// The body of `GET http://ADDR/PATH`; panics unless it succeeds.
pub fn http_get(addr: impl std::fmt::Display, path: &str) -> String {
    ureq::get(format!("http://{addr}{path}"))
        .call()
        .unwrap_or_else(|e| panic!("GET {path} from {addr}: {e}"))
        .into_body()
        .read_to_string()
        .unwrap_or_else(|e| panic!("body of {path} from {addr}: {e}"))
}

/// The `/metrics` page of a server started with `http_listen = "ADDR"`.
pub fn metrics_page(http: SocketAddr) -> String {
    http_get(http, "/metrics")
}

/// The value of one series, e.g. `netalias_dns_tcp_refused_total{reason="per_client"}`; 0 if absent.
pub fn metric(page: &str, series: &str) -> f64 {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok())?
        })
        .unwrap_or(0.0)
}

/// Resident memory of a process, in KiB, from /proc.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("proc status")
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}
