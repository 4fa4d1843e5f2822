//! What `/records` and the spread metric list, in two steps: the writer copies handles and
//! small values under its lock (`Model::listing`, `Model::spread`), and this turns them into
//! the listing outside it. With 100,000 endpoints and `/records` read in a loop, a change
//! waited p99 546 ms, at most 617 ms, while the listing was worded under the lock; copied
//! under it and worded here: p99 10 ms, at most 163 ms (`cargo test --release --lib --
//! --ignored --nocapture records_hold`).
//! It reads rotation counters but takes no turn, and never touches the model.

use std::{collections::BTreeMap, net::IpAddr};

use super::{NameKey, NameOrigin, Origins, SharedSet};

/// networks → names → members, as `/records` shows them.
pub type Records = BTreeMap<String, BTreeMap<String, Vec<String>>>;

/// One network as `/records` lists it.
pub(super) struct NetworkListing {
    pub network: String,
    pub names: Vec<NameListing>,
}

/// One short name as `/records` lists it.
pub(super) struct NameListing {
    pub short: NameKey,
    /// In rotation, in the next answer's order (`None`: no member is).
    pub set: Option<SharedSet>,
    /// Members out of rotation: an address and why.
    pub resting: Vec<(IpAddr, &'static str)>,
    /// Where the name comes from.
    pub origins: Origins,
}

/// The short name as listed: without its trailing dot.
fn shown(short: &NameKey) -> String {
    short.to_string().trim_end_matches('.').to_string()
}

/// networks → names → members: those in rotation in the next answer's order, then those out
/// of rotation, marked with the reason (as `ADDRESS (out of rotation: REASON)`), a static
/// CNAME or TXT (`CNAME TARGET.`, `TXT "a" "b"`), each followed by where the name comes from
/// (`(from alias)`, `(from label, wildcard)`), then each
/// service's SRV data as `_SERVICE._PROTO.NAME` → `PRIORITY WEIGHT PORT TARGET`, as zone
/// files write it.
pub(super) fn records(listing: Vec<NetworkListing>) -> Records {
    listing
        .into_iter()
        .map(|network| {
            let mut names = BTreeMap::new();
            for entry in network.names {
                let name = shown(&entry.short);
                // A rotating member says how many answers named it first: the spread a load
                // test checks ("172.72.0.2 (first 10)").
                let mut members: Vec<String> = entry
                    .set
                    .iter()
                    .flat_map(|set| set.peek_with_firsts())
                    .map(|(ip, firsts)| match firsts {
                        Some(n) => format!("{ip} (first {n})"),
                        None => ip.to_string(),
                    })
                    .collect();
                members.extend(
                    entry
                        .resting
                        .iter()
                        .map(|(ip, reason)| format!("{ip} (out of rotation: {reason})")),
                );
                // Static CNAME and TXT data, as zone files write it.
                for set in entry.set.iter() {
                    members.extend(set.cname().map(|target| format!("CNAME {target}")));
                    if !set.txt().is_empty() {
                        let strings: Vec<String> = set
                            .txt()
                            .iter()
                            .map(|t| format!("{:?}", String::from_utf8_lossy(t)))
                            .collect();
                        members.push(format!("TXT {}", strings.join(" ")));
                    }
                }
                // Where the name comes from, after each entry: "172.72.0.2 (first 10) (from
                // alias)", so a reader of one entry sees it and the entry's first word stays
                // the address.
                if !entry.origins.is_empty() {
                    let from = format!(" (from {})", entry.origins.words());
                    for member in &mut members {
                        member.push_str(&from);
                    }
                }
                for (svc, targets) in entry.set.iter().flat_map(|set| set.peek_srv()) {
                    let rdata = targets
                        .iter()
                        .map(|t| format!("0 {} {} {}", t.weight, t.port, t.target))
                        .collect();
                    names.insert(format!("_{}._{}.{name}", svc.0, svc.1.label()), rdata);
                }
                names.insert(name, members);
            }
            (network.network, names)
        })
        .collect()
}

/// The names a `netalias.names` label claims (wildcards as `*.D`) on the listed networks:
/// once each, in name order, without the trailing dot (`/label-names`, which `host-dns` turns
/// into the domains the host routes to netalias).
pub(super) fn label_names(listing: Vec<NetworkListing>) -> Vec<String> {
    let names: std::collections::BTreeSet<String> = listing
        .into_iter()
        .flat_map(|network| network.names)
        .filter(|entry| entry.origins.contains(NameOrigin::Label))
        .map(|entry| shown(&entry.short))
        .collect();
    names.into_iter().collect()
}

/// (network, name, member, answers naming it first) of the sets [`Model::spread`] picked.
///
/// [`Model::spread`]: super::writer::Model
pub(super) fn spread(
    sets: Vec<(String, NameKey, SharedSet)>,
) -> Vec<(String, String, IpAddr, u64)> {
    let mut out = Vec::new();
    for (network, short, set) in sets {
        let name = shown(&short);
        for (ip, firsts) in set.peek_with_firsts() {
            if let Some(n) = firsts {
                out.push((network.clone(), name.clone(), ip, n));
            }
        }
    }
    out
}
