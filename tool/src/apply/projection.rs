//! Blue/green rebuilds of a read model. When a roll changes the image label
//! `io.fleet.projection.version`, the new container starts beside the old one on fresh volumes of
//! its own and rebuilds from the event log while the old one keeps serving under the service's
//! DNS alias. The roll polls the new container's `projection.path` (`{"version", "position",
//! "head", "lag"}`), shows the progress, and moves the alias only once the lag is at most
//! `projection.max_lag` and the container is healthy; if that takes longer than
//! `projection.timeout`, the new container and its fresh volumes are removed and the roll fails
//! like a failed health gate.
//!
//! The volumes a container really mounts, and what it replaced, are kept in its labels
//! (`labels::PROJECTION_VOLUMES`, `labels::PROJECTION_PREVIOUS`), so a later roll of the same
//! projection version takes over the same volumes, and a rollback to the previous version
//! returns to the previous volumes, which are kept until the next successful apply.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::error::RollError;
use super::execute::Executor;
use super::health::{Probe, ProbeTarget, Unhealthy};
use super::roll::{log_tail_text, random_suffix, Retire, Rolled};
use crate::engine::{ContainerEngine, EngineError, RunState};
use crate::labels;
use crate::manifest::ProjectionPolicy;
use crate::plan::{ContainerState, ServicePlan};
use crate::probe::ProbeFailure;
use crate::spec::ContainerSpec;

/// How often the new container's projection is read during a rebuild.
const POLL: Duration = Duration::from_millis(250);
/// How often the rebuild's progress is printed.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// A roll that changes the projection version, from the running container's to the new image's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ProjectionChange {
    pub from: u64,
    pub to: u64,
}

/// One blue/green roll of a service: the change, what runs, the manifest's policy, the new
/// image, how the old containers retire and how the new ones are probed.
pub(super) struct Rebuild<'a> {
    pub change: ProjectionChange,
    pub running: &'a Running,
    pub policy: &'a ProjectionPolicy,
    pub reference: &'a str,
    pub digest: &'a str,
    pub how_to: &'a Retire,
    pub target: &'a ProbeTarget,
}

/// What the running containers of a service say about their projection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Running {
    /// Their image's `io.fleet.projection.version`.
    pub version: Option<u64>,
    /// Manifest volume -> engine volume they mount instead (empty: the manifest's own).
    pub volumes: BTreeMap<String, String>,
    /// What they replaced in a blue/green roll.
    pub previous: Option<Previous>,
}

/// A projection version and the volumes it was built in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Previous {
    pub version: u64,
    pub volumes: BTreeMap<String, String>,
}

/// How far a read model has got, as its `/projection` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub(super) struct Status {
    #[serde(default)]
    pub version: Option<u64>,
    pub position: u64,
    #[serde(default)]
    pub head: Option<u64>,
    #[serde(default)]
    pub lag: Option<u64>,
}

/// The projection version an image or container label says; an error names the label and
/// where it was read.
pub(super) fn version_label(
    labels: &BTreeMap<String, String>,
    whose: &str,
) -> Result<Option<u64>, RollError> {
    match labels.get(labels::PROJECTION_VERSION) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| RollError::ProjectionLabel {
                whose: whose.to_owned(),
                value: v.clone(),
            }),
    }
}

/// `spec` mounting `volumes` (manifest volume -> engine volume) in place of the manifest's,
/// labelled with them and with what it replaces, so later rolls can find them. The spec hash is
/// the desired one's: the plan sees the container as up to date.
pub(super) fn with_volumes(
    spec: &ContainerSpec,
    volumes: &BTreeMap<String, String>,
    previous: Option<&Previous>,
) -> ContainerSpec {
    let mut out = spec.clone();
    for m in &mut out.mounts {
        if let Some(v) = volumes.get(&m.volume) {
            m.volume = v.clone();
        }
    }
    if !volumes.is_empty() {
        out.labels.insert(
            labels::PROJECTION_VOLUMES.to_owned(),
            serde_json::to_string(volumes).unwrap_or_default(),
        );
    }
    if let Some(p) = previous {
        out.labels.insert(
            labels::PROJECTION_PREVIOUS.to_owned(),
            serde_json::to_string(p).unwrap_or_default(),
        );
    }
    out
}

/// The engine volume a fresh rebuild of projection `version` uses for `volume`.
pub(super) fn fresh_volume_name(volume: &str, version: u64) -> String {
    format!("{volume}-projection-{version}")
}

/// `position 1200 of 5000, lag 3800, 2400 events/s`.
fn describe(status: &Status, rate: Option<f64>) -> String {
    let mut s = match (status.head, status.lag) {
        (Some(head), Some(lag)) => {
            format!("position {} of {head}, lag {lag}", status.position)
        }
        _ => format!("position {}, head not read yet", status.position),
    };
    if let Some(r) = rate {
        s.push_str(&format!(", {r:.0} events/s"));
    }
    s
}

impl<E: ContainerEngine, P: Probe> Executor<'_, E, P> {
    /// The projection of the service's running containers, from the first that runs.
    pub(super) async fn running_projection(&self, sp: &ServicePlan) -> Result<Running, RollError> {
        let Some(c) = sp
            .current
            .iter()
            .find(|c| c.state == ContainerState::Running)
        else {
            return Ok(Running::default());
        };
        let details = self.engine.inspect_container(&c.id).await?;
        let whose = format!("running container {}", c.name);
        let version = version_label(&details.labels, &whose)?;
        let volumes = details
            .labels
            .get(labels::PROJECTION_VOLUMES)
            .and_then(|v| serde_json::from_str(v).ok())
            .unwrap_or_default();
        let previous = details
            .labels
            .get(labels::PROJECTION_PREVIOUS)
            .and_then(|v| serde_json::from_str(v).ok());
        Ok(Running {
            version,
            volumes,
            previous,
        })
    }

    /// The projection version the new image declares (it is on the engine by now).
    pub(super) async fn image_projection(&self, reference: &str) -> Result<Option<u64>, RollError> {
        match self.engine.image(reference).await? {
            Some(info) => version_label(&info.labels, &format!("image {reference}")),
            None => Ok(None),
        }
    }

    /// Rolls the replicas `specs` (each replacing the containers `olds` of the same index)
    /// blue/green: see the module's documentation.
    pub(super) async fn roll_blue_green(
        &self,
        specs: &[&ContainerSpec],
        olds: &[Vec<String>],
        rebuild: &Rebuild<'_>,
        rolled: &mut Rolled,
    ) -> Option<RollError> {
        for (i, spec) in specs.iter().enumerate() {
            let olds = olds.get(i).map(Vec::as_slice).unwrap_or_default();
            if let Some(e) = self.rebuild_replica(spec, olds, rebuild, rolled).await {
                return Some(e);
            }
        }
        None
    }

    async fn rebuild_replica(
        &self,
        spec: &ContainerSpec,
        olds: &[String],
        rebuild: &Rebuild<'_>,
        rolled: &mut Rolled,
    ) -> Option<RollError> {
        let Rebuild {
            change,
            running,
            policy,
            reference,
            digest,
            how_to,
            target,
        } = *rebuild;
        // The volumes to rebuild in: the ones the previous version was built in when returning
        // to it (a rollback), else fresh ones.
        let reuse = running.previous.as_ref().filter(|p| p.version == change.to);
        let mut volumes = BTreeMap::new();
        let mut fresh = Vec::new();
        for m in spec.mounts.iter().filter(|m| !m.read_only) {
            match reuse.and_then(|p| p.volumes.get(&m.volume)) {
                Some(v) => {
                    volumes.insert(m.volume.clone(), v.clone());
                }
                None => {
                    let name = fresh_volume_name(&m.volume, change.to);
                    volumes.insert(m.volume.clone(), name.clone());
                    fresh.push(name);
                }
            }
        }
        // What the new container replaces: the running version and its volumes.
        let previous = Previous {
            version: change.from,
            volumes: spec
                .mounts
                .iter()
                .filter(|m| !m.read_only)
                .map(|m| {
                    let now = running.volumes.get(&m.volume).unwrap_or(&m.volume);
                    (m.volume.clone(), now.clone())
                })
                .collect(),
        };
        let volume_labels: BTreeMap<String, String> = [
            (labels::MANAGED_BY, labels::MANAGED_BY_VALUE),
            (labels::PROJECT, spec.project.as_str()),
            (labels::PROJECTION_VOLUME, spec.service.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        for name in &fresh {
            if rolled.fresh_volumes.contains(name) {
                continue;
            }
            if let Err(e) = self.engine.create_volume(name, &volume_labels).await {
                return Some(e.into());
            }
            rolled.fresh_volumes.push(name.clone());
        }
        let spec = with_volumes(spec, &volumes, Some(&previous));
        let suffix = random_suffix();
        let name = spec.container_name(&suffix);
        let id = match self
            .engine
            .create_from_spec(&spec, reference, digest, &suffix, false)
            .await
        {
            Ok(id) => id,
            Err(e) => return Some(e.into()),
        };
        if let Err(e) = self.engine.start_container(&id).await {
            let _ = self.engine.remove_container(&id).await;
            return Some(e.into());
        }
        let started = Instant::now();
        let caught_up = self.wait_caught_up(&id, &spec, policy, target).await;
        let status = match caught_up {
            Ok(status) => status,
            Err(Unhealthy { reason }) => {
                let logs = self
                    .engine
                    .logs_tail(&id, self.log_lines)
                    .await
                    .unwrap_or_else(|e| format!("(logs unavailable: {e})"));
                let _ = self.engine.remove_container(&id).await;
                for v in std::mem::take(&mut rolled.fresh_volumes) {
                    let _ = self.engine.remove_volume(&v).await;
                }
                return Some(RollError::Rebuild {
                    name,
                    reason,
                    logs: log_tail_text(&logs),
                });
            }
        };
        self.progress.service(
            &spec.service,
            format!(
                "{name} caught up after {:.1}s ({}); moving the alias to it",
                started.elapsed().as_secs_f64(),
                describe(&status, None)
            ),
        );
        for n in &spec.networks {
            if let Err(e) = self.engine.set_aliases(&id, &n.network, &n.aliases).await {
                let _ = self.engine.remove_container(&id).await;
                return Some(RollError::Alias {
                    name: name.clone(),
                    source: e,
                });
            }
        }
        rolled.new.push(id);
        rolled.old_volumes.extend(
            previous
                .volumes
                .values()
                .filter(|v| !volumes.values().any(|n| n == *v))
                .cloned(),
        );
        let mut out = super::roll::ReplicaResult::default();
        let retired = self.retire(olds, how_to, &mut out).await;
        rolled.retired.extend(out.retired);
        rolled.unaliased.extend(out.unaliased);
        retired.err().map(RollError::from)
    }

    /// Waits until the container `id` is healthy and its projection's lag is at most
    /// `policy.max_lag`, printing progress; fails when it exits, or after `policy.timeout`.
    async fn wait_caught_up(
        &self,
        id: &str,
        spec: &ContainerSpec,
        policy: &ProjectionPolicy,
        target: &ProbeTarget,
    ) -> Result<Status, Unhealthy> {
        let started = Instant::now();
        let deadline = started + policy.timeout;
        let port = spec.health.as_ref().map_or(0, |h| h.port);
        if port == 0 {
            return Err(Unhealthy {
                reason: format!(
                    "service {} has no HTTP health check, so its projection (`{}` on the health check's port) cannot be read; give it `health: {{port: N}}`",
                    spec.service, policy.path
                ),
            });
        }
        let mut last = String::from("not read yet");
        let mut last_report: Option<(Instant, u64)> = None;
        loop {
            if let Some(why) = self.interrupted() {
                return Err(Unhealthy { reason: why });
            }
            let details = self
                .engine
                .inspect_container(id)
                .await
                .map_err(|e| Unhealthy {
                    reason: format!("inspecting the container failed: {e}"),
                })?;
            match &details.state {
                RunState::Running => {}
                RunState::Exited { code } => {
                    return Err(Unhealthy {
                        reason: format!("the container exited with code {code} while rebuilding"),
                    })
                }
                other => last = format!("the container is {other:?}"),
            }
            if details.state == RunState::Running {
                match self
                    .probe
                    .fetch(&details, port, &policy.path, &target.network)
                    .await
                {
                    Ok(body) => match serde_json::from_str::<Status>(body.trim()) {
                        Ok(status) => {
                            let now = Instant::now();
                            let rate = last_report.map(|(at, position)| {
                                status.position.saturating_sub(position) as f64
                                    / now.duration_since(at).as_secs_f64().max(1e-3)
                            });
                            if last_report.is_none_or(|(at, _)| now - at >= REPORT_EVERY) {
                                self.progress.service(
                                    &spec.service,
                                    format!("rebuilding: {}", describe(&status, rate)),
                                );
                                last_report = Some((now, status.position));
                            }
                            last = describe(&status, None);
                            if status.lag.is_some_and(|lag| lag <= policy.max_lag) {
                                let healthy = match &spec.health {
                                    Some(check) => self
                                        .probe
                                        .check_once(&details, check, &target.network)
                                        .await
                                        .map_err(|f| match f {
                                            ProbeFailure::NotYet(w)
                                            | ProbeFailure::Impossible(w) => w,
                                        }),
                                    None => Ok(()),
                                };
                                match healthy {
                                    Ok(()) => return Ok(status),
                                    Err(why) => last = format!("{last}, but not healthy: {why}"),
                                }
                            }
                        }
                        Err(e) => {
                            last = format!(
                                "{} answered {:?}, not {{\"position\", \"head\", \"lag\"}}: {e}",
                                policy.path,
                                body.trim()
                            )
                        }
                    },
                    Err(ProbeFailure::Impossible(why)) => return Err(Unhealthy { reason: why }),
                    Err(ProbeFailure::NotYet(why)) => last = why,
                }
            }
            if Instant::now() >= deadline {
                return Err(Unhealthy {
                    reason: format!(
                        "its projection did not catch up within {:?} (max_lag {}): {last}; the old container kept serving",
                        policy.timeout, policy.max_lag
                    ),
                });
            }
            tokio::time::sleep(POLL.min(deadline.saturating_duration_since(Instant::now()))).await;
        }
    }

    /// Removes the volumes a blue/green roll made for itself (when the roll is undone).
    pub(super) async fn remove_fresh_volumes(&self, rolled: &Rolled) -> Result<(), EngineError> {
        for v in &rolled.fresh_volumes {
            self.engine.remove_volume(v).await?;
        }
        Ok(())
    }
}
