//! `deployer`: the command line. Each subcommand parses its flags and calls one library
//! function; errors print as one line (the whole context chain) and exit 1.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};

use deployer::apply::{self, ApplyError, ApplyOptions};
use deployer::contract::{EventGraph, EventVersion, Format};
use deployer::engine::Engine;
use deployer::label_cache::LabelCache;
use deployer::manifest::{self, Manifest};
use deployer::plan::{self, Plan};
use deployer::progress::Progress;
use deployer::registry::{self, DockerConfig, RegistryClient};
use deployer::{down, history, lock, observe, smoke, status};

/// Plan and apply a fleet of containerised services on a Docker Engine.
#[derive(Debug, Parser)]
#[command(
    name = "deployer",
    version,
    after_help = "Examples:\n  deployer validate -f manifests/local.yaml\n  deployer plan -f manifests/local.yaml\n  deployer apply -f manifests/base.yaml -f manifests/ci.yaml\n  deployer smoke-test fleet/accounts:dev --port 8101\n\nExit codes: 0 success, 1 error, 2 changes pending (plan --detailed-exitcode).\nThe engine is found like the docker CLI finds it: DOCKER_HOST (with DOCKER_TLS_VERIFY,\nDOCKER_CERT_PATH), else the context DOCKER_CONTEXT names, else config.json's currentContext.\nplan, apply and rollback print the engine they talk to on stderr.\nRegistries: credentials come from $DOCKER_CONFIG/config.json, else ~/.docker/config.json\n(auths, credHelpers, credsStore; helpers are found on PATH). HTTPS trusts the system's CAs\nplus DIR/<host:port>/*.crt, DIR being $DEPLOYER_REGISTRY_CERTS, else /etc/docker/certs.d.\nlocalhost, 127.0.0.1 and [::1] registries use plain HTTP unless DIR/<host:port>/ exists."
)]
struct Cli {
    /// Manifest file; repeat to overlay files (later ones win). Default: the first of
    /// deployer.yaml, deployer.yml and manifests/local.yaml in the current directory.
    #[arg(short = 'f', long = "file", global = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Project name, for `lock`, `history` and `down` without a manifest.
    #[arg(long, global = true, value_name = "NAME")]
    project: Option<String>,
    /// Output format of plan, status and history.
    #[arg(long, global = true, value_enum, default_value_t = Output::Human)]
    output: Output,
    /// Never colour the output.
    #[arg(long, global = true)]
    no_color: bool,
    /// How long apply, rollback and down wait for the deploy lock while another deployer
    /// holds it (e.g. 30s, 5m); by default they fail at once naming the holder.
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_lock_timeout)]
    lock_timeout: Option<Duration>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show what apply would change, without changing anything.
    #[command(
        after_help = "Examples:\n  deployer plan\n  deployer plan --output json > plan.json\n  deployer plan --out saved.plan --detailed-exitcode   # exit 0: no changes, 2: changes, 1: error\n  deployer plan --allow-incompatible AccountDebited@1   # let the refusals naming it pass\n\nEvent checks: plan reads each image's io.fleet.events.* labels (and the event store's\nGET /event-types when the manifest names event_store) and refuses (exit 1, also with\n--detailed-exitcode) a plan where a consumer could not read what is produced at some roll\nstep, a produced Type@N changes its schema incompatibly, or a consumer drops a stored\nversion. It orders the rolls so consumers gaining a version roll first. See `deployer events`."
    )]
    Plan(PlanArgs),
    /// Print the fleet's event graph (services → Type@version → services), marking every edge
    /// the current plan would break.
    #[command(
        after_help = "Examples:\n  deployer events                        # the desired fleet, as text\n  deployer events --running              # what runs now\n  deployer events --format dot | dot -Tsvg > events.svg\n  deployer events --format mermaid       # paste into a Markdown ```mermaid block\n  deployer events --format json | jq '.edges[] | select(.broken)'\n\nAn edge marked BROKEN (red and dashed in dot and mermaid) is one the plan's event checks\nrefuse: a consumer that cannot read a version, a version whose schema changed, a stored\nversion a consumer drops. Images without io.fleet.events.* labels have no edges.\nExit 0 whatever the graph shows; `deployer plan` is the gate."
    )]
    Events(EventsArgs),
    /// Bring the engine to the manifest's state, with health-gated rolls and fleet rollback.
    #[command(
        after_help = "Examples:\n  deployer apply -f manifests/local.yaml\n  deployer apply --plan saved.plan     # refused if the engine changed since the plan was made\n  deployer apply --allow-incompatible MoneyTransferCreated@1   # recorded in history\n\nA plan the event checks refuse (see `deployer plan`) changes nothing: exit 1.\n\nCtrl-C (SIGINT) or SIGTERM: no new step starts, the run is undone, the lock released; exit 130 / 143.\nA second signal exits at once."
    )]
    Apply(ApplyArgs),
    /// Show or free the deploy lock.
    #[command(
        after_help = "Examples:\n  deployer lock status\n  deployer lock release --project fleet"
    )]
    Lock {
        #[command(subcommand)]
        action: LockAction,
    },
    /// List past applies and rollbacks, newest first.
    #[command(after_help = "Example:\n  deployer history --output json")]
    History,
    /// Return services to their previous successful revision, with the same health gating.
    #[command(
        after_help = "Examples:\n  deployer rollback            # every service the last apply changed\n  deployer rollback accounts"
    )]
    Rollback {
        /// Services to roll back (default: those changed by the last successful apply).
        services: Vec<String>,
    },
    /// Run a local image, wait for 200 on its health path, print its logs if it fails, remove it.
    #[command(
        name = "smoke-test",
        after_help = "Example:\n  deployer smoke-test fleet/accounts:dev --port 8101 --env LOG=debug --timeout 30s\n\nExit codes: 0 healthy, 1 not healthy or error."
    )]
    SmokeTest(SmokeArgs),
    /// Show each service's desired and running image, containers, health and uptime.
    #[command(
        after_help = "Example:\n  deployer status --output json\n\nThe JSON gives each container's published ports as\n  \"ports\": [{\"host_ip\": \"0.0.0.0\", \"host_port\": 32768, \"container_port\": 8080, \"protocol\": \"tcp\"}]\ne.g. jq '.[] | select(.service==\"gateway\") | .containers[0].ports[0].host_port'"
    )]
    Status,
    /// Remove the project's containers and networks (and volumes with --volumes).
    #[command(
        after_help = "Examples:\n  deployer down\n  deployer down --volumes   # also deletes data volumes and the apply history"
    )]
    Down {
        /// Also remove the project's named volumes and its apply history.
        #[arg(long)]
        volumes: bool,
        /// Exit 0 when the engine holds nothing of the project (default: exit 1 saying so).
        #[arg(long)]
        ignore_missing: bool,
    },
    /// Check manifests without an engine: every problem is printed; exit 0 when valid, 1 if not.
    #[command(
        after_help = "Examples:\n  deployer validate -f manifests/local.yaml\n  deployer validate -f base.yaml -f ci.yaml   # the overlay is checked merged over the base\n\nNo engine or registry is contacted; variables, env files and secret files are read."
    )]
    Validate,
    /// Run one health probe (used inside the in-network probe container).
    #[command(hide = true)]
    Probe {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(Debug, Args)]
struct PlanArgs {
    /// Save the plan to FILE, for `deployer apply --plan FILE`.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Exit 0 when there are no changes, 2 when there are, 1 on error.
    #[arg(long)]
    detailed_exitcode: bool,
    /// Skip reading image labels and the event store (for measuring the checks' cost).
    #[arg(long, hide = true)]
    skip_event_checks: bool,
    /// Let the event checks' refusals that name Type@version pass (repeatable); the plan
    /// prints the override and apply records it in history.
    #[arg(long = "allow-incompatible", value_name = "TYPE@VERSION", value_parser = parse_event_version)]
    allow: Vec<EventVersion>,
}

#[derive(Debug, Args)]
struct EventsArgs {
    /// The graph of the containers running now, instead of the manifest's.
    #[arg(long)]
    running: bool,
    /// text, json, dot (Graphviz) or mermaid.
    #[arg(long, value_enum, default_value_t = GraphFormat::Text)]
    format: GraphFormat,
    /// As for plan: refusals naming Type@version no longer mark their edges as refused.
    #[arg(long = "allow-incompatible", value_name = "TYPE@VERSION", value_parser = parse_event_version)]
    allow: Vec<EventVersion>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum GraphFormat {
    Text,
    Json,
    Dot,
    Mermaid,
}

#[derive(Debug, Args)]
struct ApplyArgs {
    /// Apply this saved plan instead of planning afresh.
    #[arg(long, value_name = "FILE")]
    plan: Option<PathBuf>,
    /// Let the event checks' refusals that name Type@version pass (repeatable); recorded in
    /// history. A saved plan carries the overrides it was made with.
    #[arg(long = "allow-incompatible", value_name = "TYPE@VERSION", value_parser = parse_event_version, conflicts_with = "plan")]
    allow: Vec<EventVersion>,
}

#[derive(Debug, Subcommand)]
enum LockAction {
    /// Show who holds the lock.
    Status,
    /// Free the lock whoever holds it (after a crashed apply).
    Release,
}

#[derive(Debug, Args)]
struct SmokeArgs {
    /// A local image (it need not be pushed anywhere).
    image: String,
    /// Container port the service listens on.
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Path that must answer 200.
    #[arg(long, default_value = "/health")]
    path: String,
    /// Environment variable for the container, K=V; repeatable.
    #[arg(long = "env", value_name = "K=V")]
    env: Vec<String>,
    /// How long the container may take to answer 200 (e.g. 500ms, 30s, 1m).
    #[arg(long, default_value = "30s")]
    timeout: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("deployer: error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("deployer: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let progress = Progress::stderr();
    let color = color_allowed(&cli) && progress.is_tty();
    let command_line = std::env::args().collect::<Vec<_>>().join(" ");
    match &cli.command {
        Command::Probe { args } => Ok(deployer::probe::run_cli(args).await),
        Command::Validate => {
            let files = manifest_files(&cli.files)?;
            match manifest::load(&files, &|k| std::env::var(k).ok()) {
                Ok(m) => {
                    let names: Vec<String> =
                        files.iter().map(|f| f.display().to_string()).collect();
                    eprintln!(
                        "{}: valid: project {}, {} service(s)",
                        names.join(" + "),
                        m.project,
                        m.services.len()
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("deployer: error: {e}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Plan(args) => {
            let manifest = load_manifest(&cli.files)?;
            let (engine, registry) = connect().await?;
            progress.line(format!("engine: {}", engine.options()));
            let checks = (!args.skip_event_checks).then_some(args.allow.as_slice());
            let (mut plan, _) = plan_with_checks(&engine, &registry, &manifest, checks).await?;
            // `apply --plan FILE` without `-f` reads these, from wherever it runs.
            for path in &mut plan.manifests {
                if let Ok(absolute) = std::path::absolute(&*path) {
                    *path = absolute;
                }
            }
            let checks: Vec<(String, Option<&manifest::HealthCheck>)> = manifest
                .services
                .iter()
                .map(|(name, s)| (name.to_string(), s.health.as_ref()))
                .collect();
            if let Some((services, why)) = deployer::probe::unprobeable(&engine, &checks) {
                progress.line(format!(
                    "warning: apply cannot run the health checks of {}: {why}",
                    services.join(", ")
                ));
            }
            if let Some(out) = &args.out {
                std::fs::write(out, plan.to_json())
                    .with_context(|| format!("saving the plan to {}", out.display()))?;
                progress.line(format!("plan saved to {}", out.display()));
            }
            match cli.output {
                Output::Json => println!("{}", plan.to_json()),
                Output::Human => {
                    use std::io::IsTerminal as _;
                    let color = color_allowed(&cli) && std::io::stdout().is_terminal();
                    print!("{}", plan::render_human(&plan, color))
                }
            }
            Ok(if plan.refused() {
                ExitCode::FAILURE
            } else if args.detailed_exitcode && plan.has_changes() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Events(args) => {
            let manifest = load_manifest(&cli.files)?;
            let (engine, registry) = connect().await?;
            progress.line(format!("engine: {}", engine.options()));
            let (plan, inputs) =
                plan_with_checks(&engine, &registry, &manifest, Some(&args.allow)).await?;
            // Always read here: the checks run whenever `allow` is given.
            let inputs = inputs.unwrap_or_default();
            let graph = EventGraph::build(&inputs, args.running, &plan.events)
                .context("reading the event contracts")?;
            let format = match args.format {
                GraphFormat::Text => Format::Text,
                GraphFormat::Json => Format::Json,
                GraphFormat::Dot => Format::Dot,
                GraphFormat::Mermaid => Format::Mermaid,
            };
            print!("{}", graph.render(format));
            Ok(ExitCode::SUCCESS)
        }
        Command::Apply(args) => {
            let saved = match &args.plan {
                None => None,
                Some(path) => {
                    let text = std::fs::read_to_string(path)
                        .with_context(|| format!("reading the saved plan {}", path.display()))?;
                    Some(
                        Plan::from_json(&text).with_context(|| {
                            format!("reading the saved plan {}", path.display())
                        })?,
                    )
                }
            };
            // A saved plan names the manifests it was made from; `-f` overrides them.
            let manifest = match &saved {
                Some(plan) if cli.files.is_empty() && !plan.manifests.is_empty() => {
                    load_manifest(&plan.manifests)?
                }
                _ => load_manifest(&cli.files)?,
            };
            let (engine, registry) = connect().await?;
            progress.line(format!("engine: {}", engine.options()));
            let options = ApplyOptions {
                command: command_line,
                ci_build: history::ci_build(&|k| std::env::var(k).ok()),
                color,
                interrupt: catch_signals(),
                lock_timeout: cli.lock_timeout.unwrap_or_default(),
                allow_incompatible: args.allow.clone(),
                label_cache: label_cache(),
                ..ApplyOptions::default()
            };
            let result =
                apply::apply(&engine, &registry, &manifest, saved, &options, &progress).await;
            finish_apply(result, cli.output, &options.interrupt, "applying")
        }
        Command::Rollback { services } => {
            let manifest = load_manifest(&cli.files)?;
            let (engine, registry) = connect().await?;
            progress.line(format!("engine: {}", engine.options()));
            let options = ApplyOptions {
                command: command_line,
                ci_build: history::ci_build(&|k| std::env::var(k).ok()),
                color,
                interrupt: catch_signals(),
                lock_timeout: cli.lock_timeout.unwrap_or_default(),
                ..ApplyOptions::default()
            };
            let result =
                apply::rollback(&engine, &registry, &manifest, services, &options, &progress).await;
            finish_apply(result, cli.output, &options.interrupt, "rolling back")
        }
        Command::Lock { action } => {
            let project = project_name(&cli)?;
            let engine = Engine::from_env().await.context("connecting to Docker")?;
            match action {
                LockAction::Status => {
                    let held = lock::status(&engine, &project)
                        .await
                        .context("reading the deploy lock")?;
                    match (cli.output, held) {
                        (Output::Json, h) => println!("{}", serde_json::to_string_pretty(&h)?),
                        (Output::Human, None) => println!("project {project} is not locked"),
                        (Output::Human, Some(h)) => println!(
                            "project {project} is locked by {}@{} since {} (`{}`, pid {})",
                            h.holder, h.host, h.since, h.command, h.pid
                        ),
                    }
                }
                LockAction::Release => {
                    match lock::force_release(&engine, &project)
                        .await
                        .context("releasing the deploy lock")?
                    {
                        None => println!("project {project} was not locked"),
                        Some(h) => println!(
                            "released the lock of project {project} held by {}@{} since {}",
                            h.holder, h.host, h.since
                        ),
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::History => {
            let project = project_name(&cli)?;
            let engine = Engine::from_env().await.context("connecting to Docker")?;
            let records = history::list(&engine, &project)
                .await
                .context("reading the apply history")?;
            match cli.output {
                Output::Json => println!("{}", history::render_json(&records)),
                Output::Human => print!("{}", history::render_human(&records)),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::SmokeTest(args) => {
            let timeout = manifest::parse_duration(&args.timeout).map_err(|p| {
                anyhow::anyhow!("--timeout {}: {}; {}", args.timeout, p.problem, p.fix)
            })?;
            let env = args
                .env
                .iter()
                .map(|kv| {
                    kv.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .ok_or_else(|| {
                            anyhow::anyhow!("--env {kv}: expected K=V, e.g. --env LOG=debug")
                        })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let engine = Engine::from_env().await.context("connecting to Docker")?;
            let opts = smoke::SmokeOptions {
                image: args.image.clone(),
                port: args.port,
                path: args.path.clone(),
                env,
                timeout: clamp_timeout(timeout),
                log_lines: 50,
            };
            let report = smoke::smoke_test(&engine, &opts)
                .await
                .context("running the smoke test")?;
            match &report.result {
                Ok(took) => {
                    eprintln!(
                        "smoke test passed: {} answered 200 on {} after {:.1}s",
                        args.image,
                        args.path,
                        took.as_secs_f64()
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(why) => {
                    eprintln!("smoke test FAILED for {}: {why}", args.image);
                    eprintln!("last log lines of {}:", report.container);
                    for l in report.logs.lines() {
                        eprintln!("    {l}");
                    }
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Status => {
            let manifest = load_manifest(&cli.files)?;
            let (engine, registry) = connect().await?;
            let s = status::status(&engine, &registry, &manifest)
                .await
                .context("reading the engine's state")?;
            match cli.output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&s)?),
                Output::Human => print!("{}", status::render_human(&s)),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Down {
            volumes,
            ignore_missing,
        } => {
            let project = project_name(&cli)?;
            let engine = Engine::from_env().await.context("connecting to Docker")?;
            let r = down::down_within(
                &engine,
                &project,
                *volumes,
                &command_line,
                &progress,
                cli.lock_timeout.unwrap_or_default(),
            )
            .await
            .with_context(|| format!("taking project {project} down"))?;
            if r.missing {
                let what = format!(
                    "project {project} has nothing on the engine at {} (no container, network or volume)",
                    engine.options()
                );
                if *ignore_missing {
                    eprintln!("{what}; nothing to do");
                    return Ok(ExitCode::SUCCESS);
                }
                anyhow::bail!(
                    "{what}; check the project name and the engine, or pass --ignore-missing"
                );
            }
            eprintln!(
                "removed {} container(s), {} network(s), {} volume(s){}",
                r.containers,
                r.networks,
                r.volumes,
                if *volumes {
                    format!(", {} history record(s)", r.history_records)
                } else {
                    String::new()
                }
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Catches SIGINT and SIGTERM for an apply or rollback: the first one is recorded for the
/// apply to stop starting steps and undo what it changed, then release the lock; a second one
/// exits at once (the lock of a process that no longer runs is taken over by the next apply).
fn catch_signals() -> Arc<AtomicI32> {
    use tokio::signal::unix::{signal, SignalKind};
    let flag = Arc::new(AtomicI32::new(0));
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return flag;
    };
    let seen = flag.clone();
    tokio::spawn(async move {
        loop {
            let number = tokio::select! {
                _ = int.recv() => 2,
                _ = term.recv() => 15,
            };
            let name = if number == 2 { "SIGINT" } else { "SIGTERM" };
            if seen.swap(number, Ordering::SeqCst) != 0 {
                eprintln!("deployer: second {name}: exiting now; the fleet may be half-rolled, run `deployer plan` to see");
                std::process::exit(128 + number);
            }
            eprintln!("deployer: {name} received: starting no new step, undoing what this run changed and releasing the lock (send it again to exit at once)");
        }
    });
    flag
}

fn finish_apply(
    result: Result<apply::ApplyReport, ApplyError>,
    output: Output,
    interrupt: &AtomicI32,
    doing: &'static str,
) -> anyhow::Result<ExitCode> {
    let signal = interrupt.load(Ordering::SeqCst);
    if signal != 0 {
        // Whatever the apply managed before it stopped is printed below; the exit code is the
        // signal's (130 for SIGINT, 143 for SIGTERM).
        let code = finish_apply(result, output, &AtomicI32::new(0), doing);
        if let Err(e) = &code {
            eprintln!("deployer: error: {e:#}");
        }
        return Ok(ExitCode::from(128 + signal as u8));
    }
    match result {
        Ok(report) => {
            if output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&report.record)?);
            }
            eprintln!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Err(ApplyError::Failed(report)) => {
            if output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&report.record)?);
            }
            // The failure's text appears once: in the error at the end, which the service
            // results lead up to.
            for s in &report.record.services {
                let result = if s.result.is_failed() {
                    s.result.as_str().to_owned()
                } else {
                    s.result.to_string()
                };
                eprintln!("  {}: {result}", s.service);
            }
            eprintln!("deployer: error: {report}");
            Ok(ExitCode::FAILURE)
        }
        // Already says what it was doing.
        Err(e @ ApplyError::Rollback { .. }) => Err(anyhow::Error::new(e)),
        Err(e) => Err(anyhow::Error::new(e).context(doing)),
    }
}

fn color_allowed(cli: &Cli) -> bool {
    !cli.no_color && std::env::var_os("NO_COLOR").is_none()
}

/// `--lock-timeout`: a duration such as `30s`, `500ms` or `5m`.
fn parse_event_version(text: &str) -> Result<EventVersion, String> {
    text.parse().map_err(|e| format!("{e}"))
}

fn parse_lock_timeout(text: &str) -> Result<Duration, String> {
    manifest::parse_duration(text).map_err(|p| format!("{}; {}", p.problem, p.fix))
}

fn clamp_timeout(d: Duration) -> Duration {
    d.max(Duration::from_millis(100))
}

/// The `-f` files, else the first default manifest found in the current directory.
fn manifest_files(files: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    if !files.is_empty() {
        return Ok(files.to_vec());
    }
    match manifest::find_default(std::path::Path::new(".")) {
        Some(found) => Ok(vec![found]),
        None => Err(manifest::ManifestError::NoFiles.into()),
    }
}

fn load_manifest(files: &[PathBuf]) -> anyhow::Result<Manifest> {
    let files = manifest_files(files)?;
    manifest::load(&files, &|k| std::env::var(k).ok()).context("loading the manifest")
}

/// `--project`, else the manifest's project.
fn project_name(cli: &Cli) -> anyhow::Result<String> {
    match &cli.project {
        Some(p) => Ok(p.clone()),
        None => Ok(load_manifest(&cli.files)?.project.to_string()),
    }
}

/// The plan for `manifest` against the engine's state, with the event checks run on it (their
/// inputs returned) unless `allow` is `None`.
async fn plan_with_checks(
    engine: &Engine,
    registry: &RegistryClient,
    manifest: &Manifest,
    allow: Option<&[EventVersion]>,
) -> anyhow::Result<(Plan, Option<deployer::contract::EventInputs>)> {
    let observed = observe::observe(engine, registry, manifest)
        .await
        .context("reading the engine's state")?;
    let mut plan = plan::compute(manifest, &observed);
    let Some(allow) = allow else {
        return Ok((plan, None));
    };
    let inputs = apply::check_events(
        engine,
        registry,
        &label_cache(),
        manifest,
        &observed,
        &mut plan,
        allow,
    )
    .await
    .context("running the event checks")?;
    Ok((plan, Some(inputs)))
}

/// The label cache the environment names (`DEPLOYER_CACHE_DIR`, `XDG_CACHE_HOME`, `HOME`).
fn label_cache() -> LabelCache {
    LabelCache::from_env(&|k| std::env::var(k).ok())
}

async fn connect() -> anyhow::Result<(Engine, RegistryClient)> {
    let engine = Engine::from_env().await.context("connecting to Docker")?;
    let config =
        DockerConfig::load(&|k| std::env::var(k).ok()).context("reading the docker credentials")?;
    let registry = RegistryClient::new(config)
        .context("preparing the registry client")?
        .with_certs_dir(registry::certs_dir(&|k| std::env::var(k).ok()));
    Ok((engine, registry))
}
