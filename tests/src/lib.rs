//! Support for the fleet's end-to-end tests: the images (built once per test process), a local
//! registry per fleet, the deployer driven through its command line, a load generator that
//! talks to the gateway, and the bank's invariants checked through the gateway, the view and
//! the event store.

pub mod bank;
pub mod docker;
pub mod error;
pub mod events;
pub mod fleet;
pub mod images;
pub mod invariants;
pub mod load;
pub mod projection;
pub mod registry;

pub use error::Error;

use std::path::PathBuf;

/// The workspace's root folder (the parent of this crate's folder).
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}
