use es_client::{CommandContext, Repository, StreamQuery};
use es_core::{derived_event_id, EventEnvelope};

use crate::support::{new_stream, TestStore, Wallet, WalletCommand};

/// A reaction: when a wallet is opened, give it a welcome bonus in a second wallet.
async fn on_opened(
    repository: &Repository<Wallet>,
    bonus_stream: &es_core::StreamId,
    trigger: &EventEnvelope,
) -> es_client::Executed<Wallet> {
    repository
        .execute_with(
            bonus_stream,
            WalletCommand::Deposit { amount: 10 },
            &CommandContext::caused_by(trigger, "welcome-bonus"),
        )
        .await
        .expect("handler runs")
}

#[tokio::test]
async fn running_a_handler_twice_for_one_event_stores_its_events_once() {
    let store = TestStore::spawn().await;
    let repository = Repository::<Wallet>::new(store.client.clone());
    let source = new_stream();
    let bonus = new_stream();
    repository
        .execute(
            &source,
            WalletCommand::Open {
                owner: "ada".into(),
            },
        )
        .await
        .expect("open the source");
    repository
        .execute(
            &bonus,
            WalletCommand::Open {
                owner: "bank".into(),
            },
        )
        .await
        .expect("open the bonus wallet");
    let trigger = store
        .client
        .read_stream(&source, &StreamQuery::from(1, 1))
        .await
        .expect("read the trigger")
        .events
        .remove(0);

    let first = on_opened(&repository, &bonus, &trigger).await;
    assert!(first.appended);
    assert_eq!(first.version, 2);
    let again = on_opened(&repository, &bonus, &trigger).await;
    assert!(!again.appended, "the redelivered trigger stores nothing");
    assert_eq!(again.version, 2);
    assert_eq!(again.state.balance, 10);

    let page = store
        .client
        .read_stream(&bonus, &StreamQuery::from(1, 100))
        .await
        .expect("read the bonus wallet");
    assert_eq!(page.version, 2, "exactly one bonus");
    let stored = &page.events[1];
    assert_eq!(
        stored.event_id,
        derived_event_id(trigger.event_id, "welcome-bonus")
    );
    assert_eq!(stored.metadata.causation_id, Some(trigger.event_id));
    assert_eq!(
        stored.metadata.correlation_id,
        Some(trigger.event_id),
        "the trigger had none"
    );

    // A different reaction to the same trigger is a different event.
    let other = repository
        .execute_with(
            &bonus,
            WalletCommand::Deposit { amount: 10 },
            &CommandContext::caused_by(&trigger, "second-bonus"),
        )
        .await
        .expect("another purpose");
    assert!(other.appended);
    assert_eq!(other.version, 3);
}

#[tokio::test]
async fn correlation_flows_from_the_first_command_through_reactions() {
    let store = TestStore::spawn().await;
    let repository = Repository::<Wallet>::new(store.client.clone());
    let source = new_stream();
    let target = new_stream();
    let flow = CommandContext::new_flow();
    repository
        .execute_with(
            &source,
            WalletCommand::Open {
                owner: "ada".into(),
            },
            &flow,
        )
        .await
        .expect("open");
    repository
        .execute(&target, WalletCommand::Open { owner: "bo".into() })
        .await
        .expect("open target");
    let trigger = store
        .client
        .read_stream(&source, &StreamQuery::from(1, 1))
        .await
        .expect("read")
        .events
        .remove(0);
    assert_eq!(trigger.metadata, flow.metadata);

    on_opened(&repository, &target, &trigger).await;
    let reaction = store
        .client
        .read_stream(&target, &StreamQuery::from(2, 1))
        .await
        .expect("read")
        .events
        .remove(0);
    assert_eq!(
        reaction.metadata.correlation_id,
        flow.metadata.correlation_id
    );
    assert_eq!(reaction.metadata.causation_id, Some(trigger.event_id));
}
