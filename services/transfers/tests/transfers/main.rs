//! The transfers binary as a process: configured from the environment, probed by its
//! `healthcheck` subcommand, and stopped gracefully by SIGTERM.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn healthcheck(port: u16) -> bool {
    Command::new(env!("CARGO_BIN_EXE_transfers"))
        .arg("healthcheck")
        .env("PORT", port.to_string())
        .stderr(Stdio::null())
        .status()
        .expect("healthcheck runs")
        .success()
}

/// Kills the process if the test ends before it does.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

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

    let port = free_port();
    assert!(!healthcheck(port), "nothing listens yet");
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_transfers"))
            .env("PORT", port.to_string())
            .env("EVENT_STORE_URL", &store_url)
            .stderr(Stdio::null())
            .spawn()
            .expect("transfers starts"),
    );
    let started = Instant::now();
    while !healthcheck(port) {
        assert!(started.elapsed() < Duration::from_secs(20), "never healthy");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let pid = nix::unistd::Pid::from_raw(child.0.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("signal sent");
    let stopped = Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait") {
            break status;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(15),
            "did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status after SIGTERM: {status}");
}

#[test]
fn a_bad_port_is_reported_not_panicked() {
    let output = Command::new(env!("CARGO_BIN_EXE_transfers"))
        .env("PORT", "http")
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("environment variable PORT"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
