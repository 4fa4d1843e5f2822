//! One name on one network: its members and the rotation cursors that hand them out in turn.
//!
//! The k-th answer lists all members starting at member k mod N. The cursor is one atomic
//! counter per address family, so concurrent readers never see the same k twice and never
//! lock. A record set is immutable once published; it must not be mutated in place.

use std::{
    net::{Ipv4Addr, Ipv6Addr},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use hickory_server::proto::rr::Name;

use super::{NetId, Origins, SrvProto, held::Held, small_map::SmallSet};

/// Rotation counters, shared between successive versions of a record set so that adding or
/// removing a member neither restarts nor skews the rotation.
#[derive(Debug, Default)]
pub struct Cursors {
    v4: AtomicUsize,
    v6: AtomicUsize,
    /// One for every service the set offers: with one service per name (the usual case) its
    /// SRV answers rotate exactly; with several, they share the turns.
    srv: AtomicUsize,
}

/// One SRV answer a member gives: its port for one service, and where it is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SrvTarget {
    pub service: Box<str>,
    pub proto: SrvProto,
    /// `NAME.NETWORK.` of the member.
    pub target: Name,
    pub port: u16,
    pub weight: u16,
    /// The target's addresses, for the additional section.
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6: Option<std::net::Ipv6Addr>,
}

/// A published set as the index and readers hold it. A set with nothing beyond one IPv4 member
/// and one endpoint (nearly every name: no extras) is kept by value, in the index's slot: a
/// copy is its 32 bytes and a count on its endpoint's key, as a shared set's is a count on the
/// set. Any other set is shared, in `triomphe`'s `Arc` (no weak count: no set is ever held
/// weakly). Each lone set in an allocation of its own cost 48 bytes of the allocator a name
/// beside its 8 in the slot, 2.7 MB more at 100,000 endpoints.
#[derive(Debug)]
pub struct SharedSet(Stored);

#[derive(Debug)]
enum Stored {
    /// Its `extra` is `None` (see [`SharedSet::new`]).
    Lone(RecordSet),
    Shared(triomphe::Arc<RecordSet>),
}

// Inline, a set must cost the index's slot no more than it saves: the tag goes in a niche of
// the set's own fields.
const _: () = assert!(std::mem::size_of::<SharedSet>() == 32);

impl SharedSet {
    pub fn new(set: RecordSet) -> SharedSet {
        SharedSet(match set.extra {
            None => Stored::Lone(set),
            Some(_) => Stored::Shared(triomphe::Arc::new(set)),
        })
    }
}

impl Clone for SharedSet {
    fn clone(&self) -> SharedSet {
        SharedSet(match &self.0 {
            Stored::Lone(set) => Stored::Lone(RecordSet {
                extra: None,
                member: set.member.clone(),
                network: set.network,
                v4: set.v4,
                origins: set.origins,
            }),
            Stored::Shared(set) => Stored::Shared(triomphe::Arc::clone(set)),
        })
    }
}

impl std::ops::Deref for SharedSet {
    type Target = RecordSet;
    #[inline]
    fn deref(&self) -> &RecordSet {
        match &self.0 {
            Stored::Lone(set) => set,
            Stored::Shared(set) => set,
        }
    }
}

/// One name on one network. Laid out for the set nearly every name has, one endpoint with one
/// IPv4 address: that one inline, everything else (more members, IPv6, SRV, a TTL, cursors)
/// behind one pointer. 32 bytes: such a set is kept inline in the index ([`SharedSet`]), and
/// a shared one is in glibc's 48-byte class with its count. With the members and addresses as
/// small vectors inline (48 bytes, a 64-byte chunk) each set cost 16 bytes more, 1.6 MB at
/// 100,000 endpoints.
#[derive(Debug)]
pub struct RecordSet {
    /// What a set has beyond one IPv4 member and one endpoint; `None` for most.
    extra: Option<Box<Extra>>,
    /// The writer's, never read by answers: the endpoint that answers to the name on this
    /// network, when it is one (several are in the extras' `members`). Kept here rather than
    /// in a table of the writer's own, whose slots cost ~54 bytes a name at 100,000 endpoints.
    member: Option<Held>,
    network: NetId,
    /// The IPv4 member, when there is one; two or more are in the extras' `v4` (sorted).
    v4: Option<Ipv4Addr>,
    /// Where the name comes from (for `explain`, `/records`, the query log; never answers).
    origins: Origins,
}

// The answer to every query is one of these, and there is one per name per network.
const _: () = assert!(std::mem::size_of::<RecordSet>() <= 32);

/// What a set may have beyond one IPv4 member and one endpoint.
#[derive(Debug, Default)]
struct Extra {
    /// Two IPv4 members or more, sorted (one is the set's own `v4`).
    v4: Box<[Ipv4Addr]>,
    /// Two endpoints or more (one is the set's own `member`).
    members: SmallSet<Held>,
    v6: Box<[Ipv6Addr]>,
    /// `None` until the set first has something to rotate (two addresses of a family, or two
    /// targets of one service), then shared by every later version, lone or not. A set of one member
    /// (nearly every name) has one order and takes no turn: 48 bytes a name saved, 4.8 MB at
    /// 100,000 endpoints, and no shared counter written by every answer. Kept in the extras
    /// (a set that rotates has them), so that a lone member's set is 8 bytes smaller.
    cursors: Option<Arc<Cursors>>,
    /// The shortest TTL of the members that set one; `None`: the server's.
    ttl: Option<u32>,
    /// SRV targets sorted by service and protocol (so one service's are a contiguous run).
    srv: Box<[SrvTarget]>,
    /// A static CNAME: the name is an alias for this one (RFC 1034 3.6.2), and has nothing else.
    cname: Option<Name>,
    /// A static TXT record's character-strings; empty: no TXT.
    txt: Box<[Box<[u8]>]>,
    /// Counts carried from earlier versions; `None`: none yet (a set built before its name
    /// was ever asked, as every set at start is, costs nothing for them).
    firsts: Option<Box<Firsts>>,
}

/// Each member's "named first" count when this version was built, and the cursors then.
#[derive(Debug, Default)]
struct Firsts {
    v4_since: usize,
    v6_since: usize,
    /// Aligned with the members.
    v4: Box<[u64]>,
    v6: Box<[u64]>,
}

/// How many of the turns `since..now` named member `i` of `n` first (turn k names k mod n).
fn turns_naming(i: usize, n: usize, since: usize, now: usize) -> u64 {
    let upto = |x: usize| x / n + usize::from(i < x % n);
    // A cursor past usize::MAX wraps; the count is then only modulo that, as the rotation is.
    upto(now).wrapping_sub(upto(since)) as u64
}

/// Each of `n` members' count: `base` (if carried) plus the turns since.
fn counts(base: Option<&[u64]>, n: usize, since: usize, now: usize) -> Vec<u64> {
    (0..n)
        .map(|i| base.and_then(|b| b.get(i)).copied().unwrap_or(0) + turns_naming(i, n, since, now))
        .collect()
}

/// Members in answer order for one query: `members[start..]` then `members[..start]`.
#[derive(Debug, Clone, Copy)]
pub struct Rotated<'a, T> {
    members: &'a [T],
    start: usize,
}

impl<'a, T> Rotated<'a, T> {
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &'a T> + use<'a, T> {
        let (tail, head) = self.members.split_at(self.start);
        RotatedIter {
            first: head.iter(),
            second: tail.iter(),
        }
    }
    pub fn len(&self) -> usize {
        self.members.len()
    }
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

struct RotatedIter<'a, T> {
    first: std::slice::Iter<'a, T>,
    second: std::slice::Iter<'a, T>,
}

impl<'a, T> Iterator for RotatedIter<'a, T> {
    type Item = &'a T;
    fn next(&mut self) -> Option<&'a T> {
        self.first.next().or_else(|| self.second.next())
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.first.len() + self.second.len();
        (n, Some(n))
    }
}

impl<T> ExactSizeIterator for RotatedIter<'_, T> {}

/// Takes a turn of `cursor` over `members` members: the k-th turn's offset, k mod N.
fn take_turn(members: usize, cursor: Option<&AtomicUsize>) -> usize {
    debug_assert!(
        members <= 1 || cursor.is_some(),
        "a set with members to rotate and no cursors would name its first member every time"
    );
    match cursor {
        // No answer handed out, so the turn does not advance.
        _ if members == 0 => 0,
        Some(cursor) => cursor.fetch_add(1, Ordering::Relaxed) % members,
        // Never had two members: one order, no turn to count.
        None => 0,
    }
}

/// `members` in the order of the turn that took `offset` (taken modulo their number, so an
/// offset taken before the set changed still lists every member once).
fn rotated_from<T>(members: &[T], offset: usize) -> Rotated<'_, T> {
    Rotated {
        members,
        start: offset.checked_rem(members.len()).unwrap_or(0),
    }
}

impl RecordSet {
    /// Builds a set; members are sorted so that the order does not depend on arrival order.
    /// `cursors` are the previous version's, if it had any; a set with something to rotate
    /// and none to carry gets new ones.
    pub fn new(
        network: NetId,
        mut v4: Vec<Ipv4Addr>,
        mut v6: Vec<Ipv6Addr>,
        ttl: Option<u32>,
        cursors: Option<Arc<Cursors>>,
    ) -> Self {
        v4.sort_unstable();
        v4.dedup();
        v6.sort_unstable();
        v6.dedup();
        let (lone, many) = match v4[..] {
            [one] => (Some(one), Vec::new()),
            _ => (None, v4),
        };
        RecordSet {
            network,
            v4: lone,
            extra: (!many.is_empty() || !v6.is_empty() || ttl.is_some() || cursors.is_some()).then(
                || {
                    Box::new(Extra {
                        v4: many.into(),
                        v6: v6.into(),
                        ttl,
                        cursors,
                        ..Extra::default()
                    })
                },
            ),
            origins: Origins::default(),
            member: None,
        }
        .with_cursors_if_it_rotates()
    }

    /// Whether any answer of this set has an order to take turns on: two addresses of a
    /// family, or two targets of one service (sorted by service, so they are neighbours; one
    /// member offering two services, http and https, has nothing to rotate).
    fn rotates(&self) -> bool {
        let same_service =
            |w: &[SrvTarget]| (&w[0].service, w[0].proto) == (&w[1].service, w[1].proto);
        self.v4_members().len() > 1
            || self.v6_members().len() > 1
            || self.srv_targets().windows(2).any(same_service)
    }

    fn with_cursors_if_it_rotates(mut self) -> Self {
        if self.cursors().is_none() && self.rotates() {
            self.extra.get_or_insert_default().cursors = Some(Arc::default());
        }
        self
    }

    /// A cursor's value; 0 for a set that never rotated.
    fn cursor(&self, pick: fn(&Cursors) -> &AtomicUsize) -> usize {
        self.cursors()
            .map_or(0, |c| pick(c).load(Ordering::Relaxed))
    }

    /// The set with `origins` as where its name comes from.
    pub fn with_origins(mut self, origins: Origins) -> Self {
        self.origins = origins;
        self
    }

    /// The set with a CNAME target (a static record; the caller has dropped any other data).
    pub fn with_cname(mut self, target: Option<Name>) -> Self {
        if target.is_some() {
            self.extra.get_or_insert_default().cname = target;
        }
        self
    }

    /// The set with one TXT record of `strings`; none when empty.
    pub fn with_txt(mut self, strings: Vec<Box<[u8]>>) -> Self {
        if !strings.is_empty() {
            self.extra.get_or_insert_default().txt = strings.into();
        }
        self
    }

    /// The set with the writer's `members` (see the field).
    pub(super) fn with_members(mut self, mut members: SmallSet<Held>) -> Self {
        if members.len() <= 1 {
            self.member = members.keys().next().cloned();
            if let Some(extra) = &mut self.extra {
                extra.members = SmallSet::default();
            }
        } else {
            // A big name's members were cloned and then grown: as many slots as members.
            members.shrink_to_fit();
            self.member = None;
            self.extra.get_or_insert_default().members = members;
        }
        self
    }

    /// The one endpoint and the one IPv4 address of a set that has nothing else (no extras):
    /// all the writer needs to know of a plain endpoint, which it then keeps nowhere else
    /// (`endpoints::derived`).
    pub(super) fn bare(&self) -> Option<(&Held, Ipv4Addr)> {
        match (&self.extra, &self.member, self.v4) {
            (None, Some(member), Some(v4)) => Some((member, v4)),
            _ => None,
        }
    }

    /// The endpoints that answer to the name on this network (the writer's; see the field).
    pub(super) fn members(&self) -> SmallSet<Held> {
        match (&self.member, &self.extra) {
            (Some(one), _) => {
                let mut members = SmallSet::default();
                members.insert(one.clone(), ());
                members
            }
            (None, Some(extra)) => extra.members.clone(),
            (None, None) => SmallSet::default(),
        }
    }

    /// Where the name comes from.
    pub fn origins(&self) -> Origins {
        self.origins
    }

    /// The CNAME target, when the name is an alias.
    pub fn cname(&self) -> Option<&Name> {
        self.extra.as_ref().and_then(|e| e.cname.as_ref())
    }

    /// The TXT record's strings; empty when the name has none.
    pub fn txt(&self) -> &[Box<[u8]>] {
        self.extra.as_ref().map_or(&[], |e| &e.txt)
    }

    /// The set with these SRV targets (sorted, duplicates dropped).
    pub fn with_srv(mut self, mut targets: Vec<SrvTarget>) -> Self {
        targets.sort_unstable();
        targets.dedup();
        if !targets.is_empty() {
            self.extra.get_or_insert_default().srv = targets.into();
        }
        self.with_cursors_if_it_rotates()
    }

    /// The targets offering `service` over `proto` (`service` lower case).
    fn srv_run(&self, service: &str, proto: SrvProto) -> &[SrvTarget] {
        fn key(t: &SrvTarget) -> (&str, SrvProto) {
            (&t.service, t.proto)
        }
        let all = self.srv_targets();
        let start = all.partition_point(|t| key(t) < (service, proto));
        let len = all[start..]
            .iter()
            .take_while(|t| key(t) == (service, proto))
            .count();
        &all[start..start + len]
    }

    /// Whether any member offers `service` over `proto`.
    pub fn offers(&self, service: &str, proto: SrvProto) -> bool {
        !self.srv_run(service, proto).is_empty()
    }

    /// Every SRV target, sorted by service, protocol and target (for listings).
    pub fn srv_targets(&self) -> &[SrvTarget] {
        self.extra.as_ref().map_or(&[], |e| &e.srv)
    }

    /// Every service offered, with its targets in the order the next SRV answer would list
    /// them, without taking a turn.
    pub fn peek_srv(&self) -> Vec<((&str, SrvProto), Vec<&SrvTarget>)> {
        let mut out: Vec<((&str, SrvProto), Vec<&SrvTarget>)> = Vec::new();
        for t in self.srv_targets() {
            let key = (t.service.as_ref(), t.proto);
            if out.last().is_none_or(|(k, _)| *k != key) {
                let run = self.srv_run(key.0, key.1);
                let start = self.cursor(|c| &c.srv) % run.len().max(1);
                let rotated = Rotated {
                    members: run,
                    start,
                };
                out.push((key, rotated.iter().collect()));
            }
        }
        out
    }

    /// The next SRV answer for `service` over `proto`: takes a turn.
    pub fn next_srv(&self, service: &str, proto: SrvProto) -> Rotated<'_, SrvTarget> {
        self.srv_from(service, proto, self.take_turn_srv(service, proto))
    }
    /// Takes an SRV turn for `service` over `proto` and returns its offset ([`Self::srv_from`]).
    pub fn take_turn_srv(&self, service: &str, proto: SrvProto) -> usize {
        take_turn(
            self.srv_run(service, proto).len(),
            self.cursors().map(|c| &c.srv),
        )
    }
    /// The offset the next SRV turn takes, taking none.
    pub fn peek_turn_srv(&self) -> usize {
        self.cursor(|c| &c.srv)
    }
    /// The SRV answer for `service` over `proto` of the turn that took `offset`.
    pub fn srv_from(
        &self,
        service: &str,
        proto: SrvProto,
        offset: usize,
    ) -> Rotated<'_, SrvTarget> {
        rotated_from(self.srv_run(service, proto), offset)
    }
    /// How many targets offer `service` over `proto`.
    pub fn srv_len(&self, service: &str, proto: SrvProto) -> usize {
        self.srv_run(service, proto).len()
    }

    pub fn network(&self) -> NetId {
        self.network
    }
    pub fn ttl(&self) -> Option<u32> {
        self.extra.as_ref().and_then(|e| e.ttl)
    }
    /// `None` for a set that never had anything to rotate.
    pub fn cursors(&self) -> Option<&Arc<Cursors>> {
        self.extra.as_ref().and_then(|e| e.cursors.as_ref())
    }
    pub fn v4_members(&self) -> &[Ipv4Addr] {
        match (&self.v4, &self.extra) {
            (Some(one), _) => std::slice::from_ref(one),
            (None, Some(extra)) => &extra.v4,
            (None, None) => &[],
        }
    }
    pub fn v6_members(&self) -> &[Ipv6Addr] {
        self.extra.as_ref().map_or(&[], |e| &e.v6)
    }
    pub fn is_empty(&self) -> bool {
        self.v4.is_none()
            && self.extra.as_ref().is_none_or(|e| {
                e.v4.is_empty()
                    && e.v6.is_empty()
                    && e.srv.is_empty()
                    && e.cname.is_none()
                    && e.txt.is_empty()
            })
    }

    /// How many answers named each member first since the set began to rotate (two members of
    /// a family, or two targets of a service) after its name was last without members; what a
    /// lone member answered before that is not counted:
    /// IPv4 members with their A counts, then IPv6 members with their AAAA counts, in member
    /// (address) order. Takes no turn.
    pub fn firsts(&self) -> Vec<(std::net::IpAddr, u64)> {
        let carried = self.extra.as_ref().and_then(|e| e.firsts.as_deref());
        let now4 = self.cursor(|c| &c.v4);
        let now6 = self.cursor(|c| &c.v6);
        let v4 = counts(
            carried.map(|f| &*f.v4),
            self.v4_members().len(),
            carried.map_or(0, |f| f.v4_since),
            now4,
        );
        let v6 = counts(
            carried.map(|f| &*f.v6),
            self.v6_members().len(),
            carried.map_or(0, |f| f.v6_since),
            now6,
        );
        let v4 = self
            .v4_members()
            .iter()
            .map(|ip| std::net::IpAddr::V4(*ip))
            .zip(v4);
        let v6 = self
            .v6_members()
            .iter()
            .map(|ip| std::net::IpAddr::V6(*ip))
            .zip(v6);
        v4.chain(v6).collect()
    }

    /// [`Self::peek`]'s order, each member with its "named first" count where its family
    /// rotates (two members or more; a lone member is named first by every answer).
    pub fn peek_with_firsts(&self) -> Vec<(std::net::IpAddr, Option<u64>)> {
        let firsts: std::collections::HashMap<std::net::IpAddr, u64> =
            self.firsts().into_iter().collect();
        let (v4, v6) = (self.v4_members().len(), self.v6_members().len());
        self.peek()
            .into_iter()
            .map(|ip| {
                let rotates = if ip.is_ipv4() { v4 > 1 } else { v6 > 1 };
                (ip, rotates.then(|| firsts.get(&ip).copied().unwrap_or(0)))
            })
            .collect()
    }

    /// This set carrying `previous`'s counts (same name, same network, same cursors) for the
    /// members that stay; members that left take theirs with them. Nothing is kept while no
    /// turn has been taken.
    pub fn carrying_firsts(mut self, previous: Option<&RecordSet>) -> Self {
        let Some(previous) = previous else {
            return self;
        };
        let v4_since = self.cursor(|c| &c.v4);
        let v6_since = self.cursor(|c| &c.v6);
        if v4_since == 0 && v6_since == 0 {
            return self;
        }
        let before: std::collections::HashMap<std::net::IpAddr, u64> =
            previous.firsts().into_iter().collect();
        let of = |ip: std::net::IpAddr| before.get(&ip).copied().unwrap_or(0);
        let firsts = Firsts {
            v4_since,
            v6_since,
            v4: self
                .v4_members()
                .iter()
                .map(|ip| of((*ip).into()))
                .collect(),
            v6: self
                .v6_members()
                .iter()
                .map(|ip| of((*ip).into()))
                .collect(),
        };
        self.extra.get_or_insert_default().firsts = Some(Box::new(firsts));
        self
    }

    /// Every member, v4 then v6, in the order the next answers would list them, without taking a turn.
    pub fn peek(&self) -> Vec<std::net::IpAddr> {
        let at = |members: usize, cursor: usize| match members {
            0 => 0,
            n => cursor % n,
        };
        let v4 = Rotated {
            members: self.v4_members(),
            start: at(self.v4_members().len(), self.cursor(|c| &c.v4)),
        };
        let v6 = Rotated {
            members: self.v6_members(),
            start: at(self.v6_members().len(), self.cursor(|c| &c.v6)),
        };
        v4.iter()
            .map(|ip| std::net::IpAddr::V4(*ip))
            .chain(v6.iter().map(|ip| std::net::IpAddr::V6(*ip)))
            .collect()
    }

    /// The next A answer: takes a turn.
    pub fn next_v4(&self) -> Rotated<'_, Ipv4Addr> {
        self.v4_from(self.take_turn_v4())
    }
    /// The next AAAA answer: takes a turn of its own, so A and AAAA lookups do not skew each other.
    pub fn next_v6(&self) -> Rotated<'_, Ipv6Addr> {
        self.v6_from(self.take_turn_v6())
    }
    /// Takes an A turn and returns its offset, for [`Self::v4_from`] now and for a copy of
    /// the same question later (`dns::turns`).
    pub fn take_turn_v4(&self) -> usize {
        take_turn(self.v4_members().len(), self.cursors().map(|c| &c.v4))
    }
    /// Takes an AAAA turn and returns its offset.
    pub fn take_turn_v6(&self) -> usize {
        take_turn(self.v6_members().len(), self.cursors().map(|c| &c.v6))
    }
    /// The offset the next A turn takes, taking none (`netalias explain`'s prediction: the
    /// next answer's order, left for that answer to take).
    pub fn peek_turn_v4(&self) -> usize {
        self.cursor(|c| &c.v4)
    }
    /// The offset the next AAAA turn takes, taking none.
    pub fn peek_turn_v6(&self) -> usize {
        self.cursor(|c| &c.v6)
    }
    /// The A answer of the turn that took `offset`.
    pub fn v4_from(&self, offset: usize) -> Rotated<'_, Ipv4Addr> {
        rotated_from(self.v4_members(), offset)
    }
    /// The AAAA answer of the turn that took `offset`.
    pub fn v6_from(&self, offset: usize) -> Rotated<'_, Ipv6Addr> {
        rotated_from(self.v6_members(), offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(n: u8) -> RecordSet {
        let v4 = (1..=n).map(|i| Ipv4Addr::new(10, 0, 0, i)).collect();
        RecordSet::new(NetId(0), v4, vec![], None, None)
    }

    #[test]
    fn one_member_and_one_address_inline_more_in_the_extras_and_back() {
        let held = |c: &str| Held::new(1, c);
        let keys = |set: &RecordSet| -> Vec<String> {
            set.members()
                .keys()
                .map(|h| h.container().to_string())
                .collect()
        };
        let members = |names: &[&str]| {
            let mut members = SmallSet::default();
            for name in names {
                members.insert(held(name), ());
            }
            members
        };
        let lone = set(1).with_members(members(&["web-1"]));
        assert!(lone.extra.is_none(), "a lone member's set has no extras");
        assert_eq!(lone.v4_members(), [Ipv4Addr::new(10, 0, 0, 1)]);
        assert_eq!(keys(&lone), ["web-1"]);
        assert!(!lone.is_empty());

        let many = set(3).with_members(members(&["web-3", "web-1", "web-2"]));
        assert!(many.member.is_none() && many.v4.is_none());
        assert_eq!(many.v4_members().len(), 3);
        assert_eq!(keys(&many), ["web-1", "web-2", "web-3"]);

        // A set with extras (a TTL) and one member keeps it inline, none in the extras.
        let one_with_ttl = RecordSet::new(NetId(0), vec![], vec![], Some(5), None)
            .with_members(members(&["web-1", "web-2"]))
            .with_members(members(&["web-2"]));
        assert_eq!(keys(&one_with_ttl), ["web-2"]);
        assert!(
            one_with_ttl
                .extra
                .as_ref()
                .is_some_and(|e| e.members.is_empty())
        );
        assert!(one_with_ttl.v4_members().is_empty() && one_with_ttl.is_empty());
        assert!(
            set(0)
                .with_members(SmallSet::default())
                .members()
                .is_empty()
        );
    }

    #[test]
    fn a_lone_set_is_kept_inline_and_its_copy_is_whole() {
        let mut one = SmallSet::default();
        one.insert(Held::new(1, "web-1"), ());
        let lone = SharedSet::new(set(1).with_members(one.clone()));
        assert!(matches!(lone.0, Stored::Lone(_)));
        let copy = lone.clone();
        assert_eq!(copy.v4_members(), [Ipv4Addr::new(10, 0, 0, 1)]);
        assert_eq!(copy.network(), NetId(0));
        assert!(copy.members().keys().map(Held::container).eq(["web-1"]));
        // Anything beyond one address and one endpoint is shared, and so are its copies.
        let ttl = SharedSet::new(RecordSet::new(NetId(0), vec![], vec![], Some(5), None));
        let two = SharedSet::new(set(2).with_members(one));
        for shared in [&ttl, &two] {
            let Stored::Shared(first) = &shared.0 else {
                panic!("a set with extras is shared");
            };
            let Stored::Shared(again) = &shared.clone().0 else {
                panic!("its copy is too");
            };
            assert!(triomphe::Arc::ptr_eq(first, again));
        }
    }

    #[test]
    fn kth_answer_starts_at_k_mod_n_and_lists_all() {
        let s = set(3);
        for k in 0..7 {
            let answer: Vec<u8> = s.next_v4().iter().map(|ip| ip.octets()[3]).collect();
            let start = (k % 3) as u8;
            let expected: Vec<u8> = (0..3).map(|i| (start + i) % 3 + 1).collect();
            assert_eq!(answer, expected, "answer {k}");
        }
    }

    #[test]
    fn exact_under_concurrency() {
        let s = Arc::new(set(5));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    let mut counts = [0usize; 5];
                    for _ in 0..10_000 {
                        let first = s.next_v4().iter().next().map(|ip| ip.octets()[3]);
                        counts[usize::from(first.unwrap_or(1)) - 1] += 1;
                    }
                    counts
                })
            })
            .collect();
        let mut total = [0usize; 5];
        for t in threads {
            let counts = t.join().expect("thread");
            for (a, b) in total.iter_mut().zip(counts) {
                *a += b;
            }
        }
        assert_eq!(total, [8000; 5]);
    }

    #[test]
    fn membership_change_keeps_the_cursor() {
        let cursors = Arc::new(Cursors::default());
        let a = RecordSet::new(
            NetId(0),
            vec![Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)],
            vec![],
            None,
            Some(cursors.clone()),
        );
        a.next_v4();
        a.next_v4();
        a.next_v4();
        let b = RecordSet::new(
            NetId(0),
            vec![
                Ipv4Addr::new(10, 0, 0, 1),
                Ipv4Addr::new(10, 0, 0, 2),
                Ipv4Addr::new(10, 0, 0, 3),
            ],
            vec![],
            None,
            Some(cursors),
        );
        // k = 3 continues: 3 mod 3 = 0, then 1, 2.
        let firsts: Vec<u8> = (0..3)
            .map(|_| b.next_v4().iter().next().map_or(0, |ip| ip.octets()[3]))
            .collect();
        assert_eq!(firsts, [1, 2, 3]);
    }

    #[test]
    fn an_offset_gives_that_turns_order_again_and_survives_a_change() {
        let cursors = Arc::new(Cursors::default());
        let a = RecordSet::new(
            NetId(0),
            vec![Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)],
            vec![],
            None,
            Some(cursors.clone()),
        );
        let first = |r: Rotated<'_, Ipv4Addr>| r.iter().next().map_or(0, |ip| ip.octets()[3]);
        let offset = a.take_turn_v4();
        assert_eq!(offset, 0);
        // Read back as often as wanted: no turn taken.
        assert_eq!(first(a.v4_from(offset)), 1);
        assert_eq!(first(a.v4_from(offset)), 1);
        assert_eq!(first(a.next_v4()), 2, "the next turn, not the read-backs");
        // An offset past a smaller set's size still lists each member once.
        let b = RecordSet::new(
            NetId(0),
            vec![Ipv4Addr::new(10, 0, 0, 9)],
            vec![],
            None,
            Some(cursors),
        );
        assert_eq!(b.v4_from(5).iter().count(), 1);
        assert_eq!(b.v6_from(3).iter().count(), 0);
    }

    #[test]
    fn a_and_aaaa_rotate_independently() {
        let s = RecordSet::new(
            NetId(0),
            vec![Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)],
            vec![Ipv6Addr::LOCALHOST, Ipv6Addr::UNSPECIFIED],
            None,
            None,
        );
        let mut firsts = vec![];
        for _ in 0..4 {
            firsts.push(s.next_v4().iter().next().map_or(0, |ip| ip.octets()[3]));
            s.next_v6();
        }
        assert_eq!(firsts, [1, 2, 1, 2]);
    }

    #[test]
    fn firsts_follow_the_turns_and_survive_a_change_of_members() {
        let cursors = Arc::new(Cursors::default());
        let ip = |n: u8| Ipv4Addr::new(10, 0, 0, n);
        let three = RecordSet::new(
            NetId(0),
            vec![ip(1), ip(2), ip(3)],
            vec![],
            None,
            Some(Arc::clone(&cursors)),
        )
        .carrying_firsts(None);
        for _ in 0..30 {
            three.next_v4();
        }
        let counts = |set: &RecordSet| set.firsts().into_iter().map(|(_, n)| n).collect::<Vec<_>>();
        assert_eq!(counts(&three), [10, 10, 10]);
        // A fourth joins: the three keep their counts, and the next 8 turns give 2 each.
        let four = RecordSet::new(
            NetId(0),
            vec![ip(1), ip(2), ip(3), ip(4)],
            vec![],
            None,
            Some(Arc::clone(&cursors)),
        )
        .carrying_firsts(Some(&three));
        for _ in 0..8 {
            four.next_v4();
        }
        assert_eq!(counts(&four), [12, 12, 12, 2]);
        // The second leaves with its count; the others keep theirs.
        let without = RecordSet::new(
            NetId(0),
            vec![ip(1), ip(3), ip(4)],
            vec![],
            None,
            Some(Arc::clone(&cursors)),
        )
        .carrying_firsts(Some(&four));
        assert_eq!(counts(&without), [12, 12, 2]);
        // Nothing asked yet: nothing carried, nothing allocated.
        let fresh = RecordSet::new(NetId(1), vec![ip(9)], vec![], None, None)
            .carrying_firsts(Some(&without));
        assert!(fresh.extra.is_none());
        assert_eq!(counts(&fresh), [0]);
    }

    #[test]
    fn a_lone_member_takes_no_turn_until_a_second_joins_and_its_cursors_then_stay() {
        let ip = |n: u8| Ipv4Addr::new(10, 0, 0, n);
        let counts = |set: &RecordSet| set.firsts().into_iter().map(|(_, n)| n).collect::<Vec<_>>();
        let lone = RecordSet::new(NetId(0), vec![ip(1)], vec![], None, None);
        assert!(
            lone.cursors().is_none(),
            "one member: nothing to rotate, nothing allocated"
        );
        for _ in 0..5 {
            assert_eq!(lone.next_v4().iter().copied().collect::<Vec<_>>(), [ip(1)]);
        }
        assert_eq!(lone.peek_turn_v4(), 0);
        // A second joins: rotation starts with it, both counted from there.
        let two = RecordSet::new(NetId(0), vec![ip(1), ip(2)], vec![], None, None)
            .carrying_firsts(Some(&lone));
        let cursors = Arc::clone(two.cursors().expect("two members rotate"));
        for _ in 0..4 {
            two.next_v4();
        }
        assert_eq!(counts(&two), [2, 2]);
        // Back to one: the cursors (and the counts) stay for when it rotates again.
        let one = RecordSet::new(
            NetId(0),
            vec![ip(1)],
            vec![],
            None,
            Some(Arc::clone(&cursors)),
        )
        .carrying_firsts(Some(&two));
        one.next_v4();
        assert_eq!(counts(&one), [3]);
        // Two IPv6 members, or two SRV targets, rotate as well.
        let v6 = RecordSet::new(
            NetId(0),
            vec![],
            vec!["fd00::1".parse().unwrap(), "fd00::2".parse().unwrap()],
            None,
            None,
        );
        assert!(v6.cursors().is_some());
    }

    #[test]
    fn srv_targets_rotate_only_two_to_a_service() {
        let target = |service: &str, host: &str| SrvTarget {
            service: service.into(),
            proto: SrvProto::Tcp,
            target: Name::from_ascii(host).unwrap(),
            port: 80,
            weight: 1,
            ipv4: None,
            ipv6: None,
        };
        let set = |targets| RecordSet::new(NetId(0), vec![], vec![], None, None).with_srv(targets);
        let one_member = set(vec![target("http", "a.n."), target("https", "a.n.")]);
        assert!(
            one_member.cursors().is_none(),
            "two services, one target each"
        );
        let two_members = set(vec![target("http", "a.n."), target("http", "b.n.")]);
        assert!(two_members.cursors().is_some());
    }
}
