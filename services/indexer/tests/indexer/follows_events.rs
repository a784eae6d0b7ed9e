//! The index follows events: an account opened as "Holiday savings" is found by "holiday";
//! closing or renaming it changes the results; transfers are found by description, party and
//! state; after a kill and a restart (and after a rebuild) the same searches give the same
//! results, with nothing missed or indexed twice.

use std::time::Duration;

use banking::{AccountEvent, TransferEvent};

use crate::support::{ids, IndexerProcess, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_follows_events_across_kill_restart_and_rebuild() {
    let store = Store::spawn().await;
    let data = tempfile::tempdir().expect("data dir");
    let indexer = IndexerProcess::start(&store.url, data.path()).await;

    let holiday = store
        .open_account("Holiday savings", "saving for Lisbon", "cust-7")
        .await;
    let current = store
        .open_account("Current account", "salary and bills", "cust-7")
        .await;
    indexer.wait_indexed(store.head().await).await;

    let (status, body) = indexer.get("/search?q=holiday").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body), vec![holiday.to_string()], "{body}");
    assert_eq!(body["results"][0]["type"], "account");
    assert_eq!(body["results"][0]["title"], "Holiday savings");
    assert_eq!(body["results"][0]["status"], "OPEN");
    let (_, body) = indexer.get("/search?q=cust-7&type=account").await;
    assert_eq!(body["total"], 2, "{body}");

    // Transfers: found by description, by a party's title, by state and amount.
    let flights = store
        .transfer(
            current,
            holiday,
            2500,
            "flights to Lisbon",
            &[TransferEvent::DebitRecorded, TransferEvent::CreditRecorded],
        )
        .await;
    let _rent = store
        .transfer(holiday, current, 900, "rent share", &[])
        .await;
    indexer.wait_indexed(store.head().await).await;
    let (_, body) = indexer.get("/search?q=flights&type=transfer").await;
    assert_eq!(ids(&body), vec![flights.to_string()], "{body}");
    assert_eq!(body["results"][0]["state"], "COMPLETED");
    assert_eq!(body["results"][0]["amount"], 2500);
    assert_eq!(body["results"][0]["to_title"], "Holiday savings");
    let (_, body) = indexer.get("/search?q=holiday&type=transfer").await;
    assert_eq!(
        body["total"], 2,
        "both transfers have the holiday account as a party: {body}"
    );
    let (_, body) = indexer.get("/search?q=state:initial").await;
    assert_eq!(body["total"], 1, "{body}");
    let (_, body) = indexer.get("/search?q=amount:2500").await;
    assert_eq!(ids(&body), vec![flights.to_string()], "{body}");

    // Close the account: the result follows.
    store
        .append_account(holiday, &AccountEvent::AccountClosed {})
        .await;
    indexer.wait_indexed(store.head().await).await;
    let (_, body) = indexer.get("/search?q=holiday&type=account").await;
    assert_eq!(ids(&body), vec![holiday.to_string()]);
    assert_eq!(body["results"][0]["status"], "CLOSED", "{body}");

    // Rename the current account: the old title no longer finds it, the new one does.
    store
        .append_raw(
            &format!("Account-{current}"),
            "AccountRenamed",
            serde_json::json!({"title": "Everyday spending"}),
        )
        .await;
    indexer.wait_indexed(store.head().await).await;
    let (_, body) = indexer.get("/search?q=everyday").await;
    assert_eq!(ids(&body), vec![current.to_string()], "{body}");
    let (_, body) = indexer.get("/search?q=title:current").await;
    assert_eq!(body["total"], 0, "{body}");

    let searches = [
        "/search?q=holiday",
        "/search?q=everyday",
        "/search?q=lisbon",
        "/search?q=cust-7",
        "/search?q=completed&type=transfer",
    ];
    let mut before = Vec::new();
    for search in searches {
        before.push(without_scores(&indexer.get(search).await.1));
    }
    let (_, health) = indexer.get("/health").await;
    assert_eq!(health["details"]["documents"], 4, "{health}");

    // Many more events, and a kill while they are being indexed.
    let writer = {
        let url = store.url.clone();
        tokio::spawn(async move {
            let store = crate::support::Bank::attach(&url);
            for i in 0..150 {
                store
                    .open_account(&format!("Bulk {i}"), "bulk savings", "cust-9")
                    .await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    indexer.kill();
    writer.await.expect("bulk writes");

    let indexer = IndexerProcess::start(&store.url, data.path()).await;
    indexer.wait_indexed(store.head().await).await;
    for (search, expected) in searches.iter().zip(&before) {
        let (_, body) = indexer.get(search).await;
        assert_eq!(
            &without_scores(&body),
            expected,
            "{search} changed after the restart"
        );
    }
    let (_, body) = indexer.get("/search?q=bulk&limit=100").await;
    assert_eq!(
        body["total"], 150,
        "each bulk account once: {}",
        body["total"]
    );
    let (_, health) = indexer.get("/health").await;
    assert_eq!(health["details"]["documents"], 154, "{health}");
    assert_eq!(health["details"]["lag"], 0, "{health}");
    let status = indexer.terminate();
    assert!(status.success(), "graceful stop exits 0, got {status}");

    // Rebuild from position 0: the same answers.
    let rebuilt = std::process::Command::new(env!("CARGO_BIN_EXE_indexer"))
        .arg("rebuild")
        .env("DATA_DIR", data.path())
        .output()
        .expect("rebuild runs");
    assert!(rebuilt.status.success(), "{rebuilt:?}");
    let indexer = IndexerProcess::start(&store.url, data.path()).await;
    indexer.wait_indexed(store.head().await).await;
    for (search, expected) in searches.iter().zip(&before) {
        let (_, body) = indexer.get(search).await;
        assert_eq!(
            &without_scores(&body),
            expected,
            "{search} changed after the rebuild"
        );
    }
    let metrics = reqwest::get(format!("{}/metrics", indexer.base))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("\nindexer_lag_events 0\n"), "{metrics}");
}

/// The hits in rank order without their scores: BM25 statistics shift as documents are added,
/// so scores are not comparable across index states; ranks and entries are.
fn without_scores(body: &serde_json::Value) -> Vec<serde_json::Value> {
    body["results"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|mut hit| {
            if let Some(hit) = hit.as_object_mut() {
                hit.remove("score");
            }
            hit
        })
        .collect()
}
