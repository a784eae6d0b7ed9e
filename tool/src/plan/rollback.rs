//! The plan of `deployer rollback`: chosen services go back to an earlier revision (specs and
//! image from the apply history) as a replace of whatever runs now. Pure, like `compute`.

use super::{current, replica_of, Action, ObservedContainer, Plan, ReplaceReason, ServicePlan};
use super::{Summary, FORMAT_VERSION};
use crate::labels;
use crate::manifest::Manifest;
use crate::spec::ContainerSpec;

/// The revision a service goes back to.
#[derive(Debug, Clone, PartialEq)]
pub struct Revision {
    pub service: String,
    /// The image as written in the manifest of that revision.
    pub image: Option<String>,
    pub image_digest: Option<String>,
    /// One spec per replica, as stored (secret values are not stored).
    pub specs: Vec<ContainerSpec>,
}

/// A revision uses a secret the manifest no longer gives.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the earlier revision uses secret {secret}, which the manifest no longer provides; add it back to roll back")]
pub struct MissingSecret {
    pub service: String,
    pub secret: String,
}

/// The plan that rolls each of `revisions` back, replacing the service's containers in
/// `observed` (all of one level, in parallel). Secret values come from `manifest` by name, and
/// the update policy from the manifest's service of the same name. Replicas that already run
/// the revision are kept, as in any apply.
pub fn for_rollback(
    manifest: &Manifest,
    revisions: Vec<Revision>,
    observed: &[ObservedContainer],
) -> Result<Plan, MissingSecret> {
    let project = manifest.project.as_str();
    let mut services = Vec::new();
    for revision in revisions {
        let service = manifest.services.get(revision.service.as_str());
        let mut desired = revision.specs;
        for spec in &mut desired {
            for (name, secret) in spec.secrets.iter_mut() {
                *secret = service
                    .and_then(|s| s.secrets.get(name))
                    .ok_or_else(|| MissingSecret {
                        service: revision.service.clone(),
                        secret: name.clone(),
                    })?
                    .clone();
            }
        }
        let mut mine: Vec<&ObservedContainer> = observed
            .iter()
            .filter(|c| {
                c.service == revision.service
                    && c.labels.get(labels::PROJECT).map(String::as_str) == Some(project)
            })
            .collect();
        mine.sort_by_key(|c| (replica_of(c).unwrap_or(u32::MAX), c.created, c.id.clone()));
        services.push(ServicePlan {
            action: Action::Replace {
                reasons: vec![ReplaceReason::ConfigChanged {
                    fields: vec!["rollback".into()],
                    changes: Vec::new(),
                }],
            },
            image: revision.image,
            image_digest: revision.image_digest,
            desired,
            current: mine.into_iter().map(current).collect(),
            update: service.map(|s| s.update.clone()),
            depends_on: Vec::new(),
            service: revision.service,
        });
    }
    let names: Vec<String> = services.iter().map(|s| s.service.clone()).collect();
    Ok(Plan {
        format_version: FORMAT_VERSION,
        project: project.to_owned(),
        fingerprint: String::new(),
        manifests: manifest.sources.clone(),
        summary: Summary {
            replace: services.len(),
            ..Summary::default()
        },
        deploy_order: vec![names],
        services,
        networks_to_create: Vec::new(),
        volumes_to_create: Vec::new(),
        // A rollback returns to what ran before; the event gates do not hold it back.
        events: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use super::*;
    use crate::manifest;
    use crate::plan::{ContainerState, HealthStatus};

    fn load(image: &str, token: Option<&str>) -> Manifest {
        let yaml = format!(
            "project: shop\nservices:\n  api:\n    image: {image}\n    replicas: 2\n    update: {{failure_action: pause}}\n    secrets:\n      TOKEN: {{env: TOKEN}}\n  web:\n    image: web:1\n"
        );
        let token = token.map(str::to_owned);
        manifest::load_sources(&[(PathBuf::from("m.yaml"), yaml)], &move |k| {
            (k == "TOKEN").then(|| token.clone()).flatten()
        })
        .unwrap_or_else(|e| panic!("test manifest must load:\n{e}"))
    }

    /// The specs of `manifest`'s `api` as the history stores them (no secret values).
    fn stored_specs(manifest: &Manifest) -> Vec<ContainerSpec> {
        let api = &manifest.services["api"];
        (1..=2)
            .map(|r| {
                let spec = crate::spec::container_spec(manifest, api, r);
                serde_json::from_value(serde_json::to_value(&spec).expect("json")).expect("spec")
            })
            .collect()
    }

    fn container(id: &str, project: &str, service: &str, replica: u32) -> ObservedContainer {
        ObservedContainer {
            id: id.into(),
            name: format!("{project}-{service}-{replica}-{id}"),
            service: service.into(),
            image: format!("{service}:1"),
            image_id: String::new(),
            ips: BTreeMap::new(),
            labels: BTreeMap::from([
                (labels::PROJECT.to_owned(), project.to_owned()),
                (labels::SERVICE.to_owned(), service.to_owned()),
                (labels::REPLICA.to_owned(), replica.to_string()),
                (labels::SPEC_HASH.to_owned(), "new".to_owned()),
            ]),
            state: ContainerState::Running,
            health: HealthStatus::None,
            created: 1,
        }
    }

    fn revision(specs: Vec<ContainerSpec>) -> Revision {
        Revision {
            service: "api".into(),
            image: Some("api:1".into()),
            image_digest: Some("sha256:old".into()),
            specs,
        }
    }

    #[test]
    fn a_rollback_replaces_the_service_with_its_stored_revision() {
        let old = load("api:1", Some("s3cret"));
        let now = load("api:2", Some("s3cret"));
        let observed = [
            container("b2", "shop", "api", 2),
            container("a1", "shop", "api", 1),
            container("w1", "shop", "web", 1),
            container("x1", "other", "api", 1),
        ];

        let plan =
            for_rollback(&now, vec![revision(stored_specs(&old))], &observed).expect("a plan");

        assert_eq!(plan.project, "shop");
        assert_eq!(plan.deploy_order, [["api"]]);
        assert_eq!(plan.summary.replace, 1);
        assert!(plan.has_changes());
        let [api] = &plan.services[..] else {
            panic!("only api: {:?}", plan.services);
        };
        assert!(matches!(&api.action, Action::Replace { reasons } if reasons.len() == 1));
        assert_eq!(api.image.as_deref(), Some("api:1"));
        assert_eq!(api.image_digest.as_deref(), Some("sha256:old"));
        // The stored specs with the secret values of the manifest: the containers of then.
        let then: Vec<ContainerSpec> = (1..=2)
            .map(|r| crate::spec::container_spec(&old, &old.services["api"], r))
            .collect();
        assert_eq!(api.desired, then);
        let ids: Vec<&str> = api.current.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            ["a1", "b2"],
            "this project's api containers, by replica"
        );
        assert_eq!(api.update, Some(now.services["api"].update.clone()));
    }

    #[test]
    fn a_rollback_needs_the_secrets_of_the_revision() {
        let old = load("api:1", Some("s3cret"));
        let mut now = load("api:2", Some("s3cret"));
        now.services.get_mut("api").expect("api").secrets.clear();
        let err =
            for_rollback(&now, vec![revision(stored_specs(&old))], &[]).expect_err("no secret");
        assert_eq!(
            err,
            MissingSecret {
                service: "api".into(),
                secret: "TOKEN".into()
            }
        );
        assert_eq!(err.to_string(), "the earlier revision uses secret TOKEN, which the manifest no longer provides; add it back to roll back");
    }
}
