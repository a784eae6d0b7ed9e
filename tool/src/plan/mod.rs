//! Plan computation: a pure function from the desired manifest and the observed engine state to
//! a plan, its fingerprint of the observed state, and its rendering (human and JSON).
//!
//! The engine adapter fills `Observed` from one label-filtered container list, the network and
//! volume lists and the image digest resolution; nothing here does IO.

mod render;
mod rollback;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::contract::{self, ContractError, EventInputs, EventReport, EventVersion};
use crate::labels;
use crate::manifest::{Manifest, NetworkSpec, UpdatePolicy, VolumeSpec};
use crate::spec::{self, ContainerSpec};

#[cfg(test)]
mod tests;

pub use render::{change_text, reason_text, render_human, short_digest, summary_line};
pub use rollback::{for_rollback, MissingSecret, Revision};

/// Version of the saved-plan and `--output json` format. Bumped on incompatible changes.
pub const FORMAT_VERSION: u32 = 1;

/// What the engine holds for a project.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    /// The project's containers (label `deployer.project=<project>`), from one list call.
    pub containers: Vec<ObservedContainer>,
    pub networks: Vec<ObservedNetwork>,
    pub volumes: Vec<ObservedVolume>,
    /// Current digest of each image, keyed by the reference as written in the manifest
    /// (`ImageRef::to_string()`): the registry manifest digest for registry images (tag
    /// resolved without pulling), else the local image id. Missing means unknown: no digest
    /// comparison is made for that image.
    pub image_digests: BTreeMap<String, String>,
}

/// One container as listed by the engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedContainer {
    pub id: String,
    /// Without the leading `/` the engine puts there.
    pub name: String,
    /// The `deployer.service` label; empty if missing.
    pub service: String,
    /// The image reference the container was created from, and the id of that image.
    #[serde(default)]
    pub image: String,
    #[serde(default)]
    pub image_id: String,
    /// IP address per network name, as the engine listed it.
    #[serde(default)]
    pub ips: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub state: ContainerState,
    pub health: HealthStatus,
    /// Creation time, seconds since the Unix epoch.
    pub created: i64,
}

/// The engine's container state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum ContainerState {
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited { code: i64 },
    Dead,
}

/// The engine's health status of a container (`None` when the image defines no health check).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    #[default]
    None,
    Starting,
    Healthy,
    Unhealthy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedNetwork {
    pub id: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedVolume {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

/// The plan: what apply will do, and the fingerprint of the state it was computed from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    pub project: String,
    /// `fingerprint(observed)`: apply refuses a saved plan when the engine's state no longer
    /// has this fingerprint.
    pub fingerprint: String,
    /// Manifest files the plan was computed from.
    pub manifests: Vec<PathBuf>,
    /// Every manifest service (by name), then every orphaned service (by name).
    pub services: Vec<ServicePlan>,
    /// `Manifest::deploy_order`: services of one level may roll in parallel.
    pub deploy_order: Vec<Vec<String>>,
    pub networks_to_create: Vec<NetworkSpec>,
    pub volumes_to_create: Vec<VolumeSpec>,
    pub summary: Summary,
    /// The event gates (`check_events`); not `checked` in a plan made without them. A plan
    /// with refusals is not applied.
    #[serde(default)]
    pub events: EventReport,
}

/// The plan for one service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServicePlan {
    pub service: String,
    pub action: Action,
    /// The image as written in the manifest; `None` for an orphan.
    pub image: Option<String>,
    /// The desired image digest (pinned in the reference, or resolved); `None` if unknown.
    /// Apply writes it into `labels::IMAGE_DIGEST` of the containers it creates.
    pub image_digest: Option<String>,
    /// One spec per replica, replica 1 first; empty for an orphan.
    pub desired: Vec<ContainerSpec>,
    /// The service's containers on the engine, by replica then creation time.
    pub current: Vec<CurrentContainer>,
    /// `None` for an orphan.
    pub update: Option<UpdatePolicy>,
    pub depends_on: Vec<String>,
}

/// A container of the service as it is now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentContainer {
    pub id: String,
    pub name: String,
    pub replica: Option<u32>,
    pub image_digest: Option<String>,
    pub spec_hash: Option<String>,
    pub state: ContainerState,
    pub health: HealthStatus,
}

/// What apply does to a service.
///
/// - `Create`: no container exists; create `desired`.
/// - `Replace`: roll every `current` container to `desired` (creating missing replicas and
///   removing surplus ones, highest replica first).
/// - `Scale`: the containers are up to date but their number differs: create the missing
///   replicas of `desired`, or remove the `current` ones whose replica exceeds `to`.
/// - `Remove`: an orphan (service no longer in the manifest): remove all `current`.
/// - `Unchanged`: nothing to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Action {
    Create,
    Replace { reasons: Vec<ReplaceReason> },
    Scale { from: u32, to: u32 },
    Remove,
    Unchanged,
}

/// Why a service is replaced.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum ReplaceReason {
    /// The image digest differs from the running containers'.
    ImageChanged { from: Option<String>, to: String },
    /// These manifest fields changed (names from `spec::HASHED_FIELDS`, or `unknown` when the
    /// container has no field hashes).
    ConfigChanged {
        fields: Vec<String>,
        /// What changed within `environment`, `secrets` and `ports`, when the running
        /// container's `labels::DETAIL` says (containers made before that label do not).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        changes: Vec<Change>,
    },
    /// The container's health status is unhealthy.
    Unhealthy { container: String },
    /// The container is not running (`exited (1)`, `created`, `restarting`, ...).
    NotRunning { container: String, state: String },
    /// More than one container holds the same replica number (left over by an interrupted
    /// apply), or a container has no replica label.
    Duplicate { container: String },
}

/// A change within one field, as a plan shows it: keys and ports, never values.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "field")]
pub enum Change {
    /// Environment variables added, changed or removed, by name.
    Environment(KeyChanges),
    /// Secrets added, changed or removed, by name (their values are never shown).
    Secrets(KeyChanges),
    /// The published ports before and after, as `spec::port_text` writes them.
    Ports { from: Vec<String>, to: Vec<String> },
}

/// Keys added, changed or removed, each sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KeyChanges {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
}

/// Counts of services per action, plus networks and volumes to create.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub create: usize,
    pub replace: usize,
    pub scale: usize,
    pub remove: usize,
    pub unchanged: usize,
    pub networks_to_create: usize,
    pub volumes_to_create: usize,
}

/// Why a saved plan cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(
        "the saved plan is not valid JSON: {0}; save it again with `deployer plan --out FILE`"
    )]
    Parse(#[from] serde_json::Error),
    #[error("the saved plan has format version {found}, this deployer reads version {FORMAT_VERSION}; make the plan again with this deployer")]
    Version { found: u32 },
    #[error("the saved plan is for project `{plan}` but the manifest is for `{manifest}`; pass the same -f files as when the plan was made")]
    Project { plan: String, manifest: String },
    #[error("the manifest changed since the plan was made (service `{service}` differs); make the plan again")]
    ManifestChanged { service: String },
}

/// Computes the plan. Pure: same inputs, same plan.
pub fn compute(manifest: &Manifest, observed: &Observed) -> Plan {
    let project = manifest.project.as_str();
    let mut by_service: BTreeMap<&str, Vec<&ObservedContainer>> = BTreeMap::new();
    for c in &observed.containers {
        // Only service containers of this project; the lock and history objects carry the
        // project label but no service.
        if c.labels.get(labels::PROJECT).map(String::as_str) != Some(project)
            || c.service.is_empty()
        {
            continue;
        }
        by_service.entry(c.service.as_str()).or_default().push(c);
    }
    for list in by_service.values_mut() {
        list.sort_by_key(|c| (replica_of(c).unwrap_or(u32::MAX), c.created, c.id.clone()));
    }

    let mut services = Vec::new();
    for service in manifest.services.values() {
        let desired: Vec<ContainerSpec> = (1..=service.replicas)
            .map(|r| spec::container_spec(manifest, service, r))
            .collect();
        let current_list = by_service.remove(service.name.as_str()).unwrap_or_default();
        let image_digest = service
            .image
            .digest
            .clone()
            .or_else(|| observed.image_digests.get(service.image.as_str()).cloned());
        let action = service_action(&desired, &current_list, image_digest.as_deref());
        services.push(ServicePlan {
            service: service.name.to_string(),
            action,
            image: Some(service.image.to_string()),
            image_digest,
            desired,
            current: current_list.iter().map(|c| current(c)).collect(),
            update: Some(service.update.clone()),
            depends_on: service.depends_on.iter().map(ToString::to_string).collect(),
        });
    }
    for (service, list) in by_service {
        services.push(ServicePlan {
            service: service.to_owned(),
            action: Action::Remove,
            image: None,
            image_digest: None,
            desired: Vec::new(),
            current: list.iter().map(|c| current(c)).collect(),
            update: None,
            depends_on: Vec::new(),
        });
    }

    let existing_networks: BTreeSet<&str> =
        observed.networks.iter().map(|n| n.name.as_str()).collect();
    let networks_to_create: Vec<NetworkSpec> = manifest
        .networks
        .values()
        .filter(|n| !existing_networks.contains(n.engine_name.as_str()))
        .cloned()
        .collect();
    let existing_volumes: BTreeSet<&str> =
        observed.volumes.iter().map(|v| v.name.as_str()).collect();
    let volumes_to_create: Vec<VolumeSpec> = manifest
        .volumes
        .values()
        .filter(|v| !existing_volumes.contains(v.engine_name.as_str()))
        .cloned()
        .collect();

    let mut summary = Summary {
        networks_to_create: networks_to_create.len(),
        volumes_to_create: volumes_to_create.len(),
        ..Summary::default()
    };
    for s in &services {
        match s.action {
            Action::Create => summary.create += 1,
            Action::Replace { .. } => summary.replace += 1,
            Action::Scale { .. } => summary.scale += 1,
            Action::Remove => summary.remove += 1,
            Action::Unchanged => summary.unchanged += 1,
        }
    }

    Plan {
        format_version: FORMAT_VERSION,
        project: project.to_owned(),
        fingerprint: fingerprint(observed),
        manifests: manifest.sources.clone(),
        services,
        deploy_order: manifest
            .deploy_order()
            .into_iter()
            .map(|level| level.into_iter().map(|s| s.to_string()).collect())
            .collect(),
        networks_to_create,
        volumes_to_create,
        summary,
        events: EventReport::default(),
    }
}

/// A fingerprint of the observed state: changes whenever a container appears, disappears,
/// changes state, health, spec or image, or a network, volume or image digest changes.
/// Independent of the order the engine lists things in. `sha256:<hex>`.
pub fn fingerprint(observed: &Observed) -> String {
    let mut lines: Vec<String> = Vec::new();
    for c in &observed.containers {
        let label = |k: &str| c.labels.get(k).map(String::as_str).unwrap_or("-");
        lines.push(format!(
            "container {} {} {} {} {} {} {} {}",
            c.id,
            c.name,
            c.service,
            label(labels::REPLICA),
            label(labels::SPEC_HASH),
            label(labels::IMAGE_DIGEST),
            state_text(c.state),
            health_text(c.health),
        ));
    }
    for n in &observed.networks {
        lines.push(format!("network {} {}", n.id, n.name));
    }
    for v in &observed.volumes {
        lines.push(format!("volume {}", v.name));
    }
    for (image, digest) in &observed.image_digests {
        lines.push(format!("image {image} {digest}"));
    }
    lines.sort();
    let mut h = Sha256::new();
    for l in &lines {
        h.update(l.as_bytes());
        h.update(b"\n");
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

impl Plan {
    /// Runs the event gates on the plan (pure; the caller gathers `inputs`): fills `events`,
    /// and splits `deploy_order`'s levels where an event constraint needs one service to roll
    /// before another. `allow`: the `--allow-incompatible` versions. Err: a desired image's
    /// contract label is malformed.
    pub fn check_events(
        &mut self,
        inputs: &EventInputs,
        allow: &BTreeSet<EventVersion>,
    ) -> Result<(), ContractError> {
        let shape = contract::PlanShape {
            depends_on: self
                .services
                .iter()
                .filter(|s| s.action != Action::Remove)
                .map(|s| (s.service.clone(), s.depends_on.clone()))
                .collect(),
            rolling: self
                .services
                .iter()
                .filter(|s| matches!(s.action, Action::Create | Action::Replace { .. }))
                .map(|s| s.service.clone())
                .collect(),
        };
        let (report, levels) = contract::check(inputs, &shape, allow)?;
        self.events = report;
        self.deploy_order = levels;
        Ok(())
    }

    /// True when the event gates refuse the plan: `plan` exits 1, `apply` changes nothing.
    pub fn refused(&self) -> bool {
        self.events.refused()
    }

    /// True when apply has anything to do.
    pub fn has_changes(&self) -> bool {
        let s = &self.summary;
        s.create + s.replace + s.scale + s.remove + s.networks_to_create + s.volumes_to_create > 0
    }

    /// The plan as pretty JSON (the documented schema; secrets show as `(sensitive)`).
    pub fn to_json(&self) -> String {
        // Plain data with string keys: serialization cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Reads a saved plan, refusing other format versions. Secrets come back without values:
    /// call `restore_secrets` before applying.
    pub fn from_json(text: &str) -> Result<Plan, PlanError> {
        #[derive(Deserialize)]
        struct Version {
            format_version: u32,
        }
        let v: Version = serde_json::from_str(text)?;
        if v.format_version != FORMAT_VERSION {
            return Err(PlanError::Version {
                found: v.format_version,
            });
        }
        Ok(serde_json::from_str(text)?)
    }

    /// Puts the secret values back into a plan read with `from_json`, from the manifest it was
    /// made from. Refuses when the manifest no longer gives the same specs.
    pub fn restore_secrets(&mut self, manifest: &Manifest) -> Result<(), PlanError> {
        if manifest.project.as_str() != self.project {
            return Err(PlanError::Project {
                plan: self.project.clone(),
                manifest: manifest.project.to_string(),
            });
        }
        for sp in &mut self.services {
            if sp.desired.is_empty() {
                continue;
            }
            let service = manifest.services.get(sp.service.as_str()).ok_or_else(|| {
                PlanError::ManifestChanged {
                    service: sp.service.clone(),
                }
            })?;
            for d in &mut sp.desired {
                let fresh = spec::container_spec(manifest, service, d.replica);
                if fresh.spec_hash != d.spec_hash {
                    return Err(PlanError::ManifestChanged {
                        service: sp.service.clone(),
                    });
                }
                d.secrets = fresh.secrets;
            }
        }
        Ok(())
    }
}

impl CurrentContainer {
    /// `running`, `exited (1)`, ... with `, unhealthy` etc. when the engine reports health.
    pub fn status_text(&self) -> String {
        match self.health {
            HealthStatus::None => state_text(self.state),
            h => format!("{}, {}", state_text(self.state), health_text(h)),
        }
    }
}

/// `running`, `exited (1)`, `created`, ...
pub fn state_text(state: ContainerState) -> String {
    match state {
        ContainerState::Created => "created".into(),
        ContainerState::Running => "running".into(),
        ContainerState::Paused => "paused".into(),
        ContainerState::Restarting => "restarting".into(),
        ContainerState::Removing => "removing".into(),
        ContainerState::Exited { code } => format!("exited ({code})"),
        ContainerState::Dead => "dead".into(),
    }
}

/// `none`, `starting`, `healthy`, `unhealthy`.
pub fn health_text(health: HealthStatus) -> String {
    match health {
        HealthStatus::None => "none",
        HealthStatus::Starting => "starting",
        HealthStatus::Healthy => "healthy",
        HealthStatus::Unhealthy => "unhealthy",
    }
    .into()
}

fn replica_of(c: &ObservedContainer) -> Option<u32> {
    c.labels.get(labels::REPLICA).and_then(|r| r.parse().ok())
}

fn current(c: &ObservedContainer) -> CurrentContainer {
    CurrentContainer {
        id: c.id.clone(),
        name: c.name.clone(),
        replica: replica_of(c),
        image_digest: c
            .labels
            .get(labels::IMAGE_DIGEST)
            .filter(|d| !d.is_empty())
            .cloned(),
        spec_hash: c.labels.get(labels::SPEC_HASH).cloned(),
        state: c.state,
        health: c.health,
    }
}

/// For each desired replica, the container that already is what it should be (its spec and
/// image, running and not unhealthy), if any: an apply keeps these and rolls only the other
/// replicas, so one interrupted half-way (a `kill -9`) is finished without replacing what it
/// already rolled.
pub fn correct_replicas<'c>(
    desired: &[ContainerSpec],
    current: &'c [CurrentContainer],
    image_digest: Option<&str>,
) -> BTreeMap<u32, &'c CurrentContainer> {
    desired
        .iter()
        .filter_map(|d| {
            current
                .iter()
                .find(|c| {
                    c.replica == Some(d.replica)
                        && c.spec_hash.as_deref() == Some(d.spec_hash.as_str())
                        && image_digest.is_none_or(|want| c.image_digest.as_deref() == Some(want))
                        && c.state == ContainerState::Running
                        && c.health != HealthStatus::Unhealthy
                })
                .map(|c| (d.replica, c))
        })
        .collect()
}

/// The changes from the running container's detail `have` to the desired `want`.
fn detail_changes(want: &spec::Detail, have: &spec::Detail) -> Vec<Change> {
    let keys = |want: &BTreeMap<String, String>, have: &BTreeMap<String, String>| KeyChanges {
        added: want
            .keys()
            .filter(|k| !have.contains_key(*k))
            .cloned()
            .collect(),
        changed: want
            .iter()
            .filter(|(k, v)| have.get(*k).is_some_and(|h| h != *v))
            .map(|(k, _)| k.clone())
            .collect(),
        removed: have
            .keys()
            .filter(|k| !want.contains_key(*k))
            .cloned()
            .collect(),
    };
    let mut out = Vec::new();
    let env = keys(&want.env, &have.env);
    if env != KeyChanges::default() {
        out.push(Change::Environment(env));
    }
    let secrets = keys(&want.secrets, &have.secrets);
    if secrets != KeyChanges::default() {
        out.push(Change::Secrets(secrets));
    }
    if want.ports != have.ports {
        out.push(Change::Ports {
            from: have.ports.clone(),
            to: want.ports.clone(),
        });
    }
    out
}

fn service_action(
    desired: &[ContainerSpec],
    current: &[&ObservedContainer],
    image_digest: Option<&str>,
) -> Action {
    let Some(first) = desired.first() else {
        return Action::Remove;
    };
    if current.is_empty() {
        return Action::Create;
    }
    let as_current: Vec<CurrentContainer> = current.iter().map(|c| self::current(c)).collect();
    if correct_replicas(desired, &as_current, image_digest).len() == desired.len()
        && current.len() > desired.len()
    {
        // Every replica is right; the rest are left-overs (of an interrupted apply): remove
        // them, replace nothing.
        return Action::Scale {
            from: current.len() as u32,
            to: desired.len() as u32,
        };
    }
    let want_fields = spec::field_hashes(first);
    let mut changed_fields: BTreeSet<String> = BTreeSet::new();
    let mut reasons: Vec<ReplaceReason> = Vec::new();
    let mut seen_replicas = BTreeSet::new();
    let mut image_from: Option<Option<String>> = None;
    let mut changes: Option<Vec<Change>> = None;
    for c in current {
        if c.labels.get(labels::SPEC_HASH) != Some(&first.spec_hash) {
            if changes.is_none() {
                changes = spec::detail_from_labels(&c.labels)
                    .map(|have| detail_changes(&spec::detail(first), &have));
            }
            match c.labels.get(labels::FIELD_HASHES) {
                Some(label) => {
                    let have = spec::decode_field_hashes(label);
                    for (field, hash) in &want_fields {
                        if have.get(*field) != Some(hash) {
                            changed_fields.insert((*field).to_owned());
                        }
                    }
                    // A field set before and unset now (`stop_signal`, `init`, `user`).
                    for field in have.keys() {
                        if spec::HASHED_FIELDS.contains(&field.as_str())
                            && !want_fields.contains_key(field.as_str())
                        {
                            changed_fields.insert(field.clone());
                        }
                    }
                    if changed_fields.is_empty() {
                        // Same fields, different overall hash: a label was edited by hand.
                        changed_fields.insert("unknown".to_owned());
                    }
                }
                None => {
                    changed_fields.insert("unknown".to_owned());
                }
            }
        }
        if let Some(want) = image_digest {
            // An empty label means the digest was unknown when the container was created.
            let have = c.labels.get(labels::IMAGE_DIGEST).filter(|d| !d.is_empty());
            if have.map(String::as_str) != Some(want) && image_from.is_none() {
                image_from = Some(have.cloned());
            }
        }
        match c.state {
            ContainerState::Running => {
                if c.health == HealthStatus::Unhealthy {
                    reasons.push(ReplaceReason::Unhealthy {
                        container: c.name.clone(),
                    });
                }
            }
            state => reasons.push(ReplaceReason::NotRunning {
                container: c.name.clone(),
                state: state_text(state),
            }),
        }
        match replica_of(c) {
            Some(r) if seen_replicas.insert(r) => {}
            _ => reasons.push(ReplaceReason::Duplicate {
                container: c.name.clone(),
            }),
        }
    }
    if let (Some(from), Some(to)) = (image_from, image_digest) {
        reasons.insert(
            0,
            ReplaceReason::ImageChanged {
                from,
                to: to.to_owned(),
            },
        );
    }
    if !changed_fields.is_empty() {
        let at = usize::from(matches!(
            reasons.first(),
            Some(ReplaceReason::ImageChanged { .. })
        ));
        reasons.insert(
            at,
            ReplaceReason::ConfigChanged {
                fields: changed_fields.into_iter().collect(),
                changes: changes.unwrap_or_default(),
            },
        );
    }
    if !reasons.is_empty() {
        return Action::Replace { reasons };
    }
    let want: BTreeSet<u32> = desired.iter().map(|d| d.replica).collect();
    if seen_replicas != want {
        return Action::Scale {
            from: current.len() as u32,
            to: desired.len() as u32,
        };
    }
    Action::Unchanged
}
