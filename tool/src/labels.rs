//! Label keys the deployer puts on the engine objects it manages. Everything the plan needs to
//! know about a running container is in these labels, so one label-filtered list is enough.
//! No label ever holds a secret value.

/// Prefix of every deployer label; user labels may not use it.
pub const PREFIX: &str = "deployer.";

/// `deployer` on every container, network and volume the deployer created.
pub const MANAGED_BY: &str = "deployer.managed-by";
/// Value of `MANAGED_BY`.
pub const MANAGED_BY_VALUE: &str = "deployer";
/// The project name; filter on `deployer.project=<project>` to find a project's objects.
pub const PROJECT: &str = "deployer.project";
/// The service name (containers).
pub const SERVICE: &str = "deployer.service";
/// The replica number, 1-based (containers).
pub const REPLICA: &str = "deployer.replica";
/// Hash of the normalized desired container spec, `spec::spec_hash` (containers).
pub const SPEC_HASH: &str = "deployer.spec-hash";
/// Short per-field hashes `field=hash,field=hash` (`spec::field_hashes`), so a plan can name
/// which fields changed without storing any value (containers).
pub const FIELD_HASHES: &str = "deployer.field-hashes";
/// The image reference as written in the manifest (containers).
pub const IMAGE: &str = "deployer.image";
/// The digest the container was created from: the registry manifest digest when the image came
/// from a registry, else the local image id. Set by apply, not part of the spec (containers).
pub const IMAGE_DIGEST: &str = "deployer.image-digest";
/// The deployer's HTTP health check the container was created with, as JSON (durations in
/// milliseconds), or `none`. A rollback health-checks an old container with its own check, read
/// back from this label, not with the new spec's (containers).
pub const HEALTH: &str = "deployer.health";
/// What a plan shows of a change, as JSON (`spec::Detail`): a short hash of each environment
/// value and each secret (salted) by key, and the published ports. Never a value (containers;
/// older containers lack it and their plans name only the changed fields).
pub const DETAIL: &str = "deployer.detail";
/// The network or volume name as written in the manifest (networks and volumes).
pub const RESOURCE_NAME: &str = "deployer.name";
/// The volumes a read model's container mounts instead of the manifest's, as JSON
/// `{"<manifest volume>": "<engine volume>"}`: set by a blue/green projection rebuild, carried
/// over by later rolls of the same projection version (containers).
pub const PROJECTION_VOLUMES: &str = "deployer.projection.volumes";
/// The projection version and volumes the container replaced, as JSON `{"version": 1,
/// "volumes": {...}}`: what `rollback` returns to, kept until the next successful apply
/// (containers).
pub const PROJECTION_PREVIOUS: &str = "deployer.projection.previous";
/// The service a volume was made for by a blue/green projection rebuild (volumes).
pub const PROJECTION_VOLUME: &str = "deployer.projection.service";
/// The image label that carries a read model's projection version (an integer): a roll that
/// changes it rebuilds the read model blue/green.
pub const PROJECTION_VERSION: &str = "io.fleet.projection.version";
/// Marks the deploy-lock object of a project.
pub const LOCK: &str = "deployer.lock";
/// Marks a history record of a project.
pub const HISTORY: &str = "deployer.history";

/// The label filter that selects every object of a project: `deployer.project=<project>`.
pub fn project_filter(project: &str) -> String {
    format!("{PROJECT}={project}")
}
