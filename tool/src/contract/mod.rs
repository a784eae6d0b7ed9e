//! Event contracts: what each image says it produces and consumes (`Type@version`), the schemas
//! of what it produces, and its projection version, parsed from its labels. Pure: the IO side
//! (registry, engine, event store) gathers `EventInputs`; this module only reads them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

mod check;
mod graph;
mod order;
mod report;
mod schema;

pub use check::{check, PlanShape};
pub use graph::{EventGraph, Format, GraphEdge, GraphService};
pub use report::{EventReport, Finding, Kind, Rebuild};
pub use schema::incompatibilities;

/// Label: comma-separated `Type@version` the image writes.
pub const LABEL_PRODUCES: &str = "io.fleet.events.produces";
/// Label: comma-separated `Type@version` the image reads, or `*` for every event.
pub const LABEL_CONSUMES: &str = "io.fleet.events.consumes";
/// Label: a JSON object `{"Type@version": <JSON Schema draft 2020-12>}`, one entry per produced
/// event version.
pub const LABEL_SCHEMAS: &str = "io.fleet.events.schemas";
/// Label: the read model's projection version, an integer.
pub const LABEL_PROJECTION_VERSION: &str = "io.fleet.projection.version";

/// `Type@version`, e.g. `AccountDebited@2`. Orders by type, then version.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventVersion {
    pub event_type: String,
    pub version: u32,
}

/// One image's declared contract, parsed from its labels.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Contract {
    pub produces: BTreeSet<EventVersion>,
    pub consumes: Consumes,
    /// The schema of each produced event version that has one.
    pub schemas: BTreeMap<EventVersion, serde_json::Value>,
    pub projection_version: Option<u64>,
}

/// What an image reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consumes {
    /// `*`: every event (the archiver).
    All,
    /// Exactly these versions; empty when the image reads nothing.
    Only(BTreeSet<EventVersion>),
}

/// One event version the store holds (an entry of the event store's `GET /event-types`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEventType {
    #[serde(rename = "type")]
    pub event_type: String,
    pub version: u32,
    pub count: u64,
    pub first_position: u64,
    pub last_position: u64,
}

/// The inputs the IO side gathers for the event checks.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventInputs {
    /// Per service of the running fleet: the running container's image reference and labels.
    pub running: BTreeMap<String, ImageLabels>,
    /// Per service of the desired fleet: the desired image reference and labels.
    pub desired: BTreeMap<String, ImageLabels>,
    /// What the store holds; `None` when the manifest names no `event_store` (the stored-version
    /// check is skipped, and the plan says so).
    pub stored: Option<Vec<StoredEventType>>,
}

/// An image reference and the labels of its config.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageLabels {
    pub image: String,
    pub labels: BTreeMap<String, String>,
}

/// A malformed contract label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("image {image}: label {label}: {problem}")]
pub struct ContractError {
    pub image: String,
    pub label: String,
    pub problem: String,
}

/// A malformed `Type@version`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not Type@version (e.g. AccountDebited@1): {1}")]
pub struct EventVersionError(pub String, pub &'static str);

/// The image's contract from its labels: `Ok(None)` when it has none of the contract labels
/// (`produces`, `consumes`, `schemas`; the projection version alone is no event contract, but
/// it is kept when a contract exists). A present label is parsed strictly.
pub fn from_labels(
    image: &str,
    labels: &BTreeMap<String, String>,
) -> Result<Option<Contract>, ContractError> {
    let has = |l: &str| labels.contains_key(l);
    if !has(LABEL_PRODUCES) && !has(LABEL_CONSUMES) && !has(LABEL_SCHEMAS) {
        return Ok(None);
    }
    let err = |label: &str, problem: String| ContractError {
        image: image.to_string(),
        label: label.to_string(),
        problem,
    };
    let produces = match labels.get(LABEL_PRODUCES) {
        Some(v) => parse_list(v).map_err(|e| err(LABEL_PRODUCES, e))?,
        None => BTreeSet::new(),
    };
    let consumes = match labels.get(LABEL_CONSUMES).map(|v| v.trim()) {
        Some("*") => Consumes::All,
        Some(v) => Consumes::Only(parse_list(v).map_err(|e| err(LABEL_CONSUMES, e))?),
        None => Consumes::Only(BTreeSet::new()),
    };
    let schemas = match labels.get(LABEL_SCHEMAS) {
        Some(v) => parse_schemas(v, &produces).map_err(|e| err(LABEL_SCHEMAS, e))?,
        None => BTreeMap::new(),
    };
    let projection_version = match labels.get(LABEL_PROJECTION_VERSION) {
        Some(v) => Some(v.trim().parse::<u64>().map_err(|_| {
            err(
                LABEL_PROJECTION_VERSION,
                format!("{v:?} is not a non-negative integer"),
            )
        })?),
        None => None,
    };
    Ok(Some(Contract {
        produces,
        consumes,
        schemas,
        projection_version,
    }))
}

/// The projection version label alone (an image may carry it without an event contract).
pub fn projection_version(
    image: &str,
    labels: &BTreeMap<String, String>,
) -> Result<Option<u64>, ContractError> {
    match labels.get(LABEL_PROJECTION_VERSION) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| ContractError {
                image: image.to_string(),
                label: LABEL_PROJECTION_VERSION.to_string(),
                problem: format!("{v:?} is not a non-negative integer"),
            }),
    }
}

impl Default for Consumes {
    fn default() -> Self {
        Consumes::Only(BTreeSet::new())
    }
}

impl Consumes {
    /// Whether this consumer reads `ev`.
    pub fn reads(&self, ev: &EventVersion) -> bool {
        match self {
            Consumes::All => true,
            Consumes::Only(set) => set.contains(ev),
        }
    }

    /// Whether this consumer reads any version of `event_type` (so it must read every version
    /// of it that is produced).
    pub fn reads_type(&self, event_type: &str) -> bool {
        match self {
            Consumes::All => true,
            Consumes::Only(set) => set.iter().any(|e| e.event_type == event_type),
        }
    }
}

impl fmt::Display for Consumes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Consumes::All => f.write_str("*"),
            Consumes::Only(set) => f.write_str(&join(set)),
        }
    }
}

impl EventVersion {
    pub fn new(event_type: impl Into<String>, version: u32) -> Self {
        EventVersion {
            event_type: event_type.into(),
            version,
        }
    }
}

impl fmt::Display for EventVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.event_type, self.version)
    }
}

impl FromStr for EventVersion {
    type Err = EventVersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why| EventVersionError(s.to_string(), why);
        let (t, v) = s.split_once('@').ok_or_else(|| bad("no '@'"))?;
        if t.is_empty() {
            return Err(bad("the type is empty"));
        }
        if !t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(bad("the type may hold only letters, digits and '_'"));
        }
        if v.is_empty() || !v.chars().all(|c| c.is_ascii_digit()) {
            return Err(bad("the version is not a non-negative integer"));
        }
        let version = v.parse().map_err(|_| bad("the version is too large"))?;
        Ok(EventVersion::new(t, version))
    }
}

impl Serialize for EventVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EventVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// `a@1,b@2`: the display form of a set of versions.
pub fn join<'a>(evs: impl IntoIterator<Item = &'a EventVersion>) -> String {
    evs.into_iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// A comma-separated list; blanks around items and an empty label are allowed, an empty item
/// between commas or a duplicate is not.
fn parse_list(v: &str) -> Result<BTreeSet<EventVersion>, String> {
    let mut out = BTreeSet::new();
    if v.trim().is_empty() {
        return Ok(out);
    }
    for (i, item) in v.split(',').enumerate() {
        let item = item.trim();
        if item.is_empty() {
            return Err(format!("item {} is empty", i + 1));
        }
        if item == "*" {
            return Err("\"*\" must be the whole value, not one item of a list".to_string());
        }
        let ev: EventVersion = item.parse().map_err(|e: EventVersionError| e.to_string())?;
        if !out.insert(ev) {
            return Err(format!("{item} is listed twice"));
        }
    }
    Ok(out)
}

fn parse_schemas(
    v: &str,
    produces: &BTreeSet<EventVersion>,
) -> Result<BTreeMap<EventVersion, serde_json::Value>, String> {
    let value: serde_json::Value = serde_json::from_str(v).map_err(|e| format!("not JSON: {e}"))?;
    let serde_json::Value::Object(map) = value else {
        return Err("not a JSON object {\"Type@version\": <schema>}".to_string());
    };
    let mut out = BTreeMap::new();
    for (key, schema) in map {
        let ev: EventVersion = key
            .parse()
            .map_err(|e: EventVersionError| format!("key {e}"))?;
        if !produces.contains(&ev) {
            return Err(format!(
                "{ev} has a schema but is not in {LABEL_PRODUCES} ({})",
                join(produces)
            ));
        }
        if !(schema.is_object() || schema.is_boolean()) {
            return Err(format!("{ev}: the schema is not a JSON object"));
        }
        out.insert(ev, schema);
    }
    Ok(out)
}

#[cfg(test)]
mod check_tests;
#[cfg(test)]
mod graph_tests;
#[cfg(test)]
mod schema_tests;
#[cfg(test)]
mod tests;
