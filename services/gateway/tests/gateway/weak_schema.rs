//! Weak schema end to end: a MoneyTransferCreated as an older version wrote it (no
//! `description`, no `date`) and one with an unknown extra field both load in every service.

use es_core::{ExpectedVersion, Metadata, NewEvent, StreamId};
use serde_json::json;

use crate::Fleet;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn old_and_newer_transfer_events_load_everywhere() {
    let fleet = Fleet::spawn().await;
    let a = fleet.open_account("a", 1000).await;
    let b = fleet.open_account("b", 0).await;
    let client = fleet.store_client();
    let old = json!({"from_account_id": a, "to_account_id": b, "amount": 100});
    let newer = json!({
        "from_account_id": a, "to_account_id": b, "amount": 200,
        "description": "rent", "date": "2026-11-26T12:00:00Z", "memo": "a field from the future"
    });
    let mut ids = Vec::new();
    for data in [old, newer] {
        let id = uuid::Uuid::new_v4();
        let stream = StreamId::parse(format!("MoneyTransfer-{id}")).expect("stream id");
        let event = NewEvent {
            event_id: uuid::Uuid::new_v4(),
            event_type: "MoneyTransferCreated".into(),
            schema_version: 1,
            data,
            metadata: Metadata::default(),
        };
        client
            .append(&stream, ExpectedVersion::Exact(0), &[event])
            .await
            .expect("stored");
        ids.push(id.to_string());
    }
    let old_doc = fleet.wait_terminal(&ids[0]).await;
    assert_eq!(old_doc["state"], "COMPLETED", "{old_doc}");
    assert_eq!(old_doc["description"], "");
    let newer_doc = fleet.wait_terminal(&ids[1]).await;
    assert_eq!(newer_doc["state"], "COMPLETED", "{newer_doc}");
    assert_eq!(newer_doc["description"], "rent");
    assert_eq!(fleet.account_view(&a).await["balance"], 700);
    assert_eq!(fleet.account_view(&b).await["balance"], 300);
    // The transfers service reads the old event too.
    let (status, body) = crate::fleet::call(
        &fleet.http,
        &format!("{}/transfers/{}", fleet.transfers, ids[0]),
        "GET",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "COMPLETED");
}
