//! What the writer keeps of an endpoint once it is applied.
//!
//! An [`Endpoint`] as a source sends it carries its network and its container, which the
//! writer already keys it by (its network's map and its [`super::writer`] `Held` key), in
//! growable `String`s and `Vec`s. The writer keeps one of these per endpoint for as long as it
//! is held, so it keeps the rest only, in boxes sized to fit, behind one pointer, and what a
//! static endpoint lacks (aliases, IPv6, TTL, health, SRV, origins) behind a second that it
//! does not pay for: at 100,000 endpoints the whole `Endpoint` in the map's nodes cost 386
//! bytes each; this costs 48 and the map's share of a node. Nothing here decides an answer;
//! it is the writer's memory of what a source said.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use compact_str::CompactString;

use super::change::{Endpoint, NameOrigin, NameOrigins, SrvPort, distinct_names};

#[derive(Debug)]
pub(super) struct Kept {
    /// Inline up to 24 bytes (nearly every container's name): a `Box<str>` was an allocation
    /// of its own, 32 bytes of the allocator for a 6-byte name, 3.2 MB at 100,000 endpoints,
    /// and `Kept` stays in the 48-byte class either way.
    pub(super) name: CompactString,
    pub(super) ipv4: Option<Ipv4Addr>,
    /// Where `name` comes from, when the source said (a static endpoint's: the config).
    origin: Option<NameOrigin>,
    /// The rest, which a static endpoint (a name and an address) has none of, behind one
    /// pointer: with them inline every endpoint took 128 bytes of the allocator, 48 now.
    rare: Option<Box<Rare>>,
}

#[derive(Debug, Default, PartialEq)]
struct Rare {
    aliases: Box<[Box<str>]>,
    ipv6: Option<Ipv6Addr>,
    ttl: Option<u32>,
    out_of_rotation: Option<&'static str>,
    srv: Box<[SrvPort]>,
    origins: NameOrigins,
}

// With its header, one allocation of the allocator's 48-byte class per endpoint.
const _: () = assert!(std::mem::size_of::<Kept>() <= 40);

impl From<Endpoint> for Kept {
    fn from(endpoint: Endpoint) -> Kept {
        let origin = endpoint.origins.get(0);
        let rare = Rare {
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
            // `new` copies a short name inline; `From<String>` may keep the string's buffer.
            name: CompactString::new(&endpoint.name),
            ipv4: endpoint.ipv4,
            origin,
            rare: (rare != bare).then(|| Box::new(rare)),
        }
    }
}

impl Kept {
    fn all_names(&self) -> impl Iterator<Item = &str> {
        let aliases = self.rare.as_ref().map_or(&[][..], |r| &r.aliases[..]);
        std::iter::once(&*self.name).chain(aliases.iter().map(|a| &**a))
    }

    /// Every name it answers to, as [`Endpoint::names`].
    pub(super) fn names(&self) -> impl Iterator<Item = &str> {
        distinct_names(self.all_names())
    }

    /// As [`Endpoint::origin_of`].
    pub(super) fn origin_of(&self, key: &[u8]) -> Option<NameOrigin> {
        let origins = match &self.rare {
            Some(rare) => rare.origins,
            None => first_only(self.origin),
        };
        origins.of(self.all_names(), key)
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

    pub(super) fn addresses(&self) -> impl Iterator<Item = IpAddr> {
        self.ipv4
            .map(IpAddr::V4)
            .into_iter()
            .chain(self.ipv6().map(IpAddr::V6))
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
        assert_eq!(
            kept.names().collect::<Vec<_>>(),
            endpoint.names().collect::<Vec<_>>()
        );
        assert_eq!(kept.names().collect::<Vec<_>>(), ["Web", "api"]);
        assert!(
            !kept.name.is_heap_allocated(),
            "a short name is kept inline"
        );
        for name in ["web.", "api.", "other."] {
            assert_eq!(
                kept.origin_of(key(name).as_bytes()),
                endpoint.origin_of(key(name).as_bytes()),
                "{name}"
            );
        }
        assert_eq!(
            kept.origin_of(key("api.").as_bytes()),
            Some(NameOrigin::Label)
        );
        assert_eq!(
            kept.addresses().collect::<Vec<_>>(),
            endpoint.addresses().collect::<Vec<_>>()
        );
        assert!(!kept.in_rotation());
        assert_eq!((kept.ttl(), kept.srv()), (Some(5), &endpoint.srv[..]));
        assert!(kept.rare.is_some());
        let bare = Kept::from(Endpoint {
            aliases: Vec::new(),
            ipv6: None,
            ttl: None,
            out_of_rotation: None,
            srv: Vec::new(),
            origins: NameOrigins::default(),
            ..endpoint
        });
        assert!(bare.rare.is_none(), "a name and an address: nothing more");
        assert_eq!(bare.names().collect::<Vec<_>>(), ["Web"]);
        assert_eq!(
            bare.origin_of(key("web.").as_bytes()),
            Some(NameOrigin::Container)
        );
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
            from_config.origin_of(key("db.").as_bytes()),
            Some(NameOrigin::Config)
        );
        assert!(bare.in_rotation() && bare.ttl().is_none() && bare.srv().is_empty());
    }
}
