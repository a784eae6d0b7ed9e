//! The aggregate contract: a command is decided into events by a pure function, and applying an
//! event yields the next state.

use serde::{de::DeserializeOwned, Serialize};

/// An event of one aggregate type: a past-tense fact with a stable type name and schema version.
pub trait DomainEvent: Serialize + DeserializeOwned + Clone + std::fmt::Debug + Send + Sync {
    /// The name stored as the envelope's `event_type`, such as `AccountOpened`.
    fn event_type(&self) -> &'static str;

    /// The schema version this code writes. Older stored versions go through [`Upcast`].
    fn schema_version(&self) -> u32 {
        1
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
