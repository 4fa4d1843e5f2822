//! The vocabulary sources speak to the registry: small `Change` values.
//!
//! A source (static file, Docker, Swarm) turns what it sees into these and hands them to
//! [`super::Registry::apply`] under its [`Owner`]. Nothing here reads or writes the registry's
//! maps.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The source a change comes from. Every endpoint, network claim, internal mark and nameless
/// asker address in the registry belongs to exactly one owner, and only that owner's changes
/// can replace or remove it: a static network dropped on reload takes the file's endpoints
/// with it and leaves a same-named Docker network's alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Owner(pub &'static str);

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// One container's presence on one network, with every name it answers to there.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// Network name, as the engine or the config spells it.
    pub network: String,
    /// The asker this endpoint belongs to. Endpoints that share it see each other's networks.
    pub container: String,
    /// Primary name (container name); PTR answers point at `name.network`.
    pub name: String,
    /// Further names: network aliases, hostname, short ID.
    pub aliases: Vec<String>,
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6: Option<Ipv6Addr>,
    /// TTL for this endpoint's records; `None` uses the server's.
    pub ttl: Option<u32>,
    /// Why its addresses are not handed out (unhealthy, paused, …); `None` when they are. An
    /// endpoint out of rotation still has its PTR and its view as an asker, and `/records`
    /// lists it with the reason; it is just not an answer.
    pub out_of_rotation: Option<&'static str>,
    /// The service ports it offers, served as SRV `_SERVICE._PROTO.NAME` for each of its names.
    pub srv: Vec<SrvPort>,
    /// Where each name comes from: position 0 is `name`'s, `1 + i` is `aliases[i]`'s.
    /// Unsaid, `name` is a [`NameOrigin::Container`] and an alias an [`NameOrigin::Alias`]: a
    /// source that says nothing more costs nothing.
    pub origins: NameOrigins,
}

/// Where each of an endpoint's names comes from, by position (0: its name, `1 + i`: alias
/// `i`), three bits each, inline: 16 bytes and no allocation per endpoint (a boxed slice
/// cost a 32-byte allocation besides). Positions past [`NameOrigins::MAX`] are unsaid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NameOrigins(u128);

impl NameOrigins {
    /// The positions it can say.
    pub const MAX: usize = 42;

    /// Position `at` comes from `origin` (past [`Self::MAX`]: unsaid).
    pub fn set(&mut self, at: usize, origin: NameOrigin) {
        if at < Self::MAX {
            let code = (origin as u8).trailing_zeros() as u128 + 1;
            self.0 = (self.0 & !(0b111 << (3 * at))) | (code << (3 * at));
        }
    }

    /// Every one of the first `count` positions from `origin`.
    pub fn all(origin: NameOrigin, count: usize) -> NameOrigins {
        let mut origins = NameOrigins::default();
        for at in 0..count {
            origins.set(at, origin);
        }
        origins
    }

    /// Where position `at` comes from, said or not: unsaid, position 0 (the name) is a
    /// [`NameOrigin::Container`] and any other (an alias) a [`NameOrigin::Alias`].
    pub fn at(self, at: usize) -> NameOrigin {
        match self.get(at) {
            Some(origin) => origin,
            None if at == 0 => NameOrigin::Container,
            None => NameOrigin::Alias,
        }
    }

    /// The origin of the name whose key is `key` among `names` (the name, then the aliases),
    /// if one is it; allocates nothing.
    pub fn of<'a>(self, names: impl Iterator<Item = &'a str>, key: &[u8]) -> Option<NameOrigin> {
        let mut names = names;
        names
            .position(|n| text_matches_key(n, key))
            .map(|at| self.at(at))
    }

    /// Where position `at` comes from, if said.
    pub fn get(self, at: usize) -> Option<NameOrigin> {
        if at >= Self::MAX {
            return None;
        }
        match (self.0 >> (3 * at)) & 0b111 {
            1 => Some(NameOrigin::Container),
            2 => Some(NameOrigin::Alias),
            3 => Some(NameOrigin::Label),
            4 => Some(NameOrigin::Compose),
            5 => Some(NameOrigin::Config),
            6 => Some(NameOrigin::Cname),
            _ => None,
        }
    }
}

/// Where a name an endpoint or a static record answers to comes from (for `explain`,
/// `/records` and the query log; answers never look at it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum NameOrigin {
    /// The container's (or task's, or service's) own name.
    Container = 1,
    /// A network alias, the hostname, the short ID, `tasks.SERVICE`.
    Alias = 2,
    /// A `netalias.names` label.
    Label = 4,
    /// Compose's `SERVICE.PROJECT`.
    Compose = 8,
    /// The config file: a static endpoint's name or alias, or a static A/AAAA/TXT record.
    Config = 16,
    /// A static CNAME record.
    Cname = 32,
}

impl NameOrigin {
    /// How `explain`, `/records` and the query log name it.
    pub fn word(self) -> &'static str {
        match self {
            NameOrigin::Container => "container name",
            NameOrigin::Alias => "alias",
            NameOrigin::Label => "label",
            NameOrigin::Compose => "compose",
            NameOrigin::Config => "config",
            NameOrigin::Cname => "CNAME",
        }
    }
}

/// A set of [`NameOrigin`]s, and whether the name is a wildcard (`*.D`): one byte, kept in
/// each published record set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Origins(u8);

const WILDCARD_BIT: u8 = 64;

impl Origins {
    pub fn with(self, origin: NameOrigin) -> Origins {
        Origins(self.0 | origin as u8)
    }
    pub fn wildcard(self) -> Origins {
        Origins(self.0 | WILDCARD_BIT)
    }
    pub fn is_wildcard(self) -> bool {
        self.0 & WILDCARD_BIT != 0
    }
    pub fn contains(self, origin: NameOrigin) -> bool {
        self.0 & origin as u8 != 0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// The origins as words, `wildcard` last when it is one (`label, wildcard`); empty when
    /// none is known.
    pub fn words(self) -> String {
        let mut words: Vec<&str> = self.iter().map(NameOrigin::word).collect();
        if self.is_wildcard() {
            words.push("wildcard");
        }
        words.join(", ")
    }

    /// The origins held, in the enum's order.
    pub fn iter(self) -> impl Iterator<Item = NameOrigin> {
        [
            NameOrigin::Container,
            NameOrigin::Alias,
            NameOrigin::Label,
            NameOrigin::Compose,
            NameOrigin::Config,
            NameOrigin::Cname,
        ]
        .into_iter()
        .filter(move |o| self.contains(*o))
    }
}

/// Records a config declares under a name beside the containers (`[networks.N.records]`):
/// addresses, TXT strings, or a CNAME (which then is all the name has, RFC 1034 3.6.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct NameData {
    pub v4: Vec<Ipv4Addr>,
    pub v6: Vec<Ipv6Addr>,
    /// One TXT record's character-strings, each at most 255 octets; empty: no TXT.
    pub txt: Vec<Vec<u8>>,
    /// The canonical name this one is an alias for.
    pub cname: Option<String>,
}

/// A transport an SRV record names (RFC 2782 `_PROTO`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SrvProto {
    Tcp,
    Udp,
}

impl SrvProto {
    /// The label as it appears in a name, without its underscore.
    pub fn label(self) -> &'static str {
        match self {
            SrvProto::Tcp => "tcp",
            SrvProto::Udp => "udp",
        }
    }

    /// `tcp` / `udp`, any case.
    pub fn from_label(label: &str) -> Option<SrvProto> {
        if label.eq_ignore_ascii_case("tcp") {
            Some(SrvProto::Tcp)
        } else if label.eq_ignore_ascii_case("udp") {
            Some(SrvProto::Udp)
        } else {
            None
        }
    }
}

/// One port an endpoint offers as a named service: `_SERVICE._PROTO.NAME` SRV (RFC 2782; named
/// as the Kubernetes DNS specification names them).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SrvPort {
    /// The service name without its underscore (`http`), lower case.
    pub service: String,
    pub proto: SrvProto,
    pub port: u16,
    /// RFC 2782 weight among the members that offer the service.
    pub weight: u16,
}

/// The weight of a member whose source sets none: all members equal.
pub const DEFAULT_SRV_WEIGHT: u16 = 1;

impl SrvPort {
    /// A service name as RFC 6335 5.1 allows it (1 to 15 letters, digits and hyphens, a letter
    /// among them, no hyphen at either end or twice in a row), lower-cased; `None` otherwise.
    pub fn service_name(text: &str) -> Option<String> {
        let bytes = text.as_bytes();
        let ok = (1..=15).contains(&bytes.len())
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
            && bytes.iter().any(u8::is_ascii_alphabetic)
            && !text.starts_with('-')
            && !text.ends_with('-')
            && !text.contains("--");
        ok.then(|| text.to_ascii_lowercase())
    }

    /// `PORT`, `PORT/tcp` or `PORT/udp` (TCP when unsaid), as labels and config spell a port.
    pub fn parse_port(text: &str) -> Option<(u16, SrvProto)> {
        let (port, proto) = match text.trim().split_once('/') {
            Some((port, proto)) => (port, SrvProto::from_label(proto)?),
            None => (text.trim(), SrvProto::Tcp),
        };
        let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
        Some((port, proto))
    }
}

impl Endpoint {
    /// Every name the endpoint answers to, primary first, without duplicates (case-insensitive).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        distinct_names(
            std::iter::once(self.name.as_str()).chain(self.aliases.iter().map(String::as_str)),
        )
    }

    /// Where the `i`-th of [`Endpoint::names`]'s sources comes from: 0 is `name`, `1 + i`
    /// is `aliases[i]`.
    pub fn origin(&self, at: usize) -> NameOrigin {
        self.origins.at(at)
    }

    /// The origin of the name whose key is `key` (wire-format labels, lower case), if the
    /// endpoint answers to it; allocates nothing.
    pub fn origin_of(&self, key: &[u8]) -> Option<NameOrigin> {
        self.origins.of(
            std::iter::once(self.name.as_str()).chain(self.aliases.iter().map(String::as_str)),
            key,
        )
    }

    /// Whether its addresses are handed out.
    pub fn in_rotation(&self) -> bool {
        self.out_of_rotation.is_none()
    }

    pub fn addresses(&self) -> impl Iterator<Item = IpAddr> {
        self.ipv4
            .map(IpAddr::V4)
            .into_iter()
            .chain(self.ipv6.map(IpAddr::V6))
    }
}

/// What happened in the outside world, in the registry's terms. Each is applied for one
/// [`Owner`], and touches only what that owner published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The owner holds this network (idempotent). A network exists while any owner holds it.
    NetworkUp { network: String },
    /// The owner no longer holds the network: its endpoints there are gone, other owners'
    /// stay, and the network goes only when no owner holds it.
    NetworkDown { network: String },
    /// An endpoint appeared or changed; replaces any earlier one the owner published for the
    /// same container on that network. Holds the network for the owner.
    EndpointUp(Endpoint),
    /// A container left a network.
    EndpointDown { network: String, container: String },
    /// Whether the owner marks a network internal (Docker `--internal`): its containers are
    /// never forwarded for. It is internal while any owner marks it so.
    NetworkInternal { network: String, internal: bool },
    /// The host's addresses on a network (its gateways), which the host name answers to the
    /// network's containers ([`crate::registry::Registry::set_host_name`]). Empty: none.
    /// Holds the network for the owner.
    NetworkGateways {
        network: String,
        gateways: Vec<IpAddr>,
    },
    /// Static records under `name` on `network` (`None` removes the owner's). Holds the
    /// network for the owner.
    NameData {
        network: String,
        name: String,
        data: Option<NameData>,
    },
    /// Further addresses a container asks from, without names there (Docker's default bridge,
    /// Swarm's `docker_gwbridge`): an asker there sees the container's own networks (whichever
    /// owner published them), and is a known container (it may be forwarded for). Replaces the
    /// owner's earlier set for the container; empty removes it.
    AskerAddresses {
        container: String,
        addresses: Vec<IpAddr>,
    },
}

/// `names` without the empty and the repeated ones (ignoring case and a trailing dot), in order.
pub fn distinct_names<'a>(names: impl Iterator<Item = &'a str>) -> impl Iterator<Item = &'a str> {
    let mut seen: Vec<String> = Vec::new();
    names.filter(move |n| {
        let lower = n.trim_end_matches('.').to_ascii_lowercase();
        if lower.is_empty() || seen.contains(&lower) {
            false
        } else {
            seen.push(lower);
            true
        }
    })
}

/// Whether dotted `text` (a trailing dot or not) is the name whose key is `key`, ignoring
/// ASCII case; allocates nothing.
pub fn text_matches_key(text: &str, key: &[u8]) -> bool {
    let text = text.trim_end_matches('.');
    let mut rest = key;
    for label in text.split('.') {
        let Some((&len, tail)) = rest.split_first() else {
            return false;
        };
        let len = usize::from(len);
        if len != label.len()
            || tail.len() < len
            || !tail[..len].eq_ignore_ascii_case(label.as_bytes())
        {
            return false;
        }
        rest = &tail[len..];
    }
    rest.is_empty() && !text.is_empty()
}
