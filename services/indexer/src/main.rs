//! The `indexer` binary: the service, plus `rebuild` and `healthcheck`.
//!
//! Exit codes: 0 success; 1 the service or a command failed.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use indexer::{Config, SearchIndex};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "A full-text index of accounts and transfers, fed by events."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service (the default).
    Serve,
    /// Probe the running service's /health (for Docker's HEALTHCHECK).
    Healthcheck,
    /// Empty the index and set its checkpoint to 0, so the next start rebuilds it from the
    /// beginning of the log. Stop the service first (the index is locked while it runs).
    Rebuild,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    service_kit::init_tracing();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Healthcheck => service_kit::run_healthcheck(config.port, "/health"),
        Command::Rebuild => match rebuild(&config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::FAILURE
            }
        },
        Command::Serve => {
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(runtime) => runtime,
                Err(error) => {
                    eprintln!("error: could not start the async runtime: {error}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(serve(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("error: {error:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let app = indexer::Application::build(config)
        .await
        .context("could not start the indexer")?;
    app.run_until_stopped()
        .await
        .context("the indexer stopped with an error")
}

fn rebuild(config: &Config) -> anyhow::Result<()> {
    let dir = config.index_dir();
    let mut feeder = SearchIndex::open(&dir)
        .with_context(|| format!("could not open the index in {}", dir.display()))?;
    feeder
        .clear()
        .with_context(|| format!("could not empty the index in {}", dir.display()))?;
    println!(
        "the index in {} is empty; start the indexer to rebuild it from position 0",
        dir.display()
    );
    Ok(())
}
