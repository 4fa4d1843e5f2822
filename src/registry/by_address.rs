//! What the index knows of one address: the asker it is and where its PTR name points.
//!
//! Both are keyed by the same address, and nearly every address has both (an endpoint's
//! address asks and is asked about), so they share one map: two maps cost a table slot each,
//! about 54 bytes an address apiece at 100,000 endpoints. The writer sets either half; an
//! address with neither leaves the map. Readers get a guard on the asker half (let go before
//! any `.await`) and a copy of the PTR half (one reference count). Nothing here decides who
//! sees what.
//!
//! IPv4 and IPv6 addresses are in maps of their own: an `IpAddr` key is 17 bytes, padded to
//! 24 beside the entry, where an `Ipv4Addr` is 4 (padded to 8): 16 bytes a slot, about 2 MB
//! at 100,000 endpoints, nearly all IPv4.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    ops::Deref,
};

use dashmap::{Entry, mapref::one::MappedRef};

use hickory_server::proto::rr::Name;

use super::{Client, NetId, ReadMap, ptr_targets::PtrTargets};

/// Opaque outside: readers reach it through [`ByAddress::client`]'s guard and
/// [`ByAddress::ptr`]'s copy.
#[derive(Debug, Default)]
pub(super) struct Known {
    client: Option<Client>,
    /// Empty: none (an `Option` around it would cost 8 bytes a slot).
    ptr: PtrTargets,
}

// A slot is this and an `Ipv4Addr`, padded: 40 bytes.
const _: () = assert!(std::mem::size_of::<Known>() == 32);

#[derive(Default)]
pub(super) struct ByAddress {
    v4: ReadMap<Ipv4Addr, Known>,
    v6: ReadMap<Ipv6Addr, Known>,
}

/// A guard on one half of an address's entry, from either family's map.
pub(super) enum Half<'a, T> {
    V4(MappedRef<'a, Ipv4Addr, Known, T>),
    V6(MappedRef<'a, Ipv6Addr, Known, T>),
}

impl<T> Half<'_, T> {
    pub(super) fn value(&self) -> &T {
        match self {
            Half::V4(half) => half.value(),
            Half::V6(half) => half.value(),
        }
    }
}

impl<T> Deref for Half<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.value()
    }
}

impl ByAddress {
    /// The asker `ip` is, if a source published it as one.
    #[inline(always)] // on every question
    pub(super) fn client(&self, ip: &IpAddr) -> Option<Half<'_, Client>> {
        match ip {
            IpAddr::V4(ip) => (self.v4.get(ip)?.try_map(|k| k.client.as_ref()).ok()).map(Half::V4),
            IpAddr::V6(ip) => (self.v6.get(ip)?.try_map(|k| k.client.as_ref()).ok()).map(Half::V6),
        }
    }

    pub(super) fn has_client(&self, ip: &IpAddr) -> bool {
        self.read(ip, |k| k.client.is_some()).unwrap_or(false)
    }

    /// The first PTR target of `ip` on a network `sees` lets through that `name` makes a name
    /// of (from the network and the endpoint's own labels), read in place (a copy of the
    /// targets allocates when they are longer than 15 bytes).
    pub(super) fn find_ptr(
        &self,
        ip: &IpAddr,
        sees: impl Fn(NetId) -> bool,
        name: impl FnMut(NetId, &[u8]) -> Option<Name>,
    ) -> Option<Name> {
        self.read(ip, |k| k.ptr.find(sees, name)).flatten()
    }

    /// Where the PTR name of `ip` points, if it has one.
    pub(super) fn ptr(&self, ip: &IpAddr) -> Option<PtrTargets> {
        self.read(ip, |k| (!k.ptr.is_empty()).then(|| k.ptr.clone()))
            .flatten()
    }

    fn read<R>(&self, ip: &IpAddr, f: impl FnOnce(&Known) -> R) -> Option<R> {
        match ip {
            IpAddr::V4(ip) => self.v4.get(ip).map(|k| f(&k)),
            IpAddr::V6(ip) => self.v6.get(ip).map(|k| f(&k)),
        }
    }

    pub(super) fn set_client(&self, ip: IpAddr, client: Option<Client>) {
        self.set(ip, |k| k.client = client);
    }

    pub(super) fn set_ptr(&self, ip: IpAddr, ptr: Option<PtrTargets>) {
        self.set(ip, |k| k.ptr = ptr.unwrap_or_default());
    }

    fn set(&self, ip: IpAddr, change: impl FnOnce(&mut Known)) {
        match ip {
            IpAddr::V4(ip) => set(&self.v4, ip, change),
            IpAddr::V6(ip) => set(&self.v6, ip, change),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }
}

fn set<K: Eq + std::hash::Hash>(map: &ReadMap<K, Known>, ip: K, change: impl FnOnce(&mut Known)) {
    match map.entry(ip) {
        Entry::Occupied(mut entry) => {
            change(entry.get_mut());
            if entry.get().client.is_none() && entry.get().ptr.is_empty() {
                entry.remove();
            }
        }
        Entry::Vacant(entry) => {
            let mut known = Known::default();
            change(&mut known);
            if known.client.is_some() || !known.ptr.is_empty() {
                entry.insert(known);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{NetId, View};
    use hickory_server::proto::rr::Name;
    use std::sync::Arc;

    #[test]
    fn either_half_alone_and_the_address_goes_with_both() {
        let map = ByAddress::default();
        let ip: IpAddr = "10.0.0.2".parse().unwrap();
        let client = Client {
            view: Arc::new(View::All),
            container: 7,
        };
        let name = Name::from_ascii("web.net.").unwrap();
        let ptr = PtrTargets::new([(NetId(1), &name)].into_iter());
        map.set_ptr(ip, ptr);
        assert!(!map.has_client(&ip) && map.client(&ip).is_none());
        assert!(map.ptr(&ip).is_some());
        map.set_client(ip, Some(client));
        assert_eq!(map.client(&ip).map(|c| c.value().container), Some(7));
        map.set_ptr(ip, None);
        assert!(map.ptr(&ip).is_none() && map.has_client(&ip));
        map.set_client(ip, None);
        assert_eq!(map.len(), 0, "neither half: gone");
        map.set_client(ip, None);
        assert_eq!(map.len(), 0, "nothing to keep: nothing inserted");
    }

    #[test]
    fn an_ipv6_address_has_its_own_entry_beside_an_ipv4_one() {
        let map = ByAddress::default();
        let v4: IpAddr = "10.0.0.2".parse().unwrap();
        let v6: IpAddr = "fd00::2".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.0.0.2".parse().unwrap();
        let client = |container| Client {
            view: Arc::new(View::All),
            container,
        };
        map.set_client(v4, Some(client(4)));
        map.set_client(v6, Some(client(6)));
        let name = Name::from_ascii("db.net.").unwrap();
        map.set_ptr(v6, PtrTargets::new([(NetId(2), &name)].into_iter()));
        assert_eq!(map.client(&v4).map(|c| c.container), Some(4));
        assert_eq!(map.client(&v6).map(|c| c.container), Some(6));
        assert!(map.ptr(&v6).is_some() && map.ptr(&v4).is_none());
        assert!(
            !map.has_client(&mapped),
            "a mapped address is not its IPv4 one"
        );
        map.set_client(v6, None);
        map.set_ptr(v6, None);
        assert_eq!(map.len(), 1, "the IPv6 entry gone, the IPv4 one kept");
    }
}
