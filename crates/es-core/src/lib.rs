//! Event-sourcing core: aggregates, event envelopes, weak-schema JSON and the event store client.

pub mod aggregate;
pub mod client;
pub mod envelope;
pub mod follow;
pub mod net;
pub mod partitioned;
pub mod repository;
pub mod schema;
pub mod testing;

pub use aggregate::{replay, Aggregate, DomainEvent};
pub use client::{
    AppendResult, ClientError, EventStoreClient, LogFilter, LogPage, RetryPolicy, Snapshot,
    StreamPage, StreamQuery, SubscriptionSpec,
};
pub use envelope::{
    derived_event_id, EventEnvelope, ExpectedVersion, Metadata, NewEvent, StreamId, StreamIdError,
};
pub use follow::{Backoff, Follower, Poison};
pub use repository::{CommandContext, ExecuteError, Executed, Loaded, Repository, Snapshotting};
pub use schema::{DecodeError, EncodeError, EncodedEvent, Upcasters};
pub use testing::AggregateTest;
