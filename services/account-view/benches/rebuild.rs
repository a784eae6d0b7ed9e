//! How fast the account view rebuilds from the log, printed (no assertions): a store (in-process)
//! is filled with a synthetic banking log through `POST /import`, then a view on an empty data
//! directory follows it from position 0, as a blue/green rebuild does, until `GET /projection`
//! says it has caught up.
//!
//! Run: `cargo bench -p account-view --bench rebuild` (env `BENCH_EVENTS`, default 1000000;
//! `BENCH_ACCOUNTS`, default 10000).

use std::time::{Duration, Instant};

use account_view::testing::SyntheticLog;
use account_view::{Application, Config, ProjectionStatus};
use es_client::EventStoreClient;
use event_store::testing::TestStore;
use tokio_util::sync::CancellationToken;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let events = env("BENCH_EVENTS", 1_000_000);
    let accounts = env("BENCH_ACCOUNTS", 10_000) as usize;
    println!("account-view rebuild benchmark: {events} events, {accounts} accounts");

    let store = TestStore::start().await;
    let client = EventStoreClient::new(store.url()).expect("client");
    let started = Instant::now();
    let mut log = SyntheticLog::new(accounts, events);
    loop {
        let batch = log.batch(1000);
        if batch.is_empty() {
            break;
        }
        client.import(&batch).await.expect("import");
    }
    println!(
        "import: {events} events in {:.1} s ({:.0} events/s)",
        started.elapsed().as_secs_f64(),
        events as f64 / started.elapsed().as_secs_f64()
    );

    let data = tempfile::tempdir().expect("data dir");
    let started = Instant::now();
    let app = Application::build(Config::for_tests(data.path(), store.url()))
        .await
        .expect("view starts");
    let url = format!("http://127.0.0.1:{}/projection", app.port());
    let stop = CancellationToken::new();
    let task = tokio::spawn(app.run_until(stop.clone().cancelled_owned()));
    let http = reqwest::Client::new();
    let mut last = Instant::now();
    loop {
        let status: ProjectionStatus = http
            .get(&url)
            .send()
            .await
            .expect("projection answers")
            .json()
            .await
            .expect("projection body");
        if status.lag == Some(0) && status.position >= events {
            break;
        }
        if last.elapsed() >= Duration::from_secs(2) {
            last = Instant::now();
            println!(
                "  position {} of {:?} after {:.1} s",
                status.position,
                status.head,
                started.elapsed().as_secs_f64()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = started.elapsed().as_secs_f64();
    println!(
        "rebuild (follower from position 0 to lag 0): {events} events in {took:.2} s = {:.0} events/s",
        events as f64 / took
    );
    stop.cancel();
    task.await.expect("view task").expect("view stops");
}
