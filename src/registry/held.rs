//! An endpoint's key in the writer's tables: its owner's tag and its container, shared by
//! every table that keeps it. Layout only; it decides nothing.

/// An owner as the model keeps it: an index into `Model::owners`.
pub(super) type Tag = u8;
/// At most this many owners (sources); each is an ASCII byte at the start of a [`Held`].
pub(super) const MAX_OWNERS: usize = 127;

/// An endpoint's key on its network: who published it (a [`Tag`]) and for which container,
/// as one string: the tag's byte, then the container's key. Shared, not copied: the endpoint
/// map, its names' members (in their record sets) and its addresses' PTR sources each keep it
/// (three allocations an endpoint as a `Box<str>`, one now). A thin pointer (8 bytes; the
/// length is in the allocation): as an `Arc<str>` (16) it made each of those places 8 bytes
/// larger, ~3 MB at 100,000 endpoints.
#[derive(Clone)]
pub(super) struct Held(triomphe::ThinArc<(), u8>);

const _: () = assert!(std::mem::size_of::<Held>() == 8);

impl Held {
    pub(super) fn new(tag: Tag, container: &str) -> Held {
        let mut key = String::new();
        Held::text(tag, container, &mut key);
        Held::of_text(&key)
    }
    pub(super) fn of_text(key: &str) -> Held {
        Held(triomphe::ThinArc::from_header_and_slice((), key.as_bytes()))
    }
    /// The key's text into `key`: the tag's byte, then the container's key.
    pub(super) fn text(tag: Tag, container: &str, key: &mut String) {
        key.clear();
        key.reserve(1 + container.len());
        key.push(char::from(tag)); // below 128: one byte
        key.push_str(container);
    }
    pub(super) fn bytes(&self) -> &[u8] {
        &self.0.slice
    }
    pub(super) fn tag(&self) -> Tag {
        self.bytes().first().copied().unwrap_or(0)
    }
    pub(super) fn container(&self) -> &str {
        // Built from a `str` whose first character is one byte: the rest is whole characters.
        std::str::from_utf8(self.bytes().get(1..).unwrap_or_default()).unwrap_or_default()
    }
}

// Compared, ordered and hashed as the key's bytes (tag byte, container), so that the maps are
// looked up by those bytes without building a `Held`.
impl std::borrow::Borrow<[u8]> for Held {
    fn borrow(&self) -> &[u8] {
        self.bytes()
    }
}

impl PartialEq for Held {
    fn eq(&self, other: &Held) -> bool {
        self.bytes() == other.bytes()
    }
}

impl Eq for Held {}

impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Held) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Held {
    fn cmp(&self, other: &Held) -> std::cmp::Ordering {
        self.bytes().cmp(other.bytes())
    }
}

impl std::hash::Hash for Held {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.bytes().hash(state)
    }
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Held({}, {:?})", self.tag(), self.container())
    }
}
