//! Building and running the service: open storage, bind the port, serve until a signal, then
//! drain in-flight requests and stop the writer.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::http::{router, AppState, Limits};
use crate::storage::sqlite::{SqliteOptions, SqliteStorage};
use crate::storage::{Storage, StorageError};

/// Why the service could not start or stopped with an error.
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
}

/// A built, bound, not yet running event store.
pub struct Application {
    listener: TcpListener,
    port: u16,
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
        let shutdown = CancellationToken::new();
        let state = AppState::new(
            storage.clone(),
            Limits::from_config(&config),
            shutdown.clone(),
        );
        tracing::info!(port, path = %path.display(), "event store ready");
        Ok(Self {
            listener,
            port,
            state,
            storage,
            shutdown,
        })
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The shared state, e.g. to read metrics in tests.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until SIGTERM or Ctrl-C, then shuts down gracefully.
    pub async fn run_until_stopped(self) -> Result<(), StartError> {
        self.run_until(service_kit::shutdown_signal()).await
    }

    /// Serves until `signal` resolves. Then: no new connections; long-polls answer and event
    /// streams end; in-flight requests (appends included) finish; the writer commits what is
    /// queued and stops.
    pub async fn run_until(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let shutdown = self.shutdown.clone();
        // No Nagle delay: SSE pushes and small answers leave at once.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%error, "could not set TCP_NODELAY on a connection");
            }
        });
        let served = axum::serve(listener, router(self.state))
            .with_graceful_shutdown(async move {
                signal.await;
                shutdown.cancel();
            })
            .await;
        self.storage.close().await;
        tracing::info!("event store stopped");
        served.map_err(StartError::Serve)
    }
}
