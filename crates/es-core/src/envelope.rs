//! Stored events and what travels with them: stream ids, envelopes, metadata, expected versions
//! and deterministic event ids for idempotent handlers.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::schema::{DecodeError, EncodeError};
use crate::{Aggregate, DomainEvent};

/// The id of one stream, such as `Account-6f1c...`: 1 to 256 ASCII letters, digits, `-`, `_`,
/// `.`, `:`, `@`, `$` or `+` (the event store's alphabet), so it goes in a URL path as it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StreamId(String);

/// A stored event as the store returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventEnvelope {
    pub event_id: Uuid,
    pub stream_id: StreamId,
    /// The event's version in its stream, from 1.
    pub version: u64,
    /// The event's position in the global log, from 1.
    pub position: u64,
    pub event_type: String,
    #[serde(default = "first_schema_version")]
    pub schema_version: u32,
    #[serde(default)]
    pub data: Value,
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: Metadata,
    #[serde(with = "time::serde::rfc3339")]
    pub recorded_at: OffsetDateTime,
}

/// An event to append, with its id chosen by the writer so that a retried append is idempotent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    pub data: Value,
    #[serde(default)]
    pub metadata: Metadata,
}

/// Who caused an event: the correlation id of the whole flow, and the event that triggered it.
/// Unknown keys are kept in `extra` so metadata written by newer code survives a round trip.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Metadata {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Uuid>,
    /// The id of the event whose handling produced this one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The version an append expects the stream to be at. `Exact(0)` means the stream must not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    Exact(u64),
    Any,
}

/// Why a stream id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamIdError {
    #[error("stream id is empty; use something like Account-<uuid>")]
    Empty,
    #[error("stream id is {len} characters long; the limit is {max}")]
    TooLong { len: usize, max: usize },
    #[error(
        "stream id {id:?} contains {found:?}; use only ASCII letters, digits and - _ . : @ $ +"
    )]
    BadCharacter { id: String, found: char },
}

/// The deterministic id of an event appended while handling `trigger`, for one `purpose`.
///
/// A redelivered trigger yields the same ids, so the store's idempotent append drops the copy.
/// Use one purpose per kind of reaction (`"debit-from-account"`), plus an index for batches.
pub fn derived_event_id(trigger: Uuid, purpose: &str) -> Uuid {
    Uuid::new_v5(&trigger, purpose.as_bytes())
}

impl StreamId {
    pub const MAX_LEN: usize = 256;

    /// Checks `raw` against the stream-id rules.
    pub fn parse(raw: impl Into<String>) -> Result<Self, StreamIdError> {
        let raw = raw.into();
        if raw.is_empty() {
            return Err(StreamIdError::Empty);
        }
        if raw.len() > Self::MAX_LEN {
            return Err(StreamIdError::TooLong {
                len: raw.len(),
                max: Self::MAX_LEN,
            });
        }
        if let Some(found) = raw.chars().find(|c| {
            !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@' | '$' | '+'))
        }) {
            return Err(StreamIdError::BadCharacter { id: raw, found });
        }
        Ok(Self(raw))
    }

    /// The stream of aggregate `A` with this id: `<A::TYPE>-<id>`.
    pub fn for_aggregate<A: Aggregate>(id: Uuid) -> Self {
        // A UUID and `-` are always valid; the type name is checked in debug builds.
        let stream = Self(format!("{}-{}", A::TYPE, id));
        debug_assert!(Self::parse(stream.0.clone()).is_ok(), "bad Aggregate::TYPE");
        stream
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl EventEnvelope {
    /// Decodes `data` into the typed event, upcasting older schema versions first.
    pub fn decode<E: DomainEvent>(&self) -> Result<E, DecodeError> {
        E::decode(&self.event_type, self.schema_version, self.data.clone())
    }
}

impl NewEvent {
    /// Encodes `event` with a fresh random id.
    pub fn from_event<E: DomainEvent>(event: &E, metadata: Metadata) -> Result<Self, EncodeError> {
        Self::with_id(Uuid::new_v4(), event, metadata)
    }

    /// Encodes `event` with the given id (see [`derived_event_id`]).
    pub fn with_id<E: DomainEvent>(
        event_id: Uuid,
        event: &E,
        metadata: Metadata,
    ) -> Result<Self, EncodeError> {
        let encoded = event.encode()?;
        Ok(Self {
            event_id,
            event_type: encoded.event_type.to_owned(),
            schema_version: encoded.schema_version,
            data: encoded.data,
            metadata,
        })
    }
}

impl Metadata {
    /// Metadata that starts a new flow: a fresh correlation id and no cause.
    pub fn new_flow() -> Self {
        Self {
            correlation_id: Some(Uuid::new_v4()),
            ..Self::default()
        }
    }

    /// Metadata for an event caused by `trigger`: the trigger's correlation id (or the trigger's
    /// own id when it has none) and causation id = the trigger's event id.
    pub fn caused_by(trigger: &EventEnvelope) -> Self {
        Self {
            correlation_id: Some(trigger.metadata.correlation_id.unwrap_or(trigger.event_id)),
            causation_id: Some(trigger.event_id),
            extra: Map::new(),
        }
    }
}

impl ExpectedVersion {
    /// The stream must not exist yet.
    pub const NO_STREAM: ExpectedVersion = ExpectedVersion::Exact(0);
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for StreamId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for StreamId {
    type Error = StreamIdError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(raw)
    }
}

impl std::str::FromStr for StreamId {
    type Err = StreamIdError;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Self::parse(raw)
    }
}

impl From<StreamId> for String {
    fn from(id: StreamId) -> Self {
        id.0
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::Exact(version) => write!(f, "{version}"),
            ExpectedVersion::Any => f.write_str("any"),
        }
    }
}

impl Serialize for ExpectedVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ExpectedVersion::Exact(version) => serializer.serialize_u64(*version),
            ExpectedVersion::Any => serializer.serialize_str("any"),
        }
    }
}

impl<'de> Deserialize<'de> for ExpectedVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Exact(u64),
            Word(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Exact(version) => Ok(ExpectedVersion::Exact(version)),
            Raw::Word(word) if word == "any" => Ok(ExpectedVersion::Any),
            Raw::Word(word) => Err(serde::de::Error::custom(format!(
                "expected_version must be a number or \"any\", got {word:?}"
            ))),
        }
    }
}

fn first_schema_version() -> u32 {
    1
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn stream_id_rules() {
        let check = |raw: &str, ok: bool| {
            assert_eq!(StreamId::parse(raw).is_ok(), ok, "{raw:?}");
        };
        check("Account-6f1c2b9e-0000-4000-8000-000000000001", true);
        check("a.b:c@d_e", true);
        check("$all+x", true);
        check("", false);
        check("has space", false);
        check("slash/inside", false);
        check("query?x", false);
        check("ümlaut", false);
        check(&"x".repeat(StreamId::MAX_LEN), true);
        check(&"x".repeat(StreamId::MAX_LEN + 1), false);
    }

    #[test]
    fn stream_id_error_says_what_to_use() {
        let error = StreamId::parse("a b").expect_err("space is refused");
        assert_eq!(
            error.to_string(),
            "stream id \"a b\" contains ' '; use only ASCII letters, digits and - _ . : @ $ +"
        );
    }

    #[test]
    fn envelope_reads_the_store_format() {
        let raw = json!({
            "event_id": "6f1c2b9e-0000-4000-8000-000000000001",
            "stream_id": "Account-1",
            "version": 3,
            "position": 17,
            "event_type": "AccountCredited",
            "schema_version": 2,
            "data": {"amount": 5},
            "metadata": {"correlation_id": "6f1c2b9e-0000-4000-8000-000000000002", "trace": "t"},
            "recorded_at": "2026-11-26T15:00:00Z"
        });
        let envelope: EventEnvelope = serde_json::from_value(raw).expect("parses");
        assert_eq!(envelope.stream_id.as_str(), "Account-1");
        assert_eq!((envelope.version, envelope.position), (3, 17));
        assert_eq!(envelope.schema_version, 2);
        assert_eq!(
            envelope.metadata.correlation_id.map(|id| id.to_string()),
            Some("6f1c2b9e-0000-4000-8000-000000000002".into())
        );
        assert_eq!(envelope.metadata.causation_id, None);
        assert_eq!(envelope.metadata.extra.get("trace"), Some(&json!("t")));
    }

    #[test]
    fn envelope_tolerates_null_metadata_and_missing_schema_version() {
        let raw = json!({
            "event_id": "6f1c2b9e-0000-4000-8000-000000000001",
            "stream_id": "S-1", "version": 1, "position": 1, "event_type": "X",
            "data": {}, "metadata": null, "recorded_at": "2026-11-26T15:00:00.123456Z"
        });
        let envelope: EventEnvelope = serde_json::from_value(raw).expect("parses");
        assert_eq!(envelope.schema_version, 1);
        assert_eq!(envelope.metadata, Metadata::default());
    }

    #[test]
    fn expected_version_wire_format() {
        assert_eq!(
            serde_json::to_value(ExpectedVersion::Exact(4)).ok(),
            Some(json!(4))
        );
        assert_eq!(
            serde_json::to_value(ExpectedVersion::Any).ok(),
            Some(json!("any"))
        );
        let back: ExpectedVersion = serde_json::from_value(json!("any")).expect("parses");
        assert_eq!(back, ExpectedVersion::Any);
        let back: ExpectedVersion = serde_json::from_value(json!(0)).expect("parses");
        assert_eq!(back, ExpectedVersion::NO_STREAM);
        assert!(serde_json::from_value::<ExpectedVersion>(json!("some")).is_err());
    }

    #[test]
    fn derived_ids_are_deterministic_and_distinct_per_trigger_and_purpose() {
        let trigger = Uuid::parse_str("6f1c2b9e-0000-4000-8000-000000000001").expect("uuid");
        let other = Uuid::parse_str("6f1c2b9e-0000-4000-8000-000000000002").expect("uuid");
        let id = derived_event_id(trigger, "debit");
        assert_eq!(id, derived_event_id(trigger, "debit"));
        assert_ne!(id, derived_event_id(trigger, "credit"));
        assert_ne!(id, derived_event_id(other, "debit"));
        assert_eq!(id.get_version_num(), 5);
    }

    #[test]
    fn caused_by_carries_correlation_and_sets_causation() {
        let trigger: EventEnvelope = serde_json::from_value(json!({
            "event_id": "6f1c2b9e-0000-4000-8000-000000000001",
            "stream_id": "S-1", "version": 1, "position": 1, "event_type": "X",
            "metadata": {"correlation_id": "6f1c2b9e-0000-4000-8000-0000000000cc"},
            "recorded_at": "2026-11-26T15:00:00Z"
        }))
        .expect("parses");
        let metadata = Metadata::caused_by(&trigger);
        assert_eq!(metadata.causation_id, Some(trigger.event_id));
        assert_eq!(metadata.correlation_id, trigger.metadata.correlation_id);

        let uncorrelated = EventEnvelope {
            metadata: Metadata::default(),
            ..trigger
        };
        let metadata = Metadata::caused_by(&uncorrelated);
        assert_eq!(metadata.correlation_id, Some(uncorrelated.event_id));
    }

    #[test]
    fn metadata_serialises_only_what_is_set() {
        let metadata = Metadata::default();
        assert_eq!(serde_json::to_value(&metadata).ok(), Some(json!({})));
    }
}
