//! Turns the merged YAML tree into a checked `Manifest`: interpolation, env files, secrets and
//! every rule. Problems are collected (each with file, line, column, key path and a fix) so one
//! run reports all of them; cross-service rules run only when each service is valid on its own.
//!
//! The checker is one `Checker` spread over files by concern: `readers` (typed readers of YAML
//! nodes), `service` (one service's keys), `mounts` (ports and volume mounts), `files` (env files
//! and secrets read from disk), `graph` (rules across services) and `text` (string helpers).

mod files;
mod graph;
mod mounts;
mod readers;
mod service;
mod text;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::input::{too_large, MAX_FILE_BYTES};
use super::types::{NetworkName, PortMapping, Problem, ProjectName, ServiceName, VolumeName};
use super::yaml::{self, join_path, Key, Kind, Node, Pos};
use super::{Diagnostic, EventStore, Manifest, ManifestError, NetworkSpec, Service, VolumeSpec};
use crate::labels;

const TOP_KEYS: &[&str] = &["project", "services", "networks", "volumes", "event_store"];

pub(super) fn check(
    sources: &[(PathBuf, String)],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Manifest, ManifestError> {
    let mut root: Option<Node> = None;
    let mut diags = Vec::new();
    for (i, (path, text)) in sources.iter().enumerate() {
        if text.len() as u64 > MAX_FILE_BYTES {
            diags.push(Diagnostic {
                file: path.clone(),
                line: 0,
                column: 0,
                key: String::new(),
                problem: too_large("the manifest", text.len() as u64),
                fix: String::new(),
            });
            continue;
        }
        match yaml::parse(text, i) {
            Ok(node) => {
                root = Some(match root {
                    None => node,
                    // An empty overlay changes nothing.
                    Some(base) if node.kind == Kind::Null => base,
                    Some(base) => yaml::merge(base, node),
                });
            }
            Err(errors) => diags.extend(errors.into_iter().map(|e| Diagnostic {
                file: path.clone(),
                line: e.pos.line,
                column: e.pos.col,
                key: e.key,
                problem: e.problem,
                fix: e.fix,
            })),
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

/// A service with what the cross-service rules read and the positions they point at. `service`
/// is `None` when the service has problems of its own; the rules still run on the rest.
struct ServiceDraft {
    service: Option<Service>,
    name: ServiceName,
    /// The ports, replicas and dependencies that are valid.
    ports: Vec<PortMapping>,
    replicas: u32,
    depends_on: BTreeSet<ServiceName>,
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
        // Every well-named service, valid or not: `depends_on` may name any of them.
        let mut all_names: BTreeSet<ServiceName> = BTreeSet::new();
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
                            Ok(n) => {
                                all_names.insert(n.clone());
                                n
                            }
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
        // The rules across services run whatever else is wrong, on the services that are
        // valid on their own, so one run reports every problem.
        self.cross_checks(&drafts, &all_names);
        let event_store = match f.get("event_store") {
            Some((_, node)) => self.event_store(node, &all_names),
            None => None,
        };
        let project = project?;
        if !self.diags.is_empty() {
            return None;
        }
        let mut used_networks: BTreeSet<NetworkName> = BTreeSet::new();
        for d in &drafts {
            if let Some(s) = &d.service {
                used_networks.extend(s.networks.iter().cloned());
            }
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
                .filter_map(|d| d.service)
                .map(|s| (s.name.clone(), s))
                .collect(),
            networks,
            volumes,
            event_store,
            sources: self.sources.iter().map(|(p, _)| p.clone()).collect(),
        })
    }

    /// Top-level `event_store: {service: NAME, port: N}`: which service is the event store,
    /// and the port it listens on inside the project network.
    fn event_store(&mut self, node: &Node, services: &BTreeSet<ServiceName>) -> Option<EventStore> {
        let fix = "write `event_store: {service: NAME, port: N}`";
        let entries = self.map(node, "event_store", fix)?;
        let f = self.fields(entries, "event_store", &["service", "port"]);
        let service = match f.get("service") {
            Some((_, n)) => self
                .parsed(n, "event_store.service", ServiceName::parse)
                .and_then(|name| {
                    if services.contains(&name) {
                        Some(name)
                    } else {
                        let known: Vec<&str> = services.iter().map(ServiceName::as_str).collect();
                        self.err(
                            n.pos,
                            "event_store.service",
                            Problem::new(
                                format!("`{name}` is not a service of this manifest"),
                                format!(
                                    "name the event store's service, one of: {}",
                                    known.join(", ")
                                ),
                            ),
                        );
                        None
                    }
                }),
            None => {
                self.err(
                    node.pos,
                    "event_store.service",
                    Problem::new(
                        "the event store's service is missing",
                        "add `service: NAME` under `event_store:`",
                    ),
                );
                None
            }
        };
        let port = match f.get("port") {
            Some((_, n)) => self
                .number(n, "event_store.port", 1, 65535, "port")
                .and_then(|p| u16::try_from(p).ok()),
            None => {
                self.err(
                    node.pos,
                    "event_store.port",
                    Problem::new(
                        "the event store's port is missing",
                        "add `port: N` (the port it listens on inside the network) under `event_store:`",
                    ),
                );
                None
            }
        };
        Some(EventStore {
            service: service?,
            port: port?,
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
}
