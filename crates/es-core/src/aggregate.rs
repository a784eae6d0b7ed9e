//! The aggregate contract: a command is decided into events by a pure function, and applying an
//! event yields the next state.

use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;

use crate::schema::{self, DecodeError, EncodeError, EncodedEvent, Upcasters};

/// An event of one aggregate type: a past-tense fact with a stable type name and schema version.
///
/// The default codec stores an event the way serde's default (externally tagged) enum
/// representation writes it: the variant name is the envelope's `event_type` and the variant's
/// content is `data`. So name each variant like its event type (or `#[serde(rename)]` it), and
/// mark payload fields `#[serde(default)]` so that events written before a field existed still
/// load. Unknown fields are ignored unless the type opts into `deny_unknown_fields` (don't).
pub trait DomainEvent:
    Serialize + DeserializeOwned + Clone + std::fmt::Debug + Send + Sync
{
    /// The name stored as the envelope's `event_type`, such as `AccountOpened`.
    fn event_type(&self) -> &'static str;

    /// The schema version this code writes. Older stored versions go through [`Self::upcasters`].
    fn schema_version(&self) -> u32 {
        1
    }

    /// Rewrites older stored schema versions into the current one before deserialising.
    /// The default has no steps: every stored version is read as it is.
    fn upcasters() -> &'static Upcasters {
        Upcasters::none()
    }

    /// Splits the event into `event_type`, `schema_version` and JSON `data` for storage.
    fn encode(&self) -> Result<EncodedEvent, EncodeError> {
        schema::encode_externally_tagged(self, self.event_type(), self.schema_version())
    }

    /// Rebuilds an event from its stored parts, upcasting older schema versions first.
    fn decode(event_type: &str, schema_version: u32, data: Value) -> Result<Self, DecodeError> {
        let data = Self::upcasters().upcast(event_type, schema_version, data);
        schema::decode_externally_tagged(event_type, schema_version, data)
    }
}

/// A consistency boundary whose state is rebuilt from its own events.
///
/// `handle` decides and never mutates; `apply` only changes state and holds no business rules.
pub trait Aggregate: Default + Clone + std::fmt::Debug + Send + Sync + 'static {
    type Command;
    type Event: DomainEvent;
    type Error: std::error::Error + Send + Sync + 'static;

    /// The aggregate type name, used as the stream-id prefix (`Account-<uuid>`).
    const TYPE: &'static str;

    /// Decides which events a command produces, given the current state.
    fn handle(&self, command: Self::Command) -> Result<Vec<Self::Event>, Self::Error>;

    /// Returns the state after `event`.
    fn apply(self, event: &Self::Event) -> Self;
}

/// An aggregate whose state can be saved as a snapshot (serde of the state).
pub trait Snapshotting: Aggregate + Serialize + DeserializeOwned {
    /// Bump this when the state's shape or meaning changes: snapshots written with another
    /// version are ignored and the stream is replayed from its first event instead.
    const SNAPSHOT_VERSION: u32 = 1;
}

/// Folds events over the default state: the state of an aggregate with exactly this history.
pub fn replay<'a, A: Aggregate>(events: impl IntoIterator<Item = &'a A::Event>) -> A {
    events.into_iter().fold(A::default(), A::apply)
}
