//! A filter over the zones' last labels: whether any zone (`NETWORK.`, `NETWORK.DOMAIN.`) can
//! end the way a name ends. Every zone a name could be in, or be the apex of, ends in the
//! name's own last label; so when no zone ends in it (`com.`, `io.`, `test.`: most forwarded
//! names), the zone map need not be asked at all.
//!
//! Invariant: a bit is set for every zone in the map, before the zone goes in (a reader that
//! sees the zone saw its bit, or asked the map anyway); bits of removed zones are cleared
//! only by rebuilding from the zones left. So `may_hold` is never false for a held zone; it
//! may be true for none (64 bits, shared by hash). One atomic load, no lock and no hashing of
//! the whole name: for a forwarded name it replaces three zone-map lookups, about 250
//! instructions of the fast path's (`benches/instructions.sh`).

use std::{
    borrow::Borrow,
    sync::atomic::{AtomicU64, Ordering},
};

#[derive(Debug, Default)]
pub struct ZoneTails(AtomicU64);

impl ZoneTails {
    /// Whether some zone may end as `key` (a [`super::NameKey`]'s bytes) ends; false only
    /// when none does.
    pub fn may_hold(&self, key: &[u8]) -> bool {
        let bit = bit(key);
        self.0.load(Ordering::Acquire) & bit != 0
    }

    /// Marks `zone` before it is published.
    pub fn add(&self, zone: &[u8]) {
        self.0.fetch_or(bit(zone), Ordering::Release);
    }

    /// Rebuilds the filter from the zones left, after some were removed.
    pub fn rebuild<K: Borrow<[u8]>>(&self, zones: impl IntoIterator<Item = K>) {
        let bits = zones
            .into_iter()
            .fold(0, |bits, zone| bits | bit(zone.borrow()));
        self.0.store(bits, Ordering::Release);
    }
}

/// The bit of a key's last label (lowercase already, as keys are): a multiplicative hash of
/// its bytes. The root alone (an empty key) has a bit of its own, as any other.
fn bit(key: &[u8]) -> u64 {
    let hash = last_label(key)
        .iter()
        .fold(0u32, |h, &b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    1 << (hash.wrapping_mul(0x9E37_79B9) >> 26)
}

/// The last label of wire-format labels (each led by its length); the whole for a malformed
/// key, which then has a bit like any other name.
fn last_label(key: &[u8]) -> &[u8] {
    let mut at = 0;
    loop {
        let Some(&len) = key.get(at) else {
            return key;
        };
        let next = at + 1 + usize::from(len);
        if next >= key.len() {
            return key.get(at + 1..).unwrap_or(key);
        }
        at = next;
    }
}

#[cfg(test)]
mod tests {
    use super::{ZoneTails, last_label};

    fn key(name: &str) -> Vec<u8> {
        name.split('.')
            .filter(|l| !l.is_empty())
            .flat_map(|l| std::iter::once(l.len() as u8).chain(l.bytes()))
            .collect()
    }

    #[test]
    fn the_last_label_is_found_in_any_key() {
        assert_eq!(last_label(&key("www.example.test")), b"test");
        assert_eq!(last_label(&key("dev")), b"dev");
        assert_eq!(last_label(b""), b"");
        assert_eq!(last_label(b"\x09short"), b"short", "a length past the end");
    }

    #[test]
    fn a_zone_added_is_always_maybe_held_and_a_removed_one_goes_on_rebuild() {
        let tails = ZoneTails::default();
        assert!(
            !tails.may_hold(&key("pkg.go.dev")),
            "no zones: nothing held"
        );
        tails.add(&key("dev"));
        tails.add(&key("my_net.docker"));
        for name in ["dev", "pkg.go.dev", "web1.my_net.docker", "docker"] {
            assert!(tails.may_hold(&key(name)), "{name}");
        }
        tails.rebuild([key("my_net.docker").as_slice()]);
        assert!(tails.may_hold(&key("x.docker")));
        // `dev` went; unless its bit is shared with `docker`'s, it is clear.
        let shared = super::bit(&key("dev")) == super::bit(&key("docker"));
        assert_eq!(tails.may_hold(&key("pkg.go.dev")), shared);
        // Names under a real top-level domain, against a few zones: mostly no lookup at all.
        let tails = ZoneTails::default();
        for zone in ["frontend", "backend", "db.docker", "monitoring"] {
            tails.add(&key(zone));
        }
        let skipped = [
            "com", "org", "net", "io", "test", "example", "arpa", "local",
        ]
        .iter()
        .filter(|tld| !tails.may_hold(&key(&format!("www.site.{tld}"))))
        .count();
        assert!(skipped >= 6, "{skipped} of 8 top-level domains skipped");
    }
}
