//! A small client of the event store's HTTP API that keeps event payloads as raw JSON text, so
//! archived bytes are exactly the stored bytes. Transient failures (connection errors, 429,
//! 5xx) are retried with bounded, jittered backoff.

use std::time::Duration;

use rand::Rng;
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::record::ArchivedEvent;

/// A cheap-to-clone handle on one event store.
#[derive(Debug, Clone)]
pub struct StoreClient {
    http: reqwest::Client,
    base: Url,
    attempts: u32,
}

/// One page of the log or of a consumer group.
#[derive(Debug, Deserialize)]
pub struct Page {
    pub events: Vec<ArchivedEvent>,
    /// The newest position in the store when the page was read.
    pub head: u64,
}

/// A consumer group as the store reports it.
#[derive(Debug, Deserialize)]
pub struct Group {
    pub group: String,
    /// The last acknowledged position.
    pub checkpoint: u64,
}

/// What the store answered to an import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Imported {
    pub first_position: u64,
    pub last_position: u64,
    pub events: u64,
}

/// What went wrong talking to the event store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "invalid event store url {url:?}: {reason}; use something like http://event-store:8100"
    )]
    InvalidUrl { url: String, reason: String },
    #[error("could not reach the event store for {request} after {attempts} attempts: {source}; check that it runs and EVENT_STORE_URL is right")]
    Unreachable {
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
    #[error("the event store refused {request} ({status}): {message}")]
    Refused {
        request: String,
        status: StatusCode,
        message: String,
    },
    #[error("could not read the event store's answer to {request}: {source}")]
    BadAnswer {
        request: String,
        #[source]
        source: serde_json::Error,
    },
}

impl StoreError {
    /// Whether the store is away (worth waiting out) rather than refusing.
    pub fn is_outage(&self) -> bool {
        matches!(self, Self::Unreachable { .. } | Self::Unavailable { .. })
    }
}

impl StoreClient {
    /// A client for the store at `base_url`, such as `http://event-store:8100`.
    pub fn new(base_url: &str) -> Result<Self, StoreError> {
        let invalid = |reason: String| StoreError::InvalidUrl {
            url: base_url.to_owned(),
            reason,
        };
        let mut base = Url::parse(base_url).map_err(|e| invalid(e.to_string()))?;
        if base.scheme() != "http" {
            return Err(invalid("only plain http is supported".into()));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let http = service_kit::net::client_builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| invalid(e.to_string()))?;
        Ok(Self {
            http,
            base,
            attempts: 8,
        })
    }

    /// Sets how many tries a request gets in all (at least 1).
    pub fn with_attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// Creates consumer group `group` for every event (a new group starts at the beginning of
    /// the log; an existing one keeps its checkpoint) and returns it.
    pub async fn register(&self, group: &str) -> Result<Group, StoreError> {
        let url = self.url(&["subscriptions", group])?;
        self.call(Method::PUT, url, |r| r.json(&serde_json::json!({})))
            .await
    }

    /// The group's events after `after` (not its checkpoint: the caller keeps its own cursor),
    /// waiting up to `wait` when there are none.
    pub async fn poll(
        &self,
        group: &str,
        after: u64,
        limit: usize,
        wait: Duration,
    ) -> Result<Page, StoreError> {
        let url = self.url(&["subscriptions", group, "events"])?;
        let query = [
            ("after", after.to_string()),
            ("limit", limit.to_string()),
            ("wait_ms", wait.as_millis().to_string()),
        ];
        self.call(Method::GET, url, |r| r.query(&query)).await
    }

    /// Moves the group's checkpoint to `position`.
    pub async fn ack(&self, group: &str, position: u64) -> Result<(), StoreError> {
        let url = self.url(&["subscriptions", group, "ack"])?;
        let _: Group = self
            .call(Method::POST, url, |r| {
                r.json(&serde_json::json!({ "position": position }))
            })
            .await?;
        Ok(())
    }

    /// The global log after `after`, without waiting.
    pub async fn read_log(&self, after: u64, limit: usize) -> Result<Page, StoreError> {
        let url = self.url(&["events"])?;
        let query = [
            ("after", after.to_string()),
            ("limit", limit.to_string()),
            ("wait_ms", "0".to_owned()),
        ];
        self.call(Method::GET, url, |r| r.query(&query)).await
    }

    /// The newest position in the store.
    pub async fn head(&self) -> Result<u64, StoreError> {
        Ok(self.read_log(0, 1).await?.head)
    }

    /// Imports `events` (consecutive positions of the log, any streams) as they are: original
    /// positions, ids, streams, versions, types, payload bytes and `recorded_at`
    /// (`POST /import`). The store accepts them only if they continue its log exactly, and
    /// answers a repeat of an import it holds with the stored result, so retries are safe.
    pub async fn import(&self, events: &[ArchivedEvent]) -> Result<Imported, StoreError> {
        #[derive(Serialize)]
        struct Body<'a> {
            events: &'a [ArchivedEvent],
        }
        if events.is_empty() {
            return Ok(Imported {
                first_position: 0,
                last_position: 0,
                events: 0,
            });
        }
        let url = self.url(&["import"])?;
        self.call(Method::POST, url, |r| r.json(&Body { events }))
            .await
    }

    fn url(&self, segments: &[&str]) -> Result<Url, StoreError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| StoreError::InvalidUrl {
                url: self.base.to_string(),
                reason: "it cannot be a base".into(),
            })?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        build: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<T, StoreError> {
        let request = format!("{method} {url}");
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= self.attempts;
            let sent = build(self.http.request(method.clone(), url.clone()))
                .send()
                .await;
            let answer = match sent {
                Ok(response) => {
                    let status = response.status();
                    response.bytes().await.map(|body| (status, body))
                }
                Err(error) => Err(error),
            };
            match answer {
                Ok((status, body)) if status.is_success() => {
                    return serde_json::from_slice(&body)
                        .map_err(|source| StoreError::BadAnswer { request, source });
                }
                Ok((status, body))
                    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS =>
                {
                    if last {
                        return Err(StoreError::Unavailable {
                            request,
                            status,
                            attempts: attempt,
                            message: error_message(&body),
                        });
                    }
                }
                Ok((status, body)) => {
                    return Err(StoreError::Refused {
                        request,
                        status,
                        message: error_message(&body),
                    });
                }
                Err(source) => {
                    let transient = source.is_connect()
                        || source.is_timeout()
                        || source.is_request()
                        || source.is_body();
                    if last || !transient {
                        return Err(StoreError::Unreachable {
                            request,
                            attempts: attempt,
                            source,
                        });
                    }
                }
            }
            tokio::time::sleep(backoff(attempt)).await;
        }
    }
}

/// Full-jitter exponential backoff from 50 ms, capped at 2 s.
fn backoff(attempt: u32) -> Duration {
    let ceiling = 50u64.saturating_mul(1 << attempt.min(6)).min(2000);
    Duration::from_millis(rand::rng().random_range(ceiling / 2..=ceiling))
}

fn error_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrorBody {
        #[serde(default)]
        error: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(body) if !body.message.is_empty() => body.message,
        Ok(body) => body.error,
        Err(_) => String::from_utf8_lossy(body).chars().take(200).collect(),
    }
}
