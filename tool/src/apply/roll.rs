//! Rolling one service: its replicas in groups of `parallelism`, each new container created,
//! started and health-gated, and the old ones taken out of the DNS alias, drained and stopped
//! (before the new one starts with stop-first, after it is healthy with start-first).

use std::collections::BTreeSet;

use futures::future::join_all;

use super::error::RollError;
use super::execute::Executor;
use super::health::{self, Probe, ProbeTarget, Unhealthy};
use super::projection;
use crate::engine::{ContainerEngine, EngineError};
use crate::manifest::{HealthCheck, UpdateOrder};
use crate::observe;
use crate::plan::{self, Action, ServicePlan};
use crate::spec::ContainerSpec;

/// What an apply did to one service, so it can be committed or undone.
#[derive(Debug, Default)]
pub(super) struct Rolled {
    pub service: String,
    /// New containers started (and healthy, unless the service failed).
    pub new: Vec<String>,
    /// Old containers stopped: removed on commit, started again on undo.
    pub retired: Vec<String>,
    /// Old containers taken out of the service's DNS alias before they were stopped: (id,
    /// network, aliases it had there), given back on undo.
    pub unaliased: Vec<(String, String, Vec<String>)>,
    /// Containers that were not running to begin with (left over by an interrupted apply):
    /// removed on commit, left as they are on undo.
    pub leftovers: Vec<String>,
    /// Roll order used: stop-first services stop new containers before restarting old ones.
    pub stop_first: bool,
    pub probe: Option<HealthCheck>,
    pub probe_target: Option<ProbeTarget>,
    /// Volumes a blue/green projection rebuild made for the new containers: removed on undo.
    pub fresh_volumes: Vec<String>,
    /// Volumes the old containers' projection was built in, replaced by a blue/green rebuild:
    /// removed on commit unless `projection.keep_old`, else at the next successful apply.
    pub old_volumes: Vec<String>,
    /// Volumes of a projection version replaced by an earlier apply, whose containers this
    /// apply replaces: removed on commit.
    pub expired_volumes: Vec<String>,
    /// `projection.keep_old` of the service.
    pub keep_old: bool,
}

impl<E: ContainerEngine, P: Probe> Executor<'_, E, P> {
    /// Rolls one service; returns what was done and the failure, if any.
    pub(super) async fn roll_service(&self, sp: &ServicePlan) -> (Rolled, Option<RollError>) {
        let Some(first) = sp.desired.first() else {
            return (
                Rolled {
                    service: sp.service.clone(),
                    ..Default::default()
                },
                None,
            );
        };
        let publishes_host_port = first.ports.iter().any(|p| p.host_port.is_some());
        let order = sp.update.as_ref().map(|u| u.order).unwrap_or_default();
        let stop_first = order == UpdateOrder::StopFirst || publishes_host_port;
        let parallelism = sp
            .update
            .as_ref()
            .map_or(1, |u| u.parallelism.max(1) as usize);
        let drain = sp
            .update
            .as_ref()
            .map_or(crate::manifest::DEFAULT_DRAIN, |u| u.drain);
        // A fresh service has nobody serving its alias yet; in every other roll a new
        // container joins the alias only once it is healthy.
        let late_alias = !matches!(sp.action, Action::Create);
        let how_to = Retire {
            grace: first.stop_grace_period,
            drain,
        };
        let probe_target = ProbeTarget {
            network: first
                .networks
                .first()
                .map(|n| n.network.clone())
                .unwrap_or_default(),
        };
        let mut rolled = Rolled {
            service: sp.service.clone(),
            stop_first,
            probe: first.health.clone(),
            probe_target: Some(probe_target.clone()),
            ..Default::default()
        };
        let reference = observe::create_reference(&first.image, sp.image_digest.as_deref());
        let digest = sp.image_digest.clone().unwrap_or_default();
        let policy = sp
            .update
            .as_ref()
            .map(|u| u.projection.clone())
            .unwrap_or_default();
        rolled.keep_old = policy.keep_old;

        // A read model: the projection its running containers have built, and whether the new
        // image changes its version (then it is rebuilt blue/green).
        let mut change = None;
        let mut running = projection::Running::default();
        if matches!(sp.action, Action::Replace { .. } | Action::Scale { .. }) {
            let found = async {
                let running = self.running_projection(sp).await?;
                let to = self.image_projection(&reference).await?;
                Ok::<_, RollError>((running, to))
            }
            .await;
            match found {
                Ok((r, to)) => {
                    if let (Some(from), Some(to), Action::Replace { .. }) =
                        (r.version, to, &sp.action)
                    {
                        if from != to {
                            change = Some(projection::ProjectionChange { from, to });
                        }
                    }
                    running = r;
                }
                Err(e) => return (rolled, Some(e)),
            }
        }

        // Replicas that already run what they should (an interrupted apply rolled them) are
        // kept; the others are rolled, each replacing the containers of its replica.
        let correct: BTreeSet<&String> =
            plan::correct_replicas(&sp.desired, &sp.current, sp.image_digest.as_deref())
                .into_values()
                .map(|c| &c.id)
                .collect();
        // A same-version roll takes over the volumes the running projection lives in; the
        // volumes of the version before it go when this apply succeeds.
        if change.is_none() {
            if let Some(p) = &running.previous {
                rolled.expired_volumes.extend(p.volumes.values().cloned());
            }
        }
        let desired: Vec<ContainerSpec> = if change.is_none() && !running.volumes.is_empty() {
            sp.desired
                .iter()
                .map(|d| projection::with_volumes(d, &running.volumes, None))
                .collect()
        } else {
            sp.desired.clone()
        };
        let to_start: Vec<&ContainerSpec> = desired
            .iter()
            .filter(|d| {
                !sp.current
                    .iter()
                    .any(|c| c.replica == Some(d.replica) && correct.contains(&c.id))
            })
            .collect();
        let to_retire: Vec<Vec<String>> = to_start
            .iter()
            .map(|d| {
                sp.current
                    .iter()
                    .filter(|c| c.replica == Some(d.replica))
                    .map(|c| c.id.clone())
                    .collect()
            })
            .collect();
        let verb = match &sp.action {
            Action::Create => "creating".to_string(),
            Action::Scale { from, to } => format!("scaling {from} -> {to}"),
            _ => "replacing".to_string(),
        };
        let how = if matches!(sp.action, Action::Replace { .. }) {
            if publishes_host_port {
                " (stop-first: it publishes a fixed host port, so old and new cannot run side by side)"
            } else if stop_first {
                " (stop-first)"
            } else {
                " (start-first)"
            }
        } else {
            ""
        };
        if let Some(c) = change {
            self.progress.service(
                &sp.service,
                format!(
                    "{verb} (blue/green rebuild: projection {} -> {}; the old container serves until the new one has caught up)",
                    c.from, c.to
                ),
            );
            if publishes_host_port {
                return (
                    rolled,
                    Some(RollError::Rebuild {
                        name: sp.service.clone(),
                        reason: "a blue/green rebuild runs old and new side by side, and the service publishes a fixed host port; publish no host port (reach it through the gateway or the network)".into(),
                        logs: String::new(),
                    }),
                );
            }
            if let Some(e) = self
                .roll_blue_green(
                    &to_start,
                    &to_retire,
                    &projection::Rebuild {
                        change: c,
                        running: &running,
                        policy: &policy,
                        reference: &reference,
                        digest: &digest,
                        how_to: &how_to,
                        target: &probe_target,
                    },
                    &mut rolled,
                )
                .await
            {
                self.progress.service(&sp.service, "FAILED");
                return (rolled, Some(e));
            }
            self.progress.service(&sp.service, "done");
            return (rolled, None);
        }
        self.progress.service(&sp.service, format!("{verb}{how}"));

        // Replicas in groups of `parallelism`.
        let pairs: Vec<(&ContainerSpec, Vec<String>)> = to_start
            .iter()
            .enumerate()
            .map(|(i, s)| (*s, to_retire.get(i).cloned().unwrap_or_default()))
            .collect();
        for group in pairs.chunks(parallelism) {
            if let Some(why) = self.interrupted() {
                self.progress
                    .service(&sp.service, format!("stopped: {why}"));
                return (rolled, Some(RollError::Interrupted { why }));
            }
            let results = join_all(group.iter().map(|(spec, olds)| {
                self.roll_replica(
                    spec,
                    olds,
                    &reference,
                    &digest,
                    stop_first,
                    late_alias,
                    &how_to,
                    &probe_target,
                )
            }))
            .await;
            let mut failure = None;
            for r in results {
                rolled.new.extend(r.new);
                rolled.retired.extend(r.retired);
                rolled.unaliased.extend(r.unaliased);
                if let Some(e) = r.error {
                    failure.get_or_insert(e);
                }
            }
            if let Some(e) = failure {
                // The reason is printed once, in the apply's error at the end.
                self.progress.service(&sp.service, "FAILED");
                return (rolled, Some(e));
            }
        }
        // Containers beyond the desired replicas (or duplicates) go once the rest is rolled.
        let paired: BTreeSet<&String> = to_retire.iter().flatten().collect();
        let extra: Vec<&plan::CurrentContainer> = sp
            .current
            .iter()
            .filter(|c| !paired.contains(&c.id) && !correct.contains(&c.id))
            .filter(|c| !rolled.retired.contains(&c.id))
            .collect();
        let (running, stopped): (Vec<_>, Vec<_>) = extra
            .into_iter()
            .partition(|c| c.state == plan::ContainerState::Running);
        rolled
            .leftovers
            .extend(stopped.into_iter().map(|c| c.id.clone()));
        let running: Vec<String> = running.into_iter().map(|c| c.id.clone()).collect();
        let mut out = ReplicaResult::default();
        let retired = self.retire(&running, &how_to, &mut out).await;
        rolled.retired.extend(out.retired);
        rolled.unaliased.extend(out.unaliased);
        if let Err(e) = retired {
            return (rolled, Some(e.into()));
        }
        self.progress.service(&sp.service, "done");
        (rolled, None)
    }

    /// Rolls one replica: the new container is created (without the service's DNS alias when
    /// `late_alias`), started and health-gated, then given the alias; the old ones are retired
    /// (see [`Executor::retire`]) before that with `stop_first`, else after.
    #[allow(clippy::too_many_arguments)]
    async fn roll_replica(
        &self,
        spec: &ContainerSpec,
        olds: &[String],
        reference: &str,
        digest: &str,
        stop_first: bool,
        late_alias: bool,
        how_to: &Retire,
        target: &ProbeTarget,
    ) -> ReplicaResult {
        let mut out = ReplicaResult::default();
        if stop_first {
            if let Err(e) = self.retire(olds, how_to, &mut out).await {
                out.error = Some(e.into());
                return out;
            }
        }
        let suffix = random_suffix();
        let id = match self
            .engine
            .create_from_spec(spec, reference, digest, &suffix, !late_alias)
            .await
        {
            Ok(id) => id,
            Err(e) => {
                out.error = Some(e.into());
                return out;
            }
        };
        let name = spec.container_name(&suffix);
        if let Err(e) = self.engine.start_container(&id).await {
            let _ = self.engine.remove_container(&id).await;
            out.error = Some(explain_start_error(e, spec));
            return out;
        }
        let wait = health::wait_healthy(self.engine, self.probe, &id, spec.health.as_ref(), target);
        let interrupted = async {
            loop {
                if let Some(why) = self.interrupted() {
                    return why;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        };
        let healthy = tokio::select! {
            r = wait => r,
            why = interrupted => Err(Unhealthy { reason: why }),
        };
        match healthy {
            Ok(took) => {
                self.progress.service(
                    &spec.service,
                    format!("{name} healthy after {:.3}s", took.as_secs_f64()),
                );
            }
            Err(Unhealthy { reason }) => {
                let logs = self
                    .engine
                    .logs_tail(&id, self.log_lines)
                    .await
                    .unwrap_or_else(|e| format!("(logs unavailable: {e})"));
                let _ = self.engine.remove_container(&id).await;
                out.error = Some(RollError::Unhealthy {
                    name,
                    reason,
                    logs: log_tail_text(&logs),
                });
                return out;
            }
        }
        if late_alias {
            for n in &spec.networks {
                if let Err(e) = self.engine.set_aliases(&id, &n.network, &n.aliases).await {
                    let _ = self.engine.remove_container(&id).await;
                    out.error = Some(RollError::Alias {
                        name: name.clone(),
                        source: e,
                    });
                    return out;
                }
            }
        }
        out.new.push(id);
        if !stop_first {
            if let Err(e) = self.retire(olds, how_to, &mut out).await {
                out.error = Some(e.into());
                return out;
            }
        }
        out
    }

    /// Takes old containers out of service: each leaves the service's DNS alias on every
    /// network (it stays on the network, under a new address, so it can finish its own work),
    /// then after `drain` all of them are stopped. Records what it did in `out`.
    pub(super) async fn retire(
        &self,
        olds: &[String],
        how: &Retire,
        out: &mut ReplicaResult,
    ) -> Result<(), EngineError> {
        if olds.is_empty() {
            return Ok(());
        }
        for id in olds {
            let details = self.engine.inspect_container(id).await?;
            let service = details.labels.get(crate::labels::SERVICE);
            for (network, aliases) in &details.networks {
                if !service.is_some_and(|s| aliases.contains(s)) {
                    continue;
                }
                self.engine.set_aliases(id, network, &[]).await?;
                out.unaliased
                    .push((id.clone(), network.clone(), aliases.clone()));
            }
        }
        if !how.drain.is_zero() {
            tokio::time::sleep(how.drain).await;
        }
        for id in olds {
            self.engine.stop_container(id, Some(how.grace)).await?;
            out.retired.push(id.clone());
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
pub(super) struct ReplicaResult {
    pub new: Vec<String>,
    pub retired: Vec<String>,
    pub unaliased: Vec<(String, String, Vec<String>)>,
    pub error: Option<RollError>,
}

/// How a service's old containers are stopped.
pub(super) struct Retire {
    /// `stop_grace_period`: SIGTERM (or `stop_signal`) to SIGKILL.
    grace: std::time::Duration,
    /// Time between leaving the DNS alias and the stop.
    drain: std::time::Duration,
}

fn explain_start_error(e: EngineError, spec: &ContainerSpec) -> RollError {
    let text = e.to_string();
    if text.contains("port is already allocated") || text.contains("address already in use") {
        let ports: Vec<String> = spec
            .ports
            .iter()
            .filter_map(|p| p.host_port.map(|h| h.to_string()))
            .collect();
        return RollError::PortInUse {
            ports: ports.join(", "),
            service: spec.service.clone(),
            source: e,
        };
    }
    e.into()
}

pub(super) fn random_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    format!("{:08x}", h.finish() as u32)
}

/// `. Its last 3 log lines:` and the lines, indented; `, and wrote no log output` when there
/// are none, so no heading is ever left without lines.
pub(super) fn log_tail_text(logs: &str) -> String {
    let lines: Vec<&str> = logs
        .trim_end()
        .lines()
        .skip_while(|l| l.trim().is_empty())
        .collect();
    match lines.len() {
        0 => ", and wrote no log output".into(),
        n => format!(
            ". Its last {}:\n{}",
            if n == 1 {
                "log line".to_string()
            } else {
                format!("{n} log lines")
            },
            lines
                .iter()
                .map(|l| format!("    {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}
