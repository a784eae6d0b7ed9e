//! The HTTP interface: `router(state)` maps the wire contract (see README.md) onto a
//! [`Storage`]. Handlers parse raw bodies into checked domain types and map storage errors to
//! JSON error answers.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use service_kit::error::route_not_found;
use service_kit::{ApiJson, ApiQuery, AppError, Counter, Gauge};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::domain::{
    format_time, AppendBatch, AppendBody, AppendOutcome, EventFilter, EventTypeCount, GroupName,
    ImportBatch, ImportBody, ImportOutcome, InvalidImport, InvalidInput, RecordedEvent, Snapshot,
    StreamId, Subscription, SubscriptionSpec,
};
use crate::storage::{
    AsOf, GlobalQuery, GlobalSlice, ImportConflict, Storage, StorageError, StreamQuery,
};

/// Events per read when a client gives no `limit`.
pub const DEFAULT_READ_LIMIT: usize = 1000;
/// Most event types in one filter.
pub const MAX_FILTER_TYPES: usize = 100;
/// Events fetched per refill of a server-sent-events stream.
const SSE_BATCH: usize = 512;

mod feed;
mod operations;

use self::feed::Feed;
use self::operations::{health, metrics};

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    storage: Arc<dyn Storage>,
    limits: Limits,
    metrics: Metrics,
    shutdown: CancellationToken,
}

/// Request limits taken from [`Config`].
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_batch: usize,
    pub max_read_limit: usize,
    pub max_wait: Duration,
    pub sse_keepalive: Duration,
}

impl Limits {
    pub fn from_config(config: &Config) -> Self {
        Self {
            max_body_bytes: config.max_body_bytes,
            max_batch: config.max_batch,
            max_read_limit: config.max_read_limit.max(1),
            max_wait: Duration::from_millis(config.max_wait_ms),
            sse_keepalive: Duration::from_secs(15),
        }
    }
}

/// Counters served on `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    pub appends: Counter,
    pub events: Counter,
    pub bytes: Counter,
    pub duplicate_appends: Counter,
    pub wrong_expected_version: Counter,
    pub imports: Counter,
    pub imported_events: Counter,
    pub subscribers: Gauge,
}

impl AppState {
    /// `shutdown` is cancelled when the service stops: long-polls answer and event streams end.
    pub fn new(storage: Arc<dyn Storage>, limits: Limits, shutdown: CancellationToken) -> Self {
        Self {
            inner: Arc::new(Inner {
                storage,
                limits,
                metrics: Metrics::default(),
                shutdown,
            }),
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    fn storage(&self) -> &dyn Storage {
        self.inner.storage.as_ref()
    }
}

/// All routes of the event store.
pub fn router(state: AppState) -> Router {
    let body_limit = state.inner.limits.max_body_bytes;
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/streams/{stream_id}/events", post(append).get(read_stream))
        .route(
            "/streams/{stream_id}/snapshot",
            put(put_snapshot).get(get_snapshot),
        )
        .route("/events", get(read_log))
        .route("/import", post(import))
        .route("/event-types", get(event_types))
        .route("/subscriptions", get(list_subscriptions))
        .route(
            "/subscriptions/{group}",
            put(put_subscription).get(get_subscription),
        )
        .route("/subscriptions/{group}/events", get(poll_subscription))
        .route("/subscriptions/{group}/stream", get(stream_subscription))
        .route("/subscriptions/{group}/ack", post(ack_subscription))
        .fallback(route_not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

// ---------------------------------------------------------------------------------------------
// Streams

async fn append(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    ApiJson(body): ApiJson<AppendBody>,
) -> Result<Json<AppendOutcome>, AppError> {
    let stream_id = stream_id(path)?;
    let batch =
        AppendBatch::parse(stream_id, body, state.inner.limits.max_batch).map_err(invalid)?;
    let events = batch.events.len() as u64;
    let bytes = batch.payload_bytes() as u64;
    let metrics = state.metrics();
    match state.storage().append(batch).await {
        Ok(outcome) => {
            metrics.appends.inc();
            if outcome.duplicate {
                metrics.duplicate_appends.inc();
            } else {
                metrics.events.add(events);
                metrics.bytes.add(bytes);
            }
            Ok(Json(outcome))
        }
        Err(error) => {
            if matches!(error, StorageError::WrongExpectedVersion { .. }) {
                metrics.wrong_expected_version.inc();
            }
            Err(storage_error(error))
        }
    }
}

/// `POST /import`: events with their original positions, versions and `recorded_at`, accepted
/// only if they continue the log exactly (for restoring an archive). Ordinary appends never
/// take a time from the client.
async fn import(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ImportBody>,
) -> Result<Json<ImportOutcome>, AppError> {
    let batch = ImportBatch::parse(body, state.inner.limits.max_batch).map_err(invalid_import)?;
    let bytes = batch.payload_bytes() as u64;
    let outcome = state.storage().import(batch).await.map_err(storage_error)?;
    let metrics = state.metrics();
    metrics.imports.inc();
    if !outcome.duplicate {
        metrics.imported_events.add(outcome.events);
        metrics.events.add(outcome.events);
        metrics.bytes.add(bytes);
    }
    Ok(Json(outcome))
}

#[derive(Debug, Deserialize)]
struct StreamParams {
    from_version: Option<u64>,
    limit: Option<usize>,
    up_to_version: Option<u64>,
    as_of: Option<String>,
}

#[derive(Serialize)]
struct StreamAnswer {
    stream_id: StreamId,
    version: u64,
    events: Vec<RecordedEvent>,
}

async fn read_stream(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    ApiQuery(params): ApiQuery<StreamParams>,
) -> Result<Json<StreamAnswer>, AppError> {
    let stream_id = stream_id(path)?;
    let as_of = match (params.up_to_version, params.as_of) {
        (Some(_), Some(_)) => {
            return Err(AppError::bad_request(
                "conflicting_parameters",
                "give either up_to_version or as_of, not both",
            ))
        }
        (Some(v), None) => AsOf::Version(v),
        (None, Some(t)) => AsOf::Time(OffsetDateTime::parse(&t, &Rfc3339).map_err(|e| {
            AppError::bad_request(
                "invalid_query",
                format!("as_of {t:?} is not an RFC 3339 time ({e}); use e.g. 2026-11-26T15:30:00Z"),
            )
            .with_field("parameter", "as_of")
        })?),
        (None, None) => AsOf::Now,
    };
    let query = StreamQuery {
        stream_id: stream_id.clone(),
        from_version: params.from_version.unwrap_or(1).max(1),
        limit: read_limit(&state, params.limit),
        as_of,
    };
    let slice = state
        .storage()
        .read_stream(query)
        .await
        .map_err(storage_error)?;
    Ok(Json(StreamAnswer {
        stream_id,
        version: slice.version,
        events: slice.events,
    }))
}

async fn put_snapshot(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    ApiJson(snapshot): ApiJson<Snapshot>,
) -> Result<Json<serde_json::Value>, AppError> {
    let stream_id = stream_id(path)?;
    let version = snapshot.version;
    state
        .storage()
        .put_snapshot(stream_id, snapshot)
        .await
        .map_err(storage_error)?;
    Ok(Json(serde_json::json!({ "version": version })))
}

async fn get_snapshot(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Snapshot>, AppError> {
    let stream_id = stream_id(path)?;
    match state
        .storage()
        .get_snapshot(stream_id.clone())
        .await
        .map_err(storage_error)?
    {
        Some(snapshot) => Ok(Json(snapshot)),
        None => Err(AppError::not_found(
            "snapshot_not_found",
            format!("stream {stream_id} has no snapshot; load it from its events"),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// The global log

#[derive(Debug, Deserialize)]
struct LogParams {
    after: Option<u64>,
    limit: Option<usize>,
    wait_ms: Option<u64>,
    event_types: Option<String>,
    stream_prefix: Option<String>,
}

#[derive(Serialize)]
struct LogAnswer {
    events: Vec<RecordedEvent>,
    head: u64,
}

async fn read_log(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<LogParams>,
) -> Result<Json<LogAnswer>, AppError> {
    let filter = filter(
        params.event_types.as_deref(),
        params.stream_prefix.as_deref(),
    )?;
    let limit = read_limit(&state, params.limit);
    let wait = wait(&state, params.wait_ms);
    let (slice, head) = poll_log(&state, params.after.unwrap_or(0), filter, limit, wait).await?;
    Ok(Json(LogAnswer {
        events: slice.events,
        head,
    }))
}

/// Reads the log after `after`; when nothing matches and `wait` is non-zero, waits for commits
/// until something matches or the time is up. Returns the slice and the head it read up to.
async fn poll_log(
    state: &AppState,
    after: u64,
    filter: EventFilter,
    limit: usize,
    wait: Duration,
) -> Result<(GlobalSlice, u64), AppError> {
    let mut head_rx = state.storage().head();
    let deadline = Instant::now() + wait;
    let mut cursor = after;
    loop {
        // Only positions up to the published head are read: they are all committed.
        let head = *head_rx.borrow_and_update();
        let slice = state
            .storage()
            .read_all(GlobalQuery {
                after: cursor,
                up_to: head,
                limit,
                filter: filter.clone(),
            })
            .await
            .map_err(storage_error)?;
        if !slice.events.is_empty() || wait.is_zero() {
            return Ok((slice, head));
        }
        cursor = cursor.max(slice.scanned_to);
        let woke = tokio::select! {
            changed = tokio::time::timeout_at(deadline, head_rx.changed()) => matches!(changed, Ok(Ok(()))),
            () = state.inner.shutdown.cancelled() => false,
        };
        if !woke {
            // Nothing committed since `head` was read, so everything up to it was scanned.
            return Ok((slice, head));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Subscriptions (consumer groups)

async fn put_subscription(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    ApiJson(spec): ApiJson<SubscriptionSpec>,
) -> Result<Json<Subscription>, AppError> {
    let group = group_name(path)?;
    if spec
        .event_types
        .as_ref()
        .is_some_and(|t| t.len() > MAX_FILTER_TYPES)
    {
        return Err(AppError::unprocessable(
            "too_many_event_types",
            format!("a filter names at most {MAX_FILTER_TYPES} event types"),
        ));
    }
    let sub = state
        .storage()
        .put_subscription(group, spec)
        .await
        .map_err(storage_error)?;
    Ok(Json(sub))
}

#[derive(Serialize)]
struct SubscriptionInfo {
    #[serde(flatten)]
    subscription: Subscription,
    head: u64,
    lag: u64,
}

async fn get_subscription(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<SubscriptionInfo>, AppError> {
    let group = group_name(path)?;
    let subscription = load_group(&state, group).await?;
    let head = *state.storage().head().borrow();
    Ok(Json(SubscriptionInfo {
        lag: head.saturating_sub(subscription.checkpoint),
        subscription,
        head,
    }))
}

// ---------------------------------------------------------------------------------------------
// Event types

/// `GET /event-types`: the event types and schema versions the store holds, with their counts.
async fn event_types(State(state): State<AppState>) -> Result<Json<Vec<EventTypeCount>>, AppError> {
    let counts = state.storage().event_types().await.map_err(storage_error)?;
    Ok(Json(counts))
}

async fn list_subscriptions(
    State(state): State<AppState>,
) -> Result<Json<serde_json::Value>, AppError> {
    let subs = state
        .storage()
        .list_subscriptions()
        .await
        .map_err(storage_error)?;
    Ok(Json(serde_json::json!({ "subscriptions": subs })))
}

#[derive(Debug, Deserialize)]
struct PollParams {
    after: Option<u64>,
    limit: Option<usize>,
    wait_ms: Option<u64>,
}

#[derive(Serialize)]
struct PollAnswer {
    group: String,
    checkpoint: u64,
    events: Vec<RecordedEvent>,
    head: u64,
}

async fn poll_subscription(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    ApiQuery(params): ApiQuery<PollParams>,
) -> Result<Json<PollAnswer>, AppError> {
    let group = group_name(path)?;
    let sub = load_group(&state, group).await?;
    let _subscriber = state.metrics().subscribers.track();
    let after = params.after.unwrap_or(sub.checkpoint);
    let limit = read_limit(&state, params.limit);
    let wait = wait(&state, params.wait_ms);
    let (slice, head) = poll_log(&state, after, sub.filter.clone(), limit, wait).await?;
    Ok(Json(PollAnswer {
        group: sub.group,
        checkpoint: sub.checkpoint,
        events: slice.events,
        head,
    }))
}

#[derive(Debug, Deserialize)]
struct AckBody {
    position: u64,
}

async fn ack_subscription(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    ApiJson(body): ApiJson<AckBody>,
) -> Result<Json<Subscription>, AppError> {
    let group = group_name(path)?;
    let sub = state
        .storage()
        .ack(group, body.position)
        .await
        .map_err(storage_error)?;
    Ok(Json(sub))
}

/// Server-sent events: every matching event after the group's checkpoint, then new ones as they
/// commit. Each SSE message has `event: event`, `id: <position>` and the envelope as `data`.
async fn stream_subscription(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, AppError> {
    let group = group_name(path)?;
    let sub = load_group(&state, group).await?;
    let keepalive = state.inner.limits.sse_keepalive;
    let feed = Feed {
        // Subscribe before the first read so no commit falls between history and live events.
        live: state.storage().live(),
        head_rx: state.storage().head(),
        _subscriber: state.metrics().subscribers.track(),
        cursor: sub.checkpoint,
        filter: sub.filter,
        buffer: VecDeque::new(),
        state,
    };
    Ok(Sse::new(feed.into_stream())
        .keep_alive(KeepAlive::new().interval(keepalive))
        .into_response())
}

async fn load_group(state: &AppState, group: GroupName) -> Result<Subscription, AppError> {
    state
        .storage()
        .get_subscription(group.clone())
        .await
        .map_err(storage_error)?
        .ok_or_else(|| storage_error(StorageError::UnknownGroup(group.as_str().to_owned())))
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn stream_id(path: Result<Path<String>, PathRejection>) -> Result<StreamId, AppError> {
    let Path(raw) = path.map_err(|e| {
        AppError::bad_request(
            "invalid_stream_id",
            format!("the stream id in the path is unreadable: {}", e.body_text()),
        )
    })?;
    StreamId::parse(raw).map_err(invalid)
}

fn group_name(path: Result<Path<String>, PathRejection>) -> Result<GroupName, AppError> {
    let Path(raw) = path.map_err(|e| {
        AppError::bad_request(
            "invalid_name",
            format!(
                "the group name in the path is unreadable: {}",
                e.body_text()
            ),
        )
    })?;
    GroupName::parse(raw).map_err(invalid)
}

fn filter(event_types: Option<&str>, stream_prefix: Option<&str>) -> Result<EventFilter, AppError> {
    let filter = EventFilter::from_query(event_types, stream_prefix);
    if filter
        .event_types
        .as_ref()
        .is_some_and(|t| t.len() > MAX_FILTER_TYPES)
    {
        return Err(AppError::bad_request(
            "too_many_event_types",
            format!("a filter names at most {MAX_FILTER_TYPES} event types"),
        ));
    }
    Ok(filter)
}

fn read_limit(state: &AppState, asked: Option<usize>) -> usize {
    asked
        .unwrap_or(DEFAULT_READ_LIMIT)
        .min(state.inner.limits.max_read_limit)
}

fn wait(state: &AppState, wait_ms: Option<u64>) -> Duration {
    Duration::from_millis(wait_ms.unwrap_or(0)).min(state.inner.limits.max_wait)
}

fn invalid(error: InvalidInput) -> AppError {
    let status = match error {
        InvalidInput::Name { .. } => StatusCode::BAD_REQUEST,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    AppError::new(status, error.code(), error.to_string())
}

fn invalid_import(error: InvalidImport) -> AppError {
    match &error {
        InvalidImport::Batch(e) => invalid(e.clone()),
        InvalidImport::Event {
            index,
            position,
            field,
            ..
        } => {
            let field = format!("events[{index}].{field}");
            let position = *position;
            AppError::unprocessable(error.code(), error.to_string())
                .with_field("field", field)
                .with_field("position", position)
        }
    }
}

fn import_conflict(conflict: ImportConflict) -> AppError {
    use crate::storage::ImportConflict as C;
    let status = match conflict {
        C::Future { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::CONFLICT,
    };
    let answer = AppError::new(status, conflict.code(), conflict.to_string())
        .with_field("field", conflict.field())
        .with_field("position", conflict.position());
    match &conflict {
        C::NotNext { head, .. } => answer.with_field("head", head),
        C::Version { current, .. } => answer.with_field("current_version", current),
        C::Backwards { last, .. } => answer.with_field("last_recorded_at", format_time(*last)),
        _ => answer,
    }
}

fn storage_error(error: StorageError) -> AppError {
    match error {
        StorageError::Import(conflict) => import_conflict(conflict),
        StorageError::WrongExpectedVersion { current } => AppError::conflict(
            "wrong_expected_version",
            format!("{error}; read the stream and retry with expected_version {current}"),
        )
        .with_field("current_version", current),
        StorageError::PartialDuplicate => {
            AppError::conflict("partial_duplicate_batch", error.to_string())
        }
        StorageError::UnknownGroup(_) => {
            AppError::not_found("subscription_not_found", error.to_string())
        }
        StorageError::PositionBeyondHead { head, .. } => {
            AppError::bad_request("position_beyond_head", error.to_string())
                .with_field("head", head)
        }
        StorageError::Closed => AppError::unavailable("shutting_down", error.to_string()),
        StorageError::Backend { .. } => AppError::internal(error),
    }
}
