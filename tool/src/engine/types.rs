//! The deployer's own types for what the engine reports.

use std::collections::BTreeMap;

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
    /// IP address per network name (networks where it has none are left out).
    pub ips: BTreeMap<String, String>,
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
