//! Integration tests of the event store: the service runs in-process on port 0 with a temporary
//! data directory, or as the real binary when a test kills or signals the process.

mod append;
mod bad_input;
mod event_types;
mod helpers;
mod import;
mod log;
mod operations;
mod process;
mod read;
mod snapshots;
mod subscriptions;
mod wal;
