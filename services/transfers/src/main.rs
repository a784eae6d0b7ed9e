//! The transfers binary: `transfers` (or `transfers serve`) runs it; `transfers healthcheck` probes it.

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(
    about = "The transfers service: command side of the MoneyTransfer aggregate",
    version
)]
struct Cli {
    #[command(subcommand)]
    command: Option<service_kit::Command>,
}

fn main() -> ExitCode {
    service_kit::service::main::<transfers::Application>(Cli::parse().command)
}
