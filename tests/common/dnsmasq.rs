//! dnsmasq as a real upstream peer for tests, on an address the test chooses (loopback or a
//! gateway of a network the test created); killed when dropped.

use std::process::{Child, Command};

pub struct Dnsmasq {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Dnsmasq {
    /// Serves `hosts` (hosts-file lines) on `listen:port`, with no upstream of its own.
    pub fn start(listen: &str, port: u16, hosts: &str) -> Dnsmasq {
        Dnsmasq::start_with(listen, port, hosts, &[])
    }

    /// The same, with `extra` arguments (a `--server=` of its own, say). Every query is
    /// logged to a file of its own, which [`Dnsmasq::log`] reads.
    pub fn start_with(listen: &str, port: u16, hosts: &str, extra: &[&str]) -> Dnsmasq {
        let dir = tempfile::tempdir().expect("dir");
        let hosts_file = dir.path().join("hosts");
        std::fs::write(&hosts_file, hosts).expect("hosts");
        let child = Command::new("dnsmasq")
            .args([
                "--keep-in-foreground",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
            ])
            .arg(format!("--listen-address={listen}"))
            .arg(format!("--port={port}"))
            .arg(format!("--addn-hosts={}", hosts_file.display()))
            .arg(format!("--pid-file={}", dir.path().join("pid").display()))
            .arg("--user=root")
            .arg("--log-queries")
            .arg(format!(
                "--log-facility={}",
                dir.path().join("log").display()
            ))
            .args(extra)
            .spawn()
            .expect("start dnsmasq (tests/run.sh installs it)");
        Dnsmasq { child, _dir: dir }
    }

    /// What it has logged so far (its queries, with `--log-queries`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("log")).unwrap_or_default()
    }

    /// Lines of its log containing `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.log().lines().filter(|l| l.contains(needle)).count()
    }

    pub fn installed() -> bool {
        Command::new("dnsmasq").arg("--version").output().is_ok()
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
