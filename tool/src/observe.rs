//! Reads what the engine holds for a project into `plan::Observed`: one label-filtered
//! container list, the network and volume lists, and the digest of every image the manifest
//! names (registry images through the registry API without pulling, local images by image id).

use std::collections::BTreeMap;

use futures::future::join_all;

use crate::engine::{ContainerInfo, DockerHealth, Engine, EngineError, RunState};
use crate::labels;
use crate::manifest::{ImageRef, Manifest};
use crate::plan::{
    ContainerState, HealthStatus, Observed, ObservedContainer, ObservedNetwork, ObservedVolume,
};
use crate::registry::{RegistryClient, RegistryError};

/// Reading the engine's state failed.
#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("resolving image {image}")]
    Registry {
        image: String,
        #[source]
        source: RegistryError,
    },
    /// Every image of the manifest that is neither on the engine nor in a registry, at once.
    #[error("{}", missing_images(.images))]
    MissingLocalImage { images: Vec<String> },
    /// Several images failed in different ways: each on its own line.
    #[error("{}", crate::errors::several("images cannot be used", .0))]
    Images(Vec<ObserveError>),
}

fn missing_images(images: &[String]) -> String {
    match images {
        [one] => format!(
            "image {one} is not on the Docker Engine and names no registry; build it on that engine (`docker build -t {one} ...`), or push it to a registry and write the registry in `image:`, or fix the reference"
        ),
        many => format!(
            "images {} are not on the Docker Engine and name no registry; build them on that engine (`docker build -t NAME ...`), or push them to a registry and write the registry in `image:`, or fix the references",
            many.join(", ")
        ),
    }
}

/// The digests of `images`, or every failure at once: the missing local images in one error.
async fn image_digests(
    engine: &Engine,
    registry: &RegistryClient,
    images: &[&ImageRef],
) -> Result<Vec<String>, ObserveError> {
    let results = join_all(images.iter().map(|i| image_digest(engine, registry, i))).await;
    let mut digests = Vec::new();
    let mut missing = Vec::new();
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(d) => digests.push(d),
            Err(ObserveError::MissingLocalImage { images }) => missing.extend(images),
            Err(e) => errors.push(e),
        }
    }
    if !missing.is_empty() {
        errors.insert(0, ObserveError::MissingLocalImage { images: missing });
    }
    match errors.len() {
        0 => Ok(digests),
        1 => Err(errors.remove(0)),
        _ => Err(ObserveError::Images(errors)),
    }
}

/// Observes the project's state on the engine for `manifest`.
pub async fn observe(
    engine: &Engine,
    registry: &RegistryClient,
    manifest: &Manifest,
) -> Result<Observed, ObserveError> {
    let project = manifest.project.as_str();
    let images: Vec<&ImageRef> = {
        let mut seen = BTreeMap::new();
        for s in manifest.services.values() {
            seen.entry(s.image.as_str()).or_insert(&s.image);
        }
        seen.into_values().collect()
    };
    let (containers, networks, volumes, digests) = tokio::try_join!(
        project_containers(engine, project),
        async {
            engine
                .list_networks(&[(labels::PROJECT, Some(project))])
                .await
                .map_err(ObserveError::from)
        },
        async {
            engine
                .list_volumes(&[(labels::PROJECT, Some(project))])
                .await
                .map_err(ObserveError::from)
        },
        image_digests(engine, registry, &images),
    )?;
    Ok(Observed {
        containers,
        networks: networks
            .into_iter()
            .map(|n| ObservedNetwork {
                id: n.id,
                name: n.name,
                labels: n.labels,
            })
            .collect(),
        volumes: volumes
            .into_iter()
            // The apply history's volume is the deployer's own, not the manifest's.
            .filter(|v| !v.labels.contains_key(labels::HISTORY))
            .map(|v| ObservedVolume {
                name: v.name,
                labels: v.labels,
            })
            .collect(),
        image_digests: images
            .iter()
            .zip(digests)
            .map(|(i, d)| (i.as_str().to_string(), d))
            .collect(),
    })
}

/// The project's service containers (not its lock or history markers), from one list call.
pub async fn project_containers(
    engine: &Engine,
    project: &str,
) -> Result<Vec<ObservedContainer>, ObserveError> {
    let list = engine
        .list_containers(&[(labels::PROJECT, Some(project)), (labels::SERVICE, None)])
        .await?;
    Ok(list.into_iter().map(observed_container).collect())
}

/// The digest the plan compares: pinned digest, registry manifest digest, or local image id.
pub async fn image_digest(
    engine: &Engine,
    registry: &RegistryClient,
    image: &ImageRef,
) -> Result<String, ObserveError> {
    if let Some(d) = &image.digest {
        return Ok(d.clone());
    }
    match &image.registry {
        Some(host) => registry
            .resolve(host, &image.repository, image.tag_or_latest())
            .await
            .map_err(|source| ObserveError::Registry {
                image: image.as_str().to_string(),
                source,
            }),
        None => match engine.image(image.as_str()).await? {
            Some(info) => Ok(info.id),
            None => Err(ObserveError::MissingLocalImage {
                images: vec![image.as_str().to_string()],
            }),
        },
    }
}

/// The reference to create containers from: pinned to the digest for registry images (so what
/// runs is exactly what was planned), the reference as written for local images.
pub fn create_reference(image: &ImageRef, digest: Option<&str>) -> String {
    match (&image.registry, digest) {
        (Some(host), Some(d)) if d.starts_with("sha256:") => {
            format!("{host}/{}@{d}", image.repository)
        }
        _ => image.as_str().to_string(),
    }
}

/// Converts an engine list entry into the plan's plain data.
pub fn observed_container(c: ContainerInfo) -> ObservedContainer {
    ObservedContainer {
        service: c.labels.get(labels::SERVICE).cloned().unwrap_or_default(),
        state: container_state(&c.state),
        health: health_status(c.health),
        id: c.id,
        name: c.name,
        image: c.image,
        image_id: c.image_id,
        ips: c.ips,
        labels: c.labels,
        created: c.created,
    }
}

/// The plan's view of an engine run state.
pub fn container_state(s: &RunState) -> ContainerState {
    match s {
        RunState::Created => ContainerState::Created,
        RunState::Running => ContainerState::Running,
        RunState::Paused => ContainerState::Paused,
        RunState::Restarting => ContainerState::Restarting,
        RunState::Removing => ContainerState::Removing,
        RunState::Exited { code } => ContainerState::Exited { code: *code },
        RunState::Dead | RunState::Unknown => ContainerState::Dead,
    }
}

/// The plan's view of Docker's health status.
pub fn health_status(h: DockerHealth) -> HealthStatus {
    match h {
        DockerHealth::None => HealthStatus::None,
        DockerHealth::Starting => HealthStatus::Starting,
        DockerHealth::Healthy => HealthStatus::Healthy,
        DockerHealth::Unhealthy => HealthStatus::Unhealthy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_images_are_created_by_digest() {
        let d = "sha256:".to_string() + &"a".repeat(64);
        let r = ImageRef::parse("127.0.0.1:5000/team/api:v1").expect("ref");
        assert_eq!(
            create_reference(&r, Some(&d)),
            format!("127.0.0.1:5000/team/api@{d}")
        );
        let local = ImageRef::parse("fleet/api:dev").expect("ref");
        assert_eq!(create_reference(&local, Some(&d)), "fleet/api:dev");
        assert_eq!(create_reference(&r, None), "127.0.0.1:5000/team/api:v1");
    }
}
