//! How a roll treats traffic and containers: draining start-first rolls under a poller inside
//! the project network, stop signal / init / user, and secrets delivered as files.

use std::process::Command;

use deployer::apply::{self, ApplyOptions};
use deployer::engine::Engine;
use deployer::manifest::Manifest;
use deployer::observe;
use deployer::plan::{self, Action};
use deployer::progress::Progress;

use crate::support::{self, build_canary, Project};

async fn apply_ok(engine: &Engine, m: &Manifest, progress: &Progress) {
    let reg = support::registry_client();
    apply::apply(engine, &reg, m, None, &ApplyOptions::default(), progress)
        .await
        .unwrap_or_else(|e| panic!("apply failed: {e:#}\n{:?}", progress.captured()));
}

/// `web`, two replicas, start-first, no published port, draining for `drain`.
fn web(p: &Project, image: &str, message: &str, drain: &str) -> String {
    format!(
        "project: {}\nservices:\n  web:\n    image: {image}\n    replicas: 2\n    environment:\n      CANARY_MESSAGE: {message}\n    health:\n      port: 8090\n      interval: 100ms\n      retries: 20\n    stop_grace_period: 5s\n    drain: {drain}\n",
        p.name
    )
}

/// Regression (issue 18): a start-first roll stopped old containers while they still held the
/// service's DNS alias, and a client polling inside the network saw refused connections
/// (3 of 419 requests). Now new containers join the alias only once healthy, and old ones
/// leave it and drain before they are stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_first_roll_of_two_replicas_drops_no_request_of_a_poller_in_the_network() {
    let Some(engine) = support::docker().await else {
        return;
    };
    let p = Project::new("drain");
    let image = p.image("v1");
    build_canary(&image, &p.name, &[], false);
    let progress = Progress::capture();
    apply_ok(
        &engine,
        &p.manifest(&web(&p, &image, "rev-0", "1s")),
        &progress,
    )
    .await;

    let poller = support::Poller::start(
        &p.name,
        &image,
        &format!("{}-default", p.name),
        "http://web:8090/",
        10,
    );
    // Let the poller get going before the first roll.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    for rev in 1..=2 {
        apply_ok(
            &engine,
            &p.manifest(&web(&p, &image, &format!("rev-{rev}"), "1s")),
            &progress,
        )
        .await;
    }
    let count = poller.finish();
    assert!(count.ok > 50, "the poller got few answers: {count:?}");
    assert_eq!(
        count.failed, 0,
        "requests failed during two start-first rolls: {count:?}"
    );
    // Both replicas serve the last revision.
    let ids = support::containers(&engine, &p.name).await;
    assert_eq!(ids.len(), 2, "{ids:?}");
    for (_, id, name) in &ids {
        let (status, body) = support::get(&engine, id, "/").await.expect("GET /");
        assert_eq!(status, 200);
        assert!(body.contains("rev-2"), "{name} serves {body}");
        let d = engine.inspect_container(id).await.expect("inspect");
        assert!(
            d.networks.values().any(|a| a.contains(&"web".to_string())),
            "{name} holds the alias web: {:?}",
            d.networks
        );
    }
}

/// A failed roll gives the old containers their alias back: after the undo the service still
/// answers under its name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undone_roll_gives_old_containers_their_alias_back() {
    let Some(engine) = support::docker().await else {
        return;
    };
    let p = Project::new("drainundo");
    let good = p.image("v1");
    let bad = p.image("broken");
    build_canary(&good, &p.name, &[], false);
    build_canary(&bad, &p.name, &[("CANARY_HEALTH", "fail")], false);
    let progress = Progress::capture();
    let yaml = |api_image: &str| {
        format!(
            "project: {}\nservices:\n{}{}",
            p.name,
            support::canary_service(
                "web",
                &good,
                "    replicas: 2\n    environment:\n      CANARY_MESSAGE: changed\n"
            ),
            support::canary_service("api", api_image, "    depends_on: [web]\n"),
        )
    };
    let first = format!(
        "project: {}\nservices:\n{}{}",
        p.name,
        support::canary_service("web", &good, "    replicas: 2\n"),
        support::canary_service("api", &good, "    depends_on: [web]\n"),
    );
    apply_ok(&engine, &p.manifest(&first), &progress).await;
    let before = support::containers(&engine, &p.name).await;
    let reg = support::registry_client();
    let err = apply::apply(
        &engine,
        &reg,
        &p.manifest(&yaml(&bad)),
        None,
        &ApplyOptions::default(),
        &progress,
    )
    .await
    .expect_err("the broken api fails the apply");
    assert!(err.to_string().contains("rolled back"), "{err}");
    assert_eq!(support::containers(&engine, &p.name).await, before);
    for (service, id, name) in &before {
        let d = engine.inspect_container(id).await.expect("inspect");
        assert!(
            d.networks.values().any(|a| a.contains(service)),
            "{name} holds its alias {service} again: {:?}",
            d.networks
        );
    }
    // The name answers from inside the network.
    let poller = support::Poller::start(
        &p.name,
        &good,
        &format!("{}-default", p.name),
        "http://web:8090/health",
        50,
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let count = poller.finish();
    assert!(count.ok > 0 && count.failed == 0, "{count:?}");
}

/// `stop_signal`, `init` and `user` reach the container, and changing one rolls the service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_signal_init_and_user_reach_the_container_and_a_change_rolls_it() {
    let Some(engine) = support::docker().await else {
        return;
    };
    let p = Project::new("stopsig");
    let image = p.image("v1");
    build_canary(&image, &p.name, &[], false);
    let progress = Progress::capture();
    let yaml = |signal: &str| {
        format!(
            "project: {}\nservices:\n{}",
            p.name,
            support::canary_service(
                "web",
                &image,
                &format!("    stop_signal: {signal}\n    init: true\n    user: \"1000:1000\"\n")
            )
        )
    };
    apply_ok(&engine, &p.manifest(&yaml("SIGQUIT")), &progress).await;
    let (_, id, _) = support::containers(&engine, &p.name).await.remove(0);
    let inspect = |id: &str, format: &str| {
        support::run(Command::new("docker").args(["inspect", "-f", format, id]))
    };
    assert_eq!(inspect(&id, "{{.Config.StopSignal}}"), "SIGQUIT");
    assert_eq!(inspect(&id, "{{.HostConfig.Init}}"), "true");
    assert_eq!(inspect(&id, "{{.Config.User}}"), "1000:1000");

    let m = p.manifest(&yaml("SIGINT"));
    let observed = observe::observe(&engine, &support::registry_client(), &m)
        .await
        .expect("observe");
    let plan = plan::compute(&m, &observed);
    let web = plan
        .services
        .iter()
        .find(|s| s.service == "web")
        .expect("web");
    assert!(
        matches!(&web.action, Action::Replace { reasons } if format!("{reasons:?}").contains("stop_signal")),
        "{:?}",
        web.action
    );
    apply_ok(&engine, &m, &progress).await;
    let (_, id, _) = support::containers(&engine, &p.name).await.remove(0);
    assert_eq!(inspect(&id, "{{.Config.StopSignal}}"), "SIGINT");
}

/// Secrets as files: the value is in a 0400 file owned by the container's user, not in its
/// environment or labels, never in the plan or the progress output, and a changed value rolls
/// the service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_file_is_delivered_as_a_private_file_and_a_new_value_rolls_the_service() {
    let Some(engine) = support::docker().await else {
        return;
    };
    let p = Project::new("secretfile");
    let image = p.image("v1");
    build_canary(&image, &p.name, &[], false);
    let progress = Progress::capture();
    let yaml = format!(
        "project: {}\nservices:\n{}",
        p.name,
        support::canary_service(
            "web",
            &image,
            "    user: \"1000:1001\"\n    secrets:\n      TOKEN: {file: ./token, target: /run/secrets/token}\n      PLAIN: {file: ./plain}\n"
        )
    );
    std::fs::write(p.dir.path().join("token"), "first-s3cret-value\n").expect("write");
    std::fs::write(p.dir.path().join("plain"), "plain-s3cret-value\n").expect("write");
    apply_ok(&engine, &p.manifest(&yaml), &progress).await;
    let (_, id, _) = support::containers(&engine, &p.name).await.remove(0);
    let read = |id: &str| {
        let out = Command::new("docker")
            .args(["cp", &format!("{id}:/run/secrets/token"), "-"])
            .output()
            .expect("docker cp");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let archive = read(&id);
    let field = |range: std::ops::Range<usize>| {
        String::from_utf8_lossy(&archive[range])
            .trim_matches(|c| c == '\0' || c == ' ')
            .to_string()
    };
    assert_eq!(
        u32::from_str_radix(&field(100..108), 8).unwrap() & 0o7777,
        0o400,
        "mode"
    );
    assert_eq!(
        u32::from_str_radix(&field(108..116), 8).unwrap(),
        1000,
        "uid"
    );
    assert_eq!(
        u32::from_str_radix(&field(116..124), 8).unwrap(),
        1001,
        "gid"
    );
    assert_eq!(&archive[512..530], b"first-s3cret-value");
    let env_and_labels = support::run(Command::new("docker").args([
        "inspect",
        "-f",
        "{{json .Config.Env}} {{json .Config.Labels}}",
        &id,
    ]));
    assert!(
        !env_and_labels.contains("first-s3cret-value") && !env_and_labels.contains("TOKEN="),
        "{env_and_labels}"
    );
    assert!(
        env_and_labels.contains("PLAIN=plain-s3cret-value"),
        "a secret without target is still an environment variable: {env_and_labels}"
    );

    std::fs::write(p.dir.path().join("token"), "second-s3cret-value\n").expect("write");
    let m = p.manifest(&yaml);
    let observed = observe::observe(&engine, &support::registry_client(), &m)
        .await
        .expect("observe");
    let plan = plan::compute(&m, &observed);
    let text = format!("{}{}", plan::render_human(&plan, false), plan.to_json());
    assert!(text.contains("configuration changed: secrets"), "{text}");
    apply_ok(&engine, &m, &progress).await;
    let (_, new_id, _) = support::containers(&engine, &p.name).await.remove(0);
    assert_ne!(new_id, id, "the service was rolled");
    assert_eq!(&read(&new_id)[512..531], b"second-s3cret-value");
    let printed = format!("{text}{:?}", progress.captured());
    assert!(
        !printed.contains("s3cret-value"),
        "a secret value was printed: {printed}"
    );
}
