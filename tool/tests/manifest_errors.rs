//! Broken manifests, data-driven: every `tests/manifests/NAME.yaml` is loaded through
//! `manifest::load` (with `NAME.overlay.yaml` on top when it exists) and must fail with exactly
//! the message in `NAME.expected`. Set `UPDATE_EXPECT=1` to rewrite the `.expected` files from
//! the current messages, then review the diff.

use std::fs;
use std::path::{Path, PathBuf};

use deployer::manifest;

/// The environment every case sees: only these variables are set.
fn env(name: &str) -> Option<String> {
    match name {
        "TAG" => Some("1.2".to_owned()),
        "DB_PASSWORD" => Some("s3cret".to_owned()),
        _ => None,
    }
}

#[test]
fn broken_manifests_fail_with_their_exact_message() {
    let dir = Path::new("tests/manifests");
    let mut cases: Vec<PathBuf> = fs::read_dir(dir)
        .expect("tests/manifests is readable")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.ends_with(".yaml") && !name.ends_with(".overlay.yaml")
        })
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 15,
        "expected at least 15 broken manifests, found {}",
        cases.len()
    );

    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut failures = Vec::new();
    for case in &cases {
        let mut files = vec![case.clone()];
        let overlay = case.with_extension("overlay.yaml");
        if overlay.exists() {
            files.push(overlay);
        }
        let got = match manifest::load(&files, &env) {
            Ok(m) => format!("unexpectedly valid: project {}", m.project),
            Err(e) => e.to_string(),
        };
        let expected_path = case.with_extension("expected");
        if update {
            fs::write(&expected_path, format!("{got}\n")).expect("write .expected");
            continue;
        }
        let expected = fs::read_to_string(&expected_path).unwrap_or_default();
        if got != expected.trim_end() {
            failures.push(format!(
                "{}\n  expected: {}\n  got:      {}",
                case.display(),
                expected.trim_end(),
                got
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_annotated_example_is_valid() {
    let env = |name: &str| match name {
        "DB_PASSWORD" => Some("example".to_owned()),
        _ => None,
    };
    let m = manifest::load(&[PathBuf::from("manifest-example.yaml")], &env)
        .unwrap_or_else(|e| panic!("manifest-example.yaml must load:\n{e}"));
    assert_eq!(m.project.as_str(), "bank");
    assert!(m.services.len() >= 3);
    let order = m.deploy_order();
    assert_eq!(
        order[0].iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        ["event-store"]
    );
}

#[test]
fn the_repository_manifests_are_valid() {
    let none = |_: &str| None;
    let local = PathBuf::from("../manifests/local.yaml");
    let m = manifest::load(std::slice::from_ref(&local), &none)
        .unwrap_or_else(|e| panic!("manifests/local.yaml must load:\n{e}"));
    assert!(m.services.contains_key("gateway"));
    let ci = PathBuf::from("../manifests/ci.yaml");
    if ci.exists() {
        let m = manifest::load(&[ci], &none)
            .unwrap_or_else(|e| panic!("manifests/ci.yaml must load:\n{e}"));
        assert_eq!(m.project.as_str(), "bank-ci");
    }
}

/// The deployer binary, run in `dir` with an engine address nothing answers on: the commands
/// tested here must not need an engine.
fn deployer(dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args(args)
        .current_dir(dir)
        .env("DOCKER_HOST", "tcp://192.0.2.1:9")
        .env_remove("DOCKER_CONTEXT")
        .output()
        .expect("run deployer")
}

// Regression (issue 18): there was no way to check manifests without an engine.
#[test]
fn validate_checks_offline_and_prints_every_problem() {
    let here = std::env::current_dir().expect("cwd");
    let bad = deployer(
        &here,
        &["validate", "-f", "tests/manifests/several-problems.yaml"],
    );
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(1), "{stderr}");
    let expected = fs::read_to_string("tests/manifests/several-problems.expected").expect("read");
    assert_eq!(
        stderr.trim_end(),
        format!("deployer: error: {}", expected.trim_end())
    );

    let good = std::process::Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args(["validate", "-f", "manifest-example.yaml"])
        .env("DOCKER_HOST", "tcp://192.0.2.1:9")
        .env("DB_PASSWORD", "example")
        .output()
        .expect("run deployer");
    let stderr = String::from_utf8_lossy(&good.stderr);
    assert_eq!(good.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.starts_with("manifest-example.yaml: valid: project bank, "),
        "{stderr}"
    );
}

// Regression (issue 18): without -f, `manifests/local.yaml` was assumed, and its absence
// printed the OS error twice.
#[test]
fn the_default_manifest_is_found_or_asked_for() {
    let dir = tempfile::tempdir().expect("tempdir");
    for args in [&["plan"][..], &["validate"], &["down"]] {
        let out = deployer(dir.path(), args);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "deployer: error: no manifest given: use -f FILE\n",
            "{args:?}"
        );
    }
    let manifest =
        |project: &str| format!("project: {project}\nservices:\n  api:\n    image: api:1\n");
    fs::create_dir(dir.path().join("manifests")).expect("mkdir");
    fs::write(dir.path().join("manifests/local.yaml"), manifest("third")).expect("write");
    let found =
        |dir: &Path| String::from_utf8_lossy(&deployer(dir, &["validate"]).stderr).into_owned();
    assert_eq!(
        found(dir.path()),
        "manifests/local.yaml: valid: project third, 1 service(s)\n"
    );
    fs::write(dir.path().join("deployer.yml"), manifest("second")).expect("write");
    assert_eq!(
        found(dir.path()),
        "deployer.yml: valid: project second, 1 service(s)\n"
    );
    fs::write(dir.path().join("deployer.yaml"), manifest("first")).expect("write");
    assert_eq!(
        found(dir.path()),
        "deployer.yaml: valid: project first, 1 service(s)\n"
    );
}
