//! The indexer: a full-text index (tantivy) of accounts and transfers, fed by events, behind
//! `GET /search`.
//!
//! `entry` holds the pure event-to-entry logic, `index` the tantivy schema, commits and search,
//! `feed` the indexing loop, and `http`/`startup` the service glue.

pub mod config;
pub mod entry;
pub mod feed;
pub mod http;
pub mod index;
pub mod startup;

pub use config::Config;
pub use entry::{AccountEntry, Entry, Kind, TransferEntry};
pub use feed::{FeedMetrics, FeedSettings};
pub use http::{router, AppState};
pub use index::{Hit, IndexError, IndexFeeder, QueryError, SearchIndex, SearchResults};
pub use startup::{Application, StartError};
