//! The `archiver` binary: the service, plus `verify`, `restore`, `digest` and `healthcheck`.
//!
//! Exit codes: 0 success; 1 the service or a command failed; 2 `verify` found a fault or
//! `digest --compare` found the logs differ (and the usage errors clap reports).

use std::process::ExitCode;

use anyhow::Context;
use archiver::{Application, Archive, Config, StoreClient};
use clap::{Parser, Subcommand, ValueEnum};
use service_kit::service;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Archives the event log to object storage; verifies and restores archives."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    #[command(flatten)]
    Service(service_kit::Command),
    #[command(flatten)]
    Tool(Tool),
}

#[derive(Debug, Subcommand)]
enum Tool {
    /// Check every segment: checksums, decoding, and positions from 1 to the last with no gap.
    Verify {
        #[command(flatten)]
        archive: ArchiveArg,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Replay the archive into an empty event store (same events, versions, positions and
    /// recorded_at times).
    Restore {
        #[command(flatten)]
        archive: ArchiveArg,
        /// The event store to restore into.
        #[arg(long, env = "EVENT_STORE_URL", default_value = archiver::config::DEFAULT_EVENT_STORE_URL)]
        event_store_url: String,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Print a digest of the whole log of the archive or of a store; equal digests mean
    /// identical events, versions, positions and recorded_at times.
    Digest {
        #[command(flatten)]
        archive: ArchiveArg,
        #[arg(long, env = "EVENT_STORE_URL", default_value = archiver::config::DEFAULT_EVENT_STORE_URL)]
        event_store_url: String,
        /// What to digest.
        #[arg(long, value_enum, default_value = "archive")]
        from: Source,
        /// Digest both and exit 2 when they differ.
        #[arg(long)]
        compare: bool,
    },
}

#[derive(Debug, clap::Args)]
struct ArchiveArg {
    /// The archive: a directory, file:///dir or s3://bucket/prefix (default: ARCHIVER_LOCATION,
    /// else <DATA_DIR>/archive).
    #[arg(long)]
    archive: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Source {
    Archive,
    Store,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        None => service::main::<Application>(None),
        Some(Command::Service(command)) => service::main::<Application>(Some(command)),
        Some(Command::Tool(tool)) => {
            service_kit::init_tracing();
            service::exit(
                service::config::<Application>()
                    .and_then(|config| service::block_on(run(tool, config))?),
            )
        }
    }
}

async fn run(tool: Tool, config: Config) -> anyhow::Result<ExitCode> {
    match tool {
        Tool::Verify { archive, output } => {
            let archive = open(&archive, &config)?;
            let report = archiver::verify(&archive)
                .await
                .with_context(|| format!("could not verify {}", archive.description()))?;
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
                Output::Text => {
                    for name in &report.unlisted_segments {
                        eprintln!("note: {name} is not in the manifest (left by a crash; the archiver removes it at its next start)");
                    }
                    match &report.fault {
                        None => println!(
                            "ok: {} segments, {} events, positions 1 to {} with no gap",
                            report.segments_checked, report.events_checked, report.last_position
                        ),
                        Some(fault) => println!(
                            "fault: {fault} (after {} good segments ending at position {})",
                            report.segments_checked, report.last_position
                        ),
                    }
                }
            }
            Ok(if report.is_ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
        Tool::Restore {
            archive,
            event_store_url,
            output,
        } => {
            let archive = open(&archive, &config)?;
            let client = client(&event_store_url)?;
            let report = archiver::restore(&archive, &client, |position| {
                tracing::info!(position, "restored up to position");
            })
            .await
            .with_context(|| {
                format!(
                    "could not restore {} into {event_store_url}",
                    archive.description()
                )
            })?;
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
                Output::Text => println!(
                    "restored {} events ({} already present) in {:.1}s up to position {}; archive digest {}",
                    report.restored,
                    report.skipped,
                    report.seconds,
                    report.last_position,
                    report.archive_digest.sha256
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
        Tool::Digest {
            archive,
            event_store_url,
            from,
            compare,
        } => {
            let archive = open(&archive, &config)?;
            let client = client(&event_store_url)?;
            let of_archive = || async {
                archiver::archive_digest(&archive)
                    .await
                    .with_context(|| format!("could not digest {}", archive.description()))
            };
            let of_store = || async {
                archiver::store_digest(&client)
                    .await
                    .with_context(|| format!("could not digest the store at {event_store_url}"))
            };
            if compare {
                let (a, s) = (of_archive().await?, of_store().await?);
                println!(
                    "archive {} {} events up to {}",
                    a.sha256, a.events, a.last_position
                );
                println!(
                    "store   {} {} events up to {}",
                    s.sha256, s.events, s.last_position
                );
                return Ok(if a == s {
                    println!("equal");
                    ExitCode::SUCCESS
                } else {
                    println!("different");
                    ExitCode::from(2)
                });
            }
            let digest = match from {
                Source::Archive => of_archive().await?,
                Source::Store => of_store().await?,
            };
            println!("{}", serde_json::to_string(&digest)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn open(arg: &ArchiveArg, config: &Config) -> anyhow::Result<Archive> {
    let location = arg
        .archive
        .clone()
        .unwrap_or_else(|| config.archive_location());
    Archive::open_with(&location, &config.s3_options)
        .with_context(|| format!("could not open the archive {location}"))
}

fn client(url: &str) -> anyhow::Result<StoreClient> {
    StoreClient::new(url).with_context(|| format!("could not use the event store url {url}"))
}
