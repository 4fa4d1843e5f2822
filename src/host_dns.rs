//! `netalias host-dns`: the lines that make the host's own resolver send the domains netalias
//! owns (the search domain `*.docker`, the declared `own_domains`, and the domains of the names
//! labels claim) to netalias and nothing else, for the resolver found on the host:
//! systemd-resolved (a drop-in with `Domains=~docker`), dnsmasq or NetworkManager's dnsmasq
//! (`server=/docker/ADDR#PORT`).
//!
//! Pure but for reading a few well-known paths under `root` (so it can be pointed at an image
//! or a test directory); writing the file, and asking a running server for its label names,
//! are the caller's. It must never route a public top-level domain (`com`) because a label
//! mentions a name in it: [`label_domains`] refuses those and says so.

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

/// Single-label domains that are reserved or special-use, never delegated in the public DNS,
/// and so safe to send whole to netalias when a label claims a name in one: RFC 6761's
/// `test`, `localhost`, `invalid` and `example`, RFC 6762's `local`, and ICANN's `internal`
/// (2024). Any other single label (`com`, `dev`, `lan`) is refused.
pub const RESERVED_TLDS: [&str; 6] = [
    "test",
    "localhost",
    "invalid",
    "example",
    "local",
    "internal",
];

/// The domains to route for the names labels claim, and the ones refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelDomains {
    /// New domains to route, in name order; none is under a routed domain or under another.
    pub domains: Vec<String>,
    /// Domains not routed, each with the label names that asked for it (in name order) and why.
    pub skipped: Vec<SkippedDomain>,
}

/// A label name's domain that is not routed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedDomain {
    pub domain: String,
    pub names: Vec<String>,
    pub why: SkipReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// A single label that is not reserved (`com`): routing it would send a whole public
    /// top-level domain to netalias.
    PublicTld,
    /// Not a plain domain name (a character a resolver's config line cannot carry).
    NotAName,
}

impl std::fmt::Display for SkippedDomain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = self.names.join(", ");
        match self.why {
            SkipReason::PublicTld => write!(
                f,
                "not routing `{}` (the domain of the label name {names}): a single-label domain \
                 that is not reserved would send a whole public top-level domain to netalias; \
                 use a name under a domain netalias owns or a reserved one ({})",
                self.domain,
                RESERVED_TLDS.map(|t| format!(".{t}")).join(", ")
            ),
            SkipReason::NotAName => write!(
                f,
                "not routing `{}` (the domain of the label name {names}): not a plain domain name",
                self.domain
            ),
        }
    }
}

/// `name` as compared here: lower case, without a trailing dot.
fn plain(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether `name` is `domain` or below it.
fn under(name: &str, domain: &str) -> bool {
    name == domain
        || name
            .strip_suffix(domain)
            .is_some_and(|head| head.ends_with('.'))
}

/// The domain a label name lives in: `*.D` → `D`, `api.shop.test` → `shop.test`; `None` for a
/// single-label name (`api`), which has none of its own and is reached under the search
/// domain.
pub fn domain_of(name: &str) -> Option<String> {
    let name = plain(name);
    let domain = match name.strip_prefix("*.") {
        Some(below) => below,
        None => name.split_once('.')?.1,
    };
    (!domain.is_empty()).then(|| domain.to_string())
}

/// The domains to route for `names` (what labels claim, as `/label-names` lists them) beside
/// `routed` (the search domain and the declared ones, routed already): each name's
/// [`domain_of`], less those at or under a routed domain or under another label domain,
/// deduplicated, in name order; single-label domains that are not [`RESERVED_TLDS`] refused.
pub fn label_domains(routed: &[&str], names: &[String]) -> LabelDomains {
    let routed: Vec<String> = routed.iter().map(|d| plain(d)).collect();
    let mut wanted: std::collections::BTreeSet<String> = Default::default();
    let mut skipped: std::collections::BTreeMap<String, (SkipReason, Vec<String>)> =
        Default::default();
    let mut names: Vec<String> = names.iter().map(|n| plain(n)).collect();
    names.sort();
    names.dedup();
    for name in names {
        let Some(domain) = domain_of(&name) else {
            continue;
        };
        if routed.iter().any(|r| under(&domain, r)) {
            continue;
        }
        let why = if !domain.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        }) {
            Some(SkipReason::NotAName)
        } else if !domain.contains('.') && !RESERVED_TLDS.contains(&domain.as_str()) {
            Some(SkipReason::PublicTld)
        } else {
            None
        };
        match why {
            Some(why) => skipped
                .entry(domain)
                .or_insert((why, Vec::new()))
                .1
                .push(name),
            None => {
                wanted.insert(domain);
            }
        }
    }
    let domains = wanted
        .iter()
        .filter(|d| !wanted.iter().any(|other| *d != other && under(d, other)))
        .cloned()
        .collect();
    let skipped = skipped
        .into_iter()
        .map(|(domain, (why, names))| SkippedDomain { domain, names, why })
        .collect();
    LabelDomains { domains, skipped }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn a_label_name_s_domain_is_the_name_less_its_first_label() {
        assert_eq!(domain_of("api.shop.test").as_deref(), Some("shop.test"));
        assert_eq!(domain_of("API.Shop.Test.").as_deref(), Some("shop.test"));
        assert_eq!(domain_of("*.shop.test").as_deref(), Some("shop.test"));
        assert_eq!(domain_of("*.test").as_deref(), Some("test"));
        assert_eq!(domain_of("a.b.shop.test").as_deref(), Some("b.shop.test"));
        assert_eq!(domain_of("api"), None, "a single label has no domain");
        assert_eq!(domain_of("api."), None);
        assert_eq!(domain_of("*."), None);
    }

    #[test]
    fn label_domains_are_deduplicated_and_left_out_under_routed_ones() {
        let got = label_domains(
            &["docker", "Owned.Test."],
            &names(&[
                "web.shop.test",
                "*.shop.test",
                "api.shop.test.",
                "deep.api.shop.test", // under shop.test, a label domain
                "x.owned.test",       // under a declared domain
                "y.z.owned.test",
                "app.docker", // the search domain
                "single",     // no domain of its own
                "*.wild.test",
                "a.internal",
                "b.internal",
            ]),
        );
        assert_eq!(got.domains, ["internal", "shop.test", "wild.test"]);
        assert!(got.skipped.is_empty(), "{:?}", got.skipped);
        // The same whatever the order given.
        let again = label_domains(
            &["docker"],
            &names(&["*.wild.test", "b.internal", "api.shop.test", "a.internal"]),
        );
        assert_eq!(again.domains, ["internal", "shop.test", "wild.test"]);
        // A reserved top-level domain covers what is below it.
        let tld = label_domains(&["docker"], &names(&["api.shop.test", "x.test"]));
        assert_eq!(tld.domains, ["test"]);
        assert_eq!(
            label_domains(&["docker"], &[]),
            LabelDomains::default(),
            "nothing labelled, nothing added"
        );
    }

    #[test]
    fn a_public_top_level_domain_is_refused_and_said_why() {
        let got = label_domains(
            &["docker"],
            &names(&[
                "example.com",
                "www.example.com", // domain example.com: two labels, routed
                "other.com",
                "*.dev",
                "home.arpa", // domain arpa
                "x.home.arpa",
                "api.test",
                "h.localhost",
                "n.invalid",
                "e.example",
                "printer.local",
                "bad.na/me.test",
            ]),
        );
        assert_eq!(
            got.domains,
            [
                "example",
                "example.com",
                "home.arpa",
                "invalid",
                "local",
                "localhost",
                "test"
            ]
        );
        let skipped: Vec<(&str, &[String], SkipReason)> = got
            .skipped
            .iter()
            .map(|s| (s.domain.as_str(), s.names.as_slice(), s.why))
            .collect();
        assert_eq!(
            skipped,
            [
                ("arpa", &names(&["home.arpa"])[..], SkipReason::PublicTld),
                (
                    "com",
                    &names(&["example.com", "other.com"])[..],
                    SkipReason::PublicTld
                ),
                ("dev", &names(&["*.dev"])[..], SkipReason::PublicTld),
                (
                    "na/me.test",
                    &names(&["bad.na/me.test"])[..],
                    SkipReason::NotAName
                ),
            ]
        );
        let said = got.skipped[1].to_string();
        assert!(
            said.contains("`com`") && said.contains("example.com, other.com"),
            "{said}"
        );
        assert!(said.contains("public top-level domain"), "{said}");
        // A single-label domain declared in the config is the user's to route.
        assert!(
            label_domains(&["com"], &names(&["example.com"]))
                .skipped
                .is_empty()
        );
    }

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
