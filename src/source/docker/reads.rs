//! Container reads in flight beside the event loop. An inspect waits on the engine's lock for
//! its container while dockerd starts or cleans it up (102–146 ms measured); read one at a
//! time, a burst of starts queued every later event behind those waits (issue 31: the loop
//! sat blocked 36 of 38 s over 350 starts and removals). Here each read runs on its own task,
//! at most [`MAX_READS`] at once, and the loop applies each as it lands.
//!
//! A read answers only for the newest event of its container: a later event (a newer read, or
//! a removal applied without one) makes an older read stale, and its result is dropped, so a
//! slow read of a start can never bring back a container that died meanwhile. It decides
//! nothing about what the facts mean: the loop hands them to `DockerState`.

use std::collections::HashMap;

use bollard::Docker;
use tokio::task::JoinSet;

use super::{DockerSourceError, Policy, client, state::ContainerFacts};

/// Reads at once: enough to keep a burst moving, few enough not to crowd the engine.
pub const MAX_READS: usize = 16;

type Landed = (String, u64, Result<ContainerFacts, DockerSourceError>);

/// The newest event's number for each container with a read or a removal pending: the pure
/// part, tested alone.
#[derive(Debug, Default)]
pub struct Newest {
    next: u64,
    by_container: HashMap<String, u64>,
}

impl Newest {
    /// A new event for `id`: its number; every earlier one of `id` is stale from now.
    pub fn bump(&mut self, id: &str) -> u64 {
        self.next += 1;
        self.by_container.insert(id.to_string(), self.next);
        self.next
    }

    /// Whether the read numbered `seq` of `id` is still the newest; if so it is done.
    pub fn take(&mut self, id: &str, seq: u64) -> bool {
        if self.by_container.get(id) == Some(&seq) {
            self.by_container.remove(id);
            true
        } else {
            false
        }
    }

    pub fn clear(&mut self) {
        self.by_container.clear();
    }
}

/// The reads in flight, and which of them still count.
#[derive(Default)]
pub struct Reads {
    set: JoinSet<Landed>,
    newest: Newest,
}

impl Reads {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.set.len() >= MAX_READS
    }

    /// Starts reading `id` (the caller makes room first: see `is_full`).
    pub fn begin(&mut self, docker: &Docker, id: &str, policy: Policy) {
        let seq = self.newest.bump(id);
        let (docker, id) = (docker.clone(), id.to_string());
        self.set.spawn(async move {
            let facts = client::container(&docker, &id, policy).await;
            (id, seq, facts)
        });
    }

    /// `id` changed without a read (a removal applied from the event): any read of it in
    /// flight is stale.
    pub fn supersede(&mut self, id: &str) {
        self.newest.bump(id);
    }

    /// The next read that still counts, as it lands; None when none is in flight.
    pub async fn next(&mut self) -> Option<(String, Result<ContainerFacts, DockerSourceError>)> {
        while let Some(joined) = self.set.join_next().await {
            let Ok((id, seq, facts)) = joined else {
                continue; // aborted by `clear`
            };
            if self.newest.take(&id, seq) {
                return Some((id, facts));
            }
        }
        None
    }

    /// Drops every read in flight (a snapshot or reconcile reads everything afresh).
    pub fn clear(&mut self) {
        self.set.abort_all();
        self.newest.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::Newest;

    #[test]
    fn only_the_newest_read_of_a_container_counts() {
        let mut newest = Newest::default();
        let start = newest.bump("a");
        let other = newest.bump("b");
        // `a` died while its start was being read: the removal bumps it.
        let _died = newest.bump("a");
        assert!(!newest.take("a", start), "a stale read of a is dropped");
        assert!(newest.take("b", other), "b's read is b's newest");
        assert!(!newest.take("b", other), "and counts once");
        let again = newest.bump("a");
        assert!(newest.take("a", again));
        newest.bump("c");
        newest.clear();
        assert!(!newest.take("c", 4));
    }
}
