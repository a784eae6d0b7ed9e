//! Building and running the service: open the archive, bind the port, then run the archiving
//! loop and the HTTP server until a signal (or until the loop fails).

use std::future::Future;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::archive::{Archive, ArchiveError};
use crate::config::Config;
use crate::http::{router, AppState};
use crate::store::{StoreClient, StoreError};
use crate::writer::{Archiver, ArchiverError, Metrics};

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("could not open the archive: {0}")]
    Archive(#[from] ArchiveError),
    #[error("invalid EVENT_STORE_URL: {0}")]
    Store(#[from] StoreError),
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
    #[error("archiving stopped: {0}")]
    Archiver(#[from] ArchiverError),
}

/// A built, bound, not yet running archiver.
pub struct Application {
    listener: TcpListener,
    port: u16,
    archiver: Archiver,
    state: AppState,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let location = config.archive_location();
        let archive = Archive::open_with(&location, &config.s3_options)?;
        let client = StoreClient::new(&config.event_store_url)?;
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
        let metrics = Metrics::default();
        let archiver = Archiver::new(archive, client, config.settings, metrics.clone());
        tracing::info!(port, archive = %location, store = %config.event_store_url, "archiver ready");
        Ok(Self {
            listener,
            port,
            archiver,
            state: AppState {
                metrics,
                archive: location,
            },
        })
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn metrics(&self) -> &Metrics {
        &self.state.metrics
    }

    /// Serves until SIGTERM or Ctrl-C, then flushes the open segment and stops.
    pub async fn run_until_stopped(self) -> Result<(), StartError> {
        self.run_until(service_kit::shutdown_signal()).await
    }

    /// Serves until `signal` resolves or the archiving loop fails.
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
        let loop_stop = stop.clone();
        let archiver = self.archiver;
        let archiving = tokio::spawn(async move {
            let result = archiver.run(loop_stop.clone().cancelled_owned()).await;
            loop_stop.cancel();
            result
        });
        let served = axum::serve(self.listener, router(self.state))
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
        let archived = archiving.await;
        tracing::info!("archiver stopped");
        served.map_err(StartError::Serve)?;
        match archived {
            Ok(result) => result.map_err(StartError::from),
            Err(join) => Err(StartError::Serve(std::io::Error::other(join.to_string()))),
        }
    }
}
