//! The event gates of a plan: every consumer reads what is produced after every roll step (and
//! the roll order that makes it so), a produced version keeps its schema, and every version the
//! store holds stays readable by the consumers of its type.
//!
//! The model of a roll: services roll level by level; while a level rolls, the old and the new
//! container of each of its services both run, so every mix of old and new contracts within a
//! level is live at some moment. Services of earlier levels run their new contract, of later
//! levels their old one. A pair of services constrains the order only through what one produces
//! and the other consumes, so the checks work pair by pair and add "X rolls before Y" edges to
//! the manifest's `depends_on` edges.

use std::collections::{BTreeMap, BTreeSet};

use super::order::{self, Edge, Why};
use super::report::{EventReport, Finding, Kind, Rebuild};
use super::{
    from_labels, join, projection_version, schema, Contract, ContractError, EventInputs,
    EventVersion,
};

/// What the plan does, as the gates need it.
#[derive(Debug, Clone, Default)]
pub struct PlanShape {
    /// Every manifest service and what it `depends_on`.
    pub depends_on: BTreeMap<String, Vec<String>>,
    /// The services the plan creates or replaces (their contract changes from the running
    /// image's to the desired image's).
    pub rolling: BTreeSet<String>,
}

/// Runs the gates: the report, and the deploy order (levels of every manifest service, the
/// `depends_on` levels split where an event constraint asks). Err: a desired image's contract
/// label is malformed (a plan error).
pub fn check(
    inputs: &EventInputs,
    shape: &PlanShape,
    allow: &BTreeSet<EventVersion>,
) -> Result<(EventReport, Vec<Vec<String>>), ContractError> {
    let mut report = EventReport {
        checked: true,
        allow_incompatible: allow.iter().cloned().collect(),
        ..EventReport::default()
    };
    let fleet = Fleet::read(inputs, shape, &mut report)?;
    let mut findings = Vec::new();

    // 1. Consumers read what is produced: the final state, and each pair's order.
    let mut edges = Vec::new();
    let names: Vec<&String> = fleet.services.keys().collect();
    for p in &names {
        for c in &names {
            pair(&fleet, p, c, &mut findings, &mut edges);
            let (ps, cs) = (&fleet.services[p.as_str()], &fleet.services[c.as_str()]);
            let now = unreadable(ps.old.as_ref(), cs.old.as_ref());
            let after = unreadable(ps.new.as_ref(), cs.new.as_ref());
            for e in now.intersection(&after) {
                report.notes.push(format!(
                    "already now, {c} cannot read {e}, which {p} emits; this plan does not change that, so it is not refused"
                ));
            }
        }
    }
    let (levels, cycles) = order::levels(&shape.depends_on, edges, allow);
    let tried = order::text(&levels, &shape.rolling);
    for f in findings.iter_mut() {
        if f.kind == Kind::ConsumerCannotRead {
            f.message.push_str(&format!(" (roll order tried: {tried})"));
        }
    }
    findings.extend(cycles);
    let read_ok = findings.is_empty();

    // 2. A produced version keeps its schema.
    let before = findings.len();
    schema_changes(&fleet, &mut findings);
    let schema_ok = findings.len() == before;

    // 3. The stored versions stay readable.
    let before = findings.len();
    let stored_checked = stored_versions(&fleet, inputs, &mut findings);
    let stored_ok = findings.len() == before;

    let n_events: BTreeSet<&EventVersion> = fleet
        .services
        .values()
        .flat_map(|s| s.old.iter().chain(s.new.iter()))
        .flat_map(|c| c.produces.iter())
        .collect();
    if read_ok {
        let (n, m) = (n_events.len(), fleet.with_contract());
        report.passed.push(format!(
            "every consumer reads what is produced, after every roll step ({n} event version{}, {m} service{} with a contract)",
            if n == 1 { "" } else { "s" },
            if m == 1 { "" } else { "s" },
        ));
    }
    if schema_ok {
        report
            .passed
            .push("every produced version keeps a compatible schema".to_string());
    }
    if stored_checked && stored_ok {
        report
            .passed
            .push("every stored version stays readable by the consumers of its type".to_string());
    }
    for f in findings {
        if f.events.iter().any(|e| allow.contains(e)) {
            report.allowed.push(f);
        } else {
            report.refusals.push(f);
        }
    }
    let used: BTreeSet<&EventVersion> = report.allowed.iter().flat_map(|f| &f.events).collect();
    for a in allow.iter().filter(|a| !used.contains(a)) {
        report.notes.push(format!(
            "--allow-incompatible {a}: no refusal names {a}; the flag changes nothing"
        ));
    }
    report.order = levels
        .iter()
        .map(|l| {
            l.iter()
                .filter(|s| shape.rolling.contains(*s))
                .cloned()
                .collect::<Vec<_>>()
        })
        .filter(|l| !l.is_empty())
        .collect();
    report.rebuilds = rebuilds(inputs, shape, &mut report.notes)?;
    Ok((report, levels))
}

/// The read models the plan rolls to another projection version (the running containers' and
/// the desired image's `io.fleet.projection.version` both set, and different). Err: the desired
/// image's label is malformed; a malformed running label is a note (apply refuses to roll it).
fn rebuilds(
    inputs: &EventInputs,
    shape: &PlanShape,
    notes: &mut Vec<String>,
) -> Result<Vec<Rebuild>, ContractError> {
    let mut out = Vec::new();
    for service in &shape.rolling {
        let (Some(new), Some(old)) = (inputs.desired.get(service), inputs.running.get(service))
        else {
            continue;
        };
        let to = projection_version(&new.image, &new.labels)?;
        let from = match projection_version(&old.image, &old.labels) {
            Ok(v) => v,
            Err(e) => {
                notes.push(format!("the running projection version is unreadable: {e}"));
                None
            }
        };
        if let (Some(from), Some(to)) = (from, to) {
            if from != to {
                out.push(Rebuild {
                    service: service.clone(),
                    from,
                    to,
                });
            }
        }
    }
    Ok(out)
}

/// A service's contracts before and after the plan (`None`: no contract, or not running).
#[derive(Debug, Default)]
struct Service {
    rolls: bool,
    old_image: String,
    new_image: String,
    old: Option<Contract>,
    new: Option<Contract>,
}

struct Fleet {
    services: BTreeMap<String, Service>,
}

impl Fleet {
    fn read(
        inputs: &EventInputs,
        shape: &PlanShape,
        report: &mut EventReport,
    ) -> Result<Fleet, ContractError> {
        let mut services = BTreeMap::new();
        let mut without = BTreeSet::new();
        for name in shape.depends_on.keys() {
            let rolls = shape.rolling.contains(name);
            let mut s = Service {
                rolls,
                ..Service::default()
            };
            if let Some(d) = inputs.desired.get(name) {
                s.new_image = d.image.clone();
                s.new = from_labels(&d.image, &d.labels)?;
                if s.new.is_none() {
                    without.insert(d.image.clone());
                }
            }
            if let Some(r) = inputs.running.get(name) {
                s.old_image = r.image.clone();
                match from_labels(&r.image, &r.labels) {
                    Ok(c) => s.old = c,
                    Err(e) => report.notes.push(format!(
                        "the running image's contract is malformed, so it counts as none: {e}"
                    )),
                }
                if s.old.is_none() && rolls {
                    without.insert(r.image.clone());
                }
            }
            if !rolls {
                // Not rolled: one contract throughout, the running one when it runs.
                if inputs.running.contains_key(name) {
                    s.new = s.old.clone();
                    s.new_image = s.old_image.clone();
                } else {
                    s.old = s.new.clone();
                    s.old_image = s.new_image.clone();
                }
            }
            services.insert(name.clone(), s);
        }
        if !without.is_empty() {
            report.notes.push(format!(
                "images without an event contract, ignored by the event checks: {}",
                without.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
            report.without_contract = without.into_iter().collect();
        }
        Ok(Fleet { services })
    }

    fn with_contract(&self) -> usize {
        self.services
            .values()
            .filter(|s| s.old.is_some() || s.new.is_some())
            .count()
    }
}

/// The versions `p` produces that `c` reads other versions of but not these.
fn unreadable(p: Option<&Contract>, c: Option<&Contract>) -> BTreeSet<EventVersion> {
    let (Some(p), Some(c)) = (p, c) else {
        return BTreeSet::new();
    };
    p.produces
        .iter()
        .filter(|e| c.consumes.reads_type(&e.event_type) && !c.consumes.reads(e))
        .cloned()
        .collect()
}

/// What `c` reads of `event_type`, for messages.
fn reads_of(c: Option<&Contract>, event_type: &str) -> String {
    match c.map(|c| &c.consumes) {
        Some(super::Consumes::Only(set)) => join(set.iter().filter(|e| e.event_type == event_type)),
        _ => "*".to_string(),
    }
}

fn pair(fleet: &Fleet, p: &str, c: &str, findings: &mut Vec<Finding>, edges: &mut Vec<Edge>) {
    let (ps, cs) = (&fleet.services[p], &fleet.services[c]);
    if !ps.rolls && !cs.rolls {
        return; // neither changes: whatever holds now keeps holding
    }
    let old_old = unreadable(ps.old.as_ref(), cs.old.as_ref());
    let fin = unreadable(ps.new.as_ref(), cs.new.as_ref());
    for e in fin.difference(&old_old) {
        findings.push(Finding {
            kind: Kind::ConsumerCannotRead,
            events: vec![e.clone()],
            producer: Some(p.to_string()),
            consumer: Some(c.to_string()),
            message: format!(
                "{c} ({ci}) cannot read {e}, which {p} ({pi}) emits: it reads {reads} of {t}; no roll order helps: add {e} to {c}'s {label}, or pass --allow-incompatible {e}",
                ci = cs.new_image,
                pi = ps.new_image,
                reads = reads_of(cs.new.as_ref(), &e.event_type),
                t = e.event_type,
                label = super::LABEL_CONSUMES,
            ),
        });
    }
    if p == c || !ps.rolls || !cs.rolls {
        // One side fixed: the mixed states are the start or the end. A service's own events
        // are read by its own new code once it rolled.
        return;
    }
    let skip: BTreeSet<&EventVersion> = old_old.iter().chain(fin.iter()).collect();
    let keep = |s: BTreeSet<EventVersion>| -> BTreeSet<EventVersion> {
        s.into_iter().filter(|e| !skip.contains(e)).collect()
    };
    // Producer rolled first, consumer still old: these need the consumer first.
    let p_first = keep(unreadable(ps.new.as_ref(), cs.old.as_ref()));
    // Consumer rolled first, producer still old: these need the producer first.
    let c_first = keep(unreadable(ps.old.as_ref(), cs.new.as_ref()));
    if !p_first.is_empty() && !c_first.is_empty() {
        let a = join(&p_first);
        let b = join(&c_first);
        findings.push(Finding {
            kind: Kind::NoRollOrder,
            events: p_first.iter().chain(c_first.iter()).cloned().collect(),
            producer: Some(p.to_string()),
            consumer: Some(c.to_string()),
            message: format!(
                "no roll order of {p} and {c} lets {c} read what {p} emits: if {p} rolls first, {c} ({co}, still running) cannot read {a} that {p} ({pn}) emits; if {c} rolls first, {c} ({cn}) cannot read {b} that {p} ({po}, still running) emits; roll it in two applies (first a {c} that reads both, or a {p} that emits both), or pass --allow-incompatible for {a} or {b}",
                co = cs.old_image,
                pn = ps.new_image,
                cn = cs.new_image,
                po = ps.old_image,
            ),
        });
        return;
    }
    for e in p_first {
        edges.push(Edge {
            before: c.to_string(),
            after: p.to_string(),
            why: Why::ConsumerFirst {
                producer: p.to_string(),
                consumer: c.to_string(),
                event: e,
            },
        });
    }
    for e in c_first {
        edges.push(Edge {
            before: p.to_string(),
            after: c.to_string(),
            why: Why::ProducerFirst {
                producer: p.to_string(),
                consumer: c.to_string(),
                event: e,
            },
        });
    }
}

/// Check 2: a desired image producing `Type@N` keeps the running schema of `Type@N`.
fn schema_changes(fleet: &Fleet, findings: &mut Vec<Finding>) {
    // The running schemas of each version, by the image that runs it.
    let mut running: BTreeMap<&EventVersion, Vec<(&str, &str, &serde_json::Value)>> =
        BTreeMap::new();
    for (name, s) in &fleet.services {
        if let Some(c) = &s.old {
            for (e, sch) in &c.schemas {
                running
                    .entry(e)
                    .or_default()
                    .push((name, s.old_image.as_str(), sch));
            }
        }
    }
    for (name, s) in fleet.services.iter().filter(|(_, s)| s.rolls) {
        let Some(c) = &s.new else { continue };
        for (e, new) in &c.schemas {
            let Some(olds) = running.get(e) else { continue };
            // The service's own running schema first; another producer's when it is new here.
            let own: Vec<_> = olds.iter().filter(|(n, _, _)| n == name).collect();
            let against = if own.is_empty() {
                olds.iter().collect()
            } else {
                own
            };
            for (_, old_image, old) in against {
                if old_image == &s.new_image {
                    continue;
                }
                let diffs = schema::incompatibilities(old, new);
                if diffs.is_empty() {
                    continue;
                }
                let next = EventVersion::new(e.event_type.clone(), e.version + 1);
                findings.push(Finding {
                    kind: Kind::SchemaChanged,
                    events: vec![e.clone()],
                    producer: Some(name.clone()),
                    consumer: None,
                    message: format!(
                        "{name} ({ni}) changes the meaning of {e}: its schema is not backward compatible with {e} of {old_image}: {d}; publish {next} instead (a new version consumers can add next to {e}), or pass --allow-incompatible {e}",
                        ni = s.new_image,
                        d = diffs.join("; "),
                    ),
                });
                break;
            }
        }
    }
}

/// Check 3: every version the store holds stays readable by each changed consumer of its
/// type. Returns false when skipped (`stored` is `None`: the reader of the inputs notes why,
/// no `event_store` in the manifest or a store that cannot answer).
fn stored_versions(fleet: &Fleet, inputs: &EventInputs, findings: &mut Vec<Finding>) -> bool {
    let Some(stored) = &inputs.stored else {
        return false;
    };
    for (name, s) in fleet.services.iter().filter(|(_, s)| s.rolls) {
        let Some(c) = &s.new else { continue };
        for st in stored.iter().filter(|st| st.count > 0) {
            let e = EventVersion::new(st.event_type.clone(), st.version);
            if !c.consumes.reads_type(&st.event_type) || c.consumes.reads(&e) {
                continue;
            }
            findings.push(Finding {
                kind: Kind::StoredUnreadable,
                events: vec![e.clone()],
                producer: None,
                consumer: Some(name.clone()),
                message: format!(
                    "{name} ({img}) reads {t} but not {e}, and the store holds {n} {e} event{s} (positions {a}..{b}); its next replay or rebuild would fail on them: keep {e} in its {label} (upcast it to the new version), or pass --allow-incompatible {e}",
                    img = s.new_image,
                    t = st.event_type,
                    n = st.count,
                    s = if st.count == 1 { "" } else { "s" },
                    a = st.first_position,
                    b = st.last_position,
                    label = super::LABEL_CONSUMES,
                ),
            });
        }
    }
    true
}
