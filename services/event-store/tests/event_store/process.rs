//! Tests against the real binary: SIGKILL under load loses no acknowledged append, and SIGTERM
//! drains in-flight work and exits 0.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{event, free_port, send, start_process, whole_log};

/// One acknowledged append: its events' ids and the answer.
struct Acked {
    stream: String,
    ids: Vec<String>,
    version: u64,
    position: u64,
}

/// Appends from `clients` tasks until `stop` is set; returns every acknowledged append.
async fn load(address: String, clients: usize, stop: Arc<AtomicBool>) -> Vec<Acked> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let mut tasks = Vec::new();
    for c in 0..clients {
        let client = client.clone();
        let address = address.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let stream = format!("crash-{c}");
            let mut acked = Vec::new();
            let mut version = 0u64;
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                // Mix single events and small batches.
                let events: Vec<Value> = (0..(1 + i % 3))
                    .map(|k| event("Loaded", json!({"c": c, "i": i, "k": k})))
                    .collect();
                let body = json!({"expected_version": version, "events": events}).to_string();
                let url = format!("{address}/streams/{stream}/events");
                let response = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                let Ok(response) = response else { break };
                if response.status() != StatusCode::OK {
                    break;
                }
                let Ok(answer) = response.json::<Value>().await else {
                    break;
                };
                let new_version = answer["version"].as_u64().expect("version");
                assert_eq!(new_version, version + events.len() as u64);
                version = new_version;
                acked.push(Acked {
                    stream: stream.clone(),
                    ids: events
                        .iter()
                        .map(|e| e["event_id"].as_str().expect("id").to_owned())
                        .collect(),
                    version,
                    position: answer["position"].as_u64().expect("position"),
                });
            }
            acked
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("load task"));
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_under_load_loses_no_acknowledged_append() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let process = start_process(dir.path(), port).await;
    let stop = Arc::new(AtomicBool::new(false));
    let loader = tokio::spawn(load(process.url(), 32, stop.clone()));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    process.signal(Signal::SIGKILL);
    stop.store(true, Ordering::Relaxed);
    let acked = loader.await.expect("loader");
    drop(process);
    assert!(
        acked.len() > 50,
        "too little load to prove anything: {} appends",
        acked.len()
    );

    let process = start_process(dir.path(), port).await;
    let client = reqwest::Client::new();
    let log = whole_log(&client, &process.url()).await;
    eprintln!("{} events recovered after SIGKILL", log.len());

    // Every acknowledged event is there, at the version and position it was acknowledged with.
    let by_id: HashMap<&str, &Value> = log
        .iter()
        .map(|e| (e["event_id"].as_str().expect("id"), e))
        .collect();
    for a in &acked {
        let last = by_id
            .get(a.ids.last().expect("non-empty").as_str())
            .unwrap_or_else(|| {
                panic!(
                    "acknowledged append to {} at version {} is lost",
                    a.stream, a.version
                )
            });
        assert_eq!(last["version"], a.version);
        assert_eq!(last["position"], a.position);
        assert_eq!(last["stream_id"], a.stream.as_str());
        for id in &a.ids {
            assert!(
                by_id.contains_key(id.as_str()),
                "event {id} of an acknowledged batch is lost"
            );
        }
    }
    // Every stream is dense: versions 1..=n.
    let mut streams: HashMap<&str, Vec<u64>> = HashMap::new();
    for e in &log {
        streams
            .entry(e["stream_id"].as_str().expect("s"))
            .or_default()
            .push(e["version"].as_u64().expect("v"));
    }
    for (stream, versions) in streams {
        assert_eq!(
            versions,
            (1..=versions.len() as u64).collect::<Vec<_>>(),
            "stream {stream} has a gap"
        );
    }
    // The restarted store keeps accepting appends after the recovered head.
    let head = log.len() as u64;
    let body = json!({"expected_version": 0, "events": [event("After", json!(1))]}).to_string();
    let (status, answer) = send(
        &client,
        &format!("{}/streams/after-crash/events", process.url()),
        "POST",
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["position"], head + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unacknowledged_events_are_redelivered_after_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let process = start_process(dir.path(), port).await;
    let client = reqwest::Client::new();
    let address = process.url();
    send(
        &client,
        &format!("{address}/subscriptions/proj"),
        "PUT",
        Some("{}".into()),
    )
    .await;
    for i in 0..5 {
        let body = json!({"expected_version": "any", "events": [event("E", json!(i))]}).to_string();
        send(
            &client,
            &format!("{address}/streams/s/events"),
            "POST",
            Some(body),
        )
        .await;
    }
    let (_, delivered) = send(
        &client,
        &format!("{address}/subscriptions/proj/events"),
        "GET",
        None,
    )
    .await;
    assert_eq!(delivered["events"].as_array().map(Vec::len), Some(5));
    let (status, _) = send(
        &client,
        &format!("{address}/subscriptions/proj/ack"),
        "POST",
        Some(json!({"position": 2}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    process.signal(Signal::SIGKILL);
    drop(process);

    let process = start_process(dir.path(), port).await;
    let (_, again) = send(
        &client,
        &format!("{}/subscriptions/proj/events", process.url()),
        "GET",
        None,
    )
    .await;
    let positions: Vec<u64> = again["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["position"].as_u64().expect("p"))
        .collect();
    assert_eq!(positions, vec![3, 4, 5]);
    assert_eq!(
        again["events"][0]["event_id"],
        delivered["events"][2]["event_id"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_finishes_in_flight_work_and_exits_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut process = start_process(dir.path(), port).await;
    let address = process.url();
    let client = reqwest::Client::new();
    send(
        &client,
        &format!("{address}/subscriptions/g"),
        "PUT",
        Some("{}".into()),
    )
    .await;

    // Open connections that would otherwise keep the server busy: a long-poll and an SSE stream.
    let poll = tokio::spawn({
        let client = client.clone();
        let url = format!("{address}/events?after=0&wait_ms=60000&event_types=Never");
        async move { send(&client, &url, "GET", None).await }
    });
    let sse = client
        .get(format!("{address}/subscriptions/g/stream"))
        .send()
        .await
        .expect("sse");
    assert_eq!(sse.status(), StatusCode::OK);

    let stop = Arc::new(AtomicBool::new(false));
    let loader = tokio::spawn(load(address.clone(), 16, stop.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    process.signal(Signal::SIGTERM);
    let status = tokio::task::spawn_blocking(move || {
        let status = process.wait_exit(Duration::from_secs(20));
        (status, process)
    })
    .await
    .expect("join");
    stop.store(true, Ordering::Relaxed);
    let (status, process) = status;
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM must exit 0, got {status:?}"
    );
    let acked = loader.await.expect("loader");
    let (poll_status, _) = poll.await.expect("long-poll task");
    assert_eq!(
        poll_status,
        StatusCode::OK,
        "the long-poll was answered at shutdown"
    );
    drop(sse);
    drop(process);

    let process = start_process(dir.path(), port).await;
    let log = whole_log(&client, &process.url()).await;
    let stored: HashSet<&str> = log
        .iter()
        .map(|e| e["event_id"].as_str().expect("id"))
        .collect();
    for a in &acked {
        for id in &a.ids {
            assert!(
                stored.contains(id.as_str()),
                "acknowledged event {id} lost by a graceful stop"
            );
        }
    }
    assert!(!acked.is_empty());
}

/// After a restart the journal may still hold records of events that SQLite has long had, ending
/// below the head (a group that committed SQLite directly, such as one with an ack, is not
/// journaled). A record written after such a chain would not continue it, so start-up would stop
/// reading before it: the store writes new records from the journal's beginning instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_append_after_a_restart_survives_sigkill_when_the_journal_ends_below_the_head(
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let client = reqwest::Client::new();
    let append = |address: String, expected: u64| {
        let client = client.clone();
        async move {
            let body =
                json!({"expected_version": expected, "events": [event("E", json!(expected))]})
                    .to_string();
            send(
                &client,
                &format!("{address}/streams/s/events"),
                "POST",
                Some(body),
            )
            .await
        }
    };

    // Events 1 and 2 go through the journal; a graceful stop commits them to SQLite.
    let mut process = start_process(dir.path(), port).await;
    for expected in 0..2 {
        let (status, _) = append(process.url(), expected).await;
        assert_eq!(status, StatusCode::OK);
    }
    process.signal(Signal::SIGTERM);
    assert!(process.wait_exit(Duration::from_secs(10)).success());
    drop(process);

    // Events 3 to 5 reach SQLite without the journal, as a directly committed group's would.
    {
        let db = rusqlite::Connection::open(dir.path().join("events.sqlite3")).expect("open");
        for n in 3..=5i64 {
            db.execute(
                "INSERT INTO events (position, stream_id, version, event_id, event_type, \
                 schema_version, data, metadata, recorded_at) \
                 VALUES (?1, 's', ?1, ?2, 'E', 1, '{}', '{}', 0)",
                rusqlite::params![n, &uuid::Uuid::new_v4().as_bytes()[..]],
            )
            .expect("insert");
        }
    }

    // Event 6 is acknowledged, then the store is killed before its next SQLite commit.
    let process = start_process(dir.path(), port).await;
    let (status, answer) = append(process.url(), 5).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, json!({"version": 6, "position": 6}));
    process.signal(Signal::SIGKILL);
    drop(process);

    let process = start_process(dir.path(), port).await;
    let (_, stream) = send(
        &client,
        &format!("{}/streams/s/events", process.url()),
        "GET",
        None,
    )
    .await;
    assert_eq!(
        stream["version"], 6,
        "the acknowledged event 6 is lost: {stream}"
    );
}
