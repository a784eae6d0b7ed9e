//! Which crates may depend on which, read from `cargo tree` (normal dependencies, as built for
//! this machine): the layering ARCHITECTURE.md states, checked.

use std::collections::BTreeSet;
use std::process::Command;

use tests::workspace_root;

/// Crates whose names start with one of these are IO: an HTTP client, an async runtime, a DNS
/// resolver, the Docker Engine API.
const IO_CRATES: [&str; 4] = ["reqwest", "tokio", "hickory", "bollard"];

/// The pure crates: the event-sourcing core, the banking domain, the event store's wire contract.
const PURE_CRATES: [&str; 3] = ["es-core", "banking", "event-store-api"];

#[test]
fn the_pure_crates_depend_on_no_http_client_runtime_resolver_or_docker() {
    let mut problems = Vec::new();
    for krate in PURE_CRATES {
        let io: Vec<String> = dependencies_of(krate)
            .into_iter()
            .filter(|name| IO_CRATES.iter().any(|io| name.starts_with(io)))
            .collect();
        if !io.is_empty() {
            problems.push(format!(
                "{krate} depends on {io:?}; see `cargo tree -p {krate} -e normal -i {}`",
                io[0]
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn banking_depends_on_no_other_crate_of_the_workspace_than_es_core_and_the_wire_contract() {
    let members = workspace_members();
    let internal: BTreeSet<String> = dependencies_of("banking")
        .into_iter()
        .filter(|name| members.contains(name) && name != "banking")
        .collect();
    let allowed: BTreeSet<String> = ["es-core", "event-store-api"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert!(
        internal.is_subset(&allowed),
        "banking depends on {internal:?}; only {allowed:?} are allowed"
    );
}

#[test]
fn only_the_deployer_depends_on_bollard() {
    // Inverted: every package that reaches bollard, workspace members among them.
    let output = cargo_tree(&["--workspace", "-e", "normal", "-i", "bollard"]);
    let members = workspace_members();
    let dependents: BTreeSet<String> = package_names(&output)
        .into_iter()
        .filter(|name| members.contains(name))
        .collect();
    assert_eq!(
        dependents,
        BTreeSet::from(["deployer".to_owned()]),
        "workspace crates that depend on bollard"
    );
}

#[test]
fn the_store_its_client_the_archiver_and_the_indexer_share_the_wire_contract() {
    for krate in ["event-store", "es-client", "archiver", "indexer"] {
        assert!(
            dependencies_of(krate).contains("event-store-api"),
            "{krate} does not depend on event-store-api, the store's wire contract"
        );
    }
}

#[test]
fn the_event_store_does_not_depend_on_its_client() {
    let dependencies = dependencies_of("event-store");
    for client in ["es-client", "es-core"] {
        assert!(
            !dependencies.contains(client),
            "event-store depends on {client}; the store knows only the wire contract"
        );
    }
}

/// The names of every package `krate` depends on (itself included), normal edges only.
fn dependencies_of(krate: &str) -> BTreeSet<String> {
    package_names(&cargo_tree(&["-p", krate, "-e", "normal"]))
}

/// The names of the workspace's member packages.
fn workspace_members() -> BTreeSet<String> {
    let output = cargo_tree(&[
        "--workspace",
        "-e",
        "no-normal,no-build,no-dev",
        "--depth",
        "0",
    ]);
    package_names(&output)
}

fn cargo_tree(args: &[&str]) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .arg("tree")
        .args(args)
        .args(["--prefix", "none", "--format", "{p}", "--no-dedupe"])
        .current_dir(workspace_root())
        .output()
        .expect("running cargo tree");
    assert!(
        output.status.success(),
        "cargo tree {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Package names from `cargo tree --prefix none --format {p}` lines (`name v1.2.3 (path)`).
fn package_names(output: &str) -> BTreeSet<String> {
    output
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect()
}
