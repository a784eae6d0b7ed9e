//! Pure plan benchmark: check a synthetic 200-service manifest, then `plan::compute` it against
//! 200 observed containers (the state right after applying it), with one service drifted.
//! Prints figures; run with `cargo bench -p deployer --bench plan`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use deployer::manifest;
use deployer::plan::{
    self, ContainerState, HealthStatus, Observed, ObservedContainer, ObservedNetwork,
};

const SERVICES: usize = 200;
const RUNS: usize = 50;

fn main() {
    let text = synthetic_manifest(SERVICES);
    let sources = [(PathBuf::from("bench.yaml"), text)];
    let env = |k: &str| (k == "TAG").then(|| "1.0".to_owned());

    let (load_med, load_p, m) = measure(|| {
        manifest::load_sources(&sources, &env)
            .unwrap_or_else(|e| panic!("bench manifest must load:\n{e}"))
    });

    let digests: BTreeMap<String, String> = m
        .services
        .values()
        .map(|s| (s.image.to_string(), format!("sha256:{}", "a".repeat(64))))
        .collect();
    let empty = Observed {
        image_digests: digests.clone(),
        ..Observed::default()
    };
    let first = plan::compute(&m, &empty);
    let mut observed = Observed {
        containers: Vec::new(),
        networks: first
            .networks_to_create
            .iter()
            .map(|n| ObservedNetwork {
                id: n.engine_name.clone(),
                name: n.engine_name.clone(),
                labels: n.labels.clone(),
            })
            .collect(),
        volumes: first
            .volumes_to_create
            .iter()
            .map(|v| deployer::plan::ObservedVolume {
                name: v.engine_name.clone(),
                labels: v.labels.clone(),
            })
            .collect(),
        image_digests: digests,
    };
    for sp in &first.services {
        for d in &sp.desired {
            observed.containers.push(ObservedContainer {
                id: format!("{:064x}", observed.containers.len()),
                name: d.container_name("0a1b2c3d"),
                service: sp.service.clone(),
                image: sp.image.clone().unwrap_or_default(),
                image_id: sp.image_digest.clone().unwrap_or_default(),
                ips: BTreeMap::new(),
                labels: d.labels_with_digest(sp.image_digest.as_deref().unwrap_or_default()),
                state: ContainerState::Running,
                health: HealthStatus::Healthy,
                created: 1_700_000_000,
            });
        }
    }
    // One drifted container, so the plan has something to say.
    if let Some(c) = observed.containers.first_mut() {
        c.health = HealthStatus::Unhealthy;
    }

    let (compute_med, compute_p, p) = measure(|| plan::compute(&m, &observed));
    let (fp_med, fp_p, _) = measure(|| plan::fingerprint(&observed));
    let (render_med, render_p, _) = measure(|| plan::render_human(&p, false));
    let (json_med, json_p, _) = measure(|| p.to_json());

    println!(
        "plan benchmark: {SERVICES} services, {} observed containers, {RUNS} runs each",
        observed.containers.len()
    );
    println!("  {}", plan::summary_line(&p));
    row("manifest::load (parse + check)", load_med, load_p);
    row("plan::compute", compute_med, compute_p);
    row("plan::fingerprint", fp_med, fp_p);
    row("plan::render_human", render_med, render_p);
    row("Plan::to_json", json_med, json_p);
    row(
        "load + compute + render",
        load_med + compute_med + render_med,
        load_p + compute_p + render_p,
    );
}

fn row(what: &str, median: Duration, p95: Duration) {
    println!(
        "  {what:<32} median {:>8.3} ms   p95 {:>8.3} ms",
        median.as_secs_f64() * 1e3,
        p95.as_secs_f64() * 1e3
    );
}

/// Runs `f` RUNS times; returns the median and 95th percentile, and the last result.
fn measure<T>(mut f: impl FnMut() -> T) -> (Duration, Duration, T) {
    let mut times = Vec::with_capacity(RUNS);
    let mut last = None;
    for _ in 0..RUNS {
        let start = Instant::now();
        let out = std::hint::black_box(f());
        times.push(start.elapsed());
        last = Some(out);
    }
    times.sort();
    let out = last.unwrap_or_else(|| unreachable!("RUNS > 0"));
    (times[RUNS / 2], times[RUNS * 95 / 100], out)
}

fn synthetic_manifest(n: usize) -> String {
    let mut s = String::from("project: bench\nvolumes:\n  data: {}\nservices:\n");
    for i in 0..n {
        let _ = writeln!(s, "  svc-{i:03}:");
        let _ = writeln!(s, "    image: 127.0.0.1:5000/bench/svc-{i:03}:${{TAG}}");
        let _ = writeln!(s, "    command: [\"svc\", \"--port\", \"8080\"]");
        let _ = writeln!(s, "    environment:\n      RUST_LOG: info\n      INDEX: \"{i}\"\n      PEER: http://svc-{:03}:8080", (i + 1) % n);
        let _ = writeln!(s, "    ports: [\"{}:8080\"]", 20000 + i);
        if i % 10 == 0 {
            let _ = writeln!(s, "    volumes: [\"data:/data/{i}\"]");
        }
        let _ = writeln!(
            s,
            "    health: {{path: /health, port: 8080, interval: 500ms}}"
        );
        let _ = writeln!(s, "    resources: {{memory: 64m, cpus: 0.25}}");
        if i >= 10 {
            let _ = writeln!(s, "    depends_on: [svc-{:03}]", i % 10);
        }
    }
    s
}
