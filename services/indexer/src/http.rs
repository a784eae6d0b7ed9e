//! The HTTP interface: `GET /search`, `/health` and `/metrics`.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use service_kit::error::route_not_found;
use service_kit::{ApiQuery, AppError, Counter, MetricsText};

use crate::entry::Kind;
use crate::feed::FeedMetrics;
use crate::index::{QueryError, SearchIndex, SearchResults};

/// Results per search when no `limit` is given.
pub const DEFAULT_LIMIT: usize = 20;

/// What the handlers read; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    index: SearchIndex,
    feed: FeedMetrics,
    searches: Counter,
    bad_queries: Counter,
}

impl AppState {
    pub fn new(index: SearchIndex, feed: FeedMetrics) -> Self {
        Self {
            inner: Arc::new(Inner {
                index,
                feed,
                searches: Counter::default(),
                bad_queries: Counter::default(),
            }),
        }
    }
}

/// All routes of the indexer.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/search", get(search))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .fallback(route_not_found)
        .with_state(state)
}

/// Positions the index is behind the store's head.
pub fn lag(feed: &FeedMetrics) -> u64 {
    u64::try_from(
        feed.store_head
            .get()
            .saturating_sub(feed.indexed_position.get()),
    )
    .unwrap_or(0)
}

#[derive(Debug, Deserialize)]
struct SearchParams {
    q: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    limit: Option<usize>,
}

/// `GET /search?q=...&type=account|transfer&limit=N`: ranked results, best first.
async fn search(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> Result<Json<Value>, AppError> {
    let inner = &state.inner;
    inner.searches.inc();
    let refuse = |error: QueryError| {
        inner.bad_queries.inc();
        let code = match error {
            QueryError::Empty => "missing_query",
            QueryError::TooLong { .. } => "query_too_long",
            QueryError::Limit { .. } => "invalid_limit",
            QueryError::Syntax { .. } => "invalid_query_syntax",
        };
        AppError::bad_request(code, error.to_string())
    };
    let kind = match params.kind.as_deref() {
        None | Some("") => None,
        Some(raw) => Some(Kind::parse(raw).ok_or_else(|| {
            inner.bad_queries.inc();
            AppError::bad_request(
                "invalid_type",
                format!("type must be account or transfer, got {raw:?}"),
            )
        })?),
    };
    let query = params.q.unwrap_or_default();
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    let index = inner.index.clone();
    let outcome = tokio::task::spawn_blocking(move || index.search(&query, kind, limit))
        .await
        .map_err(AppError::internal)?
        .map_err(AppError::internal)?;
    let SearchResults { total, results } = outcome.map_err(refuse)?;
    Ok(Json(json!({
        "total": total,
        "results": results,
        "indexed_position": inner.feed.indexed_position.get(),
    })))
}

/// Alive and serving; the details say how far behind the index is. An event store outage
/// does not make the indexer unhealthy (searches still work on what is indexed).
async fn health(State(state): State<AppState>) -> Json<Value> {
    let feed = &state.inner.feed;
    Json(json!({
        "status": "ok",
        "details": {
            "indexed_position": feed.indexed_position.get(),
            "store_head": feed.store_head.get(),
            "lag": lag(feed),
            "store_reachable": feed.store_reachable.get() == 1,
            "documents": state.inner.index.documents(),
        }
    }))
}

async fn metrics(State(state): State<AppState>) -> MetricsText {
    let inner = &state.inner;
    let feed = &inner.feed;
    let mut text = MetricsText::new();
    text.gauge(
        "indexer_lag_events",
        "Positions the index is behind the event store's head.",
        lag(feed) as f64,
    )
    .gauge(
        "indexer_indexed_position",
        "The global position the committed index reflects.",
        feed.indexed_position.get() as f64,
    )
    .gauge(
        "indexer_store_head",
        "The event store's newest position at the last read.",
        feed.store_head.get() as f64,
    )
    .gauge(
        "indexer_store_reachable",
        "1 when the last read from the event store succeeded.",
        feed.store_reachable.get() as f64,
    )
    .gauge(
        "indexer_documents",
        "Accounts and transfers in the committed index.",
        inner.index.documents() as f64,
    )
    .counter(
        "indexer_events_indexed_total",
        "Events applied to the index.",
        feed.events_indexed.get(),
    )
    .counter(
        "indexer_commits_total",
        "Index commits (each carries the checkpoint).",
        feed.commits.get(),
    )
    .counter(
        "indexer_store_errors_total",
        "Reads from the event store that failed and were retried.",
        feed.store_errors.get(),
    )
    .counter(
        "indexer_searches_total",
        "Search requests.",
        inner.searches.get(),
    )
    .counter(
        "indexer_bad_queries_total",
        "Search requests refused with a 4xx.",
        inner.bad_queries.get(),
    );
    text
}
