//! The HTTP interface: `/health` (with the archive's lag in its details) and `/metrics`.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use service_kit::error::route_not_found;
use service_kit::MetricsText;

use crate::writer::Metrics;

/// What the handlers read.
#[derive(Debug, Clone)]
pub struct AppState {
    pub metrics: Metrics,
    /// Where the archive is, shown in `/health`.
    pub archive: String,
}

/// All routes of the archiver.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .fallback(route_not_found)
        .with_state(state)
}

/// Positions the archive is behind the store's head (0 when the head is unknown).
pub fn lag(metrics: &Metrics) -> u64 {
    let head = metrics.store_head.get();
    let archived = metrics.archived_position.get();
    u64::try_from(head.saturating_sub(archived)).unwrap_or(0)
}

/// The process is alive and serving; the details say how far behind the archive is. A store
/// outage does not make the archiver unhealthy (restarting would not help): it shows as
/// `store_reachable: false` and a growing lag.
async fn health(State(state): State<AppState>) -> Json<Value> {
    let m = &state.metrics;
    Json(json!({
        "status": "ok",
        "details": {
            "archive": state.archive,
            "archived_position": m.archived_position.get(),
            "store_head": m.store_head.get(),
            "lag": lag(m),
            "read_position": m.read_position.get(),
            "buffered_events": m.buffered_events.get(),
            "store_reachable": m.store_reachable.get() == 1,
            "segments_written": m.segments_written.get(),
        }
    }))
}

async fn metrics(State(state): State<AppState>) -> MetricsText {
    let m = &state.metrics;
    let mut text = MetricsText::new();
    text.gauge(
        "archiver_lag_events",
        "Positions the archive is behind the event store's head.",
        lag(m) as f64,
    )
    .gauge(
        "archiver_archived_position",
        "The last global position committed to the archive.",
        m.archived_position.get() as f64,
    )
    .gauge(
        "archiver_store_head",
        "The event store's newest position at the last read.",
        m.store_head.get() as f64,
    )
    .gauge(
        "archiver_read_position",
        "The last position read into the open segment (or committed).",
        m.read_position.get() as f64,
    )
    .gauge(
        "archiver_buffered_events",
        "Events read but not yet in a committed segment.",
        m.buffered_events.get() as f64,
    )
    .gauge(
        "archiver_store_reachable",
        "1 when the last request to the event store succeeded.",
        m.store_reachable.get() as f64,
    )
    .counter(
        "archiver_segments_written_total",
        "Segments committed to the archive.",
        m.segments_written.get(),
    )
    .counter(
        "archiver_events_archived_total",
        "Events committed to the archive.",
        m.events_archived.get(),
    )
    .counter(
        "archiver_bytes_written_total",
        "Compressed segment bytes written.",
        m.bytes_written.get(),
    )
    .counter(
        "archiver_flush_failures_total",
        "Segment flushes that failed and were retried.",
        m.flush_failures.get(),
    )
    .counter(
        "archiver_store_errors_total",
        "Reads from the event store that failed and were retried.",
        m.store_errors.get(),
    )
    .counter(
        "archiver_orphan_segments_removed_total",
        "Unlisted segments removed at start (left by a crash before a manifest write).",
        m.orphans_removed.get(),
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get_text(state: AppState, uri: &str) -> (u16, String) {
        let response = router(state)
            .oneshot(Request::get(uri).body(Body::empty()).expect("request"))
            .await
            .expect("router answers");
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn lag_shows_in_health_and_metrics() {
        let metrics = Metrics::default();
        metrics.store_head.set(120);
        metrics.archived_position.set(100);
        metrics.store_reachable.set(1);
        let state = AppState {
            metrics,
            archive: "/data/archive".into(),
        };
        let (status, body) = get_text(state.clone(), "/health").await;
        assert_eq!(status, 200);
        let health: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(health["details"]["lag"], 20);
        assert_eq!(health["details"]["store_reachable"], true);
        let (status, body) = get_text(state.clone(), "/metrics").await;
        assert_eq!(status, 200);
        assert!(body.contains("\narchiver_lag_events 20\n"), "{body}");
        let (status, _) = get_text(state, "/nope").await;
        assert_eq!(status, 404);
    }
}
