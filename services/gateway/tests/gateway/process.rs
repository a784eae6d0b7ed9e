//! The gateway binary as a process: configured from the environment, probed by its
//! `healthcheck` subcommand (healthy only with its upstreams up), stopped by SIGTERM.

use std::time::Duration;

use service_kit::testing::ServiceProcess;

use crate::Fleet;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_binary_serves_reports_healthy_and_stops_on_sigterm() {
    let fleet = Fleet::spawn().await;
    let service = ServiceProcess::spawn(
        env!("CARGO_BIN_EXE_gateway"),
        [
            ("ACCOUNTS_URL", &fleet.accounts),
            ("TRANSFERS_URL", &fleet.transfers),
            ("VIEW_URL", &fleet.view),
        ],
    );
    service.wait_healthy(Duration::from_secs(20)).await;
    // The UI is served by the binary too.
    let page = reqwest::get(format!("http://127.0.0.1:{}/", service.port()))
        .await
        .expect("answered")
        .text()
        .await
        .expect("text");
    assert!(page.contains("Transfer money"), "{page}");

    let status = service.terminate(Duration::from_secs(15)).await;
    assert!(status.success(), "exit status after SIGTERM: {status}");
}
