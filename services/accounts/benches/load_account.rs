//! Loading an account with 100,000 events, with and without a snapshot. Prints figures.
//!
//! Runs an event store in-process on a loopback port with a temporary directory:
//! `cargo bench -p accounts --bench load_account` (EVENTS=n to change the count).

use std::time::{Duration, Instant};

use banking::{Account, AccountEvent, AccountId, CustomerId, Money, TransferId};
use es_client::{EventStoreClient, Repository};
use es_core::{ExpectedVersion, Metadata, NewEvent, StreamId};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let events: usize = std::env::var("EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let store = event_store::testing::TestStore::start().await;
    let client = EventStoreClient::new(store.url())?;

    let id = AccountId::new();
    let stream = es_core::stream_of::<Account>(id.as_uuid());
    let started = Instant::now();
    let mut batch = vec![NewEvent::from_event(
        &AccountEvent::AccountOpened {
            customer_id: CustomerId::parse("bench").ok(),
            title: "old account".into(),
            description: String::new(),
            initial_balance: Money::from_minor(1_000_000),
        },
        Metadata::default(),
    )?];
    let mut version = 0u64;
    for i in 1..events {
        let amount = Money::from_minor(1 + (i as u64 % 100));
        let transaction_id = TransferId::new();
        let event = if i % 2 == 0 {
            AccountEvent::AccountDebited {
                amount,
                transaction_id,
            }
        } else {
            AccountEvent::AccountCredited {
                amount,
                transaction_id,
            }
        };
        batch.push(NewEvent::from_event(&event, Metadata::default())?);
        if batch.len() == 1000 || i + 1 == events {
            let result = client
                .append(&stream, ExpectedVersion::Exact(version), &batch)
                .await?;
            version = result.version;
            batch.clear();
        }
    }
    println!(
        "load_account: wrote {version} events in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let plain: Repository<Account> = Repository::new(client.clone());
    let snapshots: Repository<Account> = Repository::new(client.clone()).with_snapshots(100);
    // One more command through the snapshotting repository saves the snapshot, as the accounts
    // service does every 100 events.
    snapshots
        .execute(
            &stream,
            banking::AccountCommand::Credit {
                amount: Money::from_minor(1),
                transaction_id: TransferId::new(),
            },
        )
        .await?;
    let loaded = snapshots.load(&stream).await?;
    anyhow::ensure!(
        loaded.snapshot_version == loaded.version,
        "the snapshot was not used: {} vs {}",
        loaded.snapshot_version,
        loaded.version
    );
    let version = loaded.version;
    let without = time_loads(&plain, &stream, 3).await?;
    let with = time_loads(&snapshots, &stream, 20).await?;
    println!(
        "load_account: {version} events, without snapshot: median {:.1} ms (min {:.1} ms)",
        ms(without.0),
        ms(without.1)
    );
    println!(
        "load_account: {version} events, with snapshot:    median {:.1} ms (min {:.1} ms)",
        ms(with.0),
        ms(with.1)
    );
    store.stop().await;
    Ok(())
}

/// (median, min) of `n` loads.
async fn time_loads(
    repo: &Repository<Account>,
    stream: &StreamId,
    n: usize,
) -> anyhow::Result<(Duration, Duration)> {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let loaded = repo.load(stream).await?;
        times.push(t.elapsed());
        std::hint::black_box(loaded);
    }
    times.sort();
    Ok((times[n / 2], times[0]))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
