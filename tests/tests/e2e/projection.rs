//! Rolls of the account view under steady reads through the gateway, with 200,000 events in the
//! store: a new projection version is rebuilt blue/green and cut over only once caught up; a
//! rebuild that cannot catch up in time is rolled back while the old view keeps serving; and a
//! roll of the same version hands the single writer over. No read may fail, and no client may
//! read an account at a version older than one it read before.

use std::time::Duration;

use account_view::testing::SyntheticLog;
use tests::docker;
use tests::fleet::Fleet;
use tests::projection::{self, apply, push_view, Load};

use crate::fleet_slot;

/// Events imported into the store before the rolls.
const EVENTS: u64 = 200_000;
/// Readers, each with its own accounts and its own memory of the versions it read.
const READERS: usize = 4;

/// Imports `EVENTS` synthetic events after the store's head.
async fn seed(store: &es_client::EventStoreClient) {
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("a whole second")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("a time");
    let head = projection::head(store).await.expect("the store's head");
    projection::import(store, SyntheticLog::after(head, 1_000, EVENTS, &now))
        .await
        .expect("importing synthetic events");
}

/// The running view's `/projection`.
async fn view(fleet: &Fleet) -> serde_json::Value {
    projection::projection(fleet)
        .await
        .expect("GET /projection")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn view_rolls_under_reads_rebuild_blue_green_cut_over_when_caught_up_and_fail_no_read() {
    let test = "view_rolls_under_reads_rebuild_blue_green_cut_over_when_caught_up_and_fail_no_read";
    if !docker::available_or_skip(test) {
        return;
    }
    let _slot = fleet_slot().lock().await;
    let (fleet, gw, accounts) = projection::fleet_with_view("projection", 2 * READERS)
        .await
        .expect("deploying the fleet");

    let store = fleet.store().expect("a store client");
    seed(&store).await;
    let head = projection::head(&store).await.expect("the store's head");
    assert!(head >= EVENTS, "the store holds {head} events");
    // The running view follows the import.
    projection::caught_up(&fleet, head, Duration::from_secs(120))
        .await
        .expect("the view catches up with the import");

    let load = Load::start(&gw, &accounts);
    tokio::time::sleep(Duration::from_secs(1)).await;

    // 1. A new projection version: rebuilt beside the old view, cut over once caught up.
    let old = fleet.container("account-view").expect("the view");
    push_view(&fleet, "p2", 2).expect("pushing a view");
    let plan = fleet.run_deployer(&["plan"]).await.expect("deployer plan");
    assert!(
        plan.stdout
            .contains("rebuild account-view: projection 1 → 2, blue/green"),
        "the plan announces the rebuild:\n{}",
        plan.stdout
    );
    let outcome = apply(&fleet, "10m").await.expect("deployer apply");
    assert_eq!(
        outcome.code, 0,
        "the blue/green roll failed:\n{}",
        outcome.stderr
    );
    let err = &outcome.stderr;
    assert!(
        err.contains("blue/green rebuild: projection 1 -> 2"),
        "{err}"
    );
    let rebuilding = err
        .lines()
        .position(|l| l.contains("[account-view] rebuilding: position"))
        .unwrap_or_else(|| panic!("no rebuild progress in:\n{err}"));
    let caught_up = err
        .lines()
        .position(|l| l.contains("caught up after") && l.contains(", lag 0)"))
        .unwrap_or_else(|| panic!("no cut-over at lag 0 in:\n{err}"));
    assert!(
        rebuilding < caught_up,
        "progress, then the cut-over:\n{err}"
    );
    let new = fleet.container("account-view").expect("the view");
    assert_ne!(old, new, "a new container serves");
    assert_eq!(
        view(&fleet).await["version"],
        1,
        "the image's binary reports its own version"
    );
    let volumes = docker::docker(&[
        "volume",
        "ls",
        "-q",
        "--filter",
        &format!("label=deployer.project={}", fleet.project),
    ])
    .expect("volumes");
    assert!(
        volumes.contains(&format!("{}-account-view-data-projection-2", fleet.project)),
        "the fresh volume: {volumes}"
    );

    // 2. A rebuild that cannot catch up in time: removed; the view that serves stays.
    push_view(&fleet, "p3", 3).expect("pushing a view");
    let outcome = apply(&fleet, "1s").await.expect("deployer apply");
    assert_eq!(
        outcome.code, 1,
        "a rebuild that did not catch up fails the apply"
    );
    assert!(
        outcome
            .stderr
            .contains("its projection did not catch up within 1s"),
        "{}",
        outcome.stderr
    );
    assert_eq!(
        fleet.container("account-view").expect("the view"),
        new,
        "the old view kept serving"
    );
    let volumes = docker::docker(&["volume", "ls", "-q"]).expect("volumes");
    assert!(
        !volumes.contains(&format!("{}-account-view-data-projection-3", fleet.project)),
        "the fresh volume was removed: {volumes}"
    );

    // 3. The same projection version again: the writer is handed over, start-first.
    push_view(&fleet, "p2b", 2).expect("pushing a view");
    let outcome = apply(&fleet, "10m").await.expect("deployer apply");
    assert_eq!(
        outcome.code, 0,
        "the same-version roll failed:\n{}",
        outcome.stderr
    );
    assert!(!outcome.stderr.contains("blue/green"), "{}", outcome.stderr);
    assert_ne!(fleet.container("account-view").expect("the view"), new);
    tokio::time::sleep(Duration::from_secs(1)).await;

    let seen = load.stop().await.expect("the load");
    let (ok, problems, write_problems) = (seen.reads.ok, seen.reads.problems, seen.write_problems);
    eprintln!("e2e: {ok} reads through the gateway during the rolls; problems: {problems:#?}");
    assert!(ok > 100, "the readers read: {ok}");
    assert!(
        problems.is_empty(),
        "{} bad reads: {problems:#?}",
        problems.len()
    );
    assert!(write_problems.is_empty(), "{write_problems:#?}");
    // The view ends caught up with a store that kept taking transfers.
    let p = view(&fleet).await;
    assert!(p["position"].as_u64() >= Some(head), "{p}");
}
