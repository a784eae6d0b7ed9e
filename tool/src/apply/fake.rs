//! An engine in memory, for testing the executor without Docker: containers with labels,
//! run state and DNS aliases per network; images named in `failing` start and exit at once
//! (so their containers fail the health gate); every other container passes any health check.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::health::Probe;
use crate::engine::{
    ContainerDetails, ContainerEngine, ContainerInfo, DockerHealth, EngineError, ImageInfo,
    PullAuth, PullEvent, RunState,
};
use crate::manifest::{HealthCheck, Manifest};
use crate::observe;
use crate::plan::{Observed, ObservedNetwork, ObservedVolume};
use crate::probe::ProbeFailure;
use crate::spec::ContainerSpec;

#[derive(Default)]
pub struct FakeEngine {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    next: u64,
    containers: BTreeMap<String, Container>,
    networks: BTreeMap<String, BTreeMap<String, String>>,
    volumes: BTreeMap<String, BTreeMap<String, String>>,
    /// Image references whose containers exit with code 1 as soon as they start.
    failing: BTreeSet<String>,
    /// What was done, in order: `create NAME`, `start NAME`, `stop NAME`, `remove NAME`.
    log: Vec<String>,
    /// Starts that may still happen before a start hangs for ever (`None`: no limit).
    starts_left: Option<usize>,
    /// After this many more starts, the flag is set to 2, as the binary does on SIGINT.
    interrupt: Option<(usize, Arc<AtomicI32>)>,
    /// Labels of images (containers get them too, as on Docker).
    image_labels: BTreeMap<String, BTreeMap<String, String>>,
    /// What `/projection` answers for containers of an image: one body per read, the last
    /// repeated; an image not listed answers 404.
    projection: BTreeMap<String, Vec<String>>,
    /// Reads of `/projection` so far, per container id.
    reads: BTreeMap<String, usize>,
}

#[derive(Debug, Clone)]
pub struct Container {
    pub id: String,
    pub name: String,
    pub image: String,
    pub labels: BTreeMap<String, String>,
    pub state: RunState,
    /// Aliases per network.
    pub networks: BTreeMap<String, Vec<String>>,
    /// Engine volumes mounted.
    pub volumes: Vec<String>,
    created: u64,
}

impl Container {
    pub fn is_running(&self) -> bool {
        self.state == RunState::Running
    }
    /// The `deployer.spec-hash` label.
    pub fn spec_hash(&self) -> &str {
        self.labels
            .get(crate::labels::SPEC_HASH)
            .map_or("", String::as_str)
    }
    pub fn service(&self) -> &str {
        self.labels
            .get(crate::labels::SERVICE)
            .map_or("", String::as_str)
    }
}

/// The digest the fake engine reports for a local image: its "image id".
pub fn digest_of(image: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(image.as_bytes())))
}

impl FakeEngine {
    /// Containers of `image` start and exit with code 1 from now on.
    pub fn fail_image(&self, image: &str) {
        self.lock().failing.insert(image.to_owned());
    }

    /// After `n` more starts, a start never returns (as if the deployer was killed there).
    pub fn hang_after_starts(&self, n: usize) {
        self.lock().starts_left = (n != usize::MAX).then_some(n);
    }

    /// After `n` more starts, `flag` is set as on SIGINT.
    pub fn interrupt_after_starts(&self, n: usize, flag: Arc<AtomicI32>) {
        self.lock().interrupt = Some((n, flag));
    }

    /// Images named `image` carry `labels` (and so do their containers).
    pub fn label_image(&self, image: &str, labels: &[(&str, &str)]) {
        self.lock().image_labels.insert(
            image.to_owned(),
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
    }

    /// Containers of `image` answer `/projection` with `bodies`, one per read, then the last.
    pub fn answer_projection(&self, image: &str, bodies: &[&str]) {
        self.lock().projection.insert(
            image.to_owned(),
            bodies.iter().map(|b| b.to_string()).collect(),
        );
    }

    /// The volumes on the engine.
    pub fn volumes(&self) -> Vec<String> {
        self.lock().volumes.keys().cloned().collect()
    }

    /// Every container, oldest first.
    pub fn containers(&self) -> Vec<Container> {
        let mut list: Vec<Container> = self.lock().containers.values().cloned().collect();
        list.sort_by_key(|c| c.created);
        list
    }

    /// The running containers of `service`, oldest first.
    pub fn running(&self, service: &str) -> Vec<Container> {
        self.containers()
            .into_iter()
            .filter(|c| c.service() == service && c.is_running())
            .collect()
    }

    /// What was done so far, in order.
    pub fn log(&self) -> Vec<String> {
        self.lock().log.clone()
    }

    /// What `observe::observe` would see for `manifest`.
    pub fn observe(&self, manifest: &Manifest) -> Observed {
        let project = manifest.project.as_str();
        let state = self.lock();
        let mut list: Vec<&Container> = state
            .containers
            .values()
            .filter(|c| c.labels.get(crate::labels::PROJECT).map(String::as_str) == Some(project))
            .collect();
        list.sort_by_key(|c| c.created);
        Observed {
            containers: list
                .into_iter()
                .map(|c| observe::observed_container(info(c)))
                .collect(),
            networks: state
                .networks
                .iter()
                .map(|(name, labels)| ObservedNetwork {
                    id: name.clone(),
                    name: name.clone(),
                    labels: labels.clone(),
                })
                .collect(),
            volumes: state
                .volumes
                .iter()
                .map(|(name, labels)| ObservedVolume {
                    name: name.clone(),
                    labels: labels.clone(),
                })
                .collect(),
            image_digests: manifest
                .services
                .values()
                .map(|s| (s.image.as_str().to_owned(), digest_of(s.image.as_str())))
                .collect(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with<T>(
        &self,
        id: &str,
        action: &str,
        f: impl FnOnce(&mut Container, &mut Vec<String>) -> T,
    ) -> Result<T, EngineError> {
        let mut state = self.lock();
        let state = &mut *state;
        match state.containers.get_mut(id) {
            Some(c) => Ok(f(c, &mut state.log)),
            None => Err(EngineError::NotFound {
                action: format!("{action} container {id}"),
                detail: "no such container".into(),
            }),
        }
    }
}

fn info(c: &Container) -> ContainerInfo {
    ContainerInfo {
        id: c.id.clone(),
        name: c.name.clone(),
        image: c.image.clone(),
        image_id: digest_of(&c.image),
        labels: c.labels.clone(),
        state: c.state.clone(),
        health: DockerHealth::None,
        created: c.created as i64,
        status: String::new(),
        ports: Vec::new(),
        ips: c
            .networks
            .keys()
            .map(|n| (n.clone(), "10.0.0.2".to_owned()))
            .collect(),
    }
}

impl ContainerEngine for FakeEngine {
    async fn list_containers(
        &self,
        labels: &[(&str, Option<&str>)],
    ) -> Result<Vec<ContainerInfo>, EngineError> {
        Ok(self
            .containers()
            .iter()
            .filter(|c| {
                labels.iter().all(|(k, v)| match v {
                    Some(v) => c.labels.get(*k).map(String::as_str) == Some(*v),
                    None => c.labels.contains_key(*k),
                })
            })
            .map(info)
            .collect())
    }

    async fn inspect_container(&self, id: &str) -> Result<ContainerDetails, EngineError> {
        self.with(id, "inspecting", |c, _| ContainerDetails {
            id: c.id.clone(),
            name: c.name.clone(),
            state: c.state.clone(),
            health: DockerHealth::None,
            ips: c
                .networks
                .keys()
                .map(|n| (n.clone(), "10.0.0.2".to_owned()))
                .collect(),
            networks: c.networks.clone(),
            user: String::new(),
            published: Vec::new(),
            labels: c.labels.clone(),
            started_at: String::new(),
            restart_count: 0,
        })
    }

    async fn image(&self, reference: &str) -> Result<Option<ImageInfo>, EngineError> {
        Ok(Some(ImageInfo {
            id: digest_of(reference),
            repo_digests: Vec::new(),
            has_healthcheck: false,
            labels: self
                .lock()
                .image_labels
                .get(reference)
                .cloned()
                .unwrap_or_default(),
        }))
    }

    async fn pull(
        &self,
        reference: &str,
        _auth: Option<&PullAuth>,
        _on_event: &mut (dyn FnMut(PullEvent) + Send),
    ) -> Result<(), EngineError> {
        self.lock().log.push(format!("pull {reference}"));
        Ok(())
    }

    async fn create_network(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        self.lock().networks.insert(name.to_owned(), labels.clone());
        Ok(())
    }

    async fn create_volume(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        let mut state = self.lock();
        state.volumes.insert(name.to_owned(), labels.clone());
        state.log.push(format!("create volume {name}"));
        Ok(())
    }

    async fn list_volumes(
        &self,
        labels: &[(&str, Option<&str>)],
    ) -> Result<Vec<crate::engine::Resource>, EngineError> {
        Ok(self
            .lock()
            .volumes
            .iter()
            .filter(|(_, l)| {
                labels.iter().all(|(k, v)| match v {
                    Some(v) => l.get(*k).map(String::as_str) == Some(*v),
                    None => l.contains_key(*k),
                })
            })
            .map(|(name, l)| crate::engine::Resource {
                id: name.clone(),
                name: name.clone(),
                labels: l.clone(),
            })
            .collect())
    }

    async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        let mut state = self.lock();
        if state
            .containers
            .values()
            .any(|c| c.volumes.iter().any(|v| v == name))
        {
            return Err(EngineError::Conflict {
                action: format!("removing volume {name}"),
                what: "a container uses it".into(),
            });
        }
        if state.volumes.remove(name).is_some() {
            state.log.push(format!("remove volume {name}"));
        }
        Ok(())
    }

    async fn create_from_spec(
        &self,
        spec: &ContainerSpec,
        image: &str,
        image_digest: &str,
        suffix: &str,
        aliases: bool,
    ) -> Result<String, EngineError> {
        let name = spec.container_name(suffix);
        let mut state = self.lock();
        if state.containers.values().any(|c| c.name == name) {
            return Err(EngineError::Conflict {
                action: format!("creating container {name}"),
                what: name,
            });
        }
        state.next += 1;
        let id = format!("c{:04}", state.next);
        let mut labels = state.image_labels.get(image).cloned().unwrap_or_default();
        labels.extend(spec.labels_with_digest(image_digest));
        let container = Container {
            id: id.clone(),
            name: name.clone(),
            image: image.to_owned(),
            labels,
            volumes: spec.mounts.iter().map(|m| m.volume.clone()).collect(),
            state: RunState::Created,
            networks: spec
                .networks
                .iter()
                .map(|n| {
                    let aliases = if aliases {
                        n.aliases.clone()
                    } else {
                        Vec::new()
                    };
                    (n.network.clone(), aliases)
                })
                .collect(),
            created: state.next,
        };
        state.containers.insert(id.clone(), container);
        state.log.push(format!("create {name}"));
        Ok(id)
    }

    async fn start_container(&self, id: &str) -> Result<(), EngineError> {
        let hang = {
            let mut state = self.lock();
            match &mut state.starts_left {
                Some(0) => true,
                Some(n) => {
                    *n -= 1;
                    false
                }
                None => false,
            }
        };
        if hang {
            std::future::pending::<()>().await;
        }
        {
            let mut state = self.lock();
            if let Some((n, flag)) = &mut state.interrupt {
                if *n == 0 {
                    flag.store(2, Ordering::SeqCst);
                } else {
                    *n -= 1;
                }
            }
        }
        let failing = self.lock().failing.clone();
        self.with(id, "starting", |c, log| {
            c.state = if failing.contains(&c.image) {
                RunState::Exited { code: 1 }
            } else {
                RunState::Running
            };
            log.push(format!("start {}", c.name));
        })
    }

    async fn stop_container(&self, id: &str, _grace: Option<Duration>) -> Result<(), EngineError> {
        // A container already gone is fine.
        let _ = self.with(id, "stopping", |c, log| {
            if c.is_running() {
                c.state = RunState::Exited { code: 0 };
                log.push(format!("stop {}", c.name));
            }
        });
        Ok(())
    }

    async fn remove_container(&self, id: &str) -> Result<(), EngineError> {
        let mut state = self.lock();
        if let Some(c) = state.containers.remove(id) {
            state.log.push(format!("remove {}", c.name));
        }
        Ok(())
    }

    async fn set_aliases(
        &self,
        id: &str,
        network: &str,
        aliases: &[String],
    ) -> Result<(), EngineError> {
        self.with(id, "changing the aliases of", |c, log| {
            c.networks.insert(network.to_owned(), aliases.to_vec());
            log.push(format!("aliases {} {network} {aliases:?}", c.name));
        })
    }

    async fn logs_tail(&self, _id: &str, _lines: usize) -> Result<String, EngineError> {
        Ok("fake: exiting\n".into())
    }
}

impl Probe for FakeEngine {
    /// Every running container passes.
    async fn check_once(
        &self,
        _d: &ContainerDetails,
        _check: &HealthCheck,
        _network: &str,
    ) -> Result<(), ProbeFailure> {
        Ok(())
    }

    /// The container's image's next `/projection` answer (see `answer_projection`).
    async fn fetch(
        &self,
        d: &ContainerDetails,
        _port: u16,
        path: &str,
        _network: &str,
    ) -> Result<String, ProbeFailure> {
        let mut state = self.lock();
        let image = state
            .containers
            .get(&d.id)
            .map(|c| c.image.clone())
            .unwrap_or_default();
        let Some(bodies) = state.projection.get(&image).cloned() else {
            return Err(ProbeFailure::NotYet(format!("GET {path} answered 404")));
        };
        let n = state.reads.entry(d.id.clone()).or_default();
        let body = bodies
            .get(*n)
            .or(bodies.last())
            .cloned()
            .unwrap_or_default();
        *n += 1;
        Ok(body)
    }
}
