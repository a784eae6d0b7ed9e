//! Event-sourcing core: aggregates, event envelopes, weak-schema JSON and the event store client.

pub mod aggregate;

pub use aggregate::{Aggregate, DomainEvent};
