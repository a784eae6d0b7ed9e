//! Apply history, kept on the engine host so every machine deploying there sees it: one Docker
//! volume per project, `<project>_deploy-history`, holds `history.json` with every record (no
//! secret values: specs serialize secrets as `(sensitive)`). The file is read and written
//! through the engine's archive API on a helper container that is created from the empty marker
//! image, never started, and removed again at once, so `docker ps -a` shows nothing of it.
//!
//! Older deployers kept each record as a never-started marker container
//! `<project>-deploy-history-<millis>` whose label held the record; those are read too, and
//! moved into the volume (and removed) on the first write.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::engine::{Engine, EngineError};
use crate::labels;
use crate::lock::MARKER_IMAGE;
use crate::spec::ContainerSpec;

/// Label holding the JSON record on a marker container of an older deployer.
const RECORD: &str = "deployer.history.record";
/// Marks the short-lived helper container that reads or writes the history volume.
const HELPER: &str = "deployer.history-io";
/// Where the helper container mounts the history volume.
const DIR: &str = "/history";
/// The file in the history volume.
const FILE: &str = "history.json";
/// Version of the `history.json` layout.
const FORMAT: u32 = 1;
/// How many records are kept per project, newest first.
pub const KEEP: usize = 100;
/// Besides the newest [`KEEP`], the newest this many successful revisions of every service are
/// kept, so `deployer rollback` always has a target however many other records came after.
pub const KEEP_PER_SERVICE: usize = 5;

/// The name of the project's history volume.
pub fn volume_name(project: &str) -> String {
    format!("{project}_deploy-history")
}

/// What kind of command made the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Apply,
    Rollback,
}

/// How the command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Every change was made.
    Succeeded,
    /// Nothing to do.
    NoChanges,
    /// A service failed and every service rolled by the command was put back.
    RolledBack,
    /// A service failed and the fleet could not be fully put back (see the service results).
    Failed,
}

/// One apply or rollback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Milliseconds since the Unix epoch when the command started; orders the records.
    pub id: u64,
    pub project: String,
    pub kind: Kind,
    pub started_at: String,
    pub finished_at: String,
    pub user: String,
    pub host: String,
    /// CI build id (`BUILD_TAG`, `BUILD_ID`, `GITHUB_RUN_ID` or `CI_PIPELINE_ID`) when set.
    pub ci_build: Option<String>,
    pub command: String,
    pub outcome: Outcome,
    pub services: Vec<ServiceRecord>,
    /// The `--allow-incompatible` event versions that let an event-check refusal pass.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_incompatible: Vec<String>,
}

/// What happened to one service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceRecord {
    pub service: String,
    pub action: RecordedAction,
    /// The image as written in the manifest.
    pub image: Option<String>,
    pub old_digest: Option<String>,
    pub new_digest: Option<String>,
    pub old_spec_hash: Option<String>,
    pub new_spec_hash: Option<String>,
    pub result: ServiceResult,
    /// The specs the service was rolled to (one per replica), for `deployer rollback`.
    #[serde(default)]
    pub specs: Vec<ContainerSpec>,
    /// The image reference the containers were created from (pinned to a digest for registry
    /// images).
    #[serde(default)]
    pub create_reference: Option<String>,
}

impl ServiceRecord {
    /// True when this service now runs what the record describes.
    pub fn took_effect(&self) -> bool {
        self.result == ServiceResult::Rolled
    }

    /// True when this is a revision `deployer rollback` can return to.
    pub fn is_revision(&self) -> bool {
        self.took_effect() && !self.specs.is_empty()
    }
}

/// What the command set out to do to a service; stored as `create`, `replace`, `scale`,
/// `remove` or `unchanged`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordedAction {
    Create,
    Replace,
    Scale,
    Remove,
    Unchanged,
}

impl RecordedAction {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordedAction::Create => "create",
            RecordedAction::Replace => "replace",
            RecordedAction::Scale => "scale",
            RecordedAction::Remove => "remove",
            RecordedAction::Unchanged => "unchanged",
        }
    }
}

impl std::fmt::Display for RecordedAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl PartialEq<&str> for RecordedAction {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// How one service ended. Stored as the text older deployers wrote (`rolled`, `rolled back`,
/// `not started`, `removed`, `failed: <why>`, `rollback failed: <why>`), so records of either
/// read with the other; a text this deployer does not know is kept as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceResult {
    /// The service runs what the record describes.
    Rolled,
    /// It was rolled, and put back when another service failed.
    RolledBack,
    /// The command stopped before it got to this service.
    NotStarted,
    Removed,
    /// Its roll failed (the reason's first line).
    Failed {
        reason: String,
    },
    /// Putting it back after a failure failed too.
    RollbackFailed {
        reason: String,
    },
    /// A result text this deployer does not know.
    Other(String),
}

impl ServiceResult {
    /// The result without its reason: `rolled`, `failed`, `rollback failed`, ...
    pub fn as_str(&self) -> &str {
        match self {
            ServiceResult::Rolled => "rolled",
            ServiceResult::RolledBack => "rolled back",
            ServiceResult::NotStarted => "not started",
            ServiceResult::Removed => "removed",
            ServiceResult::Failed { .. } => "failed",
            ServiceResult::RollbackFailed { .. } => "rollback failed",
            ServiceResult::Other(text) => text,
        }
    }

    /// True for a service whose roll failed.
    pub fn is_failed(&self) -> bool {
        matches!(self, ServiceResult::Failed { .. })
    }

    /// Reads the stored text.
    pub fn parse(text: &str) -> ServiceResult {
        match text {
            "rolled" => ServiceResult::Rolled,
            "rolled back" => ServiceResult::RolledBack,
            "not started" => ServiceResult::NotStarted,
            "removed" => ServiceResult::Removed,
            _ => {
                if let Some(reason) = text.strip_prefix("failed: ") {
                    ServiceResult::Failed {
                        reason: reason.to_owned(),
                    }
                } else if let Some(reason) = text.strip_prefix("rollback failed: ") {
                    ServiceResult::RollbackFailed {
                        reason: reason.to_owned(),
                    }
                } else {
                    ServiceResult::Other(text.to_owned())
                }
            }
        }
    }
}

/// The stored text: `failed: <why>` with the reason.
impl std::fmt::Display for ServiceResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServiceResult::Failed { reason } | ServiceResult::RollbackFailed { reason } => {
                write!(f, "{}: {reason}", self.as_str())
            }
            other => f.write_str(other.as_str()),
        }
    }
}

impl PartialEq<&str> for ServiceResult {
    fn eq(&self, other: &&str) -> bool {
        match self {
            ServiceResult::Failed { reason } | ServiceResult::RollbackFailed { reason } => {
                other
                    .strip_prefix(self.as_str())
                    .and_then(|rest| rest.strip_prefix(": "))
                    == Some(reason.as_str())
            }
            _ => self.as_str() == *other,
        }
    }
}

impl Serialize for ServiceResult {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ServiceResult {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Ok(ServiceResult::parse(&text))
    }
}

/// `history.json`.
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    format: u32,
    /// Oldest first. Kept as JSON values so one unreadable record does not hide the others.
    records: Vec<serde_json::Value>,
}

/// Stores a record, after the project's other records; then keeps only what [`retain`] keeps.
/// Records of older deployers (marker containers) move into the volume, and their containers
/// are removed.
pub async fn save(engine: &Engine, record: &Record) -> Result<(), EngineError> {
    let project = record.project.as_str();
    let volume = volume_name(project);
    engine
        .create_volume(&volume, &volume_labels(project))
        .await?;
    let legacy = legacy_records(engine, project).await?;
    let mut records = with_helper(engine, project, |id| async move {
        read_file(engine, &id, &volume).await
    })
    .await?;
    let known: BTreeSet<u64> = records.iter().map(|r| r.id).collect();
    records.extend(
        legacy
            .iter()
            .filter(|(_, r)| !known.contains(&r.id))
            .map(|(_, r)| r.clone()),
    );
    let mut record = record.clone();
    while records.iter().any(|r| r.id == record.id) {
        record.id += 1;
    }
    records.push(record);
    records.sort_by_key(|r| r.id);
    let records = retain(records, KEEP, KEEP_PER_SERVICE);
    let stored = Stored {
        format: FORMAT,
        records: records
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<_, _>>()
            .map_err(|e| encoding_error(&e))?,
    };
    let json = serde_json::to_vec(&stored).map_err(|e| encoding_error(&e))?;
    let archive = crate::engine::tar_one_file(FILE, &json, 0o600);
    with_helper(engine, project, |id| async move {
        engine.upload_archive(&id, DIR, archive).await
    })
    .await?;
    for (container, _) in legacy {
        engine.remove_container(&container).await?;
    }
    Ok(())
}

/// Every record of the project, oldest first. Unreadable records are skipped. Reading creates
/// nothing that outlives the call (and no volume when the project has none yet).
pub async fn list(engine: &Engine, project: &str) -> Result<Vec<Record>, EngineError> {
    let volume = volume_name(project);
    let mut records = if engine.volume_exists(&volume).await? {
        with_helper(engine, project, |id| async move {
            read_file(engine, &id, &volume).await
        })
        .await?
    } else {
        Vec::new()
    };
    let known: BTreeSet<u64> = records.iter().map(|r| r.id).collect();
    records.extend(
        legacy_records(engine, project)
            .await?
            .into_iter()
            .map(|(_, r)| r)
            .filter(|r| !known.contains(&r.id)),
    );
    records.sort_by_key(|r| r.id);
    Ok(records)
}

/// Removes every record of the project (the volume and any older marker containers); returns
/// how many there were.
pub async fn clear(engine: &Engine, project: &str) -> Result<usize, EngineError> {
    let n = list(engine, project).await?.len();
    for (id, _) in legacy_records(engine, project).await? {
        engine.remove_container(&id).await?;
    }
    engine.remove_volume(&volume_name(project)).await?;
    Ok(n)
}

/// True when the project has a history volume or older history containers.
pub async fn exists(engine: &Engine, project: &str) -> Result<bool, EngineError> {
    Ok(engine.volume_exists(&volume_name(project)).await?
        || !legacy_records(engine, project).await?.is_empty())
}

/// The records to keep, oldest first: the newest `keep`, and besides them the newest
/// `keep_per_service` records in which each service was successfully rolled (the targets of
/// `deployer rollback`). `records` is oldest first.
pub fn retain(records: Vec<Record>, keep: usize, keep_per_service: usize) -> Vec<Record> {
    let mut kept = vec![false; records.len()];
    let mut per_service: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, r) in records.iter().enumerate().rev() {
        if records.len() - i <= keep {
            kept[i] = true;
        }
        if r.outcome != Outcome::Succeeded {
            continue;
        }
        for s in r.services.iter().filter(|s| s.is_revision()) {
            let n = per_service.entry(s.service.as_str()).or_default();
            if *n < keep_per_service {
                *n += 1;
                kept[i] = true;
            }
        }
    }
    records
        .into_iter()
        .zip(kept)
        .filter_map(|(r, k)| k.then_some(r))
        .collect()
}

fn volume_labels(project: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            labels::MANAGED_BY.to_string(),
            labels::MANAGED_BY_VALUE.to_string(),
        ),
        (labels::PROJECT.to_string(), project.to_string()),
        (labels::HISTORY.to_string(), "true".to_string()),
    ])
}

fn encoding_error(e: &serde_json::Error) -> EngineError {
    EngineError::Api {
        action: "encoding the apply history".into(),
        detail: e.to_string(),
    }
}

/// Runs `work` with the id of a fresh helper container that mounts the project's history
/// volume, and removes the container whatever `work` returns.
async fn with_helper<T, F, Fut>(engine: &Engine, project: &str, work: F) -> Result<T, EngineError>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = Result<T, EngineError>>,
{
    let labels = BTreeMap::from([
        (
            labels::MANAGED_BY.to_string(),
            labels::MANAGED_BY_VALUE.to_string(),
        ),
        (labels::PROJECT.to_string(), project.to_string()),
        (HELPER.to_string(), "true".to_string()),
    ]);
    let name = format!("{project}-deploy-history-io-{:016x}", {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(now_millis());
        h.finish()
    });
    let id = engine
        .create_volume_helper(MARKER_IMAGE, &name, &labels, &volume_name(project), DIR)
        .await?;
    let result = work(id.clone()).await;
    let removed = engine.remove_container(&id).await;
    let value = result?;
    removed?;
    Ok(value)
}

/// The records in `history.json` of the volume mounted in helper `id`, oldest first.
async fn read_file(engine: &Engine, id: &str, volume: &str) -> Result<Vec<Record>, EngineError> {
    let Some(bytes) = engine.download_file(id, &format!("{DIR}/{FILE}")).await? else {
        return Ok(Vec::new());
    };
    let stored: Stored = serde_json::from_slice(&bytes).map_err(|e| EngineError::Api {
        action: format!("reading the apply history in volume {volume}"),
        detail: format!(
            "{FILE} is not valid: {e}; move it aside or remove the volume to start a new history"
        ),
    })?;
    let mut records: Vec<Record> = stored
        .records
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect();
    records.sort_by_key(|r| r.id);
    Ok(records)
}

/// Records kept by older deployers as marker containers: (container id, record).
async fn legacy_records(
    engine: &Engine,
    project: &str,
) -> Result<Vec<(String, Record)>, EngineError> {
    Ok(engine
        .list_containers(&[(labels::PROJECT, Some(project)), (labels::HISTORY, None)])
        .await?
        .into_iter()
        .filter_map(|c| {
            let r: Record = serde_json::from_str(c.labels.get(RECORD)?).ok()?;
            Some((c.id, r))
        })
        .collect())
}

/// The CI build id from the environment, if any.
pub fn ci_build(env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    ["BUILD_TAG", "BUILD_ID", "GITHUB_RUN_ID", "CI_PIPELINE_ID"]
        .iter()
        .find_map(|k| env(k).filter(|v| !v.is_empty()))
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The target of `deployer rollback SERVICE`: the newest successful revision of `service`
/// before the one it runs now. `records` is oldest first.
pub fn previous_revision<'r>(records: &'r [Record], service: &str) -> Option<&'r ServiceRecord> {
    let mut revisions = records
        .iter()
        .rev()
        .filter(|r| matches!(r.outcome, Outcome::Succeeded))
        .filter_map(|r| {
            r.services
                .iter()
                .find(|s| s.service == service && s.is_revision())
        });
    let _current = revisions.next()?;
    revisions.next()
}

/// Services rolled by the newest successful apply or rollback, for `deployer rollback` without
/// a service name.
pub fn last_changed_services(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .rev()
        .find(|r| matches!(r.outcome, Outcome::Succeeded))
        .map(|r| {
            r.services
                .iter()
                .filter(|s| s.is_revision())
                .map(|s| s.service.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// The records as a pretty JSON array, newest first (as `deployer history` shows them).
pub fn render_json(records: &[Record]) -> String {
    let newest_first: Vec<&Record> = records.iter().rev().collect();
    // Plain data with string keys: serialization cannot fail.
    serde_json::to_string_pretty(&newest_first).unwrap_or_default()
}

/// Human rendering of records, newest first.
pub fn render_human(records: &[Record]) -> String {
    if records.is_empty() {
        return "no history yet\n".into();
    }
    let mut out = String::new();
    for r in records.iter().rev() {
        let outcome = match r.outcome {
            Outcome::Succeeded => "succeeded",
            Outcome::NoChanges => "no changes",
            Outcome::RolledBack => "failed, rolled back",
            Outcome::Failed => "FAILED",
        };
        let kind = match r.kind {
            Kind::Apply => "apply",
            Kind::Rollback => "rollback",
        };
        out.push_str(&format!(
            "#{}  {}  {kind}  {outcome}  by {}@{}{}\n",
            r.id,
            r.started_at,
            r.user,
            r.host,
            r.ci_build
                .as_deref()
                .map(|b| format!("  (CI build {b})"))
                .unwrap_or_default()
        ));
        if !r.allowed_incompatible.is_empty() {
            out.push_str(&format!(
                "    allowed incompatible events: {}\n",
                r.allowed_incompatible.join(", ")
            ));
        }
        for s in &r.services {
            let short = |d: &Option<String>| {
                d.as_deref()
                    .map(|d| d.trim_start_matches("sha256:").chars().take(12).collect())
                    .unwrap_or_else(|| "-".to_string())
            };
            out.push_str(&format!(
                "    {:<20} {:<8} {} -> {}  {}\n",
                s.service,
                s.action,
                short(&s.old_digest),
                short(&s.new_digest),
                s.result.to_string().lines().next().unwrap_or("")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: u64, outcome: Outcome, services: &[(&str, &str, ServiceResult)]) -> Record {
        Record {
            id,
            project: "p".into(),
            kind: Kind::Apply,
            started_at: String::new(),
            finished_at: String::new(),
            user: "u".into(),
            host: "h".into(),
            ci_build: None,
            command: "apply".into(),
            outcome,
            services: services
                .iter()
                .map(|(s, digest, result)| ServiceRecord {
                    service: s.to_string(),
                    action: RecordedAction::Replace,
                    image: None,
                    old_digest: None,
                    new_digest: Some(digest.to_string()),
                    old_spec_hash: None,
                    new_spec_hash: None,
                    result: result.clone(),
                    specs: vec![serde_json::from_value(spec_json()).expect("spec")],
                    create_reference: None,
                })
                .collect(),
            allowed_incompatible: Vec::new(),
        }
    }

    fn spec_json() -> serde_json::Value {
        serde_json::json!({
            "project": "p", "service": "api", "replica": 1, "name_prefix": "p-api-1-",
            "image": "api:1", "command": null, "env": {}, "secrets": {}, "ports": [],
            "networks": [], "mounts": [], "health": null, "restart": {"policy": "unless-stopped"},
            "resources": {"memory_bytes": null, "nano_cpus": null}, "stop_grace_period": 10000,
            "labels": {}, "spec_hash": "h"
        })
    }

    /// Regression: `history --output json` listed records oldest first, unlike the human view.
    #[test]
    fn json_lists_records_newest_first() {
        let records = vec![
            rec(
                1,
                Outcome::Succeeded,
                &[("api", "d1", ServiceResult::Rolled)],
            ),
            rec(
                2,
                Outcome::Succeeded,
                &[("api", "d2", ServiceResult::Rolled)],
            ),
        ];
        let json: Vec<Record> = serde_json::from_str(&render_json(&records)).expect("json");
        let ids: Vec<u64> = json.iter().map(|r| r.id).collect();
        assert_eq!(ids, [2, 1]);
        let human = render_human(&records);
        assert!(human.find("#2").expect("#2") < human.find("#1").expect("#1"));
    }

    #[test]
    fn allowed_incompatible_events_are_recorded_and_shown() {
        let mut r = rec(
            1,
            Outcome::Succeeded,
            &[("api", "d1", ServiceResult::Rolled)],
        );
        let plain = serde_json::to_value(&r).expect("json");
        assert_eq!(plain.get("allowed_incompatible"), None);
        r.allowed_incompatible = vec!["AccountDebited@1".into()];
        let back: Record =
            serde_json::from_str(&serde_json::to_string(&r).expect("json")).expect("read");
        assert_eq!(back.allowed_incompatible, ["AccountDebited@1"]);
        assert!(render_human(&[r]).contains("    allowed incompatible events: AccountDebited@1\n"));
    }

    /// Regression: pruning kept only the newest 100 records, so 100 applies of other
    /// services (or no-op applies) pushed out every revision `rollback api` could return to.
    #[test]
    fn retention_keeps_the_newest_revisions_of_every_service() {
        let mut records = vec![
            rec(
                1,
                Outcome::Succeeded,
                &[("api", "d1", ServiceResult::Rolled)],
            ),
            rec(
                2,
                Outcome::Succeeded,
                &[("api", "d2", ServiceResult::Rolled)],
            ),
        ];
        for id in 3..=300 {
            let outcome = if id % 2 == 0 {
                Outcome::Succeeded
            } else {
                Outcome::RolledBack
            };
            records.push(rec(id, outcome, &[("web", "w", ServiceResult::Rolled)]));
        }
        let kept = retain(records, KEEP, KEEP_PER_SERVICE);
        let ids: Vec<u64> = kept.iter().map(|r| r.id).collect();
        let mut want = vec![1, 2];
        want.extend(201..=300);
        assert_eq!(ids, want);
        let prev = previous_revision(&kept, "api").expect("api can still be rolled back");
        assert_eq!(prev.new_digest.as_deref(), Some("d1"));

        // Older successful web revisions beyond the newest 5 go.
        let mut records: Vec<Record> = (1..=10)
            .map(|id| {
                rec(
                    id,
                    Outcome::Succeeded,
                    &[("web", "w", ServiceResult::Rolled)],
                )
            })
            .collect();
        records.push(rec(
            11,
            Outcome::Failed,
            &[("web", "w", ServiceResult::Failed { reason: "x".into() })],
        ));
        let ids: Vec<u64> = retain(records, 2, 5).iter().map(|r| r.id).collect();
        assert_eq!(ids, [6, 7, 8, 9, 10, 11]);
    }

    /// Records written before the results were typed read back, and are written again with
    /// the same text.
    #[test]
    fn an_old_record_reads_and_writes_the_same_text() {
        let old = serde_json::json!({
            "id": 1_700_000_000_000u64, "project": "p", "kind": "apply",
            "started_at": "2026-01-01T00:00:00Z", "finished_at": "2026-01-01T00:00:09Z",
            "user": "u", "host": "h", "ci_build": null, "command": "deployer apply",
            "outcome": "rolled-back",
            "services": [
                {"service": "api", "action": "replace", "image": "api:2", "old_digest": null,
                 "new_digest": "d2", "old_spec_hash": "a", "new_spec_hash": "b",
                 "result": "rolled back", "specs": [spec_json()], "create_reference": "api:2"},
                {"service": "web", "action": "create", "image": "web:1", "old_digest": null,
                 "new_digest": null, "old_spec_hash": null, "new_spec_hash": null,
                 "result": "failed: new container p-web-1-0 is not healthy: answered 503"},
                {"service": "db", "action": "scale", "image": "db:1", "old_digest": null,
                 "new_digest": null, "old_spec_hash": null, "new_spec_hash": null,
                 "result": "rollback failed: starting container x: gone"},
                {"service": "old", "action": "remove", "image": null, "old_digest": null,
                 "new_digest": null, "old_spec_hash": null, "new_spec_hash": null,
                 "result": "not started"},
                {"service": "q", "action": "unchanged", "image": null, "old_digest": null,
                 "new_digest": null, "old_spec_hash": null, "new_spec_hash": null,
                 "result": "something newer"}
            ]
        });
        let record: Record = serde_json::from_value(old.clone()).expect("an old record reads");
        let results: Vec<&ServiceResult> = record.services.iter().map(|s| &s.result).collect();
        assert_eq!(
            results,
            [
                &ServiceResult::RolledBack,
                &ServiceResult::Failed {
                    reason: "new container p-web-1-0 is not healthy: answered 503".into()
                },
                &ServiceResult::RollbackFailed {
                    reason: "starting container x: gone".into()
                },
                &ServiceResult::NotStarted,
                &ServiceResult::Other("something newer".into()),
            ]
        );
        let actions: Vec<RecordedAction> = record.services.iter().map(|s| s.action).collect();
        assert_eq!(
            actions,
            [
                RecordedAction::Replace,
                RecordedAction::Create,
                RecordedAction::Scale,
                RecordedAction::Remove,
                RecordedAction::Unchanged
            ]
        );
        let again = serde_json::to_value(&record).expect("json");
        for (new, old) in again["services"]
            .as_array()
            .expect("services")
            .iter()
            .zip(old["services"].as_array().expect("services"))
        {
            assert_eq!(new["result"], old["result"]);
            assert_eq!(new["action"], old["action"]);
        }
        assert_eq!(record.services[0].result, "rolled back");
        assert_eq!(record.services[1].result.as_str(), "failed");
        assert_eq!(
            record.services[1].result,
            "failed: new container p-web-1-0 is not healthy: answered 503"
        );
        assert_ne!(record.services[1].result, "failed");
    }

    #[test]
    fn previous_revision_skips_failed_applies() {
        let records = vec![
            rec(
                1,
                Outcome::Succeeded,
                &[("api", "d1", ServiceResult::Rolled)],
            ),
            rec(
                2,
                Outcome::Succeeded,
                &[("web", "w1", ServiceResult::Rolled)],
            ),
            rec(
                3,
                Outcome::RolledBack,
                &[("api", "bad", ServiceResult::RolledBack)],
            ),
            rec(
                4,
                Outcome::Succeeded,
                &[("api", "d2", ServiceResult::Rolled)],
            ),
        ];
        let prev = previous_revision(&records, "api").expect("a previous revision");
        assert_eq!(prev.new_digest.as_deref(), Some("d1"));
        assert!(previous_revision(&records, "web").is_none());
        assert_eq!(last_changed_services(&records), vec!["api".to_string()]);
    }
}
