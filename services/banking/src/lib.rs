//! The banking domain: Account and MoneyTransfer aggregates and their events.
