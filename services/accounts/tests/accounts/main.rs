//! The accounts binary as a process: configured from the environment, probed by its
//! `healthcheck` subcommand, and stopped gracefully by SIGTERM.

use std::time::Duration;

use service_kit::testing::{assert_a_bad_port_is_reported, ServiceProcess};
use tokio_util::sync::CancellationToken;

const BINARY: &str = env!("CARGO_BIN_EXE_accounts");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_reports_healthy_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = event_store::Application::build(event_store::Config::ephemeral(dir.path()))
        .await
        .expect("store starts");
    let store_url = format!("http://127.0.0.1:{}", store.port());
    let stop = CancellationToken::new();
    let _guard = stop.clone().drop_guard();
    tokio::spawn(store.run_until(stop.cancelled_owned()));

    let service = ServiceProcess::spawn(BINARY, [("EVENT_STORE_URL", &store_url)]);
    service.wait_healthy(Duration::from_secs(20)).await;
    let status = service.terminate(Duration::from_secs(15)).await;
    assert!(status.success(), "exit status after SIGTERM: {status}");
}

#[test]
fn a_bad_port_is_reported_not_panicked() {
    assert_a_bad_port_is_reported(BINARY);
}
