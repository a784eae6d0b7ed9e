//! The accounts service: the command side of the Account aggregate, and the saga handlers that
//! debit, credit and refund accounts as transfers progress.
//!
//! Routes: `POST /accounts`, `GET /accounts/{id}` (the aggregate's own state), `DELETE
//! /accounts/{id}`, `GET /health`, `GET /metrics`.

mod http;
pub mod saga;

use std::sync::Arc;

use banking::Account;
use es_client::{EventStoreClient, Repository};
use service_kit::{Counter, Listener, ServeError};

pub use http::router;

/// The JSON Schemas of the events this service produces (every `AccountEvent`), keyed
/// `Type@schema_version`: the `accounts event-schemas` subcommand prints them for the image's
/// `io.fleet.events.schemas` label.
pub fn event_schemas() -> Result<banking::schema::EventSchemas, banking::schema::SchemaError> {
    banking::schema::account_events()
}

/// The service's settings; [`Config::from_env`] documents the variables.
#[derive(Debug, Clone)]
pub struct Config {
    pub host: [u8; 4],
    pub port: u16,
    pub event_store_url: String,
    /// Save a snapshot of an account every this many events.
    pub snapshot_every: u64,
    /// Run the saga handlers (off only in tests that drive them by hand).
    pub run_saga: bool,
}

impl Config {
    /// `PORT` (8101), `EVENT_STORE_URL` (http://127.0.0.1:8100), `ACCOUNTS_SNAPSHOT_EVERY` (20).
    /// `DATA_DIR` is accepted but unused: all state lives in the event store.
    pub fn from_env() -> Result<Self, service_kit::ConfigError> {
        Ok(Self {
            host: [0, 0, 0, 0],
            port: service_kit::env_port(8101)?,
            event_store_url: service_kit::env_or(
                "EVENT_STORE_URL",
                "http://127.0.0.1:8100".to_owned(),
            )?,
            snapshot_every: service_kit::env_or("ACCOUNTS_SNAPSHOT_EVERY", 20u64)?,
            run_saga: true,
        })
    }

    /// Loopback and port 0, against this event store: for tests.
    pub fn for_tests(event_store_url: &str) -> Self {
        Self {
            host: [127, 0, 0, 1],
            port: 0,
            event_store_url: event_store_url.to_owned(),
            snapshot_every: 20,
            run_saga: true,
        }
    }
}

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    pub accounts: Repository<Account>,
    pub metrics: Arc<Metrics>,
}

/// Counters shown at `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    pub commands: Counter,
    pub commands_refused: Counter,
    pub saga_events: Counter,
    pub saga_refunds: Counter,
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Bind(#[from] service_kit::BindError),
    #[error("invalid EVENT_STORE_URL: {0}")]
    Store(#[from] es_client::ClientError),
}

/// How many accounts' states the service keeps between commands (see
/// `es_client::Repository::with_cache`): an account keeps at most 1,000 transaction steps, so
/// this stays within tens of MB.
const CACHED_ACCOUNTS: usize = 1_000;

/// The bound, ready-to-run service.
pub struct Application {
    listener: Listener,
    state: AppState,
    run_saga: bool,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let client = EventStoreClient::new(&config.event_store_url)?;
        let state = AppState {
            accounts: Repository::new(client)
                .with_snapshots(config.snapshot_every)
                .with_cache(CACHED_ACCOUNTS),
            metrics: Arc::new(Metrics::default()),
        };
        let listener = Listener::bind("the accounts service", config.host, config.port).await?;
        Ok(Self {
            listener,
            state,
            run_saga: config.run_saga,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.port()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves and runs the saga handlers (the worker `accounts-saga`) until `stop` resolves;
    /// in-flight requests and the saga batch being handled are finished first.
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        if self.run_saga {
            let state = self.state.clone();
            self.listener
                .workers()
                .spawn("accounts-saga", move |stopped| saga::run(state, stopped));
        }
        self.listener.serve(router(self.state), stop).await
    }
}

service_kit::service!(Application, Config, "the accounts service");
