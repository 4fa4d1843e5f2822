//! What can stop provisioning, each with the resource it concerns.

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("cannot connect to the Docker engine: {0}")]
    Connect(#[source] bollard::errors::Error),
    #[error("Docker engine request failed ({what}): {source}")]
    Engine {
        what: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error(
        "{kind} `{name}` exists but does not belong to stack `{stack}`; netalias never changes it (remove or rename it yourself)"
    )]
    NotOwned {
        kind: &'static str,
        name: String,
        stack: String,
    },
    #[error(
        "{kind} `{name}` is marked external but does not exist; create it first (`docker {kind} create {name}`) or drop `external = true` to let the stack create it"
    )]
    ExternalMissing { kind: &'static str, name: String },
    #[error(
        "networks.{network}.subnet: {subnet} overlaps the existing network `{other}` ({other_subnet})"
    )]
    Overlap {
        network: String,
        subnet: String,
        other: String,
        other_subnet: String,
    },
    #[error(
        "network `{network}` differs from the spec ({diff}) and has {attached} container(s) attached; rerun with --recreate to recreate it"
    )]
    NetworkInUse {
        network: String,
        diff: String,
        attached: usize,
    },
    #[error(
        "image `{image}` for container `{container}` is not present and could not be pulled: {reason}"
    )]
    Image {
        image: String,
        container: String,
        reason: String,
    },
    #[error(
        "image `{image}` for container `{container}` is not present and its pull is \"never\": build or load it (docker build -t {image} . / docker load), or set pull = \"missing\""
    )]
    ImageNeverPulled { image: String, container: String },
    #[error(
        "image `{image}` for container `{container}` is not in its registry, or not for this engine ({reason}): check its name and tag. A private image: provisioning sends no registry credentials, so docker login and docker pull {image} first, then pull = \"missing\" uses it. One built here: docker build -t {image} . (or docker load), and pull = \"never\""
    )]
    UnknownImage {
        image: String,
        container: String,
        reason: String,
    },
    #[error(
        "stack `{stack}`: {kind} `{name}` was created from {theirs}, not from {ours}; two files with one stack name would remove each other's resources. Give each file its own [stack] name, or rerun with --adopt to take the stack over from {theirs}"
    )]
    OtherFile {
        stack: String,
        kind: &'static str,
        name: String,
        theirs: String,
        ours: String,
    },
    #[error(
        "containers.{container}.mounts: {path} is a symbolic link; create_host_dirs never follows one (it could lead out of the declared path). Replace it with a directory, or point the mount at its target"
    )]
    SymlinkInPath { path: String, container: String },
    #[error(
        "container `{container}` could not be replaced, so the old one was put back and runs as before: {source}"
    )]
    RolledBack {
        container: String,
        #[source]
        source: Box<ProvisionError>,
    },
    #[error(
        "container `{container}` could not be replaced and the old one could not be put back ({step}); it is kept, stopped, as `{aside}` with its volumes, and the next apply hands them to the new container: {source}"
    )]
    NotRestored {
        container: String,
        aside: String,
        step: String,
        #[source]
        source: Box<ProvisionError>,
    },
    #[error(
        "container `{container}` could not be replaced; the old one is back under its name but did not start ({start}): {source}"
    )]
    RestoredStopped {
        container: String,
        start: String,
        #[source]
        source: Box<ProvisionError>,
    },
    #[error(
        "container `{container}` is {state}; what waits for it was not started (see docker logs {container} and docker inspect {container})"
    )]
    NotHealthy { container: String, state: String },
    #[error(
        "container `{container}` has no health check (none in its spec, none in its image), so it cannot be waited for as healthy: give it a healthcheck, or depend on it as \"started\""
    )]
    NoHealthcheck { container: String },
    #[error(
        "another apply or destroy of stack `{stack}` is running on this machine (it holds {path}); wait for it to finish, then run this again"
    )]
    Locked {
        stack: String,
        path: std::path::PathBuf,
    },
    #[error("cannot take the stack's lock file {path}: {reason}")]
    Lock {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("container `{container}` could not be made (there was no old one to keep): {source}")]
    Failed {
        container: String,
        #[source]
        source: Box<ProvisionError>,
    },
    #[error(
        "cannot write the resolver's file {path}: {source} (set [stack] resolver_dir to a directory you may write)"
    )]
    ResolverFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create bind source {path} for container `{container}`: {source}")]
    HostDir {
        path: String,
        container: String,
        #[source]
        source: std::io::Error,
    },
}

pub fn engine(what: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> ProvisionError {
    let what = what.into();
    move |source| ProvisionError::Engine { what, source }
}

pub fn is_not_found(error: &bollard::errors::Error) -> bool {
    matches!(
        error,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// The engine's HTTP status for a failed call, if the engine answered one.
pub fn status_of(error: &ProvisionError) -> Option<u16> {
    match error {
        ProvisionError::Engine {
            source: bollard::errors::Error::DockerResponseServerError { status_code, .. },
            ..
        } => Some(*status_code),
        _ => None,
    }
}
