//! The transfers binary: `transfers` (or `transfers serve`) runs it; `transfers healthcheck` probes it.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use transfers::{Application, Config};

#[derive(Parser)]
#[command(
    about = "The transfers service: command side of the MoneyTransfer aggregate",
    version
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API and run the saga handlers (the default).
    Serve,
    /// Probe GET /health on the local port; exit 0 when healthy.
    Healthcheck,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    service_kit::init_tracing();
    if let Some(Command::Healthcheck) = cli.command {
        return match Config::from_env() {
            Ok(c) => service_kit::run_healthcheck(c.port, "/health"),
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match serve() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve() -> anyhow::Result<()> {
    let config = Config::from_env().context("reading the transfers configuration")?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let app = Application::build(config)
            .await
            .context("starting the transfers service")?;
        app.run_until_stopped()
            .await
            .context("serving the transfers service")
    })
}
