//! HTTP beside the DNS: `/metrics` (Prometheus), `/healthz`, `/readyz` and `/records`.
//!
//! Read-only: it renders what the registry and the recorder hold and never changes them.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use axum::{Json, Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use metrics::gauge;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tracing::info;

use crate::registry::Registry;

/// What `/readyz` waits for.
#[derive(Debug, Default)]
pub struct Readiness {
    listeners_up: AtomicBool,
    first_sync_done: AtomicBool,
}

impl Readiness {
    /// `needs_sync`: a source (Docker) must finish its first snapshot before we are ready.
    pub fn new(needs_sync: bool) -> Arc<Readiness> {
        let r = Readiness::default();
        r.first_sync_done.store(!needs_sync, Ordering::Relaxed);
        Arc::new(r)
    }
    pub fn listeners_up(&self) {
        self.listeners_up.store(true, Ordering::Relaxed);
    }
    pub fn first_sync_done(&self) {
        self.first_sync_done.store(true, Ordering::Relaxed);
    }
    pub fn is_ready(&self) -> bool {
        self.listeners_up.load(Ordering::Relaxed) && self.first_sync_done.load(Ordering::Relaxed)
    }
}

struct HttpState {
    registry: Arc<Registry>,
    prometheus: PrometheusHandle,
    readiness: Arc<Readiness>,
}

/// Binds `addr` (so an error is reported before serving starts) and serves until the process ends.
pub async fn serve(
    addr: SocketAddr,
    registry: Arc<Registry>,
    prometheus: PrometheusHandle,
    readiness: Arc<Readiness>,
) -> std::io::Result<impl std::future::Future<Output = std::io::Result<()>>> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let state = Arc::new(HttpState {
        registry,
        prometheus,
        readiness,
    });
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/records", get(records))
        .with_state(state);
    info!(addr = %local, "http listening: /metrics /healthz /readyz /records");
    Ok(async move { axum::serve(listener, app).await })
}

async fn metrics(State(state): State<Arc<HttpState>>) -> impl IntoResponse {
    let sizes = state.registry.sizes();
    gauge!("netalias_registry_networks").set(sizes.networks as f64);
    gauge!("netalias_registry_endpoints").set(sizes.endpoints as f64);
    gauge!("netalias_registry_names").set(sizes.names as f64);
    if let Some(bytes) = resident_memory_bytes() {
        gauge!("netalias_process_resident_memory_bytes").set(bytes as f64);
    }
    (
        [("content-type", "text/plain; version=0.0.4")],
        state.prometheus.render(),
    )
}

async fn readyz(State(state): State<Arc<HttpState>>) -> impl IntoResponse {
    if state.readiness.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

/// networks → names → members, in the order the next answer will give them.
async fn records(
    State(state): State<Arc<HttpState>>,
) -> Json<BTreeMap<String, BTreeMap<String, Vec<String>>>> {
    Json(state.registry.records())
}

/// This process's resident memory, from /proc (Linux); `None` elsewhere.
fn resident_memory_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions; it only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}
