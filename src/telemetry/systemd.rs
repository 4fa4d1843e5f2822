//! systemd integration, for `config/netalias.service`: `READY=1` once the listeners are up and
//! every live source has synced once (what `/readyz` waits for), with a STATUS line, then
//! `WATCHDOG=1` at half the unit's `WatchdogSec` for as long as the runtime runs its tasks.
//!
//! It does nothing unless systemd started the process (`NOTIFY_SOCKET` set); a failure to
//! notify is logged, never fatal. It reads readiness and sends datagrams; it changes nothing.

use std::{sync::Arc, time::Duration};

use sd_notify::NotifyState;
use tracing::{debug, warn};

use super::http::Readiness;

/// How often readiness is looked at until it holds.
const POLL: Duration = Duration::from_millis(100);

/// Whether systemd asked to be told (`NOTIFY_SOCKET`).
pub fn supervised() -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some()
}

/// Tells systemd when netalias is ready, then keeps its watchdog fed. Must be called inside
/// the runtime; returns at once when not under systemd.
pub fn spawn(readiness: Arc<Readiness>) {
    if !supervised() {
        return;
    }
    let mut watchdog_usec = 0;
    let watchdog = sd_notify::watchdog_enabled(false, &mut watchdog_usec)
        .then(|| Duration::from_micros(watchdog_usec) / 2);
    tokio::spawn(async move {
        while !readiness.is_ready() {
            tokio::time::sleep(POLL).await;
        }
        send(&[
            NotifyState::Ready,
            NotifyState::Status("answering; every source has synced"),
        ]);
        let Some(every) = watchdog else { return };
        debug!(
            every_ms = every.as_millis() as u64,
            "feeding the systemd watchdog"
        );
        let mut ticks = tokio::time::interval(every.max(Duration::from_millis(10)));
        loop {
            ticks.tick().await;
            send(&[NotifyState::Watchdog]);
        }
    });
}

fn send(states: &[NotifyState]) {
    if let Err(error) = sd_notify::notify(false, states) {
        warn!(%error, "cannot notify systemd");
    }
}
