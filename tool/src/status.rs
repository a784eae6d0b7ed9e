//! `deployer status`: per service, the desired and running image, the containers, their
//! health and age, from one container list plus the plan. Health is what the roll's gate sees:
//! the deployer's own check (HTTP, TCP or command, the one the container was created with) run
//! once now, together with Docker's HEALTHCHECK status.

use serde::Serialize;

use crate::engine::{DockerHealth, Engine, PublishedPort, RunState};
use crate::labels;
use crate::manifest::Manifest;
use crate::observe::{self, ObserveError};
use crate::plan::{self, Action};
use crate::registry::RegistryClient;

/// The status of one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceStatus {
    pub service: String,
    /// The image as written in the manifest; `None` for a service no longer in it.
    pub desired_image: Option<String>,
    pub desired_digest: Option<String>,
    /// `unchanged`, `create`, `replace`, `scale` or `remove`: what an apply would do.
    pub pending: String,
    pub containers: Vec<ContainerStatus>,
}

/// One container of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerStatus {
    pub name: String,
    pub id: String,
    pub replica: Option<u32>,
    /// The image reference it was created from (manifest form) and its digest.
    pub image: Option<String>,
    pub image_digest: Option<String>,
    /// `running`, `exited (1)`, ...
    pub state: String,
    /// `none` (no check at all), `starting`, `healthy`, `unhealthy`: the deployer's health check
    /// run now, and Docker's HEALTHCHECK status.
    pub health: String,
    /// The deployer's health check (`GET :8080/health`, `TCP :5432`, `command ...`), if any.
    pub health_check: Option<String>,
    /// Why it is not healthy, when it is not.
    pub health_detail: Option<String>,
    /// Seconds since the container was created.
    pub age_secs: i64,
    /// The engine's status line (`Up 3 minutes (healthy)`).
    pub status: String,
    /// Ports published on the host: `{host_ip, host_port, container_port, protocol}`, one
    /// entry per host address (the engine binds `0.0.0.0` and `::` separately).
    pub ports: Vec<PublishedPort>,
}

/// Computes the status of every service of the manifest (and of orphans).
pub async fn status(
    engine: &Engine,
    registry: &RegistryClient,
    manifest: &Manifest,
) -> Result<Vec<ServiceStatus>, ObserveError> {
    let project = manifest.project.as_str();
    let (observed, list) = tokio::try_join!(observe::observe(engine, registry, manifest), async {
        engine
            .list_containers(&[(labels::PROJECT, Some(project)), (labels::SERVICE, None)])
            .await
            .map_err(ObserveError::from)
    })?;
    let plan = plan::compute(manifest, &observed);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let prober = crate::probe::Prober::new(engine, project);
    let gates =
        futures::future::join_all(list.iter().map(|c| gate_health(&prober, manifest, c))).await;
    prober.close().await;
    let gate_of = |id: &str| {
        list.iter()
            .zip(&gates)
            .find(|(c, _)| c.id == id)
            .map(|(_, g)| g.clone())
    };
    Ok(plan
        .services
        .iter()
        .map(|sp| {
            let containers = list
                .iter()
                .filter(|c| c.labels.get(labels::SERVICE) == Some(&sp.service))
                .map(|c| ContainerStatus {
                    name: c.name.clone(),
                    id: c.id.chars().take(12).collect(),
                    replica: c.labels.get(labels::REPLICA).and_then(|r| r.parse().ok()),
                    image: c.labels.get(labels::IMAGE).cloned(),
                    image_digest: c.labels.get(labels::IMAGE_DIGEST).cloned(),
                    state: match &c.state {
                        RunState::Exited { code } => format!("exited ({code})"),
                        other => format!("{other:?}").to_lowercase(),
                    },
                    health: plan::health_text(observe::health_status(c.health)),
                    health_check: None,
                    health_detail: None,
                    age_secs: (now - c.created).max(0),
                    status: c.status.clone(),
                    ports: c.ports.clone(),
                })
                .map(|mut c: ContainerStatus| {
                    if let Some(g) = list
                        .iter()
                        .find(|l| l.id.starts_with(&c.id))
                        .and_then(|l| gate_of(&l.id))
                        .flatten()
                    {
                        c.health = g.0;
                        c.health_check = Some(g.1);
                        c.health_detail = g.2;
                    }
                    c
                })
                .collect();
            ServiceStatus {
                service: sp.service.clone(),
                desired_image: sp.image.clone(),
                desired_digest: sp.image_digest.clone(),
                pending: match sp.action {
                    Action::Create => "create",
                    Action::Replace { .. } => "replace",
                    Action::Scale { .. } => "scale",
                    Action::Remove => "remove",
                    Action::Unchanged => "unchanged",
                }
                .into(),
                containers,
            }
        })
        .collect())
}

/// The health the roll's gate sees for a running container with a deployer health check:
/// `(health, check, why not healthy)`; `None` when it has no such check or is not running.
async fn gate_health(
    prober: &crate::probe::Prober<'_>,
    manifest: &Manifest,
    c: &crate::engine::ContainerInfo,
) -> Option<(String, String, Option<String>)> {
    if c.state != RunState::Running {
        return None;
    }
    let check = match crate::spec::health_from_labels(&c.labels) {
        Some(own) => own,
        None => c
            .labels
            .get(labels::SERVICE)
            .and_then(|s| manifest.services.get(s.as_str()))
            .and_then(|s| s.health.clone()),
    }?;
    let shown = check.to_string();
    let d = match prober.engine().inspect_container(&c.id).await {
        Ok(d) => d,
        Err(e) => return Some(("unknown".into(), shown, Some(e.to_string()))),
    };
    let probe = prober.check_once(&d, &check, "").await;
    let (health, detail) = match (probe, d.health) {
        (
            Err(
                crate::probe::ProbeFailure::NotYet(why)
                | crate::probe::ProbeFailure::Impossible(why),
            ),
            _,
        ) => ("unhealthy", Some(why)),
        (Ok(()), DockerHealth::Unhealthy) => (
            "unhealthy",
            Some("Docker's health check reports unhealthy".into()),
        ),
        (Ok(()), DockerHealth::Starting) => (
            "starting",
            Some("Docker's health check is still starting".into()),
        ),
        (Ok(()), _) => ("healthy", None),
    };
    Some((health.into(), shown, detail))
}

/// Human rendering of a status.
pub fn render_human(services: &[ServiceStatus]) -> String {
    let mut out = String::new();
    for s in services {
        out.push_str(&format!(
            "{}  desired {}  ({})\n",
            s.service,
            s.desired_image.as_deref().unwrap_or("(not in manifest)"),
            s.pending
        ));
        if s.containers.is_empty() {
            out.push_str("    (no containers)\n");
        }
        for c in &s.containers {
            let digest = c
                .image_digest
                .as_deref()
                .map(|d| d.chars().take(19).collect::<String>())
                .unwrap_or_else(|| "-".into());
            let ports: Vec<String> = c
                .ports
                .iter()
                .map(|p| {
                    let ip = if p.host_ip.contains(':') {
                        format!("[{}]", p.host_ip)
                    } else {
                        p.host_ip.clone()
                    };
                    format!("{ip}:{}->{}/{}", p.host_port, p.container_port, p.protocol)
                })
                .collect();
            let health = match (&c.health_check, &c.health_detail) {
                (Some(check), Some(why)) => format!("{} ({check}: {why})", c.health),
                (Some(check), None) => format!("{} ({check})", c.health),
                _ => c.health.clone(),
            };
            out.push_str(&format!(
                "    {}  {}  {}  health {}  up {}  image {} {}{}\n",
                c.name,
                c.id,
                c.state,
                health,
                human_age(c.age_secs),
                c.image.as_deref().unwrap_or("-"),
                digest,
                if ports.is_empty() {
                    String::new()
                } else {
                    format!("  ports {}", ports.join(", "))
                }
            ));
        }
    }
    out
}

fn human_age(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}
