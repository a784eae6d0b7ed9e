//! JSON Schemas (draft 2020-12) of the events the domain produces, generated from the event types
//! with schemars, never written by hand: for each `Type@schema_version`, the schema of the
//! event's `data` as it is stored (es-core's `encode_externally_tagged`: the content of the
//! enum's variant). The images of the services that produce them carry these in their
//! `io.fleet.events.schemas` label, so the deployer can tell whether a version's meaning changed.
//!
//! The schemas describe what a reader accepts (schemars' deserialize contract): a field with
//! `#[serde(default)]` is optional, so adding one keeps a version compatible. Subschemas are
//! inlined, so each schema stands alone, and doc comments are left out.

use std::collections::BTreeMap;

use es_core::DomainEvent;
use schemars::generate::SchemaSettings;
use schemars::transform::RecursiveTransform;
use schemars::{JsonSchema, Schema};
use serde_json::{Map, Value};

use crate::examples::{every_account_event, every_transfer_event};

/// The `$schema` of every generated schema.
pub const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// `Type@schema_version` → the JSON Schema of that event's stored `data`.
pub type EventSchemas = BTreeMap<String, Value>;

/// Why the schemas of an event enum could not be generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("could not encode an example of {enum_name}: {reason}")]
    Encode { enum_name: String, reason: String },
    #[error(
        "the schema of {enum_name} has no variant {event_type}; name the enum variant like its \
         event type, as es-core's externally tagged encoding requires"
    )]
    NoVariant {
        enum_name: String,
        event_type: String,
    },
    #[error("{event_type} has two schemas at schema version {schema_version}")]
    Twice {
        event_type: String,
        schema_version: u32,
    },
}

/// The schemas of every account event.
pub fn account_events() -> Result<EventSchemas, SchemaError> {
    event_schemas(&every_account_event())
}

/// The schemas of every transfer event.
pub fn transfer_events() -> Result<EventSchemas, SchemaError> {
    event_schemas(&every_transfer_event())
}

/// The schemas as the value of the `io.fleet.events.schemas` label: one line of JSON,
/// `{"Type@version": schema, ...}`, keys sorted.
pub fn label(schemas: &EventSchemas) -> String {
    Value::Object(schemas.clone().into_iter().collect()).to_string()
}

/// The schemas, keyed `Type@schema_version`, of the events of `examples` (one event of each
/// variant): each example's type and version come from its own `encode`, its schema from the
/// enum's schema.
pub fn event_schemas<E: DomainEvent + JsonSchema>(
    examples: &[E],
) -> Result<EventSchemas, SchemaError> {
    let enum_name = E::schema_name().into_owned();
    // Doc comments become `description`s: left out, so the label stays small and a reworded
    // comment does not look like a change of the contract.
    let settings = SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .with_transform(RecursiveTransform(|schema: &mut Schema| {
            schema.remove("description");
        }));
    let root = settings.into_generator().into_root_schema_for::<E>();
    let variants: &[Value] = root
        .get("oneOf")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let mut schemas = EventSchemas::new();
    for example in examples {
        let encoded = example.encode().map_err(|e| SchemaError::Encode {
            enum_name: enum_name.clone(),
            reason: e.to_string(),
        })?;
        let data = variants
            .iter()
            .find_map(|v| data_schema(v, encoded.event_type))
            .ok_or_else(|| SchemaError::NoVariant {
                enum_name: enum_name.clone(),
                event_type: encoded.event_type.to_owned(),
            })?;
        let key = format!("{}@{}", encoded.event_type, encoded.schema_version);
        if schemas.get(&key).is_some_and(|existing| *existing != data) {
            return Err(SchemaError::Twice {
                event_type: encoded.event_type.to_owned(),
                schema_version: encoded.schema_version,
            });
        }
        schemas.insert(key, data);
    }
    Ok(schemas)
}

/// The schema of the stored `data` of `event_type`, if `variant` (one entry of the enum's
/// `oneOf`) is that variant: the value under its name, or an empty object for a unit variant
/// (stored as `{}`).
fn data_schema(variant: &Value, event_type: &str) -> Option<Value> {
    let mut data = if let Some(content) = variant
        .get("properties")
        .and_then(|p| p.get(event_type))
        .filter(|_| {
            variant
                .get("required")
                .and_then(Value::as_array)
                .is_some_and(|r| r.iter().any(|n| n == event_type))
        }) {
        content.clone()
    } else {
        let unit = variant.get("const").is_some_and(|c| c == event_type)
            || variant
                .get("enum")
                .and_then(Value::as_array)
                .is_some_and(|e| e.iter().any(|n| n == event_type));
        if !unit {
            return None;
        }
        serde_json::json!({"type": "object"})
    };
    if let Value::Object(map) = &mut data {
        let mut with_draft = Map::new();
        with_draft.insert("$schema".to_owned(), Value::from(DRAFT_2020_12));
        with_draft.extend(std::mem::take(map));
        *map = with_draft;
    }
    Some(data)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_struct_variant_is_its_fields_and_defaulted_fields_are_optional() {
        let schemas = account_events().expect("schemas");
        let opened = &schemas["AccountOpened@1"];
        assert_eq!(opened["$schema"], DRAFT_2020_12);
        assert_eq!(opened["type"], "object");
        assert_eq!(opened["required"], json!(["title", "initial_balance"]));
        assert_eq!(opened["properties"]["initial_balance"]["type"], "integer");
        assert_eq!(opened["properties"]["title"]["type"], "string");
        assert!(
            !opened.to_string().contains("$ref"),
            "subschemas are inlined: {opened}"
        );
        // A field named `description` stays; doc comments (schema `description`s) go.
        assert_eq!(opened["properties"]["description"]["type"], "string");
        assert!(opened["properties"]["initial_balance"]
            .get("description")
            .is_none());
        let closed = &schemas["AccountClosed@1"];
        assert_eq!(closed["type"], "object");
        assert_eq!(schemas.len(), 6);
    }

    #[test]
    fn a_newtype_variant_is_its_content() {
        let schemas = transfer_events().expect("schemas");
        let created = &schemas["MoneyTransferCreated@1"];
        assert_eq!(
            created["required"],
            json!(["from_account_id", "to_account_id", "amount"])
        );
        assert_eq!(created["properties"]["date"]["format"], "date-time");
        assert_eq!(created["properties"]["from_account_id"]["format"], "uuid");
        assert_eq!(schemas.len(), 5);
    }

    #[test]
    fn the_stored_data_of_every_example_has_the_fields_its_schema_requires() {
        let check = |schemas: EventSchemas, encoded: Vec<es_core::EncodedEvent>| {
            for e in encoded {
                let schema = &schemas[&format!("{}@{}", e.event_type, e.schema_version)];
                let required = schema["required"].as_array().cloned().unwrap_or_default();
                for field in required {
                    let field = field.as_str().expect("a name");
                    assert!(
                        e.data.get(field).is_some(),
                        "{} lacks {field}",
                        e.event_type
                    );
                }
                let properties = schema["properties"]
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                for (field, _) in e.data.as_object().expect("an object") {
                    assert!(
                        properties.contains_key(field),
                        "{}'s schema lacks {field}",
                        e.event_type
                    );
                }
            }
        };
        check(
            account_events().expect("schemas"),
            every_account_event()
                .iter()
                .map(|e| e.encode().expect("encodes"))
                .collect(),
        );
        check(
            transfer_events().expect("schemas"),
            every_transfer_event()
                .iter()
                .map(|e| e.encode().expect("encodes"))
                .collect(),
        );
    }
}
