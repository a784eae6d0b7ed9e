//! The transfers binary as a process: configured from the environment, probed by its
//! `healthcheck` subcommand, and stopped gracefully by SIGTERM.

use std::time::Duration;

use event_store::testing::TestStore;
use service_kit::testing::{assert_a_bad_port_is_reported, ServiceProcess};

const BINARY: &str = env!("CARGO_BIN_EXE_transfers");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_reports_healthy_and_stops_on_sigterm() {
    let store = TestStore::start().await;
    let store_url = store.url().to_owned();

    let service = ServiceProcess::spawn(BINARY, [("EVENT_STORE_URL", &store_url)]);
    service.wait_healthy(Duration::from_secs(20)).await;
    let status = service.terminate(Duration::from_secs(15)).await;
    assert!(status.success(), "exit status after SIGTERM: {status}");
}

#[test]
fn a_bad_port_is_reported_not_panicked() {
    assert_a_bad_port_is_reported(BINARY);
}
