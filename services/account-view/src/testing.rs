//! Test support: a synthetic banking log, as whole envelopes for the store's `POST /import`, so
//! benches and tests can fill a store with many events in seconds. Enabled by the `testing`
//! feature, for dev-dependencies only.

use banking::{AccountEvent, AccountId, Money, TransferDetails, TransferEvent, TransferId};
use es_core::DomainEvent;
use serde_json::{json, Value};

/// The time every synthetic event is recorded at (the store refuses times after its clock).
pub const RECORDED_AT: &str = "2026-01-01T00:00:00Z";

/// A deterministic log of `accounts` opened accounts followed by completed transfers between
/// them (five events each: created, debited, debit recorded, credited, credit recorded), cut at
/// `events` in all. Positions run from 1; import it in order, in batches of at most the store's
/// `EVENT_STORE_MAX_BATCH`.
pub struct SyntheticLog {
    accounts: Vec<AccountId>,
    versions: Vec<u64>,
    pending: std::collections::VecDeque<Value>,
    transfers: u64,
    /// The position of the last event made.
    position: u64,
    /// The position of the last event to make.
    end: u64,
    recorded_at: String,
}

impl SyntheticLog {
    pub fn new(accounts: usize, events: u64) -> Self {
        Self::after(0, accounts, events, RECORDED_AT)
    }

    /// Like [`SyntheticLog::new`], continuing a log whose head is `head` (positions from
    /// `head + 1`), every event recorded at `recorded_at` (RFC 3339; not before the store's last
    /// event, not after its clock). Its accounts are new streams.
    pub fn after(head: u64, accounts: usize, events: u64, recorded_at: &str) -> Self {
        let accounts: Vec<AccountId> = (0..accounts.max(2))
            .map(|i| AccountId::from_uuid(uuid(0xA, i as u64)))
            .collect();
        Self {
            versions: vec![0; accounts.len()],
            accounts,
            pending: Default::default(),
            transfers: 0,
            position: head,
            end: head + events,
            recorded_at: recorded_at.to_owned(),
        }
    }

    /// The accounts the log opens, in order.
    pub fn accounts(&self) -> &[AccountId] {
        &self.accounts
    }

    /// The next `n` envelopes (fewer at the end).
    pub fn batch(&mut self, n: usize) -> Vec<Value> {
        self.take(n).collect()
    }

    fn envelope(&mut self, stream: String, version: u64, event: &impl DomainEvent) -> Value {
        self.position += 1;
        let encoded = event.encode().expect("a banking event encodes");
        json!({
            "position": self.position,
            "event_id": uuid(0xE, self.position).to_string(),
            "stream_id": stream,
            "version": version,
            "event_type": encoded.event_type,
            "schema_version": encoded.schema_version,
            "data": encoded.data,
            "metadata": {},
            "recorded_at": self.recorded_at,
        })
    }

    fn account_event(&mut self, i: usize, event: AccountEvent) {
        self.versions[i] += 1;
        let stream = format!("Account-{}", self.accounts[i]);
        let e = self.envelope(stream, self.versions[i], &event);
        self.pending.push_back(e);
    }

    fn refill(&mut self) {
        let opened = self.versions.iter().filter(|v| **v > 0).count();
        if opened < self.accounts.len() {
            self.account_event(
                opened,
                AccountEvent::AccountOpened {
                    customer_id: None,
                    title: format!("account {opened}"),
                    description: String::new(),
                    initial_balance: Money::from_minor(1_000_000),
                },
            );
            return;
        }
        let n = self.accounts.len() as u64;
        let t = self.transfers;
        self.transfers += 1;
        let from = (t % n) as usize;
        let to = ((t + 1 + t / n) % n) as usize;
        let to = if to == from {
            (to + 1) % n as usize
        } else {
            to
        };
        let id = TransferId::from_uuid(uuid(0x7, t));
        let details = TransferDetails {
            from_account_id: self.accounts[from],
            to_account_id: self.accounts[to],
            amount: Money::from_minor(1 + t % 100),
            date: time::OffsetDateTime::UNIX_EPOCH,
            description: String::new(),
        };
        let amount = details.amount;
        let stream = format!("MoneyTransfer-{id}");
        let e = self.envelope(
            stream.clone(),
            1,
            &TransferEvent::MoneyTransferCreated(details.clone()),
        );
        self.pending.push_back(e);
        self.account_event(
            from,
            AccountEvent::AccountDebited {
                amount,
                transaction_id: id,
            },
        );
        let e = self.envelope(
            stream.clone(),
            2,
            &TransferEvent::DebitRecorded(details.clone()),
        );
        self.pending.push_back(e);
        self.account_event(
            to,
            AccountEvent::AccountCredited {
                amount,
                transaction_id: id,
            },
        );
        let e = self.envelope(stream, 3, &TransferEvent::CreditRecorded(details));
        self.pending.push_back(e);
    }
}

impl Iterator for SyntheticLog {
    type Item = Value;

    fn next(&mut self) -> Option<Value> {
        if self.position >= self.end && self.pending.is_empty() {
            return None;
        }
        if self.pending.is_empty() {
            self.refill();
        }
        let e = self.pending.pop_front()?;
        let position = e["position"].as_u64().unwrap_or(u64::MAX);
        (position <= self.end).then_some(e)
    }
}

/// A version-4-shaped UUID that encodes `kind` and `n`, so the log is the same on every run.
fn uuid(kind: u64, n: u64) -> uuid::Uuid {
    uuid::Uuid::from_u64_pair((kind << 32) | 0x4000, 0x8000_0000_0000_0000 | n)
}
