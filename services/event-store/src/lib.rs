//! The event store: durable streams, a global log, consumer groups and snapshots over HTTP.
//!
//! `domain` holds the checked request types, `storage` the backend trait and its SQLite
//! implementation, `http` the axum router, and `startup` the [`Application`] that ties them
//! together. The store is schema-agnostic: `data` and `metadata` are stored as raw JSON text.

pub mod config;
pub mod domain;
pub mod http;
pub mod startup;
pub mod storage;

pub use config::Config;
pub use http::{router, AppState};
pub use startup::{Application, StartError};
