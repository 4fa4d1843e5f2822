//! `explain`'s wording: the registry's [`Description`] of a name for one asker, as the lines
//! people read (who asks and what it sees, each network's members and why they are in or out
//! of rotation, the spread, or whose address a reverse name is). Formats only; what is true
//! is the registry's, and the answer itself is the DNS front end's (`dns::predict`).

use crate::registry::{
    NameData,
    describe::{AskerIs, Description, Subject},
};

/// The lines for `description`; `name` is the name as asked.
pub fn lines(name: &str, description: &Description) -> Vec<String> {
    let mut out = Vec::new();
    let who = match &description.is {
        AskerIs::Endpoint(endpoint) => format!("a container ({endpoint})"),
        AskerIs::Local => "the host, or a trusted asker".to_string(),
        AskerIs::NamelessContainer => "a container (by a nameless address)".to_string(),
        AskerIs::Stranger => "a stranger".to_string(),
    };
    out.push(format!("asker {}: {who}", description.asker));
    out.push(if description.sees.is_empty() {
        "sees no network".to_string()
    } else {
        format!("sees: {}", description.sees.join(", "))
    });
    let seen = |seen: bool| {
        if seen {
            "seen by the asker"
        } else {
            "NOT seen by the asker"
        }
    };
    match &description.subject {
        Subject::Reverse { ip, targets } => {
            let held: Vec<String> = targets
                .iter()
                .map(|(target, s)| format!("{target} ({})", seen(*s)))
                .collect();
            out.push(match held.as_slice() {
                [] if description.only_seen => {
                    format!("{name} is the reverse name of {ip}, held on no network the asker sees")
                }
                [] => format!("{name} is the reverse name of {ip}, held by no endpoint"),
                _ => format!("{name} is the reverse name of {ip}: {}", held.join(", ")),
            });
        }
        Subject::Name { holders, answered } => {
            for holder in holders {
                out.push(format!(
                    "network {} ({}):",
                    holder.network,
                    seen(holder.seen)
                ));
                for member in &holder.members {
                    let addresses: Vec<String> =
                        member.addresses.iter().map(|ip| ip.to_string()).collect();
                    let status = match member.out_of_rotation {
                        None => "in rotation".to_string(),
                        Some(reason) => format!("OUT of rotation: {reason}"),
                    };
                    let ttl = member
                        .ttl
                        .map_or_else(|| "server TTL".to_string(), |t| format!("TTL {t}"));
                    let origin = member
                        .origin
                        .map_or_else(String::new, |o| format!(" ({})", o.word()));
                    out.push(format!(
                        "  {} {} ({status}; {ttl}; from {}{origin})",
                        addresses.join(" "),
                        member.name,
                        member.owner,
                    ));
                    for (service, proto, port, weight) in &member.offers {
                        out.push(format!(
                            "    offers _{service}._{proto} port {port} weight {weight}"
                        ));
                    }
                }
                for (owner, data) in &holder.data {
                    out.extend(static_lines(owner, data));
                }
            }
            match answered {
                Some(answered) => {
                    if !answered.origins.is_empty() {
                        out.push(format!("name from: {}", answered.origins.words()));
                    }
                    if !answered.spread.is_empty() {
                        let spread: Vec<String> = answered
                            .spread
                            .iter()
                            .map(|(ip, n)| format!("{ip} {n}"))
                            .collect();
                        out.push(format!(
                            "answers naming each first since start: {}",
                            spread.join(", ")
                        ));
                    }
                    if let Some(ttl) = answered.ttl {
                        out.push(format!("TTL {ttl}"));
                    }
                }
                None if !holders.is_empty() => out.push(
                    "not answered from these: no member is in rotation on a network the asker sees"
                        .into(),
                ),
                // Not "held nowhere" to a container explaining for itself: others' networks
                // are not its business.
                None if description.only_seen => {
                    out.push(format!("{name} is held on no network the asker sees"))
                }
                None => out.push(format!("{name} is held on no network")),
            }
        }
    }
    out
}

/// A network's static records under the name, one line per type, with their source.
fn static_lines(owner: &str, data: &NameData) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(target) = &data.cname {
        out.push(format!(
            "  CNAME {} (from {owner} (CNAME))",
            target.trim_end_matches('.')
        ));
    }
    let addresses = |ips: Vec<String>| ips.join(" ");
    if !data.v4.is_empty() {
        out.push(format!(
            "  A {} (in rotation; from {owner} (config))",
            addresses(data.v4.iter().map(|ip| ip.to_string()).collect())
        ));
    }
    if !data.v6.is_empty() {
        out.push(format!(
            "  AAAA {} (in rotation; from {owner} (config))",
            addresses(data.v6.iter().map(|ip| ip.to_string()).collect())
        ));
    }
    if !data.txt.is_empty() {
        let strings: Vec<String> = data
            .txt
            .iter()
            .map(|t| format!("{:?}", String::from_utf8_lossy(t)))
            .collect();
        out.push(format!(
            "  TXT {} (from {owner} (config))",
            strings.join(" ")
        ));
    }
    out
}
