//! The transfers binary: `transfers` (or `transfers serve`) runs it; `transfers healthcheck` probes it;
//! `transfers event-schemas` prints the JSON Schemas of the events it produces.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    #[command(flatten)]
    Service(service_kit::Command),
    /// Print the JSON Schemas (draft 2020-12) of the events this service produces, as one line
    /// of JSON {"Type@version": schema}; ci/build-images.sh puts it in the image's
    /// io.fleet.events.schemas label.
    EventSchemas,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Some(Command::EventSchemas) => match transfers::event_schemas() {
            Ok(schemas) => {
                println!("{}", banking::schema::label(&schemas));
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::FAILURE
            }
        },
        Some(Command::Service(command)) => {
            service_kit::service::main::<transfers::Application>(Some(command))
        }
        None => service_kit::service::main::<transfers::Application>(None),
    }
}
