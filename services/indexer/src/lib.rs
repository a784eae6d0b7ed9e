//! The indexer: a full-text index (tantivy) of accounts and transfers, fed by events, behind
//! `GET /search`.
//!
//! `entry` holds the pure event-to-entry logic, `index` the tantivy schema, commits and search,
//! `feed` the indexing loop, and `http` with [`Application`] the service glue over `service_kit`.

pub mod config;
pub mod entry;
pub mod feed;
pub mod http;
pub mod index;

pub use config::Config;
pub use entry::{AccountEntry, Entry, Kind, TransferEntry};
pub use feed::{FeedMetrics, FeedSettings};
pub use http::{router, AppState};
pub use index::{Hit, IndexError, IndexFeeder, QueryError, SearchIndex, SearchResults};

use std::future::Future;

use es_client::{ClientError, EventStoreClient};
use service_kit::{Listener, ServeError, Workers};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("could not open the index: {0}")]
    Index(#[from] IndexError),
    #[error("the task opening the index failed: {0}")]
    Task(String),
    #[error("invalid EVENT_STORE_URL: {0}")]
    Store(#[from] ClientError),
    #[error(transparent)]
    Bind(#[from] service_kit::BindError),
}

/// A built, bound, not yet running indexer.
pub struct Application {
    listener: Listener,
    feeder: IndexFeeder,
    client: EventStoreClient,
    settings: FeedSettings,
    metrics: FeedMetrics,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let dir = config.index_dir();
        let feeder = tokio::task::spawn_blocking(move || SearchIndex::open(&dir))
            .await
            .map_err(|e| StartError::Task(e.to_string()))??;
        let client = EventStoreClient::new(&config.event_store_url)?;
        let listener = Listener::bind("the indexer", [0, 0, 0, 0], config.port).await?;
        tracing::info!(index = %config.index_dir().display(), store = %config.event_store_url, "indexer ready");
        Ok(Self {
            listener,
            feeder,
            client,
            settings: config.feed,
            metrics: FeedMetrics::default(),
        })
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.listener.port()
    }

    pub fn metrics(&self) -> &FeedMetrics {
        &self.metrics
    }

    /// The background workers; `/health` answers 503 once one has stopped.
    pub fn workers(&self) -> Workers {
        self.listener.workers().clone()
    }

    /// Serves and indexes (the worker `indexer-feed`) until `signal` resolves, then commits
    /// what is staged and stops. If the indexing loop fails (a refusal, an index failure),
    /// `/health` answers 503 naming it, and the end is an error.
    pub async fn run_until(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let state = AppState::new(self.feeder.search_index().clone(), self.metrics.clone());
        let (feeder, client, settings, metrics) =
            (self.feeder, self.client, self.settings, self.metrics);
        self.listener
            .workers()
            .spawn("indexer-feed", move |stopped| {
                feed::run(feeder, client, settings, metrics, stopped)
            });
        self.listener.serve(router(state), signal).await
    }
}

service_kit::service!(Application, Config, "the indexer");
