//! The `/health` contract every service answers with.
//!
//! - Healthy: 200 and a JSON object whose `"status"` is `"ok"`; a service may add details
//!   beside it (the event store's head, the view's checkpoint).
//! - Unhealthy: 503 and `"status": "unavailable"`. The skeleton answers so itself, before the
//!   service's own handler, once a background worker has stopped:
//!   `{"status":"unavailable","stopped":[{"worker":"accounts-saga","reason":"it failed: ..."}]}`.

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::workers::Workers;

/// The path of the health check.
pub const PATH: &str = "/health";
/// The `"status"` of a healthy answer.
pub const OK: &str = "ok";
/// The `"status"` of an unhealthy answer.
pub const UNAVAILABLE: &str = "unavailable";

/// The handler of a service with nothing to add: 200 `{"status":"ok"}`.
pub async fn ok() -> Json<Value> {
    Json(json!({ "status": OK }))
}

/// Answers `GET /health` with 503 once a worker has stopped; passes everything else on.
pub(crate) async fn guard(
    State(workers): State<Workers>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() == Method::GET && request.uri().path() == PATH {
        let stopped = workers.stopped();
        if !stopped.is_empty() {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": UNAVAILABLE, "stopped": stopped })),
            )
                .into_response();
        }
    }
    next.run(request).await
}
