//! The SQLite write-ahead log stays bounded under a steady stream of commits.

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{event, spawn_app};

/// Regression: the WAL grew without bound while appends kept arriving (2.6 GB after a 20 s
/// benchmark), because the checkpoint thread never completed a checkpoint while new frames
/// kept coming, so the WAL never restarted and every commit extended the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_restarts_under_continuous_appends() {
    let app = spawn_app().await;
    let padding = "x".repeat(2000);
    // 8 writers x 100 appends x 50 events of about 2 KB: far more WAL frames (about 240 MB
    // without restarts) than the 4096 pages of 4 KiB at which the writer completes a checkpoint.
    let writers = (0..8).map(|w| {
        let app = &app;
        let padding = &padding;
        async move {
            let stream = format!("wal-{w}");
            for round in 0..100u64 {
                let events: Vec<_> = (0..50)
                    .map(|i| event("Padded", json!({"round": round, "i": i, "pad": padding})))
                    .collect();
                let (status, body) = app.append(&stream, json!(round * 50), &events).await;
                assert_eq!(status, StatusCode::OK, "{body}");
            }
        }
    });
    join_all(writers).await;
    assert_eq!(app.head().await, 8 * 100 * 50);

    let wal = app.dir().join("events.sqlite3-wal");
    let size = std::fs::metadata(&wal).expect("the WAL file exists").len();
    assert!(
        size < 48 * 1024 * 1024,
        "the WAL is {size} bytes after 800 appends of 50 events; it should restart near 16 MiB"
    );
}
