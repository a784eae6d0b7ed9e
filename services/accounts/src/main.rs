//! The accounts binary: `accounts` (or `accounts serve`) runs it; `accounts healthcheck` probes it.

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(
    about = "The accounts service: command side of the Account aggregate",
    version
)]
struct Cli {
    #[command(subcommand)]
    command: Option<service_kit::Command>,
}

fn main() -> ExitCode {
    service_kit::service::main::<accounts::Application>(Cli::parse().command)
}
