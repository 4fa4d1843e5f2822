//! The writer's table of which endpoints hold each address, for the PTR names it publishes.
//!
//! Nearly every address has one holder, and nearly every one is IPv4: such an address is a
//! 16-byte slot (the address, the network's handle and the endpoint's key), in a map of its
//! own. An address with more (a static entry beside a container at the same address, an
//! address reused before its old holder's removal arrived), and every IPv6 address, is in a
//! general map of small sets. One map of sets for all cost a 24-byte slot an address, ~1 MB
//! more at 100,000 endpoints. Layout only: what the holders mean is the writer's.

use std::{
    borrow::Borrow,
    collections::HashSet,
    hash::{Hash, Hasher},
    net::{IpAddr, Ipv4Addr},
};

use super::{NetId, held::Held, ip_map::IpMap, small_map::SmallSet};

/// An endpoint that holds an address: its network and its key.
pub(super) type Source = (NetId, Held);

/// An IPv4 address with its one holder, in 16 bytes: as a map's key and value, the address and
/// `(NetId, Held)` (padded to 16) made a 24-byte slot. Compared and hashed as the address
/// alone, so that the set is looked up by it.
struct Lone {
    held: Held,
    ip: Ipv4Addr,
    network: NetId,
}

const _: () = assert!(std::mem::size_of::<Lone>() == 16);

impl Lone {
    fn is(&self, source: &Source) -> bool {
        (self.network, &self.held) == (source.0, &source.1)
    }
}

impl PartialEq for Lone {
    fn eq(&self, other: &Lone) -> bool {
        self.ip == other.ip
    }
}

impl Eq for Lone {}

impl Hash for Lone {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.ip.hash(state)
    }
}

impl Borrow<Ipv4Addr> for Lone {
    fn borrow(&self) -> &Ipv4Addr {
        &self.ip
    }
}

#[derive(Default)]
pub(super) struct PtrSources {
    /// IPv4 addresses with exactly one holder.
    lone: HashSet<Lone>,
    /// Every other address with a holder: IPv4 with two or more, IPv6 with any.
    shared: IpMap<SmallSet<Source>>,
}

impl PtrSources {
    /// `ip`'s holders, in order.
    pub(super) fn holders(&self, ip: &IpAddr) -> impl Iterator<Item = (NetId, &Held)> {
        let lone = match ip {
            IpAddr::V4(v4) => self.lone.get(v4).map(|one| (one.network, &one.held)),
            IpAddr::V6(_) => None,
        };
        let shared = (self.shared.get(ip).into_iter())
            .flat_map(|set| set.keys())
            .map(|(network, held)| (*network, held));
        lone.into_iter().chain(shared)
    }

    /// How many (address, holder) pairs are kept.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.lone.len() + self.shared.values().map(|set| set.len()).sum::<usize>()
    }

    pub(super) fn insert(&mut self, ip: IpAddr, source: Source) {
        if let IpAddr::V4(v4) = ip
            && self.shared.get(&ip).is_none()
        {
            match self.lone.take(&v4) {
                Some(first) if !first.is(&source) => {
                    // A second holder: both to the shared map.
                    self.shared
                        .or_default(ip)
                        .insert((first.network, first.held), ());
                }
                _ => {
                    let (network, held) = source;
                    self.lone.insert(Lone {
                        held,
                        ip: v4,
                        network,
                    });
                    return;
                }
            }
        }
        self.shared.or_default(ip).insert(source, ());
    }

    pub(super) fn remove(&mut self, ip: &IpAddr, source: &Source) {
        if let IpAddr::V4(v4) = ip
            && self.lone.get(v4).is_some_and(|one| one.is(source))
        {
            self.lone.remove(v4);
            return;
        }
        let Some(set) = self.shared.get_mut(ip) else {
            return;
        };
        set.remove(source);
        match (ip, set.len()) {
            (_, 0) => {
                self.shared.remove(ip);
            }
            // One left of an IPv4 address: back to its own slot.
            (IpAddr::V4(v4), 1) => {
                let left = self.shared.remove(ip);
                if let Some((network, held)) = left.and_then(|set| set.keys().next().cloned()) {
                    self.lone.insert(Lone {
                        held,
                        ip: *v4,
                        network,
                    });
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holders(sources: &PtrSources, ip: &IpAddr) -> Vec<(u32, String)> {
        sources
            .holders(ip)
            .map(|(network, held)| (network.0, held.container().to_string()))
            .collect()
    }

    #[test]
    fn one_holder_in_its_own_slot_more_shared_and_back() {
        let mut sources = PtrSources::default();
        let v4: IpAddr = "10.0.0.2".parse().unwrap();
        let v6: IpAddr = "fd00::2".parse().unwrap();
        let a = (NetId(1), Held::new(0, "a"));
        let b = (NetId(2), Held::new(1, "b"));
        sources.insert(v4, a.clone());
        sources.insert(v4, a.clone());
        assert_eq!(holders(&sources, &v4), [(1, "a".to_string())]);
        assert_eq!(
            (sources.lone.len(), sources.shared.get(&v4).is_some()),
            (1, false)
        );

        sources.insert(v4, b.clone());
        assert_eq!(
            holders(&sources, &v4),
            [(1, "a".to_string()), (2, "b".to_string())]
        );
        assert!(sources.lone.is_empty(), "two holders are shared");

        sources.remove(&v4, &a);
        assert_eq!(holders(&sources, &v4), [(2, "b".to_string())]);
        assert!(sources.shared.get(&v4).is_none() && sources.lone.len() == 1);
        sources.remove(&v4, &a);
        assert_eq!(
            holders(&sources, &v4).len(),
            1,
            "removing a non-holder changes nothing"
        );
        sources.remove(&v4, &b);
        assert!(holders(&sources, &v4).is_empty() && sources.lone.is_empty());

        sources.insert(v6, b.clone());
        assert_eq!(holders(&sources, &v6), [(2, "b".to_string())]);
        assert!(sources.lone.is_empty(), "IPv6 is in the shared map");
        sources.remove(&v6, &b);
        assert!(holders(&sources, &v6).is_empty() && sources.shared.get(&v6).is_none());
    }
}
