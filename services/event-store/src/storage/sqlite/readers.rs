//! The reader side: a small pool of read-only connections, and the stream and global-log reads
//! that merge what SQLite holds up to the tail's base with the tail's events.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rusqlite::types::Value as SqlValue;
use rusqlite::{params, Connection, OptionalExtension};

use super::sql::{get_u64, row_to_event, to_i64, to_micros, EVENT_COLUMNS};
use crate::domain::RecordedEvent;
use crate::storage::{AsOf, GlobalQuery, GlobalSlice, StreamQuery, StreamSlice};

pub(super) fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "query_only", "ON")?;
    conn.pragma_update(None, "cache_size", -16_384)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

pub(super) struct ReadPool {
    pub(super) path: PathBuf,
    pub(super) idle: Mutex<Vec<Connection>>,
    pub(super) max_idle: usize,
}

impl ReadPool {
    pub(super) fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let pooled = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => open_reader(&self.path)?,
        };
        let result = f(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.max_idle {
            idle.push(conn);
        }
        result
    }
}

/// Reads a stream from SQLite up to position `base` and from `tail`, the stream's events after
/// `base` (see [`Tail`](super::tail::Tail)).
pub(super) fn read_stream(
    conn: &Connection,
    query: &StreamQuery,
    base: u64,
    tail: Vec<RecordedEvent>,
) -> rusqlite::Result<StreamSlice> {
    let tx = conn.unchecked_transaction()?;
    let stream = query.stream_id.as_str();
    let current = match tail.last() {
        Some(last) => last.version,
        None => tx
            .prepare_cached(
                "SELECT version FROM events WHERE stream_id = ?1 AND position <= ?2
                 ORDER BY version DESC LIMIT 1",
            )?
            .query_row(params![stream, to_i64(base)], |row| get_u64(row, 0))
            .optional()?
            .unwrap_or(0),
    };
    let version = match query.as_of {
        AsOf::Now => current,
        AsOf::Version(v) => v.min(current),
        AsOf::Time(t) => match tail.iter().rev().find(|e| e.recorded_at <= t) {
            Some(e) => e.version,
            None => tx
                .prepare_cached(
                    "SELECT version FROM events
                     WHERE stream_id = ?1 AND recorded_at <= ?2 AND position <= ?3
                     ORDER BY version DESC LIMIT 1",
                )?
                .query_row(params![stream, to_micros(t), to_i64(base)], |row| {
                    get_u64(row, 0)
                })
                .optional()?
                .unwrap_or(0),
        },
    };
    let mut events = Vec::new();
    if version >= query.from_version && query.limit > 0 {
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM events
             WHERE stream_id = ?1 AND version >= ?2 AND version <= ?3 AND position <= ?5
             ORDER BY version LIMIT ?4"
        ))?;
        let rows = stmt.query_map(
            params![
                stream,
                to_i64(query.from_version),
                to_i64(version),
                to_i64(query.limit as u64),
                to_i64(base)
            ],
            row_to_event,
        )?;
        for row in rows {
            events.push(row?);
        }
        let room = query.limit - events.len();
        events.extend(
            tail.into_iter()
                .filter(|e| e.version >= query.from_version && e.version <= version)
                .take(room),
        );
    }
    Ok(StreamSlice { version, events })
}

/// Joins the events SQLite returned (all before the tail's) with the tail's, at most
/// `query.limit`, and says how far the reader has seen.
pub(super) fn merge_global(
    query: &GlobalQuery,
    mut events: Vec<RecordedEvent>,
    tail: Vec<RecordedEvent>,
) -> GlobalSlice {
    events.extend(tail);
    events.truncate(query.limit);
    let scanned_to = if events.len() >= query.limit {
        events.last().map_or(query.up_to, |e| e.position)
    } else {
        query.up_to
    };
    GlobalSlice { events, scanned_to }
}

pub(super) fn read_all(conn: &Connection, query: &GlobalQuery) -> rusqlite::Result<GlobalSlice> {
    let mut sql =
        format!("SELECT {EVENT_COLUMNS} FROM events WHERE position > ?1 AND position <= ?2");
    let mut args: Vec<SqlValue> = vec![
        SqlValue::Integer(to_i64(query.after)),
        SqlValue::Integer(to_i64(query.up_to)),
    ];
    if let Some(types) = &query.filter.event_types {
        let marks: Vec<String> = types
            .iter()
            .map(|t| {
                args.push(SqlValue::Text(t.clone()));
                format!("?{}", args.len())
            })
            .collect();
        sql.push_str(&format!(" AND event_type IN ({})", marks.join(", ")));
    }
    if let Some(prefix) = &query.filter.stream_prefix {
        args.push(SqlValue::Integer(prefix.chars().count() as i64));
        args.push(SqlValue::Text(prefix.clone()));
        sql.push_str(&format!(
            " AND substr(stream_id, 1, ?{}) = ?{}",
            args.len() - 1,
            args.len()
        ));
    }
    args.push(SqlValue::Integer(to_i64(query.limit as u64)));
    sql.push_str(&format!(" ORDER BY position LIMIT ?{}", args.len()));

    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args), row_to_event)?;
    let mut events = Vec::new();
    for row in rows {
        events.push(row?);
    }
    let scanned_to = if events.len() >= query.limit {
        events.last().map_or(query.up_to, |e| e.position)
    } else {
        query.up_to
    };
    Ok(GlobalSlice { events, scanned_to })
}
