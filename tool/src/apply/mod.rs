//! Apply: carries out a plan on the engine under the deploy lock, rolling services in
//! dependency order (independent services in parallel) behind a health gate, and putting the
//! whole fleet back when one service fails. Every apply leaves a history record.
//!
//! A roll never removes an old container before the whole apply has succeeded: it is stopped
//! ("retired") once its replacement is healthy, and removed at the end. A failed apply starts
//! the retired containers again, so the fleet returns to exactly the containers it had.

pub mod health;

use std::collections::BTreeMap;

use futures::future::join_all;

use crate::engine::{Engine, EngineError};
use crate::history::{self, Kind, Outcome, Record, ServiceRecord};
use crate::lock::{self, LockError, LockInfo};
use crate::manifest::{FailureAction, ImageRef, Manifest, UpdateOrder};
use crate::observe::{self, ObserveError};
use crate::plan::{self, Action, Plan, PlanError, ServicePlan};
use crate::progress::Progress;
use crate::registry::RegistryClient;
use crate::spec::ContainerSpec;

use health::{ProbeTarget, Unhealthy};

/// Settings of one apply that do not come from the manifest.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// The command line, recorded in the lock and the history.
    pub command: String,
    /// CI build id to record, if any.
    pub ci_build: Option<String>,
    /// How many log lines of a failed container to show.
    pub log_lines: usize,
    /// Colour the plan printed before the roll.
    pub color: bool,
    /// Set (to the signal number) by the binary on SIGINT or SIGTERM: no new roll step starts,
    /// and the apply is undone like a failed one.
    pub interrupt: std::sync::Arc<std::sync::atomic::AtomicI32>,
    /// How long to wait for the deploy lock while another deployer holds it (zero: fail at
    /// once).
    pub lock_timeout: std::time::Duration,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            command: "deployer apply".into(),
            ci_build: None,
            log_lines: 20,
            color: false,
            interrupt: Default::default(),
            lock_timeout: std::time::Duration::ZERO,
        }
    }
}

/// An apply that could not run, or failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Observe(#[from] ObserveError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("the saved plan is stale: the engine state changed since it was made (plan {planned}, now {now}); run `deployer plan` again")]
    StalePlan { planned: String, now: String },
    #[error("{0}")]
    Failed(Box<ApplyReport>),
    /// `deployer rollback` has nothing to return to: `rolling back web: ...`.
    #[error("rolling back {what}: {why}")]
    Rollback { what: String, why: String },
}

/// What an apply did.
#[derive(Debug, Clone)]
pub struct ApplyReport {
    pub plan: Plan,
    pub record: Record,
    /// Why it failed, with the failed container's last log lines; `None` on success.
    pub failure: Option<String>,
}

impl std::fmt::Display for ApplyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.failure, self.record.outcome) {
            (None, Outcome::NoChanges) => write!(f, "no changes"),
            (None, _) => {
                let n = self
                    .record
                    .services
                    .iter()
                    .filter(|s| s.took_effect())
                    .count();
                write!(f, "apply complete: {n} service(s) changed")
            }
            (Some(why), Outcome::RolledBack) => write!(
                f,
                "apply failed and was rolled back; the fleet runs what it ran before: {why}"
            ),
            (Some(why), _) => write!(
                f,
                "apply failed and the fleet could not be fully put back (see above): {why}"
            ),
        }
    }
}

/// Plans afresh (or checks `saved` against the engine), then applies, under the deploy lock.
pub async fn apply(
    engine: &Engine,
    registry: &RegistryClient,
    manifest: &Manifest,
    saved: Option<Plan>,
    options: &ApplyOptions,
    progress: &Progress,
) -> Result<ApplyReport, ApplyError> {
    let project = manifest.project.as_str();
    if saved.is_none() {
        // Fast path: an apply with nothing to do changes nothing, so it needs no lock and
        // leaves no record (and creates nothing); it still refuses while another apply holds
        // the lock.
        let started = Started::now(Kind::Apply, options);
        let observed = observe::observe(engine, registry, manifest).await?;
        let plan = plan::compute(manifest, &observed);
        if !plan.has_changes() {
            let holder = lock::status(engine, project)
                .await?
                .filter(|h| !h.holder_is_gone());
            match holder {
                // Waiting for the lock: plan again once it is ours (below).
                Some(_) if !options.lock_timeout.is_zero() => {}
                Some(holder) => return Err(ApplyError::Lock(LockError::Held(Box::new(holder)))),
                None => {
                    let record = started.finish(&plan.project, Outcome::NoChanges, Vec::new());
                    return Ok(ApplyReport {
                        plan,
                        record,
                        failure: None,
                    });
                }
            }
        }
    }
    under_lock(
        engine,
        project,
        options,
        progress,
        apply_locked(engine, registry, manifest, saved, options, progress),
    )
    .await
}

/// Runs `work` holding the project's deploy lock, which is released whatever `work` returns; a
/// report with a failure becomes [`ApplyError::Failed`].
async fn under_lock(
    engine: &Engine,
    project: &str,
    options: &ApplyOptions,
    progress: &Progress,
    work: impl std::future::Future<Output = Result<ApplyReport, ApplyError>>,
) -> Result<ApplyReport, ApplyError> {
    let lock = lock::acquire_within(
        engine,
        LockInfo::for_this_process(project, &options.command),
        options.lock_timeout,
        |holder| {
            progress.line(format!(
                "waiting up to {:?} for the deploy lock held by {}@{} (`{}`)",
                options.lock_timeout, holder.holder, holder.host, holder.command
            ))
        },
    )
    .await?;
    report_takeover(&lock, progress);
    let result = work.await;
    let released = lock.release(engine).await;
    let report = result?;
    released?;
    if report.failure.is_some() {
        return Err(ApplyError::Failed(Box::new(report)));
    }
    Ok(report)
}

async fn apply_locked(
    engine: &Engine,
    registry: &RegistryClient,
    manifest: &Manifest,
    saved: Option<Plan>,
    options: &ApplyOptions,
    progress: &Progress,
) -> Result<ApplyReport, ApplyError> {
    let started = Started::now(Kind::Apply, options);
    let observed = observe::observe(engine, registry, manifest).await?;
    let plan = match saved {
        Some(mut saved) => {
            let now = plan::fingerprint(&observed);
            if saved.fingerprint != now {
                return Err(ApplyError::StalePlan {
                    planned: saved.fingerprint,
                    now,
                });
            }
            saved.restore_secrets(manifest)?;
            saved
        }
        None => plan::compute(manifest, &observed),
    };
    let exec = Executor::new(engine, registry, options, progress, &plan.project);
    let (services, outcome, failure) = if plan.has_changes() {
        progress.line(plan::render_human(&plan, options.color).trim_end());
        let done = exec.execute(&plan).await;
        exec.probe.close().await;
        done
    } else {
        (Vec::new(), Outcome::NoChanges, None)
    };
    let record = started.finish(&plan.project, outcome, services);
    if outcome != Outcome::NoChanges {
        history::save(engine, &record).await?;
    }
    Ok(ApplyReport {
        plan,
        record,
        failure,
    })
}

/// Rolls `services` back to their previous successful revision from the history (all services
/// changed by the newest successful apply when `services` is empty), with the same health
/// gating and fleet-level undo as apply. Secret values come from `manifest` by name.
pub async fn rollback(
    engine: &Engine,
    registry: &RegistryClient,
    manifest: &Manifest,
    services: &[String],
    options: &ApplyOptions,
    progress: &Progress,
) -> Result<ApplyReport, ApplyError> {
    under_lock(
        engine,
        manifest.project.as_str(),
        options,
        progress,
        rollback_locked(engine, registry, manifest, services, options, progress),
    )
    .await
}

async fn rollback_locked(
    engine: &Engine,
    registry: &RegistryClient,
    manifest: &Manifest,
    services: &[String],
    options: &ApplyOptions,
    progress: &Progress,
) -> Result<ApplyReport, ApplyError> {
    let project = manifest.project.as_str();
    let started = Started::now(Kind::Rollback, options);
    let records = history::list(engine, project).await?;
    let targets: Vec<String> = if services.is_empty() {
        history::last_changed_services(&records)
    } else {
        services.to_vec()
    };
    if targets.is_empty() {
        return Err(ApplyError::Rollback {
            what: format!("project {project}"),
            why: "no successful apply to roll back; see `deployer history`".into(),
        });
    }
    let current = observe::project_containers(engine, project).await?;
    let mut plan_services = Vec::new();
    for name in &targets {
        let prev =
            history::previous_revision(&records, name).ok_or_else(|| ApplyError::Rollback {
                what: name.clone(),
                why: "no earlier successful revision in the history; see `deployer history`".into(),
            })?;
        let mut specs = prev.specs.clone();
        for spec in &mut specs {
            restore_secrets_by_name(manifest, spec)?;
        }
        let cur: Vec<_> = current.iter().filter(|c| &c.service == name).collect();
        plan_services.push(ServicePlan {
            service: name.clone(),
            action: Action::Replace {
                reasons: vec![plan::ReplaceReason::ConfigChanged {
                    fields: vec!["rollback".into()],
                    changes: Vec::new(),
                }],
            },
            image: prev.image.clone(),
            image_digest: prev.new_digest.clone(),
            desired: specs,
            current: cur
                .iter()
                .map(|c| plan::CurrentContainer {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    replica: c
                        .labels
                        .get(crate::labels::REPLICA)
                        .and_then(|r| r.parse().ok()),
                    image_digest: c.labels.get(crate::labels::IMAGE_DIGEST).cloned(),
                    spec_hash: c.labels.get(crate::labels::SPEC_HASH).cloned(),
                    state: c.state,
                    health: c.health,
                })
                .collect(),
            update: manifest
                .services
                .get(name.as_str())
                .map(|s| s.update.clone()),
            depends_on: Vec::new(),
        });
    }
    let plan = Plan {
        format_version: plan::FORMAT_VERSION,
        project: project.to_string(),
        fingerprint: String::new(),
        manifests: manifest.sources.clone(),
        deploy_order: vec![targets.clone()],
        services: plan_services,
        networks_to_create: Vec::new(),
        volumes_to_create: Vec::new(),
        summary: plan::Summary {
            replace: targets.len(),
            ..Default::default()
        },
    };
    let exec = Executor::new(engine, registry, options, progress, project);
    let (services, outcome, failure) = exec.execute(&plan).await;
    exec.probe.close().await;
    let record = started.finish(project, outcome, services);
    history::save(engine, &record).await?;
    Ok(ApplyReport {
        plan,
        record,
        failure,
    })
}

/// When an apply or rollback began, and who ran it: the history record in the making.
struct Started<'a> {
    id: u64,
    kind: Kind,
    started_at: String,
    options: &'a ApplyOptions,
}

impl<'a> Started<'a> {
    fn now(kind: Kind, options: &'a ApplyOptions) -> Self {
        Started {
            id: history::now_millis(),
            kind,
            started_at: lock::now_rfc3339(),
            options,
        }
    }

    /// The history record of the run, finished now.
    fn finish(self, project: &str, outcome: Outcome, services: Vec<ServiceRecord>) -> Record {
        Record {
            id: self.id,
            project: project.to_owned(),
            kind: self.kind,
            started_at: self.started_at,
            finished_at: lock::now_rfc3339(),
            user: lock::whoami(),
            host: lock::hostname(),
            ci_build: self.options.ci_build.clone(),
            command: self.options.command.clone(),
            outcome,
            services,
        }
    }
}

fn report_takeover(lock: &lock::Lock, progress: &Progress) {
    if let Some(old) = &lock.took_over {
        progress.line(format!(
            "took over the stale deploy lock of {}@{} since {} (`{}`, pid {}): that process no longer runs",
            old.holder, old.host, old.since, old.command, old.pid
        ));
    }
}

fn restore_secrets_by_name(
    manifest: &Manifest,
    spec: &mut ContainerSpec,
) -> Result<(), ApplyError> {
    let service = manifest.services.get(spec.service.as_str());
    for (name, secret) in spec.secrets.iter_mut() {
        let fresh = service.and_then(|s| s.secrets.get(name)).ok_or_else(|| {
            ApplyError::Rollback {
                what: spec.service.clone(),
                why: format!(
                    "the earlier revision uses secret {name}, which the manifest no longer provides; add it back to roll back"
                ),
            }
        })?;
        *secret = fresh.clone();
    }
    Ok(())
}

/// What an apply did to one service, so it can be committed or undone.
#[derive(Debug, Default)]
struct Rolled {
    service: String,
    /// New containers started (and healthy, unless the service failed).
    new: Vec<String>,
    /// Old containers stopped: removed on commit, started again on undo.
    retired: Vec<String>,
    /// Containers that were not running to begin with (left over by an interrupted apply):
    /// removed on commit, left as they are on undo.
    leftovers: Vec<String>,
    /// Roll order used: stop-first services stop new containers before restarting old ones.
    stop_first: bool,
    probe: Option<crate::manifest::HealthCheck>,
    probe_target: Option<ProbeTarget>,
}

struct Executor<'a> {
    engine: &'a Engine,
    registry: &'a RegistryClient,
    progress: &'a Progress,
    probe: health::Prober<'a>,
    log_lines: usize,
    interrupt: std::sync::Arc<std::sync::atomic::AtomicI32>,
}

impl<'a> Executor<'a> {
    fn new(
        engine: &'a Engine,
        registry: &'a RegistryClient,
        options: &ApplyOptions,
        progress: &'a Progress,
        project: &str,
    ) -> Self {
        Executor {
            engine,
            registry,
            progress,
            probe: health::Prober::new(engine, project),
            log_lines: options.log_lines,
            interrupt: options.interrupt.clone(),
        }
    }

    /// Carries out `plan`. Returns per-service records, the outcome and the failure if any.
    async fn execute(&self, plan: &Plan) -> (Vec<ServiceRecord>, Outcome, Option<String>) {
        let mut records: BTreeMap<String, ServiceRecord> = plan
            .services
            .iter()
            .filter(|s| s.action != Action::Unchanged)
            .map(|s| (s.service.clone(), service_record(s)))
            .collect();
        let finish = |records: BTreeMap<String, ServiceRecord>| records.into_values().collect();

        // 1. Images, networks, volumes: nothing has changed if any of these fails.
        if let Err(e) = self.prepare(plan).await {
            for r in records.values_mut() {
                r.result = "not started".into();
            }
            return (
                finish(records),
                Outcome::RolledBack,
                Some(format!("{e}; nothing was changed")),
            );
        }

        // 2. Roll level by level; services of one level in parallel.
        let mut done: Vec<Rolled> = Vec::new();
        let mut failures: Vec<String> = Vec::new();
        for level in &plan.deploy_order {
            if let Some(why) = self.interrupted() {
                failures.push(format!("{why} before rolling {}", level.join(", ")));
                break;
            }
            let work: Vec<&ServicePlan> = level
                .iter()
                .filter_map(|name| plan.services.iter().find(|s| &s.service == name))
                .filter(|s| {
                    matches!(
                        s.action,
                        Action::Create | Action::Replace { .. } | Action::Scale { .. }
                    )
                })
                .collect();
            let results = join_all(work.iter().map(|sp| self.roll_service(sp))).await;
            for (rolled, err) in results {
                if let Some(r) = records.get_mut(&rolled.service) {
                    r.result = match &err {
                        None => "rolled".into(),
                        Some(e) => format!("failed: {}", first_line(e)),
                    };
                }
                if let Some(e) = err {
                    failures.push(format!("service {}: {e}", rolled.service));
                }
                done.push(rolled);
            }
            if !failures.is_empty() {
                break;
            }
        }

        let paused = plan.services.iter().any(|s| {
            records
                .get(&s.service)
                .is_some_and(|r| r.result.starts_with("failed"))
                && s.update.as_ref().map(|u| u.failure_action) == Some(FailureAction::Pause)
        });
        if !failures.is_empty() && paused {
            // A failing service asked for `failure_action: pause`: keep what was rolled.
            for rolled in &done {
                for id in &rolled.retired {
                    let _ = self.engine.remove_container(id).await;
                }
            }
            for r in records.values_mut() {
                if r.result.is_empty() {
                    r.result = "not started".into();
                }
            }
            failures.push(
                "failure_action is pause: services rolled before the failure keep their new version"
                    .into(),
            );
            return (finish(records), Outcome::Failed, Some(failures.join("\n")));
        }
        if !failures.is_empty() {
            // 3a. Undo every service rolled by this apply, newest first.
            let mut clean = true;
            for rolled in done.iter().rev() {
                match self.undo(rolled).await {
                    Ok(()) => {
                        if let Some(r) = records.get_mut(&rolled.service) {
                            if r.result == "rolled" {
                                r.result = "rolled back".into();
                            }
                        }
                    }
                    Err(e) => {
                        clean = false;
                        // The reason is printed once, with the service results at the end.
                        self.progress
                            .service(&rolled.service, "rolling back FAILED");
                        if let Some(r) = records.get_mut(&rolled.service) {
                            r.result = format!("rollback failed: {e}");
                        }
                    }
                }
            }
            for r in records.values_mut() {
                if r.result.is_empty() {
                    r.result = "not started".into();
                }
            }
            let outcome = if clean {
                Outcome::RolledBack
            } else {
                Outcome::Failed
            };
            return (finish(records), outcome, Some(failures.join("\n")));
        }

        // 3b. Commit: remove retired containers, then orphans.
        let mut commit_errors = Vec::new();
        for rolled in &done {
            for id in &rolled.retired {
                if let Err(e) = self.engine.remove_container(id).await {
                    commit_errors.push(e.to_string());
                }
            }
            for id in &rolled.leftovers {
                if let Err(e) = self.engine.remove_container(id).await {
                    commit_errors.push(e.to_string());
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
                    commit_errors.push(e.to_string());
                }
            }
            if let Some(r) = records.get_mut(&sp.service) {
                r.result = "rolled".into();
            }
        }
        if !commit_errors.is_empty() {
            return (
                finish(records),
                Outcome::Failed,
                Some(format!(
                    "the new containers run, but cleaning up old ones failed: {}",
                    commit_errors.join("; ")
                )),
            );
        }
        (finish(records), Outcome::Succeeded, None)
    }

    async fn prepare(&self, plan: &Plan) -> Result<(), String> {
        let mut pulled = std::collections::BTreeSet::new();
        for sp in &plan.services {
            if !matches!(
                sp.action,
                Action::Create | Action::Replace { .. } | Action::Scale { .. }
            ) {
                continue;
            }
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
                .await
                .map_err(|e| e.to_string())?;
        }
        for v in &plan.volumes_to_create {
            self.progress
                .line(format!("creating volume {}", v.engine_name));
            self.engine
                .create_volume(&v.engine_name, &v.labels)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    async fn ensure_image(&self, image: &ImageRef, reference: &str) -> Result<(), String> {
        if self
            .engine
            .image(reference)
            .await
            .map_err(|e| e.to_string())?
            .is_some()
        {
            return Ok(());
        }
        let Some(host) = &image.registry else {
            return Err(ObserveError::MissingLocalImage {
                images: vec![image.as_str().to_string()],
            }
            .to_string());
        };
        let auth = self
            .registry
            .credentials(host)
            .map_err(|e| e.to_string())?
            .map(|c| crate::engine::PullAuth {
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
        res.map_err(|e| e.to_string())
    }

    /// Rolls one service; returns what was done and the failure, if any.
    async fn roll_service(&self, sp: &ServicePlan) -> (Rolled, Option<String>) {
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

        // Replicas that already run what they should (an interrupted apply rolled them) are
        // kept; the others are rolled, each replacing the containers of its replica.
        let correct: std::collections::BTreeSet<&String> =
            plan::correct_replicas(&sp.desired, &sp.current, sp.image_digest.as_deref())
                .into_values()
                .map(|c| &c.id)
                .collect();
        let to_start: Vec<&ContainerSpec> = sp
            .desired
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
                return (rolled, Some(format!("{why}; not every replica was rolled")));
            }
            let results = join_all(group.iter().map(|(spec, olds)| {
                self.roll_replica(spec, olds, &reference, &digest, stop_first, &probe_target)
            }))
            .await;
            let mut failure = None;
            for r in results {
                rolled.new.extend(r.new);
                rolled.retired.extend(r.retired);
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
        let paired: std::collections::BTreeSet<&String> = to_retire.iter().flatten().collect();
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
        for id in running.into_iter().map(|c| c.id.clone()) {
            if let Err(e) = self
                .engine
                .stop_container(&id, Some(first.stop_grace_period))
                .await
            {
                return (rolled, Some(e.to_string()));
            }
            rolled.retired.push(id);
        }
        self.progress.service(&sp.service, "done");
        (rolled, None)
    }

    async fn roll_replica(
        &self,
        spec: &ContainerSpec,
        olds: &[String],
        reference: &str,
        digest: &str,
        stop_first: bool,
        target: &ProbeTarget,
    ) -> ReplicaResult {
        let mut out = ReplicaResult::default();
        if stop_first {
            for id in olds {
                if let Err(e) = self
                    .engine
                    .stop_container(id, Some(spec.stop_grace_period))
                    .await
                {
                    out.error = Some(e.to_string());
                    return out;
                }
                out.retired.push(id.clone());
            }
        }
        let suffix = random_suffix();
        let id = match self
            .engine
            .create_from_spec(spec, reference, digest, &suffix)
            .await
        {
            Ok(id) => id,
            Err(e) => {
                out.error = Some(e.to_string());
                return out;
            }
        };
        let name = spec.container_name(&suffix);
        if let Err(e) = self.engine.start_container(&id).await {
            let _ = self.engine.remove_container(&id).await;
            out.error = Some(explain_start_error(&e, spec));
            return out;
        }
        let wait = health::wait_healthy(&self.probe, &id, spec.health.as_ref(), target);
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
                out.error = Some(format!(
                    "new container {name} is not healthy: {reason}; it was removed{}",
                    log_tail_text(&logs)
                ));
                return out;
            }
        }
        out.new.push(id);
        if !stop_first {
            for old in olds {
                if let Err(e) = self
                    .engine
                    .stop_container(old, Some(spec.stop_grace_period))
                    .await
                {
                    out.error = Some(e.to_string());
                    return out;
                }
                out.retired.push(old.clone());
            }
        }
        out
    }

    /// Puts one service back: its retired containers run again, its new ones are removed.
    async fn undo(&self, rolled: &Rolled) -> Result<(), String> {
        if rolled.new.is_empty() && rolled.retired.is_empty() {
            return Ok(());
        }
        self.progress.service(&rolled.service, "rolling back");
        let remove_new = || async {
            for id in &rolled.new {
                let _ = self.engine.stop_container(id, None).await;
                self.engine
                    .remove_container(id)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok::<(), String>(())
        };
        if rolled.stop_first {
            remove_new().await?;
        }
        let target = rolled.probe_target.clone().unwrap_or(ProbeTarget {
            network: String::new(),
        });
        for id in &rolled.retired {
            self.engine
                .start_container(id)
                .await
                .map_err(|e| e.to_string())?;
        }
        for id in &rolled.retired {
            let check = self.own_health_check(id, rolled.probe.as_ref()).await;
            health::wait_healthy(&self.probe, id, check.as_ref(), &target)
                .await
                .map_err(|u| {
                    format!("restarted old container {id} is not healthy: {}", u.reason)
                })?;
        }
        if !rolled.stop_first {
            remove_new().await?;
        }
        self.progress.service(&rolled.service, "rolled back");
        Ok(())
    }
}

impl Executor<'_> {
    /// `interrupted by SIGINT` (or SIGTERM) once the binary caught one.
    fn interrupted(&self) -> Option<String> {
        match self.interrupt.load(std::sync::atomic::Ordering::SeqCst) {
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
        new_check: Option<&crate::manifest::HealthCheck>,
    ) -> Option<crate::manifest::HealthCheck> {
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

#[derive(Debug, Default)]
struct ReplicaResult {
    new: Vec<String>,
    retired: Vec<String>,
    error: Option<String>,
}

fn service_record(sp: &ServicePlan) -> ServiceRecord {
    let action = match sp.action {
        Action::Create => "create",
        Action::Replace { .. } => "replace",
        Action::Scale { .. } => "scale",
        Action::Remove => "remove",
        Action::Unchanged => "unchanged",
    };
    let first = sp.desired.first();
    ServiceRecord {
        service: sp.service.clone(),
        action: action.into(),
        image: sp.image.clone(),
        old_digest: sp.current.first().and_then(|c| c.image_digest.clone()),
        new_digest: sp.image_digest.clone(),
        old_spec_hash: sp.current.first().and_then(|c| c.spec_hash.clone()),
        new_spec_hash: first.map(|s| s.spec_hash.clone()),
        result: String::new(),
        specs: sp.desired.clone(),
        create_reference: first
            .map(|s| observe::create_reference(&s.image, sp.image_digest.as_deref())),
    }
}

fn explain_start_error(e: &EngineError, spec: &ContainerSpec) -> String {
    let text = e.to_string();
    if text.contains("port is already allocated") || text.contains("address already in use") {
        let ports: Vec<String> = spec
            .ports
            .iter()
            .filter_map(|p| p.host_port.map(|h| h.to_string()))
            .collect();
        return format!(
            "host port {} is already in use by another process or container; free it or change `ports` of service {} ({text})",
            ports.join(", "),
            spec.service
        );
    }
    text
}

fn random_suffix() -> String {
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

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// `. Its last 3 log lines:` and the lines, indented; `, and wrote no log output` when there
/// are none, so no heading is ever left without lines.
fn log_tail_text(logs: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: a container that wrote nothing left `Its last 20 log lines:` dangling.
    #[test]
    fn the_log_heading_appears_only_with_log_lines() {
        assert_eq!(log_tail_text(""), ", and wrote no log output");
        assert_eq!(log_tail_text("\n  \n"), ", and wrote no log output");
        assert_eq!(log_tail_text("one\n"), ". Its last log line:\n    one");
        assert_eq!(
            log_tail_text("a\nb\n"),
            ". Its last 2 log lines:\n    a\n    b"
        );
    }
}
