//! End-to-end tests: images -> a registry -> `deployer apply -f manifests/ci.yaml` -> the
//! running fleet, driven through the gateway and checked through the view and the event store.
//!
//! Every test that runs a fleet takes `fleet_slot()` first, so one fleet runs at a time: the
//! tests share a 2-core machine with everything else, and a roll under load measures nothing
//! useful when four fleets compete. Each fleet still has its own registry, project name,
//! network, volumes and gateway port, and is taken down by a drop guard.

mod crash;
mod failed_deploy;
mod image_labels;
mod pipeline_files;
mod projection;
mod roll;
mod scenario;

/// One fleet at a time in this process.
pub fn fleet_slot() -> &'static tokio::sync::Mutex<()> {
    static SLOT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    &SLOT
}
