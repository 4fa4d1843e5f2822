//! What the writer keeps of an endpoint once it is applied.
//!
//! An [`Endpoint`] as a source sends it carries its network and its container, which the
//! writer already keys it by (its network's map and its [`super::writer`] `Held` key), in
//! growable `String`s and `Vec`s. The writer keeps one of these per endpoint for as long as it
//! is held, inline in its map: an address and where the name comes from in 16 bytes, and what
//! a static endpoint lacks (a name other than its container's, aliases, IPv6, TTL, health,
//! SRV, origins) behind one pointer that it does not pay for. At 100,000 endpoints the whole
//! `Endpoint` in the map's nodes cost 386 bytes each; a boxed `Kept` with its name inline cost
//! 48 bytes of the allocator and 16 of the map's slot. Nothing here decides an answer; it is
//! the writer's memory of what a source said.

use std::{
    borrow::Cow,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use compact_str::CompactString;

use super::change::{Endpoint, NameOrigin, NameOrigins, SrvPort, distinct_names};

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Kept {
    pub(super) ipv4: Option<Ipv4Addr>,
    /// Where the name comes from, when the source said (a static endpoint's: the config).
    origin: Option<NameOrigin>,
    /// The rest, which a static endpoint (a name, the same as its container's, and an address)
    /// has none of.
    rare: Option<Box<Rare>>,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Rare {
    /// The endpoint's name, when it is not its container's (a Docker container's is its ID):
    /// inline up to 24 bytes, as nearly every container's name is. A `Box<str>` was a 32-byte
    /// chunk of its own and put this box in glibc's 128-byte class; inline, it is in the 144:
    /// 16 bytes an endpoint less.
    name: Option<CompactString>,
    aliases: Box<[Box<str>]>,
    ipv6: Option<Ipv6Addr>,
    ttl: Option<u32>,
    out_of_rotation: Option<&'static str>,
    srv: Box<[SrvPort]>,
    origins: NameOrigins,
}

// A Docker endpoint's rare part, its name inline: glibc's 144-byte class.
const _: () = assert!(std::mem::size_of::<Rare>() <= 128);

// Inline in the writer's map of endpoints, with its network's handle in a 24-byte slot: boxed,
// with its name inline, it cost a 48-byte chunk of the allocator an endpoint, ~37 bytes more
// at 100,000 than the 8 it adds to the slot.
const _: () = assert!(std::mem::size_of::<Kept>() <= 16);

impl From<Endpoint> for Kept {
    fn from(endpoint: Endpoint) -> Kept {
        let origin = endpoint.origins.get(0);
        let rare = Rare {
            // `new` copies a short name inline; `From<String>` may keep the string's buffer.
            name: (endpoint.name != endpoint.container).then(|| CompactString::new(&endpoint.name)),
            aliases: endpoint
                .aliases
                .into_iter()
                .map(String::into_boxed_str)
                .collect(),
            ipv6: endpoint.ipv6,
            ttl: endpoint.ttl,
            out_of_rotation: endpoint.out_of_rotation,
            srv: endpoint.srv.into_boxed_slice(),
            origins: endpoint.origins,
        };
        // The name's origin is kept beside it; the rest of the origins only with the aliases.
        let bare = Rare {
            origins: first_only(origin),
            ..Rare::default()
        };
        Kept {
            ipv4: endpoint.ipv4,
            origin,
            rare: (rare != bare).then(|| Box::new(rare)),
        }
    }
}

impl Kept {
    /// With its container's name (the writer's key), which names it when it has none of its own.
    pub(super) fn of<'a>(&'a self, container: &'a str) -> Named<'a> {
        Named {
            kept: Cow::Borrowed(self),
            container,
        }
    }

    /// A plain endpoint: its container's name and one IPv4 address, nothing else.
    pub(super) fn plain(ipv4: Ipv4Addr, origin: Option<NameOrigin>) -> Kept {
        Kept {
            ipv4: Some(ipv4),
            origin,
            rare: None,
        }
    }

    /// [`Kept::plain`], owning `container`'s name for the caller.
    pub(super) fn plain_of(self, container: &str) -> Named<'_> {
        Named {
            kept: Cow::Owned(self),
            container,
        }
    }

    /// Whether it is one [`Kept::plain`] makes: all its name's record set can say of it.
    pub(super) fn is_plain(&self) -> bool {
        self.rare.is_none() && self.ipv4.is_some()
    }

    pub(super) fn ipv6(&self) -> Option<Ipv6Addr> {
        self.rare.as_ref().and_then(|r| r.ipv6)
    }

    pub(super) fn ttl(&self) -> Option<u32> {
        self.rare.as_ref().and_then(|r| r.ttl)
    }

    /// Why its addresses are not handed out, if they are not.
    pub(super) fn out_of_rotation(&self) -> Option<&'static str> {
        self.rare.as_ref().and_then(|r| r.out_of_rotation)
    }

    pub(super) fn srv(&self) -> &[SrvPort] {
        self.rare.as_ref().map_or(&[], |r| &r.srv)
    }

    pub(super) fn in_rotation(&self) -> bool {
        self.out_of_rotation().is_none()
    }

    pub(super) fn addresses(&self) -> impl Iterator<Item = IpAddr> + use<> {
        self.ipv4
            .map(IpAddr::V4)
            .into_iter()
            .chain(self.ipv6().map(IpAddr::V6))
    }
}

/// A kept endpoint and its container: what it knows of its names. The writer's own, or a
/// plain one read off its name's record set (owned: it is kept nowhere).
#[derive(Debug, Clone)]
pub(super) struct Named<'a> {
    kept: Cow<'a, Kept>,
    container: &'a str,
}

impl std::ops::Deref for Named<'_> {
    type Target = Kept;
    fn deref(&self) -> &Kept {
        &self.kept
    }
}

impl<'a> Named<'a> {
    /// What it has beyond a plain endpoint's (an owned one has nothing).
    fn rare(&self) -> Option<&'a Rare> {
        match self.kept {
            Cow::Borrowed(kept) => kept.rare.as_deref(),
            Cow::Owned(_) => None,
        }
    }

    /// Its name: its own, or its container's.
    pub(super) fn name(&self) -> &'a str {
        let own = self.rare().and_then(|r| r.name.as_deref());
        own.unwrap_or(self.container)
    }

    fn all_names(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        let aliases = self.rare().map_or(&[][..], |r| &r.aliases[..]);
        std::iter::once(self.name()).chain(aliases.iter().map(|a| &**a))
    }

    /// Every name it answers to, as [`Endpoint::names`].
    pub(super) fn names(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        distinct_names(self.all_names())
    }

    /// The endpoint as its source sent it, on `network`: nothing is lost in a [`Kept`], so a
    /// source can diff against what the registry holds instead of keeping a copy of its own.
    pub(super) fn to_endpoint(&self, network: &str) -> Endpoint {
        let kept = &*self.kept;
        let rare = kept.rare.as_deref();
        Endpoint {
            network: network.to_string(),
            container: self.container.to_string(),
            name: self.name().to_string(),
            aliases: rare.map_or_else(Vec::new, |r| {
                r.aliases.iter().map(|a| a.to_string()).collect()
            }),
            ipv4: kept.ipv4,
            ipv6: kept.ipv6(),
            ttl: kept.ttl(),
            out_of_rotation: kept.out_of_rotation(),
            srv: kept.srv().to_vec(),
            origins: rare.map_or_else(|| first_only(kept.origin), |r| r.origins),
        }
    }

    /// As [`Endpoint::origin_of`].
    pub(super) fn origin_of(&self, key: &[u8]) -> Option<NameOrigin> {
        let origins = match &self.kept.rare {
            Some(rare) => rare.origins,
            None => first_only(self.kept.origin),
        };
        origins.of(self.all_names(), key)
    }
}

/// Origins that say `origin` of the name alone.
fn first_only(origin: Option<NameOrigin>) -> NameOrigins {
    let mut origins = NameOrigins::default();
    if let Some(origin) = origin {
        origins.set(0, origin);
    }
    origins
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::NameKey;
    use hickory_server::proto::rr::{LowerName, Name};

    fn key(text: &str) -> NameKey {
        NameKey::new(&LowerName::from(Name::from_ascii(text).unwrap()))
    }

    #[test]
    fn kept_answers_as_the_endpoint_did() {
        let mut origins = NameOrigins::default();
        origins.set(2, NameOrigin::Label);
        let endpoint = Endpoint {
            network: "net".into(),
            container: "c1".into(),
            name: "Web".into(),
            aliases: vec!["web.".into(), "api".into(), "".into(), "API".into()],
            ipv4: Some(Ipv4Addr::new(10, 0, 0, 2)),
            ipv6: Some("fd00::2".parse().unwrap()),
            ttl: Some(5),
            out_of_rotation: Some("unhealthy"),
            srv: vec![SrvPort {
                service: "http".into(),
                proto: crate::registry::SrvProto::Tcp,
                port: 80,
                weight: 1,
            }],
            origins,
        };
        let kept = Kept::from(endpoint.clone());
        let named = kept.of(&endpoint.container);
        assert_eq!(
            named.names().collect::<Vec<_>>(),
            endpoint.names().collect::<Vec<_>>()
        );
        assert_eq!(named.names().collect::<Vec<_>>(), ["Web", "api"]);
        for name in ["web.", "api.", "other."] {
            assert_eq!(
                named.origin_of(key(name).as_bytes()),
                endpoint.origin_of(key(name).as_bytes()),
                "{name}"
            );
        }
        assert_eq!(
            named.origin_of(key("api.").as_bytes()),
            Some(NameOrigin::Label)
        );
        assert_eq!(
            kept.addresses().collect::<Vec<_>>(),
            endpoint.addresses().collect::<Vec<_>>()
        );
        assert!(!kept.in_rotation());
        assert_eq!((kept.ttl(), kept.srv()), (Some(5), &endpoint.srv[..]));
        assert!(kept.rare.is_some());
        // A name of its own that is not its container's is kept, and only then.
        let bare_sent = |container: &str| Endpoint {
            aliases: Vec::new(),
            ipv6: None,
            ttl: None,
            out_of_rotation: None,
            srv: Vec::new(),
            origins: NameOrigins::default(),
            container: container.into(),
            ..endpoint.clone()
        };
        let bare_in = |container: &str| Kept::from(bare_sent(container));
        let bare = bare_in("c1");
        assert!(bare.rare.is_some(), "a name that is not its container's");
        assert_eq!(bare.of("c1").names().collect::<Vec<_>>(), ["Web"]);
        assert_eq!(
            bare.of("c1").origin_of(key("web.").as_bytes()),
            Some(NameOrigin::Container)
        );
        let same = bare_in("Web");
        assert!(
            same.rare.is_none(),
            "its container's name and an address: nothing more"
        );
        assert_eq!(same.of("Web").names().collect::<Vec<_>>(), ["Web"]);
        // A static endpoint: its name's origin said, and nothing else.
        let from_config = Kept::from(Endpoint {
            network: "net".into(),
            container: "db".into(),
            name: "db".into(),
            aliases: Vec::new(),
            ipv4: Some(Ipv4Addr::new(10, 0, 0, 3)),
            ipv6: None,
            ttl: None,
            out_of_rotation: None,
            srv: Vec::new(),
            origins: NameOrigins::all(NameOrigin::Config, 1),
        });
        assert!(from_config.rare.is_none());
        assert_eq!(
            from_config.of("db").origin_of(key("db.").as_bytes()),
            Some(NameOrigin::Config)
        );
        assert!(bare.in_rotation() && bare.ttl().is_none() && bare.srv().is_empty());
        // Nothing is lost: each comes back as it was sent.
        assert_eq!(kept.of("c1").to_endpoint("net"), endpoint);
        assert_eq!(
            from_config.of("db").to_endpoint("net").origins,
            NameOrigins::all(NameOrigin::Config, 1)
        );
        for container in ["c1", "Web"] {
            let sent = bare_sent(container);
            assert_eq!(
                Kept::from(sent.clone()).of(container).to_endpoint("net"),
                sent
            );
        }
    }
}
