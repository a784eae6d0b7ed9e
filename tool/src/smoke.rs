//! `deployer smoke-test IMAGE`: the CI gate. Runs a container from a local image, waits for
//! 200 on its health path, prints its logs when it fails, and always removes it.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::apply::health::{self, ProbeTarget};
use crate::engine::{Engine, EngineError};
use crate::labels;
use crate::manifest::HealthCheck;

/// Label marking smoke-test containers, so leftovers of a killed run can be found.
pub const SMOKE_LABEL: &str = "deployer.smoke-test";

/// What to run and check.
#[derive(Debug, Clone)]
pub struct SmokeOptions {
    pub image: String,
    /// Container port the service listens on.
    pub port: u16,
    /// Path that must answer 200.
    pub path: String,
    pub env: Vec<(String, String)>,
    /// How long the container may take to answer 200.
    pub timeout: Duration,
    /// Log lines to show on failure.
    pub log_lines: usize,
}

/// How a smoke test went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmokeReport {
    pub container: String,
    /// `Ok(time to healthy)` or `Err(reason)`.
    pub result: Result<Duration, String>,
    /// The container's last log lines (always collected, shown on failure).
    pub logs: String,
}

/// Runs the smoke test. An error means it could not even be run (engine unreachable, image
/// missing); a failed check is a report with `result: Err`.
pub async fn smoke_test(engine: &Engine, opts: &SmokeOptions) -> Result<SmokeReport, EngineError> {
    if engine.image(&opts.image).await?.is_none() {
        return Err(EngineError::NotFound {
            action: format!("smoke-testing image {}", opts.image),
            detail: "the image is not on the Docker Engine; build or pull it first".into(),
        });
    }
    let name = format!("deployer-smoke-{}", suffix());
    let port_key = format!("{}/tcp", opts.port);
    let body = serde_json::json!({
        "Image": opts.image,
        "Env": opts.env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        "Labels": BTreeMap::from([
            (labels::MANAGED_BY, labels::MANAGED_BY_VALUE),
            (SMOKE_LABEL, "true"),
        ]),
        "ExposedPorts": { &port_key: {} },
        "HostConfig": {
            "PortBindings": { &port_key: [ { "HostIp": "127.0.0.1", "HostPort": "" } ] }
        }
    });
    let id = engine.create_container_json(&name, body).await?;
    let outcome = run(engine, &id, opts).await;
    let logs = engine
        .logs_tail(&id, opts.log_lines)
        .await
        .unwrap_or_else(|e| format!("(logs unavailable: {e})"));
    let removed = engine.remove_container(&id).await;
    let result = outcome?;
    removed?;
    Ok(SmokeReport {
        container: name,
        result,
        logs,
    })
}

async fn run(
    engine: &Engine,
    id: &str,
    opts: &SmokeOptions,
) -> Result<Result<Duration, String>, EngineError> {
    engine.start_container(id).await?;
    let check = HealthCheck {
        path: opts.path.clone(),
        port: opts.port,
        interval: Duration::from_millis(200),
        timeout: Duration::from_secs(2),
        start_period: opts.timeout,
        retries: 0,
        kind: crate::manifest::HealthKind::Http,
        command: Vec::new(),
    };
    let target = ProbeTarget {
        network: "bridge".into(),
    };
    let prober = health::Prober::new(engine, "smoke-test");
    let result = health::wait_healthy(engine, &prober, id, Some(&check), &target).await;
    prober.close().await;
    Ok(result.map_err(|u| u.reason))
}

fn suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}-{nanos:08x}", std::process::id())
}
