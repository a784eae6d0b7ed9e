//! Consumer groups: delivery by long-poll and server-sent events, redelivery of unacknowledged
//! events to a new connection and after a restart, acknowledgements and filters.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{event, ids, positions, read_sse, spawn_app, TestApp};

async fn seed(app: &TestApp) {
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
}

#[tokio::test]
async fn create_group_and_read_it_back() {
    let app = spawn_app().await;
    let (status, sub) = app
        .put(
            "/subscriptions/view",
            json!({"event_types": ["AccountOpened"], "stream_prefix": "Account-"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{sub}");
    assert_eq!(
        sub,
        json!({"group": "view", "checkpoint": 0, "event_types": ["AccountOpened"], "stream_prefix": "Account-"})
    );
    seed(&app).await;
    let (_, info) = app.get("/subscriptions/view").await;
    assert_eq!(info["lag"], 4);
    assert_eq!(info["head"], 4);
    // Updating the filter keeps the checkpoint; a start position moves it.
    app.post("/subscriptions/view/ack", json!({"position": 2}))
        .await;
    let (_, sub) = app.put("/subscriptions/view", json!({})).await;
    assert_eq!(sub, json!({"group": "view", "checkpoint": 2}));
    let (_, sub) = app
        .put("/subscriptions/view", json!({"start_position": 1}))
        .await;
    assert_eq!(sub["checkpoint"], 1);
    let (_, list) = app.get("/subscriptions").await;
    assert_eq!(list["subscriptions"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn long_poll_delivers_from_the_checkpoint_until_acknowledged() {
    let app = spawn_app().await;
    seed(&app).await;
    app.put("/subscriptions/g", json!({})).await;

    let (status, first) = app.get("/subscriptions/g/events?limit=2").await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(positions(&first), vec![1, 2]);
    assert_eq!(first["checkpoint"], 0);
    // Not acknowledged: a new request gets the same events again.
    let (_, again) = app.get("/subscriptions/g/events?limit=2").await;
    assert_eq!(ids(&again), ids(&first));
    // A client may page ahead of its checkpoint with `after`.
    let (_, ahead) = app.get("/subscriptions/g/events?after=2").await;
    assert_eq!(positions(&ahead), vec![3, 4]);

    let (status, acked) = app
        .post("/subscriptions/g/ack", json!({"position": 2}))
        .await;
    assert_eq!(
        (status, acked["checkpoint"].clone()),
        (StatusCode::OK, json!(2))
    );
    let (_, next) = app.get("/subscriptions/g/events").await;
    assert_eq!(positions(&next), vec![3, 4]);
    // Acknowledging an older position never moves the checkpoint back.
    let (_, acked) = app
        .post("/subscriptions/g/ack", json!({"position": 1}))
        .await;
    assert_eq!(acked["checkpoint"], 2);
}

#[tokio::test]
async fn filters_apply_to_delivery() {
    let app = spawn_app().await;
    seed(&app).await;
    app.put(
        "/subscriptions/opened",
        json!({"event_types": ["AccountOpened"]}),
    )
    .await;
    app.put(
        "/subscriptions/transfers",
        json!({"stream_prefix": "Transfer-"}),
    )
    .await;
    app.put(
        "/subscriptions/both",
        json!({"event_types": ["AccountDebited", "TransferCreated"], "stream_prefix": "Account-"}),
    )
    .await;
    let (_, opened) = app.get("/subscriptions/opened/events").await;
    assert_eq!(positions(&opened), vec![1, 4]);
    let (_, transfers) = app.get("/subscriptions/transfers/events").await;
    assert_eq!(positions(&transfers), vec![3]);
    let (_, both) = app.get("/subscriptions/both/events").await;
    assert_eq!(positions(&both), vec![2]);
}

#[tokio::test]
async fn subscription_long_poll_wakes_on_a_matching_commit() {
    let app = Arc::new(spawn_app().await);
    app.put("/subscriptions/g", json!({"event_types": ["Wanted"]}))
        .await;
    let poller = {
        let app = app.clone();
        tokio::spawn(async move { app.get("/subscriptions/g/events?wait_ms=30000").await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.append("s", json!(0), &[event("Other", json!(1))]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!poller.is_finished(), "woke for a filtered-out event");
    app.append("s", json!(1), &[event("Wanted", json!(2))])
        .await;
    let (status, body) = poller.await.expect("poller");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(positions(&body), vec![2]);
}

#[tokio::test]
async fn event_stream_pushes_history_then_live_events_and_redelivers_unacknowledged() {
    let app = Arc::new(spawn_app().await);
    seed(&app).await;
    app.put("/subscriptions/sse", json!({"stream_prefix": "Account-"}))
        .await;
    let url = app.url("/subscriptions/sse/stream");

    // History first, then a live event pushed as it commits.
    let reader = {
        let client = app.client.clone();
        let url = url.clone();
        tokio::spawn(async move { read_sse(&client, &url, 4, Duration::from_secs(20)).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.append("Account-3", json!(0), &[event("AccountOpened", json!(5))])
        .await;
    app.append(
        "Transfer-2",
        json!(0),
        &[event("TransferCreated", json!(6))],
    )
    .await;
    let got: Vec<u64> = reader
        .await
        .expect("reader")
        .iter()
        .map(|e: &Value| e["position"].as_u64().expect("position"))
        .collect();
    assert_eq!(got, vec![1, 2, 4, 5]);

    // The subscriber disconnected without acknowledging: a new connection starts again at 1.
    let again = read_sse(&app.client, &url, 2, Duration::from_secs(10)).await;
    assert_eq!(
        again
            .iter()
            .map(|e| e["position"].clone())
            .collect::<Vec<_>>(),
        vec![json!(1), json!(2)]
    );

    app.post("/subscriptions/sse/ack", json!({"position": 4}))
        .await;
    let after_ack = read_sse(&app.client, &url, 1, Duration::from_secs(10)).await;
    assert_eq!(after_ack[0]["position"], 5);
    assert_eq!(after_ack[0]["stream_id"], "Account-3");
}

#[tokio::test]
async fn unacknowledged_events_are_delivered_again_after_a_service_restart() {
    let app = spawn_app().await;
    seed(&app).await;
    app.put("/subscriptions/g", json!({})).await;
    let (_, delivered) = app.get("/subscriptions/g/events").await;
    assert_eq!(positions(&delivered), vec![1, 2, 3, 4]);
    app.post("/subscriptions/g/ack", json!({"position": 1}))
        .await;

    let app = app.restart().await;
    let (_, redelivered) = app.get("/subscriptions/g/events").await;
    assert_eq!(positions(&redelivered), vec![2, 3, 4]);
    assert_eq!(ids(&redelivered), ids(&delivered)[1..].to_vec());
}

/// An SSE subscriber following concurrent writers receives exactly the matching events, in
/// position order, whether they come from history, the live push or a catch-up read.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn event_stream_under_concurrent_appends_misses_nothing() {
    let app = Arc::new(spawn_app().await);
    app.append("Account-0", json!(0), &[event("AccountOpened", json!(0))])
        .await;
    app.put(
        "/subscriptions/follow",
        json!({"stream_prefix": "Account-"}),
    )
    .await;
    const WRITERS: usize = 6;
    const APPENDS: usize = 25;
    // Half the writers append matching streams (2 events per append).
    let expected = 1 + (WRITERS / 2) * APPENDS * 2;
    let reader = {
        let client = app.client.clone();
        let url = app.url("/subscriptions/follow/stream");
        tokio::spawn(
            async move { read_sse(&client, &url, expected, Duration::from_secs(60)).await },
        )
    };
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let app = app.clone();
        writers.push(tokio::spawn(async move {
            let stream = if w % 2 == 0 {
                format!("Account-w{w}")
            } else {
                format!("Transfer-w{w}")
            };
            for i in 0..APPENDS {
                let (status, body) = app
                    .append(
                        &stream,
                        json!(i * 2),
                        &[event("E", json!(i)), event("E", json!(i))],
                    )
                    .await;
                assert_eq!(status, StatusCode::OK, "{body}");
            }
        }));
    }
    for w in writers {
        w.await.expect("writer");
    }
    let got = reader.await.expect("reader");
    let (_, log) = app.get("/events?stream_prefix=Account-&limit=10000").await;
    let want: Vec<Value> = log["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["event_id"].clone())
        .collect();
    let got_ids: Vec<Value> = got.iter().map(|e| e["event_id"].clone()).collect();
    assert_eq!(want.len(), expected);
    assert_eq!(
        got_ids, want,
        "the subscriber's events differ from the filtered log"
    );
}
