//! The accounts binary: `accounts` (or `accounts serve`) runs it; `accounts healthcheck` probes it;
//! `accounts event-schemas` prints the JSON Schemas of the events it produces.

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(
    about = "The accounts service: command side of the Account aggregate",
    version
)]
struct Cli {
    #[command(subcommand)]
    command: Option<service_kit::ProducerCommand>,
}

fn main() -> ExitCode {
    service_kit::service::main_producing::<accounts::Application, _>(Cli::parse().command, || {
        accounts::event_schemas().map(|schemas| banking::schema::label(&schemas))
    })
}
