//! A small sorted map (and set) for the writer's tables that keep one an endpoint: one entry
//! inline, more in a vector behind a thin pointer. Layout only; it decides nothing.

use super::{NetId, held::Held, kept::Kept};

/// A small sorted map that keeps one entry inline and more in a vector behind a thin pointer.
/// Most keys here have one entry; a `BTreeMap` would allocate a node of eleven slots for each
/// (measured: about 10 KB per endpoint at 100,000), and a `Vec` an allocation of one slot (a
/// name's member, an address's PTR source, a container's network: about 100 bytes an endpoint
/// together). With one entry of up to 16 bytes holding a pointer (a name's member, an
/// address's PTR source) it is 16 bytes; a `SmallVec` is 24 (with up to 16 bytes inline), 1 MB
/// more at 100,000 endpoints in each of the tables that keep one an endpoint. A container's
/// network and its endpoint, inline (24 bytes), make it 24. A big set (an alias of thousands
/// of replicas) grows by doubling, as a `Vec` does.
#[derive(Debug, Clone)]
pub(super) struct SmallMap<K, V>(Slots<(K, V)>);

#[derive(Debug, Clone)]
pub(super) enum Slots<T> {
    One(T),
    /// Sorted; two entries or more, or none (which allocates nothing).
    Many(thin_vec::ThinVec<T>),
}

impl<T> Slots<T> {
    fn as_slice(&self) -> &[T] {
        match self {
            Slots::One(one) => std::slice::from_ref(one),
            Slots::Many(many) => many,
        }
    }
    fn as_mut_slice(&mut self) -> &mut [T] {
        match self {
            Slots::One(one) => std::slice::from_mut(one),
            Slots::Many(many) => many,
        }
    }
    fn insert(&mut self, at: usize, entry: T) {
        match self {
            Slots::Many(many) if many.is_empty() => *self = Slots::One(entry),
            Slots::Many(many) => many.insert(at, entry),
            Slots::One(_) => {
                let Slots::One(one) = std::mem::replace(self, Slots::Many(Default::default()))
                else {
                    return;
                };
                let mut many = thin_vec::ThinVec::with_capacity(2);
                many.push(one);
                many.insert(at, entry);
                *self = Slots::Many(many);
            }
        }
    }
    fn remove(&mut self, at: usize) -> Option<T> {
        match std::mem::replace(self, Slots::Many(Default::default())) {
            Slots::One(one) if at == 0 => Some(one),
            Slots::One(one) => {
                *self = Slots::One(one);
                None
            }
            Slots::Many(mut many) => {
                let removed = (at < many.len()).then(|| many.remove(at));
                *self = match many.len() {
                    1 => many.pop().map_or_else(|| Slots::Many(many), Slots::One),
                    _ => Slots::Many(many),
                };
                removed
            }
        }
    }
}

impl<K: Ord, V> Default for SmallMap<K, V> {
    fn default() -> Self {
        SmallMap(Slots::Many(Default::default()))
    }
}

impl<K: Ord, V> SmallMap<K, V> {
    pub(super) fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.0.as_slice().binary_search_by(|(k, _)| k.cmp(&key)) {
            Ok(i) => {
                let slot = self.0.as_mut_slice().get_mut(i)?;
                Some(std::mem::replace(&mut slot.1, value))
            }
            Err(i) => {
                self.0.insert(i, (key, value));
                None
            }
        }
    }
    pub(super) fn remove<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
    {
        let i = (self.0.as_slice())
            .binary_search_by(|(k, _)| k.borrow().cmp(key))
            .ok()?;
        self.0.remove(i).map(|(_, v)| v)
    }
    pub(super) fn get(&self, key: &K) -> Option<&V> {
        let entries = self.0.as_slice();
        let i = entries.binary_search_by(|(k, _)| k.cmp(key)).ok()?;
        entries.get(i).map(|(_, v)| v)
    }
    pub(super) fn iter(&self) -> impl Iterator<Item = &(K, V)> {
        self.0.as_slice().iter()
    }
    pub(super) fn keys(&self) -> impl Iterator<Item = &K> {
        self.iter().map(|(k, _)| k)
    }
    pub(super) fn values(&self) -> impl Iterator<Item = &V> {
        self.iter().map(|(_, v)| v)
    }
    /// No more slots than entries.
    pub(super) fn shrink_to_fit(&mut self) {
        if let Slots::Many(many) = &mut self.0 {
            many.shrink_to_fit();
        }
    }
    pub(super) fn is_empty(&self) -> bool {
        self.0.as_slice().is_empty()
    }
    pub(super) fn len(&self) -> usize {
        self.0.as_slice().len()
    }
}

// A name's members, an address's PTR sources: one inline, in 16 bytes (a `SmallVec` took 24
// for each), so each table's slot is 8 bytes smaller. A container's networks: one endpoint
// inline, in 24.
const _: () = assert!(std::mem::size_of::<SmallMap<Held, ()>>() == 16);
const _: () = assert!(std::mem::size_of::<SmallMap<(NetId, Held), ()>>() == 16);
const _: () = assert!(std::mem::size_of::<SmallMap<NetId, Kept>>() == 24);

/// A small sorted set (see [`SmallMap`]).
pub(super) type SmallSet<K> = SmallMap<K, ()>;

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(map: &SmallMap<u32, ()>) -> Vec<u32> {
        map.keys().copied().collect()
    }

    #[test]
    fn one_entry_inline_more_sorted_and_back_to_one() {
        let mut map: SmallMap<u32, ()> = SmallMap::default();
        assert!(map.is_empty());
        assert_eq!(map.insert(5, ()), None);
        assert!(matches!(map.0, Slots::One(_)));
        for k in [9, 1, 7, 3] {
            assert_eq!(map.insert(k, ()), None);
        }
        assert_eq!(
            map.insert(7, ()),
            Some(()),
            "a key already there is replaced"
        );
        assert_eq!(keys(&map), [1, 3, 5, 7, 9]);
        assert_eq!(map.remove(&4), None);
        for k in [1, 9, 5, 3] {
            assert_eq!(map.remove(&k), Some(()));
        }
        assert_eq!(keys(&map), [7]);
        assert!(matches!(map.0, Slots::One(_)), "one left: inline again");
        assert_eq!(map.remove(&7), Some(()));
        assert!(map.is_empty() && map.remove(&7).is_none());
    }

    #[test]
    fn many_members_in_order_and_values_kept() {
        let mut map: SmallMap<u32, u32> = SmallMap::default();
        for k in (0..10_000).rev() {
            map.insert(k, k * 2);
        }
        assert!(map.keys().copied().eq(0..10_000));
        assert_eq!(map.get(&4_321), Some(&8_642));
        assert_eq!(map.values().count(), 10_000);
    }
}
