//! End-to-end figures through the gateway. Prints them; asserts nothing about time.
//!
//! 1. Throughput: completed transfers per second (all POSTs concurrently, then each transfer
//!    awaited until the view shows COMPLETED).
//! 2. Latency at a fixed rate: time from the `POST /api/transfers` answer until the view shows the
//!    transfer COMPLETED (a `min_version=3` long-poll on the view), p50/p99.
//!
//! Against the fleet as local processes: `ci/local-fleet.sh` then
//! `GATEWAY_URL=http://127.0.0.1:8080 cargo bench -p gateway --bench fleet`.
//! Without `GATEWAY_URL` the fleet is spawned in this process. `TRANSFERS` (5000),
//! `CONCURRENCY` (64), `RATE` (200/s) and `SECONDS` (10) change the load.

#[path = "../tests/gateway/fleet.rs"]
#[allow(dead_code)]
mod fleet;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use hdrhistogram::Histogram;
use serde_json::{json, Value};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(format!("{}{}", self.base, path))
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        anyhow::ensure!(status.as_u16() == 201, "POST {path}: {status} {body}");
        Ok(body)
    }

    /// Waits until the transfer document reaches version 3 (COMPLETED) and returns its state.
    async fn completed(&self, id: &str) -> anyhow::Result<String> {
        loop {
            let response = self
                .http
                .get(format!("{}/api/transfers/{id}?min_version=3", self.base))
                .send()
                .await?;
            if response.status().as_u16() == 503 {
                continue;
            }
            let body: Value = response.json().await?;
            return Ok(body["state"].as_str().unwrap_or("?").to_owned());
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (base, _fleet) = match std::env::var("GATEWAY_URL") {
        Ok(url) => {
            println!("fleet bench: against {url}");
            (url, None)
        }
        Err(_) => {
            let fleet = fleet::Fleet::spawn().await;
            println!("fleet bench: fleet spawned in-process at {}", fleet.gateway);
            (fleet.gateway.clone(), Some(fleet))
        }
    };
    let client = Arc::new(Client {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(512)
            .timeout(Duration::from_secs(30))
            .build()?,
        base,
    });
    let mut accounts = Vec::new();
    for i in 0..50 {
        let body = client
            .post(
                "/api/accounts",
                json!({"title": format!("bench-{i}"), "initial_balance": 1_000_000_000_i64}),
            )
            .await?;
        accounts.push(body["account_id"].as_str().unwrap_or_default().to_owned());
    }
    let accounts = Arc::new(accounts);
    throughput(&client, &accounts).await?;
    latency(&client, &accounts).await?;
    Ok(())
}

fn pair(accounts: &[String], i: usize) -> (String, String) {
    let n = accounts.len();
    let from = (i * 7) % n;
    let to = (from + 1 + i % (n - 1)) % n;
    (accounts[from].clone(), accounts[to].clone())
}

async fn throughput(client: &Arc<Client>, accounts: &Arc<Vec<String>>) -> anyhow::Result<()> {
    let n = env("TRANSFERS", 5000) as usize;
    let concurrency = env("CONCURRENCY", 64) as usize;
    let started = Instant::now();
    let ids: Vec<anyhow::Result<String>> = futures::stream::iter(0..n)
        .map(|i| {
            let (client, accounts) = (client.clone(), accounts.clone());
            async move {
                let (from, to) = pair(&accounts, i);
                let body = client
                    .post(
                        "/api/transfers",
                        json!({"from_account_id": from, "to_account_id": to, "amount": 1}),
                    )
                    .await?;
                Ok(body["transfer_id"].as_str().unwrap_or_default().to_owned())
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let posted = started.elapsed();
    let ids: Vec<String> = ids.into_iter().collect::<anyhow::Result<_>>()?;
    let states: Vec<anyhow::Result<String>> = futures::stream::iter(ids)
        .map(|id| {
            let client = client.clone();
            async move { client.completed(&id).await }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let done = started.elapsed();
    let completed = states
        .into_iter()
        .filter(|s| matches!(s, Ok(s) if s == "COMPLETED"))
        .count();
    println!(
        "throughput: {n} transfers, concurrency {concurrency}: accepted {:.0}/s, completed {completed} in {:.2} s = {:.0} completed transfers/s",
        n as f64 / posted.as_secs_f64(),
        done.as_secs_f64(),
        completed as f64 / done.as_secs_f64()
    );
    Ok(())
}

async fn latency(client: &Arc<Client>, accounts: &Arc<Vec<String>>) -> anyhow::Result<()> {
    let rate = env("RATE", 200).max(1);
    let seconds = env("SECONDS", 10);
    let total = rate * seconds;
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total as usize {
        ticker.tick().await;
        let (client, accounts) = (client.clone(), accounts.clone());
        tasks.push(tokio::spawn(async move {
            let (from, to) = pair(&accounts, i + 1);
            let body = client
                .post(
                    "/api/transfers",
                    json!({"from_account_id": from, "to_account_id": to, "amount": 1}),
                )
                .await?;
            let answered = Instant::now();
            let id = body["transfer_id"].as_str().unwrap_or_default().to_owned();
            let state = client.completed(&id).await?;
            anyhow::ensure!(state == "COMPLETED", "transfer {id} ended {state}");
            Ok::<_, anyhow::Error>(answered.elapsed())
        }));
    }
    let mut histogram = Histogram::<u64>::new(3)?;
    let mut failures = 0;
    for task in tasks {
        match task.await? {
            Ok(d) => histogram.record(d.as_micros() as u64)?,
            Err(e) => {
                failures += 1;
                eprintln!("latency: {e:#}");
            }
        }
    }
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "latency at {rate} transfers/s for {seconds} s ({} transfers, {failures} failed): POST answer -> view shows COMPLETED: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        histogram.len(),
        ms(0.5),
        ms(0.9),
        ms(0.99),
        histogram.max() as f64 / 1000.0
    );
    Ok(())
}
