//! Domain newtypes of the checked manifest. Each has a `parse` constructor that returns a
//! `Problem` (what is wrong, how to fix it); the checker adds file, line, column and key path.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use super::image::ImageRef;
pub use super::units::{duration_ms, parse_cpus, parse_duration, parse_memory};

/// What is wrong with a value and how to fix it; the checker turns it into a `ManifestError`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub problem: String,
    pub fix: String,
}

impl Problem {
    pub fn new(problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Problem {
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Parses a name usable in container names and as a DNS label: lowercase letters,
            /// digits and `-`, starting and ending with a letter or digit.
            pub fn parse(s: &str) -> Result<Self, Problem> {
                check_dns_label(s, $what, $max).map(|()| $name(s.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

name_type!(
    /// The project name: the prefix of every container, network and volume name.
    ProjectName,
    "project name",
    40
);
name_type!(
    /// A service name: also its DNS name on the project's networks.
    ServiceName,
    "service name",
    40
);
name_type!(
    /// A network name as written in the manifest (the engine name is `<project>-<name>`).
    NetworkName,
    "network name",
    40
);
name_type!(
    /// A named volume as written in the manifest (the engine name is `<project>-<name>`).
    VolumeName,
    "volume name",
    40
);

fn check_dns_label(s: &str, what: &str, max: usize) -> Result<(), Problem> {
    let fix = "use lowercase letters, digits and `-`, starting and ending with a letter or digit";
    if s.is_empty() {
        return Err(Problem::new(format!("the {what} is empty"), fix));
    }
    if s.len() > max {
        return Err(Problem::new(
            format!("the {what} `{s}` is longer than {max} characters"),
            format!("shorten it to {max} characters or fewer"),
        ));
    }
    let ok_chars = s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let ok_ends = !s.starts_with('-') && !s.ends_with('-');
    if !ok_chars || !ok_ends {
        return Err(Problem::new(format!("`{s}` is not a valid {what}"), fix));
    }
    Ok(())
}

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// A published port: `[HOST_IP:][HOST_PORT:]CONTAINER_PORT[/udp]`. Without a host port the
/// engine picks a free one (no conflict between old and new container during a roll).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PortMapping {
    pub host_ip: Option<IpAddr>,
    pub host_port: Option<u16>,
    pub container_port: u16,
    pub protocol: Protocol,
}

impl PortMapping {
    pub fn parse(s: &str) -> Result<Self, Problem> {
        let fix = "write ports like \"8080:80\", \"127.0.0.1:8080:80\", \"80\" or \"5353:53/udp\"";
        let (body, protocol) = match s.rsplit_once('/') {
            Some((body, "tcp")) => (body, Protocol::Tcp),
            Some((body, "udp")) => (body, Protocol::Udp),
            Some((_, other)) => {
                return Err(Problem::new(
                    format!("unknown protocol `{other}` in port `{s}`"),
                    "use `/tcp` or `/udp`",
                ))
            }
            None => (s, Protocol::Tcp),
        };
        let port = |p: &str| -> Result<u16, Problem> {
            match p.parse::<u32>() {
                Ok(n) if (1..=65535).contains(&n) => Ok(n as u16),
                Ok(_) => Err(Problem::new(
                    format!("port {p} in `{s}` is out of range"),
                    "ports are between 1 and 65535",
                )),
                Err(_) => Err(Problem::new(
                    format!("`{s}` is not a valid port mapping"),
                    fix,
                )),
            }
        };
        // An IPv6 host ip is written in brackets: [::1]:8080:80.
        let (host_ip, rest) = if let Some(stripped) = body.strip_prefix('[') {
            match stripped.split_once("]:") {
                Some((ip, rest)) => (Some(ip), rest),
                None => {
                    return Err(Problem::new(
                        format!("`{s}` is not a valid port mapping"),
                        fix,
                    ))
                }
            }
        } else {
            let parts: Vec<&str> = body.split(':').collect();
            match parts.len() {
                3 => (Some(parts[0]), &body[parts[0].len() + 1..]),
                1 | 2 => (None, body),
                _ => {
                    return Err(Problem::new(
                        format!("`{s}` is not a valid port mapping"),
                        fix,
                    ))
                }
            }
        };
        let host_ip = match host_ip {
            Some(ip) => Some(IpAddr::from_str(ip).map_err(|_| {
                Problem::new(
                    format!("`{ip}` in `{s}` is not an IP address"),
                    "write the host IP like 127.0.0.1 or [::1], or leave it out",
                )
            })?),
            None => None,
        };
        let (host_port, container_port) = match rest.split_once(':') {
            Some((h, c)) => (Some(port(h)?), port(c)?),
            None => (None, port(rest)?),
        };
        Ok(PortMapping {
            host_ip,
            host_port,
            container_port,
            protocol,
        })
    }
}

impl fmt::Display for PortMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host_ip {
            Some(IpAddr::V6(ip)) => write!(f, "[{ip}]:")?,
            Some(ip) => write!(f, "{ip}:")?,
            None => {}
        }
        if let Some(h) = self.host_port {
            write!(f, "{h}:")?;
        }
        write!(f, "{}", self.container_port)?;
        if self.protocol == Protocol::Udp {
            f.write_str("/udp")?;
        }
        Ok(())
    }
}

/// A named volume mounted into a service's containers: `NAME:/path[:ro]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct VolumeMount {
    pub volume: VolumeName,
    pub target: String,
    pub read_only: bool,
}

/// The health check the deployer itself runs, of one [`HealthKind`]: `GET
/// http://<container>:<port><path>` must answer 200 (HTTP), `<container>:<port>` must accept a
/// connection (TCP), or `command` run in the container must exit 0 (command).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HealthCheck {
    /// The HTTP path; empty for the other kinds.
    pub path: String,
    /// The container port of an HTTP or TCP check; 0 for a command.
    pub port: u16,
    #[serde(with = "duration_ms")]
    pub interval: Duration,
    #[serde(with = "duration_ms")]
    pub timeout: Duration,
    #[serde(with = "duration_ms")]
    pub start_period: Duration,
    pub retries: u32,
    /// Left out of the JSON for HTTP, so labels written before other kinds existed still match.
    #[serde(default, skip_serializing_if = "HealthKind::is_http")]
    pub kind: HealthKind,
    /// The exec-form command of a command check.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
}

/// What a [`HealthCheck`] checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum HealthKind {
    #[default]
    Http,
    Tcp,
    Command,
}

impl HealthKind {
    pub fn is_http(&self) -> bool {
        *self == HealthKind::Http
    }
}

impl std::fmt::Display for HealthCheck {
    /// `GET :8080/health`, `TCP :5432`, `command /bin/check --quick`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            HealthKind::Http => write!(f, "GET :{}{}", self.port, self.path),
            HealthKind::Tcp => write!(f, "TCP :{}", self.port),
            HealthKind::Command => write!(f, "command {}", self.command.join(" ")),
        }
    }
}

impl HealthCheck {
    /// How long a new container may take to become healthy before the roll is failed:
    /// `start_period + retries × (interval + timeout)`.
    pub fn deadline(&self) -> Duration {
        self.start_period + (self.interval + self.timeout) * self.retries
    }
}

/// Roll order of a service update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateOrder {
    /// Start the new container, wait for it to be healthy, then stop the old one (default).
    #[default]
    StartFirst,
    /// Stop the old container first, then start the new one.
    StopFirst,
}

/// What an apply does when a service fails to become healthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum FailureAction {
    /// Put every service rolled by this apply back to its previous version (default).
    #[default]
    Rollback,
    /// Stop the apply and leave the services rolled so far as they are.
    Pause,
}

/// How a service is updated.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UpdatePolicy {
    pub order: UpdateOrder,
    /// How many replicas roll at once (at least 1).
    pub parallelism: u32,
    pub failure_action: FailureAction,
    /// The manifest's service-level `drain`: how long an old container stays running, out of
    /// the service's DNS alias, before it is stopped.
    #[serde(default = "default_drain", with = "duration_ms")]
    pub drain: Duration,
    /// The manifest's service-level `projection:`: how a read model whose image changes its
    /// `io.fleet.projection.version` label is rebuilt blue/green.
    #[serde(default)]
    pub projection: ProjectionPolicy,
}

/// A read model's blue/green rebuild, used when a roll changes the image label
/// `io.fleet.projection.version`: the new container rebuilds on a fresh volume beside the old
/// one, and takes over the service's DNS alias only once its lag is at most `max_lag`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProjectionPolicy {
    /// Most events the new container may still be behind the store's head at the cut-over.
    pub max_lag: u64,
    /// How long the rebuild may take before the roll fails (and the old container keeps serving).
    #[serde(with = "duration_ms")]
    pub timeout: Duration,
    /// Keep the old volume until the next successful apply (so `rollback` returns to it at
    /// once); `false` removes it when this apply succeeds.
    pub keep_old: bool,
    /// The HTTP path answering `{"version", "position", "head", "lag"}`, on the health check's
    /// port.
    pub path: String,
}

impl Default for ProjectionPolicy {
    fn default() -> Self {
        ProjectionPolicy {
            max_lag: 0,
            timeout: Duration::from_secs(600),
            keep_old: true,
            path: "/projection".into(),
        }
    }
}

/// `drain` when the manifest does not say.
pub const DEFAULT_DRAIN: Duration = Duration::from_secs(2);

fn default_drain() -> Duration {
    DEFAULT_DRAIN
}

impl Default for UpdatePolicy {
    fn default() -> Self {
        UpdatePolicy {
            order: UpdateOrder::StartFirst,
            parallelism: 1,
            failure_action: FailureAction::Rollback,
            drain: DEFAULT_DRAIN,
            projection: ProjectionPolicy::default(),
        }
    }
}

/// Signals a manifest may name in `stop_signal` (with or without the `SIG` prefix).
pub const STOP_SIGNALS: &[&str] = &[
    "SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGKILL", "SIGUSR1", "SIGUSR2", "SIGWINCH",
    "SIGPWR", "SIGABRT", "SIGALRM",
];

/// Parses `stop_signal`: a signal name (`SIGQUIT`, `QUIT`) or number (1 to 64), normalized to
/// the `SIG` name or the number as written.
pub fn parse_stop_signal(s: &str) -> Result<String, Problem> {
    let t = s.trim();
    if let Ok(n) = t.parse::<u32>() {
        if (1..=64).contains(&n) {
            return Ok(n.to_string());
        }
    }
    let upper = t.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    if STOP_SIGNALS.contains(&name.as_str()) {
        return Ok(name);
    }
    Err(Problem::new(
        format!("`{s}` is not a stop signal"),
        "use a signal name such as SIGTERM, SIGQUIT or SIGINT, or a number from 1 to 64",
    ))
}

/// Parses `user`: `NAME`, `UID`, `NAME:GROUP` or `UID:GID`, as Docker takes it.
pub fn parse_user(s: &str) -> Result<String, Problem> {
    let t = s.trim();
    let part_ok = |p: &str| {
        !p.is_empty()
            && p.len() <= 64
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    };
    let ok = match t.split_once(':') {
        Some((u, g)) => part_ok(u) && part_ok(g),
        None => part_ok(t),
    };
    if ok {
        Ok(t.to_owned())
    } else {
        Err(Problem::new(
            format!("`{s}` is not a user"),
            "write a user name or uid, optionally with `:GROUP` or `:GID`, like `app` or `1000:1000`",
        ))
    }
}

/// Checks a secret's `target`: an absolute path inside the container, without `.` or `..`
/// parts, not a directory.
pub fn parse_secret_target(s: &str) -> Result<String, Problem> {
    let t = s.trim();
    let bad = |why: &str| {
        Err(Problem::new(
            format!("`{s}` {why}"),
            "write an absolute file path such as /run/secrets/NAME",
        ))
    };
    if !t.starts_with('/') {
        return bad("is not an absolute path");
    }
    if t.ends_with('/') {
        return bad("names a directory, not a file");
    }
    if t[1..]
        .split('/')
        .any(|p| p.is_empty() || p == "." || p == "..")
    {
        return bad("has an empty, `.` or `..` part");
    }
    if t.len() > 255 {
        return bad("is longer than 255 characters");
    }
    Ok(t.to_owned())
}

/// Resource limits. `nano_cpus` is Docker's unit: 1 CPU = 1_000_000_000.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct Resources {
    pub memory_bytes: Option<u64>,
    pub nano_cpus: Option<u64>,
}

/// Docker restart policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case", tag = "policy")]
pub enum RestartPolicy {
    No,
    Always,
    /// The default: restarted by the engine unless the deployer stopped it.
    #[default]
    UnlessStopped,
    OnFailure {
        max_retries: Option<u32>,
    },
}

impl RestartPolicy {
    pub fn parse(s: &str) -> Result<Self, Problem> {
        let fix = "use one of `no`, `always`, `unless-stopped`, `on-failure` or `on-failure:N`";
        match s {
            "no" => Ok(RestartPolicy::No),
            "always" => Ok(RestartPolicy::Always),
            "unless-stopped" => Ok(RestartPolicy::UnlessStopped),
            "on-failure" => Ok(RestartPolicy::OnFailure { max_retries: None }),
            _ => match s.strip_prefix("on-failure:").map(str::parse::<u32>) {
                Some(Ok(n)) => Ok(RestartPolicy::OnFailure {
                    max_retries: Some(n),
                }),
                _ => Err(Problem::new(format!("`{s}` is not a restart policy"), fix)),
            },
        }
    }

    /// The engine's name for the policy (`no`, `always`, `unless-stopped`, `on-failure`).
    pub fn engine_name(&self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::Always => "always",
            RestartPolicy::UnlessStopped => "unless-stopped",
            RestartPolicy::OnFailure { .. } => "on-failure",
        }
    }
}

/// A secret value. `Debug` and `Display` print `(sensitive)`; so does serialization, which means
/// a saved plan or JSON output never holds the value: after loading a saved plan, call
/// `plan::Plan::restore_secrets` with the manifest to get the values back.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    value: Option<String>,
}

/// What `Secret` displays and serializes as.
pub const SENSITIVE: &str = "(sensitive)";

impl Secret {
    pub fn new(value: String) -> Self {
        Secret { value: Some(value) }
    }

    /// The value; `None` when the secret came from a saved plan and was not restored.
    pub fn expose(&self) -> Option<&str> {
        self.value.as_deref()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SENSITIVE)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SENSITIVE)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(SENSITIVE)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let _ = String::deserialize(d)?;
        Ok(Secret { value: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_port(input: &str, expected: &str) {
        let got = match PortMapping::parse(input) {
            Ok(p) => format!("{p} {:?} {:?} {}", p.host_ip, p.host_port, p.container_port),
            Err(p) => format!("error: {}; {}", p.problem, p.fix),
        };
        assert_eq!(got, expected, "input: {input}");
    }

    #[test]
    fn ports() {
        check_port("8080:80", "8080:80 None Some(8080) 80");
        check_port("80", "80 None None 80");
        check_port(
            "127.0.0.1:8080:80",
            "127.0.0.1:8080:80 Some(127.0.0.1) Some(8080) 80",
        );
        check_port("[::1]:8080:80", "[::1]:8080:80 Some(::1) Some(8080) 80");
        check_port("5353:53/udp", "5353:53/udp None Some(5353) 53");
        check_port(
            "70000:80",
            "error: port 70000 in `70000:80` is out of range; ports are between 1 and 65535",
        );
        check_port(
            "80/sctp",
            "error: unknown protocol `sctp` in port `80/sctp`; use `/tcp` or `/udp`",
        );
        check_port("x:80", "error: `x:80` is not a valid port mapping; write ports like \"8080:80\", \"127.0.0.1:8080:80\", \"80\" or \"5353:53/udp\"");
    }

    #[test]
    fn names() {
        assert!(ServiceName::parse("event-store").is_ok());
        assert!(ServiceName::parse("Api").is_err());
        assert!(ServiceName::parse("-api").is_err());
        assert!(ServiceName::parse("api_v2").is_err());
        assert!(ProjectName::parse(&"a".repeat(41)).is_err());
    }

    #[test]
    fn secret_never_shows_its_value() {
        let s = Secret::new("hunter2".into());
        assert_eq!(format!("{s} {s:?}"), "(sensitive) (sensitive)");
        assert_eq!(
            serde_json::to_string(&s).ok().as_deref(),
            Some("\"(sensitive)\"")
        );
        assert_eq!(s.expose(), Some("hunter2"));
    }
}
