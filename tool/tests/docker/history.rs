//! The apply history in its volume, no-op applies, rollback errors, `down` of unknown projects,
//! `apply --plan` without `-f`, `--lock-timeout`, and how a failed apply reads.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use deployer::apply::{self, ApplyError, ApplyOptions};
use deployer::engine::Engine;
use deployer::history::{self, Outcome};
use deployer::progress::Progress;
use deployer::{observe, plan};

use crate::support::{self, build_canary, canary_service, Project};

fn one_service(p: &Project, message: &str) -> String {
    format!(
        "project: {}\nservices:\n{}",
        p.name,
        canary_service(
            "api",
            &p.image("v1"),
            &format!("    environment:\n      CANARY_MESSAGE: \"{message}\"\n")
        ),
    )
}

fn deployer(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(support::deployer_bin())
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run deployer")
}

/// Every container on the engine that belongs to the project or is named after it (what
/// `docker ps -a` shows of it), as `name id`.
async fn everything_of(engine: &Engine, project: &str) -> Vec<String> {
    let mut all: Vec<String> = engine
        .list_containers(&[])
        .await
        .expect("list containers")
        .into_iter()
        .filter(|c| {
            c.name.contains(project)
                || c.labels.get("deployer.project").map(String::as_str) == Some(project)
        })
        .map(|c| format!("{} {}", c.name, c.id))
        .collect();
    all.sort();
    all
}

/// Regression: every apply, no-op ones too, left a never-started `<project>-deploy-history-N`
/// container, and no-op records pushed the revisions rollback needs out of the history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_lives_in_one_volume_and_no_op_applies_create_nothing() {
    let Some(engine) = support::docker().await else {
        return;
    };
    let p = Project::new("histvol");
    build_canary(&p.image("v1"), &p.name, &[], false);
    let reg = support::registry_client();
    let progress = Progress::capture();
    let options = ApplyOptions::default();
    let m1 = p.manifest(&one_service(&p, "first"));
    apply::apply(&engine, &reg, &m1, None, &options, &progress)
        .await
        .expect("apply 1");
    let m2 = p.manifest(&one_service(&p, "second"));
    apply::apply(&engine, &reg, &m2, None, &options, &progress)
        .await
        .expect("apply 2");

    let volume = history::volume_name(&p.name);
    assert_eq!(volume, format!("{}_deploy-history", p.name));
    assert!(engine.volume_exists(&volume).await.expect("inspect volume"));
    let before = everything_of(&engine, &p.name).await;
    assert_eq!(before.len(), 1, "only the api container: {before:?}");
    assert!(before[0].contains("-api-"), "{before:?}");

    for _ in 0..5 {
        let report = apply::apply(&engine, &reg, &m2, None, &options, &progress)
            .await
            .expect("no-op apply");
        assert_eq!(report.record.outcome, Outcome::NoChanges);
    }
    assert_eq!(everything_of(&engine, &p.name).await, before);
    let records = history::list(&engine, &p.name).await.expect("history");
    assert_eq!(records.len(), 2, "no-op applies leave no record");
    assert_eq!(everything_of(&engine, &p.name).await, before, "reading");

    // The `history` command reads the volume from the CLI too.
    let out = deployer(
        p.dir.path(),
        &["history", "--project", &p.name, "--output", "json"],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let json: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json.len(), 2);

    let report = apply::rollback(&engine, &reg, &m2, &["api".into()], &options, &progress)
        .await
        .expect("rollback after no-op applies");
    assert_eq!(report.record.outcome, Outcome::Succeeded);
    let now = support::containers(&engine, &p.name).await;
    let (_, body) = support::get(&engine, &now[0].1, "/").await.expect("GET /");
    assert!(body.contains("first"), "back on the first revision: {body}");

    // `down` keeps the history; `down --volumes` removes it.
    let r = deployer::down::down(&engine, &p.name, false, "down", &progress)
        .await
        .expect("down");
    assert_eq!(r.containers, 1);
    assert!(engine.volume_exists(&volume).await.expect("inspect"));
    assert_eq!(
        history::list(&engine, &p.name).await.expect("list").len(),
        3
    );
    let r = deployer::down::down(&engine, &p.name, true, "down", &progress)
        .await
        .expect("down --volumes");
    assert_eq!((r.history_records, r.volumes), (3, 0));
    assert!(!engine.volume_exists(&volume).await.expect("inspect"));
    assert!(everything_of(&engine, &p.name).await.is_empty());
}

/// Records kept by older deployers as marker containers are read, and moved into the volume
/// (their containers removed) by the next write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_history_containers_move_into_the_volume_on_the_next_write() {
    let Some(engine) = support::docker().await else {
        return;
    };
    let p = Project::new("histmigrate");
    build_canary(&p.image("v1"), &p.name, &[], false);
    let reg = support::registry_client();
    let progress = Progress::capture();
    let old = serde_json::json!({
        "id": 1_000, "project": p.name, "kind": "apply", "started_at": "then",
        "finished_at": "then", "user": "someone", "host": "elsewhere", "ci_build": null,
        "command": "deployer apply", "outcome": "succeeded", "services": []
    });
    let labels = BTreeMap::from([
        ("deployer.managed-by".to_string(), "deployer".to_string()),
        ("deployer.project".to_string(), p.name.clone()),
        ("deployer.history".to_string(), "true".to_string()),
        ("deployer.history.record".to_string(), old.to_string()),
    ]);
    engine
        .create_marker(
            deployer::lock::MARKER_IMAGE,
            &format!("{}-deploy-history-000000000001000", p.name),
            &labels,
        )
        .await
        .expect("old record");
    let records = history::list(&engine, &p.name).await.expect("list");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].user, "someone");

    let m = p.manifest(&one_service(&p, "one"));
    apply::apply(&engine, &reg, &m, None, &ApplyOptions::default(), &progress)
        .await
        .expect("apply");
    let records = history::list(&engine, &p.name).await.expect("list");
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].id, 1_000);
    let left: Vec<String> = everything_of(&engine, &p.name)
        .await
        .into_iter()
        .filter(|c| c.contains("deploy-history"))
        .collect();
    assert!(left.is_empty(), "old record containers removed: {left:?}");
}

/// Regression: `deployer rollback web` with no earlier revision said
/// `applying: bad Docker connection settings: ...`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_without_an_earlier_revision_says_so() {
    let Some(engine) = support::docker().await else {
        return;
    };
    let p = Project::new("norollback");
    build_canary(&p.image("v1"), &p.name, &[], false);
    let reg = support::registry_client();
    let progress = Progress::capture();
    let m = p.manifest(&one_service(&p, "one"));
    apply::apply(&engine, &reg, &m, None, &ApplyOptions::default(), &progress)
        .await
        .expect("apply");
    let out = deployer(p.dir.path(), &["rollback", "-f", "deploy.yaml", "api"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let error: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("deployer: error:"))
        .collect();
    assert_eq!(
        error,
        ["deployer: error: rolling back api: no earlier successful revision in the history; see `deployer history`"],
        "{stderr}"
    );
    let _ = engine;
}

/// Regression: `down --project NAME` of a project the engine knows nothing of (a typo) said
/// it removed 0 of everything and exited 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_of_an_unknown_project_says_so_and_fails_unless_told_to_ignore_it() {
    let Some(_engine) = support::docker().await else {
        return;
    };
    let p = Project::new("nosuch");
    let out = deployer(p.dir.path(), &["down", "--project", &p.name]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "deployer: error: project {} has nothing on the engine at ",
            p.name
        )) && stderr.contains("--ignore-missing"),
        "{stderr}"
    );
    let out = deployer(
        p.dir.path(),
        &["down", "--project", &p.name, "--ignore-missing"],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // Nothing was created on the way (no lock left behind, no volume).
    assert!(support::containers(&_engine, &p.name).await.is_empty());
}

/// Regression: `apply --plan FILE` needed the same `-f` files again; the plan names them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_plan_applies_without_f_from_another_directory() {
    let Some(engine) = support::docker().await else {
        return;
    };
    let p = Project::new("planfile");
    build_canary(&p.image("v1"), &p.name, &[], false);
    p.write("deploy.yaml", &one_service(&p, "planned"));
    let out = deployer(
        p.dir.path(),
        &["plan", "-f", "deploy.yaml", "--out", "saved.plan"],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let plan_file = p.dir.path().join("saved.plan");
    let out = deployer(
        elsewhere.path(),
        &["apply", "--plan", plan_file.to_str().expect("utf-8 path")],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let now = support::containers(&engine, &p.name).await;
    let (_, body) = support::get(&engine, &now[0].1, "/").await.expect("GET /");
    assert!(body.contains("planned"), "{body}");
}

/// `--lock-timeout` waits for the holder to finish instead of failing at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_with_a_lock_timeout_waits_for_the_lock() {
    let Some(engine) = support::docker().await else {
        return;
    };
    let p = Project::new("lockwait");
    build_canary(&p.image("v1"), &p.name, &[], false);
    let reg = support::registry_client();
    let progress = Progress::capture();
    let m = p.manifest(&one_service(&p, "one"));
    let live = deployer::lock::LockInfo::for_this_process(&p.name, "deployer apply (other)");
    let held = deployer::lock::acquire(&engine, live.clone())
        .await
        .expect("lock");
    let err = apply::apply(&engine, &reg, &m, None, &ApplyOptions::default(), &progress)
        .await
        .expect_err("no timeout: fails at once");
    assert!(matches!(err, ApplyError::Lock(_)), "{err}");

    let releaser = {
        let engine = engine.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            held.release(&engine).await.expect("release");
        })
    };
    let options = ApplyOptions {
        lock_timeout: Duration::from_secs(60),
        ..ApplyOptions::default()
    };
    let report = apply::apply(&engine, &reg, &m, None, &options, &progress)
        .await
        .expect("waits for the lock, then applies");
    assert_eq!(report.record.outcome, Outcome::Succeeded);
    releaser.await.expect("releaser");
    assert!(
        progress
            .captured()
            .iter()
            .any(|l| l.contains("waiting up to 60s for the deploy lock held by")),
        "{:?}",
        progress.captured()
    );

    // The CLI flag parses durations like the manifest's.
    let out = deployer(
        p.dir.path(),
        &["--lock-timeout", "soon", "lock", "status", "--project", "x"],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("`soon` is not a duration"));
}

/// Regression: a failed apply printed its reason three or four times, and a container that
/// wrote nothing left a dangling `Its last 20 log lines:`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_apply_prints_its_reason_once() {
    let Some(_engine) = support::docker().await else {
        return;
    };
    let p = Project::new("failtext");
    build_canary(&p.image("v1"), &p.name, &[], false);
    build_canary(
        &p.image("broken"),
        &p.name,
        &[("CANARY_HEALTH", "fail")],
        false,
    );
    p.write("deploy.yaml", &one_service(&p, "one"));
    let out = deployer(p.dir.path(), &["apply", "-f", "deploy.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    p.write(
        "deploy.yaml",
        &one_service(&p, "two").replace(&p.image("v1"), &p.image("broken")),
    );
    let out = deployer(p.dir.path(), &["apply", "-f", "deploy.yaml"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("is not healthy").count(), 1, "{stderr}");
    let heading = stderr.lines().position(|l| l.contains("log line"));
    if let Some(at) = heading {
        assert!(
            stderr
                .lines()
                .nth(at + 1)
                .is_some_and(|l| l.starts_with("    ")),
            "a log heading is followed by log lines: {stderr}"
        );
    }
    assert!(!stderr.contains("log lines:\n\n") && !stderr.trim_end().ends_with("log lines:"));
}

/// Regression: after a `kill -9` of the deployer half-way through a roll, the next apply
/// replaced every replica, also those the killed apply had already rolled. Here the killed
/// apply's state is made by hand: replica 1 runs the new spec, its old container is stopped,
/// replica 2 still runs the old spec.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_interrupted_roll_only_what_differs_is_changed() {
    let Some(engine) = support::docker().await else {
        return;
    };
    let p = Project::new("killed");
    build_canary(&p.image("v1"), &p.name, &[], false);
    let reg = support::registry_client();
    let progress = Progress::capture();
    let yaml = |message: &str| {
        one_service(&p, message).replace("    health:", "    replicas: 2\n    health:")
    };
    let m1 = p.manifest(&yaml("old"));
    apply::apply(
        &engine,
        &reg,
        &m1,
        None,
        &ApplyOptions::default(),
        &progress,
    )
    .await
    .expect("apply old");
    let old = support::containers(&engine, &p.name).await;
    assert_eq!(old.len(), 2);

    // The killed apply: replica 1 rolled, its old container stopped, then nothing more.
    let m2 = p.manifest(&yaml("new"));
    let observed = observe::observe(&engine, &reg, &m2).await.expect("observe");
    let planned = plan::compute(&m2, &observed);
    let sp = &planned.services[0];
    let spec = &sp.desired[0];
    let reference = observe::create_reference(&spec.image, sp.image_digest.as_deref());
    let new1 = engine
        .create_from_spec(
            spec,
            &reference,
            sp.image_digest.as_deref().unwrap_or(""),
            "killed1",
        )
        .await
        .expect("create replica 1");
    engine
        .start_container(&new1)
        .await
        .expect("start replica 1");
    let old1 = sp
        .current
        .iter()
        .find(|c| c.replica == Some(1))
        .expect("old replica 1")
        .id
        .clone();
    engine
        .stop_container(&old1, Some(Duration::from_secs(2)))
        .await
        .expect("stop old replica 1");

    let report = apply::apply(
        &engine,
        &reg,
        &m2,
        None,
        &ApplyOptions::default(),
        &progress,
    )
    .await
    .expect("the next apply finishes the roll");
    assert_eq!(report.record.outcome, Outcome::Succeeded);
    let now = support::containers(&engine, &p.name).await;
    assert_eq!(now.len(), 2, "{now:?}");
    assert!(
        now.iter().any(|(_, id, _)| *id == new1),
        "the replica already rolled is kept: {now:?}"
    );
    for (_, id, _) in &now {
        let (_, body) = support::get(&engine, id, "/").await.expect("GET /");
        assert!(body.contains("new"), "{body}");
    }

    // Both replicas right, but the old ones left stopped: the plan removes them, replaces
    // nothing.
    let m3 = p.manifest(&yaml("newer"));
    let observed = observe::observe(&engine, &reg, &m3).await.expect("observe");
    let planned = plan::compute(&m3, &observed);
    let sp = &planned.services[0];
    let mut kept = Vec::new();
    for spec in &sp.desired {
        let reference = observe::create_reference(&spec.image, sp.image_digest.as_deref());
        let id = engine
            .create_from_spec(
                spec,
                &reference,
                sp.image_digest.as_deref().unwrap_or(""),
                &format!("killed-{}", spec.replica),
            )
            .await
            .expect("create");
        engine.start_container(&id).await.expect("start");
        kept.push(id);
    }
    for (_, id, _) in &now {
        engine
            .stop_container(id, Some(Duration::from_secs(2)))
            .await
            .expect("stop");
    }
    let observed = observe::observe(&engine, &reg, &m3).await.expect("observe");
    let planned = plan::compute(&m3, &observed);
    assert_eq!(
        planned.services[0].action,
        plan::Action::Scale { from: 4, to: 2 },
        "{}",
        plan::render_human(&planned, false)
    );
    assert!(!plan::render_human(&planned, false).contains("api: replace"));
    apply::apply(
        &engine,
        &reg,
        &m3,
        None,
        &ApplyOptions::default(),
        &progress,
    )
    .await
    .expect("apply removes the left-overs");
    let mut ids: Vec<String> = support::containers(&engine, &p.name)
        .await
        .into_iter()
        .map(|(_, id, _)| id)
        .collect();
    ids.sort();
    kept.sort();
    assert_eq!(ids, kept);
}
