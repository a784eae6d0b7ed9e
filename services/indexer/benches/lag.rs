//! Indexer lag under a steady load, printed (no assertions): events are appended at a fixed
//! rate (default 1,000 events/s) while the indexer runs; an event's lag is the time from its
//! append being acknowledged to the index's committed checkpoint reaching its position (from
//! then on it is searchable).
//!
//! Run: `cargo bench -p indexer --bench lag` (env `BENCH_RATE` events/s, default 1000;
//! `BENCH_SECONDS`, default 20).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use banking::{AccountEvent, AccountId, CustomerId, Money, TransferDetails, TransferEvent};
use es_client::EventStoreClient;
use es_core::{ExpectedVersion, Metadata, NewEvent, StreamId};
use hdrhistogram::Histogram;
use indexer::{Application, Config, FeedSettings};
use tokio::sync::oneshot;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The n-th event of the load: accounts first, then transfers in three steps each.
fn event(n: u64, accounts: &[AccountId]) -> (StreamId, NewEvent) {
    let metadata = Metadata::new_flow();
    if (n as usize) < accounts.len() {
        let id = accounts[n as usize];
        let event = AccountEvent::AccountOpened {
            customer_id: Some(CustomerId::parse(&format!("cust-{}", n % 97)).expect("id")),
            title: format!("Savings pot {n}"),
            description: "holiday, car, rainy day".to_owned(),
            initial_balance: Money::from_minor(100_000),
        };
        let stream = StreamId::parse(format!("Account-{id}")).expect("stream");
        return (
            stream,
            NewEvent::from_event(&event, metadata).expect("encode"),
        );
    }
    let k = n - accounts.len() as u64;
    let transfer = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, &(k / 3).to_le_bytes());
    let details = TransferDetails {
        from_account_id: accounts[(k / 3) as usize % accounts.len()],
        to_account_id: accounts[(k / 3 + 1) as usize % accounts.len()],
        amount: Money::from_minor(100 + k),
        date: time::OffsetDateTime::now_utc(),
        description: format!("transfer {} for the holiday fund", k / 3),
    };
    let event = match k % 3 {
        0 => TransferEvent::MoneyTransferCreated(details),
        1 => TransferEvent::DebitRecorded(details),
        _ => TransferEvent::CreditRecorded(details),
    };
    let stream = StreamId::parse(format!("MoneyTransfer-{transfer}")).expect("stream");
    (
        stream,
        NewEvent::from_event(&event, metadata).expect("encode"),
    )
}

#[tokio::main]
async fn main() {
    let rate = env("BENCH_RATE", 1000);
    let seconds = env("BENCH_SECONDS", 20);
    let total = rate * seconds;

    let store = event_store::testing::TestStore::start().await;
    let url = store.url().to_owned();

    let index_dir = tempfile::tempdir().expect("dir");
    let config = Config {
        port: 0,
        data_dir: index_dir.path().to_path_buf(),
        event_store_url: url.clone(),
        feed: FeedSettings::default(),
    };
    let app = Application::build(config).await.expect("indexer");
    let metrics = app.metrics().clone();
    let (_stop_indexer, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));

    // The indexed position over time.
    let samples: Arc<Mutex<Vec<(Instant, u64)>>> = Arc::default();
    let sampler = {
        let samples = samples.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut last = 0;
            loop {
                let position = metrics.indexed_position.get() as u64;
                if position != last {
                    last = position;
                    if let Ok(mut samples) = samples.lock() {
                        samples.push((Instant::now(), position));
                    }
                }
                tokio::time::sleep(Duration::from_micros(500)).await;
            }
        })
    };

    println!("indexer lag benchmark: {total} events at {rate} events/s (accounts, then transfers)");
    let accounts: Arc<Vec<AccountId>> =
        Arc::new((0..(total / 10).max(2)).map(|_| AccountId::new()).collect());
    let appended: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::default();
    let writers = 8u64;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let client = EventStoreClient::new(&url).expect("client");
        let accounts = accounts.clone();
        let appended = appended.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = w;
            while n < total {
                // Event n is due at n / rate seconds after the start.
                let due = started + Duration::from_secs_f64(n as f64 / rate as f64);
                tokio::time::sleep_until(due.into()).await;
                let (stream, new) = event(n, &accounts);
                let result = client
                    .append(&stream, ExpectedVersion::Any, &[new])
                    .await
                    .expect("append");
                let at = Instant::now();
                if let Ok(mut appended) = appended.lock() {
                    appended.push((result.position, at));
                }
                n += writers;
            }
        }));
    }
    for task in tasks {
        task.await.expect("writer");
    }
    let achieved = total as f64 / started.elapsed().as_secs_f64();
    while (metrics.indexed_position.get() as u64) < total {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    sampler.abort();

    let samples = samples.lock().map(|s| s.clone()).unwrap_or_default();
    let appended = appended.lock().map(|a| a.clone()).unwrap_or_default();
    let mut histogram = Histogram::<u64>::new(3).expect("histogram");
    for (position, at) in appended {
        let visible = samples
            .iter()
            .find(|(_, indexed)| *indexed >= position)
            .map(|(t, _)| *t);
        if let Some(visible) = visible {
            let lag = visible.saturating_duration_since(at);
            histogram.record(lag.as_micros() as u64).expect("record");
        }
    }
    let ms = |us: u64| us as f64 / 1000.0;
    println!("achieved append rate: {achieved:.0} events/s over {seconds} s");
    println!(
        "indexer lag (append acknowledged -> searchable): p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} events, {} commits)",
        ms(histogram.value_at_quantile(0.50)),
        ms(histogram.value_at_quantile(0.90)),
        ms(histogram.value_at_quantile(0.99)),
        ms(histogram.max()),
        histogram.len(),
        metrics.commits.get()
    );
}
