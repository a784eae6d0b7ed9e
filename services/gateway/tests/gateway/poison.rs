//! Poison events follow each consumer's policy (ARCHITECTURE.md, "Following the log"): a transfer
//! event that does not decode stops the accounts saga, whose `/health` then answers 503 naming
//! it, while the account view skips it and goes on.

use std::time::Duration;

use es_core::{ExpectedVersion, NewEvent, StreamId};
use serde_json::{json, Value};

use crate::fleet::Fleet;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transfer_event_nobody_can_read_stops_the_saga_and_the_view_skips_it() {
    let fleet = Fleet::spawn().await;
    let stream =
        StreamId::parse(format!("MoneyTransfer-{}", uuid::Uuid::new_v4())).expect("stream id");
    let poison = NewEvent {
        event_id: uuid::Uuid::new_v4(),
        event_type: "MoneyTransferCreated".into(),
        schema_version: 1,
        data: json!({"amount": "a lot"}),
        metadata: Default::default(),
    };
    fleet
        .store_client()
        .append(&stream, ExpectedVersion::Exact(0), &[poison])
        .await
        .expect("append the poison event");

    // The saga tries it a few times with backoff, then stops.
    let mut health = Value::Null;
    for _ in 0..200 {
        let response = fleet
            .http
            .get(format!("{}/health", fleet.accounts))
            .send()
            .await
            .expect("accounts answers");
        let status = response.status().as_u16();
        health = response.json().await.expect("health is JSON");
        if status == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(health["status"], "unavailable", "{health}");
    assert_eq!(health["stopped"][0]["worker"], "accounts-saga", "{health}");

    // The view went past it: an account opened afterwards shows, and the skip is counted.
    let account = fleet.open_account("after the poison", 5).await;
    let view = fleet.account_view(&account).await;
    assert_eq!(view["balance"], 5, "{view}");
    let metrics = fleet
        .http
        .get(format!("{}/metrics", fleet.view))
        .send()
        .await
        .expect("view answers")
        .text()
        .await
        .expect("metrics text");
    assert!(
        metrics.contains("account_view_events_skipped_total 1"),
        "{metrics}"
    );
}
