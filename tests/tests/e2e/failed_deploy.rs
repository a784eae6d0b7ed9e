//! The failed deploy: an accounts image whose health never passes. The deployer rolls the fleet
//! back and exits 1; the load sees no failed request.

use std::time::Duration;

use tests::bank::Gateway;
use tests::fleet::Fleet;
use tests::load::{Load, LoadConfig};
use tests::{docker, invariants};

use crate::fleet_slot;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_that_never_gets_healthy_is_rolled_back_with_exit_1_and_no_failed_request() {
    if !docker::available_or_skip(
        "an_image_that_never_gets_healthy_is_rolled_back_with_exit_1_and_no_failed_request",
    ) {
        return;
    }
    let _slot = fleet_slot().lock().await;
    let fleet = Fleet::up("faildeploy").await.expect("deploying the fleet");
    let gw = Gateway::new(&fleet.gateway_url()).expect("gateway client");
    let accounts = gw
        .open_accounts(10, 1_000_000)
        .await
        .expect("opening accounts");
    let good = fleet.running_digests("accounts").await.expect("status");

    let load = Load::start(&fleet.gateway_url(), accounts, LoadConfig::default());
    tokio::time::sleep(Duration::from_secs(2)).await;
    load.phase(1);
    // The service listens on another port than the manifest's health check probes, so the
    // container runs but its health never passes.
    fleet
        .push_variant("accounts", "broken", &["ENV PORT=18101"])
        .expect("building and pushing the broken image");
    let outcome = fleet.apply().await.expect("running deployer apply");
    load.phase(2);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let report = load.stop().await;
    eprintln!("e2e failed deploy: load: {}", report.summary());

    assert_eq!(
        outcome.code, 1,
        "a failed deploy exits 1:\n{}",
        outcome.stderr
    );
    assert!(
        outcome.stderr.contains("accounts"),
        "the failure names the service:\n{}",
        outcome.stderr
    );
    let running = fleet.running_digests("accounts").await.expect("status");
    assert_eq!(
        running, good,
        "accounts runs the image it ran before the failed deploy"
    );
    let containers = docker::containers_of(&fleet.project, "accounts").expect("docker ps");
    assert_eq!(
        containers.len(),
        1,
        "the broken container is gone: {containers:?}"
    );

    assert_eq!(report.failed, 0, "failed requests: {:#?}", report.failures);
    assert_eq!(
        report.first_try_failures_total(),
        0,
        "accounts rolls start-first, so the old container served every request: {:#?}",
        report.failures
    );
    let store = fleet.store().expect("event store client");
    invariants::check(&store, &gw, 10 * 1_000_000, &report.created_transfers)
        .await
        .expect("the invariants hold after the rollback");
}
