use es_client::{ExecuteError, Repository, RetryPolicy};
use es_core::{ExpectedVersion, Metadata, NewEvent};
use std::time::Duration;

use crate::support::{new_stream, TestStore, Wallet, WalletCommand, WalletError, WalletEvent};

#[tokio::test]
async fn execute_returns_the_new_version_and_state() {
    let store = TestStore::spawn().await;
    let stream = new_stream();
    let repository = Repository::<Wallet>::new(store.client.clone());
    let opened = repository
        .execute(
            &stream,
            WalletCommand::Open {
                owner: "ada".into(),
            },
        )
        .await
        .expect("open");
    assert_eq!(
        (opened.version, opened.attempts, opened.appended),
        (1, 1, true)
    );
    let deposited = repository
        .execute(&stream, WalletCommand::Deposit { amount: 40 })
        .await
        .expect("deposit");
    assert_eq!(deposited.version, 2);
    assert_eq!(
        deposited.events,
        vec![WalletEvent::Deposited { amount: 40 }]
    );
    assert_eq!(deposited.state.balance, 40);
}

#[tokio::test]
async fn a_refused_command_appends_nothing() {
    let store = TestStore::spawn().await;
    let stream = new_stream();
    let repository = Repository::<Wallet>::new(store.client.clone());
    repository
        .execute(
            &stream,
            WalletCommand::Open {
                owner: "ada".into(),
            },
        )
        .await
        .expect("open");
    let error = repository
        .execute(&stream, WalletCommand::Withdraw { amount: 1 })
        .await
        .expect_err("no overdraft");
    assert!(
        matches!(
            error,
            ExecuteError::Refused(WalletError::InsufficientFunds {
                balance: 0,
                amount: 1
            })
        ),
        "{error}"
    );
    assert_eq!(repository.load(&stream).await.expect("load").version, 1);
}

#[tokio::test]
async fn a_version_conflict_is_caught_up_and_the_command_decided_again() {
    let store = TestStore::spawn().await;
    let stream = new_stream();
    let repository = Repository::<Wallet>::new(store.client.clone());
    repository
        .execute(
            &stream,
            WalletCommand::Open {
                owner: "ada".into(),
            },
        )
        .await
        .expect("open");
    repository
        .execute(&stream, WalletCommand::Deposit { amount: 100 })
        .await
        .expect("deposit");

    // Load, then let another writer take 70 before this command appends.
    let stale = repository.load(&stream).await.expect("load");
    let other = NewEvent::from_event(&WalletEvent::Withdrawn { amount: 70 }, Metadata::default())
        .expect("encode");
    store
        .client
        .append(&stream, ExpectedVersion::Exact(stale.version), &[other])
        .await
        .expect("the other writer appends");

    let executed = repository
        .execute_on(
            &stream,
            stale.clone(),
            WalletCommand::Withdraw { amount: 20 },
            &Default::default(),
        )
        .await
        .expect("withdraw after catching up");
    assert_eq!(executed.attempts, 2);
    assert_eq!(executed.version, 4);
    assert_eq!(executed.state.balance, 10);

    // Deciding again sees the new state: now the same withdrawal no longer fits.
    let error = repository
        .execute_on(
            &stream,
            stale,
            WalletCommand::Withdraw { amount: 50 },
            &Default::default(),
        )
        .await
        .expect_err("the caught-up state refuses");
    assert!(
        matches!(
            error,
            ExecuteError::Refused(WalletError::InsufficientFunds {
                balance: 10,
                amount: 50
            })
        ),
        "{error}"
    );
}

#[tokio::test]
async fn concurrent_commands_on_one_stream_all_land() {
    let store = TestStore::spawn().await;
    let stream = new_stream();
    let repository =
        Repository::<Wallet>::new(store.client.clone()).with_conflict_retry(RetryPolicy {
            max_attempts: 50,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(20),
        });
    repository
        .execute(
            &stream,
            WalletCommand::Open {
                owner: "ada".into(),
            },
        )
        .await
        .expect("open");
    let tasks = (1..=16)
        .map(|amount| {
            let repository = repository.clone();
            let stream = stream.clone();
            tokio::spawn(async move {
                repository
                    .execute(&stream, WalletCommand::Deposit { amount })
                    .await
            })
        })
        .collect::<Vec<_>>();
    for task in tasks {
        task.await.expect("task").expect("deposit lands");
    }
    let loaded = repository.load(&stream).await.expect("load");
    assert_eq!(loaded.version, 17);
    assert_eq!(loaded.state.balance, (1..=16).sum::<i64>());
}

#[tokio::test]
async fn conflicts_beyond_the_retry_bound_give_up() {
    let store = TestStore::spawn().await;
    let stream = new_stream();
    let repository =
        Repository::<Wallet>::new(store.client.clone()).with_conflict_retry(RetryPolicy::NONE);
    repository
        .execute(
            &stream,
            WalletCommand::Open {
                owner: "ada".into(),
            },
        )
        .await
        .expect("open");
    let stale = repository.load(&stream).await.expect("load");
    repository
        .execute(&stream, WalletCommand::Deposit { amount: 1 })
        .await
        .expect("another writer");
    let error = repository
        .execute_on(
            &stream,
            stale,
            WalletCommand::Deposit { amount: 2 },
            &Default::default(),
        )
        .await
        .expect_err("one attempt only");
    assert!(
        matches!(error, ExecuteError::Contended { attempts: 1, .. }),
        "{error}"
    );
}
