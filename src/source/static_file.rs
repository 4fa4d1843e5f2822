//! The static source: networks and endpoints declared in the config file.
//!
//! Turns a [`Config`] into [`Change`]s, applying only the difference from what it applied
//! last, and reloads the file when it changes or on SIGHUP. A broken file is reported with
//! file, line and field, and the records already served stay as they are.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use super::tracked::Tracked;
use crate::{
    config::{Config, ServerConfig, StaticEndpoint, StaticSrv},
    registry::{
        Change, DEFAULT_SRV_WEIGHT, Endpoint, NameData, NameOrigin, NameOrigins, Owner, Registry,
        SrvPort, SrvProto,
    },
    telemetry,
};

/// What the config file publishes is its own (see [`crate::registry::Owner`]).
pub const OWNER: Owner = Owner("static");

/// Endpoints applied at a time by [`StaticSource::sync`]: small enough that one batch's
/// strings, freed, are reused by the next (512 gave 79.9 MB at 100,000 endpoints, as against
/// 95.5 MB all at once), large enough that the writer's lock is taken 200 times, not 100,000.
const APPLY_BATCH: usize = 512;

/// What the static source has put into the registry: its networks and records. Its endpoints
/// it asks the registry for at each sync ([`Registry::each_published`]) instead of keeping
/// their keys and fingerprints between reloads: ~26 bytes an endpoint at 100,000, for a diff
/// that runs only when the file changes.
#[derive(Debug, Default)]
pub struct StaticSource {
    networks: BTreeSet<String>,
    /// The records (`[networks.N.records]`) applied last, by (network, name).
    records: BTreeMap<(String, String), NameData>,
}

/// The endpoints a config declares, each with its network's name, in the config's order
/// (networks by name, then as written); [`endpoint`] builds each.
fn declared(config: &Config) -> impl Iterator<Item = (&String, &StaticEndpoint)> {
    (config.networks.iter())
        .flat_map(|(network, net)| net.endpoints.iter().map(move |ep| (network, ep)))
}

/// A declared endpoint as the registry takes it.
fn endpoint(network: &str, ep: &StaticEndpoint) -> Endpoint {
    let name = ep.name.get_ref().clone();
    Endpoint {
        network: network.to_string(),
        container: ep.container.clone().unwrap_or_else(|| name.clone()),
        name,
        aliases: ep.aliases.iter().map(|a| a.get_ref().clone()).collect(),
        ipv4: ep.ipv4.as_ref().map(|ip| *ip.get_ref()),
        ipv6: ep.ipv6.as_ref().map(|ip| *ip.get_ref()),
        ttl: ep.ttl,
        out_of_rotation: None,
        srv: ep
            .srv
            .iter()
            .filter_map(|s| srv_port(s.get_ref()))
            .collect(),
        origins: NameOrigins::all(NameOrigin::Config, 1 + ep.aliases.len()),
    }
}

/// The records a config declares, keyed by (network, name as written, lower case, without a
/// trailing dot). `Config::parse` has checked every value; one that does not parse is left out.
fn declared_records(config: &Config) -> BTreeMap<(String, String), NameData> {
    let mut out: BTreeMap<(String, String), NameData> = BTreeMap::new();
    for (network, net) in &config.networks {
        let records = &net.records;
        fn entry<'m>(
            out: &'m mut BTreeMap<(String, String), NameData>,
            network: &str,
            name: &str,
        ) -> &'m mut NameData {
            let key = name.trim_end_matches('.').to_ascii_lowercase();
            out.entry((network.to_string(), key)).or_default()
        }
        for (name, target) in &records.cname {
            entry(&mut out, network, name).cname = Some(target.get_ref().clone());
        }
        for (name, values) in &records.a {
            let data = entry(&mut out, network, name);
            data.v4.extend(
                values
                    .get_ref()
                    .0
                    .iter()
                    .filter_map(|v| v.parse::<std::net::Ipv4Addr>().ok()),
            );
        }
        for (name, values) in &records.aaaa {
            let data = entry(&mut out, network, name);
            data.v6.extend(
                values
                    .get_ref()
                    .0
                    .iter()
                    .filter_map(|v| v.parse::<std::net::Ipv6Addr>().ok()),
            );
        }
        for (name, strings) in &records.txt {
            entry(&mut out, network, name).txt = strings
                .get_ref()
                .0
                .iter()
                .map(|t| t.as_bytes().to_vec())
                .collect();
        }
    }
    out
}

/// A config `srv` entry as a service port (`Config::parse` has checked its names).
fn srv_port(srv: &StaticSrv) -> Option<SrvPort> {
    Some(SrvPort {
        service: SrvPort::service_name(&srv.service)?,
        proto: SrvProto::from_label(&srv.proto)?,
        port: srv.port,
        weight: srv.weight.unwrap_or(DEFAULT_SRV_WEIGHT),
    })
}

impl StaticSource {
    /// Applies `config` to the registry and remembers it as the new baseline; returns the
    /// number of changes applied.
    pub fn sync(&mut self, config: &Config, registry: &Registry) -> usize {
        let networks = config.networks.keys().cloned().collect();
        let records = declared_records(config);
        // Records gone first (a network dropped takes its records with it anyway), then the
        // endpoints and networks, then records new or changed (their network is held by then).
        let mut changes: Vec<Change> = self
            .records
            .keys()
            .filter(|key| !records.contains_key(*key))
            .map(|(network, name)| Change::NameData {
                network: network.clone(),
                name: name.clone(),
                data: None,
            })
            .collect();
        // The config is walked twice and the endpoints built as they are applied, a batch at
        // a time, never all at once: held all together (as they were), their freed strings
        // were left between the registry's own allocations, 15.6 MB of resident memory the
        // allocator could not give back at 100,000 endpoints (memory.sh: 95.5 against 79.9 MB).
        // The writer's lock is let go between batches, so another source's change may land
        // between two of them; readers saw each change as it was applied before as well, and
        // every change is its owner's alone.
        let all = declared(config).map(|(network, ep)| endpoint(network, ep));
        let mut tracked = Tracked::recalled(std::mem::take(&mut self.networks), |remember| {
            registry.each_published(OWNER, remember)
        });
        let retracked = tracked.retrack(networks, all);
        self.networks = tracked.networks().clone();
        drop(tracked);
        changes.extend(retracked.changes);
        let mut count = changes.len();
        registry.apply_all(OWNER, changes);
        // Only the new and changed are built again (a reload of an unchanged file builds none).
        let mut ups = (declared(config).zip(retracked.changed))
            .filter(|(_, changed)| *changed)
            .map(|((network, ep), _)| Change::EndpointUp(endpoint(network, ep)))
            .peekable();
        while ups.peek().is_some() {
            let batch: Vec<Change> = ups.by_ref().take(APPLY_BATCH).collect();
            count += batch.len();
            registry.apply_all(OWNER, batch);
        }
        let changes: Vec<Change> = records
            .iter()
            .filter(|(key, data)| self.records.get(*key) != Some(*data))
            .map(|((network, name), data)| Change::NameData {
                network: network.clone(),
                name: name.clone(),
                data: Some(data.clone()),
            })
            .collect();
        count += changes.len();
        registry.apply_all(OWNER, changes);
        self.records = records;
        count
    }
}

/// Starts reloading `path` into the registry whenever the file changes or SIGHUP arrives.
///
/// The file watch and the SIGHUP handler are in place when this returns, so a change made
/// after it is never missed. Each file loaded goes through `overrides` first (the caller's
/// command-line flags, which `current` had too), then `on_server` hears its server settings
/// (the caller applies what can change at run time, the TTL); this module knows nothing of
/// the command line or the DNS front end. Must be called inside the runtime.
pub fn spawn_reloader(
    path: PathBuf,
    mut source: StaticSource,
    current: Config,
    registry: Arc<Registry>,
    overrides: impl Fn(&mut Config) + Send + 'static,
    on_server: impl Fn(&ServerConfig) + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    let (tx, mut rx) = mpsc::channel::<&'static str>(8);
    let watcher = match file_watcher(&path, tx.clone()) {
        Ok(w) => Some(w),
        Err(error) => {
            warn!(%error, file = %path.display(), "cannot watch the config file; reload with SIGHUP");
            None
        }
    };
    forward_sighup(tx);
    // Only the settings are compared on reload (`config::reload`); the records live in
    // `source`, so the parsed networks are not kept: at 100,000 endpoints they are 18.5 MB
    // (`ONLY_RSS=1 bash benches/scale.sh` measured 180.7 MB without them, 199.3 MB with).
    let mut current = without_networks(current);
    // What the file held when last loaded, as a hash: keeping the bytes themselves held the
    // whole file for the life of the process (6.8 MB of live heap at 100,000 endpoints, by
    // valgrind massif; benches/README.md "Memory"). A collision, which would skip one reload
    // on a file event, has odds of 2^-64; SIGHUP always reloads.
    let mut loaded = file_hash(&path);
    tokio::spawn(async move {
        let _watcher = watcher;
        while let Some(trigger) = rx.recv().await {
            // A rename burst (an editor, a symlink swap) comes as several events: coalesce.
            tokio::time::sleep(Duration::from_millis(100)).await;
            while rx.try_recv().is_ok() {}
            let now = file_hash(&path);
            if trigger != "SIGHUP" && now.is_some() && now == loaded {
                continue; // something else in the directory changed
            }
            loaded = now;
            match Config::load(&path) {
                Ok(mut config) => {
                    overrides(&mut config);
                    warn_if_needs_restart(&current, &config);
                    on_server(&config.server);
                    let changes = source.sync(&config, &registry);
                    telemetry::count_reload(true);
                    info!(file = %path.display(), trigger, changes, "config reloaded");
                    current = without_networks(config);
                }
                Err(error) => {
                    telemetry::count_reload(false);
                    error!("config not reloaded, still serving the previous records: {error}");
                }
            }
            // What the parse and the diff freed, back to the kernel (see `heap::trim`).
            let trimming = std::time::Instant::now();
            crate::heap::trim();
            debug!(took = ?trimming.elapsed(), "heap trimmed after a reload");
        }
    })
}

/// A hash of the file's bytes (`None` if it cannot be read), to tell a changed file from an
/// event about something else in its directory. `DefaultHasher::new()` has fixed keys, and
/// its `write` is a stream: how the reads split the file does not change the hash.
///
/// Read in pieces: the hash needs no whole-file buffer (6.8 MB at 100,000 endpoints).
fn file_hash(path: &Path) -> Option<u64> {
    use std::{
        hash::{DefaultHasher, Hasher},
        io::{ErrorKind, Read},
    };
    let mut file = std::fs::File::open(path).ok()?;
    let mut hasher = DefaultHasher::new();
    let mut piece = [0u8; 8192];
    loop {
        match file.read(&mut piece) {
            Ok(0) => return Some(hasher.finish()),
            Ok(n) => hasher.write(&piece[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

/// `config` with its networks dropped: what the reloader compares the next file with.
fn without_networks(mut config: Config) -> Config {
    config.networks = Default::default();
    config
}

/// Warns of the settings an edit changed that only a restart applies, by name (the table is
/// `config::reload`).
fn warn_if_needs_restart(old: &Config, new: &Config) {
    let changed = crate::config::reload::needs_restart(old, new);
    if !changed.is_empty() {
        warn!(
            settings = changed.join(", "),
            "these settings changed and take effect after a restart; the records and the rest are reloaded"
        );
    }
}

fn file_watcher(
    path: &Path,
    tx: mpsc::Sender<&'static str>,
) -> notify::Result<notify::RecommendedWatcher> {
    // Watch the directory: editors and config managers replace the file by rename.
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let file_name = path.file_name().map(|n| n.to_os_string());
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if !marks_a_whole_file(&event.kind) {
            return; // a write in progress: wait for the writer to close the file
        }
        // The file itself, or a `..name` entry: Kubernetes mounts a ConfigMap as a symlink
        // into `..data/`, and updates it by swapping `..data` (the file's name never shows).
        let ours = event.paths.iter().any(|p| {
            let name = p.file_name().map(|n| n.to_os_string());
            name == file_name || name.is_some_and(|n| n.to_string_lossy().starts_with(".."))
        });
        if ours {
            let _ = tx.try_send("file changed");
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    Ok(watcher)
}

/// Whether an event leaves a whole file behind: a writer closing it, or a file created, moved
/// into place or removed. Writes still in progress (`Modify(Data)`) are not: a half-written
/// file can parse and would drop the records its missing half holds.
fn marks_a_whole_file(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
    matches!(
        kind,
        EventKind::Access(AccessKind::Close(AccessMode::Write))
            | EventKind::Create(_)
            | EventKind::Remove(_)
            | EventKind::Modify(ModifyKind::Name(_))
            | EventKind::Modify(ModifyKind::Any)
    )
}

/// Registers the SIGHUP handler now, then forwards each signal as a reload trigger.
fn forward_sighup(tx: mpsc::Sender<&'static str>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(error) => {
            warn!(%error, "cannot listen for SIGHUP");
            return;
        }
    };
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            if tx.send("SIGHUP").await.is_err() {
                return;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        Config::parse(text, "t.toml").expect("valid")
    }

    #[test]
    fn second_sync_of_same_file_changes_nothing() {
        let registry = Registry::new(None).expect("registry");
        let cfg = Config::embedded_default().expect("default");
        let mut source = StaticSource::default();
        assert!(source.sync(&cfg, &registry) > 1);
        // The scoping settings are the server's (`Registry::set_scoping`), not re-sent here.
        assert_eq!(source.sync(&cfg, &registry), 0);
        assert_eq!(registry.sizes().endpoints, 3);
    }

    #[test]
    fn records_come_and_go_with_the_file_and_their_network() {
        use hickory_server::proto::rr::LowerName;
        let registry = Registry::new(None).expect("registry");
        let mut source = StaticSource::default();
        let name = |n: &str| n.parse::<LowerName>().expect("name");
        let host = std::net::IpAddr::from([127, 0, 0, 1]);
        let with = "[networks.a.records.a]\n\"db.test\" = \"10.0.0.5\"\n[networks.a.records.txt]\n\"t.test\" = \"v=1\"\n[networks.b.records.cname]\n\"www.test\" = \"db.test\"\n";
        assert_eq!(
            source.sync(&config(with), &registry),
            5,
            "two networks, three names"
        );
        let db = registry.lookup(&name("db.test."), host).expect("db.test");
        assert_eq!(db.v4_members(), [std::net::Ipv4Addr::new(10, 0, 0, 5)]);
        assert!(
            registry
                .lookup(&name("www.test."), host)
                .is_some_and(|s| s.cname().is_some())
        );
        assert_eq!(source.sync(&config(with), &registry), 0, "nothing changed");
        // `t.test` dropped, network `b` (and its CNAME) dropped: both gone.
        source.sync(
            &config("[networks.a.records.a]\n\"db.test\" = \"10.0.0.5\"\n"),
            &registry,
        );
        assert!(registry.lookup(&name("t.test."), host).is_none());
        assert!(registry.lookup(&name("www.test."), host).is_none());
        assert!(registry.lookup(&name("db.test."), host).is_some());
        assert_eq!(registry.sizes().networks, 1);
    }

    #[test]
    fn more_endpoints_than_a_batch_all_arrive_and_a_reload_sends_only_what_changed() {
        use hickory_server::proto::rr::LowerName;
        let n = 2 * APPLY_BATCH + 3;
        let file = |changed: u8| {
            let mut text = String::new();
            for i in 0..n {
                let last = if i == n - 1 { changed } else { 1 };
                text += &format!(
                    "[[networks.a.endpoints]]\nname = \"e{i}\"\nipv4 = \"10.{}.{}.{last}\"\n",
                    i / 256,
                    i % 256
                );
            }
            config(&text)
        };
        let registry = Registry::new(None).expect("registry");
        let mut source = StaticSource::default();
        assert_eq!(
            source.sync(&file(1), &registry),
            n + 1,
            "a network and every endpoint"
        );
        assert_eq!(registry.sizes().endpoints, n);
        let host = std::net::IpAddr::from([127, 0, 0, 1]);
        let last = format!("e{}.a.", n - 1).parse::<LowerName>().expect("name");
        let first = "e0.a.".parse::<LowerName>().expect("name");
        assert!(registry.lookup(&first, host).is_some());
        let at = |registry: &Registry| {
            registry
                .lookup(&last, host)
                .map(|s| s.v4_members().to_vec())
        };
        let (hi, lo) = (((n - 1) / 256) as u8, ((n - 1) % 256) as u8);
        assert_eq!(
            at(&registry),
            Some(vec![std::net::Ipv4Addr::new(10, hi, lo, 1)])
        );
        assert_eq!(source.sync(&file(1), &registry), 0, "the same file");
        assert_eq!(source.sync(&file(9), &registry), 1, "one endpoint moved");
        assert_eq!(
            at(&registry),
            Some(vec![std::net::Ipv4Addr::new(10, hi, lo, 9)])
        );
        assert_eq!(registry.sizes().endpoints, n);
    }

    #[test]
    fn a_reload_across_batches_changes_removes_renames_and_moves_each_endpoint_it_should() {
        use hickory_server::proto::rr::LowerName;
        let n = 2 * APPLY_BATCH + 3;
        let addr = |i: usize, last: u8| format!("10.{}.{}.{last}", i / 256, i % 256);
        let before: String = (0..n)
            .map(|i| {
                format!(
                    "[[networks.a.endpoints]]\nname = \"e{i}\"\nipv4 = \"{}\"\n",
                    addr(i, 1)
                )
            })
            .collect();
        let mut after = String::new();
        for i in 0..n {
            let (network, last, container) = match i {
                5 | 600 => ("a", 2, None),   // changed, in the first and second batch
                700 => continue,             // removed
                10 => ("a", 1, Some("x10")), // another container: down, then up
                20 => ("b", 1, None),        // another network
                _ => ("a", 1, None),
            };
            after += &format!(
                "[[networks.{network}.endpoints]]\nname = \"e{i}\"\nipv4 = \"{}\"\n",
                addr(i, last)
            );
            if let Some(container) = container {
                after += &format!("container = \"{container}\"\n");
            }
        }
        let registry = Registry::new(None).expect("registry");
        let mut source = StaticSource::default();
        source.sync(&config(&before), &registry);
        // 2 changed, 1 removed, 2 for the new container, 2 for the move and network `b`.
        assert_eq!(source.sync(&config(&after), &registry), 8);
        assert_eq!(registry.sizes().endpoints, n - 1);
        let host = std::net::IpAddr::from([127, 0, 0, 1]);
        let v4 = |q: &str| {
            let q = q.parse::<LowerName>().expect("name");
            registry.lookup(&q, host).map(|s| s.v4_members().to_vec())
        };
        let ip =
            |i: usize, last: u8| vec![addr(i, last).parse::<std::net::Ipv4Addr>().expect("ip")];
        assert_eq!(v4("e5.a."), Some(ip(5, 2)));
        assert_eq!(v4("e600.a."), Some(ip(600, 2)));
        assert_eq!(v4("e601.a."), Some(ip(601, 1)), "a neighbour untouched");
        assert_eq!(v4("e700.a."), None);
        assert_eq!(v4("e10.a."), Some(ip(10, 1)));
        assert_eq!((v4("e20.a."), v4("e20.b.")), (None, Some(ip(20, 1))));
        assert_eq!(
            source.sync(&config(&after), &registry),
            0,
            "and then nothing"
        );
    }

    #[test]
    fn a_reload_diffs_against_what_the_registry_holds() {
        // Every field a config can give, so that what the registry gives back must be whole.
        let text = "[[networks.a.endpoints]]\nname = \"x\"\ncontainer = \"cx\"\nipv4 = \"10.0.0.1\"\n\
            ipv6 = \"fd00::1\"\nttl = 7\naliases = [\"api\", \"API\"]\nsrv = [{ service = \"http\", port = 80 }]\n\
            [[networks.a.endpoints]]\nname = \"y\"\nipv4 = \"10.0.0.2\"\n";
        let registry = Registry::new(None).expect("registry");
        // One endpoint refused (the registry's bound), not lost: the next sync of the same file
        // sends it again once there is room, where a copy of its own kept it as applied.
        registry.set_max_endpoints(1);
        let mut source = StaticSource::default();
        assert!(source.sync(&config(text), &registry) > 0);
        assert_eq!(registry.sizes().endpoints, 1);
        registry.set_max_endpoints(10);
        assert_eq!(
            source.sync(&config(text), &registry),
            1,
            "only the refused one"
        );
        assert_eq!(registry.sizes().endpoints, 2);
        assert_eq!(
            source.sync(&config(text), &registry),
            0,
            "all of it held as sent"
        );
        // Another owner's endpoint of the same container is not this source's to diff.
        registry.apply(
            Owner("other"),
            Change::EndpointUp(endpoint("a", &config(text).networks["a"].endpoints[1])),
        );
        assert_eq!(source.sync(&config(text), &registry), 0);
    }

    #[test]
    fn removed_endpoint_and_network_leave_the_registry() {
        let registry = Registry::new(None).expect("registry");
        let mut source = StaticSource::default();
        source.sync(
            &config("[[networks.a.endpoints]]\nname = \"x\"\nipv4 = \"10.0.0.1\"\n[[networks.b.endpoints]]\nname = \"y\"\nipv4 = \"10.0.1.1\"\n"),
            &registry,
        );
        assert_eq!(registry.sizes().networks, 2);
        source.sync(
            &config("[[networks.a.endpoints]]\nname = \"x\"\nipv4 = \"10.0.0.1\"\n"),
            &registry,
        );
        assert_eq!(registry.sizes().networks, 1);
        assert_eq!(registry.sizes().endpoints, 1);
    }

    #[test]
    fn the_file_hash_tells_an_edit_from_the_same_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("n.toml");
        assert_eq!(file_hash(&path), None, "no file yet");
        std::fs::write(&path, "[server]\nttl = 0\n").expect("write");
        let first = file_hash(&path);
        assert!(first.is_some());
        std::fs::write(&path, "[server]\nttl = 0\n").expect("write");
        assert_eq!(file_hash(&path), first, "rewritten with the same bytes");
        std::fs::write(&path, "[server]\nttl = 1\n").expect("write");
        assert_ne!(file_hash(&path), first, "edited");
        // Longer than one read: the same bytes, the same hash; one byte more, another.
        let long = "#".repeat(20_000);
        std::fs::write(&path, &long).expect("write");
        let whole = file_hash(&path);
        assert_eq!(file_hash(&path), whole);
        std::fs::write(&path, long + "#").expect("write");
        assert_ne!(file_hash(&path), whole);
    }
}
