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
            .spawn()
            .expect("start dnsmasq (tests/run.sh installs it)");
        Dnsmasq { child, _dir: dir }
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
