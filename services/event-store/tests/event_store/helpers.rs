//! Spawning the service and talking to it.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use event_store::{Application, Config};
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// A running in-process service with its own data directory.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("create a temporary data directory");
    start_in(dir, tweak).await
}

async fn start_in(dir: tempfile::TempDir, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = Config::ephemeral(dir.path());
    tweak(&mut config);
    let app = Application::build(config).await.expect("build the app");
    let address = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        app.run_until(async move {
            let _ = stopped.await;
        })
        .await
        .expect("the app runs");
    });
    TestApp {
        address,
        client: reqwest::Client::new(),
        dir,
        stop: Some(stop),
        task: Some(task),
    }
}

impl TestApp {
    /// Stops the service gracefully and starts a new one on the same data directory.
    pub async fn restart(mut self) -> TestApp {
        self.shutdown().await;
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
        start_in(dir, |_| {}).await
    }

    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("the app stops cleanly");
        }
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

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
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

/// A child `event-store` process; killed (SIGKILL) and reaped on drop.
pub struct ServiceProcess {
    pub child: Child,
    pub port: u16,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("find a free port")
        .port()
}

impl ServiceProcess {
    pub fn start(data_dir: &Path, port: u16) -> ServiceProcess {
        let child = Command::new(env!("CARGO_BIN_EXE_event-store"))
            .env("PORT", port.to_string())
            .env("DATA_DIR", data_dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the event-store binary");
        let process = ServiceProcess { child, port };
        process.wait_healthy();
        process
    }

    pub fn address(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if service_kit::healthcheck::probe(self.port, "/health", Duration::from_secs(1)).ok()
                == Some(200)
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "the event-store process did not become healthy on port {}",
            self.port
        );
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, signal).expect("signal the event-store process");
    }

    /// Waits for the process to exit and returns its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the child") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the event-store process did not exit within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
