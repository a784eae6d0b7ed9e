//! How a service attaches to the host and to storage: published ports and volume mounts.

use std::collections::BTreeMap;

use super::super::types::{PortMapping, Problem, Protocol, VolumeMount, VolumeName};
use super::super::yaml::{join_path, Kind, Node, Pos};
use super::Checker;

const PORT_KEYS: &[&str] = &["target", "published", "host_ip", "protocol"];
const VOLUME_KEYS: &[&str] = &["source", "target", "read_only"];

impl Checker<'_> {
    pub(super) fn port(&mut self, node: &Node, path: &str) -> Option<PortMapping> {
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

    pub(super) fn volume_mount(
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

    /// `ports:`, with the position of each for the cross-service rules.
    pub(super) fn ports(&mut self, n: &Node, path: &str) -> (Vec<PortMapping>, Vec<Pos>) {
        let mut ports = Vec::new();
        let mut ports_pos = Vec::new();
        for (i, item) in self.list(n, path, "write ports as a list: ports: [\"8080:80\"]") {
            if let Some(p) = self.port(item, &format!("{path}[{i}]")) {
                ports.push(p);
                ports_pos.push(item.pos);
            }
        }
        (ports, ports_pos)
    }

    /// `volumes:`, each a declared named volume, no two at one target.
    pub(super) fn volumes(
        &mut self,
        n: &Node,
        path: &str,
        declared: &BTreeMap<VolumeName, Pos>,
    ) -> Vec<VolumeMount> {
        let mut volumes: Vec<VolumeMount> = Vec::new();
        for (i, item) in self.list(
            n,
            path,
            "write volumes as a list: volumes: [\"data:/var/lib/data\"]",
        ) {
            let p = format!("{path}[{i}]");
            let Some(m) = self.volume_mount(item, &p, declared) else {
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
        volumes
    }
}
