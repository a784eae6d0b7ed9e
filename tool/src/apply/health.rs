//! Waiting for a new container to become healthy: it must be running, pass the manifest's
//! health check (HTTP, TCP or command, see [`crate::probe`]), and (when the image defines a
//! HEALTHCHECK) be `healthy` for Docker.

use std::time::{Duration, Instant};

use std::future::Future;

use crate::engine::{ContainerDetails, ContainerEngine, DockerHealth, RunState};
use crate::manifest::HealthCheck;
use crate::probe::ProbeFailure;
pub use crate::probe::{http_client, Prober};

/// How long a container without any health check must stay running to count as started.
pub const NO_CHECK_SETTLE: Duration = Duration::from_millis(500);
/// Deadline when the manifest gives no health check (Docker's own check may still apply).
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(60);
/// Pause between probes. Probing more often than the manifest's `interval` lets a roll finish
/// as soon as the container is ready; the deadline still follows the manifest's timing.
pub const POLL: Duration = Duration::from_millis(100);

/// Where the health probe reaches the container: its address on `network` (else on any of its
/// networks). How it gets there is the [`Prober`]'s business.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTarget {
    pub network: String,
}

/// Why a container did not become healthy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unhealthy {
    pub reason: String,
}

/// Runs one health check against a container: the [`Prober`], or an in-memory one in tests.
pub trait Probe: Sync {
    /// Runs `check` once against the container `d`, reached on `network`.
    fn check_once(
        &self,
        d: &ContainerDetails,
        check: &HealthCheck,
        network: &str,
    ) -> impl Future<Output = Result<(), ProbeFailure>> + Send;

    /// `GET <path>` on `port` of the container `d`, reached on `network`: the body of a 200
    /// answer (a read model's `/projection`).
    fn fetch(
        &self,
        d: &ContainerDetails,
        port: u16,
        path: &str,
        network: &str,
    ) -> impl Future<Output = Result<String, ProbeFailure>> + Send;
}

impl Probe for Prober<'_> {
    async fn check_once(
        &self,
        d: &ContainerDetails,
        check: &HealthCheck,
        network: &str,
    ) -> Result<(), ProbeFailure> {
        Prober::check_once(self, d, check, network).await
    }

    async fn fetch(
        &self,
        d: &ContainerDetails,
        port: u16,
        path: &str,
        network: &str,
    ) -> Result<String, ProbeFailure> {
        Prober::get(
            self,
            &d.name,
            &d.ips,
            network,
            port,
            path,
            std::time::Duration::from_secs(2),
        )
        .await
        .map_err(ProbeFailure::NotYet)
    }
}

/// Waits until the container `id` is healthy or `deadline` passes. Returns the time it took.
pub async fn wait_healthy(
    engine: &impl ContainerEngine,
    prober: &impl Probe,
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
                        Some(h) => match prober.check_once(&d, h, &target.network).await {
                            Ok(()) => true,
                            Err(ProbeFailure::NotYet(why)) => {
                                last = why;
                                false
                            }
                            Err(ProbeFailure::Impossible(why)) => {
                                return Err(Unhealthy { reason: why })
                            }
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
