//! Appends: optimistic concurrency, idempotent retries, all-or-nothing batches, races.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{event, ids, spawn_app};

#[tokio::test]
async fn first_append_gets_version_1_and_answers_version_and_position() {
    let app = spawn_app().await;
    let (status, body) = app
        .append(
            "Account-1",
            json!(0),
            &[event("Opened", json!({"balance": 150}))],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"version": 1, "position": 1}));

    let (status, body) = app
        .append(
            "Account-2",
            json!(0),
            &[event("Opened", json!({})), event("Credited", json!({}))],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"version": 2, "position": 3}));

    let (status, body) = app
        .append("Account-1", json!(1), &[event("Debited", json!({}))])
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"version": 2, "position": 4}))
    );

    let (status, body) = app
        .append("Account-1", json!("any"), &[event("Debited", json!({}))])
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"version": 3, "position": 5}))
    );
}

#[tokio::test]
async fn wrong_expected_version_is_409_with_current_version() {
    let app = spawn_app().await;
    app.append("s", json!(0), &[event("A", json!(1)), event("A", json!(2))])
        .await;
    for expected in [json!(0), json!(1), json!(3)] {
        let (status, body) = app
            .append("s", expected.clone(), &[event("A", json!(3))])
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "expected {expected}: {body}");
        assert_eq!(body["error"], "wrong_expected_version");
        assert_eq!(body["current_version"], 2);
    }
    // Nothing was written by the rejected appends.
    let (_, stream) = app.get("/streams/s/events").await;
    assert_eq!(stream["version"], 2);
    assert_eq!(app.head().await, 2);
    // A new stream must be appended with 0.
    let (status, body) = app.append("fresh", json!(5), &[event("A", json!(1))]).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["current_version"], 0);
}

#[tokio::test]
async fn retried_batch_is_acknowledged_with_the_original_answer_and_stored_once() {
    let app = spawn_app().await;
    app.append("other", json!(0), &[event("X", json!(null))])
        .await;
    let batch = [
        event("A", json!(1)),
        event("B", json!(2)),
        event("C", json!(3)),
    ];
    let (status, first) = app.append("s", json!(0), &batch).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first, json!({"version": 3, "position": 4}));
    app.append("s", json!(3), &[event("D", json!(4))]).await;

    // The retry carries the original (now stale) expected version.
    let (status, retry) = app.append("s", json!(0), &batch).await;
    assert_eq!(status, StatusCode::OK, "{retry}");
    assert_eq!(retry, first);
    // With "any" the version cannot tell; the stream's known event ids catch the repeat.
    let (status, retry_any) = app.append("s", json!("any"), &batch).await;
    assert_eq!((status, retry_any), (StatusCode::OK, first.clone()));

    // A single event re-sent on its own is acknowledged too.
    let (status, single) = app.append("s", json!("any"), &batch[1..2]).await;
    assert_eq!(
        (status, single),
        (StatusCode::OK, json!({"version": 2, "position": 3}))
    );

    let (_, stream) = app.get("/streams/s/events").await;
    assert_eq!(stream["version"], 4);
    assert_eq!(ids(&stream).len(), 4);
    assert_eq!(app.head().await, 5);
}

/// A handler that re-decided after its first append's answer was lost sends the same event id
/// with the expected version it now reads, which matches: still a repeat, also after a restart
/// (when the store knows no stream's ids yet and reads them from the database).
#[tokio::test]
async fn a_repeat_with_a_matching_expected_version_is_acknowledged_also_after_a_restart() {
    let app = spawn_app().await;
    let e = event("A", json!(1));
    let (_, first) = app.append("s", json!(0), std::slice::from_ref(&e)).await;
    assert_eq!(first, json!({"version": 1, "position": 1}));
    let (status, repeat) = app.append("s", json!(1), std::slice::from_ref(&e)).await;
    assert_eq!((status, repeat), (StatusCode::OK, first.clone()));

    let app = app.restart().await;
    let (status, repeat) = app.append("s", json!(1), std::slice::from_ref(&e)).await;
    assert_eq!((status, repeat), (StatusCode::OK, first.clone()));
    // A new event with one already stored is refused whole.
    let (status, mixed) = app
        .append("s", json!(1), &[e.clone(), event("B", json!(2))])
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{mixed}");
    let (status, next) = app.append("s", json!(1), &[event("B", json!(2))]).await;
    assert_eq!(
        (status, next),
        (StatusCode::OK, json!({"version": 2, "position": 2}))
    );
    let (_, stream) = app.get("/streams/s/events").await;
    assert_eq!(ids(&stream).len(), 2);
}

#[tokio::test]
async fn event_ids_are_per_stream() {
    let app = spawn_app().await;
    let e = event("A", json!(1));
    let (s1, _) = app.append("one", json!(0), std::slice::from_ref(&e)).await;
    let (s2, b2) = app.append("two", json!(0), std::slice::from_ref(&e)).await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK));
    assert_eq!(b2, json!({"version": 1, "position": 2}));
}

#[tokio::test]
async fn batch_mixing_stored_and_new_events_is_rejected_whole() {
    let app = spawn_app().await;
    let stored = event("A", json!(1));
    app.append("s", json!(0), std::slice::from_ref(&stored))
        .await;
    let (status, body) = app
        .append("s", json!(1), &[event("B", json!(2)), stored])
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "partial_duplicate_batch");
    let (_, stream) = app.get("/streams/s/events").await;
    assert_eq!(stream["version"], 1);
}

#[tokio::test]
async fn batch_is_all_or_nothing() {
    let app = spawn_app().await;
    // The second event is invalid: nothing of the batch may be stored.
    let bad = json!({"event_id": "nope", "event_type": "B", "data": {}});
    let (status, body) = app
        .append("s", json!(0), &[event("A", json!(1)), bad])
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    // A conflicting batch is not stored either.
    app.append("t", json!(0), &[event("A", json!(1))]).await;
    let (status, _) = app
        .append("t", json!(0), &[event("A", json!(2)), event("A", json!(3))])
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    let (_, s) = app.get("/streams/s/events").await;
    assert_eq!((s["version"].clone(), ids(&s).len()), (json!(0), 0));
    let (_, t) = app.get("/streams/t/events").await;
    assert_eq!((t["version"].clone(), ids(&t).len()), (json!(1), 1));
    assert_eq!(app.head().await, 1);
}

/// Many writers race on one stream with expected versions: exactly one wins each version,
/// and the stream ends dense, with no duplicates and no gaps.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_writers_win_each_version_exactly_once() {
    let app = std::sync::Arc::new(spawn_app().await);
    const WRITERS: usize = 8;
    const PER_WRITER: usize = 15;
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let mut won = Vec::new();
            let mut expected = 0u64;
            let mut conflicts = 0usize;
            while won.len() < PER_WRITER {
                let e = event("Raced", json!({"writer": writer}));
                let (status, body) = app
                    .append("race", json!(expected), std::slice::from_ref(&e))
                    .await;
                match status {
                    StatusCode::OK => {
                        let version = body["version"].as_u64().expect("version");
                        assert_eq!(version, expected + 1, "{body}");
                        won.push((version, e["event_id"].as_str().expect("id").to_owned()));
                        expected = version;
                    }
                    StatusCode::CONFLICT => {
                        conflicts += 1;
                        expected = body["current_version"].as_u64().expect("current_version");
                    }
                    other => panic!("unexpected {other}: {body}"),
                }
            }
            (won, conflicts)
        }));
    }
    let mut versions = HashSet::new();
    let mut won_ids = HashSet::new();
    let mut conflicts = 0;
    for task in tasks {
        let (won, c) = task.await.expect("writer task");
        conflicts += c;
        for (version, id) in won {
            assert!(versions.insert(version), "version {version} won twice");
            won_ids.insert(id);
        }
    }
    let total = (WRITERS * PER_WRITER) as u64;
    assert_eq!(versions, (1..=total).collect::<HashSet<_>>());
    assert!(
        conflicts > 0,
        "the writers never raced; the test proves nothing"
    );

    let (_, stream) = app
        .get(&format!("/streams/race/events?limit={total}"))
        .await;
    assert_eq!(stream["version"], total);
    let stored: Vec<u64> = stream["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["version"].as_u64().expect("v"))
        .collect();
    assert_eq!(stored, (1..=total).collect::<Vec<_>>());
    assert_eq!(ids(&stream).into_iter().collect::<HashSet<_>>(), won_ids);
}

/// Group commit: concurrent appends share transactions, so one fsync acknowledges many.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_share_commits() {
    let app = std::sync::Arc::new(spawn_app().await);
    const CLIENTS: usize = 32;
    const APPENDS: usize = 20;
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..APPENDS {
                let (status, body) = app
                    .append(&format!("g-{c}"), json!(i), &[event("E", json!(i))])
                    .await;
                assert_eq!(status, StatusCode::OK, "{body}");
            }
        }));
    }
    for t in tasks {
        t.await.expect("client");
    }
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing:\n{text}"))
    };
    let appends = value("event_store_appends_total");
    let commits = value("event_store_commits_total");
    assert_eq!(appends, (CLIENTS * APPENDS) as f64);
    assert!(commits >= 1.0);
    assert!(
        commits < appends * 0.8,
        "no group commit: {commits} commits for {appends} appends"
    );
}
