//! Tracing setup: an env-filter read from `RUST_LOG`, human-readable lines on stderr.

use tracing_subscriber::{fmt, EnvFilter};

/// Installs the global tracing subscriber.
///
/// The filter comes from `RUST_LOG` (default `info`). Logs go to stderr so that stdout stays free
/// for machine-readable output. Calling it twice is harmless: the second call does nothing.
pub fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // `try_init` fails only when a subscriber is already installed, which is fine.
    let _ = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(true)
        .try_init();
}
