//! Snapshots: put, get, overwrite, and survive a restart.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn snapshot_round_trip_and_overwrite() {
    let app = spawn_app().await;
    let (status, body) = app.get("/streams/Account-1/snapshot").await;
    assert_eq!(
        (status, body["error"].clone()),
        (StatusCode::NOT_FOUND, json!("snapshot_not_found"))
    );

    let state = json!({"balance": 70, "owner": {"name": "Ann"}, "tags": [1, 2]});
    let (status, body) = app
        .put(
            "/streams/Account-1/snapshot",
            json!({"version": 12, "state": state}),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"version": 12})));
    let (status, body) = app.get("/streams/Account-1/snapshot").await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"version": 12, "state": state}))
    );

    app.put(
        "/streams/Account-1/snapshot",
        json!({"version": 20, "state": {"balance": 1}}),
    )
    .await;
    let app = app.restart().await;
    let (_, body) = app.get("/streams/Account-1/snapshot").await;
    assert_eq!(body, json!({"version": 20, "state": {"balance": 1}}));
    let (status, _) = app.get("/streams/Account-2/snapshot").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
