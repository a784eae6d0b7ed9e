//! Stored events and what travels with them: stream ids, envelopes, metadata, expected versions
//! and deterministic event ids for idempotent handlers.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::schema::{DecodeError, EncodeError};
use crate::{Aggregate, DomainEvent};

pub use event_store_api::{ExpectedVersion, StreamId, StreamIdError};

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

/// The stream of aggregate `A` with this id: `<A::TYPE>-<id>`.
pub fn stream_of<A: Aggregate>(id: Uuid) -> StreamId {
    // A UUID and `-` are always valid; a bad type name is a programming error caught by any test.
    StreamId::parse(format!("{}-{}", A::TYPE, id)).unwrap_or_else(|error| {
        panic!(
            "Aggregate::TYPE {:?} is no stream id prefix: {error}",
            A::TYPE
        )
    })
}

/// The deterministic id of an event appended while handling `trigger`, for one `purpose`.
///
/// A redelivered trigger yields the same ids, so the store's idempotent append drops the copy.
/// Use one purpose per kind of reaction (`"debit-from-account"`), plus an index for batches.
pub fn derived_event_id(trigger: Uuid, purpose: &str) -> Uuid {
    Uuid::new_v5(&trigger, purpose.as_bytes())
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
    fn an_aggregate_stream_is_its_type_and_id() {
        #[derive(Debug, Clone, Serialize, Deserialize)]
        enum Happened {
            Happened {},
        }
        impl DomainEvent for Happened {
            fn event_type(&self) -> &'static str {
                "Happened"
            }
        }
        #[derive(Debug, Clone, Default)]
        struct Thing;
        impl Aggregate for Thing {
            type Command = ();
            type Event = Happened;
            type Error = std::convert::Infallible;
            const TYPE: &'static str = "Thing";
            fn handle(&self, (): ()) -> Result<Vec<Self::Event>, Self::Error> {
                Ok(Vec::new())
            }
            fn apply(self, _: &Self::Event) -> Self {
                self
            }
        }
        let id = Uuid::parse_str("6f1c2b9e-0000-4000-8000-000000000001").expect("uuid");
        assert_eq!(
            stream_of::<Thing>(id).as_str(),
            "Thing-6f1c2b9e-0000-4000-8000-000000000001"
        );
    }

    #[test]
    fn metadata_serialises_only_what_is_set() {
        let metadata = Metadata::default();
        assert_eq!(serde_json::to_value(&metadata).ok(), Some(json!({})));
    }
}
