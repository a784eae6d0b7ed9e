//! The gateway binary as a process: configured from the environment, probed by its
//! `healthcheck` subcommand (healthy only with its upstreams up), stopped by SIGTERM.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::Fleet;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn healthcheck(port: u16) -> bool {
    Command::new(env!("CARGO_BIN_EXE_gateway"))
        .arg("healthcheck")
        .env("PORT", port.to_string())
        .stderr(Stdio::null())
        .status()
        .expect("healthcheck runs")
        .success()
}

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_binary_serves_reports_healthy_and_stops_on_sigterm() {
    let fleet = Fleet::spawn().await;
    let port = free_port();
    assert!(!healthcheck(port), "nothing listens yet");
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_gateway"))
            .env("PORT", port.to_string())
            .env("ACCOUNTS_URL", &fleet.accounts)
            .env("TRANSFERS_URL", &fleet.transfers)
            .env("VIEW_URL", &fleet.view)
            .stderr(Stdio::null())
            .spawn()
            .expect("gateway starts"),
    );
    let started = Instant::now();
    while !tokio::task::spawn_blocking(move || healthcheck(port))
        .await
        .expect("joined")
    {
        assert!(started.elapsed() < Duration::from_secs(20), "never healthy");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The UI is served by the binary too.
    let page = reqwest::get(format!("http://127.0.0.1:{port}/"))
        .await
        .expect("answered")
        .text()
        .await
        .expect("text");
    assert!(page.contains("Transfer money"), "{page}");

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
