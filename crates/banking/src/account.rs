//! The Account aggregate: opened with a balance, debited and credited by transfers, never
//! overdrawn, and closed only at a zero balance.

use std::collections::VecDeque;

use es_core::{Aggregate, DomainEvent};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::{CustomerId, Money, TransferId};

/// Something that happened to an account. The variant name is the envelope's `event_type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum AccountEvent {
    AccountOpened {
        #[serde(default)]
        customer_id: Option<CustomerId>,
        title: String,
        #[serde(default)]
        description: String,
        initial_balance: Money,
    },
    AccountDebited {
        amount: Money,
        transaction_id: TransferId,
    },
    AccountCredited {
        amount: Money,
        transaction_id: TransferId,
    },
    AccountDebitFailedDueToInsufficientFunds {
        #[serde(default)]
        amount: Money,
        transaction_id: TransferId,
    },
    /// Compensation: money debited for a transfer that could not be credited comes back.
    AccountRefunded {
        amount: Money,
        transaction_id: TransferId,
    },
    AccountClosed {},
}

/// What can be asked of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountCommand {
    Open {
        customer_id: Option<CustomerId>,
        title: String,
        description: String,
        initial_balance: Money,
    },
    Debit {
        amount: Money,
        transaction_id: TransferId,
    },
    Credit {
        amount: Money,
        transaction_id: TransferId,
    },
    Refund {
        amount: Money,
        transaction_id: TransferId,
    },
    Close,
}

/// Why an account refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error("account not found: open it first")]
    NotFound,
    #[error("account already exists")]
    AlreadyOpened,
    #[error("account is closed")]
    Closed,
    #[error("account can only be closed at a zero balance; its balance is {balance}")]
    NonZeroBalance { balance: Money },
    #[error("account balance would overflow")]
    Overflow,
    #[error("transaction {transaction_id} debited nothing from this account, so there is nothing to refund")]
    NothingToRefund { transaction_id: TransferId },
}

/// Where an account is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AccountStatus {
    #[default]
    NotOpened,
    Open,
    Closed,
}

/// The account's state, rebuilt from its events (and stored in snapshots).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub status: AccountStatus,
    pub customer_id: Option<CustomerId>,
    pub title: String,
    pub description: String,
    pub balance: Money,
    /// The most recent transaction steps, oldest first, at most [`Account::RECENT`]: a
    /// redelivered saga command for one of them changes nothing. Older repeats are dropped by the
    /// event store, since saga handlers derive their event ids from the triggering event.
    #[serde(default)]
    recent: VecDeque<(TransferId, Step)>,
    /// Whether older steps were dropped from `recent`.
    #[serde(default)]
    forgotten: bool,
}

/// What an account did for a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Step {
    Debited,
    DebitFailed,
    Credited,
    Refunded,
}

impl Account {
    /// How many transaction steps the state remembers. This bounds the state and its snapshots
    /// however long the account's history is.
    pub const RECENT: usize = 1000;

    fn did(&self, transaction_id: TransferId, steps: &[Step]) -> bool {
        self.recent
            .iter()
            .rev()
            .any(|(t, s)| *t == transaction_id && steps.contains(s))
    }

    fn remember(&mut self, transaction_id: TransferId, step: Step) {
        self.recent.push_back((transaction_id, step));
        while self.recent.len() > Self::RECENT {
            self.recent.pop_front();
            self.forgotten = true;
        }
    }
}

impl Aggregate for Account {
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;

    const TYPE: &'static str = "Account";

    fn handle(&self, command: AccountCommand) -> Result<Vec<AccountEvent>, AccountError> {
        use AccountCommand as C;
        use AccountEvent as E;
        if self.status == AccountStatus::NotOpened && !matches!(command, C::Open { .. }) {
            return Err(AccountError::NotFound);
        }
        match command {
            C::Open {
                customer_id,
                title,
                description,
                initial_balance,
            } => {
                if self.status != AccountStatus::NotOpened {
                    return Err(AccountError::AlreadyOpened);
                }
                Ok(vec![E::AccountOpened {
                    customer_id,
                    title,
                    description,
                    initial_balance,
                }])
            }
            C::Debit {
                amount,
                transaction_id,
            } => {
                if self.did(transaction_id, &[Step::Debited, Step::DebitFailed]) {
                    return Ok(vec![]);
                }
                // A closed account holds zero, so a debit of it fails like any overdraft would.
                match self.balance.checked_sub(amount) {
                    Some(_) if self.status == AccountStatus::Open => Ok(vec![E::AccountDebited {
                        amount,
                        transaction_id,
                    }]),
                    _ => Ok(vec![E::AccountDebitFailedDueToInsufficientFunds {
                        amount,
                        transaction_id,
                    }]),
                }
            }
            C::Credit {
                amount,
                transaction_id,
            } => {
                if self.did(transaction_id, &[Step::Credited]) {
                    return Ok(vec![]);
                }
                if self.status == AccountStatus::Closed {
                    return Err(AccountError::Closed);
                }
                self.balance
                    .checked_add(amount)
                    .ok_or(AccountError::Overflow)?;
                Ok(vec![E::AccountCredited {
                    amount,
                    transaction_id,
                }])
            }
            C::Refund {
                amount,
                transaction_id,
            } => {
                if self.did(transaction_id, &[Step::Refunded]) {
                    return Ok(vec![]);
                }
                // Only the saga refunds, after a recorded debit; once older steps are forgotten
                // an unknown transaction can no longer be told apart, so the refund is accepted.
                if !self.forgotten && !self.did(transaction_id, &[Step::Debited]) {
                    return Err(AccountError::NothingToRefund { transaction_id });
                }
                // A refund is accepted even by a closed account: the money was taken from it.
                self.balance
                    .checked_add(amount)
                    .ok_or(AccountError::Overflow)?;
                Ok(vec![E::AccountRefunded {
                    amount,
                    transaction_id,
                }])
            }
            C::Close => match self.status {
                AccountStatus::Closed => Ok(vec![]),
                _ if self.balance != Money::ZERO => Err(AccountError::NonZeroBalance {
                    balance: self.balance,
                }),
                _ => Ok(vec![E::AccountClosed {}]),
            },
        }
    }

    fn apply(mut self, event: &AccountEvent) -> Self {
        use AccountEvent as E;
        match event {
            E::AccountOpened {
                customer_id,
                title,
                description,
                initial_balance,
            } => {
                self.status = AccountStatus::Open;
                self.customer_id = customer_id.clone();
                self.title = title.clone();
                self.description = description.clone();
                self.balance = *initial_balance;
            }
            E::AccountDebited {
                amount,
                transaction_id,
            } => {
                self.balance = self.balance.checked_sub(*amount).unwrap_or(Money::ZERO);
                self.remember(*transaction_id, Step::Debited);
            }
            E::AccountCredited {
                amount,
                transaction_id,
            } => {
                self.balance = self.balance.checked_add(*amount).unwrap_or(self.balance);
                self.remember(*transaction_id, Step::Credited);
            }
            E::AccountRefunded {
                amount,
                transaction_id,
            } => {
                self.balance = self.balance.checked_add(*amount).unwrap_or(self.balance);
                self.remember(*transaction_id, Step::Refunded);
            }
            E::AccountDebitFailedDueToInsufficientFunds { transaction_id, .. } => {
                self.remember(*transaction_id, Step::DebitFailed);
            }
            E::AccountClosed {} => self.status = AccountStatus::Closed,
        }
        self
    }
}

impl DomainEvent for AccountEvent {
    fn event_type(&self) -> &'static str {
        match self {
            AccountEvent::AccountOpened { .. } => Self::OPENED,
            AccountEvent::AccountDebited { .. } => Self::DEBITED,
            AccountEvent::AccountCredited { .. } => Self::CREDITED,
            AccountEvent::AccountDebitFailedDueToInsufficientFunds { .. } => {
                Self::DEBIT_FAILED_DUE_TO_INSUFFICIENT_FUNDS
            }
            AccountEvent::AccountRefunded { .. } => Self::REFUNDED,
            AccountEvent::AccountClosed {} => Self::CLOSED,
        }
    }
}

impl AccountEvent {
    // The stored `event_type` of each variant: the one place these names are written.
    pub const OPENED: &'static str = "AccountOpened";
    pub const DEBITED: &'static str = "AccountDebited";
    pub const CREDITED: &'static str = "AccountCredited";
    pub const DEBIT_FAILED_DUE_TO_INSUFFICIENT_FUNDS: &'static str =
        "AccountDebitFailedDueToInsufficientFunds";
    pub const REFUNDED: &'static str = "AccountRefunded";
    pub const CLOSED: &'static str = "AccountClosed";

    /// Every account event type, in declaration order.
    pub const TYPES: [&'static str; 6] = [
        Self::OPENED,
        Self::DEBITED,
        Self::CREDITED,
        Self::DEBIT_FAILED_DUE_TO_INSUFFICIENT_FUNDS,
        Self::REFUNDED,
        Self::CLOSED,
    ];

    /// The transfer this event belongs to, if any.
    pub fn transaction_id(&self) -> Option<TransferId> {
        match self {
            AccountEvent::AccountDebited { transaction_id, .. }
            | AccountEvent::AccountCredited { transaction_id, .. }
            | AccountEvent::AccountDebitFailedDueToInsufficientFunds { transaction_id, .. }
            | AccountEvent::AccountRefunded { transaction_id, .. } => Some(*transaction_id),
            AccountEvent::AccountOpened { .. } | AccountEvent::AccountClosed {} => None,
        }
    }

    /// The change to the balance this event makes, in minor units.
    pub fn balance_delta(&self) -> i64 {
        match self {
            AccountEvent::AccountDebited { amount, .. } => -amount.as_delta(),
            AccountEvent::AccountCredited { amount, .. }
            | AccountEvent::AccountRefunded { amount, .. } => amount.as_delta(),
            AccountEvent::AccountOpened {
                initial_balance, ..
            } => initial_balance.as_delta(),
            AccountEvent::AccountDebitFailedDueToInsufficientFunds { .. }
            | AccountEvent::AccountClosed {} => 0,
        }
    }
}

impl es_core::Snapshotting for Account {
    /// 2: transaction steps kept in a bounded `recent` list instead of unbounded sets.
    const SNAPSHOT_VERSION: u32 = 2;
}
