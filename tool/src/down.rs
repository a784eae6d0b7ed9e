//! `deployer down`: removes a project's containers and networks, and its volumes (and apply
//! history volume) only when asked. Takes the deploy lock so it never races an apply. A project
//! with nothing at all on the engine is reported as missing, so a mistyped name is noticed.

use std::time::Duration;

use crate::engine::{Engine, EngineError};
use crate::history;
use crate::labels;
use crate::lock::{self, LockError, LockInfo};
use crate::progress::Progress;

/// What `down` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DownReport {
    pub containers: usize,
    pub networks: usize,
    pub volumes: usize,
    pub history_records: usize,
    /// The engine holds nothing of the project (no container, network or volume): nothing was
    /// done.
    pub missing: bool,
}

/// Takes the project down; fails at once when another deployer holds the lock.
pub async fn down(
    engine: &Engine,
    project: &str,
    volumes: bool,
    command: &str,
    progress: &Progress,
) -> Result<DownReport, LockError> {
    down_within(engine, project, volumes, command, progress, Duration::ZERO).await
}

/// Takes the project down, waiting up to `lock_timeout` for the deploy lock.
pub async fn down_within(
    engine: &Engine,
    project: &str,
    volumes: bool,
    command: &str,
    progress: &Progress,
    lock_timeout: Duration,
) -> Result<DownReport, LockError> {
    let project_label = [(labels::PROJECT, Some(project))];
    if engine.list_containers(&project_label).await?.is_empty()
        && engine.list_networks(&project_label).await?.is_empty()
        && engine.list_volumes(&project_label).await?.is_empty()
    {
        return Ok(DownReport {
            missing: true,
            ..DownReport::default()
        });
    }
    let lock = lock::acquire_within(
        engine,
        LockInfo::for_this_process(project, command),
        lock_timeout,
        |holder| {
            progress.line(format!(
                "waiting up to {lock_timeout:?} for the deploy lock held by {}@{} (`{}`)",
                holder.holder, holder.host, holder.command
            ))
        },
    )
    .await?;
    let result = down_locked(engine, project, volumes, progress).await;
    let released = lock.release(engine).await;
    let report = result?;
    released?;
    Ok(report)
}

async fn down_locked(
    engine: &Engine,
    project: &str,
    volumes: bool,
    progress: &Progress,
) -> Result<DownReport, EngineError> {
    let mut report = DownReport::default();
    let containers = engine
        .list_containers(&[(labels::PROJECT, Some(project)), (labels::SERVICE, None)])
        .await?;
    let stops = containers.iter().map(|c| async move {
        engine.stop_container(&c.id, None).await?;
        engine.remove_container(&c.id).await?;
        progress.line(format!("removed container {}", c.name));
        Ok::<(), EngineError>(())
    });
    for r in futures::future::join_all(stops).await {
        r?;
        report.containers += 1;
    }
    for n in engine
        .list_networks(&[(labels::PROJECT, Some(project))])
        .await?
    {
        engine.remove_network(&n.name).await?;
        progress.line(format!("removed network {}", n.name));
        report.networks += 1;
    }
    if volumes {
        report.history_records = history::clear(engine, project).await?;
        for v in engine
            .list_volumes(&[(labels::PROJECT, Some(project))])
            .await?
            .into_iter()
            .filter(|v| !v.labels.contains_key(labels::HISTORY))
        {
            engine.remove_volume(&v.name).await?;
            progress.line(format!("removed volume {}", v.name));
            report.volumes += 1;
        }
    }
    Ok(report)
}
