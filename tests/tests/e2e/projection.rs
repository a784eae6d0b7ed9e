//! Rolls of the account view under steady reads through the gateway, with 200,000 events in the
//! store: a new projection version is rebuilt blue/green and cut over only once caught up; a
//! rebuild that cannot catch up in time is rolled back while the old view keeps serving; and a
//! roll of the same version hands the single writer over. No read may fail, and no client may
//! read an account at a version older than one it read before.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use account_view::testing::SyntheticLog;
use tests::bank::Gateway;
use tests::docker;
use tests::fleet::{ApplyOutcome, Fleet};

use crate::{fleet_slot, open_accounts};

/// Events imported into the store before the rolls.
const EVENTS: u64 = 200_000;
/// Readers, each with its own accounts and its own memory of the versions it read.
const READERS: usize = 4;
const LABEL: &str = "io.fleet.projection.version";

/// What the readers saw.
#[derive(Debug, Default)]
struct Reads {
    ok: u64,
    /// Every read that was not a 200, or that went back in version.
    problems: Vec<String>,
}

/// Reads `accounts` round and round through the gateway until `stop`, checking each answer.
async fn reader(gw: Gateway, accounts: Vec<String>, stop: Arc<AtomicBool>) -> Reads {
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

/// Sends transfers between `accounts` until `stop`, so the versions the readers see move.
async fn writer(gw: Gateway, accounts: Vec<String>, stop: Arc<AtomicBool>) -> Vec<String> {
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

/// `deployer apply` with `VIEW_REBUILD_TIMEOUT` set (ci.yaml's `projection.timeout`).
async fn apply(fleet: &Fleet, rebuild_timeout: &str) -> ApplyOutcome {
    let started = std::time::Instant::now();
    let out = fleet
        .deployer(&["apply"])
        .env("VIEW_REBUILD_TIMEOUT", rebuild_timeout)
        .output()
        .await
        .expect("running deployer apply");
    let outcome = ApplyOutcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: started.elapsed(),
    };
    eprintln!(
        "e2e: deployer apply (rebuild timeout {rebuild_timeout}) exited {} after {:.1}s:\n{}",
        outcome.code,
        outcome.took.as_secs_f64(),
        outcome.stderr
    );
    outcome
}

/// Pushes an account-view image labelled with projection `version`, under `variant`.
fn push_view(fleet: &Fleet, variant: &str, version: u32) {
    fleet
        .push_variant(
            "account-view",
            variant,
            &[&format!("LABEL {LABEL}=\"{version}\"")],
        )
        .expect("building and pushing the account-view image");
}

/// The store's head.
async fn head(store: &es_client::EventStoreClient) -> u64 {
    store
        .read_all(0, 1, Duration::ZERO)
        .await
        .expect("reading the store's head")
        .head
        .unwrap_or(0)
}

/// Imports `EVENTS` synthetic events after the store's head, in batches of 1,000.
async fn seed(store: &es_client::EventStoreClient) {
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("a whole second")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("a time");
    let mut log = SyntheticLog::after(head(store).await, 1_000, EVENTS, &now);
    loop {
        let batch = log.batch(1_000);
        if batch.is_empty() {
            break;
        }
        store
            .import(&batch)
            .await
            .expect("importing synthetic events");
    }
}

/// The running account-view's `/projection`.
async fn projection(fleet: &Fleet) -> serde_json::Value {
    let ip = docker::container_ip(&fleet.container("account-view").expect("a view container"))
        .expect("its address");
    reqwest::get(format!("http://{ip}:8103/projection"))
        .await
        .expect("GET /projection")
        .json()
        .await
        .expect("a JSON body")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn view_rolls_under_reads_rebuild_blue_green_cut_over_when_caught_up_and_fail_no_read() {
    let test = "view_rolls_under_reads_rebuild_blue_green_cut_over_when_caught_up_and_fail_no_read";
    if !docker::available_or_skip(test) {
        return;
    }
    let _slot = fleet_slot().lock().await;
    let fleet = Fleet::up("projection").await.expect("deploying the fleet");
    let gw = Gateway::new(&fleet.gateway_url()).expect("gateway client");
    let accounts = open_accounts(&gw, 2 * READERS, 1_000_000)
        .await
        .expect("opening accounts");
    push_view(&fleet, "p1", 1);
    let outcome = apply(&fleet, "10m").await;
    assert_eq!(
        outcome.code, 0,
        "deploying projection 1:\n{}",
        outcome.stderr
    );

    let store = fleet.store().expect("a store client");
    seed(&store).await;
    let head = head(&store).await;
    assert!(head >= EVENTS, "the store holds {head} events");
    // The running view follows the import.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while projection(&fleet).await["lag"] != 0
        || projection(&fleet).await["position"].as_u64() < Some(head)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the view did not catch up with the import"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = accounts
        .chunks(2)
        .map(|mine| tokio::spawn(reader(gw.clone(), mine.to_vec(), stop.clone())))
        .collect();
    let writes = tokio::spawn(writer(gw.clone(), accounts.clone(), stop.clone()));
    tokio::time::sleep(Duration::from_secs(1)).await;

    // 1. A new projection version: rebuilt beside the old view, cut over once caught up.
    let old = fleet.container("account-view").expect("the view");
    push_view(&fleet, "p2", 2);
    let outcome = apply(&fleet, "10m").await;
    assert_eq!(
        outcome.code, 0,
        "the blue/green roll failed:\n{}",
        outcome.stderr
    );
    let err = &outcome.stderr;
    assert!(
        err.contains("blue/green rebuild: projection 1 -> 2"),
        "{err}"
    );
    let rebuilding = err
        .lines()
        .position(|l| l.contains("[account-view] rebuilding: position"))
        .unwrap_or_else(|| panic!("no rebuild progress in:\n{err}"));
    let caught_up = err
        .lines()
        .position(|l| l.contains("caught up after") && l.contains(", lag 0)"))
        .unwrap_or_else(|| panic!("no cut-over at lag 0 in:\n{err}"));
    assert!(
        rebuilding < caught_up,
        "progress, then the cut-over:\n{err}"
    );
    let new = fleet.container("account-view").expect("the view");
    assert_ne!(old, new, "a new container serves");
    assert_eq!(
        projection(&fleet).await["version"],
        1,
        "the image's binary reports its own version"
    );
    let volumes = docker::docker(&[
        "volume",
        "ls",
        "-q",
        "--filter",
        &format!("label=deployer.project={}", fleet.project),
    ])
    .expect("volumes");
    assert!(
        volumes.contains(&format!("{}-account-view-data-projection-2", fleet.project)),
        "the fresh volume: {volumes}"
    );

    // 2. A rebuild that cannot catch up in time: removed; the view that serves stays.
    push_view(&fleet, "p3", 3);
    let outcome = apply(&fleet, "1s").await;
    assert_eq!(
        outcome.code, 1,
        "a rebuild that did not catch up fails the apply"
    );
    assert!(
        outcome
            .stderr
            .contains("its projection did not catch up within 1s"),
        "{}",
        outcome.stderr
    );
    assert_eq!(
        fleet.container("account-view").expect("the view"),
        new,
        "the old view kept serving"
    );
    let volumes = docker::docker(&["volume", "ls", "-q"]).expect("volumes");
    assert!(
        !volumes.contains(&format!("{}-account-view-data-projection-3", fleet.project)),
        "the fresh volume was removed: {volumes}"
    );

    // 3. The same projection version again: the writer is handed over, start-first.
    push_view(&fleet, "p2b", 2);
    let outcome = apply(&fleet, "10m").await;
    assert_eq!(
        outcome.code, 0,
        "the same-version roll failed:\n{}",
        outcome.stderr
    );
    assert!(!outcome.stderr.contains("blue/green"), "{}", outcome.stderr);
    assert_ne!(fleet.container("account-view").expect("the view"), new);
    tokio::time::sleep(Duration::from_secs(1)).await;

    stop.store(true, Ordering::SeqCst);
    let mut ok = 0;
    let mut problems = Vec::new();
    for r in readers {
        let reads = r.await.expect("a reader");
        ok += reads.ok;
        problems.extend(reads.problems);
    }
    let write_problems = writes.await.expect("the writer");
    eprintln!("e2e: {ok} reads through the gateway during the rolls; problems: {problems:#?}");
    assert!(ok > 100, "the readers read: {ok}");
    assert!(
        problems.is_empty(),
        "{} bad reads: {problems:#?}",
        problems.len()
    );
    assert!(write_problems.is_empty(), "{write_problems:#?}");
    // The view ends caught up with a store that kept taking transfers.
    let p = projection(&fleet).await;
    assert!(p["position"].as_u64() >= Some(head), "{p}");
}
