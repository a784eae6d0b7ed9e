//! One fleet for one test: its own registry, project name (so containers, network and volumes),
//! and gateway port. Deployed with `deployer apply -f manifests/ci.yaml`, whose variables
//! (`REGISTRY`, `TAG`, `PROJECT`, `GATEWAY_PORT`) this sets. Taken down with
//! `deployer down --volumes` when dropped, even when the test failed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use es_client::EventStoreClient;

use crate::images::{self, SERVICES};
use crate::registry::LocalRegistry;
use crate::{docker, workspace_root, Error};

/// The tag every image of a test fleet is pushed under (its "version" tag in `ci.yaml`).
pub const TAG: &str = "0.0.0";

/// How `deployer apply` ended.
#[derive(Debug)]
pub struct ApplyOutcome {
    /// The exit code (-1 when killed by a signal).
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

/// A deployed fleet. Dropping it removes its containers, network, volumes and image tags.
pub struct Fleet {
    pub project: String,
    pub gateway_port: u16,
    deployer: PathBuf,
    root: PathBuf,
    registry: LocalRegistry,
    pushed: Mutex<Vec<String>>,
}

impl Fleet {
    /// Builds the images (once per process), starts a registry, pushes every image to it, and
    /// applies `manifests/ci.yaml` under a unique project name.
    pub async fn up(name: &str) -> Result<Fleet, Error> {
        let deployer = tokio::task::spawn_blocking(images::ensure_built)
            .await
            .map_err(|e| Error::unexpected("building the images", e))??;
        let registry = LocalRegistry::start().await?;
        let suffix: u16 = rand::random();
        let fleet = Fleet {
            project: format!("e2e-{name}-{}-{suffix:04x}", std::process::id()),
            gateway_port: docker::free_port()?,
            deployer,
            root: workspace_root(),
            registry,
            pushed: Mutex::new(Vec::new()),
        };
        for service in SERVICES {
            fleet.push(service, &images::local_image(service))?;
        }
        let outcome = fleet.apply().await?;
        if outcome.code != 0 {
            return Err(Error::unexpected(
                format!("deploying fleet {}", fleet.project),
                format!(
                    "deployer apply exited {}:\n{}",
                    outcome.code, outcome.stderr
                ),
            ));
        }
        eprintln!(
            "e2e: fleet {} up in {:.1}s, gateway {}",
            fleet.project,
            outcome.took.as_secs_f64(),
            fleet.gateway_url()
        );
        Ok(fleet)
    }

    /// `<registry>/fleet/<service>:<TAG>`, as `ci.yaml` names it.
    pub fn registry_image(&self, service: &str) -> String {
        format!("{}/fleet/{service}:{TAG}", self.registry.address)
    }

    /// Tags the local image `local` as this fleet's image of `service` and pushes it, so the
    /// next apply sees a new digest for that service only.
    pub fn push(&self, service: &str, local: &str) -> Result<(), Error> {
        let target = self.registry_image(service);
        docker::docker(&["tag", local, &target])?;
        if let Ok(mut pushed) = self.pushed.lock() {
            if !pushed.contains(&target) {
                pushed.push(target.clone());
            }
        }
        docker::docker(&["push", "-q", &target])?;
        Ok(())
    }

    /// Builds a new image of `service` from the e2e image plus the Dockerfile `lines`, and pushes
    /// it under the fleet's tag. `variant` names it (`fleet/<service>:<project>-<variant>`).
    pub fn push_variant(&self, service: &str, variant: &str, lines: &[&str]) -> Result<(), Error> {
        let local = format!("fleet/{service}:{}-{variant}", self.project);
        let mut all = vec![format!(
            "LABEL io.fleet.e2e.variant=\"{}-{variant}\"",
            self.project
        )];
        all.extend(lines.iter().map(|l| l.to_string()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        images::derive(&images::local_image(service), &all, &local)?;
        if let Ok(mut pushed) = self.pushed.lock() {
            pushed.push(local.clone());
        }
        self.push(service, &local)
    }

    /// The image digest each running container of `service` was created from.
    pub async fn running_digests(&self, service: &str) -> Result<Vec<String>, Error> {
        Ok(self
            .all_running_digests()
            .await?
            .remove(service)
            .unwrap_or_default())
    }

    /// Per service, the image digests of its running containers (`deployer status`).
    pub async fn all_running_digests(&self) -> Result<BTreeMap<String, Vec<String>>, Error> {
        let out = self
            .deployer(&["status", "--output", "json"])
            .output()
            .await
            .map_err(Error::io("running deployer status"))?;
        let stdout = docker::checked("deployer status --output json", out)?;
        let status: serde_json::Value = serde_json::from_str(&stdout)
            .map_err(|e| Error::unexpected("reading deployer status --output json", e))?;
        let mut digests = BTreeMap::new();
        for s in status.as_array().into_iter().flatten() {
            let running = s["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| c["state"] == "running")
                .filter_map(|c| c["image_digest"].as_str().map(str::to_owned))
                .collect();
            digests.insert(
                s["service"].as_str().unwrap_or_default().to_owned(),
                running,
            );
        }
        Ok(digests)
    }

    /// `deployer ARGS -f manifests/ci.yaml` with this fleet's variables.
    pub fn deployer(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(&self.deployer);
        c.args(args)
            .arg("-f")
            .arg(self.root.join("manifests/ci.yaml"))
            .arg("--no-color")
            .env("REGISTRY", &self.registry.address)
            .env("TAG", TAG)
            .env("PROJECT", &self.project)
            .env("GATEWAY_PORT", self.gateway_port.to_string())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        c
    }

    /// Runs `deployer apply` and returns how it ended (its exit code is not judged here).
    pub async fn apply(&self) -> Result<ApplyOutcome, Error> {
        self.run_deployer(&["apply"]).await
    }

    /// Runs `deployer ARGS` on this fleet's manifest.
    pub async fn run_deployer(&self, args: &[&str]) -> Result<ApplyOutcome, Error> {
        self.run_deployer_with(args, &[]).await
    }

    /// Runs `deployer ARGS` on this fleet's manifest with extra environment variables (the
    /// manifest's other `${VAR}`s).
    pub async fn run_deployer_with(
        &self,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<ApplyOutcome, Error> {
        let started = Instant::now();
        let out = self
            .deployer(args)
            .envs(env.iter().copied())
            .output()
            .await
            .map_err(Error::io(format!("running deployer {}", args.join(" "))))?;
        let outcome = ApplyOutcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            took: started.elapsed(),
        };
        eprintln!(
            "e2e: deployer {} on {} exited {} after {:.1}s; stderr:\n{}",
            args.join(" "),
            self.project,
            outcome.code,
            outcome.took.as_secs_f64(),
            indent(&outcome.stderr)
        );
        Ok(outcome)
    }

    pub fn gateway_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.gateway_port)
    }

    /// The running container of `service` (waits up to 30 s for one).
    pub fn container(&self, service: &str) -> Result<String, Error> {
        docker::container_of(&self.project, service, Duration::from_secs(30))
    }

    /// A client of the fleet's event store, at its container's address.
    pub fn store(&self) -> Result<EventStoreClient, Error> {
        let ip = docker::container_ip(&self.container("event-store")?)?;
        EventStoreClient::new(&format!("http://{ip}:8100")).map_err(|source| Error::Store {
            what: "creating the event store client".into(),
            source,
        })
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let down = Command::new(&self.deployer)
            .args([
                "down",
                "--volumes",
                "--no-color",
                "--project",
                &self.project,
            ])
            .stdin(Stdio::null())
            .output();
        if !matches!(&down, Ok(o) if o.status.success()) {
            eprintln!("e2e: deployer down failed for {}: {down:?}", self.project);
        }
        // Whatever `down` left behind (it failed, or a test made containers of its own).
        let label = format!("label=deployer.project={}", self.project);
        if let Ok(ids) = docker::docker(&["ps", "-aq", "--filter", &label]) {
            for id in ids.lines() {
                let _ = docker::docker(&["rm", "-f", "-v", id]);
            }
        }
        if let Ok(pushed) = self.pushed.lock() {
            for image in pushed.iter() {
                let _ = docker::docker(&["rmi", image]);
            }
        }
        // What apply pulled from this fleet's registry, by digest (untagged, so not above).
        let pulled = format!("reference={}/*/*", self.registry.address);
        let listed = docker::docker(&[
            "images",
            "--digests",
            "--filter",
            &pulled,
            "--format",
            "{{.Repository}}@{{.Digest}}",
        ]);
        if let Ok(refs) = listed {
            for r in refs.lines().filter(|r| !r.ends_with("@<none>")) {
                let _ = docker::docker(&["rmi", r]);
            }
        }
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}\n"))
        .collect::<String>()
}
