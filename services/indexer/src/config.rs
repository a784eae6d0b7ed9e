//! Service configuration, read from the environment (the variables are listed in README.md).

use std::path::PathBuf;
use std::time::Duration;

use service_kit::{env_or, env_port, ConfigError};

use crate::feed::FeedSettings;

/// Default HTTP port of the indexer.
pub const DEFAULT_PORT: u16 = 8105;
/// Default event store.
pub const DEFAULT_EVENT_STORE_URL: &str = "http://127.0.0.1:8100";

/// Everything the indexer can be configured with.
#[derive(Debug, Clone)]
pub struct Config {
    /// `PORT`: TCP port on 0.0.0.0 (0 picks a free port).
    pub port: u16,
    /// `DATA_DIR`: the index lives in `<DATA_DIR>/index`.
    pub data_dir: PathBuf,
    /// `EVENT_STORE_URL`.
    pub event_store_url: String,
    /// `INDEXER_GROUP`, `INDEXER_BATCH`, `INDEXER_POLL_WAIT_MS`, `INDEXER_COMMIT_INTERVAL_MS`,
    /// `INDEXER_COMMIT_EVENTS`.
    pub feed: FeedSettings,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            port: DEFAULT_PORT,
            data_dir: PathBuf::from("./data"),
            event_store_url: DEFAULT_EVENT_STORE_URL.to_owned(),
            feed: FeedSettings::default(),
        }
    }
}

impl Config {
    /// Reads the environment; unset or empty variables keep their defaults.
    pub fn from_env() -> Result<Self, ConfigError> {
        let d = Self::default();
        let f = &d.feed;
        Ok(Self {
            port: env_port(d.port)?,
            data_dir: PathBuf::from(env_or("DATA_DIR", d.data_dir.display().to_string())?),
            event_store_url: env_or("EVENT_STORE_URL", d.event_store_url.clone())?,
            feed: FeedSettings {
                group: env_or("INDEXER_GROUP", f.group.clone())?,
                batch: env_or("INDEXER_BATCH", f.batch)?.max(1),
                poll_wait: Duration::from_millis(env_or(
                    "INDEXER_POLL_WAIT_MS",
                    f.poll_wait.as_millis() as u64,
                )?),
                commit_interval: Duration::from_millis(env_or(
                    "INDEXER_COMMIT_INTERVAL_MS",
                    f.commit_interval.as_millis() as u64,
                )?),
                commit_events: env_or("INDEXER_COMMIT_EVENTS", f.commit_events)?.max(1),
            },
        })
    }

    /// The index directory.
    pub fn index_dir(&self) -> PathBuf {
        self.data_dir.join("index")
    }
}
