//! The service skeleton: what every service binary's `main` does, written once.
//!
//! A service implements [`Service`] on its `Application` (build from a config, bind through
//! [`crate::Listener`], run until a stop future resolves). Its `main` parses its CLI, with
//! [`Command`] for the two subcommands every image has, and calls [`main`]:
//!
//! ```text
//! fn main() -> ExitCode {
//!     service_kit::service::main::<accounts::Application>(Cli::parse().command)
//! }
//! ```
//!
//! - `serve` (or no subcommand): tracing to stderr, configuration from the environment, a
//!   multi-threaded runtime, build, then serve until SIGTERM or Ctrl-C
//!   ([`crate::shutdown_signal`]), or until `WORKER_STOP_EXIT_AFTER` seconds (default 30) after
//!   a background worker stopped: `/health` answers 503 meanwhile, then the process exits 1 and
//!   the engine's restart policy starts it again.
//! - `healthcheck`: `GET /health` on `127.0.0.1:$PORT` without a runtime (Docker's
//!   HEALTHCHECK in the `FROM scratch` images runs `/service healthcheck`).
//! - Every error is printed once, as `error: ` and its whole chain, with exit code 1.

use std::future::Future;
use std::process::ExitCode;

use anyhow::Context;

use crate::config::ConfigError;

/// The subcommands every service binary has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Subcommand)]
pub enum Command {
    /// Run the service (the default). Configured by environment variables; see README.md.
    Serve,
    /// Probe GET /health on 127.0.0.1:$PORT; exit 0 when healthy, 1 otherwise.
    Healthcheck,
}

/// The subcommands of a service binary that produces events: [`Command`]'s, and
/// `event-schemas`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Subcommand)]
pub enum ProducerCommand {
    #[command(flatten)]
    Service(Command),
    /// Print the JSON Schemas (draft 2020-12) of the events this service produces, as one line
    /// of JSON {"Type@version": schema}; ci/build-images.sh puts it in the image's
    /// io.fleet.events.schemas label.
    EventSchemas,
}

/// A service the skeleton can run; [`crate::service!`] implements it over a service's own
/// `Application::build`, `Application::run_until` and `Config::from_env`.
pub trait Service: Sized {
    /// The service in messages, such as "the accounts service".
    const NAME: &'static str;
    type Config;

    /// Reads the configuration from the environment.
    fn from_env() -> Result<Self::Config, ConfigError>;
    /// The port `config` serves on (the healthcheck probes it).
    fn port(config: &Self::Config) -> u16;
    /// Builds the service and binds its port.
    fn build(config: Self::Config) -> impl Future<Output = anyhow::Result<Self>>;
    /// Serves until `stop` resolves, then shuts down gracefully.
    fn run_until(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = anyhow::Result<()>>;
}

/// Implements [`Service`] for `$app` from its inherent `build(config)` and
/// `run_until(self, stop)` and `$config`'s `from_env()` and `port` field:
/// `service_kit::service!(Application, Config, "the accounts service");`.
#[macro_export]
macro_rules! service {
    ($app:ty, $config:ty, $name:expr) => {
        impl $crate::Service for $app {
            const NAME: &'static str = $name;
            type Config = $config;

            fn from_env() -> ::std::result::Result<$config, $crate::ConfigError> {
                <$config>::from_env()
            }

            fn port(config: &$config) -> u16 {
                config.port
            }

            async fn build(config: $config) -> $crate::service::anyhow::Result<Self> {
                Ok(<$app>::build(config).await?)
            }

            async fn run_until(
                self,
                stop: impl ::std::future::Future<Output = ()> + Send + 'static,
            ) -> $crate::service::anyhow::Result<()> {
                Ok(<$app>::run_until(self, stop).await?)
            }
        }
    };
}

#[doc(hidden)]
pub use anyhow;

/// The whole `main` of a service whose only subcommands are [`Command`]'s.
pub fn main<S: Service>(command: Option<Command>) -> ExitCode {
    crate::init_tracing();
    match command.unwrap_or(Command::Serve) {
        Command::Serve => exit(config::<S>().and_then(serve::<S>)),
        Command::Healthcheck => healthcheck::<S>(),
    }
}

/// The whole `main` of a service that produces events: [`main`], and `event-schemas` prints
/// what `schemas` returns (the label's JSON) on one line, or the error with exit code 1.
pub fn main_producing<S: Service, E: std::fmt::Display>(
    command: Option<ProducerCommand>,
    schemas: impl FnOnce() -> Result<String, E>,
) -> ExitCode {
    match command {
        Some(ProducerCommand::EventSchemas) => match schemas() {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::FAILURE
            }
        },
        Some(ProducerCommand::Service(command)) => main::<S>(Some(command)),
        None => main::<S>(None),
    }
}

/// The `healthcheck` subcommand: probes `/health` on the configured port.
pub fn healthcheck<S: Service>() -> ExitCode {
    match config::<S>() {
        Ok(config) => crate::run_healthcheck(S::port(&config), crate::health::PATH),
        Err(error) => exit::<()>(Err(error)),
    }
}

/// Reads `S`'s configuration from the environment.
pub fn config<S: Service>() -> anyhow::Result<S::Config> {
    S::from_env().with_context(|| format!("reading the configuration of {}", S::NAME))
}

/// How many seconds a service goes on answering 503 after a background worker stopped, before
/// it exits with an error so that the engine's restart policy starts it again; 0 keeps it up.
pub const WORKER_STOP_EXIT_AFTER: &str = "WORKER_STOP_EXIT_AFTER";

/// Builds `S` from `config` and serves it until SIGTERM or Ctrl-C, or until
/// [`WORKER_STOP_EXIT_AFTER`] seconds (30 by default) after a background worker stopped.
pub fn serve<S: Service>(config: S::Config) -> anyhow::Result<()> {
    let exit_after: u64 = crate::env_or(WORKER_STOP_EXIT_AFTER, 30)
        .with_context(|| format!("reading the configuration of {}", S::NAME))?;
    if exit_after > 0 {
        crate::serve::exit_after_worker_stop(std::time::Duration::from_secs(exit_after));
    }
    block_on(async {
        let service = S::build(config)
            .await
            .with_context(|| format!("starting {}", S::NAME))?;
        service
            .run_until(crate::shutdown_signal())
            .await
            .with_context(|| format!("serving {}", S::NAME))
    })?
}

/// Runs `future` to its end on a new multi-threaded runtime.
pub fn block_on<F: Future>(future: F) -> anyhow::Result<F::Output> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    Ok(runtime.block_on(future))
}

/// The exit code of a command's result; an error is printed to stderr with its whole chain.
pub fn exit<T: Into<Outcome>>(result: anyhow::Result<T>) -> ExitCode {
    match result {
        Ok(outcome) => outcome.into().0,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// What a command that succeeded exits with: 0 for `()`, or its own code.
pub struct Outcome(ExitCode);

impl From<()> for Outcome {
    fn from((): ()) -> Self {
        Outcome(ExitCode::SUCCESS)
    }
}

impl From<ExitCode> for Outcome {
    fn from(code: ExitCode) -> Self {
        Outcome(code)
    }
}
