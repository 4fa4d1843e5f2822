//! Unit tests of the registry: names, rotation across changes, views, PTR, zones, askers.

use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use super::*;

const HOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const T: Owner = Owner("test");

fn ep(network: &str, container: &str, ip: [u8; 4], aliases: &[&str]) -> Endpoint {
    Endpoint {
        network: network.into(),
        container: container.into(),
        name: container.into(),
        aliases: aliases.iter().map(|a| a.to_string()).collect(),
        ipv4: Some(Ipv4Addr::from(ip)),
        ipv6: None,
        ttl: None,
        out_of_rotation: None,
        srv: Vec::new(),
        origins: Default::default(),
    }
}

fn name(s: &str) -> LowerName {
    LowerName::from_str(s).expect("valid name")
}

fn members(reg: &Registry, q: &str, asker: IpAddr) -> Option<Vec<Ipv4Addr>> {
    reg.lookup(&name(q), asker).map(|s| s.v4_members().to_vec())
}

#[test]
fn every_name_form_resolves_case_insensitively() {
    let reg = Registry::new(Some("docker")).expect("registry");
    reg.apply(
        T,
        Change::EndpointUp(ep("net1", "web1", [10, 0, 0, 2], &["app"])),
    );
    for q in [
        "web1.",
        "WEB1.",
        "app.",
        "App.Net1.",
        "app.docker.",
        "web1.net1.docker.",
    ] {
        assert_eq!(
            members(&reg, q, HOST),
            Some(vec![Ipv4Addr::new(10, 0, 0, 2)]),
            "{q}"
        );
    }
    assert_eq!(members(&reg, "nope.", HOST), None);
    // Suffixes that are not whole labels of the domain or the network are not stripped.
    for q in [
        "app.xdocker.",
        "appdocker.",
        "web1.xnet1.",
        "docker.",
        "net1.",
    ] {
        assert_eq!(members(&reg, q, HOST), None, "{q}");
    }
}

#[test]
fn a_qualified_name_answers_only_on_its_network_and_only_to_those_who_see_it() {
    let reg = Registry::new(None).expect("registry");
    reg.apply(
        T,
        Change::EndpointUp(ep("front", "web", [10, 0, 1, 2], &[])),
    );
    reg.apply(T, Change::EndpointUp(ep("back", "web", [10, 0, 2, 2], &[])));
    reg.apply(T, Change::EndpointUp(ep("back", "db", [10, 0, 2, 3], &[])));
    assert_eq!(
        members(&reg, "web.front.", HOST),
        Some(vec![Ipv4Addr::new(10, 0, 1, 2)])
    );
    assert_eq!(
        members(&reg, "web.back.", HOST),
        Some(vec![Ipv4Addr::new(10, 0, 2, 2)])
    );
    assert_eq!(members(&reg, "db.front.", HOST), None, "db is not on front");
    // A container on `back` alone does not see `front`, even when it names it.
    let on_back = IpAddr::from([10, 0, 2, 3]);
    assert_eq!(members(&reg, "web.front.", on_back), None);
    assert_eq!(
        members(&reg, "web.", on_back),
        Some(vec![Ipv4Addr::new(10, 0, 2, 2)])
    );
}

#[test]
fn alias_collects_members_and_removal_shrinks_it() {
    let reg = Registry::new(None).expect("registry");
    for (i, c) in ["a", "b", "c"].iter().enumerate() {
        reg.apply(
            T,
            Change::EndpointUp(ep("n", c, [10, 0, 0, i as u8 + 1], &["app"])),
        );
    }
    assert_eq!(members(&reg, "app.", HOST).map(|m| m.len()), Some(3));
    reg.apply(
        T,
        Change::EndpointDown {
            network: "n".into(),
            container: "b".into(),
        },
    );
    assert_eq!(
        members(&reg, "app.", HOST),
        Some(vec![Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 3)])
    );
    assert_eq!(members(&reg, "b.", HOST), None);
    reg.apply(
        T,
        Change::NetworkDown {
            network: "n".into(),
        },
    );
    assert_eq!(members(&reg, "app.", HOST), None);
    assert_eq!(reg.sizes(), Sizes::default());
}

#[test]
fn rotation_survives_membership_change() {
    let reg = Registry::new(None).expect("registry");
    reg.apply(T, Change::EndpointUp(ep("n", "a", [10, 0, 0, 1], &["app"])));
    reg.apply(T, Change::EndpointUp(ep("n", "b", [10, 0, 0, 2], &["app"])));
    let set = reg.lookup(&name("app."), HOST).expect("app");
    set.next_v4();
    reg.apply(T, Change::EndpointUp(ep("n", "c", [10, 0, 0, 3], &["app"])));
    let set = reg.lookup(&name("app."), HOST).expect("app");
    // k = 1 continues on the new three-member set.
    assert_eq!(
        set.next_v4().iter().next(),
        Some(&Ipv4Addr::new(10, 0, 0, 2))
    );
}

#[test]
fn a_lone_name_takes_no_turn_and_a_rotation_keeps_its_cursors_through_a_lone_spell() {
    let reg = Registry::new(None).expect("registry");
    let app = |reg: &Registry| reg.lookup(&name("app."), HOST).expect("app");
    let first = |reg: &Registry| app(reg).next_v4().iter().next().copied();
    reg.apply(T, Change::EndpointUp(ep("n", "a", [10, 0, 0, 1], &["app"])));
    for _ in 0..5 {
        assert_eq!(first(&reg), Some(Ipv4Addr::new(10, 0, 0, 1)));
    }
    assert!(app(&reg).cursors().is_none(), "one member: no cursors");
    // A second member: the rotation starts there, the lone answers not counted.
    reg.apply(T, Change::EndpointUp(ep("n", "b", [10, 0, 0, 2], &["app"])));
    let cursors = std::sync::Arc::clone(app(&reg).cursors().expect("two members rotate"));
    assert_eq!(first(&reg), Some(Ipv4Addr::new(10, 0, 0, 1)));
    assert_eq!(first(&reg), Some(Ipv4Addr::new(10, 0, 0, 2)));
    let counts = |reg: &Registry| {
        app(reg)
            .firsts()
            .into_iter()
            .map(|(_, n)| n)
            .collect::<Vec<_>>()
    };
    assert_eq!(counts(&reg), [1, 1]);
    // b leaves and comes back: the same cursors throughout, the turn and the counts go on.
    reg.apply(
        T,
        Change::EndpointDown {
            network: "n".into(),
            container: "b".into(),
        },
    );
    assert!(std::sync::Arc::ptr_eq(
        app(&reg).cursors().expect("kept"),
        &cursors
    ));
    assert_eq!(first(&reg), Some(Ipv4Addr::new(10, 0, 0, 1)));
    reg.apply(T, Change::EndpointUp(ep("n", "b", [10, 0, 0, 2], &["app"])));
    assert!(std::sync::Arc::ptr_eq(
        app(&reg).cursors().expect("kept"),
        &cursors
    ));
    // Turn 3 of two members: b.
    assert_eq!(first(&reg), Some(Ipv4Addr::new(10, 0, 0, 2)));
    assert_eq!(
        counts(&reg),
        [2, 1],
        "a's count kept through its lone spell, b's from before it left not"
    );
}

#[test]
fn containers_see_only_their_networks() {
    let reg = Registry::new(None).expect("registry");
    reg.apply(
        T,
        Change::EndpointUp(ep("front", "web", [10, 1, 0, 2], &[])),
    );
    reg.apply(T, Change::EndpointUp(ep("back", "db", [10, 2, 0, 2], &[])));
    reg.apply(T, Change::EndpointUp(ep("back", "web", [10, 2, 0, 3], &[])));
    let db = IpAddr::V4(Ipv4Addr::new(10, 2, 0, 2));
    let web = IpAddr::V4(Ipv4Addr::new(10, 1, 0, 2));
    reg.apply(T, Change::EndpointUp(ep("front", "lb", [10, 1, 0, 9], &[])));
    // db is only on back: it sees web's back address, and not lb at all.
    assert_eq!(
        members(&reg, "web.", db),
        Some(vec![Ipv4Addr::new(10, 2, 0, 3)])
    );
    assert_eq!(members(&reg, "lb.", db), None);
    // web is on both, found by either address.
    assert!(members(&reg, "lb.", web).is_some());
    assert!(members(&reg, "db.", web).is_some());
    // NAME.NETWORK picks the network.
    assert_eq!(
        members(&reg, "web.front.", HOST),
        Some(vec![Ipv4Addr::new(10, 1, 0, 2)])
    );
    // web leaves back: db no longer sees it.
    reg.apply(
        T,
        Change::EndpointDown {
            network: "back".into(),
            container: "web".into(),
        },
    );
    assert_eq!(members(&reg, "web.", db), None);
}

#[test]
fn default_view_limits_non_containers() {
    let reg = Registry::new(None).expect("registry");
    reg.apply(T, Change::EndpointUp(ep("a", "x", [10, 1, 0, 2], &[])));
    reg.apply(T, Change::EndpointUp(ep("b", "y", [10, 2, 0, 2], &[])));
    reg.set_scoping(Some(vec!["a".into()]), Vec::new());
    assert!(members(&reg, "x.", HOST).is_some());
    assert!(members(&reg, "y.", HOST).is_none());
    reg.set_scoping(None, Vec::new());
    assert!(members(&reg, "y.", HOST).is_some());
}

#[test]
fn ptr_points_at_name_dot_network() {
    let reg = Registry::new(None).expect("registry");
    reg.apply(
        T,
        Change::EndpointUp(ep("net1", "web1", [10, 0, 0, 2], &["app"])),
    );
    let target = reg.lookup_ptr(&name("2.0.0.10.in-addr.arpa."), HOST);
    assert_eq!(
        target.map(|t| t.to_string()),
        Some("web1.net1.".to_string())
    );
    reg.apply(
        T,
        Change::EndpointDown {
            network: "net1".into(),
            container: "web1".into(),
        },
    );
    assert!(
        reg.lookup_ptr(&name("2.0.0.10.in-addr.arpa."), HOST)
            .is_none()
    );
    // The endpoint's part and the network's, as given (case kept), short or long; a network
    // whose name is no DNS name gives none.
    let ptr = |last: u8| {
        reg.lookup_ptr(&name(&format!("{last}.0.0.10.in-addr.arpa.")), HOST)
            .map(|t| t.to_string())
    };
    for (network, container, last) in [
        ("Back.End", "Db-Primary-Replica-1", 3),
        ("Back.End", "Db", 4),
        ("bad net", "web9", 9),
        // Alone, `web\` parses as `web.`; with the network, as one label `web\.net1.`.
        ("net1", "web\\", 10),
    ] {
        reg.apply(
            T,
            Change::EndpointUp(ep(network, container, [10, 0, 0, last], &[])),
        );
    }
    assert_eq!(ptr(3), Some("Db-Primary-Replica-1.Back.End.".into()));
    assert_eq!(ptr(4), Some("Db.Back.End.".into()));
    assert_eq!(
        reg.endpoint_name(IpAddr::from([10, 0, 0, 4]))
            .map(|t| t.to_string()),
        Some("Db.Back.End.".into())
    );
    assert_eq!(ptr(9), None);
    assert_eq!(ptr(10), None, "the parts must spell the whole");
}

#[test]
fn askers_are_classified_for_forwarding() {
    let reg = Registry::new(None).expect("registry");
    reg.apply(T, Change::EndpointUp(ep("int", "db", [10, 5, 0, 2], &[])));
    reg.apply(
        T,
        Change::NetworkInternal {
            network: "int".into(),
            internal: true,
        },
    );
    reg.apply(T, Change::EndpointUp(ep("pub", "web", [10, 6, 0, 2], &[])));
    reg.apply(T, Change::EndpointUp(ep("int", "web", [10, 5, 0, 3], &[])));
    assert_eq!(
        reg.asker(IpAddr::V4(Ipv4Addr::new(10, 5, 0, 2))),
        Asker::InternalOnly
    );
    assert_eq!(
        reg.asker(IpAddr::V4(Ipv4Addr::new(10, 5, 0, 3))),
        Asker::Container,
        "also on a public network"
    );
    assert_eq!(reg.asker(HOST), Asker::Local);
    assert_eq!(
        reg.asker(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
        Asker::Outside
    );
    reg.apply(
        T,
        Change::NetworkInternal {
            network: "int".into(),
            internal: false,
        },
    );
    assert_eq!(
        reg.asker(IpAddr::V4(Ipv4Addr::new(10, 5, 0, 2))),
        Asker::Container
    );
}

#[test]
fn zones_cover_domain_and_networks() {
    let reg = Registry::new(Some("docker")).expect("registry");
    reg.apply(
        T,
        Change::NetworkUp {
            network: "net1".into(),
        },
    );
    assert_eq!(reg.zone_of(&name("x.docker.")), Some(name("docker.")));
    assert_eq!(reg.zone_of(&name("x.net1.")), Some(name("net1.")));
    assert_eq!(reg.zone_of(&name("example.com.")), None);
}

/// The zone filter never hides a zone: qualified names and apexes answer while their network
/// is up, stop when it goes (the filter rebuilt from the others), and come back with it.
#[test]
fn qualified_names_and_apexes_follow_their_networks_through_the_zone_filter() {
    let reg = Registry::new(Some("docker")).expect("registry");
    reg.apply(T, Change::EndpointUp(ep("dev", "web", [10, 0, 0, 2], &[])));
    reg.apply(
        T,
        Change::EndpointUp(ep("frontend", "ui", [10, 0, 1, 2], &[])),
    );
    let web = Some(vec![Ipv4Addr::new(10, 0, 0, 2)]);
    let ui = Some(vec![Ipv4Addr::new(10, 0, 1, 2)]);
    let both_up = || {
        assert_eq!(members(&reg, "web.dev.", HOST), web);
        assert_eq!(members(&reg, "web.dev.docker.", HOST), web);
        assert_eq!(members(&reg, "ui.frontend.", HOST), ui);
        assert_eq!(reg.unheld(&name("dev."), HOST), Unheld::Apex(name("dev.")));
    };
    both_up();
    // A real domain under a network's name is not ours, and names under real TLDs are not.
    assert_eq!(reg.unheld(&name("pkg.go.dev."), HOST), Unheld::NotOurs);
    assert_eq!(reg.unheld(&name("www.example.com."), HOST), Unheld::NotOurs);
    reg.apply(
        T,
        Change::NetworkDown {
            network: "dev".into(),
        },
    );
    assert_eq!(members(&reg, "web.dev.", HOST), None);
    assert_eq!(reg.unheld(&name("dev."), HOST), Unheld::NotOurs);
    assert_eq!(
        members(&reg, "ui.frontend.", HOST),
        ui,
        "kept by the rebuild"
    );
    assert_eq!(
        members(&reg, "ui.frontend.docker.", HOST),
        ui,
        "kept by the rebuild"
    );
    reg.apply(T, Change::EndpointUp(ep("dev", "web", [10, 0, 0, 2], &[])));
    both_up();
}

#[test]
fn a_name_on_several_networks_and_a_qualified_form_spelled_as_an_alias() {
    let reg = Registry::new(None).expect("registry");
    reg.apply(T, Change::EndpointUp(ep("b", "web", [10, 0, 2, 1], &[])));
    reg.apply(T, Change::EndpointUp(ep("a", "web", [10, 0, 1, 1], &[])));
    // On network `z`, an alias that spells `web.a.`, the qualified form of `web` on `a`.
    reg.apply(
        T,
        Change::EndpointUp(ep("z", "odd", [10, 0, 9, 1], &["web.a"])),
    );
    assert_eq!(
        members(&reg, "web.", HOST),
        Some(vec![Ipv4Addr::new(10, 0, 1, 1)]),
        "the first network in name order answers"
    );
    let entry = reg.lookup(&name("web.a."), HOST).expect("web.a.");
    assert_eq!(
        entry.v4_members(),
        [Ipv4Addr::new(10, 0, 1, 1)],
        "the qualified form of `web` on `a` answers before an alias that spells it"
    );
    reg.apply(
        T,
        Change::EndpointDown {
            network: "a".into(),
            container: "web".into(),
        },
    );
    assert_eq!(
        members(&reg, "web.a.", HOST),
        Some(vec![Ipv4Addr::new(10, 0, 9, 1)]),
        "the alias still answers once the container on `a` is gone"
    );
    assert_eq!(
        members(&reg, "web.", HOST),
        Some(vec![Ipv4Addr::new(10, 0, 2, 1)])
    );
    reg.apply(
        T,
        Change::NetworkDown {
            network: "z".into(),
        },
    );
    assert_eq!(members(&reg, "web.a.", HOST), None);
}

#[test]
fn past_max_endpoints_new_ones_are_refused_and_room_comes_back() {
    let reg = Registry::new(None).expect("registry");
    reg.set_max_endpoints(2);
    reg.apply(T, Change::EndpointUp(ep("n", "a", [10, 0, 0, 1], &["app"])));
    reg.apply(T, Change::EndpointUp(ep("n", "b", [10, 0, 0, 2], &["app"])));
    reg.apply(T, Change::EndpointUp(ep("n", "c", [10, 0, 0, 3], &["app"])));
    assert_eq!(reg.sizes().endpoints, 2);
    assert_eq!(members(&reg, "c.", HOST), None, "refused");
    // Changing one already held is not a new endpoint.
    reg.apply(T, Change::EndpointUp(ep("n", "b", [10, 0, 0, 9], &["app"])));
    assert_eq!(
        members(&reg, "b.", HOST),
        Some(vec![Ipv4Addr::new(10, 0, 0, 9)])
    );
    reg.apply(
        T,
        Change::EndpointDown {
            network: "n".into(),
            container: "a".into(),
        },
    );
    reg.apply(T, Change::EndpointUp(ep("n", "c", [10, 0, 0, 3], &["app"])));
    assert_eq!(
        members(&reg, "c.", HOST),
        Some(vec![Ipv4Addr::new(10, 0, 0, 3)])
    );
    reg.apply(
        T,
        Change::NetworkDown {
            network: "n".into(),
        },
    );
    assert_eq!(reg.sizes().endpoints, 0);
}

#[test]
fn strangers_see_nothing_unless_trusted_or_given_a_default_view() {
    let reg = Registry::new(Some("docker")).expect("registry");
    reg.apply(T, Change::EndpointUp(ep("a", "x", [10, 1, 0, 2], &[])));
    let stranger = IpAddr::from([10, 9, 9, 9]);
    assert!(members(&reg, "x.", stranger).is_none(), "fails closed");
    assert!(reg.is_stranger(stranger));
    assert_eq!(reg.asker(stranger), Asker::Outside);
    assert!(members(&reg, "x.", HOST).is_some(), "loopback sees all");
    reg.set_scoping(None, vec!["10.9.0.0/16".parse().expect("net")]);
    assert!(members(&reg, "x.", stranger).is_some(), "trusted");
    assert_eq!(reg.asker(stranger), Asker::Local);
    reg.set_scoping(Some(vec!["a".into()]), Vec::new());
    assert!(
        members(&reg, "x.", stranger).is_some(),
        "a configured default view"
    );
    assert!(!reg.is_stranger(stranger));
}

#[test]
fn a_containers_nameless_addresses_see_its_networks() {
    let reg = Registry::new(Some("docker")).expect("registry");
    reg.apply(T, Change::EndpointUp(ep("a", "x", [10, 1, 0, 2], &[])));
    reg.apply(T, Change::EndpointUp(ep("b", "y", [10, 2, 0, 2], &[])));
    let gwbridge = IpAddr::from([172, 18, 0, 5]);
    assert!(reg.is_stranger(gwbridge));
    reg.apply(
        T,
        Change::AskerAddresses {
            container: "x".into(),
            addresses: vec![gwbridge],
        },
    );
    assert!(members(&reg, "x.", gwbridge).is_some(), "its own network");
    assert!(members(&reg, "y.", gwbridge).is_none(), "not another");
    assert_eq!(reg.asker(gwbridge), Asker::Container);
    // A container on the default bridge only: known (it may forward), sees no names.
    let bridge_only = IpAddr::from([172, 17, 0, 9]);
    reg.apply(
        T,
        Change::AskerAddresses {
            container: "lonely".into(),
            addresses: vec![bridge_only],
        },
    );
    assert_eq!(reg.asker(bridge_only), Asker::Container);
    assert!(members(&reg, "x.", bridge_only).is_none());
    reg.apply(
        T,
        Change::AskerAddresses {
            container: "x".into(),
            addresses: Vec::new(),
        },
    );
    assert!(reg.is_stranger(gwbridge), "removed");
}

#[test]
fn every_address_of_a_container_is_one_asker() {
    let reg = Registry::new(Some("docker")).expect("registry");
    reg.apply(T, Change::EndpointUp(ep("a", "x", [10, 1, 0, 2], &[])));
    reg.apply(T, Change::EndpointUp(ep("b", "x", [10, 2, 0, 2], &[])));
    reg.apply(T, Change::EndpointUp(ep("a", "y", [10, 1, 0, 3], &[])));
    let (x_a, x_b, y) = (
        IpAddr::from([10, 1, 0, 2]),
        IpAddr::from([10, 2, 0, 2]),
        IpAddr::from([10, 1, 0, 3]),
    );
    assert_eq!(reg.asker_id(x_a), reg.asker_id(x_b), "x's two addresses");
    assert!(matches!(reg.asker_id(x_a), AskerId::Container(_)));
    assert_ne!(reg.asker_id(x_a), reg.asker_id(y), "another container");
    // Still one asker after its view changes (a third network), and an unknown asker is its
    // address.
    reg.apply(T, Change::EndpointUp(ep("c", "x", [10, 3, 0, 2], &[])));
    assert_eq!(reg.asker_id(x_a), reg.asker_id(IpAddr::from([10, 3, 0, 2])));
    assert_eq!(reg.asker_id(HOST), AskerId::Address(HOST));
}

const FILE: Owner = Owner("file");
const ENGINE: Owner = Owner("engine");

#[test]
fn two_owners_on_one_network_answer_together_and_remove_only_their_own() {
    let reg = Registry::new(Some("docker")).expect("registry");
    reg.apply_all(
        FILE,
        [
            Change::NetworkUp {
                network: "shared".into(),
            },
            Change::EndpointUp(ep("shared", "s1", [10, 9, 0, 1], &["app"])),
        ],
    );
    reg.apply_all(
        ENGINE,
        [
            Change::NetworkUp {
                network: "shared".into(),
            },
            Change::EndpointUp(ep("shared", "d1", [10, 9, 0, 2], &["app"])),
        ],
    );
    let mut both = members(&reg, "app.shared.", HOST).expect("app");
    both.sort();
    assert_eq!(
        both,
        vec![Ipv4Addr::new(10, 9, 0, 1), Ipv4Addr::new(10, 9, 0, 2)],
        "a name held by two owners answers all their members"
    );

    // The file drops the network: only its own endpoint goes; the network stays for the engine.
    reg.apply(
        FILE,
        Change::NetworkDown {
            network: "shared".into(),
        },
    );
    assert_eq!(
        members(&reg, "app.shared.", HOST),
        Some(vec![Ipv4Addr::new(10, 9, 0, 2)])
    );
    assert_eq!(reg.sizes().networks, 1);
    assert_eq!(reg.sizes().endpoints, 1);
    assert_eq!(
        reg.unheld(&name("shared.docker."), HOST),
        Unheld::Apex(name("shared.docker.")),
        "the network's zone stays while the engine holds it"
    );
    assert!(
        reg.lookup_ptr(&name("2.0.9.10.in-addr.arpa."), HOST)
            .is_some()
    );

    // Back again, then the engine's member leaves: the file's still answers.
    reg.apply(
        FILE,
        Change::EndpointUp(ep("shared", "s1", [10, 9, 0, 1], &["app"])),
    );
    reg.apply(
        ENGINE,
        Change::EndpointDown {
            network: "shared".into(),
            container: "d1".into(),
        },
    );
    assert_eq!(
        members(&reg, "app.shared.", HOST),
        Some(vec![Ipv4Addr::new(10, 9, 0, 1)])
    );

    // Only when every owner lets go is the network gone.
    reg.apply(
        ENGINE,
        Change::NetworkDown {
            network: "shared".into(),
        },
    );
    assert_eq!(reg.sizes().networks, 1, "the file still holds it");
    reg.apply(
        FILE,
        Change::NetworkDown {
            network: "shared".into(),
        },
    );
    assert_eq!(reg.sizes().networks, 0);
    assert_eq!(reg.unheld(&name("shared."), HOST), Unheld::NotOurs);
}

#[test]
fn one_container_key_from_two_owners_is_two_endpoints() {
    let reg = Registry::new(None).expect("registry");
    reg.apply(FILE, Change::EndpointUp(ep("n", "web", [10, 8, 0, 1], &[])));
    reg.apply(
        ENGINE,
        Change::EndpointUp(ep("n", "web", [10, 8, 0, 2], &[])),
    );
    assert_eq!(reg.sizes().endpoints, 2);
    let mut both = members(&reg, "web.", HOST).expect("web");
    both.sort();
    assert_eq!(both.len(), 2, "neither replaced the other: {both:?}");

    reg.apply(
        ENGINE,
        Change::EndpointDown {
            network: "n".into(),
            container: "web".into(),
        },
    );
    assert_eq!(
        members(&reg, "web.", HOST),
        Some(vec![Ipv4Addr::new(10, 8, 0, 1)])
    );
    assert!(
        reg.lookup_ptr(&name("1.0.8.10.in-addr.arpa."), HOST)
            .is_some(),
        "the file's PTR stays"
    );
    assert!(
        reg.lookup_ptr(&name("2.0.8.10.in-addr.arpa."), HOST)
            .is_none()
    );
    // The file's endpoint still sees its network as an asker.
    assert_eq!(
        members(&reg, "web.n.", IpAddr::V4(Ipv4Addr::new(10, 8, 0, 1))),
        Some(vec![Ipv4Addr::new(10, 8, 0, 1)])
    );
}

#[test]
fn a_network_is_internal_while_any_owner_marks_it() {
    let reg = Registry::new(None).expect("registry");
    let asker = IpAddr::V4(Ipv4Addr::new(10, 7, 0, 2));
    reg.apply(FILE, Change::EndpointUp(ep("n", "a", [10, 7, 0, 2], &[])));
    reg.apply(
        ENGINE,
        Change::NetworkInternal {
            network: "n".into(),
            internal: true,
        },
    );
    assert_eq!(reg.asker(asker), Asker::InternalOnly);
    reg.apply(
        FILE,
        Change::NetworkInternal {
            network: "n".into(),
            internal: false,
        },
    );
    assert_eq!(
        reg.asker(asker),
        Asker::InternalOnly,
        "another owner cannot clear the engine's mark"
    );
    reg.apply(
        ENGINE,
        Change::NetworkDown {
            network: "n".into(),
        },
    );
    assert_eq!(reg.asker(asker), Asker::Container);
}

fn offering(mut e: Endpoint, service: &str, port: u16) -> Endpoint {
    e.srv.push(SrvPort {
        service: service.into(),
        proto: SrvProto::Tcp,
        port,
        weight: DEFAULT_SRV_WEIGHT,
    });
    e
}

#[test]
fn srv_targets_follow_members_in_rotation_and_rotate() {
    let reg = Registry::new(None).expect("registry");
    for (i, c) in ["a", "b", "c"].iter().enumerate() {
        let e = ep("n", c, [10, 3, 0, i as u8 + 1], &["app"]);
        reg.apply(T, Change::EndpointUp(offering(e, "http", 8080)));
    }
    // A member without the service is a member of `app` all the same.
    reg.apply(T, Change::EndpointUp(ep("n", "d", [10, 3, 0, 4], &["app"])));
    let set = reg.lookup(&name("app."), HOST).expect("app");
    assert!(set.offers("http", SrvProto::Tcp));
    assert!(!set.offers("http", SrvProto::Udp));
    let firsts: Vec<String> = (0..3)
        .map(|_| {
            set.next_srv("http", SrvProto::Tcp)
                .iter()
                .next()
                .expect("one")
                .target
                .to_ascii()
        })
        .collect();
    assert_eq!(firsts, ["a.n.", "b.n.", "c.n."]);
    assert_eq!(set.next_srv("http", SrvProto::Tcp).len(), 3);

    // Out of rotation: not a target.
    let mut paused = offering(ep("n", "b", [10, 3, 0, 2], &["app"]), "http", 8080);
    paused.out_of_rotation = Some("paused");
    reg.apply(T, Change::EndpointUp(paused));
    let set = reg.lookup(&name("app."), HOST).expect("app");
    let targets: Vec<String> = set
        .next_srv("http", SrvProto::Tcp)
        .iter()
        .map(|t| t.target.to_ascii())
        .collect();
    assert_eq!(targets.len(), 2);
    assert!(!targets.contains(&"b.n.".to_string()));
    let glue: Vec<_> = set.srv_targets().iter().map(|t| t.ipv4).collect();
    assert!(glue.iter().all(Option::is_some));
}

#[test]
fn records_list_members_out_of_rotation_with_their_reason() {
    let reg = Registry::new(None).expect("registry");
    reg.apply(T, Change::EndpointUp(ep("n", "a", [10, 4, 0, 1], &["app"])));
    let mut sick = ep("n", "b", [10, 4, 0, 2], &["app"]);
    sick.out_of_rotation = Some("unhealthy");
    reg.apply(T, Change::EndpointUp(sick));
    let records = reg.records();
    assert_eq!(
        records["n"]["app"],
        [
            "10.4.0.1 (from alias)",
            "10.4.0.2 (out of rotation: unhealthy) (from alias)"
        ]
    );
    assert_eq!(
        records["n"]["b"],
        ["10.4.0.2 (out of rotation: unhealthy) (from container name)"],
        "a name with no member in rotation still says where it comes from"
    );
}

#[tokio::test]
async fn an_unknown_asker_inside_a_followed_subnet_is_looked_up_and_scoped_until_published() {
    let reg = Arc::new(Registry::new(Some("docker")).expect("registry"));
    reg.apply(
        T,
        Change::EndpointUp(ep("net1", "web1", [10, 0, 0, 2], &["app"])),
    );
    reg.apply(
        T,
        Change::EndpointUp(ep("net2", "db1", [10, 1, 0, 2], &["db"])),
    );
    let newcomer: IpAddr = "10.0.0.9".parse().unwrap();
    let outsider: IpAddr = "192.0.2.9".parse().unwrap();
    let wait = std::time::Duration::from_millis(300);
    assert!(reg.is_stranger(newcomer));
    // Nobody follows the engine: nobody is looked up or waited for.
    assert_eq!(reg.await_asker(newcomer, wait).await, NewAsker::NotLookedUp);

    let (tx, mut lookups) = tokio::sync::mpsc::channel(8);
    reg.set_asker_lookups(Some(tx), vec!["10.0.0.0/24".parse().unwrap()]);
    // Outside every followed subnet: not looked up, still a stranger (fails closed).
    let started = std::time::Instant::now();
    assert_eq!(reg.await_asker(outsider, wait).await, NewAsker::NotLookedUp);
    assert!(started.elapsed() < wait, "not waited for");
    assert!(lookups.try_recv().is_err(), "not sent for lookup");

    // Inside: sent for lookup, and answered as soon as a source scopes it.
    let looker = {
        let reg = Arc::clone(&reg);
        tokio::spawn(async move {
            let ip = lookups.recv().await.expect("a lookup");
            reg.learn_early(&[ip], &["net1".to_string(), "gone".to_string()]);
            lookups
        })
    };
    assert_eq!(reg.await_asker(newcomer, wait).await, NewAsker::Learned);
    assert_eq!(reg.await_asker(newcomer, wait).await, NewAsker::Known);
    let mut lookups = looker.await.expect("looker");
    assert_eq!(reg.asker(newcomer), Asker::Container);
    assert_eq!(
        members(&reg, "app", newcomer),
        Some(vec![Ipv4Addr::new(10, 0, 0, 2)])
    );
    assert_eq!(
        members(&reg, "db", newcomer),
        None,
        "net2 is not its network"
    );

    // Asked again at once: not sent again (one lookup per address per second).
    reg.forget_early(&[newcomer]);
    let started = std::time::Instant::now();
    assert_eq!(
        reg.await_asker(newcomer, std::time::Duration::from_millis(50))
            .await,
        NewAsker::NotFound
    );
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(50),
        "bounded wait"
    );
    assert!(lookups.try_recv().is_err());

    // A source's publication replaces the early scope.
    reg.learn_early(&[newcomer], &["net1".to_string()]);
    reg.apply(T, Change::EndpointUp(ep("net2", "new", [10, 0, 0, 9], &[])));
    assert_eq!(
        members(&reg, "app", newcomer),
        None,
        "now on net2 only, as published"
    );
    assert_eq!(
        members(&reg, "db", newcomer),
        Some(vec![Ipv4Addr::new(10, 1, 0, 2)])
    );
}

/// A measurement, not a check: how long a change waits while `/records` and `/metrics` read
/// 100,000 endpoints. `cargo test --release --lib -- --ignored --nocapture records_hold`
#[test]
#[ignore]
fn records_hold_the_writer_measurement() {
    let reg = Arc::new(Registry::new(Some("docker")).expect("registry"));
    let changes: Vec<Change> = (0..100_000u32)
        .map(|i| {
            let [_, a, b, c] = i.to_be_bytes();
            Change::EndpointUp(ep(
                "scale",
                &format!("e{i}"),
                [10, a, b, c.max(1)],
                // Pairs behind one alias, as replicas are (a name of 75,000 members would
                // rebuild its set at each insert: not the shape measured).
                &[&format!("pair{}", i / 2)],
            ))
        })
        .collect();
    reg.apply_all(T, changes);
    let started = std::time::Instant::now();
    let listed = reg.records();
    let whole = started.elapsed();
    assert!(listed["scale"].len() > 90_000);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (reg, stop) = (Arc::clone(&reg), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::hint::black_box(reg.records());
                std::hint::black_box(reg.spread(16));
            }
        })
    };
    let mut waits = Vec::new();
    for i in 0..200u32 {
        let started = std::time::Instant::now();
        reg.apply(
            T,
            Change::EndpointUp(ep(
                "scale",
                "moving",
                [10, 200, 0, (i % 200 + 1) as u8],
                &[],
            )),
        );
        waits.push(started.elapsed());
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = reader.join();
    waits.sort();
    println!(
        "records() {whole:?}; one change while records/spread run: p50 {:?}, p99 {:?}, max {:?}",
        waits[100], waits[198], waits[199]
    );
}

#[test]
fn a_wildcard_answers_the_names_below_it_that_nothing_holds_more_exactly() {
    let reg = Registry::new(Some("docker")).expect("registry");
    reg.apply(
        T,
        Change::EndpointUp(ep(
            "n",
            "shop",
            [10, 7, 0, 1],
            &["*.shop.test", "api.shop.test"],
        )),
    );
    reg.apply(
        T,
        Change::EndpointUp(ep("n", "deep", [10, 7, 0, 2], &["*.x.shop.test"])),
    );
    reg.apply(
        T,
        Change::EndpointUp(ep("n", "held", [10, 7, 0, 3], &["y.shop.test"])),
    );
    let v4 = |q: &str| members(&reg, q, HOST);
    assert_eq!(v4("www.shop.test."), Some(vec![Ipv4Addr::new(10, 7, 0, 1)]));
    assert_eq!(v4("a.b.shop.test."), Some(vec![Ipv4Addr::new(10, 7, 0, 1)]));
    assert_eq!(
        v4("WWW.shop.test.docker."),
        Some(vec![Ipv4Addr::new(10, 7, 0, 1)])
    );
    // The closer wildcard wins; a name held itself is no wildcard's.
    assert_eq!(v4("z.x.shop.test."), Some(vec![Ipv4Addr::new(10, 7, 0, 2)]));
    assert_eq!(v4("y.shop.test."), Some(vec![Ipv4Addr::new(10, 7, 0, 3)]));
    // Below a held name, the wildcard above it does not reach (RFC 4592's closest encloser).
    assert_eq!(v4("a.y.shop.test."), None);
    // The wildcard's own parent is not below it; other domains are not touched.
    assert_eq!(v4("shop.test."), None);
    assert_eq!(v4("www.shop.example."), None);
    // Scoped like every name: a stranger sees nothing.
    assert!(members(&reg, "www.shop.test.", "192.0.2.1".parse().unwrap()).is_none());
    // Gone with its holder, and then no miss looks for wildcards at all.
    reg.apply(
        T,
        Change::EndpointDown {
            network: "n".into(),
            container: "shop".into(),
        },
    );
    assert_eq!(v4("www.shop.test."), None);
    reg.apply(
        T,
        Change::EndpointDown {
            network: "n".into(),
            container: "deep".into(),
        },
    );
    assert_eq!(
        reg.index
            .wildcards
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

#[test]
fn an_owned_domain_denies_what_it_does_not_hold_and_only_to_those_who_may_ask() {
    let reg = Registry::new(Some("docker")).expect("registry");
    reg.apply(
        T,
        Change::EndpointUp(ep("n", "api", [10, 8, 0, 1], &["api.shop.test"])),
    );
    let unheld = |q: &str, asker: IpAddr| reg.unheld(&name(q), asker);
    // Not owned: a label domain's other names are not ours (forwarded).
    assert_eq!(unheld("www.shop.test.", HOST), Unheld::NotOurs);
    reg.set_own_domains(&["shop.test".to_string()]);
    assert_eq!(
        members(&reg, "api.shop.test.", HOST),
        Some(vec![Ipv4Addr::new(10, 8, 0, 1)])
    );
    assert_eq!(
        unheld("www.shop.test.", HOST),
        Unheld::NoSuchName(name("shop.test."))
    );
    assert_eq!(unheld("shop.test.", HOST), Unheld::Apex(name("shop.test.")));
    assert_eq!(unheld("notshop.test.", HOST), Unheld::NotOurs);
    assert_eq!(
        reg.zone_of(&name("a.b.shop.test.")),
        Some(name("shop.test."))
    );
    // A stranger is denied nothing: it gets what strangers get (REFUSED).
    assert_eq!(
        unheld("www.shop.test.", "192.0.2.1".parse().unwrap()),
        Unheld::NotOurs
    );
    // The fast path's check agrees.
    let key = NameKey::new(&name("www.shop.test."));
    assert!(!reg.is_unheld_not_ours(key.as_bytes(), HOST));
    reg.set_own_domains(&[]);
    assert!(reg.is_unheld_not_ours(key.as_bytes(), HOST));
}

#[test]
fn the_host_name_answers_each_container_the_gateways_of_its_own_network() {
    let reg = Registry::new(Some("docker")).expect("registry");
    reg.apply(
        T,
        Change::EndpointUp(ep("front", "web", [10, 9, 1, 2], &[])),
    );
    reg.apply(T, Change::EndpointUp(ep("back", "db", [10, 9, 2, 2], &[])));
    for (network, gw) in [("front", [10, 9, 1, 1]), ("back", [10, 9, 2, 1])] {
        reg.apply(
            T,
            Change::NetworkGateways {
                network: network.into(),
                gateways: vec![IpAddr::from(gw)],
            },
        );
    }
    let web: IpAddr = "10.9.1.2".parse().unwrap();
    let db: IpAddr = "10.9.2.2".parse().unwrap();
    // Off until named.
    assert_eq!(members(&reg, "host.docker.", web), None);
    reg.set_host_name(Some("host"));
    assert_eq!(
        members(&reg, "host.docker.", web),
        Some(vec![Ipv4Addr::new(10, 9, 1, 1)])
    );
    assert_eq!(
        members(&reg, "HOST.", db),
        Some(vec![Ipv4Addr::new(10, 9, 2, 1)])
    );
    // The host itself sees every network and has none of its own.
    assert_eq!(members(&reg, "host.docker.", HOST), None);
    // A container named so wins.
    reg.apply(
        T,
        Change::EndpointUp(ep("front", "host", [10, 9, 1, 9], &[])),
    );
    assert_eq!(
        members(&reg, "host.", web),
        Some(vec![Ipv4Addr::new(10, 9, 1, 9)])
    );
    // Gone with its network.
    reg.apply(
        T,
        Change::NetworkDown {
            network: "back".into(),
        },
    );
    assert_eq!(members(&reg, "host.", db), None);
    reg.set_host_name(None);
    assert_eq!(members(&reg, "host.docker.", db), None);
    // The container's own name stays.
    assert_eq!(
        members(&reg, "host.docker.", web),
        Some(vec![Ipv4Addr::new(10, 9, 1, 9)])
    );
}

#[test]
fn a_wildcard_answers_under_its_network_s_zone_and_the_walk_follows_the_asker_s_view() {
    let reg = Registry::new(Some("docker")).expect("registry");
    reg.apply(
        T,
        Change::EndpointUp(ep("n", "shop", [10, 7, 0, 1], &["*.shop.test"])),
    );
    let v4 = |q: &str, asker: IpAddr| members(&reg, q, asker);
    assert_eq!(
        v4("www.shop.test.n.", HOST),
        Some(vec![Ipv4Addr::new(10, 7, 0, 1)])
    );
    assert_eq!(
        v4("www.shop.test.n.docker.", HOST),
        Some(vec![Ipv4Addr::new(10, 7, 0, 1)])
    );
    // Network a holds *.test; network b (unseen by a's container) holds *.other.test and
    // x.test: they do not hide *.test from it.
    reg.apply(
        T,
        Change::EndpointUp(ep("a", "wa", [10, 1, 0, 1], &["*.test"])),
    );
    reg.apply(
        T,
        Change::EndpointUp(ep("b", "wb", [10, 2, 0, 1], &["*.other.test", "x.test"])),
    );
    let on_a: IpAddr = "10.1.0.1".parse().unwrap();
    for q in ["q.other.test.", "q.x.test.", "q.zzz.test."] {
        assert_eq!(v4(q, on_a), Some(vec![Ipv4Addr::new(10, 1, 0, 1)]), "{q}");
    }
    let on_b: IpAddr = "10.2.0.1".parse().unwrap();
    assert_eq!(
        v4("q.other.test.", on_b),
        Some(vec![Ipv4Addr::new(10, 2, 0, 1)])
    );
    assert_eq!(v4("q.x.test.", on_b), None, "x.test, held, stops the walk");
}

#[test]
fn name_origins_say_each_position_and_default_past_what_is_said() {
    use super::{NameOrigin, NameOrigins};
    let mut origins = NameOrigins::default();
    origins.set(0, NameOrigin::Config);
    origins.set(3, NameOrigin::Label);
    origins.set(NameOrigins::MAX - 1, NameOrigin::Cname);
    origins.set(NameOrigins::MAX, NameOrigin::Compose); // past the end: unsaid
    assert_eq!(origins.get(0), Some(NameOrigin::Config));
    assert_eq!(origins.get(1), None);
    assert_eq!(origins.get(3), Some(NameOrigin::Label));
    assert_eq!(origins.get(NameOrigins::MAX - 1), Some(NameOrigin::Cname));
    assert_eq!(origins.get(NameOrigins::MAX), None);
    origins.set(3, NameOrigin::Compose);
    assert_eq!(origins.get(3), Some(NameOrigin::Compose), "set replaces");
    let mut e = ep("n", "a", [10, 0, 0, 1], &["x", "y", "z"]);
    e.origins = origins;
    assert_eq!(e.origin(0), NameOrigin::Config);
    assert_eq!(e.origin(1), NameOrigin::Alias, "unsaid alias");
    assert_eq!(e.origin(3), NameOrigin::Compose);
    assert_eq!(
        NameOrigins::all(NameOrigin::Config, 2).get(1),
        Some(NameOrigin::Config)
    );
}

#[test]
fn label_names_list_what_labels_claim_once_scoped_like_records() {
    use super::{NameOrigin, NameOrigins};
    let reg = Registry::new(Some("docker")).expect("registry");
    // On n: a container whose aliases 1 and 2 come from its label; on m, another claiming
    // one of the same names, and a plain alias that no label gives.
    let mut a = ep(
        "n",
        "a",
        [10, 8, 0, 1],
        &["api.shop.test", "*.wild.test", "plain"],
    );
    let mut origins = NameOrigins::default();
    origins.set(1, NameOrigin::Label);
    origins.set(2, NameOrigin::Label);
    a.origins = origins;
    let mut b = ep(
        "m",
        "b",
        [10, 9, 0, 1],
        &["api.shop.test", "alias.only.test"],
    );
    let mut origins = NameOrigins::default();
    origins.set(1, NameOrigin::Label);
    b.origins = origins;
    reg.apply(T, Change::EndpointUp(a));
    reg.apply(T, Change::EndpointUp(b));
    assert_eq!(reg.label_names(), ["*.wild.test", "api.shop.test"]);
    // A container sees its own networks' only; a stranger is no known endpoint.
    assert_eq!(
        reg.label_names_seen_by(IpAddr::from([10, 9, 0, 1])),
        Some(vec!["api.shop.test".to_string()])
    );
    assert_eq!(reg.label_names_seen_by(IpAddr::from([192, 0, 2, 1])), None);
}

#[test]
fn a_container_leaving_an_address_another_still_has_leaves_the_other_its_view() {
    // A static entry beside a Docker container at the same address (or an address reused
    // before its old holder's removal arrived): the one leaving takes only its own.
    let reg = Registry::new(None).expect("registry");
    let ip = IpAddr::from([10, 9, 0, 2]);
    reg.apply(T, Change::EndpointUp(ep("a", "old", [10, 9, 0, 2], &[])));
    reg.apply(
        Owner("other"),
        Change::EndpointUp(ep("b", "new", [10, 9, 0, 2], &[])),
    );
    reg.apply(T, Change::EndpointUp(ep("b", "peer", [10, 9, 0, 3], &[])));
    reg.apply(
        T,
        Change::EndpointDown {
            network: "a".into(),
            container: "old".into(),
        },
    );
    assert!(matches!(reg.asker_id(ip), AskerId::Container(_)));
    assert_eq!(
        members(&reg, "peer.", ip),
        Some(vec![Ipv4Addr::new(10, 9, 0, 3)]),
        "the one still there sees its network"
    );
    assert_eq!(
        reg.lookup_ptr(&name("2.0.9.10.in-addr.arpa."), HOST)
            .map(|n| n.to_string()),
        Some("new.b.".into())
    );
}

/// A name's members live in its published set, or in the writer while it has none: every move
/// between the two keeps them, and nothing is left behind when they go.
#[test]
fn a_name_keeps_its_members_through_rest_records_and_removal() {
    let reg = Registry::new(None).expect("registry");
    let records = |reg: &Registry| reg.records();
    let resting = |ip: [u8; 4]| {
        let mut e = ep("n", "a", ip, &["app"]);
        e.out_of_rotation = Some("unhealthy");
        e
    };
    reg.apply(T, Change::EndpointUp(ep("n", "a", [10, 5, 0, 1], &["app"])));
    assert_eq!(
        members(&reg, "app.", HOST),
        Some(vec![[10, 5, 0, 1].into()])
    );

    // Its only member out of rotation: no set, the member still listed.
    reg.apply(T, Change::EndpointUp(resting([10, 5, 0, 1])));
    assert_eq!(members(&reg, "app.", HOST), None);
    assert_eq!(
        records(&reg)["n"]["app"],
        ["10.5.0.1 (out of rotation: unhealthy) (from alias)"]
    );
    // A record under the name: a set again, which keeps the resting member.
    let data = NameData {
        v4: vec![[10, 5, 0, 9].into()],
        ..NameData::default()
    };
    let record = |data| Change::NameData {
        network: "n".into(),
        name: "app".into(),
        data,
    };
    reg.apply(T, record(Some(data)));
    assert_eq!(
        members(&reg, "app.", HOST),
        Some(vec![[10, 5, 0, 9].into()])
    );
    reg.apply(T, Change::EndpointUp(ep("n", "a", [10, 5, 0, 1], &["app"])));
    assert_eq!(
        members(&reg, "app.", HOST),
        Some(vec![[10, 5, 0, 1].into(), [10, 5, 0, 9].into()]),
        "back in rotation: the member the set kept answers beside the record"
    );
    reg.apply(T, Change::EndpointUp(resting([10, 5, 0, 1])));
    reg.apply(T, record(None));
    assert_eq!(members(&reg, "app.", HOST), None);
    assert_eq!(
        records(&reg)["n"]["app"],
        ["10.5.0.1 (out of rotation: unhealthy) (from alias)"],
        "the record gone: the member rests in the writer again"
    );

    // Back in rotation, then gone: nothing of the name is left.
    reg.apply(T, Change::EndpointUp(ep("n", "a", [10, 5, 0, 2], &["app"])));
    assert_eq!(
        members(&reg, "app.", HOST),
        Some(vec![[10, 5, 0, 2].into()])
    );
    reg.apply(
        T,
        Change::EndpointDown {
            network: "n".into(),
            container: "a".into(),
        },
    );
    assert_eq!(members(&reg, "app.", HOST), None);
    assert_eq!(members(&reg, "a.", HOST), None);
    assert!(reg.index.names.is_empty(), "no set left in the index");
    let model = reg.writer.lock().expect("writer");
    assert!(
        model
            .listing(&reg.index, |_| true)
            .iter()
            .all(|n| n.names.is_empty()),
        "no member left in the writer"
    );
}

/// An endpoint published again at the same address (a health change, a new alias) never
/// leaves its container unknown in between: a reader asking meanwhile is always the
/// container, never a stranger.
#[test]
fn a_container_published_again_at_its_address_is_never_unknown_in_between() {
    let reg = Arc::new(Registry::new(None).expect("registry"));
    let ip: IpAddr = "10.6.0.2".parse().unwrap();
    reg.apply(T, Change::EndpointUp(ep("n", "c", [10, 6, 0, 2], &[])));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (reg, done) = (Arc::clone(&reg), Arc::clone(&done));
        std::thread::spawn(move || {
            let (mut asked, mut unknown) = (0u64, 0u64);
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                asked += 1;
                if reg.asker(ip) != Asker::Container {
                    unknown += 1;
                }
            }
            (asked, unknown)
        })
    };
    for i in 0..20_000 {
        let alias = format!("v{}", i % 2);
        reg.apply(
            T,
            Change::EndpointUp(ep("n", "c", [10, 6, 0, 2], &[&alias])),
        );
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let (asked, unknown) = reader.join().expect("reader");
    assert!(asked > 0);
    assert_eq!(unknown, 0, "unknown in {unknown} of {asked} questions");
}
