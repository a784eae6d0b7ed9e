//! Test harness for the deployer's Docker tests: static binaries built once, `FROM scratch`
//! canary images, a real registry on a free port, unique projects, and Drop-guard cleanup.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use deployer::engine::Engine;
use deployer::manifest::{self, Manifest};
use deployer::registry::{DockerConfig, RegistryClient};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tool/ has a parent")
        .to_path_buf()
}

/// Connects to Docker, or: panics when `DEPLOYER_REQUIRE_DOCKER=1`, else prints a notice and
/// returns `None` (the test then returns early).
pub async fn docker() -> Option<Engine> {
    match Engine::from_env().await {
        Ok(e) => Some(e),
        Err(err) => {
            if std::env::var("DEPLOYER_REQUIRE_DOCKER").as_deref() == Ok("1") {
                panic!("DEPLOYER_REQUIRE_DOCKER=1 but the Docker Engine does not answer: {err}");
            }
            eprintln!("NOTICE: skipping a Docker test, the engine does not answer: {err}");
            None
        }
    }
}

/// A registry client with no credentials.
pub fn registry_client() -> RegistryClient {
    RegistryClient::new(DockerConfig::default()).expect("registry client")
}

/// Path of the static canary binary, built once per test process with `ci/build-static.sh`.
pub fn canary_binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = workspace();
            let status = Command::new(root.join("ci/build-static.sh"))
                .arg("canary")
                .current_dir(&root)
                .status()
                .expect("running ci/build-static.sh");
            assert!(status.success(), "ci/build-static.sh canary failed");
            let bin = root.join("target/x86_64-unknown-linux-gnu/release/canary");
            assert!(bin.exists(), "{} missing after the build", bin.display());
            bin
        })
        .clone()
}

/// Runs a command, panicking with its output when it fails; returns stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Builds a `FROM scratch` canary image `tag`, with extra `ENV` lines baked in (e.g.
/// `CANARY_HEALTH=fail` for a broken version), labelled for cleanup by `project`.
pub fn build_canary(tag: &str, project: &str, env: &[(&str, &str)], healthcheck: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(canary_binary(), dir.path().join("canary")).expect("copy canary");
    // The project's label comes first, so no two projects share a cached layer: the legacy
    // builder reuses intermediate images, and another test's cleanup (`rmi -f`) could delete one
    // while this build stands on it ("failed to get digest ... no such file or directory").
    let mut dockerfile = format!(
        "FROM scratch\nLABEL deployer.test-project={project}\nCOPY canary /canary\nENV PORT=8090\n"
    );
    for (k, v) in env {
        dockerfile.push_str(&format!("ENV {k}={v}\n"));
    }
    if healthcheck {
        dockerfile.push_str(
            "HEALTHCHECK --interval=1s --timeout=1s --retries=3 CMD [\"/canary\", \"healthcheck\"]\n",
        );
    }
    dockerfile.push_str("EXPOSE 8090\nENTRYPOINT [\"/canary\"]\n");
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).expect("write Dockerfile");
    run(Command::new("docker")
        .args(["build", "-q", "-t", tag])
        .arg(dir.path())
        .env("DOCKER_BUILDKIT", "0"));
}

/// A unique project; removes its containers, networks, volumes and test images on drop.
pub struct Project {
    pub name: String,
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn new(test: &str) -> Project {
        static COUNTER: Mutex<u32> = Mutex::new(0);
        let n = {
            let mut c = COUNTER.lock().unwrap_or_else(|e| e.into_inner());
            *c += 1;
            *c
        };
        let name = format!("t{}-{test}-{n}", std::process::id());
        Project {
            name,
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// An image tag for this project.
    pub fn image(&self, variant: &str) -> String {
        format!("deployer-test/{}:{variant}", self.name)
    }

    /// Writes a manifest file and returns its path.
    pub fn write(&self, file: &str, yaml: &str) -> PathBuf {
        let path = self.dir.path().join(file);
        std::fs::write(&path, yaml).expect("write manifest");
        path
    }

    /// Writes and loads a manifest.
    pub fn manifest(&self, yaml: &str) -> Manifest {
        let path = self.write("deploy.yaml", yaml);
        manifest::load(&[path], &|k| std::env::var(k).ok()).expect("valid manifest")
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let filter = format!("label=deployer.project={}", self.name);
        let ids = |args: &[&str]| -> Vec<String> {
            Command::new("docker")
                .args(args)
                .output()
                .map(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .split_whitespace()
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        let containers = ids(&["ps", "-aq", "--filter", &filter]);
        if !containers.is_empty() {
            let _ = Command::new("docker")
                .args(["rm", "-f"])
                .args(&containers)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        for n in ids(&["network", "ls", "-q", "--filter", &filter]) {
            let _ = Command::new("docker")
                .args(["network", "rm", &n])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let volumes = ids(&["volume", "ls", "-q", "--filter", &filter]);
        if !volumes.is_empty() {
            let _ = Command::new("docker")
                .args(["volume", "rm", "-f"])
                .args(&volumes)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let images = ids(&[
            "images",
            "-q",
            "--filter",
            &format!("label=deployer.test-project={}", self.name),
        ]);
        if !images.is_empty() {
            let _ = Command::new("docker")
                .args(["rmi", "-f"])
                .args(&images)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        // Registry-tagged copies of this project's images.
        let tagged = ids(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
        let mine: Vec<&String> = tagged.iter().filter(|t| t.contains(&self.name)).collect();
        if !mine.is_empty() {
            let _ = Command::new("docker")
                .args(["rmi", "-f"])
                .args(mine)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Debian's `docker-registry` on 127.0.0.1 on a free port, with storage in a temp dir. A
/// registry guarded by basic auth or TLS gets a plain sibling on the same storage, `push_addr`,
/// so tests push without credentials or certificates.
pub struct Registry {
    pub addr: String,
    pub push_addr: String,
    children: Vec<Child>,
    dir: tempfile::TempDir,
}

/// How a registry guards itself: an htpasswd file's text, a PEM certificate and key.
#[derive(Default)]
pub struct Guard {
    pub htpasswd: Option<String>,
    pub tls: Option<(String, String)>,
}

impl Registry {
    pub async fn start() -> Registry {
        Registry::start_guarded(Guard::default()).await
    }

    pub async fn start_guarded(guard: Guard) -> Registry {
        let bin = Path::new("/usr/bin/docker-registry");
        assert!(
            bin.exists(),
            "docker-registry is not installed; run `apt-get install -y docker-registry` (ci/test.sh does)"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let guarded = guard.htpasswd.is_some() || guard.tls.is_some();
        let mut registry = Registry {
            addr: String::new(),
            push_addr: String::new(),
            children: Vec::new(),
            dir,
        };
        registry.push_addr = registry.serve("plain", &Guard::default());
        registry.wait_for_http(&registry.push_addr.clone()).await;
        registry.addr = if guarded {
            let addr = registry.serve("guarded", &guard);
            wait_for_listener(&addr).await;
            addr
        } else {
            registry.push_addr.clone()
        };
        registry
    }

    /// Starts one `docker-registry serve` on the shared storage; returns its address.
    fn serve(&mut self, name: &str, guard: &Guard) -> String {
        let addr = format!("127.0.0.1:{}", free_port());
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            self.dir.path().join("data").display()
        );
        if let Some((cert, key)) = &guard.tls {
            let cert_path = self.dir.path().join(format!("{name}.crt"));
            let key_path = self.dir.path().join(format!("{name}.key"));
            std::fs::write(&cert_path, cert).expect("write certificate");
            std::fs::write(&key_path, key).expect("write key");
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert_path.display(),
                key_path.display()
            ));
        }
        if let Some(htpasswd) = &guard.htpasswd {
            let path = self.dir.path().join(format!("{name}.htpasswd"));
            std::fs::write(&path, htpasswd).expect("write htpasswd");
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: deployer-test\n    path: {}\n",
                path.display()
            ));
        }
        let config_path = self.dir.path().join(format!("{name}.yml"));
        std::fs::write(&config_path, config).expect("write registry config");
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting docker-registry");
        self.children.push(child);
        addr
    }

    async fn wait_for_http(&self, addr: &str) {
        let started = Instant::now();
        loop {
            if let Ok(r) = reqwest::get(format!("http://{addr}/v2/")).await {
                if r.status().is_success() {
                    break;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "docker-registry did not answer on {addr}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Uploads a one-layer OCI image whose config names `variant` as `<repo>:<tag>` through the
    /// registry HTTP API (no Docker needed); returns its manifest digest, as computed here.
    pub async fn upload(&self, repo: &str, tag: &str, variant: &str) -> String {
        use sha2::Digest as _;
        let sha = |b: &[u8]| format!("sha256:{}", hex::encode(sha2::Sha256::digest(b)));
        let http = reqwest::Client::new();
        let base = format!("http://{}/v2/{repo}", self.push_addr);
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","config":{{"Labels":{{"variant":"{variant}"}}}},"rootfs":{{"type":"layers","diff_ids":["sha256:{}"]}}}}"#,
            "0".repeat(64)
        );
        let layer = format!("layer of {variant}");
        for blob in [config.as_bytes(), layer.as_bytes()] {
            let started = http
                .post(format!("{base}/blobs/uploads/"))
                .send()
                .await
                .expect("start a blob upload");
            assert_eq!(started.status().as_u16(), 202, "start a blob upload");
            let location = started.headers()["location"]
                .to_str()
                .expect("location")
                .to_string();
            let location = if location.starts_with('/') {
                format!("http://{}{location}", self.push_addr)
            } else {
                location
            };
            let sep = if location.contains('?') { '&' } else { '?' };
            let done = http
                .put(format!("{location}{sep}digest={}", sha(blob)))
                .header("content-type", "application/octet-stream")
                .body(blob.to_vec())
                .send()
                .await
                .expect("finish a blob upload");
            assert_eq!(done.status().as_u16(), 201, "finish a blob upload");
        }
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":{}}}]}}"#,
            sha(config.as_bytes()),
            config.len(),
            sha(layer.as_bytes()),
            layer.len()
        );
        let resp = http
            .put(format!("{base}/manifests/{tag}"))
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(manifest.clone())
            .send()
            .await
            .expect("put the manifest");
        let status = resp.status().as_u16();
        assert_eq!(
            status,
            201,
            "put the manifest: {}",
            resp.text().await.unwrap_or_default()
        );
        sha(manifest.as_bytes())
    }

    /// Tags `local` as `<addr>/<repo>` and pushes it; returns the pushed reference.
    pub fn push(&self, local: &str, repo: &str) -> String {
        let remote = format!("{}/{repo}", self.push_addr);
        run(Command::new("docker").args(["tag", local, &remote]));
        run(Command::new("docker").args(["push", &remote]));
        remote
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits until something accepts TCP connections on `addr` (a registry speaking TLS or asking
/// for credentials, which a plain `GET /v2/` cannot judge).
async fn wait_for_listener(addr: &str) {
    let started = Instant::now();
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "docker-registry did not listen on {addr}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// `GET http://<container ip>:8090<path>` of a container: (status, body).
pub async fn get(engine: &Engine, container: &str, path: &str) -> Result<(u16, String), String> {
    let d = engine
        .inspect_container(container)
        .await
        .map_err(|e| e.to_string())?;
    let ip = d.ips.values().next().ok_or("container has no IP")?;
    let resp = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| e.to_string())?
        .get(format!("http://{ip}:8090{path}"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    Ok((status, resp.text().await.unwrap_or_default()))
}

/// The project's service containers: (service, id, name), sorted.
pub async fn containers(engine: &Engine, project: &str) -> Vec<(String, String, String)> {
    let mut v: Vec<_> = engine
        .list_containers(&[
            ("deployer.project", Some(project)),
            ("deployer.service", None),
        ])
        .await
        .expect("list containers")
        .into_iter()
        .map(|c| {
            (
                c.labels
                    .get("deployer.service")
                    .cloned()
                    .unwrap_or_default(),
                c.id,
                c.name,
            )
        })
        .collect();
    v.sort();
    v
}

/// The deployer binary.
pub fn deployer_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_deployer"))
}

/// A manifest service block for the canary with a fast health check and no drain (the tests
/// that measure draining set their own).
pub fn canary_service(name: &str, image: &str, extra: &str) -> String {
    format!(
        "  {name}:\n    image: {image}\n    health:\n      path: /health\n      port: 8090\n      interval: 100ms\n      timeout: 1s\n      retries: 10\n    stop_grace_period: 2s\n    drain: 0s\n{extra}"
    )
}

/// Path of a statically linked deployer (for the in-network probe container), built once per
/// test process with `ci/build-static.sh deployer`.
pub fn deployer_static_binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = workspace();
            let status = Command::new(root.join("ci/build-static.sh"))
                .arg("deployer")
                .current_dir(&root)
                .status()
                .expect("running ci/build-static.sh");
            assert!(status.success(), "ci/build-static.sh deployer failed");
            let bin = root.join("target/x86_64-unknown-linux-gnu/release/deployer");
            assert!(bin.exists(), "{} missing after the build", bin.display());
            bin
        })
        .clone()
}

/// `canary poll` running as a container on a project network, polling `url` every `every_ms`;
/// removed on drop.
pub struct Poller {
    pub name: String,
}

/// What a [`Poller`] counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollCount {
    pub ok: u64,
    pub failed: u64,
    /// Answered, but after more than a second.
    pub slow: u64,
    pub failures: Vec<String>,
}

impl Poller {
    /// Starts the poller from the canary image `image` on `network`, labelled for `project`'s
    /// cleanup.
    pub fn start(project: &str, image: &str, network: &str, url: &str, every_ms: u64) -> Poller {
        let name = format!("{project}-poller-{}", free_port());
        run(Command::new("docker")
            .args(["run", "-d", "--name", &name, "--network", network])
            .args(["--label", &format!("deployer.project={project}")])
            .args([image, "poll", url, "--every", &every_ms.to_string()]));
        Poller { name }
    }

    /// Stops the poller (SIGTERM) and reads its counts.
    pub fn finish(&self) -> PollCount {
        run(Command::new("docker").args(["stop", "-t", "10", &self.name]));
        let out = run(Command::new("docker").args(["logs", &self.name]));
        let line = out.lines().last().unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("the poller printed {out:?}, not its JSON report: {e}"));
        PollCount {
            ok: v["ok"].as_u64().expect("ok count"),
            failed: v["failed"].as_u64().expect("failed count"),
            slow: v["slow"].as_u64().unwrap_or(0),
            failures: v["failures"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|f| f.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The tag the deployer's tests build the fleet's images under: `fleet/<service>:tool-events`.
pub const FLEET_TAG: &str = "tool-events";

/// The fleet's image of `service` (`fleet/<service>:tool-events`), built once per test process
/// for every service with `ci/build-images.sh` (which builds the static release binaries
/// first).
pub fn fleet_image(service: &str) -> String {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = workspace();
        run(Command::new(root.join("ci/build-images.sh"))
            .args(["--tag", FLEET_TAG])
            .current_dir(&root));
    });
    format!("fleet/{service}:{FLEET_TAG}")
}

/// Builds `tag` as `FROM base` plus `lines` (Dockerfile instructions), labelled for `project`'s
/// cleanup. Nothing is pulled: the base is a local image. The label comes first, as in
/// [`build_canary`], so no other project's cleanup can delete a cached layer this build uses.
pub fn derive_image(base: &str, lines: &[&str], tag: &str, project: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let dockerfile = format!(
        "FROM {base}\nLABEL deployer.test-project={project}\n{}\n",
        lines.join("\n")
    );
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).expect("write Dockerfile");
    run(Command::new("docker")
        .args(["build", "-q", "-t", tag])
        .arg(dir.path())
        .env("DOCKER_BUILDKIT", "0"));
}
