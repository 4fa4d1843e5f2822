//! What the writer keeps of an endpoint once it is applied.
//!
//! An [`Endpoint`] as a source sends it carries its network and its container, which the
//! writer already keys it by (its network's map and its [`super::writer`] `Held` key), in
//! growable `String`s and `Vec`s. The writer keeps one of these per endpoint for as long as it
//! is held, so it keeps the rest only, in boxes sized to fit, behind one pointer: at 100,000
//! endpoints the whole `Endpoint` in the map's nodes cost 386 bytes each. Nothing here
//! decides an answer; it is the writer's memory of what a source said.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::change::{Endpoint, NameOrigin, NameOrigins, SrvPort, distinct_names};

#[derive(Debug)]
pub(super) struct Kept {
    pub(super) name: Box<str>,
    aliases: Box<[Box<str>]>,
    pub(super) ipv4: Option<Ipv4Addr>,
    pub(super) ipv6: Option<Ipv6Addr>,
    pub(super) ttl: Option<u32>,
    pub(super) out_of_rotation: Option<&'static str>,
    pub(super) srv: Box<[SrvPort]>,
    origins: NameOrigins,
}

// One allocation of the allocator's 128-byte class per endpoint (with its header).
const _: () = assert!(std::mem::size_of::<Kept>() <= 112);

impl From<Endpoint> for Kept {
    fn from(endpoint: Endpoint) -> Kept {
        Kept {
            name: endpoint.name.into_boxed_str(),
            aliases: endpoint
                .aliases
                .into_iter()
                .map(String::into_boxed_str)
                .collect(),
            ipv4: endpoint.ipv4,
            ipv6: endpoint.ipv6,
            ttl: endpoint.ttl,
            out_of_rotation: endpoint.out_of_rotation,
            srv: endpoint.srv.into_boxed_slice(),
            origins: endpoint.origins,
        }
    }
}

impl Kept {
    fn all_names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(&*self.name).chain(self.aliases.iter().map(|a| &**a))
    }

    /// Every name it answers to, as [`Endpoint::names`].
    pub(super) fn names(&self) -> impl Iterator<Item = &str> {
        distinct_names(self.all_names())
    }

    /// As [`Endpoint::origin_of`].
    pub(super) fn origin_of(&self, key: &[u8]) -> Option<NameOrigin> {
        self.origins.of(self.all_names(), key)
    }

    pub(super) fn in_rotation(&self) -> bool {
        self.out_of_rotation.is_none()
    }

    pub(super) fn addresses(&self) -> impl Iterator<Item = IpAddr> {
        self.ipv4
            .map(IpAddr::V4)
            .into_iter()
            .chain(self.ipv6.map(IpAddr::V6))
    }
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
        assert_eq!((kept.ttl, &*kept.srv), (Some(5), &endpoint.srv[..]));
    }
}
