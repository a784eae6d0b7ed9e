//! `EventStoreClient::event_types`: the store's counts per event type and schema version.

use es_client::EventTypeCount;

use crate::support::{write_events, TestStore};

#[tokio::test]
async fn event_types_counts_what_was_written_sorted_by_type_then_version() {
    let store = TestStore::spawn().await;
    assert_eq!(store.client.event_types().await.expect("event types"), []);
    write_events(&store, 3).await;
    write_events(&store, 1).await;
    let row = |event_type: &str, version, count, first_position, last_position| EventTypeCount {
        event_type: event_type.to_owned(),
        version,
        count,
        first_position,
        last_position,
    };
    assert_eq!(
        store.client.event_types().await.expect("event types"),
        [row("Deposited", 2, 4, 2, 6), row("Opened", 1, 2, 1, 5)]
    );
}
