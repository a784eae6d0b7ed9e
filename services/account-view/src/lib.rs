//! The account view: the CQRS query side. It follows the event store's global log, projects
//! account and transfer events into denormalized documents in its own SQLite file, and answers
//! queries, waiting a bounded time for a `min_version` a client needs (read-your-writes).
//!
//! Each batch of events is applied in one SQLite transaction together with the checkpoint (the
//! global position of the last event applied), so every event changes the view exactly once,
//! across restarts and redeliveries.

pub mod db;
mod follower;
mod http;
pub mod projection;
#[cfg(feature = "testing")]
pub mod testing;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use es_client::EventStoreClient;
use service_kit::{Counter, Listener, ServeError};
use tokio::sync::watch;

pub use db::{AccountDoc, DbError, TransferDoc, ViewDb};
pub use follower::{catch_up, FollowError, WriterLock};
pub use http::router;

/// The version of the projection: what `projection::project` makes of the log. Raise it when a
/// change to the projection needs the view rebuilt from the log; the image's label
/// `io.fleet.projection.version` (from `ci/events/account-view.projection`, which a workspace
/// test keeps equal to this) then tells the deployer to roll the view blue/green on a fresh
/// volume, cutting over once the new container has caught up.
pub const PROJECTION_VERSION: u32 = 1;

/// The name of the view's database file inside `DATA_DIR`.
pub const DB_FILE: &str = "account-view.sqlite3";
/// The writer lock beside it: the process holding it is the one that writes the view.
pub const LOCK_FILE: &str = "account-view.writer.lock";

/// The service's settings; [`Config::from_env`] documents the variables.
#[derive(Debug, Clone)]
pub struct Config {
    pub host: [u8; 4],
    pub port: u16,
    pub data_dir: PathBuf,
    pub event_store_url: String,
    /// How long a query with `min_version` waits for the view to catch up before a 503.
    pub max_wait: Duration,
    /// Empty the view and rebuild it from position 0 before serving.
    pub rebuild: bool,
    /// Follow the event store (off only in tests that feed the view by hand).
    pub follow: bool,
}

impl Config {
    /// `PORT` (8103), `DATA_DIR` (./data), `EVENT_STORE_URL` (http://127.0.0.1:8100),
    /// `VIEW_MAX_WAIT_MS` (2000), `VIEW_REBUILD` (false).
    pub fn from_env() -> Result<Self, service_kit::ConfigError> {
        Ok(Self {
            host: [0, 0, 0, 0],
            port: service_kit::env_port(8103)?,
            data_dir: PathBuf::from(service_kit::env_or("DATA_DIR", "./data".to_owned())?),
            event_store_url: service_kit::env_or(
                "EVENT_STORE_URL",
                "http://127.0.0.1:8100".to_owned(),
            )?,
            max_wait: Duration::from_millis(service_kit::env_or("VIEW_MAX_WAIT_MS", 2000u64)?),
            rebuild: service_kit::env_or("VIEW_REBUILD", false)?,
            follow: true,
        })
    }

    /// Loopback, port 0, this data dir and event store: for tests.
    pub fn for_tests(data_dir: impl Into<PathBuf>, event_store_url: &str) -> Self {
        Self {
            host: [127, 0, 0, 1],
            port: 0,
            data_dir: data_dir.into(),
            event_store_url: event_store_url.to_owned(),
            max_wait: Duration::from_secs(2),
            rebuild: false,
            follow: true,
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join(DB_FILE)
    }

    pub fn lock_path(&self) -> PathBuf {
        self.data_dir.join(LOCK_FILE)
    }
}

/// Read connections, handed out round-robin; each is used on a blocking thread.
#[derive(Clone)]
pub struct Readers {
    conns: Arc<Vec<Mutex<ViewDb>>>,
    next: Arc<AtomicUsize>,
}

impl Readers {
    fn open(path: &std::path::Path, n: usize) -> Result<Self, DbError> {
        let conns = (0..n.max(1))
            .map(|_| ViewDb::open(path).map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            conns: Arc::new(conns),
            next: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Runs `f` with one read connection on a blocking thread.
    pub async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&ViewDb) -> Result<T, DbError> + Send + 'static,
    ) -> Result<T, DbError> {
        let conns = self.conns.clone();
        let i = self.next.fetch_add(1, Ordering::Relaxed) % conns.len();
        tokio::task::spawn_blocking(move || {
            let guard = conns[i].lock().unwrap_or_else(|p| p.into_inner());
            f(&guard)
        })
        .await
        .unwrap_or_else(|join| Err(DbError::Task(join.to_string())))
    }
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Readers({})", self.conns.len())
    }
}

/// What the handlers and the follower share.
#[derive(Debug, Clone)]
pub struct AppState {
    pub readers: Readers,
    /// The checkpoint after each committed batch; queries wait on it.
    pub checkpoint: watch::Receiver<u64>,
    pub max_wait: Duration,
    pub metrics: Arc<Metrics>,
}

/// Counters shown at `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    pub events_applied: Counter,
    pub batches: Counter,
    /// Events the projection could not read, left out of the view (the follower's poison policy).
    pub events_skipped: Counter,
    pub out_of_date: Counter,
    /// The store's head as of the last page read (see [`Metrics::head_known`]).
    pub head: service_kit::Gauge,
    /// Whether a page has been read yet: before that, the head (and so the lag) is unknown.
    pub head_known: std::sync::atomic::AtomicBool,
}

/// How far the view has got, as `GET /projection` answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProjectionStatus {
    /// [`PROJECTION_VERSION`].
    pub version: u32,
    /// The global position of the last event applied (the checkpoint).
    pub position: u64,
    /// The store's head as of the last read of the log; `None` before the first read.
    pub head: Option<u64>,
    /// `head - position`; `None` while the head is unknown, so a view that has not read yet is
    /// never taken for caught up.
    pub lag: Option<u64>,
}

impl AppState {
    /// The projection's version, position, head and lag now.
    pub fn projection(&self) -> ProjectionStatus {
        let position = *self.checkpoint.borrow();
        let head = self.metrics.head_known.load(Ordering::Acquire).then(|| {
            u64::try_from(self.metrics.head.get())
                .unwrap_or(0)
                .max(position)
        });
        ProjectionStatus {
            version: PROJECTION_VERSION,
            position,
            head,
            lag: head.map(|h| h - position),
        }
    }
}

/// Why the view could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("could not create the data directory {path}: {source}; check DATA_DIR")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Bind(#[from] service_kit::BindError),
    #[error("invalid EVENT_STORE_URL: {0}")]
    Store(#[from] es_client::ClientError),
}

/// The bound, ready-to-run view.
pub struct Application {
    listener: Listener,
    state: AppState,
    writer: ViewDb,
    client: EventStoreClient,
    checkpoint_tx: watch::Sender<u64>,
    follow: bool,
    lock: WriterLock,
    /// Empty the view before following (once the writer lock is held).
    rebuild: bool,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
            path: config.data_dir.display().to_string(),
            source,
        })?;
        let path = config.db_path();
        let writer = ViewDb::open(&path)?;
        let checkpoint = writer.checkpoint()?;
        let (checkpoint_tx, checkpoint_rx) = watch::channel(checkpoint);
        let state = AppState {
            readers: Readers::open(&path, 4)?,
            checkpoint: checkpoint_rx,
            max_wait: config.max_wait,
            metrics: Arc::new(Metrics::default()),
        };
        let client = EventStoreClient::new(&config.event_store_url)?;
        let listener = Listener::bind("the account view", config.host, config.port).await?;
        Ok(Self {
            listener,
            state,
            writer,
            client,
            checkpoint_tx,
            follow: config.follow,
            lock: WriterLock::new(config.lock_path()),
            rebuild: config.rebuild,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.port()
    }

    /// Serves and follows the event store (the worker `account-view-follower`) until `stop`
    /// resolves. The batch being applied is committed (or not at all) before the process ends.
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        if self.follow {
            let (client, writer, checkpoint_tx, metrics) = (
                self.client,
                self.writer,
                self.checkpoint_tx,
                self.state.metrics.clone(),
            );
            let (lock, rebuild) = (self.lock, self.rebuild);
            self.listener
                .workers()
                .spawn("account-view-follower", move |stopped| {
                    follower::follow(
                        client,
                        writer,
                        lock,
                        rebuild,
                        checkpoint_tx,
                        metrics,
                        stopped,
                    )
                });
        }
        self.listener.serve(router(self.state), stop).await
    }
}

service_kit::service!(Application, Config, "the account view");
