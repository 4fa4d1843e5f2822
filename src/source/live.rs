//! The loop every live source (Docker, Swarm) runs, written once: a session until it fails,
//! then the stale mark, one warning, capped backoff, and a new session, which starts from a
//! fresh snapshot and so reconciles whatever changed meanwhile. The records already served
//! stay as they were while the source is away.
//!
//! It knows nothing of what a source reads or publishes; a source is one [`LiveSource`]
//! impl and one line of wiring.

use std::{
    fmt::Display,
    future::Future,
    time::{Duration, Instant},
};

use tracing::warn;

/// The first wait after a lost session; it doubles up to [`BACKOFF_CAP`].
pub const BACKOFF_FIRST: Duration = Duration::from_millis(250);
pub const BACKOFF_CAP: Duration = Duration::from_secs(5);

pub trait LiveSource: Send {
    /// What the source follows, for the warning ("the Docker engine").
    const WHAT: &'static str;
    type Error: Display + Send;
    /// Connects, syncs and follows until something fails; returns what did.
    fn session(&mut self) -> impl Future<Output = Self::Error> + Send;
    /// Marks what the source published as stale (its gauge), or fresh again.
    fn set_stale(&self, stale: bool);
    /// How many endpoints it holds, for the warning.
    fn endpoints_held(&self) -> usize;
}

/// Follows `source` forever, reconnecting with capped backoff.
pub async fn run<S: LiveSource>(mut source: S) {
    let mut backoff = BACKOFF_FIRST;
    loop {
        let started = Instant::now();
        let error = source.session().await;
        source.set_stale(true);
        warn!(
            error = %error,
            retry_in_ms = backoff.as_millis() as u64,
            endpoints = source.endpoints_held(),
            "lost {}; serving the last known records (stale) until it is back",
            S::WHAT
        );
        if started.elapsed() > BACKOFF_CAP * 2 {
            backoff = BACKOFF_FIRST; // the session had been healthy for a while
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_CAP);
    }
}
