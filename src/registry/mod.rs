//! The registry: the one place where names live.
//!
//! One writer ([`Registry::apply`], serialised by a mutex that readers never touch) keeps the
//! full model and publishes derived, immutable entries into dashmaps. Readers (the DNS front
//! end) do a single map lookup, clone an `Arc` and let the shard guard go: they never block
//! the writer for long and never hold a guard across `.await`. Nothing here does I/O.

mod by_address;
mod change;
pub mod describe;
mod early;
mod endpoints;
mod held;
mod ip_map;
mod kept;
mod listing;
mod name_key;
mod ptr_sources;
mod ptr_targets;
mod record_set;
mod small_map;
mod view;
mod writer;
mod zone_tails;

use std::{
    net::IpAddr,
    sync::{Arc, Mutex},
};

use arc_swap::ArcSwap;
use dashmap::DashMap;
use hickory_server::proto::rr::{LowerName, Name};

pub use change::{
    Change, DEFAULT_SRV_WEIGHT, Endpoint, NameData, NameOrigin, NameOrigins, Origins, Owner,
    SrvPort, SrvProto, text_matches_key,
};
use describe::{Answered, AskerIs, Description, Subject};
pub use early::{EARLY_TTL, MAX_PENDING_LOOKUPS};
pub use listing::Records;
pub use name_key::NameKey;
use name_key::{labels_to_name, parent_offsets};
use ptr_targets::PtrTargets;
pub use record_set::{Cursors, RecordSet, Rotated, SharedSet, SrvTarget};
pub use view::View;
use writer::Model;
use zone_tails::ZoneTails;

/// Endpoints [`Registry::each_published`] gives under one hold of the writer's lock.
const PUBLISHED_BATCH: usize = 512;

/// A network's small integer handle, stable for the life of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NetId(pub u32);

/// Every record set that answers to one fully-qualified name, one per network, in network-name order.
/// Kept in the map by value: a name on one network (nearly all) is its set alone (a lone set
/// inline, any other its pointer), and a reader's copy is one reference count either way. An
/// `Arc` of a boxed slice cost two allocations a name, about 80 bytes, at 100,000 endpoints.
#[derive(Debug, Clone)]
pub(crate) enum NameEntry {
    One(SharedSet),
    Many(Arc<[SharedSet]>),
}

// The tag in a niche of the set's: a name's slot is its key and these 32 bytes.
const _: () = assert!(std::mem::size_of::<NameEntry>() == 32);

impl NameEntry {
    fn new(mut sets: Vec<SharedSet>) -> Option<NameEntry> {
        match sets.len() {
            0 => None,
            1 => sets.pop().map(NameEntry::One),
            _ => Some(NameEntry::Many(sets.into())),
        }
    }

    fn sets(&self) -> &[SharedSet] {
        match self {
            NameEntry::One(set) => std::slice::from_ref(set),
            NameEntry::Many(sets) => sets,
        }
    }

    /// The first set on a network `wanted` takes, out of a reader's copy: a name on one network
    /// (nearly all) gives its set itself, with no second copy (one reference count less a
    /// lookup, and for a lone set 32 bytes less copied).
    fn into_first(self, wanted: impl Fn(NetId) -> bool) -> Option<SharedSet> {
        match self {
            NameEntry::One(set) => wanted(set.network()).then_some(set),
            NameEntry::Many(sets) => sets.iter().find(|set| wanted(set.network())).cloned(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("search domain `{domain}` is not a valid DNS name: {reason}")]
    BadDomain { domain: String, reason: String },
}

/// A read-side map. Keyed by names and addresses that arrive in every query, so hashed with
/// foldhash (randomly seeded per process) rather than SipHash, which cost about 200
/// instructions of the fast path's 2,200 per query.
type ReadMap<K, V> = DashMap<K, V, foldhash::quality::RandomState>;

/// The read side, shared with the writer.
#[derive(Default)]
struct Index {
    names: ReadMap<NameKey, NameEntry>,
    /// Every address a container asks from, to its [`Client`] (one view and one asker id for
    /// all of them), and every endpoint's address to where its PTR name points.
    addresses: by_address::ByAddress,
    /// `NETWORK.` and `NETWORK.DOMAIN.`: names under them are ours, and `SHORT.ZONE.` is
    /// `SHORT` on that network.
    zones: ReadMap<NameKey, NetId>,
    /// Each network's name as wire labels (case kept), for the PTR targets (`NAME.NETWORK.`),
    /// which keep the endpoint's part only. A network whose name is no DNS name has none.
    network_labels: ReadMap<NetId, Box<[u8]>>,
    /// Which last labels `zones` may end in: most forwarded names skip the map.
    zone_tails: ZoneTails,
    default_view: ArcSwap<View>,
    /// What an asker that is neither an endpoint, loopback nor trusted sees.
    stranger_view: ArcSwap<View>,
    /// Whether that is nothing at all (no `default_view` configured).
    strangers_see_nothing: std::sync::atomic::AtomicBool,
    /// Networks whose askers count as the host's own (`server.trusted_askers`).
    trusted: ArcSwap<Box<[ipnet::IpNet]>>,
    /// Networks marked internal.
    internal: ReadMap<NetId, ()>,
    /// Askers the engine has and no source has published yet (`early.rs`).
    early: early::Early,
    /// Wildcard names (`*.shop.test`) published: while none is, a miss looks for none.
    wildcards: std::sync::atomic::AtomicUsize,
    /// Domains owned besides the search domain (`server.own_domains`), as keys, most labels
    /// first: an unheld name under one does not exist.
    own_domains: ArcSwap<Vec<(NameKey, LowerName)>>,
    /// Whether any is: every forwarded name asks, and an `ArcSwap` load costs more than this.
    has_own_domains: std::sync::atomic::AtomicBool,
    /// Each network's gateways, as a set the host name answers with.
    gateways: ReadMap<NetId, SharedSet>,
    /// The host name (`server.host_name`), as a key; `None`: off.
    host_name: ArcSwap<Option<NameKey>>,
    has_host_name: std::sync::atomic::AtomicBool,
}

/// What the registry publishes for each address of a container: what it sees, and who it is.
/// Kept in the map by value; the view is shared by every container that sees the same
/// networks (all of a network's endpoints, often): a `Client` and a view of its own per
/// container cost about 90 bytes each at 100,000 endpoints.
#[derive(Debug, Clone)]
pub struct Client {
    view: Arc<View>,
    /// The container, the same for all its addresses (a hash of its key; see [`AskerId`]).
    container: u64,
}

/// Who asks, the same whichever of its addresses a container asks from: one lookup that a
/// container on two networks sends to netalias's address on each arrives from two source
/// addresses, and must still count as one asker's (`dns::turns`). An asker that is no known
/// container is its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AskerId {
    Container(u64),
    Address(IpAddr),
}

/// Who is asking, as far as forwarding is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asker {
    /// A known endpoint with at least one non-internal network.
    Container,
    /// A known endpoint whose networks are all internal.
    InternalOnly,
    /// Loopback: the host itself.
    Local,
    /// Anyone else.
    Outside,
}

/// A name the registry does not hold, as [`Registry::unheld`] classifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unheld {
    /// The apex of a zone netalias serves: it exists, with no records but its SOA.
    Apex(LowerName),
    /// Under the search domain (this zone): it does not exist.
    NoSuchName(LowerName),
    /// Anything else: forwarded, or refused.
    NotOurs,
}

/// What one name is for one asker, from one call ([`Registry::resolve`]).
#[derive(Debug, Clone)]
pub enum Resolution {
    /// Held, with what the caller asked for.
    Found(SharedSet),
    /// Held, without what the caller asked for: no data, with the zone for the SOA and the
    /// held set's own TTL, if it has one.
    NoData { zone: LowerName, ttl: Option<u32> },
    /// Not held (see [`Unheld`]).
    Unheld(Unheld),
}

/// [`Unheld`] without the names, for the classifier both forms share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UnheldKind {
    Apex,
    UnderDomain,
    /// Under a domain of `server.own_domains`.
    UnderOwnDomain,
    NotOurs,
}

/// What [`Registry::await_asker`] came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewAsker {
    /// Known already: nothing was waited for.
    Known,
    /// Unknown, inside a followed subnet, and learned while waiting.
    Learned,
    /// Unknown, inside a followed subnet, and still unknown when the wait ended.
    NotFound,
    /// Unknown and outside every followed subnet: not looked up (a stranger).
    NotLookedUp,
}

/// Counts of what the registry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sizes {
    pub networks: usize,
    pub endpoints: usize,
    pub names: usize,
}

pub struct Registry {
    writer: Mutex<Model>,
    index: Index,
    domain: Option<LowerName>,
    /// `domain` as a key, for stripping it from keys.
    domain_key: Option<NameKey>,
}

impl Registry {
    /// `domain` is the optional search domain (e.g. `docker`).
    pub fn new(domain: Option<&str>) -> Result<Registry, RegistryError> {
        let domain = match domain {
            None => None,
            Some(d) => Some(LowerName::from(writer::fqdn(d).map_err(|reason| {
                RegistryError::BadDomain {
                    domain: d.to_string(),
                    reason,
                }
            })?)),
        };
        let index = Index::default();
        index.stranger_view.store(Arc::new(View::only(Vec::new())));
        index
            .strangers_see_nothing
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(Registry {
            writer: Mutex::new(Model::new(domain.clone())),
            index,
            domain_key: domain.as_ref().map(NameKey::new),
            domain,
        })
    }

    /// The most endpoints held at once; past it new endpoints are refused (counted, logged).
    pub fn set_max_endpoints(&self, max: usize) {
        let mut model = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        model.set_max_endpoints(max);
    }

    /// Applies one change for `owner`. Changes are applied one at a time, in the order of the
    /// calls; a change touches only what `owner` published.
    pub fn apply(&self, owner: Owner, change: Change) {
        // A poisoned lock means an earlier apply panicked half-way; the model is still the
        // best state we have, so keep serving it rather than take the server down.
        let mut model = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        model.apply(owner, change, &self.index);
    }

    /// The server's scoping settings, as the config gives them (at start and at each reload;
    /// they are no source's to publish): `default_view`, the networks askers that are not
    /// endpoints may see (`None`: loopback and trusted askers see all, any other asker
    /// nothing; a name held by no network yet applies when one appears), and
    /// `trusted_askers`, whose askers see the default view and may be forwarded for.
    pub fn set_scoping(&self, default_view: Option<Vec<String>>, trusted: Vec<ipnet::IpNet>) {
        let mut model = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        model.set_default_view(default_view, &self.index);
        self.index.trusted.store(Arc::new(trusted.into()));
    }

    /// Applies a batch for `owner` under one lock, so readers see a whole reload sooner.
    pub fn apply_all(&self, owner: Owner, changes: impl IntoIterator<Item = Change>) {
        let mut model = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        for change in changes {
            model.apply(owner, change, &self.index);
        }
    }

    pub fn domain(&self) -> Option<&LowerName> {
        self.domain.as_ref()
    }

    /// The domains netalias owns besides the search domain: under one, a name it does not
    /// hold is NXDOMAIN with that domain's SOA, not forwarded. Names that are not DNS names
    /// are skipped (the config has checked them).
    pub fn set_own_domains(&self, domains: &[String]) {
        let mut owned: Vec<(NameKey, LowerName)> = domains
            .iter()
            .filter_map(|d| writer::fqdn(d).ok())
            .map(|name| {
                let lower = LowerName::from(name);
                (NameKey::new(&lower), lower)
            })
            .collect();
        owned.sort_by_key(|(_, d)| std::cmp::Reverse(d.num_labels()));
        self.index
            .has_own_domains
            .store(!owned.is_empty(), std::sync::atomic::Ordering::Relaxed);
        self.index.own_domains.store(Arc::new(owned));
    }

    /// The name (`host`, so also `host.DOMAIN.`) that answers each container with the
    /// gateways of its own network: the host's address there, as `host.docker.internal` is
    /// in Docker Desktop's /etc/hosts. `None` turns it off. A name held by an endpoint wins.
    pub fn set_host_name(&self, name: Option<&str>) {
        let key = name
            .and_then(|n| writer::fqdn(n).ok())
            .map(|n| NameKey::new(&LowerName::from(n)));
        self.index
            .has_host_name
            .store(key.is_some(), std::sync::atomic::Ordering::Relaxed);
        self.index.host_name.store(Arc::new(key));
    }

    /// The gateways of the first network `asker` sees that has any, when `key` (or its short
    /// form under the search domain) is the host name. Askers that see every network (the
    /// host itself) have no network of their own: nothing.
    fn lookup_host(&self, key: &[u8], short: Option<&[u8]>, asker: IpAddr) -> Option<SharedSet> {
        let host = self.index.host_name.load();
        let host = host.as_ref().as_ref()?.as_bytes();
        if key != host && short != Some(host) {
            return None;
        }
        self.with_view(asker, |view| {
            view.networks().iter().find_map(|id| {
                self.index
                    .gateways
                    .get(id)
                    .map(|s| SharedSet::clone(s.value()))
            })
        })
    }

    /// The most specific owned domain `key` is at or under, and whether it is that domain.
    fn own_domain_of(&self, key: &[u8]) -> Option<(LowerName, bool)> {
        if !self
            .index
            .has_own_domains
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return None;
        }
        let owned = self.index.own_domains.load();
        owned.iter().find_map(|(domain, name)| {
            let domain = domain.as_bytes();
            if key == domain {
                return Some((name.clone(), true));
            }
            let short = key.strip_suffix(domain)?;
            parent_offsets(key)
                .any(|at| at == short.len())
                .then(|| (name.clone(), false))
        })
    }

    /// What `name` is for `asker`: its record set when `has` says the set holds what the
    /// question wants (the answer rules decide; the registry knows no record types), no data
    /// with the zone for the SOA when it does not, or what kind of unheld name it is.
    pub fn resolve(
        &self,
        name: &LowerName,
        asker: IpAddr,
        has: impl FnOnce(&RecordSet) -> bool,
    ) -> Resolution {
        self.resolved(self.lookup(name, asker), name, asker, has)
    }

    /// [`Registry::resolve`] of a name already looked up: `looked_up` is what
    /// [`Registry::lookup`] (or `lookup_key`) gave for `name` and `asker`.
    pub fn resolved(
        &self,
        looked_up: Option<SharedSet>,
        name: &LowerName,
        asker: IpAddr,
        has: impl FnOnce(&RecordSet) -> bool,
    ) -> Resolution {
        match looked_up {
            Some(set) if has(&set) => Resolution::Found(set),
            Some(set) => Resolution::NoData {
                zone: self.zone_of(name).unwrap_or_else(|| name.clone()),
                ttl: set.ttl(),
            },
            None => Resolution::Unheld(self.unheld(name, asker)),
        }
    }

    /// The record set `name` resolves to for `asker` (see [`Registry::lookup_key`]).
    pub fn lookup(&self, name: &LowerName, asker: IpAddr) -> Option<SharedSet> {
        self.lookup_key(NameKey::new(name).as_bytes(), asker)
    }

    /// The record set a name, as [`NameKey`] bytes, resolves to for `asker`. `SHORT.NETWORK.`
    /// (or `SHORT.NETWORK.DOMAIN.`) is `SHORT` on that network; failing that, a name is taken
    /// as published (an alias may contain dots), on the first network in name order that the
    /// asker sees; failing that, `SHORT.DOMAIN.` is `SHORT`. Touches no heap.
    pub fn lookup_key(&self, key: &[u8], asker: IpAddr) -> Option<SharedSet> {
        if let Some(set) = self.lookup_qualified(key, asker) {
            return Some(set);
        }
        if let Some(set) = self.lookup_short(key, asker) {
            return Some(set);
        }
        let under_domain = self.short_under_domain(key);
        if let Some(set) = under_domain.and_then(|short| self.lookup_short(short, asker)) {
            return Some(set);
        }
        if self
            .index
            .has_host_name
            .load(std::sync::atomic::Ordering::Relaxed)
            && let Some(set) = self.lookup_host(key, under_domain, asker)
        {
            return Some(set);
        }
        if self
            .index
            .wildcards
            .load(std::sync::atomic::Ordering::Relaxed)
            == 0
        {
            return None;
        }
        // `SHORT.NETWORK.`: a wildcard on that network, when the asker sees it.
        if let Some((at, network)) = self.network_zone(key)
            && self.with_view(asker, |view| view.contains(network))
            && let Some(set) = self.lookup_wildcard(&key[..at], Some(network), asker)
        {
            return Some(set);
        }
        self.lookup_wildcard(key, None, asker)
            .or_else(|| self.lookup_wildcard(under_domain?, None, asker))
    }

    /// The wildcard that covers `key`: walking up from `key`'s parent, the first `*.PARENT`
    /// the asker sees answers, and a `PARENT` the asker sees held itself stops the walk
    /// (`a.x.shop.test` is not covered by `*.shop.test` when `x.shop.test` exists), RFC
    /// 4592's closest encloser. One simplification: a name held only *below* a parent (an
    /// empty non-terminal, `x.shop.test` when only `a.x.shop.test` is held) does not stop it.
    /// With `only`, on that network alone (`SHORT.NETWORK.`). The answer's owner is the name
    /// asked, as for any other.
    fn lookup_wildcard(&self, key: &[u8], only: Option<NetId>, asker: IpAddr) -> Option<SharedSet> {
        let held = |name: &[u8]| match only {
            Some(network) => self.index.names.get(name).and_then(|entry| {
                entry
                    .sets()
                    .iter()
                    .find(|set| set.network() == network)
                    .cloned()
            }),
            None => self.lookup_short(name, asker),
        };
        let mut wild = smallvec::SmallVec::<[u8; 256]>::new();
        for at in parent_offsets(key) {
            let parent = &key[at..];
            wild.clear();
            wild.extend_from_slice(name_key::WILDCARD_LABEL);
            wild.extend_from_slice(parent);
            if let Some(set) = held(&wild) {
                return Some(set);
            }
            if held(parent).is_some() {
                return None;
            }
        }
        None
    }

    /// `SHORT` of a key `SHORT.DOMAIN.` under the search domain; `None` for the domain itself
    /// or anything else. The domain must start at a label boundary: `xdocker.` is not under
    /// `docker.`.
    fn short_under_domain<'k>(&self, key: &'k [u8]) -> Option<&'k [u8]> {
        let short = key.strip_suffix(self.domain_key.as_ref()?.as_bytes())?;
        parent_offsets(key)
            .any(|at| at == short.len())
            .then_some(short)
    }

    /// The longest network zone `key` is under, as (where its `SHORT` ends, the network):
    /// `SHORT.NETWORK.` or `SHORT.NETWORK.DOMAIN.`.
    #[inline(always)] // on every lookup: a call's frame cost the local fast path 2% (callgrind)
    fn network_zone(&self, key: &[u8]) -> Option<(usize, NetId)> {
        // Asked only once there is a parent: a single label (`app`, the commonest question)
        // is under no zone and costs no filter either.
        let mut filtered = false;
        for at in parent_offsets(key) {
            if !filtered {
                if !self.index.zone_tails.may_hold(key) {
                    return None;
                }
                filtered = true;
            }
            if let Some(zone) = self.index.zones.get(&key[at..]) {
                return Some((at, *zone.value()));
            }
        }
        None
    }

    /// `key` as a published short name: the first network the asker sees that has it.
    fn lookup_short(&self, key: &[u8], asker: IpAddr) -> Option<SharedSet> {
        let entry = self.index.names.get(key).map(|e| e.value().clone())?;
        self.with_view(asker, |view| {
            entry.into_first(|network| view.contains(network))
        })
    }

    /// `SHORT.ZONE.` where ZONE is a network's zone: `SHORT` on that network, if the asker
    /// sees it. The longest matching zone wins (a network `b.c` before a network `c`).
    fn lookup_qualified(&self, key: &[u8], asker: IpAddr) -> Option<SharedSet> {
        let (at, network) = self.network_zone(key)?;
        if !self.with_view(asker, |view| view.contains(network)) {
            return None;
        }
        let entry = self
            .index
            .names
            .get(&key[..at])
            .map(|e| e.value().clone())?;
        entry.into_first(|id| id == network)
    }

    /// The PTR target of an `in-addr.arpa.` / `ip6.arpa.` name, as seen by `asker`.
    pub fn lookup_ptr(&self, name: &LowerName, asker: IpAddr) -> Option<Name> {
        let ip = arpa_address(name)?;
        // The view first, held by its own handle: no guard on the map by address is held
        // while the view is read; the targets are read in place, not copied, under that map's
        // guard, with the network's labels (another map: the writer holds no guard on it while
        // it takes one on the map by address).
        let view = self.view_of(asker);
        self.ptr_of(&ip, |network| view.contains(network))
    }

    /// The first PTR target of `ip` on a network `sees` lets through, as a name.
    fn ptr_of(&self, ip: &IpAddr, sees: impl Fn(NetId) -> bool) -> Option<Name> {
        (self.index.addresses).find_ptr(ip, sees, |network, labels| self.ptr_name(network, labels))
    }

    /// `NAME.NETWORK.` of a PTR target: the endpoint's own labels, then the network's.
    fn ptr_name(&self, network: NetId, labels: &[u8]) -> Option<Name> {
        let network = self.index.network_labels.get(&network)?;
        let mut whole = smallvec::SmallVec::<[u8; 256]>::new();
        whole.extend_from_slice(labels);
        whole.extend_from_slice(&network);
        Some(labels_to_name(&whole))
    }

    /// `NAME.NETWORK.` of the endpoint an asker's address belongs to (the first, when it has
    /// several), for logs; whoever looks.
    pub fn endpoint_name(&self, ip: IpAddr) -> Option<Name> {
        self.ptr_of(&ip, |_| true)
    }

    /// What a name that [`Registry::lookup`] did not find is, for `asker`. Only the search
    /// domain is ours to deny: below it an unheld name does not exist. A network's bare name
    /// (`dev.`) is not: a network named like a real domain must never hide the names below it
    /// (`pkg.go.dev.`), so there only the names netalias holds answer and the rest is not ours.
    /// The apex of a zone whose SOA netalias serves exists, without records.
    pub fn unheld(&self, name: &LowerName, asker: IpAddr) -> Unheld {
        let key = NameKey::new(name);
        match self.unheld_kind(key.as_bytes(), asker) {
            UnheldKind::Apex => Unheld::Apex(name.clone()),
            UnheldKind::UnderDomain => match &self.domain {
                Some(domain) => Unheld::NoSuchName(domain.clone()),
                None => Unheld::NotOurs,
            },
            UnheldKind::UnderOwnDomain => match self.own_domain_of(key.as_bytes()) {
                Some((domain, _)) => Unheld::NoSuchName(domain),
                None => Unheld::NotOurs,
            },
            UnheldKind::NotOurs => Unheld::NotOurs,
        }
    }

    /// Whether a name, as [`NameKey`] bytes, that the caller has just looked up
    /// ([`Registry::lookup_key`]) and not found is not ours to deny for `asker` either: what
    /// the full path forwards. The fast path's check, without touching the heap; the same rule
    /// as [`Registry::unheld`] (both come from one classifier).
    pub fn is_unheld_not_ours(&self, key: &[u8], asker: IpAddr) -> bool {
        self.unheld_kind(key, asker) == UnheldKind::NotOurs
    }

    /// The one classifier behind [`Registry::unheld`] and [`Registry::is_unheld_not_ours`].
    fn unheld_kind(&self, key: &[u8], asker: IpAddr) -> UnheldKind {
        let zone = if self.index.zone_tails.may_hold(key) {
            self.index.zones.get(key).map(|z| *z.value())
        } else {
            None
        };
        let is_domain = self
            .domain_key
            .as_ref()
            .is_some_and(|d| key == d.as_bytes());
        let under_domain = !is_domain && self.short_under_domain(key).is_some();
        // Neither a zone nor under the domain: not ours whoever asks, unless an owned domain
        // holds it. Decided before the asker is looked up, which is what most forwarded names
        // cost (one map lookup less per cached answer on the fast path).
        if zone.is_none() && !is_domain && !under_domain {
            let owned = self.own_domain_of(key);
            return match owned {
                Some(_) if self.is_stranger(asker) => UnheldKind::NotOurs,
                Some((_, true)) => UnheldKind::Apex,
                Some((_, false)) => UnheldKind::UnderOwnDomain,
                None => UnheldKind::NotOurs,
            };
        }
        if self.is_stranger(asker) {
            return UnheldKind::NotOurs; // sees nothing, so nothing is denied to it either
        }
        if is_domain || zone.is_some_and(|network| self.with_view(asker, |v| v.contains(network))) {
            UnheldKind::Apex
        } else if under_domain {
            UnheldKind::UnderDomain
        } else {
            UnheldKind::NotOurs
        }
    }

    /// The zone of ours that contains `name`, if any: the search domain or a network.
    pub fn zone_of(&self, name: &LowerName) -> Option<LowerName> {
        // An owned domain, unless the search domain is more specific (as `unheld` decides:
        // `docker.test` before an owned `test`).
        if let Some((domain, _)) = self.own_domain_of(NameKey::new(name).as_bytes())
            && !self
                .domain
                .as_ref()
                .is_some_and(|d| d.zone_of(name) && d.num_labels() > domain.num_labels())
        {
            return Some(domain);
        }
        if let Some(domain) = &self.domain
            && domain.zone_of(name)
        {
            // A network zone under the domain is more specific; the domain apex suffices for SOA.
            return Some(domain.clone());
        }
        let mut candidate = name.clone();
        while !candidate.is_root() {
            if self.index.zones.contains_key(&NameKey::new(&candidate)) {
                return Some(candidate);
            }
            candidate = candidate.base_name();
        }
        None
    }

    /// Classifies `asker` for the forwarding policy.
    pub fn asker(&self, asker: IpAddr) -> Asker {
        if let Some(client) = self.index.addresses.client(&asker) {
            return match &*client.value().view {
                View::Only(ids)
                    if !ids.is_empty()
                        && ids.iter().all(|id| self.index.internal.contains_key(id)) =>
                {
                    Asker::InternalOnly
                }
                _ => Asker::Container,
            };
        }
        if self.is_trusted(asker) {
            Asker::Local
        } else if let Some(early) = self.index.early.get(&asker) {
            if early.internal_only {
                Asker::InternalOnly
            } else {
                Asker::Container
            }
        } else {
            Asker::Outside
        }
    }

    /// Who `asker` is, the same for every address of one container.
    pub fn asker_id(&self, asker: IpAddr) -> AskerId {
        match self.index.addresses.client(&asker) {
            Some(client) => AskerId::Container(client.value().container),
            None => AskerId::Address(asker),
        }
    }

    /// Loopback, or inside `server.trusted_askers`: the host's own, as it were.
    fn is_trusted(&self, asker: IpAddr) -> bool {
        asker.is_loopback() || self.index.trusted.load().iter().any(|n| n.contains(&asker))
    }

    /// Neither an endpoint nor trusted, with no `default_view` configured: it sees nothing.
    pub fn is_stranger(&self, asker: IpAddr) -> bool {
        self.index
            .strangers_see_nothing
            .load(std::sync::atomic::Ordering::Relaxed)
            && !self.index.addresses.has_client(&asker)
            && !self.is_trusted(asker)
            && self.index.early.get(&asker).is_none()
    }

    /// Whether `asker` is known: an endpoint's (or nameless) address, loopback or trusted, or
    /// an early one (`early.rs`).
    pub fn knows_asker(&self, asker: IpAddr) -> bool {
        self.index.addresses.has_client(&asker)
            || self.is_trusted(asker)
            || self.index.early.get(&asker).is_some()
    }

    /// Scopes `addresses` to `networks` (held ones; others are skipped) until a source
    /// publishes them or [`EARLY_TTL`] passes: what a live source knows of a container before it
    /// can read it whole (its `network connect`, or a lookup of an unknown asker). Addresses a
    /// source has published already are left as they are. Wakes [`Registry::await_asker`].
    pub fn learn_early(&self, addresses: &[IpAddr], networks: &[String]) {
        let ids: Vec<NetId> = {
            let model = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            networks
                .iter()
                .filter_map(|n| model.network_id(n))
                .collect()
        };
        if ids.is_empty() {
            return;
        }
        let internal_only = ids.iter().all(|id| self.index.internal.contains_key(id));
        let view = Arc::new(View::only(ids));
        let until = std::time::Instant::now() + EARLY_TTL;
        if self.index.early.entries.len() > MAX_PENDING_LOOKUPS {
            self.index.early.sweep();
        }
        for ip in addresses {
            if self.index.addresses.has_client(ip) {
                continue;
            }
            self.index.early.entries.insert(
                *ip,
                early::EarlyEntry {
                    view: Arc::clone(&view),
                    until,
                    internal_only,
                },
            );
        }
        self.index.early.learned.notify_waiters();
    }

    /// Drops the early scope of `addresses` (the container left those networks).
    pub fn forget_early(&self, addresses: &[IpAddr]) {
        for ip in addresses {
            self.index.early.entries.remove(ip);
        }
    }

    /// Where lookups of unknown askers go (`None`: nowhere, nobody is looked up), and the
    /// subnets an asker must be inside to be looked up: the live source's networks'.
    pub fn set_asker_lookups(
        &self,
        lookups: Option<tokio::sync::mpsc::Sender<IpAddr>>,
        subnets: Vec<ipnet::IpNet>,
    ) {
        self.index.early.set_subnets(subnets);
        self.index.early.set_lookups(lookups);
    }

    /// Updates the subnets unknown askers are looked up in (networks come and go).
    pub fn set_lookup_subnets(&self, subnets: Vec<ipnet::IpNet>) {
        self.index.early.set_subnets(subnets);
    }

    /// Waits, at most `wait`, until `asker` is known: at once when it is; when it is unknown
    /// but inside a followed network's subnet, it is sent for lookup and waited for (a
    /// container's first packet can come before any source has read the container). An asker
    /// outside every followed subnet is not waited for, and stays a stranger (scoping still
    /// fails closed).
    pub async fn await_asker(&self, asker: IpAddr, wait: std::time::Duration) -> NewAsker {
        if self.knows_asker(asker) {
            return NewAsker::Known;
        }
        if !self.index.early.may_look_up(asker) {
            return NewAsker::NotLookedUp;
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.index.early.learned.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.knows_asker(asker) {
                return NewAsker::Learned;
            }
            self.index.early.request(asker);
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return if self.knows_asker(asker) {
                    NewAsker::Learned
                } else {
                    NewAsker::NotFound
                };
            }
        }
    }

    /// networks → names → members in the order the next answer gives them (for `/records`).
    pub fn records(&self) -> Records {
        let listing = {
            let model = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            model.listing(&self.index, |_| true)
        };
        listing::records(listing)
    }

    /// The names labels claim on every network (`/label-names`), in name order.
    pub fn label_names(&self) -> Vec<String> {
        let listing = {
            let model = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            model.listing(&self.index, |_| true)
        };
        listing::label_names(listing)
    }

    /// [`Registry::label_names`] as a known container sees them: its own networks only, the
    /// rule of [`Registry::records_seen_by`]. `None` when `asker` is not a known endpoint.
    pub fn label_names_seen_by(&self, asker: IpAddr) -> Option<Vec<String>> {
        let client = self
            .index
            .addresses
            .client(&asker)
            .map(|v| v.value().clone())?;
        let listing = {
            let model = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            model.listing(&self.index, |id| client.view.contains(id))
        };
        Some(listing::label_names(listing))
    }

    /// (network, name, member, answers naming it first) for names with 2 to `max_members`
    /// members (`/metrics`); nothing when `max_members` is below 2.
    pub fn spread(&self, max_members: usize) -> Vec<(String, String, IpAddr, u64)> {
        if max_members < 2 {
            return Vec::new();
        }
        let sets = {
            let model = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            model.spread(&self.index, max_members)
        };
        listing::spread(sets)
    }

    /// [`Registry::records`] as a known container sees them: its own networks only, as in
    /// DNS. `None` when `asker` is not a known endpoint (the caller decides what it may see).
    pub fn records_seen_by(&self, asker: IpAddr) -> Option<Records> {
        let client = self
            .index
            .addresses
            .client(&asker)
            .map(|v| v.value().clone())?;
        let listing = {
            let model = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            model.listing(&self.index, |id| client.view.contains(id))
        };
        Some(listing::records(listing))
    }

    /// The first address of an endpoint named `name`, to explain as that container.
    pub fn address_of(&self, name: &str) -> Option<IpAddr> {
        let model = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        model.address_of(&self.index, name)
    }

    /// For `explain`: who `asker` is and what it sees, every network that holds `name` with
    /// its members in or out of rotation and why, the spread and TTL of what its answer comes
    /// from, or whose address a reverse name is. With `only_seen` (a container explaining for
    /// itself), networks the asker does not see are left out entirely, not even named: the
    /// rule of `/records`. Reads only; takes no turn.
    pub fn describe(&self, name: &LowerName, asker: IpAddr, only_seen: bool) -> Description {
        let is = match (self.endpoint_name(asker), self.asker(asker)) {
            (Some(endpoint), _) => AskerIs::Endpoint(endpoint.to_string()),
            (None, Asker::Local) => AskerIs::Local,
            (None, Asker::Container | Asker::InternalOnly) => AskerIs::NamelessContainer,
            (None, Asker::Outside) => AskerIs::Stranger,
        };
        let view = self.with_view(asker, |v| v.clone());
        let visible = |id| view.contains(id);
        let listed = |id| !only_seen || view.contains(id);
        let model = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let sees = model.network_names(visible);
        let describe = |subject| Description {
            asker,
            is: is.clone(),
            sees: sees.clone(),
            only_seen,
            subject,
        };
        if let Some(ip) = arpa_address(name) {
            let targets = self.index.addresses.ptr(&ip);
            let targets = targets
                .iter()
                .flat_map(PtrTargets::iter)
                .filter(|(network, _)| listed(*network))
                .filter_map(|(network, labels)| {
                    Some((
                        self.ptr_name(network, labels)?.to_string(),
                        visible(network),
                    ))
                })
                .collect();
            return describe(Subject::Reverse { ip, targets });
        }
        // The short name the question is about, and the network it names, if it names one:
        // the forms `lookup_key` tries, in its order.
        let key = NameKey::new(name);
        let key = key.as_bytes();
        let mut holders = Vec::new();
        let named = self.network_zone(key).is_some_and(|(at, network)| {
            model.holders(
                &self.index,
                &key[..at],
                Some(network),
                visible,
                listed,
                &mut holders,
            )
        });
        let _ = named
            || model.holders(&self.index, key, None, visible, listed, &mut holders)
            || self.short_under_domain(key).is_some_and(|short| {
                model.holders(&self.index, short, None, visible, listed, &mut holders)
            });
        drop(model);
        let answered = self.lookup(name, asker).map(|set| Answered {
            spread: set
                .peek_with_firsts()
                .into_iter()
                .filter_map(|(ip, n)| Some((ip, n?)))
                .collect(),
            ttl: set.ttl(),
            origins: set.origins(),
        });
        describe(Subject::Name { holders, answered })
    }

    /// Where the name `asker` would be answered for comes from (a wildcard's, a CNAME's),
    /// for the query log: a lookup that takes no turn and no lock; `None` when not held.
    pub fn origins_of(&self, name: &LowerName, asker: IpAddr) -> Option<Origins> {
        self.lookup(name, asker).map(|set| set.origins())
    }

    /// Each endpoint `owner` has published and the registry holds, as the source sent it: a
    /// source diffs a reload against this rather than keep a copy of its own (the static
    /// source's cost ~26 bytes an endpoint at 100,000). The writer's lock is taken for the
    /// keys, then for [`PUBLISHED_BATCH`] endpoints at a time, so that another source's change
    /// waits for a batch, not for the whole walk; `each` runs under it and must not call back
    /// into the registry. An endpoint `owner` changes between batches is given as it is then
    /// (only its own source changes it, and that is the caller).
    pub fn each_published(&self, owner: Owner, mut each: impl FnMut(&Endpoint)) {
        let keys = self.model().published_keys(&self.index, owner);
        for batch in keys.chunks(PUBLISHED_BATCH) {
            let model = self.model();
            for held in batch {
                model.each_published_of(&self.index, held, &mut each);
            }
        }
    }

    fn model(&self) -> std::sync::MutexGuard<'_, Model> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn sizes(&self) -> Sizes {
        let model = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut sizes = model.sizes();
        sizes.names = self.index.names.len();
        sizes
    }

    /// Scoping, failing closed: an endpoint sees its container's networks; loopback and
    /// trusted askers the default view; anyone else the strangers' view (nothing, unless a
    /// `default_view` is configured). The view is held as long as the caller needs it.
    fn view_source(&self, asker: IpAddr) -> ViewSource<'_> {
        match self.index.addresses.client(&asker) {
            Some(client) => ViewSource::Client(client),
            None if self.is_trusted(asker) => ViewSource::Shared(self.index.default_view.load()),
            None => match self.index.early.get(&asker) {
                Some(early) => ViewSource::Early(early.view),
                None => ViewSource::Shared(self.index.stranger_view.load()),
            },
        }
    }

    /// [`Registry::view_source`]'s view, as a handle of its own (no guard held).
    fn view_of(&self, asker: IpAddr) -> Arc<View> {
        match self.view_source(asker) {
            ViewSource::Client(client) => Arc::clone(&client.value().view),
            ViewSource::Shared(view) => Arc::clone(&view),
            ViewSource::Early(view) => view,
        }
    }

    fn with_view<T>(&self, asker: IpAddr, f: impl FnOnce(&View) -> T) -> T {
        match self.view_source(asker) {
            ViewSource::Client(client) => f(&client.value().view),
            ViewSource::Shared(view) => f(&view),
            ViewSource::Early(view) => f(&view),
        }
    }
}

/// Where an asker's view is read from ([`Registry::view_source`]).
enum ViewSource<'a> {
    /// A guard on the asker's entry in the map by address.
    Client(by_address::Half<'a, Client>),
    /// The default or the strangers' view.
    Shared(arc_swap::Guard<Arc<View>>),
    /// An early asker's view (`early.rs`), copied out.
    Early(Arc<View>),
}

/// The address an `in-addr.arpa.` / `ip6.arpa.` name spells in full; `None` for a partial
/// one (a network, not a host) or any other name.
fn arpa_address(name: &LowerName) -> Option<IpAddr> {
    let net = name.parse_arpa_name().ok()?;
    (net.prefix_len() == net.max_prefix_len()).then(|| net.addr())
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod told_tests;
