//! Rolls of the account view under load, shared by the e2e test (200,000 events) and the
//! projection-roll bench (1,000,000 events): readers that check every answer, a writer that
//! keeps the versions moving, account-view images labelled with a projection version, the
//! store's head, bulk imports, and the view's `/projection`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use es_client::EventStoreClient;

use crate::bank::Gateway;
use crate::fleet::{ApplyOutcome, Fleet};
use crate::{docker, Error};

/// The label that carries a read model's projection version.
pub const LABEL: &str = "io.fleet.projection.version";

/// What a reader saw.
#[derive(Debug, Default)]
pub struct Reads {
    pub ok: u64,
    /// Every read that was not a 200, or that went back in version.
    pub problems: Vec<String>,
}

/// Reads `accounts` round and round through the gateway until `stop`, checking each answer:
/// a 200, at a version no older than one this reader read before.
pub async fn reader(gw: Gateway, accounts: Vec<String>, stop: Arc<AtomicBool>) -> Reads {
    let mut reads = Reads::default();
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    while !stop.load(Ordering::SeqCst) {
        for id in &accounts {
            let url = format!("{}/api/accounts/{id}", gw.base());
            let answer = match gw.http().get(&url).send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let body: serde_json::Value = r.json().await.unwrap_or_default();
                    (status, body)
                }
                Err(e) => (0, serde_json::json!({ "error": e.to_string() })),
            };
            match answer {
                (200, body) => {
                    let version = body["version"].as_u64().unwrap_or_default();
                    let before = seen.insert(id.clone(), version).unwrap_or_default();
                    if version < before {
                        reads.problems.push(format!(
                            "GET {url}: version {version} after this client read {before}"
                        ));
                    }
                    reads.ok += 1;
                }
                (status, body) => reads
                    .problems
                    .push(format!("GET {url}: answered {status}: {body}")),
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    reads
}

/// Sends transfers of 1 between `accounts` until `stop`, every 100 ms, so the versions the
/// readers see move. Returns the transfers that failed.
pub async fn writer(gw: Gateway, accounts: Vec<String>, stop: Arc<AtomicBool>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut i = 0;
    while !stop.load(Ordering::SeqCst) {
        let (from, to) = (
            &accounts[i % accounts.len()],
            &accounts[(i + 1) % accounts.len()],
        );
        if let Err(e) = gw.transfer(from, to, 1).await {
            problems.push(e.to_string());
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    problems
}

/// Readers (one per pair of `accounts`) and a writer, running until [`Load::stop`].
pub struct Load {
    stop: Arc<AtomicBool>,
    readers: Vec<tokio::task::JoinHandle<Reads>>,
    writer: tokio::task::JoinHandle<Vec<String>>,
}

/// What a [`Load`] saw in all.
#[derive(Debug, Default)]
pub struct LoadResult {
    pub reads: Reads,
    pub write_problems: Vec<String>,
}

impl Load {
    pub fn start(gw: &Gateway, accounts: &[String]) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let readers = accounts
            .chunks(2)
            .map(|mine| tokio::spawn(reader(gw.clone(), mine.to_vec(), stop.clone())))
            .collect();
        let writer = tokio::spawn(writer(gw.clone(), accounts.to_vec(), stop.clone()));
        Load {
            stop,
            readers,
            writer,
        }
    }

    pub async fn stop(self) -> Result<LoadResult, Error> {
        self.stop.store(true, Ordering::SeqCst);
        let mut result = LoadResult::default();
        for r in self.readers {
            let reads = r.await.map_err(|e| Error::unexpected("a reader", e))?;
            result.reads.ok += reads.ok;
            result.reads.problems.extend(reads.problems);
        }
        result.write_problems = self
            .writer
            .await
            .map_err(|e| Error::unexpected("the writer", e))?;
        Ok(result)
    }
}

/// A fleet whose account-view image carries projection version 1, and `accounts` accounts of
/// 1,000,000 each opened through its gateway.
pub async fn fleet_with_view(
    name: &str,
    accounts: usize,
) -> Result<(Fleet, Gateway, Vec<String>), Error> {
    let fleet = Fleet::up(name).await?;
    let gw = Gateway::new(&fleet.gateway_url())?;
    let ids = gw.open_accounts(accounts, 1_000_000).await?;
    push_view(&fleet, "p1", 1)?;
    let outcome = apply(&fleet, "10m").await?;
    if outcome.code != 0 {
        return Err(Error::unexpected(
            "deploying account-view with projection 1",
            format!(
                "deployer apply exited {}:\n{}",
                outcome.code, outcome.stderr
            ),
        ));
    }
    Ok((fleet, gw, ids))
}

/// `deployer apply` with `VIEW_REBUILD_TIMEOUT` set (ci.yaml's `projection.timeout`).
pub async fn apply(fleet: &Fleet, rebuild_timeout: &str) -> Result<ApplyOutcome, Error> {
    fleet
        .run_deployer_with(&["apply"], &[("VIEW_REBUILD_TIMEOUT", rebuild_timeout)])
        .await
}

/// Pushes an account-view image labelled with projection `version`, under `variant`.
pub fn push_view(fleet: &Fleet, variant: &str, version: u32) -> Result<(), Error> {
    fleet.push_variant(
        "account-view",
        variant,
        &[&format!("LABEL {LABEL}=\"{version}\"")],
    )
}

/// The store's head (0 when empty).
pub async fn head(store: &EventStoreClient) -> Result<u64, Error> {
    let page = store
        .read_all(0, 1, Duration::ZERO)
        .await
        .map_err(|source| Error::Store {
            what: "reading the store's head".into(),
            source,
        })?;
    Ok(page.head.unwrap_or(0))
}

/// Imports `events` (envelopes with their positions, as `POST /import` takes them) in batches
/// of 1,000. Returns how many were imported.
pub async fn import(
    store: &EventStoreClient,
    events: impl Iterator<Item = serde_json::Value>,
) -> Result<u64, Error> {
    let mut events = events.peekable();
    let mut n = 0;
    while events.peek().is_some() {
        let batch: Vec<serde_json::Value> = events.by_ref().take(1_000).collect();
        store.import(&batch).await.map_err(|source| Error::Store {
            what: "importing events".into(),
            source,
        })?;
        n += batch.len() as u64;
    }
    Ok(n)
}

/// The running account-view's `/projection` (`version`, `position`, `head`, `lag`).
pub async fn projection(fleet: &Fleet) -> Result<serde_json::Value, Error> {
    let ip = docker::container_ip(&fleet.container("account-view")?)?;
    let url = format!("http://{ip}:8103/projection");
    let resp = reqwest::get(&url)
        .await
        .map_err(Error::http(format!("GET {url}")))?;
    resp.json()
        .await
        .map_err(Error::http(format!("reading GET {url}")))
}

/// Waits until the running view has read up to `head` with no lag, at most `within`.
pub async fn caught_up(fleet: &Fleet, head: u64, within: Duration) -> Result<(), Error> {
    let deadline = Instant::now() + within;
    loop {
        let p = projection(fleet).await?;
        if p["lag"] == 0 && p["position"].as_u64() >= Some(head) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::unexpected(
                format!("waiting for the view to read up to {head}"),
                format!("after {within:?} its /projection says {p}"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
