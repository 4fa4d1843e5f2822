//! One apply or destroy of a stack at a time on this machine: a lock file per stack and
//! engine, held (`flock`) for as long as the returned guard lives and released by the
//! system when the process dies, so a killed apply never leaves a stale lock behind.
//!
//! Two applies at once would each take the other's old container for its own rollback
//! target. This lock covers commands run on one machine; two machines driving one remote
//! engine are not covered (the README says so). It must not decide anything about the stack.

use std::{
    fs::{File, OpenOptions},
    path::{Path, PathBuf},
};

use super::{error::ProvisionError, fields::fnv};

/// Held while a command changes the stack; dropping it releases the lock.
#[derive(Debug)]
pub struct StackLock {
    _file: File,
    pub path: PathBuf,
}

/// The folder every lock file goes in: fixed, not `TMPDIR`, so that two shells share it.
pub const LOCK_DIR: &str = "/tmp";

/// The lock file for `stack` on the engine at `host` (None: the local default), in `dir`.
pub fn lock_path(dir: &Path, stack: &str, host: Option<&str>) -> PathBuf {
    let engine = host.map_or(0, fnv);
    dir.join(format!("netalias-provision-{stack}-{engine:016x}.lock"))
}

/// Takes the lock without waiting: a second apply or destroy of the same stack is refused.
pub fn lock(dir: &Path, stack: &str, host: Option<&str>) -> Result<StackLock, ProvisionError> {
    let path = lock_path(dir, stack, host);
    // Opened read-only when it exists (flock needs no write access): a lock file another
    // user made (root, with sudo) stays usable by the docker group, and a sticky /tmp with
    // fs.protected_regular refuses only O_CREAT on someone else's file. Made 0666 when new.
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .mode(0o666)
                .open(&path)
                .map_err(|source| ProvisionError::Lock {
                    path: path.clone(),
                    reason: source.to_string(),
                })?;
            // The umask took bits off: set them, so that other users can open it too.
            let _ = file.set_permissions(std::fs::Permissions::from_mode(0o666));
            file
        }
        Err(source) => {
            return Err(ProvisionError::Lock {
                path,
                reason: source.to_string(),
            });
        }
    };
    // flock(2), not `File::try_lock` (Rust 1.89; the crate supports 1.88).
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor this function owns; no memory is passed.
    let held = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if held == 0 {
        return Ok(StackLock { _file: file, path });
    }
    let error = std::io::Error::last_os_error();
    if error.kind() == std::io::ErrorKind::WouldBlock {
        Err(ProvisionError::Locked {
            stack: stack.to_string(),
            path,
        })
    } else {
        Err(ProvisionError::Lock {
            path,
            reason: error.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_of_one_stack_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().expect("dir");
        let first = lock(dir.path(), "s", None).expect("first");
        let second = lock(dir.path(), "s", None);
        assert!(
            matches!(&second, Err(ProvisionError::Locked { stack, .. }) if stack == "s"),
            "{second:?}"
        );
        // Another stack, or the same name on another engine, is not held up.
        assert!(lock(dir.path(), "t", None).is_ok());
        assert!(lock(dir.path(), "s", Some("tcp://10.0.0.5:2375")).is_ok());
        drop(first);
        assert!(lock(dir.path(), "s", None).is_ok(), "released on drop");
    }
}
