//! The deploy lock: a never-started container named `<project>-deploy-lock` whose labels
//! record who holds it. Creating a container by name is atomic on the engine, so two applies
//! (from any machines deploying to this engine) cannot both take it.

use std::collections::BTreeMap;

use crate::engine::{Engine, EngineError};
use crate::labels;

/// Image the lock and history markers are created from (imported from an empty archive).
pub const MARKER_IMAGE: &str = "deployer-marker:1";

const HOLDER: &str = "deployer.lock.holder";
const HOST: &str = "deployer.lock.host";
const SINCE: &str = "deployer.lock.since";
const COMMAND: &str = "deployer.lock.command";
const PID: &str = "deployer.lock.pid";
const PROCESS: &str = "deployer.lock.process";

/// Who holds (or wants) the lock.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LockInfo {
    pub project: String,
    /// User name.
    pub holder: String,
    /// Machine the holder runs on.
    pub host: String,
    /// RFC 3339 time it was taken.
    pub since: String,
    /// The command line that took it.
    pub command: String,
    pub pid: u32,
    /// `<boot id>/<pid namespace>/<process start time>` of the holder, so a deployer on the
    /// same machine can tell for sure that the holder no longer runs; `None` when unknown.
    #[serde(default)]
    pub process: Option<String>,
}

/// Taking or reading the lock failed.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("project {project} is locked by {holder}@{host} since {since} (`{command}`, pid {pid}); wait for it to finish, or if it died run `deployer lock release`", project = .0.project, holder = .0.holder, host = .0.host, since = .0.since, command = .0.command, pid = .0.pid)]
    Held(Box<LockInfo>),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// A held lock; release it with [`Lock::release`].
#[derive(Debug)]
pub struct Lock {
    id: String,
    pub info: LockInfo,
    /// The holder of a stale lock this one replaced: it ran on this machine and is gone.
    pub took_over: Option<LockInfo>,
}

/// The engine name of a project's lock container.
pub fn lock_name(project: &str) -> String {
    format!("{project}-deploy-lock")
}

impl LockInfo {
    /// A lock request for this process: user from `USER`/`LOGNAME`, host from `HOSTNAME` or
    /// `/etc/hostname`, the current time.
    pub fn for_this_process(project: &str, command: &str) -> LockInfo {
        LockInfo {
            project: project.to_string(),
            holder: whoami(),
            host: hostname(),
            since: now_rfc3339(),
            command: command.to_string(),
            pid: std::process::id(),
            process: process_identity(std::process::id()),
        }
    }

    /// True when the holder provably no longer runs: it ran on this machine's kernel, in this
    /// pid namespace, and its pid is gone or belongs to a process started at another time.
    pub fn holder_is_gone(&self) -> bool {
        let Some(recorded) = &self.process else {
            return false;
        };
        let (Some(mine), Some((machine, _))) = (
            process_identity(std::process::id()),
            recorded.rsplit_once('/'),
        ) else {
            return false;
        };
        mine.starts_with(&format!("{machine}/"))
            && process_identity(self.pid).as_deref() != Some(recorded.as_str())
    }

    fn to_labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (
                labels::MANAGED_BY.to_string(),
                labels::MANAGED_BY_VALUE.to_string(),
            ),
            (labels::PROJECT.to_string(), self.project.clone()),
            (labels::LOCK.to_string(), "true".to_string()),
            (HOLDER.to_string(), self.holder.clone()),
            (HOST.to_string(), self.host.clone()),
            (SINCE.to_string(), self.since.clone()),
            (COMMAND.to_string(), self.command.clone()),
            (PID.to_string(), self.pid.to_string()),
        ])
        .into_iter()
        .chain(self.process.clone().map(|p| (PROCESS.to_string(), p)))
        .collect()
    }

    fn from_labels(project: &str, l: &BTreeMap<String, String>) -> LockInfo {
        let get = |k: &str| l.get(k).cloned().unwrap_or_else(|| "?".to_string());
        LockInfo {
            project: project.to_string(),
            holder: get(HOLDER),
            host: get(HOST),
            since: get(SINCE),
            command: get(COMMAND),
            pid: l.get(PID).and_then(|p| p.parse().ok()).unwrap_or(0),
            process: l.get(PROCESS).cloned(),
        }
    }
}

/// Takes the lock, or fails at once naming the holder.
pub async fn acquire(engine: &Engine, info: LockInfo) -> Result<Lock, LockError> {
    let name = lock_name(&info.project);
    match engine
        .create_marker(MARKER_IMAGE, &name, &info.to_labels())
        .await
    {
        Ok(id) => Ok(Lock {
            id,
            info,
            took_over: None,
        }),
        Err(e) if e.is_conflict() => match holder(engine, &info.project).await? {
            Some((id, holder)) if holder.holder_is_gone() => {
                // The holder died (a crash, a kill -9) on this machine: take its lock over.
                engine.remove_container(&id).await?;
                let id = engine
                    .create_marker(MARKER_IMAGE, &name, &info.to_labels())
                    .await
                    .map_err(|e| match e {
                        e if e.is_conflict() => LockError::Held(Box::new(holder.clone())),
                        e => LockError::Engine(e),
                    })?;
                Ok(Lock {
                    id,
                    info,
                    took_over: Some(holder),
                })
            }
            Some((_, holder)) => Err(LockError::Held(Box::new(holder))),
            // Released between our attempt and the look-up: try once more.
            None => {
                let id = engine
                    .create_marker(MARKER_IMAGE, &name, &info.to_labels())
                    .await
                    .map_err(|e| match e {
                        e if e.is_conflict() => LockError::Held(Box::new(LockInfo {
                            holder: "another deployer".into(),
                            host: "?".into(),
                            since: "just now".into(),
                            command: "?".into(),
                            pid: 0,
                            process: None,
                            project: info.project.clone(),
                        })),
                        e => LockError::Engine(e),
                    })?;
                Ok(Lock {
                    id,
                    info,
                    took_over: None,
                })
            }
        },
        Err(e) => Err(e.into()),
    }
}

/// Takes the lock, waiting up to `timeout` while another deployer holds it (checking twice a
/// second); `on_wait` is told once who holds it. A zero `timeout` fails at once, like
/// [`acquire`].
pub async fn acquire_within(
    engine: &Engine,
    info: LockInfo,
    timeout: std::time::Duration,
    on_wait: impl FnOnce(&LockInfo),
) -> Result<Lock, LockError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut on_wait = Some(on_wait);
    loop {
        match acquire(engine, info.clone()).await {
            Err(LockError::Held(holder)) if tokio::time::Instant::now() < deadline => {
                if let Some(tell) = on_wait.take() {
                    tell(&holder);
                }
                let pause = std::time::Duration::from_millis(500);
                tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + pause)).await;
            }
            other => return other,
        }
    }
}

impl Lock {
    /// Frees the lock.
    pub async fn release(self, engine: &Engine) -> Result<(), EngineError> {
        engine.remove_container(&self.id).await
    }
}

/// The current holder of the project's lock, if any.
pub async fn status(engine: &Engine, project: &str) -> Result<Option<LockInfo>, EngineError> {
    Ok(holder(engine, project).await?.map(|(_, info)| info))
}

/// The lock container's id and holder, if any.
async fn holder(engine: &Engine, project: &str) -> Result<Option<(String, LockInfo)>, EngineError> {
    let list = engine
        .list_containers(&[(labels::PROJECT, Some(project)), (labels::LOCK, None)])
        .await?;
    Ok(list
        .into_iter()
        .next()
        .map(|c| (c.id.clone(), LockInfo::from_labels(project, &c.labels))))
}

/// `<boot id>/<pid namespace>/<start time>` of process `pid` on this machine, from `/proc`;
/// `None` when the process does not exist (or `/proc` cannot tell).
fn process_identity(pid: u32) -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let ns = std::fs::read_link("/proc/self/ns/pid").ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22 (start time) counts from after the `)` closing the command name.
    let start = stat.rsplit_once(')')?.1.split_whitespace().nth(19)?;
    Some(format!("{}/{}/{start}", boot.trim(), ns.display()))
}

/// Frees the project's lock whoever holds it; returns who held it.
pub async fn force_release(
    engine: &Engine,
    project: &str,
) -> Result<Option<LockInfo>, EngineError> {
    let list = engine
        .list_containers(&[(labels::PROJECT, Some(project)), (labels::LOCK, None)])
        .await?;
    let mut held = None;
    for c in list {
        held = Some(LockInfo::from_labels(project, &c.labels));
        engine.remove_container(&c.id).await?;
    }
    Ok(held)
}

/// The user running this process.
pub fn whoami() -> String {
    ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .or_else(user_from_passwd)
        .unwrap_or_else(|| "unknown".to_string())
}

/// The name of this process's user from `/proc/self/status` and `/etc/passwd`.
fn user_from_passwd() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let _pw = f.next()?;
        (f.next()? == uid).then(|| name.to_string())
    })
}

/// This machine's name.
pub fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

/// The current UTC time as RFC 3339.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "unknown".to_string())
}
