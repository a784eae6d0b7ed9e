//! Conventions every fleet service shares: tracing, graceful shutdown, the `healthcheck`
//! subcommand, Prometheus text metrics, one JSON error type and environment configuration.

pub mod config;
pub mod error;
pub mod healthcheck;
pub mod metrics;
pub mod serve;
pub mod shutdown;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;

pub use config::{env_or, env_port, ConfigError};
pub use error::{ApiJson, ApiQuery, AppError};
pub use healthcheck::run_healthcheck;
pub use metrics::{Counter, Gauge, MetricsText};
pub use serve::{BindError, Listener};
pub use shutdown::shutdown_signal;
pub use telemetry::init_tracing;
