//! Loading an aggregate with 100,000 events, by full replay and from a snapshot, against an
//! event store spawned in-process. Prints figures; run with
//! `cargo bench -p es-client --bench load` (release profile).

use std::time::{Duration, Instant};

use es_client::{EventStoreClient, Repository};
use es_core::{
    Aggregate, DomainEvent, ExpectedVersion, Metadata, NewEvent, Snapshotting, StreamId,
};
use event_store::testing::TestStore;
use serde::{Deserialize, Serialize};

const EVENTS: u64 = 100_000;
const BATCH: u64 = 1_000;
const SNAPSHOT_EVERY: u64 = 1_000;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Ledger {
    open: bool,
    balance: i64,
    entries: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum LedgerEvent {
    Opened { owner: String },
    Credited { amount: i64, reference: String },
}

#[derive(Debug, thiserror::Error)]
#[error("ledger is not open")]
struct NotOpen;

impl DomainEvent for LedgerEvent {
    fn event_type(&self) -> &'static str {
        match self {
            LedgerEvent::Opened { .. } => "Opened",
            LedgerEvent::Credited { .. } => "Credited",
        }
    }
}

impl Aggregate for Ledger {
    type Command = i64;
    type Event = LedgerEvent;
    type Error = NotOpen;
    const TYPE: &'static str = "Ledger";

    fn handle(&self, amount: i64) -> Result<Vec<LedgerEvent>, NotOpen> {
        if !self.open {
            return Err(NotOpen);
        }
        Ok(vec![LedgerEvent::Credited {
            amount,
            reference: format!("ref-{}", self.entries + 1),
        }])
    }

    fn apply(mut self, event: &LedgerEvent) -> Self {
        match event {
            LedgerEvent::Opened { .. } => self.open = true,
            LedgerEvent::Credited { amount, .. } => {
                self.balance += amount;
                self.entries += 1;
            }
        }
        self
    }
}

impl Snapshotting for Ledger {}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let store = TestStore::start().await;
    let client = EventStoreClient::new(store.url())?;
    let stream = StreamId::parse("Ledger-bench")?;

    let started = Instant::now();
    append_credits(&client, &stream, true, EVENTS).await?;
    println!(
        "wrote {EVENTS} events in batches of {BATCH} in {:.2?}",
        started.elapsed()
    );

    for page_size in [1_000, 10_000] {
        let replay = Repository::<Ledger>::new(client.clone()).with_page_size(page_size);
        let figures = time_loads(&replay, &stream, 5, EVENTS).await?;
        println!("load by full replay of {EVENTS} events, page size {page_size}: {figures}");
    }

    // One command through a snapshotting repository saves a snapshot at the head.
    let snapshots = Repository::<Ledger>::new(client.clone())
        .with_snapshots(SNAPSHOT_EVERY)
        .with_page_size(SNAPSHOT_EVERY as usize);
    let executed = snapshots.execute(&stream, 1).await?;
    let snapshot = client
        .snapshot(&stream)
        .await?
        .ok_or("no snapshot was saved")?;
    if snapshot.version != executed.version {
        return Err(format!(
            "snapshot at {} instead of {}",
            snapshot.version, executed.version
        )
        .into());
    }
    let figures = time_loads(&snapshots, &stream, 50, executed.version).await?;
    println!("load from a snapshot at the head (0 events after it): {figures}");

    // Worst case between two snapshots: every-1 events after the latest one.
    append_credits(&client, &stream, false, SNAPSHOT_EVERY - 1).await?;
    let expected = executed.version + SNAPSHOT_EVERY - 1;
    let figures = time_loads(&snapshots, &stream, 50, expected).await?;
    println!(
        "load from a snapshot plus {} events after it: {figures}",
        SNAPSHOT_EVERY - 1
    );

    store.stop().await;
    Ok(())
}

async fn append_credits(
    client: &EventStoreClient,
    stream: &StreamId,
    open_first: bool,
    count: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut written = 0;
    while written < count {
        let batch = (count - written).min(BATCH);
        let events = (0..batch)
            .map(|i| {
                let event = if open_first && written + i == 0 {
                    LedgerEvent::Opened {
                        owner: "bench".into(),
                    }
                } else {
                    LedgerEvent::Credited {
                        amount: 1,
                        reference: format!("ref-{}", written + i),
                    }
                };
                NewEvent::from_event(&event, Metadata::new_flow())
            })
            .collect::<Result<Vec<_>, _>>()?;
        client.append(stream, ExpectedVersion::Any, &events).await?;
        written += batch;
    }
    Ok(())
}

async fn time_loads(
    repository: &Repository<Ledger>,
    stream: &StreamId,
    runs: usize,
    expected_version: u64,
) -> Result<String, Box<dyn std::error::Error>> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let loaded = repository.load(stream).await?;
        times.push(started.elapsed());
        if loaded.version != expected_version {
            return Err(format!(
                "loaded version {} instead of {expected_version}",
                loaded.version
            )
            .into());
        }
    }
    times.sort();
    let median = times[times.len() / 2];
    let (min, max) = (times[0], times[times.len() - 1]);
    Ok(format!(
        "median {} (min {}, max {}, {runs} runs)",
        ms(median),
        ms(min),
        ms(max)
    ))
}

fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}
