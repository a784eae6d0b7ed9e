//! The executor: carries out a plan on a [`ContainerEngine`], level by level, and then either
//! commits (removes the retired containers) or undoes every service it rolled.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use futures::future::join_all;

use super::error::{Cause, Failure, PrepareError, UndoError};
use super::health::{self, Probe, ProbeTarget};
use super::roll::Rolled;
use super::ApplyOptions;
use crate::engine::{ContainerEngine, EngineError, PullAuth};
use crate::history::{Outcome, RecordedAction, ServiceRecord, ServiceResult};
use crate::manifest::{FailureAction, HealthCheck, ImageRef};
use crate::observe::{self, ObserveError};
use crate::plan::{Action, Plan, ServicePlan};
use crate::progress::Progress;
use crate::registry::RegistryClient;

/// What a run of the executor did: the service records, the outcome and why it failed.
#[derive(Debug)]
pub(crate) struct Executed {
    pub services: Vec<ServiceRecord>,
    pub outcome: Outcome,
    pub failure: Option<Failure>,
}

pub(crate) struct Executor<'a, E, P> {
    pub(super) engine: &'a E,
    pub(super) probe: &'a P,
    registry: &'a RegistryClient,
    pub(super) progress: &'a Progress,
    pub(super) log_lines: usize,
    interrupt: Arc<AtomicI32>,
}

impl<'a, E: ContainerEngine, P: Probe> Executor<'a, E, P> {
    pub(crate) fn new(
        engine: &'a E,
        probe: &'a P,
        registry: &'a RegistryClient,
        options: &ApplyOptions,
        progress: &'a Progress,
    ) -> Self {
        Executor {
            engine,
            probe,
            registry,
            progress,
            log_lines: options.log_lines,
            interrupt: options.interrupt.clone(),
        }
    }

    /// Carries out `plan`.
    pub(crate) async fn execute(&self, plan: &Plan) -> Executed {
        let mut records: BTreeMap<String, ServiceRecord> = plan
            .services
            .iter()
            .filter(|s| s.action != Action::Unchanged)
            .map(|s| (s.service.clone(), service_record(s)))
            .collect();
        let finish = |records: BTreeMap<String, ServiceRecord>, outcome, failure| Executed {
            services: records.into_values().collect(),
            outcome,
            failure,
        };

        // 1. Images, networks, volumes: nothing has changed if any of these fails.
        if let Err(e) = self.prepare(plan).await {
            return finish(records, Outcome::RolledBack, Some(Failure::Prepare(e)));
        }

        // 2. Roll level by level; services of one level in parallel.
        let mut done: Vec<Rolled> = Vec::new();
        let mut causes: Vec<Cause> = Vec::new();
        for level in &plan.deploy_order {
            if let Some(why) = self.interrupted() {
                causes.push(Cause::Interrupted {
                    why,
                    level: level.join(", "),
                });
                break;
            }
            let work: Vec<&ServicePlan> = level
                .iter()
                .filter_map(|name| plan.services.iter().find(|s| &s.service == name))
                .filter(|s| rolls(&s.action))
                .collect();
            let results = join_all(work.iter().map(|sp| self.roll_service(sp))).await;
            for (rolled, err) in results {
                if let Some(r) = records.get_mut(&rolled.service) {
                    r.result = match &err {
                        None => ServiceResult::Rolled,
                        Some(e) => ServiceResult::Failed {
                            reason: first_line(&e.to_string()).to_owned(),
                        },
                    };
                }
                if let Some(error) = err {
                    causes.push(Cause::Service {
                        service: rolled.service.clone(),
                        error,
                    });
                }
                done.push(rolled);
            }
            if !causes.is_empty() {
                break;
            }
        }

        if !causes.is_empty() {
            let paused = plan.services.iter().any(|s| {
                records
                    .get(&s.service)
                    .is_some_and(|r| r.result.is_failed())
                    && s.update.as_ref().map(|u| u.failure_action) == Some(FailureAction::Pause)
            });
            if paused {
                // A failing service asked for `failure_action: pause`: keep what was rolled.
                for rolled in &done {
                    for id in &rolled.retired {
                        let _ = self.engine.remove_container(id).await;
                    }
                }
                let failure = Failure::Roll {
                    causes,
                    paused: true,
                };
                return finish(records, Outcome::Failed, Some(failure));
            }
            // 3a. Undo every service rolled by this apply, newest first.
            let mut clean = true;
            for rolled in done.iter().rev() {
                match (self.undo(rolled).await, records.get_mut(&rolled.service)) {
                    (Ok(()), Some(r)) if r.result == ServiceResult::Rolled => {
                        r.result = ServiceResult::RolledBack;
                    }
                    (Ok(()), _) => {}
                    (Err(e), record) => {
                        clean = false;
                        // The reason is printed once, with the service results at the end.
                        self.progress
                            .service(&rolled.service, "rolling back FAILED");
                        if let Some(r) = record {
                            r.result = ServiceResult::RollbackFailed {
                                reason: e.to_string(),
                            };
                        }
                    }
                }
            }
            let outcome = if clean {
                Outcome::RolledBack
            } else {
                Outcome::Failed
            };
            let failure = Failure::Roll {
                causes,
                paused: false,
            };
            return finish(records, outcome, Some(failure));
        }

        // 3b. Commit: remove retired containers, then orphans.
        let mut cleanup: Vec<EngineError> = Vec::new();
        for rolled in &done {
            for id in rolled.retired.iter().chain(&rolled.leftovers) {
                if let Err(e) = self.engine.remove_container(id).await {
                    cleanup.push(e);
                }
            }
            let removed = rolled.retired.len() + rolled.leftovers.len();
            if removed > 0 {
                self.progress.service(
                    &rolled.service,
                    format!("removed {removed} old container(s)"),
                );
            }
        }
        for sp in plan.services.iter().filter(|s| s.action == Action::Remove) {
            self.progress
                .service(&sp.service, "removing (no longer in the manifest)");
            for c in &sp.current {
                let res = async {
                    self.engine.stop_container(&c.id, None).await?;
                    self.engine.remove_container(&c.id).await
                }
                .await;
                if let Err(e) = res {
                    cleanup.push(e);
                }
            }
            if let Some(r) = records.get_mut(&sp.service) {
                r.result = ServiceResult::Rolled;
            }
        }
        if !cleanup.is_empty() {
            return finish(records, Outcome::Failed, Some(Failure::Cleanup(cleanup)));
        }
        self.remove_replaced_projections(plan, &done).await;
        finish(records, Outcome::Succeeded, None)
    }

    async fn prepare(&self, plan: &Plan) -> Result<(), PrepareError> {
        let mut pulled = BTreeSet::new();
        for sp in plan.services.iter().filter(|s| rolls(&s.action)) {
            let Some(spec) = sp.desired.first() else {
                continue;
            };
            let reference = observe::create_reference(&spec.image, sp.image_digest.as_deref());
            if !pulled.insert(reference.clone()) {
                continue;
            }
            self.ensure_image(&spec.image, &reference).await?;
        }
        for n in &plan.networks_to_create {
            self.progress
                .line(format!("creating network {}", n.engine_name));
            self.engine
                .create_network(&n.engine_name, &n.labels)
                .await?;
        }
        for v in &plan.volumes_to_create {
            self.progress
                .line(format!("creating volume {}", v.engine_name));
            self.engine.create_volume(&v.engine_name, &v.labels).await?;
        }
        Ok(())
    }

    async fn ensure_image(&self, image: &ImageRef, reference: &str) -> Result<(), PrepareError> {
        if self.engine.image(reference).await?.is_some() {
            return Ok(());
        }
        let Some(host) = &image.registry else {
            return Err(ObserveError::MissingLocalImage {
                images: vec![image.as_str().to_string()],
            }
            .into());
        };
        let auth = self.registry.credentials(host)?.map(|c| PullAuth {
            username: c.username,
            password: c.secret,
            server: host.clone(),
        });
        let mut bar = self.progress.pull(reference);
        let res = self
            .engine
            .pull(reference, auth.as_ref(), &mut |e| bar.event(e))
            .await;
        bar.finish();
        Ok(res?)
    }

    /// Puts one service back: its retired containers run again, its new ones are removed.
    async fn undo(&self, rolled: &Rolled) -> Result<(), UndoError> {
        if rolled.new.is_empty()
            && rolled.retired.is_empty()
            && rolled.unaliased.is_empty()
            && rolled.fresh_volumes.is_empty()
        {
            return Ok(());
        }
        self.progress.service(&rolled.service, "rolling back");
        let remove_new = || async {
            for id in &rolled.new {
                let _ = self.engine.stop_container(id, None).await;
                self.engine.remove_container(id).await?;
            }
            Ok::<(), UndoError>(())
        };
        if rolled.stop_first {
            remove_new().await?;
        }
        let target = rolled.probe_target.clone().unwrap_or(ProbeTarget {
            network: String::new(),
        });
        for (id, network, aliases) in &rolled.unaliased {
            self.engine.set_aliases(id, network, aliases).await?;
        }
        for id in &rolled.retired {
            self.engine.start_container(id).await?;
        }
        for id in &rolled.retired {
            let check = self.own_health_check(id, rolled.probe.as_ref()).await;
            health::wait_healthy(self.engine, self.probe, id, check.as_ref(), &target)
                .await
                .map_err(|u| UndoError::Unhealthy {
                    id: id.clone(),
                    reason: u.reason,
                })?;
        }
        if !rolled.stop_first {
            remove_new().await?;
        }
        self.remove_fresh_volumes(rolled).await?;
        self.progress.service(&rolled.service, "rolled back");
        Ok(())
    }

    /// After a successful apply: the volumes that blue/green projection rebuilds replaced go,
    /// those replaced by this apply unless `projection.keep_old`, those replaced by an earlier
    /// apply in any case. A volume the manifest itself declares, or one a container still uses,
    /// stays. Failures only warn: the apply itself succeeded.
    async fn remove_replaced_projections(&self, plan: &Plan, done: &[Rolled]) {
        let declared: BTreeSet<&str> = plan
            .services
            .iter()
            .flat_map(|s| s.desired.iter())
            .flat_map(|d| d.mounts.iter())
            .map(|m| m.volume.as_str())
            .collect();
        let mut replaced: BTreeMap<String, String> = BTreeMap::new();
        for rolled in done {
            let old = rolled.old_volumes.iter().filter(|_| !rolled.keep_old);
            for v in old.chain(&rolled.expired_volumes) {
                replaced.insert(v.clone(), rolled.service.clone());
            }
        }
        let created: BTreeSet<&String> = done.iter().flat_map(|r| r.new.iter()).collect();
        let earlier = self
            .engine
            .list_containers(&[
                (crate::labels::PROJECT, Some(plan.project.as_str())),
                (crate::labels::PROJECTION_PREVIOUS, None),
            ])
            .await
            .unwrap_or_default();
        for c in earlier.iter().filter(|c| !created.contains(&c.id)) {
            let previous: Option<super::projection::Previous> = c
                .labels
                .get(crate::labels::PROJECTION_PREVIOUS)
                .and_then(|v| serde_json::from_str(v).ok());
            for v in previous.into_iter().flat_map(|p| p.volumes.into_values()) {
                let service = c
                    .labels
                    .get(crate::labels::SERVICE)
                    .cloned()
                    .unwrap_or_default();
                replaced.insert(v, service);
            }
        }
        let existing: BTreeSet<String> = self
            .engine
            .list_volumes(&[(crate::labels::PROJECT, Some(plan.project.as_str()))])
            .await
            .map(|l| l.into_iter().map(|v| v.name).collect())
            .unwrap_or_default();
        for (volume, service) in replaced {
            if declared.contains(volume.as_str()) || !existing.contains(&volume) {
                continue;
            }
            match self.engine.remove_volume(&volume).await {
                Ok(()) => self.progress.service(
                    &service,
                    format!("removed volume {volume} of the replaced projection"),
                ),
                Err(e) => self.progress.service(
                    &service,
                    format!(
                        "warning: could not remove volume {volume} of the replaced projection: {e}"
                    ),
                ),
            }
        }
    }

    /// `interrupted by SIGINT` (or SIGTERM) once the binary caught one.
    pub(super) fn interrupted(&self) -> Option<String> {
        match self.interrupt.load(Ordering::SeqCst) {
            0 => None,
            2 => Some("interrupted by SIGINT".into()),
            15 => Some("interrupted by SIGTERM".into()),
            n => Some(format!("interrupted by signal {n}")),
        }
    }

    /// The health check an old container was created with, from its `deployer.health` label, so
    /// an undo checks it by its own spec and not by the new one's. A container created before
    /// that label existed gets `new_check` when its `health` field hash shows the check did not
    /// change, else none (it must then only be running, and Docker-healthy if its image says).
    async fn own_health_check(
        &self,
        id: &str,
        new_check: Option<&HealthCheck>,
    ) -> Option<HealthCheck> {
        let Ok(details) = self.engine.inspect_container(id).await else {
            return new_check.cloned();
        };
        if let Some(own) = crate::spec::health_from_labels(&details.labels) {
            return own;
        }
        let same = details
            .labels
            .get(crate::labels::FIELD_HASHES)
            .map(|l| crate::spec::decode_field_hashes(l))
            .and_then(|f| f.get("health").cloned())
            == Some(crate::spec::health_field_hash(new_check));
        if same {
            new_check.cloned()
        } else {
            None
        }
    }
}

/// True for the actions that create containers.
fn rolls(action: &Action) -> bool {
    matches!(
        action,
        Action::Create | Action::Replace { .. } | Action::Scale { .. }
    )
}

fn service_record(sp: &ServicePlan) -> ServiceRecord {
    let action = match sp.action {
        Action::Create => RecordedAction::Create,
        Action::Replace { .. } => RecordedAction::Replace,
        Action::Scale { .. } => RecordedAction::Scale,
        Action::Remove => RecordedAction::Remove,
        Action::Unchanged => RecordedAction::Unchanged,
    };
    let first = sp.desired.first();
    ServiceRecord {
        service: sp.service.clone(),
        action,
        image: sp.image.clone(),
        old_digest: sp.current.first().and_then(|c| c.image_digest.clone()),
        new_digest: sp.image_digest.clone(),
        old_spec_hash: sp.current.first().and_then(|c| c.spec_hash.clone()),
        new_spec_hash: first.map(|s| s.spec_hash.clone()),
        // Until the executor gets to it.
        result: ServiceResult::NotStarted,
        specs: sp.desired.clone(),
        create_reference: first
            .map(|s| observe::create_reference(&s.image, sp.image_digest.as_deref())),
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}
