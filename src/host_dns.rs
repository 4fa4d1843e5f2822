//! `netalias host-dns`: the lines that make the host's own resolver send the search domain
//! (`*.docker`) to netalias and nothing else, for the resolver found on the host:
//! systemd-resolved (a drop-in with `Domains=~docker`), dnsmasq or NetworkManager's dnsmasq
//! (`server=/docker/ADDR#PORT`).
//!
//! Pure but for reading a few well-known paths under `root` (so it can be pointed at an image
//! or a test directory); writing the file is the caller's.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

/// The host resolvers netalias can be plugged into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HostResolver {
    /// systemd-resolved: a drop-in in /etc/systemd/resolved.conf.d.
    Resolved,
    /// dnsmasq: a file in /etc/dnsmasq.d.
    Dnsmasq,
    /// NetworkManager with `dns=dnsmasq`: a file in /etc/NetworkManager/dnsmasq.d.
    Networkmanager,
}

/// What to write where, and how to take it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snippet {
    pub resolver: HostResolver,
    /// Relative to the root (e.g. `etc/dnsmasq.d/netalias.conf`).
    pub path: PathBuf,
    pub text: String,
    /// The command that makes the resolver read it.
    pub apply: &'static str,
}

impl Snippet {
    /// How to take it back.
    pub fn undo(&self, root: &Path) -> String {
        format!("rm {} && {}", root.join(&self.path).display(), self.apply)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HostDnsError {
    #[error(
        "no host resolver found (systemd-resolved, dnsmasq or NetworkManager's dnsmasq); name one with --resolver"
    )]
    NoneFound,
    #[error(
        "`{0}` is not a domain netalias serves; set server.domain (e.g. `docker`) or give --domain"
    )]
    NoDomain(String),
}

/// The resolver the host uses, judged from what is under `root`: /etc/resolv.conf pointing at
/// resolved's stub (127.0.0.53), NetworkManager's dnsmasq directory, or dnsmasq's.
pub fn detect(root: &Path) -> Option<HostResolver> {
    let resolv = std::fs::read_to_string(root.join("etc/resolv.conf")).unwrap_or_default();
    let uses = |ip: &str| {
        resolv
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["nameserver", ip])
    };
    if uses("127.0.0.53") && root.join("run/systemd/resolve").is_dir() {
        Some(HostResolver::Resolved)
    } else if root.join("etc/NetworkManager/dnsmasq.d").is_dir() {
        Some(HostResolver::Networkmanager)
    } else if root.join("etc/dnsmasq.d").is_dir() || uses("127.0.0.1") {
        Some(HostResolver::Dnsmasq)
    } else {
        None
    }
}

/// The snippet that sends `domains` (the search domain first, then the owned ones; those and
/// only those) to netalias at `at`.
pub fn snippet(
    resolver: HostResolver,
    domains: &[&str],
    at: SocketAddr,
) -> Result<Snippet, HostDnsError> {
    let domains: Vec<&str> = domains.iter().map(|d| d.trim_end_matches('.')).collect();
    if let Some(bad) = domains
        .iter()
        .find(|d| d.is_empty() || d.contains(char::is_whitespace) || d.contains('/'))
    {
        return Err(HostDnsError::NoDomain(bad.to_string()));
    }
    if domains.is_empty() {
        return Err(HostDnsError::NoDomain(String::new()));
    }
    let dnsmasq_line: String = domains
        .iter()
        .map(|domain| format!("server=/{domain}/{}#{}\n", at.ip(), at.port()))
        .collect();
    let routed: Vec<String> = domains.iter().map(|d| format!("~{d}")).collect();
    let domain = routed.join(" ");
    let header = "# Written by `netalias host-dns`: only these domains go to netalias.\n";
    Ok(match resolver {
        HostResolver::Resolved => Snippet {
            resolver,
            path: "etc/systemd/resolved.conf.d/netalias.conf".into(),
            // `~domain`: a routing-only domain (not a search domain); `IP:PORT` needs v246+.
            text: format!("{header}[Resolve]\nDNS={at}\nDomains={domain}\n"),
            apply: "systemctl restart systemd-resolved",
        },
        HostResolver::Dnsmasq => Snippet {
            resolver,
            path: "etc/dnsmasq.d/netalias.conf".into(),
            text: format!("{header}{dnsmasq_line}"),
            apply: "systemctl restart dnsmasq",
        },
        HostResolver::Networkmanager => Snippet {
            resolver,
            path: "etc/NetworkManager/dnsmasq.d/netalias.conf".into(),
            text: format!("{header}{dnsmasq_line}"),
            apply: "systemctl reload NetworkManager",
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_resolver_gets_only_the_domain() {
        let at: SocketAddr = "127.0.0.1:1053".parse().expect("addr");
        let resolved = snippet(HostResolver::Resolved, &["docker."], at).expect("snippet");
        assert!(
            resolved
                .text
                .contains("DNS=127.0.0.1:1053\nDomains=~docker\n")
        );
        let dnsmasq = snippet(HostResolver::Dnsmasq, &["docker"], at).expect("snippet");
        assert!(dnsmasq.text.ends_with("server=/docker/127.0.0.1#1053\n"));
        assert!(snippet(HostResolver::Dnsmasq, &[""], at).is_err());
        assert!(snippet(HostResolver::Dnsmasq, &[], at).is_err());
        // Owned domains go too, and only they.
        let both = snippet(HostResolver::Resolved, &["docker", "shop.test"], at).expect("snippet");
        assert!(
            both.text.contains("Domains=~docker ~shop.test\n"),
            "{}",
            both.text
        );
        let both = snippet(HostResolver::Dnsmasq, &["docker", "shop.test"], at).expect("snippet");
        assert!(
            both.text
                .ends_with("server=/docker/127.0.0.1#1053\nserver=/shop.test/127.0.0.1#1053\n")
        );
    }

    #[test]
    fn the_resolver_is_told_by_the_host() {
        let root = tempfile::tempdir().expect("dir");
        assert_eq!(detect(root.path()), None);
        std::fs::create_dir_all(root.path().join("etc/dnsmasq.d")).expect("dir");
        assert_eq!(detect(root.path()), Some(HostResolver::Dnsmasq));
        std::fs::create_dir_all(root.path().join("run/systemd/resolve")).expect("dir");
        std::fs::write(
            root.path().join("etc/resolv.conf"),
            "nameserver 127.0.0.53\n",
        )
        .expect("write");
        assert_eq!(detect(root.path()), Some(HostResolver::Resolved));
    }
}
