//! The `io.fleet.events.schemas` label: generated from the Rust event types (`<service>
//! event-schemas`), it must hold a schema for exactly the events `ci/events/<service>.produces`
//! declares, and nothing for a service that produces nothing. No Docker needed.

use std::collections::BTreeSet;

use banking::schema::{EventSchemas, DRAFT_2020_12};
use tests::events;
use tests::images::SERVICES;

/// The schemas `service`'s binary prints, as its library generates them; `None` for a service
/// without the `event-schemas` subcommand.
fn generated(service: &str) -> Option<EventSchemas> {
    let schemas = match service {
        "accounts" => accounts::event_schemas(),
        "transfers" => transfers::event_schemas(),
        _ => return None,
    };
    Some(schemas.unwrap_or_else(|e| panic!("generating the schemas of {service}: {e}")))
}

#[test]
fn the_generated_schemas_cover_exactly_the_declared_produces() {
    let mut problems = Vec::new();
    for service in SERVICES {
        let declared = events::declared(service, "produces").expect("reading a declaration");
        let schemas = generated(service).unwrap_or_default();
        let keys: BTreeSet<String> = schemas.keys().cloned().collect();
        if keys != declared {
            problems.push(format!(
                "{service} generates schemas of {keys:?}; ci/events/{service}.produces declares {declared:?}"
            ));
        }
        for (key, schema) in &schemas {
            if schema["$schema"] != DRAFT_2020_12 || schema["type"] != "object" {
                problems.push(format!(
                    "{service}'s schema of {key} is not a draft 2020-12 object schema: {schema}"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_label_is_one_line_of_json_that_reads_back_as_the_schemas() {
    for service in ["accounts", "transfers"] {
        let schemas = generated(service).expect("a producer");
        let label = banking::schema::label(&schemas);
        assert!(!label.contains('\n'), "{service}'s label spans lines");
        let back: EventSchemas = serde_json::from_str(&label).expect("the label is JSON");
        assert_eq!(back, schemas, "{service}'s label does not read back");
    }
}
