//! A projection-version roll of account-view over a store of 1,000,000 events, under steady
//! reads and transfers through the gateway, once the fleet is idle after the import (printed,
//! never asserted): how long the blue/green
//! rebuild took from the apply's start to the cut-over, the rebuild's speed, and every read
//! that failed or went back in version.
//!
//! Run: `cargo bench -p tests --bench projection_roll` (optionally `BENCH_EVENTS=N`).
//! Needs the Docker Engine and Debian's `docker-registry`; builds the fleet's images first.

use std::time::{Duration, Instant};

use account_view::testing::SyntheticLog;
use tests::projection::{self, apply, push_view, Load};

/// Readers, each with two accounts of its own.
const READERS: usize = 4;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let events: u64 = std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    if !tests::docker::available_or_skip("projection_roll") {
        eprintln!("the Docker Engine does not answer; no figures");
        return;
    }
    let (fleet, gw, accounts) = projection::fleet_with_view("bench-projection", 2 * READERS)
        .await
        .expect("deploying the fleet");

    let store = fleet.store().expect("a store client");
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("a whole second")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("a time");
    let started = Instant::now();
    let before = projection::head(&store).await.expect("the store's head");
    let imported = projection::import(&store, SyntheticLog::after(before, 1_000, events, &now))
        .await
        .expect("importing synthetic events");
    let head = projection::head(&store).await.expect("the store's head");
    println!(
        "(setup: {imported} events imported in {:.1} s; the store's head is {head})",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    projection::caught_up(&fleet, head, Duration::from_secs(1800))
        .await
        .expect("the running view catches up with the import");
    println!(
        "(setup: the running view caught up {:.1} s after the import)",
        started.elapsed().as_secs_f64()
    );
    // The archiver and the indexer read the import too: the roll is measured once they are done.
    let waited = tests::docker::wait_until_idle(&fleet.project, Duration::from_secs(1800))
        .expect("the fleet goes idle");
    println!(
        "(setup: the fleet was idle {:.0} s later)",
        waited.as_secs_f64()
    );

    let load = Load::start(&gw, &accounts);
    tokio::time::sleep(Duration::from_secs(2)).await;
    push_view(&fleet, "p2", 2).expect("pushing view p2");
    let outcome = apply(&fleet, "30m").await.expect("deployer apply");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seen = load.stop().await.expect("the load");
    assert_eq!(
        outcome.code, 0,
        "the blue/green roll failed:\n{}",
        outcome.stderr
    );

    let rebuild = outcome
        .stderr
        .lines()
        .find_map(|l| {
            let rest = l.split(" caught up after ").nth(1)?;
            rest.split('s').next()?.parse::<f64>().ok()
        })
        .expect("the apply reports when the new view caught up");
    println!(
        "projection-version roll of account-view (1 -> 2), store of {head} events, {READERS} readers and 1 writer through the gateway:"
    );
    println!(
        "  deployer apply                 {:7.1} s",
        outcome.took.as_secs_f64()
    );
    println!("  rebuild until caught up        {rebuild:7.1} s");
    println!(
        "  rebuild speed                  {:7.0} events/s (the store's head over the rebuild's time)",
        head as f64 / rebuild
    );
    println!(
        "  reads during the roll          {:7} ok, {} failed or went back in version",
        seen.reads.ok,
        seen.reads.problems.len()
    );
    println!(
        "  transfers that failed          {:7}",
        seen.write_problems.len()
    );
    for p in seen
        .reads
        .problems
        .iter()
        .chain(&seen.write_problems)
        .take(10)
    {
        println!("    {p}");
    }
}
