//! The bank invariant under load: 2,000 random concurrent transfers among 20 accounts.

use std::collections::HashMap;
use std::sync::Arc;

use banking::AccountEvent;
use futures::StreamExt;
use rand::Rng;

use crate::fleet::Fleet;

const ACCOUNTS: usize = 20;
const TRANSFERS: usize = 2000;
const CONCURRENCY: usize = 32;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_concurrent_transfers_keep_the_bank_invariant() {
    let fleet = Arc::new(Fleet::spawn().await);
    let mut rng = rand::rng();
    let mut ids = Vec::new();
    let mut initial_sum = 0i64;
    for i in 0..ACCOUNTS {
        let balance = rng.random_range(0..20_000);
        initial_sum += balance;
        ids.push(fleet.open_account(&format!("acct-{i}"), balance).await);
    }
    let plan: Vec<(usize, usize, i64)> = (0..TRANSFERS)
        .map(|_| {
            let from = rng.random_range(0..ACCOUNTS);
            let to = (from + rng.random_range(1..ACCOUNTS)) % ACCOUNTS;
            (from, to, rng.random_range(1..5_000))
        })
        .collect();
    let ids = Arc::new(ids);
    let transfer_ids: Vec<String> = futures::stream::iter(plan)
        .map(|(from, to, amount)| {
            let (fleet, ids) = (fleet.clone(), ids.clone());
            async move { fleet.transfer(&ids[from], &ids[to], amount).await }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    assert_eq!(transfer_ids.len(), TRANSFERS);

    // Every transfer ends in a terminal state.
    let mut states: HashMap<String, usize> = HashMap::new();
    for t in &transfer_ids {
        let doc = fleet.wait_terminal(t).await;
        *states
            .entry(doc["state"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
    }
    assert_eq!(states.values().sum::<usize>(), TRANSFERS, "{states:?}");
    assert!(states.contains_key("COMPLETED"), "{states:?}");

    // Money is conserved, and the view agrees with the aggregates.
    let mut aggregate_sum = 0i64;
    for id in ids.iter() {
        let aggregate = fleet.account_aggregate(id).await;
        let view = fleet.account_view(id).await;
        assert_eq!(view["balance"], aggregate["balance"], "account {id}");
        aggregate_sum += aggregate["balance"].as_i64().expect("balance");
    }
    assert_eq!(aggregate_sum, initial_sum, "money appeared or vanished");

    // No balance ever went negative: replay each account's events with signed arithmetic.
    let mut running: HashMap<String, i64> = HashMap::new();
    for envelope in fleet.all_events().await {
        let stream = envelope.stream_id.as_str().to_owned();
        if !stream.starts_with("Account-") {
            continue;
        }
        let event: AccountEvent = envelope.decode().expect("decodes");
        let balance = running.entry(stream.clone()).or_default();
        *balance += event.balance_delta();
        assert!(
            *balance >= 0,
            "{stream} went to {balance} at version {}",
            envelope.version
        );
    }
    println!("transfer outcomes: {states:?}");
}
