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

use tracing::{debug, warn};

/// The first wait after a lost session; it doubles up to [`BACKOFF_CAP`].
pub const BACKOFF_FIRST: Duration = Duration::from_millis(250);
pub const BACKOFF_CAP: Duration = Duration::from_secs(5);

pub trait LiveSource: Send {
    /// What the source follows, for the warning ("the Docker engine").
    const WHAT: &'static str;
    type Error: Display + Send;
    /// Connects, syncs and follows until something fails; returns what did.
    fn session(&mut self) -> impl Future<Output = Self::Error> + Send;
    /// What it publishes through: its staleness and its syncs are kept there.
    fn publisher(&self) -> &crate::source::publish::Publisher;
    /// How many endpoints it holds, for the warning.
    fn endpoints_held(&self) -> usize;
    /// Marks what the source published as stale (its gauge), or fresh again.
    fn set_stale(&self, stale: bool) {
        self.publisher().set_stale(stale);
    }
    /// How many syncs it has applied since the process started: none yet means it has never
    /// been reached, which is said differently from losing it.
    fn syncs(&self) -> u64 {
        self.publisher().syncs()
    }
}

/// Follows `source` forever, reconnecting with capped backoff. Each failure is logged once:
/// the same error again, while the source stays away, is logged at debug.
pub async fn run<S: LiveSource>(mut source: S) {
    let mut backoff = BACKOFF_FIRST;
    let mut said: Option<String> = None;
    loop {
        let started = Instant::now();
        let syncs_before = source.syncs();
        let error = source.session().await;
        source.set_stale(true);
        let text = error.to_string();
        if source.syncs() > syncs_before {
            said = None; // it was back: a new failure is news
        }
        let retry_in_ms = backoff.as_millis() as u64;
        if said.as_deref() == Some(text.as_str()) {
            debug!(error = %text, retry_in_ms, "{} still away", S::WHAT);
        } else if source.syncs() == 0 {
            warn!(
                error = %text,
                retry_in_ms,
                "{} has not been reached yet; nothing of it is served until it is (retrying every {} s at most)",
                S::WHAT,
                BACKOFF_CAP.as_secs()
            );
        } else {
            warn!(
                error = %text,
                retry_in_ms,
                endpoints = source.endpoints_held(),
                "lost {}; serving the last known records (stale) until it is back",
                S::WHAT
            );
        }
        said = Some(text);
        if started.elapsed() > BACKOFF_CAP * 2 {
            backoff = BACKOFF_FIRST; // the session had been healthy for a while
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_CAP);
    }
}
