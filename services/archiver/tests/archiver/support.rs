//! Shared helpers: an in-process event store, event generation, the archiver binary as a child
//! process that is killed when dropped, and polling helpers.

use std::ffi::OsStr;
use std::path::Path;
use std::time::{Duration, Instant};

use archiver::{Archive, Manifest};
use event_store::testing::TestStore;
use serde_json::json;
use service_kit::testing::{ServiceProcess, Signal};
use uuid::Uuid;

/// An event store running in this process on a free port (`event_store::testing`), stopped on
/// drop.
pub struct Store {
    pub url: String,
    store: TestStore,
}

impl Store {
    pub async fn spawn() -> Store {
        let store = TestStore::start().await;
        Store {
            url: store.url().to_owned(),
            store,
        }
    }

    /// Stops the store and waits until it is down.
    pub async fn stop(self) {
        self.store.stop().await;
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

/// The archiver binary as a child process (service-kit's `ServiceProcess`, on a free port);
/// killed (SIGKILL) when dropped.
pub struct ArchiverProcess {
    process: ServiceProcess,
}

impl ArchiverProcess {
    pub fn start(store_url: &str, data_dir: &Path, envs: &[(&str, &str)]) -> Self {
        let mut all = vec![
            ("DATA_DIR", data_dir.as_os_str()),
            ("EVENT_STORE_URL", OsStr::new(store_url)),
            ("RUST_LOG", OsStr::new("warn")),
            // Unset in the environment the tests inherit: the archive is given by DATA_DIR.
            ("ARCHIVER_LOCATION", OsStr::new("")),
        ];
        all.extend(envs.iter().map(|(k, v)| (*k, OsStr::new(*v))));
        Self {
            process: ServiceProcess::spawn(env!("CARGO_BIN_EXE_archiver"), all),
        }
    }

    /// SIGKILL: no chance to flush.
    pub fn kill(self) {
        self.process.kill();
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        self.process.signal(Signal::SIGTERM);
        self.process.wait_exit(Duration::from_secs(20))
    }
}
