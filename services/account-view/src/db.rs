//! The view's SQLite file: account and transfer documents plus the checkpoint, which is written in
//! the same transaction as the changes it covers.

use std::collections::BTreeMap;
use std::path::Path;

use banking::{AccountId, TransferId};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::Serialize;

use crate::projection::ViewChange;

/// An account as the view shows it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct AccountDoc {
    pub id: String,
    pub customer_id: Option<String>,
    pub title: String,
    pub description: String,
    pub balance: i64,
    pub status: String,
    /// The version of the last account event applied.
    pub version: u64,
    pub changes: Vec<ChangeDoc>,
    /// The transfers this account takes part in, keyed by transfer id.
    pub transactions: BTreeMap<String, TransactionDoc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ChangeDoc {
    pub change_id: String,
    pub transaction_id: String,
    pub transaction_type: String,
    pub amount: i64,
    pub balance_delta: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct TransactionDoc {
    pub from: String,
    pub to: String,
    pub amount: i64,
    pub date: String,
    pub description: String,
    pub status: String,
}

/// A transfer as the view shows it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct TransferDoc {
    pub id: String,
    pub from_account_id: String,
    pub to_account_id: String,
    pub amount: i64,
    pub date: String,
    pub description: String,
    pub state: String,
    /// The version of the last transfer event applied.
    pub version: u64,
}

/// An account in a customer's list.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct AccountSummary {
    pub id: String,
    pub title: String,
    pub balance: i64,
    pub status: String,
    pub version: u64,
}

/// A failure of the view's database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("could not open the view database {path}: {source}; check DATA_DIR is writable")]
    Open {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("a view database task failed: {0}")]
    Task(String),
    #[error("view database query failed while {doing}: {source}")]
    Query {
        doing: &'static str,
        #[source]
        source: rusqlite::Error,
    },
}

/// One connection to the view's database (the writer and each reader hold their own).
pub struct ViewDb {
    conn: Connection,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS checkpoint (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    position INTEGER NOT NULL
);
INSERT OR IGNORE INTO checkpoint (id, position) VALUES (0, 0);
CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY,
    customer_id TEXT,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    balance INTEGER NOT NULL,
    status TEXT NOT NULL,
    version INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS accounts_by_customer ON accounts (customer_id);
CREATE TABLE IF NOT EXISTS changes (
    account_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    change_id TEXT NOT NULL,
    transaction_id TEXT NOT NULL,
    transaction_type TEXT NOT NULL,
    amount INTEGER NOT NULL,
    balance_delta INTEGER NOT NULL,
    PRIMARY KEY (account_id, version)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS transfers (
    id TEXT PRIMARY KEY,
    from_account_id TEXT NOT NULL,
    to_account_id TEXT NOT NULL,
    amount INTEGER NOT NULL,
    date TEXT NOT NULL,
    description TEXT NOT NULL,
    state TEXT NOT NULL,
    version INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS transfers_by_from ON transfers (from_account_id);
CREATE INDEX IF NOT EXISTS transfers_by_to ON transfers (to_account_id);
";

fn q(doing: &'static str) -> impl FnOnce(rusqlite::Error) -> DbError {
    move |source| DbError::Query { doing, source }
}

impl ViewDb {
    /// Opens (creating if needed) the database file and its tables.
    pub fn open(path: &Path) -> Result<Self, DbError> {
        let open_err = |source| DbError::Open {
            path: path.display().to_string(),
            source,
        };
        let conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(open_err)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = OFF;",
        )
        .map_err(open_err)?;
        conn.execute_batch(SCHEMA).map_err(open_err)?;
        Ok(Self { conn })
    }

    /// The global position of the last event applied.
    pub fn checkpoint(&self) -> Result<u64, DbError> {
        self.conn
            .query_row("SELECT position FROM checkpoint WHERE id = 0", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|p| p as u64)
            .map_err(q("reading the checkpoint"))
    }

    /// Applies the changes of events up to `position` and moves the checkpoint there, all in one
    /// transaction. Events at or below the stored checkpoint are skipped, so a redelivered batch
    /// changes nothing.
    pub fn apply(&mut self, events: &[(u64, Vec<ViewChange>)]) -> Result<u64, DbError> {
        let tx = self
            .conn
            .transaction()
            .map_err(q("starting a transaction"))?;
        let mut checkpoint = tx
            .query_row("SELECT position FROM checkpoint WHERE id = 0", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(q("reading the checkpoint"))? as u64;
        for (position, changes) in events {
            if *position <= checkpoint {
                continue;
            }
            for change in changes {
                apply_change(&tx, change)?;
            }
            checkpoint = *position;
        }
        tx.execute(
            "UPDATE checkpoint SET position = ?1 WHERE id = 0",
            params![checkpoint as i64],
        )
        .map_err(q("moving the checkpoint"))?;
        tx.commit().map_err(q("committing view changes"))?;
        Ok(checkpoint)
    }

    /// Empties the view and sets the checkpoint to 0, for a rebuild.
    pub fn reset(&mut self) -> Result<(), DbError> {
        self.conn
            .execute_batch(
                "BEGIN; DELETE FROM accounts; DELETE FROM changes; DELETE FROM transfers;
                 UPDATE checkpoint SET position = 0 WHERE id = 0; COMMIT;",
            )
            .map_err(q("resetting the view"))
    }

    pub fn account(&self, id: &AccountId) -> Result<Option<AccountDoc>, DbError> {
        let id = id.to_string();
        let head = self
            .conn
            .prepare_cached(
                "SELECT customer_id, title, description, balance, status, version
                 FROM accounts WHERE id = ?1",
            )
            .map_err(q("reading an account"))?
            .query_row(params![id], |r| {
                Ok(AccountDoc {
                    id: id.clone(),
                    customer_id: r.get(0)?,
                    title: r.get(1)?,
                    description: r.get(2)?,
                    balance: r.get(3)?,
                    status: r.get(4)?,
                    version: r.get::<_, i64>(5)? as u64,
                    changes: vec![],
                    transactions: BTreeMap::new(),
                })
            })
            .optional()
            .map_err(q("reading an account"))?;
        let Some(mut doc) = head else {
            return Ok(None);
        };
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT change_id, transaction_id, transaction_type, amount, balance_delta
                 FROM changes WHERE account_id = ?1 ORDER BY version",
            )
            .map_err(q("reading account changes"))?;
        doc.changes = stmt
            .query_map(params![id], |r| {
                Ok(ChangeDoc {
                    change_id: r.get(0)?,
                    transaction_id: r.get(1)?,
                    transaction_type: r.get(2)?,
                    amount: r.get(3)?,
                    balance_delta: r.get(4)?,
                })
            })
            .and_then(Iterator::collect)
            .map_err(q("reading account changes"))?;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, from_account_id, to_account_id, amount, date, description, state
                 FROM transfers WHERE from_account_id = ?1
                 UNION ALL
                 SELECT id, from_account_id, to_account_id, amount, date, description, state
                 FROM transfers WHERE to_account_id = ?1",
            )
            .map_err(q("reading account transactions"))?;
        let rows: Vec<(String, TransactionDoc)> = stmt
            .query_map(params![id], |r| {
                Ok((
                    r.get(0)?,
                    TransactionDoc {
                        from: r.get(1)?,
                        to: r.get(2)?,
                        amount: r.get(3)?,
                        date: r.get(4)?,
                        description: r.get(5)?,
                        status: r.get(6)?,
                    },
                ))
            })
            .and_then(Iterator::collect)
            .map_err(q("reading account transactions"))?;
        doc.transactions = rows.into_iter().collect();
        Ok(Some(doc))
    }

    pub fn transfer(&self, id: &TransferId) -> Result<Option<TransferDoc>, DbError> {
        let id = id.to_string();
        self.conn
            .prepare_cached(
                "SELECT from_account_id, to_account_id, amount, date, description, state, version
                 FROM transfers WHERE id = ?1",
            )
            .map_err(q("reading a transfer"))?
            .query_row(params![id], |r| {
                Ok(TransferDoc {
                    id: id.clone(),
                    from_account_id: r.get(0)?,
                    to_account_id: r.get(1)?,
                    amount: r.get(2)?,
                    date: r.get(3)?,
                    description: r.get(4)?,
                    state: r.get(5)?,
                    version: r.get::<_, i64>(6)? as u64,
                })
            })
            .optional()
            .map_err(q("reading a transfer"))
    }

    pub fn customer_accounts(&self, customer_id: &str) -> Result<Vec<AccountSummary>, DbError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, title, balance, status, version FROM accounts
                 WHERE customer_id = ?1 ORDER BY id",
            )
            .map_err(q("listing a customer's accounts"))?;
        stmt.query_map(params![customer_id], |r| {
            Ok(AccountSummary {
                id: r.get(0)?,
                title: r.get(1)?,
                balance: r.get(2)?,
                status: r.get(3)?,
                version: r.get::<_, i64>(4)? as u64,
            })
        })
        .and_then(Iterator::collect)
        .map_err(q("listing a customer's accounts"))
    }

    /// Every account and transfer document, for comparing two views.
    pub fn dump(&self) -> Result<(Vec<AccountDoc>, Vec<TransferDoc>), DbError> {
        let ids: Vec<String> = self
            .conn
            .prepare("SELECT id FROM accounts ORDER BY id")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .map_err(q("listing accounts"))?;
        let mut accounts = Vec::with_capacity(ids.len());
        for id in ids {
            if let Ok(id) = AccountId::parse(&id) {
                accounts.extend(self.account(&id)?);
            }
        }
        let ids: Vec<String> = self
            .conn
            .prepare("SELECT id FROM transfers ORDER BY id")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .map_err(q("listing transfers"))?;
        let mut transfers = Vec::with_capacity(ids.len());
        for id in ids {
            if let Ok(id) = TransferId::parse(&id) {
                transfers.extend(self.transfer(&id)?);
            }
        }
        Ok((accounts, transfers))
    }
}

fn apply_change(tx: &Transaction<'_>, change: &ViewChange) -> Result<(), DbError> {
    match change {
        ViewChange::OpenAccount {
            id,
            customer_id,
            title,
            description,
            balance,
            version,
        } => {
            tx.prepare_cached(
                "INSERT INTO accounts (id, customer_id, title, description, balance, status, version)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'OPEN', ?6) ON CONFLICT (id) DO NOTHING",
            )
            .and_then(|mut s| {
                s.execute(params![
                    id.to_string(),
                    customer_id,
                    title,
                    description,
                    balance,
                    *version as i64
                ])
            })
            .map_err(q("opening an account in the view"))?;
        }
        ViewChange::RecordChange {
            id,
            version,
            change,
        } => {
            let changed = tx
                .prepare_cached(
                    "UPDATE accounts SET balance = balance + ?1, version = ?2
                     WHERE id = ?3 AND version < ?2",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        change.balance_delta,
                        *version as i64,
                        id.to_string()
                    ])
                })
                .map_err(q("changing an account balance in the view"))?;
            if changed == 1 && change.transaction_type != "failed_debit" {
                tx.prepare_cached(
                    "INSERT OR IGNORE INTO changes (account_id, version, change_id, transaction_id,
                     transaction_type, amount, balance_delta) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        id.to_string(),
                        *version as i64,
                        change.change_id.to_string(),
                        change.transaction_id.to_string(),
                        change.transaction_type,
                        change.amount,
                        change.balance_delta
                    ])
                })
                .map_err(q("recording an account change in the view"))?;
            }
        }
        ViewChange::CloseAccount { id, version } => {
            tx.prepare_cached(
                "UPDATE accounts SET status = 'CLOSED', version = ?1 WHERE id = ?2 AND version < ?1",
            )
            .and_then(|mut s| s.execute(params![*version as i64, id.to_string()]))
            .map_err(q("closing an account in the view"))?;
        }
        ViewChange::PutTransfer {
            id,
            version,
            from_account_id,
            to_account_id,
            amount,
            date,
            description,
            state,
        } => {
            tx.prepare_cached(
                "INSERT INTO transfers (id, from_account_id, to_account_id, amount, date,
                 description, state, version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (id) DO UPDATE SET state = excluded.state, version = excluded.version
                 WHERE transfers.version < excluded.version",
            )
            .and_then(|mut s| {
                s.execute(params![
                    id.to_string(),
                    from_account_id.to_string(),
                    to_account_id.to_string(),
                    amount,
                    date,
                    description,
                    state,
                    *version as i64
                ])
            })
            .map_err(q("storing a transfer in the view"))?;
        }
    }
    Ok(())
}
