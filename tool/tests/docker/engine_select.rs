//! Which engine the deployer talks to: docker CLI contexts, and the `engine:` line every plan,
//! apply and rollback prints.

use std::path::Path;
use std::process::Command;

use sha2::{Digest as _, Sha256};

use crate::support::{self, build_canary, canary_service, Project};

/// A docker CLI config dir holding `config.json` (with `current` as its currentContext) and a
/// context named `name` whose engine is `host`.
fn context_store(dir: &Path, current: Option<&str>, name: &str, host: &str) {
    let config = match current {
        Some(c) => serde_json::json!({ "currentContext": c }),
        None => serde_json::json!({}),
    };
    std::fs::write(dir.join("config.json"), config.to_string()).expect("write config.json");
    let meta = dir
        .join("contexts/meta")
        .join(hex::encode(Sha256::digest(name.as_bytes())));
    std::fs::create_dir_all(&meta).expect("mkdir");
    let json = serde_json::json!({
        "Name": name,
        "Metadata": {},
        "Endpoints": { "docker": { "Host": host, "SkipTLSVerify": false } }
    });
    std::fs::write(meta.join("meta.json"), json.to_string()).expect("write meta.json");
}

/// The engine the test suite itself uses, as a context host.
fn real_host() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| deployer::engine::DEFAULT_HOST.to_string())
}

fn deployer(config: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(support::deployer_bin());
    c.args(args)
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .env("DOCKER_CONFIG", config);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contexts_choose_the_engine_and_a_bad_one_is_an_error_not_a_fallback() {
    let Some(engine) = support::docker().await else {
        return;
    };
    let p = Project::new("ctx");
    build_canary(&p.image("v1"), &p.name, &[], false);
    let file = p.write(
        "deploy.yaml",
        &format!(
            "project: {}\nservices:\n{}",
            p.name,
            canary_service("api", &p.image("v1"), "")
        ),
    );
    let f = file.to_str().expect("utf-8 path");
    let config = tempfile::tempdir().expect("tempdir");
    let host = real_host();
    context_store(config.path(), Some("here"), "here", &host);

    // currentContext of config.json: plan, apply and rollback each say where they go.
    for args in [
        vec!["plan", "-f", f],
        vec!["apply", "-f", f],
        vec!["rollback", "-f", f],
    ] {
        let out = deployer(config.path(), &args)
            .output()
            .expect("run deployer");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr
                .lines()
                .any(|l| l == format!("engine: {host} (context: here)")),
            "{args:?}: {stderr}"
        );
        if args[0] != "rollback" {
            assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        }
    }
    assert_eq!(support::containers(&engine, &p.name).await.len(), 1);

    // DOCKER_CONTEXT over currentContext; `default` is the usual default engine.
    let out = deployer(config.path(), &["plan", "-f", f])
        .env("DOCKER_CONTEXT", "default")
        .output()
        .expect("run deployer");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if std::env::var("DOCKER_HOST").is_err() {
        assert!(
            stderr
                .lines()
                .any(|l| l == "engine: unix:///var/run/docker.sock (context: default)"),
            "{stderr}"
        );
    }

    // DOCKER_HOST over every context.
    let out = deployer(config.path(), &["plan", "-f", f])
        .env("DOCKER_CONTEXT", "bogus")
        .env("DOCKER_HOST", &host)
        .output()
        .expect("run deployer");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("(DOCKER_HOST)"), "{stderr}");

    // A context that does not exist: one clear error, nothing touched.
    let out = deployer(config.path(), &["apply", "-f", f])
        .env("DOCKER_CONTEXT", "bogus")
        .output()
        .expect("run deployer");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with(
            "deployer: error: connecting to Docker: bad Docker connection settings: Docker context `bogus` (from DOCKER_CONTEXT) does not exist"
        ) && stderr.lines().count() == 1,
        "{stderr}"
    );

    // A currentContext naming a context whose engine does not answer: an error, not the default.
    let dead = tempfile::tempdir().expect("tempdir");
    let sock = dead.path().join("nothing.sock");
    context_store(
        config.path(),
        Some("dead"),
        "dead",
        &format!("unix://{}", sock.display()),
    );
    let out = deployer(config.path(), &["plan", "-f", f])
        .output()
        .expect("run deployer");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("deployer: error: connecting to Docker: ")
            && stderr.contains(&format!("unix://{}", sock.display()))
            && stderr.lines().count() == 1,
        "{stderr}"
    );
}
