//! Apply history, kept on the engine host so every machine deploying there sees it: each
//! record is a never-started marker container `<project>-deploy-history-<millis>` whose label
//! holds the record as JSON (no secret values: specs serialize secrets as `(sensitive)`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::engine::{Engine, EngineError};
use crate::labels;
use crate::lock::MARKER_IMAGE;
use crate::spec::ContainerSpec;

/// Label holding the JSON record.
const RECORD: &str = "deployer.history.record";
/// How many records are kept per project; older ones are pruned after each apply.
pub const KEEP: usize = 100;

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
}

/// What happened to one service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceRecord {
    pub service: String,
    /// `create`, `replace`, `scale`, `remove`.
    pub action: String,
    /// The image as written in the manifest.
    pub image: Option<String>,
    pub old_digest: Option<String>,
    pub new_digest: Option<String>,
    pub old_spec_hash: Option<String>,
    pub new_spec_hash: Option<String>,
    /// `rolled`, `failed: <why>`, `rolled back`, `not started`, `removed`.
    pub result: String,
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
        self.result == "rolled"
    }
}

/// Stores a record.
pub async fn save(engine: &Engine, record: &Record) -> Result<(), EngineError> {
    let json = serde_json::to_string(record).map_err(|e| EngineError::Api {
        action: "encoding the history record".into(),
        detail: e.to_string(),
    })?;
    let labels = BTreeMap::from([
        (
            labels::MANAGED_BY.to_string(),
            labels::MANAGED_BY_VALUE.to_string(),
        ),
        (labels::PROJECT.to_string(), record.project.clone()),
        (labels::HISTORY.to_string(), "true".to_string()),
        (RECORD.to_string(), json),
    ]);
    let mut id = record.id;
    loop {
        let name = format!("{}-deploy-history-{id:015}", record.project);
        match engine.create_marker(MARKER_IMAGE, &name, &labels).await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_conflict() => id += 1,
            Err(e) => return Err(e),
        }
    }
}

/// Every record of the project, oldest first. Unreadable records are skipped.
pub async fn list(engine: &Engine, project: &str) -> Result<Vec<Record>, EngineError> {
    let mut records: Vec<(String, Record)> = engine
        .list_containers(&[(labels::PROJECT, Some(project)), (labels::HISTORY, None)])
        .await?
        .into_iter()
        .filter_map(|c| {
            let r: Record = serde_json::from_str(c.labels.get(RECORD)?).ok()?;
            Some((c.name, r))
        })
        .collect();
    records.sort_by(|a, b| (a.1.id, &a.0).cmp(&(b.1.id, &b.0)));
    Ok(records.into_iter().map(|(_, r)| r).collect())
}

/// Removes all but the newest `keep` records.
pub async fn prune(engine: &Engine, project: &str, keep: usize) -> Result<(), EngineError> {
    let mut list = engine
        .list_containers(&[(labels::PROJECT, Some(project)), (labels::HISTORY, None)])
        .await?;
    if list.len() <= keep {
        return Ok(());
    }
    list.sort_by(|a, b| a.name.cmp(&b.name));
    let excess = list.len() - keep;
    for c in list.into_iter().take(excess) {
        engine.remove_container(&c.id).await?;
    }
    Ok(())
}

/// Removes every record of the project.
pub async fn clear(engine: &Engine, project: &str) -> Result<usize, EngineError> {
    let list = engine
        .list_containers(&[(labels::PROJECT, Some(project)), (labels::HISTORY, None)])
        .await?;
    let n = list.len();
    for c in list {
        engine.remove_container(&c.id).await?;
    }
    Ok(n)
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
                .find(|s| s.service == service && s.took_effect() && !s.specs.is_empty())
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
                .filter(|s| s.took_effect() && !s.specs.is_empty())
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
                s.result.lines().next().unwrap_or("")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: u64, outcome: Outcome, services: &[(&str, &str, &str)]) -> Record {
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
                    action: "replace".into(),
                    image: None,
                    old_digest: None,
                    new_digest: Some(digest.to_string()),
                    old_spec_hash: None,
                    new_spec_hash: None,
                    result: result.to_string(),
                    specs: vec![serde_json::from_value(spec_json()).expect("spec")],
                    create_reference: None,
                })
                .collect(),
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
            rec(1, Outcome::Succeeded, &[("api", "d1", "rolled")]),
            rec(2, Outcome::Succeeded, &[("api", "d2", "rolled")]),
        ];
        let json: Vec<Record> = serde_json::from_str(&render_json(&records)).expect("json");
        let ids: Vec<u64> = json.iter().map(|r| r.id).collect();
        assert_eq!(ids, [2, 1]);
        let human = render_human(&records);
        assert!(human.find("#2").expect("#2") < human.find("#1").expect("#1"));
    }

    #[test]
    fn previous_revision_skips_failed_applies() {
        let records = vec![
            rec(1, Outcome::Succeeded, &[("api", "d1", "rolled")]),
            rec(2, Outcome::Succeeded, &[("web", "w1", "rolled")]),
            rec(3, Outcome::RolledBack, &[("api", "bad", "rolled back")]),
            rec(4, Outcome::Succeeded, &[("api", "d2", "rolled")]),
        ];
        let prev = previous_revision(&records, "api").expect("a previous revision");
        assert_eq!(prev.new_digest.as_deref(), Some("d1"));
        assert!(previous_revision(&records, "web").is_none());
        assert_eq!(last_changed_services(&records), vec!["api".to_string()]);
    }
}
