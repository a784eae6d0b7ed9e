//! Label parsing: each accepted form and each error message.

use super::*;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn ev(s: &str) -> EventVersion {
    s.parse().unwrap()
}

fn check_err(pairs: &[(&str, &str)], expected: &str) {
    let err = from_labels("fleet/x:2", &labels(pairs)).unwrap_err();
    assert_eq!(err.to_string(), expected);
}

#[test]
fn no_contract_labels_is_no_contract() {
    let l = labels(&[("org.opencontainers.image.title", "x")]);
    assert_eq!(from_labels("fleet/x:1", &l).unwrap(), None);
    let l = labels(&[(LABEL_PROJECTION_VERSION, "3")]);
    assert_eq!(from_labels("fleet/x:1", &l).unwrap(), None);
    assert_eq!(projection_version("fleet/x:1", &l).unwrap(), Some(3));
}

#[test]
fn parses_every_label() {
    let l = labels(&[
        (LABEL_PRODUCES, "AccountOpened@1, AccountDebited@2"),
        (
            LABEL_CONSUMES,
            "MoneyTransferCreated@1,MoneyTransferCreated@2",
        ),
        (LABEL_SCHEMAS, r#"{"AccountDebited@2": {"type": "object"}}"#),
        (LABEL_PROJECTION_VERSION, "4"),
    ]);
    let c = from_labels("fleet/x:1", &l).unwrap().unwrap();
    assert_eq!(join(&c.produces), "AccountDebited@2,AccountOpened@1");
    assert_eq!(
        c.consumes.to_string(),
        "MoneyTransferCreated@1,MoneyTransferCreated@2"
    );
    assert_eq!(
        c.schemas[&ev("AccountDebited@2")],
        serde_json::json!({"type": "object"})
    );
    assert_eq!(c.projection_version, Some(4));
    assert!(c.consumes.reads_type("MoneyTransferCreated"));
    assert!(!c.consumes.reads(&ev("MoneyTransferCreated@3")));
}

#[test]
fn star_reads_everything_and_empty_reads_nothing() {
    let c = from_labels("a", &labels(&[(LABEL_CONSUMES, "*")]))
        .unwrap()
        .unwrap();
    assert_eq!(c.consumes, Consumes::All);
    assert!(c.consumes.reads(&ev("Anything@9")));
    let c = from_labels(
        "a",
        &labels(&[(LABEL_PRODUCES, "X@1"), (LABEL_CONSUMES, "")]),
    )
    .unwrap()
    .unwrap();
    assert_eq!(c.consumes, Consumes::Only(BTreeSet::new()));
    assert!(!c.consumes.reads_type("X"));
}

#[test]
fn malformed_labels_name_image_and_label() {
    check_err(
        &[(LABEL_PRODUCES, "AccountOpened")],
        r#"image fleet/x:2: label io.fleet.events.produces: "AccountOpened" is not Type@version (e.g. AccountDebited@1): no '@'"#,
    );
    check_err(
        &[(LABEL_CONSUMES, "A@1,,B@1")],
        "image fleet/x:2: label io.fleet.events.consumes: item 2 is empty",
    );
    check_err(
        &[(LABEL_CONSUMES, "A@x")],
        r#"image fleet/x:2: label io.fleet.events.consumes: "A@x" is not Type@version (e.g. AccountDebited@1): the version is not a non-negative integer"#,
    );
    check_err(
        &[(LABEL_CONSUMES, "A@1,*")],
        r#"image fleet/x:2: label io.fleet.events.consumes: "*" must be the whole value, not one item of a list"#,
    );
    check_err(
        &[(LABEL_PRODUCES, "A@1,A@1")],
        "image fleet/x:2: label io.fleet.events.produces: A@1 is listed twice",
    );
    check_err(
        &[(LABEL_PRODUCES, "A-b@1")],
        r#"image fleet/x:2: label io.fleet.events.produces: "A-b@1" is not Type@version (e.g. AccountDebited@1): the type may hold only letters, digits and '_'"#,
    );
    check_err(
        &[(LABEL_PRODUCES, "A@1"), (LABEL_SCHEMAS, "{")],
        "image fleet/x:2: label io.fleet.events.schemas: not JSON: EOF while parsing an object at line 1 column 1",
    );
    check_err(
        &[(LABEL_PRODUCES, "A@1"), (LABEL_SCHEMAS, "[]")],
        r#"image fleet/x:2: label io.fleet.events.schemas: not a JSON object {"Type@version": <schema>}"#,
    );
    check_err(
        &[(LABEL_PRODUCES, "A@1"), (LABEL_SCHEMAS, r#"{"B@1": {}}"#)],
        "image fleet/x:2: label io.fleet.events.schemas: B@1 has a schema but is not in io.fleet.events.produces (A@1)",
    );
    check_err(
        &[(LABEL_PRODUCES, "A@1"), (LABEL_SCHEMAS, r#"{"A@1": 3}"#)],
        "image fleet/x:2: label io.fleet.events.schemas: A@1: the schema is not a JSON object",
    );
    check_err(
        &[(LABEL_PRODUCES, "A@1"), (LABEL_PROJECTION_VERSION, "v2")],
        r#"image fleet/x:2: label io.fleet.projection.version: "v2" is not a non-negative integer"#,
    );
}

#[test]
fn event_version_round_trips() {
    let e = ev("AccountDebited@12");
    assert_eq!(e.to_string(), "AccountDebited@12");
    assert_eq!(serde_json::to_string(&e).unwrap(), r#""AccountDebited@12""#);
    let back: EventVersion = serde_json::from_str(r#""AccountDebited@12""#).unwrap();
    assert_eq!(back, e);
    assert!(ev("A@2") < ev("A@10"));
    let stored: StoredEventType = serde_json::from_str(
        r#"{"type":"A","version":1,"count":3,"first_position":1,"last_position":9}"#,
    )
    .unwrap();
    assert_eq!(stored.event_type, "A");
}
