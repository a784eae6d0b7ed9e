//! The account-view binary: `account-view` (or `serve`) runs it, `account-view rebuild` rebuilds
//! the view from position 0 and exits, `account-view healthcheck` probes it.

use std::process::ExitCode;

use account_view::{Application, Config, ViewDb};
use anyhow::Context;
use clap::{Parser, Subcommand};
use service_kit::service;

#[derive(Parser)]
#[command(
    about = "The account view: the query side of the banking fleet",
    version
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve queries and follow the event store (the default).
    Serve {
        /// Empty the view and rebuild it from position 0 first (also VIEW_REBUILD=true).
        #[arg(long)]
        rebuild: bool,
    },
    /// Empty the view, replay the whole event log into it, and exit.
    Rebuild,
    /// Probe GET /health on the local port; exit 0 when healthy.
    Healthcheck,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    service_kit::init_tracing();
    let config = service::config::<Application>;
    match cli.command.unwrap_or(Command::Serve { rebuild: false }) {
        Command::Healthcheck => service::healthcheck::<Application>(),
        Command::Serve { rebuild } => service::exit(config().and_then(|config| {
            service::serve::<Application>(Config {
                rebuild: config.rebuild || rebuild,
                ..config
            })
        })),
        Command::Rebuild => service::exit(config().and_then(rebuild)),
    }
}

fn rebuild(config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
    let _lock = account_view::WriterLock::new(config.lock_path())
        .try_take()
        .context("taking the view's writer lock")?
        .with_context(|| {
            format!(
                "another account-view process writes the view in {}; stop it first",
                config.data_dir.display()
            )
        })?;
    let mut db = ViewDb::open(&config.db_path()).context("opening the view database")?;
    db.reset().context("emptying the view")?;
    let client = es_client::EventStoreClient::new(&config.event_store_url)
        .context("reading EVENT_STORE_URL")?;
    let (_, checkpoint) = service::block_on(account_view::catch_up(&client, db))?
        .context("replaying the event log into the view")?;
    eprintln!("account-view: rebuilt up to position {checkpoint}");
    Ok(())
}
