//! The transfer saga's decisions as pure functions: which command an event leads to. The services
//! run them inside durable subscribers; nothing here does IO.

use crate::account::{AccountCommand, AccountError, AccountEvent};
use crate::domain::{AccountId, TransferId};
use crate::transfer::{TransferCommand, TransferDetails, TransferEvent};

/// Purposes for `derived_event_id(trigger_event_id, purpose)`: one per reaction, so a redelivered
/// trigger derives the same event id and the store drops the repeat.
pub mod purpose {
    pub const DEBIT: &str = "saga/debit-from-account";
    pub const CREDIT: &str = "saga/credit-to-account";
    pub const REFUND: &str = "saga/refund-from-account";
    pub const RECORD: &str = "saga/record-on-transfer";
}

/// The transfer events the accounts side of the saga reacts to: those [`account_command_for`]
/// turns into a command. The accounts service subscribes to exactly these.
pub const ACCOUNTS_SAGA_EVENT_TYPES: [&str; 2] =
    [TransferEvent::CREATED, TransferEvent::DEBIT_RECORDED];

/// The account events the transfers side of the saga reacts to: those
/// [`transfer_command_for`] turns into a command. The transfers service subscribes to exactly
/// these.
pub const TRANSFERS_SAGA_EVENT_TYPES: [&str; 4] = [
    AccountEvent::DEBITED,
    AccountEvent::DEBIT_FAILED_DUE_TO_INSUFFICIENT_FUNDS,
    AccountEvent::CREDITED,
    AccountEvent::REFUNDED,
];

/// The accounts service's reaction to a transfer event: which account gets which command.
///
/// MoneyTransferCreated debits the from-account; DebitRecorded credits the to-account.
pub fn account_command_for(
    transfer_id: TransferId,
    event: &TransferEvent,
) -> Option<(AccountId, AccountCommand, &'static str)> {
    match event {
        TransferEvent::MoneyTransferCreated(d) => Some((
            d.from_account_id,
            AccountCommand::Debit {
                amount: d.amount,
                transaction_id: transfer_id,
            },
            purpose::DEBIT,
        )),
        TransferEvent::DebitRecorded(d) => Some((
            d.to_account_id,
            AccountCommand::Credit {
                amount: d.amount,
                transaction_id: transfer_id,
            },
            purpose::CREDIT,
        )),
        TransferEvent::CreditRecorded(_)
        | TransferEvent::FailedDebitRecorded(_)
        | TransferEvent::TransferRefunded(_) => None,
    }
}

/// Compensation: when the to-account refused the credit because it is closed or missing, refund
/// the from-account. Any other refusal is not a reason to move money.
pub fn compensation_for(
    transfer_id: TransferId,
    details: &TransferDetails,
    credit_error: &AccountError,
) -> Option<(AccountId, AccountCommand, &'static str)> {
    match credit_error {
        AccountError::Closed | AccountError::NotFound => Some((
            details.from_account_id,
            AccountCommand::Refund {
                amount: details.amount,
                transaction_id: transfer_id,
            },
            purpose::REFUND,
        )),
        _ => None,
    }
}

/// The transfers service's reaction to an account event: which transfer records what.
pub fn transfer_command_for(event: &AccountEvent) -> Option<(TransferId, TransferCommand)> {
    let command = match event {
        AccountEvent::AccountDebited { .. } => TransferCommand::RecordDebit,
        AccountEvent::AccountDebitFailedDueToInsufficientFunds { .. } => {
            TransferCommand::RecordDebitFailed
        }
        AccountEvent::AccountCredited { .. } => TransferCommand::RecordCredit,
        AccountEvent::AccountRefunded { .. } => TransferCommand::RecordRefund,
        AccountEvent::AccountOpened { .. } | AccountEvent::AccountClosed {} => return None,
    };
    Some((event.transaction_id()?, command))
}
