//! A private image registry for one fleet: Debian's `docker-registry` on 127.0.0.1, storing in
//! a temporary folder. Docker treats loopback registries as insecure, so plain HTTP works
//! without any daemon configuration. Stopped (and its storage deleted) on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{docker, Error};

/// A running `docker-registry` process.
pub struct LocalRegistry {
    /// `127.0.0.1:<port>`, the registry part of image references.
    pub address: String,
    child: Child,
    _storage: tempfile::TempDir,
}

impl LocalRegistry {
    /// Starts a registry on a free port and waits until `GET /v2/` answers.
    pub async fn start() -> Result<LocalRegistry, Error> {
        let storage = tempfile::Builder::new()
            .prefix("e2e-registry-")
            .tempdir()
            .map_err(Error::io("creating the registry's storage folder"))?;
        let port = docker::free_port()?;
        let address = format!("127.0.0.1:{port}");
        let config = storage.path().join("config.yml");
        let root = storage.path().join("data");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {address}\n",
                root.display()
            ),
        )
        .map_err(Error::io("writing the registry's configuration"))?;
        let log = std::fs::File::create(storage.path().join("registry.log"))
            .map_err(Error::io("creating the registry's log"))?;
        let child = Command::new(binary())
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(Error::io(format!(
                "starting {} (install Debian's docker-registry package, or set DOCKER_REGISTRY_BIN)",
                binary().display()
            )))?;
        let registry = LocalRegistry {
            address,
            child,
            _storage: storage,
        };
        registry.wait_ready(Duration::from_secs(20)).await?;
        Ok(registry)
    }

    async fn wait_ready(&self, wait: Duration) -> Result<(), Error> {
        let http = reqwest::Client::new();
        let url = format!("http://{}/v2/", self.address);
        let deadline = Instant::now() + wait;
        loop {
            if let Ok(r) = http.get(&url).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                let log = std::fs::read_to_string(self._storage.path().join("registry.log"))
                    .unwrap_or_default();
                return Err(Error::unexpected(
                    format!("waiting for the registry at {url}"),
                    format!("no answer after {wait:?}; its log:\n{log}"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("DOCKER_REGISTRY_BIN") {
        return PathBuf::from(p);
    }
    let debian = PathBuf::from("/usr/bin/docker-registry");
    if debian.exists() {
        debian
    } else {
        PathBuf::from("docker-registry")
    }
}
