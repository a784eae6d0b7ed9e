//! The event type names: written once, in the banking enums (`AccountEvent::TYPES`,
//! `TransferEvent::TYPES`), from which the sagas' subscriptions are derived; the declarations in
//! `ci/events/`, which the images are labelled with, must match them. No Docker needed.

use std::collections::BTreeSet;

use banking::{AccountEvent, AccountId, Money, TransferDetails, TransferEvent, TransferId};
use es_core::DomainEvent;
use tests::events;

/// Every variant of AccountEvent; the match in `account_type` makes a new variant a compile
/// error here until it is listed.
fn all_account_events() -> Vec<AccountEvent> {
    let amount = Money::parse_amount("amount", 1).expect("1 is an amount");
    let transaction_id = TransferId::new();
    vec![
        AccountEvent::AccountOpened {
            customer_id: None,
            title: "t".into(),
            description: String::new(),
            initial_balance: amount,
        },
        AccountEvent::AccountDebited {
            amount,
            transaction_id,
        },
        AccountEvent::AccountCredited {
            amount,
            transaction_id,
        },
        AccountEvent::AccountDebitFailedDueToInsufficientFunds {
            amount,
            transaction_id,
        },
        AccountEvent::AccountRefunded {
            amount,
            transaction_id,
        },
        AccountEvent::AccountClosed {},
    ]
}

fn account_type(e: &AccountEvent) -> String {
    match e {
        AccountEvent::AccountOpened { .. }
        | AccountEvent::AccountDebited { .. }
        | AccountEvent::AccountCredited { .. }
        | AccountEvent::AccountDebitFailedDueToInsufficientFunds { .. }
        | AccountEvent::AccountRefunded { .. }
        | AccountEvent::AccountClosed {} => format!("{}@{}", e.event_type(), e.schema_version()),
    }
}

fn all_transfer_events() -> Vec<TransferEvent> {
    let d = TransferDetails {
        from_account_id: AccountId::new(),
        to_account_id: AccountId::new(),
        amount: Money::parse_amount("amount", 1).expect("1 is an amount"),
        date: time::OffsetDateTime::UNIX_EPOCH,
        description: String::new(),
    };
    vec![
        TransferEvent::MoneyTransferCreated(d.clone()),
        TransferEvent::DebitRecorded(d.clone()),
        TransferEvent::CreditRecorded(d.clone()),
        TransferEvent::FailedDebitRecorded(d.clone()),
        TransferEvent::TransferRefunded(d),
    ]
}

fn transfer_type(e: &TransferEvent) -> String {
    match e {
        TransferEvent::MoneyTransferCreated(_)
        | TransferEvent::DebitRecorded(_)
        | TransferEvent::CreditRecorded(_)
        | TransferEvent::FailedDebitRecorded(_)
        | TransferEvent::TransferRefunded(_) => {
            format!("{}@{}", e.event_type(), e.schema_version())
        }
    }
}

fn set(items: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    items.into_iter().collect()
}

#[test]
fn event_declarations_match_the_code() {
    let account_events = set(all_account_events().iter().map(account_type));
    let transfer_events = set(all_transfer_events().iter().map(transfer_type));
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
