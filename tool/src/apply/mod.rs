//! Apply: carries out a plan on the engine under the deploy lock, rolling services in
//! dependency order (independent services in parallel) behind a health gate, and putting the
//! whole fleet back when one service fails. Every apply leaves a history record.
//!
//! A roll never removes an old container before the whole apply has succeeded: it is stopped
//! ("retired") once its replacement is healthy, and removed at the end. A failed apply starts
//! the retired containers again, so the fleet returns to exactly the containers it had.

mod error;
mod execute;
#[cfg(test)]
mod fake;
pub mod health;
mod projection;
mod roll;
#[cfg(test)]
mod tests;

use crate::engine::{Engine, EngineError};
use crate::history::{self, Kind, Outcome, Record, ServiceRecord};
use crate::label_cache::LabelCache;
use crate::lock::{self, LockError, LockInfo};
use crate::manifest::Manifest;
use crate::observe::{self, ObserveError};
use crate::plan::{self, Plan, PlanError};
use crate::progress::Progress;
use crate::registry::RegistryClient;

pub use error::{Cause, Failure, PrepareError, RollError, UndoError};
use execute::{Executed, Executor};

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
    /// Run the event checks on a fresh plan (labels, the store's event versions); a refused
    /// plan (fresh or saved) changes nothing.
    pub event_checks: bool,
    /// `--allow-incompatible`: the event versions whose refusals may pass.
    pub allow_incompatible: Vec<crate::contract::EventVersion>,
    /// Where the event checks keep image labels by digest (the binary: the user's cache).
    pub label_cache: LabelCache,
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
            event_checks: true,
            allow_incompatible: Vec::new(),
            label_cache: LabelCache::off(),
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
    #[error(transparent)]
    EventInputs(#[from] crate::event_inputs::EventInputsError),
    #[error(transparent)]
    Contract(#[from] crate::contract::ContractError),
    /// The plan's event checks refuse it; nothing was changed.
    #[error("the event checks refuse the plan, nothing was changed:\n{}", .0.iter().map(|m| format!("  {m}")).collect::<Vec<_>>().join("\n"))]
    EventsRefused(Vec<String>),
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
    /// Why it failed, with the failed container's last log lines, as printed (the text of a
    /// [`Failure`]); `None` on success.
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
                let what = match self.record.kind {
                    Kind::Apply => "apply",
                    Kind::Rollback => "rollback",
                };
                write!(f, "{what} complete: {n} service(s) changed")
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

/// Reads the event checks' inputs (image labels, the store's event versions) and runs the
/// checks on `plan` (`Plan::check_events`); the notes of the reading join the plan's. Returns
/// the inputs read (`deployer events` draws them).
pub async fn check_events(
    engine: &Engine,
    registry: &RegistryClient,
    cache: &LabelCache,
    manifest: &Manifest,
    observed: &plan::Observed,
    plan: &mut Plan,
    allow: &[crate::contract::EventVersion],
) -> Result<crate::contract::EventInputs, ApplyError> {
    let prober = health::Prober::new(engine, manifest.project.as_str());
    let gathered =
        crate::event_inputs::gather(engine, registry, cache, manifest, observed, &prober).await;
    prober.close().await;
    let gathered = gathered?;
    plan.check_events(&gathered.inputs, &allow.iter().cloned().collect())?;
    plan.events.notes.extend(gathered.notes);
    Ok(gathered.inputs)
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
        None => {
            let mut plan = plan::compute(manifest, &observed);
            if options.event_checks {
                check_events(
                    engine,
                    registry,
                    &options.label_cache,
                    manifest,
                    &observed,
                    &mut plan,
                    &options.allow_incompatible,
                )
                .await?;
            }
            plan
        }
    };
    if plan.refused() {
        return Err(ApplyError::EventsRefused(
            plan.events
                .refusals
                .iter()
                .map(|f| f.message.clone())
                .collect(),
        ));
    }
    let Executed {
        services,
        outcome,
        failure,
    } = if plan.has_changes() {
        progress.line(plan::render_human(&plan, options.color).trim_end());
        execute(engine, registry, options, progress, &plan).await
    } else {
        Executed {
            services: Vec::new(),
            outcome: Outcome::NoChanges,
            failure: None,
        }
    };
    let mut record = started.finish(&plan.project, outcome, services);
    record.allowed_incompatible = plan.events.overrides();
    if outcome != Outcome::NoChanges {
        history::save(engine, &record).await?;
    }
    Ok(ApplyReport {
        plan,
        record,
        failure: failure.map(|f| f.to_string()),
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
    let mut revisions = Vec::new();
    for name in &targets {
        let prev =
            history::previous_revision(&records, name).ok_or_else(|| ApplyError::Rollback {
                what: name.clone(),
                why: "no earlier successful revision in the history; see `deployer history`".into(),
            })?;
        revisions.push(plan::Revision {
            service: name.clone(),
            image: prev.image.clone(),
            image_digest: prev.new_digest.clone(),
            specs: prev.specs.clone(),
        });
    }
    let current = observe::project_containers(engine, project).await?;
    let plan =
        plan::for_rollback(manifest, revisions, &current).map_err(|e| ApplyError::Rollback {
            what: e.service.clone(),
            why: e.to_string(),
        })?;
    let Executed {
        services,
        outcome,
        failure,
    } = execute(engine, registry, options, progress, &plan).await;
    let record = started.finish(project, outcome, services);
    history::save(engine, &record).await?;
    Ok(ApplyReport {
        plan,
        record,
        failure: failure.map(|f| f.to_string()),
    })
}

/// Carries out `plan` on the Docker Engine, probing through a [`health::Prober`] that is
/// closed afterwards.
async fn execute(
    engine: &Engine,
    registry: &RegistryClient,
    options: &ApplyOptions,
    progress: &Progress,
    plan: &Plan,
) -> Executed {
    let prober = health::Prober::new(engine, &plan.project);
    let done = Executor::new(engine, &prober, registry, options, progress)
        .execute(plan)
        .await;
    prober.close().await;
    done
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
            allowed_incompatible: Vec::new(),
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
