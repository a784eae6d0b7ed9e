//! The event type names: written once, in the banking enums (`AccountEvent::TYPES`,
//! `TransferEvent::TYPES`), from which the sagas' subscriptions are derived; the declarations in
//! `ci/events/`, which the images are labelled with, must match them. No Docker needed.

use std::collections::BTreeSet;

use banking::testing::{every_account_event, every_transfer_event};
use banking::{AccountEvent, TransferEvent};
use es_core::DomainEvent;
use tests::events;

/// `Type@schema_version`, as `ci/events/` declares it.
fn versioned_type(e: &impl DomainEvent) -> String {
    format!("{}@{}", e.event_type(), e.schema_version())
}

fn set(items: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    items.into_iter().collect()
}

#[test]
fn event_declarations_match_the_code() {
    let account_events = set(every_account_event().iter().map(versioned_type));
    let transfer_events = set(every_transfer_event().iter().map(versioned_type));
    assert_eq!(
        set(account_events
            .iter()
            .map(|e| e.split('@').next().unwrap_or_default().to_owned())),
        set(AccountEvent::TYPES.map(str::to_owned)),
        "AccountEvent::TYPES lists every variant"
    );
    assert_eq!(
        set(transfer_events
            .iter()
            .map(|e| e.split('@').next().unwrap_or_default().to_owned())),
        set(TransferEvent::TYPES.map(str::to_owned)),
        "TransferEvent::TYPES lists every variant"
    );
    let every = set(account_events.iter().chain(&transfer_events).cloned());
    // A consumer reads an event type at the schema version its producer writes today.
    let versioned = |types: &[&str]| -> BTreeSet<String> {
        types
            .iter()
            .map(|t| {
                every
                    .iter()
                    .find(|e| e.split('@').next() == Some(*t))
                    .cloned()
                    .unwrap_or_else(|| format!("{t}@<no producer>"))
            })
            .collect()
    };
    let expected = [
        ("accounts", "produces", account_events.clone()),
        (
            "accounts",
            "consumes",
            versioned(&accounts::saga::EVENT_TYPES),
        ),
        ("transfers", "produces", transfer_events.clone()),
        (
            "transfers",
            "consumes",
            versioned(&transfers::saga::EVENT_TYPES),
        ),
        // The view projects every Account and MoneyTransfer event.
        ("account-view", "consumes", every.clone()),
        ("account-view", "produces", BTreeSet::new()),
        ("event-store", "produces", BTreeSet::new()),
        ("event-store", "consumes", BTreeSet::new()),
        ("gateway", "produces", BTreeSet::new()),
        ("gateway", "consumes", BTreeSet::new()),
        ("archiver", "produces", BTreeSet::new()),
        ("archiver", "consumes", set(["*".to_owned()])),
        // The indexer also reads AccountRenamed, which no service produces yet: a declaration
        // lists only what some producer writes.
        ("indexer", "produces", BTreeSet::new()),
        (
            "indexer",
            "consumes",
            versioned(
                &indexer::entry::EVENT_TYPES
                    .iter()
                    .copied()
                    .filter(|t| *t != "AccountRenamed")
                    .collect::<Vec<_>>(),
            ),
        ),
    ];
    let mut problems = Vec::new();
    for (service, kind, want) in expected {
        let got = events::declared(service, kind).expect("reading a declaration");
        if got != want {
            problems.push(format!(
                "ci/events/{service}.{kind} declares {got:?}; the code {kind} {want:?}"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
