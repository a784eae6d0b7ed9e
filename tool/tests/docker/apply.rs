//! Apply scenarios: fresh apply, no-op apply, one-service change, fleet rollback, lock, stale
//! plan, history and rollback, down.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deployer::apply::{self, ApplyError, ApplyOptions, ApplyReport};
use deployer::engine::Engine;
use deployer::history::{self, Outcome};
use deployer::lock::LockError;
use deployer::manifest::Manifest;
use deployer::plan::{self, Action, Plan};
use deployer::progress::Progress;
use deployer::registry::RegistryClient;
use deployer::{down, observe};

use crate::support::{self, build_canary, canary_service, Project};

fn two_services(p: &Project, api_env: &str, web_image: &str) -> String {
    format!(
        "project: {}\nservices:\n{}{}",
        p.name,
        canary_service(
            "api",
            &p.image("v1"),
            &format!("    environment:\n      CANARY_MESSAGE: \"{api_env}\"\n")
        ),
        canary_service("web", web_image, "    depends_on: [api]\n"),
    )
}

/// `deployer apply` of `manifest`, planned afresh, with the default options.
async fn apply_default(
    engine: &Engine,
    reg: &RegistryClient,
    manifest: &Manifest,
    progress: &Progress,
) -> Result<ApplyReport, ApplyError> {
    apply::apply(
        engine,
        reg,
        manifest,
        None,
        &ApplyOptions::default(),
        progress,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_apply_leaves_everything_healthy_and_a_second_apply_changes_nothing() {
    let Some(engine) = support::docker().await else {
        return;
    };
    let p = Project::new("fresh");
    build_canary(&p.image("v1"), &p.name, &[], false);
    let yaml = format!(
        "{}{}",
        two_services(&p, "one", &p.image("v1")),
        canary_service("worker", &p.image("v1"), "    replicas: 2\n")
    );
    let m = p.manifest(&yaml);
    let reg = support::registry_client();
    let progress = Progress::capture();

    let report = apply_default(&engine, &reg, &m, &progress)
        .await
        .expect("fresh apply succeeds");
    assert_eq!(report.record.outcome, Outcome::Succeeded);

    let first = support::containers(&engine, &p.name).await;
    let services: Vec<&str> = first.iter().map(|(s, _, _)| s.as_str()).collect();
    assert_eq!(services, ["api", "web", "worker", "worker"]);
    for (service, id, name) in &first {
        assert!(
            name.starts_with(&format!("{}-{service}-", p.name)),
            "container name {name} starts with <project>-<service>-"
        );
        let (status, _) = support::get(&engine, id, "/health")
            .await
            .expect("GET /health");
        assert_eq!(status, 200, "{name} is healthy");
        let d = engine.inspect_container(id).await.expect("inspect");
        for key in [
            "deployer.project",
            "deployer.service",
            "deployer.spec-hash",
            "deployer.image-digest",
        ] {
            assert!(d.labels.contains_key(key), "{name} has label {key}");
        }
        assert!(d.labels["deployer.image-digest"].starts_with("sha256:"));
    }

    // Plan right after apply: no changes at all.
    let observed = observe::observe(&engine, &reg, &m).await.expect("observe");
    let plan = plan::compute(&m, &observed);
    assert!(!plan.has_changes(), "{}", plan::render_human(&plan, false));

    // Second apply: no changes, no container touched.
    let again = apply_default(&engine, &reg, &m, &progress)
        .await
        .expect("second apply succeeds");
    assert_eq!(again.record.outcome, Outcome::NoChanges);
    assert_eq!(support::containers(&engine, &p.name).await, first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_one_services_environment_replaces_only_that_service() {
    let Some(engine) = support::docker().await else {
        return;
    };
    let p = Project::new("envchange");
    build_canary(&p.image("v1"), &p.name, &[], false);
    let reg = support::registry_client();
    let progress = Progress::capture();
    let m1 = p.manifest(&two_services(&p, "before", &p.image("v1")));
    apply_default(&engine, &reg, &m1, &progress)
        .await
        .expect("first apply");
    let before: BTreeMap<String, String> = support::containers(&engine, &p.name)
        .await
        .into_iter()
        .map(|(s, id, _)| (s, id))
        .collect();

    let m2 = p.manifest(&two_services(&p, "after", &p.image("v1")));
    let observed = observe::observe(&engine, &reg, &m2).await.expect("observe");
    let plan = plan::compute(&m2, &observed);
    let actions: BTreeMap<&str, &Action> = plan
        .services
        .iter()
        .map(|s| (s.service.as_str(), &s.action))
        .collect();
    assert!(
        matches!(actions["api"], Action::Replace { reasons } if format!("{reasons:?}").contains("environment")),
        "{actions:?}"
    );
    assert_eq!(actions["web"], &Action::Unchanged);

    apply_default(&engine, &reg, &m2, &progress)
        .await
        .expect("second apply");
    let after: BTreeMap<String, String> = support::containers(&engine, &p.name)
        .await
        .into_iter()
        .map(|(s, id, _)| (s, id))
        .collect();
    assert_eq!(after.len(), 2, "old api container removed: {after:?}");
    assert_ne!(after["api"], before["api"], "api was replaced");
    assert_eq!(after["web"], before["web"], "web was not touched");
    let (_, body) = support::get(&engine, &after["api"], "/")
        .await
        .expect("GET /");
    assert!(body.contains("after"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_new_version_rolls_the_whole_fleet_back_while_old_containers_keep_serving() {
    let Some(engine) = support::docker().await else {
        return;
    };
    let p = Project::new("rollback");
    build_canary(&p.image("v1"), &p.name, &[], false);
    build_canary(
        &p.image("broken"),
        &p.name,
        &[("CANARY_HEALTH", "fail")],
        false,
    );
    let reg = support::registry_client();
    let progress = Progress::capture();
    let m1 = p.manifest(&two_services(&p, "v1", &p.image("v1")));
    apply_default(&engine, &reg, &m1, &progress)
        .await
        .expect("first apply");
    let before = support::containers(&engine, &p.name).await;
    let web_old = before
        .iter()
        .find(|(s, _, _)| s == "web")
        .map(|(_, id, _)| id.clone())
        .expect("web container");

    // Watch the old web container answer throughout the failing apply.
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let probes = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let (engine, stop, failures, probes, id) = (
            engine.clone(),
            stop.clone(),
            failures.clone(),
            probes.clone(),
            web_old.clone(),
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                match support::get(&engine, &id, "/health").await {
                    Ok((200, _)) => {}
                    _ => {
                        failures.fetch_add(1, Ordering::SeqCst);
                    }
                }
                probes.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    // api gets a good new version (it rolls first), web a broken one (it fails after).
    let m2 = p.manifest(&two_services(&p, "v2", &p.image("broken")));
    let err = apply_default(&engine, &reg, &m2, &progress)
        .await
        .expect_err("the broken version fails the apply");
    stop.store(true, Ordering::SeqCst);
    watcher.await.expect("watcher");

    let ApplyError::Failed(report) = err else {
        panic!("expected a failed apply, got {err}")
    };
    assert_eq!(report.record.outcome, Outcome::RolledBack);
    let failure = report.failure.clone().unwrap_or_default();
    assert!(failure.contains("service web"), "{failure}");
    assert!(failure.contains("answered 503"), "{failure}");
    assert!(
        failure.contains("canary v1 listening on port 8090"),
        "the failed container's logs are shown: {failure}"
    );
    let results: BTreeMap<&str, &str> = report
        .record
        .services
        .iter()
        .map(|s| (s.service.as_str(), s.result.as_str()))
        .collect();
    assert_eq!(results["api"], "rolled back");
    assert!(results["web"].starts_with("failed"), "{results:?}");

    // The fleet is exactly as before: same containers, old versions answering.
    assert_eq!(support::containers(&engine, &p.name).await, before);
    for (_, id, name) in &before {
        let (status, body) = support::get(&engine, id, "/").await.expect("GET /");
        assert_eq!(status, 200, "{name}");
        if name.contains("-api-") {
            assert!(
                body.contains("\"v1\""),
                "api runs the old environment: {body}"
            );
        }
    }
    assert!(probes.load(Ordering::SeqCst) > 10, "the watcher probed");
    assert_eq!(
        failures.load(Ordering::SeqCst),
        0,
        "the old web container answered every probe during the failed apply"
    );
    let observed = observe::observe(&engine, &reg, &m1).await.expect("observe");
    assert!(!plan::compute(&m1, &observed).has_changes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_concurrent_apply_fails_at_once_on_the_lock() {
    let Some(engine) = support::docker().await else {
        return;
    };
    let p = Project::new("lock");
    build_canary(
        &p.image("slow"),
        &p.name,
        &[("CANARY_HEALTH", "fail")],
        false,
    );
    let reg = support::registry_client();
    // The first apply waits for a health check that never passes (about 9 s).
    let yaml = format!(
        "project: {}\nservices:\n  api:\n    image: {}\n    health:\n      port: 8090\n      interval: 100ms\n      timeout: 200ms\n      retries: 30\n",
        p.name,
        p.image("slow")
    );
    let m = p.manifest(&yaml);
    let first = {
        let (engine, reg, m) = (engine.clone(), reg.clone(), m.clone());
        tokio::spawn(async move {
            let options = ApplyOptions {
                command: "deployer apply (first)".into(),
                ..ApplyOptions::default()
            };
            apply::apply(&engine, &reg, &m, None, &options, &Progress::capture()).await
        })
    };
    // Wait until the first apply holds the lock.
    let mut held = None;
    for _ in 0..100 {
        held = deployer::lock::status(&engine, &p.name)
            .await
            .expect("lock status");
        if held.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let held = held.expect("the first apply took the lock");
    assert_eq!(held.command, "deployer apply (first)");

    let err = apply::apply(
        &engine,
        &reg,
        &m,
        None,
        &ApplyOptions::default(),
        &Progress::capture(),
    )
    .await
    .expect_err("the second apply is refused");
    assert!(
        !first.is_finished(),
        "the second apply fails at once, without waiting for the first to finish"
    );
    let ApplyError::Lock(LockError::Held(info)) = &err else {
        panic!("expected the lock error, got {err}")
    };
    assert_eq!(info.command, "deployer apply (first)");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("project {} is locked by ", p.name))
            && msg.contains("`deployer apply (first)`")
            && msg.ends_with("wait for it to finish, or if it died run `deployer lock release`"),
        "{msg}"
    );

    let first = first.await.expect("join");
    assert!(
        first.is_err(),
        "the first apply fails on its broken health check"
    );
    assert!(
        deployer::lock::status(&engine, &p.name)
            .await
            .expect("status")
            .is_none(),
        "the lock is released after a failed apply"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_saved_plan_is_refused_and_a_fresh_one_applies() {
    let Some(engine) = support::docker().await else {
        return;
    };
    let p = Project::new("stale");
    build_canary(&p.image("v1"), &p.name, &[], false);
    let reg = support::registry_client();
    let progress = Progress::capture();
    let m1 = p.manifest(&two_services(&p, "one", &p.image("v1")));

    // A plan saved now...
    let observed = observe::observe(&engine, &reg, &m1).await.expect("observe");
    let saved = plan::compute(&m1, &observed).to_json();
    // ...goes stale when someone else applies first.
    apply_default(&engine, &reg, &m1, &progress)
        .await
        .expect("apply");
    let stale = Plan::from_json(&saved).expect("parse saved plan");
    let err = apply::apply(
        &engine,
        &reg,
        &m1,
        Some(stale),
        &ApplyOptions::default(),
        &progress,
    )
    .await
    .expect_err("stale plan refused");
    assert!(matches!(err, ApplyError::StalePlan { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("the saved plan is stale: the engine state changed since it was made"),
        "{err}"
    );

    // A plan saved against the current state applies.
    let m2 = p.manifest(&two_services(&p, "two", &p.image("v1")));
    let observed = observe::observe(&engine, &reg, &m2).await.expect("observe");
    let fresh = Plan::from_json(&plan::compute(&m2, &observed).to_json()).expect("parse");
    let report = apply::apply(
        &engine,
        &reg,
        &m2,
        Some(fresh),
        &ApplyOptions::default(),
        &progress,
    )
    .await
    .expect("fresh saved plan applies");
    assert_eq!(report.record.outcome, Outcome::Succeeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_records_applies_and_rollback_returns_to_the_previous_revision() {
    let Some(engine) = support::docker().await else {
        return;
    };
    let p = Project::new("history");
    build_canary(&p.image("v1"), &p.name, &[], false);
    let reg = support::registry_client();
    let progress = Progress::capture();
    let options = ApplyOptions {
        ci_build: Some("build-42".into()),
        ..ApplyOptions::default()
    };
    let m1 = p.manifest(&two_services(&p, "first", &p.image("v1")));
    apply::apply(&engine, &reg, &m1, None, &options, &progress)
        .await
        .expect("apply 1");
    let m2 = p.manifest(&two_services(&p, "second", &p.image("v1")));
    apply::apply(&engine, &reg, &m2, None, &options, &progress)
        .await
        .expect("apply 2");

    let records = history::list(&engine, &p.name).await.expect("history");
    assert_eq!(records.len(), 2);
    assert_eq!(records[1].ci_build.as_deref(), Some("build-42"));
    let api = records[1]
        .services
        .iter()
        .find(|s| s.service == "api")
        .expect("api record");
    assert_eq!(api.action, "replace");
    assert_eq!(api.result, "rolled");
    assert!(api.old_spec_hash.is_some() && api.old_spec_hash != api.new_spec_hash);
    assert!(api
        .new_digest
        .as_deref()
        .is_some_and(|d| d.starts_with("sha256:")));

    let report = apply::rollback(&engine, &reg, &m2, &["api".into()], &options, &progress)
        .await
        .expect("rollback");
    assert_eq!(report.record.outcome, Outcome::Succeeded);
    let now = support::containers(&engine, &p.name).await;
    let api_id = &now.iter().find(|(s, _, _)| s == "api").expect("api").1;
    let (_, body) = support::get(&engine, api_id, "/").await.expect("GET /");
    assert!(
        body.contains("first"),
        "api is back on the first revision: {body}"
    );
    assert_eq!(now.len(), 2);
    // The manifest still says "second": the plan shows the difference.
    let observed = observe::observe(&engine, &reg, &m2).await.expect("observe");
    assert!(plan::compute(&m2, &observed).has_changes());
    assert_eq!(
        history::list(&engine, &p.name)
            .await
            .expect("history")
            .len(),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_removes_containers_and_networks_and_volumes_only_when_asked() {
    let Some(engine) = support::docker().await else {
        return;
    };
    let p = Project::new("down");
    build_canary(&p.image("v1"), &p.name, &[], false);
    let reg = support::registry_client();
    let progress = Progress::capture();
    let yaml = format!(
        "project: {}\nvolumes:\n  data: {{}}\nservices:\n{}",
        p.name,
        canary_service("api", &p.image("v1"), "    volumes:\n      - data:/data\n")
    );
    let m = p.manifest(&yaml);
    apply_default(&engine, &reg, &m, &progress)
        .await
        .expect("apply");
    // The data volume; the history volume carries `deployer.history` too.
    let label = [("deployer.project", Some(p.name.as_str()))];
    let data_volumes = || async {
        engine
            .list_volumes(&label)
            .await
            .expect("volumes")
            .into_iter()
            .filter(|v| !v.labels.contains_key("deployer.history"))
            .count()
    };
    assert_eq!(data_volumes().await, 1);

    let r = down::down(&engine, &p.name, false, "down", &progress)
        .await
        .expect("down");
    assert_eq!((r.containers, r.networks, r.volumes), (1, 1, 0));
    assert!(support::containers(&engine, &p.name).await.is_empty());
    assert!(engine
        .list_networks(&label)
        .await
        .expect("networks")
        .is_empty());
    assert_eq!(data_volumes().await, 1);

    let r = down::down(&engine, &p.name, true, "down", &progress)
        .await
        .expect("down -v");
    assert_eq!(r.volumes, 1);
    assert_eq!(r.history_records, 1);
    assert!(engine
        .list_volumes(&label)
        .await
        .expect("volumes")
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_with_a_fixed_host_port_rolls_stop_first_and_a_taken_port_is_reported() {
    let Some(engine) = support::docker().await else {
        return;
    };
    let p = Project::new("hostport");
    build_canary(&p.image("v1"), &p.name, &[], false);
    let reg = support::registry_client();
    let port = support::free_port();
    let yaml = |msg: &str, port: u16| {
        format!(
            "project: {}\nservices:\n{}",
            p.name,
            canary_service(
                "gw",
                &p.image("v1"),
                &format!(
                    "    ports: [\"127.0.0.1:{port}:8090\"]\n    environment:\n      CANARY_MESSAGE: {msg}\n"
                )
            )
        )
    };
    let progress = Progress::capture();
    apply::apply(
        &engine,
        &reg,
        &p.manifest(&yaml("one", port)),
        None,
        &ApplyOptions::default(),
        &progress,
    )
    .await
    .expect("first apply");
    apply::apply(
        &engine,
        &reg,
        &p.manifest(&yaml("two", port)),
        None,
        &ApplyOptions::default(),
        &progress,
    )
    .await
    .expect("a host-port service rolls without a port clash");
    assert!(
        progress
            .captured()
            .iter()
            .any(|l| l.contains("stop-first: it publishes a fixed host port")),
        "{:?}",
        progress.captured()
    );
    let body = reqwest::get(format!("http://127.0.0.1:{port}/"))
        .await
        .expect("GET on the host port")
        .text()
        .await
        .expect("body");
    assert!(body.contains("two"), "{body}");

    // Another process holds the next port: the apply fails loudly and rolls back.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_port = taken.local_addr().expect("addr").port();
    let before = support::containers(&engine, &p.name).await;
    let err = apply::apply(
        &engine,
        &reg,
        &p.manifest(&yaml("three", taken_port)),
        None,
        &ApplyOptions::default(),
        &Progress::capture(),
    )
    .await
    .expect_err("the port is taken");
    let msg = match &err {
        ApplyError::Failed(r) => r.failure.clone().unwrap_or_default(),
        other => panic!("expected a failed apply, got {other}"),
    };
    assert!(
        msg.contains(&format!("host port {taken_port} is already in use by another process or container; free it or change `ports` of service gw")),
        "{msg}"
    );
    assert_eq!(
        support::containers(&engine, &p.name).await,
        before,
        "rolled back"
    );
    let body = reqwest::get(format!("http://127.0.0.1:{port}/"))
        .await
        .expect("the old container serves again")
        .text()
        .await
        .expect("body");
    assert!(body.contains("two"), "{body}");
    drop(taken);
}

/// Regression: an undo health-checked the restarted old containers with the new spec's health
/// settings, so a change of health path that broke the new version also failed the rollback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_checks_old_containers_with_their_own_health_settings() {
    let Some(engine) = support::docker().await else {
        return;
    };
    let p = Project::new("ownhealth");
    build_canary(&p.image("v1"), &p.name, &[], false);
    let reg = support::registry_client();
    // Stop-first, so the old container is stopped before the new one fails and must be
    // started and health-checked again by the undo.
    let yaml = |path: &str| {
        format!(
            "project: {}\nservices:\n  api:\n    image: {}\n    update: {{order: stop-first}}\n    health:\n      path: {path}\n      port: 8090\n      interval: 100ms\n      timeout: 1s\n      retries: 5\n    stop_grace_period: 2s\n",
            p.name,
            p.image("v1")
        )
    };
    let progress = Progress::capture();
    apply::apply(
        &engine,
        &reg,
        &p.manifest(&yaml("/health")),
        None,
        &ApplyOptions::default(),
        &progress,
    )
    .await
    .expect("first apply");
    let before = support::containers(&engine, &p.name).await;

    // The canary answers 404 on /nope: the new container fails, the old one is healthy on
    // its own /health.
    let err = apply::apply(
        &engine,
        &reg,
        &p.manifest(&yaml("/nope")),
        None,
        &ApplyOptions::default(),
        &progress,
    )
    .await
    .expect_err("the new health path fails");
    let ApplyError::Failed(report) = err else {
        panic!("expected a failed apply, got {err}")
    };
    let failure = report.failure.clone().unwrap_or_default();
    assert!(failure.contains("/nope answered 404"), "{failure}");
    assert_eq!(
        report.record.outcome,
        Outcome::RolledBack,
        "the old container is healthy by its own check: {failure}\n{:?}",
        progress.captured()
    );
    assert!(
        progress
            .captured()
            .iter()
            .any(|l| l.contains("rolled back")),
        "{:?}",
        progress.captured()
    );
    assert_eq!(support::containers(&engine, &p.name).await, before);
    let (status, _) = support::get(&engine, &before[0].1, "/health")
        .await
        .expect("GET /health");
    assert_eq!(status, 200);
}

/// Regression: an apply killed before it released the deploy lock (kill -9, a crash) left the
/// lock behind, and every later apply was refused until someone ran `deployer lock release`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_left_by_a_process_that_no_longer_runs_is_taken_over() {
    let Some(engine) = support::docker().await else {
        return;
    };
    let p = Project::new("deadlock");
    build_canary(&p.image("v1"), &p.name, &[], false);
    let reg = support::registry_client();
    // A process that has exited: its pid no longer names it.
    let mut child = std::process::Command::new("true")
        .spawn()
        .expect("spawn true");
    let dead_pid = child.id();
    child.wait().expect("wait");
    let mut info = deployer::lock::LockInfo::for_this_process(&p.name, "deployer apply (killed)");
    info.pid = dead_pid;
    assert!(info.holder_is_gone(), "{info:?}");
    let left = deployer::lock::acquire(&engine, info).await.expect("lock");
    drop(left); // never released, like a killed apply's

    let progress = Progress::capture();
    let m = p.manifest(&two_services(&p, "one", &p.image("v1")));
    let report = apply_default(&engine, &reg, &m, &progress)
        .await
        .expect("the apply takes the dead holder's lock over");
    assert_eq!(report.record.outcome, Outcome::Succeeded);
    assert!(
        progress.captured().iter().any(|l| l.contains(&format!(
            "took over the stale deploy lock of {}",
            deployer::lock::whoami()
        )) && l
            .contains(&format!("pid {dead_pid}): that process no longer runs"))),
        "{:?}",
        progress.captured()
    );
    assert!(deployer::lock::status(&engine, &p.name)
        .await
        .expect("status")
        .is_none());

    // A holder that still runs (this test process) is never taken over.
    let live = deployer::lock::LockInfo::for_this_process(&p.name, "deployer apply (live)");
    assert!(!live.holder_is_gone());
    let held = deployer::lock::acquire(&engine, live).await.expect("lock");
    let m2 = p.manifest(&two_services(&p, "two", &p.image("v1")));
    let err = apply_default(&engine, &reg, &m2, &progress)
        .await
        .expect_err("a live holder keeps the lock");
    assert!(matches!(err, ApplyError::Lock(LockError::Held(_))), "{err}");
    held.release(&engine).await.expect("release");
}
