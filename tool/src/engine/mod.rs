//! The engine adapter: the only module that talks to the Docker Engine (through bollard).
//!
//! It offers the handful of operations the deployer needs, in the deployer's own plain types,
//! so nothing outside `engine` depends on bollard. Every call names what it was doing when it
//! fails, and connection failures become one clear [`EngineError::Unreachable`].

mod archive;
mod connect;
mod convert;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::models::{ContainerCreateBody, NetworkCreateRequest, VolumeCreateRequest};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, ListContainersOptionsBuilder,
    ListNetworksOptionsBuilder, ListVolumesOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder, StopContainerOptionsBuilder,
};
use bollard::Docker;
use futures::StreamExt;

pub use connect::{ConnectOptions, HostSource, TlsFiles, DEFAULT_HOST};
pub use convert::create_body;

/// Seconds bollard waits for one engine request before giving up.
const REQUEST_TIMEOUT_SECS: u64 = 120;
/// How long the first contact (version negotiation) may take before the engine counts as
/// unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A failed engine operation.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot reach the Docker Engine at {host}: {detail}; start the daemon or point DOCKER_HOST at it")]
    Unreachable { host: String, detail: String },
    #[error("bad Docker connection settings: {0}")]
    Config(String),
    #[error("{action}: {what} already exists")]
    Conflict { action: String, what: String },
    #[error("{action}: not found ({detail})")]
    NotFound { action: String, detail: String },
    #[error("{action}: {detail}")]
    Api { action: String, detail: String },
}

impl EngineError {
    /// True for a 404 from the engine.
    pub fn is_not_found(&self) -> bool {
        matches!(self, EngineError::NotFound { .. })
    }
    /// True for a 409 (a name already taken, for instance).
    pub fn is_conflict(&self) -> bool {
        matches!(self, EngineError::Conflict { .. })
    }
}

/// Lifecycle state of a container, as the engine reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited { code: i64 },
    Dead,
    Unknown,
}

/// Docker's own health status (from the image's or container's HEALTHCHECK).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DockerHealth {
    /// No HEALTHCHECK defined.
    None,
    Starting,
    Healthy,
    Unhealthy,
}

/// One container from a label-filtered list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    pub id: String,
    /// Name without the leading `/`.
    pub name: String,
    pub image: String,
    pub image_id: String,
    pub labels: BTreeMap<String, String>,
    pub state: RunState,
    pub health: DockerHealth,
    /// Creation time, seconds since the Unix epoch.
    pub created: i64,
    /// Human status line (`Up 3 minutes (healthy)`).
    pub status: String,
    /// Ports published on the host, as the engine reports them in the list.
    pub ports: Vec<PublishedPort>,
}

/// One published port of a container.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct PublishedPort {
    /// Host address the port is bound to (`0.0.0.0`, `::`, `127.0.0.1`, ...).
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
}

/// Details of one container, from an inspect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerDetails {
    pub id: String,
    pub name: String,
    pub state: RunState,
    pub health: DockerHealth,
    /// IP address per network name.
    pub ips: BTreeMap<String, String>,
    /// DNS aliases per network the container is attached to (also when it is stopped).
    pub networks: BTreeMap<String, Vec<String>>,
    /// The user it runs as (`Config.User`; empty for the image's default, root).
    pub user: String,
    /// Published ports: `(container_port, host_port)` for TCP.
    pub published: Vec<(u16, u16)>,
    pub labels: BTreeMap<String, String>,
    /// RFC 3339 start time (empty if never started).
    pub started_at: String,
    /// How often the engine restarted it (restart policy).
    pub restart_count: i64,
}

/// A network or volume found by labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// Engine id (networks); the name again for volumes, which have none.
    pub id: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

/// A local image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// `sha256:...` image id.
    pub id: String,
    /// `repo@sha256:...` digests the image is known under in registries.
    pub repo_digests: Vec<String>,
    /// Whether the image defines a HEALTHCHECK.
    pub has_healthcheck: bool,
    pub labels: BTreeMap<String, String>,
}

/// Registry credentials to pass along with a pull.
#[derive(Clone, PartialEq, Eq)]
pub struct PullAuth {
    pub username: String,
    pub password: String,
    pub server: String,
}

impl std::fmt::Debug for PullAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PullAuth({}@{}, (sensitive))",
            self.username, self.server
        )
    }
}

/// One progress message of a pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullEvent {
    /// Layer id, when the message is about one layer.
    pub layer: Option<String>,
    pub status: String,
    pub current: Option<u64>,
    pub total: Option<u64>,
}

/// How a command run with [`Engine::exec`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutcome {
    /// `None` when it did not finish in time.
    pub exit_code: Option<i64>,
    /// Its stdout and stderr, interleaved.
    pub output: String,
    pub timed_out: bool,
}

/// A connected engine.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
    options: ConnectOptions,
}

impl Engine {
    /// Connects as the docker CLI would, negotiating the API version (the daemon may be older
    /// than bollard). Fails with [`EngineError::Unreachable`] when nothing answers.
    pub async fn connect(options: ConnectOptions) -> Result<Engine, EngineError> {
        install_crypto_provider();
        let unreachable = |detail: String| EngineError::Unreachable {
            host: options.host.clone(),
            detail,
        };
        let docker = match (&options.tls, options.host.strip_prefix("unix://")) {
            (_, Some(_)) => Docker::connect_with_unix(
                &options.host,
                REQUEST_TIMEOUT_SECS,
                bollard::API_DEFAULT_VERSION,
            ),
            (Some(tls), None) => {
                for file in [&tls.ca, &tls.cert, &tls.key] {
                    if !file.exists() {
                        return Err(EngineError::Config(format!(
                            "DOCKER_TLS_VERIFY is set but {} does not exist; set DOCKER_CERT_PATH to the directory holding ca.pem, cert.pem and key.pem",
                            file.display()
                        )));
                    }
                }
                Docker::connect_with_ssl(
                    &options.host,
                    &tls.key,
                    &tls.cert,
                    &tls.ca,
                    REQUEST_TIMEOUT_SECS,
                    bollard::API_DEFAULT_VERSION,
                )
            }
            (None, None) => Docker::connect_with_http(
                &options.host,
                REQUEST_TIMEOUT_SECS,
                bollard::API_DEFAULT_VERSION,
            ),
        }
        .map_err(|e| EngineError::Config(format!("connecting to {}: {e}", options.host)))?;
        let docker = tokio::time::timeout(CONNECT_TIMEOUT, docker.negotiate_version())
            .await
            .map_err(|_| unreachable(format!("no answer within {CONNECT_TIMEOUT:?}")))?
            .map_err(|e| unreachable(short_error(&e)))?;
        Ok(Engine { docker, options })
    }

    /// Connects using the process environment (`DOCKER_HOST`, ...).
    pub async fn from_env() -> Result<Engine, EngineError> {
        let env = |k: &str| std::env::var(k).ok();
        Engine::connect(ConnectOptions::from_env(&env)?).await
    }

    /// How this engine was reached.
    pub fn options(&self) -> &ConnectOptions {
        &self.options
    }

    /// Every container (running or not) carrying all of `labels` (`key=value`, or `key` alone
    /// when the value is `None`), in one list call.
    pub async fn list_containers(
        &self,
        labels: &[(&str, Option<&str>)],
    ) -> Result<Vec<ContainerInfo>, EngineError> {
        let filters = label_filters(labels);
        let opts = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let list = self
            .docker
            .list_containers(Some(opts))
            .await
            .map_err(|e| self.error("listing containers", e))?;
        Ok(list.into_iter().map(container_info).collect())
    }

    /// Inspects one container.
    pub async fn inspect_container(&self, id: &str) -> Result<ContainerDetails, EngineError> {
        let c = self
            .docker
            .inspect_container(id, None)
            .await
            .map_err(|e| self.error(&format!("inspecting container {id}"), e))?;
        let state = c.state.unwrap_or_default();
        let run_state = match state.status.map(|s| s.to_string()).as_deref() {
            Some("created") => RunState::Created,
            Some("running") => RunState::Running,
            Some("paused") => RunState::Paused,
            Some("restarting") => RunState::Restarting,
            Some("removing") => RunState::Removing,
            Some("exited") => RunState::Exited {
                code: state.exit_code.unwrap_or(0),
            },
            Some("dead") => RunState::Dead,
            _ => RunState::Unknown,
        };
        let health = match state
            .health
            .and_then(|h| h.status)
            .map(|s| s.to_string())
            .as_deref()
        {
            Some("starting") => DockerHealth::Starting,
            Some("healthy") => DockerHealth::Healthy,
            Some("unhealthy") => DockerHealth::Unhealthy,
            _ => DockerHealth::None,
        };
        let net = c.network_settings.unwrap_or_default();
        let endpoints = net.networks.unwrap_or_default();
        let networks = endpoints
            .iter()
            .map(|(name, ep)| (name.clone(), ep.aliases.clone().unwrap_or_default()))
            .collect();
        let ips = endpoints
            .into_iter()
            .filter_map(|(name, ep)| {
                ep.ip_address
                    .filter(|ip| !ip.is_empty())
                    .map(|ip| (name, ip))
            })
            .collect();
        let mut published = Vec::new();
        for (key, bindings) in net.ports.unwrap_or_default() {
            let Some(port) = key.strip_suffix("/tcp").and_then(|p| p.parse::<u16>().ok()) else {
                continue;
            };
            for b in bindings.unwrap_or_default() {
                if let Some(hp) = b.host_port.and_then(|p| p.parse::<u16>().ok()) {
                    published.push((port, hp));
                }
            }
        }
        published.sort_unstable();
        published.dedup();
        Ok(ContainerDetails {
            id: c.id.unwrap_or_default(),
            name: c
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            state: run_state,
            health,
            ips,
            networks,
            published,
            user: c
                .config
                .as_ref()
                .and_then(|cfg| cfg.user.clone())
                .unwrap_or_default(),
            labels: c
                .config
                .and_then(|cfg| cfg.labels)
                .unwrap_or_default()
                .into_iter()
                .collect(),
            started_at: state.started_at.unwrap_or_default(),
            restart_count: c.restart_count.unwrap_or(0),
        })
    }

    /// Creates (does not start) a container from a ready-made body; returns its id.
    pub async fn create_container(
        &self,
        name: &str,
        body: ContainerCreateBody,
    ) -> Result<String, EngineError> {
        let opts = CreateContainerOptionsBuilder::default().name(name).build();
        let created = self
            .docker
            .create_container(Some(opts), body)
            .await
            .map_err(|e| self.error(&format!("creating container {name}"), e))?;
        Ok(created.id)
    }

    /// Creates (does not start) a container from a raw create body in the engine API's JSON
    /// form (for one-off containers such as the smoke test's).
    pub async fn create_container_json(
        &self,
        name: &str,
        body: serde_json::Value,
    ) -> Result<String, EngineError> {
        let body: ContainerCreateBody =
            serde_json::from_value(body).map_err(|e| EngineError::Api {
                action: format!("preparing container {name}"),
                detail: e.to_string(),
            })?;
        self.create_container(name, body).await
    }

    /// Creates (does not start) the container `spec` describes, named
    /// `spec.container_name(suffix)`, joins it to every network of the spec (with the service's
    /// DNS alias only when `aliases`; see [`Engine::set_aliases`]) and uploads its secret files.
    /// Returns the id. A container that could not be completed is removed.
    pub async fn create_from_spec(
        &self,
        spec: &crate::spec::ContainerSpec,
        image: &str,
        image_digest: &str,
        suffix: &str,
        aliases: bool,
    ) -> Result<String, EngineError> {
        let body = create_body(spec, image, image_digest, aliases)?;
        let name = spec.container_name(suffix);
        let id = self.create_container(&name, body).await?;
        let completed = async {
            for extra in spec.networks.iter().skip(1) {
                let req = bollard::models::NetworkConnectRequest {
                    container: id.clone(),
                    endpoint_config: Some(bollard::models::EndpointSettings {
                        aliases: aliases.then(|| extra.aliases.clone()),
                        ..Default::default()
                    }),
                };
                self.docker
                    .connect_network(&extra.network, req)
                    .await
                    .map_err(|e| {
                        self.error(&format!("joining {name} to network {}", extra.network), e)
                    })?;
            }
            if !spec.secret_files.is_empty() {
                self.put_secret_files(&id, &name, spec).await?;
            }
            Ok::<(), EngineError>(())
        };
        if let Err(e) = completed.await {
            let _ = self.remove_container(&id).await;
            return Err(e);
        }
        Ok(id)
    }

    /// Gives container `id` exactly `aliases` on `network`, by leaving the network and joining
    /// it again (the engine cannot change the aliases of an attachment). Its address on that
    /// network changes, and its open connections there are cut.
    pub async fn set_aliases(
        &self,
        id: &str,
        network: &str,
        aliases: &[String],
    ) -> Result<(), EngineError> {
        let action = format!("changing the aliases of {id} on network {network}");
        let leave = bollard::models::NetworkDisconnectRequest {
            container: id.to_string(),
            force: Some(true),
        };
        match self.docker.disconnect_network(network, leave).await {
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(bollard::errors::Error::DockerResponseServerError { message, .. })
                if message.contains("is not connected") => {}
            Err(e) => return Err(self.error(&action, e)),
        }
        let join = bollard::models::NetworkConnectRequest {
            container: id.to_string(),
            endpoint_config: Some(bollard::models::EndpointSettings {
                aliases: (!aliases.is_empty()).then(|| aliases.to_vec()),
                ..Default::default()
            }),
        };
        self.docker
            .connect_network(network, join)
            .await
            .map_err(|e| self.error(&action, e))
    }

    /// Uploads the secret files of `spec` into the created container `id`: mode 0400, owned
    /// by the user the container runs as. Errors name the secret, never its value.
    async fn put_secret_files(
        &self,
        id: &str,
        name: &str,
        spec: &crate::spec::ContainerSpec,
    ) -> Result<(), EngineError> {
        let files = spec.secret_file_contents().map_err(|secret| EngineError::Config(format!(
            "the value of secret {secret} of service {} is missing; apply the plan with the same manifests it was made from",
            spec.service
        )))?;
        let user = self.inspect_container(id).await?.user;
        let (uid, gid) = self.resolve_user(id, &user).await.map_err(|why| {
            EngineError::Config(format!(
                "delivering the secret files of service {}: {why}",
                spec.service
            ))
        })?;
        let entries: Vec<archive::TarFile<'_>> = files
            .iter()
            .map(|&(path, value)| archive::TarFile {
                path,
                data: value.as_bytes(),
                mode: 0o400,
                uid,
                gid,
            })
            .collect();
        let tar = archive::tar(&entries).map_err(EngineError::Config)?;
        let opts = bollard::query_parameters::UploadToContainerOptionsBuilder::default()
            .path("/")
            .build();
        self.docker
            .upload_to_container(id, Some(opts), bollard::body_full(bytes::Bytes::from(tar)))
            .await
            .map_err(|e| self.error(&format!("putting the secret files into {name}"), e))
    }

    /// The numeric uid and gid of `user` (`NAME`, `UID`, `NAME:GROUP`, `UID:GID`, empty for
    /// root) in the created container `id`, looking names up in its `/etc/passwd` and
    /// `/etc/group`.
    async fn resolve_user(&self, id: &str, user: &str) -> Result<(u32, u32), String> {
        if user.is_empty() {
            return Ok((0, 0));
        }
        let (u, g) = match user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (user, None),
        };
        let passwd = self.read_file(id, "/etc/passwd").await;
        let entry = |name_or_id: &str| {
            passwd.as_deref().and_then(|text| {
                text.lines()
                    .map(|l| l.split(':').collect::<Vec<_>>())
                    .find(|f| f.len() > 3 && (f[0] == name_or_id || f[2] == name_or_id))
                    .and_then(|f| Some((f[2].parse::<u32>().ok()?, f[3].parse::<u32>().ok()?)))
            })
        };
        let (uid, primary_gid) = match (u.parse::<u32>(), entry(u)) {
            (_, Some(found)) => found,
            (Ok(uid), None) => (uid, 0),
            (Err(_), None) => {
                return Err(format!(
                    "user `{u}` is not in the image's /etc/passwd; give `user` as UID:GID"
                ))
            }
        };
        let gid = match g {
            None => primary_gid,
            Some(g) => match g.parse::<u32>() {
                Ok(gid) => gid,
                Err(_) => {
                    let groups = self.read_file(id, "/etc/group").await;
                    groups
                        .as_deref()
                        .and_then(|text| {
                            text.lines()
                                .map(|l| l.split(':').collect::<Vec<_>>())
                                .find(|f| f.len() > 2 && f[0] == g)
                                .and_then(|f| f[2].parse().ok())
                        })
                        .ok_or_else(|| {
                            format!(
                                "group `{g}` is not in the image's /etc/group; give `user` as UID:GID"
                            )
                        })?
                }
            },
        };
        Ok((uid, gid))
    }

    /// A text file of container `id` (created or running), through the archive API; `None`
    /// when it is missing or unreadable.
    async fn read_file(&self, id: &str, path: &str) -> Option<String> {
        let opts = bollard::query_parameters::DownloadFromContainerOptionsBuilder::default()
            .path(path)
            .build();
        let mut stream = self.docker.download_from_container(id, Some(opts));
        let mut archive = Vec::new();
        while let Some(chunk) = stream.next().await {
            archive.extend_from_slice(&chunk.ok()?);
            if archive.len() > 4 << 20 {
                return None;
            }
        }
        archive::first_file(&archive).and_then(|b| String::from_utf8(b).ok())
    }

    /// Starts a created container.
    pub async fn start_container(&self, id: &str) -> Result<(), EngineError> {
        self.docker
            .start_container(id, None)
            .await
            .map_err(|e| self.error(&format!("starting container {id}"), e))
    }

    /// Stops gracefully: SIGTERM (or the image's stop signal), then SIGKILL after `grace`
    /// (`None`: the container's own stop timeout). A container already stopped or gone is fine.
    pub async fn stop_container(
        &self,
        id: &str,
        grace: Option<Duration>,
    ) -> Result<(), EngineError> {
        let opts = grace.map(|g| {
            let secs = i32::try_from(g.as_secs()).unwrap_or(i32::MAX);
            StopContainerOptionsBuilder::default().t(secs).build()
        });
        match self.docker.stop_container(id, opts).await {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304 | 404,
                ..
            }) => Ok(()),
            Err(e) => Err(self.error(&format!("stopping container {id}"), e)),
        }
    }

    /// Removes a container (forcibly, so a running one is killed). A missing one is fine.
    pub async fn remove_container(&self, id: &str) -> Result<(), EngineError> {
        let opts = RemoveContainerOptionsBuilder::default().force(true).build();
        match self.docker.remove_container(id, Some(opts)).await {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(self.error(&format!("removing container {id}"), e)),
        }
    }

    /// The last `lines` lines of a container's stdout and stderr.
    pub async fn logs_tail(&self, id: &str, lines: usize) -> Result<String, EngineError> {
        let opts = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail(&lines.to_string())
            .build();
        let mut stream = self.docker.logs(id, Some(opts));
        let mut out = String::new();
        while let Some(item) = stream.next().await {
            let chunk = item.map_err(|e| self.error(&format!("reading logs of {id}"), e))?;
            out.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
        Ok(out)
    }

    /// Networks carrying all of `labels`.
    pub async fn list_networks(
        &self,
        labels: &[(&str, Option<&str>)],
    ) -> Result<Vec<Resource>, EngineError> {
        let filters = label_filters(labels);
        let opts = ListNetworksOptionsBuilder::default()
            .filters(&filters)
            .build();
        let list = self
            .docker
            .list_networks(Some(opts))
            .await
            .map_err(|e| self.error("listing networks", e))?;
        Ok(list
            .into_iter()
            .map(|n| Resource {
                id: n.id.unwrap_or_default(),
                name: n.name.unwrap_or_default(),
                labels: n.labels.unwrap_or_default().into_iter().collect(),
            })
            .collect())
    }

    /// Creates a bridge network.
    pub async fn create_network(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        let req = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".to_string()),
            labels: Some(labels.clone().into_iter().collect()),
            ..Default::default()
        };
        self.docker
            .create_network(req)
            .await
            .map(|_| ())
            .map_err(|e| self.error(&format!("creating network {name}"), e))
    }

    /// Removes a network; a missing one is fine.
    pub async fn remove_network(&self, name: &str) -> Result<(), EngineError> {
        match self.docker.remove_network(name).await {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(self.error(&format!("removing network {name}"), e)),
        }
    }

    /// Volumes carrying all of `labels`.
    pub async fn list_volumes(
        &self,
        labels: &[(&str, Option<&str>)],
    ) -> Result<Vec<Resource>, EngineError> {
        let filters = label_filters(labels);
        let opts = ListVolumesOptionsBuilder::default()
            .filters(&filters)
            .build();
        let list = self
            .docker
            .list_volumes(Some(opts))
            .await
            .map_err(|e| self.error("listing volumes", e))?;
        Ok(list
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| Resource {
                id: v.name.clone(),
                name: v.name,
                labels: v.labels.into_iter().collect(),
            })
            .collect())
    }

    /// Creates a named volume (idempotent on the engine's side).
    pub async fn create_volume(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        let req = VolumeCreateRequest {
            name: Some(name.to_string()),
            labels: Some(labels.clone().into_iter().collect()),
            ..Default::default()
        };
        self.docker
            .create_volume(req)
            .await
            .map(|_| ())
            .map_err(|e| self.error(&format!("creating volume {name}"), e))
    }

    /// Removes a volume; a missing one is fine.
    pub async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        let opts = RemoveVolumeOptionsBuilder::default().force(true).build();
        match self.docker.remove_volume(name, Some(opts)).await {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(self.error(&format!("removing volume {name}"), e)),
        }
    }

    /// A local image, or `None` when the engine does not have it.
    pub async fn image(&self, reference: &str) -> Result<Option<ImageInfo>, EngineError> {
        match self.docker.inspect_image(reference).await {
            Ok(img) => {
                let config = img.config.unwrap_or_default();
                let has_healthcheck = config
                    .healthcheck
                    .and_then(|h| h.test)
                    .is_some_and(|t| t.first().is_some_and(|k| k != "NONE"));
                Ok(Some(ImageInfo {
                    id: img.id.unwrap_or_default(),
                    repo_digests: img.repo_digests.unwrap_or_default(),
                    has_healthcheck,
                    labels: config.labels.unwrap_or_default().into_iter().collect(),
                }))
            }
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(self.error(&format!("inspecting image {reference}"), e)),
        }
    }

    /// Pulls `reference` (`repo:tag` or `repo@digest`), reporting progress to `on_event`.
    pub async fn pull(
        &self,
        reference: &str,
        auth: Option<&PullAuth>,
        on_event: &mut (dyn FnMut(PullEvent) + Send),
    ) -> Result<(), EngineError> {
        let opts = CreateImageOptionsBuilder::default()
            .from_image(reference)
            .build();
        let creds = auth.map(|a| bollard::auth::DockerCredentials {
            username: Some(a.username.clone()),
            password: Some(a.password.clone()),
            serveraddress: Some(a.server.clone()),
            ..Default::default()
        });
        let mut stream = self.docker.create_image(Some(opts), None, creds);
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| self.error(&format!("pulling image {reference}"), e))?;
            let detail = info.progress_detail.unwrap_or_default();
            on_event(PullEvent {
                layer: info.id,
                status: info.status.unwrap_or_default(),
                current: detail.current.and_then(|c| u64::try_from(c).ok()),
                total: detail.total.and_then(|c| u64::try_from(c).ok()),
            });
        }
        Ok(())
    }

    /// Makes sure a file-less image named `name` exists (imported from an empty archive), for
    /// containers that are never started and only carry labels, such as the deploy lock.
    pub async fn ensure_marker_image(&self, name: &str) -> Result<(), EngineError> {
        if self.image(name).await?.is_some() {
            return Ok(());
        }
        let (repo, tag) = name.rsplit_once(':').unwrap_or((name, "latest"));
        let opts = CreateImageOptionsBuilder::default()
            .from_src("-")
            .repo(repo)
            .tag(tag)
            .changes(vec![
                "CMD [\"/marker\"]".to_string(),
                "LABEL io.deployer.marker=true".to_string(),
            ])
            .build();
        // An empty tar archive is two 512-byte zero blocks.
        let body = bollard::body_full(bytes::Bytes::from(vec![0u8; 1024]));
        let mut stream = self.docker.create_image(Some(opts), Some(body), None);
        while let Some(item) = stream.next().await {
            item.map_err(|e| self.error(&format!("importing marker image {name}"), e))?;
        }
        Ok(())
    }

    /// Creates a never-started container from the marker image, carrying `labels`. Creation
    /// is atomic: when the name is taken the result is [`EngineError::Conflict`].
    pub async fn create_marker(
        &self,
        image: &str,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<String, EngineError> {
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            labels: Some(labels.clone().into_iter().collect::<HashMap<_, _>>()),
            network_disabled: Some(true),
            ..Default::default()
        };
        self.create_from_marker(image, name, body).await
    }

    /// Creates a never-started container from the marker image with the volume `volume` mounted
    /// at `target`, so files in the volume can be read and written through the archive API
    /// ([`Engine::upload_archive`], [`Engine::download_file`]) without running anything.
    pub async fn create_volume_helper(
        &self,
        image: &str,
        name: &str,
        labels: &BTreeMap<String, String>,
        volume: &str,
        target: &str,
    ) -> Result<String, EngineError> {
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            labels: Some(labels.clone().into_iter().collect::<HashMap<_, _>>()),
            network_disabled: Some(true),
            host_config: Some(bollard::models::HostConfig {
                mounts: Some(vec![bollard::models::Mount {
                    target: Some(target.to_string()),
                    source: Some(volume.to_string()),
                    typ: Some(bollard::models::MountType::VOLUME),
                    ..Default::default()
                }]),
                network_mode: Some("none".to_string()),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.create_from_marker(image, name, body).await
    }

    /// Creates `name` from the marker image `image`, importing the image only when the engine
    /// does not have it: it nearly always does, and trying first saves an inspect per container.
    async fn create_from_marker(
        &self,
        image: &str,
        name: &str,
        body: ContainerCreateBody,
    ) -> Result<String, EngineError> {
        match self.create_container(name, body.clone()).await {
            Err(e) if e.is_not_found() => {
                self.ensure_marker_image(image).await?;
                self.create_container(name, body).await
            }
            other => other,
        }
    }

    /// Extracts the tar `archive` into directory `dir` of container `id` (running or not).
    pub async fn upload_archive(
        &self,
        id: &str,
        dir: &str,
        archive: Vec<u8>,
    ) -> Result<(), EngineError> {
        let opts = bollard::query_parameters::UploadToContainerOptions {
            path: dir.to_string(),
            ..Default::default()
        };
        self.docker
            .upload_to_container(
                id,
                Some(opts),
                bollard::body_full(bytes::Bytes::from(archive)),
            )
            .await
            .map_err(|e| self.error(&format!("writing to {dir} in container {id}"), e))
    }

    /// The contents of the regular file `path` in container `id` (running or not), read
    /// through the archive API; `None` when it does not exist.
    pub async fn download_file(
        &self,
        id: &str,
        path: &str,
    ) -> Result<Option<Vec<u8>>, EngineError> {
        let opts = bollard::query_parameters::DownloadFromContainerOptions {
            path: path.to_string(),
        };
        let mut stream = self.docker.download_from_container(id, Some(opts));
        let mut tar = Vec::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(chunk) => tar.extend_from_slice(&chunk),
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => return Ok(None),
                Err(e) => return Err(self.error(&format!("reading {path} in container {id}"), e)),
            }
        }
        first_file_of_tar(&tar)
            .map(Some)
            .ok_or_else(|| EngineError::Api {
                action: format!("reading {path} in container {id}"),
                detail: "the engine sent no regular file".into(),
            })
    }

    /// True when the named volume exists.
    pub async fn volume_exists(&self, name: &str) -> Result<bool, EngineError> {
        match self.docker.inspect_volume(name).await {
            Ok(_) => Ok(true),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(false),
            Err(e) => Err(self.error(&format!("inspecting volume {name}"), e)),
        }
    }

    /// Imports `archive` (a tar of the image's files) as the image `name`, with Dockerfile-like
    /// `changes` (`ENTRYPOINT [...]`, `LABEL k=v`).
    pub async fn import_image(
        &self,
        name: &str,
        archive: Vec<u8>,
        changes: Vec<String>,
    ) -> Result<(), EngineError> {
        let (repo, tag) = name.rsplit_once(':').unwrap_or((name, "latest"));
        let opts = CreateImageOptionsBuilder::default()
            .from_src("-")
            .repo(repo)
            .tag(tag)
            .changes(changes)
            .build();
        let body = bollard::body_full(bytes::Bytes::from(archive));
        let mut stream = self.docker.create_image(Some(opts), Some(body), None);
        while let Some(item) = stream.next().await {
            item.map_err(|e| self.error(&format!("importing image {name}"), e))?;
        }
        Ok(())
    }

    /// Joins a container to a network (already joined is fine).
    pub async fn connect_network(&self, network: &str, id: &str) -> Result<(), EngineError> {
        let req = bollard::models::NetworkConnectRequest {
            container: id.to_string(),
            endpoint_config: None,
        };
        match self.docker.connect_network(network, req).await {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError { message, .. })
                if message.contains("already exists") =>
            {
                Ok(())
            }
            Err(e) => Err(self.error(&format!("joining {id} to network {network}"), e)),
        }
    }

    /// Runs `cmd` (exec form) in the running container `id` through the exec API and waits at
    /// most `timeout` for it. A command still running then is left to finish on its own.
    pub async fn exec(
        &self,
        id: &str,
        cmd: &[String],
        timeout: Duration,
    ) -> Result<ExecOutcome, EngineError> {
        use bollard::exec::{CreateExecOptions, StartExecResults};
        let action = format!("running `{}` in container {id}", cmd.join(" "));
        let created = self
            .docker
            .create_exec(
                id,
                CreateExecOptions {
                    cmd: Some(cmd.to_vec()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| self.error(&action, e))?;
        let run = async {
            let mut output = String::new();
            if let StartExecResults::Attached {
                output: mut out, ..
            } = self
                .docker
                .start_exec(&created.id, None)
                .await
                .map_err(|e| self.error(&action, e))?
            {
                while let Some(chunk) = out.next().await {
                    let chunk = chunk.map_err(|e| self.error(&action, e))?;
                    output.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
                }
            }
            let inspect = self
                .docker
                .inspect_exec(&created.id)
                .await
                .map_err(|e| self.error(&action, e))?;
            Ok::<_, EngineError>(ExecOutcome {
                exit_code: inspect.exit_code,
                output,
                timed_out: false,
            })
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(r) => r,
            Err(_) => Ok(ExecOutcome {
                exit_code: None,
                output: String::new(),
                timed_out: true,
            }),
        }
    }

    fn error(&self, action: &str, e: bollard::errors::Error) -> EngineError {
        use bollard::errors::Error as B;
        match e {
            B::DockerResponseServerError {
                status_code: 404,
                message,
            } => EngineError::NotFound {
                action: action.to_string(),
                detail: message,
            },
            B::DockerResponseServerError {
                status_code: 409,
                message,
            } => EngineError::Conflict {
                action: action.to_string(),
                what: message,
            },
            B::DockerResponseServerError { message, .. } => EngineError::Api {
                action: action.to_string(),
                detail: message,
            },
            B::DockerStreamError { error } => EngineError::Api {
                action: action.to_string(),
                detail: error,
            },
            B::HyperResponseError { .. } | B::IOError { .. } | B::RequestTimeoutError => {
                EngineError::Unreachable {
                    host: self.options.host.clone(),
                    detail: format!("{action}: {}", short_error(&e)),
                }
            }
            other => EngineError::Api {
                action: action.to_string(),
                detail: short_error(&other),
            },
        }
    }
}

/// Installs rustls' ring provider as the process default (once; later calls are no-ops).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn label_filters(labels: &[(&str, Option<&str>)]) -> HashMap<String, Vec<String>> {
    let values = labels
        .iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => (*k).to_string(),
        })
        .collect();
    HashMap::from([("label".to_string(), values)])
}

fn container_info(c: bollard::models::ContainerSummary) -> ContainerInfo {
    let status = c.status.unwrap_or_default();
    let mut ports: Vec<PublishedPort> = c
        .ports
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| {
            Some(PublishedPort {
                host_ip: p.ip.unwrap_or_default(),
                host_port: p.public_port?,
                container_port: p.private_port,
                protocol: p
                    .typ
                    .map(|t| t.to_string())
                    .filter(|t| !t.is_empty())
                    .unwrap_or_else(|| "tcp".into()),
            })
        })
        .collect();
    ports.sort();
    ports.dedup();
    let state = match c.state.map(|s| s.to_string()).as_deref() {
        Some("created") => RunState::Created,
        Some("running") => RunState::Running,
        Some("paused") => RunState::Paused,
        Some("restarting") => RunState::Restarting,
        Some("removing") => RunState::Removing,
        Some("exited") => RunState::Exited {
            code: exit_code_from_status(&status).unwrap_or(0),
        },
        Some("dead") => RunState::Dead,
        _ => RunState::Unknown,
    };
    ContainerInfo {
        id: c.id.unwrap_or_default(),
        name: c
            .names
            .and_then(|n| n.into_iter().next())
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
        image: c.image.unwrap_or_default(),
        image_id: c.image_id.unwrap_or_default(),
        labels: c.labels.unwrap_or_default().into_iter().collect(),
        state,
        health: health_from_status(&status),
        created: c.created.unwrap_or(0),
        status,
        ports,
    }
}

/// API 1.41 lists health only inside the status line: `Up 2 minutes (healthy)`.
fn health_from_status(status: &str) -> DockerHealth {
    if status.contains("(healthy)") {
        DockerHealth::Healthy
    } else if status.contains("(unhealthy)") {
        DockerHealth::Unhealthy
    } else if status.contains("(health: starting)") {
        DockerHealth::Starting
    } else {
        DockerHealth::None
    }
}

/// `Exited (137) 5 seconds ago` -> 137.
fn exit_code_from_status(status: &str) -> Option<i64> {
    let rest = status.strip_prefix("Exited (")?;
    rest.split(')').next()?.parse().ok()
}

/// The innermost, most telling part of a bollard error, on one line.
/// The data of the first regular file in a tar archive (PAX and GNU extension headers are
/// skipped); `None` when there is none or the archive is cut short.
pub fn first_file_of_tar(tar: &[u8]) -> Option<Vec<u8>> {
    let mut at = 0;
    while at + 512 <= tar.len() {
        let header = &tar[at..at + 512];
        if header.iter().all(|b| *b == 0) {
            return None;
        }
        let size_field = std::str::from_utf8(&header[124..136]).ok()?;
        let size = u64::from_str_radix(size_field.trim_matches(|c: char| c == '\0' || c == ' '), 8)
            .ok()?;
        let size = usize::try_from(size).ok()?;
        let data = at + 512;
        if matches!(header[156], b'0' | 0) {
            return tar.get(data..data.checked_add(size)?).map(<[u8]>::to_vec);
        }
        at = data + size.div_ceil(512) * 512;
    }
    None
}

/// A ustar archive holding one regular file `name` (readable by its owner only when `mode` says
/// so).
pub fn tar_one_file(name: &str, data: &[u8], mode: u32) -> Vec<u8> {
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    let octal = |field: &mut [u8], value: u64| {
        let text = format!("{value:0width$o}\0", width = field.len() - 1);
        field.copy_from_slice(text.as_bytes());
    };
    octal(&mut header[100..108], u64::from(mode));
    octal(&mut header[108..116], 0);
    octal(&mut header[116..124], 0);
    octal(&mut header[124..136], data.len() as u64);
    octal(&mut header[136..148], 0);
    header[156] = b'0';
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    let text = format!("{sum:06o}\0 ");
    header[148..156].copy_from_slice(text.as_bytes());
    let mut out = Vec::with_capacity(512 + data.len() + 1536);
    out.extend_from_slice(&header);
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out.extend_from_slice(&[0u8; 1024]);
    out
}

fn short_error(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg = format!("{msg}: {text}");
        }
        source = s.source();
    }
    msg.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_written_to_a_tar_reads_back_past_a_pax_header() {
        let data = b"{\"records\": []}".repeat(100);
        let plain = tar_one_file("history.json", &data, 0o600);
        assert_eq!(first_file_of_tar(&plain), Some(data.clone()));
        // The engine may put a PAX header before the file.
        let mut pax = tar_one_file("PaxHeaders/history.json", b"20 mtime=1.5\n", 0o644);
        pax[156] = b'x';
        pax.truncate(1024);
        pax.extend_from_slice(&plain);
        assert_eq!(first_file_of_tar(&pax), Some(data));
        assert_eq!(first_file_of_tar(&[0u8; 1024]), None);
        assert_eq!(first_file_of_tar(&plain[..600]), None);
    }

    #[test]
    fn status_lines() {
        assert_eq!(
            health_from_status("Up 2 minutes (healthy)"),
            DockerHealth::Healthy
        );
        assert_eq!(
            health_from_status("Up 1 second (health: starting)"),
            DockerHealth::Starting
        );
        assert_eq!(
            health_from_status("Up 9 seconds (unhealthy)"),
            DockerHealth::Unhealthy
        );
        assert_eq!(health_from_status("Up 2 minutes"), DockerHealth::None);
        assert_eq!(
            exit_code_from_status("Exited (137) 5 seconds ago"),
            Some(137)
        );
        assert_eq!(exit_code_from_status("Up 2 minutes"), None);
    }
}
