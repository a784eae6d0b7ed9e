//! The gates, case by case: each refusal with its exact message, each pass, and the order.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::*;

/// A fleet case: `running`/`desired` images as (service, image, produces, consumes, schemas).
#[derive(Default)]
struct Case {
    running: Vec<(&'static str, ImageLabels)>,
    desired: Vec<(&'static str, ImageLabels)>,
    deps: Vec<(&'static str, Vec<&'static str>)>,
    stored: Option<Vec<StoredEventType>>,
    allow: Vec<&'static str>,
}

fn image(image: &str, produces: &str, consumes: &str) -> ImageLabels {
    let mut labels = BTreeMap::new();
    labels.insert(LABEL_PRODUCES.to_string(), produces.to_string());
    labels.insert(LABEL_CONSUMES.to_string(), consumes.to_string());
    ImageLabels {
        image: image.to_string(),
        labels,
    }
}

fn with_schemas(mut il: ImageLabels, schemas: serde_json::Value) -> ImageLabels {
    il.labels
        .insert(LABEL_SCHEMAS.to_string(), schemas.to_string());
    il
}

fn stored(event_type: &str, version: u32, count: u64) -> StoredEventType {
    StoredEventType {
        event_type: event_type.to_string(),
        version,
        count,
        first_position: 3,
        last_position: 4000,
    }
}

impl Case {
    /// Services whose desired image differs from the running one roll.
    fn run(&self) -> (EventReport, Vec<Vec<String>>) {
        self.try_run().unwrap()
    }

    fn try_run(&self) -> Result<(EventReport, Vec<Vec<String>>), ContractError> {
        let inputs = EventInputs {
            running: self
                .running
                .iter()
                .map(|(s, i)| (s.to_string(), i.clone()))
                .collect(),
            desired: self
                .desired
                .iter()
                .map(|(s, i)| (s.to_string(), i.clone()))
                .collect(),
            stored: self.stored.clone(),
        };
        let mut depends_on: BTreeMap<String, Vec<String>> = inputs
            .desired
            .keys()
            .map(|s| (s.clone(), Vec::new()))
            .collect();
        for (s, d) in &self.deps {
            depends_on.insert(s.to_string(), d.iter().map(|x| x.to_string()).collect());
        }
        let rolling = inputs
            .desired
            .iter()
            .filter(|(s, d)| inputs.running.get(*s).map(|r| &r.image) != Some(&d.image))
            .map(|(s, _)| s.clone())
            .collect();
        let shape = PlanShape {
            depends_on,
            rolling,
        };
        let allow: BTreeSet<EventVersion> = self.allow.iter().map(|a| a.parse().unwrap()).collect();
        check(&inputs, &shape, &allow)
    }
}

fn messages(r: &EventReport) -> Vec<String> {
    r.refusals.iter().map(|f| f.message.clone()).collect()
}

/// transfers → MoneyTransferCreated → account-view, both after the store, the gateway last.
fn banking(transfers: (&str, &str), view: (&str, &str)) -> Case {
    Case {
        running: vec![
            ("event-store", image("fleet/event-store:1", "", "")),
            (
                "transfers",
                image("fleet/transfers:1", "MoneyTransferCreated@1", ""),
            ),
            (
                "account-view",
                image("fleet/account-view:1", "", "MoneyTransferCreated@1"),
            ),
            (
                "gateway",
                ImageLabels {
                    image: "fleet/gateway:1".into(),
                    labels: BTreeMap::new(),
                },
            ),
        ],
        desired: vec![
            ("event-store", image("fleet/event-store:1", "", "")),
            ("transfers", image(transfers.0, transfers.1, "")),
            ("account-view", image(view.0, "", view.1)),
            (
                "gateway",
                ImageLabels {
                    image: "fleet/gateway:1".into(),
                    labels: BTreeMap::new(),
                },
            ),
        ],
        deps: vec![
            ("transfers", vec!["event-store"]),
            ("account-view", vec!["event-store"]),
            ("gateway", vec!["transfers", "account-view"]),
        ],
        ..Case::default()
    }
}

#[test]
fn refuses_a_producer_emitting_a_version_no_consumer_reads() {
    let case = banking(
        ("fleet/transfers:2", "MoneyTransferCreated@2"),
        ("fleet/account-view:1", "MoneyTransferCreated@1"),
    );
    let (r, _) = case.run();
    assert_eq!(
        messages(&r),
        ["account-view (fleet/account-view:1) cannot read MoneyTransferCreated@2, which transfers (fleet/transfers:2) emits: it reads MoneyTransferCreated@1 of MoneyTransferCreated; no roll order helps: add MoneyTransferCreated@2 to account-view's io.fleet.events.consumes, or pass --allow-incompatible MoneyTransferCreated@2 (roll order tried: transfers)"]
    );
    assert_eq!(r.refusals[0].kind, Kind::ConsumerCannotRead);
    assert!(r.refused());
    assert_eq!(
        r.notes,
        ["images without an event contract, ignored by the event checks: fleet/gateway:1"]
    );
}

#[test]
fn a_consumer_gaining_a_version_rolls_before_the_producer() {
    let case = banking(
        ("fleet/transfers:2", "MoneyTransferCreated@2"),
        (
            "fleet/account-view:2",
            "MoneyTransferCreated@1,MoneyTransferCreated@2",
        ),
    );
    let (r, levels) = case.run();
    assert_eq!(messages(&r), Vec::<String>::new());
    assert_eq!(r.order, [["account-view"], ["transfers"]]);
    assert_eq!(
        levels,
        [
            vec!["event-store"],
            vec!["account-view"],
            vec!["transfers"],
            vec!["gateway"]
        ]
    );
    assert_eq!(
        r.passed[0],
        "every consumer reads what is produced, after every roll step (2 event versions, 3 services with a contract)"
    );
}

#[test]
fn a_producer_dropping_a_version_rolls_before_the_consumer_that_drops_it() {
    let mut case = banking(
        ("fleet/transfers:2", "MoneyTransferCreated@2"),
        ("fleet/account-view:2", "MoneyTransferCreated@2"),
    );
    case.running[1].1 = image(
        "fleet/transfers:1",
        "MoneyTransferCreated@1,MoneyTransferCreated@2",
        "",
    );
    case.running[2].1 = image(
        "fleet/account-view:1",
        "",
        "MoneyTransferCreated@1,MoneyTransferCreated@2",
    );
    let (r, _) = case.run();
    assert_eq!(messages(&r), Vec::<String>::new());
    assert_eq!(r.order, [["transfers"], ["account-view"]]);
}

#[test]
fn independent_rolls_share_a_level() {
    let case = banking(
        ("fleet/transfers:2", "MoneyTransferCreated@1"),
        ("fleet/account-view:2", "MoneyTransferCreated@1"),
    );
    let (r, levels) = case.run();
    assert!(!r.refused());
    assert_eq!(r.order, [["account-view", "transfers"]]);
    assert_eq!(levels[1], ["account-view", "transfers"]);
}

#[test]
fn refuses_when_no_order_works_for_a_pair() {
    let case = banking(
        ("fleet/transfers:2", "MoneyTransferCreated@2"),
        ("fleet/account-view:2", "MoneyTransferCreated@2"),
    );
    let (r, _) = case.run();
    assert_eq!(
        messages(&r),
        ["no roll order of transfers and account-view lets account-view read what transfers emits: if transfers rolls first, account-view (fleet/account-view:1, still running) cannot read MoneyTransferCreated@2 that transfers (fleet/transfers:2) emits; if account-view rolls first, account-view (fleet/account-view:2) cannot read MoneyTransferCreated@1 that transfers (fleet/transfers:1, still running) emits; roll it in two applies (first a account-view that reads both, or a transfers that emits both), or pass --allow-incompatible for MoneyTransferCreated@2 or MoneyTransferCreated@1"]
    );
    assert_eq!(r.refusals[0].kind, Kind::NoRollOrder);
}

#[test]
fn refuses_when_depends_on_and_the_event_order_disagree() {
    let mut case = banking(
        ("fleet/transfers:2", "MoneyTransferCreated@2"),
        (
            "fleet/account-view:2",
            "MoneyTransferCreated@1,MoneyTransferCreated@2",
        ),
    );
    case.deps.push(("account-view", vec!["transfers"]));
    let (r, _) = case.run();
    assert_eq!(
        messages(&r),
        ["no roll order lets every consumer read what is produced; the order tried needs account-view before transfers (transfers's new image emits MoneyTransferCreated@2, which account-view's running image does not read), then transfers before account-view (account-view depends_on transfers), a cycle; roll the change in two applies, or pass --allow-incompatible MoneyTransferCreated@2"]
    );
}

#[test]
fn allow_incompatible_lets_a_named_refusal_pass() {
    let mut case = banking(
        ("fleet/transfers:2", "MoneyTransferCreated@2"),
        ("fleet/account-view:1", "MoneyTransferCreated@1"),
    );
    case.allow = vec!["MoneyTransferCreated@2", "Other@1"];
    let (r, _) = case.run();
    assert!(!r.refused());
    assert_eq!(r.allowed.len(), 1);
    assert_eq!(r.overrides(), ["MoneyTransferCreated@2"]);
    assert!(r.notes.contains(
        &"--allow-incompatible Other@1: no refusal names Other@1; the flag changes nothing"
            .to_string()
    ));
    let text = r.render();
    assert!(text.contains("ALLOWED a consumer cannot read what is produced (--allow-incompatible MoneyTransferCreated@2)"), "{text}");
}

#[test]
fn allow_incompatible_breaks_an_order_cycle() {
    let mut case = banking(
        ("fleet/transfers:2", "MoneyTransferCreated@2"),
        (
            "fleet/account-view:2",
            "MoneyTransferCreated@1,MoneyTransferCreated@2",
        ),
    );
    case.deps.push(("account-view", vec!["transfers"]));
    case.allow = vec!["MoneyTransferCreated@2"];
    let (r, levels) = case.run();
    assert!(!r.refused(), "{:?}", r.refusals);
    assert_eq!(r.allowed[0].kind, Kind::NoRollOrder);
    assert_eq!(levels[1..3], [vec!["transfers"], vec!["account-view"]]);
}

#[test]
fn the_archiver_reading_everything_never_blocks() {
    let mut case = banking(
        (
            "fleet/transfers:2",
            "MoneyTransferCreated@1,TransferRefunded@1",
        ),
        ("fleet/account-view:1", "MoneyTransferCreated@1"),
    );
    case.running
        .push(("archiver", image("fleet/archiver:1", "", "*")));
    case.desired
        .push(("archiver", image("fleet/archiver:1", "", "*")));
    let (r, _) = case.run();
    assert!(!r.refused(), "{:?}", r.refusals);
}

fn event_schema(props: serde_json::Value, required: &[&str]) -> serde_json::Value {
    json!({"MoneyTransferCreated@1": {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object", "properties": props, "required": required,
        "$defs": {"Money": {"type": "object", "properties": {"minor": {"type": "integer"}, "currency": {"enum": ["EUR", "USD"]}}, "required": ["minor", "currency"]}}
    }})
}

fn schema_case(old: serde_json::Value, new: serde_json::Value) -> EventReport {
    let mut case = banking(
        ("fleet/transfers:2", "MoneyTransferCreated@1"),
        ("fleet/account-view:1", "MoneyTransferCreated@1"),
    );
    case.running[1].1 = with_schemas(case.running[1].1.clone(), old);
    case.desired[1].1 = with_schemas(case.desired[1].1.clone(), new);
    case.run().0
}

#[test]
fn an_optional_field_added_is_compatible() {
    let old = event_schema(
        json!({"id": {"type": "string"}, "amount": {"$ref": "#/$defs/Money"}}),
        &["id", "amount"],
    );
    let new = event_schema(
        json!({"id": {"type": "string"}, "amount": {"$ref": "#/$defs/Money"}, "note": {"type": ["string", "null"]}}),
        &["id", "amount"],
    );
    let r = schema_case(old, new);
    assert!(!r.refused(), "{:?}", r.refusals);
    assert!(r
        .passed
        .contains(&"every produced version keeps a compatible schema".to_string()));
}

#[test]
fn refuses_a_changed_schema_under_the_same_version() {
    let old = event_schema(
        json!({"id": {"type": "string"}, "amount": {"$ref": "#/$defs/Money"}}),
        &["id", "amount"],
    );
    let mut new = old.clone();
    new["MoneyTransferCreated@1"]["$defs"]["Money"]["properties"]["currency"]["enum"] =
        json!(["EUR"]);
    new["MoneyTransferCreated@1"]["properties"]["id"]["type"] = json!("integer");
    let r = schema_case(old, new);
    assert_eq!(
        messages(&r),
        ["transfers (fleet/transfers:2) changes the meaning of MoneyTransferCreated@1: its schema is not backward compatible with MoneyTransferCreated@1 of fleet/transfers:1: field `amount.currency`: enum value \"USD\" removed; field `id`: type changed from string to integer; publish MoneyTransferCreated@2 instead (a new version consumers can add next to MoneyTransferCreated@1), or pass --allow-incompatible MoneyTransferCreated@1"]
    );
    assert_eq!(r.refusals[0].kind, Kind::SchemaChanged);
}

#[test]
fn refuses_a_consumer_dropping_a_version_the_store_holds() {
    let mut case = banking(
        ("fleet/transfers:1", "MoneyTransferCreated@1"),
        ("fleet/account-view:2", "MoneyTransferCreated@2"),
    );
    case.running[1].1 = image("fleet/transfers:1", "MoneyTransferCreated@1", "");
    case.desired[1].1 = image("fleet/transfers:1", "MoneyTransferCreated@1", "");
    case.stored = Some(vec![
        stored("MoneyTransferCreated", 1, 1200),
        stored("AccountOpened", 1, 5),
    ]);
    let (r, _) = case.run();
    let stored: Vec<&Finding> = r
        .refusals
        .iter()
        .filter(|f| f.kind == Kind::StoredUnreadable)
        .collect();
    assert_eq!(
        stored[0].message,
        "account-view (fleet/account-view:2) reads MoneyTransferCreated but not MoneyTransferCreated@1, and the store holds 1200 MoneyTransferCreated@1 events (positions 3..4000); its next replay or rebuild would fail on them: keep MoneyTransferCreated@1 in its io.fleet.events.consumes (upcast it to the new version), or pass --allow-incompatible MoneyTransferCreated@1"
    );
    assert_eq!(stored.len(), 1);
}

#[test]
fn a_malformed_desired_label_is_a_plan_error() {
    let case = banking(
        ("fleet/transfers:2", "MoneyTransferCreated"),
        ("fleet/account-view:1", "MoneyTransferCreated@1"),
    );
    let inputs = EventInputs {
        desired: case
            .desired
            .iter()
            .map(|(s, i)| (s.to_string(), i.clone()))
            .collect(),
        ..EventInputs::default()
    };
    let shape = PlanShape {
        depends_on: inputs.desired.keys().map(|s| (s.clone(), vec![])).collect(),
        rolling: BTreeSet::new(),
    };
    let err = check(&inputs, &shape, &BTreeSet::new()).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"image fleet/transfers:2: label io.fleet.events.produces: "MoneyTransferCreated" is not Type@version (e.g. AccountDebited@1): no '@'"#
    );
}

#[test]
fn the_human_section_is_short() {
    let case = banking(
        ("fleet/transfers:2", "MoneyTransferCreated@2"),
        (
            "fleet/account-view:2",
            "MoneyTransferCreated@1,MoneyTransferCreated@2",
        ),
    );
    let (r, _) = case.run();
    assert_eq!(
        r.render(),
        "events:
  ok      every consumer reads what is produced, after every roll step (2 event versions, 3 services with a contract)
  ok      every produced version keeps a compatible schema
  order   account-view → transfers
  note    images without an event contract, ignored by the event checks: fleet/gateway:1
"
    );
}

#[test]
fn a_cycle_through_several_services_names_each_constraint() {
    let mut case = banking(
        ("fleet/transfers:2", "MoneyTransferCreated@2"),
        (
            "fleet/account-view:2",
            "MoneyTransferCreated@1,MoneyTransferCreated@2",
        ),
    );
    case.deps = vec![
        ("event-store", vec!["transfers"]),
        ("account-view", vec!["event-store"]),
        ("gateway", vec!["transfers", "account-view"]),
    ];
    let (r, levels) = case.run();
    assert_eq!(
        messages(&r),
        ["no roll order lets every consumer read what is produced; the order tried needs account-view before transfers (transfers's new image emits MoneyTransferCreated@2, which account-view's running image does not read), then transfers before event-store (event-store depends_on transfers), then event-store before account-view (account-view depends_on event-store), a cycle; roll the change in two applies, or pass --allow-incompatible MoneyTransferCreated@2"]
    );
    // The depends_on order still holds for the rest.
    assert_eq!(
        levels,
        [
            vec!["transfers"],
            vec!["event-store"],
            vec!["account-view"],
            vec!["gateway"]
        ]
    );
}

#[test]
fn without_event_constraints_the_order_is_the_depends_on_order() {
    let case = banking(
        ("fleet/transfers:2", "MoneyTransferCreated@1"),
        ("fleet/account-view:2", "MoneyTransferCreated@1"),
    );
    let (_, levels) = case.run();
    assert_eq!(
        levels,
        [
            vec!["event-store"],
            vec!["account-view", "transfers"],
            vec!["gateway"]
        ]
    );
}

#[test]
fn a_break_the_plan_does_not_cause_is_noted_not_refused() {
    let mut case = banking(
        ("fleet/transfers:1", "MoneyTransferCreated@2"),
        ("fleet/account-view:2", "MoneyTransferCreated@1"),
    );
    case.running[1].1 = image("fleet/transfers:1", "MoneyTransferCreated@2", "");
    let (r, _) = case.run();
    assert!(!r.refused(), "{:?}", r.refusals);
    assert!(r.notes.contains(
        &"already now, account-view cannot read MoneyTransferCreated@2, which transfers emits; this plan does not change that, so it is not refused"
            .to_string()
    ), "{:?}", r.notes);
}

fn with_projection(mut il: ImageLabels, version: &str) -> ImageLabels {
    il.labels
        .insert(LABEL_PROJECTION_VERSION.to_string(), version.to_string());
    il
}

#[test]
fn a_changed_projection_version_is_announced_as_a_blue_green_rebuild() {
    let mut case = banking(
        ("fleet/transfers:1", "MoneyTransferCreated@1"),
        ("fleet/account-view:2", "MoneyTransferCreated@1"),
    );
    case.running[2].1 = with_projection(case.running[2].1.clone(), "1");
    case.desired[2].1 = with_projection(case.desired[2].1.clone(), "2");
    let (r, _) = case.run();
    assert_eq!(
        r.rebuilds,
        [Rebuild {
            service: "account-view".into(),
            from: 1,
            to: 2
        }]
    );
    assert!(
        r.render().contains(
            "  rebuild account-view: projection 1 → 2, blue/green (the new container rebuilds"
        ),
        "{}",
        r.render()
    );

    // The same version (a roll in place), or a read model not rolled: no rebuild.
    case.desired[2].1 = with_projection(case.desired[2].1.clone(), "1");
    assert_eq!(case.run().0.rebuilds, []);
    case.desired[2].1 = case.running[2].1.clone();
    assert_eq!(case.run().0.rebuilds, []);
}

#[test]
fn a_malformed_desired_projection_version_is_a_plan_error_naming_image_and_label() {
    let mut case = banking(
        ("fleet/transfers:1", "MoneyTransferCreated@1"),
        ("fleet/account-view:2", "MoneyTransferCreated@1"),
    );
    case.running[2].1 = with_projection(case.running[2].1.clone(), "1");
    case.desired[2].1 = ImageLabels {
        image: "fleet/account-view:2".into(),
        labels: BTreeMap::from([(LABEL_PROJECTION_VERSION.to_string(), "two".to_string())]),
    };
    let err = case.try_run().expect_err("malformed");
    assert_eq!(
        err.to_string(),
        r#"image fleet/account-view:2: label io.fleet.projection.version: "two" is not a non-negative integer"#
    );
}
