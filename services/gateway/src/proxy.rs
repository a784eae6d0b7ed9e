//! Forwarding to the upstream services: correlation id, per-attempt timeout, and bounded retries
//! for idempotent methods, and for any method when no connection could be made.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use banking::{AccountId, CustomerId, TransferId};
use service_kit::AppError;

use crate::AppState;

/// The header that carries the correlation id through the fleet.
pub const CORRELATION_HEADER: &str = "x-correlation-id";

/// One upstream service and its client settings.
#[derive(Debug)]
pub struct Upstream {
    name: &'static str,
    base: String,
    client: reqwest::Client,
    timeout: Duration,
    retries: u32,
    requests: AtomicU64,
    retried: AtomicU64,
    failures: AtomicU64,
}

/// Counters of one upstream, for `/metrics`.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamStats {
    pub requests: u64,
    pub retries: u64,
    pub failures: u64,
}

impl Upstream {
    pub fn new(
        name: &'static str,
        base: &str,
        client: reqwest::Client,
        timeout: Duration,
        retries: u32,
    ) -> Self {
        Self {
            name,
            base: base.trim_end_matches('/').to_owned(),
            client,
            timeout,
            retries,
            requests: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn stats(&self) -> UpstreamStats {
        UpstreamStats {
            requests: self.requests.load(Ordering::Relaxed),
            retries: self.retried.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
        }
    }

    /// Probes the upstream's `/health`; the error says why it is not up.
    pub async fn health(&self) -> Result<(), String> {
        let url = format!("{}/health", self.base);
        match self.client.get(&url).timeout(self.timeout).send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!("GET {url} answered {}", r.status())),
            Err(e) => Err(format!("GET {url} failed: {}", error_chain(&e))),
        }
    }

    /// Sends the request and relays the answer. GET and DELETE are retried after a connection
    /// failure or timeout; POST only when the connection could not be made, since repeating a
    /// POST the upstream may have received could repeat its effect.
    pub async fn forward(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &HeaderMap,
        body: Option<Bytes>,
    ) -> Response {
        let correlation = correlation_id(headers);
        match self
            .try_forward(method, path_and_query, &correlation, body)
            .await
        {
            Ok(response) => response,
            Err(error) => {
                let app_error = if error.is_timeout() {
                    AppError::new(
                        StatusCode::GATEWAY_TIMEOUT,
                        "upstream_timeout",
                        format!(
                            "the {} service did not answer in time; try again",
                            self.name
                        ),
                    )
                } else {
                    AppError::new(
                        StatusCode::BAD_GATEWAY,
                        "upstream_unavailable",
                        format!(
                            "the {} service cannot be reached; try again later",
                            self.name
                        ),
                    )
                };
                with_correlation(
                    app_error.with_field("upstream", self.name).into_response(),
                    &correlation,
                )
            }
        }
    }

    /// Like [`Upstream::forward`], but hands back the last transport error (after the retries)
    /// so the caller can shape the answer.
    pub async fn try_forward(
        &self,
        method: Method,
        path_and_query: &str,
        correlation: &str,
        body: Option<Bytes>,
    ) -> Result<Response, reqwest::Error> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let idempotent = matches!(method, Method::GET | Method::DELETE | Method::HEAD);
        let attempts = self.retries + 1;
        let url = format!("{}{}", self.base, path_and_query);
        let mut attempt = 0;
        loop {
            if attempt > 0 {
                self.retried.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
            }
            let mut request = self
                .client
                .request(method.clone(), &url)
                .timeout(self.timeout)
                .header(CORRELATION_HEADER, correlation);
            if let Some(body) = &body {
                request = request
                    .header("content-type", "application/json")
                    .body(body.clone());
            }
            match request.send().await {
                Ok(answer) => return Ok(relay(answer, correlation).await),
                Err(error) => {
                    tracing::warn!(upstream = self.name, %url, attempt, error = %error_chain(&error), "upstream request failed");
                    attempt += 1;
                    // A request that never reached the upstream (no connection) is safe to send
                    // again whatever its method; one that may have reached it is retried only
                    // when repeating it cannot repeat its effect.
                    let retryable = idempotent || error.is_connect();
                    if !retryable || attempt >= attempts {
                        self.failures.fetch_add(1, Ordering::Relaxed);
                        return Err(error);
                    }
                }
            }
        }
    }
}

fn with_correlation(mut response: Response, correlation: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(correlation) {
        response.headers_mut().insert(CORRELATION_HEADER, value);
    }
    response
}

async fn relay(answer: reqwest::Response, correlation: &str) -> Response {
    let status = answer.status();
    let mut headers = HeaderMap::new();
    for name in ["content-type", "retry-after"] {
        if let Some(v) = answer.headers().get(name) {
            headers.insert(name, v.clone());
        }
    }
    if let Ok(value) = HeaderValue::from_str(correlation) {
        headers.insert(CORRELATION_HEADER, value);
    }
    match answer.bytes().await {
        Ok(bytes) => {
            let mut response = Response::new(Body::from(bytes));
            *response.status_mut() = status;
            *response.headers_mut() = headers;
            response
        }
        Err(error) => AppError::new(
            StatusCode::BAD_GATEWAY,
            "upstream_unavailable",
            format!("the upstream answer could not be read: {error}; try again"),
        )
        .into_response(),
    }
}

/// The caller's correlation id when it is a sane token, else a fresh one.
fn correlation_id(headers: &HeaderMap) -> String {
    headers
        .get(CORRELATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 128
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn with_query(path: String, query: Option<String>) -> String {
    match query {
        Some(q) if !q.is_empty() => format!("{path}?{q}"),
        _ => path,
    }
}

fn bad_id(e: banking::DomainError, field: &str) -> Response {
    AppError::bad_request("invalid_field", e.to_string())
        .with_field("field", field)
        .into_response()
}

pub async fn open_account(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    s.accounts
        .forward(Method::POST, "/accounts", &headers, Some(body))
        .await
}

pub async fn get_account(
    State(s): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    match AccountId::parse(&id) {
        Ok(id) => {
            let path = with_query(format!("/accounts/{id}"), query);
            s.view.forward(Method::GET, &path, &headers, None).await
        }
        Err(e) => bad_id(e, "account_id"),
    }
}

pub async fn close_account(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match AccountId::parse(&id) {
        Ok(id) => {
            let path = format!("/accounts/{id}");
            s.accounts
                .forward(Method::DELETE, &path, &headers, None)
                .await
        }
        Err(e) => bad_id(e, "account_id"),
    }
}

pub async fn customer_accounts(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match CustomerId::parse(&id) {
        Ok(id) => {
            let path = format!("/customers/{id}/accounts");
            s.view.forward(Method::GET, &path, &headers, None).await
        }
        Err(e) => bad_id(e, "customer_id"),
    }
}

pub async fn create_transfer(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    s.transfers
        .forward(Method::POST, "/transfers", &headers, Some(body))
        .await
}

pub async fn get_transfer(
    State(s): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    match TransferId::parse(&id) {
        Ok(id) => {
            let path = with_query(format!("/transfers/{id}"), query);
            s.view.forward(Method::GET, &path, &headers, None).await
        }
        Err(e) => bad_id(e, "transfer_id"),
    }
}

/// Full-text search: the raw query string goes to the indexer's `/search` unchanged, and its
/// status and body come back as they are. An indexer that cannot be reached gives 503
/// `search_unavailable`; the rest of the API does not depend on it.
pub async fn search(
    State(s): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let correlation = correlation_id(&headers);
    let path = with_query("/search".to_owned(), query);
    match s
        .search
        .try_forward(Method::GET, &path, &correlation, None)
        .await
    {
        Ok(response) => response,
        Err(error) => {
            let why = if error.is_timeout() {
                "did not answer in time"
            } else {
                "cannot be reached"
            };
            with_correlation(
                AppError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "search_unavailable",
                    format!(
                        "the search service (indexer) {why}; try again later, or check SEARCH_URL"
                    ),
                )
                .with_field("upstream", s.search.name())
                .into_response(),
                &correlation,
            )
        }
    }
}
