//! `deployer down`: removes a project's containers and networks, and its volumes (and apply
//! history) only when asked. Takes the deploy lock so it never races an apply.

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
}

/// Takes the project down.
pub async fn down(
    engine: &Engine,
    project: &str,
    volumes: bool,
    command: &str,
    progress: &Progress,
) -> Result<DownReport, LockError> {
    let lock = lock::acquire(engine, LockInfo::for_this_process(project, command)).await?;
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
        for v in engine
            .list_volumes(&[(labels::PROJECT, Some(project))])
            .await?
        {
            engine.remove_volume(&v.name).await?;
            progress.line(format!("removed volume {}", v.name));
            report.volumes += 1;
        }
        report.history_records = history::clear(engine, project).await?;
    }
    Ok(report)
}
