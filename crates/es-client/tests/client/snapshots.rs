use es_client::{Repository, Snapshot};
use serde_json::json;

use crate::support::{new_stream, TestStore, Wallet, WalletCommand};

async fn fill(repository: &Repository<Wallet>, stream: &es_core::StreamId, deposits: i64) {
    repository
        .execute(
            stream,
            WalletCommand::Open {
                owner: "ada".into(),
            },
        )
        .await
        .expect("open");
    for amount in 1..=deposits {
        let command = if amount % 4 == 0 {
            WalletCommand::Withdraw { amount: 3 }
        } else {
            WalletCommand::Deposit { amount }
        };
        repository.execute(stream, command).await.expect("command");
    }
}

#[tokio::test]
async fn snapshot_every_n_events_loads_the_same_state_as_a_full_replay() {
    let store = TestStore::spawn().await;
    let stream = new_stream();
    let with_snapshots = Repository::<Wallet>::new(store.client.clone()).with_snapshots(5);
    fill(&with_snapshots, &stream, 22).await;

    let snapshot = store
        .client
        .snapshot(&stream)
        .await
        .expect("read the snapshot")
        .expect("a snapshot was saved");
    assert_eq!(snapshot.version, 20, "one every 5 events: 5, 10, 15, 20");

    let from_snapshot = with_snapshots
        .load(&stream)
        .await
        .expect("load from snapshot");
    let replayed = Repository::<Wallet>::new(store.client.clone())
        .load(&stream)
        .await
        .expect("full replay");
    assert_eq!(from_snapshot.snapshot_version, 20);
    assert_eq!(replayed.snapshot_version, 0);
    assert_eq!(from_snapshot.version, 23);
    assert_eq!(from_snapshot.version, replayed.version);
    assert_eq!(from_snapshot.state, replayed.state);
}

#[tokio::test]
async fn without_snapshots_configured_none_is_saved() {
    let store = TestStore::spawn().await;
    let stream = new_stream();
    fill(
        &Repository::<Wallet>::new(store.client.clone()),
        &stream,
        12,
    )
    .await;
    assert_eq!(store.client.snapshot(&stream).await.expect("read"), None);
}

#[tokio::test]
async fn a_snapshot_from_other_code_is_ignored_and_the_stream_replayed() {
    let store = TestStore::spawn().await;
    let stream = new_stream();
    let repository = Repository::<Wallet>::new(store.client.clone()).with_snapshots(1000);
    fill(&repository, &stream, 6).await;
    let replayed = Repository::<Wallet>::new(store.client.clone())
        .load(&stream)
        .await
        .expect("replay");

    let foreign = [
        json!({"aggregate_type": "Wallet", "snapshot_version": 99, "state": {"balance": -1}}),
        json!({"aggregate_type": "Account", "snapshot_version": 1, "state": {"balance": -1}}),
        json!("not a snapshot at all"),
    ];
    for state in foreign {
        store
            .client
            .save_snapshot(
                &stream,
                &Snapshot {
                    version: 5,
                    state: state.clone(),
                },
            )
            .await
            .expect("save a foreign snapshot");
        let loaded = repository.load(&stream).await.expect("load");
        assert_eq!(loaded.snapshot_version, 0, "{state}");
        assert_eq!(loaded.state, replayed.state, "{state}");
    }
}
