//! `netalias serve`: the config loaded (or the embedded default), the command line applied and
//! checked, then the library server started (`netalias::server::start`) on a multi-threaded
//! runtime until SIGINT or SIGTERM. Assembly is the library's; nothing is wired here.

use anyhow::Context;
use netalias::{
    cli::ServeArgs,
    config::{Config, LoadError},
    server::{self, Launch},
};
use tracing::info;

pub(crate) fn serve(args: ServeArgs) -> anyhow::Result<()> {
    netalias::heap::tune();
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
    config.check_serving().map_err(anyhow::Error::msg)?;
    if path.is_none() && config.drop_demo_for_live_sources() {
        info!("no --config and a live source is on: the embedded demo records are not served");
    }
    // `--upstream` (or NETALIAS_UPSTREAM) replaced `forward.upstreams`: the log names which.
    let upstreams_from = if args.upstream.is_empty() {
        "forward.upstreams"
    } else {
        "--upstream"
    };
    let launch = Launch {
        config,
        path,
        // The flags outrank every file a reload loads, as they did the first.
        overrides: Box::new(move |config| args.apply_to(config)),
        upstreams_from,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let running = server::start(launch).await?;
        tokio::select! {
            result = running.serve() => result,
            _ = shutdown_signal() => {
                info!("shutting down");
                Ok(())
            }
        }
    })
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
