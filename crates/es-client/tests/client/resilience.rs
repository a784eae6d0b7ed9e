use std::sync::{Arc, Mutex};
use std::time::Duration;

use es_client::partitioned::{self, PartitionedGroup};
use es_client::{EventStoreClient, Poison, Repository, RetryPolicy};
use es_core::EventEnvelope;

use event_store::testing::TestStore;

use crate::support::{new_stream, Wallet, WalletCommand};

#[tokio::test]
async fn commands_ride_out_a_store_restart() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let server = TestStore::start_in(dir.path(), |_| {}).await;
    let port = server.port();
    let client = EventStoreClient::new(&format!("http://127.0.0.1:{port}"))
        .expect("client")
        .with_retry(RetryPolicy {
            max_attempts: 100,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(100),
        });
    let repository = Repository::<Wallet>::new(client);
    let stream = new_stream();
    repository
        .execute(
            &stream,
            WalletCommand::Open {
                owner: "ada".into(),
            },
        )
        .await
        .expect("open");

    server.stop().await;
    let restart_dir = dir.path().to_owned();
    let restart = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        TestStore::start_in(&restart_dir, |c| c.port = port).await
    });

    // Sent while the store is down: retried until the restarted store answers.
    let executed = repository
        .execute(&stream, WalletCommand::Deposit { amount: 5 })
        .await
        .expect("deposit once the store is back");
    assert_eq!(executed.version, 2);
    assert_eq!(executed.state.balance, 5);
    let _server = restart.await.expect("restarted store");
    let loaded = repository.load(&stream).await.expect("load");
    assert_eq!(loaded.version, 2);
}

#[tokio::test]
async fn a_running_group_loop_waits_out_a_store_restart_and_continues_from_its_checkpoint() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let server = TestStore::start_in(dir.path(), |_| {}).await;
    let port = server.port();
    let client = EventStoreClient::new(&format!("http://127.0.0.1:{port}"))
        .expect("client")
        .with_retry(RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(20),
        });
    let repository = Repository::<Wallet>::new(client.clone());
    let stream = new_stream();
    repository
        .execute(
            &stream,
            WalletCommand::Open {
                owner: "ada".into(),
            },
        )
        .await
        .expect("open");

    let seen: Arc<Mutex<Vec<u64>>> = Arc::default();
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let group = format!("restart-{}", uuid::Uuid::new_v4());
    let spec = PartitionedGroup {
        group: group.clone(),
        event_types: vec!["Opened".into(), "Deposited".into()],
        batch_size: 100,
        wait: Duration::from_millis(200),
        poison: Poison::RetryThenStop { attempts: 3 },
    };
    let running = tokio::spawn({
        let seen = Arc::clone(&seen);
        partitioned::run(
            client.clone(),
            spec,
            |_: &EventEnvelope| Some(()),
            move |event: EventEnvelope| {
                let seen = Arc::clone(&seen);
                let seen_tx = seen_tx.clone();
                async move {
                    seen.lock().expect("lock").push(event.version);
                    let _ = seen_tx.send(event.version);
                    Ok::<(), String>(())
                }
            },
            async move {
                let _ = stopped.await;
            },
        )
    });
    let first = tokio::time::timeout(Duration::from_secs(10), seen_rx.recv())
        .await
        .expect("the first event arrives");
    assert_eq!(first, Some(1));

    // Wait until the ack landed, then take the store away for longer than the client retries.
    let acked = async {
        while !client
            .poll_group(&group, 1, Duration::ZERO)
            .await
            .expect("poll")
            .events
            .is_empty()
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), acked)
        .await
        .expect("the first event is acked");
    server.stop().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _restarted = TestStore::start_in(dir.path(), |c| c.port = port).await;
    repository
        .execute(&stream, WalletCommand::Deposit { amount: 5 })
        .await
        .expect("deposit on the restarted store");

    let second = tokio::time::timeout(Duration::from_secs(10), seen_rx.recv())
        .await
        .expect("the subscriber resumes after the restart");
    assert_eq!(second, Some(2));
    let _ = stop.send(());
    running
        .await
        .expect("subscriber task")
        .expect("run ends cleanly");
    assert_eq!(
        *seen.lock().expect("lock"),
        vec![1, 2],
        "nothing redelivered after the ack"
    );
}
