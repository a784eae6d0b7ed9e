//! The archiver: copies the global event log to object storage as immutable, compressed,
//! checksummed segments, and verifies and restores such an archive.
//!
//! `record` is the archived event, `segment` and `manifest` the pure on-disk formats, `archive`
//! the object-store IO, `store` the event store client, `writer` the archiving loop, `verify`
//! and `restore` the offline tools, and `http` with [`Application`] the service glue over
//! `service_kit`.

pub mod archive;
pub mod config;
pub mod http;
pub mod manifest;
pub mod record;
pub mod restore;
pub mod s3http;
pub mod segment;
pub mod store;
pub mod verify;
pub mod writer;

pub use archive::{Archive, ArchiveError};
pub use config::Config;
pub use http::{router, AppState};
pub use manifest::{Manifest, SegmentEntry};
pub use record::{ArchivedEvent, DigestSummary, LogDigest};
pub use restore::{archive_digest, restore, store_digest, RestoreError, RestoreReport};
pub use store::{StoreClient, StoreError};
pub use verify::{verify, Fault, VerifyReport};
pub use writer::{Archiver, ArchiverError, FlushPolicy, Metrics, SegmentBuffer, Settings};

use std::future::Future;

use service_kit::{Listener, ServeError, Workers};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("could not open the archive: {0}")]
    Archive(#[from] ArchiveError),
    #[error("invalid EVENT_STORE_URL: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bind(#[from] service_kit::BindError),
}

/// A built, bound, not yet running archiver.
pub struct Application {
    listener: Listener,
    archiver: Archiver,
    state: AppState,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let location = config.archive_location();
        let archive = Archive::open_with(&location, &config.s3_options)?;
        let client = StoreClient::new(&config.event_store_url)?;
        let listener = Listener::bind("the archiver", [0, 0, 0, 0], config.port).await?;
        let metrics = Metrics::default();
        let archiver = Archiver::new(archive, client, config.settings, metrics.clone());
        tracing::info!(archive = %location, store = %config.event_store_url, "archiver ready");
        Ok(Self {
            listener,
            archiver,
            state: AppState {
                metrics,
                archive: location,
            },
        })
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.listener.port()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.state.metrics
    }

    /// The background workers; `/health` answers 503 once one has stopped.
    pub fn workers(&self) -> Workers {
        self.listener.workers().clone()
    }

    /// Serves and archives (the worker `archiver-writer`) until `signal` resolves, then
    /// flushes the open segment and stops. If the archiving loop fails (a refusal, a log that
    /// does not continue the archive), `/health` answers 503 naming it, and the end is an error.
    pub async fn run_until(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let archiver = self.archiver;
        self.listener
            .workers()
            .spawn("archiver-writer", move |stopped| archiver.run(stopped));
        self.listener.serve(router(self.state), signal).await
    }
}

service_kit::service!(Application, Config, "the archiver");
