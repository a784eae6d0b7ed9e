//! Checks of the workspace itself that need no Docker and no running service: which crates may
//! depend on which (read from `cargo tree`), and that the event declarations in `ci/events/`
//! and the generated event schemas match the code.
//!
//! `cargo test -p tests --test workspace`

mod dependencies;
mod event_names;
mod event_schemas;
