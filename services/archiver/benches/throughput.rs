//! Archiver benchmarks, printed (no assertions):
//! - the store's append rate under concurrent single-event appends (the load to keep up with);
//! - archiving throughput catching up on a full log, and the lag while archiving live load;
//! - restore rate into an empty store.
//!
//! Run: `cargo bench -p archiver --bench throughput` (env `BENCH_EVENTS`, default 20000;
//! `BENCH_BATCH`, events per read, default the archiver's 1000).

use std::sync::Arc;
use std::time::{Duration, Instant};

use archiver::{Archive, Archiver, Metrics, Settings, StoreClient};
use event_store::testing::TestStore;
use tokio::sync::oneshot;

/// Appends `count` single-event appends from `writers` concurrent tasks; returns events/s.
async fn load(url: &str, seed: u64, count: u64, writers: u64) -> f64 {
    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let http = http.clone();
        let url = url.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            while i < count {
                let stream = format!("Account-{:06}", (seed + i) % 500);
                let body = format!(
                    r#"{{"expected_version":"any","events":[{{"event_id":"{}","event_type":"AccountCredited","schema_version":1,"data":{{"account_id":"{stream}","amount":{i},"transaction_id":"{}","description":"salary for november"}},"metadata":{{"correlation_id":"{}"}}}}]}}"#,
                    uuid::Uuid::new_v4(),
                    uuid::Uuid::new_v4(),
                    uuid::Uuid::new_v4()
                );
                let response = http
                    .post(format!("{url}/streams/{stream}/events"))
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .expect("append");
                assert!(response.status().is_success());
                i += writers;
            }
        }));
    }
    for task in tasks {
        task.await.expect("writer");
    }
    count as f64 / started.elapsed().as_secs_f64()
}

async fn wait_archived(metrics: &Metrics, position: u64) {
    while (metrics.archived_position.get() as u64) < position {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn wait_read(metrics: &Metrics, position: u64) {
    while (metrics.read_position.get() as u64) < position {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn start(
    archive: Archive,
    url: &str,
) -> (Metrics, oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let metrics = Metrics::default();
    let client = StoreClient::new(url).expect("client");
    let batch = std::env::var("BENCH_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(Settings::default().batch);
    let settings = Settings {
        poll_wait: Duration::from_millis(200),
        batch,
        ..Settings::default()
    };
    let archiver = Archiver::new(archive, client, settings, metrics.clone());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        archiver
            .run(async move {
                let _ = stopped.await;
            })
            .await
            .expect("archiver runs");
    });
    (metrics, stop, task)
}

#[tokio::main]
async fn main() {
    let events: u64 = std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let writers = 16;
    println!("archiver throughput benchmark: {events} events of ~300 bytes, {writers} concurrent writers");

    // 1. The store's own append rate, and a full log to archive.
    let source = TestStore::start().await;
    let append_rate = load(source.url(), 0, events, writers).await;
    println!("store append rate (single-event appends): {append_rate:>10.0} events/s");

    // 2. Archiving a full log from position 0 (catch-up: the archiver's top speed). "Read" is
    // every event taken into a segment; "committed" waits for the last, partly filled segment,
    // which is flushed by its age (5 s).
    let dir = tempfile::tempdir().expect("archive dir");
    let archive = Archive::open(&dir.path().join("a").display().to_string()).expect("archive");
    let started = Instant::now();
    let (metrics, stop, task) = start(archive.clone(), source.url());
    wait_read(&metrics, events).await;
    let read_rate = events as f64 / started.elapsed().as_secs_f64();
    let first_segment = loop {
        let archived = metrics.archived_position.get() as u64;
        if archived > 0 {
            break (archived, started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    wait_archived(&metrics, events).await;
    let committed = started.elapsed();
    let _ = stop.send(());
    task.await.expect("stopped");
    let manifest = archive.load_manifest().await.expect("manifest");
    println!("archive catch-up, read into segments:    {read_rate:>10.0} events/s");
    println!(
        "archive catch-up, first full segment:    {:>10.0} events/s ({} events committed after {:.2} s)",
        first_segment.0 as f64 / first_segment.1.as_secs_f64(),
        first_segment.0,
        first_segment.1.as_secs_f64()
    );
    println!(
        "archive catch-up, all committed after {:.2} s ({} segments, {:.1} MiB JSON -> {:.2} MiB zstd)",
        committed.as_secs_f64(),
        manifest.segments.len(),
        manifest.segments.iter().map(|s| s.uncompressed_bytes).sum::<u64>() as f64 / 1048576.0,
        manifest.bytes() as f64 / 1048576.0
    );

    // 3. Archiving live: the archiver runs while the store takes the same load again.
    let (metrics, stop, task) = start(archive.clone(), source.url());
    let max_read_lag = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let max_lag = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let sampler = {
        let metrics = metrics.clone();
        let max_read_lag = max_read_lag.clone();
        let max_lag = max_lag.clone();
        tokio::spawn(async move {
            loop {
                let head = metrics.store_head.get();
                max_read_lag.fetch_max(
                    head - metrics.read_position.get(),
                    std::sync::atomic::Ordering::Relaxed,
                );
                max_lag.fetch_max(
                    head - metrics.archived_position.get(),
                    std::sync::atomic::Ordering::Relaxed,
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let live_rate = load(source.url(), 1_000_000, events, writers).await;
    let load_done = Instant::now();
    wait_read(&metrics, 2 * events).await;
    let read_drain = load_done.elapsed();
    wait_archived(&metrics, 2 * events).await;
    let drain = load_done.elapsed();
    sampler.abort();
    let _ = stop.send(());
    task.await.expect("stopped");
    println!(
        "live: store took {live_rate:.0} events/s; read lag max {} events (read everything {:.3} s after the load stopped); committed lag max {} events (all committed {:.2} s after, by the segment age)",
        max_read_lag.load(std::sync::atomic::Ordering::Relaxed),
        read_drain.as_secs_f64(),
        max_lag.load(std::sync::atomic::Ordering::Relaxed),
        drain.as_secs_f64()
    );

    // 4. Restore into an empty store.
    let target = TestStore::start().await;
    let client = StoreClient::new(target.url()).expect("client");
    let report = archiver::restore(&archive, &client, |_| {})
        .await
        .expect("restore");
    println!(
        "restore rate:                            {:>10.0} events/s ({} events in {} imports, {:.1} s)",
        report.restored as f64 / report.seconds,
        report.restored,
        report.imports,
        report.seconds
    );
    let same = archiver::store_digest(&client).await.expect("digest")
        == archiver::store_digest(&StoreClient::new(source.url()).expect("client"))
            .await
            .expect("digest");
    println!("restored log identical to the source: {same}");
}
