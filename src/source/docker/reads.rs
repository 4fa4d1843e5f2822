//! Container reads in flight beside the event loop, which applies each as it lands: the loop
//! itself never waits on the engine.
//!
//! Three kinds, each bounded, each with its own queue so that none waits behind another:
//! - list reads ([`Ask::Listed`], [`Ask::Started`]): the engine's container list filtered by
//!   ID, which reads dockerd's lock-free view (about 1 ms, also while the engine starts the
//!   container): what publishes a start (`listed.rs`); a start's may first wait (up to
//!   500 ms) for the create-time read of `early.rs`, holding its place;
//! - connect reads ([`Ask::Connected`]): a network's inspect (as lock-free) and, without a
//!   create-time read, the list entry, after waiting up to 2 s for that read;
//! - inspects ([`Ask::Inspect`]), which wait on the engine's lock for their container while
//!   dockerd starts or cleans it up (102–146 ms measured): kept for what only they say (a
//!   custom hostname, aliases), for engines whose list is not used, and for the reconcile.
//!
//! A read answers only for the newest event of its container: a later event (a newer read, or
//! a removal applied without one) makes an older read stale, and its result is dropped, so a
//! slow read of a start can never bring back a container that died meanwhile. An inspect and a
//! list read may answer the same event; once the inspect has landed, the list read (less
//! complete) is dropped. It decides nothing about what the facts mean: the loop does, with
//! `listed.rs` and `DockerState`.

use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
    time::Duration,
};

use bollard::{
    Docker,
    models::{ContainerInspectResponse, ContainerSummary},
    query_parameters::{ListContainersOptions, ListContainersOptionsBuilder},
};
use tokio::task::JoinSet;

use super::{DockerSourceError, Policy, client, early, listed::Implies, state::ContainerFacts};

/// Inspects at once: enough to keep a burst moving, few enough not to crowd the engine.
pub const MAX_READS: usize = 16;
/// List and network reads at once: each is about 1 ms and takes no container lock.
pub const MAX_LISTS: usize = 64;
/// Connect reads at once ([`Ask::Connected`]): each may wait up to 2 s for its create-time
/// read before its requests, so they have places of their own: among the list reads, a
/// burst of containers on two networks each (32 creates read at once) could hold all 64
/// while the starts' and disconnects' list reads queued behind them (review of stop 46).
pub const MAX_CONNECTS: usize = 64;

/// Why a read was asked, handed back with its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// A container event, and what it says must be true of the container.
    Event(Implies),
    /// A `network connect` of the container to the network with this ID.
    Connect,
    /// To complete or settle what an earlier read of the same event left open.
    Refine,
    /// The periodic reconcile: a change it makes is a correction (counted).
    Reconcile,
}

/// What to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    /// The container's entry in the engine's list (all states).
    Listed,
    /// At `network connect` (network by ID, as the event gives it): the create-time read of
    /// `early.rs`, waited for up to `wait`; the container's addresses on the network, from the
    /// network's inspect; and its list entry when there is no create-time read. When that
    /// read lost the race with the start and lands as the start is done, the container as it
    /// read it ([`Answer::StartedEarly`]), when that comes before the `start` event.
    Connected { network: String, wait: Duration },
    /// The container's inspect.
    Inspect,
    /// At `start`: the create-time read of `early.rs` that lost the race with the start and
    /// waited on its lock, so read the container started (an inspect's facts), waited for up
    /// to `wait`, and taken (its connect, if still waiting, had a copy: see
    /// `early::Created::wait`).
    Started { wait: Duration },
}

/// What a read found.
#[derive(Debug)]
pub enum Answer {
    /// The list entry; None when the engine lists no such container.
    Listed(Option<Box<ContainerSummary>>),
    Connected {
        /// The create-time read is there (`early::Created`).
        created: bool,
        /// The network's name and the container's addresses there, when it lists it.
        on: Option<(String, Vec<IpAddr>)>,
        /// The list entry, read only without a create-time read.
        listed: Option<Box<ContainerSummary>>,
    },
    Inspected(ContainerFacts),
    /// At `network connect`: the create-time read that waited on the start and landed as it
    /// was done (`early::Waited::Started`): the container whole, as an inspect says it.
    StartedEarly(ContainerFacts),
    /// Nothing to apply (a create-time read that did not find the container started).
    Nothing,
}

/// A read that landed and still counts.
#[derive(Debug)]
pub struct Landed {
    pub id: String,
    /// The number of the event it answers ([`Newest`]).
    pub seq: u64,
    pub why: Why,
    pub answer: Result<Answer, DockerSourceError>,
    /// Whether it was an inspect.
    inspect: bool,
}

/// The newest event's number for each container with a read pending, how many reads of it
/// are pending, and whether the newest event's inspect has landed: the pure part, tested
/// alone.
#[derive(Debug, Default)]
pub struct Newest {
    next: u64,
    by_container: HashMap<String, Entry>,
}

#[derive(Debug)]
struct Entry {
    seq: u64,
    pending: u32,
    /// The newest event's inspect is asked and has not landed.
    inspecting: bool,
    /// The newest event's inspect has landed.
    inspected: bool,
}

impl Newest {
    /// A new event for `id` with a read (an inspect or not): its number; every earlier one
    /// of `id` is stale.
    pub fn bump(&mut self, id: &str, inspect: bool) -> u64 {
        self.next += 1;
        let entry = self.by_container.entry(id.to_string()).or_insert(Entry {
            seq: 0,
            pending: 0,
            inspecting: false,
            inspected: false,
        });
        entry.seq = self.next;
        entry.pending += 1;
        entry.inspecting = inspect;
        entry.inspected = false;
        self.next
    }

    /// One more read answering event `seq` of `id`, asked in the same turn of the loop as
    /// that event or as a read of it landed: false when `seq` is no longer the newest, or
    /// when it is an inspect and that event's inspect is already on its way or landed.
    pub fn also(&mut self, id: &str, seq: u64, inspect: bool) -> bool {
        match self.by_container.get_mut(id) {
            Some(entry) if entry.seq != seq => false,
            Some(entry) if inspect && (entry.inspecting || entry.inspected) => false,
            Some(entry) => {
                entry.pending += 1;
                entry.inspecting |= inspect;
                true
            }
            None => {
                self.by_container.insert(
                    id.to_string(),
                    Entry {
                        seq,
                        pending: 1,
                        inspecting: inspect,
                        inspected: false,
                    },
                );
                true
            }
        }
    }

    /// `id` changed without a read (a removal applied from its event): reads of it pending
    /// are stale.
    pub fn supersede(&mut self, id: &str) {
        if let Some(entry) = self.by_container.get_mut(id) {
            self.next += 1;
            entry.seq = self.next;
            entry.inspecting = false;
            entry.inspected = false;
        }
    }

    /// Whether `seq` is still the newest event of `id` (for a read not started yet).
    pub fn is_newest(&self, id: &str, seq: u64) -> bool {
        self.by_container.get(id).is_some_and(|e| e.seq == seq)
    }

    /// A read of `id` numbered `seq` is done (landed, or dropped before it started): whether
    /// it counts. It counts when `seq` is the newest, unless it is a list read and the
    /// inspect of the same event landed first.
    pub fn land(&mut self, id: &str, seq: u64, inspect: bool) -> bool {
        let Some(entry) = self.by_container.get_mut(id) else {
            return false;
        };
        entry.pending = entry.pending.saturating_sub(1);
        let counts = entry.seq == seq && (inspect || !entry.inspected);
        if counts && inspect {
            entry.inspecting = false;
            entry.inspected = true;
        }
        if entry.pending == 0 {
            self.by_container.remove(id);
        }
        counts
    }

    pub fn clear(&mut self) {
        self.by_container.clear();
    }

    #[cfg(test)]
    fn pending(&self) -> usize {
        self.by_container.len()
    }
}

struct Job {
    id: String,
    seq: u64,
    why: Why,
    ask: Ask,
}

/// One kind of read: at most `max` in flight, the rest queued in order.
struct Pool {
    max: usize,
    set: JoinSet<Landed>,
    queued: VecDeque<Job>,
}

impl Pool {
    fn new(max: usize) -> Pool {
        Pool {
            max,
            set: JoinSet::new(),
            queued: VecDeque::new(),
        }
    }
}

/// The reads pending, and which of them still count.
pub struct Reads {
    docker: Option<Docker>,
    policy: Policy,
    created: early::Created,
    lists: Pool,
    connects: Pool,
    inspects: Pool,
    newest: Newest,
}

impl Default for Reads {
    fn default() -> Self {
        Reads {
            docker: None,
            policy: Policy::default(),
            created: early::Created::default(),
            lists: Pool::new(MAX_LISTS),
            connects: Pool::new(MAX_CONNECTS),
            inspects: Pool::new(MAX_READS),
            newest: Newest::default(),
        }
    }
}

impl Reads {
    /// Reads of one session, from `docker`.
    pub fn new(docker: &Docker, policy: Policy, created: early::Created) -> Reads {
        Reads {
            docker: Some(docker.clone()),
            policy,
            created,
            ..Reads::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        // A queue is only waited on while its pool is full (see `fill`).
        self.lists.set.is_empty() && self.connects.set.is_empty() && self.inspects.set.is_empty()
    }

    /// Asks `ask` of container `id` for a new event: earlier reads of `id` are stale. Returns
    /// the event's number, for [`Reads::also`].
    pub fn begin(&mut self, id: &str, why: Why, ask: Ask) -> u64 {
        tracing::trace!(
            id,
            lists = self.lists.set.len(),
            lists_queued = self.lists.queued.len(),
            connects = self.connects.set.len(),
            connects_queued = self.connects.queued.len(),
            inspects = self.inspects.set.len(),
            inspects_queued = self.inspects.queued.len(),
            "read asked"
        );
        let seq = self.newest.bump(id, matches!(ask, Ask::Inspect));
        self.queue(id, seq, why, ask);
        seq
    }

    /// Asks `ask` of `id` too for its event `seq`, in the same turn of the loop as that event
    /// or as a read of it landed: to race, complete or settle it. An inspect already asked
    /// for that event is not asked again.
    pub fn also(&mut self, id: &str, seq: u64, why: Why, ask: Ask) {
        if self.newest.also(id, seq, matches!(ask, Ask::Inspect)) {
            self.queue(id, seq, why, ask);
        }
    }

    /// [`Reads::also`] an inspect, to complete or settle what a read of event `seq` left open.
    pub fn refine(&mut self, id: &str, seq: u64) {
        self.also(id, seq, Why::Refine, Ask::Inspect);
    }

    fn queue(&mut self, id: &str, seq: u64, why: Why, ask: Ask) {
        let job = Job {
            id: id.to_string(),
            seq,
            why,
            ask,
        };
        match job.ask {
            Ask::Inspect => self.inspects.queued.push_back(job),
            Ask::Connected { .. } => self.connects.queued.push_back(job),
            Ask::Listed | Ask::Started { .. } => self.lists.queued.push_back(job),
        }
        self.fill();
    }

    /// `id` changed without a read (a removal applied from the event): any read of it
    /// pending is stale.
    pub fn supersede(&mut self, id: &str) {
        self.newest.supersede(id);
    }

    /// Starts queued reads while there is room, dropping those already stale.
    fn fill(&mut self) {
        let Some(docker) = self.docker.clone() else {
            return;
        };
        for pool in [&mut self.lists, &mut self.connects, &mut self.inspects] {
            while pool.set.len() < pool.max {
                let Some(job) = pool.queued.pop_front() else {
                    break;
                };
                if !self.newest.is_newest(&job.id, job.seq) {
                    let inspect = matches!(job.ask, Ask::Inspect);
                    self.newest.land(&job.id, job.seq, inspect);
                    continue;
                }
                pool.set
                    .spawn(read(docker.clone(), self.policy, self.created.clone(), job));
            }
        }
    }

    /// The next read that still counts, as it lands; None when none is pending.
    pub async fn next(&mut self) -> Option<Landed> {
        loop {
            self.fill();
            if self.is_empty() {
                return None;
            }
            let joined = tokio::select! {
                Some(joined) = self.lists.set.join_next(), if !self.lists.set.is_empty() => joined,
                Some(joined) = self.connects.set.join_next(), if !self.connects.set.is_empty() => joined,
                Some(joined) = self.inspects.set.join_next(), if !self.inspects.set.is_empty() => joined,
                else => continue,
            };
            let Ok(landed) = joined else {
                continue; // aborted by `clear`
            };
            if self.newest.land(&landed.id, landed.seq, landed.inspect) {
                return Some(landed);
            }
        }
    }

    /// Drops every read pending (a snapshot reads everything afresh).
    pub fn clear(&mut self) {
        for pool in [&mut self.lists, &mut self.connects, &mut self.inspects] {
            pool.set.abort_all();
            pool.queued.clear();
        }
        self.newest.clear();
    }
}

/// Performs one read.
async fn read(docker: Docker, policy: Policy, created: early::Created, job: Job) -> Landed {
    let Job { id, seq, why, ask } = job;
    let started = std::time::Instant::now();
    let answer = match ask {
        Ask::Listed => list_entry(&docker, &id).await.map(Answer::Listed),
        Ask::Inspect => client::container(&docker, &id, policy)
            .await
            .map(Answer::Inspected),
        Ask::Connected { network, wait } => 'connected: {
            let created = match created.wait(&id, &network, wait).await {
                // Read as its start was done, as the `start` event is sent: published now.
                early::Waited::Started(c) => match started_facts(&c, policy) {
                    Some(facts) => break 'connected Ok(Answer::StartedEarly(facts)),
                    None => false,
                },
                early::Waited::Read => true,
                early::Waited::Nothing => false,
            };
            let on = early::addresses_on(&docker, &network, &id).await;
            let listed = if created {
                Ok(None)
            } else {
                list_entry(&docker, &id).await
            };
            listed.map(|listed| Answer::Connected {
                created,
                on,
                listed,
            })
        }
        Ask::Started { wait } => Ok(created
            .wait_started(&id, wait)
            .await
            .and_then(|c| started_facts(&c, policy))
            .map_or(Answer::Nothing, Answer::Inspected)),
    };
    // A read whole: it outranks a list read of the same event.
    let inspect = matches!(answer, Ok(Answer::Inspected(_) | Answer::StartedEarly(_)));
    tracing::trace!(
        id,
        inspect,
        elapsed_us = started.elapsed().as_micros() as u64,
        "container read"
    );
    Landed {
        id,
        seq,
        why,
        answer,
        inspect,
    }
}

/// The facts of a create-time read that waited on the start (`early.rs`); None for a Swarm
/// task, whose gwbridge address is not in its own inspect (its inspect reads it).
fn started_facts(c: &ContainerInspectResponse, policy: Policy) -> Option<ContainerFacts> {
    (!client::is_task(c)).then(|| client::inspected_facts(c, None, policy))
}

/// Container `id`'s entry in the engine's list (any state), from dockerd's lock-free view of
/// its containers (about 1 ms, also while the engine starts or cleans up the container).
async fn list_entry(
    docker: &Docker,
    id: &str,
) -> Result<Option<Box<ContainerSummary>>, DockerSourceError> {
    let filters = HashMap::from([("id", vec![id])]);
    let options: ListContainersOptions = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let listed = docker
        .list_containers(Some(options))
        .await
        .map_err(client::request_error(format!("list container {id}")))?;
    // The filter matches ID prefixes: take the exact one.
    Ok(listed
        .into_iter()
        .find(|c| c.id.as_deref() == Some(id))
        .map(Box::new))
}

#[cfg(test)]
mod tests {
    use super::Newest;

    #[test]
    fn only_the_newest_read_of_a_container_counts() {
        let mut newest = Newest::default();
        let start = newest.bump("a", false);
        let other = newest.bump("b", false);
        // `a` died while its start was being read: the removal supersedes it.
        newest.supersede("a");
        assert!(
            !newest.land("a", start, false),
            "a stale read of a is dropped"
        );
        assert!(newest.land("b", other, false), "b's read is b's newest");
        assert!(!newest.land("b", other, false), "and counts once");
        let again = newest.bump("a", true);
        assert!(newest.land("a", again, true));
        newest.bump("c", false);
        newest.clear();
        assert!(!newest.land("c", 4, false));
        assert_eq!(newest.pending(), 0);
    }

    #[test]
    fn a_refining_inspect_counts_for_its_event_and_outranks_the_list_read() {
        let mut newest = Newest::default();
        let start = newest.bump("a", false);
        // The list read lands first and asks for an inspect of the same event.
        assert!(newest.land("a", start, false));
        assert!(newest.also("a", start, true));
        assert!(!newest.also("a", start, true), "one inspect per event");
        assert!(newest.land("a", start, true), "the inspect counts");
        assert_eq!(newest.pending(), 0, "nothing left behind");

        // A list read and an inspect race for one event: once the inspect landed, the list
        // read is dropped, and no second inspect is asked.
        let start = newest.bump("a", false);
        assert!(newest.also("a", start, true));
        assert!(newest.land("a", start, true));
        assert!(!newest.also("a", start, true));
        assert!(!newest.land("a", start, false));

        // A refinement asked for an event that a newer one has replaced is not asked.
        let old = newest.bump("a", false);
        let _new = newest.bump("a", true);
        assert!(!newest.also("a", old, true));

        // A removal with nothing pending leaves nothing behind.
        newest.supersede("z");
        assert!(!newest.is_newest("z", 0));
    }
}
