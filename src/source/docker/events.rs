//! What one engine event means for the Docker source: decoded from bollard's `EventMessage`
//! ([`decode`]) and decided ([`Event::decide`]) into a plain [`Act`] that the loop in `mod.rs`
//! carries out (the reads to start, the container to drop, the network that came or went).
//!
//! Pure, so that each event's meaning is tested on fixtures: no engine, no clock, no
//! publishing, no registry. What the decision needs of the source (the engine, whether the
//! create-time read may have started) comes in as plain values; what is known only once the
//! loop has applied a change (whether a disconnected container is still published) the [`Act`]
//! leaves to the loop, saying what follows either way.

use std::{collections::HashMap, time::Duration};

use bollard::models::{EventMessage, EventMessageTypeEnum};

use super::{
    early::EarlyEvent,
    listed::Implies,
    reads::{Ask, Why},
};
use crate::source::engine::Engine;

/// Container actions that can change what a container answers to.
const CONTAINER_ACTIONS: [&str; 10] = [
    "start",
    "unpause",
    "pause",
    "health_status",
    "rename",
    "die",
    "stop",
    "kill",
    "destroy",
    "restart",
];
const NETWORK_ACTIONS: [&str; 4] = ["create", "destroy", "connect", "disconnect"];
/// Container actions only the early-askers task reads (`early.rs`): a container is read at
/// `create`, before its start locks it.
const EARLY_CONTAINER_ACTIONS: [&str; 1] = ["create"];
/// How long a `network connect` waits for its container's create-time read still on its way
/// (2–3 ms unloaded, past 250 ms under churn), or for that read to land as the start is done
/// when it lost the race with it (`early::Waited::Started`). Past it the container is
/// published at its start, which takes that read when it lands. The wait is the read's own,
/// beside the loop (`reads.rs`), holding a place among the connect reads (a newer event of
/// the container makes its answer stale, not its wait shorter): 5 s held more places for a
/// gain the start's read has anyway (connect to start took up to 3.3 s under churn, and by
/// then the start event is there first).
const CREATED_READ_WAIT: Duration = Duration::from_secs(2);
/// How long a `start` waits for its container's create-time read that waited on the start's
/// lock: it is let through as the start is done, when the event is sent.
const STARTED_READ_WAIT: Duration = Duration::from_millis(500);

/// The actions to ask of an engine that filters its event stream by action (Docker); None
/// for one that cannot (Podman): it sends every action and [`decode`] drops the unwanted.
pub fn action_filter(engine: Engine) -> Option<Vec<&'static str>> {
    engine.filters_events_by_action().then(|| {
        CONTAINER_ACTIONS
            .iter()
            .chain(NETWORK_ACTIONS.iter())
            .chain(EARLY_CONTAINER_ACTIONS.iter())
            .copied()
            .collect()
    })
}

/// A container or network event the source follows, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `CONTAINER` or `NETWORK`.
    pub typ: EventMessageTypeEnum,
    /// The action as the engine sends it (`health_status: healthy`).
    pub action: String,
    /// Its first word (`health_status`): what the event is, and its metrics label.
    pub verb: String,
    /// The container's or the network's ID.
    pub id: Option<String>,
    pub attributes: HashMap<String, String>,
    /// When the engine sent it, in nanoseconds since the Unix epoch.
    pub time_nano: Option<i64>,
}

/// `event` as the source follows it; None when it is not followed (an engine that cannot
/// filter by action sends every one).
pub fn decode(event: EventMessage) -> Option<Event> {
    let action = event.action.unwrap_or_default();
    // "health_status: healthy" → "health_status"
    let verb = action
        .split(':')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    let typ = event.typ?;
    let wanted = match typ {
        EventMessageTypeEnum::CONTAINER => CONTAINER_ACTIONS.contains(&verb.as_str()),
        EventMessageTypeEnum::NETWORK => NETWORK_ACTIONS.contains(&verb.as_str()),
        _ => false,
    };
    let actor = event.actor.unwrap_or_default();
    wanted.then(|| Event {
        typ,
        action,
        verb,
        id: actor.id,
        attributes: actor.attributes.unwrap_or_default(),
        time_nano: event.time_nano,
    })
}

/// What the source does for an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Act {
    /// Nothing: a container event without an ID, a `connect` or `disconnect` without a
    /// container, a `create` of one of the engine's own networks.
    Nothing,
    /// Container `id`'s process is gone, or was sent SIGKILL, which it cannot outlive (`stop`
    /// past its grace, `kill`, `rm -f`): published with nothing, without a read (one would wait
    /// on the engine's lock while it cleans up, 100–150 ms), as Docker's own DNS drops it at
    /// its cleanup. Reads of it in flight are stale from here, and so is what was read at its
    /// `create`. A restart policy brings it back through `start`.
    Gone { id: String },
    /// Read container `id`: `first` for the event (earlier reads of it are stale), then each
    /// of `also` for the same event; then forget what was read at its `create` when
    /// `forget_created`.
    Read {
        id: String,
        first: (Why, Ask),
        also: Vec<(Why, Ask)>,
        forget_created: bool,
    },
    /// A user-defined network was created: inspect it (by `id`, when the event gives one) for
    /// whether it is internal and its gateways.
    NetworkCreated { id: Option<String>, name: String },
    /// A network was removed.
    NetworkDestroyed { name: String },
    /// `container` was connected to a network: read it for [`Why::Connect`] with `ask`.
    Connected { container: String, ask: Ask },
    /// `container` left `network`: gone from there at once, as from Docker's DNS, with no
    /// read. Then, if it is still published, read it with `then`; if not (it died: its
    /// disconnects come with its cleanup), nothing is left to settle and reads of it pending
    /// are stale.
    Disconnected {
        container: String,
        network: String,
        then: (Why, Ask),
    },
}

impl Event {
    /// What to do for this event on `engine`. `lists_containers`: whether containers are read
    /// from the engine's list (`listed.rs`); `may_have_started`: whether the create-time read
    /// of a container (`early.rs`) may have waited on its start, asked only at a `start`.
    pub fn decide(
        self,
        engine: Engine,
        lists_containers: bool,
        may_have_started: impl FnOnce(&str) -> bool,
    ) -> Act {
        match self.typ {
            EventMessageTypeEnum::CONTAINER => self.container(lists_containers, may_have_started),
            EventMessageTypeEnum::NETWORK => self.network(engine, lists_containers),
            _ => Act::Nothing, // not decoded
        }
    }

    fn container(self, lists_containers: bool, may_have_started: impl FnOnce(&str) -> bool) -> Act {
        let Some(id) = self.id else {
            return Act::Nothing;
        };
        let verb = self.verb.as_str();
        if verb == "destroy" || verb == "die" || (verb == "kill" && is_sigkill(&self.attributes)) {
            return Act::Gone { id };
        }
        let start = verb == "start";
        // From the engine's list where it is read (`listed.rs`: about 1 ms, no container
        // lock), else from the inspect.
        let implies =
            Implies::of_event(verb, &self.action, &self.attributes).filter(|_| lists_containers);
        let (first, also) = match implies {
            Some(implies) => {
                let mut also = Vec::new();
                if start {
                    // Raced by its inspect, and by the create-time read if that lost the
                    // race with the start and waited on its lock (it lands as the start is
                    // done): under churn dockerd answered the list and the inspect alike in
                    // 80-230 ms at times. Whichever lands first publishes; a list entry
                    // landing after an inspect is dropped.
                    if may_have_started(&id) {
                        let wait = STARTED_READ_WAIT;
                        also.push((Why::Refine, Ask::Started { wait }));
                    }
                    also.push((Why::Refine, Ask::Inspect));
                }
                ((Why::Event(implies), Ask::Listed), also)
            }
            None => ((Why::Event(Implies::Anything), Ask::Inspect), Vec::new()),
        };
        Act::Read {
            id,
            first,
            also,
            // What was read at `create` has served its turn, except for a start read from
            // the list, which publishes from it (see `publish_listed`).
            forget_created: !(start && lists_containers),
        }
    }

    fn network(mut self, engine: Engine, lists_containers: bool) -> Act {
        let name = self.attributes.get("name").cloned().unwrap_or_default();
        let container = self.attributes.remove("container");
        match (self.verb.as_str(), container) {
            ("create", _) if engine.is_user_defined(&name) => {
                Act::NetworkCreated { id: self.id, name }
            }
            ("destroy", _) => Act::NetworkDestroyed { name },
            ("connect", Some(container)) => {
                // Docker registers a container's names at its connect, 400–480 ms before its
                // process starts and its inspect answers: published from the create-time
                // read (`early.rs`) or the list, with the addresses the network's inspect
                // lists (`publish_connected`); or from that read, whole, when it waited on the
                // start and landed as it was done.
                let ask = match self.id {
                    Some(network) => Ask::Connected {
                        network,
                        wait: CREATED_READ_WAIT,
                    },
                    None => Ask::Inspect,
                };
                Act::Connected { container, ask }
            }
            ("disconnect", Some(container)) => {
                let then = if lists_containers {
                    (Why::Event(Implies::Off(name.clone())), Ask::Listed)
                } else {
                    (Why::Event(Implies::Anything), Ask::Inspect)
                };
                Act::Disconnected {
                    container,
                    network: name,
                    then,
                }
            }
            _ => Act::Nothing,
        }
    }
}

/// Whether a `kill` event sent SIGKILL (the engine names it by number).
fn is_sigkill(attributes: &HashMap<String, String>) -> bool {
    attributes
        .get("signal")
        .is_some_and(|s| matches!(s.as_str(), "9" | "KILL" | "SIGKILL"))
}

/// The container a `container create` event names (read at once by the event reader,
/// `early.rs`).
pub fn created_container(event: &EventMessage) -> Option<&str> {
    (event.typ == Some(EventMessageTypeEnum::CONTAINER)
        && event.action.as_deref() == Some("create"))
    .then(|| event.actor.as_ref()?.id.as_deref())
    .flatten()
}

/// What the early-askers task wants of an engine event: network connects and disconnects,
/// and networks coming and going.
pub fn early_event(event: &EventMessage) -> Option<EarlyEvent> {
    let actor = event.actor.as_ref()?;
    if event.typ != Some(EventMessageTypeEnum::NETWORK) {
        return None;
    }
    let network = actor.id.clone()?;
    let container = || {
        actor
            .attributes
            .as_ref()
            .and_then(|a| a.get("container"))
            .cloned()
    };
    match event.action.as_deref()? {
        "connect" => Some(EarlyEvent::Connect {
            network,
            container: container()?,
        }),
        "disconnect" => Some(EarlyEvent::Disconnect {
            network,
            container: container()?,
        }),
        "create" | "destroy" => Some(EarlyEvent::Networks),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{EventActor, HealthStatusEnum};

    const ID: &str = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00";
    const NET: &str = "4e7400004e7400004e7400004e7400004e7400004e7400004e7400004e740000";

    /// An event as the engine's stream gives it.
    fn message(
        typ: EventMessageTypeEnum,
        action: &str,
        id: Option<&str>,
        attributes: &[(&str, &str)],
    ) -> EventMessage {
        EventMessage {
            typ: Some(typ),
            action: Some(action.into()),
            actor: Some(EventActor {
                id: id.map(Into::into),
                attributes: Some(
                    attributes
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
            }),
            time_nano: Some(1_700_000_000_000_000_000),
            ..Default::default()
        }
    }

    fn container(action: &str, attributes: &[(&str, &str)]) -> EventMessage {
        let mut attributes = attributes.to_vec();
        attributes.push(("name", "web"));
        message(
            EventMessageTypeEnum::CONTAINER,
            action,
            Some(ID),
            &attributes,
        )
    }

    fn network(action: &str, id: Option<&str>, attributes: &[(&str, &str)]) -> EventMessage {
        message(EventMessageTypeEnum::NETWORK, action, id, attributes)
    }

    /// What Docker's source does for `event` (its list read), the create-time read having
    /// waited on the start when `started`.
    fn on_docker(event: EventMessage, started: bool) -> Act {
        decode(event)
            .expect("a followed event")
            .decide(Engine::Docker, true, |id| {
                assert_eq!(id, ID);
                started
            })
    }

    /// What Podman's source does for `event` (no list reads).
    fn on_podman(event: EventMessage) -> Act {
        decode(event)
            .expect("a followed event")
            .decide(Engine::Podman, false, |_| {
                panic!("asked only at a start read from the list")
            })
    }

    fn gone() -> Act {
        Act::Gone { id: ID.into() }
    }

    /// Reads of the fixture container: `first`, then `also`.
    fn read(first: (Why, Ask), also: Vec<(Why, Ask)>, forget_created: bool) -> Act {
        Act::Read {
            id: ID.into(),
            first,
            also,
            forget_created,
        }
    }

    /// What an engine whose list is not read does for any container event it reads.
    fn inspect() -> Act {
        read((Why::Event(Implies::Anything), Ask::Inspect), vec![], true)
    }

    #[test]
    fn a_container_that_died_or_was_sent_sigkill_is_gone_without_a_read() {
        for event in [
            container("die", &[("exitCode", "0")]),
            container("kill", &[("signal", "9")]),
            container("kill", &[("signal", "SIGKILL")]),
            container("destroy", &[]),
        ] {
            assert_eq!(on_docker(event.clone(), false), gone(), "{event:?}");
            assert_eq!(on_podman(event.clone()), gone(), "{event:?}");
        }
    }

    #[test]
    fn a_kill_short_of_sigkill_reads_the_container_for_whatever_it_is() {
        let kill = || container("kill", &[("signal", "15")]);
        assert_eq!(
            on_docker(kill(), false),
            read((Why::Event(Implies::Anything), Ask::Listed), vec![], true)
        );
        assert_eq!(on_podman(kill()), inspect());
    }

    #[test]
    fn a_start_on_a_listing_engine_reads_the_list_raced_by_the_inspect() {
        // And by the create-time read too, when that may have waited on the start.
        for started in [false, true] {
            let wait = STARTED_READ_WAIT;
            let created = (Why::Refine, Ask::Started { wait });
            let also = started.then_some(created).into_iter();
            assert_eq!(
                on_docker(container("start", &[]), started),
                read(
                    (Why::Event(Implies::Running), Ask::Listed),
                    also.chain([(Why::Refine, Ask::Inspect)]).collect(),
                    false
                ),
                "{started}"
            );
        }
    }

    #[test]
    fn a_start_on_an_engine_whose_list_is_not_read_is_inspected() {
        assert_eq!(on_podman(container("start", &[])), inspect());
    }

    #[test]
    fn a_health_status_is_decoded_to_its_verb_and_read_for_its_status() {
        let event = container("health_status: healthy", &[]);
        let decoded = decode(event.clone()).unwrap();
        assert_eq!(decoded.verb, "health_status");
        assert_eq!(decoded.action, "health_status: healthy");
        assert_eq!(decoded.id.as_deref(), Some(ID));
        assert_eq!(decoded.time_nano, event.time_nano);
        assert_eq!(
            on_docker(event, false),
            read(
                (
                    Why::Event(Implies::Health(HealthStatusEnum::HEALTHY)),
                    Ask::Listed
                ),
                vec![],
                true
            )
        );
    }

    #[test]
    fn a_container_event_without_an_id_does_nothing() {
        let event = message(EventMessageTypeEnum::CONTAINER, "start", None, &[]);
        assert_eq!(on_docker(event, false), Act::Nothing);
    }

    #[test]
    fn a_user_defined_network_is_followed_from_its_create_the_default_bridge_is_not() {
        assert_eq!(
            on_docker(network("create", Some(NET), &[("name", "app")]), false),
            Act::NetworkCreated {
                id: Some(NET.into()),
                name: "app".into()
            }
        );
        let default = |name| network("create", Some(NET), &[("name", name)]);
        assert_eq!(on_docker(default("bridge"), false), Act::Nothing);
        assert_eq!(on_docker(default("host"), false), Act::Nothing);
        // Podman's default network is `podman` (`bridge` in its compat list).
        assert_eq!(on_podman(default("podman")), Act::Nothing);
        assert_eq!(on_podman(default("bridge")), Act::Nothing);
        assert_eq!(
            on_podman(default("app")),
            Act::NetworkCreated {
                id: Some(NET.into()),
                name: "app".into()
            }
        );
        assert_eq!(
            on_docker(network("destroy", Some(NET), &[("name", "app")]), false),
            Act::NetworkDestroyed { name: "app".into() }
        );
    }

    #[test]
    fn a_connect_waits_for_the_create_time_read_where_it_names_its_network() {
        let attributes = [("name", "app"), ("container", ID), ("type", "bridge")];
        assert_eq!(
            on_docker(network("connect", Some(NET), &attributes), false),
            Act::Connected {
                container: ID.into(),
                ask: Ask::Connected {
                    network: NET.into(),
                    wait: CREATED_READ_WAIT
                }
            }
        );
        assert_eq!(
            on_docker(network("connect", None, &attributes), false),
            Act::Connected {
                container: ID.into(),
                ask: Ask::Inspect
            }
        );
        let no_container = network("connect", Some(NET), &[("name", "app")]);
        assert_eq!(on_docker(no_container, false), Act::Nothing);
    }

    #[test]
    fn a_disconnect_leaves_the_network_then_reads_what_still_is() {
        let disconnect = || {
            network(
                "disconnect",
                Some(NET),
                &[("name", "app"), ("container", ID)],
            )
        };
        assert_eq!(
            on_docker(disconnect(), false),
            Act::Disconnected {
                container: ID.into(),
                network: "app".into(),
                then: (Why::Event(Implies::Off("app".into())), Ask::Listed),
            }
        );
        assert_eq!(
            on_podman(disconnect()),
            Act::Disconnected {
                container: ID.into(),
                network: "app".into(),
                then: (Why::Event(Implies::Anything), Ask::Inspect),
            }
        );
    }

    #[test]
    fn actions_not_followed_are_not_decoded() {
        for event in [
            container("exec_start: sh -c true", &[]),
            container("attach", &[]),
            // Read by the event reader as it arrives (`created_container`), not here.
            container("create", &[]),
            network("prune", None, &[]),
            message(EventMessageTypeEnum::IMAGE, "pull", Some("alpine"), &[]),
            EventMessage::default(),
        ] {
            assert_eq!(decode(event.clone()), None, "{event:?}");
        }
    }

    #[test]
    fn only_an_engine_that_filters_by_action_is_asked_for_the_actions() {
        let docker = action_filter(Engine::Docker).unwrap();
        for action in ["start", "health_status", "connect", "create"] {
            assert!(docker.contains(&action), "{action}");
        }
        assert_eq!(action_filter(Engine::Podman), None);
    }

    #[test]
    fn the_event_reader_takes_creates_and_network_changes_as_they_arrive() {
        assert_eq!(created_container(&container("create", &[])), Some(ID));
        assert_eq!(created_container(&container("start", &[])), None);
        let connect = network("connect", Some(NET), &[("container", ID)]);
        assert!(matches!(
            early_event(&connect),
            Some(EarlyEvent::Connect { network, container }) if network == NET && container == ID
        ));
        assert!(matches!(
            early_event(&network("destroy", Some(NET), &[])),
            Some(EarlyEvent::Networks)
        ));
        assert!(early_event(&container("start", &[])).is_none());
    }
}
