//! Operations: `/health` (storage answers within 2 s) and `/metrics` (Prometheus text).

use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use service_kit::{AppError, MetricsText};

use super::{storage_error, AppState};

pub(super) async fn health(State(state): State<AppState>) -> Response {
    let ping = tokio::time::timeout(Duration::from_secs(2), state.storage().ping()).await;
    match ping {
        Ok(Ok(())) => {
            let head = *state.storage().head().borrow();
            Json(serde_json::json!({ "status": "ok", "head": head })).into_response()
        }
        Ok(Err(error)) => {
            tracing::warn!(%error, "health check: storage does not answer");
            unavailable().into_response()
        }
        Err(_) => {
            tracing::warn!("health check: storage did not answer within 2s");
            unavailable().into_response()
        }
    }
}

fn unavailable() -> AppError {
    AppError::unavailable(
        "storage_unavailable",
        "the storage does not answer; check the data directory and the logs",
    )
}

pub(super) async fn metrics(State(state): State<AppState>) -> Result<MetricsText, AppError> {
    let head = *state.storage().head().borrow();
    let subs = state
        .storage()
        .list_subscriptions()
        .await
        .map_err(storage_error)?;
    let m = state.metrics();
    let mut text = MetricsText::new();
    text.counter(
        "event_store_appends_total",
        "Acknowledged append requests, including idempotent repeats.",
        m.appends.get(),
    )
    .counter(
        "event_store_events_total",
        "Events written.",
        m.events.get(),
    )
    .counter(
        "event_store_bytes_total",
        "Bytes of event data and metadata written.",
        m.bytes.get(),
    )
    .counter(
        "event_store_duplicate_appends_total",
        "Appends acknowledged without writing because every event was already stored.",
        m.duplicate_appends.get(),
    )
    .counter(
        "event_store_wrong_expected_version_total",
        "Appends rejected with wrong_expected_version.",
        m.wrong_expected_version.get(),
    )
    .counter(
        "event_store_imports_total",
        "Acknowledged import requests (POST /import), including idempotent repeats.",
        m.imports.get(),
    )
    .counter(
        "event_store_imported_events_total",
        "Events written by imports (also counted in event_store_events_total).",
        m.imported_events.get(),
    )
    .counter(
        "event_store_commits_total",
        "Write groups made durable (one fsync each: a journal record, or a SQLite commit for consumer groups and snapshots); appends_total / commits_total is the group-commit factor.",
        state.storage().commits(),
    )
    .gauge(
        "event_store_subscribers",
        "Connected subscribers (event streams and waiting long-polls).",
        m.subscribers.get() as f64,
    )
    .gauge(
        "event_store_head_position",
        "Global position of the last committed event.",
        head as f64,
    )
    .labelled(
        "event_store_subscription_lag_events",
        "gauge",
        "Events between a consumer group's checkpoint and the head.",
        subs.iter().map(|s| {
            (
                [("group", s.group.as_str())],
                head.saturating_sub(s.checkpoint) as f64,
            )
        }),
    )
    .labelled(
        "event_store_subscription_checkpoint",
        "gauge",
        "Last acknowledged position of a consumer group.",
        subs.iter()
            .map(|s| ([("group", s.group.as_str())], s.checkpoint as f64)),
    );
    Ok(text)
}
