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

use std::time::Duration;

use tests::bank::Gateway;
use tests::Error;

/// One fleet at a time in this process.
pub fn fleet_slot() -> &'static tokio::sync::Mutex<()> {
    static SLOT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    &SLOT
}

/// Opens `n` accounts of `balance` each through the gateway and waits until the view shows
/// them. Returns their ids.
pub async fn open_accounts(gw: &Gateway, n: usize, balance: i64) -> Result<Vec<String>, Error> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let created = gw.open_account(&format!("load {i}"), balance).await?;
        gw.account(&created.id, created.version, Duration::from_secs(30))
            .await?;
        ids.push(created.id);
    }
    Ok(ids)
}
