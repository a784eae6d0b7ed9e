//! End-to-end figures against the local Docker Engine (printed, never asserted):
//!
//! 1. no-op `deployer apply` on an 8-service fleet vs `docker-compose up -d` on the equivalent
//!    compose file, in the same run;
//! 2. `deployer plan` for a 200-service manifest against 200 running containers;
//! 3. the roll of one service, start to old container removed, minus its health-check time;
//! 4. requests dropped during start-first rolls of a two-replica service, counted by
//!    `canary poll` running inside the project network.
//!
//! Run: `cargo bench -p deployer --bench fleet` (optionally `-- noop`, `-- plan200`, `-- roll`,
//! `-- drops`).

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use deployer::apply::{self, ApplyOptions};
use deployer::observe;
use deployer::plan;
use deployer::progress::Progress;

use support::{build_canary, Project};

fn main() {
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wants = |name: &str| which.is_empty() || which.iter().any(|w| w == name);
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
        let p = Project::new("bench");
        let image = p.image("v1");
        build_canary(&image, &p.name, &[], false);
        if wants("noop") {
            noop_apply(&p, &image);
        }
        if wants("plan200") {
            plan_200(&engine, &p, &image).await;
        }
        if wants("roll") {
            roll_one(&engine, &p, &image).await;
        }
        if wants("drops") {
            drops(&engine, &p, &image).await;
        }
    });
}

fn time_cmd(cmd: &mut Command) -> Duration {
    let started = Instant::now();
    let status = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run command");
    let took = started.elapsed();
    assert!(status.success(), "{cmd:?} failed");
    took
}

fn stats(mut v: Vec<Duration>) -> (f64, f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (ms(v[0]), ms(v[v.len() / 2]), ms(v[v.len() - 1]))
}

fn noop_apply(p: &Project, image: &str) {
    const RUNS: usize = 10;
    let project = format!("{}-noop", p.name);
    let mut yaml = format!("project: {project}\nservices:\n");
    let mut compose = String::from("version: \"2.4\"\nservices:\n");
    for i in 1..=8 {
        let dep = if i > 1 {
            format!("    depends_on: [s{}]\n", i - 1)
        } else {
            String::new()
        };
        yaml.push_str(&format!(
            "  s{i}:\n    image: {image}\n    environment:\n      CANARY_MESSAGE: service-{i}\n    health:\n      port: 8090\n      interval: 100ms\n{dep}"
        ));
        compose.push_str(&format!(
            "  s{i}:\n    image: {image}\n    environment:\n      CANARY_MESSAGE: service-{i}\n{dep}"
        ));
    }
    let file = p.write("noop.yaml", &yaml);
    let compose_file = p.write("docker-compose.yml", &compose);
    let bin = support::deployer_bin();
    let deployer = || {
        let mut c = Command::new(&bin);
        c.arg("apply").arg("-f").arg(&file);
        c
    };
    let compose_project = format!("{}-compose", p.name);
    let compose_cmd = |args: &[&str]| {
        let mut c = Command::new("docker-compose");
        c.arg("-f")
            .arg(&compose_file)
            .arg("-p")
            .arg(&compose_project)
            .args(args);
        c
    };
    let _down = ComposeDown(compose_file.clone(), compose_project.clone());
    let _ = time_cmd(&mut deployer());
    let _ = time_cmd(&mut compose_cmd(&["up", "-d"]));

    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..RUNS {
        ours.push(time_cmd(&mut deployer()));
        theirs.push(time_cmd(&mut compose_cmd(&["up", "-d"])));
    }
    let (o_min, o_med, o_max) = stats(ours);
    let (c_min, c_med, c_max) = stats(theirs);
    println!("no-op apply, 8 services, {RUNS} runs each (min / median / max):");
    println!("  deployer apply        {o_min:7.1} / {o_med:7.1} / {o_max:7.1} ms");
    println!("  docker-compose up -d  {c_min:7.1} / {c_med:7.1} / {c_max:7.1} ms");
    println!("  speed-up (median)     {:.1}x", c_med / o_med);
    let _ = Command::new(&bin)
        .args(["down", "--volumes", "-f"])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

struct ComposeDown(std::path::PathBuf, String);

impl Drop for ComposeDown {
    fn drop(&mut self) {
        let _ = Command::new("docker-compose")
            .arg("-f")
            .arg(&self.0)
            .arg("-p")
            .arg(&self.1)
            .args(["down", "-t", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

async fn plan_200(engine: &deployer::engine::Engine, p: &Project, image: &str) {
    const RUNS: usize = 5;
    let project = format!("{}-p200", p.name);
    let mut yaml = format!("project: {project}\nservices:\n");
    for i in 1..=200 {
        yaml.push_str(&format!(
            "  s{i:03}:\n    image: {image}\n    environment:\n      CANARY_MESSAGE: service-{i}\n"
        ));
    }
    let file = p.write("p200.yaml", &yaml);
    let manifest =
        deployer::manifest::load(std::slice::from_ref(&file), &|k| std::env::var(k).ok())
            .expect("manifest");
    let reg = support::registry_client();
    let started = Instant::now();
    apply::apply(
        engine,
        &reg,
        &manifest,
        None,
        &ApplyOptions::default(),
        &Progress::quiet(),
    )
    .await
    .expect("bring up 200 containers");
    println!(
        "(setup: 200 containers applied in {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    let _cleanup = DeployerDown(file.clone());

    let bin = support::deployer_bin();
    let mut cli = Vec::new();
    for _ in 0..RUNS {
        cli.push(time_cmd(
            Command::new(&bin)
                .args(["plan", "--detailed-exitcode", "-f"])
                .arg(&file),
        ));
    }
    let mut lib = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let observed = observe::observe(engine, &reg, &manifest)
            .await
            .expect("observe");
        let plan = plan::compute(&manifest, &observed);
        lib.push(t.elapsed());
        assert!(!plan.has_changes(), "the 200 services are up to date");
    }
    let (a, b, c) = stats(cli);
    let (d, e, f) = stats(lib);
    println!(
        "plan, 200 services against 200 running containers, {RUNS} runs (min / median / max):"
    );
    println!("  deployer plan (process, load + observe + compute + render) {a:7.1} / {b:7.1} / {c:7.1} ms");
    println!("  observe + compute (library)                               {d:7.1} / {e:7.1} / {f:7.1} ms");
}

struct DeployerDown(std::path::PathBuf);

impl Drop for DeployerDown {
    fn drop(&mut self) {
        let _ = Command::new(support::deployer_bin())
            .args(["down", "--volumes", "-f"])
            .arg(&self.0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

async fn roll_one(engine: &deployer::engine::Engine, p: &Project, image: &str) {
    const RUNS: usize = 5;
    let project = format!("{}-roll", p.name);
    let write = |n: usize| -> std::path::PathBuf {
        p.write(
            "roll.yaml",
            &format!(
                "project: {project}\nservices:\n  api:\n    image: {image}\n    environment:\n      CANARY_MESSAGE: rev-{n}\n    health:\n      port: 8090\n      interval: 100ms\n    stop_grace_period: 5s\n    drain: 0s\n"
            ),
        )
    };
    let load = |path: &Path| {
        deployer::manifest::load(&[path.to_path_buf()], &|k| std::env::var(k).ok())
            .expect("manifest")
    };
    let reg = support::registry_client();
    let file = write(0);
    let _cleanup = DeployerDown(file.clone());
    apply::apply(
        engine,
        &reg,
        &load(&file),
        None,
        &ApplyOptions::default(),
        &Progress::quiet(),
    )
    .await
    .expect("first apply");
    let mut overheads = Vec::new();
    println!("roll of one service (start-first), {RUNS} runs:");
    for n in 1..=RUNS {
        let m = load(&write(n));
        let progress = Progress::capture();
        let t = Instant::now();
        apply::apply(engine, &reg, &m, None, &ApplyOptions::default(), &progress)
            .await
            .expect("roll");
        let total = t.elapsed();
        let lines = progress.captured_at();
        let at = |needle: &str| {
            lines
                .iter()
                .find(|(_, l)| l.contains(needle))
                .map(|(t, _)| *t)
                .unwrap_or_else(|| panic!("no progress line with {needle:?}: {lines:?}"))
        };
        let roll = at("removed 1 old container").duration_since(at("[api] replacing"));
        let health = lines
            .iter()
            .find_map(|(_, l)| {
                l.split("healthy after ")
                    .nth(1)
                    .and_then(|s| s.trim_end_matches('s').parse::<f64>().ok())
            })
            .expect("a health time");
        let healthy = at("healthy after");
        let start_part = healthy.duration_since(at("[api] replacing")).as_secs_f64() - health;
        let stop_part = at("[api] done").duration_since(healthy).as_secs_f64();
        let remove_part = at("removed 1 old container")
            .duration_since(at("[api] done"))
            .as_secs_f64();
        println!(
            "    create+start {start_part:.3} s, stop old {stop_part:.3} s, remove old {remove_part:.3} s"
        );
        let overhead = roll.as_secs_f64() - health;
        overheads.push(Duration::from_secs_f64(overhead.max(0.0)));
        println!(
            "  apply {:6.3} s  roll (start to old container removed) {:6.3} s  health check {:6.3} s  roll minus health {:6.3} s",
            total.as_secs_f64(),
            roll.as_secs_f64(),
            health,
            overhead
        );
    }
    let (a, b, c) = stats(overheads);
    println!("  roll minus health-check time, min / median / max: {a:.0} / {b:.0} / {c:.0} ms");
}

async fn drops(engine: &deployer::engine::Engine, p: &Project, image: &str) {
    const ROLLS: usize = 5;
    const EVERY_MS: u64 = 10;
    let project = format!("{}-drops", p.name);
    let write = |n: usize| -> std::path::PathBuf {
        p.write(
            "drops.yaml",
            &format!(
                "project: {project}\nservices:\n  web:\n    image: {image}\n    replicas: 2\n    environment:\n      CANARY_MESSAGE: rev-{n}\n    health:\n      port: 8090\n      interval: 100ms\n    stop_grace_period: 5s\n"
            ),
        )
    };
    let load = |path: &Path| {
        deployer::manifest::load(&[path.to_path_buf()], &|k| std::env::var(k).ok())
            .expect("manifest")
    };
    let file = write(0);
    let _cleanup = DeployerDown(file.clone());
    let apply = |m: deployer::manifest::Manifest| async move {
        apply::apply(
            engine,
            &support::registry_client(),
            &m,
            None,
            &ApplyOptions::default(),
            &Progress::quiet(),
        )
        .await
        .expect("apply")
    };
    apply(load(&file)).await;
    let poller = support::Poller::start(
        &project,
        image,
        &format!("{project}-default"),
        "http://web:8090/",
        EVERY_MS,
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    for n in 1..=ROLLS {
        apply(load(&write(n))).await;
    }
    let took = started.elapsed();
    let count = poller.finish();
    println!(
        "start-first rolls of a two-replica service (default drain), a poller in the network every {EVERY_MS} ms:"
    );
    println!(
        "  {} failed of {} requests over {ROLLS} start-first rolls ({:.1} s); {} answered after more than 1 s",
        count.failed,
        count.ok + count.failed,
        took.as_secs_f64(),
        count.slow
    );
    for f in &count.failures {
        println!("    {f}");
    }
}
