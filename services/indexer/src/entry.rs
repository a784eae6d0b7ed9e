//! What the index holds, and how events change it: pure functions from an event and the entry
//! it concerns to the entry's new content. No tantivy, no IO.

use es_core::EventEnvelope;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The event types the indexer reads.
pub const EVENT_TYPES: &[&str] = &[
    "AccountOpened",
    "AccountRenamed",
    "AccountClosed",
    "MoneyTransferCreated",
    "DebitRecorded",
    "CreditRecorded",
    "FailedDebitRecorded",
    "TransferRefunded",
];

/// One searchable thing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Entry {
    Account(AccountEntry),
    Transfer(TransferEntry),
}

/// An account as the index shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountEntry {
    pub id: String,
    pub title: String,
    pub description: String,
    pub customer_id: Option<String>,
    /// `OPEN` or `CLOSED`.
    pub status: String,
}

/// A transfer as the index shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferEntry {
    pub id: String,
    pub description: String,
    pub from_account_id: String,
    pub to_account_id: String,
    /// The parties' account titles when the transfer was created (empty when unknown).
    pub from_title: String,
    pub to_title: String,
    /// Minor units.
    pub amount: u64,
    /// `INITIAL`, `DEBITED`, `COMPLETED`, `FAILED_DUE_TO_INSUFFICIENT_FUNDS` or
    /// `FAILED_AND_REFUNDED`.
    pub state: String,
}

/// Which kind of entry a search wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Account,
    Transfer,
}

/// The key of the entry an event concerns, such as `account:<uuid>`, from its stream id.
pub fn key_of(event: &EventEnvelope) -> Option<String> {
    let stream = event.stream_id.as_str();
    if let Some(id) = stream.strip_prefix("Account-") {
        return Some(Entry::key_for(Kind::Account, id));
    }
    if let Some(id) = stream.strip_prefix("MoneyTransfer-") {
        return Some(Entry::key_for(Kind::Transfer, id));
    }
    None
}

/// The new content of the entry `event` concerns, given its current content and a way to
/// look up accounts (for a transfer's party titles). `None` means nothing changes.
///
/// Payloads are read leniently: missing fields take defaults and unknown ones are ignored, so
/// older and newer schema versions index alike.
pub fn apply(
    event: &EventEnvelope,
    current: Option<&Entry>,
    account: impl Fn(&str) -> Option<AccountEntry>,
) -> Option<Entry> {
    let stream = event.stream_id.as_str();
    let data = &event.data;
    match event.event_type.as_str() {
        "AccountOpened" => {
            let id = stream.strip_prefix("Account-")?;
            Some(Entry::Account(AccountEntry {
                id: id.to_owned(),
                title: text(data, "title"),
                description: text(data, "description"),
                customer_id: data
                    .get("customer_id")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                status: "OPEN".to_owned(),
            }))
        }
        "AccountRenamed" => match current {
            Some(Entry::Account(account)) => {
                let mut next = account.clone();
                if let Some(title) = data.get("title").and_then(Value::as_str) {
                    next.title = title.to_owned();
                }
                if let Some(description) = data.get("description").and_then(Value::as_str) {
                    next.description = description.to_owned();
                }
                Some(Entry::Account(next))
            }
            _ => None,
        },
        "AccountClosed" => match current {
            Some(Entry::Account(account)) => Some(Entry::Account(AccountEntry {
                status: "CLOSED".to_owned(),
                ..account.clone()
            })),
            _ => None,
        },
        "MoneyTransferCreated"
        | "DebitRecorded"
        | "CreditRecorded"
        | "FailedDebitRecorded"
        | "TransferRefunded" => {
            let id = stream.strip_prefix("MoneyTransfer-")?;
            let state = transfer_state(&event.event_type)?;
            let next = match current {
                Some(Entry::Transfer(transfer)) => TransferEntry {
                    state: state.to_owned(),
                    ..transfer.clone()
                },
                _ => {
                    let from = text(data, "from_account_id");
                    let to = text(data, "to_account_id");
                    TransferEntry {
                        id: id.to_owned(),
                        description: text(data, "description"),
                        from_title: account(&from).map(|a| a.title).unwrap_or_default(),
                        to_title: account(&to).map(|a| a.title).unwrap_or_default(),
                        from_account_id: from,
                        to_account_id: to,
                        amount: data.get("amount").and_then(Value::as_u64).unwrap_or(0),
                        state: state.to_owned(),
                    }
                }
            };
            Some(Entry::Transfer(next))
        }
        _ => None,
    }
}

impl Entry {
    pub fn key_for(kind: Kind, id: &str) -> String {
        format!("{}:{id}", kind.as_str())
    }

    pub fn key(&self) -> String {
        match self {
            Entry::Account(a) => Self::key_for(Kind::Account, &a.id),
            Entry::Transfer(t) => Self::key_for(Kind::Transfer, &t.id),
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Entry::Account(_) => Kind::Account,
            Entry::Transfer(_) => Kind::Transfer,
        }
    }
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Account => "account",
            Kind::Transfer => "transfer",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "account" => Some(Kind::Account),
            "transfer" => Some(Kind::Transfer),
            _ => None,
        }
    }
}

fn transfer_state(event_type: &str) -> Option<&'static str> {
    Some(match event_type {
        "MoneyTransferCreated" => "INITIAL",
        "DebitRecorded" => "DEBITED",
        "CreditRecorded" => "COMPLETED",
        "FailedDebitRecorded" => "FAILED_DUE_TO_INSUFFICIENT_FUNDS",
        "TransferRefunded" => "FAILED_AND_REFUNDED",
        _ => return None,
    })
}

fn text(data: &Value, field: &str) -> String {
    match data.get(field) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ACCOUNT: &str = "6f1c2b9e-0000-4000-8000-000000000001";
    const OTHER: &str = "6f1c2b9e-0000-4000-8000-000000000002";
    const TRANSFER: &str = "6f1c2b9e-0000-4000-8000-0000000000aa";

    fn event(stream: &str, event_type: &str, data: Value) -> EventEnvelope {
        serde_json::from_value(json!({
            "event_id": "6f1c2b9e-0000-4000-8000-0000000000ff",
            "stream_id": stream, "version": 1, "position": 1, "event_type": event_type,
            "data": data, "recorded_at": "2026-11-26T15:00:00Z"
        }))
        .expect("test envelope")
    }

    fn opened() -> Entry {
        let e = event(
            &format!("Account-{ACCOUNT}"),
            "AccountOpened",
            json!({"title": "Holiday savings", "description": "for Lisbon", "customer_id": "c-1", "initial_balance": 100}),
        );
        apply(&e, None, |_| None).expect("opened")
    }

    fn check(event: EventEnvelope, current: Option<&Entry>, expected: Option<Value>) {
        let accounts = |id: &str| {
            (id == ACCOUNT).then(|| match opened() {
                Entry::Account(a) => a,
                Entry::Transfer(_) => unreachable!(),
            })
        };
        let got = apply(&event, current, accounts).map(|e| serde_json::to_value(e).expect("json"));
        assert_eq!(got, expected, "{}", event.event_type);
    }

    #[test]
    fn account_events() {
        let stream = format!("Account-{ACCOUNT}");
        assert_eq!(
            serde_json::to_value(opened()).expect("json"),
            json!({"type": "account", "id": ACCOUNT, "title": "Holiday savings",
                   "description": "for Lisbon", "customer_id": "c-1", "status": "OPEN"})
        );
        check(
            event(&stream, "AccountClosed", json!({})),
            Some(&opened()),
            Some(
                json!({"type": "account", "id": ACCOUNT, "title": "Holiday savings",
                        "description": "for Lisbon", "customer_id": "c-1", "status": "CLOSED"}),
            ),
        );
        check(
            event(
                &stream,
                "AccountRenamed",
                json!({"title": "Rainy day fund"}),
            ),
            Some(&opened()),
            Some(
                json!({"type": "account", "id": ACCOUNT, "title": "Rainy day fund",
                        "description": "for Lisbon", "customer_id": "c-1", "status": "OPEN"}),
            ),
        );
        check(event(&stream, "AccountClosed", json!({})), None, None);
        check(
            event(&stream, "AccountDebited", json!({"amount": 5})),
            Some(&opened()),
            None,
        );
        check(
            event("Other-1", "AccountOpened", json!({"title": "x"})),
            None,
            None,
        );
    }

    #[test]
    fn transfer_events_take_party_titles_and_follow_the_state() {
        let stream = format!("MoneyTransfer-{TRANSFER}");
        let details = json!({"from_account_id": OTHER, "to_account_id": ACCOUNT, "amount": 2500,
                             "date": "2026-11-26T15:00:00Z", "description": "flights"});
        let created = json!({"type": "transfer", "id": TRANSFER, "description": "flights",
            "from_account_id": OTHER, "to_account_id": ACCOUNT, "from_title": "",
            "to_title": "Holiday savings", "amount": 2500, "state": "INITIAL"});
        check(
            event(&stream, "MoneyTransferCreated", details.clone()),
            None,
            Some(created.clone()),
        );
        let current: Entry = serde_json::from_value(created.clone()).expect("entry");
        for (event_type, state) in [
            ("DebitRecorded", "DEBITED"),
            ("CreditRecorded", "COMPLETED"),
            ("FailedDebitRecorded", "FAILED_DUE_TO_INSUFFICIENT_FUNDS"),
            ("TransferRefunded", "FAILED_AND_REFUNDED"),
        ] {
            let mut expected = created.clone();
            expected["state"] = json!(state);
            check(
                event(&stream, event_type, details.clone()),
                Some(&current),
                Some(expected),
            );
        }
        // A transfer first seen at a later step is still indexed, from the event's details.
        let mut late = created.clone();
        late["state"] = json!("COMPLETED");
        check(event(&stream, "CreditRecorded", details), None, Some(late));
    }

    #[test]
    fn keys_come_from_stream_ids() {
        let key = |stream: &str| key_of(&event(stream, "X", json!({})));
        assert_eq!(key("Account-1"), Some("account:1".into()));
        assert_eq!(key("MoneyTransfer-2"), Some("transfer:2".into()));
        assert_eq!(key("Other-3"), None);
    }
}
