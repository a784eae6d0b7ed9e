//! The `event-store` binary: serve (default) or probe a running instance (`healthcheck`).

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(
    version,
    about = "Durable event streams, a global log and consumer groups over HTTP"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<service_kit::Command>,
}

fn main() -> ExitCode {
    service_kit::service::main::<event_store::Application>(Cli::parse().command)
}
