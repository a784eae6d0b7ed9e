//! The event store's client side: the HTTP client, the repository that loads and changes
//! aggregates through it, the durable subscriber and the sagas' partitioned consumer loop.
//! The aggregates and events it carries are `es-core`'s.

pub mod client;
pub mod partitioned;
pub mod repository;
pub mod subscriber;

pub use client::{
    AppendResult, ClientError, EventStoreClient, LogFilter, LogPage, RetryPolicy, Snapshot,
    StreamPage, StreamQuery, SubscriptionSpec,
};
pub use repository::{CommandContext, ExecuteError, Executed, Loaded, Repository};
pub use subscriber::{BatchOutcome, Subscriber};
