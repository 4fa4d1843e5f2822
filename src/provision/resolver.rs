//! `[stack] resolver = "CONTAINER"`: the stack's own netalias answers first for every
//! container the stack creates on a user-defined network.
//!
//! Docker keeps 127.0.0.11 in the resolv.conf of every container on a user-defined network
//! and answers container names and aliases itself (shuffled, TTL 600), so `--dns` alone never
//! lets netalias's rotation reach `app`. Here the resolver container is attached to every
//! declared network with a fixed address, and each other container gets a resolv.conf naming
//! netalias's address on its own networks (and the search domain), mounted read-only over
//! /etc/resolv.conf. Names netalias does not hold still resolve through its forwarding.
//!
//! Pure: [`expand`] rewrites the spec (so the fingerprint, plan and apply see the result as
//! ordinary attachments and mounts) and [`files`] says what to write; `apply` writes them.
//! It never calls the engine.

use std::{
    collections::BTreeMap,
    net::Ipv4Addr,
    path::{Path, PathBuf},
};

use toml::Spanned;

use super::{
    spec::{Attachment, NetworkMode, Stack},
    validate::parse_cidr,
};
use crate::config::Violation;

/// The search domain written into the resolv.conf files: netalias's default `server.domain`.
pub const SEARCH_DOMAIN: &str = "docker";
/// Where resolv.conf files go when `[stack] resolver_dir` is not given.
pub const DEFAULT_DIR: &str = "/var/lib/netalias/stacks";

pub use super::spec::Resolver;

/// Checks the setting: a declared container on declared networks, and a fixed address on
/// each network (given, or taken from a declared subnet). `Ok(None)` without the setting.
pub fn plan(stack: &Stack) -> Result<Option<Resolver>, Violation> {
    let Some(name) = &stack.stack.resolver else {
        return Ok(None);
    };
    let field = "stack.resolver".to_string();
    let Some(spec) = stack.containers.get(name.get_ref()) else {
        return Err(Violation::new(
            name,
            field,
            format!(
                "`{}` is not a declared container; name the stack's netalias entry ([containers.NAME])",
                name.get_ref()
            ),
        ));
    };
    if spec.network_mode() != NetworkMode::Networks {
        return Err(Violation::new(
            name,
            field,
            format!(
                "`{}` uses network_mode; the resolver must be attached to the stack's networks (remove network_mode)",
                name.get_ref()
            ),
        ));
    }
    let mut addresses = BTreeMap::new();
    for (network, net) in stack
        .networks
        .iter()
        .filter(|(_, n)| !n.driver.is_builtin())
    {
        let given = spec
            .networks
            .get(network)
            .and_then(|a| a.ipv4.as_ref())
            .and_then(|ip| ip.get_ref().parse::<Ipv4Addr>().ok());
        let chosen = given.or_else(|| {
            let subnet = parse_cidr(net.subnet.as_ref()?.get_ref()).ok()?;
            let gateway = net
                .gateway
                .as_ref()
                .and_then(|g| g.get_ref().parse::<Ipv4Addr>().ok());
            // The highest host: far from where the engine hands out addresses (from the low
            // end of the subnet or the ip_range), and not the gateway.
            let top = u32::from(subnet.broadcast());
            (1..=2)
                .map(|back| Ipv4Addr::from(top.saturating_sub(back)))
                .find(|ip| Some(*ip) != gateway && subnet.contains(ip) && *ip != subnet.network())
        });
        let Some(ip) = chosen else {
            return Err(Violation::new(
                name,
                "stack.resolver".into(),
                format!(
                    "network `{network}` has no subnet, so the resolver cannot get a fixed address there; declare networks.{network}.subnet, or give containers.{}.networks.{network} = {{ ipv4 = \"...\" }}",
                    name.get_ref()
                ),
            ));
        };
        addresses.insert(network.clone(), ip);
    }
    let dir = match &stack.stack.resolver_dir {
        Some(dir) if !Path::new(dir.get_ref()).is_absolute() => {
            return Err(Violation::new(
                dir,
                "stack.resolver_dir".into(),
                format!(
                    "`{}` is relative; write an absolute host path",
                    dir.get_ref()
                ),
            ));
        }
        Some(dir) => PathBuf::from(dir.get_ref()),
        None => Path::new(DEFAULT_DIR).join(stack.name()),
    };
    Ok(Some(Resolver {
        container: name.get_ref().clone(),
        addresses,
        dir,
    }))
}

/// The networks a container resolves on: its own, or those of the container whose network
/// stack it shares.
fn networks_of<'a>(stack: &'a Stack, container: &str) -> Vec<&'a String> {
    let Some(spec) = stack.containers.get(container) else {
        return Vec::new();
    };
    match spec.network_mode() {
        NetworkMode::Networks => spec.networks.keys().collect(),
        NetworkMode::Container(other) => stack
            .containers
            .get(&other)
            .filter(|o| o.network_mode() == NetworkMode::Networks)
            .map(|o| o.networks.keys().collect())
            .unwrap_or_default(),
        NetworkMode::Host | NetworkMode::None => Vec::new(),
    }
}

/// The resolv.conf file of each container that resolves through netalias, and its text.
pub fn files(stack: &Stack, resolver: &Resolver) -> Vec<(String, PathBuf, String)> {
    stack
        .containers
        .keys()
        .filter(|c| **c != resolver.container)
        .filter_map(|c| {
            let servers: Vec<Ipv4Addr> = networks_of(stack, c)
                .into_iter()
                .filter_map(|n| resolver.addresses.get(n).copied())
                .collect();
            if servers.is_empty() {
                return None;
            }
            let mut text = format!(
                "# Written by `netalias provision` for stack {}: {} (netalias) answers first.\n",
                stack.name(),
                resolver.container
            );
            for ip in servers.iter().take(3) {
                text.push_str(&format!("nameserver {ip}\n"));
            }
            text.push_str(&format!("search {SEARCH_DOMAIN}\n"));
            Some((
                c.clone(),
                resolver.dir.join(format!("{c}.resolv.conf")),
                text,
            ))
        })
        .collect()
}

/// Rewrites the spec: the resolver on every declared network at its address, and each
/// container with a file from [`files`] mounting it read-only over /etc/resolv.conf.
pub fn expand(stack: &mut Stack, resolver: &Resolver) {
    let mounts: Vec<(String, PathBuf)> = files(stack, resolver)
        .into_iter()
        .map(|(c, path, _)| (c, path))
        .collect();
    if let Some(spec) = stack.containers.get_mut(&resolver.container) {
        for (network, ip) in &resolver.addresses {
            let attachment = spec
                .networks
                .entry(network.clone())
                .or_insert_with(Attachment::default);
            if attachment.ipv4.is_none() {
                attachment.ipv4 = Some(Spanned::new(0..0, ip.to_string()));
            }
        }
    }
    // What the resolver itself needs first (its engine proxy, say) cannot wait for it.
    let mut needed: Vec<String> = Vec::new();
    let mut next = vec![resolver.container.clone()];
    while let Some(name) = next.pop() {
        for dep in stack
            .containers
            .get(&name)
            .map(|c| c.dependencies())
            .unwrap_or_default()
        {
            if !needed.contains(&dep) {
                needed.push(dep.clone());
                next.push(dep);
            }
        }
    }
    for (container, path) in mounts {
        if let Some(spec) = stack.containers.get_mut(&container) {
            spec.mounts.push(Spanned::new(
                0..0,
                format!("{}:/etc/resolv.conf:ro", path.display()),
            ));
            // Its only nameserver: it starts once the resolver answers (healthy, with the
            // image's check; running, without one), so its first lookup is not lost.
            if !needed.contains(&container) {
                spec.depends_on
                    .entry(resolver.container.clone())
                    .or_insert_with(|| Spanned::new(0..0, "ready".to_string()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STACK: &str = r#"
[stack]
name = "s"
resolver = "dns"
resolver_dir = "/run/s"

[networks.front]
subnet = "10.9.0.0/24"
gateway = "10.9.0.254"

[networks.back]
subnet = "10.8.0.0/24"

[networks.hostnet]
driver = "host"

[containers.dns]
image = "netalias"
networks.back = { ipv4 = "10.8.0.53" }

[containers.web]
image = "nginx"
networks.front = { aliases = ["app"] }
networks.back = {}

[containers.side]
image = "busybox"
network_mode = "container:web"

[containers.alone]
image = "busybox"
network_mode = "none"
"#;

    #[test]
    fn the_resolver_gets_a_fixed_address_on_every_network_and_the_others_a_resolv_conf() {
        let stack = Stack::parse(STACK, "s.toml").expect("valid");
        let r = stack.resolver().expect("resolver").clone();
        // Given on back; on front the highest host that is not the gateway.
        assert_eq!(
            r.addresses,
            BTreeMap::from([
                ("back".to_string(), Ipv4Addr::new(10, 8, 0, 53)),
                ("front".to_string(), Ipv4Addr::new(10, 9, 0, 253)),
            ])
        );
        let dns = &stack.containers["dns"];
        assert_eq!(
            dns.networks["front"]
                .ipv4
                .as_ref()
                .map(|i| i.get_ref().as_str()),
            Some("10.9.0.253")
        );
        let files = files(&stack, &r);
        let names: Vec<&str> = files.iter().map(|(c, _, _)| c.as_str()).collect();
        assert_eq!(
            names,
            vec!["side", "web"],
            "not the resolver, not network_mode none"
        );
        let web = &files.iter().find(|(c, _, _)| c == "web").expect("web").2;
        assert!(
            web.contains("nameserver 10.8.0.53\nnameserver 10.9.0.253\nsearch docker\n"),
            "{web}"
        );
        assert!(
            stack.containers["web"]
                .mounts
                .iter()
                .any(|m| m.get_ref() == "/run/s/web.resolv.conf:/etc/resolv.conf:ro")
        );
        assert!(stack.containers["alone"].mounts.is_empty());
    }

    #[test]
    fn a_resolver_without_an_address_on_a_network_is_an_error_naming_it() {
        let text = STACK.replace("subnet = \"10.8.0.0/24\"\n", "").replace(
            "networks.back = { ipv4 = \"10.8.0.53\" }",
            "networks.front = {}",
        );
        let error = Stack::parse(&text, "s.toml")
            .expect_err("no subnet on back")
            .to_string();
        assert!(
            error.contains("s.toml:4")
                && error.contains("stack.resolver")
                && error.contains("back"),
            "{error}"
        );
        let unknown = STACK.replace("resolver = \"dns\"", "resolver = \"nobody\"");
        let error = Stack::parse(&unknown, "s.toml")
            .expect_err("unknown")
            .to_string();
        assert!(error.contains("not a declared container"), "{error}");
    }

    #[test]
    fn the_shipped_seed_stack_makes_its_netalias_the_resolver() {
        let text = include_str!("../../config/stack.toml");
        let stack = Stack::parse(text, "config/stack.toml").expect("the shipped stack is valid");
        let r = stack.resolver().expect("resolver set");
        assert_eq!(r.container, "netalias");
        assert_eq!(
            r.addresses.get("my_custom_network"),
            Some(&Ipv4Addr::new(172, 72, 0, 53))
        );
        let web1 = &stack.containers["web1"];
        assert!(web1.mounts.iter().any(|m| {
            m.get_ref()
                .ends_with("/seed/web1.resolv.conf:/etc/resolv.conf:ro")
        }));
    }
}
