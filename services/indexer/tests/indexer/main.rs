//! Integration tests of the indexer: a real event store in-process, banking events appended to
//! it, and the indexer as its binary (to be killed) or in-process.

mod support;

mod bad_queries;
mod follows_events;
