//! Provisioning: make the engine match a declared stack (networks, volumes, containers).
//!
//! `spec` holds the file's types, `load` reads a file into them (parse, `validate`, `resolver`),
//! `validate` checks it without touching the engine, `resolver` makes
//! the stack's netalias its containers' first resolver, `plan` reads the engine once and
//! decides every action and every refusal, `apply` carries a plan out as it is (and `destroy`
//! undoes a stack), both through `engine` (the Docker engine behind it, a fake in unit tests).
//! It shares only the Docker client and the config error type with the DNS server, and runs
//! without it.
//! It never changes or removes anything that does not carry its stack's label, and never
//! removes a volume or a host directory unless told to.

pub mod apply;
pub mod engine;
pub mod error;
#[cfg(test)]
mod fake;
pub mod fields;
mod load;
pub mod lock;
pub mod plan;
pub mod resolver;
pub mod spec;
#[cfg(test)]
mod tests;
pub mod validate;

/// The label that marks what a stack owns.
pub const STACK_LABEL: &str = "netalias.stack";
/// The label naming the stack file (its canonical path) that created a resource: a second
/// file with the same stack name is refused instead of removing the first one's resources.
pub const FILE_LABEL: &str = "netalias.stack.file";
/// The label holding a container's spec fingerprint, to detect drift.
pub const SPEC_LABEL: &str = "netalias.spec";
/// The label naming the declared container a replica (`NAME-N`) was made from.
pub const REPLICA_LABEL: &str = "netalias.replica.of";
/// The label holding a container's fields, rendered one by one (`fields::render`, JSON), so
/// that a plan can say which field changed.
pub const FIELDS_LABEL: &str = "netalias.spec.fields";
