//! The talk example's own integration test, through the gateway.

use crate::Fleet;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transfer_moves_money_and_an_overdraft_fails_without_changing_balances() {
    let fleet = Fleet::spawn().await;
    let a = fleet.open_account("first", 15000).await;
    let b = fleet.open_account("second", 30000).await;

    let t = fleet.transfer(&a, &b, 8000).await;
    let done = fleet.wait_terminal(&t).await;
    assert_eq!(done["state"], "COMPLETED", "{done}");
    assert_eq!(fleet.account_view(&a).await["balance"], 7000);
    assert_eq!(fleet.account_view(&b).await["balance"], 38000);

    let t2 = fleet.transfer(&a, &b, 20000).await;
    let failed = fleet.wait_terminal(&t2).await;
    assert_eq!(
        failed["state"], "FAILED_DUE_TO_INSUFFICIENT_FUNDS",
        "{failed}"
    );
    let a_doc = fleet.account_view(&a).await;
    assert_eq!(a_doc["balance"], 7000);
    assert_eq!(fleet.account_view(&b).await["balance"], 38000);

    // The document carries the history and the transactions keyed by transfer id.
    let changes = a_doc["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 1, "{a_doc}");
    assert_eq!(changes[0]["transaction_id"], t.as_str());
    assert_eq!(changes[0]["balance_delta"], -8000);
    assert_eq!(a_doc["transactions"][&t]["status"], "COMPLETED");
    assert_eq!(
        a_doc["transactions"][&t2]["status"],
        "FAILED_DUE_TO_INSUFFICIENT_FUNDS"
    );
    assert_eq!(a_doc["transactions"][&t]["amount"], 8000);
}
