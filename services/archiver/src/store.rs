//! The archiver's view of the event store: es-client's `EventStoreClient` with the events read
//! and written as raw JSON (`ArchivedEvent`), so archived bytes are exactly the stored bytes.
//! Transient failures (connection errors, timeouts, 429, 5xx) are retried by the client with
//! bounded, jittered backoff; the bodies are the store's wire contract (`event-store-api`).

use std::time::Duration;

use es_client::{EventStoreClient, RetryPolicy};
use event_store_api::{EventFilter, SubscriptionSpec};
use reqwest::Url;

use crate::record::ArchivedEvent;

/// What went wrong talking to the event store (`StoreError::is_outage` tells an outage, worth
/// waiting out, from a refusal).
pub type StoreError = es_client::ClientError;

/// One page of the log or of a consumer group, as raw archived records.
pub type Page = event_store_api::LogPage<ArchivedEvent>;

/// A consumer group as the store reports it.
pub type Group = event_store_api::Subscription;

/// What the store answered to an import.
pub type Imported = event_store_api::ImportResponse;

/// A cheap-to-clone handle on one event store.
#[derive(Debug, Clone)]
pub struct StoreClient {
    client: EventStoreClient,
}

impl StoreClient {
    /// How many tries a request gets in all, unless [`Self::with_attempts`] says otherwise.
    pub const DEFAULT_ATTEMPTS: u32 = 8;

    /// A client for the store at `base_url`, such as `http://event-store:8100`.
    pub fn new(base_url: &str) -> Result<Self, StoreError> {
        let client = EventStoreClient::new(base_url)?
            .with_timeout(Duration::from_secs(90))
            .with_retry(retry(Self::DEFAULT_ATTEMPTS));
        Ok(Self { client })
    }

    /// Sets how many tries a request gets in all (at least 1).
    pub fn with_attempts(mut self, attempts: u32) -> Self {
        self.client = self.client.with_retry(retry(attempts));
        self
    }

    pub fn base_url(&self) -> &Url {
        self.client.base_url()
    }

    /// Creates consumer group `group` for every event (a new group starts at the beginning of
    /// the log; an existing one keeps its checkpoint) and returns it.
    pub async fn register(&self, group: &str) -> Result<Group, StoreError> {
        self.client
            .register(group, &SubscriptionSpec::default())
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
        self.client
            .poll_group_as(group, Some(after), limit, wait)
            .await
    }

    /// Moves the group's checkpoint to `position`.
    pub async fn ack(&self, group: &str, position: u64) -> Result<(), StoreError> {
        self.client.ack(group, position).await
    }

    /// The global log after `after`, without waiting.
    pub async fn read_log(&self, after: u64, limit: usize) -> Result<Page, StoreError> {
        self.client
            .read_all_as(after, limit, Duration::ZERO, &EventFilter::default())
            .await
    }

    /// The newest position in the store.
    pub async fn head(&self) -> Result<u64, StoreError> {
        Ok(self.read_log(0, 1).await?.head.unwrap_or_default())
    }

    /// Imports `events` (consecutive positions of the log, any streams) as they are: original
    /// positions, ids, streams, versions, types, payload bytes and `recorded_at`
    /// (`POST /import`). The store accepts them only if they continue its log exactly, and
    /// answers a repeat of an import it holds with the stored result, so retries are safe.
    pub async fn import(&self, events: &[ArchivedEvent]) -> Result<Imported, StoreError> {
        self.client.import(events).await
    }
}

/// `attempts` tries in all, waiting a random time up to 100 ms, 200 ms, ... (at most 2 s)
/// between them.
fn retry(attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts: attempts.max(1),
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(2),
    }
}
