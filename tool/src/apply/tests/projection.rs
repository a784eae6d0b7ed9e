//! Blue/green projection rebuilds against the in-memory engine: the cut-over waits for the new
//! container's lag, a rebuild that does not catch up in time leaves the old container serving,
//! and the volumes follow the projection across later rolls and rollbacks.

use super::*;
use crate::labels::{PROJECTION_PREVIOUS, PROJECTION_VERSION, PROJECTION_VOLUMES};

const CAUGHT_UP: &str = r#"{"version":2,"position":5000,"head":5000,"lag":0}"#;

/// `view` (a read model on the volume `data`) at `tag`, with `projection` as written.
fn view(tag: &str, projection: &str) -> Manifest {
    load(&format!(
        r#"
project: shop
volumes:
  data: {{}}
services:
  view:
    image: view:{tag}
    drain: 0s
    health: {{port: 8103}}
    volumes: ["data:/data"]
    projection: {projection}
"#
    ))
}

fn labelled(engine: &FakeEngine, image: &str, version: &str) {
    engine.label_image(image, &[(PROJECTION_VERSION, version)]);
}

async fn apply_with(engine: &FakeEngine, manifest: &Manifest, progress: &Progress) -> Executed {
    crate::engine::install_crypto_provider();
    let plan = plan::compute(manifest, &engine.observe(manifest));
    let registry = RegistryClient::new(DockerConfig::default()).expect("registry client");
    Executor::new(
        engine,
        engine,
        &registry,
        &ApplyOptions::default(),
        progress,
    )
    .execute(&plan)
    .await
}

/// The log from the first line containing `from` on.
fn log_from(engine: &FakeEngine, from: &str) -> Vec<String> {
    let log = engine.log();
    let start = log.iter().position(|l| l.contains(from)).unwrap_or(0);
    log[start..].to_vec()
}

#[tokio::test]
async fn a_new_projection_version_rebuilds_beside_the_old_one_and_cuts_over_once_caught_up() {
    let engine = FakeEngine::default();
    labelled(&engine, "view:1", "1");
    labelled(&engine, "view:2", "2");
    engine.answer_projection(
        "view:2",
        &[
            r#"{"version":2,"position":0,"head":null,"lag":null}"#,
            r#"{"version":2,"position":1000,"head":5000,"lag":4000}"#,
            r#"{"version":2,"position":1000,"head":5000,"lag":4000}"#,
            r#"{"version":2,"position":1000,"head":5000,"lag":4000}"#,
            r#"{"version":2,"position":1000,"head":5000,"lag":4000}"#,
            r#"{"version":2,"position":1000,"head":5000,"lag":4000}"#,
            r#"{"version":2,"position":4990,"head":5000,"lag":10}"#,
            CAUGHT_UP,
        ],
    );
    let (_, done) = apply(&engine, &view("1", "{max_lag: 0}")).await;
    assert_eq!(done.outcome, Outcome::Succeeded, "{:?}", done.failure);
    let old = engine.running("view")[0].clone();
    assert_eq!(old.volumes, ["shop-data"]);

    let progress = Progress::capture();
    let done = apply_with(&engine, &view("2", "{max_lag: 0}"), &progress).await;

    assert_eq!(done.outcome, Outcome::Succeeded, "{:?}", done.failure);
    let new = engine.running("view");
    assert_eq!(new.len(), 1);
    let new = &new[0];
    assert_eq!(new.image, "view:2");
    assert_eq!(new.volumes, ["shop-data-projection-2"], "a fresh volume");
    assert_eq!(
        new.labels[PROJECTION_VOLUMES],
        r#"{"shop-data":"shop-data-projection-2"}"#
    );
    assert_eq!(
        new.labels[PROJECTION_PREVIOUS],
        r#"{"version":1,"volumes":{"shop-data":"shop-data"}}"#
    );
    assert!(new.networks.values().all(|a| a == &["view".to_owned()]));
    // Side by side: the new one starts while the old one serves; the alias moves only after
    // the caught-up answer (the last read), and then the old one stops.
    let name = &new.name;
    assert_eq!(
        log_from(&engine, "create volume shop-data-projection-2"),
        [
            "create volume shop-data-projection-2".to_owned(),
            format!("create {name}"),
            format!("start {name}"),
            format!("aliases {name} shop-default [\"view\"]"),
            format!("aliases {} shop-default []", old.name),
            format!("stop {}", old.name),
            format!("remove {}", old.name),
        ]
    );
    let lines = progress.captured();
    let text = lines.join("\n");
    assert!(
        text.contains("blue/green rebuild: projection 1 -> 2"),
        "{text}"
    );
    assert!(
        text.contains("rebuilding: position 1000 of 5000, lag 4000"),
        "{text}"
    );
    assert!(text.contains("caught up after"), "{text}");
    assert!(
        engine.volumes().contains(&"shop-data".to_owned()),
        "the old volume is kept for a rollback"
    );
}

#[tokio::test]
async fn a_rebuild_that_does_not_catch_up_in_time_is_removed_and_the_old_container_keeps_serving() {
    let engine = FakeEngine::default();
    labelled(&engine, "view:1", "1");
    labelled(&engine, "view:2", "2");
    engine.answer_projection(
        "view:2",
        &[r#"{"version":2,"position":10,"head":5000,"lag":4990}"#],
    );
    apply(&engine, &view("1", "{max_lag: 0}")).await;
    let before = running(&engine);

    let (_, done) = apply(&engine, &view("2", "{max_lag: 100, timeout: 1s}")).await;

    assert_eq!(done.outcome, Outcome::RolledBack);
    let text = done.failure.as_ref().expect("a failure").to_string();
    assert!(
        text.contains("its projection did not catch up within 1s (max_lag 100): position 10 of 5000, lag 4990; the old container kept serving"),
        "{text}"
    );
    assert_eq!(running(&engine), before, "the old container still serves");
    assert_eq!(engine.containers().len(), 1, "the new one is removed");
    let old = &engine.running("view")[0];
    assert!(old.networks.values().all(|a| a == &["view".to_owned()]));
    assert!(
        !engine.log().iter().any(|l| l.starts_with("stop ")),
        "the old container was never stopped: {:?}",
        engine.log()
    );
    assert_eq!(
        engine.volumes(),
        ["shop-data"],
        "the fresh volume is removed"
    );
}

/// Labels `view:1` .. `view:3` with their projection versions (`view:3b` is version 3 too),
/// each answering caught up.
fn versions(engine: &FakeEngine) {
    for (image, version) in [
        ("view:1", "1"),
        ("view:2", "2"),
        ("view:3", "3"),
        ("view:3b", "3"),
    ] {
        labelled(engine, image, version);
        engine.answer_projection(image, &[CAUGHT_UP]);
    }
}

async fn roll(engine: &FakeEngine, tag: &str, projection: &str) {
    let (_, done) = apply(engine, &view(tag, projection)).await;
    assert_eq!(
        done.outcome,
        Outcome::Succeeded,
        "{tag}: {:?}",
        done.failure
    );
}

#[tokio::test]
async fn a_rollback_returns_to_the_volume_the_previous_version_was_built_in() {
    let engine = FakeEngine::default();
    versions(&engine);
    roll(&engine, "1", "{}").await;
    roll(&engine, "2", "{}").await;

    roll(&engine, "1", "{}").await;

    let back = &engine.running("view")[0];
    assert_eq!(back.volumes, ["shop-data"], "not a fresh volume");
    assert_eq!(
        back.labels[PROJECTION_PREVIOUS],
        r#"{"version":2,"volumes":{"shop-data":"shop-data-projection-2"}}"#
    );
    assert!(
        engine
            .volumes()
            .contains(&"shop-data-projection-2".to_owned()),
        "kept for a roll forward"
    );
}

#[tokio::test]
async fn a_same_version_roll_takes_over_the_rebuilt_volume_and_the_replaced_one_goes() {
    let engine = FakeEngine::default();
    versions(&engine);
    roll(&engine, "1", "{}").await;
    roll(&engine, "2", "{}").await;
    roll(&engine, "3", "{}").await;
    assert!(
        engine
            .volumes()
            .contains(&"shop-data-projection-2".to_owned()),
        "kept until the next successful apply"
    );

    roll(&engine, "3b", "{}").await;

    let now = &engine.running("view")[0];
    assert_eq!(now.image, "view:3b");
    assert_eq!(now.volumes, ["shop-data-projection-3"], "taken over");
    assert!(!now.labels.contains_key(PROJECTION_PREVIOUS));
    assert_eq!(
        engine.volumes(),
        ["shop-data", "shop-data-projection-3"],
        "the replaced version's volume is gone; the manifest's own stays"
    );
}

#[tokio::test]
async fn keep_old_false_removes_the_replaced_volume_when_the_apply_succeeds() {
    let engine = FakeEngine::default();
    versions(&engine);
    roll(&engine, "1", "{}").await;
    roll(&engine, "2", "{}").await;

    roll(&engine, "3", "{keep_old: false}").await;

    assert_eq!(engine.volumes(), ["shop-data", "shop-data-projection-3"]);
}

#[tokio::test]
async fn a_malformed_projection_label_fails_the_roll_naming_the_image() {
    let engine = FakeEngine::default();
    versions(&engine);
    labelled(&engine, "view:2", "two");
    roll(&engine, "1", "{}").await;

    let (_, done) = apply(&engine, &view("2", "{}")).await;

    assert_eq!(done.outcome, Outcome::RolledBack);
    let text = done.failure.as_ref().expect("a failure").to_string();
    assert!(
        text.contains(
            "the label io.fleet.projection.version of image view:2 is \"two\", not a whole number"
        ),
        "{text}"
    );
}
