//! The images: FROM scratch, non-root, a HEALTHCHECK through the binary, OCI labels, the event
//! labels, and at most 15 MB each. And the event declarations they are labelled from match the
//! code.

use std::collections::BTreeSet;

use banking::{AccountEvent, AccountId, Money, TransferDetails, TransferEvent, TransferId};
use es_core::DomainEvent;
use tests::images::{self, SERVICES};
use tests::{docker, events, workspace_root};

/// The size target of every service image.
const MAX_IMAGE_BYTES: u64 = 15_000_000;

#[test]
fn every_image_is_small_non_root_health_checked_and_labelled() {
    if !docker::available_or_skip("every_image_is_small_non_root_health_checked_and_labelled") {
        return;
    }
    images::ensure_built().expect("building the images");
    let head = docker::run(
        "reading the git revision",
        std::process::Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .current_dir(workspace_root()),
    )
    .expect("git rev-parse")
    .trim()
    .to_owned();
    let mut problems = Vec::new();
    eprintln!("| image | size (bytes) | size (MB) |\n| --- | ---: | ---: |");
    for service in SERVICES {
        let image = images::local_image(service);
        let size: u64 = images::inspect(&image, "{{.Size}}")
            .expect("image size")
            .parse()
            .expect("a number");
        eprintln!("| fleet/{service} | {size} | {:.1} |", size as f64 / 1e6);
        if size > MAX_IMAGE_BYTES {
            problems.push(format!("{image} is {size} bytes, over {MAX_IMAGE_BYTES}"));
        }
        let user = images::inspect(&image, "{{.Config.User}}").expect("user");
        if user.is_empty() || user == "0" || user.starts_with("0:") || user == "root" {
            problems.push(format!("{image} runs as {user:?}, not as a non-root user"));
        }
        let health = images::inspect(&image, "{{json .Config.Healthcheck.Test}}").expect("health");
        if health != r#"["CMD","/service","healthcheck"]"# {
            problems.push(format!(
                "{image} has HEALTHCHECK {health}, not /service healthcheck"
            ));
        }
        let layers = images::inspect(&image, "{{len .RootFS.Layers}}").expect("layers");
        if layers != "2" {
            problems.push(format!(
                "{image} has {layers} layers; FROM scratch with the binary and /data makes 2"
            ));
        }
        let labels = images::labels(&image).expect("labels");
        let label = |k: &str| labels.get(k).cloned().unwrap_or_default();
        if label("org.opencontainers.image.version").is_empty() {
            problems.push(format!("{image} lacks the OCI version label: {labels:?}"));
        }
        // The source label names the repository's address or is left out; a checkout's local
        // path (or a remote's credentials) must never end up in an image.
        let source = label("org.opencontainers.image.source");
        if source.starts_with('/')
            || source.starts_with("file:")
            || source.contains('@') && source.contains("://")
        {
            problems.push(format!(
                "{image} has a local or credentialed source label {source:?}"
            ));
        }
        if !label("org.opencontainers.image.revision").starts_with(&head) {
            problems.push(format!(
                "{image} has revision {:?}, the checkout is at {head}",
                label("org.opencontainers.image.revision")
            ));
        }
        for kind in ["produces", "consumes"] {
            let declared = events::declared(service, kind).expect("declarations");
            let labelled: BTreeSet<String> = label(&format!("io.fleet.events.{kind}"))
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            if declared != labelled {
                problems.push(format!(
                    "{image} labels {kind} {labelled:?}, ci/events/{service}.{kind} declares {declared:?}"
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "image problems:\n  {}",
        problems.join("\n  ")
    );
}

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
