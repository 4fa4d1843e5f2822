//! An in-memory engine for unit tests: the state `plan` reads, changed by the calls `apply`
//! makes as the Docker engine would change it (a name taken is a conflict, a network with
//! running containers cannot be removed), with every call logged in order and one call made
//! to fail once on demand. Test code only; it decides nothing for provisioning.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{Mutex, MutexGuard},
};

use super::{
    FIELDS_LABEL, REPLICA_LABEL, SPEC_LABEL,
    engine::{
        ContainerState, Engine, Health, LocalImage, NetworkState, NewContainer, Owner,
        RegistryImage, VolumeMount, VolumeState,
    },
    error::ProvisionError,
    spec::{Attachment, NetworkMode, NetworkSpec, VolumeSpec},
};

/// One call to the engine, as logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Networks,
    Attached(String),
    Volumes,
    Containers,
    HasImage(String),
    Registry(String),
    Health(String),
    Owner(String),
    AnswersDns(std::net::SocketAddrV4),
    Pull(String),
    CreateNetwork(String),
    RemoveNetwork(String),
    CreateVolume(String),
    RemoveVolume(String),
    CreateContainer(String),
    Connect(String, String),
    Disconnect(String, String),
    Start(String),
    Stop(String),
    /// The container, and whether its anonymous volumes went with it.
    RemoveContainer(String, bool),
    Rename(String, String),
}

impl Call {
    /// Whether it only reads.
    pub fn is_read(&self) -> bool {
        matches!(
            self,
            Call::Networks
                | Call::Attached(_)
                | Call::Volumes
                | Call::Containers
                | Call::HasImage(_)
                | Call::Registry(_)
                | Call::Health(_)
                | Call::Owner(_)
                | Call::AnswersDns(_)
        )
    }
}

#[derive(Debug, Default, Clone)]
pub struct State {
    pub networks: BTreeMap<String, NetworkState>,
    pub volumes: BTreeMap<String, VolumeState>,
    pub containers: BTreeMap<String, ContainerState>,
    /// The images it has, by name, with their IDs.
    pub images: BTreeMap<String, String>,
    /// The healths a container reports, one per ask (the last one stays); absent: healthy
    /// when running with a health check in its spec, no check without, down when stopped.
    pub health: BTreeMap<String, std::collections::VecDeque<Health>>,
    /// The anonymous volume made with each container (by the image's `VOLUME`).
    pub made_with: BTreeMap<String, String>,
    /// Addresses where no DNS server answers (every other one answers).
    pub silent: BTreeSet<std::net::SocketAddrV4>,
    /// What a pull of an image gives (its ID); absent: `sha256:NAME`.
    pub pulled: BTreeMap<String, String>,
    /// The registry digests each image here was pulled by (absent: built here).
    pub repo_digests: BTreeMap<String, Vec<String>>,
    /// What the registry says of each image; absent: it cannot be asked.
    pub registry: BTreeMap<String, RegistryImage>,
}

#[derive(Debug, Default)]
pub struct FakeEngine {
    state: Mutex<State>,
    calls: Mutex<Vec<Call>>,
    /// The call that fails, the next time it is made (once: a rollback may make it again).
    fail: Mutex<Option<Call>>,
    /// Writes left before the process "dies": that write and every call after it fail, as
    /// when `apply` is killed (no rollback gets through). None: never.
    crash_in: Mutex<Option<usize>>,
    /// Anonymous volumes made so far (their names count up).
    anonymous: Mutex<usize>,
}

fn error(what: String, status_code: u16) -> ProvisionError {
    ProvisionError::Engine {
        what,
        source: bollard::errors::Error::DockerResponseServerError {
            status_code,
            message: "fake engine".to_string(),
        },
    }
}

impl FakeEngine {
    pub fn new(state: State) -> FakeEngine {
        FakeEngine {
            state: Mutex::new(state),
            ..Default::default()
        }
    }

    /// Makes the next `call` fail with a 500.
    pub fn fail_on(&self, call: Call) {
        *lock(&self.fail) = Some(call);
    }

    pub fn calls(&self) -> Vec<Call> {
        lock(&self.calls).clone()
    }

    pub fn clear_calls(&self) {
        lock(&self.calls).clear();
    }

    pub fn state(&self) -> State {
        lock(&self.state).clone()
    }

    /// Changes the state behind provisioning's back (someone else's container, say).
    pub fn edit(&self, change: impl FnOnce(&mut State)) {
        change(&mut lock(&self.state));
    }

    /// Makes the `writes`-th write from now (0: the next) and every call after it fail, as
    /// if the process were killed there; `revive` ends it.
    pub fn crash_after(&self, writes: usize) {
        *lock(&self.crash_in) = Some(writes);
    }

    pub fn revive(&self) {
        *lock(&self.crash_in) = None;
    }

    /// Logs `call`, and fails it if it is the one to fail.
    fn call(&self, call: Call) -> Result<MutexGuard<'_, State>, ProvisionError> {
        let crashed = {
            let mut crash = lock(&self.crash_in);
            match crash.as_mut() {
                Some(0) => true,
                Some(left) if !call.is_read() => {
                    *left -= 1;
                    false
                }
                _ => false,
            }
        };
        let failing = crashed || {
            let mut fail = lock(&self.fail);
            let failing = fail.as_ref() == Some(&call);
            if failing {
                *fail = None;
            }
            failing
        };
        let what = format!("{call:?}");
        lock(&self.calls).push(call);
        if failing {
            return Err(error(what, 500));
        }
        Ok(lock(&self.state))
    }
}

/// A poisoned lock means a test already panicked; its state is still what it was.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Engine for FakeEngine {
    async fn networks(&self) -> Result<Vec<(String, NetworkState)>, ProvisionError> {
        let state = self.call(Call::Networks)?;
        Ok(state
            .networks
            .iter()
            .map(|(n, s)| {
                let mut s = s.clone();
                s.attached.clear(); // as the engine's list: attachments come from `attached`
                (n.clone(), s)
            })
            .collect())
    }

    async fn attached(&self, network: &str) -> Result<Vec<String>, ProvisionError> {
        let state = self.call(Call::Attached(network.to_string()))?;
        if !state.networks.contains_key(network) {
            return Err(error(format!("inspect network {network}"), 404));
        }
        Ok(state
            .containers
            .iter()
            .filter(|(_, c)| c.running && c.networks.iter().any(|n| n == network))
            .map(|(n, _)| n.clone())
            .collect())
    }

    async fn volumes(&self) -> Result<Vec<(String, VolumeState)>, ProvisionError> {
        let state = self.call(Call::Volumes)?;
        Ok(state
            .volumes
            .iter()
            .map(|(n, o)| (n.clone(), o.clone()))
            .collect())
    }

    async fn containers(&self) -> Result<Vec<(String, ContainerState)>, ProvisionError> {
        let state = self.call(Call::Containers)?;
        Ok(state
            .containers
            .iter()
            .map(|(n, c)| (n.clone(), c.clone()))
            .collect())
    }

    async fn answers_dns(&self, address: std::net::SocketAddrV4) -> Option<bool> {
        let state = self.call(Call::AnswersDns(address)).ok()?;
        Some(!state.silent.contains(&address))
    }

    async fn container_owner(&self, name: &str) -> Result<Option<Owner>, ProvisionError> {
        let state = self.call(Call::Owner(name.to_string()))?;
        Ok(state.containers.get(name).map(|c| c.owner.clone()))
    }

    async fn health(&self, name: &str) -> Result<Health, ProvisionError> {
        let mut state = self.call(Call::Health(name.to_string()))?;
        if let Some(queue) = state.health.get_mut(name) {
            let next = if queue.len() > 1 {
                queue.pop_front()
            } else {
                queue.front().cloned()
            };
            if let Some(health) = next {
                return Ok(health);
            }
        }
        Ok(match state.containers.get(name) {
            Some(c)
                if c.running
                    && c.fields
                        .as_ref()
                        .is_some_and(|f| f.contains_key("healthcheck")) =>
            {
                Health::Healthy
            }
            Some(c) if c.running => Health::NoCheck,
            Some(_) => Health::Down("exited, exit code 1".into()),
            None => {
                return Err(error(
                    format!("inspect container {name}: no such container"),
                    404,
                ));
            }
        })
    }

    async fn image(&self, image: &str) -> Result<Option<LocalImage>, ProvisionError> {
        let state = self.call(Call::HasImage(image.to_string()))?;
        Ok(state.images.get(image).map(|id| LocalImage {
            id: id.clone(),
            repo_digests: state.repo_digests.get(image).cloned().unwrap_or_default(),
        }))
    }

    async fn registry_image(&self, image: &str) -> RegistryImage {
        match self.call(Call::Registry(image.to_string())) {
            Ok(state) => state.registry.get(image).cloned().unwrap_or_else(|| {
                RegistryImage::Unreachable("this test has no registry".to_string())
            }),
            Err(e) => RegistryImage::Unreachable(e.to_string()),
        }
    }

    async fn pull_image(&self, image: &str, container: &str) -> Result<(), ProvisionError> {
        let what = Call::Pull(image.to_string());
        let mut state = self.call(what).map_err(|e| ProvisionError::Image {
            image: image.to_string(),
            container: container.to_string(),
            reason: e.to_string(),
        })?;
        let id = state
            .pulled
            .get(image)
            .cloned()
            .unwrap_or_else(|| format!("sha256:{image}"));
        state.images.insert(image.to_string(), id);
        if let Some(digest) = state
            .registry
            .get(image)
            .and_then(|r| r.digest())
            .map(str::to_string)
        {
            state
                .repo_digests
                .insert(image.to_string(), vec![format!("{image}@{digest}")]);
        }
        Ok(())
    }

    async fn create_network(
        &self,
        name: &str,
        spec: &NetworkSpec,
        labels: HashMap<String, String>,
    ) -> Result<(), ProvisionError> {
        let mut state = self.call(Call::CreateNetwork(name.to_string()))?;
        if state.networks.contains_key(name) {
            return Err(error(format!("create network {name}"), 409));
        }
        let network = NetworkState {
            owner: Owner::of(Some(&labels)),
            driver: spec.driver.as_str().to_string(),
            subnet: spec.subnet.as_ref().map(|s| s.get_ref().clone()),
            ip_range: spec.ip_range.as_ref().map(|s| s.get_ref().clone()),
            gateway: spec.gateway.as_ref().map(|s| s.get_ref().clone()),
            internal: spec.internal,
            attachable: spec.attachable,
            options: spec.options.clone(),
            labels: labels.clone().into_iter().collect(),
            aux_addresses: spec
                .aux_addresses
                .iter()
                .map(|(k, v)| (k.clone(), v.get_ref().clone()))
                .collect(),
            ipv6_subnet: spec.ipv6_subnet.as_ref().map(|s| s.get_ref().clone()),
            attached: Vec::new(),
        };
        state.networks.insert(name.to_string(), network);
        Ok(())
    }

    async fn disconnect(&self, container: &str, network: &str) -> Result<(), ProvisionError> {
        let call = Call::Disconnect(container.to_string(), network.to_string());
        let mut state = self.call(call)?;
        if let Some(c) = state.containers.get_mut(container) {
            c.networks.retain(|n| n != network);
        }
        Ok(())
    }

    async fn remove_network(&self, name: &str) -> Result<(), ProvisionError> {
        let mut state = self.call(Call::RemoveNetwork(name.to_string()))?;
        let in_use = state
            .containers
            .values()
            .any(|c| c.running && c.networks.iter().any(|n| n == name));
        if in_use {
            return Err(error(format!("remove network {name}: in use"), 403));
        }
        match state.networks.remove(name) {
            Some(_) => Ok(()),
            None => Err(error(format!("remove network {name}"), 404)),
        }
    }

    async fn create_volume(
        &self,
        name: &str,
        spec: &VolumeSpec,
        labels: HashMap<String, String>,
    ) -> Result<(), ProvisionError> {
        let mut state = self.call(Call::CreateVolume(name.to_string()))?;
        let volume = VolumeState {
            owner: Owner::of(Some(&labels)),
            driver: spec.driver.clone(),
            options: spec.options.clone(),
            labels: labels.into_iter().collect(),
        };
        state.volumes.insert(name.to_string(), volume);
        Ok(())
    }

    async fn remove_volume(&self, name: &str) -> Result<(), ProvisionError> {
        let mut state = self.call(Call::RemoveVolume(name.to_string()))?;
        match state.volumes.remove(name) {
            Some(_) => Ok(()),
            None => Err(error(format!("remove volume {name}"), 404)),
        }
    }

    async fn create_container(
        &self,
        name: &str,
        container: NewContainer<'_>,
    ) -> Result<(), ProvisionError> {
        let mut state = self.call(Call::CreateContainer(name.to_string()))?;
        if state.containers.contains_key(name) {
            return Err(error(format!("create container {name}: name taken"), 409));
        }
        let networks = match container.spec.network_mode() {
            NetworkMode::Networks => container.spec.networks.keys().take(1).cloned().collect(),
            _ => Vec::new(),
        };
        // Binds of volumes by name, and, as an image's `VOLUME` does, a fresh anonymous volume
        // at the path a `test.image_volume` label names when nothing is mounted there.
        let mut volumes: Vec<VolumeMount> = container
            .binds
            .iter()
            .filter_map(|b| {
                let mut parts = b.split(':');
                let (name, destination) = (parts.next()?, parts.next()?);
                (!name.contains('/')).then(|| VolumeMount {
                    name: name.to_string(),
                    destination: destination.to_string(),
                })
            })
            .collect();
        if let Some(path) = container.labels.get("test.image_volume")
            && !volumes.iter().any(|v| &v.destination == path)
        {
            let mut n = lock(&self.anonymous);
            *n += 1;
            let made = format!("{:064x}", *n);
            volumes.push(VolumeMount {
                name: made.clone(),
                destination: path.clone(),
            });
            state.volumes.insert(made.clone(), VolumeState::default());
            state.made_with.insert(name.to_string(), made);
        }
        let created = ContainerState {
            owner: Owner::of(Some(&container.labels)),
            spec: container.labels.get(SPEC_LABEL).cloned(),
            fields: container
                .labels
                .get(FIELDS_LABEL)
                .and_then(|f| serde_json::from_str(f).ok()),
            image_id: state.images.get(container.spec.image.get_ref()).cloned(),
            running: false,
            networks,
            volumes,
            replica_of: container.labels.get(REPLICA_LABEL).cloned(),
        };
        state.containers.insert(name.to_string(), created);
        Ok(())
    }

    async fn connect(
        &self,
        container: &str,
        network: &str,
        _attachment: &Attachment,
    ) -> Result<(), ProvisionError> {
        let call = Call::Connect(container.to_string(), network.to_string());
        let mut state = self.call(call)?;
        if !state.networks.contains_key(network) {
            return Err(error(format!("connect {container} to {network}"), 404));
        }
        match state.containers.get_mut(container) {
            Some(c) => {
                c.networks.push(network.to_string());
                Ok(())
            }
            None => Err(error(format!("connect {container} to {network}"), 404)),
        }
    }

    async fn start_container(&self, name: &str) -> Result<(), ProvisionError> {
        let mut state = self.call(Call::Start(name.to_string()))?;
        match state.containers.get_mut(name) {
            Some(c) => {
                c.running = true;
                Ok(())
            }
            None => Err(error(format!("start container {name}"), 404)),
        }
    }

    async fn stop_container(&self, name: &str) -> Result<(), ProvisionError> {
        let mut state = self.call(Call::Stop(name.to_string()))?;
        if let Some(c) = state.containers.get_mut(name) {
            c.running = false;
        }
        Ok(())
    }

    async fn remove_container(
        &self,
        name: &str,
        with_anonymous_volumes: bool,
    ) -> Result<(), ProvisionError> {
        let mut state = self.call(Call::RemoveContainer(
            name.to_string(),
            with_anonymous_volumes,
        ))?;
        state.containers.remove(name);
        // As Docker: the anonymous volume made with the container goes with it; one
        // mounted by name (carried by a recreate) stays.
        if let Some(made) = state.made_with.remove(name)
            && with_anonymous_volumes
        {
            state.volumes.remove(&made);
        }
        Ok(())
    }

    async fn rename_container(&self, from: &str, to: &str) -> Result<(), ProvisionError> {
        let mut state = self.call(Call::Rename(from.to_string(), to.to_string()))?;
        if state.containers.contains_key(to) {
            return Err(error(format!("rename {from} to {to}: name taken"), 409));
        }
        match state.containers.remove(from) {
            Some(c) => {
                state.containers.insert(to.to_string(), c);
                if let Some(made) = state.made_with.remove(from) {
                    state.made_with.insert(to.to_string(), made);
                }
                Ok(())
            }
            None => Err(error(format!("rename {from} to {to}"), 404)),
        }
    }
}
