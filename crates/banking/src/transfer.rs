//! The MoneyTransfer aggregate: the saga's record of a transfer. Every transition checks the
//! current state; a duplicate or stale step changes nothing.

use es_core::{Aggregate, DomainEvent};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::{AccountId, Money};

/// What every transfer event carries (as in the talk's example).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TransferDetails {
    pub from_account_id: AccountId,
    pub to_account_id: AccountId,
    pub amount: Money,
    /// When the transfer was requested. Older events without it load as the Unix epoch.
    #[serde(default = "epoch", with = "time::serde::rfc3339")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub date: OffsetDateTime,
    /// Free text; events written before it existed load with an empty description.
    #[serde(default)]
    pub description: String,
}

fn epoch() -> OffsetDateTime {
    OffsetDateTime::UNIX_EPOCH
}

/// Something that happened to a transfer. The variant name is the envelope's `event_type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TransferEvent {
    MoneyTransferCreated(TransferDetails),
    DebitRecorded(TransferDetails),
    CreditRecorded(TransferDetails),
    FailedDebitRecorded(TransferDetails),
    /// Compensation: the credit could not be made, and the from-account was refunded.
    TransferRefunded(TransferDetails),
}

/// What can be asked of a transfer. Only `Create` comes from a user; the rest come from the saga.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferCommand {
    Create(TransferDetails),
    RecordDebit,
    RecordDebitFailed,
    RecordCredit,
    RecordRefund,
}

/// The states of a transfer, spelled as the API shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TransferState {
    #[default]
    NotCreated,
    Initial,
    Debited,
    Completed,
    FailedDueToInsufficientFunds,
    /// The to-account was closed or missing: the debit was undone by a refund.
    FailedAndRefunded,
}

impl TransferState {
    /// Whether the saga is over for this transfer.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TransferState::Completed
                | TransferState::FailedDueToInsufficientFunds
                | TransferState::FailedAndRefunded
        )
    }

    /// The API spelling, such as `FAILED_DUE_TO_INSUFFICIENT_FUNDS`.
    pub fn as_str(self) -> &'static str {
        match self {
            TransferState::NotCreated => "NOT_CREATED",
            TransferState::Initial => "INITIAL",
            TransferState::Debited => "DEBITED",
            TransferState::Completed => "COMPLETED",
            TransferState::FailedDueToInsufficientFunds => "FAILED_DUE_TO_INSUFFICIENT_FUNDS",
            TransferState::FailedAndRefunded => "FAILED_AND_REFUNDED",
        }
    }
}

/// Why a transfer refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    #[error("transfer not found")]
    NotFound,
    #[error("transfer already exists")]
    AlreadyExists,
    #[error("from_account_id and to_account_id must differ")]
    SameAccount,
    #[error("amount must be greater than zero")]
    ZeroAmount,
    #[error("a transfer in state {state} cannot {action}", state = state.as_str())]
    InvalidTransition {
        state: TransferState,
        action: &'static str,
    },
}

/// The transfer's state, rebuilt from its events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoneyTransfer {
    pub state: TransferState,
    pub details: Option<TransferDetails>,
}

impl Aggregate for MoneyTransfer {
    type Command = TransferCommand;
    type Event = TransferEvent;
    type Error = TransferError;

    const TYPE: &'static str = "MoneyTransfer";

    fn handle(&self, command: TransferCommand) -> Result<Vec<TransferEvent>, TransferError> {
        use TransferCommand as C;
        use TransferEvent as E;
        use TransferState as S;
        let details = match (&command, &self.details) {
            (C::Create(details), None) => {
                if details.from_account_id == details.to_account_id {
                    return Err(TransferError::SameAccount);
                }
                if details.amount == Money::ZERO {
                    return Err(TransferError::ZeroAmount);
                }
                return Ok(vec![E::MoneyTransferCreated(details.clone())]);
            }
            (C::Create(_), Some(_)) => return Err(TransferError::AlreadyExists),
            (_, None) => return Err(TransferError::NotFound),
            (_, Some(details)) => details.clone(),
        };
        // (action, state it moves from, states that mean "already done", event)
        let (action, from, done): (&'static str, S, &[S]) = match command {
            C::Create(_) => unreachable_create(),
            C::RecordDebit => (
                "record a debit",
                S::Initial,
                &[S::Debited, S::Completed, S::FailedAndRefunded],
            ),
            C::RecordDebitFailed => (
                "record a failed debit",
                S::Initial,
                &[S::FailedDueToInsufficientFunds],
            ),
            C::RecordCredit => ("record a credit", S::Debited, &[S::Completed]),
            C::RecordRefund => ("record a refund", S::Debited, &[S::FailedAndRefunded]),
        };
        if done.contains(&self.state) {
            return Ok(vec![]);
        }
        if self.state != from {
            return Err(TransferError::InvalidTransition {
                state: self.state,
                action,
            });
        }
        Ok(vec![match command {
            C::RecordDebit => E::DebitRecorded(details),
            C::RecordDebitFailed => E::FailedDebitRecorded(details),
            C::RecordCredit => E::CreditRecorded(details),
            C::RecordRefund | C::Create(_) => E::TransferRefunded(details),
        }])
    }

    fn apply(mut self, event: &TransferEvent) -> Self {
        use TransferEvent as E;
        let (state, details) = match event {
            E::MoneyTransferCreated(d) => (TransferState::Initial, d),
            E::DebitRecorded(d) => (TransferState::Debited, d),
            E::CreditRecorded(d) => (TransferState::Completed, d),
            E::FailedDebitRecorded(d) => (TransferState::FailedDueToInsufficientFunds, d),
            E::TransferRefunded(d) => (TransferState::FailedAndRefunded, d),
        };
        self.state = state;
        self.details = Some(details.clone());
        self
    }
}

/// `Create` returns early above; this keeps the match total without a panic path.
fn unreachable_create() -> (&'static str, TransferState, &'static [TransferState]) {
    ("create", TransferState::NotCreated, &[])
}

impl DomainEvent for TransferEvent {
    fn event_type(&self) -> &'static str {
        match self {
            TransferEvent::MoneyTransferCreated(_) => Self::CREATED,
            TransferEvent::DebitRecorded(_) => Self::DEBIT_RECORDED,
            TransferEvent::CreditRecorded(_) => Self::CREDIT_RECORDED,
            TransferEvent::FailedDebitRecorded(_) => Self::FAILED_DEBIT_RECORDED,
            TransferEvent::TransferRefunded(_) => Self::REFUNDED,
        }
    }
}

impl TransferEvent {
    // The stored `event_type` of each variant: the one place these names are written.
    pub const CREATED: &'static str = "MoneyTransferCreated";
    pub const DEBIT_RECORDED: &'static str = "DebitRecorded";
    pub const CREDIT_RECORDED: &'static str = "CreditRecorded";
    pub const FAILED_DEBIT_RECORDED: &'static str = "FailedDebitRecorded";
    pub const REFUNDED: &'static str = "TransferRefunded";

    /// Every transfer event type, in declaration order.
    pub const TYPES: [&'static str; 5] = [
        Self::CREATED,
        Self::DEBIT_RECORDED,
        Self::CREDIT_RECORDED,
        Self::FAILED_DEBIT_RECORDED,
        Self::REFUNDED,
    ];

    pub fn details(&self) -> &TransferDetails {
        match self {
            TransferEvent::MoneyTransferCreated(d)
            | TransferEvent::DebitRecorded(d)
            | TransferEvent::CreditRecorded(d)
            | TransferEvent::FailedDebitRecorded(d)
            | TransferEvent::TransferRefunded(d) => d,
        }
    }

    /// The transfer state this event leads to.
    pub fn resulting_state(&self) -> TransferState {
        MoneyTransfer::default().apply(self).state
    }
}

impl es_core::Snapshotting for MoneyTransfer {}
