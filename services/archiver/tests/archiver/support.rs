//! Shared helpers: an in-process event store, event generation, the archiver binary as a child
//! process that is killed when dropped, and polling helpers.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use archiver::{Archive, Manifest};
use serde_json::json;
use tempfile::TempDir;
use tokio::sync::oneshot;
use uuid::Uuid;

/// An event store running in this process on a free port, stopped on drop.
pub struct Store {
    pub url: String,
    _dir: TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Store {
    pub async fn spawn() -> Store {
        let dir = tempfile::tempdir().expect("temp dir for the store");
        let app = event_store::Application::build(event_store::Config::ephemeral(dir.path()))
            .await
            .expect("event store starts");
        let url = format!("http://127.0.0.1:{}", app.port());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = app
                .run_until(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Store {
            url,
            _dir: dir,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the store and waits until it is down.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Appends `count` events spread over `streams` streams, with payloads whose exact text must
/// survive (key order, spacing, unicode), one append per event like a busy fleet. `seed` makes
/// ids distinct between calls.
pub async fn append_events(url: &str, seed: u64, count: u64, streams: u64) {
    let http = reqwest::Client::new();
    for i in 0..count {
        let stream = format!("Account-{:08}", (seed + i) % streams);
        let data = format!(
            r#"{{"z":{i}, "a":"café ☕ {seed}",  "nested":{{"b":[1,2,{{"c":null}}],"a":true}}}}"#
        );
        let body = format!(
            r#"{{"expected_version":"any","events":[{{"event_id":"{}","event_type":"AccountCredited","schema_version":2,"data":{data},"metadata":{{"correlation_id":"{}","seq":{i}}}}}]}}"#,
            Uuid::new_v4(),
            Uuid::new_v4()
        );
        let response = http
            .post(format!("{url}/streams/{stream}/events"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("append reaches the store");
        assert!(
            response.status().is_success(),
            "append failed: {}",
            response.text().await.unwrap_or_default()
        );
    }
}

/// The store's head position.
pub async fn head(url: &str) -> u64 {
    let body: serde_json::Value = reqwest::get(format!("{url}/events?after=0&limit=1"))
        .await
        .expect("store answers")
        .json()
        .await
        .expect("json");
    body["head"].as_u64().expect("head is a number")
}

/// The store's whole global log, as served.
pub async fn log(url: &str) -> Vec<serde_json::Value> {
    let mut events = Vec::new();
    loop {
        let body: serde_json::Value =
            reqwest::get(format!("{url}/events?after={}&limit=5000", events.len()))
                .await
                .expect("store answers")
                .json()
                .await
                .expect("json");
        let page = body["events"].as_array().expect("events").clone();
        if page.is_empty() {
            return events;
        }
        events.extend(page);
    }
}

/// A group's checkpoint.
pub async fn checkpoint(url: &str, group: &str) -> u64 {
    let body: serde_json::Value = reqwest::get(format!("{url}/subscriptions/{group}"))
        .await
        .expect("store answers")
        .json()
        .await
        .expect("json");
    body["checkpoint"]
        .as_u64()
        .unwrap_or_else(|| panic!("no checkpoint in {body}"))
}

/// Sets a group's checkpoint (creating it if needed).
pub async fn set_checkpoint(url: &str, group: &str, position: u64) {
    let response = reqwest::Client::new()
        .put(format!("{url}/subscriptions/{group}"))
        .json(&json!({ "start_position": position }))
        .send()
        .await
        .expect("store answers");
    assert!(response.status().is_success(), "{}", response.status());
}

/// Waits until `check` holds for the archive's manifest, or panics after `timeout`.
pub async fn wait_for_manifest(
    archive: &Archive,
    timeout: Duration,
    what: &str,
    check: impl Fn(&Manifest) -> bool,
) -> Manifest {
    let deadline = Instant::now() + timeout;
    loop {
        let manifest = archive.load_manifest().await.expect("manifest readable");
        if check(&manifest) {
            return manifest;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; the manifest ends at {}",
            manifest.last_position()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The archiver binary as a child process; killed (SIGKILL) when dropped.
pub struct ArchiverProcess {
    child: Option<Child>,
}

impl ArchiverProcess {
    pub fn start(store_url: &str, data_dir: &Path, envs: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_archiver"));
        command
            .env("PORT", "0")
            .env("DATA_DIR", data_dir)
            .env("EVENT_STORE_URL", store_url)
            .env("RUST_LOG", "warn")
            .env_remove("ARCHIVER_LOCATION")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (key, value) in envs {
            command.env(key, value);
        }
        let child = command.spawn().expect("the archiver binary starts");
        Self { child: Some(child) }
    }

    /// SIGKILL: no chance to flush.
    pub fn kill(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("send SIGTERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("the archiver did not stop within 20s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ArchiverProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
