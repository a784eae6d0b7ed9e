//! The binary as a process: configured from the environment, probed by its `healthcheck`
//! subcommand, and stopped gracefully by SIGTERM.

use std::ffi::OsString;
use std::process::Command;
use std::time::Duration;

use event_store::testing::TestStore;
use service_kit::testing::{assert_a_bad_port_is_reported, ServiceProcess};

const BINARY: &str = env!("CARGO_BIN_EXE_account-view");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_reports_healthy_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = TestStore::start().await;
    let store_url = store.url().to_owned();

    let service = ServiceProcess::spawn(
        BINARY,
        [
            ("EVENT_STORE_URL", OsString::from(&store_url)),
            ("DATA_DIR", dir.path().join("view").into_os_string()),
        ],
    );
    service.wait_healthy(Duration::from_secs(20)).await;
    let status = service.terminate(Duration::from_secs(15)).await;
    assert!(status.success(), "exit status after SIGTERM: {status}");
}

#[test]
fn a_bad_port_is_reported_not_panicked() {
    assert_a_bad_port_is_reported(BINARY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rebuild_subcommand_replays_the_log_and_exits() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = TestStore::start().await;
    let store_url = store.url().to_owned();
    let client = es_client::EventStoreClient::new(&store_url).expect("client");
    let stream =
        es_core::StreamId::parse("Account-6f1c2b9e-0000-4000-8000-000000000001").expect("id");
    let opened = banking::AccountEvent::AccountOpened {
        customer_id: None,
        title: "t".into(),
        description: String::new(),
        initial_balance: banking::Money::from_minor(5),
    };
    let event =
        es_core::NewEvent::from_event(&opened, es_core::Metadata::default()).expect("encodes");
    client
        .append(&stream, es_core::ExpectedVersion::Exact(0), &[event])
        .await
        .expect("appended");

    let data = dir.path().join("view");
    let output = tokio::task::spawn_blocking({
        let data = data.clone();
        move || {
            Command::new(BINARY)
                .arg("rebuild")
                .env("DATA_DIR", &data)
                .env("EVENT_STORE_URL", &store_url)
                .output()
                .expect("rebuild runs")
        }
    })
    .await
    .expect("joined");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("rebuilt up to position 1"), "{stderr}");
    let db = account_view::ViewDb::open(&data.join(account_view::DB_FILE)).expect("open");
    let (accounts, _) = db.dump().expect("dump");
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0].balance, 5);
}
