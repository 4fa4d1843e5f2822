//! What the index knows of one address: the asker it is and where its PTR name points.
//!
//! Both are keyed by the same address, and nearly every address has both (an endpoint's
//! address asks and is asked about), so they share one map: two maps cost a table slot each,
//! about 54 bytes an address apiece at 100,000 endpoints. The writer sets either half; an
//! address with neither leaves the map. Readers get a guard on the asker half (let go before
//! any `.await`) and a copy of the PTR half (one reference count). Nothing here decides who
//! sees what.

use std::net::IpAddr;

use dashmap::{Entry, mapref::one::MappedRef};

use super::{Client, ReadMap, ptr_targets::PtrTargets};

/// Opaque outside: readers reach it through [`ByAddress::client`]'s guard and
/// [`ByAddress::ptr`]'s copy.
#[derive(Debug, Default)]
pub(super) struct Known {
    client: Option<Client>,
    ptr: Option<PtrTargets>,
}

#[derive(Default)]
pub(super) struct ByAddress(ReadMap<IpAddr, Known>);

type Half<'a, T> = MappedRef<'a, IpAddr, Known, T>;

impl ByAddress {
    /// The asker `ip` is, if a source published it as one.
    #[inline(always)] // on every question
    pub(super) fn client(&self, ip: &IpAddr) -> Option<Half<'_, Client>> {
        self.0.get(ip)?.try_map(|k| k.client.as_ref()).ok()
    }

    pub(super) fn has_client(&self, ip: &IpAddr) -> bool {
        self.0.get(ip).is_some_and(|k| k.client.is_some())
    }

    /// Where the PTR name of `ip` points, if it has one.
    pub(super) fn ptr(&self, ip: &IpAddr) -> Option<PtrTargets> {
        self.0.get(ip)?.ptr.clone()
    }

    pub(super) fn set_client(&self, ip: IpAddr, client: Option<Client>) {
        self.set(ip, |k| k.client = client);
    }

    pub(super) fn set_ptr(&self, ip: IpAddr, ptr: Option<PtrTargets>) {
        self.set(ip, |k| k.ptr = ptr);
    }

    fn set(&self, ip: IpAddr, change: impl FnOnce(&mut Known)) {
        match self.0.entry(ip) {
            Entry::Occupied(mut entry) => {
                change(entry.get_mut());
                if entry.get().client.is_none() && entry.get().ptr.is_none() {
                    entry.remove();
                }
            }
            Entry::Vacant(entry) => {
                let mut known = Known::default();
                change(&mut known);
                if known.client.is_some() || known.ptr.is_some() {
                    entry.insert(known);
                }
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.len()
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
}
