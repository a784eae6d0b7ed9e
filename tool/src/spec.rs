//! `ContainerSpec`: the pure, normalized, engine-agnostic description of one container of a
//! service. The engine adapter turns it into the engine's create-container call and nothing else
//! decides a container's shape.
//!
//! Drift detection rests on `spec_hash`: a SHA-256 over the normalized fields that come from the
//! manifest only (never from values the engine fills in), so an apply followed by a plan shows no
//! changes. Maps are ordered (`BTreeMap`), so the environment's order does not matter. Secrets
//! contribute only a salted hash of their value. The image digest is not part of the hash; the
//! plan compares it separately.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::labels;
use crate::manifest::{
    duration_ms, HealthCheck, ImageRef, Manifest, PortMapping, Resources, RestartPolicy, Secret,
    Service,
};

/// One container to create for a service replica.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerSpec {
    pub project: String,
    pub service: String,
    /// 1-based replica number.
    pub replica: u32,
    /// `<project>-<service>-<replica>-`; see `container_name`.
    pub name_prefix: String,
    pub image: ImageRef,
    /// Overrides the image's command (Docker `Cmd`) when set.
    pub command: Option<Vec<String>>,
    /// Plain environment variables.
    pub env: BTreeMap<String, String>,
    /// Secrets, delivered as environment variables of these names. Their values are never
    /// serialized; see `plan::Plan::restore_secrets`.
    pub secrets: BTreeMap<String, Secret>,
    pub ports: Vec<PortMapping>,
    /// Networks to join, each with the service name as alias. The first is the primary one.
    pub networks: Vec<NetworkAttachment>,
    pub mounts: Vec<Mount>,
    /// The HTTP health check the deployer runs after starting the container.
    pub health: Option<HealthCheck>,
    pub restart: RestartPolicy,
    pub resources: Resources,
    /// Time between SIGTERM and SIGKILL when stopping the container (Docker `StopTimeout`).
    #[serde(with = "duration_ms")]
    pub stop_grace_period: Duration,
    /// Every label to create the container with: the user's labels plus the deployer's
    /// (`labels::*`), except `labels::IMAGE_DIGEST`, which apply adds (see `labels_with_digest`).
    pub labels: BTreeMap<String, String>,
    /// `spec_hash(self)`, also stored in `labels::SPEC_HASH`.
    pub spec_hash: String,
}

/// A network to join, by engine name, with DNS aliases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkAttachment {
    pub network: String,
    pub aliases: Vec<String>,
}

/// A named-volume mount, by engine volume name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    pub volume: String,
    pub target: String,
    pub read_only: bool,
}

/// The fields that make up the spec hash, by the manifest key they come from. A plan names
/// these when it replaces for a configuration change.
pub const HASHED_FIELDS: &[&str] = &[
    "image",
    "command",
    "environment",
    "secrets",
    "ports",
    "networks",
    "volumes",
    "health",
    "restart",
    "resources",
    "labels",
    "stop_grace_period",
];

/// Builds the spec of replica `replica` (1-based) of `service`.
pub fn container_spec(manifest: &Manifest, service: &Service, replica: u32) -> ContainerSpec {
    let project = manifest.project.to_string();
    let name = service.name.to_string();
    let networks = service
        .networks
        .iter()
        .map(|n| NetworkAttachment {
            network: manifest.network_engine_name(n),
            aliases: vec![name.clone()],
        })
        .collect();
    let mounts = service
        .volumes
        .iter()
        .map(|v| Mount {
            volume: manifest.volume_engine_name(&v.volume),
            target: v.target.clone(),
            read_only: v.read_only,
        })
        .collect();
    let mut spec = ContainerSpec {
        name_prefix: format!("{project}-{name}-{replica}-"),
        project,
        service: name,
        replica,
        image: service.image.clone(),
        command: service.command.clone(),
        env: service.environment.clone(),
        secrets: service.secrets.clone(),
        ports: service.ports.clone(),
        networks,
        mounts,
        health: service.health.clone(),
        restart: service.restart,
        resources: service.resources.clone(),
        stop_grace_period: service.stop_grace_period,
        labels: service.labels.clone(),
        spec_hash: String::new(),
    };
    let fields = field_hashes(&spec);
    spec.spec_hash = combine(&fields);
    let deployer_labels = [
        (labels::MANAGED_BY, labels::MANAGED_BY_VALUE.to_owned()),
        (labels::PROJECT, spec.project.clone()),
        (labels::SERVICE, spec.service.clone()),
        (labels::REPLICA, replica.to_string()),
        (labels::SPEC_HASH, spec.spec_hash.clone()),
        (labels::FIELD_HASHES, encode_field_hashes(&fields)),
        (labels::IMAGE, spec.image.to_string()),
        (labels::HEALTH, encode_health(spec.health.as_ref())),
        (labels::DETAIL, canonical(&detail(&spec))),
    ];
    for (k, v) in deployer_labels {
        spec.labels.insert(k.to_owned(), v);
    }
    spec
}

/// The hash of the normalized spec: stable across runs and processes, independent of map
/// order, of the replica number and of the image digest. Lowercase hex SHA-256.
pub fn spec_hash(spec: &ContainerSpec) -> String {
    combine(&field_hashes(spec))
}

/// Short (12 hex digits) hash of each field in `HASHED_FIELDS`, by field name.
pub fn field_hashes(spec: &ContainerSpec) -> BTreeMap<&'static str, String> {
    let user_labels: BTreeMap<&String, &String> = spec
        .labels
        .iter()
        .filter(|(k, _)| !k.starts_with(labels::PREFIX))
        .collect();
    let secrets: BTreeMap<&String, String> = spec
        .secrets
        .iter()
        .map(|(k, v)| (k, secret_hash(&spec.project, &spec.service, k, v)))
        .collect();
    let networks: Vec<&str> = spec.networks.iter().map(|n| n.network.as_str()).collect();
    let mut out = BTreeMap::new();
    for field in HASHED_FIELDS {
        let json = match *field {
            "image" => canonical(&spec.image),
            "command" => canonical(&spec.command),
            "environment" => canonical(&spec.env),
            "secrets" => canonical(&secrets),
            "ports" => canonical(&spec.ports),
            "networks" => canonical(&networks),
            "volumes" => canonical(&spec.mounts),
            "health" => canonical(&spec.health),
            "restart" => canonical(&spec.restart),
            "resources" => canonical(&spec.resources),
            "labels" => canonical(&user_labels),
            "stop_grace_period" => canonical(&(spec.stop_grace_period.as_millis() as u64)),
            _ => String::new(),
        };
        let digest = hex::encode(Sha256::digest(format!("{field}\0{json}").as_bytes()));
        out.insert(*field, digest[..12].to_owned());
    }
    out
}

/// Encodes field hashes for `labels::FIELD_HASHES`: `command=1a2b…,environment=…`.
pub fn encode_field_hashes(fields: &BTreeMap<&'static str, String>) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Encodes a health check for `labels::HEALTH`: its JSON, or `none`.
pub fn encode_health(health: Option<&HealthCheck>) -> String {
    match health {
        None => "none".to_owned(),
        Some(h) => canonical(h),
    }
}

/// The health check a container was created with, read back from its labels:
/// `Some(None)` when it had none, `None` when the labels do not say (a container created
/// before `labels::HEALTH` existed, or a label that does not parse).
pub fn health_from_labels(labels: &BTreeMap<String, String>) -> Option<Option<HealthCheck>> {
    match labels.get(labels::HEALTH).map(String::as_str) {
        None => None,
        Some("none") => Some(None),
        Some(json) => serde_json::from_str(json).ok().map(Some),
    }
}

/// The 12-hex-digit hash `field_hashes` gives the `health` field of a spec with `health`.
pub fn health_field_hash(health: Option<&HealthCheck>) -> String {
    let json = canonical(&health);
    let digest = hex::encode(Sha256::digest(format!("health\0{json}").as_bytes()));
    digest[..12].to_owned()
}

/// What `labels::DETAIL` holds, so that a plan can say which keys and ports changed without
/// storing a value: per environment key a short hash of its value, per secret a short salted
/// hash, and the published ports as `port_text` writes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Detail {
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    #[serde(default)]
    pub ports: Vec<String>,
}

/// The `Detail` of a spec.
pub fn detail(spec: &ContainerSpec) -> Detail {
    let short = |input: String| hex::encode(Sha256::digest(input.as_bytes()))[..12].to_owned();
    Detail {
        env: spec
            .env
            .iter()
            .map(|(k, v)| (k.clone(), short(format!("env\0{k}\0{v}"))))
            .collect(),
        secrets: spec
            .secrets
            .iter()
            .map(|(k, v)| {
                let salted = secret_hash(&spec.project, &spec.service, k, v);
                (k.clone(), salted[..12].to_owned())
            })
            .collect(),
        ports: spec.ports.iter().map(port_text).collect(),
    }
}

/// The `Detail` a container was created with; `None` for containers made before the label.
pub fn detail_from_labels(labels: &BTreeMap<String, String>) -> Option<Detail> {
    serde_json::from_str(labels.get(labels::DETAIL)?).ok()
}

/// A published port as `docker ps` shows it: `127.0.0.1:8080->80`, `8080->80/udp`, and
/// `127.0.0.1:<random>->8080` when the engine picks the host port.
pub fn port_text(p: &PortMapping) -> String {
    let ip = match p.host_ip {
        Some(std::net::IpAddr::V6(ip)) => format!("[{ip}]:"),
        Some(ip) => format!("{ip}:"),
        None => String::new(),
    };
    let host = p.host_port.map_or("<random>".to_owned(), |h| h.to_string());
    let udp = if p.protocol == crate::manifest::Protocol::Udp {
        "/udp"
    } else {
        ""
    };
    format!("{ip}{host}->{}{udp}", p.container_port)
}

/// Decodes a `labels::FIELD_HASHES` value; malformed entries are skipped.
pub fn decode_field_hashes(label: &str) -> BTreeMap<String, String> {
    label
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

impl ContainerSpec {
    /// The full container name: `<project>-<service>-<replica>-<suffix>`. The suffix must be
    /// unique per created container (a start-first roll runs old and new side by side), e.g.
    /// 8 random hex digits.
    pub fn container_name(&self, suffix: &str) -> String {
        format!("{}{}", self.name_prefix, suffix)
    }

    /// `labels` plus `labels::IMAGE_DIGEST`, for creating the container.
    pub fn labels_with_digest(&self, image_digest: &str) -> BTreeMap<String, String> {
        let mut l = self.labels.clone();
        l.insert(labels::IMAGE_DIGEST.to_owned(), image_digest.to_owned());
        l
    }

    /// `KEY=VALUE` lines for the engine: the environment, then the secrets. Fails with the
    /// name of the first secret whose value is missing (a saved plan not yet restored).
    pub fn env_list(&self) -> Result<Vec<String>, String> {
        let mut out: Vec<String> = self.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        for (k, v) in &self.secrets {
            match v.expose() {
                Some(value) => out.push(format!("{k}={value}")),
                None => return Err(k.clone()),
            }
        }
        Ok(out)
    }
}

/// Salted hash of a secret value: the project, service and secret name are the salt, so equal
/// values in different places hash differently. Only this ever reaches a label.
fn secret_hash(project: &str, service: &str, name: &str, secret: &Secret) -> String {
    let value = secret.expose().unwrap_or_default();
    let input = format!("deployer-secret-v1\0{project}\0{service}\0{name}\0{value}");
    hex::encode(Sha256::digest(input.as_bytes()))
}

fn combine(fields: &BTreeMap<&'static str, String>) -> String {
    let mut h = Sha256::new();
    h.update(b"deployer-spec-v1");
    for (k, v) in fields {
        h.update(k.as_bytes());
        h.update(b"=");
        h.update(v.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

fn canonical<T: Serialize + ?Sized>(value: &T) -> String {
    // Serializing plain data with ordered maps cannot fail; fall back to empty to stay total.
    serde_json::to_string(value).unwrap_or_default()
}
