//! Stream reads: envelopes, paging and temporal reads.

use reqwest::StatusCode;
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::helpers::{event, spawn_app};

#[tokio::test]
async fn unknown_stream_has_version_0_and_no_events() {
    let app = spawn_app().await;
    let (status, body) = app.get("/streams/nobody/events").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"stream_id": "nobody", "version": 0, "events": []})
    );
}

#[tokio::test]
async fn envelope_has_every_field_and_data_round_trips() {
    let app = spawn_app().await;
    let mut e = event(
        "AccountOpened",
        json!({"balance": 150, "nested": {"a": [1, 2.5, "x"]}}),
    );
    e["schema_version"] = json!(2);
    e["metadata"] = json!({"correlation_id": "c-1", "causation_id": "d8a1b5f4-7f39-4f6e-a3ba-2a4c2f0b1c9d", "user": "ann"});
    app.append(
        "Account-9",
        json!(0),
        &[e.clone(), event("AccountCredited", json!({"amount": 5}))],
    )
    .await;

    let (_, body) = app.get("/streams/Account-9/events").await;
    assert_eq!(body["stream_id"], "Account-9");
    assert_eq!(body["version"], 2);
    let first = &body["events"][0];
    assert_eq!(first["event_id"], e["event_id"]);
    assert_eq!(first["stream_id"], "Account-9");
    assert_eq!(first["version"], 1);
    assert_eq!(first["position"], 1);
    assert_eq!(first["event_type"], "AccountOpened");
    assert_eq!(first["schema_version"], 2);
    assert_eq!(first["data"], e["data"]);
    assert_eq!(first["metadata"], e["metadata"]);
    let recorded = first["recorded_at"]
        .as_str()
        .expect("recorded_at is a string");
    let at = OffsetDateTime::parse(recorded, &Rfc3339).expect("recorded_at is RFC 3339");
    assert_eq!(at.offset(), time::UtcOffset::UTC);
    // Defaults: schema_version 1, empty metadata.
    let second = &body["events"][1];
    assert_eq!(second["schema_version"], 1);
    assert_eq!(second["metadata"], json!({}));
}

#[tokio::test]
async fn paging_with_from_version_and_limit() {
    let app = spawn_app().await;
    let events: Vec<_> = (1..=10).map(|i| event("E", json!(i))).collect();
    app.append("p", json!(0), &events).await;
    let (_, body) = app.get("/streams/p/events?from_version=4&limit=3").await;
    let versions: Vec<_> = body["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["version"].as_u64().expect("v"))
        .collect();
    assert_eq!(versions, vec![4, 5, 6]);
    assert_eq!(body["version"], 10);
    let (_, body) = app.get("/streams/p/events?from_version=11").await;
    assert_eq!(body["events"], json!([]));
    assert_eq!(body["version"], 10);
}

#[tokio::test]
async fn temporal_reads_return_the_stream_as_it_was() {
    let app = spawn_app().await;
    let before_any = OffsetDateTime::now_utc() - time::Duration::seconds(5);
    app.append(
        "t",
        json!(0),
        &[
            event("E", json!(1)),
            event("E", json!(2)),
            event("E", json!(3)),
        ],
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    let between = OffsetDateTime::now_utc();
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    app.append("t", json!(3), &[event("E", json!(4)), event("E", json!(5))])
        .await;

    let check = |path: String, version: u64, count: usize| {
        let app = &app;
        async move {
            let (status, body) = app.get(&path).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            assert_eq!(body["version"], version, "{path}: {body}");
            assert_eq!(
                body["events"].as_array().expect("events").len(),
                count,
                "{path}"
            );
            if let Some(last) = body["events"].as_array().and_then(|e| e.last()) {
                assert!(last["version"].as_u64().expect("v") <= version);
            }
        }
    };
    let fmt = |t: OffsetDateTime| t.format(&Rfc3339).expect("format");
    check("/streams/t/events".into(), 5, 5).await;
    check("/streams/t/events?up_to_version=2".into(), 2, 2).await;
    check("/streams/t/events?up_to_version=99".into(), 5, 5).await;
    check("/streams/t/events?up_to_version=0".into(), 0, 0).await;
    check(format!("/streams/t/events?as_of={}", fmt(between)), 3, 3).await;
    check(format!("/streams/t/events?as_of={}", fmt(before_any)), 0, 0).await;
    check(
        format!("/streams/t/events?as_of={}&from_version=2", fmt(between)),
        3,
        2,
    )
    .await;
}
