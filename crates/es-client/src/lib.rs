//! The event store's client side: the HTTP client, the repository that loads and changes
//! aggregates through it, the log follower and the sagas' partitioned consumer loop.
//! The aggregates and events it carries are `es-core`'s.

pub mod client;
pub mod follow;
pub mod partitioned;
pub mod repository;

pub use client::{
    AppendResult, ClientError, EventStoreClient, EventTypeCount, LogFilter, LogPage, RetryPolicy,
    Snapshot, StreamPage, StreamQuery, SubscriptionSpec,
};
pub use follow::{Backoff, Follower, Poison};
pub use repository::{CommandContext, ExecuteError, Executed, Loaded, Repository};
