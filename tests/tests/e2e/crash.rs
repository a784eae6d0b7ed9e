//! Crash recovery: `docker kill` each service once during load. Docker does not restart a
//! killed container (a kill counts as a manual stop, whatever the restart policy), so the
//! deployer brings it back: `deployer apply` sees the stopped container and replaces it.

use std::time::Duration;

use tests::bank::Gateway;
use tests::fleet::Fleet;
use tests::images::SERVICES;
use tests::load::{Load, LoadConfig};
use tests::{docker, invariants};

use crate::fleet_slot;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_each_service_during_load_loses_nothing_and_the_deployer_brings_it_back() {
    if !docker::available_or_skip(
        "killing_each_service_during_load_loses_nothing_and_the_deployer_brings_it_back",
    ) {
        return;
    }
    let _slot = fleet_slot().lock().await;
    let fleet = Fleet::up("crash").await.expect("deploying the fleet");
    let gw = Gateway::new(&fleet.gateway_url()).expect("gateway client");
    let accounts = gw
        .open_accounts(20, 1_000_000)
        .await
        .expect("opening accounts");

    let load = Load::start(&fleet.gateway_url(), accounts, LoadConfig::default());
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (i, service) in SERVICES.iter().enumerate() {
        load.phase(i + 1);
        let victim = fleet.container(service).expect("the service's container");
        docker::docker(&["kill", &victim]).expect("docker kill");
        let outcome = fleet.apply().await.expect("running deployer apply");
        assert_eq!(
            outcome.code, 0,
            "bringing {service} back failed:\n{}",
            outcome.stderr
        );
        let now = docker::containers_of(&fleet.project, service).expect("docker ps");
        assert_eq!(now.len(), 1, "{service} runs again: {now:?}");
        assert_ne!(now[0], victim, "{service} runs in a new container");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    load.phase(SERVICES.len() + 1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let report = load.stop().await;
    eprintln!("e2e crash: load: {}", report.summary());
    for (i, service) in SERVICES.iter().enumerate() {
        eprintln!(
            "e2e crash: {service}: {} request(s) needed a retry",
            report.first_try_failures[i + 1]
        );
    }
    assert_eq!(report.failed, 0, "failed requests: {:#?}", report.failures);

    let store = fleet.store().expect("event store client");
    let checked = invariants::check(&store, &gw, 20 * 1_000_000, &report.created_transfers)
        .await
        .expect("the invariants hold after the crashes");
    eprintln!("e2e crash: invariants hold: {checked:?}");
}
