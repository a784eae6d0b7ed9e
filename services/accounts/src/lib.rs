//! The accounts service: command side of the Account aggregate.
