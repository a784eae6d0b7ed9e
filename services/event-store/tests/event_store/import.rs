//! `POST /import`: events with their original positions, versions and `recorded_at`, accepted
//! only when they continue the log exactly; every refusal names the field and the position.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::helpers::{event, read_sse, spawn_app, spawn_app_with, TestApp};

/// A full envelope as `GET /events` serves it.
fn envelope(position: u64, stream: &str, version: u64, recorded_at: OffsetDateTime) -> Value {
    json!({
        "position": position,
        "event_id": Uuid::new_v4().to_string(),
        "stream_id": stream,
        "version": version,
        "event_type": "AccountCredited",
        "schema_version": 2,
        "data": {"amount": position, "note": "café"},
        "metadata": {"correlation_id": format!("c-{position}")},
        "recorded_at": rfc3339(recorded_at),
    })
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).expect("formats")
}

/// A time well in the past, in whole microseconds, `ms` milliseconds after a fixed start.
fn past(ms: i64) -> OffsetDateTime {
    OffsetDateTime::parse("2026-01-05T09:00:00.000001Z", &Rfc3339).expect("parses")
        + time::Duration::milliseconds(ms)
}

async fn import(app: &TestApp, events: &[Value]) -> (StatusCode, Value) {
    app.post("/import", json!({ "events": events })).await
}

async fn log(app: &TestApp) -> Vec<Value> {
    let (status, body) = app.get("/events?limit=10000").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["events"].as_array().expect("events").clone()
}

/// Asserts a refusal: status, code, the field it names and the position it names.
fn check_refusal(
    (status, body): (StatusCode, Value),
    want_status: StatusCode,
    code: &str,
    field: &str,
    position: u64,
) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"], code, "{body}");
    assert_eq!(body["field"], field, "{body}");
    assert_eq!(body["position"], position, "{body}");
    let message = body["message"].as_str().expect("a message");
    assert!(
        message.contains(field),
        "the message names {field}: {message}"
    );
    assert!(
        message.contains(&format!("position {position}")),
        "the message names position {position}: {message}"
    );
}

#[tokio::test]
async fn import_into_an_empty_store_keeps_positions_versions_and_recorded_at() {
    let app = spawn_app().await;
    let events = vec![
        envelope(1, "Account-1", 1, past(0)),
        envelope(2, "Account-2", 1, past(1500)),
        envelope(3, "Account-1", 2, past(1500)),
        envelope(4, "Account-1", 3, past(86_400_000)),
    ];
    let (status, body) = import(&app, &events).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"first_position": 1, "last_position": 4, "events": 4})
    );

    // The log serves exactly the envelopes that were imported, times included.
    assert_eq!(log(&app).await, events);
    let (_, stream) = app.get("/streams/Account-1/events").await;
    assert_eq!(stream["version"], 3);
    // Temporal reads see the original times.
    let (_, then) = app
        .get(&format!(
            "/streams/Account-1/events?as_of={}",
            rfc3339(past(2000))
        ))
        .await;
    assert_eq!(then["version"], 2, "{then}");

    // An ordinary append continues after it, stamped with the store's clock.
    let (status, appended) = app
        .append("Account-1", json!(3), &[event("AccountDebited", json!(1))])
        .await;
    assert_eq!(status, StatusCode::OK, "{appended}");
    assert_eq!(appended, json!({"version": 4, "position": 5}));
    let last = &log(&app).await[4];
    let stamped = OffsetDateTime::parse(last["recorded_at"].as_str().expect("time"), &Rfc3339)
        .expect("RFC 3339");
    assert!(stamped > past(86_400_000), "{last}");
}

#[tokio::test]
async fn import_into_a_non_empty_store_that_continues_it_works() {
    let app = spawn_app().await;
    app.append(
        "Account-1",
        json!(0),
        &[
            event("AccountOpened", json!(1)),
            event("AccountCredited", json!(2)),
        ],
    )
    .await;
    let existing = log(&app).await;
    let last_time =
        OffsetDateTime::parse(existing[1]["recorded_at"].as_str().expect("time"), &Rfc3339)
            .expect("RFC 3339");

    // The same time as the last event is allowed (times never go backwards, they may repeat).
    let events = vec![
        envelope(3, "Account-1", 3, last_time),
        envelope(4, "Account-7", 1, last_time),
    ];
    let (status, body) = import(&app, &events).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(&log(&app).await[2..], &events[..]);
    let (_, stream) = app.get("/streams/Account-1/events").await;
    assert_eq!(stream["version"], 3);
}

#[tokio::test]
async fn an_import_with_a_gap_in_positions_is_refused_and_nothing_is_written() {
    let app = spawn_app().await;
    // The first position must be the head's next (here 1).
    check_refusal(
        import(&app, &[envelope(2, "A", 1, past(0))]).await,
        StatusCode::CONFLICT,
        "position_not_next",
        "events[0].position",
        2,
    );
    let (_, body) = import(&app, &[envelope(2, "A", 1, past(0))]).await;
    assert_eq!(body["head"], 0, "{body}");
    // Inside a batch, positions are consecutive.
    check_refusal(
        import(
            &app,
            &[envelope(1, "A", 1, past(0)), envelope(3, "A", 2, past(0))],
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "position_gap",
        "events[1].position",
        3,
    );
    // A stream's versions continue: after a gap, and against the store.
    check_refusal(
        import(
            &app,
            &[envelope(1, "A", 1, past(0)), envelope(2, "A", 3, past(0))],
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "version_gap",
        "events[1].version",
        2,
    );
    let refused = import(
        &app,
        &[envelope(1, "B", 1, past(0)), envelope(2, "A", 2, past(0))],
    )
    .await;
    assert_eq!(refused.1["current_version"], 0, "{}", refused.1);
    check_refusal(
        refused,
        StatusCode::CONFLICT,
        "wrong_version",
        "events[1].version",
        2,
    );
    assert_eq!(app.head().await, 0, "a refused import writes nothing");
    assert!(log(&app).await.is_empty());
}

#[tokio::test]
async fn an_import_whose_recorded_at_goes_backwards_or_into_the_future_is_refused() {
    let app = spawn_app().await;
    let (status, _) = import(&app, &[envelope(1, "A", 1, past(5000))]).await;
    assert_eq!(status, StatusCode::OK);
    // Before the store's last event.
    let refused = import(&app, &[envelope(2, "A", 2, past(4999))]).await;
    assert_eq!(
        refused.1["last_recorded_at"],
        rfc3339(past(5000)),
        "{}",
        refused.1
    );
    check_refusal(
        refused,
        StatusCode::CONFLICT,
        "recorded_at_backwards",
        "events[0].recorded_at",
        2,
    );
    // Backwards inside the batch.
    check_refusal(
        import(
            &app,
            &[
                envelope(2, "A", 2, past(6000)),
                envelope(3, "B", 1, past(5999)),
            ],
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "recorded_at_backwards",
        "events[1].recorded_at",
        3,
    );
    // Later than the store's clock: an import cannot stamp the future.
    let future = OffsetDateTime::now_utc() + time::Duration::days(365);
    let future = future.replace_nanosecond(0).expect("valid");
    check_refusal(
        import(
            &app,
            &[envelope(2, "A", 2, past(6000)), envelope(3, "B", 1, future)],
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "recorded_at_in_future",
        "events[1].recorded_at",
        3,
    );
    assert_eq!(app.head().await, 1, "a refused import writes nothing");

    // After an ordinary append (stamped now), an archive's old times no longer fit.
    app.append("A", json!(1), &[event("T", json!(1))]).await;
    check_refusal(
        import(&app, &[envelope(3, "A", 3, past(6000))]).await,
        StatusCode::CONFLICT,
        "recorded_at_backwards",
        "events[0].recorded_at",
        3,
    );
}

#[tokio::test]
async fn ordinary_appends_ignore_a_time_sent_by_the_client() {
    let app = spawn_app().await;
    let mut e = event("AccountOpened", json!(1));
    e["recorded_at"] = json!("2001-01-01T00:00:00Z");
    let (status, body) = app.append("A", json!(0), &[e]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let stored = &log(&app).await[0];
    let at = OffsetDateTime::parse(stored["recorded_at"].as_str().expect("time"), &Rfc3339)
        .expect("RFC 3339");
    assert!(
        at.year() > 2001,
        "the append took the client's time: {stored}"
    );
}

#[tokio::test]
async fn an_event_id_already_in_its_stream_is_refused_with_its_position() {
    let app = spawn_app().await;
    let first = envelope(1, "A", 1, past(0));
    import(&app, std::slice::from_ref(&first)).await;
    let mut again = envelope(3, "A", 2, past(1));
    again["event_id"] = first["event_id"].clone();
    check_refusal(
        import(&app, &[envelope(2, "B", 1, past(1)), again.clone()]).await,
        StatusCode::CONFLICT,
        "duplicate_event_id",
        "events[1].event_id",
        3,
    );
    // Twice in one batch is caught before storage.
    let mut twin = envelope(3, "B", 2, past(1));
    twin["event_id"] = again["event_id"].clone();
    twin["stream_id"] = json!("B");
    let mut once = envelope(2, "B", 1, past(1));
    once["event_id"] = again["event_id"].clone();
    check_refusal(
        import(&app, &[once, twin]).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "duplicate_event_id",
        "events[1].event_id",
        3,
    );
    assert_eq!(app.head().await, 1);
}

#[tokio::test]
async fn repeating_an_import_is_answered_as_stored_and_a_different_one_is_refused() {
    let app = spawn_app().await;
    let events = vec![envelope(1, "A", 1, past(0)), envelope(2, "A", 2, past(1))];
    let (_, first) = import(&app, &events).await;
    // A retry whose first answer was lost: same answer, nothing stored twice.
    let (status, again) = import(&app, &events).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again, first);
    assert_eq!(app.head().await, 2);
    // Other content at a stored position is refused.
    let mut changed = events.clone();
    changed[1]["data"] = json!({"amount": 999});
    check_refusal(
        import(&app, &changed).await,
        StatusCode::CONFLICT,
        "import_differs",
        "events[1].data",
        2,
    );
    let mut retimed = events.clone();
    retimed[0]["recorded_at"] = json!(rfc3339(past(0) - time::Duration::seconds(1)));
    check_refusal(
        import(&app, &retimed).await,
        StatusCode::CONFLICT,
        "import_differs",
        "events[0].recorded_at",
        1,
    );
    // Overlapping the head is not a continuation.
    let overlap = [envelope(2, "A", 2, past(1)), envelope(3, "A", 3, past(2))];
    check_refusal(
        import(&app, &overlap).await,
        StatusCode::CONFLICT,
        "position_not_next",
        "events[0].position",
        2,
    );
}

/// One malformed import: the status, code and the field the answer names.
async fn check_malformed(app: &TestApp, body: String, code: &str, field: &str) {
    let (status, answer) = app.send("POST", "/import", Some(body.clone())).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{body} -> {answer}"
    );
    assert_eq!(answer["error"], code, "{body} -> {answer}");
    assert_eq!(answer["field"], field, "{body} -> {answer}");
}

#[tokio::test]
async fn a_malformed_import_names_the_field() {
    let app = spawn_app().await;
    let with = |change: &dyn Fn(&mut Value)| {
        let mut e = envelope(1, "A", 1, past(0));
        change(&mut e);
        json!({ "events": [e] }).to_string()
    };
    let cases: Vec<(String, &str, &str)> = vec![
        (
            with(&|e| {
                e.as_object_mut().expect("object").remove("recorded_at");
            }),
            "invalid_field",
            "events[0].recorded_at",
        ),
        (
            with(&|e| e["position"] = json!("1")),
            "invalid_field",
            "events[0].position",
        ),
        (
            with(&|e| {
                e.as_object_mut().expect("object").remove("version");
            }),
            "invalid_field",
            "events[0].version",
        ),
        (
            with(&|e| e["recorded_at"] = json!("yesterday")),
            "invalid_recorded_at",
            "events[0].recorded_at",
        ),
        (
            with(&|e| e["recorded_at"] = json!("2026-01-05T09:00:00.000000001Z")),
            "invalid_recorded_at",
            "events[0].recorded_at",
        ),
        (
            with(&|e| e["event_id"] = json!("not-a-uuid")),
            "invalid_event_id",
            "events[0].event_id",
        ),
        (
            with(&|e| e["stream_id"] = json!("has space")),
            "invalid_stream_id",
            "events[0].stream_id",
        ),
        (
            with(&|e| e["position"] = json!(0)),
            "invalid_position",
            "events[0].position",
        ),
        (
            with(&|e| e["version"] = json!(0)),
            "invalid_version",
            "events[0].version",
        ),
        (
            with(&|e| e["metadata"] = json!([1])),
            "invalid_metadata",
            "events[0].metadata",
        ),
        (
            with(&|e| e["schema_version"] = json!(0)),
            "invalid_schema_version",
            "events[0].schema_version",
        ),
        (
            with(&|e| e["event_type"] = json!("")),
            "invalid_event_type",
            "events[0].event_type",
        ),
        (json!({"evnts": []}).to_string(), "invalid_field", "."),
    ];
    for (body, code, field) in cases {
        check_malformed(&app, body, code, field).await;
    }
    let (status, answer) = app.send("POST", "/import", Some("{".to_owned())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"], "malformed_json");
    let (status, answer) = app.post("/import", json!({"events": []})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["error"], "empty_batch");
    assert_eq!(app.head().await, 0);
}

#[tokio::test]
async fn imported_events_reach_subscribers_like_appended_ones() {
    let app = spawn_app().await;
    app.put("/subscriptions/restored", json!({})).await;
    let events = vec![
        envelope(1, "Account-1", 1, past(0)),
        envelope(2, "Account-2", 1, past(10)),
    ];
    // A long-poll waiting on an empty log wakes for the import.
    let poll = {
        let client = app.client.clone();
        let url = app.url("/events?after=0&wait_ms=30000");
        tokio::spawn(async move { crate::helpers::send(&client, &url, "GET", None).await })
    };
    // A live SSE subscriber receives the import as it commits.
    let sse = {
        let client = app.client.clone();
        let url = app.url("/subscriptions/restored/stream");
        tokio::spawn(async move { read_sse(&client, &url, 3, Duration::from_secs(30)).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, body) = import(&app, &events).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, polled) = poll.await.expect("poll task");
    assert_eq!(polled["head"], 2, "{polled}");
    assert_eq!(polled["events"][0], events[0]);

    let more = envelope(3, "Account-1", 2, past(20));
    import(&app, std::slice::from_ref(&more)).await;
    let delivered = sse.await.expect("sse task");
    assert_eq!(delivered, vec![events[0].clone(), events[1].clone(), more]);
}

#[tokio::test]
async fn an_import_survives_a_restart_and_the_log_continues_after_it() {
    let app = spawn_app().await;
    let first = vec![
        envelope(1, "Account-1", 1, past(0)),
        envelope(2, "Account-1", 2, past(10)),
    ];
    import(&app, &first).await;
    let app = app.restart().await;
    assert_eq!(
        log(&app).await,
        first,
        "the import was durable, times included"
    );
    // The restarted store knows the head, the stream versions and the last time.
    check_refusal(
        import(&app, &[envelope(3, "Account-1", 3, past(9))]).await,
        StatusCode::CONFLICT,
        "recorded_at_backwards",
        "events[0].recorded_at",
        3,
    );
    check_refusal(
        import(&app, &[envelope(3, "Account-1", 2, past(10))]).await,
        StatusCode::CONFLICT,
        "wrong_version",
        "events[0].version",
        3,
    );
    let next = envelope(3, "Account-1", 3, past(10));
    let (status, body) = import(&app, std::slice::from_ref(&next)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(log(&app).await[2], next);
}

#[tokio::test]
async fn imports_are_counted_and_bounded_like_appends() {
    let app = spawn_app_with(|c| c.max_batch = 2).await;
    let events = [
        envelope(1, "A", 1, past(0)),
        envelope(2, "A", 2, past(0)),
        envelope(3, "A", 3, past(0)),
    ];
    let (status, body) = import(&app, &events).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "batch_too_large");
    import(&app, &events[..2]).await;
    import(&app, &events[..2]).await; // a repeat: acknowledged, nothing written
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
            .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("{name} missing from:\n{text}"))
            .parse()
            .expect("a number")
    };
    assert_eq!(value("event_store_imports_total"), 2.0);
    assert_eq!(value("event_store_imported_events_total"), 2.0);
    assert_eq!(value("event_store_events_total"), 2.0);
    assert_eq!(value("event_store_head_position"), 2.0);
}

/// Imports consecutive batches of `BATCH` events into the process at `address` until a request
/// fails; returns every envelope sent (the last batch may not have been answered) and the last
/// acknowledged position.
async fn import_until_killed(address: String) -> (Vec<Value>, u64) {
    const BATCH: u64 = 20;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let mut sent = Vec::new();
    let mut versions = [0u64; 5];
    let mut acked = 0;
    loop {
        let batch: Vec<Value> = (1..=BATCH)
            .map(|k| {
                let position = acked + k;
                let s = (position % 5) as usize;
                versions[s] += 1;
                envelope(
                    position,
                    &format!("Account-{s}"),
                    versions[s],
                    past(position as i64),
                )
            })
            .collect();
        sent.extend(batch.iter().cloned());
        let answer = client
            .post(format!("{address}/import"))
            .json(&json!({ "events": batch }))
            .send()
            .await;
        let Ok(answer) = answer else { break };
        if answer.status() != StatusCode::OK {
            break;
        }
        let Ok(body) = answer.json::<Value>().await else {
            break;
        };
        acked = body["last_position"].as_u64().expect("last_position");
    }
    (sent, acked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_imports_loses_no_acknowledged_import_and_splits_none() {
    use crate::helpers::{free_port, start_process};

    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let process = start_process(dir.path(), port).await;
    let loader = tokio::spawn(import_until_killed(process.url()));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    process.signal(nix::sys::signal::Signal::SIGKILL);
    let (sent, acked) = loader.await.expect("loader");
    drop(process);
    assert!(acked >= 20, "too little load to prove anything: {acked}");

    let process = start_process(dir.path(), port).await;
    let client = reqwest::Client::new();
    let mut stored = Vec::new();
    loop {
        let (status, page) = crate::helpers::send(
            &client,
            &format!("{}/events?after={}&limit=5000", process.url(), stored.len()),
            "GET",
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let events = page["events"].as_array().expect("events");
        if events.is_empty() {
            break;
        }
        stored.extend(events.iter().cloned());
    }
    eprintln!(
        "{} imported events recovered after SIGKILL ({acked} acknowledged)",
        stored.len()
    );
    assert!(
        stored.len() as u64 >= acked,
        "an acknowledged import was lost"
    );
    assert_eq!(stored.len() % 20, 0, "an import was split by the crash");
    assert_eq!(
        stored[..],
        sent[..stored.len()],
        "the recovered log is exactly what was imported, times included"
    );
}
