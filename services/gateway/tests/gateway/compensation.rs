//! Compensation: a transfer whose to-account is closed or missing refunds the from-account and
//! ends FAILED_AND_REFUNDED. No money vanishes.

use banking::{AccountId, Money, MoneyTransfer, TransferCommand, TransferDetails, TransferId};
use es_client::{CommandContext, Repository};

use crate::fleet::{Fleet, Options};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn closing_the_to_account_while_the_transfer_is_in_flight_refunds_the_from_account() {
    let fleet = Fleet::spawn_with(Options {
        sagas: false,
        view_follows: true,
    })
    .await;
    let a = fleet.open_account("from", 10000).await;
    let b = fleet.open_account("to", 0).await;
    // The transfer is created, but no saga step has run yet: it is in flight.
    let t = fleet.transfer(&a, &b, 2500).await;
    let (status, body) = fleet
        .call("DELETE", &format!("/api/accounts/{b}"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    fleet.start_sagas();

    let done = fleet.wait_terminal(&t).await;
    assert_eq!(done["state"], "FAILED_AND_REFUNDED", "{done}");
    let a_doc = fleet.account_view(&a).await;
    let b_doc = fleet.account_view(&b).await;
    assert_eq!(a_doc["balance"], 10000, "{a_doc}");
    assert_eq!(b_doc["balance"], 0);
    assert_eq!(b_doc["status"], "CLOSED");
    let kinds: Vec<_> = a_doc["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| (c["transaction_type"].clone(), c["balance_delta"].clone()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("debit".into(), (-2500).into()),
            ("refund".into(), 2500.into())
        ]
    );
    assert_eq!(fleet.account_aggregate(&a).await["balance"], 10000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_missing_to_account_refunds_the_from_account() {
    let fleet = Fleet::spawn().await;
    let a = fleet.open_account("from", 5000).await;
    // An older writer (or a bug) recorded a transfer to an account that does not exist; the
    // transfers service would refuse it, so it goes to the store directly.
    let missing = AccountId::new();
    let t = TransferId::new();
    let repo: Repository<MoneyTransfer> = Repository::new(fleet.store_client());
    let details = TransferDetails {
        from_account_id: AccountId::parse(&a).expect("id"),
        to_account_id: missing,
        amount: Money::from_minor(1200),
        date: time::OffsetDateTime::now_utc(),
        description: "to nowhere".into(),
    };
    repo.execute_with(
        &es_core::stream_of::<MoneyTransfer>(t.as_uuid()),
        TransferCommand::Create(details),
        &CommandContext::new_flow(),
    )
    .await
    .expect("transfer stored");

    let done = fleet.wait_terminal(&t.to_string()).await;
    assert_eq!(done["state"], "FAILED_AND_REFUNDED", "{done}");
    assert_eq!(fleet.account_view(&a).await["balance"], 5000);
    assert_eq!(fleet.account_aggregate(&a).await["balance"], 5000);
    let (status, _) = fleet
        .call("GET", &format!("/api/accounts/{missing}"), None)
        .await;
    assert_eq!(
        status, 404,
        "the missing account was not created by the saga"
    );
}
