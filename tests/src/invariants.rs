//! The bank's invariants, checked against the event store (the source of truth) and through the
//! gateway (what the view shows):
//! - money is conserved: the balances add up to the money the accounts were opened with;
//! - every transfer is terminal, and a completed one debited and credited exactly once;
//! - the view's balance and version of every account equal the aggregate's, from its events;
//! - every transfer a client was told was created exists in the store (nothing lost);
//! - no event id is stored twice.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use banking::{AccountEvent, MoneyTransfer, TransferEvent, TransferState};
use es_client::EventStoreClient;
use es_core::Aggregate;

use crate::bank::Gateway;
use crate::Error;

/// An account as its events in the store define it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountFacts {
    pub opened_with: i64,
    pub balance: i64,
    pub version: u64,
    /// Transfer ids this account was debited for, and credited for (with repeats, if any).
    pub debits: Vec<String>,
    pub credits: Vec<String>,
    pub refunds: Vec<String>,
}

/// A transfer as its events in the store define it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferFacts {
    pub state: TransferState,
    pub from: String,
    pub to: String,
    pub amount: i64,
    pub version: u64,
}

/// Everything in the store, folded per aggregate.
#[derive(Debug, Clone, Default)]
pub struct StoreFacts {
    pub events: u64,
    pub accounts: BTreeMap<String, AccountFacts>,
    pub transfers: BTreeMap<String, TransferFacts>,
    pub duplicate_event_ids: u64,
}

impl StoreFacts {
    /// Transfers not yet in a terminal state.
    pub fn pending_transfers(&self) -> Vec<&String> {
        self.transfers
            .iter()
            .filter(|(_, t)| !is_terminal(t.state))
            .map(|(id, _)| id)
            .collect()
    }

    pub fn total_balance(&self) -> i64 {
        self.accounts.values().map(|a| a.balance).sum()
    }

    pub fn total_opened(&self) -> i64 {
        self.accounts.values().map(|a| a.opened_with).sum()
    }

    /// Transfers by final state, e.g. `{"COMPLETED": 120, ...}`.
    pub fn states(&self) -> BTreeMap<&'static str, usize> {
        let mut out = BTreeMap::new();
        for t in self.transfers.values() {
            *out.entry(t.state.as_str()).or_insert(0) += 1;
        }
        out
    }
}

/// Whether a transfer has finished: completed, or failed (with or without a refund).
pub fn is_terminal(state: TransferState) -> bool {
    matches!(
        state,
        TransferState::Completed
            | TransferState::FailedDueToInsufficientFunds
            | TransferState::FailedAndRefunded
    )
}

/// Reads the whole global log and folds it per aggregate.
pub async fn read_store(store: &EventStoreClient) -> Result<StoreFacts, Error> {
    let mut facts = StoreFacts::default();
    let mut ids = HashSet::new();
    let mut transfer_events: BTreeMap<String, Vec<TransferEvent>> = BTreeMap::new();
    let mut transfer_versions: BTreeMap<String, u64> = BTreeMap::new();
    let mut after = 0;
    loop {
        let page = store
            .read_all(after, 5000, Duration::ZERO)
            .await
            .map_err(|source| Error::Store {
                what: format!("reading the global log after position {after}"),
                source,
            })?;
        if page.events.is_empty() {
            break;
        }
        for e in &page.events {
            after = after.max(e.position);
            facts.events += 1;
            if !ids.insert(e.event_id) {
                facts.duplicate_event_ids += 1;
            }
            let stream = e.stream_id.to_string();
            if let Some(id) = stream.strip_prefix("Account-") {
                let event: AccountEvent = e.decode().map_err(|err| {
                    Error::Invariant(format!(
                        "event {} of {stream} does not decode: {err}",
                        e.event_id
                    ))
                })?;
                let a = facts.accounts.entry(id.to_owned()).or_default();
                a.balance += event.balance_delta();
                a.version = a.version.max(e.version);
                match &event {
                    AccountEvent::AccountOpened {
                        initial_balance, ..
                    } => a.opened_with += initial_balance.as_delta(),
                    AccountEvent::AccountDebited { transaction_id, .. } => {
                        a.debits.push(transaction_id.to_string())
                    }
                    AccountEvent::AccountCredited { transaction_id, .. } => {
                        a.credits.push(transaction_id.to_string())
                    }
                    AccountEvent::AccountRefunded { transaction_id, .. } => {
                        a.refunds.push(transaction_id.to_string())
                    }
                    _ => {}
                }
            } else if let Some(id) = stream.strip_prefix("MoneyTransfer-") {
                let event: TransferEvent = e.decode().map_err(|err| {
                    Error::Invariant(format!(
                        "event {} of {stream} does not decode: {err}",
                        e.event_id
                    ))
                })?;
                transfer_events
                    .entry(id.to_owned())
                    .or_default()
                    .push(event);
                let v = transfer_versions.entry(id.to_owned()).or_default();
                *v = (*v).max(e.version);
            }
        }
    }
    for (id, events) in transfer_events {
        let transfer = events
            .iter()
            .fold(MoneyTransfer::default(), |t, e| t.apply(e));
        let details = events[0].details();
        facts.transfers.insert(
            id.clone(),
            TransferFacts {
                state: transfer.state,
                from: details.from_account_id.to_string(),
                to: details.to_account_id.to_string(),
                amount: details.amount.as_delta(),
                version: transfer_versions.get(&id).copied().unwrap_or_default(),
            },
        );
    }
    Ok(facts)
}

/// Waits until every transfer in the store is terminal (for up to `wait`), then returns the
/// store's facts.
pub async fn settled(store: &EventStoreClient, wait: Duration) -> Result<StoreFacts, Error> {
    let deadline = Instant::now() + wait;
    loop {
        let facts = read_store(store).await?;
        let pending = facts.pending_transfers();
        if pending.is_empty() {
            return Ok(facts);
        }
        if Instant::now() >= deadline {
            return Err(Error::Invariant(format!(
                "{} transfer(s) are not terminal {wait:?} after the load stopped, e.g. {:?}",
                pending.len(),
                pending.iter().take(5).collect::<Vec<_>>()
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// What `check` saw.
#[derive(Debug, Clone)]
pub struct Checked {
    pub events: u64,
    pub accounts: usize,
    pub transfers: usize,
    pub states: BTreeMap<&'static str, usize>,
    pub total_balance: i64,
}

/// Checks every invariant: waits for the saga to settle, then compares the store with itself,
/// with `created_transfers` (ids the clients got a 201 for) and with the view, through the
/// gateway. `expected_total` is the money the clients opened accounts with.
pub async fn check(
    store: &EventStoreClient,
    gateway: &Gateway,
    expected_total: i64,
    created_transfers: &[String],
) -> Result<Checked, Error> {
    let facts = settled(store, Duration::from_secs(90)).await?;
    let mut broken = Vec::new();
    if facts.duplicate_event_ids > 0 {
        broken.push(format!(
            "{} event id(s) are stored twice",
            facts.duplicate_event_ids
        ));
    }
    if facts.total_balance() != expected_total || facts.total_opened() != expected_total {
        broken.push(format!(
            "money is not conserved: balances add up to {}, accounts were opened with {} in the store and {expected_total} by the clients",
            facts.total_balance(),
            facts.total_opened()
        ));
    }
    for (id, a) in &facts.accounts {
        if a.balance < 0 {
            broken.push(format!("account {id} is overdrawn: {}", a.balance));
        }
    }
    for (id, t) in &facts.transfers {
        let debited = count(&facts, &t.from, id, |a| &a.debits);
        let credited = count(&facts, &t.to, id, |a| &a.credits);
        let refunded = count(&facts, &t.from, id, |a| &a.refunds);
        let expected = match t.state {
            TransferState::Completed => (1, 1, 0),
            TransferState::FailedDueToInsufficientFunds => (0, 0, 0),
            TransferState::FailedAndRefunded => (1, 0, 1),
            _ => (debited, credited, refunded),
        };
        if (debited, credited, refunded) != expected {
            broken.push(format!(
                "transfer {id} is {} but debited {debited}, credited {credited}, refunded {refunded} time(s)",
                t.state.as_str()
            ));
        }
    }
    let missing: Vec<&String> = created_transfers
        .iter()
        .filter(|id| !facts.transfers.contains_key(*id))
        .collect();
    if !missing.is_empty() {
        broken.push(format!(
            "{} transfer(s) answered 201 but are not in the store, e.g. {:?}",
            missing.len(),
            missing.iter().take(5).collect::<Vec<_>>()
        ));
    }
    for (id, a) in &facts.accounts {
        let doc = gateway
            .account(id, a.version, Duration::from_secs(30))
            .await?;
        let (balance, version) = (doc["balance"].as_i64(), doc["version"].as_u64());
        if balance != Some(a.balance) || version != Some(a.version) {
            broken.push(format!(
                "the view shows account {id} at balance {balance:?} version {version:?}, its events say {} at version {}",
                a.balance, a.version
            ));
        }
    }
    for (id, t) in facts.transfers.iter().take(200) {
        let doc = gateway
            .transfer_doc(id, t.version, Duration::from_secs(30))
            .await?;
        if doc["state"].as_str() != Some(t.state.as_str()) {
            broken.push(format!(
                "the view shows transfer {id} as {}, its events say {}",
                doc["state"],
                t.state.as_str()
            ));
        }
    }
    if !broken.is_empty() {
        let n = broken.len();
        broken.truncate(20);
        return Err(Error::Invariant(format!(
            "{n} problem(s):\n  {}",
            broken.join("\n  ")
        )));
    }
    Ok(Checked {
        events: facts.events,
        accounts: facts.accounts.len(),
        transfers: facts.transfers.len(),
        states: facts.states(),
        total_balance: facts.total_balance(),
    })
}

fn count(
    facts: &StoreFacts,
    account: &str,
    transfer: &str,
    list: impl Fn(&AccountFacts) -> &Vec<String>,
) -> usize {
    facts
        .accounts
        .get(account)
        .map(|a| list(a).iter().filter(|t| t.as_str() == transfer).count())
        .unwrap_or(0)
}
