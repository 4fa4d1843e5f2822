//! Checks a stack before anything reaches the engine: every error names the field and points
//! at its line. Pure: no engine calls (overlap with existing networks is checked by `plan`).

use std::{
    collections::{BTreeMap, BTreeSet},
    net::Ipv4Addr,
    ops::Range,
};

use ipnet::Ipv4Net;
use toml::Spanned;

use super::spec::{ContainerSpec, Mount, NetworkMode, Stack};
use crate::config::Violation;

/// The names Docker accepts for containers, networks and volumes.
pub fn is_docker_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn at<T>(value: &Spanned<T>, field: String, message: String) -> Violation {
    Violation::new(value, field, message)
}

fn at_span(span: Range<usize>, field: String, message: String) -> Violation {
    Violation {
        span,
        field,
        message,
    }
}

/// Parses a CIDR the way Docker wants it: an IPv4 network address with a prefix.
pub fn parse_cidr(text: &str) -> Result<Ipv4Net, String> {
    let net: Ipv4Net = text
        .parse()
        .map_err(|_| format!("`{text}` is not an IPv4 network in CIDR form"))?;
    if net.network() != net.addr() {
        return Err(format!(
            "`{text}` has host bits set; the network is {}",
            net.trunc()
        ));
    }
    Ok(net)
}

/// Whether two networks share any address (one contains the other, for CIDR blocks).
pub fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(b) || b.contains(a)
}

/// The first component of `path` that is a symbolic link, if any.
fn first_symlink(path: &std::path::Path) -> Option<std::path::PathBuf> {
    let mut at = std::path::PathBuf::new();
    for part in path.components() {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => return Some(at),
            Ok(_) => {}
            Err(_) => return None, // missing from here on: nothing to follow
        }
    }
    None
}

/// Checks `stack`; `remote` is the engine's address when it runs on another machine, where
/// bind sources cannot be checked from here and nothing here may create files for it.
pub fn validate(stack: &Stack, remote: Option<&str>) -> Result<(), Violation> {
    if let (Some(host), Some(resolver)) = (remote, &stack.stack.resolver) {
        return Err(at(
            resolver,
            "stack.resolver".into(),
            format!(
                "the resolver's resolv.conf files are written on this machine, but the engine ({host}) runs on another; run provision on the engine's machine, or drop resolver"
            ),
        ));
    }
    let stack_span = stack.stack.name.span();
    let name_error = |kind: &str, name: &str| {
        at_span(
            stack_span.clone(),
            format!("{kind}.{name}"),
            format!(
                "`{name}` is not a name Docker accepts: start with a letter or digit, then letters, digits, '_', '.', '-'"
            ),
        )
    };
    if !is_docker_name(stack.name()) {
        return Err(name_error("stack", stack.name()));
    }

    let mut subnets: Vec<(String, Ipv4Net)> = Vec::new();
    for (name, net) in &stack.networks {
        if !is_docker_name(name) {
            return Err(name_error("networks", name));
        }
        let field = |key: &str| format!("networks.{name}.{key}");
        // An external network is used as it is: addresses given here could not be applied.
        if net.external
            && let Some(s) = net
                .subnet
                .as_ref()
                .or(net.gateway.as_ref())
                .or(net.ip_range.as_ref())
        {
            return Err(at(
                s,
                field("external"),
                "an external network is used as it is; drop its subnet, ip_range and gateway (or drop external = true to let the stack create it)".into(),
            ));
        }
        if net.driver.is_builtin()
            && (net.subnet.is_some() || net.gateway.is_some() || net.ip_range.is_some())
        {
            let s = net
                .subnet
                .as_ref()
                .or(net.gateway.as_ref())
                .or(net.ip_range.as_ref());
            if let Some(s) = s {
                return Err(at(
                    s,
                    field("driver"),
                    "the built-in host and none networks take no addresses".into(),
                ));
            }
        }
        let subnet = match &net.subnet {
            Some(s) => Some(parse_cidr(s.get_ref()).map_err(|m| at(s, field("subnet"), m))?),
            None => None,
        };
        if let Some(range) = &net.ip_range {
            let parsed =
                parse_cidr(range.get_ref()).map_err(|m| at(range, field("ip_range"), m))?;
            let Some(subnet) = subnet else {
                return Err(at(
                    range,
                    field("ip_range"),
                    "ip_range needs a subnet".into(),
                ));
            };
            if !subnet.contains(&parsed) {
                return Err(at(
                    range,
                    field("ip_range"),
                    format!("{parsed} is outside the subnet {subnet}"),
                ));
            }
        }
        if let Some(gateway) = &net.gateway {
            let ip: Ipv4Addr = gateway.get_ref().parse().map_err(|_| {
                at(
                    gateway,
                    field("gateway"),
                    format!("`{}` is not an IPv4 address", gateway.get_ref()),
                )
            })?;
            let Some(subnet) = subnet else {
                return Err(at(
                    gateway,
                    field("gateway"),
                    "gateway needs a subnet".into(),
                ));
            };
            if !subnet.contains(&ip) {
                return Err(at(
                    gateway,
                    field("gateway"),
                    format!("{ip} is outside the subnet {subnet}"),
                ));
            }
            if ip == subnet.network() || ip == subnet.broadcast() {
                return Err(at(
                    gateway,
                    field("gateway"),
                    format!("{ip} is the network or broadcast address of {subnet}"),
                ));
            }
        }
        for (host, address) in &net.aux_addresses {
            let key = field(&format!("aux_addresses.{host}"));
            let ip: Ipv4Addr = address.get_ref().parse().map_err(|_| {
                at(
                    address,
                    key.clone(),
                    format!("`{}` is not an IPv4 address", address.get_ref()),
                )
            })?;
            match subnet {
                Some(subnet) if subnet.contains(&ip) => {}
                Some(subnet) => {
                    return Err(at(
                        address,
                        key,
                        format!("{ip} is outside the subnet {subnet}: give an address inside it"),
                    ));
                }
                None => {
                    return Err(at(
                        address,
                        key,
                        "aux_addresses need a subnet: declare the network's subnet".into(),
                    ));
                }
            }
        }
        if let Some(v6) = &net.ipv6_subnet {
            let parsed: ipnet::Ipv6Net = v6.get_ref().parse().map_err(|_| {
                at(
                    v6,
                    field("ipv6_subnet"),
                    format!(
                        "`{}` is not an IPv6 network in CIDR form (`fd00:1::/64`)",
                        v6.get_ref()
                    ),
                )
            })?;
            if parsed.network() != parsed.addr() {
                return Err(at(
                    v6,
                    field("ipv6_subnet"),
                    format!(
                        "`{parsed}` has host bits set; the network is {}",
                        parsed.trunc()
                    ),
                ));
            }
            if net.external || net.driver.is_builtin() {
                return Err(at(
                    v6,
                    field("ipv6_subnet"),
                    "an external or built-in network takes no addresses here".into(),
                ));
            }
        }
        if let (Some(subnet), Some(s)) = (subnet, &net.subnet) {
            if let Some((other, _)) = subnets.iter().find(|(_, o)| overlaps(o, &subnet)) {
                return Err(at(
                    s,
                    field("subnet"),
                    format!("{subnet} overlaps network `{other}`"),
                ));
            }
            subnets.push((name.clone(), subnet));
        }
    }

    for name in stack.volumes.keys() {
        if !is_docker_name(name) {
            return Err(name_error("volumes", name));
        }
    }

    for (name, container) in &stack.containers {
        if !is_docker_name(name) {
            return Err(name_error("containers", name));
        }
        validate_container(stack, name, container, remote)?;
    }
    find_cycle(stack)
}

fn validate_container(
    stack: &Stack,
    name: &str,
    c: &ContainerSpec,
    remote: Option<&str>,
) -> Result<(), Violation> {
    let field = |key: &str| format!("containers.{name}.{key}");
    if c.image.get_ref().trim().is_empty() {
        return Err(at(&c.image, field("image"), "image is empty".into()));
    }
    for (i, server) in c.dns.iter().enumerate() {
        if server.get_ref().parse::<std::net::IpAddr>().is_err() {
            return Err(at(
                server,
                field(&format!("dns[{i}]")),
                format!("`{}` is not an IP address", server.get_ref()),
            ));
        }
    }
    if let Some(restart) = &c.restart
        && let Err(message) = super::spec::parse_restart(restart.get_ref())
    {
        return Err(at(restart, field("restart"), message));
    }
    validate_fields(stack, name, c)?;
    for mount in &c.mounts {
        let parsed = Mount::parse(mount.get_ref()).map_err(|m| at(mount, field("mounts"), m))?;
        match parsed {
            Mount::Bind { source, .. } => {
                if let Some(host) = remote {
                    if c.create_host_dirs {
                        return Err(at(
                            mount,
                            field("create_host_dirs"),
                            format!(
                                "create_host_dirs makes directories on this machine, but the engine ({host}) runs on another; create them there and drop create_host_dirs"
                            ),
                        ));
                    }
                    if !source.is_absolute() {
                        return Err(at(
                            mount,
                            field("mounts"),
                            format!(
                                "bind source `{}` is relative; write an absolute path on the engine's machine",
                                source.display()
                            ),
                        ));
                    }
                    // The source is on the engine's machine: nothing here can check it.
                    continue;
                }
                if !source.is_absolute() {
                    return Err(at(
                        mount,
                        field("mounts"),
                        format!(
                            "bind source `{}` is relative; write an absolute host path",
                            source.display()
                        ),
                    ));
                }
                if c.create_host_dirs
                    && !source.is_dir()
                    && let Some(link) = first_symlink(&source)
                {
                    return Err(at(
                        mount,
                        field("mounts"),
                        format!(
                            "`{}` is a symbolic link; create_host_dirs never follows one (it could lead out of the declared path): replace it with a directory, or mount its target",
                            link.display()
                        ),
                    ));
                }
                if !source.exists() && !c.create_host_dirs {
                    return Err(at(
                        mount,
                        field("mounts"),
                        format!(
                            "bind source `{}` does not exist; create it or set create_host_dirs = true",
                            source.display()
                        ),
                    ));
                }
            }
            Mount::Volume { name: volume, .. } => {
                if !stack.volumes.contains_key(&volume) {
                    return Err(at(
                        mount,
                        field("mounts"),
                        format!("volume `{volume}` is not declared; add [volumes.{volume}]"),
                    ));
                }
            }
        }
    }
    for from in &c.volumes_from {
        let (source, mode) = from
            .get_ref()
            .split_once(':')
            .unwrap_or((from.get_ref(), "rw"));
        if !stack.containers.contains_key(source) {
            return Err(at(
                from,
                field("volumes_from"),
                format!("`{source}` is not a declared container"),
            ));
        }
        if !["ro", "rw"].contains(&mode) {
            return Err(at(
                from,
                field("volumes_from"),
                format!("`{mode}` is not ro or rw"),
            ));
        }
    }
    let mode = match &c.network_mode {
        Some(m) => NetworkMode::parse(m.get_ref()).map_err(|e| at(m, field("network_mode"), e))?,
        None => NetworkMode::Networks,
    };
    if let (NetworkMode::Container(target), Some(m)) = (&mode, &c.network_mode)
        && !stack.containers.contains_key(target)
    {
        return Err(at(
            m,
            field("network_mode"),
            format!("`container:{target}` refers to no declared container"),
        ));
    }
    if let (NetworkMode::Host | NetworkMode::None | NetworkMode::Container(_), Some(m)) =
        (&mode, &c.network_mode)
        && !c.networks.is_empty()
    {
        let has_aliases = c.networks.values().any(|a| !a.aliases.is_empty());
        let what = if has_aliases { "aliases" } else { "networks" };
        return Err(at(
            m,
            field("networks"),
            format!(
                "{what} cannot be used with network_mode `{}`: such a container has no endpoint of its own",
                m.get_ref()
            ),
        ));
    }
    for (network, attachment) in &c.networks {
        let Some(net) = stack.networks.get(network) else {
            let span = c.image.span();
            return Err(at_span(
                span,
                field(&format!("networks.{network}")),
                format!("network `{network}` is not declared; add [networks.{network}]"),
            ));
        };
        if net.driver.is_builtin() {
            return Err(at(
                &c.image,
                field(&format!("networks.{network}")),
                format!(
                    "`{network}` is a built-in {} network: use network_mode instead",
                    net.driver.as_str()
                ),
            ));
        }
        if let Some(ip) = &attachment.ipv4 {
            let parsed: Ipv4Addr = ip.get_ref().parse().map_err(|_| {
                at(
                    ip,
                    field(&format!("networks.{network}.ipv4")),
                    format!("`{}` is not an IPv4 address", ip.get_ref()),
                )
            })?;
            let subnet = net
                .subnet
                .as_ref()
                .and_then(|s| parse_cidr(s.get_ref()).ok());
            match subnet {
                Some(subnet) if subnet.contains(&parsed) => {}
                Some(subnet) => {
                    return Err(at(
                        ip,
                        field(&format!("networks.{network}.ipv4")),
                        format!("{parsed} is outside {network}'s subnet {subnet}"),
                    ));
                }
                None => {
                    return Err(at(
                        ip,
                        field(&format!("networks.{network}.ipv4")),
                        "a fixed IP needs the network to declare its subnet".into(),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The fields compose users carry over: ports, tmpfs, working_dir, memory, cpus, logging,
/// env_file (read at load, not here), replicas.
fn validate_fields(stack: &Stack, name: &str, c: &ContainerSpec) -> Result<(), Violation> {
    let field = |key: &str| format!("containers.{name}.{key}");
    let mode = c.network_mode();
    let replicas = c.replicas.as_ref().map_or(1, |r| *r.get_ref());
    if let Some(r) = &c.replicas
        && !(1..=100).contains(r.get_ref())
    {
        return Err(at(
            r,
            field("replicas"),
            format!("{} is out of range: give 1 to 100", r.get_ref()),
        ));
    }
    // Host ports bound so far: (host IP or "" for every address, port, protocol, entry).
    let mut published: Vec<(String, u16, &str, String)> = Vec::new();
    for entry in &c.ports {
        let ports = super::fields::PortSpec::parse(entry.get_ref())
            .map_err(|m| at(entry, field("ports"), m))?;
        if matches!(
            mode,
            NetworkMode::Host | NetworkMode::None | NetworkMode::Container(_)
        ) {
            return Err(at(
                entry,
                field("ports"),
                format!(
                    "ports cannot be published with network_mode `{}`: the container has no network of its own (with host, its ports are the host's already)",
                    c.network_mode
                        .as_ref()
                        .map(|m| m.get_ref().as_str())
                        .unwrap_or_default()
                ),
            ));
        }
        for p in ports {
            if let Some(host) = p.host_port {
                if replicas > 1 {
                    return Err(at(
                        entry,
                        field("ports"),
                        format!(
                            "host port {host} would be bound by each of the {replicas} replicas: publish only the container port (`\"{}\"`) and let the engine pick host ports",
                            p.container_port
                        ),
                    ));
                }
                let ip = p
                    .host_ip
                    .clone()
                    .filter(|ip| ip != "0.0.0.0" && ip != "::")
                    .unwrap_or_default();
                // One address, or every address (an empty or unspecified host IP) and any.
                if let Some((_, _, _, other)) = published.iter().find(|(i, h, proto, _)| {
                    *h == host
                        && *proto == p.protocol
                        && (i.is_empty() || ip.is_empty() || *i == ip)
                }) {
                    return Err(at(
                        entry,
                        field("ports"),
                        format!(
                            "host port {host}/{} is taken twice, by `{other}` and `{}`: give one of them another host port",
                            p.protocol,
                            entry.get_ref()
                        ),
                    ));
                }
                published.push((ip, host, p.protocol, entry.get_ref().clone()));
            }
        }
    }
    for (target, condition) in &c.depends_on {
        let key = field(&format!("depends_on.{target}"));
        super::spec::Condition::parse(condition.get_ref())
            .map_err(|m| at(condition, key.clone(), m))?;
        if !stack.containers.contains_key(target) {
            return Err(at(
                condition,
                key,
                format!(
                    "`{target}` is not a declared container: declare [containers.{target}] or take it out of depends_on"
                ),
            ));
        }
        if target == name {
            return Err(at(
                condition,
                key,
                "a container cannot wait for itself: take it out of its own depends_on".into(),
            ));
        }
    }
    if let Some(pull) = &c.pull {
        super::spec::Pull::parse(pull.get_ref()).map_err(|m| at(pull, field("pull"), m))?;
    }
    for entry in &c.tmpfs {
        super::fields::parse_tmpfs(entry.get_ref()).map_err(|m| at(entry, field("tmpfs"), m))?;
    }
    if let Some(dir) = &c.working_dir
        && !dir.get_ref().starts_with('/')
    {
        return Err(at(
            dir,
            field("working_dir"),
            format!(
                "`{}` must be an absolute path in the container",
                dir.get_ref()
            ),
        ));
    }
    if let Some(memory) = &c.memory {
        super::fields::parse_memory(memory.get_ref())
            .map_err(|m| at(memory, field("memory"), m))?;
    }
    if let Some(cpus) = &c.cpus {
        let n = *cpus.get_ref();
        if !(0.01..=1024.0).contains(&n) {
            return Err(at(
                cpus,
                field("cpus"),
                format!("{n} is not a CPU limit: give cores from 0.01 up (`1.5`)"),
            ));
        }
    }
    if let Some(logging) = &c.logging
        && logging.driver.get_ref().trim().is_empty()
    {
        return Err(at(
            &logging.driver,
            field("logging.driver"),
            "the logging driver is empty (json-file, local, syslog, journald, none, ...)".into(),
        ));
    }
    if replicas > 1 || c.replicas.is_some() {
        let r = c
            .replicas
            .as_ref()
            .map(|r| r.span())
            .unwrap_or_else(|| c.image.span());
        if let Some((network, _)) = c.networks.iter().find(|(_, a)| a.ipv4.is_some())
            && replicas > 1
        {
            return Err(at_span(
                r,
                field("replicas"),
                format!(
                    "every replica would take the fixed ipv4 on `{network}`: drop ipv4 or replicas"
                ),
            ));
        }
        for replica in c.replica_names(name) {
            if stack.containers.contains_key(&replica) {
                return Err(at_span(
                    r.clone(),
                    field("replicas"),
                    format!("replica `{replica}` has the name of another declared container"),
                ));
            }
        }
        // Another container that takes this one's volumes or network namespace must name one
        // replica, not the set.
        for (other, spec) in &stack.containers {
            if spec.shared_with().iter().any(|d| d == name) {
                return Err(at(
                    &spec.image,
                    format!("containers.{other}"),
                    format!(
                        "`{name}` has replicas: a volumes_from or container: mode cannot follow a set; declare the one to follow without replicas"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// `volumes_from` and `container:NAME` must not loop.
fn find_cycle(stack: &Stack) -> Result<(), Violation> {
    let deps: BTreeMap<&str, Vec<String>> = stack
        .containers
        .iter()
        .map(|(name, c)| (name.as_str(), c.dependencies()))
        .collect();
    fn visit<'a>(
        node: &'a str,
        deps: &'a BTreeMap<&str, Vec<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if done.contains(node) {
            return None;
        }
        if let Some(start) = path.iter().position(|n| *n == node) {
            let mut cycle: Vec<String> = path[start..].iter().map(|s| s.to_string()).collect();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        path.push(node);
        for next in deps.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next.as_str(), deps, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node);
        None
    }
    let mut done = BTreeSet::new();
    for (name, container) in &stack.containers {
        if let Some(cycle) = visit(name.as_str(), &deps, &mut Vec::new(), &mut done) {
            return Err(at(
                &container.image,
                format!("containers.{name}"),
                format!("dependency cycle: {}", cycle.join(" → ")),
            ));
        }
    }
    Ok(())
}

/// Containers in an order where each comes after what it depends on.
pub fn creation_order(stack: &Stack) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    let mut placed: BTreeSet<String> = BTreeSet::new();
    while order.len() < stack.containers.len() {
        let before = order.len();
        for (name, c) in &stack.containers {
            if !placed.contains(name) && c.dependencies().iter().all(|d| placed.contains(d)) {
                placed.insert(name.clone());
                order.push(name.clone());
            }
        }
        if order.len() == before {
            break; // a cycle; validation reports it
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use crate::provision::spec::Stack;

    fn stack_with_dns(dns: &str) -> String {
        format!(
            "[stack]\nname = \"t\"\n[containers.c]\nimage = \"busybox\"\nnetwork_mode = \"none\"\ndns = [{dns}]\n"
        )
    }

    #[test]
    fn a_container_s_dns_must_be_ip_addresses() {
        let ok = Stack::parse(&stack_with_dns("\"10.0.0.2\", \"fd00::53\""), "t.toml")
            .expect("IPs are fine");
        assert_eq!(ok.containers["c"].dns.len(), 2);
        let error = Stack::parse(&stack_with_dns("\"10.0.0.2\", \"resolver.lan\""), "t.toml")
            .expect_err("a name is not an IP")
            .to_string();
        assert!(
            error.contains("containers.c.dns[1]") && error.contains("resolver.lan"),
            "{error}"
        );
    }
}
