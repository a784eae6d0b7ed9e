//! Turns the merged YAML tree into a checked `Manifest`: interpolation, env files, secrets and
//! every rule. Problems are collected (each with file, line, column, key path and a fix) so one
//! run reports all of them; cross-service rules run only when each service is valid on its own.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::interpolate::interpolate;
use super::types::{
    parse_cpus, parse_duration, parse_memory, FailureAction, HealthCheck, ImageRef, NetworkName,
    PortMapping, Problem, ProjectName, Protocol, Resources, RestartPolicy, Secret, ServiceName,
    UpdateOrder, UpdatePolicy, VolumeMount, VolumeName,
};
use super::yaml::{self, join_path, Key, Kind, Node, Pos};
use super::{
    Diagnostic, Manifest, ManifestError, NetworkSpec, Service, VolumeSpec, DEFAULT_NETWORK,
};
use crate::labels;

const TOP_KEYS: &[&str] = &["project", "services", "networks", "volumes"];
const SERVICE_KEYS: &[&str] = &[
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
];
const HEALTH_KEYS: &[&str] = &[
    "path",
    "port",
    "interval",
    "timeout",
    "start_period",
    "retries",
];
const UPDATE_KEYS: &[&str] = &["order", "parallelism", "failure_action"];
const RESOURCE_KEYS: &[&str] = &["memory", "cpus"];
const SECRET_KEYS: &[&str] = &["file", "env"];
const PORT_KEYS: &[&str] = &["target", "published", "host_ip", "protocol"];
const VOLUME_KEYS: &[&str] = &["source", "target", "read_only"];
const DEPENDS_KEYS: &[&str] = &["condition"];

/// Most replicas a service may ask for.
pub(super) const MAX_REPLICAS: u32 = 100;
/// Most CPUs a service may ask for.
const MAX_CPUS: f64 = 1024.0;

/// Health-check defaults (documented in the README).
const DEFAULT_HEALTH_PATH: &str = "/health";
const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
const DEFAULT_START_PERIOD: Duration = Duration::ZERO;
const DEFAULT_RETRIES: u32 = 30;
const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(10);

/// Keys other tools use, with what to write instead.
const FOREIGN_KEYS: &[(&str, &str)] = &[
    ("name", "the project name is written `project: NAME`"),
    ("version", "manifests have no version; remove it"),
    (
        "deploy",
        "write `replicas`, `update` and `resources` directly under the service",
    ),
    (
        "healthcheck",
        "write `health:` with `path` and `port`; the deployer checks over HTTP",
    ),
    (
        "container_name",
        "container names are always `<project>-<service>-<replica>-<id>`; remove it",
    ),
    ("build", "build the image first and name it with `image:`"),
    (
        "expose",
        "services reach each other by name on the project network without it; remove it",
    ),
    (
        "links",
        "services reach each other by name on the project network without it; remove it",
    ),
];

pub(super) fn check(
    sources: &[(PathBuf, String)],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Manifest, ManifestError> {
    let mut root: Option<Node> = None;
    let mut diags = Vec::new();
    for (i, (path, text)) in sources.iter().enumerate() {
        match yaml::parse(text, i) {
            Ok(node) => {
                root = Some(match root {
                    None => node,
                    // An empty overlay changes nothing.
                    Some(base) if node.kind == Kind::Null => base,
                    Some(base) => yaml::merge(base, node),
                });
            }
            Err(e) => diags.push(Diagnostic {
                file: path.clone(),
                line: e.pos.line,
                column: e.pos.col,
                key: e.key,
                problem: e.problem,
                fix: e.fix,
            }),
        }
    }
    let Some(root) = root.filter(|_| diags.is_empty()) else {
        return Err(ManifestError::Invalid(diags));
    };
    let mut cx = Checker {
        sources,
        env,
        diags: Vec::new(),
        suggested: BTreeSet::new(),
    };
    let manifest = cx.manifest(&root);
    match manifest {
        Some(m) if cx.diags.is_empty() => Ok(m),
        _ => {
            if cx.diags.is_empty() {
                // Every path that returns None records why; keep the promise of an error anyway.
                cx.diags
                    .push(cx.diag(root.pos, "", Problem::new("the manifest is invalid", "")));
            }
            Err(ManifestError::Invalid(cx.diags))
        }
    }
}

struct Checker<'a> {
    sources: &'a [(PathBuf, String)],
    env: &'a dyn Fn(&str) -> Option<String>,
    diags: Vec<Diagnostic>,
    /// Keys an unknown key was taken for (`servics` -> `services`): a missing-key error for
    /// them would only repeat the problem.
    suggested: BTreeSet<String>,
}

/// A checked service with the positions the cross-service rules point at.
struct ServiceDraft {
    service: Service,
    key_pos: Pos,
    depends_pos: BTreeMap<ServiceName, Pos>,
    ports_pos: Vec<Pos>,
    replicas_pos: Pos,
}

impl<'a> Checker<'a> {
    fn diag(&self, pos: Pos, key: &str, p: Problem) -> Diagnostic {
        Diagnostic {
            file: self
                .sources
                .get(pos.file)
                .map(|(p, _)| p.clone())
                .unwrap_or_default(),
            line: pos.line,
            column: pos.col,
            key: key.to_owned(),
            problem: p.problem,
            fix: p.fix,
        }
    }

    fn err(&mut self, pos: Pos, key: &str, p: Problem) {
        let d = self.diag(pos, key, p);
        self.diags.push(d);
    }

    /// The directory relative paths written in the file at `pos` start from.
    fn dir_of(&self, pos: Pos) -> &'a Path {
        self.sources
            .get(pos.file)
            .and_then(|(p, _)| p.parent())
            .unwrap_or(Path::new(""))
    }

    fn manifest(&mut self, root: &Node) -> Option<Manifest> {
        if root.kind == Kind::Null {
            self.err(
                root.pos,
                "",
                Problem::new(
                    "the manifest is empty",
                    "start it with `project: NAME` and `services:`",
                ),
            );
            return None;
        }
        let entries = self.map(root, "", "write a map with `project:` and `services:`")?;
        let f = self.fields(entries, "", TOP_KEYS);
        let project = match f.get("project") {
            Some((_, node)) => {
                let text = self.string(node, "project")?;
                match ProjectName::parse(&text) {
                    Ok(p) => Some(p),
                    Err(p) => {
                        self.err(node.pos, "project", p);
                        None
                    }
                }
            }
            None => {
                if !self.suggested.contains("project") {
                    self.err(
                        root.pos,
                        "project",
                        Problem::new(
                            "the manifest has no project name",
                            "add `project: NAME` at the top",
                        ),
                    );
                }
                None
            }
        };
        let networks_declared =
            self.declared_names(f.get("networks").copied(), "networks", NetworkName::parse);
        let volumes_declared =
            self.declared_names(f.get("volumes").copied(), "volumes", VolumeName::parse);
        let mut drafts: Vec<ServiceDraft> = Vec::new();
        match f.get("services") {
            Some((_, node)) => {
                if let Some(entries) = self.map(
                    node,
                    "services",
                    "write each service as `NAME:` followed by its keys",
                ) {
                    for (key, body) in entries {
                        if key.name.starts_with("x-") {
                            continue;
                        }
                        let path = join_path("services", &key.name);
                        let name = match ServiceName::parse(&key.name) {
                            Ok(n) => n,
                            Err(p) => {
                                self.err(key.pos, &path, p);
                                continue;
                            }
                        };
                        if let Some(d) = self.service(
                            name,
                            key,
                            body,
                            &path,
                            &networks_declared,
                            &volumes_declared,
                        ) {
                            drafts.push(d);
                        }
                    }
                }
            }
            None => {
                if !self.suggested.contains("services") {
                    self.err(
                        root.pos,
                        "services",
                        Problem::new(
                            "the manifest has no services",
                            "add `services:` with at least one service",
                        ),
                    );
                }
            }
        }
        let project = project?;
        if !self.diags.is_empty() {
            return None;
        }
        self.cross_checks(&drafts);
        if !self.diags.is_empty() {
            return None;
        }
        let mut used_networks: BTreeSet<NetworkName> = BTreeSet::new();
        for d in &drafts {
            used_networks.extend(d.service.networks.iter().cloned());
        }
        let resource_labels = |name: &str| {
            BTreeMap::from([
                (
                    labels::MANAGED_BY.to_owned(),
                    labels::MANAGED_BY_VALUE.to_owned(),
                ),
                (labels::PROJECT.to_owned(), project.to_string()),
                (labels::RESOURCE_NAME.to_owned(), name.to_owned()),
            ])
        };
        let networks = used_networks
            .into_iter()
            .map(|n| {
                let spec = NetworkSpec {
                    engine_name: format!("{project}-{n}"),
                    labels: resource_labels(n.as_str()),
                    name: n.clone(),
                };
                (n, spec)
            })
            .collect();
        let volumes = volumes_declared
            .into_keys()
            .map(|v| {
                let spec = VolumeSpec {
                    engine_name: format!("{project}-{v}"),
                    labels: resource_labels(v.as_str()),
                    name: v.clone(),
                };
                (v, spec)
            })
            .collect();
        Some(Manifest {
            project,
            services: drafts
                .into_iter()
                .map(|d| (d.service.name.clone(), d.service))
                .collect(),
            networks,
            volumes,
            sources: self.sources.iter().map(|(p, _)| p.clone()).collect(),
        })
    }

    /// Top-level `networks:` / `volumes:`: a map of names, each with no settings.
    fn declared_names<N: Ord>(
        &mut self,
        entry: Option<(&Key, &Node)>,
        what: &str,
        parse: fn(&str) -> Result<N, Problem>,
    ) -> BTreeMap<N, Pos> {
        let mut out = BTreeMap::new();
        let Some((_, node)) = entry else {
            return out;
        };
        let fix = format!("declare each as `NAME: {{}}` under `{what}:`");
        let Some(entries) = self.map(node, what, &fix) else {
            return out;
        };
        for (key, value) in entries {
            let path = join_path(what, &key.name);
            match parse(&key.name) {
                Ok(n) => {
                    out.insert(n, key.pos);
                }
                Err(p) => self.err(key.pos, &path, p),
            }
            match &value.kind {
                Kind::Null => {}
                Kind::Map(m) if m.is_empty() => {}
                Kind::Map(m) => {
                    let (k, _) = &m[0];
                    self.err(
                        k.pos,
                        &join_path(&path, &k.name),
                        Problem::new(
                            format!("unknown key `{}`", k.name),
                            format!("{what} take no settings; write `{}: {{}}`", key.name),
                        ),
                    );
                }
                _ => self.err(
                    value.pos,
                    &path,
                    Problem::new(
                        format!("expected a map, found {}", value.type_name()),
                        fix.clone(),
                    ),
                ),
            }
        }
        out
    }

    fn service(
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

        let image = match f.get("image") {
            Some((_, n)) => self.parsed(n, &at("image"), ImageRef::parse),
            None if self.suggested.contains(&at("image")) => None,
            None => {
                self.err(
                    key.pos,
                    &at("image"),
                    Problem::new("the service has no image", "add `image: NAME:TAG`"),
                );
                None
            }
        };
        let command = f
            .get("command")
            .and_then(|(_, n)| self.command(n, &at("command")));

        let mut environment = BTreeMap::new();
        if let Some((_, n)) = f.get("env_file") {
            for (k, v) in self.env_files(n, &at("env_file")) {
                environment.insert(k, v);
            }
        }
        if let Some((_, n)) = f.get("environment") {
            for (k, v) in self.key_values(n, &at("environment"), true) {
                environment.insert(k, v);
            }
        }
        let secrets = f
            .get("secrets")
            .map(|(_, n)| self.secrets(n, &at("secrets"), &environment))
            .unwrap_or_default();

        let mut ports = Vec::new();
        let mut ports_pos = Vec::new();
        if let Some((_, n)) = f.get("ports") {
            for (i, item) in self.list(
                n,
                &at("ports"),
                "write ports as a list: ports: [\"8080:80\"]",
            ) {
                if let Some(p) = self.port(item, &format!("{}[{i}]", at("ports"))) {
                    ports.push(p);
                    ports_pos.push(item.pos);
                }
            }
        }

        let mut networks = Vec::new();
        if let Some((_, n)) = f.get("networks") {
            for (i, item) in self.list(
                n,
                &at("networks"),
                "write networks as a list: networks: [backend]",
            ) {
                let p = format!("{}[{i}]", at("networks"));
                let Some(net) = self.parsed(item, &p, NetworkName::parse) else {
                    continue;
                };
                if net.as_str() != DEFAULT_NETWORK && !networks_declared.contains_key(&net) {
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

        let mut volumes: Vec<VolumeMount> = Vec::new();
        if let Some((_, n)) = f.get("volumes") {
            for (i, item) in self.list(
                n,
                &at("volumes"),
                "write volumes as a list: volumes: [\"data:/var/lib/data\"]",
            ) {
                let p = format!("{}[{i}]", at("volumes"));
                let Some(m) = self.volume_mount(item, &p, volumes_declared) else {
                    continue;
                };
                if volumes.iter().any(|v| v.target == m.target) {
                    self.err(
                        item.pos,
                        &p,
                        Problem::new(
                            format!("two volumes are mounted at `{}`", m.target),
                            "give each mount its own target path",
                        ),
                    );
                } else {
                    volumes.push(m);
                }
            }
        }

        let health = f
            .get("health")
            .and_then(|(_, n)| self.health(n, &at("health"), &ports));

        let mut depends_on = BTreeSet::new();
        let mut depends_pos = BTreeMap::new();
        if let Some((_, n)) = f.get("depends_on") {
            if let Kind::Map(entries) = &n.kind {
                // Compose's long form: `db: {condition: service_healthy}`.
                for (dep_key, value) in entries {
                    let p = join_path(&at("depends_on"), &dep_key.name);
                    let dep = match ServiceName::parse(&dep_key.name) {
                        Ok(d) => d,
                        Err(e) => {
                            self.err(dep_key.pos, &p, e);
                            continue;
                        }
                    };
                    let Some(body) = self.map(value, &p, "write `condition: service_healthy`")
                    else {
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
                for (i, item) in self.list(n, &at("depends_on"), "write `depends_on: [db]`") {
                    let p = format!("{}[{i}]", at("depends_on"));
                    if let Some(dep) = self.parsed(item, &p, ServiceName::parse) {
                        depends_pos.insert(dep.clone(), item.pos);
                        depends_on.insert(dep);
                    }
                }
            }
        }

        let (replicas, replicas_pos) = match f.get("replicas") {
            Some((_, n)) => (self.replicas(n, &at("replicas")), n.pos),
            None => (Some(1), key.pos),
        };
        let update = match f.get("update") {
            Some((_, n)) => self.update(n, &at("update")),
            None => Some(UpdatePolicy::default()),
        };
        let resources = match f.get("resources") {
            Some((_, n)) => self.resources(n, &at("resources")),
            None => Some(Resources::default()),
        };
        let labels = match f.get("labels") {
            Some((_, n)) => {
                let lp = at("labels");
                let mut out = BTreeMap::new();
                for (k, v) in self.key_values(n, &lp, false) {
                    if k.starts_with(labels::PREFIX) {
                        self.err(
                            n.pos,
                            &join_path(&lp, &k),
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
            None => BTreeMap::new(),
        };
        let restart = match f.get("restart") {
            Some((_, n)) => self.parsed(n, &at("restart"), RestartPolicy::parse),
            None => Some(RestartPolicy::default()),
        };
        let stop_grace_period = match f.get("stop_grace_period") {
            Some((_, n)) => self.parsed(n, &at("stop_grace_period"), parse_duration),
            None => Some(DEFAULT_STOP_GRACE),
        };

        if self.diags.len() > errors_before {
            return None;
        }
        Some(ServiceDraft {
            service: Service {
                name,
                image: image?,
                command,
                environment,
                secrets,
                ports,
                networks,
                volumes,
                health,
                depends_on,
                replicas: replicas?,
                update: update?,
                resources: resources?,
                labels,
                restart: restart?,
                stop_grace_period: stop_grace_period?,
            },
            key_pos: key.pos,
            depends_pos,
            ports_pos,
            replicas_pos,
        })
    }

    /// Rules across services: depends_on targets and cycles, published host ports.
    fn cross_checks(&mut self, drafts: &[ServiceDraft]) {
        let names: BTreeSet<&ServiceName> = drafts.iter().map(|d| &d.service.name).collect();
        for d in drafts {
            for (dep, pos) in &d.depends_pos {
                if !names.contains(dep) {
                    let fix = match closest(dep.as_str(), names.iter().map(|n| n.as_str())) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => "name a service of this manifest".to_owned(),
                    };
                    self.err(
                        *pos,
                        &format!("services.{}.depends_on", d.service.name),
                        Problem::new(format!("`{dep}` is not a service of this manifest"), fix),
                    );
                }
            }
        }
        if !self.diags.is_empty() {
            return;
        }
        if let Some(cycle) = find_cycle(drafts) {
            let first = &drafts[cycle[0]];
            let next = &drafts[cycle[1 % cycle.len()]].service.name;
            let pos = first
                .depends_pos
                .get(next)
                .copied()
                .unwrap_or(first.key_pos);
            let mut names: Vec<String> = cycle
                .iter()
                .map(|&i| drafts[i].service.name.to_string())
                .collect();
            names.push(first.service.name.to_string());
            self.err(
                pos,
                &format!("services.{}.depends_on", first.service.name),
                Problem::new(
                    format!("depends_on forms a cycle: {}", names.join(" -> ")),
                    "remove one of these dependencies",
                ),
            );
        }

        // Published host ports: unique across the fleet (per protocol; an unspecified host IP
        // clashes with every IP), and a fixed host port allows only one replica.
        let mut published: Vec<(&PortMapping, &ServiceName, Pos)> = Vec::new();
        for d in drafts {
            for (p, pos) in d.service.ports.iter().zip(&d.ports_pos) {
                let Some(host_port) = p.host_port else {
                    continue;
                };
                let i = d
                    .service
                    .ports
                    .iter()
                    .position(|q| std::ptr::eq(q, p))
                    .unwrap_or(0);
                let key = format!("services.{}.ports[{i}]", d.service.name);
                if d.service.replicas > 1 {
                    self.err(
                        d.replicas_pos,
                        &format!("services.{}.replicas", d.service.name),
                        Problem::new(
                            format!(
                                "{} replicas cannot all publish host port {host_port}",
                                d.service.replicas
                            ),
                            format!(
                                "publish only the container port (\"{}\") so the engine picks free host ports, or run one replica",
                                p.container_port
                            ),
                        ),
                    );
                }
                if let Some((_, other, other_pos)) =
                    published.iter().find(|(q, _, _)| clashes(p, q))
                {
                    let other_file = self.diag(*other_pos, "", Problem::new("", "")).file;
                    let problem = format!(
                        "host port {host_port}/{} is already published by service `{other}` ({}:{})",
                        p.protocol,
                        other_file.display(),
                        other_pos.line
                    );
                    self.err(
                        *pos,
                        &key,
                        Problem::new(problem, "publish a different host port"),
                    );
                } else {
                    published.push((p, &d.service.name, *pos));
                }
            }
        }
    }

    // ---- typed readers --------------------------------------------------------------------

    /// A map's entries; `Null` reads as an empty map.
    fn map<'n>(&mut self, node: &'n Node, path: &str, fix: &str) -> Option<&'n [(Key, Node)]> {
        match &node.kind {
            Kind::Map(entries) => Some(entries),
            Kind::Null => Some(&[]),
            _ => {
                self.err(
                    node.pos,
                    path,
                    Problem::new(format!("expected a map, found {}", node.type_name()), fix),
                );
                None
            }
        }
    }

    /// The entries of a map whose keys must be in `allowed`; unknown keys are reported with the
    /// closest allowed key. Keys starting with `x-` are extension fields and ignored.
    fn fields<'n>(
        &mut self,
        entries: &'n [(Key, Node)],
        path: &str,
        allowed: &[&str],
    ) -> BTreeMap<&'n str, (&'n Key, &'n Node)> {
        let mut out = BTreeMap::new();
        for (key, value) in entries {
            if allowed.contains(&key.name.as_str()) {
                out.insert(key.name.as_str(), (key, value));
                continue;
            }
            if key.name.starts_with("x-") {
                continue;
            }
            let fix = match FOREIGN_KEYS.iter().find(|(k, _)| *k == key.name) {
                Some((_, hint)) => {
                    if key.name == "name" {
                        self.suggested.insert(join_path(path, "project"));
                    }
                    (*hint).to_owned()
                }
                None => match closest(&key.name, allowed.iter().copied()) {
                    Some(s) => {
                        self.suggested.insert(join_path(path, s));
                        format!("did you mean `{s}`?")
                    }
                    None => format!("the keys allowed here are {}", allowed.join(", ")),
                },
            };
            self.err(
                key.pos,
                &join_path(path, &key.name),
                Problem::new(format!("unknown key `{}`", key.name), fix),
            );
        }
        out
    }

    /// A scalar, interpolated.
    fn string(&mut self, node: &Node, path: &str) -> Option<String> {
        match &node.kind {
            Kind::Scalar { text, .. } => match interpolate(text, self.env) {
                Ok(s) => Some(s),
                Err(p) => {
                    self.err(node.pos, path, p);
                    None
                }
            },
            Kind::Null => {
                self.err(
                    node.pos,
                    path,
                    Problem::new("the key has no value", "give it a value or remove the key"),
                );
                None
            }
            _ => {
                self.err(
                    node.pos,
                    path,
                    Problem::new(
                        format!("expected a single value, found {}", node.type_name()),
                        "write one value after the `:`",
                    ),
                );
                None
            }
        }
    }

    fn parsed<T>(
        &mut self,
        node: &Node,
        path: &str,
        parse: impl Fn(&str) -> Result<T, Problem>,
    ) -> Option<T> {
        let text = self.string(node, path)?;
        match parse(&text) {
            Ok(v) => Some(v),
            Err(p) => {
                self.err(node.pos, path, p);
                None
            }
        }
    }

    fn number(&mut self, node: &Node, path: &str, min: u64, max: u64, what: &str) -> Option<u64> {
        let text = self.string(node, path)?;
        match text.trim().parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.err(
                    node.pos,
                    path,
                    Problem::new(
                        format!("`{text}` is not a valid {what}"),
                        format!("give a whole number from {min} to {max}"),
                    ),
                );
                None
            }
        }
    }

    /// A list's items with their index; a single value reads as a list of one.
    fn list<'n>(&mut self, node: &'n Node, path: &str, fix: &str) -> Vec<(usize, &'n Node)> {
        match &node.kind {
            Kind::Seq(items) => items.iter().enumerate().collect(),
            Kind::Null => Vec::new(),
            _ => {
                self.err(
                    node.pos,
                    path,
                    Problem::new(format!("expected a list, found {}", node.type_name()), fix),
                );
                Vec::new()
            }
        }
    }

    fn command(&mut self, node: &Node, path: &str) -> Option<Vec<String>> {
        match &node.kind {
            Kind::Seq(items) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    out.push(self.string(item, &format!("{path}[{i}]"))?);
                }
                Some(out)
            }
            _ => {
                let text = self.string(node, path)?;
                match split_words(&text) {
                    Ok(words) if !words.is_empty() => Some(words),
                    Ok(_) => {
                        self.err(
                            node.pos,
                            path,
                            Problem::new(
                                "the command is empty",
                                "give a command or remove the key",
                            ),
                        );
                        None
                    }
                    Err(p) => {
                        self.err(node.pos, path, p);
                        None
                    }
                }
            }
        }
    }

    /// `KEY: value` maps or `- KEY=value` lists (environment, labels).
    fn key_values(&mut self, node: &Node, path: &str, env_names: bool) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let check_name = |name: &str| -> Result<(), Problem> {
            if env_names && !is_env_name(name) {
                return Err(Problem::new(
                    format!("`{name}` is not a valid variable name"),
                    "use letters, digits and `_`, not starting with a digit",
                ));
            }
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(Problem::new(
                    format!("`{name}` is not a valid name"),
                    "use a name without spaces",
                ));
            }
            Ok(())
        };
        match &node.kind {
            Kind::Map(entries) => {
                for (key, value) in entries {
                    let p = join_path(path, &key.name);
                    if let Err(e) = check_name(&key.name) {
                        self.err(key.pos, &p, e);
                        continue;
                    }
                    match &value.kind {
                        Kind::Null if env_names => self.err(
                            value.pos,
                            &p,
                            Problem::new(
                                format!("`{}` has no value", key.name),
                                format!("write `{k}: value`, or `{k}: ${{{k}}}` to take it from the environment", k = key.name),
                            ),
                        ),
                        Kind::Null => out.push((key.name.clone(), String::new())),
                        _ => {
                            if let Some(v) = self.string(value, &p) {
                                out.push((key.name.clone(), v));
                            }
                        }
                    }
                }
            }
            Kind::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    let p = format!("{path}[{i}]");
                    let Some(text) = self.string(item, &p) else {
                        continue;
                    };
                    let Some((k, v)) = text.split_once('=') else {
                        self.err(
                            item.pos,
                            &p,
                            Problem::new(
                                format!("`{text}` has no `=`"),
                                "write list items as KEY=value",
                            ),
                        );
                        continue;
                    };
                    if let Err(e) = check_name(k) {
                        self.err(item.pos, &p, e);
                        continue;
                    }
                    out.push((k.to_owned(), v.to_owned()));
                }
            }
            Kind::Null => {}
            Kind::Scalar { .. } => self.err(
                node.pos,
                path,
                Problem::new(
                    "expected a map or a list, found a single value",
                    "write `KEY: value` entries, one per line",
                ),
            ),
        }
        out
    }

    /// `env_file: FILE` or a list of files, read relative to the manifest that names them.
    fn env_files(&mut self, node: &Node, path: &str) -> Vec<(String, String)> {
        let items: Vec<(String, &Node)> = match &node.kind {
            Kind::Seq(items) => items
                .iter()
                .enumerate()
                .map(|(i, n)| (format!("{path}[{i}]"), n))
                .collect(),
            _ => vec![(path.to_owned(), node)],
        };
        let mut out = Vec::new();
        for (p, item) in items {
            let Some(file) = self.string(item, &p) else {
                continue;
            };
            let full = self.dir_of(item.pos).join(&file);
            let text = match std::fs::read_to_string(&full) {
                Ok(t) => t,
                Err(e) => {
                    self.err(
                        item.pos,
                        &p,
                        Problem::new(
                            format!("cannot read the env file `{}`: {e}", full.display()),
                            "check the path; it is relative to the manifest file",
                        ),
                    );
                    continue;
                }
            };
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let line = line.strip_prefix("export ").unwrap_or(line);
                match line.split_once('=') {
                    Some((k, v)) if is_env_name(k.trim()) => {
                        out.push((k.trim().to_owned(), unquote(v.trim()).to_owned()));
                    }
                    _ => self.err(
                        item.pos,
                        &p,
                        Problem::new(
                            format!("line {} of `{}` is not KEY=VALUE", n + 1, full.display()),
                            "write one KEY=VALUE per line; lines starting with # are comments",
                        ),
                    ),
                }
            }
        }
        out
    }

    fn secrets(
        &mut self,
        node: &Node,
        path: &str,
        environment: &BTreeMap<String, String>,
    ) -> BTreeMap<String, Secret> {
        let mut out = BTreeMap::new();
        let Some(entries) = self.map(
            node,
            path,
            "write each secret as `NAME: {file: PATH}` or `NAME: {env: VAR}`",
        ) else {
            return out;
        };
        for (key, value) in entries {
            let p = join_path(path, &key.name);
            if !is_env_name(&key.name) {
                self.err(
                    key.pos,
                    &p,
                    Problem::new(
                        format!("`{}` is not a valid variable name", key.name),
                        "secrets are delivered as environment variables: use letters, digits and `_`",
                    ),
                );
                continue;
            }
            if environment.contains_key(&key.name) {
                self.err(
                    key.pos,
                    &p,
                    Problem::new(
                        format!("`{}` is both in environment and in secrets", key.name),
                        "keep it in one of them",
                    ),
                );
                continue;
            }
            let Some(entries) = self.map(value, &p, "write `{file: PATH}` or `{env: VAR}`") else {
                continue;
            };
            let f = self.fields(entries, &p, SECRET_KEYS);
            let secret = match (f.get("file"), f.get("env")) {
                (Some((_, file)), None) => {
                    let fp = join_path(&p, "file");
                    let Some(name) = self.string(file, &fp) else {
                        continue;
                    };
                    let full = self.dir_of(file.pos).join(&name);
                    match std::fs::read_to_string(&full) {
                        Ok(mut text) => {
                            if text.ends_with('\n') {
                                text.pop();
                                if text.ends_with('\r') {
                                    text.pop();
                                }
                            }
                            Secret::new(text)
                        }
                        Err(e) => {
                            self.err(
                                file.pos,
                                &fp,
                                Problem::new(
                                    format!(
                                        "cannot read the secret file `{}`: {e}",
                                        full.display()
                                    ),
                                    "check the path; it is relative to the manifest file",
                                ),
                            );
                            continue;
                        }
                    }
                }
                (None, Some((_, var))) => {
                    let vp = join_path(&p, "env");
                    let Some(var_name) = self.string(var, &vp) else {
                        continue;
                    };
                    match (self.env)(&var_name) {
                        Some(v) => Secret::new(v),
                        None => {
                            self.err(
                                var.pos,
                                &vp,
                                Problem::new(
                                    format!("the variable `{var_name}` is not set"),
                                    format!("set {var_name} in the environment of the deployer"),
                                ),
                            );
                            continue;
                        }
                    }
                }
                _ => {
                    self.err(
                        value.pos,
                        &p,
                        Problem::new(
                            "a secret needs exactly one of `file` or `env`",
                            "write `{file: PATH}` or `{env: VAR}`",
                        ),
                    );
                    continue;
                }
            };
            out.insert(key.name.clone(), secret);
        }
        out
    }

    fn port(&mut self, node: &Node, path: &str) -> Option<PortMapping> {
        match &node.kind {
            Kind::Map(entries) => {
                let f = self.fields(entries, path, PORT_KEYS);
                let target = match f.get("target") {
                    Some((_, n)) => self.number(n, &join_path(path, "target"), 1, 65535, "port")?,
                    None => {
                        self.err(
                            node.pos,
                            &join_path(path, "target"),
                            Problem::new(
                                "the port has no target",
                                "add `target: PORT` (the container port)",
                            ),
                        );
                        return None;
                    }
                };
                let published = match f.get("published") {
                    Some((_, n)) => {
                        Some(
                            self.number(n, &join_path(path, "published"), 1, 65535, "port")? as u16,
                        )
                    }
                    None => None,
                };
                let host_ip = match f.get("host_ip") {
                    Some((_, n)) => Some(self.parsed(n, &join_path(path, "host_ip"), |s| {
                        s.parse().map_err(|_| {
                            Problem::new(
                                format!("`{s}` is not an IP address"),
                                "write an IP like 127.0.0.1",
                            )
                        })
                    })?),
                    None => None,
                };
                let protocol = match f.get("protocol") {
                    Some((_, n)) => self.parsed(n, &join_path(path, "protocol"), |s| match s {
                        "tcp" => Ok(Protocol::Tcp),
                        "udp" => Ok(Protocol::Udp),
                        _ => Err(Problem::new(
                            format!("unknown protocol `{s}`"),
                            "use `tcp` or `udp`",
                        )),
                    })?,
                    None => Protocol::Tcp,
                };
                Some(PortMapping {
                    host_ip,
                    host_port: published,
                    container_port: target as u16,
                    protocol,
                })
            }
            _ => self.parsed(node, path, PortMapping::parse),
        }
    }

    fn volume_mount(
        &mut self,
        node: &Node,
        path: &str,
        declared: &BTreeMap<VolumeName, Pos>,
    ) -> Option<VolumeMount> {
        let (source, target, read_only) = match &node.kind {
            Kind::Map(entries) => {
                let f = self.fields(entries, path, VOLUME_KEYS);
                let source = match f.get("source") {
                    Some((_, n)) => self.string(n, &join_path(path, "source"))?,
                    None => {
                        self.err(
                            node.pos,
                            path,
                            Problem::new("the volume has no source", "add `source: VOLUME`"),
                        );
                        return None;
                    }
                };
                let target = match f.get("target") {
                    Some((_, n)) => self.string(n, &join_path(path, "target"))?,
                    None => {
                        self.err(
                            node.pos,
                            path,
                            Problem::new(
                                "the volume has no target",
                                "add `target: /path/in/container`",
                            ),
                        );
                        return None;
                    }
                };
                let read_only = match f.get("read_only") {
                    Some((_, n)) => self.parsed(n, &join_path(path, "read_only"), |s| match s {
                        "true" => Ok(true),
                        "false" => Ok(false),
                        _ => Err(Problem::new(
                            format!("`{s}` is not true or false"),
                            "write true or false",
                        )),
                    })?,
                    None => false,
                };
                (source, target, read_only)
            }
            _ => {
                let text = self.string(node, path)?;
                let parts: Vec<&str> = text.split(':').collect();
                let fix = "write volumes like \"data:/var/lib/data\" or \"data:/var/lib/data:ro\"";
                match parts.as_slice() {
                    [s, t] => ((*s).to_owned(), (*t).to_owned(), false),
                    [s, t, "ro"] => ((*s).to_owned(), (*t).to_owned(), true),
                    [s, t, "rw"] => ((*s).to_owned(), (*t).to_owned(), false),
                    [_, _, mode] => {
                        self.err(
                            node.pos,
                            path,
                            Problem::new(
                                format!("unknown mount mode `{mode}`"),
                                "use `ro` or `rw`",
                            ),
                        );
                        return None;
                    }
                    _ => {
                        self.err(
                            node.pos,
                            path,
                            Problem::new(format!("`{text}` is not a volume mount"), fix),
                        );
                        return None;
                    }
                }
            }
        };
        if source.starts_with(['/', '.', '~']) {
            self.err(
                node.pos,
                path,
                Problem::new(
                    format!("`{source}` is a bind mount, which the deployer does not support"),
                    "use a named volume declared under the top-level `volumes:`",
                ),
            );
            return None;
        }
        let volume = match VolumeName::parse(&source) {
            Ok(v) => v,
            Err(p) => {
                self.err(node.pos, path, p);
                return None;
            }
        };
        if !declared.contains_key(&volume) {
            self.err(
                node.pos,
                path,
                Problem::new(
                    format!("the volume `{volume}` is not declared"),
                    format!("add `{volume}: {{}}` under the top-level `volumes:`"),
                ),
            );
            return None;
        }
        if !target.starts_with('/') {
            self.err(
                node.pos,
                path,
                Problem::new(
                    format!("the mount target `{target}` is not an absolute path"),
                    "write the path inside the container, starting with /",
                ),
            );
            return None;
        }
        Some(VolumeMount {
            volume,
            target,
            read_only,
        })
    }

    fn health(&mut self, node: &Node, path: &str, ports: &[PortMapping]) -> Option<HealthCheck> {
        let entries = self.map(node, path, "write `health:` with `path` and `port`")?;
        let f = self.fields(entries, path, HEALTH_KEYS);
        let at = |k: &str| join_path(path, k);
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
        })
    }

    fn replicas(&mut self, node: &Node, path: &str) -> Option<u32> {
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

    fn update(&mut self, node: &Node, path: &str) -> Option<UpdatePolicy> {
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

    fn resources(&mut self, node: &Node, path: &str) -> Option<Resources> {
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

/// Whether two published ports would collide on the host.
fn clashes(a: &PortMapping, b: &PortMapping) -> bool {
    let unspecified = |p: &PortMapping| p.host_ip.is_none_or(|ip| ip.is_unspecified());
    a.host_port == b.host_port
        && a.protocol == b.protocol
        && (unspecified(a) || unspecified(b) || a.host_ip == b.host_ip)
}

/// A depends_on cycle as indexes into `drafts`, starting from its smallest service name.
fn find_cycle(drafts: &[ServiceDraft]) -> Option<Vec<usize>> {
    let index: BTreeMap<&ServiceName, usize> = drafts
        .iter()
        .enumerate()
        .map(|(i, d)| (&d.service.name, i))
        .collect();
    // 0 = unvisited, 1 = on the stack, 2 = done.
    let mut state = vec![0u8; drafts.len()];
    let mut stack = Vec::new();
    fn visit(
        i: usize,
        drafts: &[ServiceDraft],
        index: &BTreeMap<&ServiceName, usize>,
        state: &mut [u8],
        stack: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        state[i] = 1;
        stack.push(i);
        for dep in &drafts[i].service.depends_on {
            let Some(&j) = index.get(dep) else { continue };
            if state[j] == 1 {
                let start = stack.iter().position(|&k| k == j).unwrap_or(0);
                return Some(stack[start..].to_vec());
            }
            if state[j] == 0 {
                if let Some(c) = visit(j, drafts, index, state, stack) {
                    return Some(c);
                }
            }
        }
        stack.pop();
        state[i] = 2;
        None
    }
    let mut order: Vec<usize> = (0..drafts.len()).collect();
    order.sort_by(|a, b| drafts[*a].service.name.cmp(&drafts[*b].service.name));
    for i in order {
        if state[i] == 0 {
            if let Some(cycle) = visit(i, drafts, &index, &mut state, &mut stack) {
                // Rotate so the smallest name comes first: stable messages.
                let min = cycle
                    .iter()
                    .enumerate()
                    .min_by(|a, b| drafts[*a.1].service.name.cmp(&drafts[*b.1].service.name))
                    .map_or(0, |(k, _)| k);
                let mut c = cycle;
                c.rotate_left(min);
                return Some(c);
            }
        }
    }
    None
}

/// The allowed word closest to `word` by edit distance, if close enough to be a likely typo.
pub(super) fn closest<'w>(
    word: &str,
    candidates: impl Iterator<Item = &'w str>,
) -> Option<&'w str> {
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c)
}

/// Levenshtein distance with adjacent transpositions counted as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

fn is_env_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return &v[1..v.len() - 1];
        }
    }
    v
}

/// Splits a command string like a shell would for words: whitespace separates, single and
/// double quotes group, backslash escapes the next character outside single quotes.
fn split_words(s: &str) -> Result<Vec<String>, Problem> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err(unclosed(s)),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c) => cur.push(c),
                            None => return Err(unclosed(s)),
                        },
                        Some(c) => cur.push(c),
                        None => return Err(unclosed(s)),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    cur.push(c);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

fn unclosed(s: &str) -> Problem {
    Problem::new(
        format!("unclosed quote in the command `{s}`"),
        "close the quote, or write the command as a list: command: [\"serve\", \"--port\", \"8080\"]",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(
            closest("enviroment", SERVICE_KEYS.iter().copied()),
            Some("environment")
        );
        assert_eq!(
            closest("imgae", SERVICE_KEYS.iter().copied()),
            Some("image")
        );
        assert_eq!(closest("port", SERVICE_KEYS.iter().copied()), Some("ports"));
        assert_eq!(closest("zzzzzzzz", SERVICE_KEYS.iter().copied()), None);
    }

    #[test]
    fn words() {
        let check = |s: &str, expected: &[&str]| {
            assert_eq!(
                split_words(s).ok(),
                Some(expected.iter().map(|w| w.to_string()).collect::<Vec<_>>()),
                "input: {s}"
            )
        };
        check("serve --port 8080", &["serve", "--port", "8080"]);
        check("sh -c 'echo hi'", &["sh", "-c", "echo hi"]);
        check("a \"b c\" d\\ e", &["a", "b c", "d e"]);
        check("''", &[""]);
        assert!(split_words("'open").is_err());
    }
}
