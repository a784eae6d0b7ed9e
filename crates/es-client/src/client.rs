//! The HTTP client of the event store: append, read a stream or the global log, snapshots and
//! consumer groups. Transient failures (connection refused or reset, timeouts, 429 and 5xx) are
//! retried with bounded, jittered exponential backoff, because the store may be rolling.

use std::time::Duration;

use event_store_api::{
    path, AckRequest, AppendRequest, ErrorBody, ImportRequest, ImportResponse, Subscription,
    WrongExpectedVersionBody,
};
use rand::Rng;
use reqwest::{Method, StatusCode, Url};
use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use es_core::{DecodeError, EncodeError, EventEnvelope, ExpectedVersion, NewEvent, StreamId};

pub use event_store_api::{EventTypeCount, SubscriptionSpec};

/// A cheap-to-clone handle on one event store.
#[derive(Debug, Clone)]
pub struct EventStoreClient {
    http: reqwest::Client,
    base: Url,
    retry: RetryPolicy,
    timeout: Duration,
}

/// How transient failures are retried: up to `max_attempts` tries in all, waiting a random time
/// up to `initial_backoff * 2^(n-1)` (capped at `max_backoff`) before try `n + 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

/// What the store answered to an append.
pub type AppendResult = event_store_api::AppendResponse;

/// Which events of a stream to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamQuery {
    /// The first version to return (versions start at 1).
    pub from_version: u64,
    pub limit: usize,
    /// Read the stream as it was at this version.
    pub up_to_version: Option<u64>,
    /// Read the stream as it was at this time.
    pub as_of: Option<OffsetDateTime>,
}

/// One page of a stream.
pub type StreamPage = event_store_api::StreamPage<EventEnvelope>;

/// One page of the global log, or of a consumer group's pending events.
pub type LogPage = event_store_api::LogPage<EventEnvelope>;

/// Which events of the global log to read, or a consumer group receives.
pub type LogFilter = event_store_api::EventFilter;

/// A saved aggregate state: the stream version it includes and the serialised state.
pub type Snapshot = event_store_api::Snapshot<Value>;

/// What went wrong talking to the event store.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "invalid event store url {url:?}: {reason}; use something like http://event-store:8100"
    )]
    InvalidUrl { url: String, reason: String },
    #[error("invalid read: {reason}")]
    InvalidQuery { reason: String },
    #[error(
        "invalid consumer group name {name:?}; use 1 to 256 ASCII letters, digits, - _ . : @ $ +"
    )]
    InvalidGroup { name: String },
    #[error("could not reach the event store for {request} after {attempts} attempts: {source}; check that it runs and the url is right")]
    Unreachable {
        /// Method and url, such as `GET http://event-store:8100/events`.
        request: String,
        attempts: u32,
        #[source]
        source: reqwest::Error,
    },
    #[error(
        "the event store kept failing {request} ({status}) after {attempts} attempts: {message}"
    )]
    Unavailable {
        request: String,
        status: StatusCode,
        attempts: u32,
        message: String,
    },
    #[error("the event store refused {request} ({status} {code}): {message}")]
    Refused {
        request: String,
        status: StatusCode,
        code: String,
        message: String,
    },
    #[error("wrong expected version appending to {stream}: expected {expected}, the stream is at {current}; reload and decide again")]
    WrongExpectedVersion {
        stream: StreamId,
        expected: ExpectedVersion,
        current: u64,
    },
    #[error("could not read the event store's answer to {request}: {source}")]
    BadResponse {
        request: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("could not encode an event for {stream}: {source}")]
    Encode {
        stream: StreamId,
        #[source]
        source: EncodeError,
    },
    #[error("could not decode event {version} of {stream}: {source}")]
    Decode {
        stream: StreamId,
        version: u64,
        #[source]
        source: DecodeError,
    },
    #[error("could not serialise the snapshot of {stream}: {source}")]
    Snapshot {
        stream: StreamId,
        #[source]
        source: serde_json::Error,
    },
}

impl ClientError {
    /// Whether the store is away (worth waiting out) rather than refusing.
    pub fn is_outage(&self) -> bool {
        matches!(self, Self::Unreachable { .. } | Self::Unavailable { .. })
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// No retries: one attempt.
    pub const NONE: RetryPolicy = RetryPolicy {
        max_attempts: 1,
        initial_backoff: Duration::ZERO,
        max_backoff: Duration::ZERO,
    };

    /// The wait before attempt `attempt + 1`, with full jitter.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
            .min(self.max_backoff);
        if ceiling.is_zero() {
            return ceiling;
        }
        let ceiling_ms = u64::try_from(ceiling.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        Duration::from_millis(rand::rng().random_range(ceiling_ms / 2..=ceiling_ms))
    }
}

impl StreamQuery {
    /// Events from `from_version` on, `limit` at most.
    pub fn from(from_version: u64, limit: usize) -> Self {
        Self {
            from_version,
            limit,
            up_to_version: None,
            as_of: None,
        }
    }
}

impl EventStoreClient {
    /// A client for the store at `base_url`, such as `http://event-store:8100`.
    pub fn new(base_url: &str) -> Result<Self, ClientError> {
        let invalid = |reason: String| ClientError::InvalidUrl {
            url: base_url.to_owned(),
            reason,
        };
        let mut base = Url::parse(base_url).map_err(|error| invalid(error.to_string()))?;
        if base.scheme() != "http" {
            return Err(invalid("only plain http is supported".into()));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let http = service_kit::net::client_builder()
            .connect_timeout(Duration::from_secs(3))
            .build()
            .map_err(|error| invalid(error.to_string()))?;
        Ok(Self {
            http,
            base,
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
        })
    }

    /// Replaces the retry policy for transient failures.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Replaces the per-request timeout (a long poll adds its wait on top).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// Appends `events` to `stream` if it is at `expected`. Re-sending an already stored event id
    /// is acknowledged by the store without storing a copy.
    pub async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<AppendResult, ClientError> {
        let url = self.url(&path::stream_events(stream.as_str()))?;
        let body = AppendRequest {
            expected_version: expected,
            events: events.iter().collect::<Vec<_>>(),
        };
        let reply = self
            .call(Method::POST, url, |request| request.json(&body), None)
            .await?;
        if reply.status == StatusCode::CONFLICT {
            if let Ok(conflict) = serde_json::from_slice::<WrongExpectedVersionBody>(&reply.body) {
                return Err(ClientError::WrongExpectedVersion {
                    stream: stream.clone(),
                    expected,
                    current: conflict.current_version,
                });
            }
        }
        reply.json()
    }

    /// Reads one page of a stream.
    pub async fn read_stream(
        &self,
        stream: &StreamId,
        query: &StreamQuery,
    ) -> Result<StreamPage, ClientError> {
        let url = self.url(&path::stream_events(stream.as_str()))?;
        let mut params = vec![
            ("from_version", query.from_version.to_string()),
            ("limit", query.limit.to_string()),
        ];
        if let Some(version) = query.up_to_version {
            params.push(("up_to_version", version.to_string()));
        }
        if let Some(as_of) = query.as_of {
            let formatted = as_of
                .format(&time::format_description::well_known::Rfc3339)
                .map_err(|error| ClientError::InvalidQuery {
                    reason: format!("as_of {as_of} cannot be written as RFC 3339: {error}"),
                })?;
            params.push(("as_of", formatted));
        }
        let reply = self
            .call(Method::GET, url, |request| request.query(&params), None)
            .await?;
        // An unknown stream is an empty page at version 0, not an error.
        reply.json()
    }

    /// Reads the global log after position `after` (0 = from the start), waiting up to `wait`
    /// for new events when there are none yet.
    pub async fn read_all(
        &self,
        after: u64,
        limit: usize,
        wait: Duration,
    ) -> Result<LogPage, ClientError> {
        self.read_all_filtered(after, limit, wait, &LogFilter::default())
            .await
    }

    /// Like [`Self::read_all`], with only events of some types or stream-id prefix.
    pub async fn read_all_filtered(
        &self,
        after: u64,
        limit: usize,
        wait: Duration,
        filter: &LogFilter,
    ) -> Result<LogPage, ClientError> {
        self.read_all_as(after, limit, wait, filter).await
    }

    /// Like [`Self::read_all_filtered`], with the events read as `E` (such as raw JSON, to keep
    /// them byte-exact).
    pub async fn read_all_as<E: DeserializeOwned>(
        &self,
        after: u64,
        limit: usize,
        wait: Duration,
        filter: &LogFilter,
    ) -> Result<event_store_api::LogPage<E>, ClientError> {
        let url = self.url(&path::EVENTS)?;
        let mut params = vec![
            ("after", after.to_string()),
            ("limit", limit.to_string()),
            ("wait_ms", wait.as_millis().to_string()),
        ];
        params.extend(filter.to_query());
        self.call(
            Method::GET,
            url,
            |request| request.query(&params),
            Some(wait),
        )
        .await?
        .json()
    }

    /// The event types and schema versions the store holds, with their counts and first and last
    /// positions (`GET /event-types`), sorted by type, then version.
    pub async fn event_types(&self) -> Result<Vec<EventTypeCount>, ClientError> {
        let url = self.url(&path::EVENT_TYPES)?;
        self.call(Method::GET, url, |request| request, None)
            .await?
            .json()
    }

    /// The latest snapshot of a stream, if any.
    pub async fn snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, ClientError> {
        let url = self.url(&path::stream_snapshot(stream.as_str()))?;
        let reply = self.call(Method::GET, url, |request| request, None).await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        reply.json().map(Some)
    }

    /// Saves a snapshot of a stream.
    pub async fn save_snapshot(
        &self,
        stream: &StreamId,
        snapshot: &Snapshot,
    ) -> Result<(), ClientError> {
        let url = self.url(&path::stream_snapshot(stream.as_str()))?;
        self.call(Method::PUT, url, |request| request.json(snapshot), None)
            .await?
            .success()
    }

    /// Creates or updates a consumer group.
    pub async fn subscribe(&self, group: &str, spec: &SubscriptionSpec) -> Result<(), ClientError> {
        self.register(group, spec).await.map(|_| ())
    }

    /// Creates or updates a consumer group and returns it as the store holds it.
    pub async fn register(
        &self,
        group: &str,
        spec: &SubscriptionSpec,
    ) -> Result<Subscription, ClientError> {
        let url = self.group_url(group, None)?;
        self.call(Method::PUT, url, |request| request.json(spec), None)
            .await?
            .json()
    }

    /// Whether a consumer group exists.
    pub async fn group_exists(&self, group: &str) -> Result<bool, ClientError> {
        let url = self.group_url(group, None)?;
        let reply = self.call(Method::GET, url, |request| request, None).await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(false);
        }
        reply.success().map(|()| true)
    }

    /// The group's next events after its checkpoint (unacknowledged ones come again), waiting up
    /// to `wait` when there are none.
    pub async fn poll_group(
        &self,
        group: &str,
        limit: usize,
        wait: Duration,
    ) -> Result<LogPage, ClientError> {
        self.poll_group_as(group, None, limit, wait).await
    }

    /// Like [`Self::poll_group`], with the events read as `E` and, when `after` is given, from
    /// after that position instead of the group's checkpoint (for a consumer that keeps its own
    /// cursor).
    pub async fn poll_group_as<E: DeserializeOwned>(
        &self,
        group: &str,
        after: Option<u64>,
        limit: usize,
        wait: Duration,
    ) -> Result<event_store_api::LogPage<E>, ClientError> {
        let url = self.group_url(group, Some("events"))?;
        let mut params = vec![
            ("limit", limit.to_string()),
            ("wait_ms", wait.as_millis().to_string()),
        ];
        if let Some(after) = after {
            params.push(("after", after.to_string()));
        }
        self.call(
            Method::GET,
            url,
            |request| request.query(&params),
            Some(wait),
        )
        .await?
        .json()
    }

    /// Moves the group's checkpoint to `position`: every event up to it is handled.
    pub async fn ack(&self, group: &str, position: u64) -> Result<(), ClientError> {
        let url = self.group_url(group, Some("ack"))?;
        let body = AckRequest { position };
        self.call(Method::POST, url, |request| request.json(&body), None)
            .await?
            .success()
    }

    /// Imports `events`, whole envelopes with their own positions, versions and times
    /// (`POST /import`, for restores). The store accepts them only if they continue its log
    /// exactly, and answers a repeat of an import it holds with the stored result, so a retry is
    /// safe. No events is no request.
    pub async fn import<E: Serialize>(&self, events: &[E]) -> Result<ImportResponse, ClientError> {
        if events.is_empty() {
            return Ok(ImportResponse {
                first_position: 0,
                last_position: 0,
                events: 0,
            });
        }
        let url = self.url(&path::IMPORT)?;
        let body = ImportRequest {
            events: events.iter().collect::<Vec<_>>(),
        };
        self.call(Method::POST, url, |request| request.json(&body), None)
            .await?
            .json()
    }

    fn group_url(&self, group: &str, tail: Option<&str>) -> Result<Url, ClientError> {
        if !event_store_api::is_valid_name(group) {
            return Err(ClientError::InvalidGroup {
                name: group.to_owned(),
            });
        }
        match tail {
            Some("ack") => self.url(&path::subscription_ack(group)),
            Some(_) => self.url(&path::subscription_events(group)),
            None => self.url(&path::subscription(group)),
        }
    }

    fn url(&self, segments: &[&str]) -> Result<Url, ClientError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| ClientError::InvalidUrl {
                url: self.base.to_string(),
                reason: "it cannot be a base".into(),
            })?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    /// Sends a request, retrying transient failures, and reads the whole answer.
    async fn call(
        &self,
        method: Method,
        url: Url,
        build: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
        long_poll: Option<Duration>,
    ) -> Result<Reply, ClientError> {
        let timeout = self.timeout + long_poll.unwrap_or_default();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= self.retry.max_attempts.max(1);
            let request = build(self.http.request(method.clone(), url.clone())).timeout(timeout);
            let outcome = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    response.bytes().await.map(|body| (status, body))
                }
                Err(error) => Err(error),
            };
            match outcome {
                Ok((status, body)) if is_transient_status(status) => {
                    let reply = Reply {
                        method: method.clone(),
                        url: url.clone(),
                        status,
                        body,
                    };
                    if last {
                        return Err(ClientError::Unavailable {
                            message: reply.error_message(),
                            request: format!("{method} {url}"),
                            status,
                            attempts: attempt,
                        });
                    }
                    tracing::debug!(%method, %url, %status, attempt, "event store busy, retrying");
                }
                Ok((status, body)) => {
                    return Ok(Reply {
                        method,
                        url,
                        status,
                        body,
                    })
                }
                Err(source) => {
                    if last || !is_transient_error(&source) {
                        return Err(ClientError::Unreachable {
                            request: format!("{method} {url}"),
                            attempts: attempt,
                            source,
                        });
                    }
                    tracing::debug!(%method, %url, error = %source, attempt, "event store unreachable, retrying");
                }
            }
            tokio::time::sleep(self.retry.backoff(attempt)).await;
        }
    }
}

/// A complete answer of the store.
struct Reply {
    method: Method,
    url: Url,
    status: StatusCode,
    body: bytes::Bytes,
}

fn is_transient_status(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
}

fn is_transient_error(error: &reqwest::Error) -> bool {
    error.is_connect() || error.is_timeout() || error.is_request() || error.is_body()
}

impl Reply {
    fn error_message(&self) -> String {
        ErrorBody::message_of(&self.body)
    }

    fn refused(self) -> ClientError {
        let (code, message) = ErrorBody::code_and_message(&self.body);
        ClientError::Refused {
            request: format!("{} {}", self.method, self.url),
            status: self.status,
            code,
            message,
        }
    }

    fn success(self) -> Result<(), ClientError> {
        if self.status.is_success() {
            Ok(())
        } else {
            Err(self.refused())
        }
    }

    fn json<T: DeserializeOwned>(self) -> Result<T, ClientError> {
        if !self.status.is_success() {
            return Err(self.refused());
        }
        serde_json::from_slice(&self.body).map_err(|source| ClientError::BadResponse {
            request: format!("{} {}", self.method, self.url),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use serde_json::json;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A canned HTTP server: answers the n-th request with `answers[n]` (the last one repeats)
    /// and counts requests.
    async fn canned(answers: Vec<(u16, &'static str)>) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let count = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&count);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let (status, body) = answers[n.min(answers.len() - 1)];
                let mut buffer = vec![0u8; 64 * 1024];
                let _ = socket.read(&mut buffer).await;
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            }
        });
        (format!("http://{address}"), count)
    }

    fn fast_retry(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
        }
    }

    fn stream() -> StreamId {
        StreamId::parse("Test-1").expect("valid")
    }

    #[tokio::test]
    async fn unavailable_answers_are_retried_until_success() {
        let (url, count) = canned(vec![
            (503, r#"{"error":"unavailable","message":"rolling"}"#),
            (500, r#"{"error":"internal","message":"oops"}"#),
            (200, r#"{"version":3,"position":9}"#),
        ])
        .await;
        let client = EventStoreClient::new(&url)
            .expect("client")
            .with_retry(fast_retry(5));
        let result = client
            .append(&stream(), ExpectedVersion::Any, &[])
            .await
            .expect("append succeeds after retries");
        assert_eq!(
            result,
            AppendResult {
                version: 3,
                position: 9
            }
        );
        assert_eq!(count.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn retries_are_bounded() {
        let (url, count) = canned(vec![(
            503,
            r#"{"error":"unavailable","message":"rolling"}"#,
        )])
        .await;
        let client = EventStoreClient::new(&url)
            .expect("client")
            .with_retry(fast_retry(3));
        let error = client
            .read_all(0, 10, Duration::ZERO)
            .await
            .expect_err("keeps failing");
        assert!(
            matches!(error, ClientError::Unavailable { attempts: 3, .. }),
            "{error}"
        );
        assert!(error.to_string().contains("rolling"), "{error}");
        assert_eq!(count.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn client_errors_are_not_retried_and_carry_the_store_message() {
        let (url, count) = canned(vec![(
            400,
            r#"{"error":"bad_request","message":"limit must be positive"}"#,
        )])
        .await;
        let client = EventStoreClient::new(&url)
            .expect("client")
            .with_retry(fast_retry(5));
        let error = client
            .read_all(0, 0, Duration::ZERO)
            .await
            .expect_err("refused");
        match &error {
            ClientError::Refused {
                status,
                code,
                message,
                ..
            } => {
                assert_eq!(*status, StatusCode::BAD_REQUEST);
                assert_eq!(code, "bad_request");
                assert_eq!(message, "limit must be positive");
            }
            other => panic!("unexpected {other}"),
        }
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn conflict_becomes_wrong_expected_version() {
        let (url, _) = canned(vec![(
            409,
            r#"{"error":"wrong_expected_version","message":"x","current_version":7}"#,
        )])
        .await;
        let client = EventStoreClient::new(&url).expect("client");
        let error = client
            .append(&stream(), ExpectedVersion::Exact(5), &[])
            .await
            .expect_err("conflict");
        assert!(
            matches!(
                error,
                ClientError::WrongExpectedVersion {
                    current: 7,
                    expected: ExpectedVersion::Exact(5),
                    ..
                }
            ),
            "{error}"
        );
    }

    #[tokio::test]
    async fn connection_refused_is_retried_until_the_store_is_back() {
        // Take a free port, release it, and start listening on it only after a while.
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("address").port()
        };
        let late = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let listener = TcpListener::bind(("127.0.0.1", port))
                .await
                .expect("rebind");
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut buffer = vec![0u8; 4096];
            let _ = socket.read(&mut buffer).await;
            let body = r#"{"events":[],"head":0}"#;
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        });
        let client = EventStoreClient::new(&format!("http://127.0.0.1:{port}"))
            .expect("client")
            .with_retry(RetryPolicy {
                max_attempts: 40,
                initial_backoff: Duration::from_millis(20),
                max_backoff: Duration::from_millis(50),
            });
        let page = client
            .read_all(0, 10, Duration::ZERO)
            .await
            .expect("store came back");
        assert_eq!(page.head, Some(0));
        late.await.expect("server task");
    }

    #[tokio::test]
    async fn connection_refused_without_retries_is_unreachable() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("address").port()
        };
        let client = EventStoreClient::new(&format!("http://127.0.0.1:{port}"))
            .expect("client")
            .with_retry(RetryPolicy::NONE);
        let error = client
            .read_all(0, 10, Duration::ZERO)
            .await
            .expect_err("nobody listens");
        assert!(
            matches!(error, ClientError::Unreachable { attempts: 1, .. }),
            "{error}"
        );
    }

    #[tokio::test]
    async fn missing_snapshot_is_none() {
        let (url, _) = canned(vec![(
            404,
            r#"{"error":"not_found","message":"no snapshot"}"#,
        )])
        .await;
        let client = EventStoreClient::new(&url).expect("client");
        assert_eq!(client.snapshot(&stream()).await.expect("answer"), None);
    }

    #[test]
    fn urls_keep_a_base_path_and_encode_nothing_unexpected() {
        let client = EventStoreClient::new("http://store:8080/prefix").expect("client");
        let url = client
            .url(&["streams", "Account-1", "events"])
            .expect("url");
        assert_eq!(
            url.as_str(),
            "http://store:8080/prefix/streams/Account-1/events"
        );
        let client = EventStoreClient::new("http://store:8080").expect("client");
        let url = client.url(&["events"]).expect("url");
        assert_eq!(url.as_str(), "http://store:8080/events");
    }

    #[test]
    fn bad_base_urls_are_refused_with_a_hint() {
        for url in ["not a url", "https://store:8080", "store:8080"] {
            let error = EventStoreClient::new(url).expect_err(url);
            assert!(
                error.to_string().contains("http://event-store:8100"),
                "{error}"
            );
        }
    }

    #[test]
    fn group_names_are_checked() {
        let client = EventStoreClient::new("http://store:8080").expect("client");
        assert!(matches!(
            client.group_url("bad/group", None),
            Err(ClientError::InvalidGroup { .. })
        ));
        assert!(client.group_url("accounts-saga", Some("ack")).is_ok());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(800),
        };
        for _ in 0..50 {
            let first = policy.backoff(1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let third = policy.backoff(3);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            let late = policy.backoff(30);
            assert!(late >= Duration::from_millis(400) && late <= Duration::from_millis(800));
        }
        assert_eq!(RetryPolicy::NONE.backoff(1), Duration::ZERO);
    }

    #[test]
    fn subscription_spec_wire_format() {
        let spec = SubscriptionSpec {
            event_types: Some(vec!["AccountDebited".into()]),
            stream_prefix: None,
            start_position: Some(4),
        };
        assert_eq!(
            serde_json::to_value(&spec).ok(),
            Some(json!({"event_types": ["AccountDebited"], "start_position": 4}))
        );
    }
}
