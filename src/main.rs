//! The binary edge: parse the CLI, start tracing, dispatch. Errors become `anyhow` here.

use std::{process::ExitCode, sync::Arc, time::Duration};

use anyhow::Context;
use clap::Parser;
use netalias::{
    cli::{Cli, Command, ServeArgs},
    config::{Config, LoadError},
    dns::{self, Responder, Settings},
    registry::Registry,
    source::{
        docker::{DockerOptions, DockerSource, Policy},
        static_file::{self, StaticSource},
    },
};
use tracing::info;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli.log_level);
    let result = match cli.command {
        Command::CheckConfig { file } => return check_config(&file),
        Command::Serve(args) => serve(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("netalias: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(directive: &str) {
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
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
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
    if !args.listen.is_empty() {
        config.server.listen = args.listen.clone();
    }
    if let Some(ttl) = args.ttl {
        config.server.ttl = ttl;
    }
    let docker = &mut config.docker;
    docker.enabled |= args.docker;
    docker.include_unhealthy |= args.include_unhealthy;
    docker.attach_bridges |= args.attach_bridges;
    if args.docker_host.is_some() {
        docker.host = args.docker_host.clone();
    }
    if let Some(port) = args.bridge_port {
        docker.bridge_port = port;
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
    runtime.block_on(run(config, path, args.ttl.is_some()))
}

async fn run(
    config: Config,
    path: Option<std::path::PathBuf>,
    ttl_pinned: bool,
) -> anyhow::Result<()> {
    let registry =
        Arc::new(Registry::new(config.server.domain()).context("cannot build the registry")?);
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

    let settings = Arc::new(Settings::new(
        config.server.ttl,
        config.server.max_udp_payload,
    ));
    let listen = config.server.listen.clone();
    let tcp_idle_timeout = Duration::from_secs(config.server.tcp_idle_timeout_secs);
    let docker = config.docker.clone();
    // Reloading starts before the listeners are announced, so no edit after that is missed.
    match path {
        Some(path) => {
            let ttl_override = ttl_pinned.then(|| settings.ttl());
            static_file::spawn_reloader(
                path,
                source,
                config,
                Arc::clone(&registry),
                Arc::clone(&settings),
                ttl_override,
            );
        }
        None => info!("serving the embedded default; give --config FILE to reload on change"),
    }

    let responder = Responder::new(Arc::clone(&registry), settings);
    if docker.enabled {
        let options = DockerOptions {
            host: docker.host.clone(),
            policy: Policy {
                include_unhealthy: docker.include_unhealthy,
            },
        };
        let mut source = DockerSource::new(options, Arc::clone(&registry));
        if docker.attach_bridges {
            let (tx, rx) = tokio::sync::mpsc::channel(64);
            source = source.with_gateways(tx);
            tokio::spawn(dns::follow_gateways(
                rx,
                responder.clone(),
                docker.bridge_port,
                tcp_idle_timeout,
            ));
        }
        tokio::spawn(source.run());
    }
    let listeners = dns::bind(&listen, responder, tcp_idle_timeout)
        .await
        .context("cannot open the DNS listeners")?;

    tokio::select! {
        result = listeners.run() => result,
        _ = shutdown_signal() => {
            info!("shutting down");
            Ok(())
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
