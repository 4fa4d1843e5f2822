//! The writer's endpoints, by (owner, container) and then network: the ones it keeps, and the
//! plain ones that it does not.
//!
//! A plain endpoint (its container's name, one IPv4 address and nothing else: every static
//! endpoint of the usual shape) whose name's published set on its network holds just it and
//! that address is told whole by that set ([`RecordSet::bare`]): the writer keeps nothing of
//! it here. At 100,000 such endpoints this map's slots cost ~43 bytes an endpoint (4.3 MB)
//! with nothing in them that the index did not hold already.
//!
//! The rule that keeps this lossless: before the writer changes a name's set, it calls
//! [`Endpoints::keep`] for each of the set's members (one plain endpoint read off the old set
//! is then kept here); after it publishes the new set, [`Endpoints::settle`] lets go of the
//! member of a set that says all of it again, and only when what the set says is equal to
//! what is kept. A set changes nowhere else (`Model::publish_name` is called only from
//! `Model::rebuild_set`). Nothing here decides an answer or publishes.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr},
};

use hickory_server::proto::rr::LowerName;

use super::{
    Index, NameKey, NetId, SharedSet,
    held::{Held, Tag},
    kept::{Kept, Named},
    small_map::SmallMap,
    writer::{fqdn, published},
};

#[derive(Default)]
pub(super) struct Endpoints {
    kept: HashMap<Held, SmallMap<NetId, Kept>>,
    /// Keep every endpoint, as before there were told ones: the twin the differential test
    /// (`registry/told_tests.rs`) compares against.
    #[cfg(test)]
    pub(super) keep_all: bool,
}

/// `text` as a registry key, or `None` when it is no DNS name (quietly: a plain endpoint's
/// name is a DNS name, and anything else is simply not one).
fn quiet_key(text: &str) -> Option<NameKey> {
    // One label of letters, digits, `-` and `_`, a letter or digit at each end (nearly every
    // name), is its length and its bytes lowercased, as the parse below makes it: parsed,
    // each upsert's half-dozen looks took a third more CPU to load 100,000 endpoints.
    let bytes = text.as_bytes();
    let inner = |b: &u8| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_';
    let ends = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
    let simple = ends(bytes.first()) && ends(bytes.last()) && bytes.iter().all(inner);
    if simple && text.len() <= 63 {
        let mut key = [0u8; 64];
        key[0] = text.len() as u8; // at most 63
        for (to, from) in key[1..].iter_mut().zip(text.bytes()) {
            *to = from.to_ascii_lowercase();
        }
        return Some(NameKey::from_wire(&key[..=text.len()]));
    }
    let name = fqdn(text).ok()?;
    Some(NameKey::new(&LowerName::from(name)))
}

/// The published sets of `container`'s name (on every network that has one).
fn sets_of_name(index: &Index, container: &str) -> Vec<SharedSet> {
    let Some(short) = quiet_key(container) else {
        return Vec::new();
    };
    index
        .names
        .get(short.as_bytes())
        .map(|entry| entry.sets().to_vec())
        .unwrap_or_default()
}

/// The plain endpoint `held` on `network` as its name's published set tells it, if that set
/// has nothing but `held` and one IPv4 address, and says at most one origin of the name.
fn derived(index: &Index, network: NetId, held: &Held) -> Option<Kept> {
    let short = quiet_key(held.container())?;
    let set = published(index, network, short.as_bytes())?;
    let (member, v4) = set.bare()?;
    if member != held {
        return None;
    }
    let origins = set.origins();
    let mut each = origins.iter();
    let origin = each.next();
    if origins.is_wildcard() || each.next().is_some() {
        return None;
    }
    Some(Kept::plain(v4, origin))
}

impl Endpoints {
    fn kept_on(&self, network: NetId, held: &Held) -> Option<&Kept> {
        self.kept.get(held)?.get(&network)
    }

    /// The endpoint `held` on `network`: kept here, or plain and told by its name's set.
    pub(super) fn get<'a>(
        &'a self,
        index: &Index,
        network: NetId,
        held: &'a Held,
    ) -> Option<Named<'a>> {
        if let Some((key, by_network)) = self.kept.get_key_value(held)
            && let Some(kept) = by_network.get(&network)
        {
            return Some(kept.of(key.container()));
        }
        Some(derived(index, network, held)?.plain_of(held.container()))
    }

    /// Whether `set` is the bare set that tells `held` (which is then in rotation, with the
    /// set's one address): a look in this map, no name parsed.
    pub(super) fn tells(&self, set: &SharedSet, held: &Held) -> bool {
        set.bare().is_some_and(|(member, _)| member == held)
            && self.kept_on(set.network(), held).is_none()
    }

    /// `kept` becomes `held`'s endpoint on `network`.
    pub(super) fn insert(&mut self, held: Held, network: NetId, kept: Kept) {
        self.kept.entry(held).or_default().insert(network, kept);
    }

    /// `held`'s endpoint on `network`, taken out: the writer's copy, or what its set tells.
    /// The caller then changes the sets that held it.
    pub(super) fn take(&mut self, index: &Index, network: NetId, held: &Held) -> Option<Kept> {
        if let Some(by_network) = self.kept.get_mut(held)
            && let Some(kept) = by_network.remove(&network)
        {
            if by_network.is_empty() {
                self.kept.remove(held);
            }
            return Some(kept);
        }
        derived(index, network, held)
    }

    /// The address of `held`'s endpoint on `network` if its name's set tells it (it is not
    /// kept here).
    pub(super) fn told_address(
        &self,
        index: &Index,
        network: NetId,
        held: &Held,
    ) -> Option<Ipv4Addr> {
        if self.kept_on(network, held).is_some() {
            return None;
        }
        derived(index, network, held)?.ipv4
    }

    /// Keeps `held`'s endpoint on `network` here if only its name's set told it: called before
    /// that set changes (and after its address's holder is kept, which the PTR and this set
    /// tell only while the endpoint is told: [`Endpoints::ptr_holder`]).
    pub(super) fn keep(&mut self, index: &Index, network: NetId, held: &Held) {
        if self.kept_on(network, held).is_some() {
            return;
        }
        if let Some(kept) = derived(index, network, held) {
            self.insert(held.clone(), network, kept);
        }
    }

    /// The holder of `ip` that its published PTR and a set tell: the told endpoint that the
    /// PTR's one target names, at that address. The writer's table of holders then keeps none
    /// for `ip` (its 16-byte entry, ~22 bytes an endpoint at 100,000 with the table's slack);
    /// it keeps the holder again before anything about it changes (`Model::pin_ptr`).
    pub(super) fn ptr_holder(&self, index: &Index, ip: IpAddr) -> Option<(NetId, Held)> {
        let IpAddr::V4(v4) = ip else {
            return None;
        };
        let targets = index.addresses.ptr(&ip)?;
        let mut each = targets.iter();
        let (network, labels) = each.next()?;
        if each.next().is_some() {
            return None;
        }
        // The target's labels, case kept, as a key: a length byte is below 64, never a letter.
        let key: smallvec::SmallVec<[u8; 64]> = labels.iter().map(u8::to_ascii_lowercase).collect();
        let set = published(index, network, &key)?;
        let (member, at) = set.bare()?;
        let member = (at == v4).then(|| member.clone())?;
        let told = self.kept_on(network, &member).is_none()
            && derived(index, network, &member).is_some_and(|k| k.ipv4 == Some(v4));
        told.then_some((network, member))
    }

    /// Lets go of `held`'s endpoint on `network` if the published set of its name now tells
    /// exactly what is kept: called after a set is published.
    pub(super) fn settle(&mut self, index: &Index, network: NetId, held: &Held) {
        #[cfg(test)]
        if self.keep_all {
            return;
        }
        let Some(kept) = self.kept_on(network, held) else {
            return;
        };
        if !kept.is_plain() || derived(index, network, held).as_ref() != Some(kept) {
            return;
        }
        if let Some(by_network) = self.kept.get_mut(held) {
            by_network.remove(&network);
            if by_network.is_empty() {
                self.kept.remove(held);
            }
        }
    }

    /// The plain endpoints that are kept nowhere but in `index`'s sets whose network `on`
    /// lets through, as (network, key), each once. A walk of every name: for what is rare
    /// beside endpoint changes (a network going, a source's resync).
    fn told(&self, index: &Index, on: impl Fn(NetId, &Held) -> bool) -> Vec<(NetId, Held)> {
        let mut out = Vec::new();
        for entry in index.names.iter() {
            for set in entry.value().sets() {
                let Some((member, _)) = set.bare() else {
                    continue;
                };
                let network = set.network();
                if !on(network, member) || self.kept_on(network, member).is_some() {
                    continue;
                }
                // The set of its own name, not of an alias of another's that it shares.
                let own = quiet_key(member.container()).is_some_and(|k| k == *entry.key());
                if own {
                    out.push((network, member.clone()));
                }
            }
        }
        out
    }

    /// The keys of every endpoint of owner `tag` (each once).
    pub(super) fn of_owner(&self, index: &Index, tag: Tag) -> Vec<Held> {
        let mut keys: Vec<Held> = (self.kept.keys())
            .filter(|held| held.tag() == tag)
            .cloned()
            .collect();
        keys.extend(
            self.told(index, |_, held| held.tag() == tag)
                .into_iter()
                .map(|(_, held)| held),
        );
        keys.sort();
        keys.dedup();
        keys
    }

    /// The keys of owner `tag`'s endpoints on `network`, sorted.
    pub(super) fn on_network(&self, index: &Index, network: NetId, tag: Tag) -> Vec<Held> {
        let mut keys: Vec<Held> = (self.kept.iter())
            .filter(|(held, by_network)| held.tag() == tag && by_network.get(&network).is_some())
            .map(|(held, _)| held.clone())
            .collect();
        let told = self.told(index, |id, held| id == network && held.tag() == tag);
        keys.extend(told.into_iter().map(|(_, held)| held));
        // In one order, whichever map holds them: two that share an address leave it to the
        // one removed last.
        keys.sort();
        keys
    }

    /// Each of `held`'s endpoints, with its network.
    pub(super) fn networks_of<'a>(
        &'a self,
        index: &Index,
        held: &'a Held,
    ) -> Vec<(NetId, Named<'a>)> {
        let mut out: Vec<(NetId, Named<'a>)> = Vec::new();
        if let Some((key, by_network)) = self.kept.get_key_value(held) {
            out.extend(
                by_network
                    .iter()
                    .map(|(id, k)| (*id, k.of(key.container()))),
            );
        }
        for set in sets_of_name(index, held.container()) {
            let network = set.network();
            if set.bare().is_some_and(|(m, _)| m == held)
                && self.kept_on(network, held).is_none()
                && let Some(kept) = derived(index, network, held)
            {
                out.push((network, kept.plain_of(held.container())));
            }
        }
        out
    }

    /// The key of `text` (a tag's byte, then a container) as the tables already share it, if
    /// any does.
    pub(super) fn shared_key(&self, index: &Index, text: &str) -> Option<Held> {
        if let Some((held, _)) = self.kept.get_key_value(text.as_bytes()) {
            return Some(held.clone());
        }
        let container = text.get(1..)?;
        sets_of_name(index, container)
            .iter()
            .filter_map(|set| set.bare())
            .find(|(member, _)| member.bytes() == text.as_bytes())
            .map(|(member, _)| member.clone())
    }

    /// Every endpoint of `container`, whichever owner (of `owners`) published it, that has
    /// an address, as (network, key).
    pub(super) fn of_container(
        &self,
        index: &Index,
        container: &str,
        owners: usize,
    ) -> Vec<(NetId, Held)> {
        let mut endpoints = Vec::new();
        let mut key = String::new();
        for tag in 0..owners {
            Held::text(tag as Tag, container, &mut key);
            if let Some((held, by_network)) = self.kept.get_key_value(key.as_bytes()) {
                // A network where it has no address does not join its view.
                endpoints.extend(
                    (by_network.iter())
                        .filter(|(_, kept)| kept.addresses().next().is_some())
                        .map(|(id, _)| (*id, held.clone())),
                );
            }
        }
        for set in sets_of_name(index, container) {
            let network = set.network();
            if let Some((member, _)) = set.bare()
                && member.container() == container
                && self.kept_on(network, member).is_none()
                && derived(index, network, member).is_some()
            {
                endpoints.push((network, member.clone()));
            }
        }
        endpoints
    }

    /// The lowest address of the endpoints named `name` (any case), kept or told: one
    /// address, the same whichever map holds them.
    pub(super) fn address_named(&self, index: &Index, name: &str) -> Option<IpAddr> {
        let kept = (self.kept.iter())
            .flat_map(|(held, by_network)| by_network.values().map(|e| e.of(held.container())))
            .filter(|e| e.name().eq_ignore_ascii_case(name))
            .filter_map(|e| e.addresses().next());
        let told = sets_of_name(index, name).into_iter().filter_map(|set| {
            let (member, v4) = set.bare()?;
            let told = member.container().eq_ignore_ascii_case(name)
                && self.kept_on(set.network(), member).is_none()
                && derived(index, set.network(), member).is_some();
            told.then_some(IpAddr::V4(v4))
        });
        kept.chain(told).min()
    }

    /// How many (key, network) endpoints are kept here (the rest are told by their sets).
    #[cfg(test)]
    pub(super) fn kept_count(&self) -> usize {
        self.kept.values().map(|by_network| by_network.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_simple_name_s_key_is_the_parsed_name_s() {
        let long = "a".repeat(63);
        let too_long = "B".repeat(64);
        for text in [
            "e1", "Web-1", "a_b", "C2", "-x", "x-", "_", "_a", "a_", "9", &long, &too_long, "",
            "a.b", "A.B.", "bad name", "x\\y", "é",
        ] {
            let parsed = fqdn(text)
                .ok()
                .map(|name| NameKey::new(&LowerName::from(name)));
            assert_eq!(quiet_key(text), parsed, "{text:?}");
        }
    }
}
