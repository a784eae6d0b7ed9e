//! One service: its keys read into a `ServiceDraft` for the cross-service rules.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::super::types::{
    parse_cpus, parse_duration, parse_memory, parse_stop_signal, parse_user, FailureAction,
    HealthCheck, HealthKind, ImageRef, NetworkName, PortMapping, Problem, ProjectionPolicy,
    Resources, RestartPolicy, ServiceName, UpdateOrder, UpdatePolicy, VolumeName,
};
use super::super::yaml::{join_path, Key, Kind, Node, Pos};
use super::super::{Service, DEFAULT_DRAIN, DEFAULT_NETWORK};
use super::{Checker, ServiceDraft};
use crate::labels;

pub(super) const SERVICE_KEYS: &[&str] = &[
    "image",
    "command",
    "environment",
    "env_file",
    "secrets",
    "ports",
    "networks",
    "volumes",
    "health",
    "depends_on",
    "replicas",
    "update",
    "resources",
    "labels",
    "restart",
    "stop_grace_period",
    "stop_signal",
    "init",
    "user",
    "drain",
    "projection",
];
const HEALTH_KEYS: &[&str] = &[
    "path",
    "port",
    "tcp",
    "command",
    "interval",
    "timeout",
    "start_period",
    "retries",
];
const UPDATE_KEYS: &[&str] = &["order", "parallelism", "failure_action"];
const PROJECTION_KEYS: &[&str] = &["max_lag", "timeout", "keep_old", "path"];
/// Most events `projection.max_lag` may allow.
const MAX_PROJECTION_LAG: u64 = 1_000_000_000;
const RESOURCE_KEYS: &[&str] = &["memory", "cpus"];
const DEPENDS_KEYS: &[&str] = &["condition"];

/// Most replicas a service may ask for.
const MAX_REPLICAS: u32 = 100;
/// Most CPUs a service may ask for.
const MAX_CPUS: f64 = 1024.0;

/// Health-check defaults (documented in the README).
const DEFAULT_HEALTH_PATH: &str = "/health";
const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
const DEFAULT_START_PERIOD: Duration = Duration::ZERO;
const DEFAULT_RETRIES: u32 = 30;
const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(10);

impl Checker<'_> {
    pub(super) fn service(
        &mut self,
        name: ServiceName,
        key: &Key,
        body: &Node,
        path: &str,
        networks_declared: &BTreeMap<NetworkName, Pos>,
        volumes_declared: &BTreeMap<VolumeName, Pos>,
    ) -> Option<ServiceDraft> {
        let errors_before = self.diags.len();
        let entries = self.map(
            body,
            path,
            "write the service's keys under it, starting with `image:`",
        )?;
        let f = self.fields(entries, path, SERVICE_KEYS);
        let at = |k: &str| join_path(path, k);
        let node = |k: &str| f.get(k).map(|(_, n)| *n);

        let image = self.image(node("image"), key, &at("image"));
        let command = node("command").and_then(|n| self.command(n, &at("command")));
        let environment = self.environment(node("env_file"), node("environment"), path);
        let (secrets, secret_files) = node("secrets")
            .map(|n| self.secrets(n, &at("secrets"), &environment))
            .unwrap_or_default();
        let (ports, ports_pos) = node("ports")
            .map(|n| self.ports(n, &at("ports")))
            .unwrap_or_default();
        let networks = self.networks(node("networks"), &at("networks"), networks_declared);
        let volumes = node("volumes")
            .map(|n| self.volumes(n, &at("volumes"), volumes_declared))
            .unwrap_or_default();
        let health = node("health").and_then(|n| self.health(n, &at("health"), &ports));
        let (depends_on, depends_pos) = node("depends_on")
            .map(|n| self.depends_on(n, &at("depends_on")))
            .unwrap_or_default();
        let (replicas, replicas_pos) = match node("replicas") {
            Some(n) => (self.replicas(n, &at("replicas")), n.pos),
            None => (Some(1), key.pos),
        };
        let update = match node("update") {
            Some(n) => self.update(n, &at("update")),
            None => Some(UpdatePolicy::default()),
        };
        let resources = match node("resources") {
            Some(n) => self.resources(n, &at("resources")),
            None => Some(Resources::default()),
        };
        let labels = node("labels")
            .map(|n| self.labels(n, &at("labels")))
            .unwrap_or_default();
        let restart = match node("restart") {
            Some(n) => self.parsed(n, &at("restart"), RestartPolicy::parse),
            None => Some(RestartPolicy::default()),
        };
        let stop_grace_period = match node("stop_grace_period") {
            Some(n) => self.parsed(n, &at("stop_grace_period"), parse_duration),
            None => Some(DEFAULT_STOP_GRACE),
        };
        let stop_signal =
            node("stop_signal").and_then(|n| self.parsed(n, &at("stop_signal"), parse_stop_signal));
        let init = match node("init") {
            Some(n) => self.parsed(n, &at("init"), |s| match s {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(Problem::new(
                    format!("`{s}` is not true or false"),
                    "write true or false",
                )),
            }),
            None => Some(false),
        };
        let user = node("user").and_then(|n| self.parsed(n, &at("user"), parse_user));
        let drain = match node("drain") {
            Some(n) => self.parsed(n, &at("drain"), parse_duration),
            None => Some(DEFAULT_DRAIN),
        };
        let projection = match node("projection") {
            Some(n) => self.projection(n, &at("projection")),
            None => Some(ProjectionPolicy::default()),
        };

        let valid = self.diags.len() == errors_before;
        let (draft_ports, draft_depends) = (ports.clone(), depends_on.clone());
        let draft_replicas = replicas.unwrap_or(1);
        let service = || -> Option<Service> {
            Some(Service {
                name: name.clone(),
                image: image?,
                command,
                environment,
                secrets,
                secret_files,
                ports,
                networks,
                volumes,
                health,
                depends_on,
                replicas: replicas?,
                update: UpdatePolicy {
                    drain: drain?,
                    projection: projection?,
                    ..update?
                },
                resources: resources?,
                labels,
                restart: restart?,
                stop_grace_period: stop_grace_period?,
                stop_signal,
                init: init?,
                user,
            })
        };
        Some(ServiceDraft {
            service: if valid { service() } else { None },
            ports: draft_ports,
            replicas: draft_replicas,
            depends_on: draft_depends,
            name,
            key_pos: key.pos,
            depends_pos,
            ports_pos,
            replicas_pos,
        })
    }

    /// `image:`, which every service needs.
    fn image(&mut self, node: Option<&Node>, key: &Key, path: &str) -> Option<ImageRef> {
        match node {
            Some(n) => self.parsed(n, path, ImageRef::parse),
            None if self.suggested.contains(path) => None,
            None => {
                self.err(
                    key.pos,
                    path,
                    Problem::new("the service has no image", "add `image: NAME:TAG`"),
                );
                None
            }
        }
    }

    /// `env_file` entries first, then `environment` over them.
    fn environment(
        &mut self,
        env_file: Option<&Node>,
        environment: Option<&Node>,
        path: &str,
    ) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        if let Some(n) = env_file {
            out.extend(self.env_files(n, &join_path(path, "env_file")));
        }
        if let Some(n) = environment {
            out.extend(self.key_values(n, &join_path(path, "environment"), true));
        }
        out
    }

    /// `networks:`, each declared at the top level (or `default`) and listed once; `[default]`
    /// when none is listed.
    fn networks(
        &mut self,
        node: Option<&Node>,
        path: &str,
        declared: &BTreeMap<NetworkName, Pos>,
    ) -> Vec<NetworkName> {
        let mut networks = Vec::new();
        if let Some(n) = node {
            for (i, item) in self.list(n, path, "write networks as a list: networks: [backend]") {
                let p = format!("{path}[{i}]");
                let Some(net) = self.parsed(item, &p, NetworkName::parse) else {
                    continue;
                };
                if net.as_str() != DEFAULT_NETWORK && !declared.contains_key(&net) {
                    self.err(
                        item.pos,
                        &p,
                        Problem::new(
                            format!("the network `{net}` is not declared"),
                            format!("add `{net}: {{}}` under the top-level `networks:`, or use `default`"),
                        ),
                    );
                } else if networks.contains(&net) {
                    self.err(
                        item.pos,
                        &p,
                        Problem::new(
                            format!("the network `{net}` is listed twice"),
                            "list it once",
                        ),
                    );
                } else {
                    networks.push(net);
                }
            }
        }
        if networks.is_empty() {
            if let Ok(default) = NetworkName::parse(DEFAULT_NETWORK) {
                networks.push(default);
            }
        }
        networks
    }

    /// `depends_on:` as a list of names or Compose's long form `db: {condition: ...}`, with the
    /// position of each name for the cross-service rules.
    fn depends_on(
        &mut self,
        n: &Node,
        path: &str,
    ) -> (BTreeSet<ServiceName>, BTreeMap<ServiceName, Pos>) {
        let mut depends_on = BTreeSet::new();
        let mut depends_pos = BTreeMap::new();
        if let Kind::Map(entries) = &n.kind {
            // Compose's long form: `db: {condition: service_healthy}`.
            for (dep_key, value) in entries {
                let p = join_path(path, &dep_key.name);
                let dep = match ServiceName::parse(&dep_key.name) {
                    Ok(d) => d,
                    Err(e) => {
                        self.err(dep_key.pos, &p, e);
                        continue;
                    }
                };
                let Some(body) = self.map(value, &p, "write `condition: service_healthy`") else {
                    continue;
                };
                let f = self.fields(body, &p, DEPENDS_KEYS);
                if let Some((_, c)) = f.get("condition") {
                    let cp = join_path(&p, "condition");
                    let Some(cond) = self.string(c, &cp) else {
                        continue;
                    };
                    if !matches!(cond.as_str(), "service_healthy" | "service_started") {
                        self.err(
                            c.pos,
                            &cp,
                            Problem::new(
                                format!("unknown condition `{cond}`"),
                                "use `service_healthy`; the deployer always waits for the dependency to be healthy",
                            ),
                        );
                        continue;
                    }
                }
                depends_pos.insert(dep.clone(), dep_key.pos);
                depends_on.insert(dep);
            }
        } else {
            for (i, item) in self.list(n, path, "write `depends_on: [db]`") {
                let p = format!("{path}[{i}]");
                if let Some(dep) = self.parsed(item, &p, ServiceName::parse) {
                    depends_pos.insert(dep.clone(), item.pos);
                    depends_on.insert(dep);
                }
            }
        }
        (depends_on, depends_pos)
    }

    /// User `labels:`, never under the deployer's own prefix.
    fn labels(&mut self, n: &Node, path: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (k, v) in self.key_values(n, path, false) {
            if k.starts_with(labels::PREFIX) {
                self.err(
                    n.pos,
                    &join_path(path, &k),
                    Problem::new(
                        format!(
                            "the label `{k}` uses the deployer's own `{}` prefix",
                            labels::PREFIX
                        ),
                        "choose another prefix, such as `com.example.`",
                    ),
                );
            } else {
                out.insert(k, v);
            }
        }
        out
    }

    pub(super) fn health(
        &mut self,
        node: &Node,
        path: &str,
        ports: &[PortMapping],
    ) -> Option<HealthCheck> {
        let entries = self.map(
            node,
            path,
            "write `health:` with `path` and `port` (HTTP), `tcp: PORT` or `command: [...]`",
        )?;
        let f = self.fields(entries, path, HEALTH_KEYS);
        let at = |k: &str| join_path(path, k);
        // Exactly one kind: HTTP (`path`/`port`), `tcp` or `command`.
        let kinds: Vec<(&str, Pos)> = [
            ("path", "HTTP"),
            ("port", "HTTP"),
            ("tcp", "tcp"),
            ("command", "command"),
        ]
        .iter()
        .filter_map(|(k, kind)| f.get(k).map(|(key, _)| (*kind, key.pos)))
        .collect();
        if let Some((second, pos)) = kinds.iter().find(|(k, _)| *k != kinds[0].0) {
            let key = match *second {
                "HTTP" => "path`/`port",
                other => other,
            };
            let first = match kinds[0].0 {
                "HTTP" => "an HTTP check (`path`/`port`)",
                "tcp" => "`tcp`",
                _ => "`command`",
            };
            self.err(
                *pos,
                &at(if *second == "HTTP" { "port" } else { second }),
                Problem::new(
                    format!("the health check has both {first} and `{key}`"),
                    "keep exactly one kind of check: `path` and `port` (HTTP), `tcp: PORT`, or `command: [...]`",
                ),
            );
            return None;
        }
        let kind = match kinds.first().map(|(k, _)| *k) {
            Some("tcp") => HealthKind::Tcp,
            Some("command") => HealthKind::Command,
            _ => HealthKind::Http,
        };
        let mut command = Vec::new();
        let (hpath, port) = match kind {
            HealthKind::Tcp => {
                let (_, n) = f.get("tcp")?;
                let port = self.number(n, &at("tcp"), 1, 65535, "port")? as u16;
                (String::new(), port)
            }
            HealthKind::Command => {
                let (_, n) = f.get("command")?;
                command = self.command(n, &at("command"))?;
                if command.is_empty() {
                    self.err(
                        n.pos,
                        &at("command"),
                        Problem::new(
                            "the health command is empty",
                            "give the program and its arguments, like [\"/app\", \"healthcheck\"]",
                        ),
                    );
                    return None;
                }
                (String::new(), 0)
            }
            HealthKind::Http => {
                let hpath = match f.get("path") {
                    Some((_, n)) => {
                        let p = self.string(n, &at("path"))?;
                        if !p.starts_with('/') || p.contains(char::is_whitespace) {
                            self.err(
                                n.pos,
                                &at("path"),
                                Problem::new(
                                    format!("`{p}` is not an HTTP path"),
                                    "write a path starting with /, like /health",
                                ),
                            );
                            return None;
                        }
                        p
                    }
                    None => DEFAULT_HEALTH_PATH.to_owned(),
                };
                let port = match f.get("port") {
                    Some((_, n)) => self.number(n, &at("port"), 1, 65535, "port")? as u16,
                    None => match ports.first() {
                        Some(p) => p.container_port,
                        None if self.suggested.contains(&at("port")) => return None,
                        None => {
                            self.err(
                                node.pos,
                                &at("port"),
                                Problem::new(
                                    "the health check has no port",
                                    "add `port: PORT`, the container port that serves the health path",
                                ),
                            );
                            return None;
                        }
                    },
                };
                (hpath, port)
            }
        };
        let mut duration = |k: &str, default: Duration| -> Option<Duration> {
            match f.get(k) {
                Some((_, n)) => {
                    let d = self.parsed(n, &at(k), parse_duration)?;
                    if d.is_zero() && k != "start_period" {
                        self.err(
                            n.pos,
                            &at(k),
                            Problem::new(
                                format!("the {k} is zero"),
                                "give a duration above zero, like 1s",
                            ),
                        );
                        return None;
                    }
                    Some(d)
                }
                None => Some(default),
            }
        };
        let interval = duration("interval", DEFAULT_INTERVAL);
        let timeout = duration("timeout", DEFAULT_TIMEOUT);
        let start_period = duration("start_period", DEFAULT_START_PERIOD);
        let retries = match f.get("retries") {
            Some((_, n)) => self
                .number(n, &at("retries"), 1, 1000, "number of retries")
                .map(|n| n as u32),
            None => Some(DEFAULT_RETRIES),
        };
        Some(HealthCheck {
            path: hpath,
            port,
            interval: interval?,
            timeout: timeout?,
            start_period: start_period?,
            retries: retries?,
            kind,
            command,
        })
    }

    pub(super) fn replicas(&mut self, node: &Node, path: &str) -> Option<u32> {
        let text = self.string(node, path)?;
        match text.trim().parse::<u64>() {
            Ok(0) => {
                self.err(
                    node.pos,
                    path,
                    Problem::new(
                        "replicas is 0",
                        "give at least 1; to stop a service, remove it from the manifest",
                    ),
                );
                None
            }
            Ok(n) if n <= u64::from(MAX_REPLICAS) => Some(n as u32),
            Ok(n) => {
                self.err(
                    node.pos,
                    path,
                    Problem::new(
                        format!("{n} replicas is more than the limit of {MAX_REPLICAS}"),
                        format!("give at most {MAX_REPLICAS}"),
                    ),
                );
                None
            }
            Err(_) => {
                self.err(
                    node.pos,
                    path,
                    Problem::new(
                        format!("`{text}` is not a number of replicas"),
                        "give a whole number like 2",
                    ),
                );
                None
            }
        }
    }

    pub(super) fn update(&mut self, node: &Node, path: &str) -> Option<UpdatePolicy> {
        let entries = self.map(
            node,
            path,
            "write `update:` with `order`, `parallelism` and `failure_action`",
        )?;
        let f = self.fields(entries, path, UPDATE_KEYS);
        let at = |k: &str| join_path(path, k);
        let mut policy = UpdatePolicy::default();
        let mut ok = true;
        if let Some((_, n)) = f.get("order") {
            match self.parsed(n, &at("order"), |s| match s {
                "start-first" => Ok(UpdateOrder::StartFirst),
                "stop-first" => Ok(UpdateOrder::StopFirst),
                _ => Err(Problem::new(
                    format!("unknown update order `{s}`"),
                    "use `start-first` or `stop-first`",
                )),
            }) {
                Some(o) => policy.order = o,
                None => ok = false,
            }
        }
        if let Some((_, n)) = f.get("parallelism") {
            match self.number(
                n,
                &at("parallelism"),
                1,
                u64::from(MAX_REPLICAS),
                "parallelism",
            ) {
                Some(p) => policy.parallelism = p as u32,
                None => ok = false,
            }
        }
        if let Some((_, n)) = f.get("failure_action") {
            match self.parsed(n, &at("failure_action"), |s| match s {
                "rollback" => Ok(FailureAction::Rollback),
                "pause" => Ok(FailureAction::Pause),
                _ => Err(Problem::new(
                    format!("unknown failure action `{s}`"),
                    "use `rollback` or `pause`",
                )),
            }) {
                Some(a) => policy.failure_action = a,
                None => ok = false,
            }
        }
        ok.then_some(policy)
    }

    /// `projection: {max_lag, timeout, keep_old, path}`: a read model's blue/green rebuild.
    pub(super) fn projection(&mut self, node: &Node, path: &str) -> Option<ProjectionPolicy> {
        let entries = self.map(
            node,
            path,
            "write `projection:` with `max_lag`, `timeout`, `keep_old` and `path`",
        )?;
        let f = self.fields(entries, path, PROJECTION_KEYS);
        let at = |k: &str| join_path(path, k);
        let mut policy = ProjectionPolicy::default();
        let mut ok = true;
        if let Some((_, n)) = f.get("max_lag") {
            match self.number(n, &at("max_lag"), 0, MAX_PROJECTION_LAG, "lag in events") {
                Some(lag) => policy.max_lag = lag,
                None => ok = false,
            }
        }
        if let Some((_, n)) = f.get("timeout") {
            match self.parsed(n, &at("timeout"), |s| match parse_duration(s) {
                Ok(d) if d.is_zero() => Err(Problem::new(
                    "a rebuild timeout of 0 never lets a rebuild finish",
                    "give a duration such as `10m`",
                )),
                other => other,
            }) {
                Some(t) => policy.timeout = t,
                None => ok = false,
            }
        }
        if let Some((_, n)) = f.get("keep_old") {
            match self.parsed(n, &at("keep_old"), |s| match s {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(Problem::new(
                    format!("`{s}` is not true or false"),
                    "write true (keep the old volume until the next successful apply) or false",
                )),
            }) {
                Some(k) => policy.keep_old = k,
                None => ok = false,
            }
        }
        if let Some((_, n)) = f.get("path") {
            match self.parsed(n, &at("path"), |s| {
                if s.starts_with('/') && !s.contains(char::is_whitespace) {
                    Ok(s.to_owned())
                } else {
                    Err(Problem::new(
                        format!("`{s}` is not an HTTP path"),
                        "write a path starting with `/`, such as `/projection`",
                    ))
                }
            }) {
                Some(p) => policy.path = p,
                None => ok = false,
            }
        }
        ok.then_some(policy)
    }

    pub(super) fn resources(&mut self, node: &Node, path: &str) -> Option<Resources> {
        let entries = self.map(node, path, "write `resources:` with `memory` and `cpus`")?;
        let f = self.fields(entries, path, RESOURCE_KEYS);
        let memory_bytes = f
            .get("memory")
            .map(|(_, n)| self.parsed(n, &join_path(path, "memory"), parse_memory));
        let nano_cpus = f
            .get("cpus")
            .map(|(_, n)| self.parsed(n, &join_path(path, "cpus"), |s| parse_cpus(s, MAX_CPUS)));
        Some(Resources {
            memory_bytes: memory_bytes.map_or(Some(None), |m| m.map(Some))?,
            nano_cpus: nano_cpus.map_or(Some(None), |c| c.map(Some))?,
        })
    }
}
