//! A differential test of told endpoints (`endpoints.rs`): one registry keeps every endpoint in
//! the writer's map, its twin lets its names' sets tell the plain ones; the same random changes
//! go to both, and after each every answer, PTR, asker, listing, explanation and resync view
//! must be the same. Plus the plain cases spelled out.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::*;

const T: Owner = Owner("test");
const U: Owner = Owner("other");
const HOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const NETWORKS: [&str; 3] = ["n1", "n2", "Dev"];
const CONTAINERS: [&str; 6] = ["c0", "c1", "c2", "C2", "web", "bad name"];
const NAMES: [&str; 8] = ["c0", "c1", "c2", "web", "app", "alt-c0", "alt-web", "nope"];

/// xorshift64*: the same changes on every run, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }
}

fn v4(last: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, last as u8)
}

fn endpoint(rng: &mut Rng) -> Endpoint {
    let container = rng.pick(&CONTAINERS);
    let aliases: Vec<String> = if rng.chance(30) {
        vec![rng.pick(&["app", "c1", "web", "C0"]).to_string()]
    } else {
        Vec::new()
    };
    let origins = if rng.chance(80) {
        NameOrigins::all(NameOrigin::Config, 1 + aliases.len())
    } else {
        NameOrigins::default()
    };
    Endpoint {
        network: rng.pick(&NETWORKS).into(),
        container: container.into(),
        name: if rng.chance(15) {
            format!("alt-{container}")
        } else {
            container.into()
        },
        aliases,
        ipv4: rng.chance(90).then(|| v4(1 + rng.below(6))),
        ipv6: rng
            .chance(10)
            .then(|| Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1 + rng.below(3) as u16)),
        ttl: rng.chance(8).then_some(30),
        out_of_rotation: rng.chance(8).then_some("unhealthy"),
        srv: if rng.chance(5) {
            vec![SrvPort {
                service: "http".into(),
                proto: SrvProto::Tcp,
                port: 80,
                weight: 1,
            }]
        } else {
            Vec::new()
        },
        origins,
    }
}

fn change(rng: &mut Rng) -> (Owner, Change) {
    let owner = if rng.chance(75) { T } else { U };
    let network: String = rng.pick(&NETWORKS).into();
    let change = match rng.below(20) {
        0..=9 => Change::EndpointUp(endpoint(rng)),
        10..=14 => Change::EndpointDown {
            network,
            container: rng.pick(&CONTAINERS).into(),
        },
        15 => Change::NetworkDown { network },
        16 => Change::NetworkUp { network },
        17 | 18 => Change::NameData {
            network,
            name: rng.pick(&["c2", "app", "web"]).into(),
            data: match rng.below(3) {
                0 => None,
                1 => Some(NameData {
                    v4: vec![v4(9)],
                    ..NameData::default()
                }),
                _ => Some(NameData {
                    txt: vec![b"hello".to_vec()],
                    ..NameData::default()
                }),
            },
        },
        _ => Change::AskerAddresses {
            container: rng.pick(&CONTAINERS).into(),
            addresses: if rng.chance(50) {
                vec![IpAddr::V4(Ipv4Addr::new(10, 0, 1, 1 + rng.below(2) as u8))]
            } else {
                Vec::new()
            },
        },
    };
    (owner, change)
}

fn name(text: &str) -> LowerName {
    LowerName::from_str(text).expect("valid name")
}

fn arpa(ip: IpAddr) -> LowerName {
    LowerName::from(Name::from(ip))
}

/// Everything a reader, an operator or a source can see of `reg`, as text.
fn observe(reg: &Registry) -> String {
    let mut out = String::new();
    let mut addresses: Vec<IpAddr> = (1..=9).map(|i| IpAddr::V4(v4(i))).collect();
    addresses.extend((1..=3).map(|i| IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, i))));
    addresses.extend((1..=2).map(|i| IpAddr::V4(Ipv4Addr::new(10, 0, 1, i))));
    // Loopback sees all; one address that is shared often, one rarely, one IPv6 and one
    // nameless asker address see what their containers do.
    let askers = [
        HOST,
        addresses[0],
        addresses[3],
        addresses[9],
        addresses[12],
    ];
    for asker in askers {
        out += &format!("asker {asker}: {:?}\n", reg.asker_id(asker));
        for short in NAMES {
            for form in std::iter::once(format!("{short}."))
                .chain(NETWORKS.iter().map(|n| format!("{short}.{n}.")))
            {
                if let Some(set) = reg.lookup(&name(&form), asker) {
                    out += &format!("  {form} {:?}\n", &*set);
                }
            }
        }
        for ip in &addresses {
            if let Some(target) = reg.lookup_ptr(&arpa(*ip), asker) {
                out += &format!("  ptr {ip} {target}\n");
            }
        }
    }
    out += &format!("records {:?}\n", reg.records());
    for short in NAMES {
        out += &format!(
            "describe {short} {:?}\n",
            reg.describe(&name(&format!("{short}.")), HOST, false)
        );
        out += &format!("address_of {short} {:?}\n", reg.address_of(short));
    }
    for owner in [T, U] {
        let mut sent = Vec::new();
        reg.each_published(owner, |e| sent.push(format!("{e:?}")));
        sent.sort();
        out += &format!("published {owner}: {sent:?}\n");
    }
    out += &format!("sizes {:?}\n", reg.sizes());
    out
}

#[test]
fn a_registry_that_lets_sets_tell_plain_endpoints_answers_as_one_that_keeps_them_all() {
    let mut told_at_some_point = 0;
    for seed in 1..=60u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let keeps = Registry::new(Some("docker")).expect("registry");
        keeps.model().keep_every_endpoint();
        let tells = Registry::new(Some("docker")).expect("registry");
        for step in 0..40 {
            let (owner, change) = change(&mut rng);
            let said = format!("{change:?}");
            keeps.apply(owner, change.clone());
            tells.apply(owner, change);
            let (a, b) = (observe(&keeps), observe(&tells));
            if a != b {
                let first = a.lines().zip(b.lines()).find(|(x, y)| x != y);
                panic!("seed {seed} step {step} after {said}: first difference {first:?}");
            }
            let (kept, twin) = (
                tells.model().kept_endpoints(),
                keeps.model().kept_endpoints(),
            );
            let ptr = tells.model().kept_ptr_holders();
            if kept < twin && ptr < keeps.model().kept_ptr_holders() {
                told_at_some_point += 1;
            }
        }
    }
    assert!(
        told_at_some_point > 50,
        "the twin told endpoints in only {told_at_some_point} steps: the test does not exercise them"
    );
}

fn plain(network: &str, container: &str, last: u8) -> Endpoint {
    Endpoint {
        network: network.into(),
        container: container.into(),
        name: container.into(),
        aliases: Vec::new(),
        ipv4: Some(Ipv4Addr::new(10, 0, 0, last)),
        ipv6: None,
        ttl: None,
        out_of_rotation: None,
        srv: Vec::new(),
        origins: NameOrigins::all(NameOrigin::Config, 1),
    }
}

#[test]
fn a_plain_endpoint_is_kept_only_while_its_name_has_company() {
    let reg = Registry::new(None).expect("registry");
    for i in 1..=50 {
        reg.apply(T, Change::EndpointUp(plain("n", &format!("e{i}"), i)));
    }
    assert_eq!(reg.sizes().endpoints, 50);
    assert_eq!(reg.model().kept_endpoints(), 0, "every one told by its set");
    assert_eq!(
        reg.model().kept_ptr_holders(),
        0,
        "and each address's holder by its PTR"
    );
    assert_eq!(
        reg.lookup_ptr(&arpa(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7))), HOST)
            .map(|n| n.to_string()),
        Some("e7.n.".into())
    );
    // Another endpoint's alias joins e1's name: e1 is kept while they share it.
    let mut joining = plain("n", "x", 99);
    joining.aliases = vec!["e1".into()];
    joining.origins = NameOrigins::all(NameOrigin::Config, 2);
    reg.apply(T, Change::EndpointUp(joining));
    assert_eq!(reg.model().kept_endpoints(), 2, "e1 and x (x has an alias)");
    assert_eq!(
        reg.model().kept_ptr_holders(),
        2,
        "the holders of their addresses too"
    );
    let e1 = |reg: &Registry| {
        reg.lookup(&name("e1."), HOST)
            .map(|s| s.v4_members().to_vec())
    };
    assert_eq!(
        e1(&reg),
        Some(vec![
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 99)
        ])
    );
    reg.apply(
        T,
        Change::EndpointDown {
            network: "n".into(),
            container: "x".into(),
        },
    );
    assert_eq!(e1(&reg), Some(vec![Ipv4Addr::new(10, 0, 0, 1)]));
    // Its set keeps the rotation's cursors through a lone spell (`record_set.rs`), which a
    // plain endpoint's set has not: e1 stays kept.
    assert_eq!(reg.model().kept_endpoints(), 1);
    reg.apply(
        T,
        Change::EndpointDown {
            network: "n".into(),
            container: "e1".into(),
        },
    );
    reg.apply(T, Change::EndpointUp(plain("n", "e1", 1)));
    assert_eq!(reg.model().kept_endpoints(), 0, "e1 told again");
    assert_eq!(reg.model().kept_ptr_holders(), 0);
    // A told endpoint moves, and goes; each resync sees what was sent.
    reg.apply(T, Change::EndpointUp(plain("n", "e2", 200)));
    assert_eq!(reg.address_of("E2"), Some(IpAddr::from([10, 0, 0, 200])));
    let mut sent = Vec::new();
    reg.each_published(T, |e| sent.push(e.clone()));
    assert_eq!(sent.len(), 50);
    assert!(sent.contains(&plain("n", "e2", 200)));
    reg.apply(
        T,
        Change::NetworkDown {
            network: "n".into(),
        },
    );
    assert_eq!(reg.sizes(), Sizes::default());
    assert!(reg.lookup(&name("e3."), HOST).is_none());
}
