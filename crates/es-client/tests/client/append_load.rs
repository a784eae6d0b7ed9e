use std::time::Duration;

use serde_json::json;

use es_client::{ClientError, Repository, StreamQuery};
use es_core::{ExpectedVersion, Metadata, NewEvent};

use crate::support::{new_stream, TestStore, Wallet, WalletCommand, WalletEvent};

#[tokio::test]
async fn appended_events_read_back_as_envelopes_and_load_as_state() {
    let store = TestStore::spawn().await;
    let stream = new_stream();
    let metadata = Metadata::new_flow();
    let events = [
        WalletEvent::Opened {
            owner: "ada".into(),
        },
        WalletEvent::Deposited { amount: 150 },
        WalletEvent::Withdrawn { amount: 80 },
    ]
    .iter()
    .map(|event| NewEvent::from_event(event, metadata.clone()).expect("encode"))
    .collect::<Vec<_>>();

    let result = store
        .client
        .append(&stream, ExpectedVersion::NO_STREAM, &events)
        .await
        .expect("append to a new stream");
    assert_eq!(result.version, 3);

    let page = store
        .client
        .read_stream(&stream, &StreamQuery::from(1, 100))
        .await
        .expect("read the stream");
    assert_eq!(page.version, 3);
    assert_eq!(page.events.len(), 3);
    for (index, (envelope, sent)) in page.events.iter().zip(&events).enumerate() {
        assert_eq!(envelope.event_id, sent.event_id);
        assert_eq!(envelope.stream_id, stream);
        assert_eq!(envelope.version, index as u64 + 1);
        assert_eq!(envelope.event_type, sent.event_type);
        assert_eq!(envelope.schema_version, sent.schema_version);
        assert_eq!(envelope.data, sent.data);
        assert_eq!(envelope.metadata, metadata);
    }
    assert!(page
        .events
        .windows(2)
        .all(|w| w[0].position < w[1].position));
    assert_eq!(page.events[2].position, result.position);
    let decoded: WalletEvent = page.events[2].decode().expect("decode");
    assert_eq!(decoded, WalletEvent::Withdrawn { amount: 80 });

    let loaded = Repository::<Wallet>::new(store.client.clone())
        .load(&stream)
        .await
        .expect("load");
    assert_eq!(loaded.version, 3);
    assert_eq!(loaded.state.balance, 70);
    assert_eq!(loaded.state.owner.as_deref(), Some("ada"));
}

#[tokio::test]
async fn loading_pages_through_long_streams() {
    let store = TestStore::spawn().await;
    let stream = new_stream();
    let repository = Repository::<Wallet>::new(store.client.clone()).with_page_size(7);
    repository
        .execute(&stream, WalletCommand::Open { owner: "bo".into() })
        .await
        .expect("open");
    for amount in 1..=30 {
        repository
            .execute(&stream, WalletCommand::Deposit { amount })
            .await
            .expect("deposit");
    }
    let loaded = repository.load(&stream).await.expect("load");
    assert_eq!(loaded.version, 31);
    assert_eq!(loaded.state.balance, (1..=30).sum::<i64>());
    assert_eq!(loaded.state.movements, 30);
}

#[tokio::test]
async fn unknown_stream_loads_as_the_default_state_at_version_zero() {
    let store = TestStore::spawn().await;
    let loaded = Repository::<Wallet>::new(store.client.clone())
        .load(&new_stream())
        .await
        .expect("load");
    assert_eq!(loaded.version, 0);
    assert_eq!(loaded.state, Wallet::default());
}

#[tokio::test]
async fn append_with_a_stale_expected_version_is_a_conflict_naming_the_current_version() {
    let store = TestStore::spawn().await;
    let stream = new_stream();
    let event = |amount| {
        NewEvent::from_event(&WalletEvent::Deposited { amount }, Metadata::default())
            .expect("encode")
    };
    store
        .client
        .append(&stream, ExpectedVersion::NO_STREAM, &[event(1), event(2)])
        .await
        .expect("first append");
    let error = store
        .client
        .append(&stream, ExpectedVersion::Exact(1), &[event(3)])
        .await
        .expect_err("stale version");
    assert!(
        matches!(
            error,
            ClientError::WrongExpectedVersion {
                current: 2,
                expected: ExpectedVersion::Exact(1),
                ..
            }
        ),
        "{error}"
    );
    let any = store
        .client
        .append(&stream, ExpectedVersion::Any, &[event(4)])
        .await
        .expect("append with any");
    assert_eq!(any.version, 3);
}

#[tokio::test]
async fn read_all_waits_for_the_next_event() {
    let store = TestStore::spawn().await;
    let stream = new_stream();
    let empty = store
        .client
        .read_all(0, 10, Duration::ZERO)
        .await
        .expect("read an empty log");
    assert!(empty.events.is_empty());

    let client = store.client.clone();
    let writer_stream = stream.clone();
    let writer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let event =
            NewEvent::from_event(&WalletEvent::Deposited { amount: 5 }, Metadata::default())
                .expect("encode");
        client
            .append(&writer_stream, ExpectedVersion::Any, &[event])
            .await
            .expect("append while a reader waits");
    });
    let page = store
        .client
        .read_all(0, 10, Duration::from_secs(10))
        .await
        .expect("long poll");
    writer.await.expect("writer");
    assert_eq!(page.events.len(), 1);
    assert_eq!(page.events[0].stream_id, stream);
    assert_eq!(page.head, Some(page.events[0].position));

    let after = store
        .client
        .read_all(page.events[0].position, 10, Duration::ZERO)
        .await
        .expect("read after the last position");
    assert!(after.events.is_empty());
}

#[tokio::test]
async fn stored_events_of_older_schemas_load_through_weak_schema_and_upcasting() {
    let store = TestStore::spawn().await;
    let stream = new_stream();
    let raw = |event_type: &str, schema_version: u32, data: serde_json::Value| NewEvent {
        event_id: uuid::Uuid::new_v4(),
        event_type: event_type.into(),
        schema_version,
        data,
        metadata: Metadata::default(),
    };
    let events = [
        // Written before `owner` existed: it takes its default.
        raw("Opened", 1, json!({})),
        // Schema version 1 of Deposited: upcast from `value` to `amount`.
        raw("Deposited", 1, json!({"value": 7})),
        // Current version with a field added by newer code: ignored.
        raw(
            "Deposited",
            2,
            json!({"amount": 3, "memo": "from the future"}),
        ),
    ];
    store
        .client
        .append(&stream, ExpectedVersion::NO_STREAM, &events)
        .await
        .expect("append raw events");
    let loaded = Repository::<Wallet>::new(store.client.clone())
        .load(&stream)
        .await
        .expect("load");
    assert_eq!(loaded.state.owner.as_deref(), Some(""));
    assert_eq!(loaded.state.balance, 10);

    // New events are written in the current schema version.
    let executed = Repository::<Wallet>::new(store.client.clone())
        .execute(&stream, WalletCommand::Deposit { amount: 1 })
        .await
        .expect("deposit");
    let page = store
        .client
        .read_stream(&stream, &StreamQuery::from(executed.version, 1))
        .await
        .expect("read");
    assert_eq!(page.events[0].schema_version, 2);
    assert_eq!(page.events[0].data, json!({"amount": 1}));
}

#[tokio::test]
async fn an_event_that_cannot_be_decoded_fails_the_load_naming_stream_and_version() {
    let store = TestStore::spawn().await;
    let stream = new_stream();
    let bad = NewEvent {
        event_id: uuid::Uuid::new_v4(),
        event_type: "Deposited".into(),
        schema_version: 2,
        data: json!({"amount": "seven"}),
        metadata: Metadata::default(),
    };
    store
        .client
        .append(&stream, ExpectedVersion::Any, &[bad])
        .await
        .expect("the store is schema-agnostic");
    let error = Repository::<Wallet>::new(store.client.clone())
        .load(&stream)
        .await
        .expect_err("undecodable");
    assert!(
        matches!(&error, ClientError::Decode { version: 1, stream: s, .. } if *s == stream),
        "{error}"
    );
}
