//! Append and subscription benchmark against the real `event-store` binary (release build).
//!
//! Run: `cargo bench -p event-store --bench append`
//! Optional: `BENCH_SECONDS=5` (per scenario), `BENCH_LAG_RATE=1000` (events/s for the lag run).
//! Prints events/s and latency percentiles; it asserts nothing.

use std::collections::HashMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use uuid::Uuid;

struct Server {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server() -> Server {
    let dir = tempfile::tempdir().expect("create a temporary data directory");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("find a free port")
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_event-store"))
        .env("PORT", port.to_string())
        .env("DATA_DIR", dir.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn the event-store binary");
    let deadline = Instant::now() + Duration::from_secs(30);
    while service_kit::healthcheck::probe(port, "/health", Duration::from_secs(1)).ok() != Some(200)
    {
        assert!(
            Instant::now() < deadline,
            "event-store did not become healthy"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Server {
        child,
        address: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        .build()
        .expect("build the HTTP client")
}

fn payload(i: u64) -> Value {
    json!({"account_id": "5f0c6a1e-2b8a-4d7e-9b1a-0f6d2f3c4b5a", "amount": 1000 + i, "transaction_id": i})
}

/// An append body with `n` events, written without building a JSON tree (less client CPU).
fn append_body(expected: u64, n: usize, i: u64) -> String {
    use std::fmt::Write as _;
    let mut body = format!(r#"{{"expected_version":{expected},"events":["#);
    for k in 0..n {
        if k > 0 {
            body.push(',');
        }
        let _ = write!(
            body,
            r#"{{"event_id":"{}","event_type":"AccountCredited","data":{{"account_id":"5f0c6a1e-2b8a-4d7e-9b1a-0f6d2f3c4b5a","amount":{},"transaction_id":{i}}},"metadata":{{"correlation_id":"bench"}}}}"#,
            Uuid::new_v4(),
            1000 + i
        );
    }
    body.push_str("]}");
    body
}

#[derive(serde::Deserialize)]
struct AppendAnswer {
    version: u64,
}

struct Figures {
    events: u64,
    elapsed: Duration,
    latency: Histogram<u64>,
    /// CPU seconds used by the server and by this (client) process during the run.
    server_cpu: f64,
    client_cpu: f64,
    /// Appends acknowledged per write transaction (per fsync), from the server's metrics.
    appends_per_commit: f64,
}

/// Reads one unlabelled value from the server's `/metrics`.
async fn metric(client: &reqwest::Client, address: &str, name: &str) -> f64 {
    let text = client
        .get(format!("{address}/metrics"))
        .send()
        .await
        .expect("metrics request")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// User + system CPU seconds of a process, from /proc (0 where unavailable).
fn cpu_seconds(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which is in parentheses and may contain spaces).
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<f64>().ok()))
        .sum();
    ticks / 100.0
}

/// One keep-alive HTTP/1.1 connection that speaks just enough of the protocol to post a JSON
/// body and read a `Content-Length` answer. The append runs use it instead of reqwest so that
/// the load generator, which shares the machine's cores with the server, costs little CPU (as
/// pgbench does on the PostgreSQL side); the server sees ordinary HTTP/1.1 requests.
struct RawConnection {
    stream: tokio::net::TcpStream,
    host: String,
    buffer: Vec<u8>,
}

impl RawConnection {
    async fn open(address: &str) -> RawConnection {
        let host = address.trim_start_matches("http://").to_owned();
        let stream = tokio::net::TcpStream::connect(&host)
            .await
            .expect("connect to the event store");
        stream.set_nodelay(true).expect("set TCP_NODELAY");
        RawConnection {
            stream,
            host,
            buffer: Vec::with_capacity(4096),
        }
    }

    /// Posts `body` to `path`; returns the status and the answer's body.
    async fn post(&mut self, path: &str, body: &str) -> (u16, Vec<u8>) {
        use tokio::io::AsyncWriteExt;
        let request = format!(
            "POST {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            self.host,
            body.len()
        );
        self.stream
            .write_all(request.as_bytes())
            .await
            .expect("send the request");
        self.buffer.clear();
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 16];
            let mut response = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(head) =
                response.parse(&self.buffer).expect("an HTTP/1.1 answer")
            {
                let status = response.code.expect("a status code");
                let length: usize = response
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| std::str::from_utf8(h.value).ok()?.parse().ok())
                    .expect("a content-length header");
                while self.buffer.len() < head + length {
                    self.read_more().await;
                }
                assert_eq!(
                    self.buffer.len(),
                    head + length,
                    "the server answered more than was asked"
                );
                return (status, self.buffer[head..].to_vec());
            }
            self.read_more().await;
        }
    }

    async fn read_more(&mut self) {
        use tokio::io::AsyncReadExt;
        let read = self
            .stream
            .read_buf(&mut self.buffer)
            .await
            .expect("read the answer");
        assert!(read > 0, "the server closed the connection");
    }
}

/// `clients` tasks, each appending batches of `batch` events to its own stream for `secs`.
async fn append_run(
    server: &Server,
    label: &str,
    clients: usize,
    batch: usize,
    secs: f64,
) -> Figures {
    let address = &server.address;
    let server_pid = server.child.id().to_string();
    let client = client();
    let appends_before = metric(&client, address, "event_store_appends_total").await;
    let commits_before = metric(&client, address, "event_store_commits_total").await;
    let mut connections = Vec::new();
    for _ in 0..clients {
        connections.push(RawConnection::open(address).await);
    }
    let server_cpu = cpu_seconds(&server_pid);
    let client_cpu = cpu_seconds("self");
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (c, mut connection) in connections.into_iter().enumerate() {
        let path = format!("/streams/{label}-{c}/events");
        tasks.push(tokio::spawn(async move {
            let mut latency = Histogram::<u64>::new(3).expect("histogram");
            let mut version = 0u64;
            let mut count = 0u64;
            while Instant::now() < deadline {
                let body = append_body(version, batch, version);
                let sent = Instant::now();
                let (status, answer) = connection.post(&path, &body).await;
                latency
                    .record(sent.elapsed().as_micros() as u64)
                    .expect("record");
                assert_eq!(
                    status,
                    200,
                    "append failed: {}",
                    String::from_utf8_lossy(&answer)
                );
                let answer: AppendAnswer =
                    serde_json::from_slice(&answer).expect("append answer JSON");
                version = answer.version;
                count += batch as u64;
            }
            (count, latency)
        }));
    }
    let mut total = 0;
    let mut latency = Histogram::<u64>::new(3).expect("histogram");
    for t in tasks {
        let (count, h) = t.await.expect("client task");
        total += count;
        latency.add(h).expect("merge histograms");
    }
    let elapsed = started.elapsed();
    let server_cpu = cpu_seconds(&server_pid) - server_cpu;
    let client_cpu = cpu_seconds("self") - client_cpu;
    let appends = metric(&client, address, "event_store_appends_total").await - appends_before;
    let commits = metric(&client, address, "event_store_commits_total").await - commits_before;
    Figures {
        appends_per_commit: appends / commits.max(1.0),
        events: total,
        elapsed,
        latency,
        server_cpu,
        client_cpu,
    }
}

fn print_run(name: &str, f: &Figures) {
    let rate = f.events as f64 / f.elapsed.as_secs_f64();
    println!(
        "{name:<30} {rate:>8.0} events/s  latency p50 {:>6.2} ms  p99 {:>6.2} ms  ({} events, {} appends, {:.1} appends/commit; CPU s: server {:.1}, client {:.1})",
        f.latency.value_at_quantile(0.50) as f64 / 1000.0,
        f.latency.value_at_quantile(0.99) as f64 / 1000.0,
        f.events,
        f.latency.len(),
        f.appends_per_commit,
        f.server_cpu,
        f.client_cpu,
    );
}

/// Appends `rate` single events/s while an SSE subscriber follows; lag = subscriber receipt
/// minus append acknowledgement, per event.
async fn lag_run(address: &str, rate: u64, secs: f64) -> (Histogram<u64>, u64, u64) {
    let client = client();
    let group = format!("lag-{}", Uuid::new_v4().simple());
    let head: Value = client
        .get(format!("{address}/events?limit=0"))
        .send()
        .await
        .expect("head")
        .json()
        .await
        .expect("head json");
    let start = head["head"].as_u64().expect("head");
    client
        .put(format!("{address}/subscriptions/{group}"))
        .json(&json!({"event_types": ["LagProbe"], "start_position": start}))
        .send()
        .await
        .expect("create group");

    let acked: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let received: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let total = (rate as f64 * secs) as u64;

    let subscriber = {
        let client = client.clone();
        let received = received.clone();
        let url = format!("{address}/subscriptions/{group}/stream");
        tokio::spawn(async move {
            let response = client
                .get(&url)
                .send()
                .await
                .expect("open the event stream");
            let mut body = response.bytes_stream();
            let mut buffer = String::new();
            let mut got = 0u64;
            while got < total {
                let Ok(Some(Ok(chunk))) =
                    tokio::time::timeout(Duration::from_secs(10), body.next()).await
                else {
                    break;
                };
                let now = Instant::now();
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let message: String = buffer.drain(..end + 2).collect();
                    for line in message.lines() {
                        if let Some(data) = line.strip_prefix("data:") {
                            let event: Value =
                                serde_json::from_str(data.trim_start()).expect("event JSON");
                            let id = event["event_id"].as_str().expect("event_id").to_owned();
                            received.lock().expect("lock").insert(id, now);
                            got += 1;
                        }
                    }
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Paced producer: 4 tasks, each at rate/4 on its own stream.
    let producers = 4u64;
    let interval = Duration::from_secs_f64(producers as f64 / rate as f64);
    let mut tasks = Vec::new();
    for p in 0..producers {
        let client = client.clone();
        let acked = acked.clone();
        let url = format!("{address}/streams/lag-{group}-{p}/events");
        tasks.push(tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            for i in 0..total / producers {
                ticker.tick().await;
                let id = Uuid::new_v4().to_string();
                let body = json!({"expected_version": "any", "events": [
                    {"event_id": id, "event_type": "LagProbe", "data": payload(i)}]});
                let response = client.post(&url).json(&body).send().await.expect("append");
                assert_eq!(response.status(), 200);
                let _ = response.bytes().await;
                acked.lock().expect("lock").insert(id, Instant::now());
            }
        }));
    }
    for t in tasks {
        t.await.expect("producer");
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), subscriber).await;

    let acked = acked.lock().expect("lock");
    let received = received.lock().expect("lock");
    let mut lag = Histogram::<u64>::new(3).expect("histogram");
    let mut early = 0;
    for (id, ack) in acked.iter() {
        if let Some(got) = received.get(id) {
            // The push can beat the HTTP answer to the producer; count that as zero lag.
            match got.checked_duration_since(*ack) {
                Some(d) => lag.record(d.as_micros() as u64).expect("record"),
                None => {
                    early += 1;
                    lag.record(0).expect("record");
                }
            }
        }
    }
    (lag, acked.len() as u64, early)
}

fn main() {
    let secs: f64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    let lag_rate: u64 = std::env::var("BENCH_LAG_RATE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let server = start_server();
    println!(
        "event-store append benchmark: SQLite WAL, synchronous=FULL (every acknowledged append fsync'd), \
         HTTP/1.1 keep-alive, {secs} s per scenario, {} CPUs",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    runtime.block_on(async {
        // Warm-up (connections, page cache).
        append_run(&server, "warmup", 16, 1, 1.0).await;
        for clients in [1, 16, 64] {
            let f = append_run(&server, &format!("single{clients}"), clients, 1, secs).await;
            print_run(&format!("{clients} clients x 1 event"), &f);
        }
        let f = append_run(&server, "batch64", 64, 100, secs).await;
        print_run("64 clients x batches of 100", &f);

        let (lag, sent, early) = lag_run(&server.address, lag_rate, secs).await;
        println!(
            "subscription lag at {lag_rate} events/s (SSE)  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  ({} of {sent} received, {early} before the producer saw its ack)",
            lag.value_at_quantile(0.50) as f64 / 1000.0,
            lag.value_at_quantile(0.99) as f64 / 1000.0,
            lag.max() as f64 / 1000.0,
            lag.len(),
        );
    });
}
