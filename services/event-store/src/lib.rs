//! The event store: durable streams, a global log, consumer groups and snapshots over HTTP.
//!
//! `domain` holds the checked request types, `storage` the backend trait and its SQLite
//! implementation, `http` the axum router, and [`Application`] ties them together over
//! `service_kit`'s listener. The store is schema-agnostic: `data` and `metadata` are stored as
//! raw JSON text.

pub mod config;
pub mod domain;
pub mod http;
pub mod storage;
#[cfg(feature = "testing")]
pub mod testing;

pub use config::Config;
pub use http::{router, AppState};

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use service_kit::{Listener, ServeError};
use tokio_util::sync::CancellationToken;

use crate::http::Limits;
use crate::storage::sqlite::{SqliteOptions, SqliteStorage};
use crate::storage::{Storage, StorageError};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("could not create the data directory {path}; check DATA_DIR and its permissions")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not open the event database {path}")]
    Storage {
        path: PathBuf,
        #[source]
        source: StorageError,
    },
    #[error(transparent)]
    Bind(#[from] service_kit::BindError),
}

/// A built, bound, not yet running event store.
pub struct Application {
    listener: Listener,
    state: AppState,
    storage: Arc<dyn Storage>,
    shutdown: CancellationToken,
}

impl Application {
    /// Opens the storage in `config.data_dir` and binds `0.0.0.0:config.port`.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        let path = config.database_path();
        let options = SqliteOptions {
            read_connections: config.read_connections,
            max_group: config.max_group_commit,
            ..SqliteOptions::default()
        };
        let open_path = path.clone();
        let storage = tokio::task::spawn_blocking(move || SqliteStorage::open(&open_path, options))
            .await
            .map_err(|e| StartError::Storage {
                path: path.clone(),
                source: StorageError::backend("opening the database", e),
            })?
            .map_err(|source| StartError::Storage {
                path: path.clone(),
                source,
            })?;
        let storage: Arc<dyn Storage> = Arc::new(storage);
        let listener = Listener::bind("the event store", [0, 0, 0, 0], config.port).await?;
        let shutdown = CancellationToken::new();
        let state = AppState::new(
            storage.clone(),
            Limits::from_config(&config),
            shutdown.clone(),
        );
        tracing::info!(path = %path.display(), "event store ready");
        Ok(Self {
            listener,
            state,
            storage,
            shutdown,
        })
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.listener.port()
    }

    /// The shared state, e.g. to read metrics in tests.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `signal` resolves. Then: no new connections; long-polls answer and event
    /// streams end; in-flight requests (appends included) finish; the writer commits what is
    /// queued and stops.
    pub async fn run_until(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let shutdown = self.shutdown.clone();
        let stop = async move {
            signal.await;
            shutdown.cancel();
        };
        let served = self.listener.serve(router(self.state), stop).await;
        self.storage.close().await;
        served
    }
}

service_kit::service!(Application, Config, "the event store");
