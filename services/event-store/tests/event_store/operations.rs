//! Health, metrics and the healthcheck subcommand.

use std::process::Command;
use std::sync::Arc;

use event_store::domain::{
    AppendBatch, AppendOutcome, GroupName, ImportBatch, ImportOutcome, Snapshot, StreamId,
    Subscription, SubscriptionSpec,
};
use event_store::http::Limits;
use event_store::storage::{
    GlobalQuery, GlobalSlice, Storage, StorageError, StreamQuery, StreamSlice,
};
use event_store::AppState;
use futures::future::BoxFuture;
use futures::FutureExt;
use reqwest::StatusCode;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::helpers::{event, free_port, send, spawn_app};

#[tokio::test]
async fn health_is_200_when_storage_answers() {
    let app = spawn_app().await;
    let (status, body) = app.get("/health").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ok");
}

/// A backend whose every call fails, as when the disk is gone.
struct BrokenStorage(tokio::sync::watch::Receiver<u64>);

fn closed<T: Send + 'static>() -> BoxFuture<'static, Result<T, StorageError>> {
    async { Err(StorageError::Closed) }.boxed()
}

impl Storage for BrokenStorage {
    fn append(&self, _: AppendBatch) -> BoxFuture<'_, Result<AppendOutcome, StorageError>> {
        closed()
    }
    fn import(&self, _: ImportBatch) -> BoxFuture<'_, Result<ImportOutcome, StorageError>> {
        closed()
    }
    fn read_stream(&self, _: StreamQuery) -> BoxFuture<'_, Result<StreamSlice, StorageError>> {
        closed()
    }
    fn read_all(&self, _: GlobalQuery) -> BoxFuture<'_, Result<GlobalSlice, StorageError>> {
        closed()
    }
    fn event_types(
        &self,
    ) -> BoxFuture<'_, Result<Vec<event_store_api::EventTypeCount>, StorageError>> {
        closed()
    }
    fn head(&self) -> tokio::sync::watch::Receiver<u64> {
        self.0.clone()
    }
    fn put_subscription(
        &self,
        _: GroupName,
        _: SubscriptionSpec,
    ) -> BoxFuture<'_, Result<Subscription, StorageError>> {
        closed()
    }
    fn get_subscription(
        &self,
        _: GroupName,
    ) -> BoxFuture<'_, Result<Option<Subscription>, StorageError>> {
        closed()
    }
    fn list_subscriptions(&self) -> BoxFuture<'_, Result<Vec<Subscription>, StorageError>> {
        closed()
    }
    fn ack(&self, _: GroupName, _: u64) -> BoxFuture<'_, Result<Subscription, StorageError>> {
        closed()
    }
    fn put_snapshot(&self, _: StreamId, _: Snapshot) -> BoxFuture<'_, Result<(), StorageError>> {
        closed()
    }
    fn get_snapshot(&self, _: StreamId) -> BoxFuture<'_, Result<Option<Snapshot>, StorageError>> {
        closed()
    }
    fn ping(&self) -> BoxFuture<'_, Result<(), StorageError>> {
        closed()
    }
    fn close(&self) -> BoxFuture<'_, ()> {
        async {}.boxed()
    }
}

#[tokio::test]
async fn health_is_503_and_writes_are_503_json_when_storage_does_not_answer() {
    let (_tx, head) = tokio::sync::watch::channel(0);
    let limits = Limits::from_config(&event_store::Config::default());
    let state = AppState::new(
        Arc::new(BrokenStorage(head)),
        limits,
        CancellationToken::new(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = format!("http://{}", listener.local_addr().expect("addr"));
    let server =
        tokio::spawn(async move { axum::serve(listener, event_store::router(state)).await });
    let client = reqwest::Client::new();

    let (status, body) = send(&client, &format!("{address}/health"), "GET", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "storage_unavailable");
    let append = json!({"expected_version": 0, "events": [event("A", json!(1))]}).to_string();
    let (status, body) = send(
        &client,
        &format!("{address}/streams/s/events"),
        "POST",
        Some(append),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "shutting_down");
    server.abort();
}

#[tokio::test]
async fn a_corrupt_database_file_fails_to_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("events.sqlite3"),
        b"this is not a database, just some text that is long enough",
    )
    .expect("write a corrupt file");
    let built = event_store::Application::build(event_store::Config::ephemeral(dir.path())).await;
    let error = built.err().expect("a corrupt database file must not start");
    assert!(format!("{error}").contains("events.sqlite3"), "{error}");
}

#[tokio::test]
async fn metrics_report_appends_events_bytes_subscribers_and_lag() {
    let app = spawn_app().await;
    app.append(
        "s",
        json!(0),
        &[event("A", json!({"k": "v"})), event("B", json!(1))],
    )
    .await;
    let retry = [event("C", json!(2))];
    app.append("s", json!(2), &retry).await;
    app.append("s", json!(2), &retry).await;
    app.put("/subscriptions/proj", json!({})).await;
    app.post("/subscriptions/proj/ack", json!({"position": 1}))
        .await;

    let response = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("text/plain"));
    let text = response.text().await.expect("text");
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("{name} missing from:\n{text}"))
            .parse()
            .expect("a number")
    };
    assert_eq!(value("event_store_appends_total"), 3.0);
    assert_eq!(value("event_store_events_total"), 3.0);
    assert_eq!(value("event_store_duplicate_appends_total"), 1.0);
    assert!(value("event_store_bytes_total") >= 10.0);
    assert_eq!(value("event_store_subscribers"), 0.0);
    assert_eq!(value("event_store_head_position"), 3.0);
    assert_eq!(
        value("event_store_subscription_lag_events{group=\"proj\"}"),
        2.0
    );
}

#[tokio::test]
async fn healthcheck_subcommand_exits_0_when_healthy_and_1_when_not() {
    let app = spawn_app().await;
    let port = app.address.rsplit(':').next().expect("port").to_owned();
    let run = |port: &str| {
        Command::new(env!("CARGO_BIN_EXE_event-store"))
            .arg("healthcheck")
            .env("PORT", port)
            .output()
            .expect("run the healthcheck")
    };
    let healthy = tokio::task::spawn_blocking(move || run(&port))
        .await
        .expect("join");
    assert_eq!(
        healthy.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&healthy.stderr)
    );
    let closed = free_port().to_string();
    let unhealthy = tokio::task::spawn_blocking(move || run(&closed))
        .await
        .expect("join");
    assert_eq!(unhealthy.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unhealthy.stderr).contains("healthcheck"));
}
