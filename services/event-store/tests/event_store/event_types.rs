//! `GET /event-types`: per event type and schema version, the count and the first and last
//! positions, kept on write. Each test checks the answer against the log itself, read back
//! through `GET /events`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use event_store::testing::TestStore;

use crate::helpers::{free_port, send, spawn_app, start_process, whole_log, TestApp};

/// An event of `event_type` at `schema_version`, with a random id.
fn typed(event_type: &str, schema_version: u32) -> Value {
    json!({"event_id": Uuid::new_v4().to_string(), "event_type": event_type,
           "schema_version": schema_version, "data": {"n": 1}})
}

/// What `GET /event-types` must answer for `log`, computed from the events themselves.
fn counts_of(log: &[Value]) -> Value {
    let mut rows: BTreeMap<(String, u64), (u64, u64, u64)> = BTreeMap::new();
    for e in log {
        let key = (
            e["event_type"].as_str().expect("event_type").to_owned(),
            e["schema_version"].as_u64().expect("schema_version"),
        );
        let position = e["position"].as_u64().expect("position");
        let row = rows.entry(key).or_insert((0, position, position));
        row.0 += 1;
        row.1 = row.1.min(position);
        row.2 = row.2.max(position);
    }
    Value::Array(
        rows.into_iter()
            .map(|((t, v), (count, first, last))| {
                json!({"type": t, "version": v, "count": count,
                       "first_position": first, "last_position": last})
            })
            .collect(),
    )
}

async fn event_types(client: &reqwest::Client, address: &str) -> Value {
    let (status, body) = send(client, &format!("{address}/event-types"), "GET", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The answer agrees with the log.
async fn check_against_log(app: &TestApp) -> Value {
    let answer = event_types(&app.client, &app.address).await;
    let log = whole_log(&app.client, &app.address).await;
    assert_eq!(
        answer,
        counts_of(&log),
        "GET /event-types disagrees with the log"
    );
    answer
}

#[tokio::test]
async fn an_empty_store_answers_an_empty_array() {
    let app = spawn_app().await;
    assert_eq!(check_against_log(&app).await, json!([]));
}

#[tokio::test]
async fn appends_are_counted_before_they_are_answered_and_sorted_by_type_then_version() {
    let app = spawn_app().await;
    let (status, _) = app
        .append(
            "a-1",
            json!(0),
            &[typed("Opened", 1), typed("Debited", 2), typed("Debited", 1)],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Read at once: the events are acknowledged but likely not yet committed to SQLite.
    assert_eq!(
        event_types(&app.client, &app.address).await,
        json!([
            {"type": "Debited", "version": 1, "count": 1, "first_position": 3, "last_position": 3},
            {"type": "Debited", "version": 2, "count": 1, "first_position": 2, "last_position": 2},
            {"type": "Opened", "version": 1, "count": 1, "first_position": 1, "last_position": 1},
        ])
    );
    for i in 0..20u64 {
        let event = typed(if i % 3 == 0 { "Opened" } else { "Debited" }, 1);
        let (status, body) = app
            .append(&format!("a-{}", i % 4), json!("any"), &[event])
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let answer = check_against_log(&app).await;
        let opened = answer
            .as_array()
            .expect("array")
            .iter()
            .find(|r| r["type"] == "Opened")
            .expect("Opened row");
        assert_eq!(opened["count"], 1 + (i / 3 + 1));
    }
}

#[tokio::test]
async fn an_idempotent_resend_is_not_counted_twice() {
    let app = spawn_app().await;
    let batch = [typed("Opened", 1), typed("Credited", 1)];
    let (status, first) = app.append("s", json!(0), &batch).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let before = check_against_log(&app).await;
    let (status, again) = app.append("s", json!(0), &batch).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again, first, "the resend is answered as the original");
    assert_eq!(check_against_log(&app).await, before);
    assert_eq!(before[0]["count"], 1);
}

#[tokio::test]
async fn imports_are_counted_and_a_repeated_import_is_not() {
    let source = spawn_app().await;
    for (stream, event) in [
        ("x", typed("Opened", 1)),
        ("y", typed("Opened", 1)),
        ("x", typed("Renamed", 3)),
    ] {
        let (status, body) = source.append(stream, json!("any"), &[event]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let log = whole_log(&source.client, &source.address).await;

    let target = spawn_app().await;
    let (status, body) = target.post("/import", json!({ "events": log })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = target.post("/import", json!({ "events": log })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["events"], 3,
        "the repeat is answered as stored: {body}"
    );
    assert_eq!(
        check_against_log(&target).await,
        json!([
            {"type": "Opened", "version": 1, "count": 2, "first_position": 1, "last_position": 2},
            {"type": "Renamed", "version": 3, "count": 1, "first_position": 3, "last_position": 3},
        ])
    );
}

#[tokio::test]
async fn counts_survive_a_restart() {
    let app = spawn_app().await;
    for i in 0..10u32 {
        let (status, _) = app
            .append("s", json!("any"), &[typed("Tick", 1 + i % 2)])
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let before = check_against_log(&app).await;
    let app = app.restart().await;
    assert_eq!(check_against_log(&app).await, before);
    let (status, _) = app.append("s", json!("any"), &[typed("Tick", 1)]).await;
    assert_eq!(status, StatusCode::OK);
    let after = check_against_log(&app).await;
    assert_eq!(after[0]["count"], 6);
    assert_eq!(after[0]["last_position"], 11);
}

/// A database written before `/event-types` existed has no `event_types` table: start-up
/// creates it and fills it from the events, once.
#[tokio::test]
async fn a_database_without_the_table_gets_it_filled_at_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = TestApp::over(TestStore::start_in(dir.path(), |_| {}).await);
    for i in 0..30u32 {
        let event_type = ["Opened", "Debited", "Credited"][(i % 3) as usize];
        let (status, _) = app
            .append(
                &format!("s-{}", i % 5),
                json!("any"),
                &[typed(event_type, 1 + i % 2)],
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let expected = check_against_log(&app).await;
    assert_eq!(expected.as_array().map(Vec::len), Some(6));
    app.store.stop().await;
    {
        // The schema the store had before the table existed.
        let db = rusqlite::Connection::open(dir.path().join("events.sqlite3")).expect("open");
        db.execute_batch("DROP TABLE event_types").expect("drop");
    }
    let app = TestApp::over(TestStore::start_in(dir.path(), |_| {}).await);
    assert_eq!(check_against_log(&app).await, expected);
}

/// The writer's acknowledged but not yet committed events are replayed from the journal after a
/// SIGKILL; the replay counts them too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counts_are_right_after_a_sigkill_and_the_journal_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let process = start_process(dir.path(), port).await;
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in 0..16u32 {
        let (address, stop) = (process.url(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("client");
            let mut acked = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let events = [typed(["A", "B", "C"][(acked % 3) as usize], 1 + c % 2)];
                let body = json!({"expected_version": "any", "events": events}).to_string();
                let url = format!("{address}/streams/k-{c}/events");
                match send_quiet(&client, &url, body).await {
                    Some(StatusCode::OK) => acked += 1,
                    _ => break,
                }
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    process.signal(Signal::SIGKILL);
    stop.store(true, Ordering::Relaxed);
    let mut acked = 0;
    for t in tasks {
        acked += t.await.expect("load task");
    }
    drop(process);
    assert!(acked > 50, "too little load to prove anything: {acked}");

    let process = start_process(dir.path(), port).await;
    let client = reqwest::Client::new();
    let log = whole_log(&client, &process.url()).await;
    assert!(log.len() as u64 >= acked, "acknowledged events are lost");
    assert_eq!(
        event_types(&client, &process.url()).await,
        counts_of(&log),
        "GET /event-types disagrees with the log after the replay"
    );
}

/// Sends an append; `None` when the store is gone.
async fn send_quiet(client: &reqwest::Client, url: &str, body: String) -> Option<StatusCode> {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .ok()?;
    let status = response.status();
    response.bytes().await.ok()?;
    Some(status)
}
