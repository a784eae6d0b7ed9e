//! A load generator for the gateway: a fixed request rate of transfers between a set of
//! accounts and reads of accounts and transfers, for as long as it runs. A client retries a
//! request that could not be served (connection error, timeout, 502/503/504) a bounded number of
//! times; a request fails when every try failed or it got any other non-2xx answer.
//! It counts requests, first-try failures (per phase, so a test can say which deploy step
//! caused them), retries and failures, and records latency (including retries).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::Rng;
use serde_json::{json, Value};
use tokio::sync::{watch, Semaphore};

/// How the load is shaped.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Requests started per second.
    pub rate: u32,
    /// Most requests in flight; when reached, the rate drops instead of queueing without bound.
    pub max_in_flight: usize,
    /// Tries of one request, the first included.
    pub attempts: u32,
    /// Time limit of one try.
    pub timeout: Duration,
    /// Largest amount of one transfer (minor units); amounts are 1..=this.
    pub max_amount: i64,
}

impl Default for LoadConfig {
    fn default() -> Self {
        LoadConfig {
            rate: 120,
            max_in_flight: 64,
            attempts: 10,
            timeout: Duration::from_secs(10),
            max_amount: 500,
        }
    }
}

/// What the load saw.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub requests: u64,
    pub transfers_requested: u64,
    pub reads: u64,
    /// Requests that failed even after their retries, or got a non-retryable error answer.
    pub failed: u64,
    /// Requests whose first try failed (whether or not a retry then succeeded), per phase.
    pub first_try_failures: Vec<u64>,
    pub retries: u64,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    /// Ids of the transfers answered 201.
    pub created_transfers: Vec<String>,
    /// The first failures, as text.
    pub failures: Vec<String>,
}

impl LoadReport {
    /// Requests per second over the whole run.
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(0.001)
    }

    /// First-try failures over every phase.
    pub fn first_try_failures_total(&self) -> u64 {
        self.first_try_failures.iter().sum()
    }

    /// One line of figures.
    pub fn summary(&self) -> String {
        format!(
            "{} requests in {:.1}s ({:.0}/s; {} transfers, {} reads), {} failed, {} first-try failures {:?}, {} retries, latency p50 {:.1} ms p99 {:.1} ms max {:.1} ms",
            self.requests,
            self.elapsed.as_secs_f64(),
            self.rate(),
            self.transfers_requested,
            self.reads,
            self.failed,
            self.first_try_failures_total(),
            self.first_try_failures,
            self.retries,
            ms(self.p50),
            ms(self.p99),
            ms(self.max)
        )
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A running load. Stop it with [`Load::stop`]; dropping it stops it too.
pub struct Load {
    stop: watch::Sender<bool>,
    phase: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<LoadReport>,
}

/// At most this many phases are told apart.
pub const PHASES: usize = 16;

struct Shared {
    base: String,
    http: reqwest::Client,
    accounts: Vec<String>,
    config: LoadConfig,
    phase: Arc<AtomicUsize>,
    state: Mutex<State>,
}

struct State {
    report: LoadReport,
    latency: Histogram<u64>,
}

impl Load {
    /// Starts sending requests to the gateway at `base`, between `accounts` (at least two).
    pub fn start(base: &str, accounts: Vec<String>, config: LoadConfig) -> Load {
        let (stop, mut stopped) = watch::channel(false);
        let phase = Arc::new(AtomicUsize::new(0));
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .pool_idle_timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        let latency = histogram();
        let shared = Arc::new(Shared {
            base: base.trim_end_matches('/').to_owned(),
            http,
            accounts,
            config,
            phase: phase.clone(),
            state: Mutex::new(State {
                report: LoadReport {
                    first_try_failures: vec![0; PHASES],
                    ..LoadReport::default()
                },
                latency,
            }),
        });
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let permits = Arc::new(Semaphore::new(shared.config.max_in_flight));
            let period = Duration::from_secs_f64(1.0 / f64::from(shared.config.rate.max(1)));
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut n: u64 = 0;
            let mut tasks = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    _ = stopped.changed() => break,
                    _ = ticks.tick() => {}
                }
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    break;
                };
                n += 1;
                let shared = shared.clone();
                tasks.spawn(async move {
                    one_request(&shared, n).await;
                    drop(permit);
                });
                while tasks.try_join_next().is_some() {}
            }
            while tasks.join_next().await.is_some() {}
            let mut state = match shared.state.lock() {
                Ok(s) => s,
                Err(poisoned) => poisoned.into_inner(),
            };
            let mut report = std::mem::take(&mut state.report);
            report.elapsed = started.elapsed();
            report.p50 = Duration::from_micros(state.latency.value_at_quantile(0.5));
            report.p99 = Duration::from_micros(state.latency.value_at_quantile(0.99));
            report.max = Duration::from_micros(state.latency.max());
            report
        });
        Load { stop, phase, task }
    }

    /// Marks the start of phase `n` (0-based, below [`PHASES`]): first-try failures from now on
    /// count towards it.
    pub fn phase(&self, n: usize) {
        self.phase.store(n.min(PHASES - 1), Ordering::SeqCst);
    }

    /// Stops starting requests, waits for those in flight, and reports.
    pub async fn stop(self) -> LoadReport {
        let _ = self.stop.send(true);
        match self.task.await {
            Ok(report) => report,
            Err(e) => LoadReport {
                failed: 1,
                failures: vec![format!("the load generator's task ended abnormally: {e}")],
                ..LoadReport::default()
            },
        }
    }
}

fn histogram() -> Histogram<u64> {
    // Fails only for more than 5 significant figures.
    Histogram::new(3).expect("a histogram with 3 significant figures")
}

enum Kind {
    Transfer(Value),
    Read(String),
}

async fn one_request(shared: &Shared, n: u64) {
    let kind = {
        let mut rng = rand::rng();
        let k = shared.accounts.len();
        let recent = shared
            .state
            .lock()
            .ok()
            .and_then(|s| s.report.created_transfers.last().cloned());
        match (n % 10, recent) {
            (0..=4, _) => {
                let from = rng.random_range(0..k);
                let to = (from + rng.random_range(1..k)) % k;
                Kind::Transfer(json!({
                    "from_account_id": shared.accounts[from],
                    "to_account_id": shared.accounts[to],
                    "amount": rng.random_range(1..=shared.config.max_amount),
                }))
            }
            (5..=7, _) | (_, None) => Kind::Read(format!(
                "/api/accounts/{}",
                shared.accounts[rng.random_range(0..k)]
            )),
            // The view may not have it yet: min_version waits for it (503 after a bounded wait).
            (_, Some(t)) => Kind::Read(format!("/api/transfers/{t}?min_version=1")),
        }
    };
    let phase = shared.phase.load(Ordering::SeqCst);
    let started = Instant::now();
    let mut retries = 0;
    let mut first_failed = false;
    let outcome: Result<Option<String>, String> = loop {
        let attempt = match &kind {
            Kind::Transfer(body) => {
                shared
                    .http
                    .post(format!("{}/api/transfers", shared.base))
                    .json(body)
                    .send()
                    .await
            }
            Kind::Read(path) => {
                shared
                    .http
                    .get(format!("{}{path}", shared.base))
                    .send()
                    .await
            }
        };
        let retryable = match attempt {
            Ok(r) if r.status().is_success() => {
                let id = match &kind {
                    Kind::Transfer(_) => r
                        .json::<Value>()
                        .await
                        .ok()
                        .and_then(|v| v["transfer_id"].as_str().map(str::to_owned)),
                    Kind::Read(_) => None,
                };
                break Ok(id);
            }
            Ok(r) if matches!(r.status().as_u16(), 502..=504) => {
                format!("{} {}", r.status(), r.text().await.unwrap_or_default())
            }
            Ok(r) => {
                let status = r.status();
                break Err(format!("{status} {}", r.text().await.unwrap_or_default()));
            }
            Err(e) => format!("{e}"),
        };
        first_failed = true;
        retries += 1;
        if retries >= shared.config.attempts {
            break Err(format!("gave up after {retries} tries, last: {retryable}"));
        }
        let backoff = Duration::from_millis(100u64.saturating_mul(1 << retries.min(4)))
            .min(Duration::from_secs(1));
        tokio::time::sleep(backoff).await;
    };
    let took = started.elapsed();
    let Ok(mut state) = shared.state.lock() else {
        return;
    };
    let _ = state.latency.record(took.as_micros().max(1) as u64);
    let r = &mut state.report;
    r.requests += 1;
    match &kind {
        Kind::Transfer(_) => r.transfers_requested += 1,
        Kind::Read(_) => r.reads += 1,
    }
    r.retries += u64::from(retries.min(shared.config.attempts.saturating_sub(1)));
    if first_failed || outcome.is_err() {
        if let Some(slot) = r.first_try_failures.get_mut(phase) {
            *slot += 1;
        }
    }
    match outcome {
        Ok(Some(id)) => r.created_transfers.push(id),
        Ok(None) => {}
        Err(why) => {
            r.failed += 1;
            if r.failures.len() < 20 {
                let what = match &kind {
                    Kind::Transfer(body) => format!("POST /api/transfers {body}"),
                    Kind::Read(path) => format!("GET {path}"),
                };
                r.failures.push(format!("phase {phase}: {what}: {why}"));
            }
        }
    }
}
