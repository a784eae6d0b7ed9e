//! `canary`: serve (default), `canary healthcheck` (exit 0 when /health answers 200), or
//! `canary poll URL [--every MS] [--timeout MS] [--for SECONDS]` (polls until the time is up or
//! SIGTERM/SIGINT, then prints `{"ok":N,"failed":M,"slow":S,"failures":[...]}` on stdout).

use anyhow::Context;
use canary::{Application, Config};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("canary: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<std::process::ExitCode> {
    if std::env::args().nth(1).as_deref() == Some("poll") {
        let args: Vec<String> = std::env::args().skip(2).collect();
        let args = canary::PollArgs::parse(&args).map_err(anyhow::Error::msg)?;
        let report = canary::poll(&args, shutdown_signal()).await;
        println!(
            "{}",
            serde_json::to_string(&report).context("printing the report")?
        );
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let config =
        Config::from_env(|k| std::env::var(k).ok()).context("reading the configuration")?;
    match std::env::args().nth(1).as_deref() {
        None | Some("serve") => {}
        Some("healthcheck") => {
            let code = canary::probe_health(config.port)
                .await
                .with_context(|| format!("probing http://127.0.0.1:{}/health", config.port))?;
            return Ok(if code == 200 {
                std::process::ExitCode::SUCCESS
            } else {
                eprintln!("canary: /health answered {code}");
                std::process::ExitCode::FAILURE
            });
        }
        Some(other) => {
            anyhow::bail!("unknown subcommand {other:?}; use `serve`, `healthcheck` or `poll`")
        }
    }
    let app = Application::build(config.clone())
        .await
        .with_context(|| format!("binding port {}", config.port))?;
    eprintln!("canary {} listening on port {}", config.version, app.port());
    app.run_until_stopped(shutdown_signal())
        .await
        .context("serving HTTP")?;
    eprintln!("canary stopped");
    Ok(std::process::ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
