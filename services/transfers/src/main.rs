//! The transfers binary: `transfers` (or `transfers serve`) runs it; `transfers healthcheck` probes it;
//! `transfers event-schemas` prints the JSON Schemas of the events it produces.

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(
    about = "The transfers service: command side of the MoneyTransfer aggregate",
    version
)]
struct Cli {
    #[command(subcommand)]
    command: Option<service_kit::ProducerCommand>,
}

fn main() -> ExitCode {
    service_kit::service::main_producing::<transfers::Application, _>(Cli::parse().command, || {
        transfers::event_schemas().map(|schemas| banking::schema::label(&schemas))
    })
}
