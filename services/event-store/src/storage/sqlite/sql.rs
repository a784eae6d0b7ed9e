//! The schema, the writer connection's settings, and the SQL shared by the writer, the readers
//! and the replay: the event columns, inserting recorded events, reading rows back, and the
//! integer and time conversions.

use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::value::RawValue;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{EventFilter, RecordedEvent, Subscription};

pub(super) fn configure_writer(conn: &Connection) -> rusqlite::Result<()> {
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "journal_mode is {mode}, WAL is required"
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    // Checkpoints run on their own thread (see `run_checkpointer`), not inside appends' commits.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    // Keep the WAL file's size after a checkpoint so it is overwritten rather than regrown.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    conn.pragma_update(None, "cache_size", -32_768)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

pub(super) fn create_schema(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "
        CREATE TABLE IF NOT EXISTS events (
            position       INTEGER PRIMARY KEY,
            stream_id      TEXT    NOT NULL,
            version        INTEGER NOT NULL,
            event_id       BLOB    NOT NULL,
            event_type     TEXT    NOT NULL,
            schema_version INTEGER NOT NULL,
            data           TEXT    NOT NULL,
            metadata       TEXT    NOT NULL,
            recorded_at    INTEGER NOT NULL
        );
        CREATE UNIQUE INDEX IF NOT EXISTS events_stream_version ON events (stream_id, version);
        -- Repeated event ids are found in memory (see KnownIds); stores made before that had
        -- this index, which only slowed their commits.
        DROP INDEX IF EXISTS events_stream_event_id;
        CREATE TABLE IF NOT EXISTS subscriptions (
            name          TEXT    PRIMARY KEY,
            checkpoint    INTEGER NOT NULL,
            event_types   TEXT,
            stream_prefix TEXT,
            updated_at    INTEGER NOT NULL
        );
        CREATE TABLE IF NOT EXISTS snapshots (
            stream_id  TEXT    PRIMARY KEY,
            version    INTEGER NOT NULL,
            state      TEXT    NOT NULL,
            updated_at INTEGER NOT NULL
        );
        -- The event_types table (counts per event type and schema version) is created, and
        -- filled from the events of an older store, by event_types::migrate.
        ",
    )
}

pub(super) const INSERT_EVENT: &str = "INSERT INTO events
     (position, stream_id, version, event_id, event_type, schema_version, data, metadata, recorded_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

pub(super) const EVENT_COLUMNS: &str =
    "position, stream_id, version, event_id, event_type, schema_version, data, metadata, recorded_at";

/// Inserts events that already have their positions, versions and times.
pub(super) fn insert_recorded<'a>(
    conn: &Connection,
    events: impl Iterator<Item = &'a RecordedEvent>,
) -> rusqlite::Result<()> {
    let mut insert = conn.prepare_cached(INSERT_EVENT)?;
    for e in events {
        insert.execute(params![
            to_i64(e.position),
            e.stream_id,
            to_i64(e.version),
            &e.event_id.as_bytes()[..],
            e.event_type,
            e.schema_version,
            e.data.get(),
            e.metadata.get(),
            to_micros(e.recorded_at),
        ])?;
    }
    Ok(())
}

pub(super) fn select_subscription(
    conn: &Connection,
    name: &str,
) -> rusqlite::Result<Option<Subscription>> {
    conn.prepare_cached(
        "SELECT name, checkpoint, event_types, stream_prefix FROM subscriptions WHERE name = ?1",
    )?
    .query_row([name], row_to_subscription)
    .optional()
}

pub(super) fn row_to_subscription(row: &Row<'_>) -> rusqlite::Result<Subscription> {
    let types: Option<String> = row.get(2)?;
    let event_types = match types {
        None => None,
        Some(text) => Some(serde_json::from_str::<Vec<String>>(&text).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e))
        })?),
    };
    Ok(Subscription {
        group: row.get(0)?,
        checkpoint: get_u64(row, 1)?,
        filter: EventFilter {
            event_types,
            stream_prefix: row.get(3)?,
        },
    })
}

pub(super) fn row_to_event(row: &Row<'_>) -> rusqlite::Result<RecordedEvent> {
    let id: Vec<u8> = row.get(3)?;
    let event_id = Uuid::from_slice(&id).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Blob, Box::new(e))
    })?;
    let micros: i64 = row.get(8)?;
    Ok(RecordedEvent {
        position: get_u64(row, 0)?,
        stream_id: row.get(1)?,
        version: get_u64(row, 2)?,
        event_id,
        event_type: row.get(4)?,
        schema_version: row.get(5)?,
        data: get_raw(row, 6)?,
        metadata: get_raw(row, 7)?,
        recorded_at: from_micros(micros),
    })
}

pub(super) fn get_u64(row: &Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    let v: i64 = row.get(idx)?;
    u64::try_from(v).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Integer, Box::new(e))
    })
}

pub(super) fn get_raw(row: &Row<'_>, idx: usize) -> rusqlite::Result<Box<RawValue>> {
    let text: String = row.get(idx)?;
    RawValue::from_string(text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// Positions and versions are below 2^63 in practice; saturate rather than wrap.
pub(super) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(super) fn now_micros() -> i64 {
    to_micros(OffsetDateTime::now_utc())
}

pub(super) fn to_micros(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

pub(super) fn from_micros(micros: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}
