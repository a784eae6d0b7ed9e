//! The projection: what each stored event changes in the view, as plain data. Pure; the SQL that
//! carries the changes out lives in `db`.

use banking::{AccountEvent, AccountId, TransferEvent, TransferId};
use es_core::{EventEnvelope, StreamId};
use serde::Serialize;
use uuid::Uuid;

/// One change to the view, guarded by the document's version so a repeat changes nothing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum ViewChange {
    OpenAccount {
        id: AccountId,
        customer_id: Option<String>,
        title: String,
        description: String,
        balance: i64,
        version: u64,
    },
    /// A debit, credit, refund or failed debit: a line in `changes[]` and a balance delta.
    RecordChange {
        id: AccountId,
        version: u64,
        change: Change,
    },
    CloseAccount {
        id: AccountId,
        version: u64,
    },
    /// A transfer's details and its new state.
    PutTransfer {
        id: TransferId,
        version: u64,
        from_account_id: AccountId,
        to_account_id: AccountId,
        amount: i64,
        date: String,
        description: String,
        state: &'static str,
    },
}

/// An entry of an account's `changes[]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// The id of the event that made the change.
    pub change_id: Uuid,
    pub transaction_id: TransferId,
    /// `debit`, `credit`, `refund` or `failed_debit`.
    pub transaction_type: &'static str,
    pub amount: i64,
    pub balance_delta: i64,
}

/// Why an event could not be projected.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("event {event_id} in stream {stream} does not decode: {source}")]
    Decode {
        event_id: Uuid,
        stream: String,
        #[source]
        source: es_core::DecodeError,
    },
    #[error("stream {stream} does not end in a UUID")]
    BadStream { stream: String },
}

/// The view changes `event` makes. Streams of other aggregates change nothing.
pub fn project(event: &EventEnvelope) -> Result<Vec<ViewChange>, ProjectionError> {
    let Some((kind, id)) = split_stream(&event.stream_id) else {
        return Ok(vec![]);
    };
    let decode_error = |source| ProjectionError::Decode {
        event_id: event.event_id,
        stream: event.stream_id.to_string(),
        source,
    };
    let bad_stream = || ProjectionError::BadStream {
        stream: event.stream_id.to_string(),
    };
    let version = event.version;
    match kind {
        "Account" => {
            let id = AccountId::parse(id).map_err(|_| bad_stream())?;
            let decoded: AccountEvent = event.decode().map_err(decode_error)?;
            Ok(vec![account_change(id, version, event.event_id, &decoded)])
        }
        "MoneyTransfer" => {
            let id = TransferId::parse(id).map_err(|_| bad_stream())?;
            let decoded: TransferEvent = event.decode().map_err(decode_error)?;
            let d = decoded.details();
            Ok(vec![ViewChange::PutTransfer {
                id,
                version,
                from_account_id: d.from_account_id,
                to_account_id: d.to_account_id,
                amount: d.amount.as_delta(),
                date: d
                    .date
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
                description: d.description.clone(),
                state: decoded.resulting_state().as_str(),
            }])
        }
        _ => Ok(vec![]),
    }
}

fn account_change(id: AccountId, version: u64, event_id: Uuid, event: &AccountEvent) -> ViewChange {
    use AccountEvent as E;
    let change = |transaction_type, amount: &banking::Money, transaction_id: &TransferId| {
        ViewChange::RecordChange {
            id,
            version,
            change: Change {
                change_id: event_id,
                transaction_id: *transaction_id,
                transaction_type,
                amount: amount.as_delta(),
                balance_delta: event.balance_delta(),
            },
        }
    };
    match event {
        E::AccountOpened {
            customer_id,
            title,
            description,
            initial_balance,
        } => ViewChange::OpenAccount {
            id,
            customer_id: customer_id.as_ref().map(|c| c.as_str().to_owned()),
            title: title.clone(),
            description: description.clone(),
            balance: initial_balance.as_delta(),
            version,
        },
        E::AccountDebited {
            amount,
            transaction_id,
        } => change("debit", amount, transaction_id),
        E::AccountCredited {
            amount,
            transaction_id,
        } => change("credit", amount, transaction_id),
        E::AccountRefunded {
            amount,
            transaction_id,
        } => change("refund", amount, transaction_id),
        E::AccountDebitFailedDueToInsufficientFunds {
            amount,
            transaction_id,
        } => change("failed_debit", amount, transaction_id),
        E::AccountClosed {} => ViewChange::CloseAccount { id, version },
    }
}

/// `Account-<uuid>` into `("Account", "<uuid>")`.
fn split_stream(stream: &StreamId) -> Option<(&str, &str)> {
    let s = stream.as_str();
    for kind in ["Account", "MoneyTransfer"] {
        if let Some(rest) = s.strip_prefix(kind).and_then(|r| r.strip_prefix('-')) {
            return Some((kind, rest));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envelope(
        stream: &str,
        version: u64,
        event_type: &str,
        data: serde_json::Value,
    ) -> EventEnvelope {
        serde_json::from_value(json!({
            "event_id": "6f1c2b9e-0000-4000-8000-000000000009",
            "stream_id": stream,
            "version": version,
            "position": 7,
            "event_type": event_type,
            "data": data,
            "recorded_at": "2026-11-26T12:00:00Z"
        }))
        .expect("envelope")
    }

    const ACCOUNT: &str = "Account-11111111-1111-4111-8111-111111111111";
    const TRANSFER: &str = "MoneyTransfer-33333333-3333-4333-8333-333333333333";
    const TX: &str = "33333333-3333-4333-8333-333333333333";

    fn check(event: EventEnvelope, expected: &str) {
        let got = match project(&event) {
            Ok(changes) => changes
                .iter()
                .map(|c| match c {
                    ViewChange::OpenAccount {
                        balance, version, ..
                    } => format!("open {balance} v{version}"),
                    ViewChange::RecordChange {
                        version, change, ..
                    } => format!(
                        "{} {} v{version}",
                        change.transaction_type, change.balance_delta
                    ),
                    ViewChange::CloseAccount { version, .. } => format!("close v{version}"),
                    ViewChange::PutTransfer {
                        state,
                        version,
                        description,
                        ..
                    } => {
                        format!("transfer {state} v{version} {description:?}")
                    }
                })
                .collect::<Vec<_>>()
                .join("; "),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, expected);
    }

    #[test]
    fn each_event_maps_to_its_view_change() {
        check(
            envelope(
                ACCOUNT,
                1,
                "AccountOpened",
                json!({"title": "t", "initial_balance": 150}),
            ),
            "open 150 v1",
        );
        check(
            envelope(
                ACCOUNT,
                2,
                "AccountDebited",
                json!({"amount": 80, "transaction_id": TX}),
            ),
            "debit -80 v2",
        );
        check(
            envelope(
                ACCOUNT,
                3,
                "AccountCredited",
                json!({"amount": 5, "transaction_id": TX}),
            ),
            "credit 5 v3",
        );
        check(
            envelope(
                ACCOUNT,
                4,
                "AccountRefunded",
                json!({"amount": 80, "transaction_id": TX}),
            ),
            "refund 80 v4",
        );
        check(
            envelope(
                ACCOUNT,
                5,
                "AccountDebitFailedDueToInsufficientFunds",
                json!({"transaction_id": TX}),
            ),
            "failed_debit 0 v5",
        );
        check(envelope(ACCOUNT, 6, "AccountClosed", json!({})), "close v6");
        let details = json!({
            "from_account_id": "11111111-1111-4111-8111-111111111111",
            "to_account_id": "22222222-2222-4222-8222-222222222222",
            "amount": 80
        });
        check(
            envelope(TRANSFER, 1, "MoneyTransferCreated", details.clone()),
            "transfer INITIAL v1 \"\"",
        );
        check(
            envelope(TRANSFER, 3, "CreditRecorded", details.clone()),
            "transfer COMPLETED v3 \"\"",
        );
        check(
            envelope(TRANSFER, 3, "TransferRefunded", details),
            "transfer FAILED_AND_REFUNDED v3 \"\"",
        );
    }

    #[test]
    fn other_streams_change_nothing_and_bad_events_are_errors() {
        check(envelope("Canary-1", 1, "Whatever", json!({})), "");
        check(
            envelope(ACCOUNT, 2, "AccountDebited", json!({"amount": 1.5, "transaction_id": TX})),
            "error: event 6f1c2b9e-0000-4000-8000-000000000009 in stream Account-11111111-1111-4111-8111-111111111111 does not decode: could not decode event AccountDebited (schema version 1): invalid type: floating point `1.5`, expected u64; register an upcaster for older versions or give new fields #[serde(default)]",
        );
        check(
            envelope("Account-nope", 1, "AccountClosed", json!({})),
            "error: stream Account-nope does not end in a UUID",
        );
    }
}
