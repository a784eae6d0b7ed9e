//! Schema compatibility, one change per case, on schemas shaped as schemars 1.x writes them.

use serde_json::{json, Value};

use super::schema::incompatibilities;

/// An event with `id` (string, required), `amount` (a `$ref` to Money, required), `memo`
/// (optional, nullable) and `kind` (a tagged enum).
fn base() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "MoneyTransferCreated",
        "type": "object",
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "amount": {"$ref": "#/$defs/Money"},
            "memo": {"type": ["string", "null"]},
            "kind": {"$ref": "#/$defs/Kind"},
            "tags": {"type": "array", "items": {"type": "string"}}
        },
        "required": ["id", "amount", "kind"],
        "$defs": {
            "Money": {
                "type": "object",
                "properties": {
                    "minor": {"type": "integer", "format": "int64"},
                    "currency": {"type": "string", "enum": ["EUR", "USD"]}
                },
                "required": ["minor", "currency"]
            },
            "Kind": {
                "oneOf": [
                    {"type": "string", "const": "Instant"},
                    {"type": "object", "properties": {"Scheduled": {"type": "object", "properties": {"at": {"type": "string"}}, "required": ["at"]}}, "required": ["Scheduled"], "additionalProperties": false}
                ]
            }
        }
    })
}

fn check(change: impl FnOnce(&mut Value), expected: &[&str]) {
    let old = base();
    let mut new = base();
    change(&mut new);
    assert_eq!(incompatibilities(&old, &new), expected);
}

#[test]
fn the_same_schema_is_compatible() {
    check(|_| {}, &[]);
}

#[test]
fn annotations_do_not_matter() {
    check(
        |s| {
            s["title"] = json!("Other");
            s["description"] = json!("now documented");
            s["$defs"]["Money"]["description"] = json!("minor units");
        },
        &[],
    );
}

#[test]
fn an_optional_field_added_or_removed_is_compatible() {
    check(|s| s["properties"]["note"] = json!({"type": "string"}), &[]);
    check(
        |s| {
            s["properties"].as_object_mut().map(|p| p.remove("memo"));
        },
        &[],
    );
}

#[test]
fn a_required_field_added_or_removed_is_not() {
    check(
        |s| {
            s["properties"]["fee"] = json!({"type": "integer"});
            s["required"] = json!(["id", "amount", "kind", "fee"]);
        },
        &["field `fee`: a required field was added"],
    );
    check(
        |s| {
            s["properties"].as_object_mut().map(|p| p.remove("id"));
            s["required"] = json!(["amount", "kind"]);
        },
        &["field `id`: a required field was removed"],
    );
    check(
        |s| s["required"] = json!(["id", "amount", "kind", "memo"]),
        &["field `memo`: an optional field became required"],
    );
    check(
        |s| s["required"] = json!(["amount", "kind"]),
        &["field `id`: a required field is no longer required"],
    );
}

#[test]
fn a_type_change_is_named_by_its_path_through_refs() {
    check(
        |s| s["$defs"]["Money"]["properties"]["minor"]["type"] = json!("string"),
        &["field `amount.minor`: type changed from integer to string"],
    );
    check(
        |s| s["properties"]["id"]["type"] = json!(["string", "null"]),
        &["field `id`: type changed from string to [null, string]"],
    );
    check(
        |s| s["properties"]["tags"]["items"] = json!({"type": "integer"}),
        &["field `tags[]`: type changed from string to integer"],
    );
    check(
        |s| s["$defs"]["Money"]["properties"]["minor"]["format"] = json!("uint64"),
        &["field `amount.minor`: `format` changed from \"int64\" to \"uint64\""],
    );
}

#[test]
fn enum_values_and_variants_removed_or_added_are_not() {
    check(
        |s| s["$defs"]["Money"]["properties"]["currency"]["enum"] = json!(["EUR"]),
        &["field `amount.currency`: enum value \"USD\" removed"],
    );
    check(
        |s| s["$defs"]["Money"]["properties"]["currency"]["enum"] = json!(["EUR", "USD", "GBP"]),
        &["field `amount.currency`: enum value \"GBP\" added; consumers built against the running schema do not know it"],
    );
    check(
        |s| {
            s["$defs"]["Kind"]["oneOf"]
                .as_array_mut()
                .map(|a| a.remove(0));
        },
        &["field `kind`: variant \"Instant\" was removed"],
    );
    check(
        |s| {
            if let Some(a) = s["$defs"]["Kind"]["oneOf"].as_array_mut() {
                a.push(json!({"type": "string", "const": "Batch"}));
            }
        },
        &["field `kind`: variant \"Batch\" was added; consumers built against the running schema do not know it"],
    );
    check(
        |s| {
            s["$defs"]["Kind"]["oneOf"][1]["properties"]["Scheduled"]["properties"]["at"]["type"] =
                json!("integer")
        },
        &["field `kind<Scheduled>.Scheduled.at`: type changed from string to integer"],
    );
}

#[test]
fn a_closed_object_refuses_new_optional_fields() {
    let mut old = base();
    old["additionalProperties"] = json!(false);
    let mut new = old.clone();
    new["properties"]["note"] = json!({"type": "string"});
    assert_eq!(
        incompatibilities(&old, &new),
        ["field `note`: an optional field was added, but the running schema allows no other fields (additionalProperties: false)"]
    );
}

#[test]
fn unknown_keywords_and_remote_refs_are_reported_not_guessed() {
    check(
        |s| s["properties"]["id"]["not"] = json!({"const": ""}),
        &["field `id`: `not` changed, and the deployer cannot tell whether that is compatible"],
    );
    check(
        |s| s["properties"]["amount"] = json!({"$ref": "https://example.com/money.json"}),
        &["field `amount`: the new schema: cannot resolve $ref \"https://example.com/money.json\": only local references (#/$defs/...) are followed"],
    );
}

#[test]
fn recursive_types_terminate() {
    let tree = |leaf: &str| {
        json!({
            "$ref": "#/$defs/Node",
            "$defs": {"Node": {"type": "object", "properties": {"leaf": {"type": leaf}, "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}}}}
        })
    };
    assert_eq!(
        incompatibilities(&tree("string"), &tree("string")),
        Vec::<String>::new()
    );
    assert_eq!(
        incompatibilities(&tree("string"), &tree("integer")),
        ["field `leaf`: type changed from string to integer"]
    );
}

#[test]
fn a_field_made_nullable_through_any_of_is_not() {
    check(
        |s| {
            s["properties"]["amount"] =
                json!({"anyOf": [{"$ref": "#/$defs/Money"}, {"type": "null"}]})
        },
        &["field `amount`: type changed from object to (any)"],
    );
    let mut old = base();
    old["properties"]["memo"] = json!({"type": "string"});
    let mut new = base();
    new["properties"]["memo"] = json!({"type": "string", "anyOf": [{"minLength": 1}]});
    assert_eq!(
        incompatibilities(&old, &new),
        ["field `memo`: `anyOf` added (1 alternatives)"]
    );
}
