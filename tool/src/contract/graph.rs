//! The fleet's event graph (services → `Type@version` → services) for `deployer events`, with
//! the edges the plan would break marked, in text, JSON, Graphviz dot and Mermaid.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::Serialize;

use super::report::{EventReport, Kind};
use super::{from_labels, Consumes, ContractError, EventInputs, EventVersion};

/// The graph of one side of the plan (the desired fleet, or the running one).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EventGraph {
    /// `desired` or `running`.
    pub fleet: String,
    pub services: Vec<GraphService>,
    /// Every version produced, consumed or stored.
    pub events: Vec<EventVersion>,
    pub edges: Vec<GraphEdge>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GraphService {
    pub name: String,
    pub image: String,
    /// False when the image has no contract labels.
    pub contract: bool,
    /// True when it consumes `*`: an edge from every event leads to it.
    pub consumes_all: bool,
}

/// `service → event` (produces) or `event → service` (consumes).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct GraphEdge {
    pub service: String,
    pub event: EventVersion,
    pub produces: bool,
    /// Set when the plan would break this edge; says how.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broken: Option<String>,
}

/// Output formats of `deployer events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Dot,
    Mermaid,
}

impl EventGraph {
    /// The graph of the desired fleet (or the running one when `running`), with the edges the
    /// report's refusals and allowed refusals name marked as broken.
    pub fn build(
        inputs: &EventInputs,
        running: bool,
        report: &EventReport,
    ) -> Result<EventGraph, ContractError> {
        let side = if running {
            &inputs.running
        } else {
            &inputs.desired
        };
        let mut g = EventGraph {
            fleet: if running { "running" } else { "desired" }.to_string(),
            ..EventGraph::default()
        };
        let mut events: BTreeSet<EventVersion> = BTreeSet::new();
        let mut edges: BTreeSet<GraphEdge> = BTreeSet::new();
        let mut all_readers = Vec::new();
        for (name, il) in side {
            let contract = from_labels(&il.image, &il.labels)?;
            let consumes_all =
                matches!(contract.as_ref().map(|c| &c.consumes), Some(Consumes::All));
            g.services.push(GraphService {
                name: name.clone(),
                image: il.image.clone(),
                contract: contract.is_some(),
                consumes_all,
            });
            let Some(c) = contract else { continue };
            for e in &c.produces {
                events.insert(e.clone());
                edges.insert(edge(name, e, true));
            }
            match &c.consumes {
                Consumes::All => all_readers.push(name.clone()),
                Consumes::Only(set) => {
                    for e in set {
                        events.insert(e.clone());
                        edges.insert(edge(name, e, false));
                    }
                }
            }
        }
        for st in inputs.stored.iter().flatten().filter(|s| s.count > 0) {
            events.insert(EventVersion::new(st.event_type.clone(), st.version));
        }
        for f in report.refusals.iter().chain(&report.allowed) {
            for e in &f.events {
                let (service, produces) = match (f.kind, &f.producer, &f.consumer) {
                    (Kind::SchemaChanged, Some(p), _) => (p, true),
                    (_, _, Some(c)) => (c, false),
                    _ => continue,
                };
                if !side.contains_key(service) {
                    continue;
                }
                events.insert(e.clone());
                let same = |x: &GraphEdge| {
                    &x.service == service && &x.event == e && x.produces == produces
                };
                if edges.iter().any(|x| same(x) && x.broken.is_some()) {
                    continue;
                }
                edges.retain(|x| !same(x));
                let mut b = edge(service, e, produces);
                b.broken = Some(f.kind.title().to_string());
                edges.insert(b);
            }
        }
        for name in &all_readers {
            for e in &events {
                let plain = edge(name, e, false);
                if !edges
                    .iter()
                    .any(|x| x.service == plain.service && x.event == *e && !x.produces)
                {
                    edges.insert(plain);
                }
            }
        }
        g.events = events.into_iter().collect();
        g.edges = edges.into_iter().collect();
        Ok(g)
    }

    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Text => self.text(),
            Format::Json => serde_json::to_string_pretty(self).unwrap_or_default() + "\n",
            Format::Dot => self.dot(),
            Format::Mermaid => self.mermaid(),
        }
    }

    /// The edges of one event: producers, then consumers.
    fn of(&self, e: &EventVersion) -> (Vec<&GraphEdge>, Vec<&GraphEdge>) {
        self.edges
            .iter()
            .filter(|x| &x.event == e)
            .partition(|x| x.produces)
    }

    fn text(&self) -> String {
        let mut out = format!(
            "event graph of the {} fleet (producers → Type@version → consumers)\n",
            self.fleet
        );
        let names = |list: &[&GraphEdge]| -> String {
            if list.is_empty() {
                return "(none)".to_string();
            }
            list.iter()
                .map(|x| match &x.broken {
                    Some(why) => format!("{} BROKEN ({why})", x.service),
                    None => x.service.clone(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        for e in &self.events {
            let (p, c) = self.of(e);
            let _ = writeln!(out, "  {} → {e} → {}", names(&p), names(&c));
        }
        let without: Vec<String> = self
            .services
            .iter()
            .filter(|s| !s.contract)
            .map(|s| format!("{} ({})", s.name, s.image))
            .collect();
        if !without.is_empty() {
            let _ = writeln!(out, "  without a contract: {}", without.join(", "));
        }
        let broken = self.edges.iter().filter(|x| x.broken.is_some()).count();
        let _ = writeln!(
            out,
            "{} edges, {broken} broken by the plan",
            self.edges.len()
        );
        out
    }

    fn dot(&self) -> String {
        let mut out =
            String::from("digraph events {\n  rankdir=LR;\n  node [fontname=\"Helvetica\"];\n");
        for s in &self.services {
            let style = if s.contract { "" } else { ", style=dotted" };
            let _ = writeln!(
                out,
                "  \"s:{}\" [label=\"{}\", shape=box{style}];",
                s.name, s.name
            );
        }
        for e in &self.events {
            let _ = writeln!(out, "  \"e:{e}\" [label=\"{e}\", shape=ellipse];");
        }
        for x in &self.edges {
            let (from, to) = if x.produces {
                (format!("s:{}", x.service), format!("e:{}", x.event))
            } else {
                (format!("e:{}", x.event), format!("s:{}", x.service))
            };
            let attrs = match &x.broken {
                Some(why) => {
                    format!(" [color=red, style=dashed, fontcolor=red, label=\"BROKEN: {why}\"]")
                }
                None => String::new(),
            };
            let _ = writeln!(out, "  \"{from}\" -> \"{to}\"{attrs};");
        }
        out.push_str("}\n");
        out
    }

    fn mermaid(&self) -> String {
        let mut out = String::from("flowchart LR\n");
        for s in &self.services {
            let _ = writeln!(out, "  {}[{}]", id("s", &s.name), s.name);
        }
        for e in &self.events {
            let _ = writeln!(out, "  {}([{e}])", id("e", &e.to_string()));
        }
        let mut broken = Vec::new();
        for (i, x) in self.edges.iter().enumerate() {
            let (s, e) = (id("s", &x.service), id("e", &x.event.to_string()));
            let (from, to) = if x.produces { (s, e) } else { (e, s) };
            if x.broken.is_some() {
                broken.push(i.to_string());
                let _ = writeln!(out, "  {from} -. BROKEN .-x {to}");
            } else {
                let _ = writeln!(out, "  {from} --> {to}");
            }
        }
        if !broken.is_empty() {
            let _ = writeln!(
                out,
                "  linkStyle {} stroke:red,stroke-width:2px",
                broken.join(",")
            );
        }
        out
    }
}

fn edge(service: &str, e: &EventVersion, produces: bool) -> GraphEdge {
    GraphEdge {
        service: service.to_string(),
        event: e.clone(),
        produces,
        broken: None,
    }
}

/// A Mermaid node id: letters, digits and `_` only.
fn id(prefix: &str, name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("{prefix}_{clean}")
}
