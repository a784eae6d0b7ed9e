//! Service configuration, read from the environment (defaults in README.md).

use std::path::PathBuf;

use service_kit::{env_or, env_port, ConfigError};

/// Default HTTP port of the event store.
pub const DEFAULT_PORT: u16 = 8100;

/// Everything the event store can be configured with.
#[derive(Debug, Clone)]
pub struct Config {
    /// `PORT`: TCP port on 0.0.0.0 (0 picks a free port).
    pub port: u16,
    /// `DATA_DIR`: directory holding `events.sqlite3` (created if missing).
    pub data_dir: PathBuf,
    /// `EVENT_STORE_MAX_BODY_BYTES`: largest accepted request body.
    pub max_body_bytes: usize,
    /// `EVENT_STORE_MAX_BATCH`: most events in one append or import.
    pub max_batch: usize,
    /// `EVENT_STORE_MAX_READ_LIMIT`: most events one read returns.
    pub max_read_limit: usize,
    /// `EVENT_STORE_MAX_WAIT_MS`: longest long-poll wait.
    pub max_wait_ms: u64,
    /// `EVENT_STORE_READ_CONNECTIONS`: SQLite reader connections.
    pub read_connections: usize,
    /// `EVENT_STORE_MAX_GROUP_COMMIT`: most writes committed in one transaction.
    pub max_group_commit: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            port: DEFAULT_PORT,
            data_dir: PathBuf::from("./data"),
            max_body_bytes: 4 * 1024 * 1024,
            max_batch: 1000,
            max_read_limit: 10_000,
            max_wait_ms: 60_000,
            read_connections: 4,
            max_group_commit: 1024,
        }
    }
}

impl Config {
    /// A configuration for tests and embedding: port 0 (any free port), data in `data_dir`.
    pub fn ephemeral(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            port: 0,
            data_dir: data_dir.into(),
            ..Self::default()
        }
    }

    /// Reads the environment; unset or empty variables keep their defaults.
    pub fn from_env() -> Result<Self, ConfigError> {
        let d = Self::default();
        Ok(Self {
            port: env_port(d.port)?,
            data_dir: PathBuf::from(env_or("DATA_DIR", d.data_dir.display().to_string())?),
            max_body_bytes: env_or("EVENT_STORE_MAX_BODY_BYTES", d.max_body_bytes)?,
            max_batch: env_or("EVENT_STORE_MAX_BATCH", d.max_batch)?,
            max_read_limit: env_or("EVENT_STORE_MAX_READ_LIMIT", d.max_read_limit)?,
            max_wait_ms: env_or("EVENT_STORE_MAX_WAIT_MS", d.max_wait_ms)?,
            read_connections: env_or("EVENT_STORE_READ_CONNECTIONS", d.read_connections)?,
            max_group_commit: env_or("EVENT_STORE_MAX_GROUP_COMMIT", d.max_group_commit)?,
        })
    }

    /// The SQLite file inside `data_dir`.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("events.sqlite3")
    }
}
