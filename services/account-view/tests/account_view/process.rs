//! The binary as a process: configured from the environment, probed by its `healthcheck`
//! subcommand, and stopped gracefully by SIGTERM.

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
    Command::new(env!("CARGO_BIN_EXE_account-view"))
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
        Command::new(env!("CARGO_BIN_EXE_account-view"))
            .env("PORT", port.to_string())
            .env("EVENT_STORE_URL", &store_url)
            .env("DATA_DIR", dir.path().join("view"))
            .stderr(Stdio::null())
            .spawn()
            .expect("account-view starts"),
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
    let output = Command::new(env!("CARGO_BIN_EXE_account-view"))
        .env("PORT", "http")
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("environment variable PORT"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rebuild_subcommand_replays_the_log_and_exits() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = event_store::Application::build(event_store::Config::ephemeral(dir.path()))
        .await
        .expect("store starts");
    let store_url = format!("http://127.0.0.1:{}", store.port());
    let stop = CancellationToken::new();
    let _guard = stop.clone().drop_guard();
    tokio::spawn(store.run_until(stop.cancelled_owned()));
    let client = es_core::EventStoreClient::new(&store_url).expect("client");
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
            Command::new(env!("CARGO_BIN_EXE_account-view"))
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
