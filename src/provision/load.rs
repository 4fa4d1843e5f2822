//! Reading a stack file: parse (`spec`), check (`validate`), expand the `[stack] resolver`
//! setting (`resolver`), in that order, each error located in the file. It reads the env
//! files a container names and expands `replicas` into one container each. No engine calls.

use std::path::Path;

use super::{fields, resolver, spec::Stack, validate};
use crate::config::{ConfigError, LoadError, Violation, load_file, parse_located};

impl Stack {
    /// Reads, parses and validates a stack file (no engine calls).
    pub fn load(path: &Path) -> Result<Stack, LoadError> {
        Stack::load_for(path, None)
    }

    /// `load`, for an engine on another machine (`remote`: its address): features that act
    /// on this machine's files (bind checks, created directories, resolver files) are
    /// refused or skipped, each where the file asks for it.
    pub fn load_for(path: &Path, remote: Option<&str>) -> Result<Stack, LoadError> {
        let mut stack = load_file(path, |text, file| Stack::parse_for(text, file, remote))?;
        let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        stack.file = Some(canonical.display().to_string());
        Ok(stack)
    }

    /// Parses and validates; with `[stack] resolver`, the spec comes back expanded (the
    /// resolver on every network, resolv.conf mounts on the others).
    pub fn parse(text: &str, file: &str) -> Result<Stack, ConfigError> {
        Stack::parse_for(text, file, None)
    }

    /// `parse`, for an engine on another machine when `remote` is its address.
    pub fn parse_for(text: &str, file: &str, remote: Option<&str>) -> Result<Stack, ConfigError> {
        let mut stack: Stack = parse_located(text, file)?;
        validate::validate(&stack, remote).map_err(|v| v.locate(text, file))?;
        read_env_files(&mut stack, file).map_err(|v| v.locate(text, file))?;
        expand_replicas(&mut stack);
        let resolver = resolver::plan(&stack).map_err(|v| v.locate(text, file))?;
        if let Some(resolver) = &resolver {
            resolver::expand(&mut stack, resolver);
        }
        stack.resolver = resolver;
        Ok(stack)
    }
}

/// Reads each container's `env_file`s (relative to the stack file's folder) into its spec,
/// so that a changed password changes the fingerprint and the container is recreated.
fn read_env_files(stack: &mut Stack, file: &str) -> Result<(), Violation> {
    let base = Path::new(file).parent().unwrap_or(Path::new("."));
    for (name, c) in &mut stack.containers {
        let mut env = std::collections::BTreeMap::new();
        for entry in &c.env_file {
            let path = base.join(entry.get_ref());
            let read = fields::read_env_file(&path).map_err(|message| {
                Violation::new(
                    entry,
                    format!("containers.{name}.env_file"),
                    format!("{message}; write KEY=VALUE lines, or fix the path (relative to the stack file)"),
                )
            })?;
            env.extend(read);
        }
        c.file_env = env;
    }
    Ok(())
}

/// `replicas = N` becomes N containers `NAME-1`..`NAME-N`, each with the spec's aliases and
/// `NAME` on every network, so `NAME` rotates over them as compose's service name does.
/// (Validation refused what cannot be copied: a fixed ipv4 or host port, a dependent.)
fn expand_replicas(stack: &mut Stack) {
    let replicated: Vec<String> = stack
        .containers
        .iter()
        .filter(|(_, c)| c.replicas.is_some())
        .map(|(name, _)| name.clone())
        .collect();
    for name in &replicated {
        // Waiting for a set is waiting for each of its replicas.
        let replicas = stack.containers[name].replica_names(name);
        for spec in stack.containers.values_mut() {
            if let Some(condition) = spec.depends_on.remove(name) {
                for replica in &replicas {
                    spec.depends_on.insert(replica.clone(), condition.clone());
                }
            }
        }
    }
    for name in replicated {
        let Some(spec) = stack.containers.remove(&name) else {
            continue;
        };
        for replica in spec.replica_names(&name) {
            let mut copy = spec.clone();
            copy.replicas = None;
            for attachment in copy.networks.values_mut() {
                if !attachment.aliases.contains(&name) {
                    attachment.aliases.push(name.clone());
                }
            }
            copy.labels
                .insert(super::REPLICA_LABEL.to_string(), name.clone());
            stack.containers.insert(replica, copy);
        }
    }
}
