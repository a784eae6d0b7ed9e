//! The transfers service: the command side of the MoneyTransfer aggregate, and the saga handlers
//! that record on each transfer what its accounts did.
//!
//! Routes: `POST /transfers`, `GET /transfers/{id}` (the aggregate's own state), `GET /health`,
//! `GET /metrics`.

mod http;
pub mod saga;

use std::sync::Arc;

use banking::{Account, AccountId, MoneyTransfer};
use es_client::{EventStoreClient, Repository};
use service_kit::{Counter, Listener, ServeError};

pub use http::router;

/// The JSON Schemas of the events this service produces (every `TransferEvent`), keyed
/// `Type@schema_version`: the `transfers event-schemas` subcommand prints them for the image's
/// `io.fleet.events.schemas` label.
pub fn event_schemas() -> Result<banking::schema::EventSchemas, banking::schema::SchemaError> {
    banking::schema::transfer_events()
}

/// The service's settings; [`Config::from_env`] documents the variables.
#[derive(Debug, Clone)]
pub struct Config {
    pub host: [u8; 4],
    pub port: u16,
    pub event_store_url: String,
    /// Run the saga handlers (off only in tests that drive them by hand).
    pub run_saga: bool,
}

impl Config {
    /// `PORT` (8102), `EVENT_STORE_URL` (http://127.0.0.1:8100). `DATA_DIR` is accepted but
    /// unused: all state lives in the event store.
    pub fn from_env() -> Result<Self, service_kit::ConfigError> {
        Ok(Self {
            host: [0, 0, 0, 0],
            port: service_kit::env_port(8102)?,
            event_store_url: service_kit::env_or(
                "EVENT_STORE_URL",
                "http://127.0.0.1:8100".to_owned(),
            )?,
            run_saga: true,
        })
    }

    /// Loopback and port 0, against this event store: for tests.
    pub fn for_tests(event_store_url: &str) -> Self {
        Self {
            host: [127, 0, 0, 1],
            port: 0,
            event_store_url: event_store_url.to_owned(),
            run_saga: true,
        }
    }
}

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    pub transfers: Repository<MoneyTransfer>,
    /// Read-only: to check that a transfer's accounts exist.
    pub accounts: Repository<Account>,
    /// Accounts seen to exist (they never stop existing).
    pub known_accounts: KnownAccounts,
    pub metrics: Arc<Metrics>,
}

/// A bounded set of account ids known to exist; shared by the request handlers.
#[derive(Debug, Clone, Default)]
pub struct KnownAccounts(Arc<std::sync::RwLock<std::collections::HashSet<AccountId>>>);

impl KnownAccounts {
    /// How many ids are kept before the set starts over.
    const LIMIT: usize = 1_000_000;

    pub fn contains(&self, id: &AccountId) -> bool {
        self.0.read().map(|set| set.contains(id)).unwrap_or(false)
    }

    pub fn insert(&self, id: AccountId) {
        if let Ok(mut set) = self.0.write() {
            if set.len() >= Self::LIMIT {
                set.clear();
            }
            set.insert(id);
        }
    }
}

/// Counters shown at `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    pub created: Counter,
    pub rejected: Counter,
    pub saga_events: Counter,
    pub saga_stale: Counter,
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Bind(#[from] service_kit::BindError),
    #[error("invalid EVENT_STORE_URL: {0}")]
    Store(#[from] es_client::ClientError),
}

/// How many transfers' states the service keeps between the steps of their sagas (see
/// `es_client::Repository::with_cache`); a transfer's state is a few hundred bytes.
const CACHED_TRANSFERS: usize = 10_000;

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
            transfers: Repository::new(client.clone()).with_cache(CACHED_TRANSFERS),
            accounts: Repository::new(client).with_snapshots(100),
            known_accounts: KnownAccounts::default(),
            metrics: Arc::new(Metrics::default()),
        };
        let listener = Listener::bind("the transfers service", config.host, config.port).await?;
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

    /// Serves and runs the saga handlers (the worker `transfers-saga`) until `stop` resolves;
    /// in-flight requests and the saga batch being handled are finished first.
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        if self.run_saga {
            let state = self.state.clone();
            self.listener
                .workers()
                .spawn("transfers-saga", move |stopped| saga::run(state, stopped));
        }
        self.listener.serve(router(self.state), stop).await
    }
}

service_kit::service!(Application, Config, "the transfers service");
