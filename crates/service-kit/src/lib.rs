//! Conventions every fleet service shares: the service skeleton (`service::main`), the one
//! listener, background workers whose stop turns `/health` to 503, tracing, graceful shutdown,
//! the `healthcheck` subcommand, Prometheus text metrics, one JSON error type and environment
//! configuration.

pub mod config;
pub mod error;
pub mod health;
pub mod healthcheck;
pub mod metrics;
pub mod net;
pub mod serve;
pub mod service;
pub mod shutdown;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod workers;

pub use config::{env_or, env_port, ConfigError};
pub use error::{ApiJson, ApiQuery, AppError};
pub use healthcheck::run_healthcheck;
pub use metrics::{Counter, Gauge, MetricsText};
pub use serve::{BindError, Listener, ServeError};
pub use service::{Command, ProducerCommand, Service};
pub use shutdown::shutdown_signal;
pub use telemetry::init_tracing;
pub use workers::{Stopped, Workers};
