//! The `event-store` binary: serve (default) or probe a running instance (`healthcheck`).

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use event_store::{Application, Config};

#[derive(Parser)]
#[command(
    version,
    about = "Durable event streams, a global log and consumer groups over HTTP"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service (the default). Configured by environment variables; see README.md.
    Serve,
    /// Probe GET /health on 127.0.0.1:$PORT; exit 0 when healthy, 1 otherwise.
    Healthcheck,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Healthcheck => match service_kit::env_port(event_store::config::DEFAULT_PORT) {
            Ok(port) => service_kit::run_healthcheck(port, "/health"),
            Err(error) => {
                eprintln!("healthcheck: {error}");
                ExitCode::FAILURE
            }
        },
        Command::Serve => match serve() {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("event-store: {error:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn serve() -> anyhow::Result<()> {
    service_kit::init_tracing();
    let config = Config::from_env().context("reading the configuration")?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let app = Application::build(config)
            .await
            .context("starting the event store")?;
        app.run_until_stopped()
            .await
            .context("running the event store")
    })
}
