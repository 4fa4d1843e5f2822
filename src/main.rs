//! The binary edge: parse the CLI, start tracing, dispatch. Errors become `anyhow` here.

use std::{collections::BTreeMap, net::SocketAddr, process::ExitCode, sync::Arc, time::Duration};

use anyhow::Context;
use clap::Parser;
use netalias::fd_budget;
use netalias::telemetry::{self, http::Readiness};
use netalias::{
    cli::{Cli, Command, LogFormat, ProvisionCommand, ServeArgs},
    config::{Config, LoadError},
    dns::{
        self, ForwardPolicy, Responder, Settings, UdpOptions,
        forward::{CacheLimits, ForwardSettings, Forwarder, choose_upstreams},
    },
    provision::{
        apply::{ApplyOptions, apply, destroy, selinux_warnings},
        error::ProvisionError,
        plan::{plan, read_engine},
        spec::Stack,
    },
    registry::Registry,
    source::{
        docker::{DockerOptions, DockerSource, Policy},
        static_file::{self, StaticSource},
        swarm::{SwarmOptions, SwarmSource},
    },
};
use tracing::{info, warn};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli.log_level, cli.log_format);
    let result = match cli.command {
        Command::CheckConfig { file } => return check_config(&file),
        Command::Serve(args) => serve(args),
        Command::Records { http } => print_records(http),
        Command::Explain {
            name,
            from,
            qtype,
            http,
        } => return explain(&name, from.as_deref(), &qtype, http),
        Command::Provision(command) => return provision(command),
        Command::Health { http, ready } => return health(http, ready),
        Command::HostDns {
            resolver,
            listen,
            domain,
            config,
            write,
            root,
        } => host_dns(resolver, listen, domain, config, write, &root),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("netalias: {}", report(&error));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes on one line, each said once: a message that already quotes its
/// cause (`cannot read x: No such file or directory (os error 2)`) is not followed by it again.
fn report(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

fn init_tracing(directive: &str, format: LogFormat) {
    // hickory-server logs two INFO lines per query; keep them out unless asked for by name.
    let directive = if directive.contains("hickory") {
        directive.to_string()
    } else {
        format!("{directive},hickory_server=warn,hickory_proto=warn,hickory_net=warn")
    };
    let filter = EnvFilter::try_new(&directive).unwrap_or_else(|error| {
        eprintln!("netalias: bad log filter {directive:?} ({error}); using info");
        EnvFilter::new("info,hickory_server=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
}

fn check_config(file: &std::path::Path) -> ExitCode {
    match Config::load(file) {
        Ok(config) => {
            let endpoints: usize = config.networks.values().map(|n| n.endpoints.len()).sum();
            println!(
                "{}: ok ({} networks, {} endpoints)",
                file.display(),
                config.networks.len(),
                endpoints
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let (mut config, path) = match &args.config {
        Some(path) => {
            let config = Config::load(path).map_err(|e| match e {
                LoadError::Invalid(e) => anyhow::anyhow!("invalid config:\n{e}"),
                other => anyhow::Error::new(other),
            })?;
            (config, Some(path.clone()))
        }
        None => (
            Config::embedded_default().context("the embedded default config is invalid")?,
            None,
        ),
    };
    args.apply_to(&mut config);
    // A malformed engine address is a usage error now, not a reconnect loop forever.
    let docker_host = std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty());
    for (what, host) in [
        (
            "--docker-host (docker.host, NETALIAS_DOCKER_HOST)",
            &config.docker.host,
        ),
        (
            "--swarm-host (swarm.host, NETALIAS_SWARM_HOST)",
            &config.swarm.host,
        ),
        ("DOCKER_HOST", &docker_host),
    ] {
        if let Some(host) = host {
            netalias::source::reach::check_engine_url(host)
                .map_err(|reason| anyhow::anyhow!("{what}: {reason}"))?;
        }
    }
    if config.swarm.poll_interval_ms == 0 {
        anyhow::bail!("--swarm-poll-ms (swarm.poll_interval_ms) must be at least 1");
    }
    // The embedded demo records are for trying netalias out: with a live source on and no
    // file given, serve exactly what the engine holds (a demo `web1` would shadow a real one).
    if path.is_none() && (config.docker.enabled || config.swarm.enabled) {
        config.networks.clear();
        info!("no --config and a live source is on: the embedded demo records are not served");
    }
    let docker = &config.docker;
    if docker.attach_default_bridge && !docker.enabled {
        anyhow::bail!(
            "--attach-default-bridge needs the Docker source: add --docker (or docker.enabled = true)"
        );
    }
    if docker.attach_bridges && !docker.enabled {
        anyhow::bail!(
            "--attach-bridges needs the Docker source: add --docker (or docker.enabled = true)"
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run(config, path, args))
}

async fn run(
    config: Config,
    path: Option<std::path::PathBuf>,
    args: ServeArgs,
) -> anyhow::Result<()> {
    // The recorder first: metric handles kept by what is built below (an upstream's series,
    // the fast path's counters) are the recorder's only if it is installed before them.
    let prometheus = match config.server.http_listen {
        Some(_) => {
            Some(telemetry::install_recorder().context("cannot install the metrics recorder")?)
        }
        None => None,
    };
    let budget = plan_descriptors(&config);
    let registry =
        Arc::new(Registry::new(config.server.domain()).context("cannot build the registry")?);
    registry.set_max_endpoints(config.server.max_endpoints.max(1));
    let mut source = StaticSource::default();
    let changes = source.sync(&config, &registry);
    let sizes = registry.sizes();
    info!(
        source = path
            .as_ref()
            .map_or("embedded default".to_string(), |p| p.display().to_string()),
        changes,
        networks = sizes.networks,
        endpoints = sizes.endpoints,
        names = sizes.names,
        "static records loaded"
    );

    let live: Vec<&'static str> = [
        (config.docker.enabled, "docker"),
        (config.swarm.enabled, "swarm"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    let readiness = Readiness::new(&live);
    // `--upstream` (or NETALIAS_UPSTREAM) replaced `forward.upstreams`: the log names which.
    let upstream_flag = !args.upstream.is_empty();
    let forward = forward_policy(&config, budget.forwards, upstream_flag)?;
    let settings = Arc::new(Settings::new(
        config.server.ttl,
        config.server.max_udp_payload,
    ));
    settings.set_log_queries(config.server.log_queries);
    let listen = config.server.listen.clone();
    let admission = dns::Admission::new(dns::TcpLimits {
        idle_timeout: Duration::from_secs(config.server.tcp_idle_timeout_secs),
        max_connections: budget.tcp_connections,
        max_per_client: config.server.tcp_max_connections_per_client.max(1),
    });
    let docker = config.docker.clone();
    let swarm = config.swarm.clone();
    let mut udp_options = UdpOptions {
        fast_path: config.server.udp_fast_path,
        ..UdpOptions::default()
    };
    if let Some(workers) = config.server.udp_workers {
        udp_options.workers = workers.max(1);
    }
    let mut responder = Responder::new(Arc::clone(&registry), Arc::clone(&settings))
        .with_rate_limit(dns::RateLimit {
            per_second: config.server.rate_limit_per_second,
            ..dns::RateLimit::default()
        });
    if config.server.rate_limit_per_second > 0 {
        info!(
            per_second = config.server.rate_limit_per_second,
            "UDP response-rate limiting per client subnet (/24, /56) is on"
        );
    }
    // The host's own addresses count as the host asking (scoping fails closed for strangers).
    responder.host_addresses().refresh();
    tokio::spawn(dns::host::follow(Arc::clone(responder.host_addresses())));
    if let Some(policy) = forward {
        responder = responder.with_forwarding(policy);
    }
    // HTTP once the responder is whole: `/explain` predicts with it (forwarding included).
    if let (Some(addr), Some(prometheus)) = (config.server.http_listen, prometheus) {
        let http = telemetry::http::serve(
            addr,
            Arc::clone(&registry),
            prometheus,
            Arc::clone(&readiness),
            Arc::new(responder.clone()),
            telemetry::http::HttpOptions {
                allow: config.server.http_allow.clone(),
                max_connections: budget.http_connections,
                spread_max_members: config.server.spread_metric_max_members,
            },
        )
        .await
        .with_context(|| format!("cannot listen for HTTP on {addr}"))?;
        tokio::spawn(async move {
            if let Err(error) = http.await {
                warn!(%error, "HTTP listener stopped");
            }
        });
    }
    // Reloading starts before the listeners are announced, so no edit after that is missed.
    match path {
        Some(path) => {
            static_file::spawn_reloader(
                path,
                source,
                config,
                Arc::clone(&registry),
                // The flags outrank every file loaded, as they did the first.
                move |config| args.apply_to(config),
                move |server| {
                    settings.set_ttl(server.ttl);
                    settings.set_log_queries(server.log_queries);
                },
            );
        }
        None => info!("serving the embedded default; give --config FILE to reload on change"),
    }

    if docker.enabled {
        let options = DockerOptions {
            host: docker.host.clone(),
            policy: Policy {
                include_unhealthy: docker.include_unhealthy,
                skip_swarm_tasks: swarm.enabled,
                // Told by the engine itself when the source connects.
                ..Policy::default()
            },
            max_pending_events: docker.max_pending_events,
            reconcile: Duration::from_secs(docker.reconcile_secs),
        };
        let mut source = DockerSource::new(options, Arc::clone(&registry))
            .with_ready(ready_signal(&readiness, "docker"));
        if docker.attach_bridges || docker.attach_default_bridge {
            let (tx, rx) = tokio::sync::mpsc::channel(64);
            source = source.with_bridges(tx, docker.attach_bridges, docker.attach_default_bridge);
            tokio::spawn(dns::follow_gateways(
                rx,
                responder.clone(),
                docker.bridge_port,
                Arc::clone(&admission),
            ));
        }
        tokio::spawn(source.run());
    }
    if swarm.enabled {
        let options = SwarmOptions {
            host: swarm.host.clone().or_else(|| docker.host.clone()),
            poll: Duration::from_millis(swarm.poll_interval_ms),
        };
        let source = SwarmSource::new(options, Arc::clone(&registry))
            .with_ready(ready_signal(&readiness, "swarm"));
        tokio::spawn(source.run());
    }
    let listeners = dns::bind(&listen, responder, admission, udp_options)
        .await
        .context("cannot open the DNS listeners")?;
    readiness.listeners_up();
    // Under systemd (Type=notify): READY=1 when /readyz would say so, then the watchdog.
    telemetry::systemd::spawn(Arc::clone(&readiness));

    tokio::select! {
        result = listeners.run() => result,
        _ = shutdown_signal() => {
            info!("shutting down");
            Ok(())
        }
    }
}

/// A sender that marks `source` as synced in `readiness` when it fires.
fn ready_signal(
    readiness: &Arc<Readiness>,
    source: &'static str,
) -> tokio::sync::oneshot::Sender<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let readiness = Arc::clone(readiness);
    tokio::spawn(async move {
        if rx.await.is_ok() {
            readiness.synced(source);
            info!(source, "first sync done");
        }
    });
    tx
}

/// Raises the descriptor limit and sizes the TCP, HTTP and forwarding pools within it.
fn plan_descriptors(config: &Config) -> fd_budget::Budget {
    let limit = fd_budget::raise().unwrap_or_else(|error| {
        warn!(%error, "cannot read or raise the open-file limit; assuming 1024");
        1024
    });
    let budget = fd_budget::plan(
        limit,
        config.server.tcp_max_connections,
        config.server.tcp_max_connections_per_client,
        config.forward.max_in_flight,
    );
    info!(
        open_files = limit,
        tcp_connections = budget.tcp_connections,
        tcp_waiting = budget.tcp_waiting,
        http_connections = budget.http_connections,
        http_loopback = budget.http_loopback,
        forwards = budget.forwards,
        reserved = fd_budget::RESERVED,
        planned = budget.total(),
        "file descriptors planned"
    );
    if budget.tcp_connections < config.server.tcp_max_connections
        || budget.forwards < config.forward.max_in_flight
    {
        warn!(
            open_files = limit,
            "the open-file limit is lower than the configured TCP and forwarding caps; they were lowered to fit (raise `ulimit -n`, or LimitNOFILE=, to get them back)"
        );
    }
    budget
}

/// The forwarder and its policy, or `None` when forwarding is off. On with no usable upstream,
/// the forwarder has none and every forward fails (SERVFAIL): the askers still hear "cannot
/// answer now", not REFUSED. At most `max_in_flight` forwards (sockets) at once: the
/// config's, within the descriptor budget. `upstream_flag`: the upstreams came from
/// `--upstream` (or NETALIAS_UPSTREAM), not the file.
fn forward_policy(
    config: &Config,
    max_in_flight: usize,
    upstream_flag: bool,
) -> anyhow::Result<Option<ForwardPolicy>> {
    let forward = &config.forward;
    if !forward.enabled {
        return Ok(None);
    }
    let mut own = config.server.listen.clone();
    if config.docker.attach_bridges || config.docker.attach_default_bridge {
        // Gateway listeners come and go; any local address on that port is us.
        own.push(SocketAddr::from(([0, 0, 0, 0], config.docker.bridge_port)));
    }
    let given = (
        forward.upstream_addrs(),
        if upstream_flag {
            "--upstream"
        } else {
            "forward.upstreams"
        },
    );
    let (upstreams, from) = match choose_upstreams(Some(given), &forward.resolv_conf, &own) {
        Err(error) => {
            // Local names are still worth serving; say loudly why others fail.
            warn!(%error, "forwarding is on but no upstreams are given and resolv.conf is unusable; names netalias does not own get SERVFAIL (give --upstream)");
            (Vec::new(), None)
        }
        Ok(chosen) => (chosen.upstreams, Some(chosen.from)),
    };
    match &from {
        // Said above already: resolv.conf could not be read.
        None => {}
        Some(from) if upstreams.is_empty() => warn!(
            from = ?from,
            "forwarding is on but no usable upstream is left; names netalias does not own get SERVFAIL (give --upstream)"
        ),
        Some(from) => {
            info!(upstreams = ?upstreams, from = ?from, "forwarding names netalias does not own")
        }
    }
    if forward.allow_any_client {
        warn!("forwarding for any client: this is an open resolver; keep it off public interfaces");
    }
    let settings = ForwardSettings {
        upstreams,
        timeout: Duration::from_millis(forward.timeout_ms),
        max_in_flight,
        max_in_flight_per_client: forward
            .max_in_flight_per_client
            .unwrap_or(max_in_flight / 4)
            .max(1),
        cache: CacheLimits {
            entries: forward.cache_entries,
            max_bytes: forward.cache_max_bytes,
            max_ttl: forward.cache_max_ttl_secs,
            serve_stale: forward.serve_stale_secs,
        },
    };
    Ok(Some(ForwardPolicy {
        forwarder: Forwarder::new(&settings),
        allow_any_client: forward.allow_any_client,
    }))
}

fn provision(command: ProvisionCommand) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(error) => {
            eprintln!("netalias: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run_provision(command)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("netalias provision: {}", report(&error));
            ExitCode::FAILURE
        }
    }
}

async fn run_provision(command: ProvisionCommand) -> anyhow::Result<ExitCode> {
    let args = match &command {
        ProvisionCommand::Plan(a) | ProvisionCommand::Status(a) => a,
        ProvisionCommand::Apply { args, .. } | ProvisionCommand::Destroy { args, .. } => args,
    };
    let adopt = args.adopt;
    // Validation first: a bad file creates nothing and never reaches the engine.
    let stack = Stack::load(&args.file)?;
    for warning in selinux_warnings(&stack) {
        eprintln!("warning: {warning}");
    }
    let docker = match &args.docker_host {
        Some(host) => bollard::Docker::connect_with_host(host),
        None => bollard::Docker::connect_with_defaults(),
    }
    .map_err(ProvisionError::Connect)?
    .negotiate_version()
    .await
    .map_err(ProvisionError::Connect)?;
    let engine = read_engine(&docker).await?;
    match command {
        ProvisionCommand::Plan(_) => {
            println!("{}", plan(&stack, &engine, adopt)?);
            Ok(ExitCode::SUCCESS)
        }
        ProvisionCommand::Status(_) => {
            let plan = plan(&stack, &engine, adopt)?;
            println!("{plan}");
            Ok(if plan.changes() == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        ProvisionCommand::Apply { recreate, .. } => {
            let plan = plan(&stack, &engine, adopt)?;
            if plan.changes() == 0 {
                println!("stack {}: no changes", stack.name());
                return Ok(ExitCode::SUCCESS);
            }
            let started = std::time::Instant::now();
            let summary = apply(&docker, &stack, &plan, ApplyOptions { recreate })
                .await
                .context("apply stopped; what is listed above was done, and running apply again continues from there")?;
            println!(
                "stack {}: {summary} in {:.1} s",
                stack.name(),
                started.elapsed().as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
        ProvisionCommand::Destroy { volumes, .. } => {
            let summary = destroy(&docker, &stack, volumes, adopt).await?;
            println!("stack {}: {summary}", stack.name());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `netalias host-dns`: the snippet for the host's resolver, printed or written.
fn host_dns(
    resolver: Option<netalias::host_dns::HostResolver>,
    listen: Option<SocketAddr>,
    domain: Option<String>,
    config: Option<std::path::PathBuf>,
    write: bool,
    root: &std::path::Path,
) -> anyhow::Result<()> {
    use netalias::host_dns;
    let config = match &config {
        Some(path) => Config::load(path).map_err(|e| anyhow::anyhow!("{e}"))?,
        None => Config::embedded_default().context("the embedded default config is invalid")?,
    };
    let at = listen
        .or_else(|| config.server.listen.first().copied())
        .context("no listen address: give --listen")?;
    let domain = domain
        .or_else(|| config.server.domain().map(str::to_string))
        .unwrap_or_default();
    let resolver = resolver
        .or_else(|| host_dns::detect(root))
        .ok_or(host_dns::HostDnsError::NoneFound)?;
    let snippet = host_dns::snippet(resolver, &domain, at)?;
    let path = root.join(&snippet.path);
    if write {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(&path, &snippet.text)
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("wrote {}; now run: {}", path.display(), snippet.apply);
        println!("to undo: {}", snippet.undo(root));
    } else {
        println!(
            "# {} ({:?}); then: {}",
            path.display(),
            resolver,
            snippet.apply
        );
        print!("{}", snippet.text);
    }
    Ok(())
}

/// GET `path` with `query` from a running server's HTTP endpoint: its status and body,
/// whatever the status; `Err` says why it could not be asked (the one place the subcommands
/// that talk to a running server make a request).
fn ask_server(
    http: SocketAddr,
    path: &str,
    query: &[(&str, &str)],
) -> Result<(ureq::http::StatusCode, String), String> {
    let url = format!("http://{http}{path}");
    let mut request = ureq::get(&url).config().http_status_as_error(false).build();
    for (key, value) in query {
        request = request.query(key, value);
    }
    let mut response = request
        .call()
        .map_err(|error| format!("cannot reach {url} ({error}); is `server.http_listen` set?"))?;
    let body = response
        .body_mut()
        .read_to_string()
        .map_err(|error| format!("cannot read {url}'s answer ({error})"))?;
    Ok((response.status(), body))
}

/// `netalias explain`: the running server's account of one name; 1 when it cannot give one.
fn explain(name: &str, from: Option<&str>, qtype: &str, http: SocketAddr) -> ExitCode {
    let mut query = vec![("name", name), ("type", qtype)];
    if let Some(from) = from {
        query.push(("from", from));
    }
    match ask_server(http, "/explain", &query) {
        Ok((status, body)) => {
            print!("{body}");
            if status.is_success() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("netalias: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `netalias records`: the running server's table.
fn print_records(http: SocketAddr) -> anyhow::Result<()> {
    let (status, body) = ask_server(http, "/records", &[]).map_err(anyhow::Error::msg)?;
    if !status.is_success() {
        anyhow::bail!("/records answered {status}: {}", body.trim());
    }
    let records: BTreeMap<String, BTreeMap<String, Vec<String>>> =
        serde_json::from_str(&body).context("/records did not return the expected JSON")?;
    println!(
        "{:<24} {:<32} MEMBERS (next answer's order)",
        "NETWORK", "NAME"
    );
    for (network, names) in records {
        for (name, members) in names {
            // SRV data has spaces of its own ("0 1 8080 web1.net."): a comma between those.
            let separator = if members.iter().any(|m| m.contains(' ')) {
                ", "
            } else {
                " "
            };
            println!("{network:<24} {name:<32} {}", members.join(separator));
        }
    }
    Ok(())
}

/// `netalias health`: 0 when /healthz (or /readyz) says so; otherwise 1, saying why (for
/// /readyz, which source has not synced yet).
fn health(http: SocketAddr, ready: bool) -> ExitCode {
    let path = if ready { "/readyz" } else { "/healthz" };
    match ask_server(http, path, &[]) {
        Ok((status, _)) if status.is_success() => ExitCode::SUCCESS,
        Ok((status, body)) => {
            eprintln!("netalias: {path}: {status} {}", body.trim());
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("netalias: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
