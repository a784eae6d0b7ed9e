//! The event graph's renderings, with an edge the plan breaks, and the banking fleet's graph
//! in the README.

use std::collections::{BTreeMap, BTreeSet};

use super::*;

fn image(image: &str, produces: &str, consumes: &str) -> ImageLabels {
    ImageLabels {
        image: image.to_string(),
        labels: BTreeMap::from([
            (LABEL_PRODUCES.to_string(), produces.to_string()),
            (LABEL_CONSUMES.to_string(), consumes.to_string()),
        ]),
    }
}

/// transfers:2 emits MoneyTransferCreated@2, which account-view:1 cannot read.
fn broken() -> (EventInputs, EventReport) {
    let running = BTreeMap::from([
        (
            "transfers".to_string(),
            image("t:1", "MoneyTransferCreated@1", ""),
        ),
        (
            "account-view".to_string(),
            image("v:1", "", "MoneyTransferCreated@1"),
        ),
        ("archiver".to_string(), image("a:1", "", "*")),
    ]);
    let mut desired = running.clone();
    desired.insert(
        "transfers".to_string(),
        image("t:2", "MoneyTransferCreated@2", ""),
    );
    let inputs = EventInputs {
        running,
        desired,
        stored: None,
    };
    let shape = PlanShape {
        depends_on: inputs.desired.keys().map(|s| (s.clone(), vec![])).collect(),
        rolling: BTreeSet::from(["transfers".to_string()]),
    };
    let (report, _) = check(&inputs, &shape, &BTreeSet::new()).unwrap();
    (inputs, report)
}

#[test]
fn text_marks_the_edge_the_plan_breaks() {
    let (inputs, report) = broken();
    let g = EventGraph::build(&inputs, false, &report).unwrap();
    assert_eq!(
        g.render(Format::Text),
        "event graph of the desired fleet (producers → Type@version → consumers)
  (none) → MoneyTransferCreated@1 → account-view, archiver
  transfers → MoneyTransferCreated@2 → account-view BROKEN (a consumer cannot read what is produced), archiver
5 edges, 1 broken by the plan
"
    );
    let g = EventGraph::build(&inputs, true, &report).unwrap();
    assert_eq!(
        g.render(Format::Text),
        "event graph of the running fleet (producers → Type@version → consumers)
  transfers → MoneyTransferCreated@1 → account-view, archiver
  (none) → MoneyTransferCreated@2 → account-view BROKEN (a consumer cannot read what is produced), archiver
5 edges, 1 broken by the plan
"
    );
}

#[test]
fn dot_and_mermaid_draw_the_broken_edge_red_and_dashed() {
    let (inputs, report) = broken();
    let g = EventGraph::build(&inputs, false, &report).unwrap();
    assert_eq!(
        g.render(Format::Dot),
        r#"digraph events {
  rankdir=LR;
  node [fontname="Helvetica"];
  "s:account-view" [label="account-view", shape=box];
  "s:archiver" [label="archiver", shape=box];
  "s:transfers" [label="transfers", shape=box];
  "e:MoneyTransferCreated@1" [label="MoneyTransferCreated@1", shape=ellipse];
  "e:MoneyTransferCreated@2" [label="MoneyTransferCreated@2", shape=ellipse];
  "e:MoneyTransferCreated@1" -> "s:account-view";
  "e:MoneyTransferCreated@2" -> "s:account-view" [color=red, style=dashed, fontcolor=red, label="BROKEN: a consumer cannot read what is produced"];
  "e:MoneyTransferCreated@1" -> "s:archiver";
  "e:MoneyTransferCreated@2" -> "s:archiver";
  "s:transfers" -> "e:MoneyTransferCreated@2";
}
"#
    );
    assert_eq!(
        g.render(Format::Mermaid),
        "flowchart LR
  s_account_view[account-view]
  s_archiver[archiver]
  s_transfers[transfers]
  e_MoneyTransferCreated_1([MoneyTransferCreated@1])
  e_MoneyTransferCreated_2([MoneyTransferCreated@2])
  e_MoneyTransferCreated_1 --> s_account_view
  e_MoneyTransferCreated_2 -. BROKEN .-x s_account_view
  e_MoneyTransferCreated_1 --> s_archiver
  e_MoneyTransferCreated_2 --> s_archiver
  s_transfers --> e_MoneyTransferCreated_2
  linkStyle 1 stroke:red,stroke-width:2px
"
    );
    let json: serde_json::Value = serde_json::from_str(&g.render(Format::Json)).unwrap();
    assert_eq!(json["edges"][0].get("broken"), None);
    assert_eq!(
        json["edges"][1]["broken"],
        "a consumer cannot read what is produced"
    );
}

/// The banking fleet's contracts as the images carry them (`ci/events/`).
fn banking() -> EventInputs {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ci/events");
    let read = |service: &str, ext: &str| -> String {
        std::fs::read_to_string(dir.join(format!("{service}.{ext}")))
            .unwrap_or_default()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join(",")
    };
    let services = [
        "accounts",
        "transfers",
        "account-view",
        "archiver",
        "indexer",
    ];
    let desired = services
        .iter()
        .map(|s| {
            let img = format!("fleet/{s}:dev");
            (
                s.to_string(),
                image(&img, &read(s, "produces"), &read(s, "consumes")),
            )
        })
        .collect();
    EventInputs {
        running: BTreeMap::new(),
        desired,
        stored: None,
    }
}

/// Pins the README's picture to the labels: regenerate it with
/// `deployer events --format mermaid` when `ci/events/` changes.
#[test]
fn the_readme_shows_the_banking_fleets_graph() {
    let g = EventGraph::build(&banking(), false, &EventReport::default()).unwrap();
    let mermaid = g.render(Format::Mermaid);
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap_or_default();
    assert!(
        readme.contains(&format!("```mermaid\n{mermaid}```")),
        "tool/README.md's event graph differs from the labels in ci/events; put this in it:\n{mermaid}"
    );
}
