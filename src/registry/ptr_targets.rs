//! Where one address's PTR name points, on each network that holds it, in one allocation.
//!
//! The index keeps one of these per address, so it is packed: for each target its network
//! (4 bytes) and the endpoint's own name as wire labels (a length byte, then the labels, case
//! kept). The network's labels are not repeated here: the reader appends them
//! (`Index::network_labels`), as `NAME.NETWORK.`. Up to 15 bytes (one target of a name of up
//! to nine characters: `web-1` is 11) it is kept inline, in the map's slot, which is then 40
//! bytes, not 48: with the network's labels as well it was 24 bytes with 23 inline, ~1 MB more
//! at 100,000 endpoints. A hickory `Name` per target with its slice and `Arc` took about 120
//! bytes an address. A reader's copy is a copy of those 16 bytes (an allocation only for a
//! longer one; PTR is on the full path, which allocates anyway), and it rebuilds the `Name` of
//! the one target it answers with. The layout is known here only; it decides nothing about
//! who sees which target.

use hickory_server::proto::rr::Name;

use super::{NetId, name_key::wire_labels};

/// Empty: no target (the map by address keeps it so, with no `Option` around it).
#[derive(Debug, Clone, Default)]
pub(super) struct PtrTargets(compact_bytes::CompactBytesSlice);

const _: () = assert!(std::mem::size_of::<PtrTargets>() == 16);

impl PtrTargets {
    /// The targets in the order given, each a network and the endpoint's own name (without the
    /// network's); `None` when there are none. A name too long to pack is left out (a DNS name
    /// is at most 255 octets, so none is).
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
        (!packed.is_empty()).then(|| PtrTargets(compact_bytes::CompactBytesSlice::new(&packed)))
    }

    /// Each target's network and the endpoint's name's labels as [`wire_labels`] writes them.
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

    /// The first target on a network `sees` lets through that `name` makes a name of.
    pub(super) fn find<T>(
        &self,
        sees: impl Fn(NetId) -> bool,
        mut name: impl FnMut(NetId, &[u8]) -> Option<T>,
    ) -> Option<T> {
        self.iter()
            .filter(|(network, _)| sees(*network))
            .find_map(|(network, labels)| name(network, labels))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::name_key::labels_to_name;

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
            targets.find(
                |n| n == NetId(70_000),
                |n, labels| Some((n, labels_to_name(labels).to_string()))
            ),
            Some((NetId(70_000), "web-1.back.".into()))
        );
        assert_eq!(targets.find(|_| false, |n, _| Some(n)), None);
        // A target its reader makes no name of is passed over for the next one.
        assert_eq!(
            targets.find(|_| true, |n, _| (n != NetId(7)).then_some(n)),
            Some(NetId(70_000))
        );
        assert!(PtrTargets::new(std::iter::empty()).is_none());
        // One target of a name of up to nine characters is inline; a longer one spills.
        let nine = Name::from_ascii("abcdefghi.").unwrap();
        let one = PtrTargets::new([(NetId(1), &nine)].into_iter()).expect("one target");
        assert!(!one.0.spilled());
        let ten = Name::from_ascii("abcdefghij.").unwrap();
        let one = PtrTargets::new([(NetId(1), &ten)].into_iter()).expect("one target");
        assert!(one.0.spilled());
    }
}
