//! Test support, built only with the `testing` feature: one event of every variant (see
//! [`crate::examples`]).

pub use crate::examples::{every_account_event, every_transfer_event};
