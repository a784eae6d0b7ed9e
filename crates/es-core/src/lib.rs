//! Event-sourcing core: aggregates, event envelopes, weak-schema JSON and the given/when/then
//! test helper. No IO: the event store client is `es-client`, above this crate.

pub mod aggregate;
pub mod envelope;
pub mod schema;
pub mod testing;

pub use aggregate::{replay, Aggregate, DomainEvent, Snapshotting};
pub use envelope::{
    derived_event_id, stream_of, EventEnvelope, ExpectedVersion, Metadata, NewEvent, StreamId,
    StreamIdError,
};
pub use schema::{DecodeError, EncodeError, EncodedEvent, Upcasters};
pub use testing::AggregateTest;
