//! The container fields whose text needs reading: published ports (compose's short syntax),
//! memory sizes, tmpfs entries and env files; and each container's fields rendered one by
//! one, so that `plan` can say which field changed (`~ web: ports 8080:80 → 8081:80`).
//!
//! Pure: no engine calls. `validate` reports the errors these parsers return (with the
//! field's line), `engine` turns the parsed values into API bodies, `plan` diffs the renders.
//! It must not decide what a change means (recreate or not): `plan` does.

use std::{collections::BTreeMap, path::Path};

use super::spec::ContainerSpec;

/// One published port (or range, one entry per port): `[HOST_IP:][HOST_PORT:]PORT[/PROTO]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    pub host_ip: Option<String>,
    /// None: the engine picks a free port.
    pub host_port: Option<u16>,
    pub container_port: u16,
    pub protocol: &'static str,
}

impl PortSpec {
    /// The engine's key for the container side: `80/tcp`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.container_port, self.protocol)
    }

    /// Parses one `ports` entry in compose's short syntax into one spec per port:
    /// `"80"`, `"8080:80"`, `"127.0.0.1:8080:80/udp"`, `"127.0.0.1::80"`, `"[::1]:8080:80"`,
    /// `"9000-9001:9000-9001"`, `"9000-9001"`.
    pub fn parse(text: &str) -> Result<Vec<PortSpec>, String> {
        let (rest, protocol) = match text.rsplit_once('/') {
            Some((rest, "tcp")) => (rest, "tcp"),
            Some((rest, "udp")) => (rest, "udp"),
            Some((rest, "sctp")) => (rest, "sctp"),
            Some((_, other)) => {
                return Err(format!(
                    "`{other}` in `{text}` is not a protocol: tcp, udp or sctp"
                ));
            }
            None => (text, "tcp"),
        };
        // An IPv6 host address is bracketed: `[::1]:8080:80`.
        let (host_ip, rest) = match rest.strip_prefix('[') {
            Some(bracketed) => {
                let (ip, after) = bracketed.split_once("]:").ok_or_else(|| {
                    format!("`{text}`: a bracketed IPv6 address needs `]:` after it")
                })?;
                (Some(ip), after)
            }
            None => (None, rest),
        };
        let parts: Vec<&str> = rest.split(':').collect();
        let (host_ip, host, container) = match (host_ip, parts.as_slice()) {
            (None, [c]) => (None, "", *c),
            (None, [h, c]) => (None, *h, *c),
            (None, [ip, h, c]) => (Some(*ip), *h, *c),
            (Some(ip), [h, c]) => (Some(ip), *h, *c),
            _ => {
                return Err(format!(
                    "`{text}` is not [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL]"
                ));
            }
        };
        if let Some(ip) = host_ip
            && ip.parse::<std::net::IpAddr>().is_err()
        {
            return Err(format!("`{ip}` in `{text}` is not an IP address"));
        }
        let container = range(container, text)?;
        let host = if host.is_empty() {
            None
        } else {
            Some(range(host, text)?)
        };
        if let Some(host) = &host
            && host.len() != container.len()
        {
            return Err(format!(
                "`{text}` maps {} host port(s) to {} container port(s): give ranges of the same length",
                host.len(),
                container.len()
            ));
        }
        Ok(container
            .iter()
            .enumerate()
            .map(|(i, port)| PortSpec {
                host_ip: host_ip.map(str::to_string),
                host_port: host.as_ref().map(|h| h[i]),
                container_port: *port,
                protocol,
            })
            .collect())
    }
}

/// `PORT` or `FIRST-LAST` (1 to 65535).
fn range(text: &str, entry: &str) -> Result<Vec<u16>, String> {
    let port = |p: &str| -> Result<u16, String> {
        match p.parse::<u16>() {
            Ok(0) | Err(_) => Err(format!(
                "`{p}` in `{entry}` is not a port: give a number from 1 to 65535"
            )),
            Ok(n) => Ok(n),
        }
    };
    match text.split_once('-') {
        None => Ok(vec![port(text)?]),
        Some((first, last)) => {
            let (first, last) = (port(first)?, port(last)?);
            if first > last {
                return Err(format!(
                    "`{text}` in `{entry}` is a range that runs backwards"
                ));
            }
            Ok((first..=last).collect())
        }
    }
}

/// A memory size: bytes, or a whole number with b, k, m or g (Docker's units, powers of 1024).
/// Docker refuses less than 6 MiB.
pub fn parse_memory(text: &str) -> Result<i64, String> {
    let not_a_size =
        || format!("`{text}` is not a size: a number with b, k, m, g or t (`512m`, `1.5g`)");
    let lower = text.trim().to_ascii_lowercase();
    let (digits, unit) = match lower.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(at) => lower.split_at(at),
        None => (lower.as_str(), ""),
    };
    // Docker's units (RAMInBytes): powers of 1024, an optional `b` or `ib`.
    let scale: f64 = match unit.trim_end_matches("ib").trim_end_matches('b') {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(not_a_size()),
    };
    let n: f64 = digits.parse().map_err(|_| not_a_size())?;
    let bytes = n * scale;
    if !bytes.is_finite() || bytes > i64::MAX as f64 {
        return Err(format!(
            "`{text}` is too large: give at most a few terabytes"
        ));
    }
    let bytes = bytes as i64;
    if bytes < 6 << 20 {
        return Err(format!(
            "`{text}` is below the 6 MiB Docker allows a container at least"
        ));
    }
    Ok(bytes)
}

/// `"/path[:options]"` into the path and its mount options (`--tmpfs`).
pub fn parse_tmpfs(text: &str) -> Result<(String, String), String> {
    let (path, options) = text.split_once(':').unwrap_or((text, ""));
    if !path.starts_with('/') {
        return Err(format!(
            "tmpfs `{path}` must be an absolute path in the container"
        ));
    }
    Ok((path.to_string(), options.to_string()))
}

/// Reads an env file as compose does: `KEY=VALUE` lines, `#` comments and blank lines
/// skipped, `export ` allowed, one pair of matching quotes around a value removed. A line
/// without `=` is an error naming the file and line (a bare `KEY` would take the value from
/// the provisioning shell, which the next apply from another shell would not have).
pub fn read_env_file(path: &Path) -> Result<BTreeMap<String, String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read env file {}: {e}", path.display()))?;
    let mut env = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!(
                "{}:{}: `{line}` is not KEY=VALUE",
                path.display(),
                i + 1
            ));
        };
        let key = key.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(format!(
                "{}:{}: `{key}` is not a variable name",
                path.display(),
                i + 1
            ));
        }
        env.insert(key.to_string(), env_value(value.trim()));
    }
    Ok(env)
}

/// A value as compose reads it: `'single'` taken as it is; `"double"` with `\n`, `\t`,
/// `\"` and `\\` escapes; unquoted, up to an inline ` #` comment.
fn env_value(value: &str) -> String {
    if let Some(inner) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        return inner.to_string();
    }
    if let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.peek() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(e @ ('"' | '\\')) => out.push(*e),
                _ => {
                    out.push('\\');
                    continue;
                }
            }
            chars.next();
        }
        return out;
    }
    match value.find(" #").or_else(|| value.find("\t#")) {
        Some(at) => value[..at].trim_end().to_string(),
        None => value.to_string(),
    }
}

/// FNV-1a: stable across builds and Rust versions, unlike std's hasher.
pub fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Each field of a container rendered as text, one entry per field (environment variables
/// and labels one entry each): stored with the container (label `netalias.spec.fields`) and
/// diffed by `plan`. Environment values are hashed, not shown: they hold passwords.
/// Empty fields are left out, so adding a field to this list changes no stored render.
pub fn render(c: &ContainerSpec) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut put = |key: String, value: String| {
        if !value.is_empty() {
            out.insert(key, value);
        }
    };
    let list = |v: &[String]| v.join(" ");
    put("image".into(), c.image.get_ref().clone());
    put("command".into(), list(&c.command));
    if let Some(e) = &c.entrypoint {
        put("entrypoint".into(), format!("[{}]", list(e)));
    }
    for (k, v) in c.environment_all() {
        put(
            format!("environment.{k}"),
            format!("#{:08x}", fnv(&v) as u32),
        );
    }
    if let Some(r) = &c.restart {
        put("restart".into(), r.get_ref().clone());
    }
    if let Some(h) = &c.healthcheck {
        put(
            "healthcheck".into(),
            format!(
                "{} every {}s, timeout {}s, {} retries, start period {}s",
                list(&h.test),
                h.interval_secs,
                h.timeout_secs,
                h.retries,
                h.start_period_secs
            ),
        );
    }
    let spanned = |v: &[toml::Spanned<String>]| {
        v.iter()
            .map(|s| s.get_ref().as_str())
            .collect::<Vec<_>>()
            .join(" ")
    };
    put("mounts".into(), spanned(&c.mounts));
    put("volumes_from".into(), spanned(&c.volumes_from));
    put("ports".into(), spanned(&c.ports));
    put("tmpfs".into(), spanned(&c.tmpfs));
    put("dns".into(), spanned(&c.dns));
    if let Some(m) = &c.network_mode {
        put("network_mode".into(), m.get_ref().clone());
    }
    for (net, a) in &c.networks {
        let mut text = String::from("attached");
        if !a.aliases.is_empty() {
            text = format!("aliases {}", a.aliases.join(" "));
        }
        if let Some(ip) = &a.ipv4 {
            text.push_str(&format!(", ipv4 {}", ip.get_ref()));
        }
        put(format!("networks.{net}"), text);
    }
    for (k, v) in &c.labels {
        put(format!("labels.{k}"), v.clone());
    }
    if let Some(u) = &c.user {
        put("user".into(), u.clone());
    }
    put("group_add".into(), list(&c.group_add));
    put("cap_add".into(), list(&c.cap_add));
    put("cap_drop".into(), list(&c.cap_drop));
    if let Some(w) = &c.working_dir {
        put("working_dir".into(), w.get_ref().clone());
    }
    if c.read_only {
        put("read_only".into(), "true".into());
    }
    if c.init {
        put("init".into(), "true".into());
    }
    if let Some(m) = &c.memory {
        // `512M` and `512m` are one size: no recreate for the case.
        put("memory".into(), m.get_ref().trim().to_ascii_lowercase());
    }
    if let Some(cpus) = &c.cpus {
        put("cpus".into(), cpus.get_ref().to_string());
    }
    if let Some(l) = &c.logging {
        let mut text = l.driver.get_ref().clone();
        for (k, v) in &l.options {
            text.push_str(&format!(" {k}={v}"));
        }
        put("logging".into(), text);
    }
    out
}

/// The fields that differ, for people: `ports 8080:80 → 8081:80`, `environment.DB_PASSWORD
/// changed` (never its value).
pub fn diff(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> Vec<String> {
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|key| {
            let (was, is) = (old.get(key), new.get(key));
            if was == is {
                return None;
            }
            if key.starts_with("environment.") {
                let how = match (was, is) {
                    (None, _) => "added",
                    (_, None) => "removed",
                    _ => "changed",
                };
                return Some(format!("{key} {how}"));
            }
            let show = |v: Option<&String>| v.map_or("none".to_string(), |v| v.clone());
            Some(format!("{key} {} → {}", show(was), show(is)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> PortSpec {
        let mut v = PortSpec::parse(text).expect(text);
        assert_eq!(v.len(), 1, "{text}");
        v.remove(0)
    }

    #[test]
    fn ports_in_compose_short_syntax() {
        assert_eq!(
            one("127.0.0.1:8080:80/udp"),
            PortSpec {
                host_ip: Some("127.0.0.1".into()),
                host_port: Some(8080),
                container_port: 80,
                protocol: "udp"
            }
        );
        let p = one("80");
        assert_eq!(
            (p.key(), p.host_ip, p.host_port),
            ("80/tcp".into(), None, None)
        );
        let p = one("127.0.0.1::80");
        assert_eq!(
            (p.host_ip.as_deref(), p.host_port),
            (Some("127.0.0.1"), None)
        );
        let p = one("[::1]:8053:53/udp");
        assert_eq!(
            (p.host_ip.as_deref(), p.host_port),
            (Some("::1"), Some(8053))
        );
        let r = PortSpec::parse("9000-9002:8000-8002").unwrap();
        assert_eq!(
            r.iter()
                .map(|p| (p.host_port, p.container_port))
                .collect::<Vec<_>>(),
            vec![(Some(9000), 8000), (Some(9001), 8001), (Some(9002), 8002)]
        );
        for bad in [
            "8080:80/icmp",
            "0:80",
            "70000",
            "9000-9001:80",
            "a:b:c:d",
            "nohost:80:80",
            "90-80",
        ] {
            assert!(PortSpec::parse(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("512m"), Ok(512 << 20));
        assert_eq!(parse_memory("1.5g"), Ok(3 << 29));
        assert_eq!(parse_memory("512MiB"), Ok(512 << 20));
        assert_eq!(parse_memory("1t"), Ok(1 << 40));
        assert_eq!(parse_memory("1G"), Ok(1 << 30));
        assert_eq!(parse_memory("7340032"), Ok(7 << 20));
        assert!(parse_memory("1m").unwrap_err().contains("6 MiB"));
        assert!(parse_memory("lots").is_err());
        assert!(parse_memory("5x").is_err());
    }

    #[test]
    fn env_files_as_compose_reads_them() {
        let dir = std::env::temp_dir().join(format!("netalias-envfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("db.env");
        std::fs::write(
            &file,
            "# db\n\nexport USER=app\nPASSWORD=\"s3 cret\"\nEMPTY=\nNOTE=plain # a comment\nLINES=\"a\\nb \\\"q\\\"\"\nRAW='a\\n#b'\n",
        )
        .unwrap();
        let env = read_env_file(&file).unwrap();
        assert_eq!(env["USER"], "app");
        assert_eq!(env["PASSWORD"], "s3 cret");
        assert_eq!(env["EMPTY"], "");
        assert_eq!(env["NOTE"], "plain");
        assert_eq!(env["LINES"], "a\nb \"q\"");
        assert_eq!(env["RAW"], "a\\n#b");
        std::fs::write(&file, "OK=1\nBARE\n").unwrap();
        let error = read_env_file(&file).unwrap_err();
        assert!(
            error.ends_with("db.env:2: `BARE` is not KEY=VALUE"),
            "{error}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn diffs_name_the_field_and_hide_secrets() {
        let old = BTreeMap::from([
            ("ports".to_string(), "8080:80".to_string()),
            ("environment.PASSWORD".to_string(), "#1".to_string()),
            ("init".to_string(), "true".to_string()),
        ]);
        let new = BTreeMap::from([
            ("ports".to_string(), "8081:80".to_string()),
            ("environment.PASSWORD".to_string(), "#2".to_string()),
            ("memory".to_string(), "512m".to_string()),
        ]);
        assert_eq!(
            diff(&old, &new),
            vec![
                "environment.PASSWORD changed",
                "init true → none",
                "memory none → 512m",
                "ports 8080:80 → 8081:80",
            ]
        );
    }
}
