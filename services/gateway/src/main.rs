//! The gateway binary: `gateway` (or `gateway serve`) runs it; `gateway healthcheck` probes it.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use gateway::{Application, Config};

#[derive(Parser)]
#[command(about = "The banking fleet's API gateway and web UI", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API and UI (the default).
    Serve,
    /// Probe GET /health on the local port; exit 0 when healthy.
    Healthcheck,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    service_kit::init_tracing();
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(),
        Command::Healthcheck => {
            return match Config::from_env() {
                Ok(c) => service_kit::run_healthcheck(c.port, "/health"),
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve() -> anyhow::Result<()> {
    let config = Config::from_env().context("reading the gateway configuration")?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let app = Application::build(config)
            .await
            .context("starting the gateway")?;
        app.run_until_stopped().await.context("serving the gateway")
    })
}
