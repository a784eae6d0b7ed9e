//! The talk's example through the gateway of a fleet deployed from the registry.

use std::time::Duration;

use tests::bank::Gateway;
use tests::fleet::Fleet;
use tests::{docker, invariants};

use crate::fleet_slot;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_talk_scenario_passes_through_the_gateway_of_the_deployed_fleet() {
    if !docker::available_or_skip(
        "the_talk_scenario_passes_through_the_gateway_of_the_deployed_fleet",
    ) {
        return;
    }
    let _slot = fleet_slot().lock().await;
    let fleet = Fleet::up("talk").await.expect("deploying the fleet");
    let gw = Gateway::new(&fleet.gateway_url()).expect("gateway client");

    let a = gw.open_account("first", 15000).await.expect("open 15000");
    let b = gw.open_account("second", 30000).await.expect("open 30000");
    let t = gw
        .transfer(&a.id, &b.id, 8000)
        .await
        .expect("transfer 8000");
    let done = gw
        .transfer_in_state(
            &t.id,
            &["COMPLETED", "FAILED_DUE_TO_INSUFFICIENT_FUNDS"],
            WAIT,
        )
        .await
        .expect("the transfer finishes");
    assert_eq!(done["state"], "COMPLETED", "transfer of 8000: {done}");
    // Opened (1) and debited or credited (2).
    let first = gw.account(&a.id, 2, WAIT).await.expect("first account");
    let second = gw.account(&b.id, 2, WAIT).await.expect("second account");
    assert_eq!(first["balance"], 7000, "{first}");
    assert_eq!(second["balance"], 38000, "{second}");

    let t2 = gw
        .transfer(&a.id, &b.id, 20000)
        .await
        .expect("transfer 20000");
    let failed = gw
        .transfer_in_state(
            &t2.id,
            &["COMPLETED", "FAILED_DUE_TO_INSUFFICIENT_FUNDS"],
            WAIT,
        )
        .await
        .expect("the second transfer finishes");
    assert_eq!(
        failed["state"], "FAILED_DUE_TO_INSUFFICIENT_FUNDS",
        "{failed}"
    );
    let first = gw.account(&a.id, 3, WAIT).await.expect("first account");
    assert_eq!(
        first["balance"], 7000,
        "a failed transfer moves no money: {first}"
    );

    let store = fleet.store().expect("event store client");
    let checked = invariants::check(&store, &gw, 45000, &[t.id.clone(), t2.id.clone()])
        .await
        .expect("the invariants hold");
    assert_eq!(checked.transfers, 2);
    assert_eq!(checked.states.get("COMPLETED"), Some(&1));
    assert_eq!(
        checked.states.get("FAILED_DUE_TO_INSUFFICIENT_FUNDS"),
        Some(&1)
    );
}
