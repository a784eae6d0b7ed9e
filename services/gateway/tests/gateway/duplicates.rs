//! Duplicates: every event delivered twice to every handler and to the view leaves the same
//! final state as delivering it once.

use account_view::ViewDb;
use es_core::EventEnvelope;

use crate::fleet::{Fleet, Options};

/// Runs both saga handlers on `events`, each event twice in a row.
async fn deliver_twice(fleet: &Fleet, events: &[EventEnvelope]) {
    let client = fleet.store_client();
    let accounts_state = accounts::AppState {
        accounts: es_client::Repository::new(client.clone()).with_snapshots(3),
        metrics: Default::default(),
    };
    let transfers_state = transfers::AppState {
        transfers: es_client::Repository::new(client.clone()),
        accounts: es_client::Repository::new(client),
        known_accounts: Default::default(),
        metrics: Default::default(),
    };
    for event in events {
        for _ in 0..2 {
            accounts::saga::handle(&accounts_state, event)
                .await
                .expect("accounts handler");
            transfers::saga::handle(&transfers_state, event)
                .await
                .expect("transfers handler");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_event_delivered_twice_gives_the_same_final_state() {
    // No saga runs by itself: this test is the only deliverer.
    let fleet = Fleet::spawn_with(Options {
        sagas: false,
        view_follows: true,
    })
    .await;
    let a = fleet.open_account("a", 15000).await;
    let b = fleet.open_account("b", 30000).await;
    let c = fleet.open_account("c", 0).await;
    let ok = fleet.transfer(&a, &b, 8000).await;
    let too_much = fleet.transfer(&a, &b, 20000).await;
    let refunded = fleet.transfer(&b, &c, 100).await;
    let (status, body) = fleet
        .call("DELETE", &format!("/api/accounts/{c}"), None)
        .await;
    assert_eq!(status, 200, "{body}");

    // Pump the log until nothing new appears: each new event is handled twice at once, and the
    // whole batch once more afterwards (late, stale duplicates).
    let mut seen = 0;
    loop {
        let events = fleet.all_events().await;
        if events.len() == seen {
            break;
        }
        let fresh = &events[seen..];
        deliver_twice(&fleet, fresh).await;
        deliver_twice(&fleet, fresh).await;
        seen = events.len();
    }
    // And every event once more from the start.
    let events = fleet.all_events().await;
    deliver_twice(&fleet, &events).await;
    let after = fleet.all_events().await;
    assert_eq!(
        after.len(),
        events.len(),
        "a duplicate delivery appended events"
    );

    // Exactly the events single delivery produces: 3 opened + 1 closed, and per transfer
    // created/debited/debit-recorded/credited/credit-recorded (5), created/failed/failed-recorded
    // (3), created/debited/debit-recorded/refunded/refund-recorded (5).
    assert_eq!(events.len(), 4 + 5 + 3 + 5);

    for (t, state) in [
        (&ok, "COMPLETED"),
        (&too_much, "FAILED_DUE_TO_INSUFFICIENT_FUNDS"),
        (&refunded, "FAILED_AND_REFUNDED"),
    ] {
        assert_eq!(fleet.wait_terminal(t).await["state"], state);
    }
    for (account, balance) in [(&a, 7000), (&b, 38000), (&c, 0)] {
        assert_eq!(fleet.account_view(account).await["balance"], balance);
        assert_eq!(fleet.account_aggregate(account).await["balance"], balance);
    }

    // The view: apply every event twice (each page twice, then the whole log again) to a fresh
    // view; it must equal the live view, which saw each event once.
    fleet.wait_view_caught_up().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut twice = ViewDb::open(&dir.path().join("v.sqlite3")).expect("open");
    for event in &events {
        let changes = account_view::projection::project(event).expect("projects");
        let batch = [(event.position, changes)];
        twice.apply(&batch).expect("apply");
        twice.apply(&batch).expect("apply again");
    }
    let whole: Vec<_> = events
        .iter()
        .map(|e| {
            (
                e.position,
                account_view::projection::project(e).expect("projects"),
            )
        })
        .collect();
    twice.apply(&whole).expect("apply the whole log again");
    let live = ViewDb::open(&fleet.view_db_path()).expect("open live view");
    assert_eq!(twice.dump().expect("dump"), live.dump().expect("dump"));
}

/// A trigger redelivered after the account has forgotten the transaction (more than
/// `Account::RECENT` later steps) is still dropped: the event store already has the derived id.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_duplicate_older_than_the_accounts_memory_is_dropped_by_the_store() {
    use banking::{Account, AccountEvent, Money, TransferId};
    use es_core::{ExpectedVersion, Metadata, NewEvent, StreamId};

    let fleet = Fleet::spawn().await;
    let a = fleet.open_account("a", 10_000).await;
    let b = fleet.open_account("b", 0).await;
    let t = fleet.transfer(&a, &b, 100).await;
    assert_eq!(fleet.wait_terminal(&t).await["state"], "COMPLETED");

    // Push the debit out of the account's memory with many later steps.
    let client = fleet.store_client();
    let stream = StreamId::parse(format!("Account-{a}")).expect("stream");
    let mut version = fleet.account_aggregate(&a).await["version"]
        .as_u64()
        .expect("version");
    let credits: Vec<NewEvent> = (0..=Account::RECENT)
        .map(|_| {
            let credit = AccountEvent::AccountCredited {
                amount: Money::from_minor(1),
                transaction_id: TransferId::new(),
            };
            NewEvent::from_event(&credit, Metadata::default()).expect("encodes")
        })
        .collect();
    for chunk in credits.chunks(500) {
        version = client
            .append(&stream, ExpectedVersion::Exact(version), chunk)
            .await
            .expect("appended")
            .version;
    }
    let balance = fleet.account_aggregate(&a).await["balance"].clone();

    let created = fleet
        .all_events()
        .await
        .into_iter()
        .find(|e| e.stream_id.as_str() == format!("MoneyTransfer-{t}") && e.version == 1)
        .expect("the MoneyTransferCreated event");
    let state = accounts::AppState {
        accounts: es_client::Repository::new(client.clone()).with_snapshots(20),
        metrics: Default::default(),
    };
    accounts::saga::handle(&state, &created)
        .await
        .expect("handled");
    let after = fleet.account_aggregate(&a).await;
    assert_eq!(
        after["version"].as_u64(),
        Some(version),
        "no event was added"
    );
    assert_eq!(after["balance"], balance);
}
