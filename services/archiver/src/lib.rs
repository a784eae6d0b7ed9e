//! The archiver: copies the global event log to object storage as immutable, compressed,
//! checksummed segments, and verifies and restores such an archive.
//!
//! `record` is the archived event, `segment` and `manifest` the pure on-disk formats, `archive`
//! the object-store IO, `store` the event store client, `writer` the archiving loop, `verify`
//! and `restore` the offline tools, and `http`/`startup` the service glue.

pub mod archive;
pub mod config;
pub mod http;
pub mod manifest;
pub mod record;
pub mod restore;
pub mod s3http;
pub mod segment;
pub mod startup;
pub mod store;
pub mod verify;
pub mod writer;

pub use archive::{Archive, ArchiveError};
pub use config::Config;
pub use http::{router, AppState};
pub use manifest::{Manifest, SegmentEntry};
pub use record::{ArchivedEvent, DigestSummary, LogDigest};
pub use restore::{archive_digest, restore, store_digest, RestoreError, RestoreReport};
pub use startup::{Application, StartError};
pub use store::{StoreClient, StoreError};
pub use verify::{verify, Fault, VerifyReport};
pub use writer::{Archiver, ArchiverError, FlushPolicy, Metrics, SegmentBuffer, Settings};
