//! What one question gets, as records: the answer rules, one small function each.
//!
//! Pure over the registry (it takes rotation turns, nothing else, through `turns`, so a copy
//! of a question the fast path answered gets that answer's order): no sockets, no encoding
//! decisions beyond the records themselves.
//!
//! The commonest questions are decided once, by [`decide`], in a form neither path owns: the
//! full path turns a [`Decision`] into hickory records here, the UDP fast path (`fast`) into
//! raw bytes, and neither decides again. What `decide` leaves to the rest of this module, the
//! fast path declines.

use std::net::IpAddr;

use hickory_server::proto::{
    op::{LowerQuery, ResponseCode},
    rr::{
        DNSClass, LowerName, Name, RData, Record, RecordType,
        rdata::{A, AAAA, CNAME, HINFO, PTR, SOA, SRV, TXT},
    },
};

use super::turns::Turn;
use super::wire::{TYPE_A, TYPE_AAAA, TYPE_PTR};
use crate::registry::{
    NameKey, RecordSet, Registry, Resolution, SharedSet, SrvPort, SrvProto, Unheld,
};

/// The records and code for one question.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub rcode: ResponseCode,
    /// AA: set for names that are ours.
    pub authoritative: bool,
    pub answers: Vec<Record>,
    /// The SRV targets' addresses (glue), dropped first when the answer does not fit.
    pub additionals: Vec<Record>,
    /// RFC 2308: NXDOMAIN and NODATA carry the zone's SOA.
    pub soa: Option<Record>,
    /// Not ours: a forwarder may answer it instead of this REFUSED.
    pub forwardable: bool,
}

impl Answer {
    pub fn error(rcode: ResponseCode) -> Answer {
        Answer {
            rcode,
            authoritative: false,
            answers: Vec::new(),
            additionals: Vec::new(),
            soa: None,
            forwardable: false,
        }
    }

    fn refused() -> Answer {
        Answer::error(ResponseCode::Refused)
    }

    /// A name outside everything we hold.
    fn not_ours() -> Answer {
        Answer {
            forwardable: true,
            ..Answer::refused()
        }
    }

    fn ours(rcode: ResponseCode, answers: Vec<Record>, soa: Option<Record>) -> Answer {
        Answer {
            rcode,
            authoritative: true,
            answers,
            additionals: Vec::new(),
            soa,
            forwardable: false,
        }
    }
}

/// What the rules make of a question before any record is built (see [`decide`]).
#[derive(Debug)]
pub enum Decision {
    /// A or AAAA of a name held for the asker, with addresses of that family and no CNAME:
    /// NOERROR, authoritative, every member of the family in the turn's order, each with
    /// `ttl`.
    Addresses { set: SharedSet, v6: bool, ttl: u32 },
    /// A name held by no network the asker sees and under nothing of ours to deny: not ours
    /// (RFC 1034 4.3.2 step 3c is another server's): the forwarder's to answer, else REFUSED.
    NotOurs,
    /// Held, but not as addresses of the family asked (another type, NODATA, a CNAME): the
    /// full rules answer from this set (the fast path declines).
    Held(SharedSet),
    /// Held by no network the asker sees, and ours to deny (NXDOMAIN under the search domain,
    /// NODATA at an apex): the full rules say which (the fast path declines).
    Unheld,
    /// Not looked up (a service name, a reverse name): the full rules decide it whole.
    Other,
}

/// Decides `qtype` (as on the wire: a number, since hickory's `RecordType::from` is a call the
/// fast path would pay for) of the name `key` (its [`NameKey`] bytes: lowercase wire labels, no root)
/// for `asker`, with `default_ttl` for a set without its own. The records it decides are of
/// class IN (the full path asks it for class ANY too); it touches no heap (the fast path calls
/// it for every packet). The one decision [`answer`] and the fast path share.
/// Inlined: as a call of its own it cost the fast path 50 instructions per query, 3% (its
/// arguments and the set moved through memory; `benches/instructions.sh`).
#[inline(always)]
pub fn decide(
    registry: &Registry,
    key: &[u8],
    qtype: u16,
    asker: IpAddr,
    default_ttl: u32,
) -> Decision {
    // A reverse name may be held as a PTR, which `lookup_key` does not see; a service name is
    // answered from its host's records (`answer_service`).
    if qtype == TYPE_PTR || is_service_key(key) {
        return Decision::Other;
    }
    let Some(set) = registry.lookup_key(key, asker) else {
        return if registry.is_unheld_not_ours(key, asker) {
            Decision::NotOurs
        } else {
            Decision::Unheld
        };
    };
    let v6 = match qtype {
        TYPE_A => false,
        TYPE_AAAA => true,
        _ => return Decision::Held(set),
    };
    let members = if v6 {
        set.v6_members().len()
    } else {
        set.v4_members().len()
    };
    // RFC 1034 3.6.2: a CNAME answers for its name (`follow_cname`); no members of the
    // family is NODATA, with the zone's SOA (`no_data`).
    if set.cname().is_some() || members == 0 {
        return Decision::Held(set);
    }
    let ttl = set.ttl().unwrap_or(default_ttl);
    Decision::Addresses { set, v6, ttl }
}

/// Whether a name's first two labels, as [`NameKey`] bytes, start with `_` (`_http._tcp.app`):
/// a service name, answered from its host's records ([`service_name`] reads it).
fn is_service_key(key: &[u8]) -> bool {
    let second = usize::from(key.first().copied().unwrap_or(0)) + 1;
    key.get(1) == Some(&b'_') && key.get(second + 1) == Some(&b'_')
}

/// Answers `query` from `registry` as seen by `asker`, taking rotation turns as `turn` says.
/// `ttl` is the server's default TTL.
pub fn answer(
    registry: &Registry,
    query: &LowerQuery,
    asker: IpAddr,
    ttl: u32,
    turn: Turn<'_>,
) -> Answer {
    if !matches!(query.query_class(), DNSClass::IN | DNSClass::ANY) {
        return Answer::refused();
    }
    let name = query.name();
    // Owner names keep the asker's spelling, so compression points at the question.
    let owner = query.original().name();
    let qtype = query.query_type();
    if qtype == RecordType::PTR {
        return answer_ptr(registry, name, owner, asker, ttl);
    }
    let key = NameKey::new(name);
    // What `decide` looked up is not looked up again below.
    let looked_up = match decide(registry, key.as_bytes(), u16::from(qtype), asker, ttl) {
        Decision::Addresses { set, v6, ttl } => {
            let answers =
                address_records(registry, asker, key.as_bytes(), &set, v6, owner, ttl, turn);
            return Answer::ours(ResponseCode::NoError, answers, None);
        }
        Decision::NotOurs => return Answer::not_ours(),
        Decision::Held(set) => Some(set),
        Decision::Unheld => None,
        Decision::Other => {
            return answer_name(
                registry,
                name,
                owner,
                qtype,
                asker,
                ttl,
                turn,
                &mut Vec::new(),
            );
        }
    };
    let question = (name, owner, qtype);
    answer_looked_up(
        registry,
        question,
        looked_up,
        asker,
        ttl,
        turn,
        &mut Vec::new(),
    )
}

/// The most CNAMEs one answer follows; a longer chain is answered as a loop.
pub const MAX_CNAME_HOPS: usize = 8;

/// `chain` holds the names a CNAME chain has passed through to reach `name` (empty for the
/// question's own name).
#[allow(clippy::too_many_arguments)] // one question's parts, each used once
fn answer_name(
    registry: &Registry,
    name: &LowerName,
    owner: &Name,
    qtype: RecordType,
    asker: IpAddr,
    default_ttl: u32,
    turn: Turn<'_>,
    chain: &mut Vec<LowerName>,
) -> Answer {
    if let Some((service, proto, host)) = service_name(name) {
        return answer_service(
            registry,
            (&service, proto),
            (name, &host),
            owner,
            qtype,
            asker,
            default_ttl,
            turn,
        );
    }
    let looked_up = registry.lookup(name, asker);
    let question = (name, owner, qtype);
    answer_looked_up(
        registry,
        question,
        looked_up,
        asker,
        default_ttl,
        turn,
        chain,
    )
}

/// [`answer_name`] past the lookup: the set `name` resolved to for `asker`, if any (not a
/// service name).
fn answer_looked_up(
    registry: &Registry,
    (name, owner, qtype): (&LowerName, &Name, RecordType),
    looked_up: Option<SharedSet>,
    asker: IpAddr,
    default_ttl: u32,
    turn: Turn<'_>,
    chain: &mut Vec<LowerName>,
) -> Answer {
    let has = |set: &RecordSet| {
        set.cname().is_some()
            || match qtype {
                RecordType::A => !set.v4_members().is_empty(),
                RecordType::AAAA => !set.v6_members().is_empty(),
                RecordType::TXT => !set.txt().is_empty(),
                RecordType::ANY => true,
                _ => false,
            }
    };
    let set = match registry.resolved(looked_up, name, asker, has) {
        Resolution::Found(set) => set,
        Resolution::NoData { zone, ttl } => return no_data(&zone, ttl.unwrap_or(default_ttl)),
        Resolution::Unheld(unheld) => return unknown_name(unheld, qtype, default_ttl),
    };
    let ttl = set.ttl().unwrap_or(default_ttl);
    if let Some(target) = set.cname() {
        let cname = Record::from_rdata(owner.clone(), ttl, RData::CNAME(CNAME(target.clone())));
        if matches!(qtype, RecordType::CNAME | RecordType::ANY) {
            return Answer::ours(ResponseCode::NoError, vec![cname], None);
        }
        chain.push(name.clone());
        let target = target.clone();
        return follow_cname(
            cname,
            &target,
            qtype,
            asker,
            default_ttl,
            turn,
            registry,
            chain,
        );
    }
    // The name as the fast path keys the same turn: its lowercase wire labels.
    let key = || NameKey::new(name);
    let answers: Vec<Record> = match qtype {
        RecordType::A | RecordType::AAAA => {
            let v6 = qtype == RecordType::AAAA;
            address_records(
                registry,
                asker,
                key().as_bytes(),
                &set,
                v6,
                owner,
                ttl,
                turn,
            )
        }
        RecordType::TXT => vec![txt_record(owner, ttl, set.txt())],
        _ => vec![rfc8482_hinfo(owner, ttl)],
    };
    Answer::ours(ResponseCode::NoError, answers, None)
}

/// The A (or, `v6`, AAAA) records of `set` for `asker`, in the order of the turn `turn`
/// takes for the name `key` (the fast path writes the same turn's addresses as bytes).
#[allow(clippy::too_many_arguments)] // one answer's parts, each used once
fn address_records(
    registry: &Registry,
    asker: IpAddr,
    key: &[u8],
    set: &RecordSet,
    v6: bool,
    owner: &Name,
    ttl: u32,
    turn: Turn<'_>,
) -> Vec<Record> {
    let record = |data| Record::from_rdata(owner.clone(), ttl, data);
    if v6 {
        let order = turn.v6(registry, asker, key, set);
        order
            .iter()
            .map(|ip| record(RData::AAAA(AAAA(*ip))))
            .collect()
    } else {
        let order = turn.v4(registry, asker, key, set);
        order.iter().map(|ip| record(RData::A(A(*ip)))).collect()
    }
}

/// RFC 1034 3.6.2 and 4.3.2 (step 3a): a name that is an alias (CNAME) answers any type but
/// CNAME with its CNAME record, then the answer for the target, looked up as a question for
/// the target would be (scoped, rotated, a turn taken for the target; a wildcard, a label
/// name or another CNAME alike). The rcode and SOA are the target's (RFC 6604: NXDOMAIN for a
/// chain that ends at a name that does not exist). A target netalias does not hold and would
/// forward: the CNAME alone, with NOERROR; `exchange` then forwards the target and appends
/// what the upstream answers (stub resolvers do not chase a CNAME). A chain that comes back
/// to a name it passed, or runs past [`MAX_CNAME_HOPS`]: SERVFAIL (a broken configuration;
/// the resolver tries elsewhere or fails at once, rather than loop).
#[allow(clippy::too_many_arguments)] // one question's parts, each used once
fn follow_cname(
    cname: Record,
    target: &Name,
    qtype: RecordType,
    asker: IpAddr,
    default_ttl: u32,
    turn: Turn<'_>,
    registry: &Registry,
    chain: &mut Vec<LowerName>,
) -> Answer {
    let lower = LowerName::from(target);
    if chain.len() > MAX_CNAME_HOPS || chain.contains(&lower) {
        return Answer::error(ResponseCode::ServFail);
    }
    let rest = answer_name(
        registry,
        &lower,
        target,
        qtype,
        asker,
        default_ttl,
        turn,
        chain,
    );
    match rest.rcode {
        // Not ours (REFUSED, forwardable): the CNAME alone.
        ResponseCode::Refused if rest.forwardable => {
            Answer::ours(ResponseCode::NoError, vec![cname], None)
        }
        ResponseCode::NoError | ResponseCode::NXDomain => {
            let mut answers = Vec::with_capacity(1 + rest.answers.len());
            answers.push(cname);
            answers.extend(rest.answers);
            Answer {
                answers,
                authoritative: true,
                ..rest
            }
        }
        // A loop, or anything else the target came to: that, without records.
        _ => Answer::error(rest.rcode),
    }
}

/// One TXT record of `strings` (each at most 255 octets; the config has checked them).
fn txt_record(owner: &Name, ttl: u32, strings: &[Box<[u8]>]) -> Record {
    let txt = TXT::from_bytes(strings.iter().map(|s| &s[..]).collect());
    Record::from_rdata(owner.clone(), ttl, RData::TXT(txt))
}

/// `_SERVICE._PROTO.HOST.` as (service, protocol, host), when the first two labels say so.
fn service_name(name: &LowerName) -> Option<(String, SrvProto, LowerName)> {
    let full = Name::from(name);
    let mut labels = full.iter();
    let service = std::str::from_utf8(labels.next()?.strip_prefix(b"_")?).ok()?;
    let proto = std::str::from_utf8(labels.next()?.strip_prefix(b"_")?).ok()?;
    let (service, proto) = (
        SrvPort::service_name(service)?,
        SrvProto::from_label(proto)?,
    );
    let host = name.base_name().base_name();
    (!host.is_root()).then_some((service, proto, host))
}

/// A service name: SRV records from the members of HOST that offer the service, in rotation,
/// with their addresses as glue. HOST without that service, or another type asked: no data.
#[allow(clippy::too_many_arguments)] // one question's parts, each used once
fn answer_service(
    registry: &Registry,
    (service, proto): (&str, SrvProto),
    (name, host): (&LowerName, &LowerName),
    owner: &Name,
    qtype: RecordType,
    asker: IpAddr,
    default_ttl: u32,
    turn: Turn<'_>,
) -> Answer {
    let set = match registry.resolve(host, asker, |set| set.offers(service, proto)) {
        Resolution::Found(set) => set,
        Resolution::NoData { zone, ttl } => return no_data(&zone, ttl.unwrap_or(default_ttl)),
        // Nothing exists under an apex that holds no such host.
        Resolution::Unheld(Unheld::Apex(zone)) => {
            return Answer::ours(
                ResponseCode::NXDomain,
                Vec::new(),
                Some(soa(&zone, default_ttl)),
            );
        }
        Resolution::Unheld(unheld) => return unknown_name(unheld, qtype, default_ttl),
    };
    let ttl = set.ttl().unwrap_or(default_ttl);
    match qtype {
        RecordType::SRV => {}
        RecordType::ANY => {
            return Answer::ours(ResponseCode::NoError, vec![rfc8482_hinfo(owner, ttl)], None);
        }
        _ => return no_data(&registry.zone_of(host).unwrap_or_else(|| host.clone()), ttl),
    }
    let name = NameKey::new(name);
    let turn = turn.srv(registry, asker, name.as_bytes(), &set, (service, proto));
    let answers = turn
        .iter()
        .map(|t| {
            let srv = SRV::new(0, t.weight, t.port, t.target.clone());
            Record::from_rdata(owner.clone(), ttl, RData::SRV(srv))
        })
        .collect();
    let mut additionals: Vec<Record> = Vec::with_capacity(turn.len());
    for t in turn.iter() {
        if additionals.iter().any(|r| r.name == t.target) {
            continue; // one target, several ports
        }
        additionals.extend(
            t.ipv4
                .map(|ip| Record::from_rdata(t.target.clone(), ttl, RData::A(A(ip)))),
        );
        additionals.extend(
            t.ipv6
                .map(|ip| Record::from_rdata(t.target.clone(), ttl, RData::AAAA(AAAA(ip)))),
        );
    }
    Answer {
        additionals,
        ..Answer::ours(ResponseCode::NoError, answers, None)
    }
}

fn answer_ptr(
    registry: &Registry,
    name: &LowerName,
    owner: &Name,
    asker: IpAddr,
    ttl: u32,
) -> Answer {
    match registry.lookup_ptr(name, asker) {
        Some(target) => Answer::ours(
            ResponseCode::NoError,
            vec![Record::from_rdata(
                owner.clone(),
                ttl,
                RData::PTR(PTR(target)),
            )],
            None,
        ),
        // Reverse names of addresses we don't hold are not ours to deny.
        None => Answer::not_ours(),
    }
}

/// RFC 8482 section 4.2: one small synthesized HINFO instead of every record.
fn rfc8482_hinfo(owner: &Name, ttl: u32) -> Record {
    let hinfo = HINFO::new("RFC8482".to_string(), String::new());
    Record::from_rdata(owner.clone(), ttl, RData::HINFO(hinfo))
}

/// A name that exists without records of the asked type: NOERROR, no answers, the zone's SOA
/// (RFC 2308).
fn no_data(zone: &LowerName, ttl: u32) -> Answer {
    Answer::ours(ResponseCode::NoError, Vec::new(), Some(soa(zone, ttl)))
}

/// A zone apex: NODATA with its SOA. Unknown under the search domain: NXDOMAIN with SOA.
/// Anything else, a network's bare name included: not ours (forwarded, or REFUSED).
fn unknown_name(unheld: Unheld, qtype: RecordType, ttl: u32) -> Answer {
    match unheld {
        Unheld::Apex(zone) if qtype == RecordType::SOA => {
            Answer::ours(ResponseCode::NoError, vec![soa(&zone, ttl)], None)
        }
        Unheld::Apex(zone) => no_data(&zone, ttl),
        Unheld::NoSuchName(zone) => {
            Answer::ours(ResponseCode::NXDomain, Vec::new(), Some(soa(&zone, ttl)))
        }
        Unheld::NotOurs => Answer::not_ours(),
    }
}

/// The SOA for one of our zones. Its TTL and minimum are the answer TTL, so negative
/// answers are cached no longer than positive ones.
fn soa(zone: &LowerName, ttl: u32) -> Record {
    let apex = Name::from(zone);
    let label = |prefix: &str| {
        Name::from_ascii(prefix)
            .and_then(|p| p.append_domain(&apex))
            .unwrap_or_else(|_| apex.clone())
    };
    let soa = SOA::new(label("ns"), label("hostmaster"), 1, 3600, 600, 86400, ttl);
    Record::from_rdata(apex, ttl, RData::SOA(soa))
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use hickory_server::proto::op::Query;

    use super::*;
    use crate::{
        dns::turns::Turns,
        registry::{Change, Endpoint, NameData, Owner},
    };

    const OWNER: Owner = Owner("test");
    const HOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    fn registry() -> Registry {
        let registry = Registry::new(Some("docker")).expect("registry");
        for (i, name) in ["web1", "web2", "web3"].into_iter().enumerate() {
            registry.apply(
                OWNER,
                Change::EndpointUp(Endpoint {
                    network: "n".into(),
                    container: name.into(),
                    name: name.into(),
                    aliases: vec!["app".into()],
                    ipv4: Some(Ipv4Addr::new(10, 0, 0, 2 + i as u8)),
                    ipv6: None,
                    ttl: None,
                    out_of_rotation: None,
                    srv: Vec::new(),
                    origins: Default::default(),
                }),
            );
        }
        registry
    }

    fn cname(registry: &Registry, name: &str, target: &str) {
        registry.apply(
            OWNER,
            Change::NameData {
                network: "n".into(),
                name: name.into(),
                data: Some(NameData {
                    cname: Some(target.into()),
                    ..NameData::default()
                }),
            },
        );
    }

    fn ask(registry: &Registry, turns: &Turns, name: &str, qtype: RecordType) -> Answer {
        let query = LowerQuery::query(Query::query(Name::from_ascii(name).expect("name"), qtype));
        answer(registry, &query, HOST, 0, Turn::new(turns, None))
    }

    fn types(answer: &Answer) -> Vec<RecordType> {
        answer.answers.iter().map(|r| r.record_type()).collect()
    }

    #[test]
    fn a_cname_is_followed_to_its_target_taking_the_target_s_turn() {
        let (registry, turns) = (registry(), Turns::default());
        cname(&registry, "www.shop.test", "app");
        let first = ask(&registry, &turns, "www.shop.test.", RecordType::A);
        assert_eq!(first.rcode, ResponseCode::NoError);
        assert!(first.authoritative);
        assert_eq!(
            types(&first),
            [
                RecordType::CNAME,
                RecordType::A,
                RecordType::A,
                RecordType::A
            ]
        );
        assert_eq!(first.answers[1].name.to_ascii(), "app.");
        let direct = ask(&registry, &turns, "app.", RecordType::A);
        // The direct question got the next turn: it starts one member later.
        assert_eq!(direct.answers[0].data, first.answers[2].data);
    }

    #[test]
    fn cname_asked_or_any_gets_the_cname_alone() {
        let (registry, turns) = (registry(), Turns::default());
        cname(&registry, "www.shop.test", "app");
        for qtype in [RecordType::CNAME, RecordType::ANY] {
            let answer = ask(&registry, &turns, "www.shop.test.", qtype);
            assert_eq!(types(&answer), [RecordType::CNAME], "{qtype}");
        }
    }

    #[test]
    fn a_loop_or_a_chain_past_the_bound_is_servfail() {
        let (registry, turns) = (registry(), Turns::default());
        cname(&registry, "a.test", "b.test");
        cname(&registry, "b.test", "a.test");
        let looped = ask(&registry, &turns, "a.test.", RecordType::A);
        assert_eq!(looped.rcode, ResponseCode::ServFail);
        assert!(looped.answers.is_empty());
        // A chain of exactly MAX_CNAME_HOPS CNAMEs is followed; one more is not.
        for hop in 0..=MAX_CNAME_HOPS {
            cname(
                &registry,
                &format!("h{hop}.test"),
                &format!("h{}.test", hop + 1),
            );
        }
        cname(&registry, &format!("h{}.test", MAX_CNAME_HOPS + 1), "app");
        let long = ask(&registry, &turns, "h0.test.", RecordType::A);
        assert_eq!(long.rcode, ResponseCode::ServFail);
        let bounded = ask(&registry, &turns, "h2.test.", RecordType::A);
        assert_eq!(bounded.rcode, ResponseCode::NoError);
        assert_eq!(bounded.answers.len(), MAX_CNAME_HOPS + 3);
    }

    #[test]
    fn an_unheld_target_gives_the_cname_alone_or_nxdomain_under_the_domain() {
        let (registry, turns) = (registry(), Turns::default());
        cname(&registry, "away.test", "example.com");
        cname(&registry, "gone.test", "nope.docker");
        let away = ask(&registry, &turns, "away.test.", RecordType::A);
        assert_eq!(
            (away.rcode, away.forwardable),
            (ResponseCode::NoError, false)
        );
        assert_eq!(types(&away), [RecordType::CNAME]);
        let gone = ask(&registry, &turns, "gone.test.", RecordType::A);
        assert_eq!(gone.rcode, ResponseCode::NXDomain);
        assert_eq!(types(&gone), [RecordType::CNAME]);
        assert!(gone.soa.is_some());
    }

    fn decided(registry: &Registry, name: &str, qtype: RecordType, asker: IpAddr) -> Decision {
        let name = LowerName::from(Name::from_ascii(name).expect("name"));
        decide(
            registry,
            NameKey::new(&name).as_bytes(),
            qtype.into(),
            asker,
            30,
        )
    }

    /// The decision both paths format, rule by rule.
    #[test]
    fn decide_gives_held_addresses_and_not_ours_and_leaves_the_rest_to_the_full_rules() {
        let registry = registry();
        cname(&registry, "www.shop.test", "app");
        // Held, with addresses of the family asked: every member, the server's TTL.
        match decided(&registry, "app.", RecordType::A, HOST) {
            Decision::Addresses { set, v6, ttl } => {
                assert!(!v6);
                assert_eq!(set.v4_members().len(), 3);
                assert_eq!(ttl, 30, "no TTL of its own: the server's");
            }
            other => panic!("app A: {other:?}"),
        }
        // Qualified by its network, and in another case: the same set.
        assert!(matches!(
            decided(&registry, "APP.n.", RecordType::A, HOST),
            Decision::Addresses { .. }
        ));
        // Held without AAAA (NODATA with the SOA), another type, a CNAME: the full rules,
        // from the set looked up.
        for (name, qtype) in [
            ("app.", RecordType::AAAA),
            ("app.", RecordType::TXT),
            ("app.", RecordType::ANY),
            ("www.shop.test.", RecordType::A),
        ] {
            assert!(
                matches!(decided(&registry, name, qtype, HOST), Decision::Held(_)),
                "{name} {qtype}"
            );
        }
        // Under the search domain and unheld: NXDOMAIN is ours to say, not the forwarder's.
        assert!(matches!(
            decided(&registry, "nope.docker.", RecordType::A, HOST),
            Decision::Unheld
        ));
        // Outside everything: not ours, whatever the type, except a reverse name (a PTR may be
        // held) and a service name (its host may be ours).
        for (name, qtype) in [
            ("example.com.", RecordType::A),
            ("example.com.", RecordType::MX),
        ] {
            assert!(
                matches!(decided(&registry, name, qtype, HOST), Decision::NotOurs),
                "{name} {qtype}"
            );
        }
        for (name, qtype) in [
            ("2.0.0.10.in-addr.arpa.", RecordType::PTR),
            ("_http._tcp.example.com.", RecordType::SRV),
            ("_http._tcp.app.", RecordType::A),
        ] {
            assert!(
                matches!(decided(&registry, name, qtype, HOST), Decision::Other),
                "{name} {qtype}"
            );
        }
        // A stranger sees no network: `app` is not held for it.
        let stranger: IpAddr = "192.0.2.9".parse().expect("ip");
        assert!(matches!(
            decided(&registry, "app.", RecordType::A, stranger),
            Decision::NotOurs
        ));
    }

    /// The full rules format the decision: the held addresses in the turn's order, AA,
    /// NOERROR; not ours is REFUSED and forwardable.
    #[test]
    fn answer_formats_the_decision() {
        let (registry, turns) = (registry(), Turns::default());
        let first = ask(&registry, &turns, "app.", RecordType::A);
        assert_eq!(
            (first.rcode, first.authoritative),
            (ResponseCode::NoError, true)
        );
        assert_eq!(types(&first), [RecordType::A; 3]);
        let second = ask(&registry, &turns, "app.", RecordType::A);
        assert_eq!(
            second.answers[0].data, first.answers[1].data,
            "the next turn"
        );
        let away = ask(&registry, &turns, "example.com.", RecordType::A);
        assert_eq!(
            (away.rcode, away.forwardable),
            (ResponseCode::Refused, true)
        );
    }

    #[test]
    fn a_cname_beside_a_holder_of_the_name_is_not_served() {
        let (registry, turns) = (registry(), Turns::default());
        cname(&registry, "web1", "app");
        let answer = ask(&registry, &turns, "web1.", RecordType::A);
        assert_eq!(types(&answer), [RecordType::A], "the endpoint wins");
    }
}
