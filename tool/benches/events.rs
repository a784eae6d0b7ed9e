//! The cost of the plan's event checks (printed, never asserted): `deployer plan` for the
//! whole fleet of `manifests/ci.yaml` (its images in a local registry, so every desired image's
//! labels come from the registry's config blobs), against an event store holding 1,000,000
//! events: with the checks (labels from the on-disk cache a first plan filled), with the checks
//! and an empty label cache each time (so every label is read from the registry or the engine),
//! and with `--skip-event-checks`, alternating.
//!
//! Run: `cargo bench -p deployer --bench events` (optionally `BENCH_EVENTS=N`, `BENCH_RUNS=N`).
//! Needs the Docker Engine and Debian's `docker-registry`; builds the fleet's images first.

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{Project, Registry};

const SERVICES: [&str; 7] = [
    "event-store",
    "accounts",
    "transfers",
    "account-view",
    "archiver",
    "indexer",
    "gateway",
];

fn main() {
    let events: usize = env_number("BENCH_EVENTS", 1_000_000);
    let runs: usize = env_number("BENCH_RUNS", 20);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let Some(engine) = support::docker().await else {
            eprintln!("the Docker Engine does not answer; no figures");
            return;
        };
        let p = Project::new("bench-events");
        let registry = Registry::start().await;
        for s in SERVICES {
            let local = support::fleet_image(s);
            registry.push(&local, &format!("fleet/{s}:{}", p.name));
        }
        let file = support::workspace().join("manifests/ci.yaml");
        let deployer = |args: &[&str]| {
            let mut c = Command::new(support::deployer_bin());
            c.args(args)
                .arg("-f")
                .arg(&file)
                .env("REGISTRY", &registry.push_addr)
                .env("TAG", &p.name)
                .env("PROJECT", &p.name)
                .env("GATEWAY_PORT", support::free_port().to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            c
        };
        let _down = Down(deployer(&["down", "--volumes"]));
        let out = deployer(&["apply"]).output().expect("deployer apply");
        assert!(
            out.status.success(),
            "deployer apply: {}",
            String::from_utf8_lossy(&out.stderr)
        );

        let started = Instant::now();
        seed(&engine, &p.name, events).await;
        println!(
            "(setup: {events} events appended in {:.1} s)",
            started.elapsed().as_secs_f64()
        );
        wait_until_idle(&p.name);

        let warm_cache = tempfile::tempdir().expect("a cache folder");
        let time = |args: &[&str], cache: &std::path::Path| {
            let started = Instant::now();
            let out = deployer(args)
                .env("DEPLOYER_CACHE_DIR", cache)
                .output()
                .expect("deployer plan");
            let took = started.elapsed();
            assert!(
                out.status.success(),
                "deployer {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            took
        };
        // Warm every path (connections, page cache) and fill the label cache.
        time(&["plan"], warm_cache.path());
        time(&["plan", "--skip-event-checks"], warm_cache.path());
        let mut with = Vec::new();
        let mut cold = Vec::new();
        let mut without = Vec::new();
        for _ in 0..runs {
            with.push(time(&["plan"], warm_cache.path()));
            let empty = tempfile::tempdir().expect("a cache folder");
            cold.push(time(&["plan"], empty.path()));
            without.push(time(&["plan", "--skip-event-checks"], warm_cache.path()));
        }
        let (w_min, w_med, w_max) = stats(with);
        let (c_min, c_med, c_max) = stats(cold);
        let (o_min, o_med, o_max) = stats(without);
        println!(
            "deployer plan, {} services, store of {events} events, {runs} runs each, alternating (min / median / max):",
            SERVICES.len()
        );
        println!("  with the event checks                  {w_min:7.1} / {w_med:7.1} / {w_max:7.1} ms");
        println!("  with the checks, empty label cache     {c_min:7.1} / {c_med:7.1} / {c_max:7.1} ms");
        println!("  --skip-event-checks                    {o_min:7.1} / {o_med:7.1} / {o_max:7.1} ms");
        println!(
            "  cost of the checks (median)            {:+.1} ms, {:+.1} %",
            w_med - o_med,
            (w_med / o_med - 1.0) * 100.0
        );
        println!(
            "  cost with an empty label cache         {:+.1} ms, {:+.1} %",
            c_med - o_med,
            (c_med / o_med - 1.0) * 100.0
        );
    });
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn stats(mut v: Vec<Duration>) -> (f64, f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (ms(v[0]), ms(v[v.len() / 2]), ms(v[v.len() - 1]))
}

/// Appends `total` events (10 types, batches of 1,000 on 4 connections) to the project's
/// store, straight to its container address (the engine is local).
async fn seed(engine: &deployer::engine::Engine, project: &str, total: usize) {
    let store = support::containers(engine, project)
        .await
        .into_iter()
        .find(|(s, _, _)| s == "event-store")
        .expect("the store runs");
    let d = engine.inspect_container(&store.1).await.expect("inspect");
    let ip = d.ips.values().next().expect("an address").clone();
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    const BATCH: usize = 1_000;
    let batches = total.div_ceil(BATCH);
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers = (0..4).map(|_| {
        let (http, ip, next) = (http.clone(), ip.clone(), next.clone());
        tokio::spawn(async move {
            loop {
                let b = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if b >= batches {
                    break;
                }
                let events: Vec<serde_json::Value> = (0..BATCH.min(total - b * BATCH))
                    .map(|i| {
                        let n = b * BATCH + i;
                        serde_json::json!({
                            "event_id": format!("00000000-0000-4000-8000-{n:012x}"),
                            "event_type": format!("BenchEvent{}", n % 10),
                            "schema_version": 1,
                            "data": {"n": n},
                        })
                    })
                    .collect();
                let resp = http
                    .post(format!("http://{ip}:8100/streams/bench-{b}/events"))
                    .json(&serde_json::json!({"expected_version": 0, "events": events}))
                    .send()
                    .await
                    .expect("append");
                assert!(resp.status().is_success(), "append: {}", resp.status());
            }
        })
    });
    for w in workers.collect::<Vec<_>>() {
        w.await.expect("seeding");
    }
}

/// Waits (at most 10 minutes) until the fleet's containers use under 5 % of a CPU together:
/// the archiver and the indexer read the seeded events first.
fn wait_until_idle(project: &str) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(600) {
        let out = Command::new("docker")
            .args(["stats", "--no-stream", "--format", "{{.Name}} {{.CPUPerc}}"])
            .output()
            .expect("docker stats");
        let busy: f64 = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with(project))
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter_map(|c| c.trim_end_matches('%').parse::<f64>().ok())
            .sum();
        if busy < 5.0 {
            println!(
                "(the fleet was idle after {:.0} s)",
                started.elapsed().as_secs_f64()
            );
            return;
        }
        std::thread::sleep(Duration::from_secs(5));
    }
    println!("(the fleet was still busy after 10 minutes; figures are noisy)");
}

struct Down(Command);

impl Drop for Down {
    fn drop(&mut self) {
        let _ = self.0.status();
    }
}
