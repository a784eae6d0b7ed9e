//! The `deployer` binary: exit codes and one-line errors.

use std::process::Command;

use crate::support::{self, build_canary, canary_service, Project};

fn deployer(args: &[&str]) -> Command {
    let mut c = Command::new(support::deployer_bin());
    c.args(args);
    c
}

#[test]
fn an_unreachable_docker_host_gives_one_clear_line_and_exit_1() {
    let port = support::free_port();
    let out = deployer(&["smoke-test", "anything:1"])
        .env("DOCKER_HOST", format!("tcp://127.0.0.1:{port}"))
        .output()
        .expect("run deployer");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.starts_with(&format!(
            "deployer: error: connecting to Docker: cannot reach the Docker Engine at tcp://127.0.0.1:{port}: "
        )) && stderr.trim_end().ends_with("start the daemon or point DOCKER_HOST at it"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"));
}

#[test]
fn an_unsupported_docker_host_scheme_is_explained() {
    let out = deployer(&["lock", "status", "--project", "x"])
        .env("DOCKER_HOST", "ssh://me@example")
        .output()
        .expect("run deployer");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        "deployer: error: connecting to Docker: bad Docker connection settings: DOCKER_HOST=ssh://me@example: \
         ssh:// engines are not supported; forward the engine's socket instead \
         (`ssh -nNT -L /tmp/docker-remote.sock:/var/run/docker.sock me@example`) and use \
         DOCKER_HOST=unix:///tmp/docker-remote.sock, or expose the engine on tcp:// with TLS"
    );
}

#[test]
fn help_at_every_level_has_an_example() {
    for args in [
        vec!["--help"],
        vec!["plan", "--help"],
        vec!["apply", "--help"],
        vec!["lock", "--help"],
        vec!["history", "--help"],
        vec!["rollback", "--help"],
        vec!["smoke-test", "--help"],
        vec!["status", "--help"],
        vec!["down", "--help"],
    ] {
        let out = deployer(&args).output().expect("run deployer");
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Example"), "{args:?} has an example:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_test_passes_on_a_good_image_and_fails_with_logs_on_a_bad_one() {
    let Some(engine) = support::docker().await else {
        return;
    };
    let p = Project::new("smoke");
    build_canary(&p.image("good"), &p.name, &[], false);
    build_canary(
        &p.image("bad"),
        &p.name,
        &[("CANARY_HEALTH", "fail")],
        false,
    );
    let count = || async {
        engine
            .list_containers(&[("deployer.smoke-test", None)])
            .await
            .expect("list")
            .into_iter()
            .filter(|c| c.image.contains(&p.name))
            .count()
    };

    let good = deployer(&[
        "smoke-test",
        &p.image("good"),
        "--port",
        "8090",
        "--timeout",
        "20s",
    ])
    .output()
    .expect("run");
    assert_eq!(
        good.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert_eq!(count().await, 0, "the container is removed");

    let bad = deployer(&[
        "smoke-test",
        &p.image("bad"),
        "--port",
        "8090",
        "--timeout",
        "2s",
        "--env",
        "CANARY_VERSION=smoke-v9",
    ])
    .output()
    .expect("run");
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("answered 503"), "{stderr}");
    assert!(
        stderr.contains("canary smoke-v9 listening on port 8090"),
        "the logs are printed: {stderr}"
    );
    assert_eq!(
        count().await,
        0,
        "the container is removed after a failure too"
    );

    let missing = deployer(&["smoke-test", &p.image("never-built")])
        .output()
        .expect("run");
    assert_eq!(missing.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("the image is not on the Docker Engine"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_detailed_exitcode_and_json_then_apply_then_no_changes() {
    let Some(engine) = support::docker().await else {
        return;
    };
    let p = Project::new("cli");
    build_canary(&p.image("v1"), &p.name, &[], false);
    let file = p.write(
        "deploy.yaml",
        &format!(
            "project: {}\nservices:\n{}",
            p.name,
            canary_service("api", &p.image("v1"), "    ports: [\"8090\"]\n")
        ),
    );
    let f = file.to_str().expect("utf-8 path");

    let plan = deployer(&["plan", "-f", f, "--detailed-exitcode", "--output", "json"])
        .output()
        .expect("run");
    assert_eq!(
        plan.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_slice(&plan.stdout).expect("plan JSON on stdout");
    assert_eq!(json["format_version"], 1);
    assert_eq!(json["summary"]["create"], 1);

    let apply = deployer(&["apply", "-f", f]).output().expect("run");
    assert_eq!(
        apply.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&apply.stderr)
    );

    let plan = deployer(&["plan", "-f", f, "--detailed-exitcode"])
        .output()
        .expect("run");
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&plan.stdout)
    );
    assert!(String::from_utf8_lossy(&plan.stdout).contains("No changes."));

    let status = deployer(&["status", "-f", f, "--output", "json"])
        .output()
        .expect("run");
    assert_eq!(status.status.code(), Some(0));
    let s: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    assert_eq!(s[0]["service"], "api");
    assert_eq!(s[0]["pending"], "unchanged");
    assert_eq!(s[0]["containers"][0]["state"], "running");
    // The published ports, as `ci/up.sh` reads them instead of `docker port`.
    let ports = s[0]["containers"][0]["ports"]
        .as_array()
        .expect("ports array");
    assert!(!ports.is_empty(), "{s}");
    for port in ports {
        assert_eq!(port["container_port"], 8090, "{s}");
        assert_eq!(port["protocol"], "tcp", "{s}");
        assert!(port["host_port"].as_u64().is_some_and(|p| p > 0), "{s}");
        assert!(port["host_ip"].is_string(), "{s}");
    }
    let host_port = ports[0]["host_port"].as_u64().expect("host port");
    let body = reqwest::get(format!("http://127.0.0.1:{host_port}/health"))
        .await
        .expect("GET on the published port");
    assert_eq!(body.status().as_u16(), 200);

    let lock = deployer(&["lock", "status", "-f", f])
        .output()
        .expect("run");
    assert_eq!(
        String::from_utf8_lossy(&lock.stdout).trim(),
        format!("project {} is not locked", p.name)
    );
    let history = deployer(&["history", "-f", f]).output().expect("run");
    assert!(String::from_utf8_lossy(&history.stdout).contains("apply  succeeded"));
    drop(engine);
}

/// Regression: SIGINT during `deployer apply` killed it mid-roll and left the deploy lock
/// behind, so the next apply was refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_during_apply_undoes_the_roll_releases_the_lock_and_exits_130() {
    let Some(engine) = support::docker().await else {
        return;
    };
    let p = Project::new("sigint");
    build_canary(&p.image("v1"), &p.name, &[], false);
    build_canary(
        &p.image("slow"),
        &p.name,
        &[("CANARY_HEALTH", "fail")],
        false,
    );
    let write = |image: &str| {
        p.write(
            "deploy.yaml",
            &format!(
                "project: {}\nservices:\n  api:\n    image: {image}\n    health:\n      port: 8090\n      interval: 100ms\n      timeout: 1s\n      retries: 200\n    stop_grace_period: 2s\n",
                p.name
            ),
        )
    };
    let file = write(&p.image("v1"));
    let f = file.to_str().expect("utf-8 path").to_string();
    let first = deployer(&["apply", "-f", &f]).output().expect("run");
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let before = support::containers(&engine, &p.name).await;

    // The new version never becomes healthy (its deadline is minutes away): interrupt it.
    write(&p.image("slow"));
    let child = deployer(&["apply", "-f", &f])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn deployer apply");
    // Wait until the new container exists (the roll is under way).
    for _ in 0..600 {
        if support::containers(&engine, &p.name).await.len() > before.len() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        support::containers(&engine, &p.name).await.len() > before.len(),
        "the roll started"
    );
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(sent.success());
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted by SIGINT"), "{stderr}");
    assert!(
        stderr.contains("  api: failed\n"),
        "what was done is printed: {stderr}"
    );
    assert!(
        deployer::lock::status(&engine, &p.name)
            .await
            .expect("status")
            .is_none(),
        "no lock left: {stderr}"
    );
    assert_eq!(
        support::containers(&engine, &p.name).await,
        before,
        "the roll was undone"
    );

    // The next apply is not refused.
    write(&p.image("v1"));
    let next = deployer(&["apply", "-f", &f]).output().expect("run");
    assert_eq!(
        next.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&next.stderr)
    );
}

// Regression (issue 18): each run named one missing image, and the hint named this
// repository's ci/build-images.sh and 127.0.0.1:5000.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_missing_image_is_named_in_one_neutral_error() {
    let Some(_engine) = support::docker().await else {
        return;
    };
    let p = Project::new("missing");
    let (a, b) = (p.image("never-built-a"), p.image("never-built-b"));
    let file = p.write(
        "deploy.yaml",
        &format!(
            "project: {}\nservices:\n  a:\n    image: {a}\n  b:\n    image: {b}\n",
            p.name
        ),
    );
    let out = deployer(&["plan", "-f", &file.display().to_string()])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let error: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("deployer: error:"))
        .collect();
    assert_eq!(error.len(), 1, "{stderr}");
    assert!(
        error[0].contains(&format!("images {a}, {b} are not on the Docker Engine")),
        "{stderr}"
    );
    assert!(
        error[0].contains("build them on that engine")
            && !stderr.contains("build-images")
            && !stderr.contains("127.0.0.1:5000"),
        "{stderr}"
    );
}

// Regression (issue 18): a plan named only the changed fields (`configuration changed:
// environment`), and showed an ephemeral host port on 127.0.0.1 as `127.0.0.1:8090`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_names_the_changed_keys_and_ports_of_running_containers() {
    let Some(_engine) = support::docker().await else {
        return;
    };
    let p = Project::new("detail");
    build_canary(&p.image("v1"), &p.name, &[], false);
    let write = |extra: &str| {
        p.write(
            "deploy.yaml",
            &format!(
                "project: {}\nservices:\n{}",
                p.name,
                canary_service("api", &p.image("v1"), extra)
            ),
        )
    };
    let file = write(
        "    ports: [{target: 8090, host_ip: 127.0.0.1}]\n    environment: {A: \"1\", B: \"2\"}\n    secrets: {TOKEN: {env: DETAIL_TOKEN}}\n",
    );
    let f = file.to_str().expect("utf-8 path");
    let plan = deployer(&["plan", "-f", f])
        .env("DETAIL_TOKEN", "first-s3cret")
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&plan.stdout);
    assert!(
        stdout.contains("    ports    127.0.0.1:<random>->8090\n"),
        "{stdout}"
    );
    let apply = deployer(&["apply", "-f", f])
        .env("DETAIL_TOKEN", "first-s3cret")
        .output()
        .expect("run");
    assert_eq!(
        apply.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&apply.stderr)
    );

    write("    ports: [\"8090\"]\n    environment: {A: \"9\", C: \"3\"}\n    secrets: {TOKEN: {env: DETAIL_TOKEN}}\n");
    let plan = deployer(&["plan", "-f", f])
        .env("DETAIL_TOKEN", "second-s3cret")
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&plan.stdout);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    assert!(
        stdout.contains(
            "    configuration changed: environment, ports, secrets\n      environment: A changed; C added; B removed\n      secrets: TOKEN changed (values not shown)\n      ports: 127.0.0.1:<random>->8090 => <random>->8090\n"
        ),
        "{stdout}"
    );
    assert!(!stdout.contains("s3cret"), "{stdout}");
}
