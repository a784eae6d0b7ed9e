//! Bad input gets a 4xx JSON error with a code, never a 500 and never a partial write.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{event, spawn_app_with, TestApp};

const ID: &str = "6f1d2c3b-4a59-4e8d-9c7b-1a2b3c4d5e6f";

async fn check(
    app: &TestApp,
    method: &str,
    path: &str,
    body: Option<String>,
    status: u16,
    code: &str,
) -> Value {
    let (got, answer) = app.send(method, path, body.clone()).await;
    assert_eq!(got.as_u16(), status, "{method} {path} {body:?}: {answer}");
    assert_eq!(answer["error"], code, "{method} {path} {body:?}: {answer}");
    assert!(
        answer["message"].as_str().is_some_and(|m| m.len() > 10),
        "{method} {path}: a message for a person is missing: {answer}"
    );
    answer
}

fn append_body(expected: Value, events: Value) -> Option<String> {
    Some(json!({"expected_version": expected, "events": events}).to_string())
}

#[tokio::test]
async fn bad_appends_are_rejected_with_codes_and_write_nothing() {
    let app = spawn_app_with(|c| {
        c.max_body_bytes = 16 * 1024;
        c.max_batch = 5;
    })
    .await;
    let good = || json!([{"event_id": ID, "event_type": "A", "data": {}}]);
    let post = "POST";
    let path = "/streams/s-1/events";

    check(
        &app,
        post,
        path,
        Some("{\"expected_version\": 0, \"events\": [".into()),
        400,
        "malformed_json",
    )
    .await;
    check(
        &app,
        post,
        path,
        Some("not json at all".into()),
        400,
        "malformed_json",
    )
    .await;
    check(&app, post, path, Some(String::new()), 400, "malformed_json").await;
    let a = check(
        &app,
        post,
        path,
        append_body(json!("3"), good()),
        422,
        "invalid_field",
    )
    .await;
    assert_eq!(a["field"], "expected_version");
    let a = check(
        &app,
        post,
        path,
        append_body(json!(-1), good()),
        422,
        "invalid_field",
    )
    .await;
    assert_eq!(a["field"], "expected_version");
    check(
        &app,
        post,
        path,
        append_body(json!(true), good()),
        422,
        "invalid_field",
    )
    .await;
    check(
        &app,
        post,
        path,
        append_body(json!(null), good()),
        422,
        "invalid_field",
    )
    .await;
    check(
        &app,
        post,
        path,
        Some(json!({"events": good()}).to_string()),
        422,
        "invalid_field",
    )
    .await;
    check(
        &app,
        post,
        path,
        Some(json!({"expected_version": 0}).to_string()),
        422,
        "invalid_field",
    )
    .await;
    let a = check(
        &app,
        post,
        path,
        append_body(json!(0), json!("events")),
        422,
        "invalid_field",
    )
    .await;
    assert_eq!(a["field"], "events");
    let a = check(
        &app,
        post,
        path,
        append_body(json!(0), json!([{"event_id": ID, "event_type": "A"}])),
        422,
        "invalid_field",
    )
    .await;
    assert_eq!(a["field"], "events[0]");
    let a = check(
        &app,
        post,
        path,
        append_body(
            json!(0),
            json!([{"event_id": ID, "event_type": 7, "data": 1}]),
        ),
        422,
        "invalid_field",
    )
    .await;
    assert_eq!(a["field"], "events[0].event_type");
    check(
        &app,
        post,
        path,
        append_body(json!(0), json!([])),
        422,
        "empty_batch",
    )
    .await;
    check(
        &app,
        post,
        path,
        append_body(
            json!(0),
            json!([{"event_id": "not-a-uuid", "event_type": "A", "data": {}}]),
        ),
        422,
        "invalid_event_id",
    )
    .await;
    check(
        &app,
        post,
        path,
        append_body(
            json!(0),
            json!([{"event_id": 12, "event_type": "A", "data": {}}]),
        ),
        422,
        "invalid_field",
    )
    .await;
    check(
        &app,
        post,
        path,
        append_body(
            json!(0),
            json!([{"event_id": ID, "event_type": "", "data": {}}]),
        ),
        422,
        "invalid_event_type",
    )
    .await;
    check(
        &app,
        post,
        path,
        append_body(
            json!(0),
            json!([{"event_id": ID, "event_type": "A", "data": {}, "metadata": "x"}]),
        ),
        422,
        "invalid_metadata",
    )
    .await;
    check(&app, post, path, append_body(json!(0), json!([{"event_id": ID, "event_type": "A", "data": {}}, {"event_id": ID, "event_type": "A", "data": {}}])), 422, "duplicate_event_id").await;
    let six: Vec<Value> = (0..6).map(|_| event("A", json!({}))).collect();
    check(
        &app,
        post,
        path,
        append_body(json!(0), json!(six)),
        422,
        "batch_too_large",
    )
    .await;
    let big = json!([{"event_id": ID, "event_type": "A", "data": {"blob": "x".repeat(20 * 1024)}}]);
    check(
        &app,
        post,
        path,
        append_body(json!(0), big),
        413,
        "body_too_large",
    )
    .await;

    // Invalid stream ids, percent-encoded in the path.
    check(
        &app,
        post,
        "/streams/has%20space/events",
        append_body(json!(0), good()),
        400,
        "invalid_stream_id",
    )
    .await;
    check(
        &app,
        post,
        "/streams/%C3%BCmlaut/events",
        append_body(json!(0), good()),
        400,
        "invalid_stream_id",
    )
    .await;
    check(
        &app,
        post,
        "/streams/a%2Fb/events",
        append_body(json!(0), good()),
        400,
        "invalid_stream_id",
    )
    .await;
    check(
        &app,
        post,
        &format!("/streams/{}/events", "x".repeat(300)),
        append_body(json!(0), good()),
        400,
        "invalid_stream_id",
    )
    .await;
    check(
        &app,
        "GET",
        "/streams/has%20space/events",
        None,
        400,
        "invalid_stream_id",
    )
    .await;

    // Nothing of all that was written.
    assert_eq!(app.head().await, 0);
    // And the same good batch is still accepted.
    let (status, _) = app.send(post, path, append_body(json!(0), good())).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn bad_queries_and_other_routes() {
    let app = spawn_app_with(|_| {}).await;
    check(
        &app,
        "GET",
        "/streams/s/events?from_version=abc",
        None,
        400,
        "invalid_query",
    )
    .await;
    check(
        &app,
        "GET",
        "/streams/s/events?limit=-1",
        None,
        400,
        "invalid_query",
    )
    .await;
    check(
        &app,
        "GET",
        "/streams/s/events?as_of=yesterday",
        None,
        400,
        "invalid_query",
    )
    .await;
    check(
        &app,
        "GET",
        "/streams/s/events?as_of=2026-01-01T00:00:00Z&up_to_version=1",
        None,
        400,
        "conflicting_parameters",
    )
    .await;
    check(&app, "GET", "/events?after=x", None, 400, "invalid_query").await;
    check(
        &app,
        "GET",
        "/events?wait_ms=soon",
        None,
        400,
        "invalid_query",
    )
    .await;
    check(
        &app,
        "GET",
        "/streams/s/snapshot",
        None,
        404,
        "snapshot_not_found",
    )
    .await;
    check(
        &app,
        "PUT",
        "/streams/s/snapshot",
        Some(json!({"state": {}}).to_string()),
        422,
        "invalid_field",
    )
    .await;
    check(
        &app,
        "PUT",
        "/streams/s/snapshot",
        Some("{".into()),
        400,
        "malformed_json",
    )
    .await;
    check(
        &app,
        "GET",
        "/subscriptions/nobody",
        None,
        404,
        "subscription_not_found",
    )
    .await;
    check(
        &app,
        "GET",
        "/subscriptions/nobody/events",
        None,
        404,
        "subscription_not_found",
    )
    .await;
    check(
        &app,
        "GET",
        "/subscriptions/nobody/stream",
        None,
        404,
        "subscription_not_found",
    )
    .await;
    check(
        &app,
        "POST",
        "/subscriptions/nobody/ack",
        Some(json!({"position": 0}).to_string()),
        404,
        "subscription_not_found",
    )
    .await;
    check(
        &app,
        "PUT",
        "/subscriptions/bad%20name",
        Some("{}".into()),
        400,
        "invalid_name",
    )
    .await;
    check(
        &app,
        "PUT",
        "/subscriptions/g",
        Some(json!({"event_types": "A"}).to_string()),
        422,
        "invalid_field",
    )
    .await;
    check(
        &app,
        "PUT",
        "/subscriptions/g",
        Some(json!({"start_position": 5}).to_string()),
        400,
        "position_beyond_head",
    )
    .await;
    let (status, _) = app.put("/subscriptions/g", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    check(
        &app,
        "POST",
        "/subscriptions/g/ack",
        Some(json!({"position": 1}).to_string()),
        400,
        "position_beyond_head",
    )
    .await;
    check(
        &app,
        "POST",
        "/subscriptions/g/ack",
        Some(json!({"position": "1"}).to_string()),
        422,
        "invalid_field",
    )
    .await;
    check(&app, "GET", "/no/such/route", None, 404, "route_not_found").await;
    assert_eq!(app.head().await, 0);
}
