//! Reading a stack file: parse (`spec`), check (`validate`), expand the `[stack] resolver`
//! setting (`resolver`), in that order, each error located in the file. No engine calls.

use std::path::Path;

use super::{resolver, spec::Stack, validate};
use crate::config::{ConfigError, LoadError, load_file, parse_located};

impl Stack {
    /// Reads, parses and validates a stack file (no engine calls).
    pub fn load(path: &Path) -> Result<Stack, LoadError> {
        let mut stack = load_file(path, Stack::parse)?;
        let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        stack.file = Some(canonical.display().to_string());
        Ok(stack)
    }

    /// Parses and validates; with `[stack] resolver`, the spec comes back expanded (the
    /// resolver on every network, resolv.conf mounts on the others).
    pub fn parse(text: &str, file: &str) -> Result<Stack, ConfigError> {
        let mut stack: Stack = parse_located(text, file)?;
        validate::validate(&stack).map_err(|v| v.locate(text, file))?;
        let resolver = resolver::plan(&stack).map_err(|v| v.locate(text, file))?;
        if let Some(resolver) = &resolver {
            resolver::expand(&mut stack, resolver);
        }
        stack.resolver = resolver;
        Ok(stack)
    }
}
