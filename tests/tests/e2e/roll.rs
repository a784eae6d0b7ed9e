//! The zero-downtime roll: while transfers and reads run through the gateway, a new image of
//! accounts, then account-view, then transfers, then the event store is deployed.

use std::time::Duration;

use tests::bank::Gateway;
use tests::fleet::Fleet;
use tests::load::{Load, LoadConfig};
use tests::{docker, invariants};

use crate::fleet_slot;

const ACCOUNTS: usize = 20;
const BALANCE: i64 = 1_000_000;
/// The deploy order the issue asks for; phase i+1 of the load is the roll of ROLLS[i].
pub const ROLLS: [&str; 4] = ["accounts", "account-view", "transfers", "event-store"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_every_stateful_service_under_load_fails_no_request_and_loses_nothing() {
    if !docker::available_or_skip(
        "rolling_every_stateful_service_under_load_fails_no_request_and_loses_nothing",
    ) {
        return;
    }
    let _slot = fleet_slot().lock().await;
    let fleet = Fleet::up("roll").await.expect("deploying the fleet");
    let gw = Gateway::new(&fleet.gateway_url()).expect("gateway client");
    let accounts = gw
        .open_accounts(ACCOUNTS, BALANCE)
        .await
        .expect("opening accounts");

    let load = Load::start(&fleet.gateway_url(), accounts, LoadConfig::default());
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (i, service) in ROLLS.iter().enumerate() {
        load.phase(i + 1);
        let mut before = fleet.all_running_digests().await.expect("status");
        fleet
            .push_variant(service, "v2", &[])
            .expect("building and pushing the new image");
        let outcome = fleet.apply().await.expect("running deployer apply");
        assert_eq!(
            outcome.code, 0,
            "rolling {service} failed:\n{}",
            outcome.stderr
        );
        let mut after = fleet.all_running_digests().await.expect("status");
        let (was, now) = (before.remove(*service), after.remove(*service));
        assert_eq!(
            now.as_ref().map(Vec::len),
            Some(1),
            "{service} runs one container after the roll: {now:?}"
        );
        assert_ne!(was, now, "{service} runs the new image after the roll");
        assert_eq!(
            before, after,
            "rolling {service} left every other service alone"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    load.phase(ROLLS.len() + 1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let report = load.stop().await;
    eprintln!("e2e roll: load: {}", report.summary());
    for (i, service) in ROLLS.iter().enumerate() {
        eprintln!(
            "e2e roll: {service}: {} request(s) needed a retry",
            report.first_try_failures[i + 1]
        );
    }
    assert_eq!(report.failed, 0, "failed requests: {:#?}", report.failures);
    assert!(report.requests > 0);

    let store = fleet.store().expect("event store client");
    let checked = invariants::check(
        &store,
        &gw,
        BALANCE * ACCOUNTS as i64,
        &report.created_transfers,
    )
    .await
    .expect("the invariants hold after the rolls");
    eprintln!("e2e roll: invariants hold: {checked:?}");
    assert!(checked.transfers as u64 >= report.created_transfers.len() as u64);
}
