//! The account-view binary: `account-view` (or `serve`) runs it, `account-view rebuild` rebuilds
//! the view from position 0 and exits, `account-view healthcheck` probes it.

use std::process::ExitCode;

use account_view::{Application, Config, ViewDb};
use anyhow::Context;
use clap::{Parser, Subcommand};

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
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command.unwrap_or(Command::Serve { rebuild: false }) {
        Command::Healthcheck => return service_kit::run_healthcheck(config.port, "/health"),
        Command::Serve { rebuild } => serve(Config {
            rebuild: config.rebuild || rebuild,
            ..config
        }),
        Command::Rebuild => rebuild(config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().context("starting the async runtime")
}

fn serve(config: Config) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let app = Application::build(config)
            .await
            .context("starting the account view")?;
        app.run_until_stopped()
            .await
            .context("serving the account view")
    })
}

fn rebuild(config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
    let mut db = ViewDb::open(&config.db_path()).context("opening the view database")?;
    db.reset().context("emptying the view")?;
    let client = es_core::EventStoreClient::new(&config.event_store_url)
        .context("reading EVENT_STORE_URL")?;
    let (_, checkpoint) = runtime()?
        .block_on(account_view::catch_up(&client, db))
        .context("replaying the event log into the view")?;
    eprintln!("account-view: rebuilt up to position {checkpoint}");
    Ok(())
}
