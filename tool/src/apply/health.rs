//! Waiting for a new container to become healthy: it must be running, answer 200 on the
//! manifest's health path, and (when the image defines a HEALTHCHECK) be `healthy` for Docker.

use std::time::{Duration, Instant};

use crate::engine::{DockerHealth, Engine, RunState};
use crate::manifest::HealthCheck;

/// How long a container without any health check must stay running to count as started.
pub const NO_CHECK_SETTLE: Duration = Duration::from_millis(500);
/// Deadline when the manifest gives no health check (Docker's own check may still apply).
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(60);
/// Pause between probes. Probing more often than the manifest's `interval` lets a roll finish
/// as soon as the container is ready; the deadline still follows the manifest's timing.
pub const POLL: Duration = Duration::from_millis(100);

/// Where the HTTP health probe goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeTarget {
    /// The container's address on a network the deployer can reach (a local engine).
    ContainerIp { network: String },
    /// A host port the engine published, on `host`.
    Published { host: String },
}

/// Why a container did not become healthy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unhealthy {
    pub reason: String,
}

/// Waits until the container `id` is healthy or `deadline` passes. Returns the time it took.
pub async fn wait_healthy(
    engine: &Engine,
    http: &reqwest::Client,
    id: &str,
    check: Option<&HealthCheck>,
    target: &ProbeTarget,
) -> Result<Duration, Unhealthy> {
    let started = Instant::now();
    let deadline = check.map_or(DEFAULT_DEADLINE, HealthCheck::deadline);
    let mut last = String::from("not checked yet");
    let mut running_since: Option<Instant> = None;
    loop {
        match engine.inspect_container(id).await {
            Err(e) => last = format!("inspecting the container failed: {e}"),
            Ok(d) if d.restart_count > 0 => {
                return Err(Unhealthy {
                    reason: format!(
                        "the container keeps exiting (restarted {} time(s) by the engine)",
                        d.restart_count
                    ),
                })
            }
            Ok(d) => match d.state {
                RunState::Exited { code } => {
                    return Err(Unhealthy {
                        reason: format!("the container exited with code {code}"),
                    })
                }
                RunState::Dead => {
                    return Err(Unhealthy {
                        reason: "the container is dead".into(),
                    })
                }
                RunState::Running => {
                    let since = *running_since.get_or_insert_with(Instant::now);
                    let http_ok = match check {
                        None => true,
                        Some(h) => match probe_url(&d, h, target) {
                            None => {
                                last =
                                    format!("no address to probe port {} on ({target:?})", h.port);
                                false
                            }
                            Some(url) => match probe(http, &url, h.timeout).await {
                                Ok(200) => true,
                                Ok(code) => {
                                    last = format!("GET {url} answered {code}");
                                    false
                                }
                                Err(e) => {
                                    last = format!("GET {url} failed: {e}");
                                    false
                                }
                            },
                        },
                    };
                    let docker_ok = match d.health {
                        DockerHealth::None | DockerHealth::Healthy => true,
                        DockerHealth::Starting => {
                            last = format!("{last}; Docker health check still starting");
                            false
                        }
                        DockerHealth::Unhealthy => {
                            return Err(Unhealthy {
                                reason: "Docker's health check reports unhealthy".into(),
                            })
                        }
                    };
                    let settled = check.is_some()
                        || d.health != DockerHealth::None
                        || since.elapsed() >= NO_CHECK_SETTLE;
                    if http_ok && docker_ok && settled {
                        return Ok(started.elapsed());
                    }
                }
                RunState::Created | RunState::Restarting => {
                    last = "the container is not running yet (restarting?)".into();
                }
                other => last = format!("the container is {other:?}"),
            },
        }
        if started.elapsed() >= deadline {
            return Err(Unhealthy {
                reason: format!("not healthy within {deadline:?}: {last}"),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

fn probe_url(
    d: &crate::engine::ContainerDetails,
    h: &HealthCheck,
    target: &ProbeTarget,
) -> Option<String> {
    let path = if h.path.starts_with('/') {
        h.path.clone()
    } else {
        format!("/{}", h.path)
    };
    match target {
        ProbeTarget::ContainerIp { network } => {
            let ip = d.ips.get(network).or_else(|| d.ips.values().next())?;
            Some(format!("http://{ip}:{}{path}", h.port))
        }
        ProbeTarget::Published { host } => {
            let (_, hp) = d.published.iter().find(|(cp, _)| *cp == h.port)?;
            Some(format!("http://{host}:{hp}{path}"))
        }
    }
}

async fn probe(http: &reqwest::Client, url: &str, timeout: Duration) -> Result<u16, String> {
    let timeout = if timeout.is_zero() {
        Duration::from_secs(2)
    } else {
        timeout
    };
    match http.get(url).timeout(timeout).send().await {
        Ok(r) => Ok(r.status().as_u16()),
        Err(e) if e.is_timeout() => Err(format!("no answer within {timeout:?}")),
        Err(e) if e.is_connect() => Err("connection refused".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// The HTTP client health probes use (no proxy, no TLS).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap_or_default()
}
