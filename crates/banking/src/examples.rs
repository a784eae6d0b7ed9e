//! One event of every variant, for what must see each kind of event: the event schemas
//! ([`crate::schema`]) and tests (type lists, image labels, saga coverage). The `match`es make a
//! new variant a compile error here until it is listed.

use crate::{AccountEvent, AccountId, Money, TransferDetails, TransferEvent, TransferId};

/// Every account event, one per variant, in declaration order.
pub fn every_account_event() -> Vec<AccountEvent> {
    let (amount, transaction_id) = (Money::from_minor(1), TransferId::new());
    let events = vec![
        AccountEvent::AccountOpened {
            customer_id: None,
            title: "t".into(),
            description: String::new(),
            initial_balance: amount,
        },
        AccountEvent::AccountDebited {
            amount,
            transaction_id,
        },
        AccountEvent::AccountCredited {
            amount,
            transaction_id,
        },
        AccountEvent::AccountDebitFailedDueToInsufficientFunds {
            amount,
            transaction_id,
        },
        AccountEvent::AccountRefunded {
            amount,
            transaction_id,
        },
        AccountEvent::AccountClosed {},
    ];
    for event in &events {
        match event {
            AccountEvent::AccountOpened { .. }
            | AccountEvent::AccountDebited { .. }
            | AccountEvent::AccountCredited { .. }
            | AccountEvent::AccountDebitFailedDueToInsufficientFunds { .. }
            | AccountEvent::AccountRefunded { .. }
            | AccountEvent::AccountClosed {} => {}
        }
    }
    events
}

/// Every transfer event, one per variant, in declaration order.
pub fn every_transfer_event() -> Vec<TransferEvent> {
    let d = TransferDetails {
        from_account_id: AccountId::new(),
        to_account_id: AccountId::new(),
        amount: Money::from_minor(80),
        date: time::OffsetDateTime::UNIX_EPOCH,
        description: String::new(),
    };
    let events = vec![
        TransferEvent::MoneyTransferCreated(d.clone()),
        TransferEvent::DebitRecorded(d.clone()),
        TransferEvent::CreditRecorded(d.clone()),
        TransferEvent::FailedDebitRecorded(d.clone()),
        TransferEvent::TransferRefunded(d),
    ];
    for event in &events {
        match event {
            TransferEvent::MoneyTransferCreated(_)
            | TransferEvent::DebitRecorded(_)
            | TransferEvent::CreditRecorded(_)
            | TransferEvent::FailedDebitRecorded(_)
            | TransferEvent::TransferRefunded(_) => {}
        }
    }
    events
}
