//! Sources: where names come from. Each turns the outside world into registry `Change`s
//! and never touches the registry's internals.

/// How a Swarm task is keyed as an asker (`Endpoint::container`): the Swarm source names its
/// endpoints so, and the Docker source keys a task container's nameless addresses
/// (`docker_gwbridge`) the same way, so that both map to one view.
pub const SWARM_TASK_KEY: &str = "swarm-task:";

pub mod bridge;
pub mod docker;
pub mod engine;
pub mod live;
pub mod publish;
pub mod reach;
pub mod static_file;
pub mod swarm;
pub mod tracked;
