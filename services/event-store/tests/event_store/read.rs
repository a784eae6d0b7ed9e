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

/// Events SQLite has committed and acknowledged events it has not (still in the journal and the
/// store's memory) read as one stream and one log: paging and version bounds across the seam.
#[tokio::test]
async fn reads_join_committed_events_with_ones_sqlite_has_not_committed_yet() {
    let app = spawn_app().await;
    let three: Vec<_> = (1..=3).map(|i| event("E", json!(i))).collect();
    app.append("j", json!(0), &three).await;
    app.append("other", json!(0), &[event("O", json!(1))]).await;

    // The writer commits SQLite at most 50 ms after a write; wait until the file holds them.
    let db = app.dir().join("events.sqlite3");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let conn =
            rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .expect("open the database read-only");
        let stored: i64 = conn
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
            .expect("count events");
        if stored == 4 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "SQLite holds {stored} of 4 acknowledged events after 5 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    app.append("j", json!(3), &[event("E", json!(4)), event("E", json!(5))])
        .await;
    app.append("other", json!(1), &[event("O", json!(2))]).await;

    let versions = |body: &serde_json::Value| -> Vec<u64> {
        body["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| e["version"].as_u64().expect("version"))
            .collect()
    };
    let (_, whole) = app.get("/streams/j/events").await;
    assert_eq!(
        (whole["version"].clone(), versions(&whole)),
        (json!(5), vec![1, 2, 3, 4, 5])
    );
    let (_, page) = app.get("/streams/j/events?from_version=3&limit=2").await;
    assert_eq!(versions(&page), [3, 4]);
    let (_, page) = app.get("/streams/j/events?from_version=2&limit=1").await;
    assert_eq!(versions(&page), [2]);
    let (_, upto) = app.get("/streams/j/events?up_to_version=4").await;
    assert_eq!(
        (upto["version"].clone(), versions(&upto)),
        (json!(4), vec![1, 2, 3, 4])
    );

    let positions = |body: &serde_json::Value| -> Vec<u64> {
        body["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| e["position"].as_u64().expect("position"))
            .collect()
    };
    let (_, log) = app.get("/events?after=2&limit=3").await;
    assert_eq!(positions(&log), [3, 4, 5]);
    let (_, log) = app.get("/events?after=0").await;
    assert_eq!(positions(&log), [1, 2, 3, 4, 5, 6, 7]);
    let (_, log) = app.get("/events?after=0&stream_prefix=oth").await;
    assert_eq!(positions(&log), [4, 7]);
}
