//! The roll order: the manifest's `depends_on` edges plus the event edges, layered into levels
//! (a service rolls one level after the last thing it must follow). A cycle means no order
//! works; it is reported with the constraints that form it, and broken so the rest can be
//! ordered.

use std::collections::{BTreeMap, BTreeSet};

use super::report::{Finding, Kind};
use super::EventVersion;

/// `before` rolls in an earlier level than `after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub before: String,
    pub after: String,
    pub why: Why,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// `after` depends_on `before`.
    DependsOn,
    /// The producer's new image emits `event`, which the consumer's running image does not
    /// read: the consumer rolls first.
    ConsumerFirst {
        producer: String,
        consumer: String,
        event: EventVersion,
    },
    /// The consumer's new image no longer reads `event`, which the producer's running image
    /// emits: the producer rolls first.
    ProducerFirst {
        producer: String,
        consumer: String,
        event: EventVersion,
    },
}

/// The levels of every service in `depends_on` (sorted names within a level), and a finding
/// for each cycle. A cycle through an event edge whose event is in `allow` drops that edge
/// (the finding then names only the allowed events, so it counts as allowed).
pub fn levels(
    depends_on: &BTreeMap<String, Vec<String>>,
    event_edges: Vec<Edge>,
    allow: &BTreeSet<EventVersion>,
) -> (Vec<Vec<String>>, Vec<Finding>) {
    let mut edges: Vec<Edge> = Vec::new();
    for (s, deps) in depends_on {
        for d in deps.iter().filter(|d| depends_on.contains_key(*d)) {
            edges.push(Edge {
                before: d.clone(),
                after: s.clone(),
                why: Why::DependsOn,
            });
        }
    }
    edges.extend(event_edges);
    let mut findings = Vec::new();
    while let Some(cycle) = find_cycle(depends_on.keys(), &edges) {
        let in_cycle: Vec<&Edge> = cycle.iter().map(|&i| &edges[i]).collect();
        let allowed: Vec<usize> = cycle
            .iter()
            .copied()
            .filter(|&i| edges[i].why.event().is_some_and(|e| allow.contains(e)))
            .collect();
        let events: Vec<EventVersion> = if allowed.is_empty() {
            in_cycle
                .iter()
                .filter_map(|e| e.why.event())
                .cloned()
                .collect()
        } else {
            allowed
                .iter()
                .filter_map(|&i| edges[i].why.event())
                .cloned()
                .collect()
        };
        let chain: Vec<String> = in_cycle.iter().map(|e| e.text()).collect();
        let (producer, consumer) = in_cycle
            .iter()
            .find_map(|e| match &e.why {
                Why::ConsumerFirst {
                    producer, consumer, ..
                }
                | Why::ProducerFirst {
                    producer, consumer, ..
                } => Some((producer.clone(), consumer.clone())),
                Why::DependsOn => None,
            })
            .unzip();
        findings.push(Finding {
            kind: Kind::NoRollOrder,
            events: events.clone(),
            producer,
            consumer,
            message: format!(
                "no roll order lets every consumer read what is produced; the order tried needs {}, a cycle; roll the change in two applies, or pass --allow-incompatible {}",
                chain.join(", then "),
                super::join(&events),
            ),
        });
        // Break the cycle: drop its allowed edges, else its event edges (never loop forever).
        let mut drop: BTreeSet<usize> = if allowed.is_empty() {
            cycle
                .iter()
                .copied()
                .filter(|&i| edges[i].why.event().is_some())
                .collect()
        } else {
            allowed.into_iter().collect()
        };
        if drop.is_empty() {
            drop.insert(cycle[0]);
        }
        let mut i = 0;
        edges.retain(|_| {
            i += 1;
            !drop.contains(&(i - 1))
        });
    }
    (layer(depends_on.keys(), &edges), findings)
}

/// `a → b, c → d`: the levels restricted to `rolling`.
pub fn text(levels: &[Vec<String>], rolling: &BTreeSet<String>) -> String {
    let parts: Vec<String> = levels
        .iter()
        .map(|l| {
            l.iter()
                .filter(|s| rolling.contains(*s))
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        })
        .filter(|l| !l.is_empty())
        .collect();
    if parts.is_empty() {
        "nothing rolls".to_string()
    } else {
        parts.join(" → ")
    }
}

impl Why {
    pub fn event(&self) -> Option<&EventVersion> {
        match self {
            Why::DependsOn => None,
            Why::ConsumerFirst { event, .. } | Why::ProducerFirst { event, .. } => Some(event),
        }
    }
}

impl Edge {
    /// `a before b (why)`.
    pub fn text(&self) -> String {
        let (b, a) = (&self.before, &self.after);
        match &self.why {
            Why::DependsOn => format!("{b} before {a} ({a} depends_on {b})"),
            Why::ConsumerFirst {
                producer, event, ..
            } => format!(
                "{b} before {a} ({producer}'s new image emits {event}, which {b}'s running image does not read)"
            ),
            Why::ProducerFirst {
                consumer, event, ..
            } => format!(
                "{b} before {a} ({consumer}'s new image no longer reads {event}, which {b}'s running image emits)"
            ),
        }
    }
}

/// Longest-path layering of an acyclic graph.
fn layer<'a>(nodes: impl Iterator<Item = &'a String>, edges: &[Edge]) -> Vec<Vec<String>> {
    let nodes: Vec<&String> = nodes.collect();
    let mut level: BTreeMap<&str, usize> = BTreeMap::new();
    // Bellman-Ford style relaxation; at most |nodes| rounds for an acyclic graph.
    for n in &nodes {
        level.insert(n.as_str(), 0);
    }
    for _ in 0..=nodes.len() {
        let mut changed = false;
        for e in edges {
            let (Some(&b), Some(&a)) = (level.get(e.before.as_str()), level.get(e.after.as_str()))
            else {
                continue;
            };
            if a < b + 1 {
                level.insert(e.after.as_str(), b + 1);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let mut out: Vec<Vec<String>> = Vec::new();
    for (n, l) in level {
        if out.len() <= l {
            out.resize(l + 1, Vec::new());
        }
        out[l].push(n.to_string());
    }
    out.retain(|l| !l.is_empty());
    out
}

/// The indexes of the edges of one cycle, in order, or `None`.
fn find_cycle<'a>(nodes: impl Iterator<Item = &'a String>, edges: &[Edge]) -> Option<Vec<usize>> {
    let mut out: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, e) in edges.iter().enumerate() {
        out.entry(e.before.as_str()).or_default().push(i);
    }
    // 0 unvisited, 1 on the stack, 2 done.
    let mut state: BTreeMap<&str, u8> = BTreeMap::new();
    for start in nodes {
        if state.get(start.as_str()).copied().unwrap_or(0) != 0 {
            continue;
        }
        // Iterative DFS: (node, next edge position), and the edges taken to reach the top.
        let mut stack: Vec<(&str, usize)> = vec![(start.as_str(), 0)];
        let mut path: Vec<usize> = Vec::new();
        state.insert(start.as_str(), 1);
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let list = out.get(node).map(Vec::as_slice).unwrap_or(&[]);
            if let Some(&ei) = list.get(*next) {
                *next += 1;
                let to = edges[ei].after.as_str();
                match state.get(to).copied().unwrap_or(0) {
                    0 => {
                        state.insert(to, 1);
                        stack.push((to, 0));
                        path.push(ei);
                    }
                    1 => {
                        // The cycle: the path from `to` on, then this edge.
                        let from = path
                            .iter()
                            .position(|&p| edges[p].before == to)
                            .unwrap_or(path.len());
                        let mut cycle: Vec<usize> = path[from..].to_vec();
                        cycle.push(ei);
                        return Some(cycle);
                    }
                    _ => {}
                }
            } else {
                state.insert(node, 2);
                stack.pop();
                path.pop();
            }
        }
    }
    None
}
