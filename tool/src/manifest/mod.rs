//! Manifests: YAML with spans, overlays, interpolation, validation, and the checked `Manifest`
//! the rest of the code uses. Nothing outside this module sees the raw YAML.
//!
//! The flow is `yaml` (a span-carrying tree per file) -> `yaml::merge` (overlays) ->
//! `check` (interpolation, env files, secrets, every rule) -> `Manifest`.

mod check;
mod error;
mod image;
mod input;
mod interpolate;
mod types;
mod units;
mod yaml;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use error::{Diagnostic, ManifestError};
pub use input::MAX_FILE_BYTES;
pub use types::{
    duration_ms, parse_cpus, parse_duration, parse_memory, FailureAction, HealthCheck, HealthKind,
    ImageRef, NetworkName, PortMapping, Problem, ProjectName, Protocol, Resources, RestartPolicy,
    Secret, ServiceName, UpdateOrder, UpdatePolicy, VolumeMount, VolumeName, DEFAULT_DRAIN,
    SENSITIVE,
};

/// The manifests looked for, in this order, in the current directory when no `-f` is given.
pub const DEFAULT_MANIFESTS: &[&str] = &["deployer.yaml", "deployer.yml", "manifests/local.yaml"];

/// The first of `DEFAULT_MANIFESTS` that exists under `dir`, as the path relative to it.
pub fn find_default(dir: &Path) -> Option<PathBuf> {
    DEFAULT_MANIFESTS
        .iter()
        .map(PathBuf::from)
        .find(|p| dir.join(p).exists())
}

/// The network every service joins when it lists no `networks`.
pub const DEFAULT_NETWORK: &str = "default";

/// A checked manifest: everything here has been validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub project: ProjectName,
    pub services: BTreeMap<ServiceName, Service>,
    /// Networks used by at least one service (including `default` when used), by manifest name.
    pub networks: BTreeMap<NetworkName, NetworkSpec>,
    /// Named volumes declared under the top-level `volumes:`.
    pub volumes: BTreeMap<VolumeName, VolumeSpec>,
    /// The top-level `event_store`: the service that is the fleet's event store, asked which
    /// event versions it holds. `None` skips the plan's stored-versions check.
    pub event_store: Option<EventStore>,
    /// The files it was loaded from, in overlay order.
    pub sources: Vec<PathBuf>,
}

/// The top-level `event_store: {service: NAME, port: N}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventStore {
    /// A service of the manifest.
    pub service: ServiceName,
    /// The port it listens on inside the project network (not a published port).
    pub port: u16,
}

/// One service of the manifest, checked and resolved (interpolated, env files read, secrets read).
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub name: ServiceName,
    pub image: ImageRef,
    /// Overrides the image's command when set.
    pub command: Option<Vec<String>>,
    /// `env_file` entries first, then `environment` over them.
    pub environment: BTreeMap<String, String>,
    /// Secrets by name: delivered as environment variables of that name, unless they are in
    /// `secret_files`.
    pub secrets: BTreeMap<String, Secret>,
    /// Secrets delivered as files instead: name -> absolute path in the container (`target`).
    pub secret_files: BTreeMap<String, String>,
    pub ports: Vec<PortMapping>,
    /// Never empty: `[default]` when the manifest lists none.
    pub networks: Vec<NetworkName>,
    pub volumes: Vec<VolumeMount>,
    pub health: Option<HealthCheck>,
    pub depends_on: BTreeSet<ServiceName>,
    pub replicas: u32,
    pub update: UpdatePolicy,
    pub resources: Resources,
    /// User labels (never under the deployer's own `deployer.` prefix).
    pub labels: BTreeMap<String, String>,
    pub restart: RestartPolicy,
    /// Time between SIGTERM and SIGKILL when a container is stopped.
    pub stop_grace_period: Duration,
    /// Signal sent to stop a container (Docker `StopSignal`); the image's when `None`.
    pub stop_signal: Option<String>,
    /// Run an init process as PID 1 that forwards signals and reaps children (Docker `Init`).
    pub init: bool,
    /// The user the container runs as (Docker `User`); the image's when `None`.
    pub user: Option<String>,
}

/// A network the project needs, with its engine name `<project>-<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSpec {
    pub name: NetworkName,
    pub engine_name: String,
    /// Labels to create it with (project + managed-by).
    pub labels: BTreeMap<String, String>,
}

/// A named volume the project needs, with its engine name `<project>-<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeSpec {
    pub name: VolumeName,
    pub engine_name: String,
    /// Labels to create it with (project + managed-by).
    pub labels: BTreeMap<String, String>,
}

/// Loads and checks manifests. Later files deep-merge over earlier ones: maps merge key by key,
/// scalars and lists replace. `env` answers `${VAR}` look-ups (pass `|k| std::env::var(k).ok()`).
pub fn load(
    files: &[PathBuf],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Manifest, ManifestError> {
    if files.is_empty() {
        return Err(ManifestError::NoFiles);
    }
    let mut sources = Vec::with_capacity(files.len());
    let mut unreadable = Vec::new();
    for path in files {
        match input::read_text(path) {
            Ok(text) => sources.push((path.clone(), text)),
            Err(f) => {
                let (line, column) = f.at.unwrap_or((0, 0));
                unreadable.push(Diagnostic {
                    file: path.clone(),
                    line,
                    column,
                    key: String::new(),
                    problem: format!("cannot read the manifest: {}", f.problem),
                    fix: f.fix,
                });
            }
        }
    }
    if !unreadable.is_empty() {
        return Err(ManifestError::Invalid(unreadable));
    }
    load_sources(&sources, env)
}

/// Like `load`, from texts already in memory: `(path shown in errors, text)` pairs. Relative
/// `env_file` and secret `file` paths resolve against each path's directory.
pub fn load_sources(
    sources: &[(PathBuf, String)],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Manifest, ManifestError> {
    if sources.is_empty() {
        return Err(ManifestError::NoFiles);
    }
    check::check(sources, env)
}

impl Manifest {
    /// Services grouped in dependency levels: every service comes after all it depends on, and
    /// the services within one level are independent of each other (they may roll in parallel).
    /// Names are sorted within a level.
    pub fn deploy_order(&self) -> Vec<Vec<ServiceName>> {
        let mut placed: BTreeSet<&ServiceName> = BTreeSet::new();
        let mut levels = Vec::new();
        while placed.len() < self.services.len() {
            let level: Vec<ServiceName> = self
                .services
                .values()
                .filter(|s| !placed.contains(&s.name))
                .filter(|s| s.depends_on.iter().all(|d| placed.contains(d)))
                .map(|s| s.name.clone())
                .collect();
            if level.is_empty() {
                // Unreachable for a checked manifest (cycles are rejected); never loop forever.
                let rest = self
                    .services
                    .keys()
                    .filter(|n| !placed.contains(n))
                    .cloned()
                    .collect();
                levels.push(rest);
                break;
            }
            for name in &level {
                if let Some((k, _)) = self.services.get_key_value(name) {
                    placed.insert(k);
                }
            }
            levels.push(level);
        }
        levels
    }

    /// The engine name of one of the project's networks: `<project>-<network>`.
    pub fn network_engine_name(&self, network: &NetworkName) -> String {
        format!("{}-{}", self.project, network)
    }

    /// The engine name of one of the project's volumes: `<project>-<volume>`.
    pub fn volume_engine_name(&self, volume: &VolumeName) -> String {
        format!("{}-{}", self.project, volume)
    }

    /// The directory of the first manifest file (where relative paths start).
    pub fn base_dir(&self) -> &Path {
        self.sources
            .first()
            .and_then(|p| p.parent())
            .unwrap_or(Path::new("."))
    }
}
