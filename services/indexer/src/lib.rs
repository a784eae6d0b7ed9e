//! The indexer: a full-text index of accounts and transfers, fed by events.
