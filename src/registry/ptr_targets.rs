//! Where one address's PTR name points, on each network that holds it, in one allocation.
//!
//! The index keeps one of these per address, so it is packed: for each target its network
//! (4 bytes) and its name's wire labels (a length byte, then the labels, case kept). A
//! hickory `Name` per target with its slice and `Arc` took about 120 bytes an address at
//! 100,000 endpoints. Up to 23 bytes (one target of a short name: `web-1.backend.` is 19) it
//! is kept inline, in the map's slot: a shared allocation of its own (`Arc<[u8]>`, then a thin
//! one) cost 48 bytes of the allocator an address, ~2.7 MB more at 100,000 endpoints than the
//! 16 bytes it adds to the slot. A reader's copy is then a copy of those 24 bytes (an
//! allocation only for a longer one; PTR is on the full path, which allocates anyway), and it
//! rebuilds the `Name` of the one target it answers with. The layout is known here only; it
//! decides nothing about who sees which target.

use hickory_server::proto::rr::Name;

use super::{
    NetId,
    name_key::{labels_to_name, wire_labels},
};

/// Empty: no target (the map by address keeps it so, with no `Option` around it).
#[derive(Debug, Clone, Default)]
pub(super) struct PtrTargets(compact_bytes::CompactBytes);

const _: () = assert!(std::mem::size_of::<PtrTargets>() == 24);

impl PtrTargets {
    /// The targets in the order given; `None` when there are none. A name too long to pack is
    /// left out (a DNS name is at most 255 octets, so none is).
    pub(super) fn new<'a>(targets: impl Iterator<Item = (NetId, &'a Name)>) -> Option<PtrTargets> {
        let mut packed: smallvec::SmallVec<[u8; 64]> = smallvec::SmallVec::new();
        for (network, name) in targets {
            packed.extend_from_slice(&network.0.to_le_bytes());
            let at = packed.len();
            packed.push(0);
            packed.extend(wire_labels(name));
            match u8::try_from(packed.len() - at - 1) {
                Ok(len) => packed[at] = len,
                Err(_) => packed.truncate(at - 4),
            }
        }
        (!packed.is_empty()).then(|| PtrTargets(compact_bytes::CompactBytes::new(&packed)))
    }

    /// Each target's network and its name's labels as [`wire_labels`] writes them.
    pub(super) fn iter(&self) -> impl Iterator<Item = (NetId, &[u8])> {
        let mut rest = self.0.as_slice();
        std::iter::from_fn(move || {
            let (network, tail) = rest.split_first_chunk::<4>()?;
            let (&len, tail) = tail.split_first()?;
            let (labels, next) = tail.split_at(usize::from(len).min(tail.len()));
            rest = next;
            Some((NetId(u32::from_le_bytes(*network)), labels))
        })
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first target on a network `sees` lets through, as a name.
    pub(super) fn find(&self, sees: impl Fn(NetId) -> bool) -> Option<Name> {
        self.iter()
            .find(|(network, _)| sees(*network))
            .map(|(_, labels)| labels_to_name(labels))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_round_trip_in_order_with_their_case() {
        let (a, b) = (
            Name::from_ascii("Web-1.Front.").unwrap(),
            Name::from_ascii("web-1.back.").unwrap(),
        );
        let targets = PtrTargets::new([(NetId(7), &a), (NetId(70_000), &b)].into_iter())
            .expect("two targets");
        let names: Vec<(NetId, String)> = targets
            .iter()
            .map(|(n, labels)| (n, labels_to_name(labels).to_string()))
            .collect();
        assert_eq!(
            names,
            [
                (NetId(7), "Web-1.Front.".to_string()),
                (NetId(70_000), "web-1.back.".to_string())
            ]
        );
        assert_eq!(
            targets.find(|n| n == NetId(70_000)).map(|n| n.to_string()),
            Some("web-1.back.".into())
        );
        assert_eq!(targets.find(|_| false), None);
        assert!(PtrTargets::new(std::iter::empty()).is_none());
        // One target of a short name is inline.
        let one = PtrTargets::new([(NetId(1), &b)].into_iter()).expect("one target");
        assert!(!one.0.spilled());
    }
}
