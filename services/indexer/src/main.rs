//! The `indexer` binary: the service, plus `rebuild` and `healthcheck`.
//!
//! Exit codes: 0 success; 1 the service or a command failed.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use indexer::{Application, Config, SearchIndex};
use service_kit::service;

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
    #[command(flatten)]
    Service(service_kit::Command),
    /// Empty the index and set its checkpoint to 0, so the next start rebuilds it from the
    /// beginning of the log. Stop the service first (the index is locked while it runs).
    Rebuild,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        None => service::main::<Application>(None),
        Some(Command::Service(command)) => service::main::<Application>(Some(command)),
        Some(Command::Rebuild) => {
            service_kit::init_tracing();
            service::exit(service::config::<Application>().and_then(|config| rebuild(&config)))
        }
    }
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
