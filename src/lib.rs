//! netalias: a DNS server for Docker container networks.
//!
//! Data flows one way: sources (`source::static_file`, `source::docker`, `source::swarm`)
//! turn the world into [`registry::Change`]s; the [`registry`] holds the names; the [`dns`]
//! front end answers from it. Configuration, provisioning, telemetry and the file-descriptor
//! budget sit beside them.

pub mod cli;
pub mod config;
pub mod dns;
pub mod fd_budget;
pub mod fuzz;
pub mod heap;
pub mod host_dns;
pub mod provision;
pub mod registry;
pub mod server;
pub mod source;
pub mod telemetry;
