//! Building and running the service: open the index, bind the port, then run the indexing loop
//! and the HTTP server until a signal (or until the loop fails).

use std::future::Future;

use es_core::{ClientError, EventStoreClient};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::feed::{self, FeedError, FeedMetrics, FeedSettings};
use crate::http::{router, AppState};
use crate::index::{IndexError, IndexFeeder, SearchIndex};

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("could not open the index: {0}")]
    Index(#[from] IndexError),
    #[error("invalid EVENT_STORE_URL: {0}")]
    Store(#[from] ClientError),
    #[error(
        "could not listen on 0.0.0.0:{port}; is another process using it? set PORT to a free port"
    )]
    Bind {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("the HTTP server failed")]
    Serve(#[source] std::io::Error),
    #[error("indexing stopped: {0}")]
    Feed(#[from] FeedError),
}

/// A built, bound, not yet running indexer.
pub struct Application {
    listener: TcpListener,
    port: u16,
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
            .map_err(|e| StartError::Serve(std::io::Error::other(e.to_string())))??;
        let client = EventStoreClient::new(&config.event_store_url)?;
        let listener = TcpListener::bind(("0.0.0.0", config.port))
            .await
            .map_err(|source| StartError::Bind {
                port: config.port,
                source,
            })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartError::Bind {
                port: config.port,
                source,
            })?
            .port();
        tracing::info!(port, index = %config.index_dir().display(), store = %config.event_store_url, "indexer ready");
        Ok(Self {
            listener,
            port,
            feeder,
            client,
            settings: config.feed,
            metrics: FeedMetrics::default(),
        })
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn metrics(&self) -> &FeedMetrics {
        &self.metrics
    }

    /// Serves until SIGTERM or Ctrl-C, then commits what is staged and stops.
    pub async fn run_until_stopped(self) -> Result<(), StartError> {
        self.run_until(service_kit::shutdown_signal()).await
    }

    /// Serves until `signal` resolves or the indexing loop fails.
    pub async fn run_until(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let stop = CancellationToken::new();
        let on_signal = stop.clone();
        tokio::spawn(async move {
            signal.await;
            on_signal.cancel();
        });
        let state = AppState::new(self.feeder.search_index().clone(), self.metrics.clone());
        let loop_stop = stop.clone();
        let indexing = tokio::spawn(async move {
            let result = feed::run(
                self.feeder,
                self.client,
                self.settings,
                self.metrics,
                loop_stop.clone().cancelled_owned(),
            )
            .await;
            loop_stop.cancel();
            result
        });
        let served = axum::serve(self.listener, router(state))
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
        let indexed = indexing.await;
        tracing::info!("indexer stopped");
        served.map_err(StartError::Serve)?;
        match indexed {
            Ok(result) => result.map_err(StartError::from),
            Err(join) => Err(StartError::Serve(std::io::Error::other(join.to_string()))),
        }
    }
}
