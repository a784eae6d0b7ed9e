//! The global log: commit order, filters and long-poll.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{event, ids, positions, spawn_app};

#[tokio::test]
async fn global_log_is_in_commit_order_with_head() {
    let app = spawn_app().await;
    app.append("Account-1", json!(0), &[event("AccountOpened", json!(1))])
        .await;
    app.append(
        "Transfer-1",
        json!(0),
        &[
            event("TransferCreated", json!(2)),
            event("DebitRecorded", json!(3)),
        ],
    )
    .await;
    app.append("Account-1", json!(1), &[event("AccountDebited", json!(4))])
        .await;

    let (status, all) = app.get("/events").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(positions(&all), vec![1, 2, 3, 4]);
    assert_eq!(all["head"], 4);
    let (_, page) = app.get("/events?after=1&limit=2").await;
    assert_eq!(positions(&page), vec![2, 3]);
    assert_eq!(page["head"], 4);
    let (_, none) = app.get("/events?after=4").await;
    assert_eq!((positions(&none), none["head"].clone()), (vec![], json!(4)));
}

#[tokio::test]
async fn global_log_filters_by_type_and_stream_prefix() {
    let app = spawn_app().await;
    app.append(
        "Account-1",
        json!(0),
        &[
            event("AccountOpened", json!(1)),
            event("AccountDebited", json!(2)),
        ],
    )
    .await;
    app.append(
        "Transfer-1",
        json!(0),
        &[event("TransferCreated", json!(3))],
    )
    .await;
    app.append("Account-2", json!(0), &[event("AccountOpened", json!(4))])
        .await;

    let (_, by_type) = app
        .get("/events?event_types=AccountOpened,TransferCreated")
        .await;
    assert_eq!(positions(&by_type), vec![1, 3, 4]);
    let (_, by_prefix) = app.get("/events?stream_prefix=Account-").await;
    assert_eq!(positions(&by_prefix), vec![1, 2, 4]);
    let (_, both) = app
        .get("/events?stream_prefix=Account-&event_types=AccountOpened")
        .await;
    assert_eq!(positions(&both), vec![1, 4]);
    let (_, nothing) = app.get("/events?stream_prefix=Nobody").await;
    assert_eq!(
        (positions(&nothing), nothing["head"].clone()),
        (vec![], json!(4))
    );
}

#[tokio::test]
async fn long_poll_answers_as_soon_as_an_event_commits() {
    let app = Arc::new(spawn_app().await);
    app.append("s", json!(0), &[event("A", json!(1))]).await;

    let poller = {
        let app = app.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let (status, body) = app.get("/events?after=1&wait_ms=30000").await;
            (status, body, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !poller.is_finished(),
        "the long-poll answered before anything committed"
    );
    app.append("s", json!(1), &[event("B", json!(2))]).await;
    let (status, body, elapsed) = poller.await.expect("poller");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(positions(&body), vec![2]);
    assert!(
        elapsed < Duration::from_secs(20),
        "the long-poll waited for its full time: {elapsed:?}"
    );

    // A filtered long-poll ignores commits that do not match and wakes on one that does.
    let poller = {
        let app = app.clone();
        tokio::spawn(async move {
            app.get("/events?after=2&wait_ms=30000&event_types=Wanted")
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.append("s", json!(2), &[event("Unwanted", json!(3))])
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !poller.is_finished(),
        "the filtered long-poll answered for a non-matching event"
    );
    app.append("s", json!(3), &[event("Wanted", json!(4))])
        .await;
    let (_, body) = poller.await.expect("poller");
    assert_eq!(positions(&body), vec![4]);
}

#[tokio::test]
async fn long_poll_times_out_with_empty_events() {
    let app = spawn_app().await;
    let (status, body) = app.get("/events?after=0&wait_ms=100").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"events": [], "head": 0}));
}

/// Readers following the log while many writers append never see a gap, a duplicate, or an
/// event at a position lower than one already read.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_readers_never_skip_an_event() {
    let app = Arc::new(spawn_app().await);
    const WRITERS: usize = 8;
    const APPENDS: usize = 40;
    let total = (WRITERS * APPENDS * 2) as u64;
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let app = app.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..APPENDS {
                let (status, body) = app
                    .append(
                        &format!("w-{w}"),
                        json!(i * 2),
                        &[event("E", json!(i)), event("E", json!(i))],
                    )
                    .await;
                assert_eq!(status, StatusCode::OK, "{body}");
            }
        }));
    }
    let mut readers = Vec::new();
    for _ in 0..3 {
        let app = app.clone();
        readers.push(tokio::spawn(async move {
            let mut after = 0u64;
            let mut seen = HashSet::new();
            while after < total {
                let (_, body) = app
                    .get(&format!("/events?after={after}&limit=7&wait_ms=5000"))
                    .await;
                for (position, id) in positions(&body).into_iter().zip(ids(&body)) {
                    assert_eq!(position, after + 1, "gap or reordering after {after}");
                    assert!(seen.insert(id), "duplicate event at {position}");
                    after = position;
                }
            }
            after
        }));
    }
    for w in writers {
        w.await.expect("writer");
    }
    for r in readers {
        assert_eq!(r.await.expect("reader"), total);
    }
}
