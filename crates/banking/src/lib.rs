//! The banking domain: Account and MoneyTransfer aggregates, their events and commands, the domain
//! newtypes and the pure decisions of the transfer saga. No HTTP, SQL or IO lives here.

pub mod account;
pub mod domain;
pub mod examples;
pub mod saga;
pub mod schema;
#[cfg(feature = "testing")]
pub mod testing;
pub mod transfer;

pub use account::{Account, AccountCommand, AccountError, AccountEvent, AccountStatus};
pub use domain::{AccountId, CustomerId, DomainError, Money, TransferId};
pub use transfer::{
    MoneyTransfer, TransferCommand, TransferDetails, TransferError, TransferEvent, TransferState,
};
