//! The executor against the in-memory engine of `fake.rs`: failures within a level, the two
//! failure policies, an apply finished after it was killed half-way, and a rollback.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::execute::{Executed, Executor};
use super::fake::{digest_of, FakeEngine};
use super::roll::log_tail_text;
use super::{ApplyOptions, Failure};
use crate::history::{self, Kind, Outcome, Record, ServiceResult};
use crate::manifest::{self, Manifest};
use crate::plan::{self, Plan};
use crate::progress::Progress;
use crate::registry::{DockerConfig, RegistryClient};

/// `db`, then `api`, `web` and `worker` in one level (they depend on `db`), each at `version`.
/// `web` runs two replicas and takes `web_failure_action`.
fn fleet(version: u32, web_failure_action: &str) -> Manifest {
    let yaml = format!(
        r#"
project: shop
services:
  db:
    image: db:{version}
    drain: 0s
    health: {{port: 5432}}
  api:
    image: api:{version}
    depends_on: [db]
    drain: 0s
    health: {{port: 80}}
  web:
    image: web:{version}
    replicas: 2
    depends_on: [db]
    drain: 0s
    health: {{port: 80}}
    update: {{failure_action: {web_failure_action}}}
  worker:
    image: worker:{version}
    depends_on: [db]
    drain: 0s
    health: {{port: 80}}
"#
    );
    load(&yaml)
}

fn load(yaml: &str) -> Manifest {
    manifest::load_sources(&[(PathBuf::from("m.yaml"), yaml.to_owned())], &|_| None)
        .unwrap_or_else(|e| panic!("test manifest must load:\n{e}"))
}

/// Plans `manifest` against the fake engine's state and carries the plan out.
async fn apply(engine: &FakeEngine, manifest: &Manifest) -> (Plan, Executed) {
    let plan = plan::compute(manifest, &engine.observe(manifest));
    let done = execute(engine, &plan, &ApplyOptions::default()).await;
    (plan, done)
}

async fn execute(engine: &FakeEngine, plan: &Plan, options: &ApplyOptions) -> Executed {
    crate::engine::install_crypto_provider();
    let registry = RegistryClient::new(DockerConfig::default()).expect("registry client");
    let progress = Progress::quiet();
    Executor::new(engine, engine, &registry, options, &progress)
        .execute(plan)
        .await
}

fn results(done: &Executed) -> BTreeMap<&str, &ServiceResult> {
    done.services
        .iter()
        .map(|s| (s.service.as_str(), &s.result))
        .collect()
}

/// The running containers' ids, per service.
fn running(engine: &FakeEngine) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in engine.containers().into_iter().filter(|c| c.is_running()) {
        out.entry(c.service().to_owned()).or_default().push(c.id);
    }
    out
}

fn record(id: u64, done: &Executed) -> Record {
    Record {
        id,
        project: "shop".into(),
        kind: Kind::Apply,
        started_at: String::new(),
        finished_at: String::new(),
        user: "u".into(),
        host: "h".into(),
        ci_build: None,
        command: "deployer apply".into(),
        outcome: done.outcome,
        services: done.services.clone(),
        allowed_incompatible: Vec::new(),
    }
}

#[tokio::test]
async fn a_fresh_apply_creates_every_replica_and_a_second_changes_nothing() {
    let engine = FakeEngine::default();
    let (_, done) = apply(&engine, &fleet(1, "rollback")).await;
    assert_eq!(done.outcome, Outcome::Succeeded, "{:?}", done.failure);
    assert!(results(&done)
        .values()
        .all(|r| **r == ServiceResult::Rolled));
    let ids = running(&engine);
    assert_eq!(ids["web"].len(), 2);
    assert_eq!(engine.containers().len(), 5, "nothing but the replicas");
    // A new service joins its DNS alias at creation.
    let web = &engine.running("web")[0];
    assert!(web.networks.values().any(|a| a.contains(&"web".to_owned())));

    let (plan, _) = apply(&engine, &fleet(1, "rollback")).await;
    assert!(!plan.has_changes());
    assert_eq!(running(&engine), ids);
}

/// One service of a level fails while the others of that level roll: every service this apply
/// rolled, in that level and the one before, is put back onto exactly its old containers.
#[tokio::test]
async fn a_failed_roll_in_the_middle_of_a_level_puts_the_whole_fleet_back() {
    let engine = FakeEngine::default();
    apply(&engine, &fleet(1, "rollback")).await;
    let before = running(&engine);
    engine.fail_image("web:2");

    let (_, done) = apply(&engine, &fleet(2, "rollback")).await;

    assert_eq!(done.outcome, Outcome::RolledBack);
    let results = results(&done);
    for service in ["db", "api", "worker"] {
        assert_eq!(*results[service], ServiceResult::RolledBack, "{service}");
    }
    let ServiceResult::Failed { reason } = results["web"] else {
        panic!("web failed: {results:?}");
    };
    assert!(reason.contains("exited with code 1"), "{reason}");
    let Some(failure @ Failure::Roll { paused: false, .. }) = &done.failure else {
        panic!("a roll failure: {:?}", done.failure);
    };
    let text = failure.to_string();
    assert!(
        text.starts_with("service web: new container shop-web-1-"),
        "{text}"
    );
    assert!(text.contains("fake: exiting"), "the logs are shown: {text}");

    assert_eq!(running(&engine), before, "the same containers run again");
    assert_eq!(engine.containers().len(), 5, "the new ones are removed");
    for c in engine.containers() {
        assert!(c.image.ends_with(":1"), "{c:?}");
        // Back in the service's DNS alias.
        let service = c.service().to_owned();
        assert!(c.networks.values().all(|a| a.contains(&service)), "{c:?}");
    }
}

/// `failure_action: pause` keeps what was rolled before the failure; `rollback` (the default)
/// puts it back.
#[tokio::test]
async fn pause_keeps_the_services_rolled_before_the_failure_and_rollback_does_not() {
    for (policy, want_db) in [("pause", "db:2"), ("rollback", "db:1")] {
        let engine = FakeEngine::default();
        apply(&engine, &fleet(1, policy)).await;
        engine.fail_image("web:2");

        let (_, done) = apply(&engine, &fleet(2, policy)).await;

        let db = engine.running("db");
        assert_eq!(db.len(), 1, "{policy}");
        assert_eq!(db[0].image, want_db, "{policy}");
        let web: Vec<String> = engine.running("web").into_iter().map(|c| c.image).collect();
        assert_eq!(
            web,
            ["web:1", "web:1"],
            "{policy}: web keeps its old replicas"
        );
        let results = results(&done);
        assert!(results["web"].is_failed(), "{policy}: {results:?}");
        let text = done.failure.as_ref().expect("a failure").to_string();
        if policy == "pause" {
            assert_eq!(done.outcome, Outcome::Failed);
            assert_eq!(*results["db"], ServiceResult::Rolled);
            assert!(text.ends_with("failure_action is pause: services rolled before the failure keep their new version"), "{text}");
            assert_eq!(
                engine.containers().len(),
                5,
                "db's old container is removed"
            );
        } else {
            assert_eq!(done.outcome, Outcome::RolledBack);
            assert_eq!(*results["db"], ServiceResult::RolledBack);
            assert!(!text.contains("pause"), "{text}");
        }
    }
}

/// Regression: an apply killed half-way left rolled replicas that the next apply replaced
/// again. It keeps the replicas that already run their desired spec, and removes what the
/// killed run left behind.
#[tokio::test]
async fn an_apply_killed_half_way_is_finished_keeping_the_replicas_it_rolled() {
    let engine = FakeEngine::default();
    let v1 = load(
        "project: shop\nservices:\n  web:\n    image: web:1\n    replicas: 3\n    drain: 0s\n    health: {port: 80}\n",
    );
    let v2 = load(
        "project: shop\nservices:\n  web:\n    image: web:2\n    replicas: 3\n    drain: 0s\n    health: {port: 80}\n",
    );
    apply(&engine, &v1).await;

    // The second new container hangs on start, and the run is dropped: a `kill -9`.
    engine.hang_after_starts(1);
    let plan = plan::compute(&v2, &engine.observe(&v2));
    let killed = tokio::time::timeout(
        Duration::from_millis(300),
        execute(&engine, &plan, &ApplyOptions::default()),
    )
    .await;
    assert!(killed.is_err(), "the run hangs");
    engine.hang_after_starts(usize::MAX);
    let kept: Vec<String> = engine
        .running("web")
        .into_iter()
        .filter(|c| c.image == "web:2")
        .map(|c| c.id)
        .collect();
    assert_eq!(kept.len(), 1, "{:#?}", engine.containers());

    let log_before = engine.log().len();
    let (plan, done) = apply(&engine, &v2).await;
    assert!(plan.has_changes());
    assert_eq!(done.outcome, Outcome::Succeeded, "{:?}", done.failure);

    let web = engine.running("web");
    assert_eq!(web.len(), 3);
    assert!(web.iter().all(|c| c.image == "web:2"));
    assert!(web.iter().any(|c| c.id == kept[0]), "replica 1 is kept");
    assert_eq!(engine.containers().len(), 3, "the leftovers are removed");
    let created: Vec<String> = engine.log()[log_before..]
        .iter()
        .filter(|l| l.starts_with("create "))
        .cloned()
        .collect();
    assert_eq!(
        created.len(),
        2,
        "only replicas 2 and 3 are created: {created:?}"
    );
    assert!(created.iter().all(|l| !l.contains("web-1-")), "{created:?}");
}

/// `deployer rollback`: the previous successful revision from the history, planned by
/// `plan::for_rollback` and carried out like an apply.
#[tokio::test]
async fn a_rollback_returns_to_the_previous_revision() {
    let engine = FakeEngine::default();
    let v1 = fleet(1, "rollback");
    let v2 = fleet(2, "rollback");
    let (plan1, first) = apply(&engine, &v1).await;
    let (_, second) = apply(&engine, &v2).await;
    assert_eq!(second.outcome, Outcome::Succeeded);
    let records = vec![record(1, &first), record(2, &second)];

    let targets = history::last_changed_services(&records);
    assert_eq!(targets, ["api", "db", "web", "worker"]);
    let revisions = targets
        .iter()
        .map(|name| {
            let prev = history::previous_revision(&records, name).expect("a revision");
            plan::Revision {
                service: name.clone(),
                image: prev.image.clone(),
                image_digest: prev.new_digest.clone(),
                specs: prev.specs.clone(),
            }
        })
        .collect();
    let plan =
        plan::for_rollback(&v2, revisions, &engine.observe(&v2).containers).expect("rollback plan");
    let done = execute(&engine, &plan, &ApplyOptions::default()).await;

    assert_eq!(done.outcome, Outcome::Succeeded, "{:?}", done.failure);
    for sp in &plan1.services {
        let running = engine.running(&sp.service);
        assert_eq!(running.len(), sp.desired.len());
        for c in running {
            assert_eq!(c.image, format!("{}:1", sp.service));
            assert_eq!(c.spec_hash(), sp.desired[0].spec_hash);
            assert_eq!(
                c.labels.get(crate::labels::IMAGE_DIGEST),
                Some(&digest_of(&c.image))
            );
        }
    }
    assert_eq!(engine.containers().len(), 5);
    // Regression: a successful rollback ended with "apply complete".
    let report = super::ApplyReport {
        plan,
        record: Record {
            kind: Kind::Rollback,
            ..record(3, &done)
        },
        failure: None,
    };
    assert_eq!(
        report.to_string(),
        "rollback complete: 4 service(s) changed"
    );
}

/// SIGINT while a new container waits for its health check: the run starts nothing new, the
/// container is removed as a failed one, and everything this run rolled is put back.
#[tokio::test]
async fn an_interrupt_mid_roll_undoes_the_run() {
    let engine = FakeEngine::default();
    apply(&engine, &fleet(1, "rollback")).await;
    let before = running(&engine);
    let options = ApplyOptions::default();
    // db and two services of the next level start; the third start is interrupted.
    engine.interrupt_after_starts(3, options.interrupt.clone());

    let v2 = fleet(2, "rollback");
    let plan = plan::compute(&v2, &engine.observe(&v2));
    let done = execute(&engine, &plan, &options).await;

    assert_eq!(done.outcome, Outcome::RolledBack);
    let text = done.failure.as_ref().expect("a failure").to_string();
    assert!(text.contains("interrupted by SIGINT"), "{text}");
    assert_eq!(running(&engine), before);
    assert_eq!(engine.containers().len(), 5);
    let results = results(&done);
    assert_eq!(*results["db"], ServiceResult::RolledBack);
    assert!(
        results.values().any(|r| r.is_failed()),
        "the interrupted service failed: {results:?}"
    );
}

/// Stop-first stops the old container before the new one starts; start-first starts the new
/// one, gives it the service's alias once healthy, and only then takes the old one out.
#[tokio::test]
async fn the_update_order_decides_when_the_old_container_stops() {
    for order in ["stop-first", "start-first"] {
        let engine = FakeEngine::default();
        let manifest = |v: u32| {
            load(&format!(
                "project: shop\nservices:\n  web:\n    image: web:{v}\n    drain: 0s\n    health: {{port: 80}}\n    update: {{order: {order}}}\n"
            ))
        };
        apply(&engine, &manifest(1)).await;
        let old = engine.running("web")[0].name.clone();
        let from = engine.log().len();

        let (_, done) = apply(&engine, &manifest(2)).await;

        assert_eq!(
            done.outcome,
            Outcome::Succeeded,
            "{order}: {:?}",
            done.failure
        );
        let new = engine.running("web")[0].name.clone();
        let log = &engine.log()[from..];
        let at = |line: &str| {
            log.iter()
                .position(|l| l == line)
                .unwrap_or_else(|| panic!("{order}: no `{line}` in {log:#?}"))
        };
        let (stop_old, start_new) = (at(&format!("stop {old}")), at(&format!("start {new}")));
        let old_leaves = at(&format!("aliases {old} shop-default []"));
        let new_joins = at(&format!("aliases {new} shop-default [\"web\"]"));
        assert!(old_leaves < stop_old, "{order}: {log:#?}");
        assert!(start_new < new_joins, "{order}: {log:#?}");
        if order == "stop-first" {
            assert!(stop_old < start_new, "{log:#?}");
        } else {
            assert!(new_joins < old_leaves, "{log:#?}");
        }
    }
}

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
