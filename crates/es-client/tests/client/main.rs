//! The event store client against the real store, spawned in-process on port 0.

mod append_load;
mod cache;
mod event_types;
mod execute;
mod follow;
mod idempotency;
mod partitioned;
mod resilience;
mod snapshots;
mod support;
