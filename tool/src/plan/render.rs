//! Human rendering of a plan: one block per service with a sign (`+` create, `~` replace,
//! `^` scale, `-` remove, `=` unchanged), the reasons, then networks and volumes, then the
//! summary line. Colour is ANSI escapes, only when asked (on a TTY).

use std::fmt::Write as _;

use super::{Action, Change, KeyChanges, Plan, ReplaceReason, ServicePlan};
use crate::manifest::SENSITIVE;
use crate::spec;

const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const CYAN: &str = "\x1b[36m";
const RED: &str = "\x1b[31m";
const DIM: &str = "\x1b[2m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

/// Renders the plan for a terminal, grouped by service, ending in the summary line
/// (`Plan: 1 to create, 2 to replace, 0 to remove.` or `No changes.`).
pub fn render_human(plan: &Plan, color: bool) -> String {
    let paint = |code: &str, text: &str| {
        if color {
            format!("{code}{text}{RESET}")
        } else {
            text.to_owned()
        }
    };
    let mut out = String::new();
    let _ = writeln!(out, "Project {}", paint(BOLD, &plan.project));
    for sp in &plan.services {
        out.push('\n');
        render_service(&mut out, sp, &paint);
    }
    if !plan.networks_to_create.is_empty() || !plan.volumes_to_create.is_empty() {
        out.push('\n');
    }
    for n in &plan.networks_to_create {
        let _ = writeln!(
            out,
            "{}",
            paint(GREEN, &format!("+ network {}", n.engine_name))
        );
    }
    for v in &plan.volumes_to_create {
        let _ = writeln!(
            out,
            "{}",
            paint(GREEN, &format!("+ volume {}", v.engine_name))
        );
    }
    let events = plan.events.render();
    if !events.is_empty() {
        out.push('\n');
        for line in events.lines() {
            let painted = if line.starts_with("  REFUSED") {
                paint(RED, line)
            } else if line.starts_with("  ALLOWED") {
                paint(YELLOW, line)
            } else {
                line.to_owned()
            };
            let _ = writeln!(out, "{painted}");
        }
    }
    out.push('\n');
    out.push_str(&summary_line(plan));
    out.push('\n');
    if plan.events.refused() {
        let _ = writeln!(
            out,
            "{}",
            paint(
                RED,
                "The event checks refuse this plan: apply will change nothing (see events above)."
            )
        );
    }
    out
}

/// `Plan: 1 to create, 2 to replace, 0 to remove.` (with `N to scale` when some service
/// scales), or `No changes.`. Creations count services, networks and volumes.
pub fn summary_line(plan: &Plan) -> String {
    if !plan.has_changes() {
        return "No changes.".to_owned();
    }
    let s = &plan.summary;
    let create = s.create + s.networks_to_create + s.volumes_to_create;
    if s.scale > 0 {
        format!(
            "Plan: {create} to create, {} to replace, {} to scale, {} to remove.",
            s.replace, s.scale, s.remove
        )
    } else {
        format!(
            "Plan: {create} to create, {} to replace, {} to remove.",
            s.replace, s.remove
        )
    }
}

fn render_service(out: &mut String, sp: &ServicePlan, paint: &dyn Fn(&str, &str) -> String) {
    let replicas = |n: usize| {
        if n == 1 {
            "1 replica".to_owned()
        } else {
            format!("{n} replicas")
        }
    };
    let (code, head) = match &sp.action {
        Action::Create => (
            GREEN,
            format!("+ {}: create ({})", sp.service, replicas(sp.desired.len())),
        ),
        Action::Replace { .. } => (
            YELLOW,
            format!("~ {}: replace ({})", sp.service, replicas(sp.desired.len())),
        ),
        Action::Scale { from, to } => (CYAN, format!("^ {}: scale {from} -> {to}", sp.service)),
        Action::Remove => (
            RED,
            format!(
                "- {}: remove (no longer in the manifest), {}",
                sp.service,
                match sp.current.len() {
                    1 => "1 container".to_owned(),
                    n => format!("{n} containers"),
                }
            ),
        ),
        Action::Unchanged => (DIM, format!("= {}: unchanged", sp.service)),
    };
    let _ = writeln!(out, "{}", paint(code, &head));
    let detail = |out: &mut String, label: &str, value: &str| {
        let _ = writeln!(out, "    {label:<9}{value}");
    };
    match &sp.action {
        Action::Create => {
            if let Some(image) = &sp.image {
                detail(out, "image", &image_text(image, sp.image_digest.as_deref()));
            }
            if let Some(first) = sp.desired.first() {
                if !first.ports.is_empty() {
                    let ports: Vec<String> = first.ports.iter().map(spec::port_text).collect();
                    detail(out, "ports", &ports.join(", "));
                }
                if !first.secrets.is_empty() {
                    let secrets: Vec<String> = first
                        .secrets
                        .keys()
                        .map(|k| format!("{k}={SENSITIVE}"))
                        .collect();
                    detail(out, "secrets", &secrets.join(", "));
                }
            }
        }
        Action::Replace { reasons } => {
            for r in reasons {
                let _ = writeln!(out, "    {}", reason_text(r));
                if let ReplaceReason::ConfigChanged { changes, .. } = r {
                    for c in changes {
                        let _ = writeln!(out, "      {}", change_text(c));
                    }
                }
            }
        }
        Action::Scale { .. } | Action::Unchanged => {
            if let Some(image) = &sp.image {
                detail(out, "image", &image_text(image, sp.image_digest.as_deref()));
            }
        }
        Action::Remove => {
            for c in &sp.current {
                let _ = writeln!(out, "    {} ({})", c.name, c.status_text());
            }
        }
    }
}

/// One line per replace reason, e.g. `configuration changed: environment, ports`.
pub fn reason_text(r: &ReplaceReason) -> String {
    match r {
        ReplaceReason::ImageChanged { from, to } => format!(
            "image digest changed: {} -> {}",
            from.as_deref().map_or("unknown".to_owned(), short_digest),
            short_digest(to)
        ),
        ReplaceReason::ConfigChanged { fields, .. } => {
            format!("configuration changed: {}", fields.join(", "))
        }
        ReplaceReason::Unhealthy { container } => format!("container {container} is unhealthy"),
        ReplaceReason::NotRunning { container, state } => {
            format!("container {container} is not running ({state})")
        }
        ReplaceReason::Duplicate { container } => {
            format!("container {container} is a leftover duplicate of its replica")
        }
    }
}

/// One line per changed field: `environment: LOG changed, DEBUG added`,
/// `secrets: TOKEN changed (values not shown)`, `ports: 8080->80 => <random>->80`.
pub fn change_text(c: &Change) -> String {
    let keys = |k: &KeyChanges| {
        let mut parts = Vec::new();
        for (names, what) in [
            (&k.changed, "changed"),
            (&k.added, "added"),
            (&k.removed, "removed"),
        ] {
            if !names.is_empty() {
                parts.push(format!("{} {what}", names.join(", ")));
            }
        }
        parts.join("; ")
    };
    let list = |ports: &[String]| {
        if ports.is_empty() {
            "none".to_owned()
        } else {
            ports.join(", ")
        }
    };
    match c {
        Change::Environment(k) => format!("environment: {}", keys(k)),
        Change::Secrets(k) => format!("secrets: {} (values not shown)", keys(k)),
        Change::Ports { from, to } => format!("ports: {} => {}", list(from), list(to)),
    }
}

fn image_text(image: &str, digest: Option<&str>) -> String {
    match digest {
        Some(d) => format!("{image} ({})", short_digest(d)),
        None => image.to_owned(),
    }
}

/// `sha256:0123456789ab`: the algorithm and the first 12 hex digits.
pub fn short_digest(d: &str) -> String {
    match d.split_once(':') {
        Some((alg, hex)) if hex.len() > 12 => format!("{alg}:{}", &hex[..12]),
        _ => d.to_owned(),
    }
}
