//! HTTP routes of the account view. Every query may name `min_version`: the view then waits up
//! to its bound for the document to reach that version, else answers 503 `view_out_of_date`.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use banking::{AccountId, CustomerId, TransferId};
use serde::{Deserialize, Serialize};
use serde_json::json;
use service_kit::{ApiQuery, AppError, MetricsText};
use tokio::time::Instant;

use crate::db::DbError;
use crate::AppState;

/// All routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/accounts/{id}", get(get_account))
        .route("/transfers/{id}", get(get_transfer))
        .route("/customers/{id}/accounts", get(customer_accounts))
        .route("/health", get(health))
        .route("/projection", get(projection))
        .route("/metrics", get(metrics))
        .fallback(service_kit::error::route_not_found)
        .with_state(state)
}

#[derive(Debug, Deserialize)]
struct VersionQuery {
    min_version: Option<u64>,
}

/// A document that has a version.
trait Versioned {
    fn version(&self) -> u64;
}

impl Versioned for crate::AccountDoc {
    fn version(&self) -> u64 {
        self.version
    }
}

impl Versioned for crate::TransferDoc {
    fn version(&self) -> u64 {
        self.version
    }
}

async fn get_account(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<VersionQuery>,
) -> Result<Response, AppError> {
    let id = AccountId::parse(&id).map_err(|e| bad_id("account_id", e))?;
    fresh(&state, query.min_version, "account", move |db| {
        db.account(&id)
    })
    .await
}

async fn get_transfer(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<VersionQuery>,
) -> Result<Response, AppError> {
    let id = TransferId::parse(&id).map_err(|e| bad_id("transfer_id", e))?;
    fresh(&state, query.min_version, "transfer", move |db| {
        db.transfer(&id)
    })
    .await
}

async fn customer_accounts(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = CustomerId::parse(&id).map_err(|e| bad_id("customer_id", e))?;
    let accounts = state
        .readers
        .with(move |db| db.customer_accounts(id.as_str()))
        .await
        .map_err(db_error)?;
    Ok(Json(json!({ "accounts": accounts })).into_response())
}

/// Reads a document; with `min_version`, waits (bounded) until it reaches that version.
async fn fresh<T, F>(
    state: &AppState,
    min_version: Option<u64>,
    what: &'static str,
    read: F,
) -> Result<Response, AppError>
where
    T: Versioned + Serialize + Send + 'static,
    F: Fn(&crate::ViewDb) -> Result<Option<T>, DbError> + Send + Sync + Clone + 'static,
{
    let deadline = Instant::now() + state.max_wait;
    let mut checkpoint = state.checkpoint.clone();
    loop {
        // Mark the current checkpoint as seen before reading, so no commit is missed.
        checkpoint.borrow_and_update();
        let doc = state.readers.with(read.clone()).await.map_err(db_error)?;
        let version = doc.as_ref().map_or(0, Versioned::version);
        match (doc, min_version) {
            (Some(doc), None) => return Ok(Json(doc).into_response()),
            (Some(doc), Some(min)) if version >= min => return Ok(Json(doc).into_response()),
            (None, None) => {
                return Err(AppError::not_found(
                    format!("{what}_not_found"),
                    format!(
                    "no {what} with this id in the view; if it was just created, pass min_version"
                ),
                ))
            }
            _ => {}
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero()
            || tokio::time::timeout(left, checkpoint.changed())
                .await
                .is_err()
        {
            state.metrics.out_of_date.inc();
            return Ok(out_of_date(version));
        }
    }
}

fn out_of_date(view_version: u64) -> Response {
    let retry_after = Duration::from_secs(1);
    let body = json!({
        "error": "view_out_of_date",
        "message": "the view has not caught up with the requested version yet; retry after the Retry-After seconds",
        "view_version": view_version,
    });
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, retry_after.as_secs().to_string())],
        Json(body),
    )
        .into_response()
}

async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let projection = state.projection();
    Json(json!({
        "status": service_kit::health::OK,
        "checkpoint": projection.position,
        "projection": projection,
    }))
}

/// `{"version", "position", "head", "lag"}`: how far the view has rebuilt, for the deployer's
/// blue/green cut-over.
async fn projection(State(state): State<AppState>) -> Json<crate::ProjectionStatus> {
    Json(state.projection())
}

async fn metrics(State(state): State<AppState>) -> String {
    let m = &state.metrics;
    let checkpoint = *state.checkpoint.borrow();
    let head = u64::try_from(m.head.get()).unwrap_or(0);
    let mut text = MetricsText::new();
    text.gauge(
        "account_view_checkpoint",
        "Global position of the last event applied.",
        checkpoint as f64,
    )
    .gauge(
        "account_view_lag_events",
        "Events in the store's log not yet applied to the view.",
        head.saturating_sub(checkpoint) as f64,
    )
    .counter(
        "account_view_events_applied_total",
        "Events read from the log and applied.",
        m.events_applied.get(),
    )
    .counter(
        "account_view_batches_total",
        "Transactions committed.",
        m.batches.get(),
    )
    .counter(
        "account_view_events_skipped_total",
        "Events the view could not read and left out.",
        m.events_skipped.get(),
    )
    .counter(
        "account_view_out_of_date_total",
        "Queries answered 503 view_out_of_date.",
        m.out_of_date.get(),
    );
    text.finish()
}

fn bad_id(field: &'static str, error: banking::DomainError) -> AppError {
    AppError::bad_request("invalid_field", error.to_string()).with_field("field", field)
}

fn db_error(error: DbError) -> AppError {
    AppError::internal(error)
}
