//! Gathers what the plan's event checks read, the IO side of `contract`: the labels of every
//! desired image (registry images from their config blob, without pulling; local images from
//! the engine), the labels of the images the project's containers run now (by image id, from
//! the engine), and the event versions the event store holds (`GET /event-types`, asked from
//! where the project network is reachable, never through a published port).
//!
//! Every look-up runs concurrently, once per distinct image, however many services share it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::future::join_all;

use crate::contract::{EventInputs, ImageLabels, StoredEventType};
use crate::engine::{Engine, EngineError};
use crate::label_cache::{Keyed, LabelCache};
use crate::labels;
use crate::manifest::{ImageRef, Manifest};
use crate::plan::{ContainerState, Observed, ObservedContainer};
use crate::probe::Prober;
use crate::registry::{RegistryClient, RegistryError};

/// The store's route that lists the event versions it holds.
pub const EVENT_TYPES_PATH: &str = "/event-types";
/// How long the store may take to answer.
const STORE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the event checks read, and what the plan should say about how it was read (the store
/// not running yet, say).
#[derive(Debug, Clone, PartialEq)]
pub struct Gathered {
    pub inputs: EventInputs,
    /// One line each, for the plan's output.
    pub notes: Vec<String>,
}

/// Reading an input of the event checks failed.
#[derive(Debug, thiserror::Error)]
pub enum EventInputsError {
    #[error("reading the labels of image {image} from its registry")]
    Registry {
        image: String,
        #[source]
        source: RegistryError,
    },
    #[error("reading the labels of image {image} from the Docker Engine")]
    Engine {
        image: String,
        #[source]
        source: EngineError,
    },
    #[error("image {image} is not on the Docker Engine, so its labels cannot be read; build it there or name its registry in `image:`")]
    MissingImage { image: String },
    #[error("asking the event store (service {service}) which event versions it holds: {detail}")]
    Store { service: String, detail: String },
    #[error("the event store (service {service}) answered GET {url} with something other than a list of {{type, version, count, first_position, last_position}}: {detail}")]
    StoreAnswer {
        service: String,
        url: String,
        detail: String,
    },
    /// Several inputs failed: each on its own line.
    #[error("{}", crate::errors::several("inputs of the event checks cannot be read", .0))]
    Several(Vec<EventInputsError>),
}

/// Reads the event checks' inputs for `manifest`, given what `observe` saw. `observed` must
/// come from the same manifest (its image digests are the ones the labels are read at, and its
/// containers the running ones). Labels found in `cache` are not asked for again.
pub async fn gather(
    engine: &Engine,
    registry: &RegistryClient,
    cache: &LabelCache,
    manifest: &Manifest,
    observed: &Observed,
    prober: &Prober<'_>,
) -> Result<Gathered, EventInputsError> {
    let (desired, running, stored) = tokio::join!(
        desired_labels(engine, registry, cache, manifest, observed),
        running_labels(engine, cache, observed),
        stored_types(manifest, observed, prober),
    );
    let mut errors = Vec::new();
    let desired = desired.map_err(|e| errors.push(e)).ok();
    let running = running.map_err(|e| errors.push(e)).ok();
    let stored = stored.map_err(|e| errors.push(e)).ok();
    match (desired, running, stored) {
        (Some(desired), Some(running), Some((stored, notes))) => Ok(Gathered {
            inputs: EventInputs {
                running,
                desired,
                stored,
            },
            notes,
        }),
        _ => Err(flatten(errors)),
    }
}

/// The labels of each service's desired image, keyed by service.
async fn desired_labels(
    engine: &Engine,
    registry: &RegistryClient,
    cache: &LabelCache,
    manifest: &Manifest,
    observed: &Observed,
) -> Result<BTreeMap<String, ImageLabels>, EventInputsError> {
    let images: BTreeMap<&str, &ImageRef> = manifest
        .services
        .values()
        .map(|s| (s.image.as_str(), &s.image))
        .collect();
    let results = join_all(images.values().map(|image| async move {
        let digest = image.digest.as_deref().or_else(|| {
            observed
                .image_digests
                .get(image.as_str())
                .map(String::as_str)
        });
        image_labels(engine, registry, cache, image, digest).await
    }))
    .await;
    let mut by_image = BTreeMap::new();
    let mut errors = Vec::new();
    for (name, result) in images.keys().zip(results) {
        match result {
            Ok(l) => {
                by_image.insert(*name, l);
            }
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(flatten(errors));
    }
    Ok(manifest
        .services
        .iter()
        .filter_map(|(name, s)| {
            let labels = by_image.get(s.image.as_str())?.clone();
            Some((
                name.to_string(),
                ImageLabels {
                    image: s.image.as_str().to_string(),
                    labels,
                },
            ))
        })
        .collect())
}

/// The labels of one desired image: from the registry's config blob at `digest` (the digest
/// the plan resolved, so the labels are those of the image apply will run), else from the
/// engine (at `digest`, the image id, when known). A digest's labels come from `cache` when
/// it has them, and go into it when read.
pub async fn image_labels(
    engine: &Engine,
    registry: &RegistryClient,
    cache: &LabelCache,
    image: &ImageRef,
    digest: Option<&str>,
) -> Result<BTreeMap<String, String>, EventInputsError> {
    let name = image.as_str().to_string();
    let digest = digest.filter(|d| d.starts_with("sha256:"));
    let keyed = if image.registry.is_some() {
        Keyed::Manifest
    } else {
        Keyed::Image
    };
    if let Some(hit) = digest.and_then(|d| cache.get(keyed, d)) {
        return Ok(hit);
    }
    let labels = match &image.registry {
        Some(host) => registry
            .labels(
                host,
                &image.repository,
                digest.unwrap_or_else(|| image.tag_or_latest()),
            )
            .await
            .map_err(|source| EventInputsError::Registry {
                image: name,
                source,
            })?,
        None => match engine.image(digest.unwrap_or(&name)).await {
            Ok(Some(info)) => info.labels,
            Ok(None) => return Err(EventInputsError::MissingImage { image: name }),
            Err(source) => {
                return Err(EventInputsError::Engine {
                    image: name,
                    source,
                })
            }
        },
    };
    if let Some(d) = digest {
        cache.put(keyed, d, &labels);
    }
    Ok(labels)
}

/// The labels of the image each service's running containers were created from, read from
/// the engine by image id (a container's own labels mix in the deployer's and the manifest's),
/// or from `cache`. A service whose replicas run different images (a roll cut short) counts
/// its newest one.
async fn running_labels(
    engine: &Engine,
    cache: &LabelCache,
    observed: &Observed,
) -> Result<BTreeMap<String, ImageLabels>, EventInputsError> {
    let newest = newest_running(&observed.containers);
    let ids: BTreeSet<&str> = newest.values().map(|c| c.image_id.as_str()).collect();
    let results = join_all(ids.iter().map(|id| async move {
        if let Some(hit) = cache.get(Keyed::Image, id) {
            return Ok(Some(hit));
        }
        let labels = engine.image(id).await?.map(|info| info.labels);
        if let Some(l) = &labels {
            cache.put(Keyed::Image, id, l);
        }
        Ok::<_, EngineError>(labels)
    }))
    .await;
    let mut by_id = BTreeMap::new();
    let mut errors = Vec::new();
    for (id, result) in ids.iter().zip(results) {
        let shown = newest
            .values()
            .find(|c| c.image_id == *id)
            .map_or_else(|| id.to_string(), |c| format!("{} ({id})", c.image));
        match result {
            Ok(Some(labels)) => {
                by_id.insert(*id, labels);
            }
            // Removed from the engine while a container still runs it: nothing to read.
            Ok(None) => errors.push(EventInputsError::MissingImage { image: shown }),
            Err(source) => errors.push(EventInputsError::Engine {
                image: shown,
                source,
            }),
        }
    }
    if !errors.is_empty() {
        return Err(flatten(errors));
    }
    Ok(newest
        .iter()
        .filter_map(|(service, c)| {
            Some((
                service.to_string(),
                ImageLabels {
                    image: c
                        .labels
                        .get(labels::IMAGE)
                        .cloned()
                        .unwrap_or_else(|| c.image.clone()),
                    labels: by_id.get(c.image_id.as_str())?.clone(),
                },
            ))
        })
        .collect())
}

/// Per service, its newest running container.
fn newest_running(list: &[ObservedContainer]) -> BTreeMap<&str, &ObservedContainer> {
    let mut out: BTreeMap<&str, &ObservedContainer> = BTreeMap::new();
    for c in list {
        if c.state != ContainerState::Running || c.service.is_empty() {
            continue;
        }
        match out.get(c.service.as_str()) {
            Some(kept) if kept.created >= c.created => {}
            _ => {
                out.insert(&c.service, c);
            }
        }
    }
    out
}

/// The event versions the store holds: `None` (with a note) when the manifest names no store
/// or the running store predates `GET /event-types`; empty (with a note) when it does not run
/// yet.
async fn stored_types(
    manifest: &Manifest,
    observed: &Observed,
    prober: &Prober<'_>,
) -> Result<(Option<Vec<StoredEventType>>, Vec<String>), EventInputsError> {
    let Some(store) = &manifest.event_store else {
        return Ok((
            None,
            vec![
                "the manifest names no `event_store`: stored event versions are not checked".into(),
            ],
        ));
    };
    let service = store.service.to_string();
    let running = observed
        .containers
        .iter()
        .filter(|c| c.service == service && c.state == ContainerState::Running)
        .max_by_key(|c| c.created);
    let Some(container) = running else {
        return Ok((
            Some(Vec::new()),
            vec![format!(
                "the event store (service {service}) does not run yet: it holds no events to check"
            )],
        ));
    };
    let failed = |detail: String| EventInputsError::Store {
        service: service.clone(),
        detail,
    };
    let body = match prober
        .get(
            &container.name,
            &container.ips,
            "",
            store.port,
            EVENT_TYPES_PATH,
            STORE_TIMEOUT,
        )
        .await
    {
        Ok(body) => body,
        // A store from before the route: nothing to read until it is rolled.
        Err(e) if e.ends_with("answered 404") => {
            return Ok((
                None,
                vec![format!(
                    "the running event store (service {service}) does not answer GET {EVENT_TYPES_PATH} (it predates it): stored event versions are not checked"
                )],
            ))
        }
        Err(e) => return Err(failed(e)),
    };
    let url = format!("http://{service}:{}{EVENT_TYPES_PATH}", store.port);
    parse_event_types(&body)
        .map(|types| (Some(types), Vec::new()))
        .map_err(|detail| EventInputsError::StoreAnswer {
            service,
            url,
            detail,
        })
}

/// The body of `GET /event-types`.
pub fn parse_event_types(body: &str) -> Result<Vec<StoredEventType>, String> {
    serde_json::from_str(body).map_err(|e| e.to_string())
}

fn flatten(mut errors: Vec<EventInputsError>) -> EventInputsError {
    let mut flat = Vec::new();
    for e in errors.drain(..) {
        match e {
            EventInputsError::Several(inner) => flat.extend(inner),
            other => flat.push(other),
        }
    }
    if flat.len() == 1 {
        flat.remove(0)
    } else {
        EventInputsError::Several(flat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stores_answer_reads_as_stored_types() {
        let types = parse_event_types(
            r#"[{"type":"AccountOpened","version":1,"count":3,"first_position":1,"last_position":9}]"#,
        )
        .expect("valid");
        assert_eq!(types.len(), 1);
        assert_eq!(types[0].event_type, "AccountOpened");
        assert_eq!((types[0].version, types[0].count), (1, 3));
        assert_eq!((types[0].first_position, types[0].last_position), (1, 9));
        let err = parse_event_types(r#"{"types":[]}"#).expect_err("not a list");
        assert!(err.contains("expected a sequence"), "{err}");
    }
}
