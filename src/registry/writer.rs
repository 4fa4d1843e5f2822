//! The writer's model: networks, endpoints and who contributes to which name.
//!
//! Only [`super::Registry::apply`] reaches this, under the writer lock. Each change touches
//! only the names, PTRs and views it affects, rebuilds them as new immutable values and
//! publishes them into the index. Nothing here is read by the DNS hot path directly.
//!
//! Ownership: an endpoint is keyed by (owner, container), and a network lives while any owner
//! holds it, so one source's changes never remove what another published. Answers do not care
//! who published: a name on a network answers with every owner's members. An owner is kept as
//! a one-byte tag, in the same allocation as the container's key ([`Held`]): at 100,000
//! endpoints the `(Owner, String)` keys cost 7 MB more than plain container keys; these cost
//! less than those did.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    sync::Arc,
};

use hickory_server::proto::rr::{LowerName, Name};
use metrics::counter;
use tracing::{debug, warn};

use super::{
    Change, Client, Endpoint, Index, NameData, NameEntry, NameKey, NameOrigin, NetId, Origins,
    Owner, RecordSet, SharedSet, Sizes, SrvTarget, View,
    describe::{Holder, Member},
    endpoints::Endpoints,
    held::{Held, MAX_OWNERS, Tag},
    kept::{Kept, Named},
    listing::{NameListing, NetworkListing},
    name_key::wire_labels,
    ptr_sources::PtrSources,
    ptr_targets::PtrTargets,
    small_map::{SmallMap, SmallSet},
};
use crate::telemetry::names;

/// The fewest distinct views kept before unused ones are swept.
const VIEWS_SWEEP_MIN: usize = 64;

struct NetworkState {
    id: NetId,
    /// The owners that hold the network (`NetworkUp`, or an endpoint on it). It lives while
    /// any does; every endpoint's owner is among them.
    holders: SmallSet<Tag>,
    /// The owners that mark it internal; it is internal while any does.
    internal_by: SmallSet<Tag>,
    /// The members (the endpoints that answer to it) of each short name that has no published
    /// set: all of them out of rotation, and no record. A name with a set keeps them in it
    /// ([`RecordSet::members`]), in the index: a table of every name's members here cost
    /// ~54 bytes an endpoint at 100,000, and the set 16 bytes more than without them.
    resting: HashMap<NameKey, SmallSet<Held>>,
    /// Static records by short name and owner (`Change::NameData`): a map of its own, so the
    /// names without any (nearly all) pay nothing for them.
    data: HashMap<NameKey, SmallMap<Tag, NameData>>,
}

/// A short name of a network, and its published set (none: its members all rest).
type Listed = (NameKey, Option<SharedSet>);

/// The set published for `short` on network `id`, if any (the index keeps one per network
/// that holds the name with a member in rotation or a record).
pub(super) fn published(index: &Index, id: NetId, short: &[u8]) -> Option<SharedSet> {
    let entry = index.names.get(short)?;
    entry.sets().iter().find(|set| set.network() == id).cloned()
}

/// The endpoints that answer to `short` on the network `state`, in rotation or not: its
/// published set's, or the writer's own for a name without one.
fn members_of(index: &Index, state: &NetworkState, short: &[u8]) -> SmallSet<Held> {
    if let Some(members) = state.resting.get(short) {
        return members.clone();
    }
    published(index, state.id, short).map_or_else(SmallSet::default, |set| set.members())
}

pub(super) struct Model {
    domain: Option<LowerName>,
    networks: BTreeMap<String, NetworkState>,
    next_id: u32,
    /// IP → the (network, owner, container) endpoints that hold it; their PTR targets are
    /// derived from `endpoints_by` and `network_names` when published, not stored twice. An
    /// address whose one holder is a told endpoint has none here: its published PTR and its
    /// name's set tell it ([`Model::ptr_holders`]).
    ptr_sources: PtrSources,
    /// Every endpoint, by (owner, container), then network; a plain one is told by its
    /// name's set instead ([`Endpoints`]). A container is the asker, and sees its networks
    /// whichever source published them: [`Model::container_endpoints`] gathers its keys under
    /// every owner. One map for what was a map per network (its B-tree nodes about half
    /// empty, ~50 bytes an endpoint at 100,000) and a map of each container's networks beside
    /// it (~55 bytes). `Kept` inline, in 16 bytes: boxed (with its name inline, 40 bytes) it
    /// cost 3.5 MB more at 100,000 (48.9 against 45.4 MB).
    endpoints_by: Endpoints,
    /// Each held network's name by its handle.
    network_names: HashMap<NetId, Box<str>>,
    /// container → owner → the addresses it also asks from, on networks without names.
    asker_addresses: HashMap<String, SmallMap<Tag, Vec<IpAddr>>>,
    /// Every view a container has, once (see [`Client`]); swept of the unused ones when it
    /// doubles.
    views: HashMap<Box<[NetId]>, Arc<View>>,
    views_sweep_at: usize,
    /// The owners seen so far; a [`Tag`] is an index here.
    owners: Vec<Owner>,
    default_view: Option<Vec<String>>,
    /// Endpoints held, and the most the registry takes (a memory bound; about 1 KB each).
    endpoints: usize,
    max_endpoints: usize,
    /// When the last "endpoint refused" warning was logged (one a minute at most).
    refused_warned: Option<std::time::Instant>,
    /// Addresses whose holders a change touched: once it is applied whole (not in between,
    /// where a holder kept for the change may not be told yet), a holder the index tells
    /// is let go ([`Model::settle_ptr`]).
    unsettled: Vec<IpAddr>,
}

/// `text` as a fully-qualified DNS name.
pub(super) fn fqdn(text: &str) -> Result<Name, String> {
    let trimmed = text.trim_end_matches('.');
    let mut name = Name::from_ascii(trimmed).map_err(|e| e.to_string())?;
    name.set_fqdn(true);
    if trimmed.is_empty() {
        return Err("empty name".into());
    }
    Ok(name)
}

/// `text` as a registry key; `None` (logged) if it is not a DNS name.
fn key(text: &str) -> Option<NameKey> {
    lower(text).map(|name| NameKey::new(&name))
}

fn lower(text: &str) -> Option<LowerName> {
    match fqdn(text) {
        Ok(name) => Some(LowerName::from(name)),
        Err(reason) => {
            warn!(name = text, %reason, "name is not a valid DNS name; it will not be served");
            None
        }
    }
}

/// `a.` + `b.` → `a.b.`
fn join(a: &LowerName, b: &LowerName) -> Option<LowerName> {
    let joined = Name::from(a).append_domain(&Name::from(b)).ok()?;
    Some(LowerName::from(joined))
}

impl Model {
    pub(super) fn new(domain: Option<LowerName>) -> Model {
        Model {
            domain,
            networks: BTreeMap::new(),
            next_id: 0,
            ptr_sources: PtrSources::default(),
            endpoints_by: Endpoints::default(),
            network_names: HashMap::new(),
            asker_addresses: HashMap::new(),
            views: HashMap::new(),
            views_sweep_at: VIEWS_SWEEP_MIN,
            owners: Vec::new(),
            default_view: None,
            endpoints: 0,
            max_endpoints: usize::MAX,
            refused_warned: None,
            unsettled: Vec::new(),
        }
    }

    pub(super) fn set_max_endpoints(&mut self, max: usize) {
        self.max_endpoints = max;
    }

    pub(super) fn sizes(&self) -> Sizes {
        Sizes {
            networks: self.networks.len(),
            endpoints: self.endpoints,
            names: 0,
        }
    }

    /// What `/records` lists of the networks `visible` lets through: for each short name,
    /// its published set (a handle) and its members out of rotation with the reason. Copies
    /// and handles only; the wording is done outside the writer's lock
    /// ([`super::Registry::records`]), which formatting 100,000 endpoints held for 577 ms.
    pub(super) fn listing(
        &self,
        index: &Index,
        visible: impl Fn(NetId) -> bool,
    ) -> Vec<NetworkListing> {
        // Every name's members are in its published set or, without one, in `resting`.
        let mut names: HashMap<NetId, Vec<Listed>> = HashMap::new();
        for entry in index.names.iter() {
            for set in entry.value().sets().iter().filter(|s| visible(s.network())) {
                let listed = (entry.key().clone(), Some(SharedSet::clone(set)));
                names.entry(set.network()).or_default().push(listed);
            }
        }
        self.networks
            .iter()
            .filter(|(_, state)| visible(state.id))
            .map(|(network, state)| {
                let mut held = names.remove(&state.id).unwrap_or_default();
                let resting = state.resting.keys().map(|short| (short.clone(), None));
                held.extend(resting);
                // Records that build no set (none the config lets through) are listed empty.
                let unbuilt = (state.data.keys())
                    .filter(|short| !state.resting.contains_key(*short))
                    .filter(|short| published(index, state.id, short.as_bytes()).is_none())
                    .map(|short| (short.clone(), None));
                held.extend(unbuilt);
                NetworkListing {
                    network: network.clone(),
                    names: held
                        .into_iter()
                        .map(|(short, set)| self.name_listing(index, state, short, set))
                        .collect(),
                }
            })
            .collect()
    }

    /// One name of [`Model::listing`]: its set, if published, and its members out of rotation.
    fn name_listing(
        &self,
        index: &Index,
        state: &NetworkState,
        short: NameKey,
        set: Option<SharedSet>,
    ) -> NameListing {
        let members = match (&set, state.resting.get(short.as_bytes())) {
            (Some(set), _) => set.members(),
            (None, Some(members)) => members.clone(),
            (None, None) => SmallSet::default(),
        };
        NameListing {
            // The set keeps its name's origins; a name with none in rotation (rare) has them
            // gathered here.
            origins: set.as_ref().map_or_else(
                || {
                    members
                        .keys()
                        .filter_map(|h| self.kept(index, state.id, h)?.origin_of(short.as_bytes()))
                        .fold(Origins::default(), Origins::with)
                },
                |set| set.origins(),
            ),
            // A told member (its bare set's, kept nowhere) is in rotation: nothing to read.
            resting: members
                .keys()
                .filter(|h| !set.as_ref().is_some_and(|s| self.endpoints_by.tells(s, h)))
                .filter_map(|h| self.kept(index, state.id, h))
                .filter_map(|e| Some((e.out_of_rotation()?, e)))
                .flat_map(|(reason, e)| e.addresses().map(move |ip| (ip, reason)))
                .collect(),
            short,
            set,
        }
    }

    /// The sets of names whose rotating family has 2 to `max_members` members, by network
    /// and short name (for `/metrics`; worded outside the lock).
    pub(super) fn spread(
        &self,
        index: &Index,
        max_members: usize,
    ) -> Vec<(String, NameKey, SharedSet)> {
        let mut out = Vec::new();
        for entry in index.names.iter() {
            for set in entry.value().sets() {
                let (v4, v6) = (set.v4_members().len(), set.v6_members().len());
                if v4.max(v6) > max_members || v4.max(v6) < 2 {
                    continue;
                }
                if let Some(network) = self.network_names.get(&set.network()) {
                    out.push((
                        network.to_string(),
                        entry.key().clone(),
                        SharedSet::clone(set),
                    ));
                }
            }
        }
        // In network order, as the networks were walked before.
        out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        out
    }

    /// For `explain`: each network holding the short name `short` (only network `only`, when
    /// the question named one) that `listed` lets through, whether `visible` lets the asker
    /// see it, and its members' state. Whether any network holds it.
    pub(super) fn holders(
        &self,
        index: &Index,
        short: &[u8],
        only: Option<NetId>,
        visible: impl Fn(NetId) -> bool,
        listed: impl Fn(NetId) -> bool,
        out: &mut Vec<Holder>,
    ) -> bool {
        let mut any = false;
        for (network, state) in &self.networks {
            if only.is_some_and(|id| id != state.id) || !listed(state.id) {
                continue;
            }
            let members = members_of(index, state, short);
            if members.is_empty() && !state.data.contains_key(short) {
                continue;
            }
            any = true;
            let members = members
                .keys()
                .filter_map(|h| Some((h, self.kept(index, state.id, h)?)))
                .map(|(held, endpoint)| Member {
                    addresses: endpoint.addresses().collect(),
                    name: endpoint.name().to_string(),
                    out_of_rotation: endpoint.out_of_rotation(),
                    ttl: endpoint.ttl(),
                    owner: self
                        .owners
                        .get(usize::from(held.tag()))
                        .map_or("?", |o| o.0),
                    offers: endpoint
                        .srv()
                        .iter()
                        .map(|p| (p.service.clone(), p.proto.label(), p.port, p.weight))
                        .collect(),
                    origin: endpoint.origin_of(short),
                })
                .collect();
            let data = state
                .data
                .get(short)
                .iter()
                .flat_map(|d| d.iter())
                .map(|(tag, data)| {
                    let owner = self.owners.get(usize::from(*tag)).map_or("?", |o| o.0);
                    (owner, data.clone())
                })
                .collect();
            out.push(Holder {
                network: network.clone(),
                seen: visible(state.id),
                members,
                data,
            });
        }
        any
    }

    /// The names of the networks `visible` lets through.
    pub(super) fn network_names(&self, visible: impl Fn(NetId) -> bool) -> Vec<String> {
        self.networks
            .iter()
            .filter(|(_, s)| visible(s.id))
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// The first address of an endpoint whose name is `name` (for `explain --from NAME`).
    /// The handle of the network named `name`, if it is held.
    pub(super) fn network_id(&self, name: &str) -> Option<NetId> {
        self.networks.get(name).map(|s| s.id)
    }

    pub(super) fn address_of(&self, index: &Index, name: &str) -> Option<IpAddr> {
        self.endpoints_by.address_named(index, name)
    }

    /// The keys of every endpoint `owner` holds (none if it was never seen).
    pub(super) fn published_keys(&self, index: &Index, owner: Owner) -> Vec<Held> {
        let Some(tag) = self.owners.iter().position(|o| *o == owner) else {
            return Vec::new();
        };
        self.endpoints_by.of_owner(index, tag as Tag)
    }

    /// Each endpoint of `held`, on each of its networks, as its source sent it (built one at a
    /// time, kept nowhere); nothing if it has gone.
    pub(super) fn each_published_of(
        &self,
        index: &Index,
        held: &Held,
        each: &mut impl FnMut(&Endpoint),
    ) {
        for (id, kept) in self.endpoints_by.networks_of(index, held) {
            if let Some(network) = self.network_names.get(&id) {
                each(&kept.to_endpoint(network));
            }
        }
    }

    /// Keeps every endpoint in the writer's own map (the differential test's twin).
    #[cfg(test)]
    pub(super) fn keep_every_endpoint(&mut self) {
        self.endpoints_by.keep_all = true;
    }

    /// How many endpoints the writer keeps in its own map (the rest its names' sets tell).
    #[cfg(test)]
    pub(super) fn kept_endpoints(&self) -> usize {
        self.endpoints_by.kept_count()
    }

    /// How many (address, holder) pairs the writer keeps (the rest PTRs and sets tell).
    #[cfg(test)]
    pub(super) fn kept_ptr_holders(&self) -> usize {
        self.ptr_sources.len()
    }

    /// The tag of `owner`, given on first sight.
    fn tag(&mut self, owner: Owner) -> Tag {
        if let Some(at) = self.owners.iter().position(|o| *o == owner) {
            return at as Tag;
        }
        if self.owners.len() >= MAX_OWNERS {
            warn!(%owner, "more sources than the registry tells apart; sharing the last tag");
            return (MAX_OWNERS - 1) as Tag;
        }
        self.owners.push(owner);
        (self.owners.len() - 1) as Tag
    }

    pub(super) fn apply(&mut self, owner: Owner, change: Change, index: &Index) {
        self.apply_change(owner, change, index);
        let mut unsettled = std::mem::take(&mut self.unsettled);
        unsettled.sort_unstable();
        unsettled.dedup();
        for ip in unsettled.drain(..) {
            self.settle_ptr(ip, index);
        }
        // Its buffer kept for the next change, unless a network going (an address an endpoint)
        // grew it: 100,000 addresses would hold 2 MB for good.
        if unsettled.capacity() <= 64 {
            self.unsettled = unsettled;
        }
    }

    fn apply_change(&mut self, owner: Owner, change: Change, index: &Index) {
        debug!(%owner, ?change, "applying change");
        let owner = self.tag(owner);
        match change {
            Change::NetworkUp { network } => {
                self.hold_network(&network, owner, index);
            }
            Change::NetworkDown { network } => self.release_network(&network, owner, index),
            Change::EndpointUp(endpoint) => self.upsert_endpoint(owner, endpoint, index),
            Change::EndpointDown { network, container } => {
                self.remove_endpoint(&network, &Held::new(owner, &container), index)
            }
            Change::NetworkInternal { network, internal } => {
                self.hold_network(&network, owner, index);
                if let Some(state) = self.networks.get_mut(&network) {
                    if internal {
                        state.internal_by.insert(owner, ());
                    } else {
                        state.internal_by.remove(&owner);
                    }
                    publish_internal(state, index);
                }
            }
            Change::NetworkGateways { network, gateways } => {
                self.hold_network(&network, owner, index);
                if let Some(state) = self.networks.get(&network) {
                    if gateways.is_empty() {
                        index.gateways.remove(&state.id);
                    } else {
                        let v4 = gateways.iter().filter_map(|ip| match ip {
                            IpAddr::V4(v4) => Some(*v4),
                            IpAddr::V6(_) => None,
                        });
                        let v6 = gateways.iter().filter_map(|ip| match ip {
                            IpAddr::V6(v6) => Some(*v6),
                            IpAddr::V4(_) => None,
                        });
                        let set = RecordSet::new(state.id, v4.collect(), v6.collect(), None, None);
                        index.gateways.insert(state.id, SharedSet::new(set));
                    }
                }
            }
            Change::NameData {
                network,
                name,
                data,
            } => self.set_name_data(owner, &network, &name, data, index),
            Change::AskerAddresses {
                container,
                addresses,
            } => {
                let by_owner = self.asker_addresses.entry(container.clone()).or_default();
                let kept = addresses.clone();
                let old = if addresses.is_empty() {
                    by_owner.remove(&owner)
                } else {
                    by_owner.insert(owner, addresses)
                };
                if by_owner.is_empty() {
                    self.asker_addresses.remove(&container);
                }
                self.release_addresses(&container, &old.unwrap_or_default(), &kept, index);
                self.publish_container_view(&container, index);
            }
        }
    }

    /// Records that `owner` holds `network`, creating the network if no owner did.
    fn hold_network(&mut self, network: &str, owner: Tag, index: &Index) -> NetId {
        if let Some(state) = self.networks.get_mut(network) {
            state.holders.insert(owner, ());
            return state.id;
        }
        let id = NetId(self.next_id);
        self.next_id += 1;
        let mut holders = SmallSet::default();
        holders.insert(owner, ());
        self.network_names.insert(id, network.into());
        self.networks.insert(
            network.to_string(),
            NetworkState {
                id,
                holders,
                internal_by: SmallSet::default(),
                resting: HashMap::new(),
                data: HashMap::new(),
            },
        );
        for zone in self.network_zones(network) {
            index.zone_tails.add(zone.as_bytes());
            index.zones.insert(zone, id);
        }
        if let Ok(name) = fqdn(network) {
            index
                .network_labels
                .insert(id, wire_labels(&name).collect());
        }
        self.publish_default_view(index);
        id
    }

    /// `owner`'s static records under `name` on `network` become `data` (`None`: none).
    fn set_name_data(
        &mut self,
        owner: Tag,
        network: &str,
        name: &str,
        data: Option<NameData>,
        index: &Index,
    ) {
        let Some(short) = key(name) else {
            return;
        };
        if data.is_some() {
            self.hold_network(network, owner, index);
        }
        let Some(state) = self.networks.get_mut(network) else {
            return;
        };
        match data {
            Some(data) => {
                state
                    .data
                    .entry(short.clone())
                    .or_default()
                    .insert(owner, data);
            }
            None => {
                let Some(held) = state.data.get_mut(&short) else {
                    return;
                };
                held.remove(&owner);
                if held.is_empty() {
                    state.data.remove(&short);
                }
            }
        }
        self.rebuild_name(network, &short, index);
    }

    /// `owner` lets go of `network`: its endpoints and its internal mark there go; the
    /// network itself goes when no owner holds it any more.
    fn release_network(&mut self, network: &str, owner: Tag, index: &Index) {
        let Some(state) = self.networks.get(network) else {
            return;
        };
        // Every endpoint looked at: a network going is rare beside its endpoints' changes.
        let id = state.id;
        let own = self.endpoints_by.on_network(index, id, owner);
        for held in own {
            self.remove_endpoint(network, &held, index);
        }
        let with_data: Vec<NameKey> = self.networks.get(network).map_or_else(Vec::new, |state| {
            state
                .data
                .iter()
                .filter(|(_, held)| held.keys().any(|t| *t == owner))
                .map(|(k, _)| k.clone())
                .collect()
        });
        for short in with_data {
            if let Some(state) = self.networks.get_mut(network)
                && let Some(held) = state.data.get_mut(&short)
            {
                held.remove(&owner);
                if held.is_empty() {
                    state.data.remove(&short);
                }
            }
            self.rebuild_name(network, &short, index);
        }
        let Some(state) = self.networks.get_mut(network) else {
            return;
        };
        state.holders.remove(&owner);
        state.internal_by.remove(&owner);
        publish_internal(state, index);
        if !state.holders.is_empty() {
            return;
        }
        if let Some(state) = self.networks.remove(network) {
            self.network_names.remove(&state.id);
            index.network_labels.remove(&state.id);
            index.internal.remove(&state.id);
            index.gateways.remove(&state.id);
        }
        for zone in self.network_zones(network) {
            index.zones.remove(&zone);
        }
        index.zone_tails.rebuild(
            self.networks
                .keys()
                .flat_map(|network| self.network_zones(network)),
        );
        self.publish_default_view(index);
    }

    fn upsert_endpoint(&mut self, owner: Tag, mut endpoint: Endpoint, index: &Index) {
        let network = std::mem::take(&mut endpoint.network);
        let held = self.held(owner, &endpoint.container, index);
        // Its addresses on the network before, if it was there (holding the network changes no
        // endpoint).
        let old = (self.networks.get(&network))
            .and_then(|s| self.kept(index, s.id, &held))
            .map(|k| k.addresses().collect::<Vec<_>>());
        let is_new = old.is_none();
        if is_new && self.endpoints >= self.max_endpoints {
            counter!(names::REGISTRY_REFUSED_ENDPOINTS_TOTAL).increment(1);
            let now = std::time::Instant::now();
            if self
                .refused_warned
                .is_none_or(|t| now.duration_since(t).as_secs() >= 60)
            {
                self.refused_warned = Some(now);
                warn!(
                    max_endpoints = self.max_endpoints,
                    %network,
                    container = held.container(),
                    "registry full: endpoint not served (raise server.max_endpoints)"
                );
            }
            return;
        }
        if is_new {
            self.endpoints += 1;
        }
        let net_id = self.hold_network(&network, owner, index);
        // Holders of its addresses, old and new, that only the index told are kept before
        // anything about them changes.
        for ip in old.into_iter().flatten().chain(endpoint.addresses()) {
            self.pin_ptr(ip, index);
        }
        let Some(state) = self.networks.get_mut(&network) else {
            return;
        };
        // Each touched name's members as they will be.
        let mut touched: BTreeMap<NameKey, SmallSet<Held>> = BTreeMap::new();
        let members = |short: &NameKey| members_of(index, state, short.as_bytes());
        let mut old_addresses = Vec::new();
        if let Some(old) = self.endpoints_by.take(index, net_id, &held) {
            old_addresses.extend(old.addresses());
            for name in old.of(held.container()).names().filter_map(key) {
                touched
                    .entry(name)
                    .or_insert_with_key(members)
                    .remove(&held);
            }
        }
        for name in endpoint.names().filter_map(key) {
            touched
                .entry(name)
                .or_insert_with_key(members)
                .insert(held.clone(), ());
        }
        let addresses: Vec<IpAddr> = endpoint.addresses().collect();
        (self.endpoints_by).insert(held.clone(), net_id, Kept::from(endpoint));

        for (short, members) in touched {
            self.rebuild_set(&network, &short, members, index);
        }
        self.set_container_addresses(&held, net_id, &old_addresses, &addresses, index);
    }

    fn remove_endpoint(&mut self, network: &str, held: &Held, index: &Index) {
        let Some(net_id) = self.networks.get(network).map(|state| state.id) else {
            return;
        };
        let old = (self.kept(index, net_id, held)).map(|k| k.addresses().collect::<Vec<_>>());
        for ip in old.into_iter().flatten() {
            self.pin_ptr(ip, index);
        }
        let Some(old) = self.endpoints_by.take(index, net_id, held) else {
            return;
        };
        let Some(state) = self.networks.get(network) else {
            return;
        };
        self.endpoints = self.endpoints.saturating_sub(1);
        let mut touched: BTreeMap<NameKey, SmallSet<Held>> = BTreeMap::new();
        for name in old.of(held.container()).names().filter_map(key) {
            touched
                .entry(name)
                .or_insert_with_key(|short| members_of(index, state, short.as_bytes()))
                .remove(held);
        }
        for (short, members) in touched {
            self.rebuild_set(network, &short, members, index);
        }
        let old_addresses: Vec<IpAddr> = old.addresses().collect();
        self.set_container_addresses(held, net_id, &old_addresses, &[], index);
    }

    /// [`Model::rebuild_set`] with the name's members as they are (its records changed).
    fn rebuild_name(&mut self, network: &str, short: &NameKey, index: &Index) {
        let Some(state) = self.networks.get(network) else {
            return;
        };
        let members = members_of(index, state, short.as_bytes());
        self.rebuild_set(network, short, members, index);
    }

    /// Recomputes one (network, short name) record set from `entry`, the endpoints that answer
    /// to it now, and republishes the name. The set keeps them; a name without a set keeps
    /// them in `resting`.
    fn rebuild_set(
        &mut self,
        network: &str,
        short: &NameKey,
        entry: SmallSet<Held>,
        index: &Index,
    ) {
        let Some(state) = self.networks.get_mut(network) else {
            return;
        };
        let previous = published(index, state.id, short.as_bytes());
        // A plain member that only the old set told is kept before the set changes, and its
        // address's holder, which its set and PTR told, with it.
        let id = state.id;
        for held in entry.keys() {
            if let Some(ip) = self.endpoints_by.told_address(index, id, held) {
                self.pin_ptr(IpAddr::V4(ip), index);
                self.endpoints_by.keep(index, id, held);
            }
        }
        let Some(state) = self.networks.get_mut(network) else {
            return;
        };
        let members: Vec<Named> = entry
            .keys()
            .filter_map(|c| self.endpoints_by.get(index, state.id, c))
            .filter(|e| e.in_rotation())
            .collect();
        // Where the name comes from: each endpoint that answers to it (in rotation or not),
        // and the static records under it.
        let mut origins = Origins::default();
        for endpoint in entry
            .keys()
            .filter_map(|c| self.endpoints_by.get(index, state.id, c))
        {
            if let Some(origin) = endpoint.origin_of(short.as_bytes()) {
                origins = origins.with(origin);
            }
        }
        if short.is_wildcard() {
            origins = origins.wildcard();
        }
        let data: Vec<&NameData> = state
            .data
            .get(short)
            .iter()
            .flat_map(|d| d.values())
            .collect();
        let mut cname = data.iter().find_map(|d| d.cname.as_deref());
        let has_other = !entry.is_empty() || has_other_data(&data);
        if let Some(target) = cname.filter(|_| has_other) {
            // RFC 1034 3.6.2: a CNAME name has no other data. The config forbids it within one
            // file; another source's holder of the name wins over the CNAME.
            warn!(%network, name = %short, target, "a CNAME name that also has other data: the CNAME is not served");
            cname = None;
        }
        let cname = cname.and_then(|t| fqdn(t).ok());
        for d in &data {
            origins = origins.with(if d.cname.is_some() {
                NameOrigin::Cname
            } else {
                NameOrigin::Config
            });
        }
        let txt: Vec<Box<[u8]>> = data
            .iter()
            .flat_map(|d| d.txt.iter())
            .map(|t| t.clone().into_boxed_slice())
            .collect();
        let set = if members.is_empty() && cname.is_none() && !has_other_data(&data) {
            None
        } else {
            let mut v4: Vec<Ipv4Addr> = members.iter().filter_map(|e| e.ipv4).collect();
            let mut v6: Vec<Ipv6Addr> = members.iter().filter_map(|e| e.ipv6()).collect();
            v4.extend(data.iter().flat_map(|d| d.v4.iter().copied()));
            v6.extend(data.iter().flat_map(|d| d.v6.iter().copied()));
            // The shortest TTL among members: no client may cache a member past its own TTL.
            let ttl = members.iter().filter_map(|e| e.ttl()).min();
            let cursors = previous.as_ref().and_then(|s| s.cursors().cloned());
            let srv = srv_targets(network, &members);
            Some(
                RecordSet::new(state.id, v4, v6, ttl, cursors)
                    .with_srv(srv)
                    .with_cname(cname)
                    .with_txt(txt)
                    .with_origins(origins)
                    .carrying_firsts(previous.as_deref()),
            )
        };
        let id = state.id;
        let set = match set {
            Some(set) => {
                state.resting.remove(short);
                Some(SharedSet::new(set.with_members(entry)))
            }
            None if entry.is_empty() => {
                state.resting.remove(short);
                None
            }
            None => {
                state.resting.insert(short.clone(), entry);
                None
            }
        };
        let lone = set.as_ref().and_then(|s| s.bare());
        let lone = lone.map(|(held, ip)| (held.clone(), ip));
        self.publish_name(short, id, set, index);
        if let Some((held, ip)) = lone {
            self.endpoints_by.settle(index, id, &held);
            self.unsettled.push(IpAddr::V4(ip));
        }
    }

    /// Publishes `set` as network `network`'s for `short` (none: it has none now), beside the
    /// other networks' sets of the name, in network-name order. Only short names are
    /// published: `SHORT.NETWORK.` and `SHORT.DOMAIN.` are resolved by `Registry::lookup` from
    /// these (storing those forms cost ~170 MB at 100,000 endpoints). The index's entry is the
    /// only list of a name's sets: a map of contributors cost ~55 MB, and a copy of each set in
    /// the writer's names ~1 MB.
    fn publish_name(&self, short: &NameKey, network: NetId, set: Option<SharedSet>, index: &Index) {
        let mut sets: Vec<SharedSet> = index
            .names
            .get(short.as_bytes())
            .map(|entry| {
                let others = entry.sets().iter().filter(|s| s.network() != network);
                others.cloned().collect()
            })
            .unwrap_or_default();
        sets.extend(set);
        sets.sort_by(|a, b| {
            let name = |s: &SharedSet| self.network_names.get(&s.network());
            name(a).cmp(&name(b))
        });
        // Wildcards are counted, so that a name no one holds looks for one only while any
        // exists (a miss is what every forwarded question costs).
        let wildcard = short.is_wildcard();
        let Some(entry) = NameEntry::new(sets) else {
            if index.names.remove(short).is_some() && wildcard {
                index
                    .wildcards
                    .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            }
            return;
        };
        if index.names.insert(short.clone(), entry).is_none() && wildcard {
            index
                .wildcards
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// `NETWORK.` and, with a search domain, `NETWORK.DOMAIN.`, as zone keys.
    fn network_zones(&self, network: &str) -> Vec<NameKey> {
        let Some(net) = lower(network) else {
            return Vec::new();
        };
        let mut zones = vec![NameKey::new(&net)];
        if let Some(with_domain) = self.domain.as_ref().and_then(|d| join(&net, d)) {
            zones.push(NameKey::new(&with_domain));
        }
        zones
    }

    /// Records where an endpoint is on one network, then republishes its PTRs and its
    /// container's view.
    /// `old` are its addresses before, `addresses` after (none: it is gone).
    fn set_container_addresses(
        &mut self,
        held: &Held,
        network: NetId,
        old: &[IpAddr],
        addresses: &[IpAddr],
        index: &Index,
    ) {
        let container = held.container();
        let source = (network, held.clone());
        let mut touched_ips: BTreeSet<IpAddr> = old.iter().copied().collect();
        for ip in old {
            self.ptr_sources.remove(ip, &source);
        }
        for ip in addresses {
            self.ptr_sources.insert(*ip, source.clone());
            touched_ips.insert(*ip);
        }
        for ip in &touched_ips {
            self.publish_ptr(*ip, index);
            self.unsettled.push(*ip);
        }
        // The view is by source address: every address of this container sees all its networks.
        self.release_addresses(container, old, addresses, index);
        self.publish_container_view(container, index);
    }

    /// `container` no longer asks from those of `old` not in `kept`: their asker entries go,
    /// and any other container that still has one of them (a static entry beside a container
    /// at the same address, an address reused before its old holder's removal arrived) gets
    /// its own back. A kept address is left for the caller to publish over in place, so a
    /// question from it in between still finds the container (clearing it first left the
    /// container unknown to about 1 question in 20 asked during updates).
    fn release_addresses(
        &mut self,
        container: &str,
        old: &[IpAddr],
        kept: &[IpAddr],
        index: &Index,
    ) {
        let mut others: BTreeSet<String> = BTreeSet::new();
        for ip in old.iter().filter(|ip| !kept.contains(ip)) {
            index.addresses.set_client(*ip, None);
            let holders = self.ptr_holders(ip, index);
            others.extend(
                (holders.iter())
                    .map(|(_, held)| held.container())
                    .filter(|other| *other != container)
                    .map(str::to_string),
            );
        }
        for other in others {
            self.publish_container_view(&other, index);
        }
    }

    /// The endpoint `held`'s part of its PTR target on `network` (`NAME.`; the reader appends
    /// the network's published labels), if `NAME.NETWORK.` is a DNS name.
    fn ptr_target(&self, network: NetId, held: &Held, index: &Index) -> Option<(NetId, Name)> {
        let network_name = self.network_names.get(&network)?;
        let endpoint = self.kept(index, network, held)?;
        let whole = fqdn(&format!("{}.{network_name}", endpoint.name())).ok()?;
        let own = fqdn(endpoint.name()).ok()?;
        let net = index.network_labels.get(&network)?;
        // What the reader rebuilds must be the whole (a name ending in `\`, parsed alone, would
        // lose its escape).
        let joined = wire_labels(&own).chain(net.iter().copied());
        joined.eq(wire_labels(&whole)).then_some((network, own))
    }

    /// The key of `owner`'s `container`: the one the maps share if it has endpoints, else new.
    fn held(&self, owner: Tag, container: &str, index: &Index) -> Held {
        let mut key = String::new();
        Held::text(owner, container, &mut key);
        (self.endpoints_by.shared_key(index, &key)).unwrap_or_else(|| Held::of_text(&key))
    }

    /// Every endpoint of `container` that has an address, whichever owner published it, as
    /// (network, key).
    fn container_endpoints(&self, container: &str, index: &Index) -> Vec<(NetId, Held)> {
        (self.endpoints_by).of_container(index, container, self.owners.len())
    }

    /// The endpoint `held` on the network whose handle is `network`.
    fn kept<'a>(&'a self, index: &Index, network: NetId, held: &'a Held) -> Option<Named<'a>> {
        self.endpoints_by.get(index, network, held)
    }

    /// `ip`'s holders: those `ptr_sources` keeps, or else the one its PTR and a set tell
    /// ([`Endpoints::ptr_holder`]).
    fn ptr_holders(&self, ip: &IpAddr, index: &Index) -> Vec<(NetId, Held)> {
        let kept: Vec<(NetId, Held)> = (self.ptr_sources.holders(ip))
            .map(|(network, held)| (network, held.clone()))
            .collect();
        if !kept.is_empty() {
            return kept;
        }
        self.endpoints_by
            .ptr_holder(index, *ip)
            .into_iter()
            .collect()
    }

    /// Keeps `ip`'s told holder in `ptr_sources`: before anything about it or its holders
    /// changes, which would leave it untold.
    fn pin_ptr(&mut self, ip: IpAddr, index: &Index) {
        if self.ptr_sources.holders(&ip).next().is_some() {
            return;
        }
        if let Some(source) = self.endpoints_by.ptr_holder(index, ip) {
            self.ptr_sources.insert(ip, source);
        }
    }

    /// Lets go of `ip`'s one kept holder when its published PTR and a set tell it.
    fn settle_ptr(&mut self, ip: IpAddr, index: &Index) {
        let only = {
            let mut holders = self.ptr_sources.holders(&ip);
            let (Some(only), None) = (holders.next(), holders.next()) else {
                return;
            };
            (only.0, only.1.clone())
        };
        if self.endpoints_by.ptr_holder(index, ip).as_ref() == Some(&only) {
            self.ptr_sources.remove(&ip, &only);
        }
    }

    fn publish_ptr(&mut self, ip: IpAddr, index: &Index) {
        let targets: Vec<(NetId, Name)> = (self.ptr_holders(&ip, index).iter())
            .filter_map(|(network, held)| self.ptr_target(*network, held, index))
            .collect();
        let targets = PtrTargets::new(targets.iter().map(|(network, name)| (*network, name)));
        index.addresses.set_ptr(ip, targets);
    }

    /// Every address `container` asks from (its endpoints' and its nameless ones) sees all the
    /// networks of its endpoints; a container with only nameless addresses sees none.
    fn publish_container_view(&mut self, container: &str, index: &Index) {
        let endpoints = self.container_endpoints(container, index);
        if endpoints.is_empty() && !self.asker_addresses.contains_key(container) {
            return;
        }
        let view = View::only(endpoints.iter().map(|(id, _)| *id).collect());
        let view = match self.views.get(view.networks()) {
            Some(shared) => Arc::clone(shared),
            None => {
                if self.views.len() >= self.views_sweep_at {
                    self.views.retain(|_, v| Arc::strong_count(v) > 1);
                    self.views_sweep_at = VIEWS_SWEEP_MIN.max(2 * self.views.len());
                }
                let shared = Arc::new(view);
                self.views
                    .insert(shared.networks().into(), Arc::clone(&shared));
                shared
            }
        };
        let extra = self.asker_addresses.get(container);
        // One value for all the container's addresses, with a number that says they are one
        // asker's (any hash of the key does: it is compared, never looked up).
        let view = Client {
            view,
            container: {
                use std::hash::{Hash, Hasher};
                let mut hasher = std::hash::DefaultHasher::new();
                container.hash(&mut hasher);
                hasher.finish()
            },
        };
        let addresses = endpoints
            .iter()
            .filter_map(|(network, held)| self.kept(index, *network, held))
            .flat_map(|endpoint| endpoint.addresses())
            .chain(
                extra
                    .into_iter()
                    .flat_map(|e| e.values().flatten().copied()),
            );
        for ip in addresses {
            index.addresses.set_client(ip, Some(view.clone()));
            // Published: the source's word replaces the early scope (`early.rs`).
            index.early.entries.remove(&ip);
        }
        index.early.learned.notify_waiters();
    }

    /// The default view (loopback, trusted askers) and the strangers' one: the default view
    /// when it is configured, else nothing (scoping fails closed).
    /// The networks askers that are not endpoints may see (a server setting, not a source's).
    pub(super) fn set_default_view(&mut self, names: Option<Vec<String>>, index: &Index) {
        self.default_view = names;
        self.publish_default_view(index);
    }

    fn publish_default_view(&self, index: &Index) {
        let (view, stranger) = match &self.default_view {
            None => (View::All, View::only(Vec::new())),
            Some(names) => {
                let view = View::only(
                    names
                        .iter()
                        .filter_map(|n| self.networks.get(n).map(|s| s.id))
                        .collect(),
                );
                (view.clone(), view)
            }
        };
        index.default_view.store(Arc::new(view));
        index.stranger_view.store(Arc::new(stranger));
        index.strangers_see_nothing.store(
            self.default_view.is_none(),
            std::sync::atomic::Ordering::Relaxed,
        );
    }
}

/// The SRV targets `members` offer on `network`: each port of each member, pointing at
/// `NAME.NETWORK.` (a member whose name is not a DNS name offers none).
fn srv_targets(network: &str, members: &[Named]) -> Vec<SrvTarget> {
    members
        .iter()
        .filter(|e| !e.srv().is_empty())
        .filter_map(|e| Some((e, fqdn(&format!("{}.{network}", e.name())).ok()?)))
        .flat_map(|(e, target)| {
            e.srv().iter().map(move |port| SrvTarget {
                service: port.service.as_str().into(),
                proto: port.proto,
                target: target.clone(),
                port: port.port,
                weight: port.weight,
                ipv4: e.ipv4,
                ipv6: e.ipv6(),
            })
        })
        .collect()
}

/// Whether static records give a name addresses or TXT.
fn has_other_data(data: &[&NameData]) -> bool {
    data.iter()
        .any(|d| !d.v4.is_empty() || !d.v6.is_empty() || !d.txt.is_empty())
}

/// Publishes whether a network is internal: while any owner marks it so.
fn publish_internal(state: &NetworkState, index: &Index) {
    if state.internal_by.is_empty() {
        index.internal.remove(&state.id);
    } else {
        index.internal.insert(state.id, ());
    }
}
