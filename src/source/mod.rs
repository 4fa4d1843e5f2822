//! Sources: where names come from. Each turns the outside world into registry `Change`s
//! and never touches the registry's internals.

pub mod bridge;
pub mod docker;
pub mod static_file;
pub mod swarm;
pub mod tracked;
