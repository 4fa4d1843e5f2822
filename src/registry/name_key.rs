//! A name as the registry keys its maps: lowercase wire-format labels, kept inline.
//!
//! hickory's `LowerName` is 80 bytes, and five maps held one per endpoint. This key is 24
//! bytes and keeps names of up to 23 wire bytes (e.g. `web-1234567.` is 12) without a heap
//! allocation, so building one for a lookup costs a short copy. It was a `SmallVec` of 24
//! inline bytes, 32 bytes in all: the index's table of names holds one per name (and the
//! writer's did too, until its members moved into the record sets), and the 8 bytes a slot
//! cost ~1 MB a table at 100,000 endpoints. Maps keyed by it are looked
//! up with plain `&[u8]`, so a suffix of a key (a parent zone) is a sub-slice, with no copy.
//! It must not be used for anything but map keys: it has no notion of escaping or of
//! relative names.

use std::{
    borrow::Borrow,
    cmp::Ordering,
    fmt,
    hash::{Hash, Hasher},
};

use compact_bytes::CompactBytes;
use hickory_server::proto::rr::{LowerName, Name};
use smallvec::SmallVec;

/// Compared, ordered and hashed as its bytes are, so that a map keyed by it is looked up
/// with a `&[u8]` (`Borrow<[u8]>` requires the same hash).
#[derive(Clone)]
pub struct NameKey(CompactBytes);

impl NameKey {
    /// `name`'s labels, each preceded by its length (the root label is left out).
    pub fn new(name: &LowerName) -> NameKey {
        // A name is at most 255 wire bytes; most fit the stack buffer.
        let labels: SmallVec<[u8; 64]> = wire_labels(name).collect();
        NameKey(CompactBytes::new(&labels))
    }

    /// A key of labels already in [`wire_labels`]' form and lowercase (the caller's word).
    pub(super) fn from_wire(labels: &[u8]) -> NameKey {
        NameKey(CompactBytes::new(labels))
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_slice()
    }

    /// Whether the first label is `*` (RFC 4592's asterisk label).
    pub fn is_wildcard(&self) -> bool {
        self.0.starts_with(WILDCARD_LABEL)
    }

    /// The name back, fully qualified (for listings and logs, not for the answer path).
    pub fn to_name(&self) -> Name {
        labels_to_name(&self.0)
    }
}

/// `name`'s labels as the wire has them, each preceded by its length, case kept.
pub fn wire_labels(name: &Name) -> impl Iterator<Item = u8> + '_ {
    // A label is at most 63 bytes: its length fits the byte, as on the wire.
    name.iter()
        .flat_map(|label| std::iter::once(label.len() as u8).chain(label.iter().copied()))
}

/// The fully-qualified name whose labels `bytes` holds as [`wire_labels`] writes them (the
/// root, should they not make a name).
pub fn labels_to_name(bytes: &[u8]) -> Name {
    let mut labels: Vec<&[u8]> = Vec::new();
    let mut rest = bytes;
    while let Some((&len, tail)) = rest.split_first() {
        let (label, next) = tail.split_at(usize::from(len).min(tail.len()));
        labels.push(label);
        rest = next;
    }
    let mut name = Name::from_labels(labels).unwrap_or_else(|_| Name::root());
    name.set_fqdn(true);
    name
}

/// The asterisk label as key bytes: its length, then `*`.
pub const WILDCARD_LABEL: &[u8] = &[1, b'*'];

/// Offsets in `key` where a label other than the first starts: `key[at..]` is a parent.
pub fn parent_offsets(key: &[u8]) -> impl Iterator<Item = usize> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        at += 1 + usize::from(*key.get(at)?);
        (at < key.len()).then_some(at)
    })
}

impl Borrow<[u8]> for NameKey {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl PartialEq for NameKey {
    fn eq(&self, other: &NameKey) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for NameKey {}

impl Hash for NameKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state)
    }
}

impl PartialOrd for NameKey {
    fn partial_cmp(&self, other: &NameKey) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for NameKey {
    fn cmp(&self, other: &NameKey) -> Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl fmt::Display for NameKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_name().fmt(f)
    }
}

impl fmt::Debug for NameKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NameKey({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lower(text: &str) -> LowerName {
        LowerName::from(Name::from_ascii(text).expect("name"))
    }

    #[test]
    fn keys_are_case_blind_small_and_round_trip() {
        assert_eq!(
            NameKey::new(&lower("Web1.Net.")),
            NameKey::new(&lower("web1.net."))
        );
        assert_ne!(
            NameKey::new(&lower("web1.net.")),
            NameKey::new(&lower("web1net."))
        );
        assert_ne!(NameKey::new(&lower("a.bc.")), NameKey::new(&lower("ab.c.")));
        assert_eq!(
            NameKey::new(&lower("web1.net.")).to_name().to_string(),
            "web1.net."
        );
        assert!(!NameKey::new(&lower("web-1234567.backend.")).0.spilled());
        assert!(
            NameKey::new(&lower("web-1234567.backend.example."))
                .0
                .spilled()
        );
        assert_eq!(std::mem::size_of::<NameKey>(), 24);
        // Looked up by its bytes: the same hash as the slice's.
        let hasher =
            std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default();
        let key = NameKey::new(&lower("web1.net."));
        assert_eq!(
            std::hash::BuildHasher::hash_one(&hasher, &key),
            std::hash::BuildHasher::hash_one(&hasher, key.as_bytes())
        );
        // The fast path's key: a question's wire labels, lowercased as they are (length
        // bytes are at most 63, below 'A'), are these bytes.
        assert_eq!(
            b"\x04Web1\x03NET".to_ascii_lowercase(),
            NameKey::new(&lower("web1.net.")).as_bytes()
        );
    }

    #[test]
    fn parents_are_suffixes_at_label_starts() {
        let key = NameKey::new(&lower("a.bc.d."));
        let parents: Vec<&[u8]> = parent_offsets(key.as_bytes())
            .map(|at| &key.as_bytes()[at..])
            .collect();
        assert_eq!(parents, [&b"\x02bc\x01d"[..], &b"\x01d"[..]]);
        assert_eq!(parent_offsets(b"").count(), 0);
        // A length byte past the end stops the walk instead of reading out of bounds.
        assert_eq!(parent_offsets(b"\x09ab").count(), 0);
    }
}
