//! What the registry knows of a name for one asker, as data, for `explain`: who the asker is
//! and which networks it sees, which networks hold the name and each member's state (in or
//! out of rotation and why, TTL, the source that published it, the SRV ports it offers), or
//! whose address a reverse name is. Read-only, and no wording: `telemetry::explain` says it.

use std::net::IpAddr;

use super::{NameData, NameOrigin, Origins};

/// Who an asker is, as scoping takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AskerIs {
    /// An endpoint: its `NAME.NETWORK.`.
    Endpoint(String),
    /// Loopback, the host's own addresses, or a trusted asker.
    Local,
    /// A known container's address that has no name (its default-bridge address, say).
    NamelessContainer,
    /// Anyone else.
    Stranger,
}

/// One member of a name on one network.
#[derive(Debug, Clone)]
pub struct Member {
    pub addresses: Vec<IpAddr>,
    pub name: String,
    /// Why it is out of rotation; `None`: in rotation.
    pub out_of_rotation: Option<&'static str>,
    /// Its own TTL; `None`: the server's.
    pub ttl: Option<u32>,
    /// The source that published it (`static`, `docker`, `swarm`).
    pub owner: &'static str,
    /// (service, proto, port, weight) of each SRV service it offers.
    pub offers: Vec<(String, &'static str, u16, u16)>,
    /// Where this member's answering to the name comes from (its name, an alias, a label...).
    pub origin: Option<NameOrigin>,
}

/// A network holding the name.
#[derive(Debug, Clone)]
pub struct Holder {
    pub network: String,
    /// Whether the asker sees this network.
    pub seen: bool,
    pub members: Vec<Member>,
    /// Static records under the name there (`[networks.N.records]`), with their source.
    pub data: Vec<(&'static str, NameData)>,
}

/// What the asker's answer is drawn from, when it has one.
#[derive(Debug, Clone)]
pub struct Answered {
    /// Each rotating member with the answers that named it first.
    pub spread: Vec<(IpAddr, u64)>,
    /// The set's TTL, when its members set one.
    pub ttl: Option<u32>,
    /// Where the name that answers comes from (a wildcard's, when one answers).
    pub origins: Origins,
}

/// What the question is about.
#[derive(Debug, Clone)]
pub enum Subject {
    /// A reverse name: the address it spells, and each `NAME.NETWORK.` holding it (seen or not).
    Reverse {
        ip: IpAddr,
        targets: Vec<(String, bool)>,
    },
    /// A name: the networks holding it (only those the asker sees when it explains for
    /// itself), and what its answer comes from.
    Name {
        holders: Vec<Holder>,
        answered: Option<Answered>,
    },
}

/// Everything `explain` says of a name before the answer itself.
#[derive(Debug, Clone)]
pub struct Description {
    pub asker: IpAddr,
    pub is: AskerIs,
    /// The networks the asker sees, by name.
    pub sees: Vec<String>,
    /// Networks the asker does not see are left out (a container explaining for itself).
    pub only_seen: bool,
    pub subject: Subject,
}
