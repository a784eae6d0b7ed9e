//! `canary`: serve (default) or `canary healthcheck` (exit 0 when /health answers 200).

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
        Some(other) => anyhow::bail!("unknown subcommand {other:?}; use `serve` or `healthcheck`"),
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
