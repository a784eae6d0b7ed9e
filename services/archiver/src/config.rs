//! Service configuration, read from the environment (the variables are listed in README.md).

use std::path::PathBuf;
use std::time::Duration;

use service_kit::{env_or, env_port, ConfigError};

use crate::writer::{FlushPolicy, Settings};

/// Default HTTP port of the archiver.
pub const DEFAULT_PORT: u16 = 8104;
/// Default event store.
pub const DEFAULT_EVENT_STORE_URL: &str = "http://127.0.0.1:8100";

/// Everything the archiver can be configured with.
#[derive(Debug, Clone)]
pub struct Config {
    /// `PORT`: TCP port on 0.0.0.0 (0 picks a free port).
    pub port: u16,
    /// `DATA_DIR`: holds the default local archive, `<DATA_DIR>/archive`.
    pub data_dir: PathBuf,
    /// `EVENT_STORE_URL`.
    pub event_store_url: String,
    /// `ARCHIVER_LOCATION`: a directory, `file:///dir` or `s3://bucket/prefix`; empty means
    /// `<DATA_DIR>/archive`.
    pub location: Option<String>,
    /// S3 settings that take precedence over the `AWS_*` environment: (variable, value) pairs
    /// such as `("AWS_ENDPOINT", "http://127.0.0.1:9000")`, for embedding the archiver with
    /// its own bucket. Empty from [`Config::from_env`], which leaves `AWS_*` to the S3 client.
    pub s3_options: Vec<(String, String)>,
    /// `ARCHIVER_GROUP`, `ARCHIVER_BATCH`, `ARCHIVER_POLL_WAIT_MS`,
    /// `ARCHIVER_SEGMENT_MAX_BYTES`, `ARCHIVER_SEGMENT_MAX_EVENTS`, `ARCHIVER_SEGMENT_MAX_AGE_MS`.
    pub settings: Settings,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            port: DEFAULT_PORT,
            data_dir: PathBuf::from("./data"),
            event_store_url: DEFAULT_EVENT_STORE_URL.to_owned(),
            location: None,
            s3_options: Vec::new(),
            settings: Settings::default(),
        }
    }
}

impl Config {
    /// Reads the environment; unset or empty variables keep their defaults.
    pub fn from_env() -> Result<Self, ConfigError> {
        let d = Self::default();
        let s = &d.settings;
        let location: String = env_or("ARCHIVER_LOCATION", String::new())?;
        Ok(Self {
            port: env_port(d.port)?,
            data_dir: PathBuf::from(env_or("DATA_DIR", d.data_dir.display().to_string())?),
            event_store_url: env_or("EVENT_STORE_URL", d.event_store_url.clone())?,
            location: Some(location).filter(|l| !l.is_empty()),
            s3_options: Vec::new(),
            settings: Settings {
                group: env_or("ARCHIVER_GROUP", s.group.clone())?,
                batch: env_or("ARCHIVER_BATCH", s.batch)?.max(1),
                poll_wait: Duration::from_millis(env_or(
                    "ARCHIVER_POLL_WAIT_MS",
                    s.poll_wait.as_millis() as u64,
                )?),
                flush: FlushPolicy {
                    max_bytes: env_or("ARCHIVER_SEGMENT_MAX_BYTES", s.flush.max_bytes)?.max(1),
                    max_events: env_or("ARCHIVER_SEGMENT_MAX_EVENTS", s.flush.max_events)?.max(1),
                    max_age: Duration::from_millis(env_or(
                        "ARCHIVER_SEGMENT_MAX_AGE_MS",
                        s.flush.max_age.as_millis() as u64,
                    )?),
                },
            },
        })
    }

    /// The archive location to open.
    pub fn archive_location(&self) -> String {
        self.location
            .clone()
            .unwrap_or_else(|| self.data_dir.join("archive").display().to_string())
    }
}
