//! The gateway binary: `gateway` (or `gateway serve`) runs it; `gateway healthcheck` probes it.

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(about = "The banking fleet's API gateway and web UI", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<service_kit::Command>,
}

fn main() -> ExitCode {
    service_kit::service::main::<gateway::Application>(Cli::parse().command)
}
