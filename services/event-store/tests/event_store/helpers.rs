//! Spawning the service and talking to it.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use event_store::testing::TestStore;
use event_store::Config;
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

/// A running in-process service with its own data directory, and a client for it.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub store: TestStore,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    TestApp::over(TestStore::start_with(tweak).await)
}

impl TestApp {
    /// A client for `store`.
    pub fn over(store: TestStore) -> TestApp {
        TestApp {
            address: store.url().to_owned(),
            client: reqwest::Client::new(),
            store,
        }
    }

    /// Stops the service gracefully and starts a new one on the same data directory.
    pub async fn restart(self) -> TestApp {
        TestApp::over(self.store.restart().await)
    }

    /// The service's data directory.
    pub fn dir(&self) -> &Path {
        self.store.data_dir()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn append(
        &self,
        stream: &str,
        expected: Value,
        events: &[Value],
    ) -> (StatusCode, Value) {
        self.send(
            "POST",
            &format!("/streams/{stream}/events"),
            Some(json!({"expected_version": expected, "events": events}).to_string()),
        )
        .await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send("GET", path, None).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send("PUT", path, Some(body.to_string())).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send("POST", path, Some(body.to_string())).await
    }

    /// Sends a raw body (which need not be JSON) and parses the JSON answer.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<String>,
    ) -> (StatusCode, Value) {
        send(&self.client, &self.url(path), method, body).await
    }

    pub async fn head(&self) -> u64 {
        let (status, body) = self.get("/events?limit=0").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["head"].as_u64().expect("head is a number")
    }
}

pub async fn send(
    client: &reqwest::Client,
    url: &str,
    method: &str,
    body: Option<String>,
) -> (StatusCode, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("valid method");
    let mut request = client
        .request(method, url)
        .header("content-type", "application/json");
    if let Some(body) = body {
        request = request.body(body);
    }
    let response = request.send().await.expect("the service answers");
    let status = response.status();
    let text = response.text().await.expect("read the answer");
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

/// A new event with a random id.
pub fn event(event_type: &str, data: Value) -> Value {
    json!({"event_id": Uuid::new_v4().to_string(), "event_type": event_type, "data": data})
}

/// The `event_id`s of an answer's `events`.
pub fn ids(answer: &Value) -> Vec<String> {
    answer["events"]
        .as_array()
        .expect("events is an array")
        .iter()
        .map(|e| e["event_id"].as_str().expect("event_id").to_owned())
        .collect()
}

pub fn positions(answer: &Value) -> Vec<u64> {
    answer["events"]
        .as_array()
        .expect("events is an array")
        .iter()
        .map(|e| e["position"].as_u64().expect("position"))
        .collect()
}

/// Reads server-sent events from `url` until `count` arrived (or `timeout`), returning their
/// parsed `data` in order. The connection is closed when this returns.
pub async fn read_sse(
    client: &reqwest::Client,
    url: &str,
    count: usize,
    timeout: Duration,
) -> Vec<Value> {
    let response = client
        .get(url)
        .send()
        .await
        .expect("connect to the event stream");
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while events.len() < count {
        let chunk = match tokio::time::timeout_at(deadline, body.next()).await {
            Ok(Some(Ok(chunk))) => chunk,
            _ => break,
        };
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let message: String = buffer.drain(..end + 2).collect();
            let data: Vec<&str> = message
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            if !data.is_empty() {
                events.push(serde_json::from_str(&data.join("\n")).expect("SSE data is JSON"));
            }
        }
    }
    events
}

// ---------------------------------------------------------------------------------------------
// The real binary, for tests that kill or signal the process.

pub use service_kit::testing::{free_port, ServiceProcess};

/// The real binary on `port` over `data_dir`, once it is healthy (service-kit's
/// `ServiceProcess`: killed with SIGKILL and reaped on drop).
pub async fn start_process(data_dir: &Path, port: u16) -> ServiceProcess {
    let process = ServiceProcess::spawn_on(
        env!("CARGO_BIN_EXE_event-store"),
        port,
        [
            ("DATA_DIR", data_dir.as_os_str()),
            ("RUST_LOG", OsStr::new("warn")),
        ],
    );
    process.wait_healthy(Duration::from_secs(30)).await;
    process
}

/// Reads the whole global log and checks it is dense (1..=head) with unique event ids.
pub async fn whole_log(client: &reqwest::Client, address: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut after = 0u64;
    loop {
        let (status, page) = send(
            client,
            &format!("{address}/events?after={after}&limit=5000"),
            "GET",
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let batch = page["events"].as_array().expect("events").clone();
        if batch.is_empty() {
            assert_eq!(page["head"], after, "head beyond the last readable event");
            break;
        }
        for e in batch {
            let position = e["position"].as_u64().expect("position");
            assert_eq!(position, after + 1, "gap in the global log after {after}");
            after = position;
            events.push(e);
        }
    }
    let unique: HashSet<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["stream_id"].as_str().expect("s").to_owned(),
                e["event_id"].as_str().expect("id").to_owned(),
            )
        })
        .collect();
    assert_eq!(unique.len(), events.len(), "an event is stored twice");
    events
}
