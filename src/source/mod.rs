//! Sources: where names come from. Each turns the outside world into registry `Change`s
//! and never touches the registry's internals.

pub mod static_file;
