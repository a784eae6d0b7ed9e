//! Conventions every fleet service shares: health, metrics, graceful shutdown, the healthcheck subcommand.
