use std::time::Duration;

use es_core::{EventStoreClient, Repository, RetryPolicy};

use crate::support::{new_stream, Server, Wallet, WalletCommand};

#[tokio::test]
async fn commands_ride_out_a_store_restart() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let server = Server::start(dir.path(), 0).await;
    let port = server.port;
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
        Server::start(&restart_dir, port).await
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
