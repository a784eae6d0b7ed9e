//! Rules across services: `depends_on` targets and cycles, published host ports.

use std::collections::{BTreeMap, BTreeSet};

use super::super::types::{PortMapping, Problem, ServiceName};
use super::super::yaml::Pos;
use super::text::closest;
use super::{Checker, ServiceDraft};

impl Checker<'_> {
    /// Rules across services: depends_on targets and cycles, published host ports.
    /// `names` holds every service of the manifest, also those not valid on their own.
    pub(super) fn cross_checks(&mut self, drafts: &[ServiceDraft], names: &BTreeSet<ServiceName>) {
        for d in drafts {
            for (dep, pos) in &d.depends_pos {
                if !names.contains(dep) {
                    let fix = match closest(dep.as_str(), names.iter().map(|n| n.as_str())) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => "name a service of this manifest".to_owned(),
                    };
                    self.err(
                        *pos,
                        &format!("services.{}.depends_on", d.name),
                        Problem::new(format!("`{dep}` is not a service of this manifest"), fix),
                    );
                }
            }
        }
        if let Some(cycle) = find_cycle(drafts) {
            let first = &drafts[cycle[0]];
            let next = &drafts[cycle[1 % cycle.len()]].name;
            let pos = first
                .depends_pos
                .get(next)
                .copied()
                .unwrap_or(first.key_pos);
            let mut names: Vec<String> =
                cycle.iter().map(|&i| drafts[i].name.to_string()).collect();
            names.push(first.name.to_string());
            self.err(
                pos,
                &format!("services.{}.depends_on", first.name),
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
            for (p, pos) in d.ports.iter().zip(&d.ports_pos) {
                let Some(host_port) = p.host_port else {
                    continue;
                };
                let i = d.ports.iter().position(|q| std::ptr::eq(q, p)).unwrap_or(0);
                let key = format!("services.{}.ports[{i}]", d.name);
                if d.replicas > 1 {
                    self.err(
                        d.replicas_pos,
                        &format!("services.{}.replicas", d.name),
                        Problem::new(
                            format!(
                                "{} replicas cannot all publish host port {host_port}",
                                d.replicas
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
                    published.push((p, &d.name, *pos));
                }
            }
        }
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
        .map(|(i, d)| (&d.name, i))
        .collect();
    // 0 = unvisited, 1 = on the stack, 2 = done.
    let mut state = vec![0u8; drafts.len()];
    let mut stack = Vec::new();
    pub(super) fn visit(
        i: usize,
        drafts: &[ServiceDraft],
        index: &BTreeMap<&ServiceName, usize>,
        state: &mut [u8],
        stack: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        state[i] = 1;
        stack.push(i);
        for dep in &drafts[i].depends_on {
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
    order.sort_by(|a, b| drafts[*a].name.cmp(&drafts[*b].name));
    for i in order {
        if state[i] == 0 {
            if let Some(cycle) = visit(i, drafts, &index, &mut state, &mut stack) {
                // Rotate so the smallest name comes first: stable messages.
                let min = cycle
                    .iter()
                    .enumerate()
                    .min_by(|a, b| drafts[*a.1].name.cmp(&drafts[*b.1].name))
                    .map_or(0, |(k, _)| k);
                let mut c = cycle;
                c.rotate_left(min);
                return Some(c);
            }
        }
    }
    None
}
